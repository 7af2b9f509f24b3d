"""Fixtures for the support-desk example: the project (its modules forgotten afterwards)
and a billing database of the test's own."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import warden

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "support_desk"


@pytest.fixture(scope="module")
def desk() -> Iterator[warden.Project]:
    """The example project; its modules are forgotten afterwards (another test may load a
    copy of the example from elsewhere)."""
    saved_path = list(sys.path)
    project = warden.load_project(EXAMPLE)
    yield project
    sys.path[:] = saved_path
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if origin and Path(origin).resolve().is_relative_to(EXAMPLE):
            del sys.modules[name]


@pytest.fixture
def billing_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "billing.db"
    monkeypatch.setenv("SUPPORT_DESK_BILLING_DB", str(path))
    monkeypatch.setenv("SUPPORT_DESK_SLOW_SECONDS", "1.5")
    return path


@pytest.fixture
def bl(desk: warden.Project) -> ModuleType:
    """The example's billing module (importable once the project is loaded)."""
    import billing  # pyright: ignore[reportMissingImports]

    return billing


@pytest.fixture
def backend(bl: ModuleType, billing_db: Path) -> Any:
    """The test's billing database, on the real clock like the tools' (the seeded dates and
    the chargeback window are relative to today)."""
    return bl.Billing(billing_db)
