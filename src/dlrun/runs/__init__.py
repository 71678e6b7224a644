"""Runs: the run folder and its lifecycle, history, the runs table, comparing runs, reports, plots,
TensorBoard logs and MLflow tracking.

The run folder (`dlrun.runs.folder`) and its lifecycle (`dlrun.runs.lifecycle`) are what every command
writes through, so their names are re-exported here:
`from dlrun import runs; runs.Run.create(...)`.
"""

from dlrun.runs.folder import (  # noqa: F401  (re-exported)
    CONFIG_FILE,
    FORMAT,
    RUN_FILE,
    STATUSES,
    Run,
    check_writable,
    git_state,
    process_state,
    refuse_links_in,
    release_locks,
    unique_folder,
    utc_now,
    versions,
    write_failed,
)
from dlrun.runs.lifecycle import create, recorded, starting  # noqa: F401  (re-exported)
