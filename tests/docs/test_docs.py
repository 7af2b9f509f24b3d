"""The docs are tested like code, so they cannot drift from it.

- the generated pages (error codes, CLI reference) equal what the generator renders now;
- every code block longer than two lines in a hand-written page is a file under
  ``docs/snippets/``, shown verbatim after a ``<!-- snippet: PATH -->`` marker;
- every snippet project loads and its policy tests pass, every snippet script runs, every
  ``.console`` snippet prints what it shows, and the snippet pytest suites pass;
- every setting of the manifest, policy, project and policy-test schemas, every name of the
  condition language and every field of a decision is mentioned in the docs.

When a snippet's console output changes on purpose, ``WARDEN_UPDATE_SNIPPETS=1`` re-runs
the commands and rewrites the ``.console`` files and the blocks that show snippets.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import BaseModel

import warden
from warden import manifest, project
from warden.cli.docgen import render_all
from warden.decision import Decision, Outcome, Stage
from warden.errors import CODES
from warden.facts import FactQuery
from warden.gate import ToolCall
from warden.history import HistoryView
from warden.modes import AUTONOMY_MODES, Mode
from warden.policy import cases, model
from warden.policy.cases import discover_test_files, load_cases
from warden.policy.expr import FUNCTIONS, METHODS, RESERVED
from warden.tools.spec import Limits, RiskTier

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SNIPPETS = DOCS / "snippets"
GENERATED = render_all()
UPDATE = os.environ.get("WARDEN_UPDATE_SNIPPETS") == "1"
MAKE_DOCS = "the generated docs are out of date: run `make docs` and commit the result"

MARKER = re.compile(r"^<!-- snippet: (\S+) -->$")
FENCE = re.compile(r"^(```+|~~~+)(.*)$")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _hand_written() -> list[Path]:
    generated = {DOCS / rel for rel in GENERATED}
    return sorted(
        p for p in DOCS.rglob("*.md") if p not in generated and not p.is_relative_to(SNIPPETS)
    )


HAND_WRITTEN = _hand_written()
ALL_PAGES = sorted({*HAND_WRITTEN, *(DOCS / rel for rel in GENERATED)})


# --- (a) generated pages ------------------------------------------------------------------


def test_every_code_has_a_page() -> None:
    missing = [code for code in CODES if not (DOCS / "errors" / f"{code}.md").is_file()]
    assert not missing, f"no page for {missing}; {MAKE_DOCS}"


@pytest.mark.parametrize("rel", sorted(GENERATED))
def test_generated_page_is_what_the_generator_renders(rel: str) -> None:
    page = DOCS / rel
    assert page.is_file(), f"docs/{rel} is missing; {MAKE_DOCS}"
    assert page.read_text(encoding="utf-8") == GENERATED[rel], f"docs/{rel}: {MAKE_DOCS}"


def test_no_page_is_left_for_a_code_that_is_gone() -> None:
    stale = [p.name for p in (DOCS / "errors").glob("W-*.md") if p.stem not in CODES]
    assert not stale, f"pages for unknown codes {stale}; {MAKE_DOCS}"


def test_docs_pages_named_by_error_codes_exist() -> None:
    for code, info in CODES.items():
        for rel in re.findall(r"docs/([\w./-]+\.md)", f"{info.why} {info.fix}"):
            assert (DOCS / rel).is_file(), f"{code} points to docs/{rel}, which does not exist"


# --- (b) code blocks are snippet files -------------------------------------------------


@dataclass(frozen=True)
class Block:
    line: int
    """1-based line of the opening fence."""
    snippet: str | None
    """The path in the marker right before the fence, if any."""
    lines: tuple[str, ...]
    """The block's content lines."""

    @property
    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)


def blocks(text: str) -> list[Block]:
    found: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence = opening.group(1)
        end = i + 1
        while end < len(lines) and not lines[end].startswith(fence):
            end += 1
        marker = MARKER.match(lines[i - 1]) if i > 0 else None
        found.append(
            Block(
                line=i + 1,
                snippet=marker.group(1) if marker else None,
                lines=tuple(lines[i + 1 : end]),
            )
        )
        i = end + 1
    return found


def _update_blocks(page: Path) -> None:
    """Rewrite every block after a marker with its file's content."""
    out: list[str] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        out.append(lines[i])
        marker = MARKER.match(lines[i])
        if marker and i + 1 < len(lines) and FENCE.match(lines[i + 1]):
            fence = FENCE.match(lines[i + 1])
            assert fence is not None
            end = i + 2
            while end < len(lines) and not lines[end].startswith(fence.group(1)):
                end += 1
            content = (ROOT / marker.group(1)).read_text(encoding="utf-8").splitlines()
            out += [lines[i + 1], *content, lines[end] if end < len(lines) else fence.group(1)]
            i = end + 1
            continue
        i += 1
    page.write_text("\n".join(out) + "\n", encoding="utf-8")


@pytest.mark.parametrize("page", HAND_WRITTEN, ids=_rel)
def test_every_long_code_block_is_a_snippet(page: Path) -> None:
    for block in blocks(page.read_text(encoding="utf-8")):
        if len(block.lines) > 2:
            assert block.snippet is not None, (
                f"{_rel(page)}:{block.line}: a code block of {len(block.lines)} lines must be "
                "a file under docs/snippets/, shown after `<!-- snippet: PATH -->`"
            )


@pytest.mark.parametrize("page", HAND_WRITTEN, ids=_rel)
def test_snippet_blocks_show_their_files_verbatim(page: Path) -> None:
    if UPDATE:
        _update_blocks(page)
    text = page.read_text(encoding="utf-8")
    markers = [line for line in text.splitlines() if MARKER.match(line)]
    shown = [b for b in blocks(text) if b.snippet is not None]
    assert len(shown) == len(markers), f"{_rel(page)}: a snippet marker is not followed by a block"
    for block in shown:
        assert block.snippet is not None
        source = ROOT / block.snippet
        assert source.is_relative_to(SNIPPETS) and source.is_file(), (
            f"{_rel(page)}:{block.line}: {block.snippet} is not a file under docs/snippets/"
        )
        assert block.text == source.read_text(encoding="utf-8"), (
            f"{_rel(page)}:{block.line}: the block differs from {block.snippet}; copy the file "
            "into the block (or run the docs tests with WARDEN_UPDATE_SNIPPETS=1)"
        )


@pytest.mark.parametrize("page", ALL_PAGES, ids=_rel)
def test_every_relative_link_resolves(page: Path) -> None:
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if "://" in target or target.startswith(("#", "mailto:")):
            continue
        path = target.split("#", 1)[0]
        assert (page.parent / path).exists(), f"{_rel(page)}: broken link {target}"


# --- (c) snippets run -------------------------------------------------------------------

PROJECTS = sorted(p.parent for p in SNIPPETS.rglob("warden.yaml"))
SCRIPTS = sorted(SNIPPETS.rglob("*.py"))
CONSOLES = sorted(SNIPPETS.rglob("*.console"))
SUITES = sorted(p.parent for p in SNIPPETS.rglob("pytest.ini"))


@pytest.fixture
def isolated_imports() -> Iterator[None]:
    """Loading a project imports its modules; forget them afterwards (and write no .pyc)."""
    saved_path, saved_modules = list(sys.path), dict(sys.modules)
    dont_write = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = dont_write
        sys.path[:] = saved_path
        for name, module in list(sys.modules.items()):
            origin = getattr(module, "__file__", None)
            if origin and Path(origin).resolve().is_relative_to(SNIPPETS):
                del sys.modules[name]
        for name, module in saved_modules.items():
            sys.modules.setdefault(name, module)


def _env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "FORCE_COLOR", "CLICOLOR", "WARDEN_"))
    }
    env.update(
        COLUMNS="100",
        LINES="50",
        NO_COLOR="1",
        TERM="dumb",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUTF8="1",
    )
    return env


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=120, check=False
    )


def test_there_are_snippets_to_test() -> None:
    assert PROJECTS and SCRIPTS and CONSOLES and SUITES


@pytest.mark.usefixtures("isolated_imports")
@pytest.mark.parametrize("folder", PROJECTS, ids=_rel)
def test_snippet_project_loads_and_its_policy_tests_pass(folder: Path) -> None:
    proj = warden.load_project(folder)
    found = [
        case
        for f in discover_test_files(proj.policy_paths)
        for case in load_cases(f, display=_rel(f))
    ]
    assert found, f"{_rel(folder)} has no policy test case"
    failed = [
        f"{r.case.file}:{r.case.line} {r.case.name}: {'; '.join(r.problems)}"
        for r in proj.run_policy_cases(found)
        if not r.passed
    ]
    assert not failed, "\n".join(failed)


@pytest.mark.parametrize("script", SCRIPTS, ids=_rel)
def test_snippet_script_runs(script: Path) -> None:
    done = _run([sys.executable, script.name], script.parent)
    assert done.returncode == 0, f"{_rel(script)} exited {done.returncode}:\n{done.stderr}"


def _commands(text: str) -> list[tuple[str, str, str]]:
    """``(as written, command, expected output)`` of each command of a .console file.

    A command line starts with ``$ ``; one ending in ``\\`` continues on the next line.
    """
    found: list[tuple[str, str, str]] = []
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        assert lines[i].startswith("$ "), f"expected a `$ command` line, got {lines[i]!r}"
        written = [lines[i]]
        while written[-1].rstrip("\n").endswith("\\") and i + 1 < len(lines):
            i += 1
            written.append(lines[i])
        command = " ".join(w.rstrip("\n").removesuffix("\\").strip() for w in written)
        i += 1
        output: list[str] = []
        while i < len(lines) and not lines[i].startswith("$ "):
            output.append(lines[i])
            i += 1
        found.append(("".join(written), command[2:], "".join(output)))
    return found


def _argv(command: str) -> list[str]:
    words = shlex.split(command)
    program = {
        "warden": [sys.executable, "-c", "from warden.cli.main import main; main()"],
        "python": [sys.executable],
    }.get(words[0])
    assert program is not None, f"console snippets run `warden` or `python`, not {words[0]}"
    return [*program, *words[1:]]


@pytest.mark.parametrize("console", CONSOLES, ids=_rel)
def test_console_snippet_prints_what_it_shows(console: Path) -> None:
    updated: list[str] = []
    for written, command, expected in _commands(console.read_text(encoding="utf-8")):
        done = _run(_argv(command), console.parent)
        assert done.returncode == 0, f"`{command}` exited {done.returncode}:\n{done.stderr}"
        updated.append(written + done.stdout)
        if not UPDATE:
            assert done.stdout == expected, (
                f"{_rel(console)}: `{command}` printed something else; fix the code or the "
                "snippet (WARDEN_UPDATE_SNIPPETS=1 rewrites it)"
            )
    if UPDATE:
        console.write_text("".join(updated), encoding="utf-8")


@pytest.mark.parametrize("folder", SUITES, ids=_rel)
def test_snippet_pytest_suite_passes(folder: Path) -> None:
    done = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], folder)
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout and "failed" not in done.stdout


# --- (d) every setting and name is documented ---------------------------------------------


def _fields(module: ModuleType, *schemas: str) -> set[str]:
    """The YAML keys of the private pydantic schemas `schemas` of `module` (aliases first)."""
    found: set[str] = set()
    for name in schemas:
        schema: type[BaseModel] = getattr(module, name)
        found |= {info.alias or key for key, info in schema.model_fields.items()}
    return found


def _mentioned(doc: str, names: set[str]) -> list[str]:
    """The names that `doc` does not mention as code (`name`, `name:` or `name(`)."""
    text = (DOCS / doc).read_text(encoding="utf-8")
    return sorted(n for n in names if not re.search(rf"`\.?{re.escape(n)}[`:(\s.=<]", text))


DOCUMENTED: list[tuple[str, set[str]]] = [
    (
        "concepts/manifests.md",
        _fields(manifest, "_File", "_Agent", "_Budgets", "_Breakers", "_Loops", "_Approvals")
        | {"allowed_tools", "max_", "min_", "require_human_approval_over_", "deny_if_"}
        | {"require_approval"},
    ),
    (
        "concepts/policies.md",
        _fields(model, "_PolicyFileSpec", "_PolicySpec", "_RuleSpec", "_ApprovalSpec", "_LogSpec")
        | set(RESERVED)
        | set(FUNCTIONS)
        | set(METHODS)
        | {"true", "false", "null"},
    ),
    ("concepts/project.md", _fields(project, "_ProjectSpec")),
    (
        "how-to/test-policies.md",
        _fields(cases, "_File", "_Case", "_Run", "_History")
        | {"--warden-policy-tests", "--warden-project", "warden_policy_tests"}
        | {"warden_project", "warden_clock", "warden_gate", "warden_decisions"},
    ),
    (
        "concepts/gate.md",
        {f.name for f in dataclasses.fields(Decision)}
        | {f.name for f in dataclasses.fields(ToolCall)}
        | {s.value for s in Stage}
        | {o.value for o in Outcome},
    ),
    ("concepts/modes.md", {m.value for m in Mode} | set(AUTONOMY_MODES)),
    (
        "concepts/tools.md",
        {r.value for r in RiskTier}
        | {p for p in inspect.signature(warden.tool).parameters if p != "fn"}
        | {f.name for f in dataclasses.fields(Limits)},
    ),
    (
        "concepts/facts-and-history.md",
        {f.name for f in dataclasses.fields(FactQuery)}
        | {n for n in vars(HistoryView) if not n.startswith("_")},
    ),
]


@pytest.mark.parametrize(("doc", "names"), DOCUMENTED, ids=[d for d, _ in DOCUMENTED])
def test_every_setting_is_documented(doc: str, names: set[str]) -> None:
    missing = _mentioned(doc, names)
    assert not missing, f"docs/{doc} does not mention {missing}"


def test_every_code_is_listed_in_the_index() -> None:
    index = (DOCS / "errors" / "README.md").read_text(encoding="utf-8")
    assert all(f"[{code}]({code}.md)" in index for code in CODES)
