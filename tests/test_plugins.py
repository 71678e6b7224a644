"""Plug-ins through entry points (`dlrun.plugins`): the example package of docs/plugins.md, discovered through
importlib.metadata, validated like built-in sections, listed with its distribution, trained with (slow);
bad plug-ins named by their distribution; nothing read or imported on the fast paths."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib

import pytest

from dlrun import config, errors, plugins
from tests.conftest import CONFIGS, ROOT, invoke, run_folders

DOCS = ROOT / "docs" / "plugins.md"
CODE_BLOCK = re.compile(r'^```\w+ title="([^"]+)"\n(.*?)^```$', re.MULTILINE | re.DOTALL)


def documented_files() -> dict[str, str]:
    """The files of docs/plugins.md's example, by the title of their code block."""
    return dict(CODE_BLOCK.findall(DOCS.read_text(encoding="utf-8")))


def _forget_plugins():
    plugins.available.cache_clear()
    plugins._load.cache_clear()
    for name in [name for name in sys.modules if name.startswith("dlrun_blobs")]:
        del sys.modules[name]


@pytest.fixture
def install(tmp_path, monkeypatch):
    """`install(entry_points, modules, distribution)`: a folder on sys.path holding the modules and a
    hand-written `<distribution>.dist-info` with METADATA and entry_points.txt, which is what pip writes
    and what importlib.metadata reads. Returns the folder."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    _forget_plugins()

    def write(entry_points: dict[str, dict[str, str]], modules: dict[str, str], distribution: str = "dlrun-blobs"):
        for relative, text in modules.items():
            (site / relative).parent.mkdir(parents=True, exist_ok=True)
            (site / relative).write_text(text, encoding="utf-8")
        info = site / f"{distribution.replace('-', '_')}-0.1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1.0\n", encoding="utf-8")
        sections = [
            f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in points.items()) for group, points in entry_points.items()
        ]
        (info / "entry_points.txt").write_text("\n".join(sections), encoding="utf-8")
        plugins.available.cache_clear()
        return site

    yield write
    _forget_plugins()


def example_modules() -> dict[str, str]:
    """The example package's modules, as docs/plugins.md shows them (paths below src/)."""
    return {path.removeprefix("src/"): text for path, text in documented_files().items() if path.startswith("src/")}


def example_entry_points() -> dict[str, dict[str, str]]:
    return tomllib.loads(documented_files()["pyproject.toml"])["project"]["entry-points"]


@pytest.fixture
def blobs(install):
    """The docs' example plug-in, installed."""
    return install(example_entry_points(), example_modules())


def test_the_documented_example_declares_both_groups():
    assert example_entry_points() == {
        "dlrun.datasets": {"blobs": "dlrun_blobs.dataset"},
        "dlrun.architectures": {"wide_mlp": "dlrun_blobs.wide_mlp"},
    }


def test_a_plugin_section_validates_like_a_built_in_one(blobs):
    loaded = config.validate({"data": {"name": "blobs", "centers": 4}, "model": {"architecture": "wide_mlp", "units": 8}})
    assert type(loaded.data).__module__ == "dlrun_blobs.dataset" and loaded.data.centers == 4 and loaded.data.samples == 300
    assert loaded.model.units == 8 and loaded.model.activation == "relu"
    assert config.validate(config.to_data(loaded)) == loaded  # what a run folder stores reads back the same
    assert config.validate({"data": "blobs", "model": "wide_mlp"}).data.name == "blobs"  # the shorthands too


@pytest.mark.parametrize(
    "data, model, expected",
    [
        ({"name": "blobs", "centers": 1}, "wide_mlp", "data.centers: received 1; expected a number >= 2"),
        (
            {"name": "blobs", "centres": 3},
            "wide_mlp",
            "data.centres: received unknown key 'centres'; expected one of the keys name, samples, features, centers,",
        ),
        ("blobs", {"architecture": "wide_mlp", "units": "wide"}, 'model.units: received "wide"; expected an integer'),
        ("blobs", {"architecture": "wide_mlp", "activation": "relu6"}, 'model.activation: received "relu6"; expected one of relu,'),
        ("blob", "mlp", "data.name: received 'blob'; expected one of digits, synthetic,"),
    ],
)
def test_bad_values_in_a_plugin_section_name_the_key_path(blobs, data, model, expected):
    with pytest.raises(errors.ConfigError) as caught:
        config.validate({"data": data, "model": model})
    assert expected in str(caught.value)


def test_an_unknown_name_lists_the_plugins_too(blobs):
    with pytest.raises(errors.ConfigError, match=r"data.name: received 'blob'; expected one of .*hdf5, blobs \(did you mean 'blobs'\?\)"):
        config.validate({"data": "blob", "model": "mlp"})
    with pytest.raises(
        errors.ConfigError, match=r"model.architecture: received 'wide'; expected one of mlp, convnet, pretrained, wide_mlp"
    ):
        config.validate({"data": "digits", "model": "wide"})


def test_config_validate_and_list_through_the_cli(blobs, tmp_path):
    path = tmp_path / "blobs.yaml"
    path.write_text(documented_files()["blobs.yaml"], encoding="utf-8")
    result = invoke("config", "validate", path)
    assert result.exit_code == 0, result.output
    assert "valid (blobs / wide_mlp / rmsprop)" in result.output
    bad = invoke("config", "validate", path, "--set", "data.spread=-1")
    assert bad.exit_code == 2 and "data.spread: received -1; expected a number > 0" in bad.stderr
    listed = invoke("list").output
    assert re.search(r"^  digits +built-in +8x8 handwritten digits", listed, re.MULTILINE)
    assert re.search(r"^  blobs +dlrun-blobs 0\.1\.0 +Gaussian blobs from scikit-learn's make_blobs", listed, re.MULTILINE)
    assert re.search(r"^  wide_mlp +dlrun-blobs 0\.1\.0 +One wide Dense layer", listed, re.MULTILINE)
    assert re.search(r"^  mlp +built-in ", listed, re.MULTILINE)


def test_init_writes_a_starter_config_with_plugin_sections_and_their_comments(blobs, tmp_path):
    target = tmp_path / "exp.yaml"
    result = invoke("init", "exp", "--dataset", "blobs", "--architecture", "wide_mlp", "--out", target)
    assert result.exit_code == 0, result.output
    text = target.read_text(encoding="utf-8")
    assert "\n  centers: 3  # blobs, one class each\n" in text and "\n  units: 256  # the width of the hidden layer\n" in text
    assert "\n  architecture: wide_mlp  # one of mlp, convnet, pretrained, wide_mlp\n" in text
    assert "\n  activation: relu  # allowed: relu, sigmoid," in text  # no comment: the values its own JSON Schema allows
    loaded = config.load(target)
    assert (loaded.data.name, loaded.data.centers, loaded.model.architecture) == ("blobs", 3, "wide_mlp")


def test_a_config_naming_only_built_ins_reads_no_entry_point(install):
    """A broken plug-in does not stop configs that do not name it: its module is never imported."""
    install({"dlrun.datasets": {"boom": "dlrun_blobs_boom"}}, {"dlrun_blobs_boom.py": "raise RuntimeError('imported')\n"})
    assert config.load(CONFIGS / "quickstart.yaml").data.name == "digits"
    assert "dlrun_blobs_boom" not in sys.modules


BROKEN = {
    "import error": ("import dlrun_no_such_module\n", "cannot be imported (ModuleNotFoundError: No module named 'dlrun_no_such_module')"),
    "no Config": ("def load(config, seed):\n    pass\n", "received Config=None; expected a pydantic model class for its `data` section"),
    "not a model": (
        "Config = dict\ndef load(config, seed):\n    pass\n",
        "received Config=<class 'dict'>; expected a pydantic model class",
    ),
    "loose Config": (
        "import typing, pydantic\nclass Config(pydantic.BaseModel):\n    name: typing.Literal['broken']\n"
        "def load(config, seed):\n    pass\n",
        "Config allows unknown keys; expected a strict section",
    ),
    "wrong name": (
        "import typing\nfrom dlrun.config import fields\nclass Config(fields.Section):\n    name: typing.Literal['other']\n"
        "def load(config, seed):\n    pass\n",
        "Config.name: received typing.Literal['other']; expected `name: Literal['broken']`",
    ),
    "no load": (
        "import typing\nfrom dlrun.config import fields\nclass Config(fields.Section):\n    name: typing.Literal['broken']\n",
        "received load=None; expected a function load(config, seed) -> dlrun.data.dataset.Dataset",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_plugin_is_an_error_naming_its_distribution(install, tmp_path, case):
    source, expected = BROKEN[case]
    install({"dlrun.datasets": {"broken": "dlrun_blobs_broken"}}, {"dlrun_blobs_broken.py": source}, distribution="dlrun-broken")
    named = "plug-in dataset 'broken' (distribution dlrun-broken 0.1.0, entry point dlrun_blobs_broken): "
    with pytest.raises(errors.PluginError) as caught:
        config.validate({"data": "broken", "model": "mlp"})
    assert str(caught.value) == named + expected or str(caught.value).startswith(named + expected)
    root = tmp_path / "runs"
    path = tmp_path / "broken.yaml"
    path.write_text(f"data: broken\nmodel: mlp\noutput: {{runs_root: {json.dumps(str(root))}}}\n", encoding="utf-8")
    result = invoke("train", path)
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {named}{expected}"), result.stderr
    assert "Traceback" not in result.stderr and not root.exists()  # refused before any run folder


def test_a_plugin_named_like_a_built_in_is_refused_and_never_replaces_it(install):
    install({"dlrun.datasets": {"digits": "dlrun_blobs.dataset"}}, example_modules())
    assert type(config.validate({"data": "digits", "model": "mlp"}).data).__module__ == "dlrun.config.datasets"
    result = invoke("list", "datasets")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: plug-in dataset 'digits' (distribution dlrun-blobs 0.1.0, entry point dlrun_blobs.dataset): "
        "the name of a built-in dataset; expected a new name (a plug-in cannot replace a built-in: "
        "rename its entry point)\n"
    )
    assert "  digits  " in result.output and "  hdf5  " in result.output  # the built-ins are still listed


def test_two_distributions_with_one_name_are_an_error_naming_both(install):
    install({"dlrun.datasets": {"blobs": "dlrun_blobs.dataset"}}, example_modules())
    install({"dlrun.datasets": {"blobs": "dlrun_blobs.dataset"}}, {}, distribution="dlrun-other")
    with pytest.raises(
        errors.PluginError,
        match=r"plug-in dataset 'blobs' is registered by 2 distributions \((dlrun-blobs 0\.1\.0, "
        r"dlrun-other 0\.1\.0|dlrun-other 0\.1\.0, dlrun-blobs 0\.1\.0)\); expected one",
    ):
        config.validate({"data": "blobs", "model": "mlp"})


def test_help_and_built_in_configs_never_read_entry_points(blobs):
    """`dlrun --help` and validating a config of built-ins neither read entry points nor import a plug-in."""
    probe = (
        "import sys\nfrom dlrun import cli\nsys.argv = ['dlrun', *sys.argv[1:]]\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "found = sys.modules.get('dlrun.plugins')\n"
        "print(f'READ={found.available.cache_info().misses if found else 0} IMPORTED={\"dlrun_blobs\" in sys.modules}', file=sys.stderr)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blobs), str(ROOT / "src")])}

    def probed(*argv):
        return subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=60, env=env).stderr

    assert "READ=0 IMPORTED=False" in probed("--help")
    assert "READ=0 IMPORTED=False" in probed("config", "validate", str(CONFIGS / "quickstart.yaml"))
    assert "READ=2 IMPORTED=True" in probed("list")  # the probe sees them when they are read: both groups, by `list`


# --- the real thing: build the documented package with pip, train with it ---------------------------------------


@pytest.mark.slow
def test_the_documented_plugin_package_installs_lists_validates_and_trains(tmp_path):
    package = tmp_path / "dlrun-blobs"
    for relative, text in documented_files().items():
        (package / relative).parent.mkdir(parents=True, exist_ok=True)
        (package / relative).write_text(text, encoding="utf-8")
    target = tmp_path / "site"
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(package),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert pip.returncode == 0, pip.stderr
    assert (target / "dlrun_blobs-0.1.0.dist-info" / "entry_points.txt").is_file()  # pip wrote the metadata, not the test
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(ROOT / "src")])}

    def dlrun(*args):
        return subprocess.run(
            [sys.executable, "-m", "dlrun", *map(str, args)], capture_output=True, text=True, timeout=300, env=env, cwd=package
        )

    listed = dlrun("list", "architectures")
    assert listed.returncode == 0 and re.search(r"^  wide_mlp +dlrun-blobs 0\.1\.0 +One wide Dense layer", listed.stdout, re.MULTILINE)
    bad = dlrun("config", "validate", "blobs.yaml", "--set", "model.units=0")
    assert bad.returncode == 2 and "model.units: received 0; expected a number >= 1" in bad.stderr
    root = tmp_path / "runs"
    trained = dlrun("train", "blobs.yaml", "--set", "train.epochs=1", "--set", f"output.runs_root={root}")
    assert trained.returncode == 0, trained.stderr
    (run,) = run_folders(root)
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "completed" and record["epochs_completed"] == 1
    assert set(json.loads((run / "metrics.json").read_text())["metrics"]) == {"loss", "accuracy"}
    stored = (run / "config.yaml").read_text()
    assert "name: blobs" in stored and "architecture: wide_mlp" in stored and "units: 64" in stored
