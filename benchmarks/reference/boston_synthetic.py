"""Plain hand-written TensorFlow Keras doing what benchmarks/boston_synthetic.yaml does (for benchmarks/backends.py).

The same generated data (dlrun.data.synthetic's recipe, written out), split, seed, model, optimizer,
epochs and batch size; it evaluates on the test split and saves the model, as a dlrun run does.
Prints one JSON line.
"""

import json
import math
import os
import tempfile
import time

os.environ["KERAS_BACKEND"] = "tensorflow"

import keras
import numpy as np
import tensorflow as tf
from sklearn import model_selection

SEED = 42
keras.utils.set_random_seed(SEED)
tf.config.experimental.enable_op_determinism()

rng = np.random.default_rng(SEED)
x = rng.normal(size=(506, 13)).astype("float32")
weights = rng.normal(size=13)
y = (x @ weights / math.sqrt(13) + 0.5 * rng.normal(size=506)).astype("float32")
x_train, x_test, y_train, y_test = model_selection.train_test_split(x, y, test_size=0.2, random_state=SEED, shuffle=True)

model = keras.Sequential(
    [
        keras.Input(shape=(13,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(1),
    ]
)
model.compile(optimizer="rmsprop", loss="mse", metrics=["mae"])
started = time.perf_counter()
model.fit(x_train, y_train, epochs=80, batch_size=16, verbose=0)
fit_seconds = time.perf_counter() - started
test_loss, test_mae = model.evaluate(x_test, y_test, batch_size=16, verbose=0)
with tempfile.TemporaryDirectory() as folder:
    model.save(os.path.join(folder, "model.keras"))
print(
    json.dumps({"fit_seconds": fit_seconds, "test_mae": float(test_mae), "train_samples": len(x_train), "backend": keras.backend.backend()})
)
