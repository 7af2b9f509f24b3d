"""@warden.tool: strict contracts, declarations and schema export."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field, ValidationError

import warden
from warden.tools import ToolRegistry, to_anthropic, to_mcp, to_openai


class Refund(BaseModel):
    order_id: str = Field(min_length=6)
    amount_usd: float = Field(gt=0, le=500)
    note: str | None = None


def make_refund_tool(**options: object) -> warden.Tool:
    def create_refund(args: Refund) -> dict[str, float]:
        """Refund an order."""
        return {"amount": args.amount_usd}

    return warden.tool(**options)(create_refund)  # type: ignore[no-any-return]


STRICT = [
    ("int for str", {"order_id": 123456, "amount_usd": 1.0}),
    ("str for float", {"order_id": "ord_123", "amount_usd": "1.0"}),
    ("unknown field", {"order_id": "ord_123", "amount_usd": 1.0, "x": 1}),
    ("infinity", {"order_id": "ord_123", "amount_usd": float("inf")}),
    ("too long string", {"order_id": "o" * 10_001, "amount_usd": 1.0}),
]


@pytest.mark.parametrize("args", [s[1] for s in STRICT], ids=[s[0] for s in STRICT])
def test_the_contract_coerces_nothing_and_forbids_unknown_fields(args: dict[str, object]) -> None:
    t = make_refund_tool(risk="high_risk")
    with pytest.raises(ValidationError):
        t.model.model_validate(args)


def test_a_plain_model_is_made_strict_without_changing_the_users_class() -> None:
    t = make_refund_tool()
    assert t.user_model is Refund and t.model is not Refund
    assert issubclass(t.model, Refund)
    Refund.model_validate({"order_id": "ord_123", "amount_usd": "1.5"})  # the user's stays lax


def test_the_decorated_tool_still_calls_the_function() -> None:
    t = make_refund_tool(risk="write")
    assert t(Refund(order_id="ord_123", amount_usd=2.0)) == {"amount": 2.0}
    assert (t.name, t.description, t.risk) == (
        "create_refund",
        "Refund an order.",
        warden.RiskTier.WRITE,
    )


BAD_DECLARATIONS = [
    ("unknown tier", {"risk": "extreme"}),
    ("sensitive not a field", {"sensitive": ["iban"]}),
    ("zero timeout", {"timeout_s": 0}),
    ("negative retries", {"retries": -1}),
    ("cache on a write", {"risk": "write", "cache_ttl_s": 10}),
]


@pytest.mark.parametrize(
    "options", [b[1] for b in BAD_DECLARATIONS], ids=[b[0] for b in BAD_DECLARATIONS]
)
def test_bad_declarations_fail_with_a_code(options: dict[str, object]) -> None:
    with pytest.raises(warden.ToolDefinitionError) as exc:
        make_refund_tool(**options)
    assert exc.value.code == "W-TOOL-003"


def test_a_function_without_a_model_argument_is_refused() -> None:
    def no_model(x: int) -> None: ...

    with pytest.raises(warden.ToolDefinitionError) as exc:
        warden.tool(no_model)
    assert exc.value.code == "W-TOOL-001"


def test_a_duplicate_tool_name_fails_at_registration() -> None:
    registry = ToolRegistry([make_refund_tool()])
    with pytest.raises(warden.ToolDefinitionError) as exc:
        registry.add(make_refund_tool())
    assert exc.value.code == "W-TOOL-002"
    assert "create_refund" in exc.value.message


def test_hooks_attach_by_decorator() -> None:
    t = make_refund_tool(risk="high_risk")

    @t.dry_run
    def plan(args: Refund) -> dict[str, float]:
        return {"would_refund": args.amount_usd}

    @t.compensate
    def undo(args: Refund) -> None: ...

    assert t.dry_run_fn is plan and t.compensate_fn is undo and t.reconcile_fn is None


def test_openai_export_has_the_function_shape() -> None:
    spec = to_openai(make_refund_tool())
    fn = spec["function"]
    assert spec["type"] == "function" and fn["name"] == "create_refund"
    params = fn["parameters"]
    assert params["type"] == "object" and params["additionalProperties"] is False
    assert set(params["required"]) == {"order_id", "amount_usd"}
    assert "strict" not in fn, "OpenAI strict mode needs every property required"


def test_openai_strict_is_set_when_every_property_is_required() -> None:
    class Q(BaseModel):
        customer_id: str

    def lookup(args: Q) -> None:
        """Look up."""

    assert to_openai(warden.tool(lookup))["function"]["strict"] is True


def test_anthropic_export_uses_input_schema() -> None:
    spec = to_anthropic(make_refund_tool())
    assert set(spec) == {"name", "description", "input_schema"}
    assert spec["input_schema"]["properties"]["amount_usd"]["maximum"] == 500


@pytest.mark.parametrize(
    ("risk", "read_only", "destructive"),
    [("read", True, False), ("write", False, False), ("high_risk", False, True)],
)
def test_mcp_export_derives_annotations_from_the_risk_tier(
    risk: str, read_only: bool, destructive: bool
) -> None:
    spec = to_mcp(make_refund_tool(risk=risk) if risk != "read" else make_refund_tool())
    assert "inputSchema" in spec
    assert spec["annotations"]["readOnlyHint"] is read_only
    assert spec["annotations"]["destructiveHint"] is destructive
    assert spec["_meta"]["warden/risk"] == risk


@pytest.mark.parametrize(
    "limits",
    [
        warden.Limits(max_string_length=0),
        warden.Limits(max_list_length=-1),
        warden.Limits(max_depth=0),
    ],
)
def test_limits_must_be_positive(limits: warden.Limits) -> None:
    with pytest.raises(warden.ToolDefinitionError) as exc:
        make_refund_tool(limits=limits)
    assert exc.value.code == "W-TOOL-003"
