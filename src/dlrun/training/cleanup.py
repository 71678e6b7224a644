"""Disk hygiene (`dlrun runs clean`, `output.keep_checkpoints: false`): what may go from a runs folder.

Three kinds of files, each removed only where nothing can need it:
- resume checkpoints (`checkpoints/last.npz` and `previous.npz`, a K-fold run's per-fold ones too) of
  a *completed* run. A running, interrupted, failed or crashed run needs them for `--resume`, so they
  stay; `checkpoints/best.keras` (the checkpoint callback's model, `dlrun eval --checkpoint best`) is
  a result, not a resume checkpoint, and always stays.
- temp files a crashed atomic write left (`dlrun.atomic`), in run folders whose lock no process holds
  (`dlrun.runs.folder`: a live run's temp files are its writes in progress).
- feature-cache entries (`dlrun.training.feature_cache`) that no run under the folder names (run.json's
  and kfold.json's `feature_cache`). A cache: removing an entry costs only its recomputation. An
  incomplete entry (no identity.json) may be being written, so it goes only once untouched for a day.

A run folder is held under a shared lock while its files are removed, so no `--resume` starts meanwhile.
Imports nothing heavy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from dlrun import atomic, errors, runs
from dlrun.runs import folder as runs_folder
from dlrun.training import checkpoints, feature_cache

STALE_SECONDS = 24 * 3600  # an incomplete feature-cache entry untouched this long was left by a crash
_RESUME_FILES = {Path(checkpoints.LATEST).name, Path(checkpoints.PREVIOUS).name}


@dataclasses.dataclass(frozen=True)
class Item:
    """One file or folder `dlrun runs clean` would remove, its size in bytes, and why it may go."""

    path: Path
    size: int
    why: str
    run: Path | None = None  # the run folder it belongs to (locked while it is removed); None: the feature cache


def resume_checkpoints(run_path: Path) -> list[Path]:
    """The resume checkpoint files of the run in `run_path` (its K-fold folds' included, nested runs' not)."""
    return [path for path in _own_files(run_path) if path.name in _RESUME_FILES and path.parent.name == "checkpoints"]


def remove_resume_checkpoints(run_path: Path) -> list[Path]:
    """Delete the run's resume checkpoints (`output.keep_checkpoints: false`, once it completed); return them."""
    removed = resume_checkpoints(run_path)
    for path in removed:
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # checkpoints/ when nothing else (best.keras) is left in it
    return removed


def plan(runs_root: str | Path, now: float | None = None) -> list[Item]:
    """Everything under `runs_root` (and its feature cache) that may be removed, nothing removed yet."""
    root = Path(runs_root)
    if not root.is_dir():
        raise errors.RunError(
            f"RUNS_ROOT: received {str(runs_root)!r}, which is not a folder; expected the folder "
            "that holds the run folders (output.runs_root)"
        )
    now = time.time() if now is None else now
    items, used = [], set()
    for run_path in _run_folders(root):
        record = _json(run_path / runs.RUN_FILE)
        used.update(_feature_cache_entries(run_path, record))
        if _locked(run_path):
            continue  # a live run: its temp files are writes in progress and it may need its checkpoints
        items += [
            Item(path, _size(path), "temp file of a crashed write", run_path)
            for path in _own_files(run_path)
            if atomic.is_temp_name(path.name)
        ]
        if record.get("status") == "completed":
            items += [Item(path, _size(path), "resume checkpoint of a completed run", run_path) for path in resume_checkpoints(run_path)]
    cache_roots = {feature_cache.root(None, str(root))} | {entry.parent for entry in used}
    for cache_root in sorted(cache_roots):
        items += _unused_entries(cache_root, used, now)
    return items


def remove(items: list[Item]) -> list[Item]:
    """Delete `items` (from `plan`), each run's under its shared lock; return those removed (a run that
    started meanwhile, or changed status, keeps its files)."""
    removed = []
    for run_path in dict.fromkeys(item.run for item in items):
        group = [item for item in items if item.run == run_path]
        with _held(run_path) as held:
            if not held:
                continue
            still_completed = run_path is None or _json(run_path / runs.RUN_FILE).get("status") == "completed"
            for item in group:
                if item.why.startswith("resume checkpoint") and not still_completed:
                    continue
                if item.path.is_dir() and not item.path.is_symlink():
                    shutil.rmtree(item.path, ignore_errors=True)
                else:
                    item.path.unlink(missing_ok=True)
                    if item.why.startswith("resume checkpoint"):
                        with contextlib.suppress(OSError):
                            item.path.parent.rmdir()
                removed.append(item)
    return removed


def human_size(size: float) -> str:
    """`size` bytes as people read it: 812 B, 4.2 kB, 1.9 MB (powers of 1000, as `du --si`)."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return ""  # not reached


def _run_folders(root: Path) -> list[Path]:
    """Every run folder (one holding run.json) under `root`, nested ones (a sweep's trials) included."""
    found = []
    for parent, names, files in os.walk(root):  # os.walk does not follow links
        if runs.RUN_FILE in files:
            found.append(Path(parent))
        names.sort()
    return found


def _own_files(run_path: Path) -> list[Path]:
    """The files of the run in `run_path`, not those of a run nested in it (a sweep's trials)."""
    found = []
    for parent, names, files in os.walk(run_path):
        names[:] = sorted(name for name in names if not (Path(parent) / name / runs.RUN_FILE).exists())
        found += [Path(parent) / name for name in sorted(files) if not (Path(parent) / name).is_symlink()]
    return found


def _feature_cache_entries(run_path: Path, record: dict) -> set[Path]:
    """The feature-cache entries a run names: run.json's (train, the K-fold refit) and kfold.json's folds'."""
    named = [record.get("feature_cache")]
    named += [fold.get("feature_cache") for fold in _json(run_path / "kfold.json").get("folds", []) if isinstance(fold, dict)]
    return {Path(entry).resolve() for entry in named if isinstance(entry, str)}


def _unused_entries(cache_root: Path, used: set[Path], now: float) -> list[Item]:
    if not cache_root.is_dir():
        return []
    items = []
    for entry in sorted(path for path in cache_root.iterdir() if path.is_dir() and not path.is_symlink()):
        if entry.resolve() in used:
            continue
        if (entry / feature_cache.IDENTITY_FILE).is_file():
            items.append(Item(entry, _size(entry), "feature-cache entry no run uses"))
        elif now - max([entry.stat().st_mtime] + [path.stat().st_mtime for path in entry.iterdir()]) > STALE_SECONDS:
            items.append(Item(entry, _size(entry), "incomplete feature-cache entry, untouched for a day"))
    return items


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file() and not file.is_symlink())


def _json(path: Path) -> dict:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _locked(run_path: Path) -> bool:
    """Whether a process holds the run folder's lock (`Run.lock`), tested without writing anything."""
    with _held(run_path) as held:
        return not held


@contextlib.contextmanager
def _held(run_path: Path | None) -> Iterator[bool]:
    """Hold a shared lock on the run folder's lock file (yields False when a live run holds it); a folder
    without a lock file (written before runs had one) or no run (`None`) yields True."""
    if run_path is None:
        yield True
        return
    try:
        handle = os.open(run_path / runs_folder.LOCK_FILE, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        yield True
        return
    except OSError:
        yield False  # unreadable or a link: leave this run alone
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(handle)
        yield False
        return
    try:
        yield True
    finally:
        os.close(handle)
