"""Inference: using a trained run's model (`dlrun predict` and its input files, `dlrun export`)."""
