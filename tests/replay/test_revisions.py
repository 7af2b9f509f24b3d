"""A recorded revision rebuilt from its stored texts; candidate policies loaded from a folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.replay import world
from warden.errors import ProjectError, ReplayError
from warden.policy.evaluate import PolicySource
from warden.replay import candidate_policies, rebuild_revision
from warden.store.protocol import StoredRevision


def _stored(sources: tuple[PolicySource, ...], revision: str) -> StoredRevision:
    return StoredRevision(revision=revision, sources=sources, first_seen=0.0)


def test_a_policy_set_keeps_its_texts_and_rebuilds_to_its_revision() -> None:
    loaded = world.policies()
    assert {(s.name, s.kind) for s in loaded.texts} == {
        ("agents/cautious.yaml", "manifest"),
        ("agents/desk.yaml", "manifest"),
        ("policies/lookups.yaml", "policy"),
        ("policies/refunds.yaml", "policy"),
    }
    rebuilt, manifests = rebuild_revision(_stored(loaded.texts, loaded.revision), tools=world.TOOLS)
    assert rebuilt.revision == loaded.revision and rebuilt.sources == loaded.sources
    assert sorted(m.name for m in manifests) == ["cautious", "desk"]
    assert sorted(r.ref.id for p in rebuilt.policies for r in p.rules) == sorted(
        r.ref.id for p in loaded.policies for r in p.rules
    )


def test_a_shorthand_naming_an_argument_the_tool_lost_cannot_be_rebuilt() -> None:
    loaded = world.policies()
    texts = tuple(
        PolicySource(name=s.name, text=s.text.replace("max_amount", "max_total"), kind=s.kind)
        for s in loaded.texts
    )
    with pytest.raises(ReplayError) as caught:
        rebuild_revision(_stored(texts, loaded.revision), tools=world.TOOLS)
    assert caught.value.code == "W-RPL-002" and "W-MAN-002" in caught.value.message


def test_candidate_policies_load_like_the_projects_own(tmp_path: Path) -> None:
    (tmp_path / "refunds.yaml").write_text(world.REFUNDS)
    (tmp_path / "refunds_test.yaml").write_text("cases: []\n")  # tests are not policies
    candidate = candidate_policies(tmp_path, manifests=world.manifests(), tools=world.TOOLS)
    assert {p.id for p in candidate.policies} == {
        "refunds",
        "manifest:desk:refund",
    }
    (tmp_path / "other.yaml").write_text("policy:\n  tool: wire\n  rules:\n    - allow: true\n")
    with pytest.raises(ProjectError) as caught:
        candidate_policies(tmp_path, manifests=world.manifests(), tools=world.TOOLS)
    assert caught.value.code == "W-PRJ-003"
