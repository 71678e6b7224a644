"""`dlrun sweep dashboard SWEEP_DIR`: the sweep's study found and served in optuna-dashboard, bad inputs, Ctrl-C.

The fast tests make the study with Optuna directly (no training); the slow one serves a real sweep's study
and loads it in headless Chromium."""

from __future__ import annotations

import contextlib
import errno
import json
import selectors
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from dlrun.trials import search as search_engine, sweep_dashboard, sweep_results
from tests.conftest import invoke, run_folders, tiny_config, write_completed_run


def make_sweep(folder: Path, storage: str = "sqlite", trials: int = 3, name: str | None = None) -> Path:
    """A sweep folder as `dlrun sweep` leaves it, for the dashboard: sweep.json naming a study that holds
    `trials` finished trials (made with Optuna, nothing trained)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder.mkdir(parents=True)
    url = search_engine.storage_url(storage, folder)
    study = optuna.create_study(storage=search_engine.open_storage(url), study_name=name or folder.name, direction="minimize")
    for number in range(trials):
        trial = study.ask({"units": optuna.distributions.IntDistribution(2, 8)})
        trial.report(1.0 / (number + 1), 1)
        study.tell(trial, float(trial.params["units"]))
    state = {"format": sweep_results.FORMAT, "storage": url, "study": folder.name, "trials_total": trials, "trials": []}
    (folder / sweep_results.FILE_NAME).write_text(json.dumps(state))
    return folder


def listing(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def listening(port: int) -> bool:
    """Whether some socket listens on 127.0.0.1:port (binding it, as a new server would, fails)."""
    probe = socket.socket()
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the dashboard's own server binds
    try:
        probe.bind(("127.0.0.1", port))
        probe.listen()
        return False
    except OSError as error:
        assert error.errno == errno.EADDRINUSE, error
        return True
    finally:
        probe.close()


def get_json(url: str):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 directly, whatever the proxy settings
    with opener.open(url, timeout=30) as response:
        return json.loads(response.read())


@contextlib.contextmanager
def served(folder: Path, *options: str):
    """`dlrun sweep dashboard FOLDER --port 0 --no-browser OPTIONS` in a subprocess; yields (process, url, port)
    once it printed its address; kills it if the test left it running."""
    process = subprocess.Popen(
        [sys.executable, "-m", "dlrun", "sweep", "dashboard", str(folder), "--port", "0", "--no-browser", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = _first_line(process, timeout=120)
        url = line.split("optuna-dashboard: ", 1)[1].split(" ", 1)[0]
        yield process, url, int(url.split(":")[2].split("/")[0])
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)


def _first_line(process: subprocess.Popen, timeout: float) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            pytest.fail(f"dlrun sweep dashboard printed no address in {timeout} s")
    line = process.stdout.readline()
    if "optuna-dashboard: http://" not in line:
        process.kill()
        pytest.fail(f"dlrun sweep dashboard: {line!r}\n{process.communicate(timeout=30)[1]}")
    return line


def stop(process: subprocess.Popen, signum: int = signal.SIGINT) -> str:
    """Send `signum`; return the process's stderr once it ended, checking it exited 130 without a traceback."""
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr, stderr
    return stderr


# --- bad inputs: one line, an exit code, nothing written ----------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda path: path, "no such folder; expected a sweep folder made by `dlrun sweep` (it holds sweep.json)"),
        (lambda path: path.mkdir() or path, "holds no sweep.json; expected a sweep folder made by `dlrun sweep` (it holds sweep.json)"),
        (lambda path: write_completed_run(path), "holds no sweep.json; expected a sweep folder made by `dlrun sweep`"),
        (
            lambda path: path.mkdir() or (path / "sweep.json").write_text("{not json") and path,
            "sweep.json: unreadable (JSONDecodeError); expected a sweep folder",
        ),
        (lambda path: path.mkdir() or (path / "sweep.json").write_text('{"format": 3}') and path, "sweep.json: names no study storage"),
    ],
    ids=["missing", "empty folder", "a training run", "broken sweep.json", "sweep.json without storage"],
)
def test_not_a_sweep_folder_exits_2_saying_what_was_expected(tmp_path, make, message):
    folder = make(tmp_path / "target")
    before = listing(tmp_path)
    result = invoke("sweep", "dashboard", folder, "--no-browser")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert listing(tmp_path) == before


def test_a_missing_study_file_exits_2_and_no_empty_one_is_made(tmp_path):
    folder = make_sweep(tmp_path / "sw")
    (folder / "study.db").unlink()
    result = invoke("sweep", "dashboard", folder, "--no-browser")
    assert result.exit_code == 2, result.output
    assert f"error: {folder}: its study file {folder.resolve() / 'study.db'} is missing" in result.stderr, result.stderr
    assert not (folder / "study.db").exists()  # opening it with SQLite would have made an empty one


def test_a_storage_without_the_sweeps_study_exits_2_naming_the_studies_it_holds(tmp_path):
    folder = make_sweep(tmp_path / "sw", name="another")
    before = listing(tmp_path)
    result = invoke("sweep", "dashboard", folder, "--no-browser")
    assert result.exit_code == 2, result.output
    assert "holds no study 'sw' (it holds 'another'); expected the study of the sweep in" in result.stderr, result.stderr
    assert listing(tmp_path) == before


def test_an_unreachable_postgresql_storage_exits_2_without_its_password(tmp_path):
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed (pip install -e '.[dev]')")
    folder = tmp_path / "sw"
    folder.mkdir()
    url = "postgresql+psycopg2://dlrun:secret@127.0.0.1:1/sweeps"  # port 1: nothing listens, refused at once
    (folder / "sweep.json").write_text(json.dumps({"format": sweep_results.FORMAT, "storage": url, "study": "sw"}))
    result = invoke("sweep", "dashboard", folder, "--no-browser")
    assert result.exit_code == 2, result.output
    assert f"error: {folder}: the sweep's study storage: cannot open 'postgresql+psycopg2://dlrun:***@127.0.0.1:1/sweeps'" in result.stderr
    assert "secret" not in result.output


def test_without_optuna_dashboard_exits_2_with_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)  # hides it, installed or not: the import raises ImportError
    result = invoke("sweep", "dashboard", make_sweep(tmp_path / "sw"), "--no-browser")
    assert result.exit_code == 2, result.output
    assert (
        "error: dlrun sweep dashboard: received a Python without optuna-dashboard; expected it installed: pip install 'dlrun[dashboard]'"
        in result.stderr
    )


def test_a_port_in_use_exits_2_and_leaves_it_to_its_owner(tmp_path):
    folder = make_sweep(tmp_path / "sw")
    with socket.socket() as owner:
        owner.bind(("127.0.0.1", 0))
        owner.listen()
        port = owner.getsockname()[1]
        result = invoke("sweep", "dashboard", folder, "--port", port, "--no-browser")
        assert result.exit_code == 2, result.output
        assert f"error: --port: received {port}, which another program listens on at 127.0.0.1; expected a free port" in result.stderr
        assert "Traceback" not in result.stderr
        owner.settimeout(0.1)
        with socket.create_connection(("127.0.0.1", port)):  # the owner still has it
            owner.accept()[0].close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--port", "70000"], "error: --port: received 70000; expected a port number 1-65535 (or 0: any free port)"),
        (["--host", "192.0.2.1"], "error: --host 192.0.2.1 --port 8080: cannot listen there"),  # TEST-NET: no machine's address
    ],
    ids=["port out of range", "not this machine's address"],
)
def test_an_address_it_cannot_listen_on_exits_2(tmp_path, options, message):
    result = invoke("sweep", "dashboard", make_sweep(tmp_path / "sw"), *options, "--no-browser")
    assert result.exit_code == 2, result.output
    assert message in result.stderr, result.stderr


def test_a_moved_sweep_folder_uses_the_study_file_beside_its_sweep_json(tmp_path):
    for storage, file_name in (("sqlite", "study.db"), ("journal", "study.journal")):
        made = make_sweep(tmp_path / f"made-{storage}", storage)
        moved = made.rename(tmp_path / f"moved-{storage}")  # sweep.json still names the old path
        assert str(made) in json.loads((moved / "sweep.json").read_text())["storage"]
        found = sweep_dashboard.locate(moved)
        assert found.url == search_engine.storage_url(storage, moved) and found.url.endswith(f"{moved.resolve() / file_name}")
        assert found.name == f"made-{storage}"


# --- serving -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("storage", "signum"), [("sqlite", signal.SIGINT), ("journal", signal.SIGTERM)], ids=["sqlite", "journal"])
def test_serves_the_study_until_a_signal_then_frees_the_port_and_exits_130(tmp_path, storage, signum):
    folder = make_sweep(tmp_path / "sw", storage, trials=3)
    before = listing(tmp_path)
    with served(folder) as (process, url, port):
        assert url.startswith(f"http://127.0.0.1:{port}/dashboard/studies/")
        study_id = int(url.rsplit("/", 1)[1])
        summaries = get_json(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
        assert [(summary["study_id"], summary["study_name"]) for summary in summaries] == [(study_id, "sw")]
        detail = get_json(f"http://127.0.0.1:{port}/api/studies/{study_id}")
        assert [trial["number"] for trial in detail["trials"]] == [0, 1, 2]
        assert listening(port)
        stop(process, signum)
    assert not listening(port)  # a new dashboard can take the port at once
    assert listing(tmp_path) == before  # the dashboard only read the sweep


def test_opens_the_address_in_a_browser_only_on_a_desktop_and_not_with_no_browser(tmp_path, monkeypatch):
    import socketserver
    import webbrowser

    folder = make_sweep(tmp_path / "sw")
    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)

    def serve_forever(self, poll_interval=0.5):
        raise KeyboardInterrupt  # Ctrl-C at once: the test needs only what happened before serving

    monkeypatch.setattr(socketserver.BaseServer, "serve_forever", serve_forever)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    for display, options, expected in ((":0", [], 1), (":0", ["--no-browser"], 0), (None, [], 0)):
        if display is None:
            monkeypatch.delenv("DISPLAY", raising=False)
        else:
            monkeypatch.setenv("DISPLAY", display)
        opened.clear()
        result = invoke("sweep", "dashboard", folder, "--port", "0", *options)
        assert result.exit_code == 130, result.output
        assert "interrupted" in result.stderr
        printed = result.stdout.split("optuna-dashboard: ", 1)[1].split(" ", 1)[0]
        assert opened == [printed] * expected
        assert ("no browser opened (no desktop here)" in result.stdout) == (display is None), result.stdout


@pytest.mark.slow
def test_a_real_sweeps_study_shows_in_chromium(tmp_path, browser):
    config = tiny_config(tmp_path / "sweep.yaml", tmp_path / "runs", epochs=1)
    result = invoke("sweep", config, "--grid", "train.batch_size=8,16")
    assert result.exit_code == 0, result.output
    (folder,) = run_folders(tmp_path / "runs")
    state = json.loads((folder / "sweep.json").read_text())
    assert state["trials_total"] == 2 and state["status"] == "completed"
    before = listing(folder)
    with served(folder) as (process, url, port):
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            page.goto(url)
            page.get_by_text(f"{folder.name} (id=").wait_for(timeout=60_000)  # the study's page, by the sweep's name
            page.get_by_text(f"Best Trial (number={state['ranking'][0]})").wait_for(timeout=60_000)
            page.get_by_text("trial #1").first.wait_for(state="attached", timeout=60_000)  # both trials' curves
            assert page.get_by_text("trial #2").count() == 0
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        finally:
            page.close()
        assert errors == []
        stop(process)
    assert not listening(port)
    assert listing(folder) == before
