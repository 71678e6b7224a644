"""Shared fixtures: config writers, the CLI runner, and one tiny trained run reused across tests."""

from __future__ import annotations

import json
import os
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
CONFIGS = ROOT / "configs"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


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
