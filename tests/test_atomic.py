"""dlrun.atomic on its own: what each writer puts on disk, the temp names it uses, when it flushes to disk, and
which left-over temp files `remove_stale_temps` removes (and which it never touches). The failure paths (a full
disk half-way through a write) are in test_runs.py."""

import math
import os
import sys
from pathlib import Path

import pytest

from dlrun import atomic


def test_write_json_is_indented_in_the_payload_s_order_and_keeps_nan(tmp_path):
    target = atomic.write_json(tmp_path / "h.json", {"b": 1, "a": [1.0, math.nan]})
    assert target == tmp_path / "h.json"
    assert target.read_text() == '{\n  "b": 1,\n  "a": [\n    1.0,\n    NaN\n  ]\n}\n'


def test_write_text_is_utf8(tmp_path):
    atomic.write_text(tmp_path / "t.txt", "é ✓")
    assert (tmp_path / "t.txt").read_bytes() == "é ✓".encode()


@pytest.mark.parametrize("writer", ["bytes", "text", "json"])
def test_durable_writes_flush_to_disk_and_the_others_do_not(tmp_path, monkeypatch, writer):
    """Every writer is durable (fsync before the rename) unless asked not to be (files rewritten every epoch)."""
    flushed = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda handle: (flushed.append(handle), real_fsync(handle)))
    write = {
        "bytes": lambda path, **options: atomic.write_bytes(path, b"x", **options),
        "text": lambda path, **options: atomic.write_text(path, "x", **options),
        "json": lambda path, **options: atomic.write_json(path, {"x": 1}, **options),
    }[writer]
    write(tmp_path / "default")
    assert len(flushed) == 1
    write(tmp_path / "quick", durable=False)
    assert len(flushed) == 1
    write(tmp_path / "durable", durable=True)
    assert len(flushed) == 2


def _renames_over_existing_files(monkeypatch) -> list[str]:
    """Records each `os.replace` whose target exists (ext4 flushes the file renamed over it, auto_da_alloc)."""
    over: list[str] = []
    real_replace = os.replace

    def replace(source, target):
        if os.path.lexists(target):
            over.append(os.path.basename(target))
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    return over


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux's")
def test_a_quick_write_over_a_file_swaps_it_in_and_never_renames_over_it(tmp_path, monkeypatch):
    over = _renames_over_existing_files(monkeypatch)
    target = tmp_path / "history.json"
    atomic.write_text(target, "first", durable=False)
    atomic.write_text(target, "second", durable=False)
    assert target.read_text() == "second" and os.listdir(tmp_path) == ["history.json"]  # the old file is gone too
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~atomic._UMASK)
    assert over == []
    atomic.write_text(target, "third")  # a durable write renames over it, after its flush
    assert over == ["history.json"] and target.read_text() == "third"


def test_a_quick_write_renames_over_the_file_where_it_cannot_swap(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_RENAMEAT2", False)  # not Linux, an old C library
    over = _renames_over_existing_files(monkeypatch)
    target = tmp_path / "history.json"
    atomic.write_text(target, "first", durable=False)
    atomic.write_text(target, "second", durable=False)
    assert target.read_text() == "second" and os.listdir(tmp_path) == ["history.json"] and over == ["history.json"]


def test_a_quick_write_onto_a_folder_fails_as_a_rename_would_and_swaps_nothing(tmp_path):
    (tmp_path / "history.json").mkdir()
    (tmp_path / "history.json" / "inside").write_text("kept")
    with pytest.raises(OSError):
        atomic.write_text(tmp_path / "history.json", "x", durable=False)
    assert (tmp_path / "history.json" / "inside").read_text() == "kept" and os.listdir(tmp_path) == ["history.json"]


def test_swap_in_writes_over_the_spare_and_swaps_the_two_files_creating_nothing(tmp_path, monkeypatch):
    target, spare = tmp_path / "history.json", tmp_path / ".history.json.previous.tmp"
    target.write_text("first")
    assert atomic.swap_in(target, b"second", spare)  # the spare is made the first time
    assert (target.read_text(), spare.read_text()) == ("second", "first")
    inodes = (target.stat().st_ino, spare.stat().st_ino)
    over = _renames_over_existing_files(monkeypatch)
    monkeypatch.setattr(atomic.tempfile, "mkstemp", lambda *args, **kwargs: pytest.fail("a temp file was made"))
    assert atomic.swap_in(target, b"3rd", spare)  # shorter than what the spare held: cut to its length
    assert (target.read_text(), spare.read_text()) == ("3rd", "second") and over == []
    assert (target.stat().st_ino, spare.stat().st_ino) == inodes[::-1]  # the same two files, swapped
    assert sorted(os.listdir(tmp_path)) == [spare.name, target.name]


def test_swap_in_where_it_cannot_swap_leaves_the_file_untouched(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_RENAMEAT2", False)  # not Linux, an old C library
    target, spare = tmp_path / "history.json", tmp_path / ".history.json.previous.tmp"
    target.write_text("first")
    assert not atomic.swap_in(target, b"second", spare)
    assert target.read_text() == "first"
    monkeypatch.undo()
    assert not atomic.swap_in(tmp_path / "missing.json", b"x", tmp_path / ".missing.json.previous.tmp")  # nothing to swap with
    assert not (tmp_path / "missing.json").exists()


def test_swap_in_never_writes_through_a_link_at_the_spare(tmp_path):
    target, spare, outside = tmp_path / "history.json", tmp_path / ".history.json.previous.tmp", tmp_path / "outside"
    target.write_text("first")
    outside.write_text("not dlrun's")
    spare.symlink_to(outside)
    with pytest.raises(OSError):
        atomic.swap_in(target, b"second", spare)
    assert (target.read_text(), outside.read_text()) == ("first", "not dlrun's")


def test_swap_in_that_fails_half_way_removes_the_spare_and_leaves_the_file(tmp_path, monkeypatch):
    import errno

    target, spare = tmp_path / "history.json", tmp_path / ".history.json.previous.tmp"
    target.write_text("first")
    real_write = os.write

    def full_disk(descriptor, data):
        real_write(descriptor, bytes(data[:3]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(OSError, match="No space left"):
        atomic.swap_in(target, b"second", spare)
    assert target.read_text() == "first" and os.listdir(tmp_path) == ["history.json"]


def test_temp_path_beside_is_a_fresh_empty_file_in_the_target_s_folder(tmp_path):
    temp = atomic.temp_path_beside(tmp_path / "model.keras")
    assert temp.parent == tmp_path and temp.is_file() and temp.stat().st_size == 0
    assert temp.name.startswith(".model.") and temp.name.endswith(".tmp.keras")  # Keras reads the format from it
    assert atomic._TEMP_NAME.match(temp.name)  # so a killed process's temp file is found and removed
    other = atomic.temp_path_beside(tmp_path / "plot.svg", suffix=".png")
    assert other.name.startswith(".plot.") and other.name.endswith(".tmp.png") and other != temp


def test_write_with_renames_the_writer_s_file_into_place_and_leaves_no_temp(tmp_path):
    seen = []

    def writer(temp):
        seen.append(Path(temp))
        Path(temp).write_text("new")

    (tmp_path / "c.png").write_text("old")
    assert atomic.write_with(tmp_path / "c.png", writer) == tmp_path / "c.png"
    assert (tmp_path / "c.png").read_text() == "new"
    assert seen[0].parent == tmp_path and seen[0].name.endswith(".tmp.png")  # savefig picks PNG from the name
    assert os.listdir(tmp_path) == ["c.png"]
    assert oct((tmp_path / "c.png").stat().st_mode & 0o777) == oct(0o666 & ~atomic._UMASK)  # model.keras readable as any file
    atomic.write_with(tmp_path / "m.keras", writer, suffix=".h5")
    assert seen[1].name.endswith(".tmp.h5")


def test_remove_stale_temps_removes_only_the_temp_files_of_atomic_writes(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    stale = [
        tmp_path / ".history.json.ab_cd123.tmp",
        tmp_path / "checkpoints" / ".last.k3j9x0q1.tmp.npz",
        atomic.temp_path_beside(tmp_path / "model.keras"),
    ]
    for path in stale[:2]:
        path.write_text("half")
    kept = [tmp_path / "history.json", tmp_path / ".lock", tmp_path / ".hidden.tmp", tmp_path / "checkpoints" / "last.npz"]
    for path in kept:
        path.write_text("keep")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    outside.write_text("not ours")
    link = tmp_path / ".run.json.zzzzzzzz.tmp"  # a link with a temp file's name: never followed, never removed
    link.symlink_to(outside)
    removed = atomic.remove_stale_temps(tmp_path)
    assert sorted(removed) == sorted(stale)
    assert not any(path.exists() for path in stale)
    assert all(path.read_text() == "keep" for path in kept)
    assert link.is_symlink() and outside.read_text() == "not ours"


def test_remove_stale_temps_ignores_a_temp_file_that_is_already_gone(tmp_path, monkeypatch):
    """Another clean-up may remove a temp file between the listing and the unlink: that is no error."""
    monkeypatch.setattr(os, "walk", lambda folder: iter([(str(folder), [], [".run.json.abcdefgh.tmp"])]))
    assert atomic.remove_stale_temps(tmp_path) == [tmp_path / ".run.json.abcdefgh.tmp"]
