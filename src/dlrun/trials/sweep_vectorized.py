"""The vectorized sweep (`dlrun sweep --executor vectorized`, or `auto` where it applies): a batch of trials
that differ only in values that change no shape (`compile.optimizer.learning_rate`, `seed`) trained as one
JAX program (`dlrun.trials.stacked`).

The study is asked `--batch` trials at once (default `executors.BATCH`). Each trial is a normal `dlrun
train` run made by the one training function in stages (`dlrun.trials.trial.TrialRun`): its run folder,
config, data, seeded model and compiled optimizer, as `run_trial` makes them; the fit is shared, and so is
the test evaluation of the trials that trained all their epochs (`stacked.evaluate_together`, one compiled
program for all instead of a traced test and predict function per model) and the data of trials with the same seed
(`dlrun.data.shared`). The learning rate is an optimizer variable in Keras 3, so it stacks with the others;
a seed gives each copy its initial weights, dropout seed state and batch order. Each trial keeps its own
history, run folder, progress line and resume checkpoint, reports every epoch to the study (a pruned
trial's state stays frozen while the others go on, and its run is marked pruned), and a trial whose loss
becomes NaN fails alone. What cannot train together (other searched keys, which change shapes or are
Python floats in Keras' layers, such as a dropout rate, units, batch size or optimizer name; K-fold or
seeds trials; what `vectorized.config_reason` and `stacked.model_reason` refuse) trains one trial after
the other, or on a pool of processes with `--workers N` (`executors.Placement.fallback`), after one console
line saying why.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from dlrun import config as config_module, errors
from dlrun.trials import executors, outcomes

if TYPE_CHECKING:
    from dlrun.config import search as search_config
    from dlrun.trials import stacked, trial as trial_module

# The searched keys whose values change no shape and no Python value in Keras' layers: they stack.
STACKED_KEYS = ("compile.optimizer.learning_rate", "seed")
# What a trial's config may differ in from the others of its batch (besides STACKED_KEYS).
_OWN_KEYS = ("name",)


def search_reason(search: search_config.SearchConfig) -> str | None:
    """Why the sweep's trials cannot train together, or None when they can (known before any trial)."""
    others = [key for key in search.space if key not in STACKED_KEYS]
    if others:
        return f"search.space: {', '.join(others)}; only {' and '.join(STACKED_KEYS)} train together"
    if search.kfold is not None:
        return f"search.kfold: {search.kfold} (cross-validated trials)"
    if search.seeds is not None and search.seeds > 1:
        return f"search.seeds: {search.seeds} (trials over seeds)"
    return None


def run(
    tasks: Iterator[tuple[int, dict]],
    on_event: outcomes.OnEvent,
    say: Callable[[str], None],
    placement: executors.Placement,
    search: search_config.SearchConfig,
    record: dict | None = None,
) -> None:
    """Train the sweep's trials `tasks` ((number, run_trial payload) pairs, asked from the study as they are
    pulled) a batch at a time; events and outcomes reach `on_event(number, event)` as from `executors.run`.
    `say(line)` prints a console line; `record` (sweep.json's `executor`) gets the choice."""
    from dlrun.trials import trial as trial_module

    record = {} if record is None else record
    auto, size, fallback = placement.executor == "auto", placement.batch or executors.BATCH, placement.fallback()

    def announce(reason: str | None) -> None:
        record.update({"chosen": "vectorized", "batch": size} if reason is None else {"chosen": fallback.executor, "reason": reason})
        unused = f"; the {fallback.workers} workers are not used" if fallback.workers > 1 else ""
        say(
            f"executor: vectorized (the trials, up to {size} at a time, as one JAX program{unused})"
            if reason is None
            else executors.vectorized_said(reason, "trials", auto, fallback.workers) or ""
        )

    reason = search_reason(search)
    pending = [] if reason is not None else list(itertools.islice(tasks, 1))
    if pending:  # the first trial's config says the backend and the loop before more trials are asked
        from dlrun import backend
        from dlrun.trials import vectorized

        backend.activate(config_module.validate(pending[0][1]["config"]))
        reason = vectorized.config_reason([pending[0][1]["config"]])
    announced = reason is not None
    if announced:
        announce(reason)
    tasks = itertools.chain(pending, tasks)
    while reason is None:
        batch = list(itertools.islice(tasks, size))
        if not batch:
            return
        trials = _started(batch, on_event)
        reason = _batch_reason([trial for trial in trials if trial[2] is not None])
        if not announced:
            announce(reason)
            announced = True
        elif reason is not None:  # a later batch
            say(executors.vectorized_said(reason, "trials", False, fallback.workers) or "")
        if reason is not None:  # these trials (started here) one after the other, then every later one where `fallback` says
            for number, trial, request in trials:
                if request is not None:
                    _ended(number, trial, request.fit, on_event)
            break
        _together(trials, on_event)
    executors.run(tasks, trial_module.run_trial, on_event, fallback)


def _started(batch: list[tuple[int, dict]], on_event: outcomes.OnEvent) -> list[tuple[int, Any, Any]]:
    """Each trial's TrialRun and FitRequest (its run folder made, as `run_trial` makes it); a trial that
    cannot start gets its failure outcome and a None request."""
    from dlrun import data
    from dlrun.trials import trial as trial_module

    started: list[tuple[int, Any, Any]] = []
    with data.shared():  # trials of one seed train on the same data: loaded once
        for number, payload in batch:
            try:
                trial = trial_module.TrialRun(payload, functools.partial(on_event, number))
                started.append((number, trial, trial.start()))
            except (KeyboardInterrupt, errors.Interrupted):
                _interrupt([(number, trial, request) for number, trial, request in started if request is not None])
                raise KeyboardInterrupt from None
            except Exception as error:  # this trial's outcome, as the sequential executor reports it
                on_event(number, outcomes.failure(error))
                started.append((number, None, None))
    return started


def _batch_reason(trials: list[tuple[int, Any, Any]]) -> str | None:
    """Why these started trials cannot train together, or None."""
    from dlrun.trials import stacked, vectorized

    if not trials:
        return None
    configs = [config_module.to_data(request.training.config) for _number, _trial, request in trials]
    reason = vectorized.config_reason(configs)
    if reason is not None:
        return reason
    plain = [_without(config) for config in configs]
    for (number, _trial, _request), config in zip(trials, plain):
        if config != plain[0]:
            key = next(key for key in sorted(set(config) | set(plain[0])) if config.get(key) != plain[0].get(key))
            return f"trial {number} differs from trial {trials[0][0]} in {key}"
    for _number, _trial, request in trials:
        found = stacked.model_reason(request.training)
        if found is not None:
            return found
    return None


def _without(config: dict) -> dict:
    """A config's dotted items, less the keys a trial may have of its own."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, item in value.items():
                walk(f"{prefix}{key}.", item)
        else:
            flat[prefix.rstrip(".")] = value

    walk("", config)
    return {key: value for key, value in flat.items() if key not in STACKED_KEYS + _OWN_KEYS}


def _together(trials: list[tuple[int, Any, Any]], on_event: outcomes.OnEvent) -> None:
    """Fit the started trials as one program. A trial that stops (NaN, pruned) ends as its copy stops; those
    that train all their epochs are evaluated on their test splits together, then end one by one."""
    from dlrun.trials import stacked

    live = [(number, trial, request) for number, trial, request in trials if request is not None]
    finished: list[tuple[tuple, Any]] = []  # ((number, trial, request), its Fitted), in the order they finished
    copies = [_copy(number, trial, request, on_event, finished) for number, trial, request in live]
    try:
        stacked.train_together(copies)
        by_number = {number: copy for (number, _trial, _request), copy in zip(live, copies)}
        evaluated = _evaluate([by_number[number] for (number, _trial, _request), _fitted in finished])
        finished[:] = [(item, dataclasses.replace(fitted, evaluated=result)) for (item, fitted), result in zip(finished, evaluated)]
        while finished:
            (number, trial, _request), fitted = finished.pop(0)
            _ended(number, trial, fitted, on_event)
    except KeyboardInterrupt:
        _interrupt([item for item, copy in zip(live, copies) if copy.alive] + [item for item, _fitted in finished])
        raise


def _evaluate(copies: list[stacked.Copy]) -> list[tuple | None]:
    """Each copy's test split evaluated by one compiled program (`stacked.evaluate_together`): its (metrics,
    outputs), for its run's metrics.json (`trainer.Fitted.evaluated`), or None where that cannot be (no test
    split, a streamed one) or fails: that trial evaluates itself as a sequential trial does, and says why if
    it fails too."""
    import numpy as np

    from dlrun.trials import stacked

    together = [
        index
        for index, copy in enumerate(copies)
        if isinstance(test := copy.training.plan.data.split("test"), tuple) and all(isinstance(part, np.ndarray) for part in test)
    ]
    results: list[tuple | None] = [None] * len(copies)
    if not together:
        return results
    try:
        evaluated = stacked.evaluate_together([copies[index] for index in together])
    except Exception:  # noqa: BLE001 - the trials' own evaluation runs instead, and reports a real problem
        return results
    for index, result in zip(together, evaluated):
        results[index] = result
    return results


def _copy(number: int, trial: trial_module.TrialRun, request: Any, on_event: outcomes.OnEvent, finished: list) -> stacked.Copy:
    from dlrun.training import trainer
    from dlrun.trials import stacked

    def end(error: BaseException | None, seconds: float) -> None:
        if error is not None:
            _ended(number, trial, error, on_event)
        else:  # ended by `_together` once every copy has trained
            finished.append(((number, trial, request), trainer.Fitted(request.training.history, seconds, request.first_epoch)))

    return stacked.Copy(request.training, request.folder, request.first_epoch, request.on_epoch, end)


def _ended(number: int, trial: trial_module.TrialRun, fit: Any, on_event: outcomes.OnEvent) -> None:
    """End a trial's run with its fit (a callable, its Fitted or what stopped it) and send its outcome."""
    try:
        result = trial.end(fit)
    except (KeyboardInterrupt, errors.Interrupted):
        raise KeyboardInterrupt from None
    except Exception as error:  # this trial's outcome; the others go on
        on_event(number, outcomes.failure(error))
        return
    on_event(number, {"type": "done", "result": result})


def _interrupt(trials: list[tuple[int, Any, Any]]) -> None:
    """Ctrl-C: each started trial's run is marked interrupted (its checkpoint kept for --resume)."""
    for _number, trial, _request in trials:
        try:
            trial.end(KeyboardInterrupt())
        except BaseException:  # noqa: BLE001 - the interrupt it was handed, raised again once recorded
            pass
