"""Adapters that put Warden between the agent frameworks teams already use and their tools.

Each adapter is an optional extra, imported only when asked for::

    warden.integrations.langchain      WardenMiddleware        pip install 'warden[langchain]'
    warden.integrations.openai_agents  WardenTools             pip install 'warden[openai-agents]'
    warden.integrations.pydantic_ai    WardenCapability        pip install 'warden[pydantic-ai]'

They share one path (`Governor`): the framework's tool call becomes a `ToolCall` whose
idempotency key is derived from the Warden run id and the framework's tool-call id, so it
stays the same across an approval pause; `Gate.execute` decides it, records the decision,
runs the Warden tool exactly once and records the outcome. What comes back is turned into
the framework's own terms:

    executed            the result goes to the model
    denied, failed,     the model hears why, with the code ("Denied [W-POL-101]: ...");
    rejected            the tool never ran
    needs approval      the framework's native pause (a LangGraph interrupt, the SDK's
                        needs_approval, a Pydantic AI deferred tool) carrying the approval id
    stopped             the framework's run ends (budget, loop, kill switch, breaker)

Approvals are decided in Warden only (roles, counts, no self-approval). The framework's own
"approve" never runs a call Warden has not approved; its "reject" is honoured, since it can
only make things stricter.

Importing this package imports no framework.
"""

from warden.integrations.governor import Governor, Handling, IntegrationError, Next

__all__ = ["Governor", "Handling", "IntegrationError", "Next"]
