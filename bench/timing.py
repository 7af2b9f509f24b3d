"""Timing helpers: `time.perf_counter_ns`, the garbage collector off, medians of repeats."""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = ["Latency", "Timing", "gc_paused", "latency", "measure_interleaved", "percentile"]


@contextmanager
def gc_paused() -> Generator[None]:
    """Collect, then keep the cyclic garbage collector off inside the block."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(frozen=True, kw_only=True, slots=True)
class Timing:
    """Per-item times of one engine: one figure per repeat, each the mean over its passes."""

    per_item_ns: tuple[float, ...]
    passes: int
    """Passes over the items in each repeat (chosen so a repeat lasts `min_sample_ns`)."""
    items: int

    @property
    def median_ns(self) -> float:
        return statistics.median(self.per_item_ns)

    @property
    def min_ns(self) -> float:
        return min(self.per_item_ns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "median_us": self.median_ns / 1000,
            "min_us": self.min_ns / 1000,
            "max_us": max(self.per_item_ns) / 1000,
            "repeats": len(self.per_item_ns),
            "passes_per_repeat": self.passes,
            "items_per_pass": self.items,
        }


def _one_sample(run: Callable[[], object], passes: int) -> int:
    with gc_paused():
        start = time.perf_counter_ns()
        for _ in range(passes):
            run()
        return time.perf_counter_ns() - start


def measure_interleaved(
    runs: Mapping[str, Callable[[], object]],
    items: int,
    *,
    repeat: int,
    min_sample_ns: int,
) -> dict[str, Timing]:
    """Time each callable (one pass over `items` items) `repeat` times, round-robin.

    Each callable is warmed up and calibrated first; the repeats are interleaved so a
    slow phase of the machine hits every engine alike.
    """
    passes: dict[str, int] = {}
    for name, run in runs.items():
        run()  # warm-up
        one = max(_one_sample(run, 1), 1)
        passes[name] = max(1, math.ceil(min_sample_ns / one))
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            elapsed = _one_sample(run, passes[name])
            samples[name].append(elapsed / (passes[name] * items))
    return {
        name: Timing(per_item_ns=tuple(s), passes=passes[name], items=items)
        for name, s in samples.items()
    }


def percentile(sorted_values: Sequence[int], q: float) -> int:
    """The nearest-rank `q` percentile (0 < q <= 100) of already sorted values."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True, kw_only=True, slots=True)
class Latency:
    """p50 / p99 of one repeat of single-call latencies, in nanoseconds."""

    p50_ns: int
    p99_ns: int
    mean_ns: float
    count: int


def latency(values: Sequence[int]) -> Latency:
    ordered = sorted(values)
    return Latency(
        p50_ns=percentile(ordered, 50),
        p99_ns=percentile(ordered, 99),
        mean_ns=statistics.fmean(ordered),
        count=len(ordered),
    )
