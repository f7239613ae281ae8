"""Issue 13 findings 6, 9 and 10: files stay private, paths stay inside, remote text is tamed."""

from __future__ import annotations

import logging
import os
import socket
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.backup import UnsafePathError, export_maildir, export_mbox, import_path
from gateway.fetch.errors import SyncError
from gateway.fetch.runner import run_source_sync
from gateway.store import MailStore, open_store
from tests.fetch.test_sync_state import _source
from tests.support.fixtures_store import make_settings

MESSAGE = b"From: a@example.org\r\nSubject: s\r\n\r\nbody\r\n"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_files_and_directories_are_private_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        settings = make_settings(tmp_path / "data")
        store = open_store(settings)
        user = store.create_user(name="alice", password="pw")
        inbox = store.get_mailbox(user_id=user.id, name="INBOX")
        store.append_message(mailbox_id=inbox.id, content=MESSAGE)
        database = settings.data_dir / "gateway.sqlite3"
        assert mode(settings.data_dir) == 0o700
        assert mode(settings.blob_dir) == 0o700
        for suffix in ("", "-wal", "-shm"):
            companion = database.with_name(database.name + suffix)
            assert mode(companion) == 0o600, companion
        store.close()
        # An installation made before (644/755) is tightened at the next start.
        settings.data_dir.chmod(0o755)
        database.chmod(0o644)
        open_store(settings).close()
        assert mode(settings.data_dir) == 0o700 and mode(database) == 0o600
    finally:
        os.umask(previous)


def _rename_behind_the_stores_back(store: MailStore, user_id: int, old: str, new: str) -> None:
    """A name CREATE now refuses, as an older version may have stored it."""
    with store.database.write() as session:
        session.execute(
            text("UPDATE mailboxes SET name = :new WHERE user_id = :user AND name = :old"),
            {"new": new, "old": old, "user": user_id},
        )


@pytest.mark.parametrize("exporter", [export_maildir, export_mbox])
def test_export_stays_inside_its_directory_whatever_the_names(
    store: MailStore, tmp_path: Path, exporter: object
) -> None:
    user = store.create_user(name="alice", password="pw")
    for name in ("x/y", "plain", "a.b"):
        box = store.create_mailbox(user_id=user.id, name=name)
        store.append_message(mailbox_id=box.id, content=MESSAGE)
    _rename_behind_the_stores_back(store, user.id, "x/y", "../escaped")
    _rename_behind_the_stores_back(store, user.id, "plain", "/abs/../..")
    root = tmp_path / "exports"
    target = root / "a" / "b" / "out"
    target.mkdir(parents=True)
    assert callable(exporter)
    assert exporter(store, user_id=user.id, directory=target) == 3
    outside = {p for p in root.rglob("*") if not p.is_relative_to(target)}
    assert outside == {root / "a", root / "a" / "b"}
    if exporter is export_mbox:
        assert (target / "a.b.mbox").exists()


def test_export_refuses_a_symlink_that_leads_out(store: MailStore, tmp_path: Path) -> None:
    user = store.create_user(name="alice", password="pw")
    store.create_mailbox(user_id=user.id, name="trap/inner")
    target, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    target.mkdir()
    elsewhere.mkdir()
    (target / "trap").symlink_to(elsewhere)
    with pytest.raises(UnsafePathError):
        export_maildir(store, user_id=user.id, directory=target)
    assert list(elsewhere.iterdir()) == []


def test_import_refuses_message_files_linked_outside(store: MailStore, tmp_path: Path) -> None:
    user = store.create_user(name="alice", password="pw")
    source = tmp_path / "maildir"
    for sub in ("cur", "new", "tmp"):
        (source / sub).mkdir(parents=True)
    secret = tmp_path / "secret"
    secret.write_bytes(b"Subject: not mail\r\n\r\nprivate\r\n")
    (source / "cur" / "1.x:2,S").symlink_to(secret)
    with pytest.raises(UnsafePathError):
        import_path(store, user_id=user.id, path=source)
    inbox = store.get_mailbox(user_id=user.id, name="INBOX")
    assert store.list_entries(mailbox_id=inbox.id) == []


def test_last_error_is_printable_and_short(store: MailStore) -> None:
    source_id = _source(store)
    store.record_sync_failure(
        source_id,
        error_class="protocol",
        message="server said \x1b[31mEVIL\x1b[0m\r\nevent=forged " + "A" * 5000,
        now=datetime.now(UTC),
        next_run_at=None,
    )
    (source,) = store.list_sources()
    assert source.last_error is not None
    assert len(source.last_error) <= 500 and source.last_error.isprintable()


@contextmanager
def hostile_server(greeting: bytes) -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connection.sendall(greeting)
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def test_a_hostile_greeting_is_cut_and_sanitised(
    store: MailStore, caplog: pytest.LogCaptureFixture
) -> None:
    user = store.create_user(name="bob", password="pw")
    evil = b"\x1b[2J\x1b[31mEVIL\x07 event=forged user=admin " + b"A" * 3000
    with hostile_server(b"* BYE " + evil + b"\r\n") as port:
        source = store.add_source(
            user_id=user.id,
            name="evil",
            protocol="imap",
            host="127.0.0.1",
            port=port,
            security="none",
            username="u",
            secret="s",
            options={"allow_plaintext": True},
        )
        caplog.set_level(logging.INFO)
        with pytest.raises(SyncError):
            run_source_sync(store, source)
    (recorded,) = store.list_sources(user_id=user.id)
    assert recorded.last_error is not None
    for text_seen in (recorded.last_error, caplog.text):
        assert "\x1b" not in text_seen and "\x07" not in text_seen
        assert "A" * 200 not in text_seen
