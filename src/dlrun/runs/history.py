"""Training history as plain data: `history.json` is `{"epoch": [1, 2, ...], "loss": [...], ...}`.

Pure Python (no TensorFlow): plots, `dlrun visualize curves` and run listings read it directly.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from dlrun import atomic, errors
from dlrun.config import search as search_config

FILE_NAME = "history.json"
PHASE = "phase"  # the column naming each epoch's training phase, when a run has several


def empty() -> dict[str, list]:
    """A history with no epochs yet."""
    return {"epoch": []}


def append(history: dict[str, list], epoch: int, logs: dict, phase: str | None = None) -> None:
    """Add one epoch's logs; a key first seen late is padded with None for earlier epochs.

    `phase` (runs trained in several phases, e.g. frozen then fine_tune) fills a `phase` column.
    """
    count = len(history["epoch"])
    history["epoch"].append(epoch)
    if phase is not None:
        history.setdefault(PHASE, [None] * count).append(phase)
    for key, value in logs.items():
        column = history.setdefault(key, [None] * count)
        column.append(_number(value))
    for key, column in history.items():
        if len(column) < count + 1:
            column.append(None)


def truncate(history: dict[str, list], epochs: int) -> dict[str, list]:
    """The first `epochs` epochs of a history (a resumed run continues from there)."""
    return {key: list(values[:epochs]) for key, values in history.items()}


def save(path: str | Path, history: dict[str, list], durable: bool = True) -> None:
    """Write the history atomically, one key per line (non-finite values are written as null)."""
    atomic.write_text(path, Text()(history), durable=durable)


class Saver:
    """Writes a fit's history.json after every epoch, as `save(durable=False)` would, quickly: each value is
    encoded once (`Text`), and the file is rewritten by `atomic.swap_in` through a spare file beside it,
    `.history.json.previous.tmp` (holding the epoch before; a temp file's name, so what a killed run leaves
    is removed on resume and by `dlrun runs clean`), which `close` removes at the fit's end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.spare = path.with_name(f".{path.name}.previous.tmp")
        self.text = Text()

    def __call__(self, history: dict[str, list]) -> None:
        data = self.text(history).encode("utf-8")
        if not (self.path.exists() and atomic.swap_in(self.path, data, self.spare)):
            atomic.write_bytes(self.path, data, durable=False)

    def close(self) -> None:
        self.spare.unlink(missing_ok=True)


class Text:
    """history.json's text for a history that grows epoch by epoch (a fit's): each value is encoded once, as
    `json.dumps` of the whole list would encode it, not again at every later epoch."""

    def __init__(self) -> None:
        self._columns: dict[str, tuple[int, list[str]]] = {}  # key: (id of the list encoded, its values' texts)

    def __call__(self, history: dict[str, list]) -> str:
        lines = []
        for key, values in history.items():
            column, encoded = self._columns.get(key, (None, []))
            if column != id(values) or len(encoded) > len(values):  # another list (or a shorter one): start over
                encoded = []
            encoded.extend(json.dumps(value) for value in values[len(encoded) :])
            self._columns[key] = (id(values), encoded)
            lines.append(f"  {json.dumps(key)}: [{', '.join(encoded)}]")
        return "{\n" + ",\n".join(lines) + "\n}\n"


def load(path: str | Path) -> dict[str, list]:
    """Read a `history.json`; a `RunError` names it when it is missing, empty, not JSON or not a history."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise errors.RunError(f"{path}: missing; expected the history of the epochs the run completed") from None
    except (OSError, UnicodeDecodeError) as error:
        raise errors.RunError(f"{path}: unreadable ({error}); expected a JSON history") from None
    if not text.strip():
        raise errors.RunError(f"{path}: empty; {_EXPECTED}")
    try:
        data = json.loads(text)
    except ValueError as error:
        raise errors.RunError(f"{path}: not JSON ({error}); {_EXPECTED}") from None
    return check(data, path)


def load_if_present(path: str | Path) -> dict[str, list]:
    """`load`, or an empty history when the file does not exist (a run before its first epoch)."""
    return load(path) if Path(path).exists() else empty()


_EXPECTED = 'expected a JSON object {"epoch": [1, 2, ...], "loss": [...], ...} with one value per epoch in each list'


def check(data: Any, source: str | Path) -> dict[str, list]:
    """`data` when it is a history (lists of one number, or null, per epoch); else a `RunError` naming `source`."""
    if not isinstance(data, dict):
        raise errors.RunError(f"{source}: received a JSON {json_type(data)}; {_EXPECTED}")
    epochs = data.get("epoch")
    if not isinstance(epochs, list):
        raise errors.RunError(f"{source}: 'epoch' is {'missing' if epochs is None else 'a JSON ' + json_type(epochs)}; {_EXPECTED}")
    for key, values in data.items():
        if not isinstance(values, list):
            raise errors.RunError(f"{source}: {key!r} is a JSON {json_type(values)}; {_EXPECTED}")
        if len(values) != len(epochs):
            raise errors.RunError(f"{source}: {key!r} has {len(values)} value(s) for {len(epochs)} epochs; {_EXPECTED}")
        allowed = str if key == PHASE else (int, float)
        for value in values:
            if value is not None and (isinstance(value, bool) or not isinstance(value, allowed)):
                raise errors.RunError(f"{source}: {key!r} holds {json.dumps(value)[:40]}; {_EXPECTED}")
    return data


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type: object, array, string, number, boolean, null."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def metric_names(history: dict[str, list]) -> list[str]:
    """Base metric names, `loss` first: `val_accuracy` and `accuracy` give `accuracy` once."""
    names = [key.removeprefix("val_") for key in history if key not in ("epoch", PHASE)]
    names = list(dict.fromkeys(names))
    return sorted(names, key=lambda name: (name != "loss", names.index(name)))


lower_is_better = search_config.lower_is_better  # one rule for callbacks, reports and a search's direction


def best_epoch(history: dict[str, list], monitor: str = "val_loss") -> tuple[int, float] | None:
    """(epoch, value) where `monitor` was best, or None when it was never recorded."""
    values = [(epoch, value) for epoch, value in zip(history["epoch"], history.get(monitor, [])) if value is not None]
    if not values:
        return None
    choose = min if lower_is_better(monitor) else max
    return choose(values, key=lambda pair: pair[1])


def best_epochs(history: dict[str, list]) -> list[tuple[str, int, float]]:
    """(monitor, epoch, value) for every validation quantity recorded: `val_loss` first, then each metric's."""
    found = []
    for name in metric_names(history):
        best = best_epoch(history, f"val_{name}")
        if best is not None:
            found.append((f"val_{name}", *best))
    return found


def describe_best(history: dict[str, list]) -> str:
    """`best val_loss at epoch 26 (0.0419); best val_accuracy at epoch 18 (0.9900)`: each best epoch names the
    quantity it is best for, since the loss and a metric often peak at different epochs."""
    return "; ".join(f"best {monitor} at epoch {epoch} ({value:.4f})" for monitor, epoch, value in best_epochs(history))


def _number(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
