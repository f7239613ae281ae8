"""Faults an IMAP source can throw at us: each gives a clear, classified error recorded on the
source with a sensible next run, stores nothing twice, and a later sync completes.

Real Dovecot wherever it can play the part; a proxy in front of it cuts connections and
terminates TLS, and a fake server plays the silent and the throttling provider.
"""

from __future__ import annotations

import hashlib
import re
import ssl
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.fetch.batching import IMAP_BATCHES
from gateway.fetch.budget import BudgetExhaustedError
from gateway.fetch.errors import SyncError, ThrottledError
from gateway.fetch.imap_source import ImapSyncReport
from gateway.fetch.runner import run_source_sync
from gateway.store import MailStore, SourceInfo
from gateway.tls import ensure_certificate, server_context
from tests.fetch.fake_imap import fake_imap
from tests.fetch.helpers import add_imap_source, digests, inbox_contents
from tests.fetch.imap_proxy import CutRule, imap_proxy
from tests.support.dovecot import DovecotServer, free_port
from tests.support.fixtures_store import make_settings

pytestmark = pytest.mark.system
# Dovecot notices a rewritten passwd-file by its mtime (1 s resolution), so every account the
# module needs is added before the first login.
USERS = [
    ("imapauth", "right"),
    ("imapcut", "pw"),
    ("imapkept", "pw"),
    ("imaptls", "pw"),
    ("imapname", "pw"),
    ("imapbudget", "pw"),
]
_BARE_LF = re.compile(rb"(?<!\r)\n")


@pytest.fixture(scope="module", autouse=True)
def _accounts(dovecot_module: DovecotServer) -> None:
    for name, password in USERS:
        dovecot_module.add_user(name, password)


def imap_wire_form(raw: bytes) -> bytes:
    """What Dovecot's IMAP sends for a maildir file: bare LF as CRLF, nothing appended (unlike
    POP3, whose multi-line responses need a final CRLF)."""
    return _BARE_LF.sub(b"\r\n", raw)


def _messages(count: int, *, tag: str, filler: int = 20) -> list[bytes]:
    # Bare LF line endings and no final newline on purpose: the server normalises them.
    return [
        f"Subject: {tag} {n}\nMessage-ID: <{tag}{n}@t>\n\n{'line of the body ' * filler}\n"
        f".dot {n}\nlast line".encode()
        for n in range(count)
    ]


def _state(store: MailStore, name: str = "isp") -> SourceInfo:
    return store.get_source(user_name="alice", name=name)


def _sync(store: MailStore, source: SourceInfo, now: datetime | None = None) -> ImapSyncReport:
    report = run_source_sync(store, source, now=now)
    assert isinstance(report, ImapSyncReport)
    return report


def _stored_digests(store: MailStore) -> list[str]:
    return digests([content for content, _ in inbox_contents(store)])


def _assert_failure_recorded(store: MailStore, error_class: str, since: datetime) -> SourceInfo:
    state = _state(store)
    assert state.last_error_class == error_class and state.last_error
    assert state.consecutive_failures == 1 and state.last_success_at is None
    assert state.last_attempt_at is not None and state.last_attempt_at >= since
    assert state.next_run_at is not None and state.next_run_at > datetime.now(UTC)
    return state


# --- login and connection failures -----------------------------------------------------------


def test_wrong_password_is_an_auth_error_and_spares_other_sources(
    sqlite_store: MailStore, dovecot_module: DovecotServer
) -> None:
    messages = _messages(3, tag="auth")
    dovecot_module.load_maildir("imapauth", "INBOX", messages)
    # Dovecot slows every later login from an address that failed one (auth penalty): the
    # wrong password comes from 127.0.0.2 so the other source's login is not delayed by it.
    with imap_proxy(dovecot_module.imap_port, source_address="127.0.0.2") as proxy:
        wrong = add_imap_source(
            sqlite_store, port=proxy.port, username="imapauth", password="nope-pw"
        )
        started = datetime.now(UTC)
        with pytest.raises(SyncError) as caught:
            run_source_sync(sqlite_store, wrong)
        assert proxy.logins == 1
    assert caught.value.error_class == "auth"
    assert "nope-pw" not in str(caught.value)
    state = _assert_failure_recorded(sqlite_store, "auth", started)
    assert "nope-pw" not in (state.last_error or "")
    assert state.next_run_at is not None
    assert state.next_run_at >= started + timedelta(seconds=wrong.poll_interval)

    right = add_imap_source(
        sqlite_store,
        port=dovecot_module.imap_port,
        username="imapauth",
        password="right",
        name="same-account",
    )
    assert _sync(sqlite_store, right).fetched == 3
    assert _stored_digests(sqlite_store) == digests([imap_wire_form(m) for m in messages])
    assert _state(sqlite_store, "same-account").last_error_class is None
    assert _state(sqlite_store).last_error_class == "auth", "the failing source is unchanged"


def test_nothing_listening_is_a_connect_error_with_growing_backoff(
    sqlite_store: MailStore,
) -> None:
    source = add_imap_source(sqlite_store, port=free_port(), username="u", password="p")
    started = datetime.now(UTC)
    with pytest.raises(SyncError) as caught:
        run_source_sync(sqlite_store, source)
    assert caught.value.error_class == "connect"
    first = _assert_failure_recorded(sqlite_store, "connect", started)
    assert first.next_run_at is not None and first.last_attempt_at is not None
    assert first.next_run_at - first.last_attempt_at == timedelta(seconds=source.poll_interval)

    with pytest.raises(SyncError):
        run_source_sync(sqlite_store, first)
    second = _state(sqlite_store)
    assert second.consecutive_failures == 2
    assert second.next_run_at is not None and second.last_attempt_at is not None
    assert second.next_run_at - second.last_attempt_at == timedelta(
        seconds=2 * source.poll_interval
    )


@pytest.mark.parametrize(
    "behaviour",
    [
        pytest.param({"greeting": None}, id="no-greeting"),
        pytest.param({"hang_after_greeting": True}, id="greeting-then-silence"),
    ],
)
def test_silent_server_times_out_within_the_source_timeout(
    sqlite_store: MailStore, behaviour: dict[str, object]
) -> None:
    with fake_imap(**behaviour) as server:
        source = add_imap_source(
            sqlite_store,
            port=server.port,
            username="u",
            password="p",
            options={"timeout_seconds": 1},
        )
        started_at = datetime.now(UTC)
        started = time.monotonic()
        with pytest.raises(SyncError) as caught:
            run_source_sync(sqlite_store, source)
        elapsed = time.monotonic() - started
        assert server.connections == 1 and server.login_attempts == 0
    assert caught.value.error_class == "timeout"
    assert 0.9 <= elapsed < 4, f"took {elapsed:.1f} s with a 1 s timeout"
    _assert_failure_recorded(sqlite_store, "timeout", started_at)


@pytest.mark.parametrize("backoff_ms", [5000, 600_000])
def test_throttling_reply_delays_the_next_run_as_asked(
    sqlite_store: MailStore, backoff_ms: int
) -> None:
    reply = (
        b"NO [UNAVAILABLE] Request is throttled. Suggested Backoff Time: "
        + str(backoff_ms).encode()
        + b" milliseconds"
    )
    with fake_imap(login_reply=reply) as server:
        source = add_imap_source(sqlite_store, port=server.port, username="u", password="p")
        started = datetime.now(UTC)
        with pytest.raises(ThrottledError) as caught:
            run_source_sync(sqlite_store, source)
        assert server.login_attempts == 1, "one polite attempt, no retry loop"
    error = caught.value
    assert error.error_class == "throttled"
    assert error.retry_after == pytest.approx(backoff_ms / 1000)
    state = _assert_failure_recorded(sqlite_store, "throttled", started)
    assert state.next_run_at is not None
    wait = timedelta(milliseconds=backoff_ms)
    assert state.next_run_at >= started + wait
    # The server's wait counts when it is longer than our own backoff (60 s here).
    assert state.next_run_at <= datetime.now(UTC) + max(wait, timedelta(seconds=60))


# --- a connection dropped mid-FETCH ----------------------------------------------------------


BATCH = IMAP_BATCHES.messages  # messages per body FETCH and group commit


def test_connection_dropped_mid_fetch_keeps_what_was_committed_then_completes(
    sqlite_store: MailStore, dovecot_module: DovecotServer
) -> None:
    messages = _messages(BATCH * 7 // 2, tag="cut", filler=50)  # ~1 KB each: 4 body FETCHes
    dovecot_module.load_maildir("imapcut", "INBOX", messages)
    wire = [imap_wire_form(m) for m in messages]
    # The third body FETCH is cut 20 kB into its response.
    cut = CutRule(trigger=b"BODY.PEEK[]", occurrence=3, after_bytes=20_000)
    with imap_proxy(dovecot_module.imap_port, cut=cut) as proxy:
        source = add_imap_source(sqlite_store, port=proxy.port, username="imapcut", password="pw")
        started = datetime.now(UTC)
        with pytest.raises(SyncError) as caught:
            run_source_sync(sqlite_store, source)
        assert proxy.cuts_done == 1
        assert caught.value.error_class == "connect"
        assert "connection lost" in caught.value.message
        _assert_failure_recorded(sqlite_store, "connect", started)
        committed = len(inbox_contents(sqlite_store))
        # Whole batches only, in UID order: at least the first (its successor was complete).
        assert committed in (BATCH, 2 * BATCH), f"{committed} messages committed"
        assert _stored_digests(sqlite_store) == digests(wire[:committed])

        bodies_before = proxy.bodies
        retry = _sync(sqlite_store, source)
        missing = len(messages) - committed
        assert retry.fetched == missing, "resumed after the committed batches"
        assert proxy.bodies - bodies_before == missing, "nothing committed was downloaded again"
        assert retry.expunged_locally == 0, "nothing was removed at the source"
        assert _stored_digests(sqlite_store) == digests(wire), "every message exactly once"

        again = _sync(sqlite_store, source)
        assert (again.fetched, again.expunged_locally) == (0, 0)
        assert _stored_digests(sqlite_store) == digests(wire)
    state = _state(sqlite_store)
    assert (state.last_error_class, state.consecutive_failures) == (None, 0)


def test_a_batch_downloaded_in_full_before_a_drop_is_kept(
    sqlite_store: MailStore, dovecot_module: DovecotServer
) -> None:
    messages = _messages(BATCH * 5 // 2, tag="kept", filler=50)
    dovecot_module.load_maildir("imapkept", "INBOX", messages)
    wire = [imap_wire_form(m) for m in messages]
    # The first body FETCH completes; the second is cut 20 kB in.
    cut = CutRule(trigger=b"BODY.PEEK[]", occurrence=2, after_bytes=20_000)
    with imap_proxy(dovecot_module.imap_port, cut=cut) as proxy:
        source = add_imap_source(sqlite_store, port=proxy.port, username="imapkept", password="pw")
        with pytest.raises(SyncError) as caught:
            run_source_sync(sqlite_store, source)
        assert caught.value.error_class == "connect" and proxy.bodies >= BATCH
    # On a link that drops every few MB, a sync that throws away complete downloads may
    # never get anywhere.
    assert _stored_digests(sqlite_store) == digests(wire[:BATCH]), (
        f"{BATCH} messages downloaded in full before the drop were not kept"
    )


# --- TLS -------------------------------------------------------------------------------------


def _certificate_for(tmp_path: Path, name: str) -> tuple[Path, ssl.SSLContext, str]:
    """A self-signed certificate valid for `name` only (not for 127.0.0.1)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    der = certificate.public_bytes(serialization.Encoding.DER)
    return cert_path, server_context(cert_path, key_path), hashlib.sha256(der).hexdigest()


def _gateway_certificate(tmp_path: Path) -> tuple[Path, ssl.SSLContext, str]:
    cert, key = ensure_certificate(make_settings(tmp_path / "tls-data"))
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    return cert, server_context(cert, key), hashlib.sha256(der).hexdigest()


def _tls_source(
    store: MailStore,
    port: int,
    name: str,
    options: dict[str, object] | None = None,
    username: str = "imaptls",
) -> SourceInfo:
    return add_imap_source(
        store,
        port=port,
        username=username,
        password="pw",
        security="tls",
        name=name,
        options={"allow_plaintext": False, **(options or {})},
    )


def test_untrusted_certificate_is_a_tls_error_until_trusted(
    sqlite_store: MailStore, dovecot_module: DovecotServer, tmp_path: Path
) -> None:
    dovecot_module.load_maildir("imaptls", "INBOX", _messages(3, tag="tls"))
    cert, context, fingerprint = _gateway_certificate(tmp_path)
    with imap_proxy(dovecot_module.imap_port, tls=context) as proxy:
        started = datetime.now(UTC)
        with pytest.raises(SyncError) as caught:
            run_source_sync(sqlite_store, _tls_source(sqlite_store, proxy.port, "isp"))
        assert caught.value.error_class == "tls" and "certificate" in caught.value.message
        assert proxy.logins == 0, "no credentials sent to an untrusted server"
        _assert_failure_recorded(sqlite_store, "tls", started)

        by_ca = _tls_source(sqlite_store, proxy.port, "by-ca", {"tls_ca_file": str(cert)})
        first = _sync(sqlite_store, by_ca)
        assert first.fetched == 3
        pinned = _tls_source(
            sqlite_store, proxy.port, "by-pin", {"tls_fingerprint_sha256": fingerprint}
        )
        second = _sync(sqlite_store, pinned)
        # Same account, same Message-IDs: the user's dedupe adopts instead of storing twice.
        assert second.fetched + second.adopted == 3

        wrong_pin = _tls_source(
            sqlite_store, proxy.port, "bad-pin", {"tls_fingerprint_sha256": "00" * 32}
        )
        logins = proxy.logins
        with pytest.raises(SyncError) as mismatch:
            run_source_sync(sqlite_store, wrong_pin)
        assert mismatch.value.error_class == "tls" and "pinned" in mismatch.value.message
        assert proxy.logins == logins
    assert len(inbox_contents(sqlite_store)) == 3


def test_certificate_for_another_name_is_a_tls_error_unless_pinned(
    sqlite_store: MailStore, dovecot_module: DovecotServer, tmp_path: Path
) -> None:
    dovecot_module.load_maildir("imapname", "INBOX", _messages(2, tag="tls-name"))
    cert, context, fingerprint = _certificate_for(tmp_path, "mail.example.org")
    with imap_proxy(dovecot_module.imap_port, tls=context) as proxy:
        # Trusted issuer, wrong name: the host name is still checked (RFC 6125).
        trusted = _tls_source(
            sqlite_store, proxy.port, "isp", {"tls_ca_file": str(cert)}, username="imapname"
        )
        with pytest.raises(SyncError) as caught:
            run_source_sync(sqlite_store, trusted)
        assert caught.value.error_class == "tls" and proxy.logins == 0
        pinned = _tls_source(
            sqlite_store,
            proxy.port,
            "by-pin",
            {"tls_fingerprint_sha256": fingerprint},
            username="imapname",
        )
        assert _sync(sqlite_store, pinned).fetched == 2
        assert proxy.logins == 1


def test_starttls_not_offered_and_plaintext_not_allowed_send_no_password(
    sqlite_store: MailStore, dovecot_module: DovecotServer
) -> None:
    # This Dovecot runs with ssl = no, so it does not announce STARTTLS.
    with imap_proxy(dovecot_module.imap_port) as proxy:
        starttls = add_imap_source(
            sqlite_store,
            port=proxy.port,
            username="imaptls",
            password="pw",
            security="starttls",
        )
        with pytest.raises(SyncError) as caught:
            run_source_sync(sqlite_store, starttls)
        assert caught.value.error_class == "tls" and "STARTTLS" in caught.value.message
        plaintext = add_imap_source(
            sqlite_store,
            port=proxy.port,
            username="imaptls",
            password="pw",
            name="plain",
            options={"allow_plaintext": False},
        )
        sessions = proxy.sessions
        with pytest.raises(SyncError) as refused:
            run_source_sync(sqlite_store, plaintext)
        assert (
            refused.value.error_class == "plaintext" and "allow_plaintext" in refused.value.message
        )
        assert proxy.sessions == sessions, "not even connected"
        assert proxy.logins == 0


# --- the daily download budget ---------------------------------------------------------------

DAY_ONE = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)
BUDGET_MB = 0.05


def test_daily_budget_spreads_a_first_sync_over_several_days(
    sqlite_store: MailStore, dovecot_module: DovecotServer
) -> None:
    messages = _messages(40, tag="budget", filler=300)  # ~5 KB each, ~200 KB in all
    dovecot_module.load_maildir("imapbudget", "INBOX", messages)
    wire = [imap_wire_form(m) for m in messages]
    size_of = {hashlib.sha256(w).hexdigest(): len(w) for w in wire}
    limit = int(BUDGET_MB * 1024 * 1024)
    assert sum(size_of.values()) > 3 * limit
    with imap_proxy(dovecot_module.imap_port) as proxy:
        source = add_imap_source(
            sqlite_store,
            port=proxy.port,
            username="imapbudget",
            password="pw",
            options={"daily_budget_mb": BUDGET_MB},
        )
        try:
            report = _sync(sqlite_store, source, now=DAY_ONE)
        except BudgetExhaustedError as exhausted:
            assert exhausted.error_class == "quota"
            assert exhausted.resume_at == datetime(2030, 3, 2, tzinfo=UTC)
        else:
            pytest.fail(
                f"day one stored {report.fetched} messages, {report.bytes} bytes, "
                f"against a daily budget of {limit} bytes"
            )
        state = _state(sqlite_store)
        assert state.last_error_class == "quota"
        assert state.next_run_at == datetime(2030, 3, 2, tzinfo=UTC), "waits for the new day"
        day_one = _stored_digests(sqlite_store)
        assert 0 < len(day_one) < len(messages)
        assert sum(size_of[d] for d in day_one) <= limit

        bodies = proxy.bodies
        with pytest.raises(BudgetExhaustedError):
            run_source_sync(sqlite_store, source, now=DAY_ONE + timedelta(hours=14))
        assert _stored_digests(sqlite_store) == day_one, "nothing more the same day"
        assert proxy.bodies == bodies, "and nothing downloaded to be thrown away"

        day = DAY_ONE
        held = day_one
        for _ in range(len(messages)):
            day += timedelta(days=1)
            try:
                report = _sync(sqlite_store, source, now=day)
            except BudgetExhaustedError:
                report = None
            now_held = _stored_digests(sqlite_store)
            new = list((Counter(now_held) - Counter(held)).elements())
            assert new, f"no progress on {day:%Y-%m-%d}"
            assert sum(size_of[d] for d in new) <= limit, f"over budget on {day:%Y-%m-%d}"
            held = now_held
            if report is not None:
                assert report.fetched == len(new)
                break
        assert held == digests(wire), "every message stored exactly once"
        assert day > DAY_ONE + timedelta(days=2), "the budget actually spread the sync"
    assert _state(sqlite_store).last_error_class is None
