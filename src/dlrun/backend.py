"""Importing TensorFlow and Keras quietly, and seeding everything for repeatable runs."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings


def import_keras():
    """Import TensorFlow and Keras without TensorFlow's C++ and Python log spam; return keras."""
    # Hide TensorFlow's C++ log lines (INFO, WARNING and the spurious graph-version ERRORs that
    # tf.data prints); real failures still surface as Python exceptions.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(tensorflow|keras|google)")
    if "keras" in sys.modules and "tensorflow" in sys.modules:
        return sys.modules["keras"]
    # TensorFlow's native libraries log (oneDNN notices, absl banners) before TF_CPP_MIN_LOG_LEVEL
    # is read, straight to file descriptor 2: silence it for the import only.
    with _native_stderr_silenced():
        import tensorflow as tf
        import keras

    tf.get_logger().setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    return keras


@contextlib.contextmanager
def _native_stderr_silenced():
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable descriptor 2 (embedded interpreters)
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow, and make TensorFlow's ops deterministic (CPU)."""
    import tensorflow as tf

    keras = import_keras()
    keras.utils.set_random_seed(seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except (AttributeError, RuntimeError):  # not available or already initialised
        pass
