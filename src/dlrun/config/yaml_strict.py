"""A strict YAML reader for configs.

Built on `yaml.SafeLoader` (never the unsafe loader) with three deliberate changes:

- a key repeated in one mapping is an error (PyYAML silently keeps the last one);
- numbers follow YAML 1.2: `1e-3` and `1E5` are floats (YAML 1.1 reads them as strings);
- booleans follow YAML 1.2: only `true`/`false` (any case) are booleans; `yes`, `no`, `on`, `off`
  stay strings, so `shuffle: no` is rejected by the schema instead of silently meaning false.

And two limits, so that a small file cannot make a huge or deep value (an "alias bomb" of nested
`&a`/`*a` references, or `[[[[...]]]]` 500 levels deep): a document may nest at most `MAX_DEPTH`
levels, counted through aliases, and expand to at most `MAX_VALUES` values once every alias is spelled
out. Both are checked on the composed nodes, before any Python value is built.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import IO, Any

import yaml

from dlrun import errors

MAX_DEPTH = 64  # a config nests a handful of levels; this is far beyond any real one
MAX_VALUES = 100_000  # values (scalars, lists, mappings) once every alias is expanded


class StrictLoader(yaml.SafeLoader):
    """SafeLoader with duplicate-key detection, YAML 1.2 floats and booleans, and the two limits."""

    def __init__(self, stream: str | bytes | IO[str]) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, _TOO_DEEP, self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> yaml.Node | None:
        node = super().compose_document()
        _check_expansion(node)
        return node


_TOO_DEEP = f"the value is nested more than {MAX_DEPTH} levels deep; expected a config of plain sections"


def _check_expansion(root: yaml.Node) -> None:
    """Count the values `root` holds with every alias expanded, without expanding any (each node once)."""
    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (values, levels) below and including it
    open_nodes: set[int] = set()

    def measure(node: yaml.Node, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in open_nodes:
            raise yaml.composer.ComposerError(
                None,
                None,
                "an alias refers to itself (the value would be infinite); expected plain data",
                node.start_mark,
            )
        if key in measured:
            values, levels = measured[key]
        else:
            if depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, _TOO_DEEP, node.start_mark)
            open_nodes.add(key)
            children = node.value if isinstance(node, yaml.SequenceNode) else []
            if isinstance(node, yaml.MappingNode):
                children = [part for pair in node.value for part in pair]
            values, levels = 1, 1
            for child in children:
                child_values, child_levels = measure(child, depth + 1)
                values, levels = values + child_values, max(levels, child_levels + 1)
                if values > MAX_VALUES:
                    break
            open_nodes.discard(key)
            measured[key] = values, levels
        if values > MAX_VALUES:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"aliases expand to more than {MAX_VALUES} values; expected a config that spells out its "
                "values (an alias may repeat a small section, not multiply one)",
                node.start_mark,
            )
        if depth + levels - 1 > MAX_DEPTH:
            raise yaml.composer.ComposerError(None, None, _TOO_DEEP, node.start_mark)
        return values, levels

    if root is not None:
        measure(root, 1)


def _without_resolver(resolvers: dict, tag: str) -> dict:
    return {first: [(t, regexp) for t, regexp in entries if t != tag] for first, entries in resolvers.items()}


StrictLoader.yaml_implicit_resolvers = _without_resolver(
    _without_resolver(StrictLoader.yaml_implicit_resolvers, "tag:yaml.org,2002:bool"), "tag:yaml.org,2002:float"
)
StrictLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
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
                None,
                None,
                f"a {type(key).__name__} cannot be a key; expected a plain key such as `epochs`",
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


def loads(text: str, source: str = "<string>") -> Any:
    """Parse YAML text with the strict rules; raise `ConfigError` naming the line on bad input."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader derives from SafeLoader
    except yaml.YAMLError as error:
        raise errors.ConfigError(f"YAML error at {_describe(error)}", source=source) from None


def preview(value: Any, limit: int = 60) -> str:
    """`value` as short JSON for a message: rendered piece by piece and cut at `limit` characters, so a
    huge value (a list repeated through aliases) is never rendered whole."""
    pieces: list[str] = []
    length = 0
    for piece in _pieces(value, limit, 0):
        pieces.append(piece)
        length += len(piece)
        if length > limit:
            break
    text = "".join(pieces)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _pieces(value: Any, limit: int, depth: int) -> Iterator[str]:
    if depth > MAX_DEPTH:
        yield "..."
    elif isinstance(value, dict):
        yield "{"
        for index, (key, item) in enumerate(value.items()):
            yield (", " if index else "") + _scalar(key if isinstance(key, str) else str(key), limit) + ": "
            yield from _pieces(item, limit, depth + 1)
        yield "}"
    elif isinstance(value, (list, tuple)):
        yield "["
        for index, item in enumerate(value):
            if index:
                yield ", "
            yield from _pieces(item, limit, depth + 1)
        yield "]"
    else:
        yield _scalar(value, limit)


def _scalar(value: Any, limit: int) -> str:
    if isinstance(value, str):
        return json.dumps(value[: limit + 1])
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)[: limit + 1]


def dumps(data: Any) -> str:
    """Dump plain data as block-style YAML, keys in their given order."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, allow_unicode=True)
