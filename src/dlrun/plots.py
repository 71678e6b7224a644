"""Learning-curve plots from a history: one PNG per metric, train vs validation, best epoch marked."""

from __future__ import annotations

from pathlib import Path

from dlrun import atomic, history


def learning_curves(run_history: dict[str, list], out_dir: str | Path) -> list[Path]:
    """Write `<metric>.png` for loss and every metric in `run_history`; return the paths."""
    from matplotlib.backends import backend_agg
    from matplotlib import figure

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
            axes.axvline(best[0], color="grey", linestyle="--", linewidth=1, label=f"best validation (epoch {best[0]})")
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
        axes.set_title(f"{metric}: train vs validation")
        axes.grid(alpha=0.3)
        axes.legend()
        fig.tight_layout()
        target = out_dir / f"{metric}.png"
        temp = atomic.temp_path_beside(target)
        try:
            fig.savefig(temp, format="png")
            temp.replace(target)
        finally:
            temp.unlink(missing_ok=True)
        written.append(target)
    return written


def _floats(values: list) -> list[float]:
    return [float("nan") if value is None else value for value in values]
