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
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]  # a share in [0, 1)

Task = Literal["binary", "multiclass", "regression"]
Activation = Literal[
    "relu", "sigmoid", "softmax", "tanh", "elu", "selu", "gelu", "swish", "silu",
    "softplus", "leaky_relu", "linear",
]
Initializer = Literal[
    "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal",
    "random_normal", "random_uniform", "truncated_normal", "orthogonal", "zeros", "ones",
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


class Augmentation(Section):
    """Random image transforms, active in training only: Keras 3 layers in the model (README maps each
    option from Keras 2's ImageDataGenerator). All off by default."""

    rotation_range: Annotated[float, Field(ge=0, le=180)] = 0.0  # degrees, rotated by up to +-this
    width_shift_range: Fraction = 0.0  # shifted by up to +-this share of the width
    height_shift_range: Fraction = 0.0  # shifted by up to +-this share of the height
    shear_range: Annotated[float, Field(ge=0, lt=90)] = 0.0  # degrees, as in Keras 2 (0.2 is a tiny shear)
    zoom_range: Fraction = 0.0  # each axis zoomed by a factor in [1 - this, 1 + this]
    horizontal_flip: Flag = False  # mirror left-right half of the time
    vertical_flip: Flag = False  # mirror top-bottom half of the time
    fill_mode: Literal["nearest", "reflect", "wrap", "constant"] = "nearest"  # fills pixels moved in from outside
    fill_value: float = 0.0  # the pixel value fill_mode: constant uses (Keras 2's cval)

    @property
    def active(self) -> bool:
        return bool(
            self.rotation_range or self.width_shift_range or self.height_shift_range or self.shear_range
            or self.zoom_range or self.horizontal_flip or self.vertical_flip
        )


class ImageDirectoryData(Section):
    """A folder of images, one sub-folder per class, in train/ validation/ test/ or all in one folder."""

    name: Literal["image_directory"]
    path: str  # a folder with train/, validation/, test/ (any of them; train/ needed), or one folder of class folders
    image_size: Annotated[list[PositiveInt], Field(min_length=2, max_length=2)] = [150, 150]  # [height, width]
    color_mode: Literal["rgb", "grayscale", "rgba"] = "rgb"  # images of other modes are converted
    interpolation: Literal["bilinear", "nearest", "bicubic", "area"] = "bilinear"  # how images are resized
    crop_to_aspect_ratio: Flag = False  # true: centre-crop to the target aspect ratio instead of squashing
    validation_split: Fraction = 0.0  # without a validation/ folder: share of train images held out (stratified)
    skip_corrupt: Flag = False  # false: an unreadable or non-image file is an error; true: skipped with a warning
    cache: Literal["memory", "disk", "none"] = "memory"  # where decoded images are kept after the first epoch
    cache_dir: str | None = None  # cache: disk: the folder for the cache files (required then)
    augmentation: Augmentation = Augmentation()  # random transforms in training (data augmentation)

    @property
    def has_validation(self) -> bool:
        import os

        return self.validation_split > 0 or os.path.isdir(os.path.join(self.path, "validation"))


class NpzData(Section):
    """A local .npz file: x_train, y_train and optionally x_validation, y_validation, x_test, y_test (read without pickle)."""

    name: Literal["npz"]
    path: str  # the .npz file (relative to the current directory)
    validation_split: Fraction = 0.2  # share of x_train held out for validation (stratified for classes); not used when the file holds x_validation
    rescale: PositiveFloat | None = None  # e.g. 0.00392156862745098 (1/255) for 8-bit images; applied inside the model
    class_names: Annotated[list[str], Field(min_length=2)] | None = None  # None: "0", "1", ... (one per label)


class HDF5Data(Section):
    """Images and labels in two HDF5 files, the SIGNS layout (train_signs.h5, test_signs.h5)."""

    name: Literal["hdf5"]
    train_path: str  # the training file, e.g. datasets/signs/train_signs.h5 (relative to the working folder)
    test_path: str | None = None  # the test file, e.g. datasets/signs/test_signs.h5; None: no test split
    train_x_key: str = "train_set_x"  # images in the training file, (N, height, width, channels)
    train_y_key: str = "train_set_y"  # integer labels in the training file, (N,) (or (1, N) / (N, 1))
    test_x_key: str = "test_set_x"  # images in the test file
    test_y_key: str = "test_set_y"  # labels in the test file
    classes_key: str | None = "list_classes"  # class names (in both files); None: named by label value
    scale: Flag = True  # divide pixel values by 255 ([0, 255] -> [0, 1]) in a Rescaling layer of the model
    validation_split: Fraction = 0.0  # share of the training file held out for validation (stratified)
    # No `task` here: binary or multiclass is known once the files are read (the number of classes).


DataConfig = Annotated[
    Union[
        DigitsData, SyntheticData, ImdbData, ReutersData, BostonHousingData, MnistData, FashionMnistData,
        ImageDirectoryData, NpzData, HDF5Data,
    ],
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
    kernel_initializer: Initializer = "glorot_uniform"  # every Dense kernel, the head's included (Keras' default)
    bias_initializer: Literal["zeros", "ones"] = "zeros"  # every Dense bias, the head's included (Keras' default)
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


# keras.applications bases a `pretrained` model may name (lower-case class names); equal to the keys of
# dlrun.models.pretrained.APPLICATIONS (a test checks).
APPLICATION_NAMES = (
    "convnextbase", "convnextlarge", "convnextsmall", "convnexttiny", "convnextxlarge",
    "densenet121", "densenet169", "densenet201",
    "efficientnetb0", "efficientnetb1", "efficientnetb2", "efficientnetb3",
    "efficientnetb4", "efficientnetb5", "efficientnetb6", "efficientnetb7",
    "efficientnetv2b0", "efficientnetv2b1", "efficientnetv2b2", "efficientnetv2b3",
    "efficientnetv2s", "efficientnetv2m", "efficientnetv2l",
    "inceptionresnetv2", "inceptionv3", "mobilenet", "mobilenetv2", "mobilenetv3small", "mobilenetv3large",
    "nasnetlarge", "nasnetmobile", "resnet50", "resnet101", "resnet152", "resnet50v2", "resnet101v2",
    "resnet152v2", "vgg16", "vgg19", "xception",
)


class FineTune(Section):
    """A second training phase: the top of the base unfrozen, a lower learning rate, more epochs."""

    epochs: PositiveInt = 10  # epochs of this phase, counted after train.epochs of the frozen phase
    unfreeze: list[str] = []  # base layers whose names start with one of these are unfrozen, e.g. [block5]
    top_layers: NonNegativeInt = 0  # also unfreeze the base's last N layers
    learning_rate: PositiveFloat = 1e-5  # compile.optimizer's kind, with this learning rate

    @pydantic.field_validator("top_layers")
    @classmethod
    def _something_to_unfreeze(cls, value, info):
        if value == 0 and not info.data.get("unfreeze"):
            raise ValueError("a number >= 1 when unfreeze is empty (name what to train: unfreeze: [block5] or top_layers: N)")
        return value


class PretrainedModel(Section):
    """Transfer learning: a keras.applications base (or a previous run's model) under a new head."""

    architecture: Literal["pretrained"]
    base: str = "vgg16"  # a keras.applications name (lower case) or the path of a dlrun run's model.keras
    weights: str | None = "imagenet"  # application bases: imagenet, null (random) or a local .h5/.weights.h5 file
    include_top: Flag = False  # keep the base's own top (an application's 1000-class classifier)
    base_options: dict[str, Union[bool, int, float, str, None]] = {}  # more application arguments, e.g. {alpha: 0.35}
    base_layer: str | None = None  # run-model bases: the layer whose output is the features; null: the one before the last
    mode: Literal["features", "end_to_end"] = "features"  # features: run the frozen base once, cache, train the head only
    cache_dir: str | None = None  # features mode: where base outputs are kept; null: feature_cache/ beside output.runs_root
    reduce: Literal["flatten", "global_average", "global_max"] = "flatten"  # base output -> vector
    dense_units: list[PositiveInt] = [256]  # hidden Dense layers of the head
    activation: Activation = "relu"
    dropout: Fraction = 0.5  # Dropout rate after each hidden Dense layer (0: none)
    head: Head = Head()
    fine_tune: FineTune | None = None  # end_to_end only: a second phase with the top of the base unfrozen

    @pydantic.field_validator("base")
    @classmethod
    def _known_base(cls, value: str) -> str:
        if value in APPLICATION_NAMES or value.endswith(".keras"):
            return value
        import difflib

        close = difflib.get_close_matches(value.lower(), APPLICATION_NAMES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"a keras.applications name ({', '.join(APPLICATION_NAMES)}) or a path to a run's model.keras{hint}")

    @pydantic.field_validator("fine_tune")
    @classmethod
    def _fine_tune_needs_end_to_end(cls, value, info):
        if value is not None and info.data.get("mode") == "features":
            raise ValueError("null in features mode (the base is not trained there); set mode: end_to_end to fine-tune")
        return value


ModelConfig = Annotated[Union[MLPModel, ConvnetModel, PretrainedModel], Field(discriminator="architecture")]


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
    factor: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)] = 0.1
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
    loop: Literal["fit", "custom"] = "fit"  # custom: dlrun.loop's explicit gradient loop (any backend), same callbacks
    tensorboard: Flag = False  # write Keras' TensorBoard logs into RUN_DIR/tensorboard/
    distribute: Literal["none", "mirrored"] = "none"  # mirrored: tf.distribute.MirroredStrategy; batch_size is the global batch
    devices: list[str] = []  # mirrored: e.g. ["/gpu:0", "/gpu:1"]; empty: all local GPUs (the CPU when none)
    callbacks: list[CallbackConfig] = []  # each a name or {name: ..., params}

    @pydantic.field_validator("callbacks", mode="before")
    @classmethod
    def _callbacks_shorthand(cls, value):
        return [_name_shorthand(item) for item in value] if isinstance(value, list) else value

    @pydantic.field_validator("devices")
    @classmethod
    def _devices_need_mirrored(cls, value, info):
        if value and info.data.get("distribute") == "none":
            raise ValueError("[] when distribute is none (devices name the replicas of distribute: mirrored)")
        return value


# --- output ----------------------------------------------------------------------------------


class OutputConfig(Section):
    """Where and what a run writes."""

    runs_root: str = "runs"  # run folders go to <runs_root>/<UTC timestamp>_<name>/
    save_model: Flag = True  # write model.keras at the end
    plots: Flag = True  # write plots/*.png at the end
    resume_checkpoints: Flag = True  # write checkpoints/last.npz every epoch so `--resume` can continue


class Config(Section):
    """A whole experiment."""

    name: str = "experiment"  # part of the run folder's name: letters, digits, '.', '_', '-'
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 42  # seeds Python, NumPy and TensorFlow; ops run deterministically
    backend: Literal["auto", "tensorflow", "jax", "torch"] = "auto"  # the Keras backend; auto: the fastest installed one for the model (dlrun.backend)
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
