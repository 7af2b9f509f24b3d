"""The Anthropic adapter's wire shape: the system parameter, alternating merged messages,
tool_use and tool_result blocks, usage with the prompt cache."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import pytest
from anthropic import types as wire

from tests.models.brains import Brain
from warden.models.anthropic import AnthropicModel, _usage
from warden.models.base import Message, Model, ModelRequest, Role, ToolSpec, ToolUse, Usage
from warden.provenance import Label
from warden.testing.loopback import AnthropicServer

LOOKUP = ToolSpec(
    name="lookup_order",
    description="Find an order by id.",
    parameters={"type": "object", "properties": {"order_id": {"type": "string"}}},
)


def _call(call_id: str, order: str) -> ToolUse:
    return ToolUse(id=call_id, name="lookup_order", arguments={"order_id": order})


CONVERSATION = ModelRequest(
    messages=(
        Message(role=Role.SYSTEM, content="You are a support agent."),
        Message(role=Role.USER, content="Ticket T-1: where are my orders?", label=Label.TASK),
        Message(role=Role.SYSTEM, content="Answer in English."),
        Message(role=Role.USER, content="ord_1 and ord_2, please.", label=Label.UNTRUSTED),
        Message(
            role=Role.ASSISTANT,
            content="Let me look.",
            label=Label.MODEL,
            tool_calls=(_call("toolu_1", "ord_1"), _call("toolu_2", "ord_2")),
        ),
        Message(role=Role.TOOL, content='{"status": "shipped"}', tool_call_id="toolu_1"),
        Message(role=Role.TOOL, content="No such order.", tool_call_id="toolu_2", is_error=True),
        Message(role=Role.USER, content="Any news?", label=Label.UNTRUSTED),
    ),
    tools=(LOOKUP,),
    max_tokens=300,
    temperature=0.7,
)


@pytest.fixture
def server() -> Iterator[AnthropicServer]:
    with AnthropicServer(Brain()) as s:
        yield s


def _model(server: AnthropicServer) -> AnthropicModel:
    return AnthropicModel("claude-test", base_url=server.base_url, api_key="sk-ant-test")


def test_a_conversation_goes_on_the_wire_as_alternating_messages(
    server: AnthropicServer,
) -> None:
    with _model(server) as model:
        model.complete(CONVERSATION)

    (sent,) = server.requests
    assert (sent.method, sent.path) == ("POST", "/v1/messages")
    assert sent.headers["anthropic-version"]
    assert sent.body["system"] == "You are a support agent.\n\nAnswer in English."
    assert sent.body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Ticket T-1: where are my orders?"},
                {"type": "text", "text": "ord_1 and ord_2, please."},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "lookup_order",
                    "input": {"order_id": "ord_1"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "lookup_order",
                    "input": {"order_id": "ord_2"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": '{"status": "shipped"}',
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": "No such order.",
                    "is_error": True,
                },
                {"type": "text", "text": "Any news?"},
            ],
        },
    ]
    assert sent.body["tools"] == [
        {
            "name": "lookup_order",
            "description": "Find an order by id.",
            "input_schema": {"type": "object", "properties": {"order_id": {"type": "string"}}},
        }
    ]
    assert sent.body["max_tokens"] == 300
    assert "temperature" not in sent.body  # API version 2026-10-21 refuses it


def test_the_server_reads_back_the_conversation_the_adapter_sent(server: AnthropicServer) -> None:
    with _model(server) as model:
        model.complete(CONVERSATION)

    assert isinstance(server.brain, Brain)
    (seen,) = server.brain.requests
    assert [m.role for m in seen.messages] == [
        Role.SYSTEM,
        Role.USER,
        Role.USER,
        Role.ASSISTANT,
        Role.TOOL,
        Role.TOOL,
        Role.USER,
    ]
    assert [c.arguments for c in seen.messages[3].tool_calls] == [
        {"order_id": "ord_1"},
        {"order_id": "ord_2"},
    ]
    assert [(m.tool_call_id, m.is_error) for m in seen.messages[4:6]] == [
        ("toolu_1", False),
        ("toolu_2", True),
    ]
    assert seen.tools == (LOOKUP,)


def test_tool_results_go_first_in_a_merged_user_message(server: AnthropicServer) -> None:
    request = ModelRequest(
        messages=(
            Message(role=Role.USER, content="Where is ord_1?"),
            Message(role=Role.ASSISTANT, tool_calls=(_call("toolu_1", "ord_1"),)),
            Message(role=Role.USER, content="Hurry, please."),
            Message(role=Role.TOOL, content="shipped", tool_call_id="toolu_1"),
        )
    )
    with _model(server) as model:
        model.complete(request)

    last = server.requests[0].body["messages"][-1]
    assert [block["type"] for block in last["content"]] == ["tool_result", "text"]


def test_a_malformed_call_goes_back_with_an_empty_input(server: AnthropicServer) -> None:
    broken = ToolUse(id="toolu_1", name="lookup_order", arguments=None, raw='{"order_id": ')
    request = ModelRequest(
        messages=(
            Message(role=Role.USER, content="Where is ord_1?"),
            Message(role=Role.ASSISTANT, tool_calls=(broken,)),
            Message(
                role=Role.TOOL, content="Invalid arguments.", tool_call_id="toolu_1", is_error=True
            ),
        )
    )
    with _model(server) as model:
        model.complete(request)

    assistant = server.requests[0].body["messages"][1]
    assert assistant["content"][0]["input"] == {}


def test_usage_counts_cache_reads_and_writes_as_input() -> None:
    usage = wire.Usage(
        input_tokens=100,
        cache_read_input_tokens=600,
        cache_creation_input_tokens=300,
        output_tokens=5,
    )

    assert _usage(usage) == Usage(input_tokens=1000, output_tokens=5, cached_input_tokens=600)


def test_usage_without_cache_fields_is_plain_input() -> None:
    usage = wire.Usage(input_tokens=100, output_tokens=5)

    assert _usage(usage) == Usage(input_tokens=100, output_tokens=5, cached_input_tokens=0)


def test_a_ready_client_does_not_mix_with_connection_options(server: AnthropicServer) -> None:
    with (
        anthropic.Anthropic(base_url=server.base_url, api_key="sk-own") as client,
        pytest.raises(TypeError, match="either a ready client"),
    ):
        AnthropicModel("claude-test", client=client, base_url=server.base_url)


def test_the_adapter_is_a_model(server: AnthropicServer) -> None:
    with _model(server) as model:
        assert isinstance(model, Model)
        assert (model.name, model.provider) == ("claude-test", "anthropic")
