"""`make mutation`: mutmut 3 over the modules that hold promises, then "killed X of Y" per module.

Usage: python tools/mutation.py [MODULE ...]   (dotted names, e.g. dlrun.atomic; default: all of MODULES)

The mutmut settings (which files, which fast tests) are in pyproject.toml's [tool.mutmut]. mutmut copies
src/ and tests/ into mutants/ and puts mutants/src first on sys.path, so the tests import the mutated copy.
Not part of `make test` or CI: it takes minutes per module.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = [
    "dlrun.config.loading",
    "dlrun.config.overrides",
    "dlrun.config.yaml_strict",
    "dlrun.atomic",
    "dlrun.runs.history",
    "dlrun.runs.folder",
    "dlrun.runs.lifecycle",
    "dlrun.training.checkpoints",
    "dlrun.training.resume",
    "dlrun.training.baseline",
]
# mutmut's exit codes (mutmut/stats.py) that kill a mutant: a test failed (1, 3), the time limit (36, SIGXCPU
# 24/152, 255), and any death of the test process by a signal (negative: -9, -11, SIGXCPU's -24, and signals
# mutmut calls "suspicious", such as SIGHUP's -1 from a mutant that makes the code signal its own process): the
# tests did not pass. 0 is a survivor, 33 a mutant no selected test runs: both count as not killed, so Y is
# every mutant of the module.
KILLED = {1, 3, 36, 24, 152, 255}


def killed(code: int | None) -> bool:
    return code in KILLED or (code is not None and code < 0)


def results(module: str) -> tuple[int, int, list[str]]:
    meta = ROOT / "mutants" / "src" / (module.replace(".", "/") + ".py.meta")
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    survivors = sorted(name for name, code in codes.items() if not killed(code))
    return sum(killed(code) for code in codes.values()), len(codes), survivors


def main(argv: list[str]) -> int:
    modules = argv or MODULES
    mutmut = shutil.which("mutmut", path=str(Path(sys.executable).parent)) or "mutmut"
    shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    subprocess.run([mutmut, "run", "--max-children", "2", *(f"{m}.*" for m in modules)], cwd=ROOT, check=False)
    total_killed = total = 0
    for module in modules:
        killed, count, survivors = results(module)
        total_killed, total = total_killed + killed, total + count
        print(f"{module}: killed {killed} of {count}")
        for name in survivors:
            print(f"    survived: {name}   (mutmut show {name})")
    print(f"all: killed {total_killed} of {total}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
