"""Encryption at rest for source passwords and tokens (DESIGN invariant 7), via Fernet."""

from __future__ import annotations

import base64
import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.store.errors import StoreError

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

_KEY_FILE = "secret.key"


class SecretDecryptionError(StoreError):
    """A stored secret cannot be decrypted with the configured key (the key changed?)."""


class SecretBox:
    """Encrypts and decrypts small secrets with one symmetric key.

    For key rotation the key may be a comma-separated list, newest first: the first key
    encrypts, every key decrypts, and `rotate` re-encrypts a secret under the first key.
    """

    def __init__(self, key: str | bytes) -> None:
        text = key.decode("ascii") if isinstance(key, bytes) else key
        self._keys = [part.strip() for part in text.split(",") if part.strip()]
        for part in self._keys:
            _check_key(part)

    @cached_property
    def _fernet(self) -> MultiFernet:
        # Built at first use: most `gateway` commands never touch a secret, and importing
        # cryptography's bindings is a noticeable part of their start-up.
        from cryptography.fernet import Fernet, MultiFernet

        return MultiFernet([Fernet(part) for part in self._keys])

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode("utf-8"))

    def rotate(self, ciphertext: bytes) -> bytes:
        """The same secret encrypted under the first (newest) key."""
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.rotate(ciphertext)
        except InvalidToken as error:
            raise SecretDecryptionError(
                "stored secret cannot be decrypted with any key in GATEWAY_SECRET_KEY"
            ) from error

    def decrypt(self, ciphertext: bytes) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(ciphertext).decode("utf-8")
        except InvalidToken as error:
            raise SecretDecryptionError(
                "stored secret cannot be decrypted: GATEWAY_SECRET_KEY differs from the key "
                "it was encrypted with"
            ) from error


def _check_key(key: str) -> None:
    """Fernet's own key check, done here so that a bad GATEWAY_SECRET_KEY still stops the
    gateway at start-up although cryptography is only imported at first use."""
    try:
        raw = base64.urlsafe_b64decode(key.encode("ascii"))
    except ValueError:  # binascii.Error and UnicodeEncodeError are ValueErrors
        raw = b""
    if len(raw) != 32:
        raise ValueError("a Fernet key must be 32 url-safe base64-encoded bytes")


def load_or_create_key(configured: str | None, data_dir: Path) -> str:
    """Use GATEWAY_SECRET_KEY if set, else the key file in the data dir, creating it once."""
    if configured:
        return configured
    path = data_dir / _KEY_FILE
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode("ascii")
    # O_EXCL: two processes starting together must not each write a different key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return key
