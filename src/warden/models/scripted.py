"""A scripted model: deterministic turns from a YAML file, for demos, tests and evals.

One script per task key (a ticket id ...); turn N answers the request that already holds
N assistant messages, so a resumed run replays exactly the turns it would have had::

    model: scripted-support
    prices_as: {provider: openai, model: gpt-4o-mini}   # price usage as this model
    latency_ms: 150                    # each turn takes this long (really: it sleeps)
    scripts:
      T-1001:
        - text: "Let me look up the customer."
          calls:
            - lookup_customer: {customer_id: cus_1001}
          usage: {input_tokens: 812, output_tokens: 38}
        - calls:
            - {tool: create_refund, raw: '{"order_id": '}   # malformed on purpose
        - confidence: 0.3
          error: rate_limited          # this turn fails: rate_limited | server_error | timeout
        - text: "Done."                # a turn without calls ends the task
      default:                         # for tasks with no script of their own
        - text: "A person should look at this ticket."

Usage a turn does not give is estimated from the text lengths (four characters a token),
so costs stay deterministic.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from warden.errors import ModelError
from warden.models.base import ModelRequest, ModelTurn, Role, ToolUse, Usage
from warden.yamlsource import YamlDoc, config_error_from_validation, load_yaml, parse_yaml

__all__ = ["ScriptedModel"]

_FAULTS: dict[str, tuple[str, str]] = {
    "rate_limited": ("W-MDL-002", "rate limited (HTTP 429), scripted"),
    "server_error": ("W-MDL-001", "server error (HTTP 500), scripted"),
    "timeout": ("W-MDL-003", "no answer within the timeout, scripted"),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Usage(_Strict):
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cached_input_tokens: int = Field(default=0, ge=0)


class _RawCall(_Strict):
    tool: str
    raw: str


class _Turn(_Strict):
    text: str = ""
    calls: list[dict[str, Any]] = Field(default_factory=list[dict[str, Any]])
    usage: _Usage | None = None
    confidence: float | None = Field(default=None, ge=0, le=1)
    error: Literal["rate_limited", "server_error", "timeout"] | None = None


class _PricesAs(_Strict):
    provider: str
    model: str


class _File(_Strict):
    model: str = "scripted"
    prices_as: _PricesAs | None = None
    latency_ms: float = Field(default=0.0, ge=0, le=60_000)
    scripts: dict[str, list[_Turn]]


@dataclass(frozen=True, slots=True)
class _Call:
    tool: str
    args: Mapping[str, Any] | None
    raw: str


class ScriptedModel:
    """Answers from a script: the same request always gets the same turn."""

    def __init__(
        self,
        scripts: Mapping[str, Sequence[Mapping[str, Any]]],
        *,
        name: str = "scripted",
        prices_as: tuple[str, str] | None = None,
        file: str = "<scripts>",
    ) -> None:
        doc = YamlDoc(file=file, data={"model": name, "scripts": scripts}, lines={}, text="")
        spec = _parse(doc)
        if prices_as is not None:
            spec.prices_as = _PricesAs(provider=prices_as[0], model=prices_as[1])
        self._init(spec, doc)

    @classmethod
    def load(cls, path: Path | str) -> ScriptedModel:
        """Read a script file; errors name the file and line (W-CFG-*, W-MDL-006)."""
        return cls._from_doc(load_yaml(path))

    @classmethod
    def parse(cls, text: str, *, file: str = "<script>") -> ScriptedModel:
        return cls._from_doc(parse_yaml(text, file=file))

    @classmethod
    def _from_doc(cls, doc: YamlDoc) -> ScriptedModel:
        self = cls.__new__(cls)
        self._init(_parse(doc), doc)
        return self

    def _init(self, spec: _File, doc: YamlDoc) -> None:
        self._name = spec.model
        self.latency_s = spec.latency_ms / 1000.0
        """How long each turn takes (a real sleep, so timings stay honest)."""
        self._provider = spec.prices_as.provider if spec.prices_as else "scripted"
        self.prices_as = spec.prices_as.model if spec.prices_as else None
        """The model whose prices the usage is charged at (None: free)."""
        self._scripts: dict[str, list[tuple[_Turn, tuple[_Call, ...]]]] = {}
        for key, turns in spec.scripts.items():
            self._scripts[key] = [
                (turn, _calls(doc, turn.calls, ("scripts", key, i, "calls")))
                for i, turn in enumerate(turns)
            ]

    @property
    def name(self) -> str:
        return self._name

    @property
    def provider(self) -> str:
        return self._provider

    def tasks(self) -> list[str]:
        """The task keys with a script of their own."""
        return [k for k in self._scripts if k != "default"]

    def complete(self, request: ModelRequest) -> ModelTurn:
        script = self._scripts.get(request.task) or self._scripts.get("default")
        if script is None:
            raise ModelError(
                "W-MDL-006",
                f"the script has no turns for task {request.task!r} and no default script",
            )
        n = sum(1 for m in request.messages if m.role is Role.ASSISTANT)
        if n >= len(script):
            return ModelTurn(
                text="(the script has no more turns)",
                model=self._name,
                stop_reason="end_turn",
                usage=_estimate(request, "(the script has no more turns)"),
            )
        turn, calls = script[n]
        if self.latency_s:
            time.sleep(self.latency_s)
        if turn.error is not None:
            code, message = _FAULTS[turn.error]
            raise ModelError(code, f"{self._name}: {message}", retryable=True)
        uses = tuple(
            ToolUse(
                id=f"call_{request.task or 'task'}_{n}_{i}",
                name=c.tool,
                arguments=c.args,
                raw=c.raw,
                error=None if c.args is not None else "the arguments are not a JSON object",
            )
            for i, c in enumerate(calls)
        )
        usage = (
            Usage(
                input_tokens=turn.usage.input_tokens,
                output_tokens=turn.usage.output_tokens,
                cached_input_tokens=turn.usage.cached_input_tokens,
            )
            if turn.usage is not None
            else _estimate(request, turn.text + "".join(c.raw for c in calls))
        )
        return ModelTurn(
            text=turn.text,
            tool_calls=uses,
            usage=usage,
            model=self._name,
            stop_reason="tool_use" if uses else "end_turn",
            confidence=turn.confidence,
        )


def _parse(doc: YamlDoc) -> _File:
    data = doc.mapping()
    if data is None:
        raise doc.error("W-MDL-006", "a script file is a mapping with a `scripts:` key")
    try:
        return _File.model_validate(data)
    except ValidationError as exc:
        raise config_error_from_validation(doc, exc, code="W-MDL-006") from None


def _calls(doc: YamlDoc, entries: list[dict[str, Any]], loc: tuple[Any, ...]) -> tuple[_Call, ...]:
    out: list[_Call] = []
    for i, entry in enumerate(entries):
        if "raw" in entry:
            try:
                raw = _RawCall.model_validate(entry)
            except ValidationError as exc:
                raise config_error_from_validation(
                    doc, exc, base=(*loc, i), code="W-MDL-006"
                ) from None
            try:
                parsed: Any = json.loads(raw.raw)
            except ValueError:
                parsed = None
            args = cast(dict[str, Any], parsed) if isinstance(parsed, dict) else None
            out.append(_Call(tool=raw.tool, args=args, raw=raw.raw))
            continue
        if len(entry) != 1:
            raise doc.error(
                "W-MDL-006",
                "a call is one `tool: {args}` pair, or {tool: NAME, raw: 'JSON text'}",
                (*loc, i),
            )
        ((tool, args),) = entry.items()
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise doc.error("W-MDL-006", f"the arguments of {tool} must be a mapping", (*loc, i))
        mapping = cast(dict[str, Any], args)
        out.append(_Call(tool=str(tool), args=mapping, raw=json.dumps(mapping)))
    return tuple(out)


def _estimate(request: ModelRequest, output: str) -> Usage:
    chars = sum(len(m.content) + sum(len(t.raw) for t in m.tool_calls) for m in request.messages)
    chars += sum(len(t.description) + len(json.dumps(t.parameters)) for t in request.tools)
    return Usage(input_tokens=max(1, chars // 4), output_tokens=max(1, len(output) // 4))
