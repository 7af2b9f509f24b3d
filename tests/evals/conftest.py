"""The eval tests' kit: a copy of the till fixture per test, and the CLI runner."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from warden.cli import cli

TILL = Path(__file__).resolve().parent / "fixtures" / "till"


@pytest.fixture
def till(tmp_path: Path) -> Iterator[Path]:
    """A fresh copy of the till project (with its suite), and TILL_LEDGER restored after."""
    root = tmp_path / "till"
    shutil.copytree(TILL, root, ignore=shutil.ignore_patterns("__pycache__", ".warden"))
    before = os.environ.get("TILL_LEDGER")
    yield root
    if before is None:
        os.environ.pop("TILL_LEDGER", None)
    else:
        os.environ["TILL_LEDGER"] = before


def warden_cli(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])
