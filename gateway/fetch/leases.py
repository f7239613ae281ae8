"""Who holds a source's lease, and whether that holder is still alive.

An owner id is `host/pid/start-time`: the start time (from /proc) keeps a recycled pid from
looking alive. A process killed with -9 cannot release its lease; on the same host the next
run sees the holder is gone and takes the lease over at once instead of waiting for it to
expire. Holders on other hosts are only ever waited out (their expiry).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def _process_start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # Field 22 (starttime), counted after the parenthesised command name, which may hold spaces.
    fields = stat.rsplit(b")", 1)[-1].split()
    if len(fields) < 20 or fields[0] == b"Z":
        return None
    return fields[19].decode()


def lease_owner_id() -> str:
    """This process's lease owner id."""
    pid = os.getpid()
    return f"{socket.gethostname()}/{pid}/{_process_start_time(pid) or '0'}"


def owner_is_dead(owner: str) -> bool:
    """True only when `owner` ran on this host and that process no longer exists."""
    host, _, rest = owner.partition("/")
    pid_text, _, start_time = rest.partition("/")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    return _process_start_time(int(pid_text)) != start_time
