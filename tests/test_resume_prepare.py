"""`training.resume.prepare` on hand-made run folders (no Keras): which runs may be continued, with which config,
and what is refused before anything is written."""

import json

import pytest

from dlrun import errors, runs
from dlrun.training import resume
from tests.conftest import tiny_config


@pytest.fixture
def stopped_run(tmp_path):
    """A run folder that stopped (`interrupted`) after writing its config, unlocked as a killed process leaves it."""
    run = runs.Run.create(tmp_path / "runs", "tiny")
    tiny_config(run.path / runs.CONFIG_FILE, tmp_path / "runs", epochs=2)
    run.start(["dlrun", "train"], seed=3, versions={})
    run.finish("interrupted", error="Ctrl-C")
    yield run.path
    runs.release_locks()


def test_differences_lists_every_changed_leaf_with_its_dotted_path():
    before = {"a": 1, "b": {"c": 2, "d": {"e": 3}}, "gone": 0}
    after = {"a": 1, "b": {"c": 5, "d": {"e": 3, "f": 4}}, "new": [1]}
    assert resume.differences(before, after) == [("b.c", 2, 5), ("b.d.f", None, 4), ("gone", 0, None), ("new", None, [1])]
    assert resume.differences(before, before) == []
    assert resume.differences({"a": {"b": 1}}, {"a": 2}) == [("a", {"b": 1}, 2)]  # a section replaced by a value
    assert resume.differences({"a": 2}, {"a": {"b": 1}}) == [("a", 2, {"b": 1})]


def test_an_unchanged_stopped_run_is_continued_with_its_own_config(stopped_run):
    run, config = resume.prepare(stopped_run, None, [], False)
    assert run.path == stopped_run and config.train.epochs == 2
    assert runs.Run.open(stopped_run).record["status"] == "interrupted"  # prepare writes nothing


def test_a_changed_config_is_refused_with_every_difference_unless_forced(stopped_run, tmp_path):
    with pytest.raises(errors.ConfigError) as raised:
        resume.prepare(stopped_run, None, ["train.epochs=4", "train.batch_size=8"], False)
    assert str(raised.value) == (
        f"invalid config for --resume {stopped_run} (3 problems):\n"
        "  train.epochs: run has 2, now 4\n  train.batch_size: run has 16, now 8\n"
        "  expected the run's own config; pass --force to resume with these changes"
    )
    run, config = resume.prepare(stopped_run, None, ["train.epochs=4"], True)
    assert run.path == stopped_run and config.train.epochs == 4
    other = tiny_config(tmp_path / "other.yaml", tmp_path / "runs", epochs=3)  # a config file counts as a change too
    with pytest.raises(errors.ConfigError, match="train.epochs: run has 2, now 3"):
        resume.prepare(stopped_run, other, [], False)
    with pytest.raises(errors.ConfigError, match="backend: run has auto, now jax"):  # --set: a change; --backend NAME asks
        resume.prepare(stopped_run, None, ["backend=jax"], False)


def test_another_optimizer_is_refused_even_forced(stopped_run):
    with pytest.raises(errors.ConfigError) as raised:
        resume.prepare(stopped_run, None, ["compile.optimizer=sgd"], True)
    assert str(raised.value) == (
        f"invalid config for --resume {stopped_run}: compile.optimizer.name: the run trained with 'rmsprop', now 'sgd'; "
        "expected the same optimizer to continue it (its checkpoint holds that optimizer's state): train a new run to use another"
    )


def test_a_completed_run_is_not_continued(stopped_run):
    record = runs.Run.open(stopped_run)
    record.update(status="completed")
    run, config = resume.prepare(stopped_run, None, [], False)
    assert run is None and config.name == "tiny"


def test_a_run_without_its_config_is_refused(stopped_run):
    (stopped_run / runs.CONFIG_FILE).unlink()
    with pytest.raises(errors.RunError, match=f"^{stopped_run}: has no config.yaml; expected a run folder written by dlrun train$"):
        resume.prepare(stopped_run, None, [], False)


@pytest.mark.parametrize("what", ["history", "checkpoint"])
def test_a_damaged_history_is_refused_before_keras_when_there_is_one_or_a_checkpoint(stopped_run, what):
    if what == "history":
        (stopped_run / "history.json").write_text("[]")
    else:  # a checkpoint, and no history beside it
        (stopped_run / "checkpoints").mkdir()
        (stopped_run / "checkpoints" / "last.npz").write_bytes(b"x")
    with pytest.raises(errors.RunError, match="history.json: "):
        resume.prepare(stopped_run, None, [], False)


def test_a_run_that_stopped_before_any_history_or_checkpoint_is_continued(stopped_run):
    run, _ = resume.prepare(stopped_run, None, [], False)
    assert run is not None and not (stopped_run / "history.json").exists()
    assert json.loads((stopped_run / "run.json").read_text())["status"] == "interrupted"
