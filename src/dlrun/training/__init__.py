"""Training: the one training function (`trainer.Training`) that every command trains through, its plan
(phases, the feature cache), batches, the custom loop and its gradients, callbacks and recorders,
checkpoints and resume, compiling, and evaluation against the naive baseline."""
