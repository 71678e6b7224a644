"""Plain hand-written Keras doing exactly what configs/quickstart.yaml does (for benchmarks/runner_overhead.py).

Same data, splits, seed, model, optimizer, callbacks, evaluation and saving; prints one JSON line.
"""

import json
import os
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from sklearn import datasets, model_selection

SEED = 42
keras.utils.set_random_seed(SEED)
tf.config.experimental.enable_op_determinism()

digits = datasets.load_digits()
x = (digits.images / 16.0).astype("float32")[..., np.newaxis]
y = digits.target.astype("int64")
x_rest, x_test, y_rest, y_test = model_selection.train_test_split(x, y, test_size=0.25, random_state=SEED, stratify=y)
x_train, x_val, y_train, y_val = model_selection.train_test_split(x_rest, y_rest, test_size=0.2, random_state=SEED, stratify=y_rest)

model = keras.Sequential(
    [
        keras.Input(shape=(8, 8, 1)),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.25),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ]
)
model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
out = tempfile.mkdtemp(prefix="reference-quickstart-")
callbacks = [
    keras.callbacks.EarlyStopping(monitor="val_loss", patience=6, restore_best_weights=True),
    keras.callbacks.ModelCheckpoint(os.path.join(out, "best.keras"), monitor="val_loss", save_best_only=True),
]
started = time.perf_counter()
history = model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=30, batch_size=32, callbacks=callbacks, verbose=0)
fit_seconds = time.perf_counter() - started
test = model.evaluate(x_test, y_test, batch_size=32, verbose=0, return_dict=True)
model.save(os.path.join(out, "model.keras"))
print(
    json.dumps(
        {
            "fit_seconds": fit_seconds,
            "epochs": len(history.history["loss"]),
            "test_accuracy": float(test["accuracy"]),
            "final_loss": history.history["loss"][-1],
        }
    )
)
sys.exit(0)
