"""The Ray Tune executor on a 2-CPU local Ray cluster: K-fold gives the sequential numbers, a failing
trial is reported and fails the run. Skipped (with the reason) where Ray Tune is not installed."""

import json

import pytest

from dlrun.trials import executors
from tests.conftest import invoke, no_child_process_within, run_folders, toy_worker, write_kfold_config

ray = pytest.importorskip("ray", reason="Ray Tune is an optional extra: pip install 'dlrun[ray]'")
pytest.importorskip("ray.tune", reason="Ray Tune is an optional extra: pip install 'dlrun[ray]'")


@pytest.fixture(scope="session")
def local_ray():
    """One local Ray instance with 2 CPUs for every test here (started once: it costs seconds)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.mark.slow
def test_trials_stream_their_epochs_and_a_failed_trial_is_reported(local_ray):
    tasks = [(index, {"value": index, "epochs": 2, "fail": index == 2}) for index in (1, 2, 3)]
    events = []
    executors.run(tasks, toy_worker, lambda key, event: events.append((key, event)), executors.Placement("ray"))
    outcomes = {key: event for key, event in events if event["type"] in ("done", "failed")}
    assert sorted(outcomes) == [1, 2, 3]
    assert outcomes[2]["type"] == "failed" and "trial 2 broke" in outcomes[2]["error"]
    assert {key: outcomes[key]["result"]["value"] for key in (1, 3)} == {1: 1, 3: 3}
    assert sorted((key, event["epoch"]) for key, event in events if event["type"] == "epoch") == [
        (key, epoch) for key in (1, 2, 3) for epoch in (1, 2)
    ]


@pytest.mark.slow
def test_kfold_as_ray_tune_trials_gives_the_sequential_numbers(local_ray, tmp_path):
    config_path = write_kfold_config(tmp_path)
    sequential = invoke("kfold", config_path, "--k", "3", "--no-final")
    assert sequential.exit_code == 0, sequential.output
    on_ray = invoke(
        "kfold",
        config_path,
        "--k",
        "3",
        "--no-final",
        "--executor",
        "ray",
        "--set",
        f"output.runs_root={json.dumps(str(tmp_path / 'ray'))}",
    )
    assert on_ray.exit_code == 0, on_ray.output
    assert "executor: Ray Tune" in on_ray.output and "fold 3/3: val_mae last" in on_ray.output
    (first,), (second,) = run_folders(tmp_path / "runs"), run_folders(tmp_path / "ray")
    one, two = (json.loads((folder / "kfold.json").read_text()) for folder in (first, second))
    assert two["executor"]["executor"] == "ray"
    for a, b in zip(one["folds"], two["folds"]):
        assert (a["last"], a["best"]) == (b["last"], b["best"])
        index = str(a["index"])
        assert (first / "folds" / index / "history.json").read_text() == (second / "folds" / index / "history.json").read_text()
        # Ray workers train in a scratch folder; their checkpoints came back in the events and were written here
        assert (second / "folds" / index / "checkpoints" / "last.npz").read_bytes() == (
            first / "folds" / index / "checkpoints" / "last.npz"
        ).read_bytes()
    assert no_child_process_within(30)
