"""Run ids and task keys survive the trip through HTTP headers, whatever they hold."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from warden.models.base import ModelRequest
from warden.models.headers import read_run_headers, run_headers


@given(run_id=st.text(), task=st.text())
def test_any_run_id_and_task_come_back_from_their_headers(run_id: str, task: str) -> None:
    headers = run_headers(ModelRequest(messages=(), run_id=run_id, task=task))

    assert all(value.isascii() and value.isprintable() for value in headers.values())
    assert read_run_headers({k.lower(): v for k, v in headers.items()}) == (run_id, task)


def test_plain_ids_travel_as_they_are_and_empty_ones_not_at_all() -> None:
    assert run_headers(ModelRequest(messages=(), run_id="run_000001", task="T-1001")) == {
        "Warden-Run-Id": "run_000001",
        "Warden-Task": "T-1001",
    }
    assert run_headers(ModelRequest(messages=())) == {}
