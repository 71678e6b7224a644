"""One model across devices (`train.distribute`): TensorFlow's mirrored strategy, or Keras' DataParallel on JAX.

`mirrored` opens a `tf.distribute.MirroredStrategy` scope around building and compiling the model (its
variables are mirrored; the strategy then runs `fit`). `data_parallel` sets `keras.distribution.DataParallel`
for the process: every variable is replicated on each device JAX sees, each global batch is split along
its first axis across them, and XLA sums the gradients. With Keras' own environment variables
(`KERAS_DISTRIBUTION_JOB_ADDRESSES`, `KERAS_DISTRIBUTION_NUM_PROCESSES`, `KERAS_DISTRIBUTION_PROCESS_ID`)
several processes (hosts) join one mesh through `keras.distribution.initialize` (`jax.distributed`): each
process then feeds its slice of every global batch (`Share`), only process 0 keeps a run folder, and once
`fit` is done every process holds the whole model on its own device again, so evaluation and saving need
no other process (`gather`). `train.batch_size` is the global batch in every case.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dlrun import backend, errors

if TYPE_CHECKING:
    from rich.console import Console

    from dlrun.config import schema
    from dlrun.data import dataset

JOB_ADDRESSES = "KERAS_DISTRIBUTION_JOB_ADDRESSES"  # the coordinator's host:port (or every process's, comma-separated)
NUM_PROCESSES = "KERAS_DISTRIBUTION_NUM_PROCESSES"
PROCESS_ID = "KERAS_DISTRIBUTION_PROCESS_ID"


@dataclasses.dataclass(frozen=True)
class Share:
    """This process's part of each global batch: slice `index` of `count` equal slices (one process: 0 of 1)."""

    index: int = 0
    count: int = 1

    def rows(self, size: int) -> slice:
        """The rows of a global batch of `size` rows this process feeds (size divides by `count`)."""
        part = size // self.count
        return slice(self.index * part, (self.index + 1) * part)

    def local_order(self, order: Any, batch_size: int) -> Any:
        """`order` (sample indices, in batch order) cut to this process's rows of each batch, in the same order."""
        import numpy as np

        if self.count == 1:
            return order
        pieces = [
            order[start : start + batch_size][self.rows(len(order[start : start + batch_size]))]
            for start in range(0, len(order), batch_size)
        ]
        return np.concatenate(pieces) if pieces else order


SINGLE = Share()


def require_tensorflow(feature: str) -> None:
    """A ConfigError unless Keras runs on TensorFlow here (for `tf.distribute` code)."""
    active = backend.loaded()
    if active not in (None, "tensorflow"):
        raise errors.ConfigError(
            f"backend: received {active!r}; expected tensorflow for {feature} (only TensorFlow runs it): "
            f"set backend: tensorflow, or unset KERAS_BACKEND"
        )


def activate(config: schema.Config) -> Share:
    """Set this process's Keras distribution for `config` (none unless `train.distribute: data_parallel`);
    join the other processes first when Keras' distribution variables name them. Returns this process's share."""
    keras = backend.import_keras()
    if config.train.distribute != "data_parallel":
        if backend.loaded() == "jax":
            keras.distribution.set_distribution(None)  # an earlier Training in this process may have set one
        return SINGLE
    if backend.loaded() != "jax":
        raise errors.ConfigError(
            f"backend: received {backend.loaded()!r}; expected jax for train.distribute: "
            "data_parallel (keras.distribution runs on JAX): set backend: jax, or unset KERAS_BACKEND"
        )
    import jax

    if os.environ.get(JOB_ADDRESSES) and not jax.distributed.is_initialized():
        try:
            keras.distribution.initialize()  # reads the three KERAS_DISTRIBUTION_* variables
        except (ValueError, RuntimeError) as error:
            raise errors.ConfigError(
                f"{JOB_ADDRESSES}: received {os.environ[JOB_ADDRESSES]!r} ({NUM_PROCESSES}="
                f"{os.environ.get(NUM_PROCESSES)}, {PROCESS_ID}={os.environ.get(PROCESS_ID)}); "
                f"expected a coordinator every process reaches ({error})"
            ) from None
    # The data is already cut per process (Share): Keras' auto-sharding works on tf.data datasets only.
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices(), auto_shard_dataset=False))
    return Share(jax.process_index(), jax.process_count())


@contextlib.contextmanager
def scope(config: schema.Config) -> Iterator[Any]:
    """Build and compile the model inside this: `train.distribute: mirrored` opens a
    `tf.distribute.MirroredStrategy` over `train.devices` (all local GPUs, or the CPU, when empty);
    `data_parallel` needs nothing more than `activate`."""
    if config.train.distribute != "mirrored":
        yield None
        return
    require_tensorflow(f"train.distribute: {config.train.distribute}")
    import tensorflow as tf

    try:
        strategy = tf.distribute.MirroredStrategy(devices=list(config.train.devices) or None)
    except (ValueError, RuntimeError) as error:
        raise errors.ConfigError(
            f"train.devices: received {list(config.train.devices)}; expected devices this machine has ({error})"
        ) from None
    replicas = strategy.num_replicas_in_sync
    if config.train.batch_size % replicas:
        # Keras 3.15 builds a distributed model from its first batch reduced across replicas, which
        # fails on unequal shares (keras/src/backend/tensorflow/trainer.py, _maybe_symbolic_build).
        raise errors.ConfigError(
            f"train.batch_size: received {config.train.batch_size} with {replicas} mirrored "
            f"replicas; expected a multiple of {replicas} (the global batch is split evenly)"
        )
    with strategy.scope():
        yield strategy


def check_batches(config: schema.Config, data: dataset.Dataset, share: Share) -> None:
    """A ConfigError (before any folder exists) unless every batch of every split splits evenly over the
    data-parallel devices: JAX places equal rows on each, and a ragged last batch would fail mid-training."""
    if config.train.distribute != "data_parallel":
        return
    import jax

    devices, batch_size = jax.device_count(), config.train.batch_size
    if batch_size % devices:
        raise errors.ConfigError(
            f"train.batch_size: received {batch_size} with {devices} data-parallel devices; "
            f"expected a multiple of {devices} (each device gets an equal part of each batch)"
        )
    for name in ("train", "validation", "test"):
        size = data.size(name)
        if size % batch_size % devices:
            raise errors.ConfigError(
                f"train.batch_size: received {batch_size} with {devices} data-parallel devices and a {name} split of "
                f"{size} samples, whose last batch of {size % batch_size} does not split evenly; expected a batch "
                f"size that leaves a last batch divisible by {devices} (or none)"
            )
        if share.count > 1 and size and not isinstance(data.split(name), tuple):
            raise errors.ConfigError(
                f"train.distribute: received 'data_parallel' across {share.count} processes "
                f"with a streamed (tf.data) {name} split; expected in-memory data (NumPy arrays), "
                "which each process cuts into its share of every batch"
            )


def validation(data: dataset.Dataset, batch_size: int, share: Share) -> dict:
    """`fit`'s validation arguments: the whole split, or in a multi-process run this process's share of
    each validation batch, batched at its share of the batch size."""
    whole = data.validation_data(batch_size)
    if share.count == 1 or whole is None:
        return {"validation_data": whole}
    import numpy as np

    inputs, targets = whole
    rows = share.local_order(np.arange(len(inputs)), batch_size)
    return {"validation_data": (inputs[rows], targets[rows]), "validation_batch_size": batch_size // share.count}


def gather(model: Any, share: Share) -> None:
    """After a multi-process `fit`: leave the shared mesh and hold every variable (replicated, so each
    process has all of it) on this process's device, so evaluation and saving need no other process."""
    if share.count == 1:
        return
    import numpy as np

    keras = backend.import_keras()
    values = [np.asarray(variable.value) for variable in model.variables]
    optimizer_variables = list(model.optimizer.variables) if model.optimizer is not None else []
    optimizer_variables += list(model.metrics_variables)
    optimizer_values = [np.asarray(variable.value) for variable in optimizer_variables]
    keras.distribution.set_distribution(None)
    for variable, value in zip(list(model.variables) + optimizer_variables, values + optimizer_values):
        variable.assign(value)
    # the compiled steps were traced for the mesh: trace again for one device
    model.train_function = model.test_function = model.predict_function = None


def runs_root(config: schema.Config, share: Share, resuming: bool, console: Console) -> schema.Config:
    """`config` as this process trains it: unchanged in process 0 (the only one with a run folder); in the
    others, with a temporary runs root (deleted by `remove_scratch` once the run completes)."""
    if resuming and share.count > 1:
        raise errors.ConfigError(
            "train.distribute: received 'data_parallel' across processes with --resume; expected "
            "one process (the other processes keep no checkpoints): start a new run"
        )
    if not share.index:
        return config
    import tempfile

    console.print(
        f"process {share.index} of {share.count}: process 0 writes the run folder; this one trains in a "
        "temporary folder, deleted at the end",
        highlight=False,
        soft_wrap=True,
    )
    scratch = tempfile.mkdtemp(prefix="dlrun-process-")
    return config.model_copy(update={"output": config.output.model_copy(update={"runs_root": scratch})})


def remove_scratch(config: schema.Config, share: Share) -> None:
    """Delete a non-zero process's temporary runs root (`runs_root`)."""
    if share.index:
        import shutil

        shutil.rmtree(config.output.runs_root, ignore_errors=True)


def record(config: schema.Config, share: Share) -> dict | None:
    """What run.json says about `train.distribute: data_parallel` (None otherwise): devices, processes, and
    the rows each device gets of each global batch."""
    if config.train.distribute != "data_parallel":
        return None
    import jax

    return {
        "kind": "data_parallel",
        "devices": jax.device_count(),
        "local_devices": jax.local_device_count(),
        "processes": share.count,
        "device_kind": jax.devices()[0].device_kind,
        "per_device_batch": config.train.batch_size // jax.device_count(),
    }
