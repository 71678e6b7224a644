"""Plain Keras doing what `dlrun train configs/fashion_mnist.yaml` does (for benchmarks/runner_overhead.py).

    python benchmarks/reference/fashion_mnist_convnet.py FOLDER EPOCHS

The book's MNIST convnet on Fashion-MNIST (Debian's IDX files), batch 64, rmsprop, seed 42; prints one JSON line.
"""

import gzip
import json
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf


def idx(path, offset):
    with gzip.open(path, "rb") as handle:
        return np.frombuffer(handle.read(), np.uint8, offset=offset)


folder, epochs = sys.argv[1], int(sys.argv[2])
keras.utils.set_random_seed(42)
tf.config.experimental.enable_op_determinism()
y_train = idx(f"{folder}/train-labels-idx1-ubyte.gz", 8).astype("int64")
x_train = idx(f"{folder}/train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1).astype("float32") / 255
y_test = idx(f"{folder}/t10k-labels-idx1-ubyte.gz", 8).astype("int64")
x_test = idx(f"{folder}/t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1).astype("float32") / 255
model = keras.Sequential(
    [
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ]
)
model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
marks = []  # (event, time): where fit's time went, as dlrun's run.json records it
clock = keras.callbacks.LambdaCallback(
    on_epoch_begin=lambda epoch, logs: marks.append(("begin", time.perf_counter())),
    on_epoch_end=lambda epoch, logs: marks.append(("end", time.perf_counter())),
)
started = time.perf_counter()
model.fit(x_train, y_train, epochs=epochs, batch_size=64, verbose=0, callbacks=[clock])
fit_seconds = time.perf_counter() - started
begins, ends = [at for event, at in marks if event == "begin"], [at for event, at in marks if event == "end"]
test = model.evaluate(x_test, y_test, batch_size=64, verbose=0, return_dict=True)
model.save(tempfile.mkdtemp() + "/model.keras")
epoch_seconds = [end - begin for begin, end in zip(begins, ends)]
timing = {"fit_before_first_epoch_seconds": begins[0] - started, "epoch_seconds": epoch_seconds}
print(json.dumps({"fit_seconds": fit_seconds, "test_accuracy": float(test["accuracy"]), **timing}))
