import math

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


# --- exact messages and limits (each pinned, so a changed word or a shifted bound fails) ----------------

EXACT = {
    "a: 1\nb: 2\na: 3\n": "line 3, column 1: duplicate key 'a' (first defined on line 1)",
    "{a: 1, a: 2}": "line 1, column 8: duplicate key 'a' (first defined on line 1)",
    "a:\n  b: 1\n  b: 2\n": "line 3, column 3: duplicate key 'b' (first defined on line 2)",
    "x: !!python/object:os.system 1\n": "line 1, column 4: tag 'tag:yaml.org,2002:python/object:os.system' is not allowed "
    "(configs are plain YAML data)",
    "a: [1\n": "line 2, column 1: while parsing a flow sequence started on line 1, expected ',' or ']', but got '<stream end>'",
    "[1, 2]: 3\n": "line 1, column 1: a list cannot be a key; expected a plain key such as `epochs`",
    "? [1]\n: 2\n": "line 1, column 3: a list cannot be a key; expected a plain key such as `epochs`",
    "a: &x [*x]\n": "line 1, column 4: an alias refers to itself (the value would be infinite); expected plain data",
}


@pytest.mark.parametrize("text", sorted(EXACT), ids=[f"case{index}" for index in range(len(EXACT))])
def test_yaml_errors_say_where_and_what_exactly(text):
    with pytest.raises(errors.ConfigError) as raised:
        yaml_strict.loads(text, source="c.yaml")
    assert raised.value.problems == [f"YAML error at {EXACT[text]}"] and raised.value.source == "c.yaml"


def test_yaml_1_2_scalars():
    assert yaml_strict.loads("- 1\n- 1e3\n- yes\n- TRUE\n- .inf\n- 1_000.5\n") == [1, 1000.0, "yes", True, math.inf, 1000.5]


def test_alias_expansion_is_counted_exactly_to_the_limit(monkeypatch):
    """{a: [1, 2], b: *a's list}: the mapping, two keys, the list and its two items twice = 9 values."""
    text = "a: &x [1, 2]\nb: *x\n"
    monkeypatch.setattr(yaml_strict, "MAX_VALUES", 9)
    assert yaml_strict.loads(text) == {"a": [1, 2], "b": [1, 2]}
    monkeypatch.setattr(yaml_strict, "MAX_VALUES", 8)
    with pytest.raises(errors.ConfigError) as raised:
        yaml_strict.loads(text)
    assert raised.value.problems == [
        "YAML error at line 1, column 1: aliases expand to more than 8 values; expected a config "
        "that spells out its values (an alias may repeat a small section, not multiply one)"
    ]


def test_depth_is_counted_through_aliases_exactly_to_the_limit(monkeypatch):
    """b: [*x] with x = [[1]]: the mapping, b's list, x's two lists and the 1 are 5 levels (4 without the alias)."""
    text = "a: &x [[1]]\nb: [*x]\n"
    monkeypatch.setattr(yaml_strict, "MAX_DEPTH", 5)
    assert yaml_strict.loads(text) == {"a": [[1]], "b": [[[1]]]}
    monkeypatch.setattr(yaml_strict, "MAX_DEPTH", 4)
    too_deep = "the value is nested more than 64 levels deep; expected a config of plain sections"
    with pytest.raises(errors.ConfigError) as raised:
        yaml_strict.loads(text)
    assert raised.value.problems == [f"YAML error at line 1, column 4: {too_deep}"]
    assert yaml_strict.loads("a: [[1]]\n") == {"a": [[1]]}  # 4 levels, no alias
    with pytest.raises(errors.ConfigError) as raised:
        yaml_strict.loads("a: [[[1]]]\n")  # 5 levels, no alias: refused while composing
    assert raised.value.problems == [f"YAML error at line 1, column 7: {too_deep}"]


def test_preview_renders_json_cut_at_the_limit():
    import datetime

    assert yaml_strict.preview({1: [1, 2, {"k": None}], "s": "x" * 70}) == '{"1": [1, 2, {"k": null}], "s": "xxxxxxxxxxxxxxxxxxxxxxxx...'
    assert yaml_strict.preview([[["deep"]]], limit=10) == '[[["dee...'
    assert (
        yaml_strict.preview({"when": datetime.date(2020, 1, 2), "n": math.nan, "set": {1}})
        == '{"when": datetime.date(2020, 1, 2), "n": NaN, "set": {1}}'
    )
    assert yaml_strict.preview([1, [2, [3]]]) == "[1, [2, [3]]]"


def test_dumps_keeps_the_key_order_unicode_and_short_lists_inline():
    assert yaml_strict.dumps({"b": [1, 2], "a": {"é": "ü", "l": [{"x": 1}]}}) == "b: [1, 2]\na:\n  é: ü\n  l:\n  - {x: 1}\n"


def test_expansion_check_refuses_a_deep_tree_composed_elsewhere(monkeypatch):
    """The depth limit holds on the composed nodes themselves, not only through StrictLoader's composer."""
    import yaml

    monkeypatch.setattr(yaml_strict, "MAX_DEPTH", 3)
    with pytest.raises(yaml.YAMLError) as raised:
        yaml_strict._check_expansion(yaml.compose("a: [[[1]]]\n", Loader=yaml.SafeLoader))
    assert yaml_strict._describe(raised.value) == (
        "line 1, column 6: the value is nested more than 64 levels deep; expected a config of plain sections"
    )


def test_a_list_that_reaches_the_value_limit_before_its_end_is_refused(monkeypatch):
    monkeypatch.setattr(yaml_strict, "MAX_VALUES", 5)
    assert yaml_strict.loads("[1, 2, 3, 4]") == [1, 2, 3, 4]  # 5 values
    with pytest.raises(errors.ConfigError, match="aliases expand to more than 5 values"):
        yaml_strict.loads("[1, 2, 3, 4, 5, 6]")  # 5 values after the 4th item, 7 in all


def test_a_reader_error_without_a_position_is_described_whole():
    with pytest.raises(errors.ConfigError) as raised:
        yaml_strict.loads("a: \x07\n")
    assert raised.value.problems == [
        'YAML error at unacceptable character #x0007: special characters are not allowed\n  in "<unicode string>", position 3'
    ]


def test_preview_stops_below_the_depth_limit_and_keeps_a_value_of_exactly_the_limit():
    value = 1
    for level in range(66):
        value = [value] if level % 2 else {"k": value}
    assert yaml_strict.preview(value, limit=1000) == '[{"k": ' * 32 + "[...]" + "}]" * 32
    assert yaml_strict.preview("x" * 58) == '"' + "x" * 58 + '"'  # 60 characters: not cut


def test_an_error_without_a_source_names_a_string():
    with pytest.raises(errors.ConfigError) as raised:
        yaml_strict.loads("a: [")
    assert str(raised.value).startswith("invalid config <string>: YAML error at line 1, column 5: ")
