"""The callback registry: `train.callbacks[].name` -> builder of a Keras callback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlrun import backend, registry

if TYPE_CHECKING:
    from dlrun.config import schema

BEST_CHECKPOINT = "checkpoints/best.keras"


def early_stopping(config: schema.EarlyStoppingCallback, run_path: Path) -> Any:
    """keras.callbacks.EarlyStopping: stop when the monitored value stops improving."""
    keras = backend.import_keras()

    return keras.callbacks.EarlyStopping(
        monitor=config.monitor,
        patience=config.patience,
        min_delta=config.min_delta,
        mode=config.mode,
        restore_best_weights=config.restore_best_weights,
    )


def checkpoint(config: schema.CheckpointCallback, run_path: Path) -> Any:
    """keras.callbacks.ModelCheckpoint: keep checkpoints/best.keras, the best model so far."""
    keras = backend.import_keras()

    target = run_path / BEST_CHECKPOINT
    target.parent.mkdir(parents=True, exist_ok=True)
    return keras.callbacks.ModelCheckpoint(filepath=str(target), monitor=config.monitor, mode=config.mode, save_best_only=True)


def reduce_lr_on_plateau(config: schema.ReduceLROnPlateauCallback, run_path: Path) -> Any:
    """keras.callbacks.ReduceLROnPlateau: lower the learning rate when progress stalls."""
    keras = backend.import_keras()

    return keras.callbacks.ReduceLROnPlateau(
        monitor=config.monitor,
        factor=config.factor,
        patience=config.patience,
        min_lr=config.min_learning_rate,
        mode=config.mode,
    )


CALLBACKS: dict[str, Callable[[Any, Path], Any]] = {
    "early_stopping": early_stopping,
    "checkpoint": checkpoint,
    "reduce_lr_on_plateau": reduce_lr_on_plateau,
}


def build_all(callback_configs: list[schema.CallbackConfig], run_path: Path) -> list:
    """Keras callbacks for every entry of `train.callbacks`, in order."""
    return [registry.lookup(CALLBACKS, item.name, "callback")(item, run_path) for item in callback_configs]
