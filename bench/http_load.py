"""A small HTTP/1.1 load generator, run as its own process: ``python -m bench.http_load``.

It keeps `connections` keep-alive connections open and sends prepared requests (one body
each, cycled), reading each response (status line, headers, ``content-length`` body)
before sending the next on that connection.

- ``closed`` mode: every connection sends as fast as answers come back, for `seconds`;
  the rate achieved is the server's saturation rate.
- ``open`` mode: requests are scheduled at a fixed total `rate`, spread evenly over the
  connections; each latency is measured from the request's *scheduled* time, so a server
  that stalls is charged for the requests that queued behind the stall (no coordinated
  omission, as in wrk2).

It prints one JSON object: requests, seconds, rate, statuses and latency percentiles.
The generator is the same for every server measured, so ratios between servers compare
like with like; when it is itself the bottleneck the absolute figures are lower bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path

__all__ = ["main"]


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


async def _connection(
    host: str,
    port: int,
    requests: list[bytes],
    offset: int,
    stop_at: float,
    interval: float | None,
    first_at: float,
    latencies: list[float],
    statuses: Counter[int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    n = len(requests)
    i = offset
    due = first_at
    clock = time.perf_counter
    try:
        while True:
            if interval is not None:
                now = clock()
                if due > now:
                    await asyncio.sleep(due - now)
                start = due
                due += interval
            else:
                start = clock()
            if start >= stop_at:
                return
            writer.write(requests[i % n])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            lower = head.lower()
            at = lower.find(b"content-length:")
            if at >= 0:
                end = lower.find(b"\r\n", at)
                length = int(lower[at + 15 : end])
            if length:
                await reader.readexactly(length)
            latencies.append(clock() - start)
            statuses[status] += 1
    finally:
        writer.close()


def build_requests(
    host: str, port: int, path: str, bodies: list[bytes], headers: dict[str, str]
) -> list[bytes]:
    """Raw HTTP/1.1 requests: one per body, keep-alive."""
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    out: list[bytes] = []
    for body in bodies:
        head = (
            f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
            f"{extra}content-length: {len(body)}\r\n\r\n"
        )
        out.append(head.encode("ascii") + body)
    return out


async def run_load(
    host: str,
    port: int,
    requests: list[bytes],
    *,
    connections: int,
    seconds: float,
    rate: float | None = None,
    warmup_s: float = 0.5,
) -> dict[str, object]:
    """Drive the server; the first `warmup_s` seconds are not counted."""
    if warmup_s > 0:
        await run_load(host, port, requests, connections=connections, seconds=warmup_s, warmup_s=0)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    start = time.perf_counter() + 0.05
    stop_at = start + seconds
    interval = connections / rate if rate else None
    per = max(1, len(requests) // connections)
    tasks = [
        _connection(
            host,
            port,
            requests,
            c * per,
            stop_at,
            interval,
            start + (interval * c / connections if interval else 0.0),
            latencies,
            statuses,
        )
        for c in range(connections)
    ]
    await asyncio.gather(*tasks)
    elapsed = max(time.perf_counter() - start, 1e-9)
    lat = sorted(latencies)
    return {
        "requests": len(lat),
        "seconds": elapsed,
        "rate": len(lat) / elapsed,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "p50_ms": _percentile(lat, 0.50) * 1000.0,
        "p99_ms": _percentile(lat, 0.99) * 1000.0,
        "max_ms": (lat[-1] if lat else float("nan")) * 1000.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.http_load", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--bodies", type=Path, required=True, help="JSON lines: one body each")
    parser.add_argument("--header", action="append", default=[], help="NAME: VALUE")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=None, help="open loop at this rate")
    parser.add_argument("--warmup", type=float, default=0.5)
    options = parser.parse_args(argv)
    headers = dict(h.split(": ", 1) for h in options.header)
    bodies = [line.encode("utf-8") for line in options.bodies.read_text("utf-8").splitlines()]
    requests = build_requests(options.host, options.port, options.path, bodies, headers)
    try:
        import uvloop  # the fastest loop there is: the generator should not be the limit

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a server dependency
        runner = asyncio.run
    result = runner(
        run_load(
            options.host,
            options.port,
            requests,
            connections=options.connections,
            seconds=options.seconds,
            rate=options.rate,
            warmup_s=options.warmup,
        )
    )
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
