"""TensorBoard logs of a run (`train.tensorboard: true`): Keras' TensorBoard callback writing into
RUN_DIR/tensorboard/, and the `tensorboard --logdir` command that shows them."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dlrun.config import schema

LOG_DIR = "tensorboard"


def callback(run_path: Path) -> Any:
    """keras.callbacks.TensorBoard writing epoch-level scalars and the graph into RUN_DIR/tensorboard/."""
    from dlrun import backend

    backend.import_tensorflow()  # TensorBoard writes through TensorFlow on every backend: quietly
    keras = backend.import_keras()
    return keras.callbacks.TensorBoard(log_dir=str(Path(run_path) / LOG_DIR), update_freq="epoch")


def has_logs(run_path: str | Path) -> bool:
    """Whether the run folder holds TensorBoard event files."""
    folder = Path(run_path) / LOG_DIR
    return folder.is_dir() and any(folder.rglob("events.out.tfevents.*"))


def command(run_path: str | Path) -> str | None:
    """`tensorboard --logdir RUN_DIR/tensorboard` when the run has logs, else None."""
    if not has_logs(run_path):
        return None
    return f"tensorboard --logdir {shlex.quote(str(Path(run_path) / LOG_DIR))}"


def problems(config: schema.Config) -> list[str]:
    """Why `train.tensorboard: true` cannot work here (TensorFlow needs the tensorboard package to write
    summaries), checked before any run folder exists."""
    import importlib.util

    if config.train.tensorboard and importlib.util.find_spec("tensorboard") is None:
        return [
            "train.tensorboard: received true, but the tensorboard package is not installed; "
            "expected it installed: pip install 'dlrun[tensorboard]'"
        ]
    return []
