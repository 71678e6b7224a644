"""`training.resume.prepare` on hand-made run folders (no Keras): which runs may be continued, with which config,
and what is refused before anything is written."""

import json

import pytest

from dlrun import backend, config, errors, runs
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


@pytest.fixture
def backends(monkeypatch):
    """The backends installed here and the one Keras was imported with, as a test sets them (nothing imported)."""
    facts = {"installed": ["tensorflow", "jax", "torch"], "loaded": None}
    monkeypatch.setattr(backend, "installed", lambda: list(facts["installed"]))
    monkeypatch.setattr(backend, "loaded", lambda: facts["loaded"])
    return facts


def _trained_on(run_path, name: str) -> None:
    """Make a run folder say it trained on `name`, as dlrun records it (run.json and the resolved config)."""
    with open(run_path / runs.CONFIG_FILE, "a", encoding="utf-8") as stored:
        stored.write(f"backend: {name}\n")
    runs.Run.open(run_path).update(backend={"name": name, "reason": "auto: as the run resolved it"})


def test_the_backend_a_run_trained_on_is_run_json_s_then_its_config_s(tmp_path):
    jax, auto = (config.validate({"data": "digits", "model": "mlp", "backend": name}) for name in ("jax", "auto"))
    assert resume.backend_used(runs.Run(tmp_path, {"backend": {"name": "torch", "reason": "r"}}), jax) == "torch"
    assert resume.backend_used(runs.Run(tmp_path, {"backend": {"name": "theano"}}), jax) == "jax"  # not a backend
    assert resume.backend_used(runs.Run(tmp_path, {"backend": "torch"}), jax) == "jax"  # not a record
    assert resume.backend_used(runs.Run(tmp_path, {}), jax) == "jax"
    assert resume.backend_used(runs.Run(tmp_path, {}), auto) is None  # an old run: neither says


def test_a_run_continues_on_its_own_backend_or_on_the_one_asked_for(tmp_path, backends):
    auto = config.validate({"data": "digits", "model": "mlp"})
    run = runs.Run(tmp_path, {"backend": {"name": "torch"}})
    assert resume.on_run_backend(run, auto, None, "dlrun eval R").backend == "torch"
    assert resume.on_run_backend(run, auto, "jax", "dlrun eval R").backend == "jax"  # --backend jax
    assert resume.on_run_backend(runs.Run(tmp_path, {}), auto, None, "dlrun eval R").backend == "auto"  # an old run
    backends["loaded"] = "torch"
    assert resume.on_run_backend(run, auto, None, "dlrun eval R").backend == "torch"  # Keras already on it


def test_a_run_whose_backend_cannot_run_here_is_refused_saying_how_to_ask_for_another(tmp_path, backends):
    auto = config.validate({"data": "digits", "model": "mlp"})
    run = runs.Run(tmp_path, {"backend": {"name": "jax"}})
    backends["installed"] = ["tensorflow", "torch"]
    with pytest.raises(errors.RunError) as raised:
        resume.on_run_backend(run, auto, None, "dlrun eval R")
    assert str(raised.value) == (
        f"{tmp_path}: trained on the jax backend, but the active backend is tensorflow (jax is not installed here); "
        "expected the run's own backend, since numbers differ between backends: install it (pip install 'dlrun[jax]'), "
        "or ask for tensorflow: dlrun eval R --backend tensorflow"
    )
    backends["installed"], backends["loaded"] = ["tensorflow", "jax", "torch"], "torch"
    with pytest.raises(errors.RunError) as raised:
        resume.on_run_backend(run, auto, None, None)  # no command to name: no "ask for"
    assert str(raised.value) == (
        f"{tmp_path}: trained on the jax backend, but the active backend is torch (Keras is already imported on torch in "
        "this process); expected the run's own backend, since numbers differ between backends: run dlrun in a new process"
    )


def test_resume_keeps_the_run_s_backend_and_takes_another_only_when_asked(stopped_run, tmp_path, backends):
    _trained_on(stopped_run, "tensorflow")
    original = tiny_config(tmp_path / "original.yaml", tmp_path / "runs", epochs=2)  # says nothing: auto
    assert resume.prepare(stopped_run, original, [], False)[1].backend == "tensorflow"  # what auto chose: no change
    assert resume.prepare(stopped_run, None, [], False, backend="jax")[1].backend == "jax"  # --backend: asked, no change
    assert resume.prepare(stopped_run, None, ["backend=jax"], True)[1].backend == "jax"  # --set: a change, forced
    runs.Run.open(stopped_run).update(backend={"name": "jax", "reason": "edited"})  # run.json and config.yaml disagree
    assert resume.prepare(stopped_run, None, [], False)[1].backend == "jax"  # run.json's record wins
    assert resume.prepare(stopped_run, None, [], False, backend="tensorflow")[1].backend == "tensorflow"  # the ask wins


def test_resume_of_a_run_whose_backend_is_not_installed_is_refused_unless_another_is_asked(stopped_run, backends):
    _trained_on(stopped_run, "jax")
    backends["installed"] = ["tensorflow"]
    with pytest.raises(errors.RunError) as raised:
        resume.prepare(stopped_run, None, [], False)
    assert str(raised.value).endswith(
        f"install it (pip install 'dlrun[jax]'), or ask for tensorflow: dlrun train --resume {stopped_run} --backend tensorflow"
    )
    assert resume.prepare(stopped_run, None, [], False, backend="tensorflow")[1].backend == "tensorflow"
