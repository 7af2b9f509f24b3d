"""Policy-as-code: YAML rules with safe, compiled conditions."""

from warden.policy.evaluate import (
    AgentView,
    NowView,
    PolicyResult,
    PolicySet,
    PolicySource,
    RunView,
    Scope,
)
from warden.policy.expr import FUNCTIONS, METHODS, RESERVED, Condition, compile_condition
from warden.policy.load import load_policies, policy_files, policy_from_text, policy_set
from warden.policy.model import CompiledPolicy, LogSettings, Rule, build_policy, make_rule

__all__ = [
    "FUNCTIONS",
    "METHODS",
    "RESERVED",
    "AgentView",
    "CompiledPolicy",
    "Condition",
    "LogSettings",
    "NowView",
    "PolicyResult",
    "PolicySet",
    "PolicySource",
    "Rule",
    "RunView",
    "Scope",
    "build_policy",
    "compile_condition",
    "load_policies",
    "make_rule",
    "policy_files",
    "policy_from_text",
    "policy_set",
]
