"""DESIGN invariant 1 over IMAP: kill -9 `gateway sync` at random moments of a first sync of
600 messages (up to 8 times, while new mail keeps arriving), restart it each time; every
message ends up stored exactly once, none is missing, and no run downloads a message an
earlier (killed) run already stored.

The syncs reach Dovecot through a proxy that counts the message bodies it forwards.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from gateway.fetch.imap_source import ImapSyncReport
from gateway.fetch.runner import run_source_sync
from gateway.settings import Settings
from gateway.store import FolderKey, MailStore, open_store
from tests.fetch.helpers import add_imap_source, digest, inbox_contents, varied_message
from tests.fetch.imap_proxy import imap_proxy
from tests.support.dovecot import DovecotServer
from tests.support.fixtures_store import make_settings

pytestmark = [pytest.mark.system, pytest.mark.slow]
GATEWAY = str(Path(sys.executable).with_name("gateway"))
INITIAL = 600
PER_ROUND = 10
KILLS = 8


class KillPoint(NamedTuple):
    """When to SIGKILL a run: `delay` s after its start, after it logs in, or after the store
    shows a batch it committed (the engine logs nothing per batch)."""

    after: str  # "start", "login" or "commit"
    delay: float


def _stored_count(store: MailStore) -> int:
    user = store.get_user(name="alice")
    inbox = store.get_mailbox(user_id=user.id, name="INBOX")
    return store.mailbox_status(mailbox_id=inbox.id).messages


def _wait_for_commit(store: MailStore, process: subprocess.Popen[bytes], before: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        if _stored_count(store) > before:
            return
        time.sleep(0.01)


def _run_sync(env: dict[str, str], store: MailStore, kill: KillPoint) -> bool:
    """Run `gateway sync`, SIGKILL it at `kill`; True if it finished by itself."""
    before = _stored_count(store)
    process = subprocess.Popen(
        [GATEWAY, "sync"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    logged_in = threading.Event()

    def watch() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if b"event=imap_logged_in" in line:
                logged_in.set()

    reader = threading.Thread(target=watch)
    reader.start()
    if kill.after == "login":
        logged_in.wait(30)
    elif kill.after == "commit":
        _wait_for_commit(store, process, before)
    time.sleep(kill.delay)
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    reader.join(15)
    assert not reader.is_alive(), "a child of the killed gateway survived it"
    return process.returncode == 0


def _check(store: MailStore, inbox: FolderKey) -> set[str]:
    """No duplicate message, one origin per stored message; returns the digests stored."""
    stored = Counter(digest(content) for content, _ in inbox_contents(store))
    duplicates = [digest for digest, count in stored.items() if count > 1]
    assert not duplicates, f"{len(duplicates)} messages were stored twice"
    # Origins commit with their messages; the folder's resume point is saved just after.
    origins = store.count_remote_messages(inbox)
    assert origins == len(stored), "an origin without its message, or the reverse"
    return set(stored)


def _remote_inbox(store: MailStore, dovecot: DovecotServer) -> FolderKey:
    status = dovecot.doveadm("mailbox", "status", "-u", "killed", "uidvalidity", "INBOX")
    uidvalidity = int(status.split("uidvalidity=")[1])
    return FolderKey(store.get_source(user_name="alice", name="isp").id, "INBOX", uidvalidity)


def test_kill_9_during_first_imap_sync_then_resume(
    tmp_path: Path, dovecot_module: DovecotServer
) -> None:
    dovecot = dovecot_module
    dovecot.add_user("killed", "pw")
    # one extra batch of messages per restart
    messages = [varied_message(n) for n in range(INITIAL + KILLS * PER_ROUND)]
    dovecot.load_maildir("killed", "INBOX", messages[:INITIAL])
    loaded = {digest(m) for m in messages[:INITIAL]}  # CRLF already: served byte for byte
    settings = make_settings(tmp_path / "data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        GATEWAY_DATA_DIR=str(settings.data_dir),
        GATEWAY_SECRET_KEY=settings.secret_key or "",
        GATEWAY_INGEST_WORKERS="2",
    )
    # The test's own store watches the children's commits and checks after each run.
    with imap_proxy(dovecot.imap_port) as proxy, _opened(settings) as store:
        add_imap_source(store, port=proxy.port, username="killed", password="pw")
        inbox = _remote_inbox(store, dovecot)
        rng = random.Random(4405)
        held: set[str] = set()
        interrupted = 0
        arriving = iter(range(INITIAL, len(messages), PER_ROUND))

        def new_mail_arrives() -> None:
            start = next(arriving)
            dovecot.load_maildir("killed", "INBOX", messages[start : start + PER_ROUND])
            loaded.update(digest(m) for m in messages[start : start + PER_ROUND])

        for round_number in range(KILLS):
            if round_number:
                new_mail_arrives()
            # A run logs in ~0.5 s after its start and commits its first batch of 100 ~0.6 s
            # later (the ingest pool starts); later batches follow every ~0.1 s. The first
            # kill lands just after a commit, so every later run resumes a cut-short sync.
            kill = (
                KillPoint("commit", rng.uniform(0.0, 0.05))
                if round_number == 0
                else rng.choice(
                    [
                        KillPoint("start", rng.uniform(0.3, 1.8)),
                        KillPoint("login", rng.uniform(0.0, 1.2)),
                        KillPoint("commit", rng.uniform(0.0, 0.3)),
                        KillPoint("commit", rng.uniform(0.0, 0.15)),
                        KillPoint("commit", rng.uniform(0.0, 0.05)),
                    ]
                )
            )
            missing = len(loaded - held)
            bodies = proxy.bodies
            finished = _run_sync(env, store, kill)
            downloaded = proxy.bodies - bodies
            now_held = _check(store, inbox)
            print(
                f"kill {round_number}: at={kill.after}+{kill.delay:.2f}s "
                f"finished={finished} stored={len(now_held)}/{len(loaded)} "
                f"downloaded={downloaded}"
            )
            assert now_held <= loaded
            assert held <= now_held, "a message stored before was lost"
            # The engine never asks for a UID it knows, killed run or not.
            assert downloaded <= missing, f"{downloaded} bodies for {missing} missing messages"
            if finished:
                assert now_held == loaded, f"a finished sync left {len(loaded - now_held)} out"
                assert downloaded == missing
            interrupted += not finished and now_held != held
            held = now_held
            if held == loaded:
                break  # the first sync is complete: nothing left to interrupt
        assert interrupted >= 2, f"only {interrupted} kills hit a sync making progress"

        # The last run resumes whatever the kills left, with new mail on top, so it always
        # has something to fetch when it gets to the end of the folder.
        new_mail_arrives()
        missing = len(loaded - held)
        bodies = proxy.bodies
        report = run_source_sync(store, store.get_source(user_name="alice", name="isp"))
        assert isinstance(report, ImapSyncReport)
        assert report.fetched == missing, "the resume fetched exactly what was missing"
        assert proxy.bodies - bodies == missing, "and downloaded nothing it had stored"
        assert report.expunged_locally == 0, "nothing was removed at the source"
        assert _check(store, inbox) == loaded, "every message stored exactly once, none missing"
        state = store.get_source(user_name="alice", name="isp")
        assert state.consecutive_failures == 0 and state.last_success_at is not None


@contextlib.contextmanager
def _opened(settings: Settings) -> Iterator[MailStore]:
    store = open_store(settings)
    try:
        yield store
    finally:
        store.close()
