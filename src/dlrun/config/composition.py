"""Config composition: `extends:` chains of files, `--set` on top, and where every value came from.

A config file may name one base file or a list of them (`extends: boston.yaml`, `extends: [base.yaml,
small.yaml]`), relative to the file that names them. The bases are applied in order, then the file
itself: mappings merge key by key, every other value (lists included) is replaced whole. Bases may
extend further bases, to any depth; a cycle is an error naming the files in it. Every file is read
with the strict YAML reader (`yaml_strict`), and every problem names the file it is in.

`Composed.origins` maps each value's key path (a tuple of keys and list indices) to the file (or
`--set KEY=VALUE`, or `--backend`) that set it; `origin` finds the source of any path of the resolved
config, `default` for a value no file set. Imports nothing heavy.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dlrun import errors
from dlrun.config import overrides, schema, yaml_strict

KEY = "extends"
DEFAULT = "default"  # the source of a value no file or option set
# Keys whose value may be a bare name (schema.py's shorthands): a base's `data: digits` under a file's
# `data: {validation_split: 0.3}` is first spelled out as `data: {name: digits}`, so the two merge.
SHORTHANDS = {("data",): "name", ("model",): "architecture", ("compile", "optimizer"): "name"}


@dataclasses.dataclass
class Composed:
    """A config's plain data with every base applied, and the source of each value."""

    data: dict
    origins: dict[tuple, str]  # key path of each value (not of the mappings holding values) -> its source
    files: list[str]  # every file read, the named one first


def compose(path: str | Path) -> Composed:
    """Read the config at `path` and every file it extends (see the module docstring)."""
    return _compose(Path(path), chain=(), extended_by=None)


def override(composed: Composed, set_items: list[str] | tuple[str, ...], backend: str | None = None) -> Composed:
    """`composed` with the `--set` items applied in order, then `--backend`; each records itself as the source."""
    data, origins = composed.data, dict(composed.origins)
    for item in set_items:
        parts, value = overrides.parse(item)
        data = overrides.apply(data, [item])
        _record(origins, tuple(parts), value, f"--set {item}")
    if backend is not None:
        data = {**data, "backend": backend}
        _record(origins, ("backend",), backend, "--backend")
    return Composed(data, origins, composed.files)


def origin(origins: dict[tuple, str], path: tuple) -> str:
    """The source of the value at `path`, or of the value above it that the schema spelled out (a
    scalar read as a mapping); `default` when none of them was set."""
    for length in range(len(path), 0, -1):
        found = origins.get(tuple(path[:length]))
        if found is not None:
            return found
    return DEFAULT


def leaves(data: Any, prefix: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """(key path, value) of every value in `data` that is not a non-empty mapping or list."""
    if isinstance(data, dict) and data:
        for key, value in data.items():
            yield from leaves(value, (*prefix, key))
    elif isinstance(data, list) and data:
        for index, value in enumerate(data):
            yield from leaves(value, (*prefix, index))
    elif prefix:
        yield prefix, data


def annotate(problems: list[str], origins: dict[tuple, str], source: str | None) -> list[str]:
    """Each `key.path: ...` problem with ` (from FILE)` when its value came from another file than `source`."""
    annotated = []
    for problem in problems:
        match = re.match(r"([^\s:]+): ", problem)
        found = DEFAULT
        if match and match.group(1) != "top":
            # an index is ASCII digits: str.isdigit is also true of "¹", which int() refuses
            parts = match.group(1).split(".")
            found = origin(origins, tuple(int(part) if part.isascii() and part.isdigit() else part for part in parts))
        annotated.append(problem if found in (DEFAULT, source) else f"{problem} (from {found})")
    return annotated


# --- reading a chain of files -----------------------------------------------------------------------


def _compose(path: Path, chain: tuple, extended_by: str | None) -> Composed:
    label = os.path.normpath(path) if extended_by else str(path)  # the named file as the user wrote it
    data = _read(path, label, extended_by)
    real = os.path.realpath(path)
    chain = (*chain, (real, label))
    present = KEY in data
    bases = _bases(data.pop(KEY, None), label, present)
    merged: dict = {}
    origins: dict[tuple, str] = {}
    files = [label]
    for key_path, base in bases:
        target = path.parent / base
        if os.path.realpath(target) in [seen for seen, _ in chain]:
            start = [seen for seen, _ in chain].index(os.path.realpath(target))
            cycle = [shown for _, shown in chain] + [os.path.normpath(target)]
            raise errors.ConfigError(
                f"{key_path}: received {base!r}, which makes a cycle ({' -> '.join(cycle[start:])}); "
                "expected bases that do not extend the files extending them",
                source=label,
            )
        if not target.exists():
            raise errors.ConfigError(
                f"{key_path}: received {base!r}, but there is no such file ({os.path.normpath(target)}); "
                "expected a config file, its path relative to this file",
                source=label,
            )
        found = _compose(target, chain, extended_by=label)
        merged, origins = _merge(merged, origins, found.data, found.origins)
        files += [file for file in found.files if file not in files]
    merged, origins = _merge(merged, origins, data, _sourced(data, (), label))
    return Composed(merged, origins, files)


def _read(path: Path, label: str, extended_by: str | None) -> dict:
    """One file's data, checked to be a mapping; errors name the file (and the file extending it)."""
    by = f" (extended by {extended_by})" if extended_by else ""
    if not path.is_file():
        problem = "is a directory" if path.is_dir() else "no such file"
        raise errors.ConfigError(f"{label}: {problem}{by}; expected a YAML config file", source=None)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise errors.ConfigError(f"{label}: cannot be read ({error}){by}", source=None) from None
    data = yaml_strict.loads(text, source=label)
    if data is None:
        raise errors.ConfigError(f"the file is empty{by}; expected a mapping with at least `data:` and `model:`", source=label)
    if not isinstance(data, dict):
        raise errors.ConfigError(
            f"top level: received {yaml_strict.preview(data)}{by}; expected a mapping of sections "
            f"({', '.join(schema.Config.model_fields)})",
            source=label,
        )
    return data


def _bases(value: Any, label: str, present: bool) -> list[tuple[str, str]]:
    """(key path, file name) of each base `extends` names; ConfigError naming the file for a wrong type."""
    if not present:
        return []
    expected = "a file name or a list of file names, relative to this file (extends: base.yaml)"
    if isinstance(value, str) and value.strip():
        return [(KEY, value)]
    if isinstance(value, list):
        for index, item in enumerate(value):
            if not (isinstance(item, str) and item.strip()):
                raise errors.ConfigError(f"{KEY}.{index}: received {yaml_strict.preview(item)}; expected {expected}", source=label)
        return [(f"{KEY}.{index}", item) for index, item in enumerate(value)]
    shown = "a mapping" if isinstance(value, dict) else yaml_strict.preview(value)
    raise errors.ConfigError(f"{KEY}: received {shown}; expected {expected}", source=label)


def _merge(base: dict, base_origins: dict, overlay: dict, overlay_origins: dict) -> tuple[dict, dict]:
    """`overlay` merged into `base` (mappings key by key, everything else replaced), with the origins."""
    merged, origins = copy.deepcopy(base), dict(base_origins)

    def merge_into(target: dict, layer: dict, prefix: tuple) -> None:
        for key, value in layer.items():
            path = (*prefix, key)
            current = target.get(key)
            if isinstance(value, dict) and isinstance(current, str) and path in SHORTHANDS:
                current = target[key] = {SHORTHANDS[path]: current}  # spelled out, so the two merge
            if isinstance(value, dict) and isinstance(current, dict):
                merge_into(current, value, path)
                continue
            _forget(origins, path)
            target[key] = copy.deepcopy(value)
            origins.update({key_path: found for key_path, found in overlay_origins.items() if key_path[: len(path)] == path})

    merge_into(merged, overlay, ())
    return merged, origins


def _record(origins: dict, path: tuple, value: Any, source: str) -> None:
    """`value` now stands at `path`, set by `source`: what was recorded under that path is forgotten."""
    _forget(origins, path)
    origins.update(_sourced(value, path, source) or {path: source})


def _sourced(value: Any, prefix: tuple, source: str) -> dict[tuple, str]:
    """{key path: `source`} for each value in `value` (at `prefix`), empty mappings aside. A bare name where a
    shorthand is allowed (`data: digits`, a callback's name) sets only the key it stands for (`data.name`):
    the other keys it brings keep their defaults."""
    found = {}
    for path, leaf in leaves(value, prefix):
        if leaf == {}:
            continue
        if isinstance(leaf, str) and (path in SHORTHANDS or (path[:2] == ("train", "callbacks") and len(path) == 3)):
            path = (*path, SHORTHANDS.get(path, "name"))
        found[path] = source
    return found


def _forget(origins: dict, path: tuple) -> None:
    for key_path in [key_path for key_path in origins if key_path[: len(path)] == path]:
        del origins[key_path]


def describe(resolved: dict, origins: dict[tuple, str]) -> str:
    """Every value of the resolved config with its source, in aligned columns (`dlrun config show --origin`)."""
    rows = [("key", "value", "source")]
    rows += [(".".join(map(str, path)), yaml_strict.preview(value, limit=200), origin(origins, path)) for path, value in leaves(resolved)]
    widths = [max(len(row[column]) for row in rows) for column in (0, 1)]
    return "".join(f"{key:<{widths[0]}}  {value:<{widths[1]}}  {source}\n" for key, value, source in rows)
