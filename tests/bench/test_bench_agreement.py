"""The benchmark's engines agree: Warden, a hand-written function, CEL and Cedar decide
the same generated requests alike. No timing is asserted here."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import bench.runner
import pytest
from bench.__main__ import main
from bench.gate_latency import measure_gate
from bench.policy_engines import (
    REQUIRED,
    DisagreementError,
    Engine,
    build_engines,
    check_agreement,
)
from bench.workload import Request, generate_requests


@pytest.fixture(scope="module")
def engines() -> dict[str, Engine]:
    return build_engines()


@pytest.fixture(scope="module")
def requests() -> list[Request]:
    return generate_requests(512)


class _Flipped:
    """The hand-written engine with one outcome changed."""

    name = "flipped"

    def __init__(self, inner: Engine, index: int) -> None:
        self.inner, self.index = inner, index

    def decide_all(self, requests: Sequence[Request]) -> list[str]:
        out = self.inner.decide_all(requests)
        out[self.index] = "allow" if out[self.index] != "allow" else "deny"
        return out


def test_all_engines_agree_on_every_request(
    engines: dict[str, Engine], requests: list[Request]
) -> None:
    agreement = check_agreement(engines, requests)
    assert set(REQUIRED) <= set(agreement.engines)
    assert agreement.requests == len(requests) >= 256
    assert set(agreement.outcomes) == {"allow", "deny", "needs_approval"}
    assert len(agreement.rules_fired) == 21
    assert all(n > 0 for n in agreement.rules_fired.values())
    assert agreement.default_denies > 0


@pytest.mark.parametrize("name", REQUIRED)
def test_each_engine_matches_warden(
    engines: dict[str, Engine], requests: list[Request], name: str
) -> None:
    assert engines[name].decide_all(requests) == engines["warden"].decide_all(requests)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_engines_agree_for_other_seeds(engines: dict[str, Engine], seed: int) -> None:
    requests = generate_requests(300, seed=seed)
    reference = engines["warden"].decide_all(requests)
    for name, engine in engines.items():
        assert engine.decide_all(requests) == reference, name


def test_the_workload_is_deterministic() -> None:
    assert generate_requests(300, seed=7) == generate_requests(300, seed=7)
    assert generate_requests(300, seed=7) != generate_requests(300, seed=8)


def test_a_disagreeing_engine_is_caught(
    engines: dict[str, Engine], requests: list[Request]
) -> None:
    broken = {**engines, "flipped": _Flipped(engines["python"], 3)}
    with pytest.raises(DisagreementError, match="request 3"):
        check_agreement(broken, requests)


def test_the_bench_exits_non_zero_on_disagreement(
    engines: dict[str, Engine], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    broken = {**engines, "cel": _Flipped(engines["cel"], 0)}
    monkeypatch.setattr(bench.runner, "build_engines", lambda: broken)
    output = tmp_path / "results.json"
    assert main(["--quick", "--output", str(output)]) == 2
    assert not output.exists()


def test_the_gate_benchmark_reaches_the_policy_stage(requests: list[Request]) -> None:
    (sample,) = measure_gate(requests, decisions=300, warmup=50, repeat=1)
    assert sample.stages == {"policy": 300}
    assert set(sample.outcomes) == {"allow", "deny", "needs_approval"}
    assert len(sample.latencies_ns) == 300
