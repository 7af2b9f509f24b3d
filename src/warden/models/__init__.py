"""Model adapters behind one interface (`Model.complete`), pricing and routing.

- `warden.models.base`      the provider-neutral request, turn and message types
- `warden.models.scripted`  deterministic turns from a YAML file (demos, tests, evals)
- `warden.models.openai`    OpenAI-compatible chat completions, official `openai` SDK
- `warden.models.anthropic` Anthropic messages, official `anthropic` SDK
- `warden.models.pricing`   token usage to USD (genai-prices), cached input included
- `warden.models.route`     cascades (cheap model first) and the response cache
"""

from warden.models.base import (
    Message,
    Model,
    ModelError,
    ModelRequest,
    ModelTurn,
    Role,
    ToolSpec,
    ToolUse,
    Usage,
)

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
