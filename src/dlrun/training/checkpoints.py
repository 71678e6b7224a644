"""Training state checkpoints for `dlrun train --resume`: every variable, every epoch, atomically.

`checkpoints/last.npz` holds the model's variables (weights, normalisation statistics, dropout seed
states), the optimizer's variables (step count, moments) and the number of completed epochs. The
previous epoch's file is kept as `checkpoints/previous.npz` and used when the latest is unreadable.
Plain NumPy arrays, loaded with `allow_pickle=False`: a checkpoint cannot execute code.
"""

from __future__ import annotations

import io
import os
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
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return write(run_path, buffer.getvalue())


def write(run_path: Path, data: bytes) -> Path:
    """Write a checkpoint file's bytes as the latest state, keeping the one before as previous (also how
    a driver writes the checkpoints a worker without a shared file system streams back)."""
    latest = run_path / LATEST
    latest.parent.mkdir(parents=True, exist_ok=True)
    if latest.exists():
        # the previous one goes first, so no file is renamed over another (ext4 flushes one that is, see
        # atomic.write_bytes); at every moment the newest complete state is in last.npz or previous.npz
        (run_path / PREVIOUS).unlink(missing_ok=True)
        os.replace(latest, run_path / PREVIOUS)
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
