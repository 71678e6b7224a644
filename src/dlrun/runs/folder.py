"""Run folders: `<runs_root>/<UTC timestamp>_<name>/`, created once, never reused.

`run.json` says what happened: `status` is `running` while training (with a `heartbeat_at` that moves
every epoch), then `completed`, `failed` (with `error`), `interrupted`, or `pruned` (a sweep's pruner
stopped the trial: `pruned` says after which epoch and why).
"""

from __future__ import annotations

import datetime
import fcntl
import json
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dlrun import __version__, atomic, errors

RUN_FILE = "run.json"
CONFIG_FILE = "config.yaml"
LOCK_FILE = ".lock"  # flock'ed by the one process writing the run; holds its pid
FORMAT = 2  # run.json's layout; absent (1) in folders written before the format was recorded
STATUSES = ("running", "completed", "failed", "interrupted", "pruned")


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _iso(moment: datetime.datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


class Run:
    """One run folder and its `run.json` record."""

    def __init__(self, path: Path, record: dict) -> None:
        self.path = path
        self.record = record
        self._heartbeat_written = -math.inf  # time.monotonic() of the last heartbeat written

    @classmethod
    def create(cls, runs_root: str | Path, name: str) -> Run:
        """Make a new, empty run folder; two runs started in the same second get distinct folders."""
        started = utc_now()
        path = unique_folder(runs_root, f"{started.strftime('%Y%m%dT%H%M%SZ')}_{name}", "output.runs_root")
        run = cls(path, {"status": "created", "name": name, "started_at": _iso(started)})
        run.lock()
        return run

    @classmethod
    def open_to_continue(cls, path: str | Path) -> Run:
        """An existing run folder this process is going to write (a --resume): locked against every other
        process (`lock`), refused when it holds a symbolic link, its stale temp files removed."""
        run = cls.open(path)
        run.lock()
        refuse_symlinks(run.path)
        atomic.remove_stale_temps(run.path)
        return run

    def lock(self) -> None:
        """Take the run folder's exclusive OS lock (flock on `.lock`), held until `finish` or the process ends.

        A second process (a second `--resume`, a sweep trial run twice) fails here, before it writes
        anything: RunError naming the process that holds it. Taking it again in this process does nothing.
        """
        key = os.path.realpath(self.path)
        if key in _LOCKS:
            return
        try:
            handle = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as error:
            raise errors.RunError(f"{self.path / LOCK_FILE}: cannot open the run's lock file ({error.strerror})") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(handle, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(handle)
            raise errors.RunError(
                f"{self.path}: is being used by process {holder}; expected a run no other dlrun process is writing (wait for it to end)"
            ) from None
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"{os.getpid()}\n".encode(), 0)
        _LOCKS[key] = handle

    def unlock(self) -> None:
        """Release the lock taken by `lock` (it is released anyway when the process ends)."""
        handle = _LOCKS.pop(os.path.realpath(self.path), None)
        if handle is not None:
            os.close(handle)

    @classmethod
    def open(cls, path: str | Path) -> Run:
        """An existing run folder (it must hold a readable run.json)."""
        path = Path(path)
        try:
            record = json.loads((path / RUN_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise errors.RunError(f"{path}: not a dlrun run folder (no {RUN_FILE})") from None
        except (OSError, ValueError) as error:
            raise errors.RunError(f"{path / RUN_FILE}: unreadable ({error})") from None
        if not isinstance(record, dict):
            kind = {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(record), "number")
            raise errors.RunError(f"{path / RUN_FILE}: received a JSON {kind}; expected an object (the run's record)")
        return cls(path, record)

    def file(self, name: str) -> Path:
        """The path of a file inside the run folder (sub-folders are created)."""
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def write_json(self, name: str, payload: Any) -> Path:
        return atomic.write_json(self.file(name), payload)

    def write_text(self, name: str, text: str) -> Path:
        return atomic.write_text(self.file(name), text)

    def update(self, durable: bool = True, **fields: Any) -> None:
        """Merge `fields` into run.json and rewrite it atomically."""
        self.record.update(fields)
        atomic.write_json(self.file(RUN_FILE), self.record, durable=durable)

    def start(self, command: list[str] | None, seed: int, versions: dict, extra: dict | None = None) -> None:
        """Record the run as `running`, with everything needed to know how it was made."""
        self.update(
            format=FORMAT,
            status="running",
            command=command or list(sys.argv),
            argv=list(sys.argv),
            working_directory=os.getcwd(),
            seed=seed,
            versions=versions,
            git=git_state(),
            host={"name": socket.gethostname(), "platform": platform.platform(), "cpus": os.cpu_count()},
            heartbeat_at=_iso(utc_now()),
            pid=os.getpid(),
            **(extra or {}),
        )

    def resume(self, command: list[str] | None, epochs_completed: int) -> None:
        """Mark a stopped run as running again; earlier outcomes are kept in `resumes`."""
        earlier = {key: self.record.get(key) for key in ("status", "ended_at", "duration_s", "heartbeat_at", "error") if key in self.record}
        for key in ("ended_at", "duration_s", "error", "traceback"):
            self.record.pop(key, None)
        now = _iso(utc_now())
        resumes = self.record.get("resumes", []) + [
            {"at": now, "after_epoch": epochs_completed, "previous": earlier, "command": command or list(sys.argv)}
        ]
        self.update(
            status="running",
            heartbeat_at=now,
            pid=os.getpid(),
            host_name=socket.gethostname(),
            resumes=resumes,
            epochs_completed=epochs_completed,
        )

    def check_same_data(self, fingerprint: str) -> None:
        """Refuse to continue this run on data other than it started on (`Dataset.fingerprint`)."""
        stored = self.record.get("data_fingerprint")  # absent in folders written before format 2
        if stored is not None and stored != fingerprint:
            raise errors.DataError(
                f"data: received other samples than {self.path} was trained on (fingerprint {fingerprint}, "
                f"expected {stored}); expected the same data to continue it (train a new run instead)"
            )

    def heartbeat(self, at_most_every: float = 0.0, **fields: Any) -> None:
        """Show the run is alive (called every epoch). With `at_most_every` seconds, a call that comes
        sooner than that after the last written heartbeat writes nothing (for callers that receive many
        short epochs from several workers at once: each write is a whole run.json)."""
        now = time.monotonic()
        if at_most_every and now - self._heartbeat_written < at_most_every:
            return
        self._heartbeat_written = now
        self.update(durable=False, heartbeat_at=_iso(utc_now()), **fields)

    def finish_if_possible(self, status: str, error: str | None = None, **fields: Any) -> None:
        """`finish`, but a write failure (a full disk) is swallowed: the caller is already reporting one."""
        try:
            self.finish(status, error=error, **fields)
        except OSError:
            pass

    def finish(self, status: str, error: str | None = None, **fields: Any) -> None:
        """Record the final status; `completed` is written last, after every other file."""
        ended = utc_now()
        segments = [self.record["started_at"]] + [entry["at"] for entry in self.record.get("resumes", [])]
        seconds = (ended - _parse(segments[-1])).total_seconds()
        for entry, segment_start in zip(self.record.get("resumes", []), segments):
            # earlier segments: their recorded duration, or until their last heartbeat when killed
            previous = entry["previous"]
            if previous.get("ended_at"):
                seconds += (_parse(previous["ended_at"]) - _parse(segment_start)).total_seconds()
            elif previous.get("heartbeat_at"):
                seconds += (_parse(previous["heartbeat_at"]) - _parse(segment_start)).total_seconds()
        record: dict[str, Any] = dict(status=status, ended_at=_iso(ended), duration_s=round(seconds, 3))
        if error is not None:
            record["error"] = error
        self.update(**record, **fields)
        self.unlock()


_LOCKS: dict[str, int] = {}  # run folder (real path) -> the open, flock'ed lock file of a run this process writes


def release_locks() -> None:
    """Release every run folder lock this process holds (the end of an in-process command)."""
    while _LOCKS:
        os.close(_LOCKS.popitem()[1])


def refuse_symlinks(folder: Path) -> None:
    """RunError naming the first symbolic link inside `folder`: dlrun writes into a run folder never
    follow a link planted there (a `model.keras`, `checkpoints/best.keras` or `plots/` pointing outside)."""
    for parent, names, files in os.walk(folder):  # os.walk does not descend into linked folders
        for name in sorted(names + files):
            if os.path.islink(os.path.join(parent, name)):
                raise _linked(os.path.join(parent, name))


def refuse_links_in(folder: str | Path, name: str) -> None:
    """RunError when `folder/name`, a sub-folder dlrun writes into (`visualize/`, `export/`), is a symbolic
    link or holds one: outputs never land outside the run folder through a planted link."""
    path = Path(folder) / name
    if path.is_symlink():
        raise _linked(path)
    if path.is_dir():
        refuse_symlinks(path)


def _linked(path: str | Path) -> errors.RunError:
    return errors.RunError(
        f"{path}: is a symbolic link; expected a run folder holding only its own files and folders "
        "(dlrun never writes through a link; remove it to continue)"
    )


def check_writable(
    folder: str | Path, setting: str, received: str | Path, expected: str = "a path in a folder this user can write"
) -> None:
    """Refuse, before any work, an output whose `folder` this process cannot create files in: probed by
    creating and removing a temp file there, so permissions, read-only mounts and /proc all count. The
    error names `setting`, the path `received` and what was `expected`."""
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".dlrun-probe.", suffix=".tmp")
    except OSError as error:
        raise errors.RunError(
            f"{setting}: received {str(received)!r}, but cannot create a file in {str(folder)!r} "
            f"({error.strerror or error}); expected {expected}"
        ) from None
    os.close(handle)
    os.unlink(probe)


def write_failed(setting: str, target: str | Path, error: OSError) -> errors.RunError:
    """The error for an output write that failed after `check_writable` (a full disk, a vanished folder)."""
    return errors.RunError(f"{setting}: cannot write {str(target)!r} ({error.strerror or error})")


def unique_folder(parent: str | Path, stem: str, setting: str) -> Path:
    """Create and return a new, empty `<parent>/<stem>` (`<stem>-2`, `-3`, ... when the name is taken).

    `mkdir` is atomic, so two processes starting in the same second never share a folder. Errors name
    `setting`, the option or key that chose `parent`.
    """
    parent = Path(parent)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise errors.RunError(f"{setting}: cannot create {str(parent)!r} ({error.strerror})") from None
    for attempt in range(1, 1000):
        path = parent / (stem if attempt == 1 else f"{stem}-{attempt}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as error:
            raise errors.RunError(f"{setting}: cannot write in {str(parent)!r} ({error.strerror})") from None
        return path
    raise errors.RunError(f"{setting}: too many folders named {stem!r} in {str(parent)!r}")


def process_state(record: dict) -> str:
    """`alive` or `dead` for a run started on this host (from its pid), `unknown` for another host."""
    host = record.get("host_name") or (record.get("host") or {}).get("name")
    pid = record.get("pid")
    if host != socket.gethostname() or not isinstance(pid, int):
        return "unknown"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "dead"
    except PermissionError:
        return "alive"
    return "alive"


_DISTRIBUTIONS = {
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "keras": ("keras",),
    "numpy": ("numpy",),
    "jax": ("jax",),
    "torch": ("torch",),
}


def versions() -> dict:
    """Versions of what shaped the numbers: the imported modules, plus Keras and the chosen backend's
    package ($KERAS_BACKEND) from the installed packages when this process has not imported them (a
    K-fold run whose folds train in worker processes)."""
    import importlib.metadata

    found = {"python": platform.python_version(), "dlrun": __version__}
    in_use = {"keras", "numpy", os.environ.get("KERAS_BACKEND", "tensorflow")}
    for module_name in ("tensorflow", "keras", "numpy", "jax", "torch"):
        module = sys.modules.get(module_name)
        if module is not None:
            found[module_name] = getattr(module, "__version__", "unknown")
            continue
        if module_name not in in_use:
            continue
        for distribution in _DISTRIBUTIONS.get(module_name, ()):
            try:
                found[module_name] = importlib.metadata.version(distribution)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return found


def git_state(directory: str | Path = ".") -> dict | None:
    """The commit (and whether the tree was dirty) of the project the run was started in, if any."""
    try:
        commit = subprocess.run(["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "-C", str(directory), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None
