"""`backend: auto` by measurement (`dlrun calibrate`, dlrun.training.calibration and its step-timing worker).

Most tests replace the worker with a fake one (a few lines of Python that print the times a test asks
for, fail, or hang), so they run in a second; one slow test times a tiny model on two real backends,
and one trains in a fresh process from a stored calibration to check run.json.
"""

import io
import json
import os
import subprocess
import sys
import textwrap

import pytest
from rich.console import Console

from dlrun import backend, config as config_module
from dlrun.training import calibration
from tests.conftest import invoke, run_cli, run_folders, subprocess_env, tiny_config

# The fake worker: $FAKE_TIMES maps a backend to its ms/step, or to "fail" / "hang"; each call is logged.
FAKE_WORKER = textwrap.dedent("""\
    import json, os, sys, time
    name = os.environ["KERAS_BACKEND"]
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(name + "\\n")
    sys.stdin.read()
    behaviour = json.loads(os.environ["FAKE_TIMES"])[name]
    if behaviour == "fail":
        print("Traceback (most recent call last):\\nImportError: no backend module here", file=sys.stderr)
        sys.exit(1)
    if behaviour == "hang":
        time.sleep(60)
    print(json.dumps({"backend": name, "import_seconds": 1.0, "build_seconds": 0.1, "first_step_seconds": 0.5,
                      "step_ms": behaviour, "timed_batches": 64, "train_samples": 48}))
""")


def _config(**changes):
    data = {
        "name": "tiny",
        "data": {"name": "synthetic", "task": "regression", "num_samples": 60, "input_shape": [4]},
        "model": {"architecture": "mlp", "units": [4]},
        "train": {"epochs": 5, "batch_size": 16},
        **changes,
    }
    return config_module.validate(data)


@pytest.fixture
def fake(monkeypatch, tmp_path):
    """Calibration switched on, two backends 'installed', no Keras loaded, the fake worker in place; returns
    a function setting the fake times and returning the list of backends the worker was started on."""
    log = tmp_path / "worker.log"
    log.touch()
    monkeypatch.setenv("DLRUN_CALIBRATE", "on")
    monkeypatch.setenv("DLRUN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setattr(backend, "installed", lambda: ["tensorflow", "jax"])
    monkeypatch.setattr(backend, "loaded", lambda: None)
    monkeypatch.setattr(calibration, "_worker_command", lambda: [sys.executable, "-c", FAKE_WORKER])

    def times(**per_backend) -> list[str]:
        monkeypatch.setenv("FAKE_TIMES", json.dumps(per_backend))
        return log.read_text().split()

    return times


def _console() -> tuple[Console, io.StringIO]:
    output = io.StringIO()
    return Console(file=output, width=200), output


# --- the cache key ------------------------------------------------------------------------------


def test_the_key_ignores_what_does_not_change_a_step_and_follows_what_does(monkeypatch):
    key = calibration.cache_path(_config(), ["tensorflow", "jax"])[0]
    assert calibration.cache_path(_config(name="other", seed=7, train={"epochs": 50, "batch_size": 16}), ["tensorflow", "jax"])[0] == key
    assert calibration.cache_path(_config(model={"architecture": "mlp", "units": [8]}), ["tensorflow", "jax"])[0] != key
    assert calibration.cache_path(_config(train={"epochs": 5, "batch_size": 32}), ["tensorflow", "jax"])[0] != key
    assert calibration.cache_path(_config(), ["tensorflow", "jax", "torch"])[0] != key
    versions = calibration._versions()
    monkeypatch.setattr(calibration, "_versions", lambda: {**versions, "jax": "0.0.1"})
    assert calibration.cache_path(_config(), ["tensorflow", "jax"])[0] != key


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DLRUN_CACHE_DIR", str(tmp_path / "here"))
    assert calibration.cache_folder() == tmp_path / "here" / "calibration"
    monkeypatch.delenv("DLRUN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert calibration.cache_folder() == tmp_path / "xdg" / "dlrun" / "calibration"


# --- choosing by the times ----------------------------------------------------------------------


def test_a_miss_measures_each_backend_once_stores_and_the_next_run_reads_the_cache(fake):
    fake(tensorflow=2.0, jax=0.5)
    console, output = _console()
    choice = calibration.choose(_config(), console)
    assert choice.name == "jax"
    assert choice.reason.startswith("calibrated: jax 0.5 ms/step")
    assert "vs tensorflow 2 ms/step" in choice.reason
    assert "calibrated backend: auto in" in output.getvalue()  # the one line saying what it cost
    assert sorted(fake(tensorflow=2.0, jax=0.5)) == ["jax", "tensorflow"]
    assert choice.calibration["cached"] is False
    stored = calibration.cache_path(_config(), ["tensorflow", "jax"])[1]
    assert stored.exists()

    again = calibration.choose(_config(seed=9), console)  # another seed: the same model, a hit
    assert again.name == "jax" and again.calibration["cached"] is True
    assert sorted(fake(tensorflow=2.0, jax=0.5)) == ["jax", "tensorflow"]  # no worker started again

    calibration.choose(_config(model={"architecture": "mlp", "units": [9]}), console)  # another model: a miss
    assert len(fake(tensorflow=2.0, jax=0.5)) == 4


def test_the_choice_weighs_start_up_against_steps(fake):
    # tensorflow steps faster but starts slower: a short run picks jax, a long one tensorflow
    fake(tensorflow=0.5, jax=0.6)
    path = calibration.cache_path(_config(), ["tensorflow", "jax"])[1]
    path.parent.mkdir(parents=True)
    times = [
        {"backend": "tensorflow", "import_seconds": 6.0, "first_step_seconds": 1.0, "step_ms": 0.5, "train_samples": 1600},
        {"backend": "jax", "import_seconds": 2.0, "first_step_seconds": 1.0, "step_ms": 1.0, "train_samples": 1600},
    ]
    path.write_text(json.dumps({"times": times, "seconds": 3.0, "measured_at": "2026-01-01T00:00:00+00:00"}))
    console, _ = _console()
    assert calibration.choose(_config(train={"epochs": 5, "batch_size": 16}), console).name == "jax"  # 500 steps
    long_run = calibration.choose(_config(train={"epochs": 200, "batch_size": 16}), console)  # 20,000 steps
    assert long_run.name == "tensorflow"
    assert "for 20,000 steps" in long_run.reason
    assert fake(tensorflow=0.5, jax=0.6) == []  # both from the cache


def test_a_compilation_cache_counts_its_warm_build_and_first_fit():
    cold = calibration.Measurement("jax", import_seconds=2.0, build_seconds=6.0, first_step_seconds=9.0, step_ms=1.0)
    warm = calibration.Measurement(
        "jax",
        import_seconds=2.0,
        build_seconds=6.0,
        first_step_seconds=9.0,
        step_ms=1.0,
        warm_build_seconds=1.0,
        warm_first_step_seconds=0.5,
    )
    assert cold.estimate(1000) == pytest.approx(18.0)
    assert warm.estimate(1000) == pytest.approx(4.5)


def test_off_keeps_the_fixed_rule_and_says_so(fake, monkeypatch):
    fake(tensorflow=0.1, jax=9.0)
    monkeypatch.setenv("DLRUN_CALIBRATE", "off")
    choice = calibration.choose(_config(), _console()[0])
    assert choice.name == "jax"  # the fixed rule: dense -> JAX, although the fake times favour tensorflow
    assert "dense (mlp)" in choice.reason and "DLRUN_CALIBRATE=off" in choice.reason
    assert choice.calibration is None
    assert fake(tensorflow=0.1, jax=9.0) == []


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"backend": "tensorflow"}, "set in the config"),
        ({"train": {"epochs": 2, "loop": "custom"}}, "custom"),
    ],
)
def test_an_explicit_backend_or_a_custom_loop_never_calibrates(fake, changes, reason):
    fake(tensorflow=0.1, jax=9.0)
    config = _config(**changes)
    assert reason in calibration.not_applicable(config)
    assert calibration.choose(config, _console()[0]) == backend.choose(config)
    assert fake(tensorflow=0.1, jax=9.0) == []


def test_a_later_run_in_the_same_process_keeps_the_stored_reason_and_never_measures(fake, monkeypatch):
    fake(tensorflow=2.0, jax=0.5)
    console, _ = _console()
    first = calibration.choose(_config(), console)  # e.g. seed 1 of dlrun train --seeds
    monkeypatch.setattr(backend, "loaded", lambda: "jax")  # seed 2: Keras is imported now, on jax
    later = calibration.choose(_config(seed=43), console)
    assert later.name == "jax" and later.reason == first.reason and later.calibration["cached"] is True
    monkeypatch.setattr(backend, "loaded", lambda: "tensorflow")  # loaded on another backend: it stays there
    elsewhere = calibration.choose(_config(seed=44), console)
    assert elsewhere.name == "tensorflow" and "already imported" in elsewhere.reason
    assert len(fake(tensorflow=2.0, jax=0.5)) == 2  # measured once, for the first


def test_one_installed_backend_needs_no_calibration(fake, monkeypatch):
    fake(tensorflow=0.1)
    monkeypatch.setattr(backend, "installed", lambda: ["tensorflow"])
    assert calibration.not_applicable(_config()) == "only tensorflow can run it here"
    assert calibration.choose(_config(), _console()[0]).name == "tensorflow"
    assert fake(tensorflow=0.1) == []


def test_a_failing_backend_is_skipped_with_a_message(fake):
    fake(tensorflow=2.0, jax="fail")
    console, output = _console()
    choice = calibration.choose(_config(), console)
    assert choice.name == "tensorflow"
    assert "calibration: jax skipped (failed (exit 1): ImportError: no backend module here)" in output.getvalue()
    assert choice.reason.endswith("; jax failed")
    assert calibration.cache_path(_config(), ["tensorflow", "jax"])[1].exists()  # a broken backend stays broken


def test_a_hanging_backend_times_out_is_skipped_and_nothing_is_stored(fake, monkeypatch):
    fake(tensorflow="hang", jax=0.7)
    monkeypatch.setenv("DLRUN_CALIBRATE_TIMEOUT", "1")
    console, output = _console()
    choice = calibration.choose(_config(), console)
    assert choice.name == "jax"
    assert "calibration: tensorflow skipped (timed out after 1 s)" in output.getvalue()
    assert not calibration.cache_path(_config(), ["tensorflow", "jax"])[1].exists()  # a busy machine may do better later


def test_no_backend_timed_falls_back_to_the_fixed_rule(fake):
    fake(tensorflow="fail", jax="fail")
    choice = calibration.choose(_config(), _console()[0])
    assert choice.name == "jax"
    assert "dense (mlp)" in choice.reason and "calibration timed no backend" in choice.reason


def test_an_unreadable_cache_file_is_measured_again(fake):
    fake(tensorflow=2.0, jax=0.5)
    path = calibration.cache_path(_config(), ["tensorflow", "jax"])[1]
    path.parent.mkdir(parents=True)
    path.write_text('{"times": [')  # cut short
    assert calibration.choose(_config(), _console()[0]).name == "jax"
    assert len(fake(tensorflow=2.0, jax=0.5)) == 2
    assert json.loads(path.read_text())["times"]


# --- dlrun calibrate ----------------------------------------------------------------------------


def test_calibrate_prints_the_table_and_the_choice_and_stores_it(fake, tmp_path):
    fake(tensorflow=2.0, jax=0.5)
    path = tiny_config(tmp_path / "tiny.yaml", tmp_path / "runs", task="regression")
    result = invoke("calibrate", path)
    assert result.exit_code == 0, result.output
    assert "backend: auto picks jax (calibrated: jax 0.5 ms/step" in result.output
    assert "ms/step" in result.output and "estimated run s" in result.output
    assert list((tmp_path / "cache" / "calibration").glob("*.json"))
    assert not (tmp_path / "runs").exists()


def test_calibrate_measures_even_a_config_that_pins_its_backend(fake, tmp_path):
    fake(tensorflow=2.0, jax=0.5)
    path = tiny_config(tmp_path / "tiny.yaml", tmp_path / "runs", task="regression")
    result = invoke("calibrate", path, "--set", "backend=tensorflow", "--backends", "jax,tensorflow")
    assert result.exit_code == 0, result.output
    assert "note: the config sets backend: tensorflow, which never calibrates" in result.output
    assert sorted(fake(tensorflow=2.0, jax=0.5)) == ["jax", "tensorflow"]


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--set", "model.units=[-1]"], "model.units"),
        (["--set", "train.batch_size=zero"], "train.batch_size"),
        (["--backends", "jax,caffe"], "--backends: received 'jax,caffe'"),
    ],
)
def test_calibrate_refuses_a_bad_config_or_option_with_exit_2_and_stores_nothing(fake, tmp_path, arguments, message):
    fake(tensorflow=2.0, jax=0.5)
    path = tiny_config(tmp_path / "tiny.yaml", tmp_path / "runs", task="regression")
    result = invoke("calibrate", path, *arguments)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert "Traceback" not in result.output
    assert fake(tensorflow=2.0, jax=0.5) == []
    assert not (tmp_path / "cache").exists()


def test_calibrate_says_when_there_is_nothing_to_calibrate(fake, tmp_path):
    fake(tensorflow=2.0, jax=0.5)
    path = tiny_config(tmp_path / "tiny.yaml", tmp_path / "runs", task="regression")
    result = invoke("calibrate", path, "--set", "train.loop=custom")
    assert result.exit_code == 0, result.output
    assert "nothing to calibrate: train.loop: custom" in result.output
    assert fake(tensorflow=2.0, jax=0.5) == []


def test_the_worker_reports_a_bad_config_on_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "dlrun.training.step_timing"],
        input='{"model": 3}',
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("ConfigError: ")


# --- real processes -----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_run_records_the_calibrated_choice_and_times_in_run_json(tmp_path):
    config_path = tiny_config(tmp_path / "tiny.yaml", tmp_path / "runs", task="regression")
    config = config_module.load(config_path)
    backends = calibration.candidates(config)
    if len(backends) < 2:
        pytest.skip(f"one backend installed ({backends}): nothing to calibrate")
    cache = tmp_path / "cache"
    env = subprocess_env(DLRUN_CALIBRATE="on", DLRUN_CACHE_DIR=str(cache))
    favoured = "jax" if "jax" in backends else backends[-1]
    times = [
        {
            "backend": name,
            "import_seconds": 1.0,
            "first_step_seconds": 0.5,
            "step_ms": 0.25 if name == favoured else 3.0,
            "train_samples": 38,
        }
        for name in backends
    ]
    # the key as the fresh process computes it: the same machine, versions and model
    probe = (
        "import json, sys\nfrom dlrun import config\nfrom dlrun.training import calibration\n"
        "c = config.load(sys.argv[1])\nprint(calibration.cache_path(c, calibration.candidates(c))[1])"
    )
    path = subprocess.run(
        [sys.executable, "-c", probe, str(config_path)], capture_output=True, text=True, env=env, check=True
    ).stdout.strip()
    (cache / "calibration").mkdir(parents=True)
    with open(path, "w") as stored:
        json.dump({"times": times, "seconds": 4.2, "measured_at": "2026-01-01T00:00:00+00:00"}, stored)
    # run_cli would put back the suite's KERAS_BACKEND pin, under which auto never calibrates
    result = subprocess.run(
        [sys.executable, "-m", "dlrun", "train", str(config_path)], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert f"backend: {favoured} (calibrated: {favoured} 0.25 ms/step" in result.stdout
    assert "calibrated backend: auto in" not in result.stdout  # a hit: nothing measured
    (folder,) = run_folders(tmp_path / "runs")
    record = json.loads((folder / "run.json").read_text())["backend"]
    assert record["name"] == favoured and record["reason"].startswith(f"calibrated: {favoured} 0.25 ms/step")
    assert record["calibration"]["cached"] is True
    assert {item["backend"]: item["step_ms"] for item in record["calibration"]["times"]}[favoured] == 0.25
    assert f"backend: {favoured}" in (folder / "config.yaml").read_text()  # stored resolved, as auto always is


@pytest.mark.slow
def test_calibrate_really_times_a_tiny_model_on_two_backends(tmp_path):
    installed = backend.installed()
    if not {"tensorflow", "jax"} <= set(installed):
        pytest.skip(f"needs TensorFlow and JAX; installed: {installed}")
    path = tiny_config(tmp_path / "tiny.yaml", tmp_path / "runs", task="regression")
    result = run_cli(
        "calibrate", path, "--backends", "tensorflow,jax", env=subprocess_env(DLRUN_CACHE_DIR=str(tmp_path / "cache"), DLRUN_CALIBRATE="on")
    )
    assert result.returncode == 0, result.stderr
    assert "backend: auto picks " in result.stdout
    (stored,) = (tmp_path / "cache" / "calibration").glob("*.json")
    times = {item["backend"]: item for item in json.loads(stored.read_text())["times"]}
    assert set(times) == {"tensorflow", "jax"}
    for item in times.values():
        assert item["error"] is None
        assert item["step_ms"] > 0 and item["import_seconds"] > 0 and item["train_samples"] > 0


def test_kfold_and_sweep_resolve_auto_through_calibration_once_before_any_fold_or_trial(fake, monkeypatch, tmp_path):
    """One meaning of `backend: auto`: kfold and sweep measure it as train does (the fake times make jax
    the fastest where the fixed rule says tensorflow for a convnet), and a sweep stores the choice."""
    import yaml

    from dlrun.trials import executors, kfold, sweep, sweep_study

    fake(tensorflow=9.0, jax=1.0)
    convnet = _config(
        data={"name": "synthetic", "task": "multiclass", "num_samples": 60, "num_classes": 3, "input_shape": [8, 8, 1]},
        model={"architecture": "convnet", "filters": [4], "dense_units": [4]},
        output={"runs_root": str(tmp_path / "runs")},
    )
    assert backend.choose(convnet).name == "tensorflow"  # the fixed rule would differ
    seen = {}
    monkeypatch.setattr(kfold, "_with_workers", lambda placement, body: seen.setdefault("kfold", os.environ["KERAS_BACKEND"]))
    kfold.kfold(convnet, _console()[0], k=2)
    assert seen["kfold"] == "jax"
    monkeypatch.delenv("KERAS_BACKEND")  # kfold sets it for its workers; a sweep starts in a fresh process

    config_file = tmp_path / "convnet.yaml"
    config_file.write_text(config_module.to_yaml(convnet), encoding="utf-8")
    monkeypatch.setattr(sweep_study, "drive", lambda run, *rest, **options: run)  # stop before any trial
    console, output = _console()
    run = sweep.sweep(config_file, [], sweep.Options(grid=("train.batch_size=8,16",)), console, executors.Placement())
    assert yaml.safe_load((run.path / "config.yaml").read_text(encoding="utf-8"))["backend"] == "jax"
    recorded = json.loads((run.path / "run.json").read_text(encoding="utf-8"))["backend"]
    assert recorded["name"] == "jax" and "calibration" in recorded, recorded
    assert "backend: jax" in output.getvalue()
    assert fake() == ["tensorflow", "jax"]  # measured once (kfold), then read from the cache by the sweep
