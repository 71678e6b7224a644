"""The CI contract: a test skipped for lack of a dependency that .ci/run installs fails the run there
($DLRUN_REQUIRE, tests/conftest.py), while a local run without it still just skips, saying why."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

SKIPPING = """
import pytest

def test_needs_a_browser():
    pytest.skip("no Chromium here (install the Debian package `chromium`)")
"""


def _pytest(tmp_path, required: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_skipping.py").write_text(SKIPPING, encoding="utf-8")
    environment = {**os.environ, "DLRUN_REQUIRE": required, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider", str(tmp_path / "test_skipping.py")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=120,
    )


def test_a_skip_for_a_required_dependency_fails_the_run(tmp_path):
    result = _pytest(tmp_path, "chromium torch")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "skipped although $DLRUN_REQUIRE names chromium" in result.stdout


def test_without_the_requirement_the_skip_stays_a_skip(tmp_path):
    result = _pytest(tmp_path, "torch")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout


def test_ci_run_requires_what_it_installs():
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert 'DLRUN_REQUIRE="chromium fashion-mnist postgresql"' in script and 'DLRUN_REQUIRE="$DLRUN_REQUIRE torch"' in script
    assert "export DLRUN_REQUIRE" in script


def test_a_warning_raised_in_dlrun_code_fails_the_test():
    """pyproject's `filterwarnings`: a warning from dlrun's own modules is an error, so CI cannot collect them."""
    import warnings

    import pytest

    code = compile("warnings.warn('from dlrun', UserWarning)", "dlrun/somewhere.py", "exec")
    with pytest.raises(UserWarning, match="from dlrun"):
        exec(code, {"__name__": "dlrun.somewhere", "warnings": warnings})
