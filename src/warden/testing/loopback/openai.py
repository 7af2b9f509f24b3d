"""OpenAI's chat completions on loopback: POST /v1/chat/completions, GET /v1/models."""

from __future__ import annotations

import re
from collections.abc import Mapping
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

__all__ = ["OpenAIServer"]


class OpenAIServer(LoopbackServer):
    """OpenAI's chat completions with tool calls: POST /v1/chat/completions, GET /v1/models.

    ``base_url`` ends with ``/v1``, as the ``openai`` SDK expects. Azure's deployment path
    (POST /openai/deployments/NAME/chat/completions?api-version=..., key in ``api-key``)
    is served too: give ``root_url`` to `OpenAIModel.azure` as the endpoint.
    """

    endpoint = "/v1/chat/completions"
    base_path = "/v1"

    def serves(self, path: str) -> bool:
        return path == self.endpoint or _AZURE_PATH.fullmatch(path) is not None

    def check(self, received: Received) -> None:
        headers = received.headers
        scheme, _, key = headers.get("authorization", "").partition(" ")
        self.check_key(
            headers.get("api-key") or (key.strip() if scheme.lower() == "bearer" else None)
        )
        if received.path != self.endpoint and not received.query.get("api-version"):
            raise Refused(404, "Resource not found: the api-version query parameter is missing")

    def other_route(self, method: str, path: str) -> Any | None:
        if (method, path) != ("GET", "/v1/models"):
            return None
        name = getattr(self.brain, "name", None)
        entry = {
            "id": name if isinstance(name, str) else "loopback",
            "object": "model",
            "created": self.timestamp(),
            "owned_by": "warden-loopback",
        }
        return {"object": "list", "data": [entry]}

    def decode(self, body: dict[str, Any], headers: Mapping[str, str]) -> ModelRequest:
        run_id, task = read_run_headers(headers)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise Refused(400, "you must provide a model parameter")
        if body.get("stream"):
            raise Refused(400, "the loopback server does not stream")
        wire = body.get("messages")
        if not isinstance(wire, list) or not wire:
            raise Refused(400, "'messages' is a required property and must not be empty")
        messages = _openai_messages(cast(list[Any], wire))
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        return ModelRequest(
            messages=tuple(messages),
            tools=tuple(_openai_tool(t) for t in as_list(body.get("tools"), "tools")),
            max_tokens=limit if isinstance(limit, int) else 1024,
            temperature=_number(body.get("temperature"), 0.0),
            run_id=run_id,
            task=task,
        )

    def encode(self, turn: ModelTurn, *, model: str, number: int, malformed: bool) -> Any:
        calls: list[dict[str, Any]] = [
            {
                "id": call.id or f"call_loopback_{number}_{i}",
                "type": "function",
                "function": {"name": call.name, "arguments": arguments_text(call)},
            }
            for i, call in enumerate(turn.tool_calls)
        ]
        if malformed and calls:
            calls[0]["function"]["arguments"] = cut_json(calls[0]["function"]["arguments"])
        message: dict[str, Any] = {
            "role": "assistant",
            "content": turn.text or None,
            "refusal": None,
            "annotations": [],
        }
        if calls:
            message["tool_calls"] = calls
        usage = turn.usage
        return {
            "id": f"chatcmpl-loopback-{number}",
            "object": "chat.completion",
            "created": self.timestamp(),
            "model": turn.model or model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if calls else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": usage.input_tokens,
                "completion_tokens": usage.output_tokens,
                "total_tokens": usage.total,
                "prompt_tokens_details": {
                    "cached_tokens": usage.cached_input_tokens,
                    "audio_tokens": 0,
                },
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": None,
        }

    def error_body(self, status: int, message: str, *, number: int) -> Any:
        kind, code = _OPENAI_ERRORS.get(status, ("server_error", None))
        if 400 <= status < 500 and status not in _OPENAI_ERRORS:
            kind = "invalid_request_error"
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}


_AZURE_PATH = re.compile(r"/openai/deployments/[^/]+/chat/completions")

_OPENAI_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "unknown_url"),
    429: ("requests", "rate_limit_exceeded"),
}


def _openai_messages(wire: list[Any]) -> list[Message]:
    """Decode chat messages, refusing tool messages that answer no pending call."""
    out: list[Message] = []
    pending: dict[str, str] = {}
    """Call id -> tool name of the calls still owed a tool message."""
    for i, item in enumerate(wire):
        entry = as_object(item, f"messages[{i}]")
        role = entry.get("role")
        if pending and role != "tool":
            raise Refused(
                400,
                "An assistant message with 'tool_calls' must be followed by tool messages "
                f"responding to each 'tool_call_id'. Missing: {', '.join(sorted(pending))}.",
            )
        text = _openai_text(entry.get("content"), f"messages[{i}].content")
        if role in ("system", "developer"):
            out.append(Message(role=Role.SYSTEM, content=text, label=Label.SYSTEM))
        elif role == "user":
            out.append(Message(role=Role.USER, content=text, label=Label.UNTRUSTED))
        elif role == "assistant":
            calls = tuple(
                _openai_call(c, f"messages[{i}].tool_calls[{j}]")
                for j, c in enumerate(as_list(entry.get("tool_calls"), f"messages[{i}].tool_calls"))
            )
            pending = {c.id: c.name for c in calls}
            out.append(
                Message(role=Role.ASSISTANT, content=text, label=Label.MODEL, tool_calls=calls)
            )
        elif role == "tool":
            call_id = entry.get("tool_call_id")
            if not isinstance(call_id, str) or call_id not in pending:
                raise Refused(
                    400,
                    f"messages[{i}]: messages with role 'tool' must be a response to a "
                    "preceding message with 'tool_calls'.",
                )
            name = pending.pop(call_id)
            out.append(
                Message(
                    role=Role.TOOL,
                    content=text,
                    label=Label.UNTRUSTED,
                    tool_call_id=call_id,
                    name=name,
                )
            )
        else:
            raise Refused(400, f"messages[{i}].role: unknown role {role!r}")
    return out


def _openai_text(content: Any, where: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    parts = [as_object(p, where) for p in as_list(content, where)]
    return "".join(str(p.get("text", "")) for p in parts if p.get("type") == "text")


def _openai_call(item: Any, where: str) -> ToolUse:
    entry = as_object(item, where)
    function = as_object(entry.get("function"), f"{where}.function")
    call_id, name, raw = entry.get("id"), function.get("name"), function.get("arguments")
    if not (isinstance(call_id, str) and isinstance(name, str) and isinstance(raw, str)):
        raise Refused(400, f"{where}: id, function.name and function.arguments are required")
    return parse_call(call_id, name, raw)


def _openai_tool(item: Any) -> ToolSpec:
    function = as_object(as_object(item, "tools[]").get("function"), "tools[].function")
    name = function.get("name")
    if not isinstance(name, str):
        raise Refused(400, "tools[].function.name is required")
    return ToolSpec(
        name=name,
        description=str(function.get("description", "")),
        parameters=as_object(function.get("parameters", {}), "tools[].function.parameters"),
    )


def _number(value: Any, default: float) -> float:
    return float(value) if isinstance(value, int | float) else default
