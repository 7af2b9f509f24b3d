"""A tiny brain for the loopback servers, and each adapter wired to its server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Literal

from warden.models.anthropic import AnthropicModel
from warden.models.base import ModelRequest, ModelTurn
from warden.models.openai import OpenAIModel
from warden.testing.loopback import AnthropicServer, LoopbackServer, OpenAIServer

Protocol = Literal["openai", "anthropic"]

STOP = {"openai": "stop", "anthropic": "end_turn"}
"""The stop reason of a turn without tool calls, as each protocol says it."""
TOOL_STOP = {"openai": "tool_calls", "anthropic": "tool_use"}


class Brain:
    """Answers with the turns it was given, in order (then "done"), and keeps the requests."""

    def __init__(self, *turns: ModelTurn) -> None:
        self.turns = list(turns)
        self.requests: list[ModelRequest] = []

    def complete(self, request: ModelRequest) -> ModelTurn:
        self.requests.append(request)
        return self.turns.pop(0) if self.turns else ModelTurn(text="done")


@dataclass
class Wired:
    """One adapter's protocol on loopback; the models it makes close with it."""

    protocol: Protocol
    brain: Brain
    server: LoopbackServer
    stack: ExitStack = field(default_factory=ExitStack)

    def model(
        self,
        *,
        timeout_s: float = 5.0,
        max_retries: int = 2,
        api_key: str = "sk-test-key",
        base_url: str | None = None,
    ) -> OpenAIModel | AnthropicModel:
        url = base_url or self.server.base_url
        if self.protocol == "openai":
            made: OpenAIModel | AnthropicModel = OpenAIModel(
                "gpt-test",
                base_url=url,
                api_key=api_key,
                timeout_s=timeout_s,
                max_retries=max_retries,
            )
        else:
            made = AnthropicModel(
                "claude-test",
                base_url=url,
                api_key=api_key,
                timeout_s=timeout_s,
                max_retries=max_retries,
            )
        return self.stack.enter_context(made)


@contextmanager
def wired(protocol: Protocol, *turns: ModelTurn, api_key: str | None = None) -> Iterator[Wired]:
    brain = Brain(*turns)
    kind = OpenAIServer if protocol == "openai" else AnthropicServer
    with kind(brain, api_key=api_key) as server, ExitStack() as stack:
        yield Wired(protocol=protocol, brain=brain, server=server, stack=stack)
