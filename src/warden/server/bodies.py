"""Reading request bodies an attacker may have written.

Every JSON body the server accepts is one object, UTF-8 encoded (no byte-order mark, no
other encoding guessed from its first bytes), with each key once, finite numbers only, no
lone surrogate escapes, no deeper nesting than `max_depth`, and no larger than `max_body`
bytes. Anything else is refused with a coded `ApiError` before any of it reaches the
library:

    too large                      W-API-002  (413)
    nested too deeply              W-API-003  (400)
    anything else unreadable       W-API-001  (400)

The checks cost almost nothing on ordinary bodies: depth is counted only when the body
holds more brackets than the limit, and surrogates are looked for only when the body
holds a surrogate escape.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, cast

from warden.errors import ApiError

__all__ = ["parse_object", "read_body"]

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class _Refused(ValueError):
    """A duplicate key or a non-finite number, met while decoding."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refused(f"the key {key!r} appears twice in one object")
            seen.add(key)
    return found


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _Refused(f"the number {text[:40]} is too large")
    return value


_decoder = json.JSONDecoder(
    object_pairs_hook=_pairs, parse_constant=_constant, parse_float=_float, strict=True
)


async def read_body(receive: Receive, *, limit: int, declared: int | None) -> bytes:
    """The whole request body, refused with W-API-002 as soon as it passes `limit` bytes
    (at once when its Content-Length already says so)."""
    if declared is not None and declared > limit:
        raise ApiError("W-API-002", f"the body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            raise ApiError("W-API-001", "the client disconnected before sending the body")
        chunk = cast(bytes, message.get("body", b""))
        if chunk:
            size += len(chunk)
            if size > limit:
                raise ApiError("W-API-002", f"the body is over the limit of {limit} bytes")
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_object(raw: bytes, *, max_depth: int) -> dict[str, Any]:
    """The JSON object `raw` holds, checked as the module docstring says."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(
            "W-API-001", f"the body is not UTF-8 (byte {exc.start} is not valid)"
        ) from None
    if not text.strip():
        raise ApiError("W-API-001", "the body is empty; send a JSON object")
    deep = raw.count(b"[") + raw.count(b"{") > max_depth
    try:
        value, end = _decoder.raw_decode(text, _skip_space(text))
    except RecursionError:
        raise ApiError("W-API-003", f"the body nests deeper than {max_depth}") from None
    except _Refused as exc:
        raise ApiError("W-API-001", str(exc)) from None
    except ValueError as exc:  # JSONDecodeError, and integers of too many digits
        raise ApiError("W-API-001", f"the body is not JSON: {_short(exc)}") from None
    if text[end:].strip():
        raise ApiError("W-API-001", "the body holds more than one JSON value")
    if deep and _depth(value) > max_depth:
        raise ApiError("W-API-003", f"the body nests deeper than {max_depth}")
    if type(value) is not dict:
        raise ApiError(
            "W-API-001", f"the body is a JSON {_kind(value)}; this endpoint takes an object"
        )
    found = cast(dict[str, Any], value)
    if _SURROGATE_ESCAPE.search(raw) is not None:
        _check_strings(found)
    return found


def _skip_space(text: str) -> int:
    return len(text) - len(text.lstrip(" \t\r\n"))


def _short(exc: ValueError) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:199] + "…"


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return "number"


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(cast(dict[str, Any], value).values())
    if isinstance(value, list):
        return cast(list[Any], value)
    return []


def _depth(value: Any) -> int:
    """How deep objects and arrays nest in `value` (iterative: no recursion to exhaust)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        child: Any
        for child in _children(item):
            if isinstance(child, dict | list):
                stack.append((cast(Any, child), depth + 1))
    return deepest


def _check_strings(value: Any) -> None:
    """Refuse a lone surrogate (``\\ud800``) in any key or string: it has no UTF-8 form."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        texts: list[str] = []
        if isinstance(item, dict):
            mapping = cast(dict[str, Any], item)
            texts.extend(mapping)
            stack.extend(mapping.values())
        elif isinstance(item, list):
            stack.extend(cast(list[Any], item))
        elif isinstance(item, str):
            texts.append(item)
        for text in texts:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise ApiError(
                    "W-API-001", "a string holds a lone surrogate escape (\\ud800-\\udfff)"
                ) from None
