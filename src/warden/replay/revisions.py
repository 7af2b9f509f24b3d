"""Policy sets for a replay: a recorded revision rebuilt, or candidate policies loaded.

A gate keeps the texts its policy set was built from (`PolicySet.texts`: the policy files
and the agent manifests whose shorthands became policies) in the store when it loads
them. `rebuild_revision` compiles those texts again, with the current tools' argument
names, and checks that the result hashes to the recorded revision: a replay under "the
recorded policies" then runs exactly the rules that decided, whatever the project's
files say today. Tools are code and are not stored: the current ones are used.

`candidate_policies` loads a folder of policy files the way `load_project` loads the
project's own (with its manifests' shorthands), for `warden policy whatif`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from warden.errors import ReplayError, WardenError
from warden.manifest import AgentManifest, parse_manifest, shorthand_policies
from warden.policy.evaluate import PolicySet
from warden.policy.load import policy_set
from warden.policy.model import CompiledPolicy
from warden.project import project_policies
from warden.store.protocol import StoredRevision
from warden.tools.registry import ToolRegistry
from warden.yamlsource import parse_yaml

__all__ = ["candidate_policies", "rebuild_revision"]


def _derived(
    manifests: Iterable[AgentManifest], fields: Mapping[str, frozenset[str]]
) -> list[CompiledPolicy]:
    return [p for m in manifests for p in shorthand_policies(m, fields=fields)]


def rebuild_revision(
    stored: StoredRevision, *, tools: ToolRegistry
) -> tuple[PolicySet, tuple[AgentManifest, ...]]:
    """The policy set of a recorded revision, and the agent manifests among its sources.

    Raises ReplayError W-RPL-002 when the sources no longer compile (a condition this
    Warden rejects, a shorthand naming an argument a tool no longer has) or compile to
    another revision."""
    fields = {t.name: t.field_names for t in tools}
    try:
        docs = [parse_yaml(s.text, file=s.name) for s in stored.sources if s.kind != "manifest"]
        manifests = tuple(
            parse_manifest(parse_yaml(s.text, file=s.name))
            for s in stored.sources
            if s.kind == "manifest"
        )
        rebuilt = policy_set(
            docs,
            extra=_derived(manifests, fields),
            extra_sources=[(m.file, m.doc.text) for m in manifests],
            fields=fields,
        )
    except WardenError as exc:
        raise ReplayError(
            "W-RPL-002",
            f"policy revision {stored.revision} does not compile any more: "
            f"{exc.code} {exc.message}",
        ) from None
    if rebuilt.revision != stored.revision:
        raise ReplayError(
            "W-RPL-002",
            f"the sources kept for policy revision {stored.revision} hash to "
            f"{rebuilt.revision}; the stored sources are incomplete or were changed",
        )
    return rebuilt, manifests


def candidate_policies(
    path: Path,
    *,
    manifests: Iterable[AgentManifest],
    tools: ToolRegistry,
    root: Path | None = None,
) -> PolicySet:
    """Policy files from `path` (a file or a folder), with the shorthands of `manifests`,
    compiled for `tools`: the policy set a project would load with `path` as its
    ``policies:`` (`warden.project.project_policies`)."""
    return project_policies([path], manifests=list(manifests), tools=tools, root=root)
