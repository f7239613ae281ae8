"""DESIGN invariant 3 under load: UIDs and MODSEQs strictly ascend, never repeat, never reused."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gateway.settings import Settings
from gateway.store import MailStore, NewMessage, open_store

WRITERS = 8
APPENDS_PER_WRITER = 25


def _message(writer: int, number: int) -> bytes:
    return f"From: w{writer}@example.org\r\nSubject: {writer}-{number}\r\n\r\nbody\r\n".encode()


def _check_mailbox(store: MailStore, mailbox_id: int, expected: int) -> None:
    entries = store.list_entries(mailbox_id=mailbox_id)
    uids = [e.uid for e in entries]
    assert uids == list(range(1, expected + 1)), "UIDs must be dense here and unique"
    # A UID allocated later was committed with a higher MODSEQ (same UPDATE, same lock).
    modseqs = [e.modseq for e in entries]
    assert modseqs == sorted(modseqs)
    changes = store.changes_since(mailbox_id=mailbox_id, modseq=0)
    assert sorted(c.uid for c in changes if c.kind == "append") == uids
    status = store.mailbox_status(mailbox_id=mailbox_id)
    assert status.uidnext == expected + 1
    assert status.highestmodseq == max(modseqs)


def test_concurrent_appends_from_threads(store: MailStore) -> None:
    user = store.create_user(name="alice", password="pw")
    inbox = store.get_mailbox(user_id=user.id, name="INBOX").id

    def writer(number: int) -> list[tuple[int, int]]:
        seen = []
        for i in range(APPENDS_PER_WRITER):
            if i % 5 == 0:
                batch = [
                    NewMessage(inbox, _message(number, i)),
                    NewMessage(inbox, _message(number, -i)),
                ]
                results = store.append_messages(items=batch)
            else:
                results = [store.append_message(mailbox_id=inbox, content=_message(number, i))]
            seen.extend((r.uid, r.message_id) for r in results)
        return seen

    with ThreadPoolExecutor(WRITERS) as pool:
        per_writer = list(pool.map(writer, range(WRITERS)))
    for results in per_writer:
        uids = [uid for uid, _ in results]
        assert uids == sorted(uids), "each writer sees its own UIDs ascend"
    total = WRITERS * (APPENDS_PER_WRITER + APPENDS_PER_WRITER // 5)
    _check_mailbox(store, inbox, total)


def test_concurrent_flag_stores_get_distinct_modseqs(store: MailStore) -> None:
    user = store.create_user(name="alice", password="pw")
    inbox = store.get_mailbox(user_id=user.id, name="INBOX").id
    store.append_messages(items=[NewMessage(inbox, _message(0, i)) for i in range(20)])

    def toggler(number: int) -> list[int]:
        modseqs = []
        for i in range(15):
            result = store.set_flags(
                mailbox_id=inbox,
                uids=[1 + (number + i) % 20],
                flags=[f"$k{number}-{i}"],
                mode="add",
            )
            modseqs.append(result.modseq)
        return modseqs

    with ThreadPoolExecutor(WRITERS) as pool:
        all_modseqs = [m for batch in pool.map(toggler, range(WRITERS)) for m in batch]
    assert len(set(all_modseqs)) == len(all_modseqs), "every STORE gets its own MODSEQ"
    flag_changes = [c for c in store.changes_since(mailbox_id=inbox, modseq=0) if c.kind == "flags"]
    assert len(flag_changes) == WRITERS * 15


def test_no_uid_reuse_after_expunge_under_concurrency(store: MailStore) -> None:
    user = store.create_user(name="alice", password="pw")
    inbox = store.get_mailbox(user_id=user.id, name="INBOX").id
    handed_out: set[int] = set()

    def churn(number: int) -> list[int]:
        uids = []
        for i in range(10):
            result = store.append_message(mailbox_id=inbox, content=_message(number, i))
            uids.append(result.uid)
            store.set_flags(mailbox_id=inbox, uids=[result.uid], flags=["\\Deleted"])
            store.expunge(mailbox_id=inbox, uids=[result.uid])
        return uids

    with ThreadPoolExecutor(WRITERS) as pool:
        for uids in pool.map(churn, range(WRITERS)):
            assert not handed_out & set(uids)
            handed_out.update(uids)
    assert handed_out == set(range(1, WRITERS * 10 + 1))
    assert store.list_entries(mailbox_id=inbox) == []
    assert store.append_message(mailbox_id=inbox, content=b"x").uid == WRITERS * 10 + 1


def _process_writer(settings_json: str, inbox: int, number: int) -> None:
    store = open_store(Settings.model_validate_json(settings_json), migrate=False)
    try:
        for i in range(APPENDS_PER_WRITER):
            store.append_message(mailbox_id=inbox, content=_message(number, i))
    finally:
        store.close()


def test_concurrent_appends_from_processes(backend_settings: Settings, tmp_path: Path) -> None:
    store = open_store(backend_settings)
    try:
        user = store.create_user(name="alice", password="pw")
        inbox = store.get_mailbox(user_id=user.id, name="INBOX").id
        context = multiprocessing.get_context("spawn")
        workers = [
            context.Process(
                target=_process_writer, args=(backend_settings.model_dump_json(), inbox, n)
            )
            for n in range(4)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(120)
            assert worker.exitcode == 0
        _check_mailbox(store, inbox, 4 * APPENDS_PER_WRITER)
    finally:
        store.close()
