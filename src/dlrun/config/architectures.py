"""The `model` section of the schema: one class per architecture, picked by `architecture` (see
`dlrun.config.schema`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pydantic
from pydantic import Field

from dlrun.config.fields import (
    Activation,
    Flag,
    Fraction,
    Initializer,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Section,
)

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
    pool_last: Flag = True  # false: no pooling after the last conv block (e.g. Conv-Pool-Conv-Pool-Conv)
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
    "convnextbase",
    "convnextlarge",
    "convnextsmall",
    "convnexttiny",
    "convnextxlarge",
    "densenet121",
    "densenet169",
    "densenet201",
    "efficientnetb0",
    "efficientnetb1",
    "efficientnetb2",
    "efficientnetb3",
    "efficientnetb4",
    "efficientnetb5",
    "efficientnetb6",
    "efficientnetb7",
    "efficientnetv2b0",
    "efficientnetv2b1",
    "efficientnetv2b2",
    "efficientnetv2b3",
    "efficientnetv2s",
    "efficientnetv2m",
    "efficientnetv2l",
    "inceptionresnetv2",
    "inceptionv3",
    "mobilenet",
    "mobilenetv2",
    "mobilenetv3small",
    "mobilenetv3large",
    "nasnetlarge",
    "nasnetmobile",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnet50v2",
    "resnet101v2",
    "resnet152v2",
    "vgg16",
    "vgg19",
    "xception",
)


class FineTune(Section):
    """A second training phase: the top of the base unfrozen, a lower learning rate, more epochs."""

    epochs: PositiveInt = 10  # epochs of this phase, counted after train.epochs of the frozen phase
    unfreeze: list[str] = []  # base layers whose names start with one of these are unfrozen, e.g. [block5]
    top_layers: NonNegativeInt = 0  # also unfreeze the base's last N layers
    learning_rate: PositiveFloat = 1e-5  # compile.optimizer's kind, with this learning rate

    @pydantic.field_validator("top_layers")
    @classmethod
    def _something_to_unfreeze(cls, value: Any, info: pydantic.ValidationInfo) -> Any:
        if value == 0 and not info.data.get("unfreeze"):
            raise ValueError("a number >= 1 when unfreeze is empty (name what to train: unfreeze: [block5] or top_layers: N)")
        return value


class PretrainedModel(Section):
    """Transfer learning: a keras.applications base (or a previous run's model) under a new head."""

    architecture: Literal["pretrained"]
    base: str = "vgg16"  # a keras.applications name (lower case) or the path of a dlrun run's model.keras
    weights: str | None = "imagenet"  # application bases: imagenet, null (random) or a local .h5/.weights.h5 file
    include_top: Flag = False  # keep the base's own top (an application's 1000-class classifier)
    base_options: dict[str, bool | int | float | str | None] = {}  # more application arguments, e.g. {alpha: 0.35}
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
    def _fine_tune_needs_end_to_end(cls, value: Any, info: pydantic.ValidationInfo) -> Any:
        if value is not None and info.data.get("mode") == "features":
            raise ValueError("null in features mode (the base is not trained there); set mode: end_to_end to fine-tune")
        return value


ModelConfig = Annotated[MLPModel | ConvnetModel | PretrainedModel, Field(discriminator="architecture")]
