"""`--set key.path=value` overrides: values are parsed as YAML, paths create missing mappings."""

from __future__ import annotations

import copy
from typing import Any

from dlrun import errors
from dlrun.config import yaml_strict


def parse(item: str) -> tuple[list[str | int], object]:
    """Split `a.b.0.c=value` into its path parts and its YAML-parsed value."""
    key, separator, raw_value = item.partition("=")
    parts = key.strip().split(".")
    if not separator or not key.strip() or any(not part for part in parts):
        raise errors.ConfigError(
            f"--set {item!r}: received no KEY=VALUE; expected a dotted key path, '=', a YAML value (for example --set train.epochs=3)"
        )
    try:
        value = yaml_strict.loads(raw_value, source=f"--set {item!r}")
    except errors.ConfigError as error:
        raise errors.ConfigError(error.problems, source=f"--set {item!r}") from None
    # an index is ASCII digits: str.isdigit is also true of "¹", which int() refuses (a key, then)
    return [int(part) if part.isascii() and part.isdigit() else part for part in parts], value


KeyPath = list[str | int]  # keys and list indices, outermost first, as `parse` returns them


def apply(data: dict, items: list[str] | tuple[str, ...]) -> dict:
    """Return a copy of `data` with every `--set` item applied in order."""
    data = copy.deepcopy(data)
    for item in items:
        parts, value = parse(item)
        node: dict | list = data
        for depth, part in enumerate(parts[:-1]):
            node = _child(node, part, parts[: depth + 1], item)
        _assign(node, parts[-1], value, parts, item)
    return data


def _child(node: Any, part: str | int, path: KeyPath, item: str) -> dict | list:
    if isinstance(node, dict):
        if node.get(part) is None:
            node[part] = {}
        child = node[part]
    elif isinstance(node, list) and isinstance(part, int) and part < len(node):
        child = node[part]
    else:
        raise _not_a_container(node, path, item)
    if not isinstance(child, (dict, list)):
        raise _not_a_container(child, path, item)
    return child


def _assign(node: Any, part: str | int, value: Any, path: KeyPath, item: str) -> None:
    if isinstance(node, dict):
        node[part] = value
    elif isinstance(node, list) and isinstance(part, int) and part < len(node):
        node[part] = value
    else:
        raise _not_a_container(node, path, item)


def _not_a_container(node: Any, path: KeyPath, item: str) -> errors.ConfigError:
    where = ".".join(str(part) for part in path)
    return errors.ConfigError(
        f"--set {item!r}: {where}: received {yaml_strict.preview(node)} at that path; "
        "expected a mapping (or a list and an index within it) to set a key in"
    )
