"""Upstream tools as Warden tools: the JSON Schema contract, checked through the gate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import warden
from warden.mcp import declared_tools
from warden.mcp.contract import Contract, UpstreamArguments
from warden.tools.spec import ToolContext, describe_validation_error

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "mcp"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "path": {"type": "string", "maxLength": 20},
        "lines": {"type": "integer", "minimum": 1},
        "options": {"type": "object", "properties": {"encoding": {"type": "string"}}},
    },
    "required": ["path"],
}


def _model(schema: dict[str, Any] | None) -> Any:
    """An argument model as the proxy file makes them, with the upstream's `schema`."""
    contract = Contract("files__read")
    if schema is not None:
        assert contract.offer(schema) is None
    return type("files__read", (UpstreamArguments,), {"contract": contract})


@pytest.mark.parametrize(
    ("args", "where", "says"),
    [
        ({"path": 3}, "path", "should be of type string"),
        ({}, "path", "required field is missing"),
        ({"path": "a", "colour": "red"}, "colour", "unknown field"),
        ({"path": "a", "lines": 0}, "lines", "less than the minimum"),
        ({"path": "a", "lines": "5"}, "lines", "should be of type integer"),
        ({"path": "a", "options": {"encoding": 8}}, "options.encoding", "type string"),
        ({"path": "x" * 21}, "path", "is too long"),
    ],
    ids=["type", "missing", "unknown field", "minimum", "no coercion", "nested", "length"],
)
def test_the_contract_names_the_argument_that_breaks_it(
    args: dict[str, Any], where: str, says: str
) -> None:
    model = _model(SCHEMA)
    with pytest.raises(ValidationError) as caught:
        model.model_validate(args)
    path, message = describe_validation_error(caught.value)
    assert path == where and says in message


def test_valid_arguments_come_back_as_given() -> None:
    args = {"path": "a.txt", "lines": 3, "options": {"encoding": "utf-8"}}
    assert _model(SCHEMA).model_validate(args).model_dump(mode="json") == args


def test_without_the_upstreams_schema_every_call_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        _model(None).model_validate({"path": "a"})
    assert "W-MCP-006" in describe_validation_error(caught.value)[1]


def test_a_schema_that_says_so_keeps_its_additional_properties() -> None:
    open_schema = {**SCHEMA, "additionalProperties": True}
    assert _model(open_schema).model_validate({"path": "a", "x": 1}).model_dump() == {
        "path": "a",
        "x": 1,
    }


def test_an_invalid_upstream_schema_leaves_the_tool_without_a_contract() -> None:
    contract = Contract("t")
    problem = contract.offer({"type": "object", "properties": {"a": {"type": 12}}})
    assert problem is not None and "not a valid JSON Schema" in problem
    assert not contract.known


def test_a_pinned_schema_wins_over_the_upstreams() -> None:
    contract = Contract("t", {"type": "object", "properties": {"a": {"type": "string"}}})
    assert contract.offer({"type": "object", "properties": {"b": {"type": "integer"}}}) is None
    schema = contract.schema
    assert schema is not None and set(schema["properties"]) == {"a"}


def test_declared_tools_are_the_same_objects_for_the_same_file() -> None:
    first = declared_tools(EXAMPLE / "mcp.yaml")
    second = declared_tools(EXAMPLE / "mcp.yaml")
    assert set(first) == {
        "notes__list_notes",
        "notes__read_note",
        "notes__write_note",
        "notes__delete_note",
    }
    assert all(first[n] is second[n] for n in first)
    write = first["notes__write_note"]
    assert write.risk is warden.RiskTier.WRITE and write.timeout_s == 10
    assert write.trusted_output is False


def test_outside_the_proxy_an_upstream_tool_refuses_to_run() -> None:
    tool = declared_tools(EXAMPLE / "mcp.yaml")["notes__write_note"]
    ctx = ToolContext(run_id="r", agent="assistant", idempotency_key="k")
    with pytest.raises(warden.WardenError) as caught:
        tool.run({"name": "a", "text": "b"}, ctx)
    assert caught.value.code == "W-MCP-002"


def test_the_project_loads_and_its_policy_tests_run_without_the_mcp_sdk() -> None:
    """`warden check` and `warden policy test` need no mcp extra: the SDK is blocked."""
    code = (
        "import sys; sys.modules['mcp'] = None; "
        "from warden.cli.main import main; "
        f"sys.argv = ['warden', 'policy', 'test', '-p', {str(EXAMPLE)!r}]; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "3 passed, 0 failed" in done.stdout
