"""Abuse limits shared by the IMAP and SMTP servers: connections per address, sessions per
user (failed logins: auth_throttle.py)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field


@dataclass
class ConnectionLimits:
    """Counts open connections per address and logged-in sessions per user."""

    per_address: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    per_user: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    def open_connection(self, address: str, limit: int) -> bool:
        if self.per_address[address] >= limit:
            return False
        self.per_address[address] += 1
        return True

    def close_connection(self, address: str) -> None:
        self.per_address[address] -= 1
        if self.per_address[address] <= 0:
            del self.per_address[address]

    def open_session(self, user_id: int, limit: int) -> bool:
        if self.per_user[user_id] >= limit:
            return False
        self.per_user[user_id] += 1
        return True

    def close_session(self, user_id: int) -> None:
        self.per_user[user_id] -= 1
        if self.per_user[user_id] <= 0:
            del self.per_user[user_id]
