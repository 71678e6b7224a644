import json
import os

import pytest

from dlrun import atomic, errors, runs


def test_two_runs_in_the_same_second_get_distinct_folders(tmp_path):
    first = runs.Run.create(tmp_path, "same")
    second = runs.Run.create(tmp_path, "same")
    assert first.path != second.path
    assert first.path.name.endswith("_same") and second.path.name.startswith(first.path.name)


def test_folder_name_is_utc_timestamp_and_name(tmp_path):
    run = runs.Run.create(tmp_path, "exp.1")
    stamp, name = run.path.name.split("_", 1)
    assert name == "exp.1" and len(stamp) == 16 and stamp.endswith("Z")


def test_start_and_finish_record_status_and_timing(tmp_path):
    run = runs.Run.create(tmp_path, "rec")
    run.start(["dlrun", "train", "c.yaml"], seed=5, versions={"python": "3"})
    record = json.loads((run.path / "run.json").read_text())
    assert record["status"] == "running" and record["seed"] == 5 and "heartbeat_at" in record
    run.finish("failed", error="boom")
    record = json.loads((run.path / "run.json").read_text())
    assert record["status"] == "failed" and record["error"] == "boom" and record["duration_s"] >= 0


def test_a_throttled_heartbeat_writes_at_most_once_per_interval(tmp_path, monkeypatch):
    run = runs.Run.create(tmp_path, "beat")
    run.start(["dlrun", "kfold", "c.yaml"], seed=0, versions={})
    clock = [100.0]
    monkeypatch.setattr(runs.time, "monotonic", lambda: clock[0])
    run.heartbeat(at_most_every=1.0, epochs_completed=1)
    run.heartbeat(at_most_every=1.0, epochs_completed=2)  # 0 s later: nothing written
    assert json.loads((run.path / "run.json").read_text())["epochs_completed"] == 1
    clock[0] += 1.0
    run.heartbeat(at_most_every=1.0, epochs_completed=3)
    assert json.loads((run.path / "run.json").read_text())["epochs_completed"] == 3
    run.heartbeat(epochs_completed=4)  # unthrottled: always written
    assert json.loads((run.path / "run.json").read_text())["epochs_completed"] == 4


def test_unwritable_runs_root_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(errors.RunError, match="output.runs_root: cannot create"):
        runs.Run.create(blocker / "runs", "x")


def test_open_refuses_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(errors.RunError, match="not a dlrun run folder"):
        runs.Run.open(tmp_path)


def test_atomic_write_leaves_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "data.json"
    atomic.write_json(target, {"a": 1})
    with pytest.raises(TypeError):
        atomic.write_json(target, {"a": object()})
    assert json.loads(target.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["data.json"]  # no temp file left behind


def test_process_state_from_the_recorded_pid():
    import socket

    here = socket.gethostname()
    assert runs.process_state({"pid": os.getpid(), "host": {"name": here}}) == "alive"
    assert runs.process_state({"pid": _dead_pid(), "host": {"name": here}}) == "dead"
    assert runs.process_state({"pid": os.getpid(), "host": {"name": here + "-elsewhere"}}) == "unknown"


def _dead_pid() -> int:
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_atomic_files_get_ordinary_permissions(tmp_path):
    target = atomic.write_text(tmp_path / "shared.txt", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
