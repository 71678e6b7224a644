"""Loading a config: read the YAML strictly (with the files it extends), apply `--set` overrides, validate,
explain every problem.

Imports nothing heavy: validating a config never imports TensorFlow, Keras or matplotlib.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pydantic
import pydantic_core

from dlrun import errors
from dlrun.config import composition, schema, yaml_strict

AUTO_METRICS = {"binary": ["accuracy"], "multiclass": ["accuracy"], "regression": ["mae"]}


def load(path: str | Path, set_items: list[str] | tuple[str, ...] = (), backend: str | None = None) -> schema.Config:
    """Read the config at `path` with every file it `extends:`, apply the `--set` items, validate; raise
    `ConfigError` listing every problem, each naming the file its value came from.

    `backend` (the `--backend` option) replaces the config's `backend` after the `--set` items.
    """
    return load_composed(path, set_items, backend)[0]


def load_composed(
    path: str | Path, set_items: list[str] | tuple[str, ...] = (), backend: str | None = None
) -> tuple[schema.Config, composition.Composed]:
    """`load`, and the composed plain data with the source of every value (`dlrun config show --origin`)."""
    composed = composition.override(composition.compose(path), set_items, backend)
    return validate(composed.data, source=str(path), origins=composed), composed


def validate(data: dict, source: str | None = None, origins: composition.Composed | None = None) -> schema.Config:
    """Validate plain data against the schema and the cross-section rules (`origins`: where each value came
    from, to name in each problem the file it is in, when that is not `source`)."""
    model = _with_plugins(data)
    try:
        config = model.model_validate(data)
    except pydantic.ValidationError as error:
        raise errors.ConfigError(_located(_explain_all(error.errors(), data, model), origins), source=source) from None
    problems = consistency_problems(config)
    if problems:
        raise errors.ConfigError(_located(problems, origins), source=source)
    return config


def _located(problems: list[str], origins: composition.Composed | None) -> list[str]:
    return composition.annotate(problems, origins.origins, origins.files[0]) if origins is not None else problems


# (config section, the key that names it, plug-in kind, the built-in union)
_PLUGGABLE = (("data", "name", "datasets", schema.DataConfig), ("model", "architecture", "architectures", schema.ModelConfig))


def _with_plugins(data: object) -> type[schema.Config]:
    """The Config model for `data`: with the section of each plug-in it names (entry points are read only
    when a dataset or architecture is not built in)."""
    from dlrun import plugins

    sections: dict[str, tuple[type, ...]] = {}
    for key, name_key, kind, union in _PLUGGABLE:
        value = data.get(key) if isinstance(data, dict) else None
        name = value.get(name_key) if isinstance(value, dict) else value
        if isinstance(name, str) and name not in schema.discriminator_tags(union) and name in plugins.available(kind):
            sections[kind] = (plugins.load(kind, name).section,)
    return schema.with_plugins(**sections)


def _plugin_names(loc: tuple) -> list[str]:
    """The plug-ins that may go where a `data` or `model` section stands (none elsewhere)."""
    from dlrun import plugins

    kinds = {(key,): kind for key, _, kind, _ in _PLUGGABLE}
    return list(plugins.available(kinds[loc])) if loc in kinds else []


def to_data(config: schema.Config) -> dict:
    """The fully resolved config as plain data (what `config show` prints and run folders store)."""
    data = config.model_dump(mode="json")
    if data.get("search") is None:
        data.pop("search", None)  # only a sweep's config has one
    return data


def to_yaml(config: schema.Config) -> str:
    """The fully resolved config as YAML; feeding it back to `load` gives the same config."""
    return yaml_strict.dumps(to_data(config))


def metric_names(config: schema.Config, task: str | None = None) -> list[str]:
    """The metrics a run computes: the configured list, or the task's defaults for `auto`."""
    if config.compile.metrics != "auto":
        return list(config.compile.metrics)
    task = task or getattr(config.data, "task", None)
    return AUTO_METRICS.get(task or "", [])


def monitor_names(config: schema.Config, task: str | None = None, validating: bool | None = None) -> list[str]:
    """Every name a callback may monitor: loss and metrics, and their `val_` forms when validating
    (`validating`: whether the fits have validation data; default: whether the config holds some out)."""
    names = ["loss", *metric_names(config, task)]
    if validating is None:
        validating = getattr(config.data, "validation_split", 0) > 0 or task_has_validation(config)
    if validating:
        names += [f"val_{name}" for name in names]
    return names


def task_has_validation(config: schema.Config) -> bool:
    """Whether the dataset brings its own validation split (datasets that do declare `has_validation`)."""
    return bool(getattr(config.data, "has_validation", False))


def consistency_problems(config: schema.Config, task: str | None = None, validating: bool | None = None) -> list[str]:
    """Rules across sections that one key's type cannot express, as `path: received; expected` lines
    (`validating`: as for `monitor_names`)."""
    from dlrun import backend

    problems = backend.problems(config)
    task = task or getattr(config.data, "task", None)
    if task is None:
        return problems
    allowed = monitor_names(config, task, validating)
    for index, callback in enumerate(config.train.callbacks):
        monitor = getattr(callback, "monitor", None)
        if monitor is not None and monitor not in allowed:
            problems.append(
                f"train.callbacks.{index}.monitor: received {monitor!r}; expected a value this run "
                f"computes: {', '.join(allowed)}{_did_you_mean(monitor, allowed)}"
            )
    return problems


# --- turning pydantic's errors into `path: received ...; expected ...` lines ------------------------


def _explain_all(items: list[pydantic_core.ErrorDetails], data: dict, model: type[schema.Config] = schema.Config) -> list[str]:
    """One line per problem; a value rejected by every member of a union is one line, not one per member."""
    explained = [(*_explain(item, data, model), _through_union(item["loc"], data)) for item in items]
    deeper = {shown for shown, *_ in explained}
    lines: dict[str, list[str]] = {}
    for shown, received, expected, through_union in explained:
        if through_union and any(other.startswith(shown + ".") for other in deeper):
            continue  # another member of the union got further into the value: its error says more
        lines.setdefault(f"{shown}: {received}", []).append(expected)
    return [f"{head}; expected {', or '.join(dict.fromkeys(expected))}" for head, expected in lines.items()]


def _explain(item: pydantic_core.ErrorDetails, data: dict, model: type[schema.Config]) -> tuple[str, str, str]:
    kind = item["type"]
    context = item.get("ctx") or {}
    shown = _display_path(item["loc"], data)
    received = _received(item.get("input"))
    if kind == "extra_forbidden":
        allowed = _allowed_keys(item["loc"][:-1], model)
        key = item["loc"][-1]
        expected = f"one of the keys {', '.join(allowed)}" if allowed else "no such key"
        return shown, f"received unknown key {key!r}", expected + _did_you_mean(str(key), allowed)
    if kind == "missing":
        return shown, "received nothing", "this required key"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        key = context.get("discriminator", "").strip("'")
        tags = _tags_at(item["loc"], key, model)
        tags += [name for name in _plugin_names(item["loc"]) if name not in tags]
        if kind == "union_tag_not_found":
            return f"{shown}.{key}", "received nothing", f"one of {', '.join(tags)}"
        tag = str(context.get("tag"))
        return f"{shown}.{key}", f"received {tag!r}", f"one of {', '.join(tags)}{_did_you_mean(tag, tags)}"
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", context.get("expected", ""))
        guess = _did_you_mean(str(item.get("input")), options) if isinstance(item.get("input"), str) else ""
        return shown, f"received {received}", f"one of {', '.join(options)}{guess}"
    return shown, f"received {received}", _expected(kind, context, item["msg"])


_EXPECTED = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",  # YAML has no tuples: a range such as search.space.KEY.int is written [low, high]
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "finite_number": "a finite number",
    "invalid_key": "text keys only",
}
_BOUNDS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _expected(kind: str, context: dict, message: str) -> str:
    if kind in _EXPECTED:
        return _EXPECTED[kind]
    for key, symbol in _BOUNDS.items():
        if kind.startswith(("greater_than", "less_than")) and key in context:
            return f"a number {symbol} {context[key]}"
    if kind == "too_short":
        return f"at least {context.get('min_length')} item(s)"
    if kind == "too_long":
        return f"at most {context.get('max_length')} item(s)"
    if kind == "value_error":
        return message.removeprefix("Value error, ")
    return message[:1].lower() + message[1:]


def _received(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    return yaml_strict.preview(value)


def _did_you_mean(value: str, options: Iterable[object]) -> str:
    matches = difflib.get_close_matches(value, [str(option) for option in options], n=1, cutoff=0.6)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def _display_path(loc: tuple, data: Any) -> str:
    """The key path the user wrote: without the union labels pydantic adds to `loc`.

    `data.digits.x` is shown as `data.x` (a discriminator tag); `compile.loss.literal[...]` as
    `compile.loss` (a union member's label under a plain value).
    """
    shown = [part for part, is_label in _walk(loc, data) if not is_label]
    return ".".join(str(part) for part in shown) or "top level"


def _through_union(loc: tuple, data: Any) -> bool:
    return any(is_label for _, is_label in _walk(loc, data))


def _walk(loc: tuple, data: Any) -> Iterator[tuple[str | int, bool]]:
    """Yield each part of `loc` with whether it is a union label rather than a key or an index."""
    node = data
    for part in loc:
        if isinstance(node, dict):
            is_label = part not in node and (part in node.values() or "[" in str(part))
        else:
            is_label = isinstance(part, str) and node is not None
        yield part, is_label
        if is_label:
            continue
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None


def _annotation_at(loc: tuple, model: type[schema.Config]) -> Any:
    annotation = model
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return None
    return annotation


def _allowed_keys(loc: tuple, root: type[schema.Config]) -> list[str]:
    model = _unwrap(_annotation_at(loc, root))
    if typing.get_origin(model) in (typing.Union, types.UnionType):  # an optional section (`search`): its keys
        models = [member for member in map(_unwrap, typing.get_args(model)) if _is_model(member)]
        model = models[0] if len(models) == 1 else None
    return list(model.model_fields) if _is_model(model) else []


def _tags_at(loc: tuple, key: str, root: type[schema.Config]) -> list[str]:
    members = [_unwrap(member) for member in typing.get_args(_unwrap(_annotation_at(loc, root)))]
    return [
        typing.get_args(member.model_fields[key].annotation)[0] for member in members if _is_model(member) and key in member.model_fields
    ]


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel)


def _step(annotation: Any, part: str | int) -> Any:
    annotation = _unwrap(annotation)
    origin = typing.get_origin(annotation)
    if _is_model(annotation):
        field = annotation.model_fields.get(part)
        return field.annotation if field else None
    if origin is list and isinstance(part, int):
        return typing.get_args(annotation)[0]
    if origin is dict:  # search.space.KEY
        return typing.get_args(annotation)[1]
    if origin in (typing.Union, types.UnionType):
        members = [_unwrap(member) for member in typing.get_args(annotation)]
        for member in members:
            if _is_model(member) and any(
                typing.get_origin(field.annotation) is typing.Literal and typing.get_args(field.annotation) == (part,)
                for field in member.model_fields.values()
            ):
                return member
        for member in members:
            found = _step(member, part)
            if found is not None:
                return found
    return None
