"""Packaging beyond what pyproject.toml can say: the example configs ship inside the wheel.

`configs/` at the repository root stays the one copy (the README, the docs and the tests name
`configs/quickstart.yaml`); building the wheel copies it into the package as `dlrun/configs/`, which
`dlrun list configs` lists and `dlrun init NAME` copies out (`dlrun.examples` finds either place).
MANIFEST.in puts `configs/` in the sdist, so a wheel built from the sdist has them too. An editable install
(`pip install -e .`) is left a plain path to src/: its configs are the checkout's. Everything else (name,
version, dependencies, packages, the `dlrun` script) is in pyproject.toml.
"""

import shutil
from pathlib import Path

import setuptools
from setuptools.command.build_py import build_py


class BuildWithConfigs(build_py):
    """build_py, then configs/*.yaml (sub-folders included) copied to dlrun/configs/ in the build."""

    def run(self):
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "dlrun" / "configs"
        for source in sorted(Path("configs").rglob("*.yaml")):
            destination = target / source.relative_to("configs")
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)


setuptools.setup(cmdclass={"build_py": BuildWithConfigs})
