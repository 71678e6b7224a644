"""The Keras backend: choosing it (`backend:` in the config), importing Keras on it quietly, seeding.

This is the one module that knows which backend runs. Keras reads `KERAS_BACKEND` once, at its first
import, so `activate(config)` sets it before anything imports Keras, and refuses when Keras was already
imported on another backend in this process (a new process is the only way to switch).

`auto` (the default) is measured on this machine for this model where it can be (`dlrun calibrate`,
`dlrun.training.calibration`, which hands `activate` its choice); otherwise (`DLRUN_CALIBRATE=off`, or
calibration does not apply) it picks, among the installed backends, the one the benchmarks
(BENCHMARKS.md, "Keras backends") measured fastest for this kind of model: JAX for dense (`mlp`) models, whose
compiled training steps fit faster on CPU and which never import TensorFlow there (the Boston MLP beat
plain TensorFlow Keras end to end, most of all once JAX's compilation cache is warm); TensorFlow for
convnets and pretrained bases, which trained several times slower per epoch on JAX on CPU (an earlier
measurement, cited in that section), and for the one thing only TensorFlow can do (`train.distribute:
mirrored`); JAX for the one thing only JAX runs (`train.distribute: data_parallel`); TensorFlow also for `train.loop: custom`, which runs on every backend (its gradients, like
Grad-CAM's and filter patterns', come from `dlrun.training.gradients`) but is paced by its per-batch
Python loop rather than by XLA, so it fit the Boston MLP no faster on JAX (docs/backends.md's table
has the times).
TensorFlow stays installed either way: image folders are tf.data pipelines, which Keras 3 accepts on
any backend; in-memory arrays go to JAX and PyTorch as NumPy batches, so TensorFlow is not imported there.

Imports nothing heavy at module level: config validation calls `problems`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dlrun import errors, signals

# The registry: backend name -> what it is for (the schema's `backend` names, less `auto`, equal these keys).
BACKENDS = {
    "tensorflow": "TensorFlow: every dlrun feature but train.distribute: data_parallel (mirrored only here)",
    "jax": "JAX (pip install 'dlrun[jax]'): the fastest for dense models on CPU; all but train.distribute: mirrored "
    "(data_parallel only here)",
    "torch": "PyTorch (pip install 'dlrun[torch]', the CPU wheel first for CPU only): all but train.distribute",
}
INSTALL = {
    "tensorflow": "pip install tensorflow",
    "jax": "pip install 'dlrun[jax]'",
    "torch": "pip install 'dlrun[torch]' (for CPU only, first: pip install torch --index-url https://download.pytorch.org/whl/cpu)",
}
DENSE_ARCHITECTURES = ("mlp",)  # where JAX wins on CPU (BENCHMARKS.md)


@dataclasses.dataclass(frozen=True)
class Choice:
    """The backend a run uses and, in one sentence, why (recorded in run.json)."""

    name: str
    reason: str
    compilation_cache: str | None = None  # JAX's persistent compilation cache folder, when one is used
    calibration: dict | None = None  # the measured times `auto` chose by (dlrun.training.calibration)

    def record(self) -> dict:
        cache = {"compilation_cache": self.compilation_cache} if self.compilation_cache else {}
        return {"name": self.name, "reason": self.reason, **cache, **({"calibration": self.calibration} if self.calibration else {})}


def installed() -> list[str]:
    """The backends whose package can be imported here, in registry order (nothing is imported)."""
    return [name for name in BACKENDS if _importable(name)]


def _importable(module_name: str) -> bool:
    try:
        return importlib.util.find_spec(module_name) is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules (hidden), or a broken one
        return False


def loaded() -> str | None:
    """The backend Keras was imported with in this process, or None when Keras is not imported yet."""
    keras = sys.modules.get("keras")
    if keras is None:
        return None
    try:
        return keras.backend.backend()
    except AttributeError:  # a partly imported keras
        return os.environ.get("KERAS_BACKEND", "tensorflow")


# train.distribute value -> the one backend that runs it
DISTRIBUTE_BACKENDS = {"mirrored": "tensorflow", "data_parallel": "jax"}


def required(config: Config) -> tuple[str, str, str] | None:
    """(key path, value, backend) for the config's setting that only one backend runs, or None."""
    needed = DISTRIBUTE_BACKENDS.get(config.train.distribute)
    return None if needed is None else ("train.distribute", config.train.distribute, needed)


def problems(config: Config) -> list[str]:
    """Config lines that contradict an explicit backend (checked with the config, before any import)."""
    found = []
    if config.train.loop == "custom" and config.train.distribute != "none":
        found.append(
            f"train.loop: received 'custom' with train.distribute: {config.train.distribute}; expected "
            f"train.loop: fit (only fit splits batches across replicas)"
        )
    steps = config.train.steps_per_execution
    if config.backend == "torch" and steps != "auto" and steps > 1:
        found.append(
            f"train.steps_per_execution: received {steps} with backend 'torch'; expected auto or 1 "
            "(Keras on PyTorch runs one step per call)"
        )
    needs = required(config)
    if needs is not None and config.backend not in ("auto", needs[2]):
        key, value, name = needs
        found.append(
            f"{key}: received {value!r} with backend {config.backend!r}; expected backend: {name} "
            f"(or auto), since only {_NAMES[name]} runs {key}: {value}"
        )
    return found


_NAMES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}


# dlrun.config.schema.Config: the config layer sits above this module, which therefore never imports it, even for types
Config = Any

_THIS_PROCESS = object()  # choose()'s default: read the fact from this process


def choose(config: Config, available: Any = _THIS_PROCESS, already: Any = _THIS_PROCESS, environment: Any = _THIS_PROCESS) -> Choice:
    """The backend `config` runs on and why; raises ConfigError when it cannot run here.

    `available` (the installed backends), `already` (the backend Keras was imported with, or None) and
    `environment` (`$KERAS_BACKEND`, or None) default to this process's facts; tests pass their own.
    """
    available = installed() if available is _THIS_PROCESS else available
    already = loaded() if already is _THIS_PROCESS else already
    environment = os.environ.get("KERAS_BACKEND") if environment is _THIS_PROCESS else environment
    requested = config.backend
    found = problems(config)
    if found:
        raise errors.ConfigError(found)
    if requested != "auto":
        if already not in (None, requested):
            raise errors.ConfigError(
                f"backend: received {requested!r}; Keras was already imported in this process with the "
                f"{already!r} backend and cannot switch: run dlrun in a new process"
            )
        if requested not in available:
            raise errors.ConfigError(
                f"backend: received {requested!r}, which is not installed; expected one of "
                f"{', '.join(available) or 'none'} (or install it: {INSTALL[requested]})"
            )
        return Choice(requested, f"backend: {requested} was asked for in the config")
    preferred = _auto(config, available, environment)
    if already in (None, preferred.name):
        return preferred
    needs = required(config)
    if needs is not None:
        key, value, name = needs
        raise errors.ConfigError(
            f"{key}: received {value!r}, which needs {_NAMES[name]}; Keras was already imported "
            f"in this process with the {already!r} backend: run dlrun in a new process"
        )
    return Choice(
        already, f"auto: Keras was already imported in this process with the {already} backend (a new process would use {preferred.name})"
    )


def _auto(config: Config, available: list[str], environment: str | None) -> Choice:
    needs = required(config)
    if needs is not None:
        key, value, name = needs
        if name == "tensorflow":
            return _fallback(available, f"auto: {key}: {value} needs TensorFlow")
        if name not in available:
            raise errors.ConfigError(
                f"{key}: received {value!r}, which needs {_NAMES[name]}, not installed here; "
                f"expected {_NAMES[name]} installed ({INSTALL[name]})"
            )
        return Choice(name, f"auto: {key}: {value} needs {_NAMES[name]}")
    if environment in available:
        return Choice(environment, f"auto: KERAS_BACKEND={environment} is set in the environment")
    if config.train.loop == "custom":
        # Its per-batch Python loop, not XLA, sets the pace, so JAX brings nothing (the Boston MLP's
        # custom loop fit no faster on JAX than on TensorFlow; docs/backends.md's table has the times).
        return _fallback(available, "auto: train.loop: custom, no faster on JAX than on TensorFlow (Boston MLP, CPU)")
    architecture = config.model.architecture
    if architecture in DENSE_ARCHITECTURES:
        if "jax" in available:
            return Choice("jax", f"auto: a dense ({architecture}) model, fastest on JAX: 2.5x TensorFlow on CPU, BENCHMARKS.md")
        return _fallback(available, f"auto: a dense ({architecture}) model, fastest on JAX, which is not installed")
    return _fallback(available, f"auto: a {architecture} model, fastest on TensorFlow: JAX ran the notes' convnet 4x slower on CPU")


def said(choice: Choice, requested: str) -> str:
    """The line every run prints: the backend, why, and (when `auto` chose it) how to pin it."""
    pin = f"; pin with --set backend={choice.name}" if requested == "auto" else ""
    return f"backend: {choice.name} ({choice.reason}{pin})"


def _fallback(available: list[str], reason: str) -> Choice:
    """TensorFlow when installed (with `reason`), else the first installed backend."""
    if "tensorflow" in available:
        return Choice("tensorflow", reason)
    if not available:
        raise errors.ConfigError(
            f"backend: received 'auto' with no Keras backend installed; expected one of: {'; '.join(INSTALL.values())}"
        )
    return Choice(available[0], f"auto: TensorFlow is not installed; {available[0]} is")


def activate(config: Config, choice: Choice | None = None) -> Choice:
    """Choose the backend for `config` (or take `choice`, made already: a calibrated `auto`), import
    Keras on it (quietly) and return the choice (with the JAX compilation cache it uses, if any)."""
    choice = choose(config) if choice is None else choice
    os.environ["KERAS_BACKEND"] = choice.name
    import_keras()
    if choice.name == "jax":
        return dataclasses.replace(choice, compilation_cache=_jax_compilation_cache())
    return choice


def import_keras() -> Any:
    """Import Keras (and TensorFlow, on the TensorFlow backend) without TensorFlow's log spam; return keras.

    The backend is `$KERAS_BACKEND` (set by `activate`), TensorFlow when unset. On the other backends
    TensorFlow is imported only by what needs it (tf.data pipelines of image folders): its import is
    a large share of a short JAX run (BENCHMARKS.md, "Start-up" and "Keras backends").
    """
    # Hide TensorFlow's C++ log lines (INFO, WARNING and the spurious graph-version ERRORs that
    # tf.data prints); real failures still surface as Python exceptions.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(tensorflow|keras|google|jax)")
    wants_tensorflow = os.environ["KERAS_BACKEND"] == "tensorflow"
    if "keras" in sys.modules and ("tensorflow" in sys.modules or not wants_tensorflow):
        if "tensorflow" not in sys.modules:  # Keras imported directly (a module-level `import keras`)
            _keras_without_tensorflow()
        return sys.modules["keras"]
    # Ctrl-C or SIGTERM during the import is acted on once it returns (signals.deferred says why).
    with signals.deferred():
        # TensorFlow's native libraries log (oneDNN notices, absl banners) before TF_CPP_MIN_LOG_LEVEL
        # is read, straight to file descriptor 2: silence it for the import only.
        if wants_tensorflow:
            import_tensorflow()
        with _native_stderr_silenced():
            import keras

        if not wants_tensorflow and "tensorflow" not in sys.modules:
            _keras_without_tensorflow()
        if os.environ["KERAS_BACKEND"] == "jax":
            _jax_compilation_cache()
    logging.getLogger("absl").setLevel(logging.ERROR)
    return keras


def import_tensorflow() -> Any:
    """Import TensorFlow without its native log lines; return it. On the other backends TensorFlow is
    imported only by what needs it (image-folder pipelines, TensorBoard summaries), through this."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with signals.deferred(), _native_stderr_silenced():  # a signal is acted on once the import returns
        import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    return tf


def _keras_without_tensorflow() -> None:
    """Stop Keras importing TensorFlow just because it is installed.

    On JAX and PyTorch, Keras asks `tensorflow.available` (which imports it) only to seed tf.data
    (`set_random_seed`) and to recognise TensorFlow objects while saving; dlrun seeds its tf.data
    pipelines explicitly and saves no TensorFlow objects. Keras code that uses TensorFlow for real (its
    tf.data adapter) still imports it on first use.
    """
    from keras.src.utils import module_utils

    if module_utils.tensorflow.module is None:
        module_utils.tensorflow._available = False


JAX_CACHE_VARIABLE = "DLRUN_JAX_CACHE"  # a folder, or "off"; default: $XDG_CACHE_HOME/dlrun/jax (~/.cache/dlrun/jax)


def jax_cache_folder() -> Path | None:
    """Where JAX's persistent compilation cache lives for dlrun runs, or None when `$DLRUN_JAX_CACHE` is off."""
    setting = os.environ.get(JAX_CACHE_VARIABLE, "").strip()
    if setting.lower() in ("off", "0", "false", "no"):
        return None
    if setting:
        return Path(setting).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dlrun" / "jax"


def _jax_compilation_cache() -> str | None:
    """Turn on JAX's persistent compilation cache; return its folder (None when off or unusable).

    JAX compiles every jitted function (each variable initialiser, the train, test and predict steps)
    when a process first calls it, a sizeable share of a short run such as Boston's (measured in
    BENCHMARKS.md, "Keras backends"). The cache keeps the compiled programs on disk, keyed by the
    program, the JAX version and the device, so a later run of the same model shapes (a rerun, the
    next K-fold worker, a sweep trial) loads them instead; the numbers are the same either way. A
    `JAX_COMPILATION_CACHE_DIR` the user set wins; an unwritable folder only costs the speed.
    """
    import jax

    # jax.config holds its options as attributes set at run time; its type stubs declare none of them
    configured = jax.config.jax_compilation_cache_dir  # type: ignore[attr-defined]
    if configured:
        return configured
    folder = jax_cache_folder()
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    # JAX writes entries in place: one cut short (a worker killed mid-write, a full disk) is only
    # recompiled on every later run, with a warning per program; the numbers are unaffected.
    warnings.filterwarnings("ignore", message="Error reading persistent compilation cache entry", category=UserWarning)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    # Cache every program, however quick to compile: dlrun's small models make many small programs,
    # each below JAX's default threshold, and together they are the first run's compile cost.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return str(folder)


def feeds_tf_data() -> bool:
    """Whether in-memory arrays reach `fit` through `tf.data` (the TensorFlow backend) or as NumPy batches."""
    return (loaded() or os.environ.get("KERAS_BACKEND") or "tensorflow") == "tensorflow"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the backend; make TensorFlow's ops deterministic when it is the backend
    (XLA on CPU, which JAX uses, is deterministic already)."""
    keras = import_keras()
    keras.utils.set_random_seed(seed)
    name = keras.backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.experimental.enable_op_determinism()
        except (AttributeError, RuntimeError):  # not available or already initialised
            pass
    elif name == "torch":
        import torch

        torch.use_deterministic_algorithms(True, warn_only=True)


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
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
