"""Real servers on loopback: uvicorn (httptools, uvloop) in a thread of the test process,
serving a copy of the payments project on its own SQLite file, talked to over HTTP.

The server runs in this process so a test can reach behind it (close its store, look at
its in-flight count); everything the test asserts goes through real sockets.
"""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
import uvicorn

import warden
from warden.identity import KeyKind, new_key
from warden.server import ServerSettings, Service, create_app
from warden.server.front import Front
from warden.store.sqlite import SQLiteStore

PAYMENTS = Path(__file__).resolve().parents[1] / "fixtures" / "payments"


def wall_clock() -> float:
    """Now, as the server's clock reads it."""
    return warden.SystemClock().timestamp()


@dataclass
class Running:
    """A server on loopback and what it serves."""

    url: str
    service: Service
    front: Front
    root: Path
    db: Path
    tokens: dict[str, str] = field(default_factory=dict[str, str])
    """The keys made by `key`, by label."""
    _clients: list[httpx2.Client] = field(default_factory=list[httpx2.Client])

    def key(
        self,
        label: str,
        kind: KeyKind,
        name: str,
        *,
        tools: list[str] | None = None,
        roles: tuple[str, ...] = (),
        created_at: float | None = None,
        expires_at: float | None = None,
    ) -> str:
        """Store a new key (as `warden keys create` would) and return its token."""
        now = wall_clock() if created_at is None else created_at
        record, token = new_key(
            kind,
            name,
            created_at=now,
            created_by="tests",
            tools=tools,
            roles=roles,
            expires_at=expires_at,
        )
        self.service.store.add_key(record)
        self.tokens[label] = token
        return token

    def client(self, token: str | None = None, **headers: str) -> httpx2.Client:
        sent = dict(headers)
        if token is not None:
            sent["authorization"] = f"Bearer {token}"
        c = httpx2.Client(base_url=self.url, headers=sent, timeout=30.0)
        self._clients.append(c)
        return c

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.db)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def audit(self, kind: str) -> list[dict[str, Any]]:
        """The data of every audit record of `kind`, oldest first."""
        return [
            json.loads(bytes(body))["data"]
            for (body,) in self.rows("SELECT body FROM audit WHERE kind = ? ORDER BY seq", kind)
        ]

    def close_clients(self) -> None:
        for c in self._clients:
            c.close()


@pytest.fixture(autouse=True)
def _forget_project_modules(tmp_path: Path) -> Iterator[None]:
    """Loading a project copy imports its tool modules; forget them afterwards."""
    saved_path, saved_modules = list(sys.path), dict(sys.modules)
    yield
    sys.path[:] = saved_path
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if origin and Path(origin).resolve().is_relative_to(tmp_path.resolve()):
            del sys.modules[name]
    for name, module in saved_modules.items():
        sys.modules.setdefault(name, module)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh copy of the payments project."""
    root = tmp_path / "payments"
    shutil.copytree(PAYMENTS, root, ignore=shutil.ignore_patterns("__pycache__", ".warden"))
    return root


ServerFactory = Callable[..., Running]


@pytest.fixture
def start(project: Path) -> Iterator[ServerFactory]:
    """Start a server on the project copy: ``start(max_inflight=1, ...)``."""
    stops: list[Callable[[], None]] = []

    def make(**options: Any) -> Running:
        options.setdefault("key_cache_s", 0.0)
        settings = ServerSettings(**options)
        db = project / ".warden" / "warden.db"
        store = SQLiteStore(db)
        service = Service(warden.load_project(project), store, settings, database=str(db))
        front = create_app(service)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        config = uvicorn.Config(
            front, loop="uvloop", http="httptools", lifespan="off", log_level="critical"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        running = Running(
            url=f"http://127.0.0.1:{sock.getsockname()[1]}",
            service=service,
            front=front,
            root=project,
            db=db,
        )

        def stop() -> None:
            running.close_clients()
            server.should_exit = True
            thread.join(timeout=20)
            service.close()
            sock.close()

        stops.append(stop)
        return running

    yield make
    for stop in reversed(stops):
        stop()


@pytest.fixture
def server(start: ServerFactory) -> Running:
    """A server with the usual keys: ``payer`` (agent), ``viewer``, ``fiona`` and ``frank``
    (approver:finance), ``olga`` (approver:ops), ``admin``."""
    running = start()
    running.key("payer", KeyKind.AGENT, "payer")
    running.key("viewer", KeyKind.OPERATOR, "vera", roles=("viewer",))
    running.key("fiona", KeyKind.OPERATOR, "fiona", roles=("approver:finance",))
    running.key("frank", KeyKind.OPERATOR, "frank", roles=("approver:finance",))
    running.key("olga", KeyKind.OPERATOR, "olga", roles=("approver:ops",))
    running.key("admin", KeyKind.OPERATOR, "ada", roles=("admin",))
    return running


def pay(amount: float, *, run: str = "run_1", **more: Any) -> dict[str, Any]:
    """A decide body: payer pays acme `amount` (up to 100 is allowed, 1000 needs finance)."""
    args = {"payee": "acme", "amount_usd": amount, **more.pop("args", {})}
    return {"agent": "payer", "tool": "pay", "run_id": run, "args": args, **more}


def error_code(response: httpx2.Response) -> str:
    """The code of an error answer (and a check of its shape)."""
    assert response.headers["content-type"] == "application/json", response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message", "hint"} <= set(body["error"]), body
    return str(body["error"]["code"])
