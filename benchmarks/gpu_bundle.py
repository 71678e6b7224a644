"""Carry to the GPU machine what it lacks for benchmarks/gpu.py, as wheels, and the one command that runs it there.

The GPU machine (an H200 with Python 3.12 and jax 0.11.2 with CUDA; no network, no TensorFlow) has numpy,
scipy, scikit-learn, matplotlib, h5py, pyyaml, rich, typer, tqdm, ... but not Keras, Optuna, pydantic or
dlrun. Run here, this script fills the ignored folder .gpu/wheels with exactly those (BUNDLE: pinned, for
CPython 3.12 manylinux x86_64, each with --no-deps so nothing the machine already has is carried) and
dlrun's own wheel, prints the folder's size and the `run` command (carry [".gpu"]) that installs them
there with `pip install --no-index --no-deps --target /tmp/site` (the device README's recipe), checks the
install (`--verify`) and runs benchmarks/gpu.py with its results and log under $OUT.

    python benchmarks/gpu_bundle.py                # download and build into .gpu/wheels; print size and command
    python benchmarks/gpu_bundle.py --check        # also: the same install into a venv of stand-ins, gpu.py --quick
    python3 benchmarks/gpu_bundle.py --verify      # (there) every carried package's requirements are met

`--check` makes (or reuses, `--venv`) a Python 3.12 venv holding from PyPI only what stands in for the
machine's own packages (MACHINE: jax CPU 0.11.2, numpy, ...), refuses it if it holds a carried package,
installs the wheels into a fresh --target folder exactly as the machine will, verifies, and runs
`benchmarks/gpu.py --quick` with TensorFlow absent. Standard library only, except `--verify` (packaging).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ".gpu"  # ignored (.gitignore); what `carry` names
WHEELS = ROOT / FOLDER / "wheels"
SITE = "/tmp/site"  # where the machine's install goes (--target): its own packages stay as they are

# What the machine lacks, at the versions dlrun's tests run with (each within pyproject.toml's bounds):
# Keras and its two the machine lacks, Optuna and its four, pydantic and its four. typing-extensions is on the
# machine but pydantic 2.14 needs >= 4.16, a version the machine was not seen to hold; a newer one is harmless.
BUNDLE = {
    "keras": "3.15.1",
    "namex": "0.1.0",
    "optree": "0.20.0",
    "optuna": "5.0.0",
    "alembic": "1.20.1",
    "sqlalchemy": "2.1.9",
    "mako": "1.4.3",
    "colorlog": "6.12.0",
    "pydantic": "2.14.4",
    "pydantic-core": "2.50.5",
    "annotated-types": "0.8.0",
    "typing-inspection": "0.4.5",
    "typing-extensions": "4.16.0",
}
# The machine's own (KINDS.md), never carried: a carried copy would shadow the machine's build (jax with CUDA).
MACHINE = (
    "jax==0.11.2",
    "jaxlib==0.11.2",
    "numpy",
    "scipy",
    "scikit-learn",
    "matplotlib",
    "h5py",
    "pyyaml",
    "rich",
    "typer",
    "ml-dtypes",
    "absl-py",
    "packaging",
    "pandas",
    "tqdm",
    "markupsafe",
)
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64")
# The GPU run: at most 3 rounds of every case, no new round once it would end past 400 s by the last round's
# time (one round on the H200 is an estimate, not a measurement: 13 processes, ~200 s), a hard stop at 480 s;
# gpu.json is rewritten after every case, so a stop leaves what was done. Give the run tool timeout_s 540.
BENCH = "timeout 480 python3 benchmarks/gpu.py --pairs 3 --budget-s 400 --out $OUT"


def run_command() -> str:
    """The one command for the `run` tool (carry [".gpu"]): install, verify, benchmark; log to $OUT/gpu.log."""
    install = f"python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target {SITE} {FOLDER}/wheels/*.whl"
    # --verify and nvidia-smi report but do not stop the benchmark: one device run says as much as it can
    steps = f"{install} && export PYTHONPATH={SITE} && {{ python3 benchmarks/gpu_bundle.py --verify; nvidia-smi -L; {BENCH}; }}"
    return f"set -o pipefail; ( {steps} ) 2>&1 | tee $OUT/gpu.log"


def download(python: str = sys.executable) -> None:
    """Fill .gpu/wheels afresh: BUNDLE's wheels for CPython 3.12 manylinux x86_64, and dlrun's own."""
    shutil.rmtree(WHEELS, ignore_errors=True)
    WHEELS.mkdir(parents=True)
    platforms = [argument for platform in PLATFORMS for argument in ("--platform", platform)]
    pins = [f"{name}=={version}" for name, version in BUNDLE.items()]
    pip = [python, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp", *platforms]
        + ["-d", str(WHEELS), *pins],
        check=True,
    )
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(WHEELS), str(ROOT)], check=True)


def wheels() -> list[Path]:
    return sorted(WHEELS.glob("*.whl"))


def size_mib(paths: list[Path]) -> float:
    return sum(path.stat().st_size for path in paths) / 2**20


def verify() -> int:
    """Each carried distribution at its pin with its requirements met, and Keras, Optuna, pydantic, dlrun import."""
    from packaging.requirements import Requirement

    os.environ["KERAS_BACKEND"] = "jax"  # Keras' default backend is TensorFlow, which the machine lacks
    problems = []
    for name, pin in [*BUNDLE.items(), ("dlrun", None)]:
        try:
            installed = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{name}: not installed")
            continue
        if pin and installed.version != pin:
            problems.append(f"{name}: {installed.version} installed, {pin} carried (another copy shadows it?)")
        for text in installed.requires or []:
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue
            if name == "dlrun" and requirement.name.startswith("tensorflow"):
                continue  # installed with --no-deps: dlrun on JAX does not need it
            try:
                found = importlib.metadata.version(requirement.name)
            except importlib.metadata.PackageNotFoundError:
                problems.append(f"{name} needs {text}: not installed")
                continue
            if not requirement.specifier.contains(found, prereleases=True):
                problems.append(f"{name} needs {text}: {found} installed")
    for module in ("keras", "optuna", "pydantic", "jax", "dlrun.cli"):
        try:
            importlib.import_module(module)
        except Exception as error:  # noqa: BLE001 - every failure is reported, none stops the others
            problems.append(f"import {module}: {type(error).__name__}: {error}")
    versions = {name: importlib.metadata.version(name) for name in ("jax", "jaxlib", "numpy", "keras", "optuna", "pydantic")}
    print("gpu_bundle --verify:", ", ".join(f"{name} {version}" for name, version in versions.items()), flush=True)
    for problem in problems:
        print(f"gpu_bundle --verify: {problem}", file=sys.stderr)
    return 1 if problems else 0


def standin(venv: Path, python: str) -> Path:
    """A venv holding what stands in for the machine's own packages (made once); refused if it holds a carried one."""
    executable = venv / "bin" / "python"
    if not executable.exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(executable), "-m", "pip", "install", "-q", *MACHINE], check=True)
        # a stand-in may pull in what the machine lacks (the machine's own versions do not): take it out again
        subprocess.run([str(executable), "-m", "pip", "uninstall", "-q", "-y", *BUNDLE], check=True)
    listed = subprocess.run([str(executable), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, check=True)
    held = {line.split("==")[0].lower().replace("_", "-") for line in listed.stdout.split()}
    if held & {*BUNDLE, "dlrun", "tensorflow", "tensorflow-cpu"}:
        raise SystemExit(
            f"{venv} holds {sorted(held & {*BUNDLE, 'dlrun', 'tensorflow', 'tensorflow-cpu'})}: not a stand-in for the machine"
        )
    return executable


def check(venv: Path, python: str) -> None:
    """The machine's procedure, here: install into a fresh --target folder, verify, benchmarks/gpu.py --quick."""
    executable = standin(venv, python)
    with tempfile.TemporaryDirectory(prefix="dlrun-gpu-site-") as site, tempfile.TemporaryDirectory(prefix="dlrun-gpu-out-") as out:
        subprocess.run(
            [
                str(executable),
                "-m",
                "pip",
                "install",
                "-q",
                "--no-index",
                "--no-deps",
                "--no-compile",
                "--target",
                site,
                *map(str, wheels()),
            ],
            check=True,
        )
        env = {**os.environ, "PYTHONPATH": site}
        subprocess.run([str(executable), str(ROOT / "benchmarks" / "gpu_bundle.py"), "--verify"], check=True, env=env, cwd=ROOT)
        bench = [str(executable), str(ROOT / "benchmarks" / "gpu.py"), "--quick", "--out", out]
        subprocess.run(bench, check=True, env=env, cwd=ROOT)
        print(f"gpu_bundle --check: passed ({executable}, {(Path(out) / 'gpu_quick.json').stat().st_size} bytes of results)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verify", action="store_true", help="check the installed bundle (on the GPU machine); downloads nothing")
    parser.add_argument("--check", action="store_true", help="after downloading: the machine's procedure in a venv of stand-ins")
    parser.add_argument("--venv", type=Path, default=Path(tempfile.gettempdir()) / "dlrun-gpu-standin", help="--check's venv")
    parser.add_argument("--python", default="python3.12", help="the Python 3.12 that makes --check's venv")
    parser.add_argument("--no-download", action="store_true", help="use the wheels already in .gpu/wheels")
    options = parser.parse_args()
    if options.verify:
        raise SystemExit(verify())
    if not options.no_download:
        download()
    found = wheels()
    tree = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    tracked = size_mib([ROOT / name.decode() for name in tree if name and (ROOT / name.decode()).is_file()])
    print(f"{FOLDER}/wheels: {len(found)} wheels, {size_mib(found):.1f} MiB (the tracked tree {tracked:.1f} MiB; the limit 64 MiB)")
    print(f'run tool: carry ["{FOLDER}"], timeout_s 540, command:\n{run_command()}')
    if options.check:
        check(options.venv, options.python)


if __name__ == "__main__":
    main()
