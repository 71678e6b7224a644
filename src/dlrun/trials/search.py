"""The search engine of `dlrun sweep`: an Optuna study, its storage, sampler and pruner, and a trial's objective.

The study lives in the sweep folder (`study.db`, SQLite through Optuna's RDBStorage; `--storage journal`:
Optuna's journal file `study.journal`; or any SQLAlchemy URL such as `postgresql://...` for many hosts).
The process that runs the sweep asks the study for trials and tells it their outcome; each trial's
worker opens the study from the same storage to report its metric every epoch and ask the pruner
whether to stop (the standard Optuna multi-process pattern, which is also how joined hosts take part).

Optuna is imported inside functions only: validating a config never imports it.
"""

from __future__ import annotations

import atexit
import json
import math
import re
import statistics
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlrun import config as config_module, errors
from dlrun.config import overrides, search as search_config

if TYPE_CHECKING:
    import optuna

SQLITE_FILE = "study.db"
JOURNAL_FILE = "study.journal"
STORAGE_HELP = "sqlite (default: study.db in the sweep folder), journal (study.journal there) or a SQLAlchemy URL"


def storage_url(storage: str | None, folder: Path) -> str:
    """Where the study of the sweep in `folder` is kept, as a URL (`journal:PATH` for Optuna's journal file)."""
    if storage in (None, "sqlite"):
        return f"sqlite:///{(Path(folder) / SQLITE_FILE).resolve()}"
    if storage == "journal":
        return f"journal:{(Path(folder) / JOURNAL_FILE).resolve()}"
    if "://" not in storage:
        raise errors.UsageError(f"--storage: received {storage!r}; expected {STORAGE_HELP}")
    return storage


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """The Optuna storage at `url` (see `storage_url`)."""
    import optuna

    if url.startswith("journal:"):
        from optuna.storages import journal

        return journal.JournalStorage(journal.JournalFileBackend(url.removeprefix("journal:")))
    options = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    try:
        storage = optuna.storages.RDBStorage(url, engine_kwargs=options)
    except Exception as error:  # a wrong URL, a missing driver, a server that does not answer
        shown, problem = printable_url(url), str(error).replace(url, printable_url(url))
        raise errors.RunError(f"--storage: cannot open {shown!r} ({type(error).__name__}: {problem})") from None
    if storage.engine.dialect.name == "sqlite":
        _write_ahead(storage.engine)
    return storage


def printable_url(url: str) -> str:
    """A storage URL to print: `postgresql://user:***@host/db`, never the password."""
    return re.sub(r"^([\w+]+://[^:/@]*):[^/]*@", r"\1:***@", url)


def _write_ahead(engine: Any) -> None:
    """Every connection of this SQLite engine in WAL journal mode with `synchronous=NORMAL`.

    In SQLite's default rollback journal each commit waits for several flushes to disk: a trial's
    report of an epoch took 2 ms alone and 22-31 ms in a sweep, queued behind the run folders' own
    writes. In WAL mode a commit appends to `study.db-wal` and flushes only at a checkpoint; after a
    crash of any process every committed report is still there (a power cut may lose the last few).
    Local processes (pool workers, `--join` on this host) share the WAL through `study.db-shm`; SQLite
    on a network file system was never safe for several hosts (`--storage journal` or a server is).
    Optuna's RDBStorage has connected already (tables, version check): those connections are closed
    so that every connection from now on gets the settings. At exit the engine is closed, which folds
    the WAL back into study.db (`os._exit` in `dlrun.cli` would leave the two files beside it)."""
    import sqlalchemy

    def on_connect(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # kept in the file: every later opener finds it
        cursor.execute("PRAGMA synchronous=NORMAL")  # per connection
        cursor.close()

    sqlalchemy.event.listen(engine, "connect", on_connect)
    engine.dispose()
    if not _open_engines.closing_registered:
        atexit.register(_open_engines.close)
        _open_engines.closing_registered = True
    _open_engines.engines.add(engine)


class _Engines:
    """The SQLite engines this process opened, closed at exit (a storage dropped earlier closes its own)."""

    def __init__(self) -> None:
        self.engines: weakref.WeakSet = weakref.WeakSet()
        self.closing_registered = False

    def close(self) -> None:
        for engine in list(self.engines):
            engine.dispose()


_open_engines = _Engines()


def check_space(base: dict, search: search_config.SearchConfig) -> None:
    """Every key of the space is a config path and every value (each choice, both ends of a range) is one the
    schema accepts, and the sampler suits the space: ConfigError naming `search.space.KEY` otherwise."""
    problems = []
    if not search.space:
        problems.append(
            "search.space: received no keys; expected at least one KEY.PATH: {choice: [...]} "
            "(or --grid KEY=V1,V2, or --random N with --range)"
        )
    for key, dimension in search.space.items():
        for value in dimension.bounds():
            try:
                config_module.validate(overrides.apply(base, [f"{key}={json.dumps(value)}"]))
            except errors.ConfigError as error:
                problems.append(f"search.space.{key}: received {json.dumps(value)}, which the config refuses ({'; '.join(error.problems)})")
                break
    kinds = {key: dimension.kind() for key, dimension in search.space.items()}
    if search.sampler == "grid":
        problems += [
            f"search.space.{key}: received a {kind} range with sampler grid; expected choice values (or sampler tpe, random or cmaes)"
            for key, kind in kinds.items()
            if kind != "choice"
        ]
    if search.sampler == "cmaes":
        problems += [
            f"search.space.{key}: received choice values with sampler cmaes; expected an int or float "
            "range (CMA-ES searches numbers only; or sampler tpe or random)"
            for key, kind in kinds.items()
            if kind == "choice"
        ]
        try:
            import cmaes  # noqa: F401
        except ImportError:
            problems.append(
                "search.sampler: received cmaes on a Python without the cmaes package; expected it installed: pip install cmaes"
            )
    size = search.grid_size()
    if search.sampler == "grid" and size is not None and search.trials is not None and search.trials > size:
        problems.append(f"search.trials: received {search.trials} with a grid of {size} points; expected at most {size}")
    if problems:
        raise errors.ConfigError(problems)


def trial_count(search: search_config.SearchConfig) -> int:
    """How many trials the study runs in all."""
    if search.trials is not None:
        return search.trials
    return search.grid_size() or search_config.DEFAULT_TRIALS


def _encoded(values: list) -> list:
    """Choice values as Optuna stores them: scalars as they are, lists and mappings as JSON text."""
    return [value if value is None or isinstance(value, (bool, int, float, str)) else json.dumps(value) for value in values]


def suggest(trial: optuna.Trial, search: search_config.SearchConfig) -> dict:
    """Draw the trial's values from the space (through Optuna's `suggest_*`); return {key: config value}."""
    values = {}
    for key, dimension in search.space.items():  # exactly one of choice, int and float is set (Dimension checks)
        if dimension.choice is not None:
            options = _encoded(dimension.choice)
            values[key] = dimension.choice[options.index(trial.suggest_categorical(key, options))]
        elif dimension.int is not None:
            low, high = dimension.int
            values[key] = trial.suggest_int(key, low, high, step=int(dimension.step or 1), log=dimension.log)
        elif dimension.float is not None:
            bottom, top = dimension.float
            values[key] = trial.suggest_float(key, bottom, top, step=dimension.step, log=dimension.log)
    return values


def sampler(search: search_config.SearchConfig, asked: int = 0) -> optuna.samplers.BaseSampler:
    """The Optuna sampler the section names, seeded by `search.seed` and `asked`, the number of trials the
    study holds: a new one before each ask makes every draw a function of the study alone, so a resumed or
    joined sweep draws what one uninterrupted process would have drawn."""
    import optuna

    seed = None if search.seed is None else (search.seed + asked) % 2**32
    if search.sampler == "grid":

        class Grid(optuna.samplers.GridSampler):
            def after_trial(self, *arguments: Any) -> None:
                pass  # its `study.stop()` works only inside `study.optimize`; the sweep counts its trials itself

        # always the section's seed: it also orders the grid's points, which must stay the same for every process
        return Grid({key: _encoded(dimension.choice or []) for key, dimension in search.space.items()}, seed=search.seed)
    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if search.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def pruner(search: search_config.SearchConfig) -> optuna.pruners.BasePruner:
    """The Optuna pruner the section names (its steps are epochs)."""
    import optuna

    first = search.warmup_epochs + 1  # steps are epochs, counted from 1: the first that may be judged
    if search.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=search.startup_trials, n_warmup_steps=first)
    if search.pruner == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=first, reduction_factor=search.reduction_factor)
    if search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=first, reduction_factor=search.reduction_factor)
    return optuna.pruners.NopPruner()


_kept_storage: dict[str, Any] = {}  # {url: storage}: the last storage opened with keep=True in this process
_kept_study: dict[tuple, Any] = {}  # {(url, name, section): study}: the last study loaded so, in that storage


def open_study(url: str, name: str, search: search_config.SearchConfig, create: bool = False, keep: bool = False) -> optuna.Study:
    """The study `name` in the storage at `url` (a new one with `create`), with the section's sampler and pruner.
    `keep`: reuse the storage last opened so for the same `url` in this process (a pool worker reports trial
    after trial of one sweep; each new RDBStorage left a few hundred SQLAlchemy objects behind), one at most,
    and the study last loaded so (each trial's reporter loaded it again: 40-90 ms a trial)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # dlrun prints each trial itself
    key = (url, name, search.model_dump_json())
    if keep and not create and key in _kept_study and url in _kept_storage:
        return _kept_study[key]
    if keep:
        if url not in _kept_storage:
            _kept_storage.clear()
            _kept_storage[url] = open_storage(url)
        storage = _kept_storage[url]
    else:
        storage = open_storage(url)
    if create:
        if search.direction == "auto":
            raise ValueError("Received search.direction auto; expected the section resolved (config.search.resolve)")
        return optuna.create_study(
            storage=storage, study_name=name, direction=search.direction, sampler=sampler(search), pruner=pruner(search)
        )
    try:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler(search), pruner=pruner(search))
    except KeyError:
        raise errors.RunError(f"{url}: holds no study {name!r}; expected the storage of the sweep") from None
    if keep:
        _kept_study.clear()
        _kept_study[key] = study
    return study


def finished_with(study: optuna.Study, values: dict) -> optuna.trial.FrozenTrial | None:
    """The first trial of the study that finished (completed or pruned, not itself a repeat) with these
    config values: a repeat takes its outcome. A failed trial is trained again (a failure may be the
    machine's), and so is one still running."""
    import optuna

    wanted = json.dumps(values, sort_keys=True)
    for frozen in sorted(
        study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)),
        key=lambda frozen: frozen.number,
    ):
        if "repeat_of" not in frozen.user_attrs and json.dumps(frozen.user_attrs.get("overrides"), sort_keys=True) == wanted:
            return frozen
    return None


def study_names(url: str) -> list[str]:
    """The studies kept at `url`."""
    import optuna

    return optuna.study.get_all_study_names(open_storage(url))


def objective(run_history: dict, metric: str, direction: str) -> tuple[int, float] | None:
    """A trial's score: (epoch, value) of `metric`'s best epoch, or None when it was never recorded.

    The one place a trial is scored (a trial trained over folds or seeds: `mean_objective`, over them).
    """
    values = [
        (epoch, value)
        for epoch, value in zip(run_history["epoch"], run_history.get(metric, []))
        if value is not None and math.isfinite(value)
    ]
    if not values:
        return None
    return (min if direction == "minimize" else max)(values, key=lambda pair: pair[1])


def mean_objective(histories: list[dict], metric: str, direction: str) -> float | None:
    """The score of a trial trained in parts (a cross-validated trial's folds, or its seeds): the mean over
    its parts of each part's `objective` (its best value of `metric`); None when a part never recorded it.
    Over the parts done so far, it is what the pruner judges."""
    scores = [objective(part_history, metric, direction) for part_history in histories]
    found = [score for score in scores if score is not None]
    if not scores or len(found) < len(scores):
        return None
    return statistics.fmean(score[1] for score in found)


class Reporter:
    """In a trial's worker: reports `metric` to the study every epoch and raises `errors.TrialPruned`
    when the pruner says the trial is hopeless."""

    def __init__(self, url: str, study_name: str, trial_id: int, search: search_config.SearchConfig) -> None:
        import optuna

        self.study = open_study(url, study_name, search, keep=True)
        self.trial = optuna.trial.Trial(self.study, trial_id)
        self.search = search

    def history(self, run_history: dict) -> None:
        """Report the epochs a continued trial had trained before (those not reported yet)."""
        (frozen,) = [trial for trial in self.study.get_trials(deepcopy=False) if trial.number == self.trial.number]
        done = frozen.intermediate_values
        for epoch, value in zip(run_history["epoch"], run_history.get(self.search.metric, [])):
            if epoch not in done and value is not None and math.isfinite(value):
                self.trial.report(value, epoch)

    def epoch(self, epoch: int, logs: dict, last: bool = False) -> None:
        """After `epoch`: report, then stop the trial if the pruner says so. Never after its `last` epoch: a trial
        that trained every epoch is complete, and ranked (pruning it then would save nothing and lose its result)."""
        value = logs.get(self.search.metric)
        if value is None or not math.isfinite(value):
            return  # the trainer itself stops a NaN trial, as failed
        self.trial.report(value, epoch)
        if not last and self.trial.should_prune():
            raise errors.TrialPruned(epoch, self.reason(epoch, value))

    def part(self, index: int, partial_mean: float, step: str) -> None:
        """After part `index` (from 1) of a trial trained in parts (`step`: fold or seed): report the mean over
        its parts so far (the step is the part's index), then stop the trial between parts if the pruner says so."""
        self.trial.report(partial_mean, index)
        if self.trial.should_prune():
            raise errors.TrialPruned(index, self.reason(index, partial_mean, step=step), step=step)

    def reason(self, epoch: int, value: float, step: str = "epoch") -> str:
        """Why the pruner stopped the trial, in words (`step`: epoch, or fold or seed between parts)."""
        import optuna

        metric = self.search.metric
        if step != "epoch":
            metric = f"mean best {metric} over {step}s 1-{epoch}" if epoch > 1 else f"best {metric} of {step} 1"
        if self.search.pruner == "median":
            finished = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))
            others = [trial.intermediate_values[epoch] for trial in finished if epoch in trial.intermediate_values]
            if others:
                return (
                    f"{metric} {value:.4g} at {step} {epoch} worse than the median {statistics.median(others):.4g} "
                    f"of {len(others)} earlier trial(s) at that {step}"
                )
        return (
            f"{metric} {value:.4g} at {step} {epoch} not among the best 1/{self.search.reduction_factor} of the trials at that {step} "
            f"({self.search.pruner} pruner: successive halving)"
        )
