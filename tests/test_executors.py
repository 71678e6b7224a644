"""Executors for independent trials: option checks, the process pool (events, failures, Ctrl-C), and
K-fold on the pool giving the sequential run's numbers."""

import json
import os
import time

import pytest

from dlrun import errors
from dlrun.runs import history
from dlrun.trials import executors, kfold_fits, outcomes
from tests.conftest import (
    fit_worker,
    invoke,
    layer_name_worker,
    no_child_process_within,
    run_cli,
    run_folders,
    toy_worker,
    write_kfold_config,
)

# --- option checks (no training): exit 2, a clear message, no run folder -------------------------


@pytest.mark.parametrize(
    "options, message",
    [
        (["--workers", "0"], "--workers: received 0; expected a number of worker processes >= 1"),
        (["--executor", "threads"], "--executor: received 'threads'; expected one of sequential, pool, ray"),
        (["--executor", "sequential", "--workers", "2"], "--workers: received 2 with --executor sequential; expected 1"),
        (["--address", "auto"], "--address: received 'auto' with --executor sequential; expected --executor ray"),
        (["--cpus-per-trial", "0"], "--cpus-per-trial: received 0; expected a number of CPUs > 0"),
    ],
    ids=["workers<1", "unknown-executor", "sequential-with-workers", "address-without-ray", "cpus<=0"],
)
def test_bad_executor_options_exit_2_without_a_run_folder(tmp_path, options, message):
    result = invoke("kfold", write_kfold_config(tmp_path), *options)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.stderr
    assert run_folders(tmp_path / "runs") == []


def test_workers_imply_the_pool():
    assert executors.resolve(None, 1) == "sequential"
    assert executors.resolve(None, 3) == "pool"
    assert executors.resolve("pool", 1) == "pool"


def test_threads_are_shared_between_workers(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert [executors.threads_per_worker(workers) for workers in (1, 2, 3, 16)] == [8, 4, 2, 1]


# --- the pool, with toy workers (tests/conftest.py: importable by name from the spawned processes) -


@pytest.mark.slow
def test_pool_runs_every_task_reports_failures_and_reuses_its_workers():
    tasks = [(index, {"value": index, "epochs": 2, "fail": index == 3}) for index in range(1, 6)]
    events = []
    executors.run(tasks, toy_worker, lambda key, event: events.append((key, event)), executors.Placement("pool", workers=2))
    outcomes = {key: event for key, event in events if event["type"] in ("done", "failed")}
    assert sorted(outcomes) == [1, 2, 3, 4, 5]  # one outcome per task, the failure did not stop the others
    assert outcomes[3]["type"] == "failed" and outcomes[3]["error"] == "ValueError: trial 3 broke"
    assert "Traceback" in outcomes[3]["traceback"]
    assert {key: event["result"]["value"] for key, event in outcomes.items() if event["type"] == "done"} == {1: 1, 2: 2, 4: 4, 5: 5}
    assert len({event["result"]["pid"] for event in outcomes.values() if event["type"] == "done"}) <= 2  # reused
    assert os.getpid() not in {event["result"]["pid"] for event in outcomes.values() if event["type"] == "done"}
    epochs = [(key, event["epoch"]) for key, event in events if event["type"] == "epoch"]
    assert sorted(epochs) == [(key, epoch) for key in range(1, 6) for epoch in (1, 2)]
    assert no_child_process_within(30)


@pytest.mark.slow
def test_a_pool_worker_forgets_each_tasks_keras_models(tmp_path):
    """The leak class of keras-tuner#395: a reused worker clears Keras' global state after each task, so
    the second task on the same process names its layer "dense" again, not "dense_1"."""
    events = []
    tasks = [(index, {}) for index in (1, 2, 3)]
    executors.run(tasks, layer_name_worker, lambda key, event: events.append(event), executors.Placement("pool", workers=1))
    results = [event["result"] for event in events if event["type"] == "done"]
    assert len({result["pid"] for result in results}) == 1  # one process ran all three
    assert [result["name"] for result in results] == ["dense"] * 3


@pytest.mark.slow
@pytest.mark.parametrize("placement", [executors.Placement(), executors.Placement("pool", workers=1)], ids=["sequential", "pool"])
def test_a_task_leaves_no_traced_graph_behind_for_the_next_one(placement):
    """What a task left in its process, seen by the next task on the same process (a pool worker, or this
    one): TensorFlow keeps every custom gradient traced into a train function (Keras all-reduces the
    gradients through one), and with it the whole traced graph, unless the executor forgets them after
    each task (BENCHMARKS.md, memory over 100 sweep trials)."""
    import gc

    gc.collect()  # the sequential case runs in this process: earlier tests' unreachable models go first
    events = []
    executors.run([(index, {}) for index in range(4)], fit_worker, lambda key, event: events.append(event), placement)
    left = [event["result"] for event in events if event["type"] == "done"]
    assert len(left) == 4 and len({result["pid"] for result in left}) == 1  # one process ran them all
    # none of a task's models outlives it (the sequential case counts this process's models, which other
    # tests' session-scoped fixtures may hold: the same number before every task)
    assert [result["models"] for result in left] == [left[0]["models"]] * 4
    assert [result["custom_gradients"] for result in left[1:]] == [left[0]["custom_gradients"]] * 3
    assert [result["graphs"] for result in left[1:]] == [left[1]["graphs"]] * 3  # the first fit's own traces may stay


@pytest.mark.parametrize("placement", [executors.Placement(), executors.Placement("pool", workers=2)], ids=["sequential", "pool"])
def test_an_iterator_of_tasks_is_pulled_only_when_a_worker_is_free(placement):
    """A sweep asks its search engine for the next trial only when a worker can take it, so the engine
    has heard every outcome but those still running: never more than `workers` tasks out at once."""
    events, outstanding = [], []

    def tasks():
        for index in range(1, 6):
            finished = sum(event["type"] == "done" for _, event in events)
            outstanding.append(index - 1 - finished)  # tasks handed out and not yet done when this one is asked for
            yield index, {"value": index, "epochs": 1, "sleep": 0.3}

    executors.run(tasks(), toy_worker, lambda key, event: events.append((key, event)), placement)
    assert sorted(key for key, event in events if event["type"] == "done") == [1, 2, 3, 4, 5]
    assert max(outstanding) == placement.workers - 1 and outstanding[: placement.workers] == list(range(placement.workers))


@pytest.mark.slow
def test_interrupt_stops_the_pool_and_leaves_no_process_behind():
    tasks = [(index, {"value": index, "epochs": 1, "sleep": 120}) for index in range(1, 4)]

    def on_event(key, event):
        if event["type"] == "epoch":
            raise KeyboardInterrupt  # as Ctrl-C does in the main process while trials run

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        executors.run(tasks, toy_worker, on_event, executors.Placement("pool", workers=2))
    assert time.monotonic() - started < 90  # the two-minute tasks were stopped, not waited for
    assert no_child_process_within(30)


def test_sequential_runs_in_this_process_and_reports_a_failure():
    events = []
    tasks = [(1, {"value": 1, "epochs": 1, "fail": True}), (2, {"value": 2, "epochs": 1})]
    executors.run(tasks, toy_worker, lambda key, event: events.append((key, event)))
    assert [(key, event["type"]) for key, event in events] == [(1, "epoch"), (1, "failed"), (2, "epoch"), (2, "done")]
    assert events[-1][1]["result"]["pid"] == os.getpid()


# --- K-fold on the pool ---------------------------------------------------------------------------


@pytest.mark.slow
def test_kfold_on_a_pool_of_two_gives_the_sequential_numbers(tmp_path):
    config_path = write_kfold_config(tmp_path)
    sequential = invoke("kfold", config_path, "--k", "3", "--no-final")
    assert sequential.exit_code == 0, sequential.output
    pooled = invoke(
        "kfold",
        config_path,
        "--k",
        "3",
        "--no-final",
        "--workers",
        "2",
        "--set",
        f"output.runs_root={json.dumps(str(tmp_path / 'pooled'))}",
    )
    assert pooled.exit_code == 0, pooled.output
    assert "executor: a pool of 2 worker processes" in pooled.output
    assert all(f"fold {fold}/3: val_mae last" in pooled.output for fold in (1, 2, 3))
    (first,), (second,) = run_folders(tmp_path / "runs"), run_folders(tmp_path / "pooled")
    for folder in (first, second):
        assert json.loads((folder / "run.json").read_text())["status"] == "completed"
    one, two = (json.loads((folder / "kfold.json").read_text()) for folder in (first, second))
    assert two["executor"] == {"executor": "pool", "workers": 2, "cpus_per_trial": 1.0}
    for a, b in zip(one["folds"], two["folds"]):
        assert (a["last"], a["best"]) == (b["last"], b["best"])  # exactly equal, not approximately
        index = str(a["index"])
        assert history.load(first / "folds" / index / "history.json") == history.load(second / "folds" / index / "history.json")
    assert one["summary"] == two["summary"] and one["recommended_epochs"] == two["recommended_epochs"]
    assert no_child_process_within(30)


@pytest.mark.slow
def test_a_pooled_kfold_refits_on_a_worker_quietly_with_the_sequential_numbers(tmp_path):
    # The main process imports TensorFlow only for the final refit, through modules that import Keras
    # at module level: that import must still go through dlrun's quiet import (no absl/oneDNN lines).
    result = run_cli("kfold", write_kfold_config(tmp_path), "--k", "2", "--workers", "2", "--set", "train.epochs=2")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "final: training on all" in result.stdout and "completed:" in result.stdout
    (folder,) = run_folders(tmp_path / "runs")
    assert json.loads((folder / "run.json").read_text())["status"] == "completed"
    # The refit ran on a worker, which wrote the model and the test plots into the run folder; its
    # numbers are those of the same refit in this process.
    assert (folder / "model.keras").is_file() and not list(folder.glob(".model.tmp*"))
    assert {path.name for path in (folder / "plots").glob("*_test.png")} == {"predicted_vs_true_test.png", "residuals_test.png"}
    sequential = invoke(
        "kfold",
        write_kfold_config(tmp_path),
        "--k",
        "2",
        "--set",
        "train.epochs=2",
        "--set",
        f"output.runs_root={json.dumps(str(tmp_path / 'sequential'))}",
    )
    assert sequential.exit_code == 0, sequential.output
    (other,) = run_folders(tmp_path / "sequential")
    pooled_state, sequential_state = (json.loads((path / "kfold.json").read_text()) for path in (folder, other))
    assert pooled_state["final_test"] == sequential_state["final_test"]
    assert history.load(folder / "final" / "history.json") == history.load(other / "final" / "history.json")
    assert json.loads((folder / "metrics.json").read_text()) == json.loads((other / "metrics.json").read_text())
    # run.json's epoch count is exact at the end although live heartbeats are throttled
    final_epochs = len(history.load(folder / "final" / "history.json")["epoch"])
    epochs = sum(fold["epochs"] for fold in pooled_state["folds"]) + final_epochs
    assert json.loads((folder / "run.json").read_text())["epochs_completed"] == epochs


@pytest.mark.slow
def test_a_failing_fold_fails_the_run_keeps_the_others_and_resume_trains_it(tmp_path, monkeypatch):
    original = kfold_fits.train_part

    def fold_2_breaks(task, emit):
        if task.folder.endswith("folds/2"):
            raise RuntimeError("out of memory in fold 2")
        return original(task, emit)

    config_path = write_kfold_config(tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr(kfold_fits, "train_part", fold_2_breaks)
        result = invoke("kfold", config_path, "--k", "3", "--no-final", "--set", "train.epochs=2")
    assert result.exit_code == 1
    assert "1 of 3 fold(s) failed (fold 2/3: RuntimeError: out of memory in fold 2)" in result.stderr
    assert "fold 3/3: val_mae last" in result.output  # the fold after the failure still ran
    (folder,) = run_folders(tmp_path / "runs")
    state = json.loads((folder / "kfold.json").read_text())
    assert [fold["status"] for fold in state["folds"]] == ["completed", "failed", "completed"]
    assert state["folds"][1]["error"] == "RuntimeError: out of memory in fold 2"
    assert json.loads((folder / "run.json").read_text())["status"] == "failed"

    result = invoke("kfold", "--resume", folder)
    assert result.exit_code == 0, result.output
    assert "fold 2/3: val_mae last" in result.output and "fold 1/3:" not in result.output
    state = json.loads((folder / "kfold.json").read_text())
    assert [fold["status"] for fold in state["folds"]] == ["completed"] * 3 and "error" not in state["folds"][1]


def test_failure_event_keeps_dlrun_messages_plain():
    assert outcomes.failure(errors.TrainingFailed("training stopped: loss became nan"))["error"] == ("training stopped: loss became nan")


@pytest.mark.slow
def test_a_mistake_found_after_the_early_pool_started_exits_2_and_stops_it(tmp_path):
    result = invoke("kfold", write_kfold_config(tmp_path), "--k", "49", "--workers", "2")  # found once the data is loaded
    assert result.exit_code == 2, result.output
    assert "--k: received 49; expected at most the number of samples (48)" in result.stderr
    assert run_folders(tmp_path / "runs") == []
    assert no_child_process_within(30)


def _live_processes_in_group(group: int) -> list[int]:
    """Processes of process group `group` that still run (zombies waiting to be reaped do not count)."""
    from pathlib import Path

    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads the process table from /proc (Linux)")
def test_ctrl_c_on_the_terminal_interrupts_a_pooled_kfold_and_leaves_no_worker(tmp_path):
    import signal
    import subprocess
    import sys

    config_path = write_kfold_config(tmp_path)
    # Ctrl-C reaches the whole foreground process group; a test's background child starts with SIGINT
    # ignored, so the probe restores Python's handler first.
    probe = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from dlrun import cli; sys.argv = ['dlrun', *sys.argv[1:]]; cli.main()"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", probe, "kfold", str(config_path), "--k", "3", "--workers", "2", "--set", "train.epochs=400"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while not list((tmp_path / "runs").glob("*/folds/*/history.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert process.poll() is None, process.communicate()
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted after" in stderr and "Traceback" not in stderr
    (folder,) = run_folders(tmp_path / "runs")
    assert json.loads((folder / "run.json").read_text())["status"] == "interrupted"
    deadline = time.monotonic() + 15
    while _live_processes_in_group(process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _live_processes_in_group(process.pid) == []
