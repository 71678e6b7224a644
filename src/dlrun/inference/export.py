"""`dlrun export`: a run's model in a format other tools load (Keras, TensorFlow SavedModel, ONNX).

The model carries its preprocessing (dlrun.models.inputs), so every export takes the same raw
inputs as `dlrun predict`. Exports are written beside their target under a temporary name and then
renamed into place, and an existing output is never replaced.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlrun import errors, runs, terminal

if TYPE_CHECKING:
    from rich.console import Console

FORMATS = {  # --format -> the default output name, inside RUN_DIR/export/
    "keras": "model.keras",
    "saved_model": "saved_model",
    "onnx": "model.onnx",
}
ONNX_PACKAGES = ("tf2onnx", "onnx")


def export_run(run_dir: str | Path, export_format: str, console: Console, out: Path | None = None, checkpoint: str = "final") -> Path:
    """Export the run's model as `export_format` to `out` (default RUN_DIR/export/<name>); return the path."""
    from dlrun import registry
    from dlrun.training import evaluation

    run = runs.Run.open(run_dir)
    default_name = registry.lookup(FORMATS, export_format, "export format", option="--format")
    if checkpoint not in evaluation.CHECKPOINTS:
        raise errors.UsageError(f"--checkpoint: received {checkpoint!r}; expected one of {', '.join(evaluation.CHECKPOINTS)}")
    model_path = run.path / evaluation.CHECKPOINTS[checkpoint]
    if not model_path.is_file():
        raise errors.RunError(f"{model_path}: no such file; expected a completed run saved with output.save_model: true")
    if out is None:
        runs.refuse_links_in(run.path, "export")  # a planted link never takes the export outside the run
    target = Path(out) if out is not None else run.path / "export" / default_name
    if target.exists():
        raise errors.UsageError(f"--out: {target} already exists; expected a new path (remove it first, or choose another --out)")
    if export_format == "keras" and target.suffix != ".keras":
        raise errors.UsageError(f"--out: received {str(target)!r}; expected a file name ending in .keras for --format keras")
    if export_format == "onnx":
        missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
        if missing:
            raise errors.UsageError(
                f"--format: received 'onnx', which needs {' and '.join(missing)} (not installed); "
                "expected them installed: pip install 'dlrun[onnx]' (or pip install tf2onnx onnx)"
            )
    if out is not None and not target.parent.is_dir():
        raise errors.UsageError(f"--out: received {str(target)!r}; expected a path in an existing folder")
    if out is None and not target.parent.is_dir():  # RUN_DIR/export: refused before Keras loads when it cannot be made
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise errors.RunError(
                f"--out: received {str(target)!r}, but cannot create a folder in {str(target.parent.parent)!r} "
                f"({error.strerror or error}); expected a path in a folder this user can write"
            ) from None
    runs.check_writable(target.parent, "--out", target)

    from dlrun import backend, models

    console.print(f"[bold]dlrun export[/bold] {terminal.text(run.path)}: importing TensorFlow...", highlight=False, soft_wrap=True)
    backend.import_keras()
    model = models.load_model(model_path)  # a damaged, foreign or unsafe file is a RunError naming it
    _write(model, export_format, target)
    console.print(f"exported {terminal.text(model_path)} as {export_format}: {terminal.text(target)}", highlight=False, soft_wrap=True)
    return target


def _call_once(model: Any) -> None:
    """Call a freshly loaded model on one zero sample: Keras' ONNX export refuses a model never called."""
    import numpy as np

    shape = [1 if size is None else size for size in model.inputs[0].shape[1:]]
    model(np.zeros((1, *shape), dtype=model.inputs[0].dtype), training=False)


def _write(model: Any, export_format: str, target: Path) -> None:
    """Write into a temporary folder beside `target`, then rename into place (never half an export)."""
    staging = None
    try:
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
        written = staging / target.name
        if export_format == "keras":
            model.save(written)
        elif export_format == "saved_model":
            model.export(str(written), format="tf_saved_model", verbose=False)
        else:
            _call_once(model)
            with warnings.catch_warnings():  # tf2onnx's NumPy 2 shims warn on import
                warnings.simplefilter("ignore", FutureWarning)
                model.export(str(written), format="onnx", verbose=False)
        if target.exists():  # appeared while exporting: still never replaced
            raise errors.UsageError(f"--out: {target} already exists; expected a new path")
        os.rename(written, target)
    except errors.DlrunError:
        raise
    except Exception as error:  # a layer the format cannot express, a full disk: say so, without a traceback
        raise errors.RunError(f"exporting as {export_format} to {target} failed ({type(error).__name__}: {error})") from None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
