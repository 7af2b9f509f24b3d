"""What both SDK adapters promise, each through its official SDK against a loopback server
that speaks its protocol: turns, tool calls, retries, timeouts and the W-MDL error codes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.models.brains import STOP, TOOL_STOP, Wired, wired
from warden.errors import ModelError
from warden.models.base import Message, ModelRequest, ModelTurn, Role, ToolUse, Usage
from warden.provenance import Label
from warden.testing.loopback import Fault

ASK = ModelRequest(
    messages=(
        Message(role=Role.SYSTEM, content="You are a support agent."),
        Message(role=Role.USER, content="Where is order ord_1?", label=Label.UNTRUSTED),
    ),
    run_id="run_42",
    task="T-1001",
)


@pytest.fixture(params=["openai", "anthropic"])
def wire(request: pytest.FixtureRequest) -> Iterator[Wired]:
    with wired(request.param) as w:
        yield w


def _call(name: str = "lookup_order", call_id: str = "call_1", **arguments: object) -> ToolUse:
    return ToolUse(id=call_id, name=name, arguments=arguments or {"order_id": "ord_1"})


def test_a_text_turn_comes_back_with_its_stop_reason_and_model(wire: Wired) -> None:
    wire.brain.turns.append(ModelTurn(text="It ships today."))
    model = wire.model()

    turn = model.complete(ASK)

    assert turn.text == "It ships today."
    assert turn.tool_calls == ()
    assert turn.stop_reason == STOP[wire.protocol]
    assert turn.model == model.name
    assert len(wire.server.requests) == 1


def test_tool_calls_come_back_with_their_parsed_arguments(wire: Wired) -> None:
    calls = (_call(), _call("lookup_customer", "call_2", customer_id="cus_9", verbose=True))
    wire.brain.turns.append(ModelTurn(text="Looking.", tool_calls=calls))

    turn = wire.model().complete(ASK)

    assert [(c.id, c.name, c.arguments, c.error) for c in turn.tool_calls] == [
        ("call_1", "lookup_order", {"order_id": "ord_1"}, None),
        ("call_2", "lookup_customer", {"customer_id": "cus_9", "verbose": True}, None),
    ]
    assert turn.text == "Looking."
    assert turn.stop_reason == TOOL_STOP[wire.protocol]
    assert not turn.malformed


def test_malformed_tool_arguments_come_back_as_an_error_on_the_call(wire: Wired) -> None:
    wire.brain.turns.append(ModelTurn(tool_calls=(_call(), _call("lookup_customer", "call_2"))))
    wire.server.faults.put(Fault.malformed_tool_args())

    turn = wire.model().complete(ASK)

    bad, good = turn.tool_calls
    assert turn.malformed
    assert bad.arguments is None and bad.error
    assert bad.raw.startswith('{"order_id": "ord_1", ')
    assert good.arguments == {"order_id": "ord_1"} and good.error is None


@pytest.mark.parametrize("status", [429, 500, 503, 529, 408], ids=str)
def test_a_transient_error_is_retried_and_the_retry_answers(wire: Wired, status: int) -> None:
    wire.brain.turns.append(ModelTurn(text="Second time lucky."))
    wire.server.faults.put(Fault.status(status, retry_after=0.01))

    turn = wire.model(max_retries=2).complete(ASK)

    assert turn.text == "Second time lucky."
    assert len(wire.server.requests) == 2


def test_a_server_error_without_retry_after_is_retried_with_backoff(wire: Wired) -> None:
    wire.server.faults.put(Fault.status(500))

    turn = wire.model(max_retries=1).complete(ASK)

    assert turn.text == "done"
    assert len(wire.server.requests) == 2


@pytest.mark.parametrize(
    ("status", "code", "retryable", "attempts"),
    [
        (429, "W-MDL-002", True, 3),
        (500, "W-MDL-001", True, 3),
        (502, "W-MDL-001", True, 3),
        (529, "W-MDL-001", True, 3),
        (408, "W-MDL-003", True, 3),
        (401, "W-MDL-004", False, 1),
        (400, "W-MDL-004", False, 1),
        (404, "W-MDL-004", False, 1),
    ],
    ids=lambda v: str(v) if isinstance(v, int) and not isinstance(v, bool) else None,
)
def test_what_is_left_after_the_retries_is_a_model_error(
    wire: Wired, status: int, code: str, retryable: bool, attempts: int
) -> None:
    for _ in range(3):
        wire.server.faults.put(Fault.status(status, retry_after=0.01, message="the cause"))

    with pytest.raises(ModelError) as caught:
        wire.model(max_retries=2).complete(ASK)

    assert caught.value.code == code
    assert caught.value.retryable is retryable
    assert f"HTTP {status}" in caught.value.message and "the cause" in caught.value.message
    assert len(wire.server.requests) == attempts


def test_no_answer_within_the_timeout_is_w_mdl_003(wire: Wired) -> None:
    wire.server.faults.put(Fault.delay(5.0))

    with pytest.raises(ModelError) as caught:
        wire.model(timeout_s=0.2, max_retries=0).complete(ASK)

    assert caught.value.code == "W-MDL-003"
    assert caught.value.retryable
    assert "0.2" in caught.value.message
    assert len(wire.server.requests) == 1


def test_a_timed_out_attempt_is_retried(wire: Wired) -> None:
    wire.server.faults.put(Fault.delay(5.0))

    turn = wire.model(timeout_s=0.2, max_retries=1).complete(ASK)

    assert turn.text == "done"
    assert len(wire.server.requests) == 2


def test_a_server_that_cannot_be_reached_is_w_mdl_001(wire: Wired) -> None:
    gone = wire.server.base_url
    wire.server.close()

    with pytest.raises(ModelError) as caught:
        wire.model(max_retries=0, base_url=gone).complete(ASK)

    assert caught.value.code == "W-MDL-001"
    assert caught.value.retryable
    assert "cannot connect" in caught.value.message


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"hello": "world"}', "application/json"),
        ("[]", "application/json"),
        ('{"truncated": ', "application/json"),
        ("<html><body>Sign in to the Wi-Fi</body></html>", "text/html"),
    ],
    ids=["another-object", "a-list", "broken-json", "an-html-page"],
)
def test_an_answer_that_is_not_the_protocol_is_w_mdl_005(
    wire: Wired, body: str, content_type: str
) -> None:
    wire.server.faults.put(Fault.garbage(body, content_type=content_type))

    with pytest.raises(ModelError) as caught:
        wire.model().complete(ASK)

    assert caught.value.code == "W-MDL-005"
    assert not caught.value.retryable
    assert len(wire.server.requests) == 1


def test_cached_input_tokens_are_input_tokens_and_counted_apart(wire: Wired) -> None:
    usage = Usage(input_tokens=1000, output_tokens=50, cached_input_tokens=600)
    wire.brain.turns.append(ModelTurn(text="ok", usage=usage))

    turn = wire.model().complete(ASK)

    assert turn.usage == usage


def test_the_run_id_and_task_travel_as_headers(wire: Wired) -> None:
    wire.model().complete(ASK)

    headers = wire.server.requests[0].headers
    assert (headers["warden-run-id"], headers["warden-task"]) == ("run_42", "T-1001")
    seen = wire.brain.requests[0]
    assert (seen.run_id, seen.task) == ("run_42", "T-1001")


def test_an_empty_run_id_and_task_send_no_headers(wire: Wired) -> None:
    wire.model().complete(ModelRequest(messages=ASK.messages))

    assert not {"warden-run-id", "warden-task"} & set(wire.server.requests[0].headers)


def test_an_error_names_the_model_and_url_but_never_the_key() -> None:
    secret = "sk-live-SECRET-0123456789abcdef"
    for protocol in ("openai", "anthropic"):
        with wired(protocol, api_key="sk-the-right-key") as wire:
            model = wire.model(api_key=secret)

            with pytest.raises(ModelError) as caught:
                model.complete(ASK)

            text = str(caught.value)
            assert caught.value.code == "W-MDL-004"
            assert secret not in text and secret not in repr(model)
            assert model.name in text and wire.server.root_url in text and "HTTP 401" in text


def test_a_task_key_outside_ascii_travels_percent_encoded(wire: Wired) -> None:
    wire.model().complete(ModelRequest(messages=ASK.messages, task="Tâche 50%"))

    assert wire.server.requests[0].headers["warden-task"] == "T%C3%A2che 50%25"
    assert wire.brain.requests[0].task == "Tâche 50%"
