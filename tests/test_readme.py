"""The README's quick start and example stay true."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_the_quick_start_has_exactly_the_two_commands() -> None:
    block = README.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make demo", "make test"]


def test_the_library_example_is_the_file_that_runs() -> None:
    marker = "<!-- snippet: examples/quickstart.py -->\n```python\n"
    shown = README.split(marker, 1)[1].split("```", 1)[0]
    assert shown == (ROOT / "examples" / "quickstart.py").read_text()
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "allow" in out and "needs_approval" in out and "W-POL-102" in out


def test_every_relative_link_resolves() -> None:
    for target in re.findall(r"\]\(([^)#:]+)\)", README):
        assert (ROOT / target).exists(), target


def test_ci_runs_the_readmes_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
