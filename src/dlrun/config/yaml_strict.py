"""A strict YAML reader for configs.

Built on `yaml.SafeLoader` (never the unsafe loader) with three deliberate changes:

- a key repeated in one mapping is an error (PyYAML silently keeps the last one);
- numbers follow YAML 1.2: `1e-3` and `1E5` are floats (YAML 1.1 reads them as strings);
- booleans follow YAML 1.2: only `true`/`false` (any case) are booleans; `yes`, `no`, `on`, `off`
  stay strings, so `shuffle: no` is rejected by the schema instead of silently meaning false.
"""

from __future__ import annotations

import re

import yaml

from dlrun import errors


class StrictLoader(yaml.SafeLoader):
    """SafeLoader with duplicate-key detection and YAML 1.2 floats and booleans."""


def _without_resolver(resolvers: dict, tag: str) -> dict:
    return {first: [(t, regexp) for t, regexp in entries if t != tag] for first, entries in resolvers.items()}


StrictLoader.yaml_implicit_resolvers = _without_resolver(
    _without_resolver(StrictLoader.yaml_implicit_resolvers, "tag:yaml.org,2002:bool"), "tag:yaml.org,2002:float"
)
StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, f"a {type(key).__name__} cannot be a key; expected a plain key such as `epochs`",
                key_node.start_mark,
            ) from None
        if key in seen:
            first = seen[key]
            raise yaml.constructor.ConstructorError(
                f"duplicate key {key!r} (first defined on line {first.line + 1})",
                first,
                f"found {key!r} again",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark
    return loader.construct_mapping(node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _describe(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    if context and context.startswith("duplicate key"):
        problem = context
    elif "could not determine a constructor for the tag" in problem:
        tag = problem.replace("could not determine a constructor for the tag", "").strip()
        problem = f"tag {tag} is not allowed (configs are plain YAML data)"
    elif context:
        context_mark = getattr(error, "context_mark", None)
        started = f" started on line {context_mark.line + 1}" if context_mark is not None else ""
        problem = f"{context}{started}, {problem}"
    return f"{where}{problem}"


def loads(text: str, source: str = "<string>"):
    """Parse YAML text with the strict rules; raise `ConfigError` naming the line on bad input."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader derives from SafeLoader
    except yaml.YAMLError as error:
        raise errors.ConfigError(f"YAML error at {_describe(error)}", source=source) from None


def dumps(data) -> str:
    """Dump plain data as block-style YAML, keys in their given order."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, allow_unicode=True)
