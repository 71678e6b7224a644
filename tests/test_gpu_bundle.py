"""benchmarks/gpu_bundle.py (what travels to the GPU machine, and the command that runs there) and gpu.py's
round budget, without downloading or training anything."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import sys
import tomllib

from packaging.requirements import Requirement

from tests.conftest import ROOT


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _machine_names(bundle) -> set[str]:
    return {_normal(Requirement(spec).name) for spec in bundle.MACHINE}


def test_the_bundle_carries_nothing_the_machine_has():
    bundle = _module("gpu_bundle")
    carried = {_normal(name) for name in bundle.BUNDLE}
    assert not carried & _machine_names(bundle)
    # above all not the machine's CUDA builds and the arrays they share: a carried copy would shadow them
    assert not carried & {"jax", "jaxlib", "numpy", "scipy", "ml-dtypes", "h5py", "tensorflow", "tensorflow-cpu"}


def test_every_carried_requirement_is_carried_or_on_the_machine():
    """Read from this venv's metadata where it holds the pinned version (dlrun's tests run with the same pins)."""
    bundle = _module("gpu_bundle")
    known = {_normal(name) for name in bundle.BUNDLE} | _machine_names(bundle)
    checked = 0
    for name, pin in bundle.BUNDLE.items():
        if importlib.metadata.version(name) != pin:
            continue
        checked += 1
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": "", "python_version": "3.12", "sys_platform": "linux"}):
                assert _normal(requirement.name) in known, f"{name} {pin} needs {text}: neither carried nor on the machine"
    assert checked >= len(bundle.BUNDLE) - 2, "this venv no longer holds the bundle's pins: update BUNDLE"


def test_the_pins_meet_dlruns_own_bounds():
    bundle = _module("gpu_bundle")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    bounds = {_normal(Requirement(text).name): Requirement(text) for text in project["dependencies"]}
    for name in ("keras", "optuna", "pydantic"):
        assert bounds[name].specifier.contains(bundle.BUNDLE[name]), (name, bundle.BUNDLE[name], str(bounds[name]))
    # the rest of dlrun's dependencies are the machine's own, except TensorFlow, which dlrun on JAX never imports
    rest = set(bounds) - {_normal(name) for name in bundle.BUNDLE}
    assert rest - _machine_names(bundle) == {"tensorflow-cpu", "tensorflow"}


def test_the_run_command_fits_the_tool_and_carries_the_ignored_folder():
    bundle = _module("gpu_bundle")
    command = bundle.run_command()
    assert len(command) <= 2000
    assert bundle.FOLDER == ".gpu" and "/.gpu/" in (ROOT / ".gitignore").read_text().split()
    assert f"--no-index --no-deps --no-compile --no-cache-dir --upgrade --target {bundle.SITE} .gpu/wheels/*.whl" in command
    assert f"export PYTHONPATH={bundle.SITE}" in command and "gpu_bundle.py --verify" in command
    assert "benchmarks/gpu.py" in command and "--out $OUT" in command and "$OUT/gpu.log" in command
    assert "--quick" not in command and "set -o pipefail" in command
    assert command in (ROOT / "BENCHMARKS.md").read_text().splitlines(), "BENCHMARKS.md shows another command"


def test_gpu_py_stops_starting_rounds_past_its_budget(tmp_path, monkeypatch):
    """Each fake case takes 100 fake seconds (300 a round): with --budget-s 650, round 2 starts (300 + 300 <= 650)
    and round 3 does not (600 + 300 > 650); gpu.json holds the 2 rounds done."""
    gpu = _module("gpu")
    clock = [0.0]

    def fake(name):
        def case(*arguments):
            clock[0] += 100
            raw = arguments[-2]
            raw.setdefault("calls", []).append(name)
            return {"calls": len(raw["calls"])}

        return case

    monkeypatch.setattr(gpu.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(gpu, "machine", lambda: {"devices": ["fake"]})
    monkeypatch.setattr(gpu, "write_data", lambda folder, size: {"convnet": folder / "a.npz", "mlp": folder / "b.npz"})
    monkeypatch.setattr(gpu, "tables", lambda results: "")
    for name in ("runner", "kfold", "precision"):
        monkeypatch.setattr(gpu, name, fake(name))
    monkeypatch.setattr(sys, "argv", ["gpu.py", "--pairs", "5", "--budget-s", "650", "--out", str(tmp_path)])
    gpu.main()
    results = json.loads((tmp_path / "gpu.json").read_text())
    assert results["rounds"] == 2
    assert results["runner"] == results["kfold"] == results["precision"] == {"calls": 2}
