"""The provider-neutral conversation types every model adapter speaks.

A `Model` turns a `ModelRequest` (labelled messages and the tools on offer) into a
`ModelTurn` (text, tool calls, token usage). Adapters translate to and from one wire
protocol; they retry rate limits and server errors with backoff themselves and raise
`ModelError` with a stable code when a turn cannot be had. A tool call whose arguments
are not a JSON object is not an error: it comes back as a `ToolUse` with ``error`` set,
so the runner can tell the model and a cascade can escalate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, cast, runtime_checkable

from warden.canonical import content_hash
from warden.errors import ModelError
from warden.provenance import Label

__all__ = [
    "Message",
    "Model",
    "ModelError",
    "ModelRequest",
    "ModelTurn",
    "Role",
    "ToolSpec",
    "ToolUse",
    "Usage",
]


class Role(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"
    """A tool's result, answering one `ToolUse` by its id."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolUse:
    """One tool call the model asked for."""

    id: str
    """The provider's call id; the tool result answers it."""
    name: str
    arguments: Mapping[str, Any] | None
    """The parsed arguments; None when ``raw`` is not a JSON object."""
    raw: str = ""
    """The arguments as the model wrote them (JSON text)."""
    error: str | None = None
    """Why ``raw`` could not be used, when it could not."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "arguments": dict(self.arguments) if self.arguments is not None else None,
            "raw": self.raw,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolUse:
        args = data.get("arguments")
        return cls(
            id=str(data["id"]),
            name=str(data["name"]),
            arguments=dict(cast(Mapping[str, Any], args)) if isinstance(args, Mapping) else None,
            raw=str(data.get("raw", "")),
            error=data.get("error"),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Message:
    """One message of a conversation, with the provenance of its content."""

    role: Role
    content: str = ""
    label: Label = Label.SYSTEM
    source: str = ""
    """What the content is, for people and the escalation packet."""
    tool_calls: tuple[ToolUse, ...] = ()
    """On an assistant message: the calls it made."""
    tool_call_id: str | None = None
    """On a tool message: the call it answers."""
    name: str | None = None
    """On a tool message: the tool's name."""
    is_error: bool = False
    """On a tool message: the call failed or was refused."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role.value, "content": self.content}
        out["label"] = self.label.value
        if self.source:
            out["source"] = self.source
        if self.tool_calls:
            out["tool_calls"] = [t.to_dict() for t in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            out["name"] = self.name
        if self.is_error:
            out["is_error"] = True
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Message:
        return cls(
            role=Role(data["role"]),
            content=str(data.get("content", "")),
            label=Label(data.get("label", Label.SYSTEM.value)),
            source=str(data.get("source", "")),
            tool_calls=tuple(ToolUse.from_dict(t) for t in data.get("tool_calls", ())),
            tool_call_id=data.get("tool_call_id"),
            name=data.get("name"),
            is_error=bool(data.get("is_error", False)),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolSpec:
    """A tool as the model is told about it."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    """JSON Schema of the arguments object."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelRequest:
    """What the runner asks a model for: the next turn of a conversation."""

    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    max_tokens: int = 1024
    temperature: float = 0.0
    run_id: str = ""
    """Sent along (as a header) so proxies and logs can join the call to its run."""
    task: str = ""
    """The task's key (a ticket id ...); the scripted model picks its script by it."""

    def cache_key(self, model: str) -> str:
        """A hash of everything that decides the answer (not the run id, not the task key:
        identical messages get the same answer)."""
        return content_hash(
            [
                model,
                [m.to_dict() for m in self.messages],
                [[t.name, t.description, dict(t.parameters)] for t in self.tools],
                self.max_tokens,
                self.temperature,
            ]
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Usage:
    """Tokens one turn used. ``input_tokens`` counts the cached ones too."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    """Input tokens served from the provider's prompt cache (billed at the cached rate)."""

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cached_input_tokens,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelTurn:
    """The model's answer: text, tool calls, or both."""

    text: str = ""
    tool_calls: tuple[ToolUse, ...] = ()
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    """The model that answered, as the provider names it."""
    stop_reason: str = ""
    confidence: float | None = None
    """0..1 when the model or adapter reports one; a cascade escalates on low values."""

    @property
    def malformed(self) -> bool:
        """True when a tool call's arguments could not be parsed."""
        return any(t.error is not None for t in self.tool_calls)


@runtime_checkable
class Model(Protocol):
    """One model behind one protocol."""

    @property
    def name(self) -> str:
        """The model's id, as its provider and the price list know it."""
        ...

    @property
    def provider(self) -> str:
        """The provider's id in the price list: ``openai``, ``anthropic`` ..."""
        ...

    def complete(self, request: ModelRequest) -> ModelTurn:
        """The next turn. Raises `ModelError` when none can be had after retries."""
        ...
