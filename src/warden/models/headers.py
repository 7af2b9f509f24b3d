"""The headers that tell a model provider which run and task a call belongs to.

Every adapter sends ``Warden-Run-Id`` and ``Warden-Task`` when they are set, so a proxy or
gateway can join a model call to its run. HTTP headers carry ASCII only, so characters
outside printable ASCII (and ``%`` itself) are percent-encoded; plain ids travel as they
are. `read_run_headers` undoes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, unquote

from warden.models.base import ModelRequest

__all__ = ["RUN_ID_HEADER", "TASK_HEADER", "read_run_headers", "run_headers"]

RUN_ID_HEADER = "Warden-Run-Id"
TASK_HEADER = "Warden-Task"

_PLAIN = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


def run_headers(request: ModelRequest) -> dict[str, str]:
    """The headers for `request`'s run id and task; none for an empty one."""
    values = {RUN_ID_HEADER: request.run_id, TASK_HEADER: request.task}
    return {name: quote(value, safe=_PLAIN) for name, value in values.items() if value}


def read_run_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    """The run id and task from received headers (names in lower case)."""
    return (
        unquote(headers.get(RUN_ID_HEADER.lower(), "")),
        unquote(headers.get(TASK_HEADER.lower(), "")),
    )
