"""The JSON Schema of a config file, for editors (completion, hover text, errors as you type).

Generated from the pydantic models in schema.py (`Config.model_json_schema()`: the discriminated
unions, every default, `additionalProperties: false` from `extra="forbid"`), with two additions the
models do not express by themselves: each key's `# comment` from schema.py as its `description`, and
the shorthand forms the models accept before validation (`data: digits`, `model: mlp`,
`optimizer: adam`, a callback given by its name), and `extends:`. The repository ships the result as
`schema/dlrun-config.schema.json`; a test checks it is current (`make docs` rewrites it).
"""

from __future__ import annotations

import json

SCHEMA_FILE = "schema/dlrun-config.schema.json"
SCHEMA_ID = "https://dlrun.invalid/schema/dlrun-config.schema.json"  # a name, not a place to download from

# Keys whose value may also be the bare name of a member of their discriminated union (the
# `mode="before"` `_shorthand` validators in schema.py): (model, key, whether the key holds a list).
SHORTHANDS = (
    ("Config", "data", False),
    ("Config", "model", False),
    ("CompileConfig", "optimizer", False),
    ("TrainConfig", "callbacks", True),
)


# `extends:` is not a key of the models: composition reads it, and takes it out, before validation.
EXTENDS = {
    "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
    "description": "start from these config files (one, or a list applied in order), relative to this file; "
    "this file's keys merge over theirs, lists replaced (docs/composition.md)",
}


def build() -> dict:
    """The JSON Schema document of a dlrun config (plain data, ready for `json.dumps`)."""
    from dlrun.config import comments as schema_comments, schema

    document = schema.Config.model_json_schema()
    document = {"$id": SCHEMA_ID, "title": "dlrun config", **{key: value for key, value in document.items() if key != "title"}}
    models = {name: definition for name, definition in document.get("$defs", {}).items()}
    models["Config"] = document
    for model_name, comments in schema_comments.field_comments().items():
        properties = models.get(model_name, {}).get("properties", {})
        for key, comment in comments.items():
            if key in properties:
                properties[key]["description"] = comment
    document["properties"] = {"extends": EXTENDS, **document["properties"]}  # read by dlrun.config.composition
    # A file that extends others may leave `data` and `model` to its bases: required only without `extends`.
    document["if"] = {"not": {"required": ["extends"]}}
    document["then"] = {"required": document.pop("required")}
    for model_name, key, is_list in SHORTHANDS:
        prop = models[model_name]["properties"][key]
        target = prop["items"] if is_list else prop
        union = {name: target.pop(name) for name in ("discriminator", "oneOf")}
        names = sorted(union["discriminator"]["mapping"])
        target["anyOf"] = [{"enum": names, "description": "shorthand: the name alone takes every default"}, union]
    return document


def text() -> str:
    """The schema as the shipped file holds it: indented JSON, keys in a stable order, a final newline."""
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
