"""dlrun: a command-line deep-learning experiment runner (Keras 3 on TensorFlow)."""

__version__ = "0.1.0"
