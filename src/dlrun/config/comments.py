"""The `# comment` written beside each config key in the schema's modules, read from the source.

The schema (schema.py, datasets.py, architectures.py, search.py) documents every default with a short trailing comment (the nanoGPT style: all defaults and
their reasons visible in one place). The JSON Schema, docs/config.md and `dlrun init` show those
comments as the keys' descriptions, so they are written once, where the default is. A plug-in's section
(`dlrun.plugins`) is read the same way from the module that defines it.
"""

from __future__ import annotations

import ast
import functools
import inspect
import io
import sys
import tokenize


@functools.lru_cache(maxsize=1)
def field_comments() -> dict[str, dict[str, str]]:
    """`{class name: {key: comment}}` for every annotated key of every schema class that has one."""
    from dlrun.config import architectures, datasets, schema, search

    found: dict[str, dict[str, str]] = {}
    for module in (schema, datasets, architectures, search):
        found.update(_comments_in(inspect.getsource(module)))
    return found


def is_built_in(model: type) -> bool:
    """Whether `model` is one of dlrun's own schema classes (not a plug-in's section)."""
    return model.__module__ in ("dlrun.config.schema", "dlrun.config.datasets", "dlrun.config.architectures")


def for_model(model: type) -> dict[str, str]:
    """`{key: comment}` for the keys of `model`, a schema class or a plug-in's section."""
    if is_built_in(model):
        return field_comments().get(model.__name__, {})
    return _module_comments(model.__module__).get(model.__name__, {})


@functools.cache
def _module_comments(module_name: str) -> dict[str, dict[str, str]]:
    try:
        return _comments_in(inspect.getsource(sys.modules[module_name]))
    except (KeyError, OSError, TypeError, SyntaxError):  # no source to read (a compiled or generated module)
        return {}


def _comments_in(source: str) -> dict[str, dict[str, str]]:
    comments = {
        token.start[0]: token.string.lstrip("#").strip()
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    }
    found: dict[str, dict[str, str]] = {}
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ClassDef):
            continue
        for statement in node.body:
            if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                # the comment on the statement's last line (a key's value may span several lines)
                line = next(
                    (number for number in range(statement.end_lineno or statement.lineno, statement.lineno - 1, -1) if number in comments),
                    None,
                )
                if line is not None:
                    found.setdefault(node.name, {})[statement.target.id] = comments[line]
    return found
