"""Atomic file writes: a temp file in the same folder, then `os.replace`, so a crash never leaves half a file."""

from __future__ import annotations

import ctypes
import json
import os
import re
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

_UMASK = os.umask(0)
os.umask(_UMASK)


def write_bytes(path: str | os.PathLike, data: bytes, durable: bool = True) -> Path:
    """Write `data` to `path` atomically and return the path.

    The rename makes the write atomic against a crash of this process; `durable` also flushes the file
    to disk first (against a power cut). Files rewritten every epoch skip that flush: it costs more than
    a small epoch, and the previous epoch's copy is the fallback. Such a write also swaps the new file
    with the old one (Linux `renameat2(RENAME_EXCHANGE)`, where it exists) instead of renaming over it:
    ext4 flushes a file renamed over another one (`auto_da_alloc`), which would put the flush back.
    """
    path = Path(path)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            if durable:
                os.fsync(stream.fileno())
        os.chmod(temp_name, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the permissions a plain open() would
        if not durable and _exchange(temp_name, path):
            os.unlink(temp_name)  # the old file, now under the temp name
        else:
            os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return path


def swap_in(path: str | os.PathLike, data: bytes, spare: str | os.PathLike) -> bool:
    """Make `data` the content of `path` (a file that exists) by writing it over `spare` in place (created
    when missing, never truncated to zero) and then swapping the two files (`renameat2(RENAME_EXCHANGE)`):
    afterwards `spare` holds what `path` held. The quickest whole-file rewrite there is (about 25 us against
    250 for a new temp file each time, on ext4 here): no file is created, removed, emptied or renamed over
    another, so ext4 flushes nothing. A kill during the write leaves `path` as it was (only `spare` is
    half-written); the swap is atomic. Not flushed to disk (see `write_bytes`' `durable`). False where the
    swap cannot be done (no `renameat2`, a file system without it, no file at `path`): then `path` is
    untouched and `spare` holds `data`, and the caller writes `path` another way. A write that fails (a full
    disk) removes `spare` and raises."""
    # never through a link planted at `spare` (as no run-folder write follows one): that open fails
    descriptor = os.open(spare, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0), 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
            if os.fstat(descriptor).st_size != len(data):
                os.ftruncate(descriptor, len(data))
        finally:
            os.close(descriptor)
    except BaseException:  # a full disk: the half-written spare is removed, `path` is untouched
        Path(spare).unlink(missing_ok=True)
        raise
    return _exchange(os.fspath(spare), Path(path))


def _exchange(temp_name: str, path: Path) -> bool:
    """Swap `temp_name` and `path` atomically; False (nothing done) where that cannot be done: no file at
    `path` (or a folder), or no `renameat2` (not Linux, an old C library, a file system without it)."""
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            return False
    except OSError:
        return False
    global _RENAMEAT2
    if _RENAMEAT2 is None:
        try:
            _RENAMEAT2 = ctypes.CDLL(None, use_errno=True).renameat2
        except (AttributeError, OSError, TypeError):  # TypeError: Windows has no CDLL(None)
            _RENAMEAT2 = False
    if _RENAMEAT2 is False:
        return False
    return _RENAMEAT2(_AT_FDCWD, os.fsencode(temp_name), _AT_FDCWD, os.fsencode(path), _RENAME_EXCHANGE) == 0


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2  # from <fcntl.h> and <linux/fs.h>
_RENAMEAT2: Any = None  # libc's renameat2 once looked up; False where there is none


def write_text(path: str | os.PathLike, text: str, durable: bool = True) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    return write_bytes(path, text.encode("utf-8"), durable=durable)


def write_json(path: str | os.PathLike, payload: Any, durable: bool = True) -> Path:
    """Write `payload` as indented JSON to `path` atomically."""
    return write_text(path, json.dumps(payload, indent=2, sort_keys=False, allow_nan=True) + "\n", durable=durable)


def write_with(path: str | os.PathLike, writer: Callable[[Path], object], suffix: str = "") -> Path:
    """Atomically write `path` through `writer(temp_path)`, for libraries that write files themselves
    (`model.save`, `figure.savefig`): the temp file is renamed into place, or removed on any failure."""
    path = Path(path)
    temp = temp_path_beside(path, suffix=suffix or path.suffix)
    try:
        writer(temp)
        os.chmod(temp, 0o666 & ~_UMASK)  # the permissions a plain open() gives, not mkstemp's 0600
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path


def temp_path_beside(path: str | os.PathLike, suffix: str = "") -> Path:
    """A fresh, unused temp file name in the folder of `path`, for writers that need a file name."""
    path = Path(path)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{suffix or path.suffix}")
    os.close(handle)
    return Path(temp_name)


# The names of the temp files above: ".<name>.<8 random characters from mkstemp>.tmp[<suffix>]".
_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?$")


def is_temp_name(name: str) -> bool:
    """Whether a file name is one of the temp files above (what a crash between write and rename leaves)."""
    return _TEMP_NAME.match(name) is not None


def remove_stale_temps(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temp files a killed process left under `folder` (call it only while no other process
    writes there: a run folder under its lock); return them."""
    removed = []
    for parent, _names, files in os.walk(folder):
        for name in files:
            path = Path(parent) / name
            if is_temp_name(name) and not path.is_symlink():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed
