"""The `search:` section: what `dlrun sweep` searches over, and how (Optuna's samplers and pruners).

`dlrun train` and `dlrun kfold` ignore it; a sweep's trial run folders store their config without it.
Each `space` key is a `--set` key path; its values are `choice` (any YAML values), `int` or `float`
ranges (`[LOW, HIGH]`, with `log` and `step`). Whether each value suits the config is checked by
`dlrun sweep` (`dlrun.trials.search.check_space`), which applies them one by one before anything trains.
`repeats: reuse`: a trial that draws the values of a finished trial takes that trial's result instead of
training the same config again (`dlrun.trials.sweep_study`; what counts as a repeat: docs/search.md).
"""

from __future__ import annotations

import builtins
import typing
from typing import Annotated, Any, Literal

import pydantic
from pydantic import Field

from dlrun.config import fields

DISTRIBUTIONS = ("choice", "int", "float")
Sampler = Literal["tpe", "random", "grid", "cmaes"]
Pruner = Literal["median", "asha", "hyperband", "none"]
SAMPLERS: tuple[str, ...] = typing.get_args(Sampler)
PRUNERS: tuple[str, ...] = typing.get_args(Pruner)
DEFAULT_TRIALS = 20  # when neither `trials` nor a grid says how many
DEFAULT_REDUCTION_FACTOR = 4  # asha and hyperband keep the best 1/N of the trials at each rung (BENCHMARKS.md: search quality)


class Dimension(fields.Section):
    """One key's values: exactly one of `choice`, `int` or `float`."""

    log: fields.Flag = False  # int/float: draw uniformly on a log scale (LOW must be > 0)
    step: Annotated[builtins.float, Field(gt=0, allow_inf_nan=False)] | None = None  # int/float: values LOW, LOW+step, ...
    choice: list | None = None  # any YAML values, e.g. [16, 32, 64] or [[64], [64, 64]]
    int: tuple[builtins.int, builtins.int] | None = None  # [LOW, HIGH], both included
    float: tuple[builtins.float, builtins.float] | None = None  # [LOW, HIGH]

    @pydantic.model_validator(mode="before")
    @classmethod
    def _exactly_one(cls, value: Any) -> Any:
        if isinstance(value, dict) and set(value) <= set(cls.model_fields):
            given = [name for name in DISTRIBUTIONS if name in value]
            if len(given) != 1:
                raise ValueError(f"exactly one of {', '.join(DISTRIBUTIONS)} (received {' and '.join(given) or 'none of them'})")
        return value

    @pydantic.field_validator("choice")
    @classmethod
    def _some_choices(cls, value: Any) -> Any:
        if value is not None and not value:
            raise ValueError("at least one value to choose from")
        return value

    @pydantic.field_validator("int", "float")
    @classmethod
    def _ordered(cls, value: Any, info: pydantic.ValidationInfo) -> Any:
        if value is None:
            return value
        low, high = value
        if low > high:
            raise ValueError("[LOW, HIGH] with LOW <= HIGH")
        if info.data.get("log") and low <= 0:
            raise ValueError("LOW > 0 with log: true")
        if info.data.get("log") and info.data.get("step") is not None:
            raise ValueError("log or step, not both (Optuna draws a stepped range uniformly)")
        if info.field_name == "int" and info.data.get("step") is not None and info.data["step"] != round(info.data["step"]):
            raise ValueError(f"a whole-number step for an int range (received step {info.data['step']})")
        return value

    @pydantic.model_serializer(mode="wrap")
    def _only_what_is_set(self, handler: pydantic.SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None and (key != "log" or value)}

    def kind(self) -> str:
        """`choice`, `int` or `float`."""
        return next(name for name in DISTRIBUTIONS if getattr(self, name) is not None)

    def bounds(self) -> list:
        """The values to check against the schema: every choice, or both ends of a range."""
        return list(self.choice) if self.choice is not None else list(getattr(self, self.kind()))


class SearchConfig(fields.Section):
    """What `dlrun sweep` searches (ignored by `dlrun train` and `dlrun kfold`)."""

    metric: str = "val_loss"  # the objective: its best value over a trial's epochs; a name the run monitors
    direction: Literal["auto", "minimize", "maximize"] = "auto"  # auto: minimize losses and errors, maximize the rest
    trials: fields.PositiveInt | None = None  # how many trials in all; default: a grid's size, else 20
    sampler: Sampler = "tpe"  # tpe | random | grid (choice keys only) | cmaes (int/float keys only)
    pruner: Pruner = "median"  # stops hopeless trials early: median | asha | hyperband | none
    startup_trials: fields.NonNegativeInt = 5  # median: trials that finish before any is pruned
    warmup_epochs: fields.NonNegativeInt = 1  # epochs every trial trains before the pruner judges it (never pruned before)
    reduction_factor: Annotated[builtins.int, Field(ge=2)] = DEFAULT_REDUCTION_FACTOR  # asha, hyperband: keep the best 1/N at each rung
    repeats: Literal["reuse", "train"] = "reuse"  # a trial that draws a finished trial's values: reuse its result, or train it again
    seed: Annotated[builtins.int, Field(ge=0, le=2**32 - 1)] | None = None  # the sampler's seed; default: the config's seed
    kfold: Annotated[builtins.int, Field(ge=2)] | None = None  # K: score each trial by the mean over K folds (as `dlrun kfold`)
    seeds: fields.PositiveInt = 1  # N: train each trial point N times (seeds seed..seed+N-1), scored by the mean
    space: dict[str, Dimension] = {}  # KEY.PATH: {choice: [...]} | {int: [LOW, HIGH]} | {float: [LOW, HIGH], log: true}

    def grid_size(self) -> builtins.int | None:
        """The number of points when every key is a `choice` (a grid), else None."""
        if not self.space or any(dimension.choice is None for dimension in self.space.values()):
            return None
        size = 1
        for dimension in self.space.values():
            size *= len(dimension.choice or ())  # every key is a choice (checked above)
        return size


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of `metric` is better (losses and errors)."""
    base = metric.removeprefix("val_")
    return base == "loss" or base.endswith("loss") or base in {"mae", "mse", "rmse", "mape"} or "error" in base


def resolve(search: SearchConfig, seed: builtins.int) -> SearchConfig:
    """`search` with `direction: auto` and `seed: null` made explicit (what `dlrun config show` prints)."""
    direction = search.direction
    if direction == "auto":
        direction = "minimize" if lower_is_better(search.metric) else "maximize"
    return search.model_copy(update={"direction": direction, "seed": seed if search.seed is None else search.seed})
