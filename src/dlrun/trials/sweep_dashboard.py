"""`dlrun sweep dashboard SWEEP_DIR`: the sweep's Optuna study served by optuna-dashboard until Ctrl-C.

The study is found from the sweep folder's `sweep.json` (`storage`, `study`), as `--resume` finds it:
the folder's `study.db` (SQLite) or `study.journal` (Optuna's journal file), or the SQLAlchemy URL given
to `--storage` (PostgreSQL, for a sweep of many hosts). A SQLite or journal file recorded at a path that
no longer exists is looked for beside `sweep.json` (the folder was moved or copied from another host).

optuna-dashboard is an optional extra (`pip install 'dlrun[dashboard]'`). Its WSGI app is served here,
not through its `run_server`, so that a port in use is a clear error before anything is printed, `--port 0`
takes any free port and prints it, the request log stays quiet, and Ctrl-C (or SIGTERM) closes the socket
before dlrun exits 130. Nothing in the sweep folder is written.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlrun import errors, signals, terminal
from dlrun.trials import search as search_engine, sweep_results

if TYPE_CHECKING:
    from wsgiref import simple_server
    from wsgiref.types import WSGIApplication

    import optuna
    from rich.console import Console

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080  # optuna-dashboard's own default
INSTALL = "pip install 'dlrun[dashboard]'"


@dataclasses.dataclass(frozen=True)
class SweepStudy:
    """Where a sweep's study is kept: its storage URL (`journal:PATH` for a journal file) and its name."""

    folder: Path
    url: str
    name: str


def locate(sweep_dir: str | Path) -> SweepStudy:
    """The study of the sweep in `sweep_dir`, from its `sweep.json` (RunError when it is not a sweep folder)."""
    folder = Path(sweep_dir)
    expected = f"expected a sweep folder made by `dlrun sweep` (it holds {sweep_results.FILE_NAME})"
    if not folder.is_dir():
        raise errors.RunError(f"{folder}: no such folder; {expected}")
    try:
        state = json.loads((folder / sweep_results.FILE_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise errors.RunError(f"{folder}: holds no {sweep_results.FILE_NAME}; {expected}") from None
    except (OSError, ValueError) as error:
        raise errors.RunError(f"{folder / sweep_results.FILE_NAME}: unreadable ({type(error).__name__}); {expected}") from None
    if not isinstance(state, dict) or not isinstance(state.get("storage"), str) or not isinstance(state.get("study"), str):
        raise errors.RunError(f"{folder / sweep_results.FILE_NAME}: names no study storage; {expected}")
    return SweepStudy(folder, _local(state["storage"], folder), state["study"])


def _local(url: str, folder: Path) -> str:
    """`url`, or where its SQLite or journal file is missing, the file of that name beside sweep.json."""
    for prefix, make in (("sqlite:///", "sqlite"), ("journal:", "journal")):
        if url.startswith(prefix):
            recorded = Path(url.removeprefix(prefix))
            if recorded.is_file():
                return url
            beside = folder / recorded.name
            if recorded.name in (search_engine.SQLITE_FILE, search_engine.JOURNAL_FILE) and beside.is_file():
                return search_engine.storage_url(make, folder)
            # checked here: opening a missing SQLite file would create an empty one
            raise errors.RunError(f"{folder}: its study file {recorded} is missing; expected the file `dlrun sweep` wrote there")
    return url


def study_id(study: SweepStudy, storage: optuna.storages.BaseStorage) -> int:
    """The study's id in `storage` (the dashboard's pages are addressed by it); RunError when it holds no such study."""
    try:
        return storage.get_study_id_from_name(study.name)
    except KeyError:
        import optuna

        names = optuna.study.get_all_study_names(storage)
        raise errors.RunError(
            f"{search_engine.printable_url(study.url)}: holds no study {study.name!r} (it holds {', '.join(map(repr, names)) or 'none'}); "
            f"expected the study of the sweep in {study.folder}"
        ) from None


def serve(sweep_dir: str | Path, console: Console, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, browser: bool = True) -> None:
    """Serve the sweep's study in optuna-dashboard, print its address, and block until Ctrl-C or SIGTERM
    (KeyboardInterrupt, with the port already freed)."""
    study = locate(sweep_dir)
    try:
        import optuna_dashboard
    except ImportError:
        raise errors.UsageError(
            f"dlrun sweep dashboard: received a Python without optuna-dashboard; expected it installed: {INSTALL}"
        ) from None
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        storage = search_engine.open_storage(study.url)
    except errors.RunError as error:  # a server that does not answer, a driver not installed
        problem = str(error).removeprefix("--storage: ").replace(study.url, search_engine.printable_url(study.url))
        raise errors.RunError(f"{study.folder}: the sweep's study storage: {problem}") from None
    number = study_id(study, storage)
    with signals.terminate_as_interrupt():  # SIGTERM too: from the moment the address is printed, it stops the server cleanly
        server = _listen(host, port, optuna_dashboard.wsgi(storage))
        try:
            url = f"http://{_shown_host(host)}:{server.server_port}/dashboard/studies/{number}"
            console.print(
                f"optuna-dashboard: [bold]{url}[/bold] (study {terminal.text(study.name)}, {terminal.text(search_engine.printable_url(study.url))}); Ctrl-C stops it",
                highlight=False,
                soft_wrap=True,
            )
            if browser:
                _open_browser(url, server.server_port, console)
            server.serve_forever()
        finally:
            server.server_close()


def _listen(host: str, port: int, app: WSGIApplication) -> simple_server.WSGIServer:
    """A threaded WSGI server bound to host:port (UsageError when it cannot be: in use, no such address)."""
    import socketserver
    from wsgiref import simple_server

    class Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
        daemon_threads = True  # a browser's open connection never holds up Ctrl-C
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    class QuietHandler(simple_server.WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name): no line per request
            pass

    if not 0 <= port <= 65535:
        raise errors.UsageError(f"--port: received {port}; expected a port number 1-65535 (or 0: any free port)")
    try:
        return simple_server.make_server(host, port, app, server_class=Server, handler_class=QuietHandler)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise errors.UsageError(
                f"--port: received {port}, which another program listens on at {host}; expected a free port (--port 0 takes any free one)"
            ) from None
        raise errors.UsageError(
            f"--host {host} --port {port}: cannot listen there ({error.strerror or error}); expected an address of this machine and a free port"
        ) from None


def _shown_host(host: str) -> str:
    """The host part of the address to print: a wildcard address becomes this machine's name."""
    if host in ("", "0.0.0.0", "::"):
        return socket.gethostname()
    return f"[{host}]" if ":" in host else host


def _open_browser(url: str, port: int, console: Console) -> None:
    """Open `url` in the desktop's browser; without a desktop (an SSH session), say how to reach it instead
    (Python's webbrowser would otherwise start a text browser such as lynx in this terminal)."""
    if sys.platform in ("darwin", "win32") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        import webbrowser

        if webbrowser.open(url):
            return
    console.print(
        f"no browser opened (no desktop here): open the address in one; from another machine, forward the port first: "
        f"ssh -L {port}:127.0.0.1:{port} {terminal.text(socket.gethostname())}",
        highlight=False,
        soft_wrap=True,
    )
