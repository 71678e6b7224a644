"""`dlrun runs clean [RUNS_ROOT]` and `output.keep_checkpoints`: disk hygiene that never costs a resume.

Most run folders here are written by hand (no training): what matters is which files go, which stay,
and that a live run (its folder lock held) and every run that may still be resumed keep theirs.
"""

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import yaml

from dlrun.training import cleanup
from tests.conftest import invoke, run_folders, subprocess_env, tiny_config, write_completed_run

TEMP = ".history.json.ab12cd34.tmp"  # the name dlrun.atomic gives a temp file


def _run(root, name: str, status: str, checkpoints: bool = True, temp: bool = True, **record_fields):
    folder = write_completed_run(root / name, name)
    record = json.loads((folder / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps({**record, "status": status, **record_fields}))
    if checkpoints:
        (folder / "checkpoints").mkdir()
        (folder / "checkpoints" / "last.npz").write_bytes(b"x" * 3000)
        (folder / "checkpoints" / "previous.npz").write_bytes(b"x" * 2000)
        (folder / "checkpoints" / "best.keras").write_bytes(b"x" * 500)  # a result (eval --checkpoint best), not resume state
    if temp:
        (folder / TEMP).write_bytes(b"x" * 100)
    return folder


@pytest.fixture
def root(tmp_path):
    """A runs root with one run of each kind, a K-fold run's folds, a sweep's trial, and a feature cache."""
    runs_root = tmp_path / "runs"
    cache = tmp_path / "feature_cache"  # the default cache root: beside the runs root
    used, unused, incomplete, fresh = (cache / key for key in ("used", "unused", "incomplete", "fresh"))
    for entry in (used, unused):
        entry.mkdir(parents=True)
        (entry / "train.npz").write_bytes(b"f" * 4000)
        (entry / "identity.json").write_text("{}")
    for entry in (incomplete, fresh):  # no identity.json: a crash left it, or a run is writing it now
        entry.mkdir(parents=True)
        (entry / "train.npz").write_bytes(b"f" * 1000)
    day_old = time.time() - 2 * cleanup.STALE_SECONDS
    for path in (incomplete, incomplete / "train.npz"):
        os.utime(path, (day_old, day_old))
    _run(runs_root, "completed", "completed", feature_cache=str(used))
    for status in ("interrupted", "failed", "running"):  # `running` with no live process: a crashed run
        _run(runs_root, status, status)
    kfold = _run(runs_root, "kfold", "completed", checkpoints=False, temp=False)
    for fold in ("1", "final"):
        (kfold / "folds" / fold / "checkpoints").mkdir(parents=True)
        (kfold / "folds" / fold / "checkpoints" / "last.npz").write_bytes(b"k" * 1000)
    sweep = _run(runs_root, "sweep", "interrupted", checkpoints=False, temp=False)
    _run(sweep / "trials", "trial", "completed", temp=False)  # a nested run: judged by its own status
    return runs_root


def _files(root):
    return {str(path.relative_to(root.parent)) for path in root.parent.rglob("*") if path.is_file()}


GOING = {
    "runs/completed/checkpoints/last.npz",
    "runs/completed/checkpoints/previous.npz",
    "runs/kfold/folds/1/checkpoints/last.npz",
    "runs/kfold/folds/final/checkpoints/last.npz",
    "runs/sweep/trials/trial/checkpoints/last.npz",
    "runs/sweep/trials/trial/checkpoints/previous.npz",
    *(f"runs/{name}/{TEMP}" for name in ("completed", "interrupted", "failed", "running")),
    "feature_cache/unused/train.npz",
    "feature_cache/unused/identity.json",
    "feature_cache/incomplete/train.npz",
}


def test_a_dry_run_lists_what_would_go_with_sizes_and_deletes_nothing(root):
    before = _files(root)
    result = invoke("runs", "clean", root)
    assert result.exit_code == 0, result.output
    assert _files(root) == before
    lines = result.output.splitlines()
    assert f"   3.0 kB  {root / 'completed/checkpoints/last.npz'}  (resume checkpoint of a completed run)" in lines
    assert f"    100 B  {root / 'failed' / TEMP}  (temp file of a crashed write)" in lines
    assert f"   4.0 kB  {root.parent / 'feature_cache/unused'}  (feature-cache entry no run uses)" in lines
    assert f"   1.0 kB  {root.parent / 'feature_cache/incomplete'}  (incomplete feature-cache entry, untouched for a day)" in lines
    total = 3000 + 2000 + 1000 * 2 + 3000 + 2000 + 4 * 100 + 4002 + 1000
    assert lines[-1] == f"would remove 12 item(s), {cleanup.human_size(total)}: pass --yes to delete them"


def test_yes_deletes_exactly_the_listed_things(root):
    before = _files(root)
    result = invoke("runs", "clean", root, "--yes")
    assert result.exit_code == 0, result.output
    assert before - _files(root) == GOING
    assert result.output.splitlines()[-1].startswith("removed 12 item(s), ")
    assert (root / "completed" / "checkpoints" / "best.keras").exists()  # the best model is a result: kept
    assert (root / "interrupted" / "checkpoints" / "last.npz").exists()  # still needed to --resume
    assert not (root.parent / "feature_cache" / "unused").exists() and (root.parent / "feature_cache" / "used").is_dir()
    again = invoke("runs", "clean", root)
    assert again.exit_code == 0 and again.output == f"nothing to clean under {root}\n"


@contextlib.contextmanager
def _held_by_another_process(folder):
    """The run folder's lock as the process training it holds it (a lock of its own, which the in-process
    CLI's release of this process's run locks does not touch)."""
    handle = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(handle, fcntl.LOCK_EX)
    try:
        yield
    finally:
        os.close(handle)


def test_a_live_runs_temp_files_are_never_touched(root):
    with _held_by_another_process(root / "running"):
        listed = invoke("runs", "clean", root)
        assert str(root / "running" / TEMP) not in listed.output
        result = invoke("runs", "clean", root, "--yes")
        assert result.exit_code == 0, result.output
        assert (root / "running" / TEMP).exists()
    assert (root / "running" / TEMP).exists()
    assert not (root / "failed" / TEMP).exists()


def test_a_run_locked_between_listing_and_deleting_keeps_its_files(root):
    items = cleanup.plan(root)
    with _held_by_another_process(root / "completed"):  # a --resume started meanwhile
        removed = cleanup.remove(items)
    assert (root / "completed" / "checkpoints" / "last.npz").exists()
    assert all(item.run != root / "completed" for item in removed)


def test_a_missing_runs_root_is_an_error_exit_2(tmp_path):
    result = invoke("runs", "clean", tmp_path / "nowhere")
    assert result.exit_code == 2
    assert f"error: RUNS_ROOT: received '{tmp_path / 'nowhere'}', which is not a folder; expected the folder" in result.stderr


def test_human_sizes():
    assert [cleanup.human_size(size) for size in (0, 999, 1000, 1_234_567, 5 * 10**9)] == ["0 B", "999 B", "1.0 kB", "1.2 MB", "5.0 GB"]


def test_keep_checkpoints_is_a_visible_default(tmp_path):
    from dlrun import config as config_module

    loaded = config_module.load(tiny_config(tmp_path / "c.yaml", tmp_path / "runs"))
    assert loaded.output.keep_checkpoints is True
    assert "keep_checkpoints: true" in config_module.to_yaml(loaded)
    bad = invoke("train", tmp_path / "c.yaml", "--set", "output.keep_checkpoints=sometimes")
    assert bad.exit_code == 2 and "output.keep_checkpoints" in bad.stderr and not (tmp_path / "runs").exists()


def test_a_cleaned_completed_run_still_refuses_resume_cleanly(trained_run, tmp_path, keras):
    copy = shutil.copytree(trained_run, tmp_path / "runs" / trained_run.name)
    assert (copy / "checkpoints" / "last.npz").exists() and (copy / "checkpoints" / "best.keras").exists()
    result = invoke("runs", "clean", tmp_path / "runs", "--yes")
    assert result.exit_code == 0, result.output
    assert not (copy / "checkpoints" / "last.npz").exists() and (copy / "checkpoints" / "best.keras").exists()
    before = (copy / "run.json").read_bytes()
    resumed = invoke("train", "--resume", copy)
    assert resumed.exit_code == 0, resumed.output
    assert "already completed; nothing to do" in resumed.output and "Traceback" not in resumed.output
    assert (copy / "run.json").read_bytes() == before
    evaluated = invoke("eval", copy, "--checkpoint", "best")  # the best model is still there to evaluate
    assert evaluated.exit_code == 0, evaluated.output


@pytest.mark.slow
def test_keep_checkpoints_false_deletes_them_when_the_run_completes(tmp_path):
    config = tiny_config(tmp_path / "c.yaml", tmp_path / "runs")
    result = invoke(
        "train",
        config,
        "--set",
        "output.keep_checkpoints=false",
        "--set",
        "train.callbacks=[{name: checkpoint, monitor: val_loss}]",
        "--set",
        "data.validation_split=0.2",
    )
    assert result.exit_code == 0, result.output
    (folder,) = run_folders(tmp_path / "runs")
    assert json.loads((folder / "run.json").read_text())["status"] == "completed"
    assert not (folder / "checkpoints" / "last.npz").exists() and not (folder / "checkpoints" / "previous.npz").exists()
    assert (folder / "checkpoints" / "best.keras").exists()
    assert yaml.safe_load((folder / "config.yaml").read_text())["output"]["keep_checkpoints"] is False
    kept = invoke("train", config)  # the default keeps them
    assert kept.exit_code == 0, kept.output
    assert (run_folders(tmp_path / "runs")[-1] / "checkpoints" / "last.npz").exists()


@pytest.mark.slow
def test_keep_checkpoints_false_in_kfold_deletes_every_folds_once_completed(tmp_path):
    config = tiny_config(tmp_path / "c.yaml", tmp_path / "runs", task="regression")
    result = invoke("kfold", config, "--k", "2", "--set", "output.keep_checkpoints=false")
    assert result.exit_code == 0, result.output
    (folder,) = run_folders(tmp_path / "runs")
    assert list(folder.rglob("*.npz")) == []
    assert (folder / "folds" / "1" / "history.json").exists() and (folder / "model.keras").exists()


def test_runs_clean_imports_nothing_heavy(root):
    """Cleaning is file work: no TensorFlow, Keras, matplotlib or scikit-learn import (it stays fast)."""
    probe = (
        "import sys\nfrom dlrun import cli\nsys.argv = ['dlrun', *sys.argv[1:]]\n"
        "try:\n    cli.main()\nexcept SystemExit as stop:\n    print('EXIT=' + str(stop.code), file=sys.stderr)\n"
        "print('HEAVY=' + ','.join(name for name in ('tensorflow', 'keras', 'matplotlib', 'sklearn') "
        "if name in sys.modules), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, "runs", "clean", str(root)], capture_output=True, text=True, timeout=60, env=subprocess_env()
    )
    assert "HEAVY=\n" in result.stderr and "would remove 12 item(s)" in result.stdout, result.stderr
