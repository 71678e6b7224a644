"""Adversarial faults of the one run lifecycle (issue 14): two processes on one run folder, symlinks
planted in a run folder, `--resume --force` with a new optimizer setting, a kill during the first
checkpoint write, a NaN in the first epoch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from dlrun import atomic
from tests.conftest import interrupt_after, invoke, run_folders, tiny_config, write_completed_run

LOCK_HOLDER = textwrap.dedent("""\
    import fcntl, os, sys, time
    handle = os.open(os.path.join(sys.argv[1], ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(handle, fcntl.LOCK_EX)
    os.ftruncate(handle, 0)
    os.write(handle, f"{os.getpid()}\\n".encode())
    print("held", flush=True)
    time.sleep(120)
""")


def _stopped_run(tmp_path, kind: str):
    """A hand-made run folder of `kind` (train, kfold, sweep) that --resume would continue."""
    folder = write_completed_run(tmp_path / "R")
    tiny_config(folder / "config.yaml", tmp_path / "runs")
    record = json.loads((folder / "run.json").read_text())
    record.update(status="interrupted", pid=1)
    (folder / "run.json").write_text(json.dumps(record))
    if kind == "kfold":
        (folder / "kfold.json").write_text(json.dumps({"status": "interrupted", "folds": []}))
    if kind == "sweep":
        (folder / "sweep.json").write_text(json.dumps({"status": "interrupted", "trials": []}))
    return folder


def _contents(folder):
    return {
        str(path.relative_to(folder)): (path.read_bytes() if path.is_file() and not path.is_symlink() else None)
        for path in folder.rglob("*")
    }


@pytest.mark.parametrize("kind", ["train", "kfold", "sweep"])
def test_a_run_folder_locked_by_another_process_is_refused_and_untouched(tmp_path, kind):
    folder = _stopped_run(tmp_path, kind)
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = _contents(folder)
        result = invoke(kind, "--resume", folder)
        assert result.exit_code == 2, result.output
        assert f"is being used by process {holder.pid}" in result.stderr
        assert _contents(folder) == before  # nothing written
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()  # else the pipe is closed by the garbage collector, with a ResourceWarning


def test_two_resumes_of_one_run_the_second_is_refused_while_the_first_loads_keras(tmp_path):
    folder = _stopped_run(tmp_path, "train")
    first = subprocess.Popen(
        [sys.executable, "-m", "dlrun", "train", "--resume", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        lock = folder / ".lock"
        while not (lock.exists() and lock.read_text().strip() == str(first.pid)):
            assert first.poll() is None, "the first resume ended without locking the run folder"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        result = invoke("train", "--resume", folder)  # while the first is still importing Keras
        assert result.exit_code == 2, result.output
        assert f"is being used by process {first.pid}" in result.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()


# --- symlinks planted in a run folder -------------------------------------------------------------------


def test_atomic_writes_replace_a_planted_symlink_and_never_write_through_it(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    for name, write in (
        ("a.json", lambda path: atomic.write_json(path, {"a": 1})),
        ("m.keras", lambda path: atomic.write_with(path, lambda temp: temp.write_text("model"))),
    ):
        link = tmp_path / "run" / name
        link.parent.mkdir(exist_ok=True)
        link.symlink_to(outside)
        write(link)
        assert not link.is_symlink() and link.is_file()
        assert outside.read_text() == "precious"


@pytest.mark.parametrize("kind", ["train", "kfold"])
@pytest.mark.parametrize("planted", ["model.keras", "checkpoints/best.keras", "plots"])
def test_resume_refuses_a_run_folder_holding_a_symlink(tmp_path, planted, kind):
    folder = _stopped_run(tmp_path, kind)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("x")
    link = folder / planted
    link.parent.mkdir(parents=True, exist_ok=True)
    if (link).exists():
        (link / "loss.png").unlink() if link.is_dir() else link.unlink()
    link.symlink_to(outside if planted == "plots" else outside / "precious")
    result = invoke(kind, "--resume", folder)
    assert result.exit_code == 2, result.output
    assert f"{link}: is a symbolic link" in result.stderr
    assert sorted(os.listdir(outside)) == ["precious"] and (outside / "precious").read_text() == "x"


LINKED_OUTPUTS = {  # a command that writes into RUN_DIR/<folder>, and the links planted there
    "visualize curves": ("visualize", ["visualize", "curves", "{run}"], ["visualize", "visualize/curves"]),
    "visualize activations": (
        "visualize",
        ["visualize", "activations", "--run", "{run}", "--image", "{image}"],
        ["visualize", "visualize/activations"],
    ),
    "export": ("export", ["export", "{run}", "--format", "keras"], ["export", "export/model.keras"]),
}
LINK_CASES = [(command, planted) for command, (_, _, links) in LINKED_OUTPUTS.items() for planted in links]


@pytest.mark.parametrize(("command", "planted"), LINK_CASES, ids=[f"{c}-{p}" for c, p in LINK_CASES])
def test_outputs_never_follow_a_symlinked_folder_planted_in_the_run(tmp_path, small_run, command, planted):
    """`visualize` and `export` write into RUN_DIR/visualize and RUN_DIR/export: a link planted there (the
    folder, or a folder or file inside it) is refused (exit 2, naming it) before anything is written, and
    the place it points to stays untouched. With --out elsewhere the same command works."""
    import shutil

    run_dir, images = small_run
    run = shutil.copytree(run_dir, tmp_path / "run", symlinks=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    link = run / planted
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside if "." not in link.name else outside / "model.keras")
    args = [arg.format(run=run, image=images[0]) for arg in LINKED_OUTPUTS[command][1]]
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert (
        result.stderr == f"error: {link}: is a symbolic link; expected a run folder holding only its own files and "
        "folders (dlrun never writes through a link; remove it to continue)\n"
    )
    assert os.listdir(outside) == [] and link.is_symlink()
    elsewhere = tmp_path / ("elsewhere.keras" if command == "export" else "elsewhere")
    assert invoke(*args, "--out", elsewhere).exit_code == 0
    assert os.listdir(outside) == []


# --- --resume --force with another optimizer setting -------------------------------------------------------


def _interrupted_tiny_run(tmp_path, monkeypatch):
    path = tiny_config(tmp_path / "c.yaml", tmp_path / "runs", epochs=3)
    with monkeypatch.context() as patch:
        interrupt_after(patch, 1)
        assert invoke("train", path).exit_code == 130
    (folder,) = run_folders(tmp_path / "runs")
    return folder


def test_resume_force_with_a_new_learning_rate_trains_with_it(tmp_path, monkeypatch):
    folder = _interrupted_tiny_run(tmp_path, monkeypatch)
    from dlrun.training import recorders

    seen = []
    original = recorders.RunRecorder.on_epoch_begin

    def on_epoch_begin(self, epoch, logs=None):
        seen.append((epoch + 1, float(self.model.optimizer.learning_rate)))
        return original(self, epoch, logs)

    monkeypatch.setattr(recorders.RunRecorder, "on_epoch_begin", on_epoch_begin)
    result = invoke("train", "--resume", folder, "--force", "--set", "compile.optimizer.learning_rate=0.5")
    assert result.exit_code == 0, result.output
    assert seen == [(2, 0.5), (3, 0.5)]


def test_resume_force_with_another_optimizer_is_refused(tmp_path, monkeypatch):
    folder = _interrupted_tiny_run(tmp_path, monkeypatch)
    before = _contents(folder)
    result = invoke("train", "--resume", folder, "--force", "--set", "compile.optimizer=adam")
    assert result.exit_code == 2, result.output
    assert "compile.optimizer.name: the run trained with 'rmsprop', now 'adam'" in result.stderr
    assert _contents(folder) == before


# --- a kill during the first checkpoint write; a NaN in the first epoch -----------------------------------

KILLED_IN_FIRST_CHECKPOINT = textwrap.dedent("""\
    import os, signal, sys
    from dlrun import cli
    replace = os.replace
    def killed_on_the_checkpoint(source, destination):
        if str(destination).endswith("last.npz"):
            os.kill(os.getpid(), signal.SIGKILL)  # the temp file is written, not yet renamed
        return replace(source, destination)
    os.replace = killed_on_the_checkpoint
    sys.argv = ["dlrun", *sys.argv[1:]]
    cli.main()
""")


def test_kill_during_the_first_checkpoint_write_resumes_from_the_start(tmp_path):
    path = tiny_config(tmp_path / "c.yaml", tmp_path / "runs", epochs=3)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_IN_FIRST_CHECKPOINT, "train", str(path)], capture_output=True, text=True, timeout=300
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    (folder,) = run_folders(tmp_path / "runs")
    assert not (folder / "checkpoints" / "last.npz").exists()
    assert [name for name in os.listdir(folder / "checkpoints") if name.endswith(".tmp")]  # the partial write
    result = invoke("train", "--resume", folder)
    assert result.exit_code == 0, result.output
    assert "resuming from the start (no epoch was completed)" in result.stdout
    assert not [path for path in folder.rglob("*") if ".tmp" in path.name]  # stale temp files cleaned
    assert invoke("train", path).exit_code == 0
    straight = next(run for run in run_folders(tmp_path / "runs") if run != folder)
    resumed_history = json.loads((folder / "history.json").read_text())
    assert resumed_history["epoch"] == [1, 2, 3]
    assert resumed_history == json.loads((straight / "history.json").read_text())


def test_nan_in_the_first_epoch_does_not_point_at_a_checkpoint_that_does_not_exist(tmp_path):
    path = tiny_config(tmp_path / "c.yaml", tmp_path / "runs", task="regression", epochs=3)
    result = invoke("train", path, "--set", "compile.optimizer={name: sgd, learning_rate: 1e12}")
    assert result.exit_code == 1
    assert "loss became" in result.stderr and "at epoch 1" in result.stderr
    assert "last.npz" not in result.stderr
    assert "no epoch completed: no state was kept" in result.stderr
