"""The plain hand-written Keras script dlrun's configs/fashion_mnist.yaml is compared with (BENCHMARKS.md).

    python benchmarks/fashion_mnist_plain.py [/usr/share/datasets/fashion-mnist]

The book's MNIST convnet on Fashion-MNIST, 5 epochs, batch 64, rmsprop, seed 42, deterministic ops:
what `dlrun train configs/fashion_mnist.yaml` does, without dlrun. Prints wall time and test accuracy.
"""

import gzip
import os
import sys
import time

START = time.perf_counter()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402


def idx(path, offset):
    with gzip.open(path, "rb") as handle:
        return np.frombuffer(handle.read(), np.uint8, offset=offset)


def main(folder):
    keras.utils.set_random_seed(42)
    tf.config.experimental.enable_op_determinism()
    y_train = idx(f"{folder}/train-labels-idx1-ubyte.gz", 8).astype("int64")
    x_train = idx(f"{folder}/train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1).astype("float32") / 255
    y_test = idx(f"{folder}/t10k-labels-idx1-ubyte.gz", 8).astype("int64")
    x_test = idx(f"{folder}/t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1).astype("float32") / 255
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, activation="relu"), keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.Flatten(), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    fit_start = time.perf_counter()
    model.fit(x_train, y_train, epochs=5, batch_size=64, verbose=2)
    fit_seconds = time.perf_counter() - fit_start
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=64, verbose=0)
    model.save("/tmp/fashion_mnist_plain.keras")
    print(f"fit {fit_seconds:.1f} s; whole script {time.perf_counter() - START:.1f} s; test loss {loss:.4f} accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist")
