"""Plain Keras doing what `dlrun train configs/boston.yaml` does (for benchmarks/runner_overhead.py).

    python benchmarks/reference/boston_mlp.py boston_housing.npz

Keras' boston split (80/20, seed 113), features normalised with the training mean/std, Dense 64-64-1,
rmsprop, mse, mae, batch 16, 80 epochs, seed 42; prints one JSON line.
"""

import json
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

keras.utils.set_random_seed(42)
tf.config.experimental.enable_op_determinism()
with np.load(sys.argv[1], allow_pickle=False) as data:
    x, y = data["x"].astype("float32"), data["y"].astype("float32")
order = np.random.RandomState(113).permutation(len(x))  # keras.datasets.boston_housing's split
x, y = x[order], y[order]
split = int(len(x) * 0.8)
x_train, y_train, x_test, y_test = x[:split], y[:split], x[split:], y[split:]
normalize = keras.layers.Normalization()
normalize.adapt(x_train)
model = keras.Sequential(
    [
        keras.Input((13,)),
        normalize,
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(1),
    ]
)
model.compile(optimizer="rmsprop", loss="mse", metrics=["mae"])
started = time.perf_counter()
model.fit(x_train, y_train, epochs=80, batch_size=16, verbose=0)
fit_seconds = time.perf_counter() - started
test = model.evaluate(x_test, y_test, batch_size=16, verbose=0, return_dict=True)
model.save(tempfile.mkdtemp() + "/model.keras")
print(json.dumps({"fit_seconds": fit_seconds, "test_mae": float(test["mae"])}))
