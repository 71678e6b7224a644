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
started = time.perf_counter()
model.fit(x_train, y_train, epochs=epochs, batch_size=64, verbose=0)
fit_seconds = time.perf_counter() - started
test = model.evaluate(x_test, y_test, batch_size=64, verbose=0, return_dict=True)
model.save(tempfile.mkdtemp() + "/model.keras")
print(json.dumps({"fit_seconds": fit_seconds, "test_accuracy": float(test["accuracy"])}))
