"""Trials as Ray Tune trials: one per task, actors reused, each epoch streamed back with `tune.report`.

Used through `dlrun.trials.executors.run(..., Placement("ray"))`. Ray is an optional extra (`dlrun[ray]`) and is
imported only here. Without `address` a local Ray instance is started for the call and shut down
after it; with `address` (`auto`, `ray://HOST:PORT`) an existing cluster is joined. A Ray already
initialised by the caller is used as it is. Workers write nothing: their epochs and results come
back as reported metrics, so a remote cluster needs no shared file system.

Ray Tune returns normally when trials raise: every errored trial is turned into a `failed` outcome,
and a trial with no outcome at all (Ctrl-C stops Tune gracefully) makes the call raise KeyboardInterrupt.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import TYPE_CHECKING, Any

from dlrun.trials import outcomes

if TYPE_CHECKING:
    pass

EVENT = "dlrun_event"  # the reported metric carrying one JSON-encoded event


def run(
    tasks: list[tuple], worker: outcomes.Worker, on_event: outcomes.OnEvent, address: str | None = None, cpus_per_trial: float = 1.0
) -> None:
    """Run `worker(payload, emit)` for each `(key, payload)` as a Ray Tune trial (see dlrun.trials.executors)."""
    import ray
    from ray import tune

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    keys = [key for key, _ in tasks]
    payloads = {json.dumps(key): payload for key, payload in tasks}
    outcomes: set = set()
    callback = _relay(on_event, outcomes)
    try:
        with tempfile.TemporaryDirectory(prefix="dlrun-ray-") as storage:
            trainable = tune.with_resources(tune.with_parameters(_trainable, worker=worker, payloads=payloads), {"cpu": cpus_per_trial})
            tuner = tune.Tuner(
                trainable,
                param_space={"key": tune.grid_search([json.dumps(key) for key in keys])},
                tune_config=tune.TuneConfig(reuse_actors=True, num_samples=1),
                run_config=tune.RunConfig(
                    storage_path=storage, name="dlrun", verbose=0, callbacks=[callback], failure_config=tune.FailureConfig(max_failures=0)
                ),
            )
            grid = tuner.fit()
            # ResultGrid iterates through __len__ and __getitem__ (the old sequence protocol), which mypy does not model
            for result in grid:  # type: ignore[attr-defined]
                key = result.config["key"]
                if result.error is not None and key not in outcomes:
                    outcomes.add(key)
                    on_event(json.loads(key), _failure(result.error))
    finally:
        if started_here:
            ray.shutdown()
    if len(outcomes) < len(tasks):  # Tune stopped before every trial ended: Ctrl-C or SIGTERM
        raise KeyboardInterrupt


def _trainable(config: dict, worker: outcomes.Worker | None = None, payloads: dict | None = None) -> None:
    """In a Ray worker: run the task, reporting each event; the outcome is the last report."""
    from ray import tune

    if worker is None or payloads is None:  # tune.with_parameters passes both
        raise ValueError("Received a trial without its worker and payloads; expected tune.with_parameters to pass them")
    _limit_threads(int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    payload = payloads[config["key"]]
    result = worker(payload, lambda event: tune.report({EVENT: json.dumps(event)}))
    tune.report({EVENT: json.dumps({"type": "done", "result": result})})


def _limit_threads(threads: int) -> None:
    """TensorFlow's thread pools sized to the trial's CPUs (only possible before TensorFlow starts: a
    reused actor keeps the first trial's setting)."""
    from dlrun import backend

    backend.import_keras()
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised in this (reused) actor
        pass


def _failure(error: BaseException) -> dict:
    cause = getattr(error, "cause", None)  # RayTaskError wraps the trial's own exception
    return outcomes.failure(cause if isinstance(cause, BaseException) else error)


def _relay_class() -> type:
    from ray import tune

    class Relay(tune.Callback):
        """In the driver: every reported event goes to `on_event` as it arrives."""

        def __init__(self, on_event: outcomes.OnEvent | None, outcomes: set) -> None:
            self.on_event = on_event
            self.outcomes = outcomes

        def __getstate__(self) -> dict:
            # Tune pickles its callbacks with the experiment state; `on_event` holds the live run
            # (locks, consoles) and only means something in this driver process.
            return {"on_event": None, "outcomes": set()}

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            if EVENT not in result or self.on_event is None:
                return
            event = json.loads(result[EVENT])
            key = trial.config["key"]
            if event["type"] in ("done", "failed"):
                self.outcomes.add(key)
            self.on_event(json.loads(key), event)

    return Relay


def _relay(on_event: outcomes.OnEvent, outcomes: set) -> Any:
    return _relay_class()(on_event, outcomes)
