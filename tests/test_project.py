"""Projects: warden.yaml and everything it names, loaded and checked together."""

from __future__ import annotations

import hashlib
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import warden
from warden.decision import Outcome
from warden.errors import ConfigError, ManifestError, ProjectError, ToolDefinitionError
from warden.modes import Mode
from warden.project import find_project_file, load_project

ROOT = Path(__file__).resolve().parents[1]
REFUNDS = ROOT / "examples" / "refunds"

TOOL_TEMPLATE = '''\
from pydantic import BaseModel

import warden


class Args(BaseModel):
    amount_usd: float


@warden.tool(risk="write")
def {name}(args: Args) -> None:
    """A tool for tests."""
'''

AGENT = "agent:\n  name: {name}\n  mode: act\n  permissions:\n    allowed_tools: [{tools}]\n"
POLICY = "policy:\n  tool: {tool}\n  rules:\n    - allow: true\n"


@pytest.fixture
def project_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder for a throwaway project; its modules and sys.path entry are removed after."""
    before = set(sys.modules)
    yield tmp_path
    sys.path[:] = [p for p in sys.path if not p.startswith(str(tmp_path))]
    for name in set(sys.modules) - before:
        origin = getattr(sys.modules.get(name), "__file__", None) or ""
        if origin.startswith(str(tmp_path)):
            del sys.modules[name]


def module_name(root: Path, stem: str) -> str:
    """A module name no other test uses: the loader imports tool modules by name."""
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:10]
    safe = re.sub(r"\W", "_", root.name)
    return f"wp_{stem}_{safe}_{digest}"


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def project(
    root: Path,
    *,
    modules: dict[str, str] | None = None,
    agents: dict[str, str] | None = None,
    policies: dict[str, str] | None = None,
    warden_yaml: str | None = None,
) -> dict[str, str]:
    """Write a project; returns the unique module name given to each module stem."""
    modules = modules if modules is not None else {"tools": TOOL_TEMPLATE.format(name="pay")}
    names = {stem: module_name(root, stem) for stem in modules}
    for stem, text in modules.items():
        write(root, f"{names[stem]}.py", text)
    for name, text in (agents or {"payer.yaml": AGENT.format(name="payer", tools="pay")}).items():
        write(root, f"agents/{name}", text)
    for name, text in (policies or {"pay.yaml": POLICY.format(tool="pay")}).items():
        write(root, f"policies/{name}", text)
    listed = "".join(f"  - {names[stem]}\n" for stem in modules)
    write(
        root,
        "warden.yaml",
        warden_yaml
        or "# a test project\nproject: tiny\nagents: [agents]\n"
        f"tools:\n{listed}policies: [policies]\n",
    )
    return names


# --- a project that loads -------------------------------------------------------------------------


def test_a_tiny_project_loads_and_decides(project_dir: Path) -> None:
    project(project_dir)
    loaded = load_project(project_dir)
    assert loaded.name == "tiny"
    assert loaded.root == project_dir
    assert loaded.file == project_dir / "warden.yaml"
    assert loaded.tools.names() == ["pay"]
    assert [a.name for a in loaded.agents] == ["payer"]
    gate = loaded.gate(store=warden.MemoryStore(), clock=warden.FixedClock())
    d = gate.decide(
        warden.ToolCall(agent="payer", tool="pay", run_id="run_1", args={"amount_usd": 5.0})
    )
    assert d.outcome is Outcome.ALLOW


def test_a_project_is_found_from_a_folder_below_it(project_dir: Path) -> None:
    project(project_dir)
    below = project_dir / "agents"
    assert find_project_file(below) == project_dir / "warden.yaml"
    assert load_project(below).name == "tiny"


def test_the_refunds_example_loads() -> None:
    loaded = load_project(REFUNDS)
    try:
        assert loaded.name == "refunds"
        assert sorted(loaded.tools.names()) == [
            "create_refund",
            "delete_customer",
            "list_invoices",
            "lookup_customer",
        ]
        assert {a.name: a.mode for a in loaded.agents} == {
            "refund_autopilot": Mode.ACT,
            "support_refund_agent": Mode.SUGGEST_THEN_ACT,
        }
        assert loaded.facts.names() == ["chargeback_last_180d"]
        files = {p.file for p in loaded.policies.policies}
        assert files == {
            "policies/reads.yaml",
            "policies/refunds.yaml",
            "agents/refund_autopilot.yaml",
            "agents/support_refund_agent.yaml",
        }
        assert load_project(REFUNDS).policies.revision == loaded.policies.revision
    finally:
        loaded.facts.close()


@pytest.mark.parametrize(
    ("agent", "amount", "context", "outcome", "code"),
    [
        pytest.param(
            "refund_autopilot", 30.0, {"customer_tier": "pro", "customer_id": "cus_1"},
            Outcome.ALLOW, None,
            id="autopilot: a small refund is allowed",
        ),
        pytest.param(
            "support_refund_agent", 30.0, {"customer_tier": "pro", "customer_id": "cus_1"},
            Outcome.NEEDS_APPROVAL, "W-MODE-002",
            id="suggest_then_act: a small refund waits for a person",
        ),
        pytest.param(
            "refund_autopilot", 30.0,
            {"customer_tier": "pro", "customer_id": "cus_chargeback"},
            Outcome.DENY, "W-POL-101",
            id="a chargeback fact denies through the manifest shorthand",
        ),
        pytest.param(
            "support_refund_agent", 150.0,
            {"customer_tier": "enterprise", "customer_id": "cus_1"},
            Outcome.DENY, "W-POL-101",
            id="over the manifest's max_amount_usd",
        ),
    ],
)  # fmt: skip
def test_the_refunds_example_decides_through_its_gate(
    agent: str, amount: float, context: dict[str, str], outcome: Outcome, code: str | None
) -> None:
    loaded = load_project(REFUNDS)
    try:
        gate = loaded.gate(store=warden.MemoryStore(), clock=warden.FixedClock())
        d = gate.decide(
            warden.ToolCall(
                agent=agent,
                tool="create_refund",
                run_id="run_1",
                args={"order_id": "ord_123456", "amount_usd": amount, "reason": "damaged"},
                context=context,
            )
        )
        assert (d.outcome, d.code) == (outcome, code)
    finally:
        loaded.facts.close()


# --- project loading errors -----------------------------------------------------------------------


def test_no_warden_yaml_is_w_prj_001(tmp_path: Path) -> None:
    (tmp_path / "agents").mkdir()
    with pytest.raises(ProjectError) as caught:
        load_project(tmp_path / "agents")
    assert caught.value.code == "W-PRJ-001"
    assert "no warden.yaml in" in caught.value.message


def test_a_tool_module_that_raises_on_import_is_w_prj_002_at_its_warden_yaml_line(
    project_dir: Path,
) -> None:
    names = project(
        project_dir,
        modules={
            "good": TOOL_TEMPLATE.format(name="pay"),
            "broken": "raise RuntimeError('the backend is not configured')\n",
        },
    )
    with pytest.raises(ProjectError) as caught:
        load_project(project_dir)
    err = caught.value
    assert (err.code, err.file, err.line, err.field) == ("W-PRJ-002", "warden.yaml", 6, "tools.1")
    assert f"cannot import {names['broken']!r}: RuntimeError: the backend is not configured" in (
        err.message
    )
    assert isinstance(err.__cause__, RuntimeError)


def test_a_tool_module_that_does_not_exist_is_w_prj_002(project_dir: Path) -> None:
    project(
        project_dir,
        warden_yaml="project: tiny\nagents: [agents]\ntools: [no_such_module_for_warden_tests]\n"
        "policies: [policies]\n",
    )
    with pytest.raises(ProjectError) as caught:
        load_project(project_dir)
    assert (caught.value.code, caught.value.line, caught.value.field) == ("W-PRJ-002", 3, "tools.0")
    assert "ModuleNotFoundError" in caught.value.message


def test_a_manifest_allowing_an_unregistered_tool_is_w_prj_003(project_dir: Path) -> None:
    project(
        project_dir,
        agents={"payer.yaml": "# payer\n" + AGENT.format(name="payer", tools="pay, refund")},
    )
    with pytest.raises(ProjectError) as caught:
        load_project(project_dir)
    err = caught.value
    assert (err.code, err.file, err.line, err.field) == (
        "W-PRJ-003",
        "agents/payer.yaml",
        6,
        "agent.permissions.allowed_tools",
    )
    assert "agent 'payer' allows tool 'refund', which no listed module registers" in err.message


def test_a_policy_naming_an_unknown_tool_is_w_prj_003(project_dir: Path) -> None:
    project(
        project_dir,
        policies={
            "pay.yaml": POLICY.format(tool="pay"),
            "refund.yaml": "# refunds\n" + POLICY.format(tool="refund"),
        },
    )
    with pytest.raises(ProjectError) as caught:
        load_project(project_dir)
    err = caught.value
    assert (err.code, err.file) == ("W-PRJ-003", "policies/refund.yaml")
    assert "policy 'refund' names tool 'refund', which no listed module registers" in err.message


def test_a_policy_naming_an_unknown_tool_points_at_its_tool_key(project_dir: Path) -> None:
    project(project_dir, policies={"pay.yaml": "# refunds\n" + POLICY.format(tool="refund")})
    with pytest.raises(ProjectError) as caught:
        load_project(project_dir)
    assert (caught.value.line, caught.value.field) == (3, "policy.tool")


def test_duplicate_agent_names_are_w_man_003_at_the_second_name(project_dir: Path) -> None:
    project(
        project_dir,
        agents={
            "a.yaml": AGENT.format(name="payer", tools="pay"),
            "b.yaml": "# the same agent again\n" + AGENT.format(name="payer", tools="pay"),
        },
    )
    with pytest.raises(ManifestError) as caught:
        load_project(project_dir)
    err = caught.value
    assert (err.code, err.file, err.line) == ("W-MAN-003", "agents/b.yaml", 3)
    assert "agent 'payer' is declared twice (also in agents/a.yaml)" in err.message


def test_duplicate_tool_names_across_modules_are_w_tool_002(project_dir: Path) -> None:
    project(
        project_dir,
        modules={
            "first": TOOL_TEMPLATE.format(name="pay"),
            "second": TOOL_TEMPLATE.format(name="pay"),
        },
    )
    with pytest.raises(ToolDefinitionError) as caught:
        load_project(project_dir)
    assert caught.value.code == "W-TOOL-002"
    assert "tool name 'pay' is registered twice" in caught.value.message


def test_a_tool_imported_into_a_second_module_is_registered_once(project_dir: Path) -> None:
    names = project(project_dir, modules={"first": TOOL_TEMPLATE.format(name="pay")})
    reexport = f"from {names['first']} import pay\n"
    second = module_name(project_dir, "second")
    write(project_dir, f"{second}.py", reexport)
    text = (project_dir / "warden.yaml").read_text(encoding="utf-8")
    write(project_dir, "warden.yaml", text.replace("policies:", f"  - {second}\npolicies:"))
    assert load_project(project_dir).tools.names() == ["pay"]


@pytest.mark.parametrize(
    ("text", "code", "line", "field"),
    [
        pytest.param(
            "project: tiny\nagents: [agents]\npolicies: [policies]\ncolour: red\n",
            "W-CFG-004", 4, "colour",
            id="an unknown key",
        ),
        pytest.param(
            "project: tiny\nagents: [agents]\n",
            "W-CFG-004", 1, "policies",
            id="no policies",
        ),
        pytest.param(
            "project: tiny\nagents: []\npolicies: [policies]\n",
            "W-CFG-004", 2, "agents",
            id="no agents",
        ),
        pytest.param(
            "- agents\n",
            "W-CFG-004", 1, None,
            id="a list, not a mapping",
        ),
        pytest.param(
            "project: tiny\nagents:\n  - agents\n  - more_agents\npolicies: [policies]\n",
            "W-CFG-001", 4, "agents.1",
            id="an agents folder that does not exist",
        ),
    ],
)  # fmt: skip
def test_a_malformed_warden_yaml_is_a_coded_error_at_its_line(
    project_dir: Path, text: str, code: str, line: int, field: str | None
) -> None:
    project(project_dir, modules={}, warden_yaml=text)
    with pytest.raises(ProjectError) as caught:
        load_project(project_dir)
    err = caught.value
    assert (err.code, err.file, err.line, err.field) == (code, "warden.yaml", line, field)


def test_a_project_whose_policy_folder_is_empty_is_w_pol_005(project_dir: Path) -> None:
    project(project_dir, policies={"pay_test.yaml": "tests: []\n"})
    with pytest.raises(ConfigError) as caught:
        load_project(project_dir)
    assert caught.value.code == "W-POL-005"


def test_a_project_error_in_a_manifest_names_the_manifest_file(project_dir: Path) -> None:
    project(project_dir, agents={"payer.yaml": "agent:\n  name: payer\n  mode: yolo\n"})
    with pytest.raises(ManifestError) as caught:
        load_project(project_dir)
    assert (caught.value.code, caught.value.file, caught.value.line) == (
        "W-CFG-004",
        "agents/payer.yaml",
        3,
    )


def test_two_projects_with_a_module_of_the_same_name_each_get_their_own(tmp_path: Path) -> None:
    from tests.conftest import REFUNDS

    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(REFUNDS, a)
    shutil.copytree(REFUNDS, b)
    tools_b = b / "refund_tools.py"
    tools_b.write_text(
        tools_b.read_text().replace('"""Look up a customer', '"""B: look up a customer')
    )
    try:
        first = load_project(a).tools["lookup_customer"].description
        second = load_project(b).tools["lookup_customer"].description
        again = load_project(a).tools["lookup_customer"].description
    finally:
        for name in ("refund_tools", "refund_facts"):
            sys.modules.pop(name, None)
        sys.path[:] = [p for p in sys.path if not p.startswith(str(tmp_path))]
    assert second.startswith("B:")
    assert first == again and not again.startswith("B:")
