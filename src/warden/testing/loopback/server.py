"""The HTTP machinery every loopback server shares: a daemon thread, faults, recording.

A protocol subclass of `LoopbackServer` says which path answers turns, how to check,
decode and encode a request, and what its errors look like; this module does the rest and
holds the small wire helpers both protocols use.
"""

from __future__ import annotations

import itertools
import json
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Literal, Protocol, Self, cast
from urllib.parse import parse_qsl, urlsplit

from warden.clock import Clock, SystemClock
from warden.errors import ModelError
from warden.models.base import ModelRequest, ModelTurn, ToolUse

__all__ = [
    "Brain",
    "Fault",
    "LoopbackServer",
    "Received",
    "Refused",
    "arguments_text",
    "as_list",
    "as_object",
    "cut_json",
    "parse_call",
]

_STATUS_FOR_CODE = {"W-MDL-002": 429, "W-MDL-003": 408, "W-MDL-004": 400}


class Brain(Protocol):
    """What answers behind a loopback server: anything with `complete`."""

    def complete(self, request: ModelRequest) -> ModelTurn: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class Fault:
    """How the server mishandles the next request to its endpoint; each is used once."""

    kind: Literal["status", "delay", "malformed_tool_args", "garbage"]
    code: int = 200
    """The HTTP status of a ``status`` fault."""
    retry_after: float | None = None
    """Seconds the ``status`` fault asks the client to wait (Retry-After, retry-after-ms)."""
    message: str = ""
    """The error message of a ``status`` fault; a provider-like one when empty."""
    seconds: float = 0.0
    """How long a ``delay`` fault waits before answering."""
    body: str = ""
    """The body of a ``garbage`` fault."""
    content_type: str = "application/json"

    @classmethod
    def status(cls, code: int, *, retry_after: float | None = None, message: str = "") -> Fault:
        """Answer with HTTP `code` in the provider's error shape instead of a turn."""
        return cls(kind="status", code=code, retry_after=retry_after, message=message)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Wait `seconds` before answering normally: longer than the client's timeout, it
        times out."""
        return cls(kind="delay", seconds=seconds)

    @classmethod
    def malformed_tool_args(cls) -> Fault:
        """Answer normally, but the first tool call's arguments are cut off mid-JSON (OpenAI)
        or its ``input`` is a string (Anthropic). No effect on a turn without tool calls."""
        return cls(kind="malformed_tool_args")

    @classmethod
    def garbage(
        cls, body: str = '{"hello": "world"}', *, content_type: str = "application/json"
    ) -> Fault:
        """Answer 200 with a body that is not the protocol's."""
        return cls(kind="garbage", body=body, content_type=content_type)


@dataclass(frozen=True, kw_only=True, slots=True)
class Received:
    """One request as it reached the server."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    """Header names in lower case."""
    body: Any
    """The parsed JSON body; None when there was none or it was not JSON."""


@dataclass(frozen=True, kw_only=True, slots=True)
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict[str, str])


class Refused(Exception):
    """The request gets an HTTP error instead of a turn."""

    def __init__(
        self, status: int, message: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


class LoopbackServer(ABC):
    """One wire protocol on 127.0.0.1 (a port the OS picks), served from a daemon thread.

    Use it as a context manager, or call `close`: the listening socket is open from
    construction on.
    """

    endpoint: ClassVar[str]
    """The path that answers turns (and consumes faults)."""
    base_path: ClassVar[str] = ""
    """What the SDK's base URL adds to the server's root."""
    request_id_header: ClassVar[str] = "x-request-id"
    request_id_prefix: ClassVar[str] = "req_loopback_"

    def __init__(
        self, brain: Brain, *, api_key: str | None = None, clock: Clock | None = None
    ) -> None:
        self.brain = brain
        self.api_key = api_key
        """When set, requests must carry this key; otherwise any key is accepted."""
        self.faults: queue.Queue[Fault] = queue.Queue()
        self.requests: list[Received] = []
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._brain_lock = threading.Lock()
        self._closing = threading.Event()
        self._numbers = itertools.count(1)
        self._http = _HTTPServer(self)
        self._thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}:{self.port}",
            daemon=True,
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return self._http.server_address[1]

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What to give the SDK (or the adapter) as its base URL."""
        return self.root_url + self.base_path

    def close(self) -> None:
        """Stop serving and release the port; a request waiting on a delay ends at once."""
        if self._closing.is_set():
            return
        self._closing.set()
        self._http.shutdown()
        self._http.server_close()
        self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- what a subclass says about its protocol ---------------------------------------

    def serves(self, path: str) -> bool:
        """True for the paths that answer turns when POSTed to (and consume faults)."""
        return path == self.endpoint

    @abstractmethod
    def check(self, received: Received) -> None:
        """Refuse a request whose headers the real server would refuse."""

    @abstractmethod
    def decode(self, body: dict[str, Any], headers: Mapping[str, str]) -> ModelRequest:
        """The provider-neutral request of a wire body (refusing what the server would)."""

    @abstractmethod
    def encode(self, turn: ModelTurn, *, model: str, number: int, malformed: bool) -> Any:
        """The wire answer for `turn`."""

    @abstractmethod
    def error_body(self, status: int, message: str, *, number: int) -> Any:
        """The provider's error JSON."""

    def other_route(self, method: str, path: str) -> Any | None:
        """The JSON answer of a route other than `endpoint`, None when there is none."""
        return None

    # --- serving ------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Mapping[str, str], raw: bytes) -> _Reply:
        """Record one request and answer it (called on the request's thread)."""
        url = urlsplit(target)
        received = Received(
            method=method,
            path=url.path,
            query=dict(parse_qsl(url.query)),
            headers=headers,
            body=_json_or_none(raw),
        )
        with self._lock:
            self.requests.append(received)
        number = next(self._numbers)
        turn = method == "POST" and self.serves(url.path)
        fault = self._next_fault() if turn else None
        try:
            return self._answer(received, turn=turn, fault=fault, number=number)
        except Refused as refused:
            reply_headers = {self.request_id_header: f"{self.request_id_prefix}{number}"}
            return _Reply(
                status=refused.status,
                body=_dump(self.error_body(refused.status, refused.message, number=number)),
                headers={**reply_headers, **refused.headers},
            )

    def _answer(
        self, received: Received, *, turn: bool, fault: Fault | None, number: int
    ) -> _Reply:
        if fault is not None and fault.kind == "delay":
            self._closing.wait(fault.seconds)
        if fault is not None and fault.kind == "status":
            raise Refused(
                fault.code,
                fault.message or _default_message(fault.code),
                headers=_retry_headers(fault.retry_after),
            )
        if fault is not None and fault.kind == "garbage":
            return _Reply(status=200, body=fault.body.encode(), content_type=fault.content_type)
        if not turn:
            other = self.other_route(received.method, received.path)
            if other is None:
                raise Refused(404, f"Unknown request URL: {received.method} {received.path}")
            return _Reply(status=200, body=_dump(other))
        self.check(received)
        wire = as_object(received.body, "The request body")
        brain_turn = self._ask(self.decode(wire, received.headers))
        malformed = fault is not None and fault.kind == "malformed_tool_args"
        answer = self.encode(brain_turn, model=wire["model"], number=number, malformed=malformed)
        reply_headers = {self.request_id_header: f"{self.request_id_prefix}{number}"}
        return _Reply(status=200, body=_dump(answer), headers=reply_headers)

    def _ask(self, request: ModelRequest) -> ModelTurn:
        try:
            with self._brain_lock:
                return self.brain.complete(request)
        except ModelError as exc:
            raise Refused(_STATUS_FOR_CODE.get(exc.code, 500), exc.message) from exc

    def _next_fault(self) -> Fault | None:
        try:
            return self.faults.get_nowait()
        except queue.Empty:
            return None

    def timestamp(self) -> int:
        return int(self._clock.timestamp())

    def check_key(self, key: str | None, *, status: int = 401) -> None:
        """Refuse a missing key, and a wrong one when the server was given one."""
        if not key:
            raise Refused(status, "No API key provided.")
        if self.api_key is not None and key != self.api_key:
            raise Refused(status, f"Incorrect API key provided: {_masked(key)}.")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: LoopbackServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timed out) closed its socket: nothing to report."""
        # The default prints a traceback for every client that timed out mid-answer.


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10.0
    """Seconds an idle keep-alive connection is kept."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        owner = cast(_HTTPServer, self.server).owner
        try:
            reply = owner.handle(self.command, self.path, headers, raw)
        except Exception as exc:  # a broken brain answers 500, like a broken server
            message = f"the loopback brain failed: {exc!r}"
            reply = _Reply(status=500, body=_dump(owner.error_body(500, message, number=0)))
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `LoopbackServer.requests` instead."""


# --- wire helpers both protocols use --------------------------------------------------


def parse_call(call_id: str, name: str, raw: str) -> ToolUse:
    """A call whose arguments text is read back; not a JSON object: ``arguments`` None."""
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        return ToolUse(id=call_id, name=name, arguments=cast(dict[str, Any], parsed), raw=raw)
    return ToolUse(
        id=call_id, name=name, arguments=None, raw=raw, error="the arguments are not a JSON object"
    )


def arguments_text(call: ToolUse) -> str:
    """The arguments as the brain's model wrote them, or as JSON when it gave only values."""
    if call.raw:
        return call.raw
    return json.dumps(dict(call.arguments or {}))


def cut_json(text: str) -> str:
    """JSON text cut off mid-object: ``{"order_id": "ord_1"}`` -> ``{"order_id": "ord_1", ``."""
    return text.rstrip().removesuffix("}") + ", "


def _retry_headers(seconds: float | None) -> dict[str, str]:
    if seconds is None:
        return {}
    return {"retry-after": f"{seconds:g}", "retry-after-ms": f"{seconds * 1000:g}"}


def _default_message(status: int) -> str:
    if status == 429:
        return "Rate limit reached for requests. Please try again shortly."
    if status == 401:
        return "Incorrect API key provided."
    if status == 529:
        return "Overloaded"
    if status >= 500:
        return "The server had an error while processing your request. Sorry about that!"
    return f"The loopback server refused the request (HTTP {status})."


def _masked(key: str) -> str:
    return f"{key[:3]}***{key[-2:]}" if len(key) > 8 else "***"


def as_object(value: Any, where: str) -> dict[str, Any]:
    """`value` as a JSON object, or a 400 naming `where`."""
    if not isinstance(value, dict):
        raise Refused(400, f"{where}: Input should be an object")
    return cast(dict[str, Any], value)


def as_list(value: Any, where: str) -> Sequence[Any]:
    """`value` as a JSON list (None: empty), or a 400 naming `where`."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise Refused(400, f"{where}: Input should be a list")
    return cast(list[Any], value)


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _dump(value: Any) -> bytes:
    return json.dumps(value).encode()
