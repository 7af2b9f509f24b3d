"""The order desk's eval suite inside pytest, with the plugin's `warden_eval` fixture."""

from collections.abc import Callable
from typing import Any


def test_the_order_desk_passes_its_evals(warden_eval: Callable[..., Any]) -> None:
    run = warden_eval("evals/orders.yaml")  # baseline="evals/baseline.json" to compare

    run.assert_passed()  # else: fails with the summary and every failing case
    assert run.result("lamp-from-an-email-waits").outcome == "needs_approval"
