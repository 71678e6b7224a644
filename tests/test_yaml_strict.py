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
