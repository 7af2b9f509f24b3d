"""One turn through OpenAIModel, against Warden's loopback server instead of the real API."""

from warden.models.base import Message, ModelRequest, ModelTurn, Role, ToolSpec, ToolUse, Usage
from warden.models.openai import OpenAIModel
from warden.provenance import Label
from warden.testing.loopback import Fault, OpenAIServer


class Brain:
    """Stands in for the model behind the server: it asks to look the order up."""

    def complete(self, request: ModelRequest) -> ModelTurn:
        call = ToolUse(id="call_1", name="lookup_order", arguments={"order_id": "ord_1"})
        usage = Usage(input_tokens=1200, output_tokens=20, cached_input_tokens=1024)
        return ModelTurn(tool_calls=(call,), usage=usage)


LOOKUP = ToolSpec(
    name="lookup_order",
    description="Find an order by its id.",
    parameters={"type": "object", "properties": {"order_id": {"type": "string"}}},
)
REQUEST = ModelRequest(
    messages=(
        Message(role=Role.SYSTEM, content="You are a support agent."),
        Message(role=Role.USER, content="Where is my order ord_1?", label=Label.TASK),
    ),
    tools=(LOOKUP,),
    run_id="run_000001",
    task="T-1001",
)

with OpenAIServer(Brain()) as server:
    server.faults.put(Fault.status(429, retry_after=0.01))  # the first attempt: rate limited
    with OpenAIModel("gpt-4o-mini", base_url=server.base_url, api_key="sk-test") as model:
        turn = model.complete(REQUEST)

    call = turn.tool_calls[0]
    print("call    ", call.name, dict(call.arguments or {}))
    print("stop    ", turn.stop_reason)
    print("usage   ", turn.usage.to_dict())
    print("requests", len(server.requests), "(the SDK retried the 429)")
    headers = server.requests[-1].headers
    print("headers ", headers["warden-run-id"], headers["warden-task"])
