"""`dlrun report`: the HTML page from hand-made run folders (no TensorFlow), and in a real headless Chromium
for a trained quickstart-style run and a K-fold run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlrun.runs import report, report_metrics
from tests.conftest import CONFIGS, invoke, run_folders, tiny_png, write_completed_run

HOSTILE = "<script>console.error('xss-name')</script>"
HOSTILE_CONFIG = "<img src=x onerror=\"console.error('xss-config')\">"


def test_one_run_goes_to_run_dir_report_html(tmp_path):
    run = write_completed_run(tmp_path / "20260102T100000Z_digits", plots=True)
    result = invoke("report", run)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"report: {run / 'report.html'}"
    page = (run / "report.html").read_text(encoding="utf-8")
    for expected in (
        "Resolved config (config.yaml)",
        "<details>",
        "Status and timings",
        "1m 15s",
        "best <strong>val_loss</strong> at epoch <strong>2</strong> (0.6000); "
        "best <strong>val_accuracy</strong> at epoch <strong>2</strong> (0.8500).",
        "val_loss stopped improving after epoch 2: overfitting starts there.",
        "Test metrics and baselines",
        "majority class 0.5500; random guess 0.5000",
        "beats the baseline",
        "majority class: always predicting class 0 (&quot;cat&quot;), the most common class in the training data.",
        "random guess: guessing each class as often as it appears in the training data.",
        "Learning curves",
        "Confusion matrix and residuals",
    ):
        assert expected in page, expected
    assert page.count('<img src="data:image/png;base64,') == 3  # the run's own PNGs, embedded
    assert "http://" not in page and "https://" not in page  # nothing from the network
    assert "baseline details" not in page and "majority_class 0" not in page  # no raw keys for the baselines


def test_baselines_in_plain_words():
    assert report_metrics.baseline_words({"majority_class": 1, "majority_class_accuracy": 0.6}, ["0", "1"]) == [
        "majority class: always predicting class 1, the most common class in the training data."
    ]
    assert report_metrics.baseline_words({"mean_prediction": 22.5, "mean_predictor_mae": 6.5}) == [
        "mean predictor: always predicting 22.5000, the mean target of the training data."
    ]


def test_missing_learning_curves_are_drawn(tmp_path):
    run = write_completed_run(tmp_path / "run", plots=False)
    page = report.render([run])
    # loss and accuracy curves (matplotlib, from history.json) and the confusion matrix (from metrics.json)
    assert page.count('<img src="data:image/png;base64,') == 3
    assert "loss.png" in page and "accuracy.png" in page and "confusion_matrix_test.png" in page
    assert not (run / "plots").exists()  # drawn for the page only; the run folder is left as it was


def test_text_from_run_files_is_escaped(tmp_path):
    run = write_completed_run(tmp_path / "run", name=HOSTILE, config=f"name: x\nnote: {json.dumps(HOSTILE_CONFIG)}\n", plots=True)
    page = report.render([run])
    assert "<script" not in page.lower()  # the page has no script of its own, and none got in
    assert "<img src=x" not in page
    assert "&lt;script&gt;console.error(&#x27;xss-name&#x27;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=" in page


def test_several_runs_compared_on_one_page(tmp_path):
    first = write_completed_run(tmp_path / "a", config="name: a\nseed: 1\n", plots=True)
    second = write_completed_run(tmp_path / "b", config="name: a\nseed: 2\n", plots=True)
    out = tmp_path / "both.html"
    result = invoke("report", first, second, "--out", out)
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert "dlrun report: 2 runs" in page and 'href="#run-1"' in page and 'id="run-2"' in page
    assert "<tr><td>seed</td><td>1</td><td>2</td></tr>" in page  # the config key that differs
    assert "Learning curves, overlaid" in page


@pytest.mark.parametrize(
    "make_args, expected",
    [
        (
            lambda tmp: [write_completed_run(tmp / "a"), write_completed_run(tmp / "b")],
            "--out: received nothing; expected an output file when reporting 2 runs",
        ),
        (lambda tmp: [tmp], "not a dlrun run folder (no run.json)"),
        (
            lambda tmp: [write_completed_run(tmp / "a"), "--out", tmp / "missing" / "r.html"],
            "r.html'; expected a file in an existing folder",
        ),
    ],
    ids=["several runs without --out", "not a run folder", "--out in a missing folder"],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, make_args, expected):
    result = invoke("report", *make_args(tmp_path))
    assert result.exit_code == 2, result.output
    assert expected in result.stderr and result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert not list(tmp_path.rglob("*.html"))


# --- in a real browser -----------------------------------------------------------------------------


def open_page(browser, page_path: Path, screenshot: Path) -> tuple[object, list[str]]:
    """Load the report; return the page and every console message, page error or dialog it raised."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    events: list[str] = []
    page.on("console", lambda message: events.append(f"console {message.type}: {message.text}"))
    page.on("pageerror", lambda error: events.append(f"page error: {error}"))
    page.on("dialog", lambda dialog: (events.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    page.on("request", lambda request: None if request.url.startswith(("file:", "data:")) else events.append(f"request: {request.url}"))
    page.goto(page_path.resolve().as_uri(), wait_until="load")
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
    return page, events


def image_widths(page) -> list[int]:
    return page.evaluate("Array.from(document.images, image => image.complete ? image.naturalWidth : 0)")


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory) -> dict[str, Path]:
    """A quickstart-style run (digits convnet, 2 epochs, report written by `train --report`) and a K-fold run."""
    root = tmp_path_factory.mktemp("report_runs")
    result = invoke(
        "train",
        CONFIGS / "quickstart.yaml",
        "--report",
        "--set",
        f"output.runs_root={root / 'train'}",
        "--set",
        "train.epochs=2",
        "--set",
        "model.filters=[8, 8]",
        "--set",
        "model.dense_units=[16]",
    )
    assert result.exit_code == 0, result.output
    (quickstart,) = run_folders(root / "train")
    assert f"report: {quickstart / 'report.html'}" in result.stdout
    result = invoke(
        "kfold",
        CONFIGS / "smoke" / "mlp_regression.yaml",
        "--k",
        "2",
        "--set",
        "train.epochs=3",
        "--set",
        f"output.runs_root={root / 'kfold'}",
    )
    assert result.exit_code == 0, result.output
    (kfold,) = run_folders(root / "kfold")
    return {"quickstart": quickstart, "kfold": kfold}


@pytest.mark.slow
def test_quickstart_report_in_chromium(browser, trained_runs, tmp_path):
    page, events = open_page(browser, trained_runs["quickstart"] / "report.html", tmp_path / "quickstart_report.png")
    assert events == []
    widths = image_widths(page)
    assert len(widths) == 3 and all(width > 0 for width in widths), widths  # loss, accuracy, confusion matrix
    text = page.inner_text("body")
    for expected in (
        "Status and timings",
        "completed",
        "Learning curves",
        "Test metrics and baselines",
        "majority class",
        "random guess",
        "Best epoch",
    ):
        assert expected in text, expected
    assert page.inner_text("details > summary >> nth=0") == "Resolved config (config.yaml)"
    assert "architecture: convnet" in page.text_content("details pre")
    assert page.locator("figcaption", has_text="loss.png").count() == 1


@pytest.mark.slow
def test_kfold_report_in_chromium(browser, trained_runs, tmp_path):
    target = report.write([trained_runs["kfold"]])
    page, events = open_page(browser, target, tmp_path / "kfold_report.png")
    assert events == []
    widths = image_widths(page)
    assert len(widths) >= 6 and all(width > 0 for width in widths), widths
    text = page.inner_text("body")
    kfold = json.loads((trained_runs["kfold"] / "kfold.json").read_text())
    for expected in (
        "K-fold validation",
        f"Recommended epochs: {kfold['recommended_epochs']}",
        "Over the folds (mean ± std)",
        "mean predictor",
        "K-fold curves",
        "Learning curves",
        "residuals_test.png",
    ):
        assert expected in text, expected


@pytest.mark.slow
def test_comparison_and_hostile_text_in_chromium(browser, trained_runs, tmp_path):
    hostile = write_completed_run(tmp_path / "hostile", name=HOSTILE, config=f"name: x\nnote: {json.dumps(HOSTILE_CONFIG)}\n", plots=True)
    target = report.write([trained_runs["quickstart"], trained_runs["kfold"], hostile], tmp_path / "three.html")
    page, events = open_page(browser, target, tmp_path / "comparison_report.png")
    assert events == []  # the run name's <script> and the config's onerror never ran
    assert HOSTILE in page.inner_text("body")  # shown as text
    widths = image_widths(page)
    assert widths and all(width > 0 for width in widths), widths


def test_visualisations_in_the_run_folder_are_shown(tmp_path, monkeypatch):
    run = write_completed_run(tmp_path / "run", plots=True)
    for relative in (
        "gradcam/20260102T120000Z/cat_overlay.png",
        "gradcam/20260102T120000Z/cat_heatmap.png",
        "activations/20260102T130000Z/cat/01_conv_1.png",
    ):
        (run / "visualize" / relative).parent.mkdir(parents=True, exist_ok=True)
        (run / "visualize" / relative).write_bytes(tiny_png())
    (run / "visualize" / "gradcam" / "20260102T120000Z" / "cat_heatmap.npy").write_bytes(b"not an image")
    page = report.render([run])
    assert "Visualisations" in page
    assert "<summary>activations/20260102T130000Z (1 images)</summary>" in page
    assert "<summary>gradcam/20260102T120000Z (2 images)</summary>" in page
    assert "<figcaption>cat/01_conv_1.png</figcaption>" in page and "npy" not in page
    monkeypatch.setattr(report, "MAX_VISUALIZATION_IMAGES", 2)
    page = report.render([run])
    assert page.count("<img src=") == 3 + 2 and "1 more images under" in page


# --- a sweep's section (a sweep folder written by hand) ------------------------------------------------


def write_sweep(path: Path, seeds: int = 2) -> Path:
    """A finished sweep over seeds: trial 1 best, trial 0 second, trial 2 pruned with a better value than
    both at its last epoch (never ranked), trial 3 failed; trials 0 and 1 are seeds groups (tests.test_seeds)."""
    from tests.test_seeds import write_group

    path.mkdir(parents=True)
    spread = {
        number: {
            "validation": {"val_mae": {"mean": mean, "std": std, "min": mean - std, "max": mean + std, "n": seeds}},
            "test": {"mae": {"mean": mean + 0.5, "std": std * 2, "min": 0.0, "max": 9.0, "n": seeds}},
        }
        for number, mean, std in ((0, 2.5, 0.2), (1, 2.25, 0.125))
    }
    trials = [
        {
            "number": 0,
            "overrides": {"compile.optimizer.learning_rate": 0.01},
            "status": "completed",
            "run": str(write_group(path / "trials" / "t000")),
            "best": {"epoch": None, "value": 2.5},
            "spread": spread[0],
        },
        {
            "number": 1,
            "overrides": {"compile.optimizer.learning_rate": 0.001},
            "status": "completed",
            "run": str(write_group(path / "trials" / "t001")),
            "best": {"epoch": None, "value": 2.25},
            "spread": spread[1],
        },
        {
            "number": 2,
            "overrides": {"compile.optimizer.learning_rate": 0.1},
            "status": "pruned",
            "run": str(path / "trials" / "t002"),
            "best": {"epoch": None, "value": 1.0},
            "pruned": {"seed": 1, "reason": "best val_mae of seed 1 worse than the median"},
        },
        {
            "number": 3,
            "overrides": {"compile.optimizer.learning_rate": 0.5},
            "status": "failed",
            "run": str(path / "trials" / "t003"),
            "epochs": 1,
            "error": "NaN loss at epoch 2",
        },
    ]
    search = {
        "metric": "val_mae",
        "direction": "minimize",
        "sampler": "tpe",
        "pruner": "median",
        "seeds": seeds,
        "space": {"compile.optimizer.learning_rate": {"choice": [0.001, 0.01, 0.1, 0.5]}},
    }
    (path / "sweep.json").write_text(
        json.dumps({"format": 3, "search": search, "trials_total": 5, "trials": trials, "ranking": [1, 0], "status": "completed"})
    )
    (path / "run.json").write_text(
        json.dumps(
            {
                "name": "boston-sweep",
                "kind": "sweep",
                "status": "completed",
                "metric": "val_mae",
                "started_at": "2026-01-02T11:00:00Z",
                "duration_s": 60.0,
                "best_trial": {"number": 1, "epoch": None, "value": 2.25},
            }
        )
    )
    (path / "config.yaml").write_text("name: boston\nseed: 5\n")
    return path


def test_a_sweep_s_section_ranks_completed_trials_with_their_spread_and_says_how_the_others_ended(tmp_path):
    sweep = write_sweep(tmp_path / "20260102T110000Z_boston-sweep")
    page = report.render([sweep])
    assert "<h3>Sweep</h3>" in page
    assert "4 of 5 trials: 2 completed, 1 pruned, 1 failed." in page
    assert "sampler tpe, pruner median, metric val_mae (minimize), 2 seeds per trial" in page
    rows = page.split("<h3>Sweep</h3>", 1)[1].split("</table>", 1)[0].split("<tr>")[2:]  # after the header row
    assert [row.split("</td>")[1].removeprefix("<td>") for row in rows] == ["1", "0", "2", "3"]  # trial numbers, best first
    assert [row.split("</td>")[0].removeprefix("<td>") for row in rows] == ["1", "2", "-", "-"]  # a pruned trial is never ranked
    assert "2.2500 +- 0.1250 (n=2)" in rows[0] and "mae 2.7500 +- 0.2500 (n=2)" in rows[0]  # the score and test, mean +- std
    assert "2.5000 +- 0.2000 (n=2)" in rows[1]
    assert "pruned after seed 1: best val_mae of seed 1 worse than the median" in rows[2]
    assert "failed at epoch 2: NaN loss at epoch 2" in rows[3]


def test_runs_and_runs_compare_show_the_spread_of_a_sweep_s_best_trial_over_seeds(tmp_path):
    sweep = write_sweep(tmp_path / "runs" / "20260102T110000Z_boston-sweep")
    single = write_completed_run(tmp_path / "runs" / "20260101T100000Z_digits")
    group_test = "2.4667 +- 0.2494 (n=3)"  # tests.test_seeds.write_group's test mae over its 3 seeds
    result = invoke("runs", "compare", sweep, single)
    assert result.exit_code == 0, result.output
    assert group_test in result.output
    result = invoke("runs", tmp_path / "runs", "--wide")
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.replace("│", " ").split())
    assert "(trial 1)" in flat and "2.4667" in flat and "0.2494" in flat


def test_a_damaged_sweep_json_shows_less_and_never_a_traceback(tmp_path):
    sweep = write_sweep(tmp_path / "sweep")
    (sweep / "sweep.json").write_text(json.dumps({"search": [], "ranking": 3, "trials": [{"number": [1], "best": 2}, "x", {}]}))
    page = report.render([sweep])
    assert "<h3>Sweep</h3>" in page and "2 of 2 trials: none finished." in page  # "x" is no trial
