import json
import os

import pytest

from dlrun import atomic, errors, runs
from dlrun.runs import folder as run_folder


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
    monkeypatch.setattr(run_folder.time, "monotonic", lambda: clock[0])
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


@pytest.mark.parametrize("fails_in", ["write", "fsync", "replace", "writer"])
def test_atomic_write_leaves_old_file_when_writing_fails(tmp_path, monkeypatch, fails_in):
    """A write that fails once its temp file exists (half the bytes written, the flush to disk, the rename;
    or a library writer such as model.save) leaves the old file as it was and removes the temp file."""
    import errno
    import tempfile
    from pathlib import Path

    from tests.conftest import disk_full_while_writing

    target = tmp_path / "data.json"
    atomic.write_json(target, {"a": 1})
    temp_files = []
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args, **kwargs):
        handle, name = real_mkstemp(*args, **kwargs)
        temp_files.append(Path(name))
        return handle, name

    def full_disk(*args, **kwargs):
        assert temp_files and temp_files[-1].exists()  # the failure comes after the temp file was made
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    if fails_in == "write":  # half the bytes written, then the disk is full
        disk_full_while_writing(monkeypatch, "data.json")
    elif fails_in == "fsync":
        monkeypatch.setattr(os, "fsync", full_disk)
    elif fails_in == "replace":
        monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match="No space left on device"):
        if fails_in == "writer":
            atomic.write_with(target, lambda temp: (Path(temp).write_text('{"a": '), full_disk()))
        else:
            atomic.write_json(target, {"a": 2})
    assert len(temp_files) == 1 and not temp_files[0].exists()
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


# --- runs.recorded: how a run's block ends is written in run.json -------------------------------


def _started(tmp_path) -> runs.Run:
    run = runs.Run.create(tmp_path, "x")
    run.start(["dlrun", "x", "c.yaml"], seed=1, versions={})
    return run


def _record(run) -> dict:
    return json.loads((run.path / "run.json").read_text())  # valid JSON, whatever happened


def _stopped():
    return "after 2 completed part(s)", {"parts_completed": 2}


def test_recorded_interrupt_marks_the_run_interrupted_and_says_how_to_continue(tmp_path):
    run = _started(tmp_path)
    with pytest.raises(errors.Interrupted) as raised:
        with runs.recorded(run, "x", f"dlrun x --resume {run.path}", _stopped):
            raise KeyboardInterrupt
    assert str(raised.value) == (
        f"interrupted after 2 completed part(s); what was written so far is in {run.path} (continue with: dlrun x --resume {run.path})"
    )
    assert raised.value.exit_code == 130
    record = _record(run)
    assert record["status"] == "interrupted" and record["error"] == "interrupted by the user (Ctrl-C or SIGTERM)"
    assert record["parts_completed"] == 2 and "ended_at" in record and "traceback" not in record


def test_recorded_interrupt_without_stopped_says_only_where_and_how(tmp_path):
    run = _started(tmp_path)
    with pytest.raises(errors.Interrupted, match=r"^interrupted; what was written so far is in .*\(continue with: go on\)$"):
        with runs.recorded(run, "x", "go on"):
            raise KeyboardInterrupt
    assert _record(run)["status"] == "interrupted"


def test_recorded_sigterm_acts_like_ctrl_c_and_the_handler_is_put_back(tmp_path):
    import signal
    import time

    run = _started(tmp_path)
    outside = []  # SIGTERMs that reached the handler of the test's process, not the block's

    def before(signum, frame):
        outside.append(signum)

    previous = signal.signal(signal.SIGTERM, before)  # without the block's handler, SIGTERM lands here, not on pytest
    try:
        with pytest.raises(errors.Interrupted, match="interrupted after 2 completed part"):
            with runs.recorded(run, "x", f"dlrun x --resume {run.path}", _stopped):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(2)  # the block's handler raises KeyboardInterrupt here
        assert signal.getsignal(signal.SIGTERM) is before  # put back after the block
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert outside == []
    record = _record(run)
    assert record["status"] == "interrupted" and record["error"] == "interrupted by the user (Ctrl-C or SIGTERM)"
    assert record["parts_completed"] == 2


def test_recorded_dlrun_error_fails_the_run_with_its_message_and_is_raised_unchanged(tmp_path):
    run = _started(tmp_path)
    error = errors.DataError("data: received 3 samples; expected 4")
    with pytest.raises(errors.DataError) as raised:
        with runs.recorded(run, "x", "go on", _stopped):
            raise error
    assert raised.value is error and str(raised.value) == "data: received 3 samples; expected 4"
    record = _record(run)
    assert record["status"] == "failed" and record["error"] == "data: received 3 samples; expected 4"
    assert "traceback" not in record and "parts_completed" not in record  # a dlrun error is its own explanation


def test_recorded_dlrun_error_keeps_the_traceback_it_carries(tmp_path):
    run = _started(tmp_path)
    error = errors.TrainingFailed("final: RuntimeError: out of memory")
    error.traceback = "Traceback (most recent call last):\n  in a worker\nRuntimeError: out of memory\n"
    with pytest.raises(errors.TrainingFailed) as raised:
        with runs.recorded(run, "x", "go on"):
            raise error
    assert raised.value is error
    record = _record(run)
    assert record["status"] == "failed" and record["error"] == "final: RuntimeError: out of memory"
    assert record["traceback"] == error.traceback


def test_recorded_os_error_is_a_failed_write_of_the_runs_files(tmp_path):
    import errno

    run = _started(tmp_path)
    with pytest.raises(errors.TrainingFailed) as raised:
        with runs.recorded(run, "x", "go on"):
            raise OSError(errno.ENOSPC, "No space left on device", "/full/disk/history.json")
    message = "could not write the run's files: No space left on device (/full/disk/history.json)"
    assert str(raised.value) == message
    record = _record(run)
    assert record["status"] == "failed" and record["error"] == message
    assert "OSError: [Errno 28] No space left on device" in record["traceback"]


def test_recorded_os_error_without_a_file_names_the_run_folder(tmp_path):
    run = _started(tmp_path)
    with pytest.raises(errors.TrainingFailed) as raised:
        with runs.recorded(run, "x", "go on"):
            raise OSError("disk went away")
    assert str(raised.value) == f"could not write the run's files: disk went away ({run.path})"
    assert _record(run)["status"] == "failed" and _record(run)["error"] == str(raised.value)


def test_recorded_unexpected_error_fails_the_run_with_its_traceback(tmp_path):
    run = _started(tmp_path)

    def deep_inside_training():
        raise RuntimeError("out of memory")

    with pytest.raises(errors.TrainingFailed) as raised:
        with runs.recorded(run, "K-fold", "go on", _stopped):
            deep_inside_training()
    assert str(raised.value) == f"K-fold failed: RuntimeError: out of memory (see {run.path / 'run.json'})"
    assert isinstance(raised.value.__cause__, RuntimeError)
    record = _record(run)
    assert record["status"] == "failed" and record["error"] == "RuntimeError: out of memory"
    assert "deep_inside_training" in record["traceback"] and record["traceback"].rstrip().endswith("RuntimeError: out of memory")


def test_recorded_leaves_a_block_that_ends_normally_to_the_caller(tmp_path):
    run = _started(tmp_path)
    with runs.recorded(run, "x", "go on", _stopped):
        pass
    assert _record(run)["status"] == "running"  # a completed run is the caller's to finish


def test_refuse_links_in_names_a_linked_output_folder_or_a_link_inside_it(tmp_path):
    import re

    run = tmp_path / "run"
    (run / "export" / "nested").mkdir(parents=True)
    (run / "export" / "nested" / "model.keras").write_text("mine")
    runs.refuse_links_in(run, "export")  # a plain folder of plain files
    runs.refuse_links_in(run, "visualize")  # not there yet
    (run / "export" / "nested" / "link.keras").symlink_to(tmp_path / "elsewhere.keras")  # dangling: still a link
    with pytest.raises(errors.RunError) as raised:
        runs.refuse_links_in(run, "export")
    assert str(raised.value) == (
        f"{run / 'export' / 'nested' / 'link.keras'}: is a symbolic link; expected a run folder "
        "holding only its own files and folders (dlrun never writes through a link; remove it to continue)"
    )
    (run / "visualize").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(errors.RunError, match=f"^{re.escape(str(run / 'visualize'))}: is a symbolic link"):
        runs.refuse_links_in(run, "visualize")
