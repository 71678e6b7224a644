"""The example configs shipped with dlrun: where they are, what each is, their text.

They are `configs/*.yaml` at the root of a source checkout, and `dlrun/configs/` inside an installed
wheel (setup.py copies them there), so `dlrun list configs` and `dlrun init NAME` work the same after
`pip install dlrun` as in a clone. A config's name is its path below that folder without `.yaml`
(`quickstart`, `smoke/mlp_multiclass`); its description is the first sentence of its opening comment.
Reading them imports nothing but the standard library (`dlrun list` stays quick).
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from dlrun import errors

# The editor's schema line (`# yaml-language-server: $schema=../schema/...`): a path relative to configs/,
# which points nowhere once the file is copied into the user's folder.
_SCHEMA_LINE = re.compile(r"# yaml-language-server: \$schema=\S*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
DESCRIPTION_AT_MOST = 120  # characters


def folder() -> Path:
    """The folder of the example configs: the package's `configs/` (a wheel), else the checkout's `configs/`."""
    package = Path(__file__).resolve().parent
    installed = package / "configs"
    if installed.is_dir():
        return installed
    checkout = package.parents[1] / "configs"
    if package.parent.name == "src" and checkout.is_dir():
        return checkout
    raise errors.ConfigError(f"the example configs are missing: expected {installed} (an installed dlrun) or {checkout} (a checkout)")


def names() -> dict[str, Path]:
    """Every example config by name, sorted: `{"boston": .../boston.yaml, ..., "smoke/mlp_multiclass": ...}`."""
    root = folder()
    return {path.relative_to(root).with_suffix("").as_posix(): path for path in sorted(root.rglob("*.yaml"))}


def describe(path: Path) -> str:
    """The first sentence of the comment block that opens the file (after the schema line), or of a long
    one what comes before its first colon."""
    lines = []
    for line in _SCHEMA_LINE.sub("", path.read_text(encoding="utf-8"), count=1).splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    sentence = _SENTENCE_END.split(" ".join(lines), maxsplit=1)[0]
    # A long first sentence is a title, a colon, then details: the title is the description.
    return sentence.split(": ", 1)[0] if len(sentence) > DESCRIPTION_AT_MOST else sentence


def path(name: str) -> Path:
    """The file of example config `name`, or a ConfigError listing the names (with a "did you mean")."""
    found = names()
    if name in found:
        return found[name]
    close = difflib.get_close_matches(name, list(found), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise errors.UsageError(
        f"NAME: received {name!r}, which is no example config; expected one of {', '.join(found)}{hint} "
        f"(`dlrun list configs`), or --dataset and --architecture for a starter config"
    )


def text(name: str) -> str:
    """The text of example config `name` without its editor schema line (`dlrun init NAME` writes it)."""
    return _SCHEMA_LINE.sub("", path(name).read_text(encoding="utf-8"), count=1)
