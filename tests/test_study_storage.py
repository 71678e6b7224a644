"""A sweep's SQLite study (`study.db`): WAL journal with `synchronous=NORMAL`, so an epoch's report costs no
flush to disk, while no committed report is lost to a killed process, several local processes report at
once, and a process that ends leaves study.db whole on its own (no `-wal` file beside it)."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.conftest import subprocess_env

# argv: folder, trial count, epochs, how the process ends (kill: SIGKILL itself; exit: as dlrun.cli ends a
# process once Keras is loaded, its exit handlers then os._exit). Creates the study when it does not exist.
REPORTER = """\
import os, signal, sys
from pathlib import Path
from dlrun.config import search as search_config
from dlrun.trials import search

folder, trials, epochs, ending = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
section = search_config.SearchConfig.model_validate(
    {"space": {"seed": {"choice": [1, 2]}}, "pruner": "none", "direction": "minimize", "metric": "val_loss"}
)
url = search.storage_url(None, folder)
study = search.open_study(url, "s", section, create=not (folder / search.SQLITE_FILE).exists())
asked = [study.ask() for _ in range(trials)]
for trial in asked:
    reporter = search.Reporter(url, "s", trial._trial_id, section)
    for epoch in range(1, epochs + 1):
        reporter.epoch(epoch, {"val_loss": 1.0 / epoch})
print("reported", flush=True)
if ending == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
import atexit
atexit._run_exitfuncs()
os._exit(0)
"""


def _report(folder: Path, trials: int, epochs: int, ending: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", REPORTER, str(folder), str(trials), str(epochs), ending],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )


def _reported(database: Path) -> list[tuple]:
    with sqlite3.connect(database) as connection:
        return connection.execute(
            "SELECT trial_id, step, intermediate_value FROM trial_intermediate_values ORDER BY trial_id, step"
        ).fetchall()


def test_a_sqlite_study_is_kept_in_wal_mode_with_synchronous_normal(tmp_path):
    from dlrun.trials import search

    storage = search.open_storage(search.storage_url(None, tmp_path))
    with storage.engine.connect() as connection:  # every connection of the storage: new ones, after Optuna's own
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL (the default, FULL, is 2)
    with sqlite3.connect(tmp_path / search.SQLITE_FILE) as plain:  # kept in the file: every opener finds it
        assert plain.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_killed_process_loses_no_committed_report(tmp_path):
    killed = _report(tmp_path, 2, 20, "kill")
    out, err = killed.communicate(timeout=120)
    assert killed.returncode == -9 and "reported" in out, err
    assert (tmp_path / "study.db-wal").exists()  # the reports are there, not yet folded into study.db
    reported = _reported(tmp_path / "study.db")  # SQLite reads the WAL beside the file
    assert [(step, value) for _trial, step, value in reported] == [(epoch, 1.0 / epoch) for epoch in range(1, 21)] * 2


def test_processes_report_at_once_and_leave_study_db_whole_on_its_own(tmp_path):
    first = _report(tmp_path, 1, 5, "exit")  # creates the study
    assert first.communicate(timeout=120)[0].strip() == "reported"
    workers = [_report(tmp_path, 2, 30, "exit") for _ in range(2)]  # as two pool workers or a --join on this host
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0 and out.strip() == "reported", err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["study.db"]  # the WAL folded in at exit
    alone = tmp_path / "copy" / "study.db"
    alone.parent.mkdir()
    shutil.copy(tmp_path / "study.db", alone)  # copied without anything beside it: every report is in it
    reported = _reported(alone)
    assert len(reported) == 5 + 2 * 2 * 30
    assert len({trial for trial, _step, _value in reported}) == 5
