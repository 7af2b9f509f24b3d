"""Anthropic's Messages API with tool use, through the official ``anthropic`` SDK.

The SDK retries rate limits, timeouts, connection failures and server errors (529
overloaded included) with exponential backoff and honours Retry-After; this module
translates messages both ways and turns what is left after the retries into `ModelError`:

    W-MDL-002  HTTP 429 on every attempt                     retryable
    W-MDL-003  no answer within ``timeout_s`` (or HTTP 408)  retryable
    W-MDL-001  no connection, or HTTP 5xx / 529              retryable
    W-MDL-004  any other HTTP 4xx: key, model, request       not retryable
    W-MDL-005  an answer that is not a message               not retryable

The SDK speaks API version 2026-10-21, which refuses sampling parameters, so the
request's ``temperature`` is not sent. Messages name the model and base URL and quote the
provider's own words; never a key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeAlias, cast

import anthropic
from anthropic import types as wire

from warden.models.base import Message, ModelRequest, ModelTurn, Role, ToolSpec, ToolUse, Usage
from warden.models.headers import run_headers
from warden.models.sdk import SDKModel

__all__ = ["AnthropicModel"]

_Block: TypeAlias = wire.TextBlockParam | wire.ToolUseBlockParam | wire.ToolResultBlockParam


class AnthropicModel(SDKModel):
    """A Claude model behind the Messages API, with tool use.

    System messages become the ``system`` parameter; consecutive messages of one side are
    merged into one message of several blocks (the API wants user and assistant to
    alternate), tool results first. A ready `client` is used as it is (its own base URL,
    key, timeout and retries); it cannot be combined with `base_url`, `api_key` or
    `default_headers`. Close the model (or use it in a ``with``) to close its client.
    """

    _sdk = anthropic
    _answer = "a message"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        default_headers: Mapping[str, str] | None = None,
        client: anthropic.Anthropic | None = None,
    ) -> None:
        if client is not None and (base_url or api_key or default_headers):
            raise TypeError("pass either a ready client or base_url/api_key/default_headers")
        self._model = model
        self._owns_client = client is None
        self._client = client or anthropic.Anthropic(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout_s,
            max_retries=max_retries,
            default_headers=default_headers,
        )

    @property
    def name(self) -> str:
        return self._model

    @property
    def provider(self) -> str:
        return "anthropic"

    def complete(self, request: ModelRequest) -> ModelTurn:
        system, messages = _wire_conversation(request.messages)
        try:
            response = self._client.messages.create(
                model=self._model,
                max_tokens=request.max_tokens,
                messages=messages,
                system=system or anthropic.omit,
                tools=[_wire_tool(t) for t in request.tools] if request.tools else anthropic.omit,
                extra_headers=run_headers(request),
            )
        except anthropic.AnthropicError as exc:
            raise self._error(exc) from exc
        except json.JSONDecodeError as exc:
            raise self._unreadable(f"it is not JSON ({exc})") from exc
        try:
            return _turn(response)
        except (AttributeError, TypeError, ValueError) as exc:
            raise self._unreadable(str(exc)) from exc

    def __repr__(self) -> str:
        return f"AnthropicModel({self._model!r}, at {self._where()})"

    def _detail(self, exc: Any) -> str:
        """The provider's own error message (``error.message`` of the body)."""
        return exc.api_message or exc.response.text[:500] or exc.message


# --- to the wire ----------------------------------------------------------------------


def _wire_conversation(messages: Sequence[Message]) -> tuple[str, list[wire.MessageParam]]:
    """The ``system`` text, and the messages with each side's consecutive turns merged."""
    system = "\n\n".join(m.content for m in messages if m.role is Role.SYSTEM and m.content)
    turns: list[tuple[Literal["user", "assistant"], list[_Block]]] = []
    for message in messages:
        if message.role is Role.SYSTEM:
            continue
        side = "assistant" if message.role is Role.ASSISTANT else "user"
        blocks = _blocks(message)
        if not blocks:
            continue
        if turns and turns[-1][0] == side:
            turns[-1][1].extend(blocks)
        else:
            turns.append((side, blocks))
    out: list[wire.MessageParam] = []
    for side, blocks in turns:
        if side == "assistant":
            out.append({"role": "assistant", "content": blocks})
        else:  # the API wants tool results before anything else in a user message
            ordered = sorted(blocks, key=lambda b: b["type"] != "tool_result")
            out.append({"role": "user", "content": ordered})
    return system, out


def _blocks(message: Message) -> list[_Block]:
    """The content blocks of one message; the API refuses empty text blocks."""
    text: list[_Block] = [{"type": "text", "text": message.content}] if message.content else []
    match message.role:
        case Role.TOOL:
            if message.tool_call_id is None:
                raise ValueError("a tool message needs the tool_call_id of the call it answers")
            result: wire.ToolResultBlockParam = {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
            }
            if message.content:
                result["content"] = message.content
            if message.is_error:
                result["is_error"] = True
            return [result]
        case Role.ASSISTANT:
            # A malformed call goes back with empty input: the API takes only objects.
            return text + [
                {
                    "type": "tool_use",
                    "id": call.id,
                    "name": call.name,
                    "input": dict(call.arguments or {}),
                }
                for call in message.tool_calls
            ]
        case Role.USER | Role.SYSTEM:
            return text


def _wire_tool(tool: ToolSpec) -> wire.ToolParam:
    return {
        "name": tool.name,
        "description": tool.description,
        "input_schema": dict(tool.parameters),
    }


# --- from the wire ----------------------------------------------------------------------


def _turn(response: wire.Message) -> ModelTurn:
    """The turn in `response`; AttributeError, TypeError ... when it is not the protocol."""
    answer = cast(object, response)
    if isinstance(answer, str):  # the SDK hands back a body that is not JSON as text
        raise TypeError(f"it is text, not JSON: {answer[:80]!r}")
    if not isinstance(answer, wire.Message):
        raise TypeError(f"it is a JSON {type(answer).__name__}, not an object")
    kind = cast(object, response.type)
    if kind != "message":
        raise ValueError(f"its type is {kind!r}, not 'message'")
    texts: list[str] = []
    calls: list[ToolUse] = []
    for block in response.content:
        if isinstance(block, wire.TextBlock):
            texts.append(block.text)
        elif isinstance(block, wire.ToolUseBlock):
            calls.append(_tool_use(block))
    return ModelTurn(
        text="".join(texts),
        tool_calls=tuple(calls),
        usage=_usage(response.usage),
        model=response.model or "",
        stop_reason=response.stop_reason or "",
    )


def _tool_use(block: wire.ToolUseBlock) -> ToolUse:
    given = cast(object, block.input)
    if not isinstance(given, dict):
        raw = given if isinstance(given, str) else json.dumps(given)
        return ToolUse(
            id=block.id,
            name=block.name,
            arguments=None,
            raw=raw,
            error=f"the input is not a JSON object: {raw[:80]}",
        )
    arguments = cast(dict[str, Any], given)
    return ToolUse(id=block.id, name=block.name, arguments=arguments, raw=json.dumps(arguments))


def _usage(usage: wire.Usage) -> Usage:
    """Usage; Anthropic's ``input_tokens`` leaves out cache reads and writes, Warden's
    includes them."""
    read = usage.cache_read_input_tokens or 0
    written = usage.cache_creation_input_tokens or 0
    return Usage(
        input_tokens=(usage.input_tokens or 0) + read + written,
        output_tokens=usage.output_tokens or 0,
        cached_input_tokens=read,
    )
