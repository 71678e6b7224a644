"""The config schema: every section, every key, every default, in one place.

A config file states only what it changes; anything not stated takes the default written here.
Unknown keys are errors. `dlrun config show CONFIG` prints the fully resolved result.

Discriminated sections pick their keys by a name: `data.name` (a dataset), `model.architecture`,
`compile.optimizer.name`, `train.callbacks[].name`. The allowed names equal the registries' keys
(`dlrun list` prints them; a test checks they agree).
"""

from __future__ import annotations

import re
import typing
from typing import Annotated, Literal, Union

import pydantic
from pydantic import Field

Flag = Annotated[bool, pydantic.Strict()]  # only true/false: "no", 0 or "off" are errors, not false
PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, lt=1)]  # a share in [0, 1)

Task = Literal["binary", "multiclass", "regression"]
Activation = Literal[
    "relu", "sigmoid", "softmax", "tanh", "elu", "selu", "gelu", "swish", "silu",
    "softplus", "leaky_relu", "linear",
]
RUN_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class Section(pydantic.BaseModel):
    """A strict config section: unknown keys are errors, defaults are validated too."""

    model_config = pydantic.ConfigDict(extra="forbid", validate_default=True)


# --- data: one class per dataset, picked by `name` ---------------------------------------------


class DigitsData(Section):
    """scikit-learn's bundled 8x8 digits: 1,797 images, 10 classes, offline."""

    name: Literal["digits"]
    test_split: Fraction = 0.25  # share of all images held out as the test split (stratified)
    validation_split: Fraction = 0.2  # share of the remaining images held out for validation

    @property
    def task(self) -> Task:
        return "multiclass"


class SyntheticData(Section):
    """Random, learnable data of any shape, for smoke tests and benchmarks."""

    name: Literal["synthetic"]
    task: Task = "multiclass"  # which kind of target to generate
    num_samples: Annotated[int, Field(ge=10)] = 200  # samples before the test/validation splits
    input_shape: Annotated[list[PositiveInt], Field(min_length=1)] = [8]  # e.g. [8] or [16, 16, 1]
    num_classes: Annotated[int, Field(ge=2)] = 3  # classification only; binary always uses 2
    noise: NonNegativeFloat = 0.5  # standard deviation of the noise added to the signal
    test_split: Fraction = 0.2  # share of samples held out as the test split
    validation_split: Fraction = 0.2  # share of the remaining samples held out for validation


# Keras-hosted datasets: read from Keras' cache (downloaded when missing) or from `path`.
LocalPath = str | None  # None: Keras' cache, downloading the file when missing


class ImdbData(Section):
    """IMDB movie reviews, positive or negative: Keras' imdb.npz (25,000 train, 25,000 test)."""

    name: Literal["imdb"]
    path: LocalPath = None  # a copy of Keras' imdb.npz (or a folder holding it); None: Keras' cache/download
    trusted: Flag = False  # true: unpickle this file although its SHA-256 is not the one Keras publishes
    num_words: Annotated[int, Field(ge=3)] | None = 10000  # keep word indices below this; the rest become OOV (2)
    skip_top: NonNegativeInt = 0  # also turn word indices below this into OOV (Keras' skip_top)
    maxlen: PositiveInt | None = None  # drop sequences of this many tokens or more, start mark included (None: keep all)
    validation_count: NonNegativeInt = 10000  # the first N (Keras-shuffled) training reviews validate, as the book

    @property
    def task(self) -> Task:
        return "binary"

    @property
    def has_validation(self) -> bool:
        return self.validation_count > 0


class ReutersData(Section):
    """Reuters newswires, 46 topics: Keras' reuters.npz (11,228 newswires)."""

    name: Literal["reuters"]
    path: LocalPath = None  # a copy of Keras' reuters.npz (or a folder holding it); None: Keras' cache/download
    trusted: Flag = False  # true: unpickle this file although its SHA-256 is not the one Keras publishes
    num_words: Annotated[int, Field(ge=3)] | None = 10000  # keep word indices below this; the rest become OOV (2)
    skip_top: NonNegativeInt = 0  # also turn word indices below this into OOV (Keras' skip_top)
    maxlen: PositiveInt | None = None  # drop sequences of this many tokens or more, start mark included (None: keep all)
    test_split: Fraction = 0.2  # the last share of the Keras-shuffled newswires is the test split (Keras' default)
    validation_count: NonNegativeInt = 1000  # the first N training newswires validate, as the book

    @property
    def task(self) -> Task:
        return "multiclass"

    @property
    def has_validation(self) -> bool:
        return self.validation_count > 0


class BostonHousingData(Section):
    """Boston housing prices: Keras' boston_housing.npz (506 districts, 13 features)."""

    name: Literal["boston_housing"]
    path: LocalPath = None  # a copy of Keras' boston_housing.npz (or a folder holding it); None: Keras' cache/download
    test_split: Fraction = 0.2  # Keras' split after its seed-113 shuffle: 404 train, 102 test
    validation_split: Fraction = 0.0  # share of the training districts held out for validation (0: none, as the book's final fit)

    @property
    def task(self) -> Task:
        return "regression"


class MnistData(Section):
    """MNIST handwritten digits: Keras' mnist.npz (60,000 train, 10,000 test, 28x28)."""

    name: Literal["mnist"]
    path: LocalPath = None  # a copy of Keras' mnist.npz (or a folder holding it); None: Keras' cache/download
    validation_split: Fraction = 0.0  # share of the training images held out for validation (stratified; 0: none, as the book)

    @property
    def task(self) -> Task:
        return "multiclass"


class FashionMnistData(Section):
    """Fashion-MNIST clothing images: Keras' four IDX .gz files (60,000 train, 10,000 test, 28x28)."""

    name: Literal["fashion_mnist"]
    path: LocalPath = None  # a folder with the four IDX .gz files (e.g. /usr/share/datasets/fashion-mnist); None: Keras' cache/download
    validation_split: Fraction = 0.0  # share of the training images held out for validation (stratified; 0: none)

    @property
    def task(self) -> Task:
        return "multiclass"


DataConfig = Annotated[
    Union[DigitsData, SyntheticData, ImdbData, ReutersData, BostonHousingData, MnistData, FashionMnistData],
    Field(discriminator="name"),
]


# --- model: one class per architecture, picked by `architecture` ----------------------------


class Head(Section):
    """The output layer. Left empty, it follows the dataset's task."""

    units: PositiveInt | None = None  # None: 1 for binary and regression, the class count for multiclass
    activation: Activation | None = None  # None: sigmoid (binary), softmax (multiclass), linear (regression)


class MLPModel(Section):
    """A stack of Dense layers (inputs of rank > 1 are flattened first)."""

    architecture: Literal["mlp"]
    units: list[PositiveInt] = [64, 64]  # hidden Dense layer sizes, in order
    activation: Activation = "relu"
    dropout: Fraction = 0.0  # Dropout rate after each hidden layer (0: none)
    l1: NonNegativeFloat = 0.0  # L1 weight penalty on every hidden layer's kernel
    l2: NonNegativeFloat = 0.0  # L2 weight penalty on every hidden layer's kernel
    head: Head = Head()


class ConvnetModel(Section):
    """Conv2D blocks (each optionally pooled), a flatten or global pool, Dense layers, the head."""

    architecture: Literal["convnet"]
    filters: Annotated[list[PositiveInt], Field(min_length=1)] = [32, 64]  # one Conv2D per entry
    kernel_size: PositiveInt = 3
    padding: Literal["valid", "same"] = "valid"
    pooling: Literal["max", "average", "none"] = "max"  # pooling after each conv block
    pool_size: PositiveInt = 2
    pool_last: Flag = True  # false: no pooling after the last conv block (the book's MNIST net)
    reduce: Literal["flatten", "global_average", "global_max"] = "flatten"  # conv output -> vector
    dense_units: list[PositiveInt] = [64]  # Dense layers between the conv part and the head
    activation: Activation = "relu"
    dropout: Fraction = 0.0  # Dropout rate after flatten/global pooling (0: none)
    l1: NonNegativeFloat = 0.0  # L1 penalty on every conv and hidden Dense kernel
    l2: NonNegativeFloat = 0.0  # L2 penalty on every conv and hidden Dense kernel
    head: Head = Head()


ModelConfig = Annotated[Union[MLPModel, ConvnetModel], Field(discriminator="architecture")]


# --- compile ---------------------------------------------------------------------------------


class RMSpropOptimizer(Section):
    """keras.optimizers.RMSprop."""

    name: Literal["rmsprop"]
    learning_rate: PositiveFloat = 0.001
    rho: Fraction = 0.9
    momentum: Fraction = 0.0
    epsilon: PositiveFloat = 1e-7


class AdamOptimizer(Section):
    """keras.optimizers.Adam."""

    name: Literal["adam"]
    learning_rate: PositiveFloat = 0.001
    beta_1: Fraction = 0.9
    beta_2: Fraction = 0.999
    epsilon: PositiveFloat = 1e-7
    amsgrad: Flag = False


class SGDOptimizer(Section):
    """keras.optimizers.SGD."""

    name: Literal["sgd"]
    learning_rate: PositiveFloat = 0.01
    momentum: Fraction = 0.0
    nesterov: Flag = False


OptimizerConfig = Annotated[
    Union[RMSpropOptimizer, AdamOptimizer, SGDOptimizer], Field(discriminator="name")
]
LossName = Literal[
    "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
    "mse", "mae", "huber",
]
MetricName = Literal["accuracy", "auc", "precision", "recall", "mae", "mse"]


def _name_shorthand(value):
    """`optimizer: adam` means `optimizer: {name: adam}`."""
    return {"name": value} if isinstance(value, str) else value


class CompileConfig(Section):
    """What `model.compile` gets."""

    optimizer: OptimizerConfig = RMSpropOptimizer(name="rmsprop")  # a name or {name: ..., params}
    loss: Literal["auto", LossName] = "auto"  # auto: from the task (see dlrun.models.head)
    metrics: Literal["auto"] | list[MetricName] = "auto"  # auto: [accuracy] or [mae]

    @pydantic.field_validator("optimizer", mode="before")
    @classmethod
    def _optimizer_shorthand(cls, value):
        return _name_shorthand(value)


# --- train -----------------------------------------------------------------------------------


class EarlyStoppingCallback(Section):
    """keras.callbacks.EarlyStopping."""

    name: Literal["early_stopping"]
    monitor: str = "val_loss"
    patience: NonNegativeInt = 3
    min_delta: NonNegativeFloat = 0.0
    mode: Literal["auto", "min", "max"] = "auto"
    restore_best_weights: Flag = True


class CheckpointCallback(Section):
    """keras.callbacks.ModelCheckpoint: keeps checkpoints/best.keras, the best model so far."""

    name: Literal["checkpoint"]
    monitor: str = "val_loss"
    mode: Literal["auto", "min", "max"] = "auto"


class ReduceLROnPlateauCallback(Section):
    """keras.callbacks.ReduceLROnPlateau."""

    name: Literal["reduce_lr_on_plateau"]
    monitor: str = "val_loss"
    factor: Annotated[float, Field(gt=0, lt=1)] = 0.1
    patience: NonNegativeInt = 2
    min_learning_rate: NonNegativeFloat = 0.0
    mode: Literal["auto", "min", "max"] = "auto"


CallbackConfig = Annotated[
    Union[EarlyStoppingCallback, CheckpointCallback, ReduceLROnPlateauCallback],
    Field(discriminator="name"),
]


class TrainConfig(Section):
    """What `model.fit` gets."""

    epochs: PositiveInt = 10
    batch_size: PositiveInt = 32
    shuffle: Flag = True  # reshuffle the training data every epoch
    callbacks: list[CallbackConfig] = []  # each a name or {name: ..., params}

    @pydantic.field_validator("callbacks", mode="before")
    @classmethod
    def _callbacks_shorthand(cls, value):
        return [_name_shorthand(item) for item in value] if isinstance(value, list) else value


# --- output ----------------------------------------------------------------------------------


class OutputConfig(Section):
    """Where and what a run writes."""

    runs_root: str = "runs"  # run folders go to <runs_root>/<UTC timestamp>_<name>/
    save_model: Flag = True  # write model.keras at the end
    plots: Flag = True  # write plots/*.png at the end


class Config(Section):
    """A whole experiment."""

    name: str = "experiment"  # part of the run folder's name: letters, digits, '.', '_', '-'
    seed: NonNegativeInt = 42  # seeds Python, NumPy and TensorFlow; ops run deterministically
    data: DataConfig
    model: ModelConfig
    compile: CompileConfig = CompileConfig()
    train: TrainConfig = TrainConfig()
    output: OutputConfig = OutputConfig()

    @pydantic.field_validator("data", mode="before")
    @classmethod
    def _data_shorthand(cls, value):
        return _name_shorthand(value)  # `data: digits` means `data: {name: digits}`

    @pydantic.field_validator("model", mode="before")
    @classmethod
    def _model_shorthand(cls, value):
        return {"architecture": value} if isinstance(value, str) else value  # `model: mlp`

    @pydantic.field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not RUN_NAME_PATTERN.match(value):
            raise ValueError(
                "a name of 1-64 letters, digits, '.', '_' or '-' that starts with a letter or digit"
            )
        return value


def discriminator_tags(union) -> list[str]:
    """The names a discriminated union accepts (e.g. every dataset name), in declaration order."""
    members_union, field_info = typing.get_args(union)
    key = field_info.discriminator
    return [typing.get_args(member.model_fields[key].annotation)[0] for member in typing.get_args(members_union)]
