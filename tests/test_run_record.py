"""What `runs.folder` writes into run.json and says about a run folder, exactly: the start record, resumes and
their durations, the lock, the messages for folders that are not runs, the versions and git state recorded."""

import datetime
import fcntl
import json
import os
import subprocess
import sys
import types

import pytest

from dlrun import errors, runs
from dlrun.runs import folder as run_folder


@pytest.fixture(autouse=True)
def _no_lock_left():
    yield
    runs.release_locks()


def _clock(monkeypatch, start: str = "2026-01-02T03:04:05+00:00"):
    """A settable UTC clock for run_folder.utc_now; returns a function that moves it on by `seconds`."""
    now = [datetime.datetime.fromisoformat(start)]
    monkeypatch.setattr(run_folder, "utc_now", lambda: now[0])

    def advance(seconds: float) -> None:
        now[0] += datetime.timedelta(seconds=seconds)

    return advance


def _record(run) -> dict:
    return json.loads((run.path / "run.json").read_text())


def test_start_records_how_the_run_was_made(tmp_path, monkeypatch):
    _clock(monkeypatch)
    monkeypatch.setattr(run_folder, "git_state", lambda: {"commit": "abc", "dirty": False})
    run = runs.Run.create(tmp_path, "exp")
    assert run.path.name == "20260102T030405Z_exp"
    run.start(["dlrun", "train", "c.yaml"], seed=7, versions={"python": "3"}, extra={"kind": "kfold"})
    record = _record(run)
    assert record == {
        "status": "running",
        "name": "exp",
        "started_at": "2026-01-02T03:04:05.000Z",
        "format": 2,
        "command": ["dlrun", "train", "c.yaml"],
        "argv": sys.argv,
        "working_directory": os.getcwd(),
        "seed": 7,
        "versions": {"python": "3"},
        "git": {"commit": "abc", "dirty": False},
        "host": {"name": record["host"]["name"], "platform": record["host"]["platform"], "cpus": os.cpu_count()},
        "heartbeat_at": "2026-01-02T03:04:05.000Z",
        "pid": os.getpid(),
        "kind": "kfold",
    }
    run.start(None, seed=7, versions={})
    assert _record(run)["command"] == sys.argv


def test_resume_keeps_the_earlier_outcome_and_finish_adds_up_every_segment(tmp_path, monkeypatch):
    advance = _clock(monkeypatch)
    run = runs.Run.create(tmp_path, "exp")
    run.start(["dlrun", "train"], seed=1, versions={})
    advance(4)
    run.finish("interrupted", error="Ctrl-C", traceback="tb")  # segment 1: 4 s
    assert _record(run)["duration_s"] == 4.0
    advance(6)
    run.resume(["dlrun", "train", "--resume"], epochs_completed=3)
    record = _record(run)
    assert record["status"] == "running" and record["epochs_completed"] == 3 and record["pid"] == os.getpid()
    assert "ended_at" not in record and "duration_s" not in record and "error" not in record and "traceback" not in record
    assert record["resumes"] == [
        {
            "at": "2026-01-02T03:04:15.000Z",
            "after_epoch": 3,
            "command": ["dlrun", "train", "--resume"],
            "previous": {
                "status": "interrupted",
                "ended_at": "2026-01-02T03:04:09.000Z",
                "duration_s": 4.0,
                "heartbeat_at": "2026-01-02T03:04:05.000Z",
                "error": "Ctrl-C",
            },
        }
    ]
    advance(2)
    run.heartbeat(epochs_completed=4)  # then killed: this segment is counted up to its last heartbeat
    advance(10)
    run.resume(None, epochs_completed=4)
    assert _record(run)["resumes"][1]["command"] == sys.argv
    advance(5)
    run.finish("completed")
    assert _record(run)["duration_s"] == 4.0 + 2.0 + 5.0
    assert _record(run)["ended_at"] == "2026-01-02T03:04:32.000Z"


def test_resume_names_this_process_and_host_as_the_run_s_writer(tmp_path, monkeypatch):
    """A run last written by another process on another host: once resumed, run.json names this process and
    host (what `dlrun runs` reads to tell a live run from a crashed one) and a heartbeat of the resume's moment."""
    import socket

    advance = _clock(monkeypatch)
    earlier = {
        "status": "interrupted",
        "name": "exp",
        "started_at": "2026-01-02T03:04:05.000Z",
        "pid": 4242,
        "host": {"name": "elsewhere"},
        "host_name": "elsewhere",
        "heartbeat_at": "2026-01-02T03:04:06.000Z",
        "ended_at": "2026-01-02T03:04:07.000Z",
        "duration_s": 2.0,
    }
    (tmp_path / "run.json").write_text(json.dumps(earlier))
    run = runs.Run.open(tmp_path)
    assert runs.process_state(run.record) == "unknown"
    advance(10)
    run.resume(["dlrun", "train", "--resume", str(tmp_path)], epochs_completed=2)
    assert _record(run) == {
        "status": "running",
        "name": "exp",
        "started_at": "2026-01-02T03:04:05.000Z",
        "pid": os.getpid(),
        "host": {"name": "elsewhere"},
        "host_name": socket.gethostname(),
        "heartbeat_at": "2026-01-02T03:04:15.000Z",
        "epochs_completed": 2,
        "resumes": [
            {
                "at": "2026-01-02T03:04:15.000Z",
                "after_epoch": 2,
                "command": ["dlrun", "train", "--resume", str(tmp_path)],
                "previous": {
                    "status": "interrupted",
                    "ended_at": "2026-01-02T03:04:07.000Z",
                    "duration_s": 2.0,
                    "heartbeat_at": "2026-01-02T03:04:06.000Z",
                },
            }
        ],
    }
    assert runs.process_state(_record(run)) == "alive"


def test_duration_is_kept_to_the_millisecond(tmp_path, monkeypatch):
    advance = _clock(monkeypatch)
    run = runs.Run.create(tmp_path, "exp")
    advance(1.23456)
    run.finish("completed")
    assert _record(run)["duration_s"] == 1.235


def test_a_lock_held_by_another_open_file_is_refused_naming_its_process(tmp_path):
    run = runs.Run.create(tmp_path, "exp")  # locked by this Run
    assert (run.path / ".lock").read_text() == f"{os.getpid()}\n"
    run.lock()  # again in this process: nothing happens
    run.unlock()
    run.unlock()  # twice: nothing happens
    other = os.open(run.path / ".lock", os.O_RDWR)  # flock conflicts between open files, even in one process
    try:
        os.pwrite(other, b"4242\n", 0)
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: unlock really released it
        with pytest.raises(errors.RunError) as raised:
            runs.Run(run.path, {}).lock()
        assert str(raised.value) == (
            f"{run.path}: is being used by process 4242; expected a run no other dlrun process is writing (wait for it to end)"
        )
        os.ftruncate(other, 0)
        with pytest.raises(errors.RunError, match="is being used by process \\?;"):
            runs.Run(run.path, {}).lock()
    finally:
        os.close(other)
    runs.Run(run.path, {}).lock()  # free again
    assert (run.path / ".lock").read_text() == f"{os.getpid()}\n"


def test_the_lock_file_is_an_ordinary_file_and_a_damaged_one_is_still_a_clean_refusal(tmp_path):
    import stat

    umask = os.umask(0o022)
    try:
        run = runs.Run.create(tmp_path, "exp")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((run.path / ".lock").stat().st_mode) == 0o644  # as every other file of the run
    run.unlock()
    other = os.open(run.path / ".lock", os.O_RDWR)
    try:
        os.pwrite(other, b"\xff\xfe4242\n", 0)  # not written by dlrun: not text
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(errors.RunError) as raised:
            runs.Run(run.path, {}).lock()
        assert str(raised.value) == (
            f"{run.path}: is being used by process \ufffd\ufffd4242; expected a run no other dlrun process is writing (wait for it to end)"
        )
    finally:
        os.close(other)


def test_a_lock_file_that_is_a_link_is_refused(tmp_path):
    run = runs.Run.create(tmp_path, "exp")
    run.unlock()
    (run.path / ".lock").unlink()
    (run.path / ".lock").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(errors.RunError) as raised:
        run.lock()
    assert str(raised.value) == f"{run.path / '.lock'}: cannot open the run's lock file (Too many levels of symbolic links)"
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "{path}: not a dlrun run folder (no run.json)"),
        ("{", "{path}/run.json: unreadable (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
        ("[]", "{path}/run.json: received a JSON array; expected an object (the run's record)"),
        ('"x"', "{path}/run.json: received a JSON string; expected an object (the run's record)"),
        ("true", "{path}/run.json: received a JSON boolean; expected an object (the run's record)"),
        ("null", "{path}/run.json: received a JSON null; expected an object (the run's record)"),
        ("3", "{path}/run.json: received a JSON number; expected an object (the run's record)"),
    ],
)
def test_open_says_what_is_wrong_with_a_folder_that_is_not_a_run(tmp_path, text, message):
    if text is not None:
        (tmp_path / "run.json").write_text(text)
    with pytest.raises(errors.RunError) as raised:
        runs.Run.open(tmp_path)
    assert str(raised.value) == message.format(path=tmp_path)


def test_open_reads_the_record_and_file_makes_sub_folders(tmp_path):
    (tmp_path / "run.json").write_text('{"status": "completed", "name": "é"}', encoding="utf-8")
    run = runs.Run.open(str(tmp_path))
    assert run.path == tmp_path and run.record == {"status": "completed", "name": "é"}
    assert run.file("a/b/c.txt") == tmp_path / "a" / "b" / "c.txt" and (tmp_path / "a" / "b").is_dir()
    assert run.write_json("x/d.json", {"k": 1}) == tmp_path / "x" / "d.json"
    assert json.loads((tmp_path / "x" / "d.json").read_text()) == {"k": 1}
    assert run.write_text("y/e.txt", "hi") == tmp_path / "y" / "e.txt" and (tmp_path / "y" / "e.txt").read_text() == "hi"


def test_check_same_data(tmp_path):
    run = runs.Run(tmp_path, {"data_fingerprint": "abc"})
    run.check_same_data("abc")
    runs.Run(tmp_path, {}).check_same_data("anything")  # written before fingerprints were recorded
    with pytest.raises(errors.DataError) as raised:
        run.check_same_data("xyz")
    assert str(raised.value) == (
        f"data: received other samples than {tmp_path} was trained on (fingerprint xyz, expected "
        "abc); expected the same data to continue it (train a new run instead)"
    )


def test_check_writable_and_unique_folder_name_the_setting(tmp_path):
    runs.check_writable(tmp_path, "--out", tmp_path / "f.csv")
    assert os.listdir(tmp_path) == []  # the probe is removed
    with pytest.raises(errors.RunError) as raised:
        runs.check_writable(tmp_path / "absent", "--out", tmp_path / "absent" / "f.csv")
    assert str(raised.value) == (
        f"--out: received '{tmp_path / 'absent' / 'f.csv'}', but cannot create a file in "
        f"'{tmp_path / 'absent'}' (No such file or directory); expected a path in a folder this user can write"
    )
    with pytest.raises(errors.RunError, match="; expected a run folder$"):
        runs.check_writable(tmp_path / "absent", "RUN_DIR", tmp_path, expected="a run folder")
    first = runs.unique_folder(tmp_path / "new" / "root", "stem", "output.runs_root")
    assert first == tmp_path / "new" / "root" / "stem"
    assert runs.unique_folder(tmp_path / "new" / "root", "stem", "x") == tmp_path / "new" / "root" / "stem-2"
    assert runs.unique_folder(tmp_path / "new" / "root", "stem", "x") == tmp_path / "new" / "root" / "stem-3"
    (tmp_path / "file").write_text("x")
    with pytest.raises(errors.RunError) as raised:
        runs.unique_folder(tmp_path / "file" / "root", "stem", "output.runs_root")
    assert str(raised.value) == f"output.runs_root: cannot create '{tmp_path / 'file' / 'root'}' (Not a directory)"
    with pytest.raises(errors.RunError) as raised:
        runs.unique_folder(tmp_path, "x" * 300, "output.runs_root")  # the root is fine, the name is not
    assert str(raised.value) == f"output.runs_root: cannot write in '{tmp_path}' (File name too long)"
    error = runs.write_failed("--out", tmp_path / "f.csv", OSError(28, "No space left on device"))
    assert isinstance(error, errors.RunError)
    assert str(error) == f"--out: cannot write '{tmp_path / 'f.csv'}' (No space left on device)"


def test_versions_come_from_the_imported_modules_or_the_installed_packages(monkeypatch):
    import importlib.metadata
    import platform

    for name in ("tensorflow", "keras", "numpy", "jax", "torch"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setitem(sys.modules, "numpy", types.SimpleNamespace(__version__="9.9"))
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace())  # imported, no __version__
    installed = {"keras": "3.1", "tensorflow-cpu": "2.9", "jax": "0.5"}

    def version(distribution):
        if distribution not in installed:
            raise importlib.metadata.PackageNotFoundError(distribution)
        return installed[distribution]

    monkeypatch.setattr(importlib.metadata, "version", version)
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    base = {"python": platform.python_version(), "dlrun": run_folder.__version__}
    assert runs.versions() == {**base, "tensorflow": "2.9", "keras": "3.1", "numpy": "9.9", "torch": "unknown"}
    monkeypatch.setenv("KERAS_BACKEND", "jax")  # jax is in use, TensorFlow is not looked up
    assert runs.versions() == {**base, "keras": "3.1", "numpy": "9.9", "jax": "0.5", "torch": "unknown"}
    monkeypatch.delenv("KERAS_BACKEND")  # unset: Keras' default backend, TensorFlow
    monkeypatch.delitem(sys.modules, "numpy")  # not imported: the installed package's version
    installed["numpy"] = "2.0"
    assert runs.versions() == {**base, "tensorflow": "2.9", "keras": "3.1", "numpy": "2.0", "torch": "unknown"}


def test_git_state_of_a_repository_and_of_none(tmp_path, monkeypatch):
    repository = tmp_path / "repo"
    repository.mkdir()
    git = ["git", "-C", str(repository), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repository / "a.txt").write_text("1")
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    (repository / "untracked.txt").write_text("x")
    assert runs.git_state(repository) == {"commit": commit, "dirty": False}  # untracked files do not count
    (repository / "a.txt").write_text("2")
    assert runs.git_state(repository) == {"commit": commit, "dirty": True}
    monkeypatch.chdir(repository)
    assert runs.git_state() == {"commit": commit, "dirty": True}  # by default, the working directory's
    assert runs.git_state(tmp_path / "absent") is None
    (tmp_path / "plain").mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert runs.git_state(tmp_path / "plain") is None

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)
    assert runs.git_state(repository) is None


def test_run_json_is_flushed_to_disk_except_for_heartbeats(tmp_path, monkeypatch):
    run = runs.Run.create(tmp_path, "exp")
    assert run.record["started_at"].endswith("Z") and run.record["name"] == "exp"
    flushed = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda handle: (flushed.append(handle), real_fsync(handle)))
    run.update(status="running")
    assert len(flushed) == 1
    run.heartbeat(epochs_completed=1)
    assert len(flushed) == 1 and _record(run)["heartbeat_at"].endswith("Z") and _record(run)["epochs_completed"] == 1
    run.update(durable=False, x=1)
    assert len(flushed) == 1


def test_process_state_reads_host_name_first_and_never_signals_the_process(monkeypatch):
    import socket

    here = socket.gethostname()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert runs.process_state({"pid": child.pid, "host_name": here, "host": {"name": "elsewhere"}}) == "alive"
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=0.5)  # probed with signal 0, not sent a real signal (SIGHUP would end it)
        assert runs.process_state({"pid": child.pid, "host_name": "elsewhere", "host": {"name": here}}) == "unknown"
        assert runs.process_state({"pid": str(child.pid), "host_name": here}) == "unknown"

        def not_ours(pid, signum):
            raise PermissionError

        with monkeypatch.context() as patch:
            patch.setattr(os, "kill", not_ours)  # another user's process: alive, not ours to signal
            assert runs.process_state({"pid": child.pid, "host_name": here}) == "alive"
    finally:
        child.kill()
        child.wait()


def test_unique_folder_gives_up_after_999_names(tmp_path):
    for attempt in range(1, 1000):
        (tmp_path / ("stem" if attempt == 1 else f"stem-{attempt}")).mkdir()
    with pytest.raises(errors.RunError) as raised:
        runs.unique_folder(tmp_path, "stem", "output.runs_root")
    assert str(raised.value) == f"output.runs_root: too many folders named 'stem' in '{tmp_path}'"
    assert len(os.listdir(tmp_path)) == 999  # no stem-1000
