"""Many HTTP clients at once, each on its own keep-alive connection.

    answers = crowd([a.url, b.url], 64, lambda i, client: client.post(...))

Client ``i`` talks to ``urls[i % len(urls)]``, so the replicas alternate. Every client
connects first (a ``/healthz`` call), then all of them wait at one barrier and start
together, so the requests really race.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TypeVar

import httpx2

__all__ = ["CLIENT_TIMEOUT_S", "crowd"]

T = TypeVar("T")

CLIENT_TIMEOUT_S = 60.0
"""Generous: a request that takes this long is a hang, and fails the test."""


def crowd(
    urls: Sequence[str],
    clients: int,
    work: Callable[[int, httpx2.Client], T],
    *,
    timeout_s: float = CLIENT_TIMEOUT_S,
) -> list[T]:
    """Run ``work(i, client)`` for i in 0..clients-1, all at once; the results by i.
    An exception in any client (a timeout, a failed assert) is raised here."""
    barrier = threading.Barrier(clients)

    def one(i: int) -> T:
        with httpx2.Client(base_url=urls[i % len(urls)], timeout=timeout_s) as client:
            client.get("/healthz").raise_for_status()
            barrier.wait(timeout=timeout_s)
            return work(i, client)

    with ThreadPoolExecutor(clients, thread_name_prefix="crowd") as pool:
        futures = [pool.submit(one, i) for i in range(clients)]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.exception() is not None for f in done):
            barrier.abort()  # nobody waits for a client that failed before the start
        return [f.result() for f in futures]
