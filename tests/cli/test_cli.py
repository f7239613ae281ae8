"""The `gateway` command as operators and scripts use it: real subprocesses, real data dir."""

from __future__ import annotations

import imaplib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from gateway.settings import Settings
from gateway.store import MailStore, NewMessage, open_store
from tests.support.dovecot import DovecotServer, free_port

GATEWAY = str(Path(sys.executable).with_name("gateway"))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    variables = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    variables.update(
        GATEWAY_DATA_DIR=str(tmp_path / "data"),
        GATEWAY_SECRET_KEY=Fernet.generate_key().decode(),
    )
    # As after `gateway migrate`: only serve and migrate create a data directory.
    (tmp_path / "data").mkdir()
    return variables


def run(
    env: dict[str, str], *args: str, stdin: str = "", check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [GATEWAY, *args], input=stdin, env=env, capture_output=True, text=True, timeout=120
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@contextmanager
def env_store(env: dict[str, str]) -> Iterator[MailStore]:
    """The store the CLI subprocesses use, opened in the test process."""
    store = open_store(
        Settings(
            data_dir=Path(env["GATEWAY_DATA_DIR"]),
            secret_key=env["GATEWAY_SECRET_KEY"],
            _env_file=None,
        )  # type: ignore[call-arg]
    )
    try:
        yield store
    finally:
        store.close()


def test_help_documents_every_command(env: dict[str, str]) -> None:
    text = run(env, "--help").stdout
    commands = ("serve", "migrate", "user", "source", "sync", "index", "export", "import", "gc")
    for command in commands:
        assert command in text
    assert "add" in run(env, "user", "--help").stdout
    source_help = run(env, "source", "add", "--help").stdout
    for option in (
        "--user",
        "--name",
        "--protocol",
        "--host",
        "--port",
        "--security",
        "--username",
        "--interval",
    ):
        assert option in source_help


def test_user_commands(env: dict[str, str]) -> None:
    assert (
        "created user alice (admin)"
        in run(env, "user", "add", "alice", "--admin", stdin="pw1\n").stdout
    )
    run(env, "user", "add", "bob", stdin="pw2\n")
    listing = run(env, "user", "list").stdout.splitlines()
    assert [line.split("\t")[:2] for line in listing] == [["alice", "admin"], ["bob", "user"]]
    duplicate = run(env, "user", "add", "bob", stdin="pw\n", check=False)
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
    empty = run(env, "user", "add", "carol", stdin="", check=False)
    assert empty.returncode == 1 and "standard input" in empty.stderr
    run(env, "user", "passwd", "bob", stdin="new password\n")
    with env_store(env) as store:
        assert store.authenticate_user(name="bob", password="new password") is not None
        assert store.authenticate_user(name="bob", password="pw2") is None


def test_source_options_are_stored_typed_and_typos_refused(env: dict[str, str]) -> None:
    run(env, "user", "add", "bob", stdin="pw\n")
    common = ["source", "add", "--user", "bob", "--protocol", "pop3", "--host", "pop.example"]
    common += ["--port", "995", "--security", "tls", "--username", "bob"]
    added = run(
        env,
        *common,
        "--name",
        "isp",
        "--option",
        "retention=delete_after_days",
        "--option",
        "retention_days=30",
        stdin="pw\n",
    )
    assert "added source bob/isp" in added.stdout
    with env_store(env) as store:
        source = store.get_source(user_name="bob", name="isp")
    assert source.options == {"retention": "delete_after_days", "retention_days": 30}
    for bad_option in (
        "retension=keep",
        "retention=sometimes",
        "retention_days",
        "delete_policy=trash",  # an IMAP option on a POP3 source
        "timeout_seconds=0",
    ):
        refused = run(
            env, *common, "--name", "bad", "--option", bad_option, stdin="pw\n", check=False
        )
        assert refused.returncode == 2 and "error:" in refused.stderr, bad_option
    with env_store(env) as store:
        assert [s.name for s in store.list_sources()] == ["isp"]


def test_source_commands_keep_the_secret_secret(env: dict[str, str]) -> None:
    run(env, "user", "add", "alice", stdin="pw\n")
    added = run(
        env,
        "source",
        "add",
        "--user",
        "alice",
        "--name",
        "isp",
        "--protocol",
        "pop3",
        "--host",
        "pop.example.net",
        "--port",
        "995",
        "--security",
        "tls",
        "--username",
        "alice@example.net",
        "--interval",
        "120",
        stdin="TopSecret99\n",
    )
    assert "added source alice/isp" in added.stdout
    listing = run(env, "source", "list").stdout
    assert "alice/isp" in listing and "pop3" in listing and "every 120s" in listing
    assert "TopSecret99" not in listing + added.stdout + added.stderr
    bad = run(
        env,
        "source",
        "add",
        "--user",
        "alice",
        "--name",
        "x",
        "--protocol",
        "smtp",
        "--host",
        "h",
        "--port",
        "1",
        "--security",
        "tls",
        "--username",
        "u",
        stdin="s\n",
        check=False,
    )
    assert bad.returncode == 2 and "smtp" in bad.stderr
    with env_store(env) as store:
        source = store.get_source(user_name="alice", name="isp")
        assert store.read_source_secret(source_id=source.id) == "TopSecret99"
    run(env, "source", "remove", "--user", "alice", "--name", "isp")
    assert "alice/isp" not in run(env, "source", "list").stdout


def test_sync_reports_sources_that_fail(env: dict[str, str]) -> None:
    run(env, "user", "add", "alice", stdin="pw\n")
    assert run(env, "sync").returncode == 0  # nothing to do is not a failure
    run(
        env,
        "source",
        "add",
        "--user",
        "alice",
        "--name",
        "isp",
        "--protocol",
        "imap",
        "--host",
        "127.0.0.1",
        "--port",
        str(free_port()),  # nothing listens there
        "--security",
        "tls",
        "--username",
        "u",
        stdin="s\n",
    )
    result = run(env, "sync", "--user", "alice", "--source", "isp", check=False)
    assert result.returncode == 1
    assert "event=sync_failed" in result.stderr and "error_class=connect" in result.stderr
    listing = run(env, "source", "list").stdout
    assert "connect (1x: connection refused)" in listing and "next 20" in listing


def _fill(store: MailStore) -> dict[str, list[tuple[bytes, list[str], datetime]]]:
    user = store.create_user(name="alice", password="pw")
    store.create_mailbox(user_id=user.id, name="Lists/python")
    when = datetime(2023, 3, 4, 5, 6, 7, tzinfo=UTC)
    content = {
        "INBOX": [
            (b"Subject: one\r\n\r\nhello\r\n", ["\\Seen", "$Forwarded"], when),
            (b"Subject: two\n\nbare LF body\nFrom me\n", ["\\Flagged"], when),
        ],
        "Lists/python": [
            (b"Subject: \xe6\x97\xa5\r\n\r\n8bit\r\n", ["\\Answered", "\\Draft", "work"], when)
        ],
    }
    for name, messages in content.items():
        box = store.get_mailbox(user_id=user.id, name=name)
        store.append_messages(
            items=[NewMessage(box.id, raw, flags, date) for raw, flags, date in messages]
        )
    return content


def _read_back(store: MailStore, user: str) -> dict[str, list[tuple[bytes, list[str], datetime]]]:
    owner = store.get_user(name=user)
    result = {}
    for box in store.list_mailboxes(user_id=owner.id):
        entries = store.list_entries(mailbox_id=box.id)
        meta = store.get_messages(message_ids=[e.message_id for e in entries])
        rows = []
        for entry in entries:
            with store.open_message(message_id=entry.message_id) as handle:
                rows.append((handle.read(), entry.flag_names, meta[entry.message_id].internal_date))
        if rows:
            result[box.name] = rows
    return result


def test_maildir_export_import_round_trip_is_lossless(env: dict[str, str], tmp_path: Path) -> None:
    with env_store(env) as store:
        original = _fill(store)
    assert (
        "exported 3 messages"
        in run(env, "export", "--user", "alice", "--format", "maildir", str(tmp_path / "md")).stdout
    )
    assert (tmp_path / "md" / "Lists" / "python" / "cur").is_dir()
    run(env, "user", "add", "restored", stdin="pw\n")
    assert (
        "imported 3 messages"
        in run(env, "import", "--user", "restored", str(tmp_path / "md")).stdout
    )
    with env_store(env) as store:
        restored = _read_back(store, "restored")

    def normal(data):  # flags order is not meaningful
        return {
            k: sorted((raw, sorted(flags), date) for raw, flags, date in v) for k, v in data.items()
        }

    assert normal(restored) == normal(original)


def test_mbox_export_import_keeps_messages_and_flags(env: dict[str, str], tmp_path: Path) -> None:
    with env_store(env) as store:
        _fill(store)
    run(env, "export", "--user", "alice", "--format", "mbox", str(tmp_path / "mb"))
    assert (tmp_path / "mb" / "INBOX.mbox").is_file()
    run(env, "user", "add", "restored", stdin="pw\n")
    assert (
        "imported 3 messages"
        in run(env, "import", "--user", "restored", str(tmp_path / "mb")).stdout
    )
    with env_store(env) as store:
        restored = _read_back(store, "restored")
    assert sorted(restored) == ["INBOX", "Lists/python"]
    inbox_flags = sorted(tuple(sorted(f)) for _, f, _ in restored["INBOX"])
    # mbox has no keywords or \\Draft; the system flags it has survive.
    assert inbox_flags == [("\\Flagged",), ("\\Seen",)]
    assert any(b"hello" in raw for raw, _, _ in restored["INBOX"])


def test_import_of_missing_path_fails_clearly(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "user", "add", "alice", stdin="pw\n")
    result = run(env, "import", "--user", "alice", str(tmp_path / "nope"), check=False)
    assert result.returncode != 0 and "nothing to import" in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_health(port: int, process: subprocess.Popen[str], timeout: float = 60) -> object:
    """The admin's /healthz answer once the server is up (an event, not a guessed delay)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
                return json.loads(reply.read())
        except OSError:
            time.sleep(0.1)
    raise AssertionError("serve never answered /healthz")


def test_serve_first_start_creates_admin_cert_and_answers(env: dict[str, str]) -> None:
    port, imap_port, imaps_port = _free_port(), _free_port(), _free_port()
    env = {
        **env,
        "GATEWAY_ADMIN_PORT": str(port),
        "GATEWAY_IMAP_PORT": str(imap_port),
        "GATEWAY_IMAPS_PORT": str(imaps_port),
        "GATEWAY_SUBMISSION_PORT": "0",
        "GATEWAY_SMTPS_PORT": "0",
    }
    process = subprocess.Popen(
        [GATEWAY, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = ""
        deadline = time.monotonic() + 60
        assert process.stdout is not None
        while "password:" not in line and time.monotonic() < deadline:
            line = process.stdout.readline()
        password = line.rsplit("password:", 1)[1].strip()
        # What to do next follows, with the command as it must be typed.
        after = "".join(process.stdout.readline() for _ in range(12))
        assert "Next steps" in after and f"{GATEWAY} user add" in after
        assert f"port {imaps_port}" in after and "selfsigned.crt" in after
        assert f"web panel: http://localhost:{port}/" in after
        assert wait_for_health(port, process) == {"status": "ok"}
        # Readiness says the database answers, and nothing about what it holds.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as reply:
            assert json.loads(reply.read()) == {"status": "ok"}
        data_dir = Path(env["GATEWAY_DATA_DIR"])
        assert (data_dir / "tls" / "selfsigned.crt").is_file()
        assert (data_dir / "tls" / "selfsigned.key").stat().st_mode & 0o077 == 0
        # The first admin logs in over IMAPS and over STARTTLS with the printed password.
        tls = ssl.create_default_context(cafile=str(data_dir / "tls" / "selfsigned.crt"))
        tls.check_hostname = False
        with imaplib.IMAP4_SSL("127.0.0.1", imaps_port, ssl_context=tls, timeout=10) as client:
            client.login("admin", password)
            assert client.select("INBOX")[0] == "OK"
        with imaplib.IMAP4("127.0.0.1", imap_port, timeout=10) as client:
            assert "LOGINDISABLED" in client.capabilities
            client.starttls(ssl_context=tls)
            client.login("admin", password)
            assert client.list()[0] == "OK"
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert password not in stderr, "the first admin password must never reach the logs"
    with env_store(env) as store:
        assert store.authenticate_user(name="admin", password=password) is not None
    # A second start must not create another admin or print a password.
    second = subprocess.Popen(
        [GATEWAY, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        # Ready means the first-start step is long done: its output would be there by now.
        assert wait_for_health(port, second) == {"status": "ok"}
    finally:
        second.send_signal(signal.SIGTERM)
        out, _ = second.communicate(timeout=30)
    assert "password" not in out


@pytest.mark.parametrize("main", [GATEWAY, "-m gateway"])
def test_worker_processes_reimport_a_light_main_module(main: str) -> None:
    """multiprocessing re-imports the program's main module in every ingest worker (as
    `__mp_main__`); for the `gateway` command that must not pull in the CLI and its web
    framework, ORM and servers, which cost each worker ~0.8 s of CPU per start."""
    load = (
        f"import runpy; runpy.run_path({GATEWAY!r}, run_name='__mp_main__')"
        if main == GATEWAY
        else "import runpy; runpy.run_module('gateway.__main__', run_name='__mp_main__')"
    )
    probe = f"import sys; {load}; print(sorted(m for m in sys.modules if 'gateway' in m))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = result.stdout.strip()
    assert "gateway" in loaded
    assert "gateway.cli" not in loaded


def test_index_decodes_the_search_text_sync_left_for_later(env: dict[str, str]) -> None:
    run(env, "migrate")
    with env_store(env) as store:
        user = store.create_user(name="alice", password="pw")
        inbox = store.get_mailbox(user_id=user.id, name="INBOX").id
        items = [NewMessage(inbox, b"Subject: %d\r\n\r\nwords %d\r\n" % (i, i)) for i in range(3)]
        store.append_messages(items=items, defer_search_text=True)
        assert store.count_pending_search_text() == 3
    assert "indexed the search text of 3 messages" in run(env, "index").stdout
    with env_store(env) as store:
        assert store.count_pending_search_text() == 0
    assert "of 0 messages" in run(env, "index").stdout


def test_key_rotation_re_encrypts_source_secrets_under_the_new_key(env: dict[str, str]) -> None:
    """docs/operations.md, "Key rotation": NEW,OLD for the rotation, then NEW alone."""
    old_key, new_key = env["GATEWAY_SECRET_KEY"], Fernet.generate_key().decode()
    run(env, "user", "add", "rosa", stdin="rosa-pw\n")
    run(
        env,
        *("source", "add", "--user", "rosa", "--name", "isp", "--protocol", "pop3"),
        *("--host", "pop.example", "--port", "995", "--security", "tls", "--username", "r"),
        stdin="source-pw\n",
    )
    rotating = {**env, "GATEWAY_SECRET_KEY": f"{new_key},{old_key}"}
    assert run(rotating, "rotate-secrets").stdout.strip() == "re-encrypted 1 source secrets"
    with env_store({**env, "GATEWAY_SECRET_KEY": new_key}) as store:
        source = store.get_source(user_name="rosa", name="isp")
        assert store.read_source_secret(source_id=source.id) == "source-pw"
    # The old key alone no longer reads it.
    with env_store(env) as store, pytest.raises(Exception, match="GATEWAY_SECRET_KEY"):
        store.read_source_secret(source_id=source.id)


# --- issue 16: what surprised a new user of the command ---------------------------------------


def test_plaintext_source_is_refused_unless_explicitly_allowed(env: dict[str, str]) -> None:
    run(env, "user", "add", "alice", stdin="pw\n")
    args = ["source", "add", "--user", "alice", "--name", "isp", "--protocol", "pop3"]
    args += ["--host", "127.0.0.1", "--port", "110", "--security", "none", "--username", "u"]
    refused = run(env, *args, stdin="secret\n", check=False)
    assert refused.returncode == 2 and "allow_plaintext=true" in refused.stderr
    assert run(env, "source", "list").stdout == ""
    run(env, *args, "--option", "allow_plaintext=true", stdin="secret\n")
    assert "alice/isp" in run(env, "source", "list").stdout


def test_source_edit_passwd_ids_and_credentials_state(env: dict[str, str]) -> None:
    run(env, "user", "add", "alice", stdin="pw\n")
    add = ["source", "add", "--user", "alice", "--name", "work", "--protocol", "imap"]
    add += ["--host", "imap.example.org", "--port", "993", "--security", "tls"]
    run(env, *add, "--username", "a", "--option", "push=false", stdin="old\n")
    run(env, "source", "remove", "--user", "alice", "--name", "work")
    run(env, *add, "--username", "a", "--option", "push=false", stdin="old\n")
    listed = run(env, "source", "list").stdout
    assert listed.startswith("#2\talice/work\t"), "ids are shown and never reused"
    run(
        env,
        "source",
        "edit",
        "--user",
        "alice",
        "--name",
        "work",
        "--host",
        "mail.example.org",
        "--port",
        "143",
        "--security",
        "starttls",
        "--option",
        "delete_policy=keep",
        "--unset-option",
        "push",
        "--interval",
        "120",
    )
    with env_store(env) as store:
        source = store.get_source(user_name="alice", name="work")
        assert (source.host, source.port, source.security) == ("mail.example.org", 143, "starttls")
        assert source.options == {"delete_policy": "keep"} and source.poll_interval == 120
        bad = run(
            env,
            "source",
            "edit",
            "--user",
            "alice",
            "--name",
            "work",
            "--option",
            "typo=1",
            check=False,
        )
        assert bad.returncode == 2 and "typo" in bad.stderr
        now = datetime.now(UTC)
        for _ in range(3):
            store.record_sync_failure(
                source.id, error_class="auth", message="login rejected", now=now, next_run_at=now
            )
    assert "credentials rejected" in run(env, "source", "list").stdout
    run(env, "source", "passwd", "--user", "alice", "--name", "work", stdin="new\n")
    assert "credentials rejected" not in run(env, "source", "list").stdout
    with env_store(env) as store:
        source = store.get_source(user_name="alice", name="work")
        assert store.read_source_secret(source_id=source.id) == "new"


def test_commands_other_than_serve_and_migrate_never_create_a_data_dir(
    env: dict[str, str], tmp_path: Path
) -> None:
    elsewhere = {**env, "GATEWAY_DATA_DIR": str(tmp_path / "nowhere" / "data")}
    result = run(elsewhere, "source", "list", check=False)
    assert result.returncode == 1
    assert str(tmp_path / "nowhere" / "data") in result.stderr
    assert not (tmp_path / "nowhere").exists()
    migrated = run(elsewhere, "migrate")
    assert (tmp_path / "nowhere" / "data").is_dir()
    # No Alembic chatter ("Context impl SQLiteImpl.") on any command.
    quiet = run(elsewhere, "user", "list")
    assert "Context impl" not in migrated.stderr + quiet.stderr
    assert "transactional DDL" not in migrated.stderr + quiet.stderr


# What `gateway user list` / `source list` must not import to start fast (issue 16: well under
# 0.5 s): they read a current database with its own driver (gateway/store/listing.py), so no
# SQLAlchemy, SQLModel or table models; the schema check reads alembic_version itself; and the
# servers, sync engines, crypto and MIME parser are never needed.
NOT_FOR_LISTING = (
    "sqlalchemy",
    "sqlmodel",
    "gateway.store.mail_store",
    "gateway.store.models",
    "alembic",
    "fastapi",
    "starlette",
    "uvicorn",
    "aiosmtpd",
    "imapclient",
    "psycopg",
    "boto3",
    "cryptography",
    "argon2",
    "rich",
    "gateway.admin",
    "gateway.fetch",
    "gateway.imap",
    "gateway.smtp",
    "gateway.mime",
    "gateway.ingest_worker",
    "gateway.server",
)


def imported_modules(env: dict[str, str], *args: str) -> set[str]:
    """Every module the whole `gateway ARGS` process imported (`python -X importtime`)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", GATEWAY, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    return {line.rsplit("|", 1)[1].strip() for line in lines[1:]}


def test_listing_commands_import_no_server_engine_or_crypto_stack(env: dict[str, str]) -> None:
    run(env, "migrate")
    run(env, "user", "add", "lena", stdin="pw\n")
    run(
        env,
        *("source", "add", "--user", "lena", "--name", "isp", "--protocol", "imap"),
        *("--host", "imap.example.org", "--port", "993", "--security", "tls"),
        *("--username", "lena"),
        stdin="source-pw\n",
    )
    for command in (("user", "list"), ("source", "list"), ("identity", "list")):
        modules = imported_modules(env, *command)
        assert "gateway.store.listing" in modules, "the probe sees the database being read"
        unwanted = sorted(
            name
            for name in modules
            if any(name == prefix or name.startswith(f"{prefix}.") for prefix in NOT_FOR_LISTING)
        )
        assert unwanted == [], f"gateway {' '.join(command)} imports {unwanted}"
    assert "lena/isp" in run(env, "source", "list").stdout


@pytest.mark.postgres
def test_listing_commands_read_postgresql_without_sqlalchemy(env: dict[str, str]) -> None:
    from tests.support.fixtures_store import PostgresDatabase

    with PostgresDatabase() as url:
        on_postgres = {**env, "GATEWAY_DATABASE_URL": url}
        run(on_postgres, "migrate")
        run(on_postgres, "user", "add", "lena", stdin="pw\n")
        run(
            on_postgres,
            *("source", "add", "--user", "lena", "--name", "isp", "--protocol", "pop3"),
            *("--host", "pop.example.org", "--port", "995", "--security", "tls"),
            *("--username", "lena", "--interval", "120"),
            stdin="source-pw\n",
        )
        for command in (("user", "list"), ("source", "list"), ("identity", "list")):
            modules = imported_modules(on_postgres, *command)
            assert "psycopg" in modules, "the probe sees PostgreSQL's driver being used"
            assert not {"sqlalchemy", "sqlmodel", "gateway.store.models"} & modules
        today = datetime.now(UTC).date().isoformat()
        assert run(on_postgres, "user", "list").stdout == f"lena\tuser\t{today}\n"
        assert run(on_postgres, "source", "list").stdout == (
            "#1\tlena/isp\tpop3\ttls://pop.example.org:995\tlena\tevery 120s\t"
            "never synced\tnext -\t0 msgs/0 B\n"
        )
        missing = run(on_postgres, "source", "list", "--user", "nobody", check=False)
        assert missing.returncode == 1 and missing.stderr == "error: no such user: nobody\n"


def test_source_test_reports_each_step_and_the_failing_one(
    env: dict[str, str], dovecot: DovecotServer
) -> None:
    from tests.support.fixtures_dovecot import DOVECOT_PASSWORD, DOVECOT_USER

    run(env, "user", "add", "tess", stdin="pw\n")
    for name, password in (("good", DOVECOT_PASSWORD), ("bad", "wrong")):
        run(
            env,
            "source", "add", "--user", "tess", "--name", name, "--protocol", "imap",
            "--host", "127.0.0.1", "--port", str(dovecot.imap_port), "--security", "none",
            "--username", DOVECOT_USER, "--option", "allow_plaintext=true",
            stdin=f"{password}\n",
        )  # fmt: skip
    good = run(env, "source", "test", "--user", "tess", "--name", "good")
    assert good.returncode == 0, good.stderr
    assert [line.split("\t")[1] for line in good.stdout.splitlines()[:-1]] == [
        "dns",
        "tcp",
        "authentication",
        "protocol",
    ]
    assert "connection OK; folders: INBOX" in good.stdout
    bad = run(env, "source", "test", "--user", "tess", "--name", "bad", check=False)
    assert bad.returncode == 1 and "FAILED\tauthentication\tlogin rejected" in bad.stderr
    assert "wrong" not in bad.stdout + bad.stderr
