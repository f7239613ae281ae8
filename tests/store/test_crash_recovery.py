"""DESIGN invariant 1: kill -9 during ingest, many times; every acknowledged message survives
exactly once, and nothing is half-visible."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.settings import Settings
from gateway.store import MailStore, open_store
from tests.support.ingest_worker import SOURCE_NAME, message_bytes

TOTAL = 2500


def _worker_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env["GATEWAY_DATA_DIR"] = str(settings.data_dir)
    env["GATEWAY_SECRET_KEY"] = settings.secret_key or ""
    if settings.database_url:
        env["GATEWAY_DATABASE_URL"] = settings.database_url
    return env


def _run_and_kill(
    settings: Settings, kill_after: float | None, *, after_first_ack: bool = True
) -> tuple[set[str], bool]:
    """Run the worker and SIGKILL it `kill_after` seconds after its first commit (or after its
    start); return (acknowledged uidls, whether it finished)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.ingest_worker", str(TOTAL)],
        env=_worker_env(settings),
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    acked: set[str] = set()
    finished = False
    first_ack = threading.Event()

    def read() -> None:
        nonlocal finished
        assert process.stdout is not None
        for line in process.stdout:
            words = line.decode().split()
            if words and words[0] == "ACK":
                acked.update(words[1:])
                first_ack.set()
            elif words == ["DONE"]:
                finished = True

    reader = threading.Thread(target=read)
    reader.start()
    if kill_after is None:
        process.wait(300)
    else:
        if after_first_ack:
            first_ack.wait(60)
        time.sleep(kill_after)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    # The pipe closes only when every process holding it is gone: a worker process that
    # outlived the kill (an orphan) would keep the reader waiting.
    reader.join(15)
    assert not reader.is_alive(), "a child of the killed ingest process survived it"
    return acked, finished


def _check_consistent(store: MailStore, acked: set[str]) -> set[str]:
    """Assert the store is whole; return the UIDLs it holds."""
    user = store.get_user(name="alice")
    inbox = store.get_mailbox(user_id=user.id, name="INBOX")
    source = store.get_source(user_name="alice", name=SOURCE_NAME)
    with store.database.read() as session:
        origins = session.execute(
            text("SELECT uidl, message_id FROM origins WHERE source_id = :s"), {"s": source.id}
        ).all()
        orphans = session.execute(
            text(
                "SELECT count(*) FROM messages m WHERE NOT EXISTS "
                "(SELECT 1 FROM mailbox_entries e WHERE e.message_id = m.id)"
            )
        ).scalar_one()
        unpaired_texts = session.execute(
            text(
                "SELECT (SELECT count(*) FROM messages m WHERE NOT EXISTS "
                "(SELECT 1 FROM message_texts t WHERE t.message_id = m.id)) + "
                "(SELECT count(*) FROM message_texts t WHERE NOT EXISTS "
                "(SELECT 1 FROM messages m WHERE m.id = t.message_id))"
            )
        ).scalar_one()
        messages = {
            row[0]: (row[1], row[2])
            for row in session.execute(text("SELECT id, blob_hash, size FROM messages"))
        }
    uidls = [uidl for uidl, _ in origins]
    assert len(uidls) == len(set(uidls)), "an origin was stored twice"
    assert orphans == 0, "a message row is visible without its mailbox entry"
    assert unpaired_texts == 0, "a message without its search text row, or the reverse"
    assert acked <= set(uidls), f"acknowledged but lost: {sorted(acked - set(uidls))[:5]}"
    entries = store.list_entries(mailbox_id=inbox.id)
    assert len(entries) == len(origins), "each stored origin has exactly one INBOX entry"
    assert [e.uid for e in entries] == sorted({e.uid for e in entries})
    assert inbox.uidnext > max((e.uid for e in entries), default=0)
    by_message = {message_id: uidl for uidl, message_id in origins}
    for entry in entries:
        blob_hash, size = messages[entry.message_id]
        data = store.blobs.read(blob_hash)
        assert len(data) == size and hashlib.sha256(data).hexdigest() == blob_hash
        number = int(by_message[entry.message_id][1:])
        assert data == message_bytes(number), "stored bytes differ from what was sent"
        assert (entry.flags & 1 == 1) == (number % 3 == 0)
    return set(uidls)


def _prepare(settings: Settings) -> None:
    store = open_store(settings)
    try:
        user = store.create_user(name="alice", password="pw")
        store.add_source(
            user_id=user.id,
            name=SOURCE_NAME,
            protocol="pop3",
            host="pop.test",
            port=995,
            security="tls",
            username="alice",
            secret="x",
        )
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.parametrize("kills", [20])
def test_kill_9_during_ingest_loses_and_doubles_nothing(
    backend_settings: Settings, kills: int
) -> None:
    _prepare(backend_settings)
    rng = random.Random(20261128)
    all_acked: set[str] = set()
    interrupted = 0
    for round_number in range(kills):
        # Every fourth kill lands anywhere from start-up on (migrations, opening the store).
        from_start = round_number % 4 == 3
        delay = rng.uniform(0.0, 2.0) if from_start else rng.uniform(0.0, 0.6)
        acked, finished = _run_and_kill(backend_settings, delay, after_first_ack=not from_start)
        interrupted += bool(acked - all_acked) and not finished
        all_acked |= acked
        store = open_store(backend_settings)
        try:
            _check_consistent(store, all_acked)
        finally:
            store.close()
        if finished:
            break
    # Most kills must land while messages were flowing, or the test proves little.
    assert interrupted >= kills // 2, f"only {interrupted} kills hit a running ingest"
    acked, finished = _run_and_kill(backend_settings, None)
    assert finished
    store = open_store(backend_settings)
    try:
        held = _check_consistent(store, all_acked | acked)
        assert held == {f"m{n}" for n in range(TOTAL)}
    finally:
        store.close()
