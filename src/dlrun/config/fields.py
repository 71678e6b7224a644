"""The schema's building blocks: strict sections and the value types keys share (`dlrun.config.schema`)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

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
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
    "elu",
    "selu",
    "gelu",
    "swish",
    "silu",
    "softplus",
    "leaky_relu",
    "linear",
]
Initializer = Literal[
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "random_normal",
    "random_uniform",
    "truncated_normal",
    "orthogonal",
    "zeros",
    "ones",
]
RUN_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class Section(pydantic.BaseModel):
    """A strict config section: unknown keys are errors, defaults are validated too."""

    model_config = pydantic.ConfigDict(extra="forbid", validate_default=True)


def name_shorthand(value: Any) -> Any:
    """`optimizer: adam` means `optimizer: {name: adam}`."""
    return {"name": value} if isinstance(value, str) else value
