"""DESIGN invariant 1 over POP3: kill -9 `gateway sync` (delete after download) at random
moments, 20 times; every message ends up stored exactly once, none is lost, and nothing
stored is left on the server after a final clean sync."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.store import MailStore, open_store
from tests.fetch.helpers import add_pop3_source, digest, inbox_contents, varied_message
from tests.support.dovecot import DovecotServer
from tests.support.fixtures_store import make_settings

pytestmark = [pytest.mark.system, pytest.mark.slow]
GATEWAY = str(Path(sys.executable).with_name("gateway"))
INITIAL = 300
PER_ROUND = 10
KILLS = 20


def _server_digests(dovecot: DovecotServer, user: str) -> set[str]:
    root = dovecot.maildir_path(user)
    found: set[str] = set()
    for sub in ("cur", "new"):
        for path in (root / sub).iterdir():
            try:
                found.add(digest(path.read_bytes()))
            except FileNotFoundError:
                continue  # removed by Dovecot while we looked
    return found


def _run_sync(env: dict[str, str], kill_after: float | None, *, trigger: bytes = b"") -> bool:
    """Run `gateway sync`; SIGKILL it `kill_after` s after it logs `trigger` (or after its
    start). True if it finished by itself."""
    process = subprocess.Popen(
        [GATEWAY, "sync"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    triggered = threading.Event()

    def watch() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if trigger and trigger in line:
                triggered.set()

    reader = threading.Thread(target=watch)
    reader.start()
    if kill_after is None:
        process.wait(120)
    else:
        if trigger:
            triggered.wait(30)
        time.sleep(kill_after)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    reader.join(15)
    assert not reader.is_alive(), "a child of the killed gateway survived it"
    return process.returncode == 0


def _check(store: MailStore, dovecot: DovecotServer, loaded: set[str]) -> set[str]:
    """No duplicate, nothing lost; returns the digests the store holds."""
    source = store.get_source(user_name="alice", name="isp")
    with store.database.read() as session:
        uidls = [
            row[0]
            for row in session.execute(
                text("SELECT uidl FROM origins WHERE source_id = :s"), {"s": source.id}
            )
        ]
    assert len(uidls) == len(set(uidls)), "an origin was stored twice"
    stored = Counter(digest(content) for content, _ in inbox_contents(store))
    assert all(count == 1 for count in stored.values()), "a message was stored twice"
    assert len(stored) == len(uidls)
    on_server = _server_digests(dovecot, "killed")
    lost = loaded - set(stored) - on_server
    assert not lost, f"{len(lost)} messages were deleted at the server but never stored"
    return set(stored)


def test_kill_9_during_pop3_sync_with_delete_after_download(
    tmp_path: Path, dovecot_module: DovecotServer
) -> None:
    dovecot = dovecot_module
    dovecot.add_user("killed", "pw")
    settings = make_settings(tmp_path / "data")
    store = open_store(settings)
    try:
        add_pop3_source(
            store,
            port=dovecot.pop3_port,
            username="killed",
            password="pw",
            options={"retention": "delete_after_download"},
        )
    finally:
        store.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        GATEWAY_DATA_DIR=str(settings.data_dir),
        GATEWAY_SECRET_KEY=settings.secret_key or "",
        GATEWAY_INGEST_WORKERS="2",
    )
    messages = [varied_message(n) for n in range(INITIAL + KILLS * PER_ROUND)]
    dovecot.load_maildir("killed", "INBOX", messages[:INITIAL])
    loaded = {digest(m) for m in messages[:INITIAL]}
    rng = random.Random(4404)
    finished_rounds = 0
    interrupted = 0
    previous = (0, INITIAL)
    for round_number in range(KILLS):
        batch = messages[
            INITIAL + round_number * PER_ROUND : INITIAL + (round_number + 1) * PER_ROUND
        ]
        dovecot.load_maildir("killed", "INBOX", batch)
        loaded |= {digest(m) for m in batch}
        # Kill points: anywhere from start-up, after login, right after a durable batch
        # (stored, not yet deleted), and during the DELE/QUIT phase.
        trigger, delay = rng.choice(
            [
                (b"", rng.uniform(0.0, 1.5)),
                (b"event=pop3_logged_in", rng.uniform(0.0, 0.3)),
                (b"event=pop3_batch_stored", rng.uniform(0.0, 0.05)),
                (b"event=pop3_batch_stored", rng.uniform(0.0, 0.05)),
                (b"event=pop3_deleting", rng.uniform(0.0, 0.01)),
            ]
        )
        finished = _run_sync(env, delay, trigger=trigger)
        finished_rounds += finished
        store = open_store(settings)
        try:
            held = _check(store, dovecot, loaded)
        finally:
            store.close()
        on_server = len(_server_digests(dovecot, "killed"))
        progressed = (len(held), on_server) != (previous[0], previous[1] + PER_ROUND)
        interrupted += progressed and not finished
        previous = (len(held), on_server)
        print(
            f"kill {round_number}: at={trigger.decode() or 'start'}+{delay:.2f}s "
            f"finished={finished} stored={len(held)} on_server={on_server}"
        )
    assert interrupted >= KILLS // 3, f"only {interrupted} kills hit a sync that made progress"
    assert _run_sync(env, None)
    store = open_store(settings)
    try:
        held = _check(store, dovecot, loaded)
        assert held == loaded, "every message stored exactly once"
        assert _server_digests(dovecot, "killed") == set(), "stored messages left on server"
        state = store.get_source(user_name="alice", name="isp")
        assert state.consecutive_failures == 0 and state.last_success_at is not None
    finally:
        store.close()
