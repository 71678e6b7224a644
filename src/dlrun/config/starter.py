"""`dlrun init`: a starter config with every key of the chosen dataset and architecture, each commented.

Written from the models in schema.py (every key, in order, with its default) and the comments beside
them (dlrun.schema_comments), so a starter config is always complete and current. Keys without a
default (a dataset's `path`) get a placeholder to replace.
"""

from __future__ import annotations

import difflib
import json
import re
import typing
from pathlib import Path
from typing import Any

import pydantic

from dlrun import errors

PLACEHOLDER = "CHANGE_ME"
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
_YAML_WORDS = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}


def render(name: str, dataset: str, architecture: str) -> str:
    """The starter config's YAML text (validated before it is returned)."""
    from dlrun import config
    from dlrun.config import schema, yaml_strict

    data_model = _member(schema.DataConfig, dataset, "--dataset", "datasets")
    model_model = _member(schema.ModelConfig, architecture, "--architecture", "architectures")
    lines = [
        f"# {name}: a starter config written by `dlrun init` with every key at its default.",
        "# Change what you need and delete the rest (a config states only what it changes).",
        "# Every key and its allowed values: docs/config.md, or `dlrun config schema` for editors.",
        "# extends: base.yaml  # or a list: start from other configs (paths relative to this file); this file's keys",
        "#                     # merge over theirs, lists replaced. See docs/composition.md.",
    ]
    for key, field in schema.Config.model_fields.items():
        if key == "name":
            lines.append(f"name: {_scalar(name)}  # {_comment(schema.Config, key)}")
        elif key == "data":
            lines += [f"data:  # the dataset: {_first_line(data_model)}"]
            lines += _section(data_model, None, 1, f"one of {', '.join(_names(schema.DataConfig, 'datasets'))}")
        elif key == "model":
            lines += [f"model:  # the architecture: {_first_line(model_model)}"]
            lines += _section(model_model, None, 1, f"one of {', '.join(_names(schema.ModelConfig, 'architectures'))}")
        else:
            lines += _key(schema.Config, key, field, field.default, 0)
    text = "\n".join(lines) + "\n"
    config.validate(yaml_strict.loads(text, source="dlrun init"), source="dlrun init")
    return text


def write(name: str, dataset: str, architecture: str, out: Path | None) -> Path:
    """Write the starter config to `out` (default NAME.yaml); an existing file is never replaced."""
    from dlrun.config import schema

    if not schema.RUN_NAME_PATTERN.match(name):
        raise errors.UsageError(
            f"NAME: received {name!r}; expected 1-64 letters, digits, '.', '_' or '-' that start with a letter or digit"
        )
    target = Path(out) if out is not None else Path(f"{name}.yaml")
    return write_new(target, render(name, dataset, architecture))


def write_new(target: Path, text: str) -> Path:
    """Write `text` to `target` (`--out`) atomically; an existing file is never replaced."""
    from dlrun import atomic

    if target.exists():
        raise errors.UsageError(f"--out: {target} already exists; expected a new file (dlrun init never replaces one)")
    if not target.parent.is_dir():
        raise errors.UsageError(f"--out: received {str(target)!r}; expected a file in an existing folder")
    return atomic.write_text(target, text)


def _member(union: Any, tag: str, option: str, kind: str) -> type[pydantic.BaseModel]:
    """The model of the union member named `tag` (or of the plug-in of `kind` named `tag`), or a UsageError
    with a "did you mean"."""
    from dlrun import plugins
    from dlrun.config import schema

    tags = schema.discriminator_tags(union)
    if tag in tags:
        return typing.get_args(typing.get_args(union)[0])[tags.index(tag)]
    if tag in plugins.available(kind):
        return plugins.load(kind, tag).section
    names = _names(union, kind)
    close = difflib.get_close_matches(tag, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise errors.UsageError(f"{option}: received {tag!r}; expected one of {', '.join(names)}{hint}")


def _names(union: object, kind: str) -> list[str]:
    """The built-in names of a `data` or `model` union, then the installed plug-ins' of `kind`."""
    from dlrun import plugins
    from dlrun.config import schema

    tags = schema.discriminator_tags(union)
    return tags + [name for name in plugins.available(kind) if name not in tags]


def _section(model: type[pydantic.BaseModel], instance: pydantic.BaseModel | None, depth: int, tag_comment: str = "") -> list[str]:
    lines: list[str] = []
    for key, field in model.model_fields.items():
        if field.is_required() and typing.get_origin(field.annotation) is typing.Literal:
            tag = typing.get_args(field.annotation)[0]  # the name that picks this member of its union
            lines.append(f"{'  ' * depth}{key}: {tag}  # {tag_comment or 'picks this section'}")
            continue
        if instance is not None:
            value = getattr(instance, key)
        elif field.is_required():
            value = PLACEHOLDER
        else:
            value = field.get_default(call_default_factory=True)
        lines += _key(model, key, field, value, depth)
    return lines


def _key(model: Any, key: str, field: pydantic.fields.FieldInfo, value: Any, depth: int) -> list[str]:
    indent = "  " * depth
    comment = _comment(model, key)
    if field.is_required() and value == PLACEHOLDER:
        comment = f"required: {comment}" if comment else "required"
    if isinstance(value, pydantic.BaseModel):
        head = f"{indent}{key}:  # {comment or _first_line(type(value))}"
        return [head, *_section(type(value), value, depth + 1, _union_comment(model, key))]
    return [f"{indent}{key}: {_scalar(value)}" + (f"  # {comment}" if comment else "")]


def _first_line(model: Any) -> str:
    return " ".join((model.__doc__ or "").strip().split("\n\n")[0].split())


def _union_comment(model: Any, key: str) -> str:
    """For a section picked by name (compile.optimizer): the names it may take."""
    from dlrun.config import schema

    annotation = model.model_fields[key].annotation
    for union in (schema.OptimizerConfig, schema.DataConfig, schema.ModelConfig):
        if annotation in (union, typing.get_args(union)[0]):
            return f"one of {', '.join(schema.discriminator_tags(union))}"
    return ""


def _comment(model: Any, key: str) -> str:
    """The key's comment in schema.py (a plug-in's: in its module), or else the values it allows (from the JSON Schema)."""
    from dlrun.config import comments as schema_comments, docs as config_docs, json_schema

    found = schema_comments.for_model(model).get(key)
    if found:
        return found
    if schema_comments.is_built_in(model):
        prop = json_schema.build()["$defs"].get(model.__name__, {}).get("properties", {}).get(key, {})
    else:  # a plug-in's section: its own JSON Schema
        prop = model.model_json_schema().get("properties", {}).get(key, {})
    values = config_docs.allowed(prop).replace("`", "").replace("\\|", "|")
    return f"allowed: {values}" if values else ""


def _scalar(value: Any) -> str:
    """A value in YAML flow style (JSON, which YAML 1.2 reads as is; plain words unquoted)."""
    if isinstance(value, str) and _PLAIN.match(value) and value.lower() not in _YAML_WORDS:
        return value
    if isinstance(value, pydantic.BaseModel):
        value = value.model_dump(mode="json")
    return json.dumps(value)
