"""The start of the one run lifecycle (`runs.starting`, `runs.create`): a Ctrl-C or SIGTERM at any moment of a
command's start-up ends it with `errors.Interrupted` and an honest status (no run folder, or one marked
`interrupted`). Signals are sent for real (`os.kill` of this process) at chosen moments, so each case is
deterministic. The commands themselves (kfold and sweep, exit 130) are in test_signals.py."""

import json
import os
import signal

import pytest

from dlrun import errors, runs
from dlrun.runs import folder as run_folder
from tests.conftest import run_folders

pytestmark = pytest.mark.usefixtures("ctrl_c_raises_keyboard_interrupt")


def _record(folder) -> dict:
    return json.loads((folder / "run.json").read_text())


def _ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)


def test_an_interrupt_before_the_run_folder_exists_says_nothing_was_written(tmp_path):
    with pytest.raises(errors.Interrupted, match="^interrupted while starting: no run folder was created, nothing was written$"):
        with runs.starting("dlrun x --resume {path}"):
            _ctrl_c()
    assert list(tmp_path.iterdir()) == []


def test_a_signal_while_the_folder_is_made_is_held_until_the_folder_is_known(tmp_path, monkeypatch):
    """Ctrl-C arriving inside `Run.create` (the folder made, not yet known to the caller) must not leave a
    bare folder: it is held until `starting` knows the folder, which is then marked interrupted."""
    real = run_folder.unique_folder
    monkeypatch.setattr(run_folder, "unique_folder", lambda *args: (real(*args), _ctrl_c())[0])
    with pytest.raises(errors.Interrupted) as raised:
        with runs.starting("dlrun x --resume {path}"):
            runs.create(tmp_path, "x")
            pytest.fail("the signal was lost")
    (folder,) = run_folders(tmp_path)
    assert _record(folder)["status"] == "interrupted"
    assert str(raised.value) == f"interrupted while starting: {folder} was made but not started; it is marked interrupted (start a new run)"


def test_an_interrupt_after_the_run_started_marks_it_interrupted_and_says_how_to_continue(tmp_path):
    with pytest.raises(errors.Interrupted) as raised:
        with runs.starting("dlrun x --resume {path}"):
            run = runs.create(tmp_path, "x")
            run.start(["dlrun", "x"], seed=1, versions={})
            _ctrl_c()
    record = _record(run.path)
    assert record["status"] == "interrupted" and record["error"] == "interrupted by the user (Ctrl-C or SIGTERM)"
    assert str(raised.value) == f"interrupted; what was written so far is in {run.path} (continue with: dlrun x --resume {run.path})"
    runs.Run.open(run.path).lock()  # the lock was released with the run


def test_sigterm_during_start_up_acts_as_ctrl_c_and_its_handler_is_put_back(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(errors.Interrupted, match="no run folder was created"):
        with runs.starting("go on"):
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before


def test_an_interrupt_after_the_run_ended_leaves_its_status(tmp_path):
    with pytest.raises(errors.Interrupted) as raised:
        with runs.starting("go on"):
            run = runs.create(tmp_path, "x")
            run.start(["dlrun", "x"], seed=1, versions={})
            run.finish("completed")
            _ctrl_c()
    assert _record(run.path)["status"] == "completed"
    assert str(raised.value) == f"interrupted after {run.path} ended completed; it is kept as it is"


def test_recorded_inside_starting_says_what_it_always_said(tmp_path):
    with pytest.raises(errors.Interrupted, match="^interrupted after 1 part; what was written so far is in .* \\(continue with: c\\)$"):
        with runs.starting("s"):
            run = runs.create(tmp_path, "x")
            run.start(["dlrun", "x"], seed=1, versions={})
            with runs.recorded(run, "x", "c", lambda: ("after 1 part", {})):
                _ctrl_c()
    assert _record(run.path)["status"] == "interrupted"


def test_a_nested_start_up_owns_only_its_own_run(tmp_path):
    """A sweep trial trained in-process starts up inside the sweep's start-up: each marks its own run."""
    with pytest.raises(errors.Interrupted):
        with runs.starting("outer {path}"):
            outer = runs.create(tmp_path / "outer", "sweep")
            outer.start(["dlrun", "sweep"], seed=1, versions={})
            with pytest.raises(errors.Interrupted, match="inner"):
                with runs.starting("inner {path}"):
                    inner = runs.create(tmp_path / "inner", "trial")
                    inner.start(["dlrun", "train"], seed=1, versions={})
                    _ctrl_c()
            assert _record(outer.path)["status"] == "running"
            _ctrl_c()
    assert _record(inner.path)["status"] == "interrupted" and _record(outer.path)["status"] == "interrupted"


def _interrupted_run(tmp_path) -> runs.Run:
    run = runs.create(tmp_path, "x")
    run.start(["dlrun", "x"], seed=1, versions={})
    run.finish("interrupted", error="earlier")
    return run


def test_an_interrupt_before_a_resume_changed_the_run_leaves_it_as_it_was(tmp_path):
    run = _interrupted_run(tmp_path)
    before = (run.path / "run.json").read_text()
    with pytest.raises(errors.Interrupted) as raised:
        with runs.starting("dlrun x --resume {path}", run.path):
            runs.Run.open_to_continue(run.path)
            _ctrl_c()
    assert (run.path / "run.json").read_text() == before
    assert str(raised.value) == f"interrupted while starting: {run.path} was not changed (continue with: dlrun x --resume {run.path})"


def test_an_interrupt_after_a_resume_marked_the_run_running_marks_it_interrupted(tmp_path):
    run = _interrupted_run(tmp_path)
    with pytest.raises(errors.Interrupted, match="what was written so far is in"):
        with runs.starting("dlrun x --resume {path}", run.path):
            runs.Run.open_to_continue(run.path).resume(["dlrun", "x", "--resume"], epochs_completed=0)
            _ctrl_c()
    record = _record(run.path)
    assert record["status"] == "interrupted" and len(record["resumes"]) == 1


def test_a_run_marked_running_by_another_process_is_not_claimed(tmp_path):
    """A --resume interrupted before it changed anything never marks a run another process left running."""
    run = runs.create(tmp_path, "x")
    run.start(["dlrun", "x"], seed=1, versions={})
    run.update(pid=os.getpid() + 100_000)  # a killed process's run: `running`, another pid
    run.unlock()
    with pytest.raises(errors.Interrupted, match="was not changed"):
        with runs.starting("go on", run.path):
            _ctrl_c()
    assert _record(run.path)["status"] == "running"


def test_create_outside_a_start_up_still_holds_a_signal_until_it_returns(tmp_path, monkeypatch):
    real = run_folder.unique_folder
    monkeypatch.setattr(run_folder, "unique_folder", lambda *args: (real(*args), _ctrl_c())[0])
    with pytest.raises(KeyboardInterrupt):
        runs.create(tmp_path, "x")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_create_makes_the_named_folder_in_any_thread(tmp_path):
    """A run made in a thread that never opened a start-up block (a trial on a thread executor) is made as in
    the main thread."""
    import threading

    made = []
    thread = threading.Thread(target=lambda: made.append(runs.create(tmp_path, "trial")))
    thread.start()
    thread.join()
    (run,) = made
    assert run.path.parent == tmp_path and run.path.name.endswith("_trial") and run.path.is_dir()
