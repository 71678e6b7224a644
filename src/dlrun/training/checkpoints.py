"""Training state checkpoints for `dlrun train --resume`: every variable, every epoch, atomically.

`checkpoints/last.npz` holds the model's variables (weights, normalisation statistics, dropout seed
states), the optimizer's variables (step count, moments) and the number of completed epochs. The
previous epoch's file is kept as `checkpoints/previous.npz` and used when the latest is unreadable.
Plain NumPy arrays, loaded with `allow_pickle=False`: a checkpoint cannot execute code.
"""

from __future__ import annotations

import functools
import io
import os
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dlrun import atomic, errors

LATEST = "checkpoints/last.npz"
PREVIOUS = "checkpoints/previous.npz"


def save(run_path: Path, model: Any, epochs_completed: int) -> Path:
    """Write the training state after `epochs_completed` epochs; keep the one before as previous."""
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    optimizer_variables = model.optimizer.variables if model.optimizer is not None else []
    return save_arrays(
        run_path,
        [variable.numpy() for variable in model.variables],
        [variable.numpy() for variable in optimizer_variables],
        epochs_completed,
    )


def save_arrays(run_path: Path, model_arrays: list[Any], optimizer_arrays: list[Any], epochs_completed: int) -> Path:
    """`save` from the values themselves: `model_arrays` in the order of `model.variables`, `optimizer_arrays`
    in the order of `model.optimizer.variables` (copies trained together write theirs from stacked arrays)."""
    arrays: dict[str, Any] = {"epochs_completed": np.array(epochs_completed)}
    arrays.update({f"model/{index}": np.asarray(array) for index, array in enumerate(model_arrays)})
    arrays.update({f"optimizer/{index}": np.asarray(array) for index, array in enumerate(optimizer_arrays)})
    return write(run_path, npz_bytes(arrays))


def npz_bytes(arrays: dict[str, Any]) -> bytes:
    """The bytes of the `.npz` file `np.savez(file, **arrays)` writes (an uncompressed zip of one `.npy` per
    array, read back by `np.load`), built directly: `np.savez` goes through `zipfile`, whose per-member work
    cost about 0.2 ms a checkpoint, more than a small model's epoch. Arrays of objects, and files too large for
    a plain zip (4 GiB), still go through `np.savez`."""
    members: list[tuple[bytes, bytes, memoryview]] = []  # (member name, its .npy header, the array's bytes)
    for key, value in arrays.items():
        array = np.asarray(value)
        array = array if array.flags.c_contiguous else array.copy(order="C")
        if array.dtype.hasobject:
            return _savez(arrays)
        members.append((f"{key}.npy".encode(), _npy_header(array.dtype, array.shape), array.reshape(-1).view(np.uint8).data))
    if sum(len(header) + len(data) + 2 * len(name) + 76 for name, header, data in members) >= 2**32 - 2**16:
        return _savez(arrays)
    parts: list[bytes | memoryview] = []
    directory, offset = [], 0
    for name, header, data in members:
        size, crc = len(header) + len(data), zlib.crc32(data, zlib.crc32(header))
        # stored (no compression), version 2.0, dated 1980-01-01 00:00 (the zip epoch)
        local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21, crc, size, size, len(name), 0) + name
        directory.append(
            struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0x21, crc, size, size, len(name), 0, 0, 0, 0, 0, offset) + name
        )
        parts += [local, header, data]
        offset += len(local) + size
    central = b"".join(directory)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), offset, 0)
    return b"".join([*parts, central, end])


@functools.lru_cache(maxsize=4096)
def _npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """The `.npy` header of a C-ordered array (a checkpoint's arrays keep their dtypes and shapes every epoch)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape})
    return header.getvalue()


def _savez(arrays: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def write(run_path: Path, data: bytes) -> Path:
    """Write a checkpoint file's bytes as the latest state, keeping the one before as previous (also how
    a driver writes the checkpoints a worker without a shared file system streams back)."""
    latest, previous = run_path / LATEST, run_path / PREVIOUS
    latest.parent.mkdir(parents=True, exist_ok=True)
    if latest.exists():
        # the new state is written over the previous one's file, which then swaps names with last.npz: at
        # every moment the newest complete state is in last.npz or previous.npz, and no file is created or
        # renamed over another (ext4 flushes one that is, see atomic.write_bytes)
        if atomic.swap_in(latest, data, previous):
            return latest
        # where files cannot be swapped: the previous one goes first, then last.npz becomes it
        previous.unlink(missing_ok=True)
        os.replace(latest, previous)
    return atomic.write_bytes(latest, data, durable=False)


def exists(run_path: Path) -> bool:
    """Whether `run_path` holds a checkpoint to continue from (the latest or the previous one)."""
    return any((run_path / name).exists() for name in (LATEST, PREVIOUS))


def latest_bytes(run_path: Path) -> bytes | None:
    """The newest checkpoint file's bytes (last, else previous), or None when there is none."""
    for name in (LATEST, PREVIOUS):
        if (run_path / name).is_file():
            return (run_path / name).read_bytes()
    return None


def restore(run_path: Path, model: Any, before_assign: Callable[[int], None] | None = None) -> tuple[int, str]:
    """Load the newest readable training state into `model` (built and compiled); return (epochs, file used).

    `before_assign(epochs_completed)` runs before the variables are assigned, to put the model in the
    state it had then (e.g. a fine-tuning phase: layers unfrozen, its optimizer compiled).
    """
    problems = []
    for name in (LATEST, PREVIOUS):
        path = run_path / name
        if not path.exists():
            continue
        try:
            if path.stat().st_size == 0:
                raise ValueError("empty file")
            epochs = _restore_from(path, model, before_assign)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as error:
            problems.append(f"{path}: {error or type(error).__name__}")
            continue
        return epochs, name
    detail = "; ".join(problems) if problems else f"neither {LATEST} nor {PREVIOUS} exists"
    raise errors.RunError(f"{run_path}: no usable training checkpoint to resume from ({detail})")


def _restore_from(path: Path, model: Any, before_assign: Callable[[int], None] | None = None) -> int:
    # opened here, not by np.load: NumPy leaves its own file open when the zip inside is truncated
    with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as stored:
        if before_assign is not None:
            before_assign(int(stored["epochs_completed"]))
        stored_count = sum(1 for key in stored.files if key.startswith("model/"))
        if stored_count != len(model.variables):
            raise ValueError(f"the checkpoint holds {stored_count} model variables, the model has {len(model.variables)}")
        model_arrays = [stored[f"model/{index}"] for index in range(len(model.variables))]
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        optimizer_variables = model.optimizer.variables if model.optimizer is not None else []
        stored_optimizer = sum(1 for key in stored.files if key.startswith("optimizer/"))
        if stored_optimizer != len(optimizer_variables):
            raise ValueError(
                f"the checkpoint holds {stored_optimizer} optimizer variables, the configured optimizer "
                f"has {len(optimizer_variables)} (resumed with other optimizer settings?)"
            )
        optimizer_arrays = [stored[f"optimizer/{index}"] for index in range(len(optimizer_variables))]
        epochs = int(stored["epochs_completed"])
    for variable, array in zip(model.variables, model_arrays):
        if tuple(variable.shape) != array.shape:
            raise ValueError(f"variable {variable.path} has shape {tuple(variable.shape)}, checkpoint has {array.shape}")
    for variable, array in zip(list(model.variables) + list(optimizer_variables), model_arrays + optimizer_arrays):
        variable.assign(array)
    return epochs
