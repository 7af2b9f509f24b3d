"""The runner's test kit: durable gates over the shop fixture (a fresh SQLite file per
test), scripted turns, and a model that records what it is asked and can die mid-run."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import pytest

import warden
from warden.execution import Approvals
from warden.models.base import ModelRequest, ModelTurn
from warden.models.scripted import ScriptedModel
from warden.runner import RunResult
from warden.store.sqlite import SQLiteStore

SHOP = Path(__file__).resolve().parent / "fixtures" / "shop"

DONE: dict[str, Any] = {"text": "Done."}
"""A turn without calls: the run finishes."""


def uses(tool: str, **args: Any) -> dict[str, Any]:
    """A model turn that calls one tool."""
    return {"calls": [{tool: args}]}


def scripted(
    *turns: Mapping[str, Any],
    name: str = "scripted",
    key: str = "default",
    prices_as: tuple[str, str] | None = None,
) -> ScriptedModel:
    """A model that answers with `turns`, in order, for the task `key`."""
    return ScriptedModel({key: [dict(t) for t in turns]}, name=name, prices_as=prices_as)


class Crash(BaseException):
    """The process dies here: not an Exception, so nothing in Warden catches it."""


class Watched:
    """A model that records every request it gets, and can die on its n-th call."""

    def __init__(self, inner: ScriptedModel, *, crash_on: int | None = None) -> None:
        self.inner = inner
        self.crash_on = crash_on
        self.requests: list[ModelRequest] = []
        self.prices_as = inner.prices_as

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def provider(self) -> str:
        return self.inner.provider

    def complete(self, request: ModelRequest) -> ModelTurn:
        self.requests.append(request)
        if len(self.requests) == self.crash_on:
            raise Crash(f"the process died while asking {self.name}")
        return self.inner.complete(request)


def kinds(result: RunResult) -> list[str]:
    return [str(e["kind"]) for e in result.timeline]


def events(result: RunResult, kind: str) -> list[Mapping[str, Any]]:
    return [e for e in result.timeline if e["kind"] == kind]


def line_of(relative: str, text: str) -> int:
    """The 1-based line of the shop fixture file `relative` that holds `text`."""
    lines = (SHOP / relative).read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, start=1) if text in line)


def shop_tools() -> ModuleType:
    """The shop's tools module (importable once the project is loaded), its backends reset."""
    tools = importlib.import_module("runner_shop_tools")
    tools.BACKEND.reset()
    tools.CALLS.clear()
    tools.CRASH_AFTER.clear()
    tools.RELEASE.clear()
    return tools


@pytest.fixture(scope="session")
def shop() -> warden.Project:
    return warden.load_project(SHOP)


@pytest.fixture
def tools(shop: warden.Project) -> Iterator[ModuleType]:
    module = shop_tools()
    yield module
    module.RELEASE.set()  # let a slow_pay a failed test left waiting finish at once


@pytest.fixture
def clock() -> warden.FixedClock:
    return warden.FixedClock("2026-03-01T09:00:00+00:00")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "warden.db"


@pytest.fixture
def open_gate(
    shop: warden.Project, tools: ModuleType, db: Path, clock: warden.FixedClock
) -> Iterator[Callable[[], warden.Gate]]:
    """Opens a gate on a new store over the test's database file (a new process, as far
    as the store can tell); all are closed at the end."""
    gates: list[warden.Gate] = []

    def make() -> warden.Gate:
        gate = shop.gate(store=SQLiteStore(db), clock=clock)
        gates.append(gate)
        return gate

    yield make
    for gate in gates:
        gate.executor.close()
        store_of(gate).close()


def store_of(gate: warden.Gate) -> SQLiteStore:
    return cast(SQLiteStore, gate.executor.store)


@pytest.fixture
def gate(open_gate: Callable[[], warden.Gate]) -> warden.Gate:
    return open_gate()


@pytest.fixture
def store(gate: warden.Gate) -> SQLiteStore:
    return store_of(gate)


@pytest.fixture
def approvals(store: SQLiteStore, shop: warden.Project, clock: warden.FixedClock) -> Approvals:
    return Approvals(store, roles=shop.roles, clock=clock)
