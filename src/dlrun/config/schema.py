"""The config schema: every section, every key, every default (the `data` and `model` sections in
`dlrun.config.datasets` and `dlrun.config.architectures`).

A config file states only what it changes; anything not stated takes the default written here.
Unknown keys are errors. `dlrun config show CONFIG` prints the fully resolved result.

Discriminated sections pick their keys by a name: `data.name` (a dataset), `model.architecture`,
`compile.optimizer.name`, `train.callbacks[].name`. The allowed names equal the registries' keys
(`dlrun list` prints them; a test checks they agree). Plug-ins (`dlrun.plugins`) add datasets and
architectures with sections of their own: `with_plugins` makes the Config that accepts them.
"""

from __future__ import annotations

import functools
import typing
from typing import Annotated, Any, Literal, Union

import pydantic
from pydantic import Field

from dlrun.config import fields, search as search_config
from dlrun.config.architectures import (  # noqa: F401  (re-exported: schema.MLPModel, ...)
    APPLICATION_NAMES,
    ConvnetModel,
    FineTune,
    Head,
    MLPModel,
    ModelConfig,
    PretrainedModel,
)
from dlrun.config.datasets import (  # noqa: F401  (re-exported: schema.DataConfig, ...)
    Augmentation,
    DataConfig,
    ImageDirectoryData,
    NpzData,
    SyntheticData,
)
from dlrun.config.fields import RUN_NAME_PATTERN  # noqa: F401  (re-exported)

# --- compile ---------------------------------------------------------------------------------


class RMSpropOptimizer(fields.Section):
    """keras.optimizers.RMSprop."""

    name: Literal["rmsprop"]
    learning_rate: fields.PositiveFloat = 0.001
    rho: fields.Fraction = 0.9
    momentum: fields.Fraction = 0.0
    epsilon: fields.PositiveFloat = 1e-7


class AdamOptimizer(fields.Section):
    """keras.optimizers.Adam."""

    name: Literal["adam"]
    learning_rate: fields.PositiveFloat = 0.001
    beta_1: fields.Fraction = 0.9
    beta_2: fields.Fraction = 0.999
    epsilon: fields.PositiveFloat = 1e-7
    amsgrad: fields.Flag = False


class SGDOptimizer(fields.Section):
    """keras.optimizers.SGD."""

    name: Literal["sgd"]
    learning_rate: fields.PositiveFloat = 0.01
    momentum: fields.Fraction = 0.0
    nesterov: fields.Flag = False


OptimizerConfig = Annotated[RMSpropOptimizer | AdamOptimizer | SGDOptimizer, Field(discriminator="name")]
LossName = Literal[
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "mse",
    "mae",
    "huber",
]
MetricName = Literal["accuracy", "auc", "precision", "recall", "mae", "mse"]


class CompileConfig(fields.Section):
    """What `model.compile` gets."""

    optimizer: OptimizerConfig = RMSpropOptimizer(name="rmsprop")  # a name or {name: ..., params}
    loss: Literal["auto", LossName] = "auto"  # auto: from the task (see dlrun.models.head)
    metrics: Literal["auto"] | list[MetricName] = "auto"  # auto: [accuracy] or [mae]

    @pydantic.field_validator("optimizer", mode="before")
    @classmethod
    def _optimizer_shorthand(cls, value: Any) -> Any:
        return fields.name_shorthand(value)


# --- train -----------------------------------------------------------------------------------


class EarlyStoppingCallback(fields.Section):
    """keras.callbacks.EarlyStopping."""

    name: Literal["early_stopping"]
    monitor: str = "val_loss"
    patience: fields.NonNegativeInt = 3
    min_delta: fields.NonNegativeFloat = 0.0
    mode: Literal["auto", "min", "max"] = "auto"
    restore_best_weights: fields.Flag = True


class CheckpointCallback(fields.Section):
    """keras.callbacks.ModelCheckpoint: keeps checkpoints/best.keras, the best model so far."""

    name: Literal["checkpoint"]
    monitor: str = "val_loss"
    mode: Literal["auto", "min", "max"] = "auto"


class ReduceLROnPlateauCallback(fields.Section):
    """keras.callbacks.ReduceLROnPlateau."""

    name: Literal["reduce_lr_on_plateau"]
    monitor: str = "val_loss"
    factor: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)] = 0.1
    patience: fields.NonNegativeInt = 2
    min_learning_rate: fields.NonNegativeFloat = 0.0
    mode: Literal["auto", "min", "max"] = "auto"


CallbackConfig = Annotated[
    EarlyStoppingCallback | CheckpointCallback | ReduceLROnPlateauCallback,
    Field(discriminator="name"),
]


class TrainConfig(fields.Section):
    """What `model.fit` gets."""

    epochs: fields.PositiveInt = 10
    batch_size: fields.PositiveInt = 32
    shuffle: fields.Flag = True  # reshuffle the training data every epoch
    loop: Literal["fit", "custom"] = "fit"  # custom: dlrun.training.loop's explicit gradient loop (any backend), same callbacks
    # Batches per call of the compiled train step (loop: fit); numbers are bit-identical for every value.
    # auto: up to 32 for in-memory data and models under 1M parameters on TensorFlow/JAX, else 1 (dlrun.training.batches)
    steps_per_execution: Literal["auto"] | fields.PositiveInt = "auto"
    tensorboard: fields.Flag = False  # write Keras' TensorBoard logs into RUN_DIR/tensorboard/
    # Keras' dtype policy (dlrun.training.precision): mixed_* pay off on GPUs/TPUs, not CPUs
    precision: Literal["float32", "mixed_float16", "mixed_bfloat16"] = (
        "float32"  # mixed_*: 16-bit compute, float32 variables and output; mixed_float16 scales the loss
    )
    # data_parallel runs across processes (hosts) too, with KERAS_DISTRIBUTION_* set (dlrun.training.distribution)
    distribute: Literal["none", "mirrored", "data_parallel"] = (
        "none"  # mirrored: tf.distribute.MirroredStrategy (TensorFlow); data_parallel: keras.distribution.DataParallel (JAX); batch_size is the global batch
    )
    devices: list[str] = []  # mirrored: e.g. ["/gpu:0", "/gpu:1"]; empty: all local GPUs (the CPU when none)
    callbacks: list[CallbackConfig] = []  # each a name or {name: ..., params}

    @pydantic.field_validator("callbacks", mode="before")
    @classmethod
    def _callbacks_shorthand(cls, value: Any) -> Any:
        return [fields.name_shorthand(item) for item in value] if isinstance(value, list) else value

    @pydantic.field_validator("steps_per_execution")
    @classmethod
    def _steps_need_fit(cls, value: Any, info: pydantic.ValidationInfo) -> Any:
        if value != "auto" and value > 1 and info.data.get("loop") == "custom":
            raise ValueError("auto or 1 with loop: custom (steps_per_execution groups the steps of loop: fit)")
        return value

    @pydantic.field_validator("devices")
    @classmethod
    def _devices_need_mirrored(cls, value: Any, info: pydantic.ValidationInfo) -> Any:
        if value and info.data.get("distribute") != "mirrored":
            raise ValueError(
                f"[] when distribute is {info.data.get('distribute')} (devices name the replicas of "
                "distribute: mirrored; data_parallel uses every device JAX sees)"
            )
        return value


# --- output ----------------------------------------------------------------------------------


class OutputConfig(fields.Section):
    """Where and what a run writes."""

    runs_root: str = "runs"  # run folders go to <runs_root>/<UTC timestamp>_<name>/
    save_model: fields.Flag = True  # write model.keras at the end
    plots: fields.Flag = True  # write plots/*.png at the end
    resume_checkpoints: fields.Flag = True  # write checkpoints/last.npz every epoch so `--resume` can continue
    keep_checkpoints: fields.Flag = True  # keep those resume checkpoints once the run completes (false: deleted then)


class Config(fields.Section):
    """A whole experiment."""

    name: str = "experiment"  # part of the run folder's name: letters, digits, '.', '_', '-'
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 42  # seeds Python, NumPy and TensorFlow; ops run deterministically
    backend: Literal["auto", "tensorflow", "jax", "torch"] = (
        "auto"  # the Keras backend; auto: the fastest installed one for the model (dlrun.backend)
    )
    data: DataConfig
    model: ModelConfig
    compile: CompileConfig = CompileConfig()
    train: TrainConfig = TrainConfig()
    output: OutputConfig = OutputConfig()
    search: search_config.SearchConfig | None = None  # `dlrun sweep` only (train and kfold ignore it): see dlrun.config.search

    @pydantic.model_validator(mode="after")
    def _resolve_search(self) -> Config:
        if self.search is not None:
            self.search = search_config.resolve(self.search, self.seed)
        return self

    @pydantic.field_validator("data", mode="before")
    @classmethod
    def _data_shorthand(cls, value: Any) -> Any:
        return fields.name_shorthand(value)  # `data: digits` means `data: {name: digits}`

    @pydantic.field_validator("model", mode="before")
    @classmethod
    def _model_shorthand(cls, value: Any) -> Any:
        return {"architecture": value} if isinstance(value, str) else value  # `model: mlp`

    @pydantic.field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not RUN_NAME_PATTERN.match(value):
            raise ValueError("a name of 1-64 letters, digits, '.', '_' or '-' that starts with a letter or digit")
        return value


def discriminator_tags(union: Any) -> list[str]:
    """The names a discriminated union accepts (e.g. every dataset name), in declaration order."""
    members_union, field_info = typing.get_args(union)
    key = field_info.discriminator
    return [typing.get_args(member.model_fields[key].annotation)[0] for member in typing.get_args(members_union)]


@functools.cache
def with_plugins(datasets: tuple[type, ...] = (), architectures: tuple[type, ...] = ()) -> type[Config]:
    """`Config`, with these plug-in sections added to the `data` and `model` unions (`Config` itself when none)."""
    if not datasets and not architectures:
        return Config
    fields: dict[str, typing.Any] = {}  # field name -> (annotation, default), as create_model takes them
    for key, union, added in (("data", DataConfig, datasets), ("model", ModelConfig, architectures)):
        if added:
            members, field_info = typing.get_args(union)
            fields[key] = (Annotated[Union[(*typing.get_args(members), *added)], field_info], ...)
    return pydantic.create_model("Config", __base__=Config, __doc__=Config.__doc__, **fields)
