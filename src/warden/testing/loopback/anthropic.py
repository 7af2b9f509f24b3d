"""Anthropic's Messages API on loopback: POST /v1/messages, as of version 2026-10-21."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, cast

from warden.models.base import Message, ModelRequest, ModelTurn, Role, ToolSpec, ToolUse
from warden.models.headers import read_run_headers
from warden.provenance import Label
from warden.testing.loopback.server import (
    LoopbackServer,
    Received,
    Refused,
    arguments_text,
    as_list,
    as_object,
    cut_json,
    parse_call,
)

__all__ = ["AnthropicServer"]


class AnthropicServer(LoopbackServer):
    """Anthropic's Messages API with tool use: POST /v1/messages.

    ``base_url`` is the server's root, as the ``anthropic`` SDK expects. Like API version
    2026-10-21, it requires ``anthropic-version`` and ``max_tokens``, refuses sampling
    parameters (``temperature``, ``top_p``, ``top_k``) and checks that roles alternate and
    every ``tool_use`` is answered by a ``tool_result`` in the next message.
    """

    endpoint = "/v1/messages"
    request_id_header = "request-id"

    def check(self, received: Received) -> None:
        headers = received.headers
        scheme, _, token = headers.get("authorization", "").partition(" ")
        bearer = token.strip() if scheme.lower() == "bearer" else None
        self.check_key(headers.get("x-api-key") or bearer)
        if not headers.get("anthropic-version"):
            raise Refused(400, "anthropic-version: header is required")

    def decode(self, body: dict[str, Any], headers: Mapping[str, str]) -> ModelRequest:
        run_id, task = read_run_headers(headers)
        model, limit = body.get("model"), body.get("max_tokens")
        if not isinstance(model, str) or not model:
            raise Refused(400, "model: Field required")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise Refused(400, "max_tokens: Field required (an integer of at least 1)")
        for name in ("temperature", "top_p", "top_k"):
            if name in body:
                raise Refused(400, f"{name}: Extra inputs are not permitted")
        if body.get("stream"):
            raise Refused(400, "the loopback server does not stream")
        wire = body.get("messages")
        if not isinstance(wire, list) or not wire:
            raise Refused(400, "messages: Field required (a non-empty list)")
        system = _anthropic_text(body.get("system"), "system")
        head = [Message(role=Role.SYSTEM, content=system, label=Label.SYSTEM)] if system else []
        return ModelRequest(
            messages=(*head, *_anthropic_messages(cast(list[Any], wire))),
            tools=tuple(_anthropic_tool(t) for t in as_list(body.get("tools"), "tools")),
            max_tokens=limit,
            run_id=run_id,
            task=task,
        )

    def encode(self, turn: ModelTurn, *, model: str, number: int, malformed: bool) -> Any:
        content: list[dict[str, Any]] = [{"type": "text", "text": turn.text}] if turn.text else []
        uses: list[dict[str, Any]] = [
            {
                "type": "tool_use",
                "id": call.id or f"toolu_loopback_{number}_{i}",
                "name": call.name,
                "input": dict(call.arguments) if call.arguments is not None else call.raw,
            }
            for i, call in enumerate(turn.tool_calls)
        ]
        if malformed and uses:
            uses[0]["input"] = cut_json(arguments_text(turn.tool_calls[0]))
        usage = turn.usage
        return {
            "id": f"msg_loopback_{number}",
            "type": "message",
            "role": "assistant",
            "model": turn.model or model,
            "content": content + uses,
            "stop_reason": "tool_use" if uses else "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": max(0, usage.input_tokens - usage.cached_input_tokens),
                "cache_read_input_tokens": usage.cached_input_tokens,
                "cache_creation_input_tokens": 0,
                "output_tokens": usage.output_tokens,
                "service_tier": "standard",
            },
        }

    def error_body(self, status: int, message: str, *, number: int) -> Any:
        kind = _ANTHROPIC_ERRORS.get(
            status, "api_error" if status >= 500 else "invalid_request_error"
        )
        return {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": f"{self.request_id_prefix}{number}",
        }


_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def _anthropic_messages(wire: list[Any]) -> Iterator[Message]:
    """Decode messages, refusing what the Messages API refuses about their order."""
    owed: set[str] = set()
    """The ids of the previous assistant message's tool_use blocks."""
    previous: str | None = None
    for i, item in enumerate(wire):
        entry = as_object(item, f"messages.{i}")
        role = entry.get("role")
        if role not in ("user", "assistant"):
            raise Refused(400, f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if role == previous:
            raise Refused(
                400,
                f'messages: roles must alternate between "user" and "assistant", but found '
                f'multiple "{role}" roles in a row',
            )
        if previous is None and role != "user":
            raise Refused(400, "messages: the first message must use the user role")
        previous = role
        blocks = _blocks(entry.get("content"), f"messages.{i}.content")
        if role == "assistant":
            message = _anthropic_assistant(blocks, f"messages.{i}")
            owed = {call.id for call in message.tool_calls}
            yield message
            continue
        answered = {str(b.get("tool_use_id")) for b in blocks if b.get("type") == "tool_result"}
        if owed - answered:
            raise Refused(
                400,
                f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                f"immediately after: {', '.join(sorted(owed - answered))}. Each `tool_use` "
                "block must have a corresponding `tool_result` block in the next message.",
            )
        if answered - owed:
            raise Refused(
                400,
                f"messages.{i}: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{', '.join(sorted(answered - owed))}. Each `tool_result` block must have a "
                "corresponding `tool_use` block in the previous message.",
            )
        owed = set()
        yield from _anthropic_user(blocks, f"messages.{i}")


def _anthropic_assistant(blocks: list[dict[str, Any]], where: str) -> Message:
    texts: list[str] = []
    calls: list[ToolUse] = []
    for j, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            call_id, name, given = block.get("id"), block.get("name"), block.get("input")
            if not (isinstance(call_id, str) and isinstance(name, str)):
                raise Refused(400, f"{where}.content.{j}: tool_use needs id and name")
            if not isinstance(given, dict):
                raise Refused(400, f"{where}.content.{j}.input: Input should be an object")
            calls.append(parse_call(call_id, name, json.dumps(given)))
    return Message(
        role=Role.ASSISTANT, content="".join(texts), label=Label.MODEL, tool_calls=tuple(calls)
    )


def _anthropic_user(blocks: list[dict[str, Any]], where: str) -> Iterator[Message]:
    """One message per block: tool results first (the API requires it), then texts."""
    seen_other = False
    for j, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "tool_result":
            if seen_other:
                raise Refused(
                    400,
                    f"{where}.content.{j}: tool_result blocks must come before any other "
                    "content in a user message",
                )
            yield Message(
                role=Role.TOOL,
                content=_anthropic_text(block.get("content"), f"{where}.content.{j}.content"),
                label=Label.UNTRUSTED,
                tool_call_id=str(block.get("tool_use_id")),
                is_error=bool(block.get("is_error", False)),
            )
        elif kind == "text":
            seen_other = True
            yield Message(role=Role.USER, content=str(block.get("text")), label=Label.UNTRUSTED)
        else:
            seen_other = True


def _blocks(content: Any, where: str) -> list[dict[str, Any]]:
    """A message's content as blocks, refusing empty text blocks like the API does."""
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    blocks = [as_object(b, where) for b in as_list(content, where)]
    if not blocks:
        raise Refused(400, f"{where}: all messages must have non-empty content")
    for j, block in enumerate(blocks):
        if block.get("type") == "text" and not block.get("text"):
            raise Refused(400, f"{where}.{j}: text content blocks must be non-empty")
    return blocks


def _anthropic_text(content: Any, where: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    blocks = [as_object(b, where) for b in as_list(content, where)]
    return "".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")


def _anthropic_tool(item: Any) -> ToolSpec:
    entry = as_object(item, "tools[]")
    name = entry.get("name")
    if not isinstance(name, str):
        raise Refused(400, "tools.name: Field required")
    return ToolSpec(
        name=name,
        description=str(entry.get("description", "")),
        parameters=as_object(entry.get("input_schema"), "tools.input_schema"),
    )
