"""`dlrun sweep` with a `search:` section on Optuna: validation, pruning, the failure policy, joined workers."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import invoke, record_trained_epochs, run_folders, subprocess_env

BASE = """\
name: se
seed: 5
data: {{name: synthetic, task: regression, num_samples: 60, input_shape: [4], noise: 0.3}}
model: {{architecture: mlp, units: [4]}}
train: {{epochs: {epochs}, batch_size: 16}}
output: {{runs_root: {root}, plots: false, save_model: false}}
"""


def write(tmp_path, search: str, epochs: int = 2, base: str = BASE) -> Path:
    path = tmp_path / "search.yaml"
    path.write_text(base.format(root=json.dumps(str(tmp_path / "runs")), epochs=epochs) + search)
    return path


# --- the section: validated before anything exists -------------------------------------------------


@pytest.mark.parametrize(
    "search, message",
    [
        (
            "search: {space: {train.batch_size: {uniform: [1, 2]}}}",
            "search.space.train.batch_size.uniform: received unknown key 'uniform'; expected one of the keys log, step, choice, int, float",
        ),
        (
            "search: {space: {train.batch_size: {log: true}}}",
            "search.space.train.batch_size: received a mapping; expected exactly one of choice, int, float (received none of them)",
        ),
        (
            "search: {space: {compile.optimizer.learning_rate: {float: [0.1, 0.001]}}}",
            "search.space.compile.optimizer.learning_rate.float: received [0.1, 0.001]; expected [LOW, HIGH] with LOW <= HIGH",
        ),
        (
            "search: {space: {compile.optimizer.learning_rate: {float: [0, 0.1], log: true}}}",
            "search.space.compile.optimizer.learning_rate.float: received [0, 0.1]; expected LOW > 0 with log: true",
        ),
        (
            "search: {space: {train.batchsize: {choice: [16, 32]}}}",
            "search.space.train.batchsize: received 16, which the config refuses (train.batchsize: received unknown key 'batchsize'",
        ),
        (
            "search: {space: {train.batch_size: {choice: [16, 0]}}}",
            "search.space.train.batch_size: received 0, which the config refuses (train.batch_size: received 0; expected a number >= 1)",
        ),
        (
            "search: {space: {train.epochs: {int: [0, 3]}}}",
            "search.space.train.epochs: received 0, which the config refuses (train.epochs: received 0; expected a number >= 1)",
        ),
        (
            "search: {sampler: grid, space: {compile.optimizer.learning_rate: {float: [0.001, 0.1]}}}",
            "search.space.compile.optimizer.learning_rate: received a float range with sampler grid; expected choice values",
        ),
        (
            "search: {sampler: cmaes, space: {train.batch_size: {choice: [16, 32]}}}",
            "search.space.train.batch_size: received choice values with sampler cmaes; expected an int or float range",
        ),
        (
            "search: {sampler: annealing, space: {train.batch_size: {choice: [16]}}}",
            'search.sampler: received "annealing"; expected one of tpe, random, grid, cmaes',
        ),
        (
            "search: {metric: val_acc, space: {train.batch_size: {choice: [16]}}}",
            "search.metric: received 'val_acc'; expected one of loss, mae, val_loss, val_mae",
        ),
        (
            "search: {trials: 5, sampler: grid, space: {train.batch_size: {choice: [16, 32]}}}",
            "search.trials: received 5 with a grid of 2 points; expected at most 2",
        ),
        ("search: {space: {}}", "search.space: received no keys; expected at least one KEY.PATH"),
    ],
    ids=[
        "unknown-distribution",
        "no-distribution",
        "low>high",
        "log-from-0",
        "not-a-config-path",
        "refused-choice",
        "refused-bound",
        "grid-with-range",
        "cmaes-with-choice",
        "sampler",
        "metric",
        "grid-too-small",
        "empty-space",
    ],
)
def test_a_bad_search_section_exits_2_naming_the_key_before_any_folder(tmp_path, search, message):
    result = invoke("sweep", write(tmp_path, search))
    assert result.exit_code == 2, result.output
    assert message in result.stderr, result.stderr
    assert "s3cret" not in result.output + result.stderr  # a storage URL's password is never printed
    assert "Traceback" not in result.stderr
    assert run_folders(tmp_path / "runs") == []
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_bad_search_section_is_refused_before_keras_or_optuna_is_imported(tmp_path):
    config = write(tmp_path, "search: {space: {train.batch_size: {choice: [16, 0]}}}")
    probe = (
        "import sys\nfrom dlrun import cli\nsys.argv = ['dlrun', *sys.argv[1:]]\n"
        "try:\n    cli.main()\nexcept SystemExit as exit:\n    print('EXIT=' + str(exit.code), file=sys.stderr)\n"
        "print('HEAVY=' + ','.join(name for name in ('tensorflow', 'keras', 'optuna') if name in sys.modules), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, "sweep", str(config)], capture_output=True, text=True, timeout=120, env=subprocess_env()
    )
    assert "search.space.train.batch_size: received 0" in result.stderr
    assert "EXIT=2" in result.stderr and "HEAVY=\n" in result.stderr, result.stderr


@pytest.mark.parametrize(
    "options, message",
    [
        (["--trials", "0"], "--trials: received 0; expected a number of trials >= 1"),
        (["--sampler", "bayes"], "--sampler: received 'bayes'; expected one of tpe, random, grid, cmaes"),
        (["--pruner", "patient"], "--pruner: received 'patient'; expected one of median, asha, hyperband, none"),
        (["--max-failures", "0"], "--max-failures: received 0; expected a number of failed trials >= 1"),
        (["--storage", "nowhere"], "--storage: received 'nowhere'; expected sqlite (default: study.db in the sweep folder), journal"),
        (
            ["--storage", "postgresql+psycopg2://nobody@127.0.0.1:1/none"],
            "--storage: cannot open 'postgresql+psycopg2://nobody@127.0.0.1:1/none'",
        ),
        (
            ["--storage", "postgresql+psycopg2://nobody:s3cret@127.0.0.1:1/none"],
            "--storage: cannot open 'postgresql+psycopg2://nobody:***@127.0.0.1:1/none'",
        ),
    ],
    ids=["trials", "sampler", "pruner", "max-failures", "storage-word", "storage-unreachable", "storage-password-hidden"],
)
def test_bad_search_options_exit_2_before_any_folder(tmp_path, options, message):
    config = write(tmp_path, "search: {space: {train.batch_size: {choice: [16, 32]}}}")
    result = invoke("sweep", config, *options)
    assert result.exit_code == 2, result.output
    assert message in result.stderr, result.stderr
    assert run_folders(tmp_path / "runs") == []


def test_resume_and_join_take_only_the_sweep(tmp_path):
    result = invoke("sweep", "--resume", tmp_path, "--trials", "3")
    assert result.exit_code == 2 and "--resume: received a CONFIG or a search option too; expected only the sweep" in result.stderr
    result = invoke("sweep", "--join", tmp_path, "--resume", tmp_path)
    assert result.exit_code == 2 and "received a CONFIG or a search option too" in result.stderr
    result = invoke("sweep", "--join", tmp_path / "nowhere")
    assert result.exit_code == 2 and "nowhere: not a dlrun run folder" in result.stderr


def test_config_show_prints_the_resolved_search_and_train_ignores_it(tmp_path):
    from dlrun import config

    path = write(tmp_path, "search:\n  metric: val_mae\n  space:\n    train.batch_size: {choice: [16, 32]}\n")
    result = invoke("config", "show", path)
    assert result.exit_code == 0, result.output
    shown = result.output[result.output.index("search:") :]
    assert "direction: minimize" in shown and "seed: 5" in shown and "sampler: tpe" in shown and "pruner: median" in shown
    assert "train.batch_size:\n      choice: [16, 32]" in shown
    reloaded = config.load(path)
    assert config.to_data(config.validate(config.to_data(reloaded))) == config.to_data(reloaded)  # show's output loads back
    without = config.to_data(config.load(write(tmp_path, "")))
    assert "search" not in without  # a config without the section stores none (a trial's run folder, a training run)


# --- pruning, failures, joined workers (they train) ------------------------------------------------


@pytest.mark.slow
def test_a_hopeless_trial_is_pruned_and_its_run_says_when_and_why(tmp_path, monkeypatch):
    search = """\
search:
  sampler: grid
  pruner: median
  startup_trials: 1
  warmup_epochs: 0
  space:
    compile.optimizer.learning_rate: {choice: [0.05, 1.0e-9]}
"""
    epochs = 4
    with monkeypatch.context() as patch:
        trained = record_trained_epochs(patch)
        result = invoke("sweep", write(tmp_path, search, epochs=epochs))
    assert result.exit_code == 0, result.output
    (folder,) = run_folders(tmp_path / "runs")
    state = json.loads((folder / "sweep.json").read_text())
    rates = [trial["overrides"]["compile.optimizer.learning_rate"] for trial in state["trials"]]
    assert rates == [0.05, 1e-9], "the seeded grid no longer asks the good rate first: pick another seed"
    good, hopeless = state["trials"]
    assert good["status"] == "completed" and hopeless["status"] == "pruned"
    record = json.loads((Path(hopeless["run"]) / "run.json").read_text())
    assert record["status"] == "pruned"
    pruned_at = record["pruned"]["epoch"]
    assert 1 <= pruned_at < epochs and hopeless["pruned"]["epoch"] == pruned_at
    assert (
        record["pruned"]["reason"].startswith("val_loss ") and f"at epoch {pruned_at} worse than the median" in record["pruned"]["reason"]
    )
    # counted, not inferred: the hopeless trial trained only up to the epoch it was pruned at
    assert [epoch for name, epoch in trained if name == Path(hopeless["run"]).name] == list(range(1, pruned_at + 1))
    assert [epoch for name, epoch in trained if name == Path(good["run"]).name] == list(range(1, epochs + 1))
    assert state["ranking"] == [0]  # a pruned trial is never ranked
    assert f"pruned at epoch {pruned_at}" in result.output
    listing = invoke("runs", folder / "trials")
    assert "pruned" in listing.output
    report = invoke("report", hopeless["run"])
    assert report.exit_code == 0, report.output
    page = (Path(hopeless["run"]) / "report.html").read_text()
    assert 'class="status-pruned"' in page and f"after epoch {pruned_at}: val_loss" in page


@pytest.mark.slow
def test_a_trial_judged_only_at_its_last_epoch_completes_and_is_ranked(tmp_path):
    """The pruner's first look (after warmup_epochs) is the last epoch: the hopeless trial has trained every
    epoch by then, so it completes and is ranked (before: pruned at epoch 2 of 2, its result lost)."""
    search = """\
search:
  sampler: grid
  pruner: median
  startup_trials: 1
  warmup_epochs: 1
  space:
    compile.optimizer.learning_rate: {choice: [0.05, 1.0e-9]}
"""
    result = invoke("sweep", write(tmp_path, search, epochs=2))
    assert result.exit_code == 0, result.output
    (folder,) = run_folders(tmp_path / "runs")
    state = json.loads((folder / "sweep.json").read_text())
    assert [trial["overrides"]["compile.optimizer.learning_rate"] for trial in state["trials"]] == [0.05, 1e-9]
    assert [trial["status"] for trial in state["trials"]] == ["completed", "completed"]
    assert state["ranking"] == [0, 1]


@pytest.mark.slow
def test_max_failures_stops_after_n_failed_trials_in_a_row_listing_them(tmp_path):
    search = """\
search:
  trials: 5
  pruner: none
  space:
    compile.optimizer.learning_rate: {float: [1.0e+30, 1.0e+31]}
compile: {optimizer: sgd}
"""
    result = invoke("sweep", write(tmp_path, search, epochs=3), "--max-failures", "2")
    assert result.exit_code == 1, result.output
    assert "stopped after 2 trials failed in a row (--max-failures 2): trial 0: training stopped: " in result.stderr
    assert "; trial 1: training stopped: " in result.stderr and "continue with: dlrun sweep --resume" in result.stderr
    (folder,) = run_folders(tmp_path / "runs")
    state = json.loads((folder / "sweep.json").read_text())
    assert [trial["status"] for trial in state["trials"]] == ["failed", "failed"]  # no third trial was asked
    for trial in state["trials"]:
        assert "became nan at epoch 1" in trial["error"] or "became inf at epoch 1" in trial["error"]  # NaN: failed, with its epoch
    assert state["status"] == "failed" and state["ranking"] == []
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "failed" and record["best_trial"] is None and record["trials_failed"] == 2
    assert "failed at epoch 1" in result.output


@pytest.mark.slow
def test_a_journal_storage_keeps_the_study_in_the_sweep_folder(tmp_path):
    search = "search: {pruner: none, space: {train.batch_size: {choice: [8, 16]}}}"
    result = invoke("sweep", write(tmp_path, search), "--storage", "journal", "--sampler", "grid")
    assert result.exit_code == 0, result.output
    (folder,) = run_folders(tmp_path / "runs")
    state = json.loads((folder / "sweep.json").read_text())
    assert state["storage"] == f"journal:{(folder / 'study.journal').resolve()}"
    assert (folder / "study.journal").stat().st_size > 0 and not (folder / "study.db").exists()
    assert sorted(trial["overrides"]["train.batch_size"] for trial in state["trials"]) == [8, 16]
    assert [trial["status"] for trial in state["trials"]] == ["completed", "completed"]


JOINED = """\
name: jo
seed: 3
data: {{name: synthetic, task: regression, num_samples: 3000, input_shape: [5], noise: 1.0}}
model: {{architecture: mlp, units: [8]}}
train: {{epochs: {epochs}, batch_size: 16}}
output: {{runs_root: {root}, plots: false, save_model: false}}
search:
  trials: 6
  pruner: none
  space:
    compile.optimizer.learning_rate: {{float: [1.0e-3, 1.0e-2], log: true}}
"""


def _joined_sweep(tmp_path, storage: list[str]) -> tuple[Path, list[dict]]:
    """Start a sweep in one process, join a second to it once its folder exists, wait for both; return the
    sweep folder and its trials."""
    path = tmp_path / "joined.yaml"
    path.write_text(JOINED.format(root=json.dumps(str(tmp_path / "runs")), epochs=4))
    env = subprocess_env()
    first = subprocess.Popen(
        [sys.executable, "-m", "dlrun", "sweep", str(path), *storage], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 120
    while not (run_folders(tmp_path / "runs") and (run_folders(tmp_path / "runs")[0] / "sweep.json").exists()):
        assert time.monotonic() < deadline and first.poll() is None, f"the sweep never made its folder: {first.communicate()[0][-3000:]}"
        time.sleep(0.05)
    (folder,) = run_folders(tmp_path / "runs")
    second = subprocess.run(
        [sys.executable, "-m", "dlrun", "sweep", "--join", str(folder)], env=env, capture_output=True, text=True, timeout=600
    )
    output, _ = first.communicate(timeout=600)
    assert first.returncode == 0, output[-3000:]
    assert second.returncode == 0, second.stderr[-3000:]
    assert "this worker trained trial(s)" in second.stdout
    return folder, json.loads((folder / "sweep.json").read_text())["trials"]


def _assert_each_trial_once(folder: Path, trials: list[dict]) -> None:
    assert [trial["number"] for trial in trials] == list(range(6))  # exactly N, numbered once each
    assert all(trial["status"] == "completed" for trial in trials)
    children = run_folders(folder / "trials")
    assert sorted(trial["run"] for trial in trials) == [str(child) for child in children]  # one run folder per trial
    pids = {json.loads((child / "run.json").read_text())["pid"] for child in children}
    assert len(pids) == 2, "both processes trained trials"  # the joined worker took its share
    for child in children:
        assert json.loads((child / "history.json").read_text())["epoch"] == [1, 2, 3, 4]  # each trained once, whole


@pytest.mark.slow
def test_two_processes_joined_to_one_sqlite_study_run_each_trial_once(tmp_path):
    folder, trials = _joined_sweep(tmp_path, [])
    _assert_each_trial_once(folder, trials)


@pytest.fixture
def postgres_url(tmp_path):
    """A PostgreSQL server started for the test (as the `postgres` user when running as root), its URL."""
    import glob

    # on PATH (a hand-made install), or where Debian's postgresql package puts them
    debian = os.pathsep.join(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True))
    initdb, pg_ctl = (shutil.which(name) or shutil.which(name, path=debian) for name in ("initdb", "pg_ctl"))
    if not (initdb and pg_ctl):
        pytest.skip("postgresql: the server binaries (initdb, pg_ctl; Debian's postgresql package) are not installed")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pytest.skip("postgresql: the psycopg2 driver is not installed")
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="dlrun-pg-"))  # not under tmp_path: its parents are private to this user
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # the server refuses to run as root
    if as_user:
        shutil.chown(root, "postgres")
    data, port = root / "data", 54329
    subprocess.run([*as_user, initdb, "-D", str(data), "-U", "dlrun", "--auth=trust"], check=True, capture_output=True, timeout=120)
    subprocess.run(
        [
            *as_user,
            pg_ctl,
            "-D",
            str(data),
            "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1",
            "-l",
            str(root / "server.log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        yield f"postgresql+psycopg2://dlrun@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_two_processes_joined_to_one_postgresql_study_run_each_trial_once(tmp_path, postgres_url):
    folder, trials = _joined_sweep(tmp_path, ["--storage", postgres_url])
    _assert_each_trial_once(folder, trials)
    assert json.loads((folder / "sweep.json").read_text())["storage"] == postgres_url
    assert not (folder / "study.db").exists()


def test_a_worker_s_reporters_share_one_storage_per_sweep(tmp_path):
    """A pool worker reports trial after trial: its reporters reuse the sweep's storage (each new RDBStorage
    left SQLAlchemy objects behind); a reporter of another sweep replaces it, so at most one is kept."""
    from dlrun.config import search as search_config
    from dlrun.trials import search

    section = search_config.SearchConfig.model_validate(
        {"metric": "val_loss", "direction": "minimize", "space": {"seed": {"choice": [1, 2]}}}
    )
    urls = [search.storage_url(None, tmp_path / name) for name in ("a", "b")]
    for url, folder in zip(urls, ("a", "b")):
        (tmp_path / folder).mkdir()
        study = search.open_study(url, "s", section, create=True)
        study.ask(), study.ask()
    first, second = (search.Reporter(urls[0], "s", trial_id, section) for trial_id in (1, 2))
    assert first.study._storage._backend is second.study._storage._backend  # optuna wraps the storage in a cache
    assert first.study is second.study  # loaded once
    other = search.Reporter(urls[1], "s", 1, section)
    assert other.study._storage._backend is not first.study._storage._backend
    assert list(search._kept_storage) == [urls[1]]
    assert search.Reporter(urls[0], "s", 1, section).study is not first.study  # the first sweep's storage is gone


def test_the_pruner_never_stops_a_trial_after_its_last_epoch(tmp_path):
    """A trial that trained every epoch is complete: the pruner judges it before, never after, its last epoch."""
    import optuna

    from dlrun import errors
    from dlrun.config import search as search_config
    from dlrun.trials import search

    section = search_config.SearchConfig.model_validate(
        {
            "metric": "val_loss",
            "direction": "minimize",
            "pruner": "median",
            "startup_trials": 1,
            "warmup_epochs": 0,
            "space": {"seed": {"choice": [1, 2, 3]}},
        }
    )
    url = search.storage_url(None, tmp_path)
    study = search.open_study(url, "s", section, create=True)
    good = study.ask()
    for epoch in (1, 2):
        good.report(0.1, epoch)
    study.tell(good, 0.1)
    hopeless, later = study.ask(), study.ask()
    with pytest.raises(errors.TrialPruned):  # judged on an epoch before its last: stopped
        search.Reporter(url, "s", hopeless._trial_id, section).epoch(1, {"val_loss": 9.0})
    reporter = search.Reporter(url, "s", later._trial_id, section)
    reporter.epoch(2, {"val_loss": 9.0}, last=True)  # as bad, but after its last epoch: reported, not pruned
    (frozen,) = [trial for trial in study.get_trials() if trial.number == later.number]
    assert frozen.intermediate_values == {2: 9.0} and frozen.state == optuna.trial.TrialState.RUNNING


def test_a_trial_whose_run_has_ended_counts_as_trained_while_its_joined_worker_lives(tmp_path):
    """The owner of a sweep waits for joined workers' trials: between the end of a trial's run (its folder's
    lock released) and its worker telling the study, the trial is RUNNING but held by no one; it must still
    count while that worker's process lives (CI once saw the owner give up on it: "left running by a worker
    that stopped"), and no longer once the process has ended."""
    import datetime
    import socket
    import types

    from dlrun.trials import sweep_study

    (tmp_path / "trial-run").mkdir()  # a trial's run folder nobody holds now
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        frozen = types.SimpleNamespace(
            user_attrs={"run": str(tmp_path / "trial-run"), "worker": {"host": socket.gethostname(), "pid": worker.pid}},
            datetime_start=datetime.datetime.now(),
        )
        assert sweep_study._alive(frozen)
    finally:
        worker.kill()
        worker.wait()
    assert not sweep_study._alive(frozen)
