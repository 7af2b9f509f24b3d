"""The loopback model servers refuse what the real APIs refuse, in each provider's error
shape, inject faults as told and record what reached them. Plain HTTP, no SDK."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from warden.errors import ModelError
from warden.models.base import ModelRequest, ModelTurn
from warden.testing.loopback import AnthropicServer, Fault, OpenAIServer

OPENAI_AUTH = {"Authorization": "Bearer sk-test"}
ANTHROPIC_AUTH = {"x-api-key": "sk-ant-test", "anthropic-version": "2026-10-21"}
USER = {"role": "user", "content": "Hello"}


class Echo:
    """Says what it got; raises the error it was given, if any."""

    def __init__(self, error: ModelError | None = None) -> None:
        self.error = error
        self.requests: list[ModelRequest] = []

    def complete(self, request: ModelRequest) -> ModelTurn:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        return ModelTurn(text=f"{len(request.messages)} messages")


def _send(
    url: str, body: Any, headers: Mapping[str, str], method: str = "POST"
) -> tuple[int, dict[str, str], Any]:
    """Status, headers (lower case) and JSON body of one plain HTTP request."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", **headers}, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, _lower(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, _lower(error.headers), json.loads(error.read())


def _lower(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    with OpenAIServer(Echo()) as server:
        yield server


@pytest.fixture
def anthropic_server() -> Iterator[AnthropicServer]:
    with AnthropicServer(Echo()) as server:
        yield server


CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


@pytest.mark.parametrize(
    ("body", "headers", "status", "says"),
    [
        ({"messages": [USER]}, OPENAI_AUTH, 400, "model"),
        ({"model": "m", "messages": []}, OPENAI_AUTH, 400, "messages"),
        ({"model": "m", "messages": [USER]}, {}, 401, "API key"),
        (
            {
                "model": "m",
                "messages": [USER, {"role": "tool", "tool_call_id": "x", "content": ""}],
            },
            OPENAI_AUTH,
            400,
            "role 'tool'",
        ),
        (
            {"model": "m", "messages": [USER, {"role": "assistant", "tool_calls": [CALL]}, USER]},
            OPENAI_AUTH,
            400,
            "call_1",
        ),
    ],
    ids=["no-model", "no-messages", "no-key", "tool-without-call", "call-without-tool"],
)
def test_the_openai_server_refuses_what_the_api_refuses(
    openai_server: OpenAIServer, body: Any, headers: dict[str, str], status: int, says: str
) -> None:
    got, _, answer = _send(openai_server.base_url + "/chat/completions", body, headers)

    assert got == status
    assert says in answer["error"]["message"]
    assert set(answer["error"]) == {"message", "type", "param", "code"}


def test_the_openai_server_checks_the_key_it_was_given() -> None:
    with OpenAIServer(Echo(), api_key="sk-right") as server:
        body = {"model": "m", "messages": [USER]}
        url = server.base_url + "/chat/completions"
        wrong, _, answer = _send(url, body, {"Authorization": "Bearer sk-wrong-key-123"})
        right, _, _ = _send(url, body, {"Authorization": "Bearer sk-right"})

    assert (wrong, right) == (401, 200)
    assert answer["error"]["code"] == "invalid_api_key"
    assert "sk-wrong-key-123" not in answer["error"]["message"]


def test_the_openai_server_lists_a_model(openai_server: OpenAIServer) -> None:
    status, _, answer = _send(openai_server.base_url + "/models", None, {}, method="GET")

    assert status == 200
    assert answer["object"] == "list" and answer["data"][0]["object"] == "model"


def test_an_unknown_path_is_404_in_the_provider_shape(anthropic_server: AnthropicServer) -> None:
    status, _, answer = _send(anthropic_server.base_url + "/v1/complete", {}, ANTHROPIC_AUTH)

    assert status == 404
    assert answer["type"] == "error" and answer["error"]["type"] == "not_found_error"


TOOL_USE = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}
TOOL_RESULT = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}


def _messages(*messages: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "claude-test", "max_tokens": 10, "messages": list(messages), **extra}


@pytest.mark.parametrize(
    ("body", "headers", "status", "says"),
    [
        (_messages(USER), {"x-api-key": "k"}, 400, "anthropic-version"),
        (_messages(USER), {"anthropic-version": "2026-10-21"}, 401, "API key"),
        ({"model": "claude-test", "messages": [USER]}, ANTHROPIC_AUTH, 400, "max_tokens"),
        (_messages(USER, temperature=0.5), ANTHROPIC_AUTH, 400, "temperature"),
        (_messages(USER, USER), ANTHROPIC_AUTH, 400, "alternate"),
        (_messages({"role": "assistant", "content": "Hi"}), ANTHROPIC_AUTH, 400, "first"),
        (_messages({"role": "user", "content": ""}), ANTHROPIC_AUTH, 400, "non-empty"),
        (
            _messages(USER, {"role": "assistant", "content": [TOOL_USE]}, USER),
            ANTHROPIC_AUTH,
            400,
            "toolu_1",
        ),
        (
            _messages(
                USER,
                {"role": "assistant", "content": [TOOL_USE]},
                {"role": "user", "content": [{"type": "text", "text": "x"}, TOOL_RESULT]},
            ),
            ANTHROPIC_AUTH,
            400,
            "before any other content",
        ),
    ],
    ids=[
        "no-version",
        "no-key",
        "no-max-tokens",
        "temperature",
        "two-users-in-a-row",
        "assistant-first",
        "empty-text",
        "tool-use-unanswered",
        "tool-result-after-text",
    ],
)
def test_the_anthropic_server_refuses_what_the_api_refuses(
    anthropic_server: AnthropicServer, body: Any, headers: dict[str, str], status: int, says: str
) -> None:
    got, _, answer = _send(anthropic_server.base_url + "/v1/messages", body, headers)

    assert got == status
    assert answer["type"] == "error"
    assert says in answer["error"]["message"]


def test_the_anthropic_server_answers_a_valid_conversation(
    anthropic_server: AnthropicServer,
) -> None:
    body = _messages(
        USER,
        {"role": "assistant", "content": [TOOL_USE]},
        {"role": "user", "content": [TOOL_RESULT, {"type": "text", "text": "and?"}]},
    )
    status, headers, answer = _send(
        anthropic_server.base_url + "/v1/messages", body, ANTHROPIC_AUTH
    )

    assert status == 200
    assert headers["request-id"].startswith("req_")
    assert answer["type"] == "message" and answer["stop_reason"] == "end_turn"
    assert answer["content"] == [{"type": "text", "text": "4 messages"}]


def test_a_status_fault_asks_for_a_retry_after_the_given_time(
    openai_server: OpenAIServer,
) -> None:
    openai_server.faults.put(Fault.status(429, retry_after=0.25))

    status, headers, answer = _send(
        openai_server.base_url + "/chat/completions",
        {"model": "m", "messages": [USER]},
        OPENAI_AUTH,
    )

    assert status == 429
    assert (headers["retry-after"], headers["retry-after-ms"]) == ("0.25", "250")
    assert answer["error"]["code"] == "rate_limit_exceeded"
    assert openai_server.faults.empty()


def test_requests_are_recorded_with_lower_case_headers_and_the_json_body(
    openai_server: OpenAIServer,
) -> None:
    body = {"model": "m", "messages": [USER]}
    _send(openai_server.base_url + "/chat/completions", body, {**OPENAI_AUTH, "Warden-Task": "T-1"})

    (received,) = openai_server.requests
    assert (received.method, received.path, received.body) == ("POST", "/v1/chat/completions", body)
    assert received.headers["warden-task"] == "T-1"


@pytest.mark.parametrize(
    ("code", "status"),
    [("W-MDL-002", 429), ("W-MDL-003", 408), ("W-MDL-004", 400), ("W-MDL-006", 500)],
)
def test_a_brain_that_raises_a_model_error_gets_the_matching_status(code: str, status: int) -> None:
    with AnthropicServer(Echo(ModelError(code, "scripted failure"))) as server:
        got, _, answer = _send(server.base_url + "/v1/messages", _messages(USER), ANTHROPIC_AUTH)

    assert got == status
    assert answer["error"]["message"] == "scripted failure"


def test_closing_ends_a_pending_delay_at_once(openai_server: OpenAIServer) -> None:
    openai_server.faults.put(Fault.delay(60.0))
    answered: list[int] = []
    body = {"model": "m", "messages": [USER]}
    url = openai_server.base_url + "/chat/completions"
    client = threading.Thread(target=lambda: answered.append(_send(url, body, OPENAI_AUTH)[0]))
    client.start()
    deadline = time.monotonic() + 5
    while not openai_server.requests and time.monotonic() < deadline:
        time.sleep(0.01)

    started = time.monotonic()
    openai_server.close()
    client.join(timeout=10)

    assert time.monotonic() - started < 5
    assert answered == [200]
