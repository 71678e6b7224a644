"""A training plan: the model to fit, the data to fit it on, its phases, and the model a run saves.

Most architectures train one model on the loaded data in one phase. Transfer learning differs: in
features mode the head trains on cached base outputs while the saved model is base + head, and
fine-tuning adds a second phase with part of the base unfrozen and a lower learning rate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dlrun import backend, config as config_module, models
from dlrun.config import architectures
from dlrun.models import inputs as model_inputs, pretrained
from dlrun.training import evaluation, feature_cache, losses

if TYPE_CHECKING:
    from rich.console import Console

    from dlrun.config import schema
    from dlrun.data import dataset


@dataclasses.dataclass
class Phase:
    """One `model.fit` call: a name, its epochs, its optimizer, and what changes before it starts."""

    name: str
    epochs: int
    optimizer: Any  # a schema optimizer section
    prepare: Callable[[], str] | None = None  # e.g. unfreeze layers; returns a note for the console


@dataclasses.dataclass
class Plan:
    """What the trainer fits (`model` on `data`, phase by phase) and what it saves (`saved_model`)."""

    model: Any
    data: Any  # a dlrun.data.dataset.Dataset (possibly cached features instead of the loaded inputs)
    phases: list[Phase]
    saved_model: Any = None  # None: `model`
    feature_cache: Any = None  # features mode: the feature-cache entry (a Path) the data came from, recorded by the run

    def __post_init__(self) -> None:
        if self.saved_model is None:
            self.saved_model = self.model

    @property
    def total_epochs(self) -> int:
        return sum(phase.epochs for phase in self.phases)

    def epoch_ranges(self) -> list[tuple[Phase, int, int]]:
        """Each phase with its epoch range [start, end), counted across phases."""
        ranges, start = [], 0
        for phase in self.phases:
            ranges.append((phase, start, start + phase.epochs))
            start += phase.epochs
        return ranges


def single(model: Any, data: dataset.Dataset, config: schema.Config) -> Plan:
    """The usual plan: fit `model` on `data` for `train.epochs` with `compile.optimizer`."""
    return Plan(model=model, data=data, phases=[Phase("train", config.train.epochs, config.compile.optimizer)])


def plan(config: schema.Config, loaded_dataset: dataset.Dataset, console: Console) -> Plan:
    """The plan for `config` on `loaded_dataset`: usually one phase fitting the built model; a pretrained
    base adds cached features (features mode) or a fine-tuning phase."""
    planner = PLANNERS.get(config.model.architecture)
    if planner is not None:
        return planner(config, loaded_dataset, console)
    return single(models.build(config.model, loaded_dataset), loaded_dataset, config)


def _pretrained(config: schema.Config, loaded: dataset.Dataset, console: Console) -> Plan:
    """The trainer's plan: cached features and the head (features mode), or phases on the whole model."""
    keras = backend.import_keras()

    model_config = config.model
    if not isinstance(model_config, architectures.PretrainedModel):  # PLANNERS: only for pretrained
        raise ValueError(f"Received model.architecture {model_config.architecture!r}; expected pretrained")
    stem = model_inputs.stem(keras, loaded)
    built = pretrained.parts(model_config, stem, model_inputs.feature_shape(loaded), loaded.task, loaded.num_classes)
    if model_config.mode == "features":
        if any(feature_cache.is_augmentation(layer) for layer in stem[1:]):
            console.print(
                "features mode: the augmentation layers are not applied (the base runs once over the "
                "unaugmented images); use mode: end_to_end to train with augmentation",
                highlight=False,
                soft_wrap=True,
            )
        features, entry = feature_cache.features(config, loaded, built, console)
        phases = [Phase("head", config.train.epochs, config.compile.optimizer)]
        return Plan(model=built.head, data=features, phases=phases, saved_model=built.model, feature_cache=entry)
    fine_tune = model_config.fine_tune
    phases = [Phase("frozen" if fine_tune else "train", config.train.epochs, config.compile.optimizer)]
    if fine_tune is not None:
        chosen = pretrained.layers_to_unfreeze(built.base, fine_tune)
        optimizer = config.compile.optimizer.model_copy(update={"learning_rate": fine_tune.learning_rate})
        phases.append(Phase("fine_tune", fine_tune.epochs, optimizer, prepare=lambda: pretrained.unfreeze(built.base, chosen)))
    return Plan(model=built.model, data=loaded, phases=phases)


# Architectures whose training is more than one fit of the built model on the loaded data.
PLANNERS = {
    "pretrained": _pretrained,
}


class Compiler:
    """Compiles the trained model (and the saved one, when they differ) for a phase's optimizer."""

    def __init__(self, plan: Plan, config: schema.Config, task: str, steps_per_execution: int = 1) -> None:
        self.plan, self.config, self.task, self.steps_per_execution = plan, config, task, steps_per_execution
        self.loss = losses.resolve(config.compile.loss, task)
        self.metric_names = config_module.metric_names(config, task)

    def compile(self, phase: Phase) -> None:
        # The saved model is compiled too when it is not the trained one (features mode), so model.keras evaluates.
        for target in dict.fromkeys([self.plan.model, self.plan.saved_model]):
            steps = self.steps_per_execution if target is self.plan.model else 1
            evaluation.compile_model(target, self.config, self.task, optimizer_config=phase.optimizer, steps_per_execution=steps)
