"""The report's result sections (`dlrun.runs.report`): each metric next to the naive baselines it is judged
against, the baselines in plain words, classification details (confusion matrix, per-class scores,
residuals), a K-fold run's folds and recommendation, a seeds group's spread, and a sweep's trials (ranked,
pruned and failed ones said so, mean +- std over seeds). HTML strings, every text escaped (`dlrun.runs.report_html`).
"""

from __future__ import annotations

from pathlib import Path

from dlrun.runs import history, report_html, table as runs_table

_BASELINES = {  # metric -> the baseline keys (in metrics.json's "baseline") it is judged against
    "accuracy": ("majority_class_accuracy", "random_guess_accuracy"),
    "mae": ("mean_predictor_mae",),
    "mse": ("mean_predictor_mse",),
}


def baseline_words(baseline: dict, labels: list | None = None) -> list[str]:
    """What each naive baseline is, in plain words (`always predicting class 1 ("dog"), the most common...`)."""
    words = []
    if "majority_class" in baseline:
        majority = baseline["majority_class"]
        name = (
            f' ("{labels[majority]}")'
            if labels and isinstance(majority, int) and 0 <= majority < len(labels) and str(labels[majority]) != str(majority)
            else ""
        )
        words.append(f"majority class: always predicting class {majority}{name}, the most common class in the training data.")
    if "random_guess_accuracy" in baseline:
        words.append("random guess: guessing each class as often as it appears in the training data.")
    if "mean_prediction" in baseline:
        words.append(
            f"mean predictor: always predicting {report_html.number(baseline['mean_prediction'])}, the mean target of the training data."
        )
    return words


def samples(payload: dict) -> str:
    parts = [
        f"split {payload['split']}" if payload.get("split") else "",
        f"{payload['samples']} samples" if payload.get("samples") is not None else "",
        f"checkpoint {payload['checkpoint']}" if payload.get("checkpoint") else "",
    ]
    text = ", ".join(part for part in parts if part)
    return f'<p class="note">{report_html.escape(text)}</p>' if text else ""


def metrics_table(payload: dict) -> str:
    """Each metric next to the naive baselines it is judged against, with which one is better."""
    baseline = payload.get("baseline") or {}
    rows = []
    for metric, value in (payload.get("metrics") or {}).items():
        keys = [key for key in _BASELINES.get(metric, ()) if key in baseline]
        reference = "; ".join(f"{key.removesuffix('_' + metric).replace('_', ' ')} {report_html.number(baseline[key])}" for key in keys)
        verdict = ""
        if keys and isinstance(value, (int, float)):
            values = [baseline[key] for key in keys]
            lower = history.lower_is_better(metric)
            strongest = min(values) if lower else max(values)
            better = value < strongest if lower else value > strongest
            verdict = (
                '<span class="better">beats the baseline</span>' if better else '<span class="worse">does not beat the baseline</span>'
            )
        rows.append(
            [
                report_html.escape(metric),
                f'<td class="number">{report_html.escape(report_html.number(value))}',
                report_html.escape(reference),
                verdict,
            ]
        )
    table = report_html.table(["metric", "model", "baseline", ""], rows)
    labels = (payload.get("confusion_matrix") or {}).get("labels") if isinstance(payload.get("confusion_matrix"), dict) else None
    words = baseline_words(baseline, labels if isinstance(labels, list) else None)
    if words:
        table += '<p class="note">The baselines: ' + " ".join(report_html.escape(line) for line in words) + "</p>"
    return table


def classification_details(metrics: dict) -> str:
    parts = []
    matrix = metrics.get("confusion_matrix")
    if isinstance(matrix, dict) and matrix.get("matrix"):
        labels = [str(label) for label in matrix.get("labels") or range(len(matrix["matrix"]))]
        rows = [
            [f"<th>{report_html.escape(label)}</th>", *(f'<td class="number">{report_html.escape(count)}' for count in counts)]
            for label, counts in zip(labels, matrix["matrix"])
        ]
        parts.append(
            "<details><summary>Confusion matrix (rows: true class, columns: predicted)</summary>"
            + report_html.table(["true \\ predicted", *map(report_html.escape, labels)], rows)
            + "</details>"
        )
    per_class = metrics.get("per_class")
    if isinstance(per_class, dict) and per_class:
        rows = [
            [
                report_html.escape(name),
                *(
                    f'<td class="number">{report_html.escape(report_html.number(scores.get(key)))}'
                    for key in ("precision", "recall", "f1", "support")
                ),
            ]
            for name, scores in per_class.items()
            if isinstance(scores, dict)
        ]
        parts.append(
            "<details><summary>Per-class precision, recall, F1</summary>"
            + report_html.table(["class", "precision", "recall", "F1", "support"], rows)
            + "</details>"
        )
    residuals = metrics.get("residuals")
    if isinstance(residuals, dict):
        parts.append(
            f'<p class="note">residuals: {report_html.escape(", ".join(f"{key} {report_html.number(value)}" for key, value in residuals.items()))}</p>'
        )
    return "\n".join(parts)


def kfold(kfold: dict) -> str:
    options = ", ".join(
        f"{key} {kfold[key]}" for key in ("k", "repeats", "shuffle", "stratified", "monitor", "smoothing", "samples") if key in kfold
    )
    parts = ["<h3>K-fold validation</h3>", f'<p class="note">{report_html.escape(options)}</p>']
    monitor = kfold.get("monitor")
    rows = []
    for fold in kfold.get("folds") or []:
        best = (fold.get("best") or {}).get(monitor) or {}
        rows.append(
            [
                report_html.escape(fold.get("index", "")),
                report_html.escape(fold.get("repeat", "")),
                report_html.escape(fold.get("fold", "")),
                report_html.status(fold.get("status")),
                report_html.escape(fold.get("train_samples", "")),
                report_html.escape(fold.get("validation_samples", "")),
                f'<td class="number">{report_html.escape(report_html.number((fold.get("last") or {}).get(monitor)))}',
                report_html.escape(f"{report_html.number(best.get('value'))} @{best.get('epoch')}" if best else ""),
                report_html.escape(runs_table.format_duration(fold.get("seconds"))),
            ]
        )
    if rows:
        parts.append(
            report_html.table(["fold", "repeat", "k", "status", "train", "validation", f"last {monitor}", f"best {monitor}", "time"], rows)
        )
    summary = kfold.get("summary") or {}
    if summary:
        summary_rows = [
            [
                report_html.escape(metric),
                report_html.escape(f"{report_html.number(values.get('last_mean'))} ± {report_html.number(values.get('last_std'))}"),
                report_html.escape(f"{report_html.number(values.get('best_mean'))} ± {report_html.number(values.get('best_std'))}"),
            ]
            for metric, values in summary.items()
            if isinstance(values, dict)
        ]
        parts.append("<p>Over the folds (mean ± std):</p>" + report_html.table(["metric", "last epoch", "best epoch"], summary_rows))
    if kfold.get("recommended_epochs") is not None:
        parts.append(f"<p>Recommended epochs: <strong>{report_html.escape(kfold['recommended_epochs'])}</strong></p>")
    final = kfold.get("final_test")
    if isinstance(final, dict) and final.get("metrics"):
        parts.append("<p>Final fit on all folds' data, on the test split:</p>" + metrics_table(final))
    return "\n".join(parts)


def seeds(group: dict) -> str:
    """A seeds group: each seed's run and test metrics, then mean +- std, min and max over them."""
    rows = [
        [
            report_html.escape(child.get("seed", "")),
            report_html.status(child.get("status")),
            report_html.escape(Path(child.get("run") or "").name),
            report_html.escape(
                ", ".join(f"{name} {report_html.number(value)}" for name, value in ((child.get("metrics") or {}).get("test") or {}).items())
            ),
        ]
        for child in group.get("children") or []
    ]
    parts = ["<h3>Seeds</h3>", report_html.table(["seed", "status", "run", "test"], rows)]
    spread_rows = [
        [
            report_html.escape(f"{'test' if section == 'test' else 'best'} {name}"),
            report_html.escape(runs_table.spread_text(values)),
            f'<td class="number">{report_html.number(values.get("min"))}',
            f'<td class="number">{report_html.number(values.get("max"))}',
        ]
        for section, metrics in (group.get("aggregate") or {}).items()
        for name, values in metrics.items()
    ]
    if spread_rows:
        parts.append(
            "<p>Over the seeds (mean +- population std):</p>" + report_html.table(["metric", "mean +- std", "min", "max"], spread_rows)
        )
    return "\n".join(parts)


def sweep(state: dict, record: dict) -> str:
    """A sweep (its sweep.json `state` and run.json `record`): how many trials ended how, then every trial, the
    completed ones ranked best first (mean +- std over seeds for a trial trained over seeds), then the pruned
    ones (at which epoch, fold or seed, and why) and the failed ones (with their error); never a pruned or
    failed trial among the ranked. With `--final`, the best trial's refit on test next to the baseline."""
    search = _mapping(state.get("search"))
    metric, trials = search.get("metric", ""), [trial for trial in state.get("trials") or [] if isinstance(trial, dict)]
    counts = {status: sum(trial.get("status") == status for trial in trials) for status in ("completed", "pruned", "failed", "running")}
    said = [f"sampler {search.get('sampler')}", f"pruner {search.get('pruner')}", f"metric {metric} ({search.get('direction')})"]
    said += [f"{search['seeds']} seeds per trial"] if (search.get("seeds") or 1) > 1 else []
    said += [f"{search['kfold']}-fold cross-validated trials"] if search.get("kfold") else []
    ended = ", ".join(f"{count} {status}" for status, count in counts.items() if count)
    parts = [
        "<h3>Sweep</h3>",
        f'<p class="note">{report_html.escape(", ".join(said))}</p>',
        f"<p>{report_html.escape(len(trials))} of {report_html.escape(state.get('trials_total', len(trials)))} trials: "
        f"{report_html.escape(ended or 'none finished')}.</p>",
    ]
    by_number = {trial["number"]: trial for trial in trials if isinstance(trial.get("number"), int)}
    ranking = state["ranking"] if isinstance(state.get("ranking"), list) else []
    ranked = [
        by_number[number]
        for number in ranking
        if isinstance(number, int) and number in by_number and by_number[number].get("status") == "completed"
    ]
    keys = list(search.get("space") or {})
    spread = any(trial.get("spread") for trial in trials)
    score = f"mean best {metric} over folds" if search.get("kfold") else f"best {metric}"
    headers = ["rank", "trial", *(report_html.escape(key) for key in keys), report_html.escape(score), "epoch"]
    headers += [f"test (mean {report_html.escape('+-')} std)"] if spread else []
    rows = []
    for position, trial in [*enumerate(ranked, start=1), *(("-", trial) for trial in trials if trial not in ranked)]:
        best, values = _mapping(trial.get("best")), _mapping(trial.get("overrides"))
        row = [
            report_html.escape(position),
            report_html.escape(trial.get("number", "")),
            *(report_html.escape(report_html.cell(values.get(key, ""))) for key in keys),
            f'<td class="number">{report_html.escape(_trial_score(trial, metric))}',
            report_html.escape(best.get("epoch", "") or ""),
        ]
        if spread:
            tests = ((trial.get("spread") or {}).get("test") or {}).items()
            row.append(report_html.escape("; ".join(f"{name} {runs_table.spread_text(values)}" for name, values in tests)))
        rows.append(
            [
                *row,
                report_html.status(trial.get("status")),
                report_html.escape(_trial_outcome(trial)),
                report_html.escape(Path(trial.get("run") or "").name),
            ]
        )
    parts.append(report_html.table([*headers, "status", "how it ended", "run"], rows))
    final = record.get("final")
    if isinstance(final, dict) and final.get("metrics"):
        parts.append(
            f"<p>The best trial refit on the whole training split for {report_html.escape(final.get('epochs', ''))} epochs "
            "(--final), on the test split:</p>" + metrics_table(final)
        )
    return "\n".join(parts)


def _trial_score(trial: dict, metric: str) -> str:
    """The trial's score: `0.4100 +- 0.0200 (n=2)` over seeds, else its best value; empty when it has none."""
    found = ((trial.get("spread") or {}).get("validation") or {}).get(metric)
    if isinstance(found, dict):
        return runs_table.spread_text(found)
    best = _mapping(trial.get("best"))
    return report_html.number(best.get("value")) if best.get("value") is not None else ""


def _mapping(value: object) -> dict:
    """`value` when it is a JSON object, else an empty one (a damaged sweep.json shows less, never a traceback)."""
    return value if isinstance(value, dict) else {}


def _trial_outcome(trial: dict) -> str:
    """`pruned at epoch 3: <why>`, `pruned after fold 2: <why>`, `failed at epoch 2: <error>`, `repeat of trial 4,
    not trained again: ...`, or nothing."""
    pruned, status = trial.get("pruned"), trial.get("status")
    if trial.get("repeat_of") is not None:  # a repeated point took that trial's outcome (search.repeats: reuse)
        earlier = _trial_outcome({key: value for key, value in trial.items() if key != "repeat_of"})
        return f"repeat of trial {trial['repeat_of']}, not trained again" + (f" ({earlier})" if earlier else "")
    if status == "pruned" and isinstance(pruned, dict):
        step = next((key for key in ("fold", "seed") if key in pruned), "epoch")
        return f"pruned {'at' if step == 'epoch' else 'after'} {step} {pruned.get(step)}: {pruned.get('reason', '')}"
    if status == "failed":
        where = f" at epoch {(trial.get('epochs') or 0) + 1}" if trial.get("run") else ""
        return f"failed{where}: {trial.get('error', '')}"
    return ""
