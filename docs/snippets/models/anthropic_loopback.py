"""One turn through AnthropicModel, against Warden's loopback server instead of the API."""

from warden.errors import ModelError
from warden.models.anthropic import AnthropicModel
from warden.models.base import Message, ModelRequest, ModelTurn, Role, Usage
from warden.provenance import Label
from warden.testing.loopback import AnthropicServer, Fault


class Brain:
    """Stands in for Claude behind the server."""

    def complete(self, request: ModelRequest) -> ModelTurn:
        usage = Usage(input_tokens=5000, output_tokens=40, cached_input_tokens=4096)
        return ModelTurn(text="Your order ships today.", usage=usage)


REQUEST = ModelRequest(
    messages=(
        Message(role=Role.SYSTEM, content="You are a support agent."),
        Message(role=Role.USER, content="Where is my order ord_1?", label=Label.TASK),
    ),
    run_id="run_000002",
    task="T-1002",
)

with AnthropicServer(Brain()) as server:
    server.faults.put(Fault.status(529, retry_after=0.01))  # overloaded once, then fine
    with AnthropicModel("claude-sonnet-4-5", base_url=server.base_url, api_key="sk-ant") as model:
        turn = model.complete(REQUEST)
    print("text    ", turn.text)
    print("stop    ", turn.stop_reason)
    print("usage   ", turn.usage.to_dict())
    print("requests", len(server.requests))

    for _ in range(3):  # overloaded on every attempt: the adapter gives up
        server.faults.put(Fault.status(529, retry_after=0.01))
    with AnthropicModel(
        "claude-sonnet-4-5", base_url=server.base_url, api_key="sk-ant", max_retries=2
    ) as model:
        try:
            model.complete(REQUEST)
        except ModelError as error:
            print("error   ", error.code, "retryable" if error.retryable else "final")
