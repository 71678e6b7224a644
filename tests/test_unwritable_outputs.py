"""Outputs that cannot be written: exit 2 naming the path and what was expected, no traceback, nothing left.

`dlrun eval`/`export` on a run folder this user cannot write, and `predict --out`, `export --out`,
`runs compare --plot` into a folder that cannot be written (a read-only folder, /proc, a path under
a regular file). Tests run as root in CI, where `chmod 0555` does not stop a write: `read_only` then
also refuses, in this process, the file and folder creations the kernel would refuse to another user
(EACCES), so the same test runs either way. /proc refuses even root (ENOENT), so those cases are real
everywhere.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import invoke, write_completed_run

PROC = Path("/proc")
needs_proc = pytest.mark.skipif(not (PROC / "self").is_dir(), reason="needs Linux /proc (a folder nobody can create files in)")


def _inside(path, folder: Path) -> bool:
    try:
        return Path(os.path.abspath(os.fsdecode(path))).is_relative_to(folder)
    except (TypeError, ValueError):
        return False


@contextlib.contextmanager
def read_only(folder: Path, monkeypatch):
    """Make `folder` and every folder under it unwritable (chmod 0555); where that does not stop this process
    (root), also make this process's file and folder creations under it fail with EACCES, as the kernel does
    for other users. Permissions are restored on exit so tmp_path can be cleaned."""
    folder = Path(folder).resolve()
    folders = [folder, *(path for path in folder.rglob("*") if path.is_dir() and not path.is_symlink())]
    for path in folders:
        path.chmod(0o555)
    try:
        handle, probe = tempfile.mkstemp(dir=folder)
    except PermissionError:
        pass  # not root: the permissions do it
    else:
        os.close(handle)
        os.unlink(probe)
        real_open, real_mkdir = os.open, os.mkdir

        def refused(path):
            return PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))

        def guarded_open(path, flags, *args, **kwargs):
            if flags & os.O_CREAT and kwargs.get("dir_fd") is None and _inside(path, folder):
                raise refused(path)
            return real_open(path, flags, *args, **kwargs)

        def guarded_mkdir(path, *args, **kwargs):
            if kwargs.get("dir_fd") is None and _inside(path, folder):
                raise refused(path)
            return real_mkdir(path, *args, **kwargs)

        monkeypatch.setattr(os, "open", guarded_open)
        monkeypatch.setattr(os, "mkdir", guarded_mkdir)
    try:
        yield folder
    finally:
        monkeypatch.undo()
        for path in folders:
            path.chmod(0o755)


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under `folder` with its size and modification time: to prove nothing was written."""
    return {str(path.relative_to(folder)): (path.lstat().st_size, path.lstat().st_mtime_ns) for path in folder.rglob("*")}


def _assert_clean_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    """A private copy of the shared trained run (model.keras and all), to make read-only."""
    return Path(shutil.copytree(trained_run, tmp_path / "run", symlinks=True))


# --- eval and export on a read-only run folder -----------------------------------------------------------


def test_eval_on_a_read_only_run_folder_exits_2_and_writes_nothing(run_copy, monkeypatch):
    before = _listing(run_copy)
    with read_only(run_copy, monkeypatch):
        result = invoke("eval", run_copy)
        after = _listing(run_copy)
    _assert_clean_error(
        result,
        f"RUN_DIR: received '{run_copy}', but cannot create a file in '{run_copy}' (Permission denied); "
        "expected a run folder this user can write (dlrun eval writes eval_test.json there)",
    )
    assert "importing Keras" not in result.output  # refused before the evaluation, not after it
    assert after == before


def test_export_on_a_read_only_run_folder_exits_2_and_writes_nothing(run_copy, monkeypatch):
    before = _listing(run_copy)
    with read_only(run_copy, monkeypatch):
        result = invoke("export", run_copy, "--format", "keras")
        after = _listing(run_copy)
    _assert_clean_error(
        result,
        f"--out: received '{run_copy / 'export' / 'model.keras'}', but cannot create a folder in '{run_copy}' "
        "(Permission denied); expected a path in a folder this user can write",
    )
    assert "importing" not in result.output
    assert after == before


# --- --out / --plot in a folder that cannot be written ---------------------------------------------------


def _targets(tmp_path: Path, name: str, monkeypatch):
    """(the --out path, a context that makes it unwritable, the folder to check is left as it was)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    regular = tmp_path / "file.txt"
    regular.write_text("not a folder\n")
    return {
        "read-only folder": (
            ro / name,
            lambda: read_only(ro, monkeypatch),
            ro,
            f"cannot create a file in '{ro}' (Permission denied); expected a path in a folder this user can write",
        ),
        "/proc": (
            PROC / name,
            contextlib.nullcontext,
            None,
            f"cannot create a file in '{PROC}' (No such file or directory); expected a path in a folder this user can write",
        ),
        "under a regular file": (regular / name, contextlib.nullcontext, None, "expected a "),
    }


CASES = ["read-only folder", pytest.param("/proc", marks=needs_proc), "under a regular file"]


@pytest.mark.parametrize("case", CASES)
def test_export_out_into_an_unwritable_folder_exits_2_and_writes_nothing(run_copy, tmp_path, monkeypatch, case):
    out, unwritable, folder, expected = _targets(tmp_path, "m.keras", monkeypatch)[case]
    before = _listing(run_copy)
    with unwritable():
        result = invoke("export", run_copy, "--format", "keras", "--out", out)
        left = _listing(folder) if folder else {}
    _assert_clean_error(result, f"--out: received '{out}'", expected)
    assert left == {}
    assert _listing(run_copy) == before


@pytest.mark.parametrize("case", CASES)
def test_predict_out_into_an_unwritable_folder_exits_2_before_keras_loads(run_copy, tmp_path, monkeypatch, case):
    samples = tmp_path / "samples.npy"
    np.save(samples, np.zeros((2, 6), dtype="float32"))
    out, unwritable, folder, expected = _targets(tmp_path, "p.csv", monkeypatch)[case]
    with unwritable():
        result = invoke("predict", run_copy, samples, "--out", out)
        left = _listing(folder) if folder else {}
    _assert_clean_error(result, f"--out: received '{out}'", expected)
    assert "importing Keras" not in result.output
    assert left == {}


@pytest.mark.parametrize("case", CASES)
def test_runs_compare_plot_into_an_unwritable_folder_exits_2_and_writes_nothing(tmp_path, monkeypatch, case):
    first = write_completed_run(tmp_path / "runs" / "a", name="a")
    second = write_completed_run(tmp_path / "runs" / "b", name="b", config="name: digits\nseed: 2\n")
    out, unwritable, folder, expected = _targets(tmp_path, "c.png", monkeypatch)[case]
    with unwritable():
        result = invoke("runs", "compare", first, second, "--plot", out)
        left = _listing(folder) if folder else {}
    _assert_clean_error(result, f"--plot: received '{out}'", expected)
    assert "config differences" not in result.output  # refused before the tables, not after them
    assert left == {}


def test_predict_out_write_failing_after_the_check_is_a_clean_error(run_copy, tmp_path, monkeypatch):
    """The check comes first, but a write can still fail (a full disk): the same clean error, no temp file."""
    from dlrun import atomic

    samples = tmp_path / "samples.npy"
    np.save(samples, np.zeros((2, 6), dtype="float32"))
    out = tmp_path / "out" / "p.csv"
    out.parent.mkdir()

    def failing(path, data, durable=True):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(atomic, "write_bytes", failing)
    result = invoke("predict", run_copy, samples, "--out", out)
    _assert_clean_error(result, f"--out: cannot write '{out}' (No space left on device)")
    assert list(out.parent.iterdir()) == []


def test_read_only_helper_really_refuses_writes(tmp_path, monkeypatch):
    """The simulation the tests above rely on: as root or not, nothing can be created in the folder."""
    folder = tmp_path / "ro"
    folder.mkdir()
    with read_only(folder, monkeypatch):
        with pytest.raises(PermissionError):
            tempfile.mkstemp(dir=folder)
        with pytest.raises(PermissionError):
            (folder / "sub").mkdir()
        assert not stat.S_IMODE(folder.stat().st_mode) & 0o222
    (folder / "ok").write_text("writable again\n")
