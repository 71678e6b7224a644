"""The HTML run report (`dlrun report`): one self-contained static page for a run, or several side by side.

Everything comes from the run folders' own files (run.json, config.yaml, history.json, metrics.json,
eval_*.json, kfold.json, seeds.json, sweep.json, plots/*.png, visualize/**/*.png). Images are embedded as data: URIs, so the
page needs no network and no file beside it. Every text taken from a run is HTML-escaped. TensorFlow is
never imported; matplotlib only to draw a plot the run folder lacks.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from dlrun import atomic, errors, runs
from dlrun.config import yaml_strict
from dlrun.runs import compare as comparison, history, report_html, report_metrics, table as runs_table

FILE_NAME = "report.html"
MAX_VISUALIZATION_IMAGES = 60  # per run: activations of a deep model can be hundreds of grids
_EVALUATION_PLOTS = ("confusion_matrix_", "predicted_vs_true_", "residuals_")


def write(run_dirs: Sequence[str | Path], out: str | Path | None = None) -> Path:
    """Write the report of `run_dirs` to `out` (default: RUN_DIR/report.html for one run) atomically."""
    paths = [Path(path) for path in run_dirs]
    if not paths:
        raise errors.UsageError("RUN_DIR: received nothing; expected one or more run folders")
    if out is None:
        if len(paths) > 1:
            raise errors.UsageError(f"--out: received nothing; expected an output file when reporting {len(paths)} runs")
        out = paths[0] / FILE_NAME
    out = Path(out)
    page = render(paths)
    if not out.parent.is_dir():
        raise errors.RunError(f"--out: received {str(out)!r}; expected a file in an existing folder")
    try:
        return atomic.write_text(out, page)
    except OSError as error:
        raise errors.RunError(f"--out: cannot write {str(out)!r} ({error.strerror or error})") from None


def render(run_dirs: list[Path]) -> str:
    """The whole page for `run_dirs` as one HTML string."""
    loaded = [_load(path) for path in run_dirs]
    labels = comparison.labels_for([item["path"] for item in loaded])
    with tempfile.TemporaryDirectory(prefix="dlrun-report-") as scratch:
        parts = []
        if len(loaded) == 1:
            parts.append(f"<h1>dlrun report: {report_html.escape(labels[0])}</h1>")
        else:
            parts.append(f"<h1>dlrun report: {len(loaded)} runs</h1>")
            parts.append(_overview(loaded, labels, Path(scratch)))
        for index, (item, label) in enumerate(zip(loaded, labels), start=1):
            parts.append(_run_section(item, label, index if len(loaded) > 1 else None, Path(scratch) / str(index)))
    title = labels[0] if len(labels) == 1 else f"{len(labels)} runs"
    return report_html.PAGE.substitute(title=report_html.escape(f"dlrun report: {title}"), body="\n".join(parts))


# --- reading a run folder ----------------------------------------------------------------------


def _load(path: Path) -> dict:
    run = runs.Run.open(path)  # RunError (exit 2) when it is not a run folder
    config_path = path / runs.CONFIG_FILE
    config_text = _text(config_path)
    try:
        config = yaml_strict.loads(config_text, source=str(config_path)) or {} if config_text else {}
    except errors.DlrunError:
        config = {}
    return {
        "path": path,
        "record": run.record,
        "config_text": config_text,
        "config": config if isinstance(config, dict) else {},
        "history": history.load_if_present(path / history.FILE_NAME),
        "metrics": runs_table.read_object(path / "metrics.json"),
        "evaluations": {file.stem: runs_table.read_object(file) for file in sorted(path.glob("eval_*.json"))},
        "kfold": runs_table.read_object(path / "kfold.json"),
        "seeds": runs_table.read_object(path / "seeds.json"),
        "sweep": runs_table.read_object(path / "sweep.json"),
        "row": runs_table.summarize(path, runs.utc_now()),
    }


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


# --- sections ----------------------------------------------------------------------------------


def _overview(loaded: list[dict], labels: list[str], scratch: Path) -> str:
    """Several runs: one row each, the config keys that differ, and their curves overlaid."""
    rows = []
    for index, (item, label) in enumerate(zip(loaded, labels), start=1):
        row = item["row"]
        text = runs_table.cells(row)  # the same cells as `dlrun runs`
        rows.append(
            [
                f'<a href="#run-{index}">{report_html.escape(label)}</a>',
                report_html.status(row.get("status")),
                *(report_html.escape(text[column]) for column in ("duration", "epochs", "best validation", "test", "baseline")),
            ]
        )
    parts = ["<h2>Runs</h2>", report_html.table(["run", "status", "duration", "epochs", "best validation", "test", "baseline"], rows)]
    differing = comparison.differences([item["config"] for item in loaded])
    parts.append("<h3>Config keys that differ</h3>")
    if differing:
        parts.append(
            report_html.table(
                ["key", *map(report_html.escape, labels)],
                [
                    [report_html.escape(key), *(report_html.escape(report_html.cell(value)) for value in values)]
                    for key, values in differing.items()
                ],
            )
        )
    else:
        parts.append('<p class="note">The configs are identical.</p>')
    histories = {label: item["history"] for item, label in zip(loaded, labels) if item["history"].get("epoch")}
    if histories:
        from dlrun.runs import plots

        scratch.mkdir(parents=True, exist_ok=True)
        target = plots.compare_curves(histories, scratch / "compare_curves.png")
        parts.append("<h3>Learning curves, overlaid</h3>" + report_html.figure(target, "validation solid, train dotted"))
    return "\n".join(parts)


def _run_section(item: dict, label: str, index: int | None, scratch: Path) -> str:
    record, path = item["record"], item["path"]
    heading = f'<h2 id="run-{index}">{report_html.escape(label)}</h2>' if index else ""
    parts = [heading, f'<p class="note">{report_html.escape(path)}</p>']
    parts.append(_config(item["config_text"]))
    parts.append("<h3>Status and timings</h3>" + _status_table(record))
    if record.get("error"):
        parts.append(f"<p><strong>error:</strong> {report_html.escape(record['error'])}</p>")
    if record.get("traceback"):
        parts.append(f"<details><summary>traceback</summary><pre>{report_html.escape(record['traceback'])}</pre></details>")
    parts.append(_best_epoch(item))
    metrics = item["metrics"]
    if metrics:
        parts.append(f"<h3>Test metrics and baselines</h3>{report_metrics.samples(metrics)}" + report_metrics.metrics_table(metrics))
        parts.append(report_metrics.classification_details(metrics))
    for name, payload in item["evaluations"].items():
        if payload:
            parts.append(
                f"<h3>Evaluation: {report_html.escape(name)}</h3>{report_metrics.samples(payload)}" + report_metrics.metrics_table(payload)
            )
    if item["kfold"]:
        parts.append(report_metrics.kfold(item["kfold"]))
    if item["seeds"]:
        parts.append(report_metrics.seeds(item["seeds"]))
    if item["sweep"]:
        parts.append(report_metrics.sweep(item["sweep"], record))
    parts.append(_plots(item, scratch))
    parts.append(_visualizations(path))
    return "\n".join(part for part in parts if part)


def _pruned_text(pruned: object) -> str:
    """`after epoch 3: <why>` (or `after fold 2`, `after seed 2` for a trial trained in parts); empty when not pruned."""
    if not isinstance(pruned, dict):
        return ""
    step = next((key for key in ("fold", "seed") if key in pruned), "epoch")
    return f"after {step} {pruned.get(step)}: {pruned.get('reason')}"


def _config(config_text: str | None) -> str:
    if config_text is None:
        return '<p class="note">No config.yaml in this run folder.</p>'
    return f"<details><summary>Resolved config (config.yaml)</summary><pre>{report_html.escape(config_text)}</pre></details>"


def _status_table(record: dict) -> str:
    data = record.get("data") or {}
    versions = record.get("versions") or {}
    git = record.get("git") or {}
    fields = [
        ("name", report_html.escape(record.get("name", ""))),
        ("status", report_html.status(record.get("status"))),
        ("pruned", report_html.escape(_pruned_text(record.get("pruned")))),
        ("kind", report_html.escape(record.get("kind", "train"))),
        ("started", report_html.escape(record.get("started_at", ""))),
        ("ended", report_html.escape(record.get("ended_at", ""))),
        ("duration", report_html.escape(runs_table.format_duration(record.get("duration_s")))),
        ("training time", report_html.escape(runs_table.format_duration(record.get("fit_seconds")))),
        ("epochs completed", report_html.escape(record.get("epochs_completed", ""))),
        ("seed", report_html.escape(record.get("seed", ""))),
        ("parameters", report_html.escape(f"{record['parameters']:,}" if isinstance(record.get("parameters"), int) else "")),
        ("loss", report_html.escape(record.get("loss", ""))),
        ("metrics", report_html.escape(", ".join(map(str, record.get("metrics") or [])))),
        ("data", report_html.escape(", ".join(f"{count} {split}" for split, count in (data.get("sizes") or {}).items() if count))),
        ("task", report_html.escape(data.get("task", ""))),
        ("versions", report_html.escape(", ".join(f"{name} {version}" for name, version in versions.items()))),
        ("git", report_html.escape(f"{git.get('commit', '')}{' (dirty)' if git.get('dirty') else ''}")),
        ("command", report_html.escape(" ".join(map(str, record.get("command") or [])))),
        (
            "resumed",
            report_html.escape(
                "; ".join(f"at {entry.get('at')} after epoch {entry.get('after_epoch')}" for entry in record.get("resumes") or [])
            ),
        ),
    ]
    return report_html.table(["", ""], [[report_html.escape(name), value] for name, value in fields if value], header=False)


def _best_epoch(item: dict) -> str:
    """Every validation quantity's best epoch, each named (the loss and a metric often peak apart), and the verdict."""
    found: list[tuple[str, int, float | None]] = [*history.best_epochs(item["history"])]
    recorded = item["record"].get("best_epoch") or (item["metrics"] or {}).get("best_epoch")
    if not found and isinstance(recorded, dict) and "epoch" in recorded:  # a run folder without its history
        found = [(recorded.get("monitor", "val_loss"), recorded["epoch"], recorded.get("value"))]
    lines = []
    if found:
        lines.append(
            "; ".join(
                f"best <strong>{report_html.escape(monitor)}</strong> at epoch <strong>{report_html.escape(epoch)}"
                f"</strong> ({report_html.escape(report_html.number(value))})"
                for monitor, epoch, value in found
            )
            + "."
        )
        last = (item["history"].get("epoch") or [None])[-1]
        monitor, epoch, _ = next((entry for entry in found if entry[0] == "val_loss"), found[0])
        verdict = (
            f"{monitor} stopped improving after epoch {epoch}: overfitting starts there"
            if last is not None and epoch < last
            else f"{monitor} still improving at the last epoch"
        )
        lines.append(report_html.escape(verdict) + ".")
    kfold = item["kfold"] or {}
    if kfold.get("recommended_epochs") is not None:
        lines.append(
            f"Recommended epochs (best epoch of the smoothed mean {report_html.escape(kfold.get('monitor', ''))} over folds): "
            f"<strong>{report_html.escape(kfold['recommended_epochs'])}</strong>."
        )
    return "<h3>Best epoch</h3>" + "".join(f"<p>{line}</p>" for line in lines) if lines else ""


def _plots(item: dict, scratch: Path) -> str:
    """The run's plots/*.png grouped (learning curves, K-fold curves, evaluation plots, others); learning
    curves and the confusion matrix are drawn here when the run folder lacks them."""
    plots_dir = item["path"] / "plots"
    found = {path.name: path for path in sorted(plots_dir.glob("*")) if path.suffix.lower() in report_html.IMAGE_TYPES}
    run_history = item["history"]
    curves = [f"{metric}.png" for metric in history.metric_names(run_history)] if run_history.get("epoch") else []
    missing = [name for name in curves if name not in found]
    if missing:
        from dlrun.runs import plots

        for drawn in plots.learning_curves(run_history, scratch / "curves"):
            found.setdefault(drawn.name, drawn)
    matrix = (item["metrics"] or {}).get("confusion_matrix")
    split = (item["metrics"] or {}).get("split", "test")
    if isinstance(matrix, dict) and matrix.get("matrix") and f"confusion_matrix_{split}.png" not in found:
        from dlrun.runs import plots

        scratch.mkdir(parents=True, exist_ok=True)
        labels = [str(label) for label in matrix.get("labels") or range(len(matrix["matrix"]))]
        found[f"confusion_matrix_{split}.png"] = plots.confusion_matrix(
            matrix["matrix"], labels, scratch / f"confusion_matrix_{split}.png", split
        )
    groups: dict[str, list[Path]] = {"Learning curves": [], "K-fold curves": [], "Confusion matrix and residuals": [], "Other plots": []}
    for name, path in found.items():
        if name in curves:
            groups["Learning curves"].append(path)
        elif name.startswith("kfold_"):
            groups["K-fold curves"].append(path)
        elif name.startswith(_EVALUATION_PLOTS):
            groups["Confusion matrix and residuals"].append(path)
        else:
            groups["Other plots"].append(path)
    groups["Learning curves"].sort(key=lambda path: curves.index(path.name))
    return "\n".join(
        f"<h3>{title}</h3>" + "".join(report_html.figure(path, path.name) for path in paths) for title, paths in groups.items() if paths
    )


def _visualizations(run_path: Path) -> str:
    """Images under RUN_DIR/visualize/<kind>/<timestamp>/, one collapsible group per folder."""
    root = run_path / "visualize"
    images = (
        sorted(path for path in root.rglob("*") if path.is_file() and path.suffix.lower() in report_html.IMAGE_TYPES)
        if root.is_dir()
        else []
    )
    if not images:
        return ""
    shown, left_out = images[:MAX_VISUALIZATION_IMAGES], len(images) - MAX_VISUALIZATION_IMAGES
    groups: dict[Path, list[Path]] = {}
    for path in shown:
        relative = path.relative_to(root)
        groups.setdefault(Path(*relative.parts[:2]), []).append(path)
    parts = ["<h3>Visualisations</h3>"]
    for folder, paths in groups.items():
        figures = "".join(report_html.figure(path, str(path.relative_to(root / folder))) for path in paths)
        parts.append(f"<details open><summary>{report_html.escape(folder.as_posix())} ({len(paths)} images)</summary>{figures}</details>")
    if left_out > 0:
        parts.append(f'<p class="note">{left_out} more images under {report_html.escape(root)} are not shown.</p>')
    return "\n".join(parts)
