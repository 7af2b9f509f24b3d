"""The public API is curated and importing warden does no I/O."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import warden

EXPECTED = {
    "StoreError",
    "SQLiteStore",
    "RunStatus",
    "RunError",
    "IdempotencyError",
    "ExecutionError",
    "Execution",
    "AuditError",
    "Approvals",
    "ApprovalStatus",
    "ApprovalRequest",
    "ApprovalError",
    "ActionState",
    "AgentManifest",
    "ApprovalRequirement",
    "BreakerConfig",
    "BudgetLimits",
    "Clock",
    "ConfigError",
    "CountingIds",
    "Decision",
    "FactQuery",
    "FactRegistry",
    "FixedClock",
    "Gate",
    "GateError",
    "IdSource",
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
    "Stage",
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
}


def test_the_public_api_is_pinned() -> None:
    assert set(warden.__all__) == EXPECTED
    for name in warden.__all__:
        assert hasattr(warden, name), name


def test_importing_warden_opens_no_file_but_modules_and_no_socket() -> None:
    probe = textwrap.dedent(
        """
        import sys
        events = []
        def hook(event, args):
            if event == "open" and isinstance(args[0], str):
                path = args[0]
                if not path.endswith((".py", ".pyc", ".so", ".pth")) and "__pycache__" not in path:
                    events.append(path)
            elif event.startswith(("socket.", "subprocess.")):
                events.append(event)
        sys.addaudithook(hook)
        import warden
        print("\\n".join(e for e in events if "site-packages" not in e and "/lib/python" not in e))
        """
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", out.stdout
