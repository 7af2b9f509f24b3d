"""The one canonical JSON: its exact bytes are pinned, so hashes cannot drift."""

from __future__ import annotations

import math

import pytest

from warden.canonical import canonical_json, content_hash


def test_canonical_json_bytes_are_pinned() -> None:
    value = {"b": [1, 2.5, None, True], "a": {"z": "é", "y": "\u200b"}, "c": "line\nbreak"}
    assert canonical_json(value) == (
        '{"a":{"y":"\u200b","z":"é"},"b":[1,2.5,null,true],"c":"line\\nbreak"}'.encode()
    )
    assert content_hash(value) == content_hash(
        {"c": "line\nbreak", "a": {"z": "é", "y": "\u200b"}, "b": [1, 2.5, None, True]}
    )


def test_content_hash_is_sha256_of_the_canonical_bytes() -> None:
    assert (
        content_hash({})
        == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    )


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_values_without_a_json_form_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        canonical_json({"x": bad})
