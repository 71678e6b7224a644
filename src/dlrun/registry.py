"""Helpers shared by the registries (plain dicts keyed by lower-case name)."""

from __future__ import annotations

import difflib
import inspect


def describe(entry) -> str:
    """The one-line description of a registry entry: a string, or the first docstring line."""
    if isinstance(entry, str):
        return entry
    docstring = inspect.getdoc(entry)
    return docstring.splitlines()[0] if docstring else ""


def lookup(registry: dict, identifier: str, kind: str):
    """`registry[identifier]`, or `ValueError("Could not interpret <kind> identifier: ...")`."""
    try:
        return registry[identifier]
    except KeyError:
        close = difflib.get_close_matches(str(identifier), list(registry), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"Could not interpret {kind} identifier: {identifier!r}; expected one of {', '.join(registry)}{hint}"
        ) from None
