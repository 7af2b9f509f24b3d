"""Warden's test kit: test your own tools, policies and agents the way Warden tests its own.

- `FixedClock` / `CountingIds`: deterministic time and ids;
- `CapturingGate`: a gate that keeps every decision it made, for assertions;
- `scripted_calls`: tool calls from plain dicts or a YAML file, run through a gate in order;
- `project_gate`: a fresh in-memory gate for a project folder;
- the pytest plugin (`warden.testing.plugin`, registered automatically): fixtures
  ``warden_clock``, ``warden_project``, ``warden_gate`` and ``warden_decisions``, and
  ``--warden-policy-tests`` to collect ``*_test.yaml`` policy tests as pytest items;
- `warden.testing.postgres` (imported on its own, it needs psycopg): a running server and
  a fresh database per test, for stores shared by several processes.
"""

from warden.clock import CountingIds, FixedClock
from warden.testing.capture import CapturingGate, project_gate, scripted_calls

__all__ = ["CapturingGate", "CountingIds", "FixedClock", "project_gate", "scripted_calls"]
