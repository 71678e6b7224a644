"""Trials: K-fold validation and sweeps plan independent fits, hand them to an executor (this process,
a process pool, Ray Tune), and aggregate what comes back; each fit is one `dlrun.training` run."""
