"""Test a source's settings step by step and say precisely which step failed.

Steps, in order: DNS (the host name resolves), TCP (a port answers), TLS (handshake, and
whether the certificate is trusted), authentication, then one protocol command (IMAP LIST,
POP3 STAT). It runs in a thread and blocks; `check_connection` bounds the whole of it in time,
so a server that never answers costs the deadline, not a hung request.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal, TypeAlias

from gateway.fetch.connections import PasswordAuthenticator, network_timeout, open_pop3
from gateway.fetch.errors import SyncError
from gateway.fetch.imap_connection import open_imap
from gateway.store import SourceInfo

if TYPE_CHECKING:
    from gateway.oauth2.authenticator import OAuth2Authenticator

# A password, or the authenticator of a saved OAuth2 source.
Credential: TypeAlias = "str | OAuth2Authenticator"
CheckStep = Literal["dns", "tcp", "tls", "certificate", "authentication", "protocol"]
FailedStep = Literal["dns", "tcp", "timeout", "tls", "certificate", "authentication", "protocol"]
DEFAULT_DEADLINE_SECONDS = 20.0


@dataclass(frozen=True)
class StepResult:
    step: CheckStep
    seconds: float


@dataclass
class CheckResult:
    """What a test found; `failed_step` None means every step passed."""

    failed_step: FailedStep | None = None
    message: str = "ok"
    passed: list[StepResult] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    messages: int | None = None
    current: CheckStep = "dns"

    @property
    def ok(self) -> bool:
        return self.failed_step is None


def _failed_step(error: SyncError) -> FailedStep:
    if error.error_class == "tls":
        text = error.message.lower()
        return "certificate" if "certificate" in text or "pinned" in text else "tls"
    return {
        "dns": "dns",
        "connect": "tcp",
        "timeout": "timeout",
        "auth": "authentication",
    }.get(error.error_class, "protocol")  # type: ignore[return-value]


def run_connection_check(source: SourceInfo, password: Credential, result: CheckResult) -> None:
    """The blocking steps; fills `result` as it goes (so a timeout still says where)."""
    timeout = network_timeout(source.options)
    started = time.monotonic()

    def passed(step: CheckStep, following: CheckStep) -> None:
        nonlocal started
        result.passed.append(StepResult(step, round(time.monotonic() - started, 3)))
        started = time.monotonic()
        result.current = following

    try:
        try:
            addresses = socket.getaddrinfo(source.host, source.port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            raise SyncError("dns", f"the host name {source.host} does not resolve") from None
        passed("dns", "tcp")
        family, kind, proto, _name, address = addresses[0]
        with socket.socket(family, kind, proto) as probe:
            probe.settimeout(timeout)
            try:
                probe.connect(address)
            except TimeoutError:
                raise SyncError("timeout", f"no answer from port {source.port}") from None
            except OSError as error:
                raise SyncError(
                    "connect", f"port {source.port} did not accept: {error.strerror}"
                ) from None
        passed("tcp", "tls" if source.security != "none" else "authentication")
        _log_in_and_list(source, password, result, passed)
    except SyncError as error:
        result.failed_step = _failed_step(error)
        result.message = error.message
        if result.failed_step == "timeout":
            result.message += f" (during the {result.current} step)"


def _log_in_and_list(
    source: SourceInfo,
    password: Credential,
    result: CheckResult,
    passed: Callable[[CheckStep, CheckStep], None],
) -> None:
    # A saved OAuth2 source brings its own authenticator: its secret is no password.
    authenticator = PasswordAuthenticator(password) if isinstance(password, str) else password
    if source.protocol == "imap":
        client = open_imap(source, authenticator)
        if source.security != "none":
            passed("tls", "authentication")
        passed("authentication", "protocol")
        try:
            result.folders = sorted(folder.name for folder in client.list_folders())
        except Exception as error:
            raise SyncError("protocol", f"LIST failed: {type(error).__name__}") from None
        finally:
            client.close()
    else:
        pop3 = open_pop3(source, authenticator)
        if source.security != "none":
            passed("tls", "authentication")
        passed("authentication", "protocol")
        try:
            result.messages = pop3.stat()[0]
        except Exception as error:
            raise SyncError("protocol", f"STAT failed: {type(error).__name__}") from None
        finally:
            with contextlib.suppress(Exception):
                pop3.quit()
    passed("protocol", "protocol")


async def check_connection(
    source: SourceInfo, password: Credential, *, deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
) -> CheckResult:
    """Run the steps in a thread; past the deadline, report a timeout at the step reached."""
    # Each network step also gets at most the deadline, so the thread ends soon after.
    timeout = min(network_timeout(source.options), deadline_seconds)
    bounded = replace(source, options={**source.options, "timeout_seconds": timeout})
    result = CheckResult()
    try:
        async with asyncio.timeout(deadline_seconds):
            await asyncio.to_thread(run_connection_check, bounded, password, result)
    except TimeoutError:
        result.failed_step = "timeout"
        result.message = f"no answer within {deadline_seconds:g} s during the {result.current} step"
    return result
