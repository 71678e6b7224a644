"""Hypothesis fuzzing of `dlrun train` itself (not only `config validate`): a tiny, valid npz config with one key
from the schema set to a value drawn from that key's schema (valid) or to any YAML value (mostly invalid), or
deleted, is trained in-process. Every outcome is one of: exit 0 with a completed run folder; exit 2 with one
`error:` line and no run folder; or, for a valid config whose loss overflows (a huge learning rate or
penalty), exit 1 with the run marked failed saying so. Never a traceback or another exit code."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from dlrun.config import yaml_strict
from tests.conftest import ROOT, invoke, run_folders

SCHEMA = json.loads((ROOT / "schema" / "dlrun-config.schema.json").read_text())
SECTIONS = {  # a key path -> the schema definition of what it holds in the base config below
    ("data",): "NpzData",
    ("model",): "MLPModel",
    ("model", "head"): "Head",
    ("compile",): "CompileConfig",
    ("compile", "optimizer"): "AdamOptimizer",
    ("train",): "TrainConfig",
    ("output",): "OutputConfig",
}
# Keys left alone, and why: the runs root and the data file would send the run elsewhere than this test's
# folders; another dataset or architecture name would download data or weights; Keras cannot switch backends
# inside the test process; the base config's `name` and `seed` are fuzzed, the others are sections.
LEFT_ALONE = {
    ("output", "runs_root"),
    ("data", "path"),
    ("data", "name"),
    ("model", "architecture"),
    ("compile", "optimizer"),
    ("model", "head"),
    ("backend",),
}
BASE = """\
name: fuzz
seed: 3
data: {{name: npz, path: {path}, validation_split: 0.25}}
model: {{architecture: mlp, units: [4], head: {{}}}}
compile: {{optimizer: {{name: adam, learning_rate: 0.01}}}}
train: {{epochs: 1, batch_size: 16, callbacks: [{{name: early_stopping, patience: 1}}]}}
output: {{runs_root: {root}}}
"""


def _properties(definition: str) -> dict:
    return SCHEMA["$defs"][definition]["properties"]


PATHS = sorted({(*section, key) for section, definition in SECTIONS.items() for key in _properties(definition)} | {("name",), ("seed",)})
PATHS = [path for path in PATHS if path not in LEFT_ALONE]


def _schema_of(path: tuple) -> dict:
    if len(path) == 1:
        return SCHEMA["properties"][path[0]]
    return _properties(SECTIONS[path[:-1]])[path[-1]]


def _valid(prop: dict):
    """Values of the kind `prop` describes, kept small (an epoch count of 10**6 would be valid, and slow)."""
    choices = [_valid(option) for option in prop.get("anyOf", [])]
    if "enum" in prop or "const" in prop:
        choices.append(st.sampled_from(prop.get("enum") or [prop.get("const")]))
    kind = prop.get("type")
    low = prop.get("minimum", prop.get("exclusiveMinimum", 0))
    if kind == "integer":
        choices.append(st.integers(low, low + 3))
    elif kind == "number":
        high = min(prop.get("maximum", prop.get("exclusiveMaximum", 1.0)), 1.0)
        choices.append(st.floats(low, high, exclude_min="exclusiveMinimum" in prop, exclude_max="exclusiveMaximum" in prop))
    elif kind == "boolean":
        choices.append(st.booleans())
    elif kind == "string" and "enum" not in prop and "const" not in prop:
        choices.append(st.sampled_from(["accuracy", "val_loss", "cat", "dog", "fuzz-2"]))
    elif kind == "array":
        choices.append(st.lists(st.one_of(st.integers(1, 6), st.sampled_from(["accuracy", "a", "b", "cpu:0"])), max_size=3))
    elif kind == "null":
        choices.append(st.none())
    return st.one_of(choices) if choices else st.nothing()


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12)
)
_any = st.recursive(
    _scalars,
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)),
    max_leaves=5,
)


@st.composite
def _changes(draw):
    path = draw(st.sampled_from(PATHS))
    if draw(st.integers(0, 9)) == 0:
        return path, "delete", None
    value = draw(_valid(_schema_of(path)) if draw(st.booleans()) else _any)
    if path == ("train", "epochs") and isinstance(value, int) and not isinstance(value, bool) and value > 3:
        value = 3  # valid, and short
    return path, "set", value


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz_data")
    generator = np.random.default_rng(0)
    features = generator.normal(size=(40, 4)).astype("float32")
    np.savez(
        folder / "tiny.npz",
        x_train=features,
        y_train=(features[:, 0] > 0).astype("int64"),
        x_test=features[:8],
        y_test=(features[:8, 0] > 0).astype("int64"),
    )
    return folder / "tiny.npz"


@pytest.mark.slow
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(change=_changes())
def test_train_on_fuzzed_configs_completes_or_refuses_cleanly(tmp_path, tiny_npz, change):
    path, action, value = change
    root = tmp_path / f"runs-{uuid.uuid4().hex[:8]}"
    data = yaml_strict.loads(BASE.format(path=json.dumps(str(tiny_npz)), root=json.dumps(str(root))))
    node = data
    for key in path[:-1]:
        node = node[key]
    if action == "delete":
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    config_path = tmp_path / "fuzz.yaml"
    config_path.write_text(yaml_strict.dumps(data), encoding="utf-8")
    result = invoke("train", config_path)
    said = f"{path} {action} {value!r}: exit {result.exit_code}\n{result.output}"
    assert "Traceback" not in result.output and result.exit_code in (0, 1, 2), (said, result.exception)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), (said, result.exception)
    folders = run_folders(root)
    if result.exit_code == 2:
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, said
        assert folders == [], said  # refused before the run folder exists
        return
    (folder,) = folders
    record = json.loads((folder / "run.json").read_text())
    if result.exit_code == 0:
        assert record["status"] == "completed", said
        assert json.loads((folder / "history.json").read_text())["epoch"], said
    else:  # a valid config whose numbers overflowed: said, and recorded
        assert record["status"] == "failed" and "loss became" in record["error"], said
        assert result.stderr.startswith("error: ") and "loss became" in result.stderr, said
