"""The CLI without training: help, version, list, config show/validate, errors, start-up imports."""

import json
import subprocess
import sys

import pytest

from dlrun import __version__, config
from tests.conftest import CONFIGS, invoke, run_cli, write_completed_run


def test_help_lists_the_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("train", "list", "config", "visualize", "eval", "kfold", "runs", "predict", "export", "init"):
        assert command in result.output


def test_version():
    assert invoke("--version").output.strip() == f"dlrun {__version__}"


def test_list_prints_every_registry():
    result = invoke("list")
    assert result.exit_code == 0
    for kind in ("datasets:", "architectures:", "optimizers:", "losses:", "metrics:", "callbacks:"):
        assert kind in result.output
    assert "  digits  " in result.output and "  convnet  " in result.output


def test_list_one_kind_and_a_bad_kind():
    assert invoke("list", "optimizers").output.splitlines()[0] == "optimizers:"
    result = invoke("list", "optimisers")
    assert result.exit_code == 2
    assert "did you mean 'optimizers'" in result.stderr


def test_config_show_prints_the_resolved_config_with_overrides():
    result = invoke("config", "show", CONFIGS / "quickstart.yaml", "--set", "train.epochs=3")
    assert result.exit_code == 0
    assert "epochs: 3" in result.output
    assert "runs_root: runs" in result.output  # a default the file does not state


def test_config_validate_ok_and_bad(write_config, tmp_path):
    assert invoke("config", "validate", CONFIGS / "quickstart.yaml").exit_code == 0
    bad = write_config("data: digits\nmodel: mlp\ntrain: {epoch: 3}\n")
    result = invoke("config", "validate", bad)
    assert result.exit_code == 2
    assert "train.epoch: received unknown key 'epoch'" in result.stderr
    assert "Traceback" not in result.stderr + result.output


def test_bad_config_for_train_exits_2_without_a_run_folder(write_config, tmp_path):
    root = tmp_path / "runs"
    bad = write_config(f"data: digits\nmodel: mlp\ntrain: {{epochs: -1}}\noutput: {{runs_root: {json.dumps(str(root))}}}\n")
    result = invoke("train", bad)
    assert result.exit_code == 2
    assert "train.epochs: received -1; expected a number >= 1" in result.stderr
    assert not root.exists()


def test_bad_set_item_exits_2():
    result = invoke("config", "validate", CONFIGS / "quickstart.yaml", "--set", "train.epochs")
    assert result.exit_code == 2
    assert "--set 'train.epochs': received no KEY=VALUE" in result.stderr


HEAVY = ("tensorflow", "keras", "matplotlib", "sklearn", "mlflow", "optuna")


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["list"],
        ["config", "validate", str(CONFIGS / "quickstart.yaml")],
        ["config", "show", str(CONFIGS / "quickstart.yaml")],
        ["train", "--help"],
        ["visualize", "--help"],
        ["visualize", "curves", "--help"],
        ["visualize", "activations", "--help"],
        ["visualize", "filters", "--help"],
        ["visualize", "gradcam", "--help"],
        ["eval", "--help"],
        ["kfold", "--help"],
        ["runs", "--help"],
        ["runs", "compare", "--help"],
        ["runs", "--status", "done"],
        ["predict", "--help"],
        ["export", "--help"],
        ["init", "--help"],
        ["config", "schema"],
        ["config", "docs"],
        ["report", "--help"],
        ["sweep", "--help"],
    ],
    ids=" ".join,
)
def test_no_heavy_import_on_the_fast_paths(argv):
    """`dlrun --help`, `list` and config validation never import TensorFlow, Keras or matplotlib."""
    probe = (
        "import sys\nfrom dlrun import cli\nsys.argv = ['dlrun', *sys.argv[1:]]\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY=' + ','.join(name for name in {HEAVY!r} if name in sys.modules), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=60)
    assert "HEAVY=\n" in result.stderr, result.stderr


def test_python_dash_m_and_exit_code_on_a_missing_file(tmp_path):
    result = run_cli("config", "validate", tmp_path / "nope.yaml")
    assert result.returncode == 2
    assert "nope.yaml: no such file" in result.stderr
    assert "Traceback" not in result.stderr


def test_stored_config_equals_show_output(tmp_path):
    shown = invoke("config", "show", CONFIGS / "quickstart.yaml").output
    assert shown == config.to_yaml(config.load(CONFIGS / "quickstart.yaml"))


def test_visualize_curves_never_imports_tensorflow(tmp_path):
    """`dlrun visualize curves` reads history.json alone: no TensorFlow or Keras (matplotlib draws it)."""
    from dlrun.runs import history

    run_history = history.empty()
    history.append(run_history, 1, {"loss": 1.0, "val_loss": 1.2})
    history.save(tmp_path / history.FILE_NAME, run_history)
    probe = (
        "import sys\nfrom dlrun import cli\nsys.argv = ['dlrun', *sys.argv[1:]]\n"
        "try:\n    cli.main()\nexcept SystemExit as stop:\n    print('EXIT=' + str(stop.code), file=sys.stderr)\n"
        "print('HEAVY=' + ','.join(name for name in ('tensorflow', 'keras') if name in sys.modules), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe, "visualize", "curves", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert "HEAVY=\n" in result.stderr and "EXIT=0" in result.stderr, result.stderr
    assert (tmp_path / "visualize" / "curves").is_dir()


def test_report_never_imports_tensorflow(tmp_path):
    """`dlrun report` reads the run folder only: no TensorFlow, Keras or MLflow (nor matplotlib when the
    run's plots are there)."""
    run = write_completed_run(tmp_path / "run", plots=True)
    probe = (
        "import sys\nfrom dlrun import cli\nsys.argv = ['dlrun', *sys.argv[1:]]\n"
        "try:\n    cli.main()\nexcept SystemExit as stop:\n    print('EXIT=' + str(stop.code), file=sys.stderr)\n"
        f"print('HEAVY=' + ','.join(name for name in {HEAVY!r} if name in sys.modules), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe, "report", str(run)], capture_output=True, text=True, timeout=60)
    assert "HEAVY=\n" in result.stderr and "EXIT=0" in result.stderr, result.stderr
    assert (run / "report.html").is_file()


# The exit once Keras is loaded skips Python's module teardown (cli._exit); a stand-in `keras` module
# takes that path here without the cost of importing the real one.
FAST_EXIT = """\
import atexit, sys, types
sys.modules["keras"] = types.ModuleType("keras")
atexit.register(lambda: open(sys.argv[1], "w").write("exit handlers ran"))
print("written before exit", end="")
from dlrun import cli
code = sys.argv[2]
cli._exit(None if code == "none" else int(code) if code.isdigit() else code)
"""


@pytest.mark.parametrize(("code", "status", "stderr"), [("none", 0, ""), ("0", 0, ""), ("3", 3, ""), ("gone wrong", 1, "gone wrong\n")])
def test_the_fast_exit_keeps_the_exit_code_the_output_and_the_exit_handlers(tmp_path, code, status, stderr):
    marker = tmp_path / "marker"
    result = subprocess.run([sys.executable, "-c", FAST_EXIT, str(marker), code], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (status, "written before exit", stderr)
    assert marker.read_text() == "exit handlers ran"


def test_the_fast_exit_waits_for_running_threads(tmp_path):
    # A non-daemon thread still working: Python's normal exit, which waits for it, must happen.
    probe = FAST_EXIT.replace(
        'print("written before exit", end="")',
        'import threading, time\nthreading.Thread(target=lambda: (time.sleep(0.5), print("thread done", end=""))).start()',
    )
    result = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "marker"), "none"], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (0, "thread done")
