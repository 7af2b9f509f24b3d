"""The proxy file: what it accepts, and errors that name the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from warden.errors import McpConfigError
from warden.mcp.config import load_proxy_config
from warden.tools.spec import RiskTier

GOOD = """\
proxy:
  agent: coder
  approval_wait: 90s
upstreams:
  files:
    command: [python, server.py]
    cwd: servers
    env: {MODE: test}
    pass_env: [HOME]
    tools:
      read_file: {risk: read}
      write_file:
        risk: write
        sensitive: [path]
        timeout: 10s
        retries: 1
        description: Write a file in the workspace.
  tracker:
    url: https://tracker.internal/mcp
    headers_env: {Authorization: TRACKER_AUTH}
    tools:
      create-issue: {risk: write, trusted_output: true}
"""


def test_a_proxy_file_is_read_with_every_setting(tmp_path: Path) -> None:
    file = tmp_path / "mcp.yaml"
    file.write_text(GOOD)
    config = load_proxy_config(file)
    assert config.settings.agent == "coder" and config.settings.approval_wait_s == 90
    files = config.upstreams["files"]
    assert files.transport == "stdio" and files.command == ("python", "server.py")
    assert files.cwd == tmp_path / "servers"
    write = files.tools["write_file"]
    assert write.name == "files__write_file" and write.risk is RiskTier.WRITE
    assert write.sensitive == {"path"} and write.timeout_s == 10 and write.retries == 1
    assert write.trusted_output is False  # upstream output is untrusted unless declared
    tracker = config.upstreams["tracker"]
    assert tracker.transport == "http" and tracker.headers_env == {"Authorization": "TRACKER_AUTH"}
    assert tracker.tools["create-issue"].name == "tracker__create-issue"
    assert [t.name for t in config.declarations()] == [
        "files__read_file",
        "files__write_file",
        "tracker__create-issue",
    ]


BAD = [
    ("upstreams: {}\n", 1, "upstreams"),
    ("upstreams:\n  files:\n    command: [x]\n    tools: {a: {risk: bold}}\n", 4, "risk"),
    ("upstreams:\n  files:\n    command: [x]\n    tools:\n      a:\n", 5, "a"),
    ("upstreams:\n  files:\n    tools: {a: {risk: read}}\n", 2, "files"),
    (
        "upstreams:\n  files:\n    command: [x]\n    url: http://h/mcp\n"
        "    tools: {a: {risk: read}}\n",
        2,
        "files",
    ),
    ("upstreams:\n  Files:\n    command: [x]\n    tools: {a: {risk: read}}\n", 2, "Files"),
    ("upstreams:\n  fi__les:\n    command: [x]\n    tools: {a: {risk: read}}\n", 2, "fi__les"),
    ("upstreams:\n  files:\n    command: [x]\n    tools: {a b: {risk: read}}\n", 4, "a b"),
    ("upstreams:\n  files:\n    url: ftp://h\n    tools: {a: {risk: read}}\n", 3, "url"),
    (
        "upstreams:\n  files:\n    command: [x]\n    colour: red\n    tools: {a: {risk: read}}\n",
        4,
        "colour",
    ),
    (
        "proxy:\n  approval_wait: soon\nupstreams:\n  f:\n    command: [x]\n"
        "    tools: {a: {risk: read}}\n",
        2,
        "approval_wait",
    ),
    (
        "upstreams:\n  f:\n    command: [x]\n    tools:\n      a:\n        risk: read\n"
        "        sensitive: [to]\n        input_schema: {type: object, properties: {path: {}}}\n",
        7,
        "sensitive",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "field"),
    BAD,
    ids=[
        "no upstream",
        "unknown risk tier",
        "a tool without settings",
        "neither command nor url",
        "both command and url",
        "upper-case namespace",
        "separator in namespace",
        "a tool name clients cannot call",
        "not an http url",
        "unknown key",
        "not a duration",
        "sensitive argument the pinned schema lacks",
    ],
)
def test_a_wrong_proxy_file_names_the_line_and_field(
    tmp_path: Path, text: str, line: int, field: str
) -> None:
    file = tmp_path / "mcp.yaml"
    file.write_text(text)
    with pytest.raises(McpConfigError) as caught:
        load_proxy_config(file)
    err = caught.value
    assert err.code == "W-MCP-001"
    assert (err.file, err.line) == ("mcp.yaml", line), err
    assert err.field is not None and field in err.field
