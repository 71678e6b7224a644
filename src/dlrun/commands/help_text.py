"""How `dlrun ... --help` shows arguments and options: `RUN_DIR` and `CONFIG`, flags without a value type.

Typer (0.29, with its own copy of Click) writes a required argument as `{run_dir}` in the usage line, a
list as `<list[Path]>` and an on/off flag as `--force <bool>`. `Command` and `Group` give every command
the usual Unix form instead: `Usage: dlrun report [OPTIONS] RUN_DIR...`, an argument row named by its
metavar with no type after it, `--force` alone, and a repeatable option with the type of one value
(`--text <str>`). Typer builds the parameters from the function's signature, so their display is
adjusted here, where the command is built, rather than option by option.
"""

from __future__ import annotations

import re
from typing import Any

from typer import core

_LIST_TYPE = re.compile(r"<list\[(.+)\]>")


class _Argument(core.TyperArgument):
    """An argument shown by its metavar (RUN_DIR, CONFIG...), optional ones in brackets."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None  # the metavar and the help sentence say what it is; `<path>` after RUN_DIR says nothing

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        metavar = self.metavar if self.metavar is not None else (self.name or "").upper()  # Click's default
        return [metavar if self.required else f"[{metavar}]"]


class _Option(core.TyperOption):
    """An option followed by the type of one value, and a flag by nothing."""

    def display_type_rich(self, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        shown = super().display_type_rich(ctx)
        return _LIST_TYPE.sub(lambda found: f"<{found[1].lower()}>", shown) if shown else shown


def tidy(params: list) -> list:
    """`params` displayed the usual way (changed in place: Typer made them, for this command only)."""
    for param in params:
        if isinstance(param, core.TyperArgument):
            if param.metavar is None:
                param.metavar = param.name.upper() + ("..." if param.nargs != 1 else "")
            param.__class__ = _Argument  # only the display methods differ: no state is added
        elif isinstance(param, core.TyperOption):
            param.__class__ = _Option
    return params


class Command(core.TyperCommand):
    """A Typer command whose help shows arguments as RUN_DIR and flags without a value type."""

    def get_params(self, ctx: Any) -> list[Any]:
        return tidy(super().get_params(ctx))


class Group(core.TyperGroup):
    """A Typer group (the `dlrun` app and its sub-apps) whose own options show the same way."""

    def get_params(self, ctx: Any) -> list[Any]:
        return tidy(super().get_params(ctx))
