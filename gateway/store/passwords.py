"""User password hashing with argon2id (argon2-cffi's tuned defaults), and a login cache."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from argon2 import PasswordHasher


@cache
def _hasher() -> PasswordHasher:
    # Imported at first use: listing commands never hash, and start faster without argon2.
    from argon2 import PasswordHasher

    return PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)


class VerifiedPasswordCache:
    """Remembers recent successful logins so a client's tenth connection skips argon2.

    Mail clients open several connections at once and reconnect often; each argon2 check costs
    a few hundred milliseconds of CPU. Like Dovecot's auth cache, this keeps only successes,
    for a short time, as an HMAC under a key that lives in this process's memory alone, and
    tied to the stored hash, so a password change invalidates it at once.
    """

    def __init__(self, ttl_seconds: float = 600.0) -> None:
        self._key = secrets.token_bytes(32)
        self._ttl = ttl_seconds
        self._entries: dict[str, tuple[str, bytes, float]] = {}
        self._lock = threading.Lock()

    def _digest(self, password: str) -> bytes:
        return hmac.new(self._key, password.encode("utf-8", "surrogatepass"), "sha256").digest()

    def matches(self, name: str, password_hash: str, password: str) -> bool:
        with self._lock:
            entry = self._entries.get(name)
        if entry is None:
            return False
        cached_hash, digest, expires = entry
        return (
            cached_hash == password_hash
            and time.monotonic() < expires
            and hmac.compare_digest(digest, self._digest(password))
        )

    def remember(self, name: str, password_hash: str, password: str) -> None:
        entry = (password_hash, self._digest(password), time.monotonic() + self._ttl)
        with self._lock:
            self._entries[name] = entry

    def forget(self, name: str) -> None:
        with self._lock:
            self._entries.pop(name, None)
