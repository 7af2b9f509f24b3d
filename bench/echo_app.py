"""The baseline of the server benchmark: a bare ASGI app that answers a POST with its body.

No framework, no routing, no parsing: the least any Python ASGI endpoint can do per
request on uvicorn. Any path answers; ``GET`` answers an empty 200 (the readiness probe).
"""

from __future__ import annotations

from typing import Any

__all__ = ["app"]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
