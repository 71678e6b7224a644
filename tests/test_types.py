"""The type check: mypy over src/dlrun as pyproject.toml's [tool.mypy] configures it, clean (what `make lint` runs)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib

import pytest

from tests.conftest import ROOT


def test_mypy_finds_no_type_errors():
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (it comes with the dev extra: pip install -e '.[dev]')")
    # The cache (.mypy_cache/, git-ignored) makes a rerun take seconds; a cold run takes ~20 s.
    found = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert found.returncode == 0, found.stdout + found.stderr


def test_every_function_must_be_annotated_and_missing_stubs_are_ignored_one_by_one():
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert settings["files"] == ["src/dlrun"]
    # an unannotated parameter is Any, which mypy checks nothing against: the whole package is annotated,
    # and no override takes that back for a part of it
    assert settings["disallow_untyped_defs"] is True
    assert not any("disallow_untyped_defs" in override for override in settings["overrides"])
    # never for every import at once: a typo'd or uninstalled module must stay an error
    assert "ignore_missing_imports" not in settings
    ignored = {module for override in settings["overrides"] if override.get("ignore_missing_imports") for module in override["module"]}
    assert not any(module.startswith("dlrun") for module in ignored)
