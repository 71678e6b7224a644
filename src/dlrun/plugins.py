"""Plug-ins: datasets and architectures that other distributions register through entry points.

A distribution declares them in its pyproject.toml (docs/plugins.md has a whole example package):

    [project.entry-points."dlrun.datasets"]
    blobs = "dlrun_blobs.dataset"
    [project.entry-points."dlrun.architectures"]
    wide_mlp = "dlrun_blobs.wide_mlp"

The entry point's name is what a config names (`data: {name: blobs}`, `model: {architecture: wide_mlp}`).
It points at a module (or any object) with two attributes: `Config`, the pydantic model of its config
section (strict, like the built-in ones: unknown keys forbidden; `name: Literal["blobs"]` or
`architecture: Literal["wide_mlp"]`), and the worker the built-in ones have: `load(config, seed)` ->
`dlrun.data.dataset.Dataset`, or `build(config, stem, input_shape, task, num_classes)` -> a Keras model.

Nothing here runs at start-up: entry points are read (importlib.metadata) only when a config names a
dataset or architecture that is not built in, or by `dlrun list`; only the plug-in named is imported.
A plug-in cannot replace a built-in: its name must be new.
"""

from __future__ import annotations

import dataclasses
import functools
import typing

from dlrun import errors


@dataclasses.dataclass(frozen=True)
class Kind:
    """What a kind of plug-in provides: its entry-point group, the key that names it, its worker."""

    group: str  # the entry-point group
    noun: str  # in messages: "plug-in dataset 'blobs'"
    section: str  # the config section it fills
    key: str  # the key of that section that names it
    worker: str  # the attribute holding the function dlrun calls
    signature: str  # the worker's arguments and result, for messages


KINDS = {
    "datasets": Kind("dlrun.datasets", "dataset", "data", "name", "load", "load(config, seed) -> dlrun.data.dataset.Dataset"),
    "architectures": Kind(
        "dlrun.architectures",
        "architecture",
        "model",
        "architecture",
        "build",
        "build(config, stem, input_shape, task, num_classes) -> a Keras model",
    ),
}


@dataclasses.dataclass(frozen=True)
class Entry:
    """One entry point, read from its distribution's metadata (not imported)."""

    kind: str  # datasets or architectures
    name: str  # the name configs use
    value: str  # what it points at: `module` or `module:attribute`
    distribution: str  # the distribution's name and version, e.g. "dlrun-blobs 0.1.0"

    def describe(self) -> str:
        """`plug-in dataset 'blobs' (distribution dlrun-blobs 0.1.0, entry point dlrun_blobs.dataset)`."""
        return f"plug-in {KINDS[self.kind].noun} {self.name!r} (distribution {self.distribution}, entry point {self.value})"


@dataclasses.dataclass(frozen=True)
class Plugin:
    """A loaded plug-in: its entry, its config section's model and its worker (`load` or `build`)."""

    entry: Entry
    section: type
    worker: typing.Callable

    @property
    def description(self) -> str:
        """The first line of the section's docstring, else of the worker's."""
        for holder in (self.section, self.worker):
            if holder.__doc__ and holder.__doc__.strip():
                return holder.__doc__.strip().splitlines()[0]
        return ""


@functools.cache
def available(kind: str) -> dict[str, tuple[Entry, ...]]:
    """The installed plug-ins of `kind` by name (several entries when distributions clash), none imported."""
    from importlib import metadata

    found: dict[str, tuple[Entry, ...]] = {}
    for point in metadata.entry_points(group=KINDS[kind].group):
        distribution = f"{point.dist.name} {point.dist.version}" if point.dist is not None else "unknown"
        found[point.name] = (*found.get(point.name, ()), Entry(kind, point.name, point.value, distribution))
    return found


def load(kind: str, name: str, built_in: typing.Collection[str] = ()) -> Plugin:
    """Import the plug-in `name` of `kind` and check it; PluginError (naming its distribution) when it cannot be
    used: not installed, claimed by two distributions, named like a built-in, failing to import, or lacking
    its `Config` or worker."""
    entries = available(kind).get(name, ())
    noun = KINDS[kind].noun
    if not entries:
        raise errors.PluginError(f"no plug-in {noun} {name!r} is installed (entry-point group {KINDS[kind].group})")
    if len(entries) > 1:
        raise errors.PluginError(
            f"plug-in {noun} {name!r} is registered by {len(entries)} distributions "
            f"({', '.join(entry.distribution for entry in entries)}); expected one: uninstall or rename the others"
        )
    return _load(entries[0], tuple(built_in))


@functools.cache
def _load(entry: Entry, built_in: tuple[str, ...]) -> Plugin:
    kind = KINDS[entry.kind]
    if entry.name in built_in:
        raise errors.PluginError(
            f"{entry.describe()}: the name of a built-in {kind.noun}; expected a new name "
            f"(a plug-in cannot replace a built-in: rename its entry point)"
        )
    from importlib import metadata

    try:
        target = metadata.EntryPoint(entry.name, entry.value, kind.group).load()
    except Exception as error:  # whatever the plug-in's import raises, it is the plug-in's problem
        raise errors.PluginError(f"{entry.describe()}: cannot be imported ({type(error).__name__}: {error})") from None
    section = getattr(target, "Config", None)
    problem = _section_problem(section, kind, entry.name)
    if problem:
        raise errors.PluginError(f"{entry.describe()}: {problem}")
    worker = getattr(target, kind.worker, None)
    if not callable(worker):
        raise errors.PluginError(f"{entry.describe()}: received {kind.worker}={worker!r}; expected a function {kind.signature}")
    return Plugin(entry, typing.cast(type, section), worker)  # a pydantic model class: _section_problem checked it


def _section_problem(section: object, kind: Kind, name: str) -> str | None:
    """What is wrong with a plug-in's `Config`, or None."""
    import pydantic

    wanted = f"{kind.key}: Literal[{name!r}]"
    if not (isinstance(section, type) and issubclass(section, pydantic.BaseModel)):
        return (
            f"received Config={section!r}; expected a pydantic model class for its `{kind.section}` section "
            f"(subclass dlrun.config.fields.Section) with `{wanted}`"
        )
    if section.model_config.get("extra") != "forbid":
        return (
            "Config allows unknown keys; expected a strict section like the built-in ones (subclass "
            "dlrun.config.fields.Section, or set model_config = pydantic.ConfigDict(extra='forbid'))"
        )
    field = section.model_fields.get(kind.key)
    annotation = field.annotation if field is not None else None
    if typing.get_origin(annotation) is not typing.Literal or typing.get_args(annotation) != (name,):
        return f"Config.{kind.key}: received {annotation!r}; expected `{wanted}` (the entry point's name)"
    return None
