"""Packaging: the example configs (`dlrun list configs`, `dlrun init NAME`), and `python -m build`'s sdist and
wheel installed into a fresh virtual environment, training the quickstart from an empty folder (slow)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

from dlrun import config, examples
from tests.conftest import CONFIGS, ROOT, invoke, run_folders

SCHEMA_LINE = "# yaml-language-server: $schema=../schema/dlrun-config.schema.json\n"
SHIPPED = sorted(path.relative_to(CONFIGS).with_suffix("").as_posix() for path in CONFIGS.rglob("*.yaml"))


def test_a_checkout_finds_the_example_configs_at_its_root():
    assert examples.folder() == CONFIGS
    assert list(examples.names()) == SHIPPED and "quickstart" in SHIPPED and "smoke/mlp_multiclass" in SHIPPED


def test_list_configs_names_each_with_its_description():
    result = invoke("list", "configs")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == "configs:" and [line.split()[0] for line in lines[1:]] == SHIPPED
    described = {line.split()[0]: " ".join(line.split()[1:]) for line in lines[1:]}  # the name column's width varies
    assert described["quickstart"] == (
        "The embedded default: a small convnet on scikit-learn's bundled 8x8 digits (offline, ~15 s on 2 cores)."
    )
    assert described["signs"] == "The notes' TensorFlow-basics example"  # a long first sentence: its title
    assert "configs:" in invoke("list").output


def test_init_name_copies_an_example_config_here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("init", "quickstart")
    assert result.exit_code == 0, result.output
    assert "wrote quickstart.yaml, a copy of the example config quickstart" in result.output
    written = (tmp_path / "quickstart.yaml").read_text(encoding="utf-8")
    shipped = (CONFIGS / "quickstart.yaml").read_text(encoding="utf-8")
    assert shipped.startswith(SCHEMA_LINE) and written == shipped.removeprefix(SCHEMA_LINE)  # a relative path that points nowhere here
    assert config.load(tmp_path / "quickstart.yaml") == config.load(CONFIGS / "quickstart.yaml")
    assert invoke("init", "smoke/mlp_regression").exit_code == 0 and (tmp_path / "mlp_regression.yaml").is_file()
    assert invoke("init", "imdb", "--out", tmp_path / "mine.yaml").exit_code == 0 and (tmp_path / "mine.yaml").is_file()


def test_init_refuses_an_unknown_example_an_existing_file_and_half_a_starter(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("init", "quickstrat")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: NAME: received 'quickstrat', which is no example config; expected one of boston, cats_dogs,")
    assert "(did you mean 'quickstart'?)" in result.stderr and list(tmp_path.iterdir()) == []
    (tmp_path / "quickstart.yaml").write_text("mine\n", encoding="utf-8")
    result = invoke("init", "quickstart")
    assert result.exit_code == 2 and "quickstart.yaml already exists" in result.stderr
    assert (tmp_path / "quickstart.yaml").read_text(encoding="utf-8") == "mine\n"
    result = invoke("init", "exp", "--dataset", "digits")
    assert result.exit_code == 2
    assert "--architecture: received nothing; expected both --dataset and --architecture" in result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["quickstart.yaml"]


# --- the wheel, installed where src/ is not -------------------------------------------------------------------


def _source_copy(target: Path) -> Path:
    """The files of this checkout that git tracks or would track (what a clone has), copied to `target`."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for relative in filter(None, listed.split("\0")):
        if (ROOT / relative).is_file():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / relative, target / relative)
    return target


@pytest.mark.slow
def test_the_wheel_installs_in_a_fresh_venv_and_trains_the_quickstart_from_an_empty_folder(tmp_path):
    pytest.importorskip("build", reason="python -m build comes with the dev extra (pip install -e '.[dev]')")
    source = _source_copy(tmp_path / "source")
    # sdist first, then the wheel built from the unpacked sdist: both must be complete.
    built = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp_path / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("dlrun-*.whl")
    (sdist,) = (tmp_path / "dist").glob("dlrun-*.tar.gz")
    configs = {f"dlrun/configs/{name}.yaml" for name in SHIPPED}
    assert configs <= set(zipfile.ZipFile(wheel).namelist())
    with tarfile.open(sdist) as archive:
        assert {f"{sdist.name.removesuffix('.tar.gz')}/configs/{name}.yaml" for name in SHIPPED} <= set(archive.getnames())

    # A fresh venv that sees the installed dependencies (this interpreter's site-packages, through a .pth line,
    # whose own .pth files -- an editable dlrun's -- are not run) but not src/: dlrun can only come from the wheel.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    (purelib / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    installed = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert installed.returncode == 0, installed.stderr
    where = subprocess.run([python, "-c", "import dlrun; print(dlrun.__file__)"], capture_output=True, text=True, env=env)
    assert Path(where.stdout.strip()).is_relative_to(purelib), where

    empty = tmp_path / "empty"
    empty.mkdir()

    def dlrun(*args):
        return subprocess.run([venv / "bin" / "dlrun", *map(str, args)], capture_output=True, text=True, timeout=600, env=env, cwd=empty)

    listed = dlrun("list", "configs")
    assert listed.returncode == 0 and "  quickstart  " in listed.stdout and "  smoke/mlp_multiclass  " in listed.stdout, listed
    assert dlrun("init", "quickstart").returncode == 0
    assert (empty / "quickstart.yaml").read_text(encoding="utf-8") == (CONFIGS / "quickstart.yaml").read_text(
        encoding="utf-8"
    ).removeprefix(SCHEMA_LINE)
    trained = dlrun("train", "quickstart.yaml", "--set", "train.epochs=2")
    assert trained.returncode == 0, trained.stderr[-3000:]
    (run,) = run_folders(empty / "runs")
    assert (run / "model.keras").is_file() and (run / "metrics.json").is_file()
