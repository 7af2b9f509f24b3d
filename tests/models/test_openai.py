"""The OpenAI adapter's wire shape: chat messages, tool calls, token limits, Azure."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.models.brains import Brain, wired
from warden.models.base import Message, Model, ModelRequest, ModelTurn, Role, ToolSpec, ToolUse
from warden.models.openai import OpenAIModel
from warden.provenance import Label
from warden.testing.loopback import OpenAIServer

LOOKUP = ToolSpec(
    name="lookup_order",
    description="Find an order by id.",
    parameters={"type": "object", "properties": {"order_id": {"type": "string"}}},
)

CONVERSATION = ModelRequest(
    messages=(
        Message(role=Role.SYSTEM, content="You are a support agent."),
        Message(role=Role.USER, content="Where is ord_1?", label=Label.UNTRUSTED),
        Message(
            role=Role.ASSISTANT,
            content="Let me look.",
            label=Label.MODEL,
            tool_calls=(
                ToolUse(
                    id="call_1",
                    name="lookup_order",
                    arguments={"order_id": "ord_1"},
                    raw='{"order_id": "ord_1"}',
                ),
            ),
        ),
        Message(
            role=Role.TOOL,
            content='{"status": "shipped"}',
            label=Label.TOOL,
            tool_call_id="call_1",
            name="lookup_order",
        ),
        Message(role=Role.USER, content="Thanks!", label=Label.UNTRUSTED),
    ),
    tools=(LOOKUP,),
    max_tokens=256,
    temperature=0.2,
)


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer(Brain()) as s:
        yield s


def test_a_conversation_goes_on_the_wire_as_chat_messages(server: OpenAIServer) -> None:
    with OpenAIModel("gpt-test", base_url=server.base_url, api_key="sk-test") as model:
        model.complete(CONVERSATION)

    (sent,) = server.requests
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.body["messages"] == [
        {"role": "system", "content": "You are a support agent."},
        {"role": "user", "content": "Where is ord_1?"},
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup_order", "arguments": '{"order_id": "ord_1"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "shipped"}'},
        {"role": "user", "content": "Thanks!"},
    ]
    assert sent.body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "lookup_order",
                "description": "Find an order by id.",
                "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
            },
        }
    ]
    assert sent.body["model"] == "gpt-test"
    assert sent.body["temperature"] == 0.2
    assert sent.body["max_completion_tokens"] == 256 and "max_tokens" not in sent.body


def test_the_server_reads_back_the_conversation_the_adapter_sent(server: OpenAIServer) -> None:
    with OpenAIModel("gpt-test", base_url=server.base_url, api_key="sk-test") as model:
        model.complete(CONVERSATION)

    assert isinstance(server.brain, Brain)
    (seen,) = server.brain.requests
    assert [(m.role, m.content) for m in seen.messages] == [
        (m.role, m.content) for m in CONVERSATION.messages
    ]
    assert seen.messages[2].tool_calls == CONVERSATION.messages[2].tool_calls
    assert (seen.messages[3].tool_call_id, seen.messages[3].name) == ("call_1", "lookup_order")
    assert seen.tools == CONVERSATION.tools
    assert seen.max_tokens == 256


def test_an_assistant_message_with_only_calls_has_null_content(server: OpenAIServer) -> None:
    calls_only = ModelRequest(
        messages=(
            CONVERSATION.messages[1],
            Message(
                role=Role.ASSISTANT,
                label=Label.MODEL,
                tool_calls=(ToolUse(id="call_1", name="lookup_order", arguments={"order_id": 1}),),
            ),
            CONVERSATION.messages[3],
        )
    )
    with OpenAIModel("gpt-test", base_url=server.base_url, api_key="sk-test") as model:
        model.complete(calls_only)

    assistant = server.requests[0].body["messages"][1]
    assert assistant["content"] is None
    assert assistant["tool_calls"][0]["function"]["arguments"] == '{"order_id": 1}'


def test_a_malformed_call_goes_back_as_the_model_wrote_it(server: OpenAIServer) -> None:
    broken = ToolUse(
        id="call_1", name="lookup_order", arguments=None, raw='{"order_id": ', error="not JSON"
    )
    request = ModelRequest(
        messages=(
            CONVERSATION.messages[1],
            Message(role=Role.ASSISTANT, label=Label.MODEL, tool_calls=(broken,)),
            Message(
                role=Role.TOOL, content="Invalid arguments.", tool_call_id="call_1", is_error=True
            ),
        )
    )
    with OpenAIModel("gpt-test", base_url=server.base_url, api_key="sk-test") as model:
        model.complete(request)

    call = server.requests[0].body["messages"][1]["tool_calls"][0]
    assert call["function"]["arguments"] == '{"order_id": '


@pytest.mark.parametrize(
    ("provider", "limit"),
    [("openai", "max_completion_tokens"), ("vllm", "max_tokens"), ("ollama", "max_tokens")],
)
def test_openai_gets_the_new_token_limit_and_compatible_servers_the_old(
    server: OpenAIServer, provider: str, limit: str
) -> None:
    with OpenAIModel(
        "llama-3.1-8b", base_url=server.base_url, api_key="unused", provider=provider
    ) as model:
        model.complete(CONVERSATION)

    body = server.requests[0].body
    (other,) = {"max_tokens", "max_completion_tokens"} - {limit}
    assert body[limit] == 256 and other not in body
    assert model.provider == provider


def test_default_headers_reach_the_server(server: OpenAIServer) -> None:
    with OpenAIModel(
        "gpt-test",
        base_url=server.base_url,
        api_key="sk-proxy",
        default_headers={"X-Team": "support"},
    ) as model:
        model.complete(CONVERSATION)

    assert server.requests[0].headers["x-team"] == "support"


def test_an_azure_deployment_is_called_on_its_deployment_path() -> None:
    with (
        wired("openai", ModelTurn(text="Hi from Azure.")) as wire,
        OpenAIModel.azure(
            "gpt-4o-mini-prod",
            endpoint=wire.server.root_url,
            api_version="2024-10-21",
            api_key="azure-key",
        ) as model,
    ):
        turn = model.complete(CONVERSATION)

    (sent,) = wire.server.requests
    assert sent.path == "/openai/deployments/gpt-4o-mini-prod/chat/completions"
    assert sent.query["api-version"] == "2024-10-21"
    assert sent.headers["api-key"] == "azure-key"
    assert sent.body["max_completion_tokens"] == 256
    assert turn.text == "Hi from Azure."
    assert (model.name, model.provider) == ("gpt-4o-mini-prod", "azure")


def test_a_ready_client_is_used_as_it_is(server: OpenAIServer) -> None:
    client = openai.OpenAI(base_url=server.base_url, api_key="sk-own", max_retries=0)
    with client:
        model = OpenAIModel("gpt-test", client=client)
        model.complete(CONVERSATION)
        model.close()  # the caller's client stays open

        model.complete(CONVERSATION)

    assert [r.headers["authorization"] for r in server.requests] == ["Bearer sk-own"] * 2


def test_a_ready_client_does_not_mix_with_connection_options(server: OpenAIServer) -> None:
    with (
        openai.OpenAI(base_url=server.base_url, api_key="sk-own") as client,
        pytest.raises(TypeError, match="either a ready client"),
    ):
        OpenAIModel("gpt-test", client=client, api_key="sk-other")


def test_the_adapter_is_a_model(server: OpenAIServer) -> None:
    with OpenAIModel("gpt-test", base_url=server.base_url, api_key="sk-test") as model:
        assert isinstance(model, Model)
