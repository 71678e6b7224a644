"""Learning curves from `history.json` alone (no TensorFlow): one run, or several runs overlaid.

One run: `dlrun.runs.plots.learning_curves` (train vs validation, best validation epoch marked). Several
runs: one PNG per metric with every run's train (dashed) and validation (solid) curves in one colour
per run, each run's best validation epoch marked with a dot.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dlrun import errors, runs
from dlrun.runs import history, plots
from dlrun.visualize import output


def read(run_dirs: list[Path]) -> dict[str, dict]:
    """{label: history} for each run folder; a DataError names a folder without a usable history."""
    if not run_dirs:
        raise errors.RunError("RUN_DIR: received nothing; expected one or more run folders")
    found: dict[str, dict] = {}
    for run_dir in map(Path, run_dirs):
        path = run_dir / history.FILE_NAME
        if not path.is_file():
            why = "no such folder" if not run_dir.exists() else f"no {history.FILE_NAME}"
            raise errors.RunError(f"RUN_DIR: received {str(run_dir)!r} ({why}); expected a dlrun run folder with {history.FILE_NAME}")
        loaded = history.load(path)  # a RunError names a damaged file
        if not loaded.get("epoch"):
            raise errors.RunError(f"{path}: holds no epochs yet; expected at least one finished epoch")
        label = run_dir.resolve().name
        found[label if label not in found else f"{label} ({len(found) + 1})"] = loaded
    return found


def run(run_dirs: list[Path], out_root: Path | None, echo: Callable[[str], None]) -> Path:
    """Write the curves of one run (or several, overlaid) into a new folder; return it."""
    histories = read(run_dirs)
    if out_root is None:
        runs.refuse_links_in(run_dirs[0], "visualize")
    root = out_root or Path(run_dirs[0]) / "visualize"
    folder = output.new_folder(root, "curves")
    if len(histories) == 1:
        written = plots.learning_curves(next(iter(histories.values())), folder)
    else:
        written = overlaid(histories, folder)
    for label, run_history in histories.items():
        echo(f"{label}: {len(run_history['epoch'])} epochs, {history.describe_best(run_history) or 'no validation values recorded'}")
    echo(f"wrote {', '.join(path.name for path in written)} in {folder}")
    return folder


def overlaid(histories: dict[str, dict], folder: Path) -> list[Path]:
    """One `<metric>.png` per metric any run has, every run's curves on the same axes."""
    from matplotlib import figure as matplotlib_figure
    from matplotlib.backends import backend_agg

    metrics = list(dict.fromkeys(name for run_history in histories.values() for name in history.metric_names(run_history)))
    written = []
    for metric in metrics:
        fig = matplotlib_figure.Figure(figsize=(7, 4.5), dpi=100)
        backend_agg.FigureCanvasAgg(fig)
        axes = fig.add_subplot()
        for number, (label, run_history) in enumerate(histories.items()):
            colour = f"C{number % 10}"
            epochs = run_history["epoch"]
            if metric in run_history:
                axes.plot(epochs, _floats(run_history[metric]), "--", color=colour, linewidth=1, label=f"{label} train")
            if f"val_{metric}" in run_history:
                axes.plot(epochs, _floats(run_history[f"val_{metric}"]), "-", color=colour, label=f"{label} validation")
                best = history.best_epoch(run_history, f"val_{metric}")
                if best is not None:
                    axes.plot([best[0]], [best[1]], "o", color=colour, markersize=6)
        plots.epoch_axis(axes)
        axes.set_ylabel(metric)
        axes.set_title(f"{metric}: {len(histories)} runs (dashed: train, solid: validation, dot: best val_{metric})")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
        fig.tight_layout()
        written.append(output.save_figure(fig, folder / f"{metric}.png"))
    return written


def _floats(values: list) -> list[float]:
    return [float("nan") if value is None else value for value in values]
