import pytest

from dlrun import errors
from dlrun.config import yaml_strict


def test_yaml_1_2_numbers_and_booleans():
    data = yaml_strict.loads("a: 1e-3\nb: 2E5\nc: 1.5\nd: 3\ne: true\nf: no\ng: off\nh: False\n")
    assert data == {"a": 0.001, "b": 200000.0, "c": 1.5, "d": 3, "e": True, "f": "no", "g": "off", "h": False}


def test_duplicate_key_names_both_lines():
    with pytest.raises(errors.ConfigError) as caught:
        yaml_strict.loads("train:\n  epochs: 1\n  epochs: 2\n", source="c.yaml")
    message = str(caught.value)
    assert "duplicate key 'epochs' (first defined on line 2)" in message
    assert "line 3" in message and "c.yaml" in message


def test_python_tags_are_refused():
    with pytest.raises(errors.ConfigError, match="tag .*python/object.* is not allowed"):
        yaml_strict.loads("a: !!python/object/apply:os.system ['echo hacked']\n")


def test_syntax_error_gives_line_number():
    with pytest.raises(errors.ConfigError, match="line 2"):
        yaml_strict.loads("a: 1\nb: [1, 2\n")


def _alias_bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, levels + 1):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([previous] * 10)}]")
    return "\n".join(lines) + f"\nname: *a{levels}\n"


def test_an_alias_bomb_is_refused_at_once(tmp_path):
    import time

    from tests.conftest import CONFIGS, invoke

    config = tmp_path / "bomb.yaml"
    config.write_text(_alias_bomb(9))
    started = time.perf_counter()
    result = invoke("config", "validate", str(config))
    assert time.perf_counter() - started < 1.0
    assert result.exit_code == 2
    assert "aliases expand to more than" in result.output and str(config) in result.output
    assert "Traceback" not in result.output
    flow = "{" + _alias_bomb(9).strip().replace("\n", ", ") + "}"
    started = time.perf_counter()
    result = invoke("config", "validate", CONFIGS / "quickstart.yaml", "--set", "model=" + flow)
    assert time.perf_counter() - started < 1.0
    assert result.exit_code == 2 and "aliases expand to more than" in result.output and "--set 'model=" in result.output


def test_an_alias_bomb_in_set_is_refused_at_once():
    import time

    started = time.perf_counter()
    flow = "{" + _alias_bomb(9).strip().replace("\n", ", ") + "}"
    with pytest.raises(errors.ConfigError, match="aliases expand to more than 100000 values") as caught:
        from dlrun.config import overrides

        overrides.parse("model=" + flow)
    assert "--set 'model=" in str(caught.value)
    assert time.perf_counter() - started < 1.0


def test_a_small_alias_is_still_fine():
    assert yaml_strict.loads("a: &x [1, 2]\nb: *x\n") == {"a": [1, 2], "b": [1, 2]}


def test_an_alias_to_itself_is_refused():
    with pytest.raises(errors.ConfigError, match="refers to itself"):
        yaml_strict.loads("a: &x [1, *x]\n")


def test_deep_nesting_is_refused_without_recursion_error(tmp_path):
    from tests.conftest import invoke

    config = tmp_path / "deep.yaml"
    config.write_text("name: " + "[" * 500 + "]" * 500 + "\n")
    result = invoke("config", "validate", config)
    assert result.exit_code == 2 and "nested more than 64 levels deep" in result.output and "RecursionError" not in result.output
    with pytest.raises(errors.ConfigError, match="nested more than 64 levels deep") as caught:
        yaml_strict.loads("name: " + "[" * 500 + "]" * 500 + "\n", source="deep.yaml")
    assert "line 1" in str(caught.value) and "deep.yaml" in str(caught.value)
    with pytest.raises(errors.ConfigError, match="nested more than 64 levels deep"):
        yaml_strict.loads("a:\n" + "".join("  " * depth + f"k{depth}:\n" for depth in range(1, 100)))


def test_preview_cuts_before_rendering():
    nested: list = ["x"] * 10
    for _ in range(8):
        nested = [nested] * 10  # 10**9 leaves when rendered in full
    import time

    started = time.perf_counter()
    text = yaml_strict.preview(nested)
    assert time.perf_counter() - started < 0.1
    assert len(text) <= 60 and text.startswith("[[[[") and text.endswith("...")
    assert yaml_strict.preview({"a": 1}) == '{"a": 1}' and yaml_strict.preview("x" * 100) == '"' + "x" * 56 + "..."
