"""Warden: the deterministic control plane around AI agents.

Agents propose tool calls; Warden checks each one against typed contracts, policies,
budgets, breakers and modes, and returns an explainable `Decision`::

    import warden

    project = warden.load_project("examples/refunds")
    gate = project.gate()
    decision = gate.decide(warden.ToolCall(
        agent="support_refund_agent", tool="create_refund", run_id="run_1",
        args={"order_id": "ord_123456", "amount_usd": 30.0, "reason": "damaged"},
        context={"customer_tier": "pro"},
    ))
    print(decision.outcome, decision.reasons)

Importing warden does no I/O.
"""

from warden.approvals import ApprovalRequest, ApprovalStatus
from warden.breakers import BreakerConfig
from warden.budgets import BudgetLimits
from warden.clock import Clock, CountingIds, FixedClock, IdSource, RandomIds, SystemClock
from warden.decision import ApprovalRequirement, Decision, Outcome, RuleRef, Stage
from warden.errors import (
    ApprovalError,
    AuditError,
    ConfigError,
    ExecutionError,
    GateError,
    IdempotencyError,
    ManifestError,
    PolicyError,
    ProjectError,
    RunError,
    StoreError,
    ToolDefinitionError,
    WardenError,
)
from warden.execution import Approvals
from warden.facts import FactQuery, FactRegistry, fact
from warden.gate import Gate, ToolCall
from warden.manifest import AgentManifest
from warden.modes import Mode
from warden.policy.evaluate import PolicySet
from warden.policy.load import load_policies, policy_from_text
from warden.project import Project, load_project
from warden.runs import ActionState, Execution, RunStatus
from warden.store.memory import MemoryStore
from warden.store.sqlite import SQLiteStore
from warden.tools import Limits, RiskTier, Tool, ToolContext, ToolRegistry, tool

__version__ = "0.1.0"

__all__ = [
    "ActionState",
    "AgentManifest",
    "ApprovalError",
    "ApprovalRequest",
    "ApprovalRequirement",
    "ApprovalStatus",
    "Approvals",
    "AuditError",
    "BreakerConfig",
    "BudgetLimits",
    "Clock",
    "ConfigError",
    "CountingIds",
    "Decision",
    "Execution",
    "ExecutionError",
    "FactQuery",
    "FactRegistry",
    "FixedClock",
    "Gate",
    "GateError",
    "IdSource",
    "IdempotencyError",
    "Limits",
    "ManifestError",
    "MemoryStore",
    "Mode",
    "Outcome",
    "PolicyError",
    "PolicySet",
    "Project",
    "ProjectError",
    "RandomIds",
    "RiskTier",
    "RuleRef",
    "RunError",
    "RunStatus",
    "SQLiteStore",
    "Stage",
    "StoreError",
    "SystemClock",
    "Tool",
    "ToolCall",
    "ToolContext",
    "ToolDefinitionError",
    "ToolRegistry",
    "WardenError",
    "__version__",
    "fact",
    "load_policies",
    "load_project",
    "policy_from_text",
    "tool",
]
