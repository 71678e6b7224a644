"""Helpers shared by the registries (plain dicts keyed by lower-case name)."""

from __future__ import annotations

import difflib
import inspect
from typing import Any, TypeVar

from dlrun import errors

T = TypeVar("T")


def describe(entry: Any) -> str:
    """The one-line description of a registry entry: a string, or the first docstring line."""
    if isinstance(entry, str):
        return entry
    docstring = inspect.getdoc(entry)
    return docstring.splitlines()[0] if docstring else ""


def lookup(registry: dict[str, T], identifier: str, kind: str, option: str | None = None) -> T:
    """`registry[identifier]`, or `ConfigError("Could not interpret <kind> identifier: ...")` (a ValueError,
    as Keras' own look-ups raise). `option` names the key it came from, or the command-line option (`--format`),
    which makes it a `UsageError`."""
    try:
        return registry[identifier]
    except KeyError:
        close = difflib.get_close_matches(str(identifier), list(registry), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        message = f"Could not interpret {kind} identifier: {identifier!r}; expected one of {', '.join(registry)}{hint}"
        error = errors.UsageError if option and option.startswith("-") else errors.ConfigError
        raise error(f"{option}: {message}" if option else message) from None
