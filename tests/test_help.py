"""`dlrun ... --help` reads the usual way (RUN_DIR, flags without a type, sentences) and shell completion works."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import typer.main
from typer import core

from dlrun import cli
from tests.conftest import invoke

PLACEHOLDERS = ("<bool>", "{", "<list[")


def _commands(command=None, path=()):
    """(path, click command) for the app and every group and command under it."""
    command = command or typer.main.get_command(cli.app)
    yield path, command
    for name, child in sorted(getattr(command, "commands", {}).items()):
        yield from _commands(child, (*path, name))


COMMANDS = list(_commands())


def test_the_walk_reaches_every_command():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "train", "report", "runs", "runs list", "runs compare", "config validate", "visualize gradcam"} <= names
    assert len(names) >= 20


@pytest.mark.parametrize("path", [path for path, _ in COMMANDS], ids=lambda path: " ".join(path) or "dlrun")
def test_help_has_no_value_placeholders_on_flags_or_odd_argument_names(path):
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.output
    for placeholder in PLACEHOLDERS:
        assert placeholder not in result.output, f"{placeholder!r} in `dlrun {' '.join(path)} --help`:\n{result.output}"


@pytest.mark.parametrize("path", [path for path, _ in COMMANDS], ids=lambda path: " ".join(path) or "dlrun")
def test_every_description_is_sentences_on_single_lines(path):
    """Typer's rich help keeps a docstring's line breaks, so a paragraph wrapped in the source breaks mid-sentence."""
    command = dict(COMMANDS)[path]
    paragraphs = [paragraph.strip() for paragraph in (command.help or "").strip().split("\n\n")]
    assert paragraphs[0], f"dlrun {' '.join(path)} has no description"
    for paragraph in paragraphs:
        assert "\n" not in paragraph, f"dlrun {' '.join(path)}: a paragraph breaks mid-sentence: {paragraph!r}"
        assert paragraph.endswith("."), f"dlrun {' '.join(path)}: {paragraph!r} does not end with a full stop"


def test_arguments_show_in_the_usual_form():
    report = invoke("report", "--help").output
    assert "Usage: dlrun report [OPTIONS] RUN_DIR..." in report
    predict = invoke("predict", "--help").output
    assert "Usage: dlrun predict [OPTIONS] RUN_DIR [INPUT...]" in predict
    assert "Usage: dlrun train [OPTIONS] [CONFIG]" in invoke("train", "--help").output
    assert "Usage: dlrun config validate [OPTIONS] CONFIG" in invoke("config", "validate", "--help").output


def test_flags_show_no_type_and_valued_options_the_type_of_one_value():
    lines = {line.split()[1]: line for line in invoke("predict", "--help").output.splitlines() if line.startswith("│ --")}
    assert lines["--force"].split()[2] == "Replace"  # the help text follows the flag directly
    assert lines["--text"].split()[2] == "<str>"  # repeatable: one value's type, not <list[str]>
    assert lines["--top"].split()[2] == "<int>"


def test_missing_argument_error_names_it_in_the_usual_form():
    result = invoke("report")
    assert result.exit_code == 2
    assert "RUN_DIR" in result.output and "{" not in result.output


def test_help_text_classes_reach_every_parameter():
    """Every parameter of every command is shown through help_text (a command built without it shows Typer's form)."""
    from dlrun.commands import help_text

    for path, command in COMMANDS:
        assert isinstance(command, (help_text.Command, help_text.Group)), f"dlrun {' '.join(path)}: built without help_text"
        context = command.make_context(command.name, [], resilient_parsing=True)
        for param in command.get_params(context):
            if isinstance(param, core.TyperArgument):
                assert isinstance(param, help_text._Argument)


SHELL_ENV = {"SHELL": "/bin/bash", "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}


def _dlrun(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "dlrun", *args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}
    )


def test_show_completion_prints_a_bash_script():
    result = _dlrun("--show-completion", "bash", env=SHELL_ENV)
    assert result.returncode == 0, result.stderr
    assert "complete -o default -F _dlrun_completion dlrun" in result.stdout
    assert "_DLRUN_COMPLETE=complete_bash" in result.stdout


def test_install_completion_is_offered():
    assert "--install-completion" in invoke("--help").output


@pytest.mark.parametrize(
    ("words", "cword", "expected"),
    [
        ("dlrun tr", "1", {"train"}),
        ("dlrun runs co", "2", {"compare"}),
        ("dlrun visualize g", "2", {"gradcam"}),
    ],
)
def test_completion_offers_commands(words, cword, expected):
    result = _dlrun(env={"_DLRUN_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": cword})
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == expected


def test_completion_imports_nothing_heavy():
    probe = (
        "import sys\nfrom dlrun import cli\nsys.argv = ['dlrun']\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "print('HEAVY=' + ','.join(name for name in ('tensorflow', 'keras', 'matplotlib') if name in sys.modules), file=sys.stderr)\n"
    )
    env = {**os.environ, "_DLRUN_COMPLETE": "complete_bash", "COMP_WORDS": "dlrun tr", "COMP_CWORD": "1"}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=env)
    assert "HEAVY=\n" in result.stderr, result.stderr
