"""Timing a config's training steps on the backend this process runs: the worker of `dlrun calibrate`.

Keras binds its backend at its first import, so `dlrun.training.calibration` starts this module once per
backend, in a fresh process with `KERAS_BACKEND` set, and reads the one JSON line it prints:

    KERAS_BACKEND=jax python -m dlrun.training.step_timing < config.json

The config (plain data, as `dlrun.config.to_data` gives it) comes on standard input. The worker imports
Keras (timed: `import_seconds`), loads the dataset and builds and compiles the model exactly as
`dlrun train` does (`trainer.Training`: `build_seconds`), fits a few batches of the training split once
to absorb compilation (`first_step_seconds`), then times `fit` over more full batches, several times,
and keeps the fastest per-step time (`step_ms`; the fastest because other processes on the machine
only ever slow a repetition down). On JAX with its persistent compilation cache on, a second copy of
the model is built and fitted once more (`warm_build_seconds`, `warm_first_step_seconds`): what every
later run pays, once this one has filled the cache. Nothing but that cache is written to disk.
"""

from __future__ import annotations

import io
import json
import math
import sys
import time
from typing import Any

TIMED_SECONDS = 0.3  # grow the timed fit until one takes at least this long ...
MAX_TIMED_BATCHES = 512  # ... or covers this many batches
REPEATS = 3  # timed fits; the fastest counts


def measure(config_data: dict) -> dict:
    """Import Keras on `$KERAS_BACKEND`, build `config_data`'s model and time its training steps."""
    started = time.perf_counter()
    from rich.console import Console

    from dlrun import backend, config as config_module

    config = config_module.validate(config_data)
    choice = backend.activate(config)
    imported = time.perf_counter()
    import numpy as np

    from dlrun.training import trainer

    console = Console(file=io.StringIO())  # the dataset's warnings: the parent's run prints them
    loaded = trainer.load(config, console)
    training = trainer.Training(config, loaded, console)
    built = time.perf_counter()
    batch_size = config.train.batch_size
    inputs, targets = _training_arrays(training.plan.data, batch_size)
    group = max(1, int(training.steps_per_execution[0]))  # fit runs whole groups of steps: time whole groups

    def fit_seconds(model: Any, batches: int) -> float:
        rows = np.resize(np.arange(len(inputs)), batches * batch_size)  # full batches only: one compiled shape
        began = time.perf_counter()
        model.fit(inputs[rows], targets[rows], batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        return time.perf_counter() - began

    model = training.model
    first_step = fit_seconds(model, 2 * group)
    batches = 4 * group
    seconds = fit_seconds(model, batches)
    while seconds < TIMED_SECONDS:
        wanted = min(MAX_TIMED_BATCHES, batches * max(2, math.ceil(TIMED_SECONDS / max(seconds, 1e-6))))
        wanted -= wanted % group
        if wanted <= batches:
            break
        batches, seconds = wanted, fit_seconds(model, wanted)
    fastest = min([seconds] + [fit_seconds(model, batches) for _ in range(REPEATS - 1)])
    report = {
        "backend": choice.name,
        "import_seconds": round(imported - started, 3),
        "build_seconds": round(built - imported, 3),
        "first_step_seconds": round(first_step, 3),
        "step_ms": round(1000 * fastest / batches, 4),
        "timed_batches": batches,
        "train_samples": loaded.size("train"),
    }
    if choice.compilation_cache:
        # JAX keeps what it compiled on disk (dlrun.backend's compilation cache), so every run after this
        # one loads the programs instead of compiling them: build and fit a second copy to time that. In
        # this process JAX's in-memory caches help too, so these are a lower bound (a fresh process reads
        # the programs from disk: a fraction of a second for a small model).
        began = time.perf_counter()
        again = trainer.Training(config, loaded, console)
        rebuilt = time.perf_counter()
        report.update(warm_build_seconds=round(rebuilt - began, 3), warm_first_step_seconds=round(fit_seconds(again.model, 2 * group), 3))
    return report


def _training_arrays(data: Any, batch_size: int, most_batches: int = 8) -> tuple[Any, Any]:
    """The training split as NumPy arrays: itself when in memory, else its first few batches (a pipeline)."""
    import numpy as np

    split = data.train
    if isinstance(split, tuple):
        return split
    pieces = [(np.asarray(x), np.asarray(y)) for x, y in split.batches(batch_size, False).take(most_batches)]
    return np.concatenate([x for x, _ in pieces]), np.concatenate([y for _, y in pieces])


def main() -> int:
    """The worker: the config on stdin, one JSON line of times on stdout; errors as one line on stderr."""
    try:
        result = measure(json.loads(sys.stdin.read()))
    except Exception as error:  # any failure is reported to the parent, which skips this backend
        message = str(error).strip().splitlines()
        print(f"{type(error).__name__}: {message[0] if message else ''}", file=sys.stderr)
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
