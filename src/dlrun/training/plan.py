"""A training plan: the model to fit, the data to fit it on, its phases, and the model a run saves.

Most architectures train one model on the loaded data in one phase. Transfer learning differs: in
features mode the head trains on cached base outputs while the saved model is base + head, and
fine-tuning adds a second phase with part of the base unfrozen and a lower learning rate.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable


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

    def __post_init__(self):
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


def single(model, data, config) -> Plan:
    """The usual plan: fit `model` on `data` for `train.epochs` with `compile.optimizer`."""
    return Plan(model=model, data=data, phases=[Phase("train", config.train.epochs, config.compile.optimizer)])
