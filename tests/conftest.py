"""Shared fixtures and helpers: config writers, the CLI runner, trained runs reused across tests, fresh-process
runs on other backends, toy trial workers, hand-made run folders. Test modules import plain helpers from here,
never from one another."""

from __future__ import annotations

import collections
import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dlrun import cli

ROOT = Path(__file__).resolve().parents[1]
# Keras cannot switch backends inside a process: the suite (and the CLI subprocesses it starts) runs on
# TensorFlow, which `backend: auto` respects; tests/test_backends.py starts its JAX runs without this.
os.environ["KERAS_BACKEND"] = "tensorflow"
# JAX runs in the tests keep compiled programs in a cache of their own, not the user's ~/.cache/dlrun/jax.
os.environ.setdefault("DLRUN_JAX_CACHE", tempfile.mkdtemp(prefix="dlrun-test-jax-cache-"))
# `backend: auto` keeps its fixed rule in the suite (no lazy calibration: the same backend on every machine,
# and no minute spent timing backends); tests/test_calibration.py switches it on where it tests it. Any
# calibration a test stores goes to a cache folder of the suite's own, never the user's.
os.environ["DLRUN_CALIBRATE"] = "off"
os.environ.setdefault("DLRUN_CACHE_DIR", tempfile.mkdtemp(prefix="dlrun-test-cache-"))
CONFIGS = ROOT / "configs"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def keras():
    """Keras, imported through dlrun (on the suite's TensorFlow backend)."""
    from dlrun import backend

    return backend.import_keras()


def invoke(*args: str):
    """Run the CLI in-process; return the Click result (exit_code, stdout, stderr)."""
    return CliRunner().invoke(cli.app, [str(arg) for arg in args])


def run_cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m dlrun ARGS` in a subprocess (for start-up, signal and exit-code tests)."""
    return subprocess.run(
        [sys.executable, "-m", "dlrun", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def checkpoint_epochs(folder: Path) -> int | None:
    """The `epochs_completed` in `folder`'s latest training checkpoint, or None while it has none (or is being replaced)."""
    import zipfile

    import numpy as np

    try:
        with np.load(Path(folder) / "checkpoints" / "last.npz", allow_pickle=False) as stored:
            return int(stored["epochs_completed"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None


def sigkill_when(args: list, ready, timeout: float = 300) -> None:
    """Start `python -m dlrun ARGS`, poll `ready()` until it is true, then kill the process with SIGKILL
    (a crash: nothing in dlrun runs after it). Fails when the process ends first or `ready` never comes."""
    import signal

    with tempfile.TemporaryFile("w+") as stderr:  # a file, not a pipe: a full pipe would stall the process
        process = subprocess.Popen([sys.executable, "-m", "dlrun", *map(str, args)], stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + timeout
        try:
            while not ready():
                if process.poll() is not None:
                    stderr.seek(0)
                    pytest.fail(f"dlrun {args[0]} ended (exit {process.returncode}) before it was killed:\n{stderr.read()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"dlrun {args[0]}: not ready to be killed after {timeout} s")
                time.sleep(0.02)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


@pytest.fixture
def write_config(tmp_path):
    """Write YAML text (dedented) to a file in tmp_path and return its path."""

    def write(text: str, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


TINY = """\
name: tiny
seed: 3
data: {{name: synthetic, task: {task}, num_samples: 60, input_shape: [4]}}
model: {{architecture: mlp, units: [4]}}
train: {{epochs: {epochs}, batch_size: 16}}
output: {{runs_root: {root}}}
"""


def tiny_config(path: Path, root: Path, task: str = "multiclass", epochs: int = 2) -> Path:
    """A tiny synthetic MLP config whose runs go under `root`."""
    path.write_text(TINY.format(task=task, epochs=epochs, root=json.dumps(str(root))), encoding="utf-8")
    return path


def run_folders(root: Path) -> list[Path]:
    """The run folders directly under `root`, sorted (none when `root` does not exist)."""
    return sorted(path for path in Path(root).glob("*") if path.is_dir()) if Path(root).exists() else []


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """One run of the multiclass MLP smoke config (with checkpoint and early stopping), shared."""
    root = tmp_path_factory.mktemp("shared_runs")
    result = invoke("train", CONFIGS / "smoke" / "mlp_multiclass.yaml", "--set", f"output.runs_root={root}")
    assert result.exit_code == 0, result.output
    (folder,) = run_folders(root)
    return folder


@pytest.fixture(scope="session")
def quickstart_run(tmp_path_factory) -> Path:
    """configs/quickstart.yaml (digits convnet, preprocessing inside the model) cut to 3 epochs, shared."""
    root = tmp_path_factory.mktemp("quickstart_runs")
    result = invoke("train", CONFIGS / "quickstart.yaml", "--set", "train.epochs=3", "--set", f"output.runs_root={root}")
    assert result.exit_code == 0, result.output
    (folder,) = run_folders(root)
    return folder


# --- a tiny trained convnet (visualize, gradients) -------------------------------------------------

SMALL_CONVNET = """\
name: small
seed: 1
data: {{name: npz, path: {path}, validation_split: 0.2, rescale: 0.00392156862745098, class_names: [square, disk]}}
model: {{architecture: convnet, filters: [4, 8], padding: same, pool_last: false, reduce: global_average, dense_units: []}}
train: {{epochs: 1, batch_size: 16}}
output: {{runs_root: {root}}}
"""


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A tiny convnet trained one epoch through dlrun on generated 24x24 shape images, with 3 PNGs."""
    from dlrun.data import shapes

    folder = tmp_path_factory.mktemp("small")
    npz = shapes.write_npz(folder / "shapes.npz", train=40, test=8, size=24)
    config_file = folder / "small.yaml"
    config_file.write_text(SMALL_CONVNET.format(path=json.dumps(str(npz)), root=json.dumps(str(folder / "runs"))))
    result = invoke("train", config_file)
    assert result.exit_code == 0, result.output
    (run,) = run_folders(folder / "runs")
    images = shapes.write_images(folder / "images", count=3, size=24)
    return run, images


# --- interrupting and resuming a run ------------------------------------------------------------------

RESUMABLE_CONFIG = """\
name: resumable
seed: 11
data: {{name: synthetic, num_samples: {samples}, input_shape: [5], noise: 1.0}}
model: {{architecture: mlp, units: [8], dropout: 0.3}}
compile: {{optimizer: adam}}
train:
  epochs: {epochs}
  batch_size: 16
  callbacks: [{{name: early_stopping, patience: 50}}, {{name: checkpoint}}]
output: {{runs_root: {root}}}
"""


def write_resumable_config(tmp_path, name="config.yaml", epochs=6, samples=120):
    """A synthetic MLP config with dropout and a checkpoint callback, runs under tmp_path/runs."""
    path = tmp_path / name
    path.write_text(RESUMABLE_CONFIG.format(epochs=epochs, samples=samples, root=json.dumps(str(tmp_path / "runs"))))
    return path


def saved_weights(folder):
    """The weights of the model.keras saved in run `folder`."""
    from dlrun import backend

    keras = backend.import_keras()
    return keras.saving.load_model(folder / "model.keras", safe_mode=True).get_weights()


def interrupt_after(monkeypatch, epochs: int):
    """Make every run raise KeyboardInterrupt (as Ctrl-C does) once `epochs` epochs are recorded."""
    from dlrun.training import recorders

    original = recorders.RunRecorder.on_epoch_end

    def on_epoch_end(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch + 1 == epochs:
            raise KeyboardInterrupt

    monkeypatch.setattr(recorders.RunRecorder, "on_epoch_end", on_epoch_end)


def assert_same_run(folder, straight, epochs: int = 6):
    """Assert that resumed run `folder` has exactly (bit for bit) the history and the weights of the `straight` run."""
    import numpy as np

    resumed_history = json.loads((folder / "history.json").read_text())
    straight_history = json.loads((straight / "history.json").read_text())
    assert resumed_history["epoch"] == list(range(1, epochs + 1))
    assert resumed_history == straight_history  # every value, exactly
    resumed_weights, straight_weights = saved_weights(folder), saved_weights(straight)
    assert len(resumed_weights) == len(straight_weights)
    for resumed, expected in zip(resumed_weights, straight_weights):
        np.testing.assert_array_equal(resumed, expected)


# --- K-fold and the trial executors ---------------------------------------------------------------

KFOLD_CONFIG = """\
name: kf
seed: 5
data: {{name: synthetic, task: {task}, num_samples: 60, input_shape: [4], noise: 0.3}}
model: {{architecture: mlp, units: [4]}}
train: {{epochs: 3, batch_size: 16}}
output: {{runs_root: {root}}}
"""


def write_kfold_config(tmp_path, task="regression"):
    """A small synthetic MLP config for K-fold, written to tmp_path/TASK.yaml; runs go under tmp_path/runs."""
    path = tmp_path / f"{task}.yaml"
    path.write_text(KFOLD_CONFIG.format(task=task, root=json.dumps(str(tmp_path / "runs"))))
    return path


def toy_worker(payload, emit):
    """A trial worker for the executor tests (module level: pool and Ray workers import it by name)."""
    for epoch in range(1, payload["epochs"] + 1):
        emit({"type": "epoch", "epoch": epoch, "logs": {"loss": payload["value"] / epoch}})
    if payload.get("fail"):
        raise ValueError(f"trial {payload['value']} broke")
    time.sleep(payload.get("sleep", 0))
    return {"value": payload["value"], "pid": os.getpid()}


def layer_name_worker(payload, emit):
    """A pool worker that builds one Keras layer and returns its automatic name ("dense", or "dense_1" when
    the process's Keras still counts the layers of an earlier task)."""
    import keras

    return {"name": keras.layers.Dense(2).name, "pid": os.getpid()}


def fit_worker(payload, emit):
    """A pool worker that fits a tiny Keras model for one epoch (TensorFlow traces its train function) and
    returns how many custom gradients TensorFlow's registry held when the task started, and the process's
    Keras models and traced graphs then alive: what earlier tasks left behind."""
    import gc

    import keras
    import numpy as np

    from dlrun.trials import forget

    alive = collections.Counter(type(thing).__name__ for thing in gc.get_objects())
    left = {
        "custom_gradients": sum(name.startswith("CustomGradient-") for name in forget.gradient_registry()),
        "graphs": alive["FuncGraph"],
        "models": alive["Sequential"],
        "pid": os.getpid(),
    }
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((8, 3)), np.ones((8, 1)), epochs=1, verbose=0)
    return left


def no_child_process_within(seconds: float) -> bool:
    """Whether every child process has ended within `seconds` (idle workers exit on their own after a run)."""
    import multiprocessing

    deadline = time.monotonic() + seconds
    while multiprocessing.active_children():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


# --- the pretrained architecture --------------------------------------------------------------------

PRETRAINED_TEMPLATE = """\
name: pt
seed: 5
data: {{name: synthetic, task: binary, num_samples: 50, input_shape: {shape}, noise: 0.3}}
model: {model}
train: {{epochs: {epochs}, batch_size: 16}}
output: {{runs_root: {root}, plots: false}}
"""
# The start of a `model:` flow mapping: a VGG16 base with random weights and an 8-unit head; close it with "}".
VGG16_MODEL = "{architecture: pretrained, base: vgg16, weights: null, dense_units: [8], dropout: 0.0"


def write_pretrained_config(path, root, model: str, epochs: int = 2, shape: str = "[32, 32, 3]"):
    """A synthetic binary config with the `model:` section given as text, written to `path`; runs under `root`."""
    path.write_text(PRETRAINED_TEMPLATE.format(model=model, epochs=epochs, shape=shape, root=json.dumps(str(root))), encoding="utf-8")
    return path


# --- runs in fresh processes (other backends) ----------------------------------------------------------

# A tiny synthetic regression MLP (format with root=) that the backend tests train in fresh processes.
TINY_REGRESSION = """\
name: tiny
seed: 5
data: {{name: synthetic, task: regression, num_samples: 80, input_shape: [6]}}
model: {{architecture: mlp, units: [8]}}
train: {{epochs: 3, batch_size: 16}}
output: {{runs_root: {root}, plots: false}}
"""


def subprocess_env(**extra) -> dict:
    """A subprocess environment without the test suite's KERAS_BACKEND pin, dlrun on the path."""
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    return {**env, "PYTHONPATH": str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", ""), **extra}


def script_result(script: str, *args, env: dict | None = None) -> dict:
    """Run `python -c script ARGS` in a fresh process (tests importable, e.g. on another backend than the
    suite's); return the JSON it printed last on a line starting `RESULT `."""
    environment = subprocess_env(**(env or {}))
    environment["PYTHONPATH"] = f"{ROOT}{os.pathsep}{environment['PYTHONPATH']}"
    done = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, timeout=600, cwd=ROOT, env=environment
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout + done.stderr
    return json.loads(lines[-1].removeprefix("RESULT "))


def train_in_fresh_process(tmp_path: Path, name: str, *arguments: str, probe: str | None = None, env: dict | None = None) -> dict:
    """Train TINY_REGRESSION in a fresh process; return run.json plus the history (as `history`)."""
    root = tmp_path / name
    path = tmp_path / f"{name}.yaml"
    path.write_text(TINY_REGRESSION.format(root=json.dumps(str(root))))
    if probe is None:
        command = [sys.executable, "-m", "dlrun", "train", str(path), *arguments]
    else:
        command = [sys.executable, "-c", probe, "train", str(path), *arguments]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=subprocess_env(**(env or {})))
    assert result.returncode == 0, result.stderr[-3000:]
    (folder,) = run_folders(root)
    record = json.loads((folder / "run.json").read_text())
    record["history"] = json.loads((folder / "history.json").read_text())
    return record


# A fresh-process script (argv[1]: a config naming its backend, 3 epochs): trains straight, then a run
# interrupted (KeyboardInterrupt, as Ctrl-C) after epoch 2, then `--resume` of that run. Prints as JSON both
# histories, the backend, what the interrupted run left (whether the interrupt fired, its status, history
# epochs and checkpoint epoch), what the resume printed and which epochs it trained;
# `assert_resumed_after_epoch_2` checks them.
RESUME_SCRIPT = textwrap.dedent("""\
    import io, json, sys
    from pathlib import Path
    import numpy as np
    from rich.console import Console
    from dlrun import backend, config, errors
    from dlrun.training import resume
    from dlrun.training import trainer
    loaded = config.load(sys.argv[1])
    backend.activate(loaded)  # before keras_callbacks imports Keras
    from dlrun.training import recorders
    console = Console(file=io.StringIO())
    straight = trainer.train(loaded, console)
    original = recorders.RunRecorder.on_epoch_end
    def on_epoch_end(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt
    recorders.RunRecorder.on_epoch_end = on_epoch_end
    fired = False
    try:
        trainer.train(loaded, console)
    except errors.Interrupted:
        fired = True
    recorders.RunRecorder.on_epoch_end = original
    interrupted = sorted(p for p in Path(loaded.output.runs_root).iterdir() if p != straight.path)[0]
    with np.load(interrupted / "checkpoints" / "last.npz", allow_pickle=False) as stored:
        checkpoint_epoch = int(stored["epochs_completed"])
    stopped = {"fired": fired, "status": json.loads((interrupted / "run.json").read_text())["status"],
               "epochs": json.loads((interrupted / "history.json").read_text())["epoch"],
               "checkpoint_epoch": checkpoint_epoch}
    trained = []
    def counting(self, epoch, logs=None):
        trained.append(epoch + 1)
        return original(self, epoch, logs)
    recorders.RunRecorder.on_epoch_end = counting
    resume_console = Console(file=io.StringIO(), width=400)
    run, resolved = resume.prepare(interrupted, None, [], False)
    resumed = trainer.train(resolved, resume_console, resume_run=run)
    print(json.dumps({name: json.loads((folder.path / "history.json").read_text())
                      for name, folder in (("straight", straight), ("resumed", resumed))}
                     | {"backend": json.loads((resumed.path / "run.json").read_text())["backend"]["name"],
                        "stopped": stopped, "resume_output": resume_console.file.getvalue(), "trained": trained,
                        "same_folder": resumed.path == interrupted}))
""")


def assert_resumed_after_epoch_2(outcome: dict) -> None:
    """RESUME_SCRIPT's outcome: the interrupt fired after epoch 2 and left a checkpoint of epoch 2; the resume
    said "resuming after epoch 2" (the checkpoint's epoch), trained epoch 3 only, and ended with the straight
    run's history (every value exactly)."""
    assert outcome["stopped"] == {"fired": True, "status": "interrupted", "epochs": [1, 2], "checkpoint_epoch": 2}
    assert f"resuming after epoch {outcome['stopped']['checkpoint_epoch']} (state from checkpoints/last.npz)" in outcome["resume_output"]
    assert outcome["trained"] == [3] and outcome["same_folder"]
    assert outcome["resumed"]["epoch"] == [1, 2, 3]
    assert sorted(outcome["resumed"]) == sorted(outcome["straight"])
    assert outcome["resumed"] == outcome["straight"]  # every value, exactly


def review_tokens(rows: int = 48, length: int = 400, tokens: int = 10_000):
    """IMDB-shaped input: word indices < tokens, repeated words, and zero padding at the end of rows."""
    import numpy as np

    rng = np.random.default_rng(7)
    sequences = rng.zipf(1.3, size=(rows, length)) % tokens  # common words repeat, as in text
    for row, used in enumerate(rng.integers(20, length, size=rows)):
        sequences[row, used:] = 0
    return sequences.astype("int32")


# --- run folders written by hand ----------------------------------------------------------------------


def write_completed_run(path: Path, name: str = "digits", config: str = "name: digits\nseed: 1\n", plots: bool = False) -> Path:
    """A completed run folder written by hand: run.json, config.yaml, history.json, metrics.json."""
    path.mkdir(parents=True)
    record = {
        "name": name,
        "status": "completed",
        "started_at": "2026-01-02T10:00:00Z",
        "ended_at": "2026-01-02T10:01:15Z",
        "duration_s": 75.4,
        "metrics": ["accuracy"],
        "command": ["dlrun", "train", name],
        "best_epoch": {"monitor": "val_loss", "epoch": 2, "value": 0.6},
    }
    (path / "run.json").write_text(json.dumps(record))
    (path / "config.yaml").write_text(config)
    (path / "history.json").write_text(
        json.dumps(
            {
                "epoch": [1, 2, 3],
                "loss": [1.0, 0.5, 0.4],
                "val_loss": [0.9, 0.6, 0.7],
                "accuracy": [0.5, 0.8, 0.9],
                "val_accuracy": [0.6, 0.85, 0.8],
            }
        )
    )
    (path / "metrics.json").write_text(
        json.dumps(
            {
                "split": "test",
                "samples": 20,
                "metrics": {"accuracy": 0.83, "loss": 0.65},
                "baseline": {"majority_class": 0, "majority_class_accuracy": 0.55, "random_guess_accuracy": 0.5},
                "confusion_matrix": {"labels": ["cat", "dog"], "matrix": [[9, 2], [1, 8]]},
            }
        )
    )
    if plots:
        (path / "plots").mkdir()
        for name_ in ("loss", "accuracy", "confusion_matrix_test"):
            (path / "plots" / f"{name_}.png").write_bytes(tiny_png())
    return path


def tiny_png() -> bytes:
    """A valid 1x1 PNG, so tests that need no matplotlib still embed real images."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def record_trained_epochs(patch) -> list[tuple[str, int]]:
    """Wrap the one training function's recorder (on `patch`, a monkeypatch context) so that every epoch
    trained appends (its folder's name, epoch); returns that list, to prove a resume trained only the
    epochs after its checkpoint."""
    from dlrun.training import recorders

    original = recorders.RunRecorder.on_epoch_end
    seen: list[tuple[str, int]] = []

    def on_epoch_end(self, epoch, logs=None):
        seen.append((self.folder.name, epoch + 1))
        return original(self, epoch, logs)

    patch.setattr(recorders.RunRecorder, "on_epoch_end", on_epoch_end)
    return seen


@pytest.fixture
def ctrl_c_raises_keyboard_interrupt():
    """Ctrl-C raises KeyboardInterrupt, as in a fresh Python process (a test runner, such as mutmut, may have
    replaced the handler): for tests that send SIGINT to their own process."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def disk_full_while_writing(patch, name: str, on_write: int = 1) -> list[Path]:
    """Make the `on_write`-th atomic write of a file called `name` find the disk full half-way through, inside
    `atomic.write_bytes` or `atomic.swap_in` (on `patch`, a monkeypatch context): once its temp (or spare) file
    exists, half the bytes are
    written to it, then the write raises OSError(ENOSPC), as a full disk does. Returns the temp files of
    `name` that were opened, so a test can check none is left."""
    real_fdopen = os.fdopen
    opened: list[Path] = []

    class HalfWritten:
        def __init__(self, stream):
            self.stream = stream

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.stream.close()

        def write(self, data):
            self.stream.write(data[: len(data) // 2])
            self.stream.flush()
            raise OSError(errno.ENOSPC, "No space left on device", str(opened[-1]))

    def fdopen(handle, *args, **kwargs):
        stream = real_fdopen(handle, *args, **kwargs)
        if isinstance(handle, int):
            path = Path(os.readlink(f"/proc/self/fd/{handle}"))
            if path.name.startswith(f".{name}.") and path.name.endswith(".tmp"):
                opened.append(path)
                if len(opened) == on_write:
                    return HalfWritten(stream)
        return stream

    # the quick per-epoch rewrite (`atomic.swap_in`) writes its spare file (".<name>.previous.tmp") with os.write
    real_open, real_write = os.open, os.write
    armed: set[int] = set()

    def open_(path, flags, *args, **kwargs):
        descriptor = real_open(path, flags, *args, **kwargs)
        base = os.path.basename(os.fspath(path))
        if flags & os.O_WRONLY and base.startswith(f".{name}.") and base.endswith(".tmp"):
            opened.append(Path(path))
            if len(opened) == on_write:
                armed.add(descriptor)
        return descriptor

    def write(descriptor, data):
        if descriptor in armed:
            armed.discard(descriptor)
            real_write(descriptor, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device", str(opened[-1]))
        return real_write(descriptor, data)

    patch.setattr(os, "fdopen", fdopen)
    patch.setattr(os, "open", open_)
    patch.setattr(os, "write", write)
    return opened


# --- in CI, a dependency .ci/run installs must not be skipped silently ------------------------------
# .ci/run names in $DLRUN_REQUIRE what it installs (the Debian Chromium and Fashion-MNIST packages, the
# torch CPU wheel); a test skipped for lack of one of them then fails the session instead of passing it.
REQUIRED_DEPENDENCIES = {
    "chromium": "chromium",
    "fashion-mnist": "fashion-mnist",
    "torch": "torch",
    "postgresql": "postgresql",
}  # name -> word in the skip reason
_required = set(os.environ.get("DLRUN_REQUIRE", "").split())
_missing_required: list[str] = []


def pytest_runtest_logreport(report):
    if not report.skipped or not _required:
        return
    reason = str(report.longrepr).lower()
    for name, word in REQUIRED_DEPENDENCIES.items():
        if name in _required and word in reason:
            _missing_required.append(f"{report.nodeid}: skipped although $DLRUN_REQUIRE names {name} ({reason[-160:]})")


def pytest_sessionfinish(session, exitstatus):
    if _missing_required:
        print("\n".join(["", "dependencies .ci/run installs were missing:", *_missing_required]))
        session.exitstatus = 1


# --- a real headless browser (tests/test_report.py, tests/test_docs.py) -------------------------------------
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_executable() -> str | None:
    candidates = [
        os.environ.get("DLRUN_CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        shutil.which("google-chrome"),
    ]
    return next((path for path in candidates if path and Path(path).is_file()), None)


@pytest.fixture(scope="module")
def browser():
    """Playwright driving the system Chromium (never Playwright's own download: it is offline here); the report's
    and the docs site's browser tests use it."""
    executable = chromium_executable()
    if executable is None:
        pytest.skip("no Chromium here (install the Debian package `chromium`; .ci/run does so where apt-get exists)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()
