"""Model servers on loopback that speak OpenAI's and Anthropic's wire protocols.

Warden's model adapters are tested through the official SDKs against real HTTP, not mocks:
`OpenAIServer` serves chat completions and `AnthropicServer` the Messages API on
127.0.0.1. Each answers from a *brain*, any object with ``complete(ModelRequest) ->
ModelTurn`` (a scripted model, a tiny class in a test): the server decodes the wire request
into a provider-neutral `ModelRequest`, asks the brain, and encodes the turn in the
protocol's exact response shape, so the SDKs parse it like a real answer. Tests push
`Fault` values onto ``server.faults`` to make the next requests fail the way providers
fail, and read ``server.requests`` to see what reached the wire::

    with OpenAIServer(brain) as server:
        server.faults.put(Fault.status(429, retry_after=0.01))
        with OpenAIModel("gpt-4o-mini", base_url=server.base_url, api_key="sk-test") as model:
            turn = model.complete(request)
        assert len(server.requests) == 2   # the SDK retried once

The wire carries no provenance, so decoded messages are labelled by role: system text
`Label.SYSTEM`, user and tool content `Label.UNTRUSTED`, assistant text `Label.MODEL`. The
task and run id come from the ``Warden-Task`` and ``Warden-Run-Id`` headers. A brain that
raises `ModelError` is answered with the matching HTTP error (W-MDL-002 429, W-MDL-003 408,
W-MDL-004 400, anything else 500).

- `warden.testing.loopback.server`    the HTTP machinery, `Fault`, `Received`
- `warden.testing.loopback.openai`    chat completions (and Azure's deployment path)
- `warden.testing.loopback.anthropic` the Messages API, as of version 2026-10-21
"""

from warden.testing.loopback.anthropic import AnthropicServer
from warden.testing.loopback.openai import OpenAIServer
from warden.testing.loopback.server import Brain, Fault, LoopbackServer, Received

__all__ = ["AnthropicServer", "Brain", "Fault", "LoopbackServer", "OpenAIServer", "Received"]
