"""What a session needs from its connection: write, drain, raw lines, TLS and compression."""

from __future__ import annotations

from typing import Protocol


class Channel(Protocol):
    @property
    def tls_active(self) -> bool: ...

    @property
    def compression_active(self) -> bool: ...

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    async def read_line(self) -> bytes | None:
        """The next raw line without its ending (AUTHENTICATE, IDLE DONE); None at EOF."""
        ...

    async def start_tls(self) -> None: ...

    def start_compression(self) -> None: ...
