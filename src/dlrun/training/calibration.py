"""`backend: auto` by measurement: time the config's model on each installed backend, keep the fastest.

`dlrun calibrate CONFIG` (and `dlrun train` with `backend: auto`, lazily, the first time it meets a model)
starts `dlrun.training.step_timing` once per candidate backend, each in a fresh process (Keras binds its
backend at import), with a timeout. Each worker reports how long Keras took to import, the model to build,
the first fit (compilation) and one training step once compiled. The choice is the backend whose estimate
of the whole run is the smallest: import + build + first fit + per-step time x the run's steps (epochs x batches
per epoch), so a short run weighs start-up and a long one the step time. On JAX, whose compilation cache
the calibration itself fills, build and first fit are those of a run with that cache warm.

The result is cached in one JSON file per key (`cache_folder()`), the key being the machine (platform,
CPU model and count), the installed versions of Keras, TensorFlow, JAX and PyTorch, and a signature of
the config values that change the model or its batches (everything but the name, seed, epochs,
callbacks, output and search). A later run with the same key reads the file instead of measuring.

Calibration does not apply (the fixed rule of `dlrun.backend` decides, as before) when the config names
its backend, `$KERAS_BACKEND` names one, Keras is already imported in the process, a setting needs
TensorFlow, `train.loop: custom` (paced by Python, not by the backend), a pretrained base (timing it would
cost more than it saves), or fewer than two backends can run the config. `DLRUN_CALIBRATE=off` keeps the
fixed rule and says so in the reason.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from dlrun import atomic, backend, config as config_module, errors
from dlrun.config import schema

if TYPE_CHECKING:
    from rich.console import Console

SWITCH_VARIABLE = "DLRUN_CALIBRATE"  # off: the fixed rule; anything else (or unset): calibrate lazily
CACHE_VARIABLE = "DLRUN_CACHE_DIR"  # dlrun's cache folder; default $XDG_CACHE_HOME/dlrun (~/.cache/dlrun)
TIMEOUT_VARIABLE = "DLRUN_CALIBRATE_TIMEOUT"  # seconds per backend
TIMEOUT_SECONDS = 120.0  # a loaded 2-core machine imports TensorFlow in ~10 s; a step of a big model takes long
ALREADY_LOADED = "Keras is already imported in this process"
FORMAT = 1  # of the cache files: a new format never reads an old file
VERSIONED = {
    "keras": ("keras",),
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "jax": ("jax",),
    "jaxlib": ("jaxlib",),
    "torch": ("torch",),
}
# Config values that change neither the model nor its batches: left out of the model signature.
UNTIMED = {"": ("name", "seed", "backend", "output", "search"), "train": ("epochs", "callbacks", "tensorboard", "shuffle")}


@dataclasses.dataclass(frozen=True)
class Measurement:
    """One backend's times (`step_timing`'s report), or why it could not be timed (`error`)."""

    backend: str
    import_seconds: float = 0.0
    build_seconds: float = 0.0
    first_step_seconds: float = 0.0  # the first fit of a few batches: compilation, mostly
    step_ms: float = 0.0  # one training step once compiled, the fastest of a few timed fits
    train_samples: int = 0
    # JAX with its compilation cache: the build and first fit of a run after the first (programs loaded, not compiled)
    warm_build_seconds: float | None = None
    warm_first_step_seconds: float | None = None
    error: str | None = None

    def estimate(self, steps: int) -> float:
        """Seconds to start Keras on this backend, build the model and fit `steps` training steps
        (validation not counted), for a run after the calibration (warm where a compilation cache is)."""
        build = self.build_seconds if self.warm_build_seconds is None else self.warm_build_seconds
        first = self.first_step_seconds if self.warm_first_step_seconds is None else self.warm_first_step_seconds
        return self.import_seconds + build + first + self.step_ms * steps / 1000

    def record(self) -> dict:
        return {key: value for key, value in dataclasses.asdict(self).items() if value is not None}


@dataclasses.dataclass(frozen=True)
class Calibration:
    """The times of every candidate backend for one cache key."""

    key: str
    measurements: list[Measurement]
    seconds: float  # what measuring cost
    created: str
    path: Path | None = None  # the cache file it was read from or stored in
    cached: bool = False  # read from the cache rather than measured now

    def timed(self) -> list[Measurement]:
        return [measurement for measurement in self.measurements if measurement.error is None]

    def ranked(self, epochs: int, batch_size: int) -> list[tuple[Measurement, float]]:
        """The timed backends, each with its estimate for the run, fastest first."""
        estimates = [
            (measurement, measurement.estimate(epochs * _batches(measurement.train_samples, batch_size))) for measurement in self.timed()
        ]
        return sorted(estimates, key=lambda pair: pair[1])

    def choice(self, config: schema.Config) -> backend.Choice | None:
        """The fastest backend for `config`'s run, with the times as the reason; None when none was timed."""
        ranked = self.ranked(config.train.epochs, config.train.batch_size)
        if not ranked:
            return None
        steps = config.train.epochs * _batches(ranked[0][0].train_samples, config.train.batch_size)
        times = " vs ".join(
            f"{measurement.backend} {measurement.step_ms:.3g} ms/step (~{estimate:.1f} s)" for measurement, estimate in ranked
        )
        failed = "".join(f"; {measurement.backend} failed" for measurement in self.measurements if measurement.error)
        reason = f"calibrated: {times} for {steps:,} steps with start-up{failed}"
        return backend.Choice(ranked[0][0].backend, reason, calibration=self.record())

    def record(self) -> dict:
        """What run.json keeps under backend.calibration."""
        return {
            "times": [measurement.record() for measurement in self.measurements],
            "measured_at": self.created,
            "seconds": round(self.seconds, 1),
            "cached": self.cached,
            "key": self.key,
            **({"file": str(self.path)} if self.path else {}),
        }


def _batches(samples: int, batch_size: int) -> int:
    return max(1, math.ceil(samples / batch_size))


def cache_folder() -> Path:
    """Where calibrations are kept: `$DLRUN_CACHE_DIR/calibration`, else the user cache dir's dlrun/calibration."""
    setting = os.environ.get(CACHE_VARIABLE, "").strip()
    root = Path(setting).expanduser() if setting else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dlrun"
    return root / "calibration"


def switched_off() -> bool:
    return os.environ.get(SWITCH_VARIABLE, "").strip().lower() in ("off", "0", "false", "no")


def candidates(config: schema.Config) -> list[str]:
    """The installed backends that can run `config` (`backend.problems` finds nothing against them)."""
    return [name for name in backend.installed() if not backend.problems(config.model_copy(update={"backend": name}))]


def not_applicable(config: schema.Config, command: bool = False) -> str | None:
    """Why calibration does not decide `config`'s backend, or None when it does. `command`: for
    `dlrun calibrate`, which measures whatever the config or the environment pins."""
    reasons = (
        []
        if command
        else [
            (config.backend != "auto", f"backend: {config.backend} is set in the config"),
            (os.environ.get("KERAS_BACKEND") in backend.installed(), f"KERAS_BACKEND={os.environ.get('KERAS_BACKEND')} is set"),
            (backend.loaded() is not None, ALREADY_LOADED),
        ]
    )
    reasons += [
        (backend.required(config) is not None, "a setting only one backend runs (train.distribute)"),
        (config.train.loop == "custom", "train.loop: custom is paced by its Python loop, not by the backend"),
        (config.model.architecture == "pretrained", "a pretrained base costs more to time than calibrating saves"),
    ]
    for applies, reason in reasons:
        if applies:
            return reason
    found = candidates(config)
    if len(found) < 2:
        return f"only {found[0] if found else 'no backend'} can run it here"
    return None


def signature(config: schema.Config) -> dict:
    """The config values that change the model or its batches (the model part of the cache key)."""
    data = config_module.to_data(config)
    for section, keys in UNTIMED.items():
        target = data.get(section, {}) if section else data
        for key in keys:
            target.pop(key, None)
    return data


def key_facts(config: schema.Config, backends: list[str]) -> dict:
    """Everything a calibration depends on: machine, installed versions, the model signature, the backends."""
    return {"format": FORMAT, "machine": _machine(), "versions": _versions(), "model": signature(config), "backends": backends}


def cache_path(config: schema.Config, backends: list[str]) -> tuple[str, Path]:
    """(key, cache file) for `config` timed on `backends`."""
    digest = hashlib.sha256(json.dumps(key_facts(config, backends), sort_keys=True).encode()).hexdigest()[:20]
    return digest, cache_folder() / f"{digest}.json"


def cached(config: schema.Config, backends: list[str]) -> Calibration | None:
    """The stored calibration for `config` on `backends`, or None (absent, unreadable, or another format)."""
    key, path = cache_path(config, backends)
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        measurements = [Measurement(**item) for item in stored["times"]]
        return Calibration(key, measurements, float(stored["seconds"]), str(stored["measured_at"]), path, cached=True)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def measure(config: schema.Config, backends: list[str], console: Console | None = None) -> Calibration:
    """Time `config`'s model on each of `backends` (one fresh process each) and store the result.

    A backend that fails or runs past the timeout is skipped, with one line on `console`. The result is
    stored unless a backend timed out (a loaded machine may do better next time).
    """
    started = time.perf_counter()
    payload = json.dumps(config_module.to_data(config.model_copy(update={"backend": "auto"})))
    measurements = [_time_backend(name, payload, console) for name in backends]
    key, path = cache_path(config, backends)
    created = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    calibration = Calibration(key, measurements, time.perf_counter() - started, created)
    if not any(measurement.error and measurement.error.startswith("timed out") for measurement in measurements):
        stored = {
            "times": [dataclasses.asdict(measurement) for measurement in measurements],
            "seconds": calibration.seconds,
            "measured_at": created,
            "facts": key_facts(config, backends),
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_json(path, stored)
            calibration = dataclasses.replace(calibration, path=path)
        except OSError as error:  # an unwritable cache costs only the next run's calibration
            _say(console, f"calibration: not stored ({error})")
    return calibration


def _time_backend(name: str, payload: str, console: Console | None) -> Measurement:
    """Run the step-timing worker on backend `name`; its Measurement, or one with the error."""
    timeout = _timeout()
    environment = {
        **os.environ,
        "KERAS_BACKEND": name,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")])),
    }
    try:
        result = subprocess.run(_worker_command(), input=payload, capture_output=True, text=True, timeout=timeout, env=environment)
    except subprocess.TimeoutExpired:
        return _skipped(name, f"timed out after {timeout:g} s", console)
    except OSError as error:
        return _skipped(name, f"failed to start: {error}", console)
    report = _last_json_line(result.stdout)
    if result.returncode != 0 or report is None:
        lines = result.stderr.strip().splitlines()
        return _skipped(name, f"failed (exit {result.returncode}): {lines[-1] if lines else 'no output'}", console)
    fields = {field.name for field in dataclasses.fields(Measurement)} - {"backend", "error"}
    try:
        return Measurement(name, **{key: report[key] for key in fields if key in report})
    except TypeError as error:
        return _skipped(name, f"failed: an unreadable report ({error})", console)


def _worker_command() -> list[str]:
    return [sys.executable, "-m", "dlrun.training.step_timing"]


def _timeout() -> float:
    setting = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    try:
        return float(setting) if setting else TIMEOUT_SECONDS
    except ValueError:
        raise errors.UsageError(f"{TIMEOUT_VARIABLE}: received {setting!r}; expected a number of seconds") from None


def _skipped(name: str, error: str, console: Console | None) -> Measurement:
    _say(console, f"calibration: {name} skipped ({error})")
    return Measurement(name, error=error)


def _say(console: Console | None, line: str) -> None:
    if console is not None:
        console.print(line, highlight=False, soft_wrap=True, markup=False)


def _last_json_line(text: str) -> dict | None:
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def choose(config: schema.Config, console: Console) -> backend.Choice:
    """The backend `dlrun train` runs `config` on: measured for `auto` where calibration applies (from
    the cache, or measured now with one line on `console` saying what it cost), else `backend.choose`'s."""
    fixed = backend.choose(config)
    why_not = not_applicable(config)
    if why_not == ALREADY_LOADED and not switched_off() and not_applicable(config, command=True) is None:
        # a later run in the same process (dlrun train --seeds): the stored calibration still says why
        stored = cached(config, candidates(config))
        measured = stored.choice(config) if stored is not None else None
        return measured if measured is not None and measured.name == backend.loaded() else fixed
    if why_not is not None:
        return fixed
    if switched_off():
        return dataclasses.replace(fixed, reason=f"{fixed.reason} ({SWITCH_VARIABLE}=off: the fixed rule, not calibrated)")
    backends = candidates(config)
    calibration = cached(config, backends)
    if calibration is None:
        calibration = measure(config, backends, console)
        _say(
            console,
            f"calibrated backend: auto in {calibration.seconds:.1f} s on {', '.join(backends)} (once for this "
            f"model, machine and versions; {SWITCH_VARIABLE}=off skips it)",
        )
    measured = calibration.choice(config)
    if measured is None:
        return dataclasses.replace(fixed, reason=f"{fixed.reason} (calibration timed no backend)", calibration=calibration.record())
    return measured


def _machine() -> dict:
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": model,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def _versions() -> dict:
    found = {}
    for name, distributions in VERSIONED.items():
        for distribution in distributions:
            try:
                found[name] = importlib.metadata.version(distribution)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return found
