"""YAML that remembers lines: duplicate keys, bad syntax and missing files are coded errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from warden.errors import ConfigError
from warden.yamlsource import config_error_from_validation, load_yaml, parse_yaml


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        pytest.param("a: 1\nb: 2\na: 3\n", 3, "a", id="at the top level"),
        pytest.param("# comment\n\na: 1\n\n\na: 2\n", 6, "a", id="after blank lines"),
        pytest.param("agent:\n  name: x\n  mode: act\n  name: y\n", 4, "agent.name", id="nested"),
        pytest.param(
            "a:\n  x: 1\n  y:\n    - k: 1\n      k: 2\n", 5, "a.y.0.k", id="inside a list item"
        ),
        pytest.param("a: {x: 1, x: 2}\n", 1, "a.x", id="in a flow mapping"),
        pytest.param("a:\n  b: 1\n  c:\n    d: 1\n  b: 2\n", 5, "a.b", id="after a sub-mapping"),
    ],
)
def test_a_duplicate_key_is_refused_at_the_line_of_the_second_key(
    text: str, line: int, field: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_yaml(text, file="dup.yaml")
    err = caught.value
    assert (err.code, err.file, err.line, err.field) == ("W-CFG-003", "dup.yaml", line, field)
    assert str(err).startswith(f"dup.yaml:{line}: W-CFG-003: {field}: duplicate key")
    assert "fix: Remove or rename one of the two keys." in str(err)


def test_a_duplicate_key_in_a_file_names_the_file_as_displayed(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("agent:\n  name: a\n  budgets: {}\n  name: b\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_yaml(path, display="agents/agent.yaml")
    assert (caught.value.file, caught.value.line) == ("agents/agent.yaml", 4)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param("a:\n\tb: 1\n", 2, id="a tab indents a key"),
        pytest.param("a:\n  b: 1\n\tc: 2\n", 3, id="a tab after spaces"),
        pytest.param("a:\n  b: 1\n c: 2\n", 3, id="a wrong indentation"),
        pytest.param("a: [1, 2\nb: 3\n", 2, id="an unclosed bracket"),
        pytest.param("a: 1\n---\nb: 2\n", 2, id="two documents"),
        pytest.param("a: b: c\n", 1, id="a colon in a plain value"),
    ],
)
def test_text_that_is_not_yaml_is_refused_with_w_cfg_002_and_the_line(text: str, line: int) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_yaml(text, file="bad.yaml")
    err = caught.value
    assert (err.code, err.file, err.line) == ("W-CFG-002", "bad.yaml", line)
    assert err.message.startswith("not valid YAML: ")
    assert str(err).startswith(f"bad.yaml:{line}: W-CFG-002: ")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('a: "abc\nb: 2\n', id="an unclosed double quote"),
        pytest.param("a: 'abc\nb: 2\n", id="an unclosed single quote"),
    ],
)
def test_an_unclosed_quote_is_refused_with_w_cfg_002_and_a_line(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_yaml(text, file="bad.yaml")
    assert caught.value.code == "W-CFG-002"
    assert caught.value.line is not None
    assert caught.value.line >= 1


def test_an_unclosed_quote_is_reported_where_the_quote_opens() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_yaml('a: "abc\nb: 2\n', file="bad.yaml")
    assert caught.value.line == 1


def test_a_key_that_is_not_a_scalar_is_refused_with_its_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_yaml("a: 1\n? [x, y]\n: 2\n", file="keys.yaml")
    assert (caught.value.code, caught.value.line) == ("W-CFG-004", 2)


DOC = """\
# an agent manifest
agent:
  name: a
  permissions:
    allowed_tools:
      - x
      - y
    t:
      max_a: 1
  tags: [p, q]
"""


@pytest.mark.parametrize(
    ("loc", "line"),
    [
        pytest.param((), 2, id="the root"),
        pytest.param(("agent",), 2, id="a top-level key"),
        pytest.param(("agent", "name"), 3, id="a nested key"),
        pytest.param(("agent", "permissions", "allowed_tools"), 5, id="a key holding a list"),
        pytest.param(("agent", "permissions", "allowed_tools", 0), 6, id="the first item"),
        pytest.param(("agent", "permissions", "allowed_tools", 1), 7, id="the second item"),
        pytest.param(("agent", "permissions", "t", "max_a"), 9, id="three levels down"),
        pytest.param(("agent", "tags", 1), 10, id="an item of a flow list"),
        pytest.param(("agent", "permissions", "t", "nope"), 8, id="a missing key: its parent"),
        pytest.param(("agent", "nope", "deeper", 3), 2, id="a missing branch: nearest ancestor"),
        pytest.param(["agent", "name"], 3, id="a list as the path"),
    ],
)
def test_line_of_finds_the_line_of_a_nested_path(loc: tuple[str | int, ...], line: int) -> None:
    doc = parse_yaml(DOC, file="m.yaml")
    assert doc.line_of(loc) == line


def test_a_parsed_document_keeps_its_data_and_text() -> None:
    doc = parse_yaml(DOC, file="m.yaml")
    assert doc.mapping() is not None
    assert doc.data["agent"]["permissions"]["allowed_tools"] == ["x", "y"]
    assert doc.text == DOC
    assert parse_yaml("- a\n", file="l.yaml").mapping() is None


def test_an_empty_document_has_no_data_and_no_line() -> None:
    doc = parse_yaml("", file="empty.yaml")
    assert doc.data is None
    assert doc.line_of(("a",)) is None


def test_an_error_built_from_a_document_points_at_the_path() -> None:
    doc = parse_yaml(DOC, file="m.yaml")
    err = doc.error("W-CFG-004", "wrong", ("agent", "permissions", "t", "max_a"))
    assert (err.file, err.line, err.field) == ("m.yaml", 9, "agent.permissions.t.max_a")
    assert str(err).startswith("m.yaml:9: W-CFG-004: agent.permissions.t.max_a: wrong")


def test_a_validation_error_becomes_a_config_error_at_the_field_line() -> None:
    class Spec(BaseModel):
        model_config = ConfigDict(extra="forbid")
        name: str
        count: int

    doc = parse_yaml("spec:\n  name: a\n  count: many\n", file="s.yaml")
    with pytest.raises(ValidationError) as caught:
        Spec.model_validate(doc.data["spec"])
    err = config_error_from_validation(doc, caught.value, base=("spec",))
    assert (err.code, err.line, err.field) == ("W-CFG-004", 3, "spec.count")
    assert "'many'" in err.message


def test_a_missing_file_is_w_cfg_001_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_yaml(tmp_path / "nope.yaml", display="agents/nope.yaml")
    err = caught.value
    assert (err.code, err.file, err.line) == ("W-CFG-001", "agents/nope.yaml", None)
    assert str(err).startswith("agents/nope.yaml: W-CFG-001: cannot read the file")


def test_a_file_that_is_not_utf8_is_w_cfg_001(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_yaml(path)
    assert caught.value.code == "W-CFG-001"
    assert caught.value.file == str(path)


def test_a_folder_given_as_a_file_is_w_cfg_001(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_yaml(tmp_path)
    assert caught.value.code == "W-CFG-001"
