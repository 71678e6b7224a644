"""Learning-curve plots from a history: one PNG per metric, train vs validation, best epoch marked."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlrun import atomic
from dlrun.runs import history

if TYPE_CHECKING:
    import numpy as np


def learning_curves(run_history: dict[str, list], out_dir: str | Path) -> list[Path]:
    """Write `<metric>.png` for loss and every metric in `run_history`; return the paths."""
    from matplotlib import figure
    from matplotlib.backends import backend_agg

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    epochs = run_history["epoch"]
    for metric in history.metric_names(run_history):
        fig = figure.Figure(figsize=(6, 4), dpi=100)
        backend_agg.FigureCanvasAgg(fig)
        axes = fig.add_subplot()
        for key, label, style in ((metric, "train", "o-"), (f"val_{metric}", "validation", "s-")):
            if key in run_history:
                axes.plot(epochs, _floats(run_history[key]), style, markersize=3, label=label)
        best = history.best_epoch(run_history, f"val_{metric}")
        if best is not None:
            axes.axvline(best[0], color="grey", linestyle="--", linewidth=1, label=f"best val_{metric} at epoch {best[0]}")
        epoch_axis(axes)
        axes.set_ylabel(metric)
        axes.set_title(f"{metric}: train vs validation")
        axes.grid(alpha=0.3)
        axes.legend()
        fig.tight_layout()
        target = atomic.write_with(out_dir / f"{metric}.png", lambda temp: fig.savefig(temp, format="png"))
        written.append(target)
    return written


def epoch_axis(axes: Any) -> None:
    """Label the x axis `epoch` with whole-number ticks (matplotlib would mark 1.0, 1.2, ... for a few epochs)."""
    from matplotlib import ticker

    axes.set_xlabel("epoch")
    axes.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))


def _floats(values: list) -> list[float]:
    return [float("nan") if value is None else value for value in values]


def _figure(size: tuple[float, float] = (6, 4)) -> Any:
    from matplotlib import figure
    from matplotlib.backends import backend_agg

    fig = figure.Figure(figsize=size, dpi=100)
    backend_agg.FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, target: str | Path) -> Path:
    """Write `fig` as a PNG atomically."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    return atomic.write_with(target, lambda temp: fig.savefig(temp, format="png"), suffix=".png")


def confusion_matrix(matrix: list[list[int]], labels: list[str], target: str | Path, split: str) -> Path:
    """The confusion matrix as a heatmap with counts (rows: true class, columns: predicted class)."""
    size = max(4.0, 0.45 * len(labels) + 2)
    fig = _figure((size + 1, size))
    axes = fig.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=axes)
    ticks = range(len(labels))
    axes.set_xticks(list(ticks), labels, rotation=90 if len(labels) > 10 else 0)
    axes.set_yticks(list(ticks), labels)
    if len(labels) <= 20:
        peak = max((max(row) for row in matrix), default=0)
        for row, counts in enumerate(matrix):
            for column, count in enumerate(counts):
                color = "white" if peak and count > peak / 2 else "black"
                axes.text(column, row, str(count), ha="center", va="center", color=color, fontsize=8)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(f"confusion matrix: {split}")
    return _save(fig, target)


def predicted_vs_true(true: np.ndarray, predicted: np.ndarray, target: str | Path, split: str) -> Path:
    """Predicted against true values, with the diagonal a perfect model would lie on."""
    fig = _figure((5, 5))
    axes = fig.add_subplot()
    axes.scatter(true, predicted, s=10, alpha=0.6)
    low, high = float(min(min(true), min(predicted))), float(max(max(true), max(predicted)))
    axes.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1, label="perfect")
    axes.set_xlabel("true")
    axes.set_ylabel("predicted")
    axes.set_title(f"predicted vs true: {split}")
    axes.grid(alpha=0.3)
    axes.legend()
    return _save(fig, target)


def residuals(true: np.ndarray, predicted: np.ndarray, target: str | Path, split: str) -> Path:
    """Residuals (predicted - true) against the predicted value."""
    fig = _figure()
    axes = fig.add_subplot()
    axes.scatter(predicted, [p - t for p, t in zip(predicted, true)], s=10, alpha=0.6)
    axes.axhline(0, color="grey", linestyle="--", linewidth=1)
    axes.set_xlabel("predicted")
    axes.set_ylabel("residual (predicted - true)")
    axes.set_title(f"residuals: {split}")
    axes.grid(alpha=0.3)
    return _save(fig, target)


def fold_curves(
    fold_values: list[list], mean: list, smoothed: list | None, best_epoch: int | None, metric: str, target: str | Path
) -> Path:
    """K-fold curves of one validation metric: every fold (thin), their mean, the smoothed mean, the best epoch."""
    fig = _figure((7, 4.5))
    axes = fig.add_subplot()
    for index, values in enumerate(fold_values, start=1):
        axes.plot(range(1, len(values) + 1), _floats(values), linewidth=0.8, alpha=0.35, label="folds" if index == 1 else None)
    axes.plot(range(1, len(mean) + 1), _floats(mean), linewidth=2, label="mean over folds")
    if smoothed is not None:
        axes.plot(range(1, len(smoothed) + 1), _floats(smoothed), linewidth=2, linestyle="--", label="smoothed mean (EMA)")
    if best_epoch is not None:
        axes.axvline(best_epoch, color="grey", linestyle=":", linewidth=1.5, label=f"best smoothed mean {metric} at epoch {best_epoch}")
    epoch_axis(axes)
    axes.set_ylabel(metric)
    axes.set_title(f"K-fold {metric}")
    axes.grid(alpha=0.3)
    axes.legend()
    return _save(fig, target)


def compare_curves(histories: dict[str, dict[str, list]], target: str | Path) -> Path:
    """Overlay the learning curves of several runs: one panel per metric, validation solid, train dotted."""
    metrics = list(dict.fromkeys(name for run_history in histories.values() for name in history.metric_names(run_history)))
    fig = _figure((6 * max(1, len(metrics)), 4.5))
    for index, metric in enumerate(metrics, start=1):
        axes = fig.add_subplot(1, len(metrics), index)
        for position, (label, run_history) in enumerate(histories.items()):
            color = f"C{position % 10}"
            for key, style, suffix in ((f"val_{metric}", "-", "validation"), (metric, ":", "train")):
                if key in run_history:
                    axes.plot(run_history["epoch"], _floats(run_history[key]), style, color=color, label=f"{label} {suffix}")
        epoch_axis(axes)
        axes.set_ylabel(metric)
        axes.set_title(metric)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    return _save(fig, target)
