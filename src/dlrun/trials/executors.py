"""Executors for independent trials (K-fold folds, sweep trials): sequential, a process pool, or Ray Tune;
and on JAX `vectorized`, the folds or a batch of trials as one JAX program (`dlrun.trials.vectorized`,
`dlrun.trials.sweep_vectorized`), or `auto`: vectorized where it applies, else sequential, or a pool with `--workers N` (`vectorized_said`).

Every executor runs `worker(payload, emit)` once per task. `worker` is a module-level function (the
pool and Ray import it by name in other processes); `emit(event)` sends a small dict back to the
main process while the task runs (an epoch's logs). The main process receives, through `on_event(key,
event)`, every emitted event and then exactly one outcome per task:

    {"type": "done", "result": <what worker returned>}
    {"type": "failed", "error": "ValueError: ...", "traceback": "..."}   (no traceback for a dlrun error)

`tasks` is a list (K-fold's folds) or an iterator pulled only when a worker is free (a sweep asks its
search engine for the next trial then, so the engine knows every result so far). A failing task never
stops the others. Ctrl-C (or SIGTERM) in the main process stops every worker
(SIGTERM first, so a worker can record its state; SIGKILL after a grace period), leaves no child
process behind, and re-raises KeyboardInterrupt.

Nothing heavy is imported here: the pool's workers import TensorFlow themselves, once each.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import os
import queue as queue_module
import signal
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from dlrun import errors
from dlrun.trials import forget, outcomes

if TYPE_CHECKING:
    import concurrent.futures
    import multiprocessing.queues

EXECUTORS = ("sequential", "pool", "ray", "vectorized", "auto")
IN_PROCESS = ("sequential", "vectorized", "auto")  # the executors that train in this process
RAY_INSTALL = "pip install 'dlrun[ray]'"
_GRACE_SECONDS = 10.0  # how long stopped workers get to record their state before SIGKILL


def resolve(executor: str | None, workers: int, address: str | None = None, cpus_per_trial: float = 1.0, batch: int | None = None) -> str:
    """The executor the options ask for (`pool` when only --workers > 1 is given); refuse impossible ones.

    Checks everything before any run folder is made, including that Ray is importable for `ray`.
    """
    if batch is not None and batch < 1:
        raise errors.UsageError(f"--batch: received {batch}; expected a number of trials >= 1")
    if batch is not None and executor not in ("vectorized", "auto"):
        raise errors.UsageError(
            f"--batch: received {batch} with --executor {executor or 'sequential'}; expected --executor vectorized or auto"
        )
    if workers < 1:
        raise errors.UsageError(f"--workers: received {workers}; expected a number of worker processes >= 1")
    if cpus_per_trial <= 0:
        raise errors.UsageError(f"--cpus-per-trial: received {cpus_per_trial:g}; expected a number of CPUs > 0")
    if executor is None:
        executor = "pool" if workers > 1 else "sequential"
    if executor not in EXECUTORS:
        raise errors.UsageError(f"--executor: received {executor!r}; expected one of {', '.join(EXECUTORS)}")
    if executor == "sequential" and workers > 1:  # (vectorized and auto use them where vectorized does not apply)
        raise errors.UsageError(f"--workers: received {workers} with --executor {executor}; expected 1 (or --executor pool)")
    if address is not None and executor != "ray":
        raise errors.UsageError(f"--address: received {address!r} with --executor {executor}; expected --executor ray")
    if address is not None and address != "auto" and not address.startswith("ray://"):
        raise errors.UsageError(f"--address: received {address!r}; expected auto or ray://HOST:PORT")
    if executor == "ray":
        try:
            import ray  # noqa: F401
            from ray import tune  # noqa: F401
        except ImportError:
            raise errors.UsageError(f"--executor ray: received a Python without Ray Tune; expected it installed: {RAY_INSTALL}") from None
    return executor


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where independent trials run, checked (`resolve`): the executor and its options, and a pool the
    caller started early (`with_pool`)."""

    executor: str = "sequential"  # sequential | pool | ray | vectorized | auto
    workers: int = 1
    address: str | None = None  # ray: auto or ray://HOST:PORT; None: a local Ray
    cpus_per_trial: float = 1.0  # ray: CPUs reserved per trial
    pool: Pool | None = None
    batch: int | None = None  # a vectorized sweep: trials asked and trained together (None: BATCH)

    @classmethod
    def resolve(
        cls,
        executor: str | None = None,
        workers: int = 1,
        address: str | None = None,
        cpus_per_trial: float = 1.0,
        batch: int | None = None,
    ) -> Placement:
        """The placement the command-line options ask for (see `resolve`)."""
        return cls(resolve(executor, workers, address, cpus_per_trial, batch), workers, address, cpus_per_trial, batch=batch)

    def fallback(self) -> Placement:
        """Where vectorized or `auto` runs what cannot train as one program: a pool of `workers` processes when
        more than one was asked for, else one after the other in this process."""
        return Placement("pool", self.workers) if self.workers > 1 else Placement()

    def with_pool(self, pool: Pool) -> Placement:
        return dataclasses.replace(self, pool=pool)

    def record(self) -> dict:
        """What kfold.json and sweep.json keep of it."""
        return {key: value for key, value in vars(self).items() if value is not None and key != "pool"}

    def words(self) -> list[str]:
        """The options as command-line words, for run.json's `command`."""
        words = [f"--workers={self.workers}"] if self.workers != 1 else []
        words += [f"--executor={self.executor}"] if self.executor != "sequential" else []
        words += [f"--address={self.address}"] if self.address else []
        words += [f"--batch={self.batch}"] if self.batch is not None else []
        return words + ([f"--cpus-per-trial={self.cpus_per_trial:g}"] if self.cpus_per_trial != 1 else [])

    def describe(self) -> str:
        """One line for the console."""
        if self.executor == "pool":
            return f"a pool of {self.workers} worker processes, {threads_per_worker(self.workers)} compute thread(s) each"
        if self.executor == "ray":
            return f"Ray Tune at {self.address or 'a local Ray instance'}, {self.cpus_per_trial:g} CPU(s) per trial"
        if self.executor == "vectorized":
            where = f" (a pool of {self.workers} worker processes where it does not apply)" if self.workers > 1 else ""
            return f"vectorized: the folds as one JAX program in this process{where}"
        return "this process"


BATCH = 32  # a vectorized sweep's trials per program when --batch is not given


def vectorized_said(reason: str | None, noun: str, auto: bool, workers: int = 1) -> str | None:
    """The one console line of a vectorized or `auto` executor (None: nothing to say, vectorized as asked):
    `noun` is what trains together ("folds", "trials"); `reason` why vectorized does not apply (or None), in
    which case they run where `Placement.fallback` says: a pool of `workers` processes, or one by one."""
    pool = f"a pool of {workers} worker processes"
    if auto:
        if reason is None:
            return f"executor: vectorized (the {noun} as one JAX program{f'; the {workers} workers are not used' if workers > 1 else ''})"
        return f"executor: {pool if workers > 1 else 'sequential'} (vectorized does not apply: {reason})"
    return (
        None if reason is None else f"vectorized: not applicable ({reason}), running {noun} {f'on {pool}' if workers > 1 else 'one by one'}"
    )


def threads_per_worker(workers: int) -> int:
    """Intra-op threads for each of `workers` processes, so together they use the machine's cores once."""
    return max(1, (os.cpu_count() or 1) // workers)


def run(tasks: outcomes.Tasks, worker: outcomes.Worker, on_event: outcomes.OnEvent, placement: Placement = Placement()) -> None:
    """Run `worker(payload, emit)` for every `(key, payload)` in `tasks` (see the module docstring), where
    `placement` says. `placement.pool`: a `Pool` the caller started early (and closes); otherwise the
    pool executor makes its own."""
    executor, workers, pool = placement.executor, placement.workers, placement.pool
    if isinstance(tasks, list) and not tasks:
        return
    if executor == "sequential":
        _sequential(tasks, worker, on_event)
    elif executor == "pool":
        _pool(tasks, worker, on_event, workers, pool)
    elif executor == "ray":
        from dlrun.trials import ray_tune

        # Ray Tune takes its trials as a list: an iterator is taken a batch of `workers` at a time
        batches = [tasks] if isinstance(tasks, list) else iter(lambda: list(itertools.islice(tasks, max(1, workers))), [])
        for batch in batches:
            ray_tune.run(batch, worker, on_event, address=placement.address, cpus_per_trial=placement.cpus_per_trial)
    else:  # vectorized and auto: dlrun.trials.kfold and sweep_study call their own executor
        raise errors.UsageError(f"--executor: received {executor!r}; expected one of sequential, pool, ray")


# --- sequential: in this process, one task after the other ----------------------------------------


def _sequential(tasks: outcomes.Tasks, worker: outcomes.Worker, on_event: outcomes.OnEvent) -> None:
    for key, payload in tasks:
        registered = set(forget.gradient_registry())
        try:
            result = worker(payload, functools.partial(on_event, key))
        except (KeyboardInterrupt, errors.Interrupted):
            raise KeyboardInterrupt from None
        except Exception as error:  # reported as this task's outcome; the others still run
            on_event(key, outcomes.failure(error))
            continue
        finally:  # this process runs task after task as a pool worker does: the same leak, the same cure
            forget.since(registered)
        on_event(key, {"type": "done", "result": result})


# --- pool: N reused spawned processes (concurrent.futures) -----------------------------------------

_events: Any = None  # in a pool worker: the multiprocessing queue events go back through


def _initialize_worker(events: multiprocessing.queues.Queue, threads: int) -> None:
    """Runs once in each pool process: limit TensorFlow's threads before it starts, import it once."""
    global _events
    _events = events
    # The main process decides when to stop (Ctrl-C reaches the whole process group); SIGTERM from
    # the main process then interrupts the task the way it interrupts a `dlrun train`.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    events.put((None, {"type": "worker", "pid": os.getpid()}))
    from dlrun import backend

    backend.import_keras()  # on $KERAS_BACKEND, which the main process set before starting the pool
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)


def _call_in_worker(worker: outcomes.Worker, key: Any, payload: Any) -> Any:
    """In a pool process: run one task, its events going back through the queue; then drop what Keras and
    TensorFlow keep of it (their global state grows with every model trained: the leak class of keras-tuner#395)."""
    registered = set(forget.gradient_registry())
    try:
        return worker(payload, lambda event: _events.put((key, event)))
    finally:
        forget.since(registered)


class Pool:
    """N spawned worker processes, started at once (each imports TensorFlow while the caller is still
    preparing) and reused for every task of `run`."""

    def __init__(self, workers: int) -> None:
        import concurrent.futures
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.events = context.Queue()
        self.pids: set[int] = set()
        self.workers = workers
        self.closed = False
        self.executor = concurrent.futures.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_initialize_worker,
            initargs=(self.events, threads_per_worker(workers)),
        )
        for _ in range(workers):
            self.executor.submit(os.getpid)  # each submission with no idle worker starts a process now

    def run(self, tasks: outcomes.Tasks, worker: outcomes.Worker, on_event: outcomes.OnEvent) -> None:
        """Run every task on the workers, taking the next from `tasks` as one frees (none waits in a queue);
        on any exception (Ctrl-C included) stop them all and re-raise."""
        import concurrent.futures

        futures: dict = {}
        tasks = iter(tasks)
        pending: set = set()

        def submit_while_free() -> None:
            while len(pending) < self.workers:
                task = next(tasks, None)
                if task is None:
                    return
                key, payload = task
                future = self.executor.submit(_call_in_worker, worker, key, payload)
                futures[future] = key
                pending.add(future)

        try:
            submit_while_free()
            while pending:
                _drain(self.events, on_event, self.pids, timeout=0.2)
                done = {future for future in pending if future.done()}
                for future in done:
                    _drain(self.events, on_event, self.pids, timeout=0)  # the task's last epochs, when already queued
                    try:
                        result = future.result()
                    except concurrent.futures.process.BrokenProcessPool as error:
                        on_event(futures[future], outcomes.failure(RuntimeError(f"a worker process died ({error})")))
                    except Exception as error:  # the task raised in its worker
                        on_event(futures[future], outcomes.failure(error))
                    else:
                        on_event(futures[future], {"type": "done", "result": result})
                pending -= done
                submit_while_free()
        except BaseException:
            self.stop(futures)
            raise

    def close(self) -> None:
        """Stop the workers once every task is done (call it after `run` has returned).

        They are idle and hold nothing, so they are killed rather than asked to exit: a worker's own exit
        tears TensorFlow down slowly, and this process would wait for that when it exits (BENCHMARKS.md,
        "K-fold on a worker pool and on Ray"). All of them or none: an idle worker blocked on the task
        queue holds the queue's lock, so killing some could leave another blocked for ever; if a worker
        never reported its pid, they are asked to exit.
        """
        if self.closed:
            return
        self.closed = True
        deadline = time.monotonic() + _GRACE_SECONDS
        while len(self.pids) < self.workers and time.monotonic() < deadline:
            _drain(self.events, lambda key, event: None, self.pids, timeout=0.05)
        if len(self.pids) < self.workers:
            self.executor.shutdown(wait=True)
            return
        for pid in self.pids:
            _signal(pid, signal.SIGKILL)
        while any(_alive(pid) for pid in self.pids) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.executor.shutdown(wait=True)  # the pool notices its processes are gone and winds down

    def stop(self, futures: Iterable[concurrent.futures.Future] = ()) -> None:
        """Stop every worker now: cancel what has not started, SIGTERM the running ones, SIGKILL stragglers."""
        if self.closed:
            return
        self.closed = True
        for future in futures:
            future.cancel()
        _drain(self.events, lambda key, event: None, self.pids, timeout=0)  # workers that started meanwhile
        for pid in self.pids:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + _GRACE_SECONDS
        while time.monotonic() < deadline and any(_alive(pid) for pid in self.pids):
            time.sleep(0.05)
        for pid in self.pids:
            _signal(pid, signal.SIGKILL)
        self.executor.shutdown(wait=True, cancel_futures=True)


def _pool(tasks: outcomes.Tasks, worker: outcomes.Worker, on_event: outcomes.OnEvent, workers: int, pool: Pool | None) -> None:
    if pool is not None:  # started earlier by the caller, who closes it
        pool.run(tasks, worker, on_event)
        return
    own = Pool(min(workers, len(tasks)) if isinstance(tasks, list) else workers)
    own.run(tasks, worker, on_event)
    own.close()


def _drain(events: multiprocessing.queues.Queue, on_event: outcomes.OnEvent, pids: set, timeout: float) -> None:
    while True:
        try:
            key, event = events.get(timeout=timeout) if timeout else events.get_nowait()
        except queue_module.Empty:
            return
        timeout = 0
        if event["type"] == "worker":
            pids.add(event["pid"])
        else:
            on_event(key, event)


def _signal(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except (ProcessLookupError, PermissionError):
        pass


def _alive(pid: int) -> bool:
    """Whether `pid` still runs (a zombie waiting for the pool to reap it counts as stopped)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
