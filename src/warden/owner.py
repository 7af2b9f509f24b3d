"""Which process owns an executing action, and whether that process is gone.

An owner is ``host:pid:start-nonce``: the host name, the process id, the process's start
time (from ``/proc``, where there is one) and a random nonce per store. Recovery settles an
action only when its owner is gone: same host, and no process with that pid started at
that time. Comparing the start time, not only the pid, keeps a reused pid (after a
reboot, say) from passing for the dead owner.
"""

from __future__ import annotations

import os
import socket

__all__ = ["is_orphaned", "new_owner"]


def _started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None when unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None  # field 22 of stat, counted from 1


def new_owner() -> str:
    """This process's owner id (a fresh nonce each call)."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_started(pid) or '0'}-{os.urandom(4).hex()}"


def is_orphaned(owner: str, me: str) -> bool:
    """Whether the process that owned an action is gone (so recovery may settle it)."""
    if owner == me:
        return False
    host, _, rest = owner.partition(":")
    pid_text, _, token = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another machine's action: its own process recovers it
    pid = int(pid_text)
    started = token.partition("-")[0]
    if pid == os.getpid():
        return True  # this pid with another nonce: an earlier store of this process, or a
        # dead process whose pid this one reuses; either way nobody runs it now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    now_started = _started(pid)
    return now_started is not None and started not in ("", "0") and now_started != started
