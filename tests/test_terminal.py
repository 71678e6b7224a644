"""Text from data (class names, file and folder names, run files, config values) prints as text: Rich
markup in it is shown, never interpreted (no crash, no style, no hyperlink), and control characters are removed."""

import io
import json

import pytest
from rich import console as rich_console

from dlrun import terminal

HOSTILE = ["[/bold]", "[link=https://example.com]click me[/link]", "\x1b[31mred\x1b[0m", "\x1b]0;title\x07x", "tab\there", "[bold]b[/]"]
SHOWN = ["[/bold]", "[link=https://example.com]click me[/link]", "[31mred[0m", "]0;titlex", "tab", "[bold]b[/]"]


def render(renderable) -> str:
    console = rich_console.Console(file=io.StringIO(), force_terminal=True, color_system="truecolor", width=300, highlight=False)
    console.print(renderable)
    return console.file.getvalue()


def assert_shown_as_text(output: str) -> None:
    for shown in SHOWN:
        assert shown in output.replace("\x1b[1m", "").replace("\x1b[0m", "") or shown in output, (shown, output)
    assert "\x1b]8;" not in output  # no hyperlink
    assert "\x1b[31m" not in output and "\x1b]0;" not in output and "\x07" not in output


def test_text_escapes_markup_and_drops_control_characters():
    assert terminal.text("[/bold]") == "\\[/bold]"
    assert terminal.text("\x1b[31mred\x1b]0;t\x07\x9b") == "[31mred]0;t"
    assert terminal.text("a\tb\nc") == "a\tb\nc"
    assert_shown_as_text(render(" ".join(terminal.text(name) for name in HOSTILE)))


def test_eval_per_class_table_prints_class_names_as_text():
    from dlrun.training import evaluation

    per_class = {name: {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1} for name in HOSTILE}
    assert_shown_as_text(render(evaluation.per_class_table(per_class)))


def test_predict_table_prints_class_and_file_names_as_text():
    from dlrun.inference import predict

    rows = [{"input": name, "prediction": name, "probabilities": {other: 0.1 for other in HOSTILE}} for name in HOSTILE]
    assert_shown_as_text(render(predict._table(rows, top=len(HOSTILE))))


def test_runs_table_and_compare_print_run_files_as_text(tmp_path):
    from dlrun.runs import compare, table as runs_table

    for index, name in enumerate(HOSTILE):
        folder = tmp_path / f"2026010{index}T000000Z_{name.replace('/', '_')}"
        folder.mkdir()
        (folder / "run.json").write_text(
            json.dumps({"name": name, "status": name, "started_at": "2026-01-01T00:00:00Z", "metrics": [name]})
        )
        (folder / "config.yaml").write_text(f"name: {json.dumps(name)}\n")
    rows = runs_table.collect(tmp_path)
    assert_shown_as_text(render(runs_table.table(rows)))
    console = rich_console.Console(file=io.StringIO(), force_terminal=True, color_system="truecolor", width=300, highlight=False)
    compare.show(sorted(tmp_path.iterdir()), console)
    assert_shown_as_text(console.file.getvalue())


@pytest.mark.parametrize("name", HOSTILE)
def test_markup_in_a_sweep_value_is_text(name):
    from dlrun.trials import sweep_results

    state = {
        "search": {"metric": "loss", "direction": "minimize", "space": {"data.class_names": {"choice": [name]}}},
        "trials": [{"number": 0, "overrides": {"data.class_names": name}, "status": name, "best": None}],
    }
    output = render(sweep_results.table(state))
    assert "\x1b]8;" not in output and "\x1b[31m" not in output
