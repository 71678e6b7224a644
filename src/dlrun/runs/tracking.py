"""Experiment tracking in MLflow (`dlrun train --track mlflow`): the flattened resolved config as params,
per-epoch metrics, the test metrics, and the run folder's files as artifacts.

MLflow is optional (`pip install 'dlrun[mlflow]'`). The run folder stays the record: a tracking failure
never fails or loses a run; the tracker warns once, says what was not logged, and stops tracking.
"""

from __future__ import annotations

import math
import types
from typing import TYPE_CHECKING, Any

from dlrun import backend, config as config_module, errors
from dlrun.runs import compare as comparison

if TYPE_CHECKING:
    from rich.console import Console

    from dlrun.config import schema
    from dlrun.runs import folder

BACKENDS = ("mlflow",)
DEFAULT_URI = "sqlite:///mlflow.db"  # MLflow's plain file store is being retired; SQLite is its local default
INSTALL = "pip install 'dlrun[mlflow]'"
_STATUS = {"completed": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}


def check(backend: str | None) -> None:
    """Before anything is trained: the backend is known and installed (UsageError, exit 2, otherwise)."""
    if backend is None:
        return
    if backend not in BACKENDS:
        raise errors.UsageError(f"--track: received {backend!r}; expected one of {', '.join(BACKENDS)}")
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise errors.UsageError(f"--track mlflow: MLflow is not installed; expected it installed: {INSTALL}") from None


class MlflowTracker:
    """Mirrors one dlrun run into one MLflow run. Every method swallows MLflow's errors into a warning."""

    def __init__(self, tracking_uri: str | None, console: Console) -> None:
        self.tracking_uri = tracking_uri or DEFAULT_URI
        self.console = console
        self.client: Any = None  # an mlflow.MlflowClient once `start` made one (MLflow is an optional extra)
        self.run_id: str | None = None
        self.run: folder.Run | None = None
        self.failed: str | None = None  # what could not be logged, once tracking has stopped

    def start(self, run: folder.Run, config: schema.Config) -> None:
        """Create the MLflow run (experiment = config name, run name = the run folder) and log the params."""
        self.run = run
        with self._guard("the run and its params"):
            import mlflow

            self.client = mlflow.MlflowClient(tracking_uri=self.tracking_uri)
            experiment = self.client.get_experiment_by_name(config.name)
            experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(config.name)
            tags = {"dlrun.run_dir": str(run.path.resolve()), "dlrun.kind": "train"}
            created = self.client.create_run(experiment_id, run_name=run.path.name, tags=tags)
            self.run_id = created.info.run_id
            run.update(mlflow={"tracking_uri": self.tracking_uri, "run_id": self.run_id})
            params = [mlflow.entities.Param(key, _param(value)) for key, value in comparison.flatten(config_module.to_data(config)).items()]
            for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
                self.client.log_batch(self.run_id, params=params[start : start + 100])

    def log_epoch(self, epoch: int, logs: dict) -> None:
        """Log one epoch's metrics at step `epoch` (1-based, as in history.json)."""
        if not self._active():
            return
        with self._guard(f"the metrics of epoch {epoch}"):
            import mlflow

            moment = _milliseconds()
            metrics = [mlflow.entities.Metric(key, float(value), moment, epoch) for key, value in (logs or {}).items() if _is_number(value)]
            self.client.log_batch(self.run_id, metrics=metrics)

    def callback(self) -> Any:
        """A Keras callback that logs every epoch's metrics."""
        keras: Any = backend.import_keras()

        tracker = self

        class _EpochLogger(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                tracker.log_epoch(epoch + 1, logs or {})

        return _EpochLogger()

    def end(self) -> None:
        """Log the test metrics and the run folder's files; end the MLflow run with the run's status."""
        record: dict = self.run.record if self.run is not None else {}
        if self._active():
            with self._guard("the test metrics"):
                test = {f"test_{key}": value for key, value in (record.get("test_metrics") or {}).items() if _is_number(value)}
                best = record.get("best_epoch") or {}
                if isinstance(best.get("epoch"), int):
                    test["best_epoch"] = best["epoch"]
                for key, value in test.items():
                    self.client.log_metric(self.run_id, key, float(value))
        if self._active() and self.run is not None:
            with self._guard("the run folder's files as artifacts"):
                self.client.log_artifacts(self.run_id, str(self.run.path))
        if self.run_id is not None:  # even after a failure: an MLflow run left RUNNING would look alive
            status = _STATUS.get(str(record.get("status")), "FAILED") if self.failed is None else "FAILED"
            try:
                self.client.set_terminated(self.run_id, status=status)
            except Exception:  # noqa: BLE001 - the warning below already says tracking is incomplete
                pass
        self._report()

    def _active(self) -> bool:
        return self.failed is None and self.run_id is not None

    def _guard(self, what: str) -> _Guard:
        return _Guard(self, what)

    def _report(self) -> None:
        if self.failed is not None:
            self.console.print(
                f"[yellow]warning[/yellow]: MLflow ({self.tracking_uri}): could not log {self.failed}; nothing more "
                f"was logged to MLflow. The run folder is complete.",
                highlight=False,
                soft_wrap=True,
            )
        elif self.run_id is not None:
            self.console.print(f"MLflow: logged run {self.run_id} to {self.tracking_uri}", highlight=False, soft_wrap=True)


class _Guard:
    """`with tracker._guard("what")`: an exception turns into the tracker's one warning, never a failed run."""

    def __init__(self, tracker: MlflowTracker, what: str) -> None:
        self.tracker, self.what = tracker, what

    def __enter__(self) -> _Guard:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: types.TracebackType | None) -> bool:
        if error is None or not isinstance(error, Exception):
            return False  # KeyboardInterrupt and SystemExit go on
        if self.tracker.failed is None:
            self.tracker.failed = f"{self.what} ({type(error).__name__}: {_first_line(error)})"
        return True


def _param(value: Any) -> str:
    text = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return text[:6000]  # MLflow's limit on a param value


def _is_number(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _milliseconds() -> int:
    import time

    return int(time.time() * 1000)


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else ""
