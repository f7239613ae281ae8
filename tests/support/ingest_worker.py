"""Child process for the kill -9 tests: ingests numbered messages and reports each commit.

Usage: python -m tests.support.ingest_worker TOTAL  (settings from GATEWAY_* variables)
Prints "ACK <uidl> ..." on stdout after `append_messages` returns for a batch, i.e. at the
point a fetcher would acknowledge those messages to their source.
"""

from __future__ import annotations

import random
import sys

from gateway.settings import Settings
from gateway.store import NewMessage, OriginKey, open_store

SOURCE_NAME = "crashsrc"


def message_bytes(number: int) -> bytes:
    rng = random.Random(number)
    body = b"".join(
        b"line %d of message %d %s\r\n" % (i, number, rng.randbytes(20).hex().encode())
        for i in range(rng.choice([5, 50, 500, 3000]))
    )
    return (
        b"From: sender%d@example.org\r\nTo: alice@example.org\r\n"
        b"Subject: crash test %d\r\nMessage-ID: <%d@crash.test>\r\n\r\n" % (number, number, number)
    ) + body


def main() -> None:
    total = int(sys.argv[1])
    store = open_store(Settings())
    user = store.get_user(name="alice")
    source = next(s for s in store.list_sources(user_id=user.id) if s.name == SOURCE_NAME)
    inbox = store.get_mailbox(user_id=user.id, name="INBOX").id
    known = store.known_uidls(source_id=source.id)
    pending = [n for n in range(total) if f"m{n}" not in known]
    rng = random.Random()
    while pending:
        size = rng.choice([1, 1, 5, 20])
        batch, pending = pending[:size], pending[size:]
        items = [
            NewMessage(
                inbox,
                message_bytes(n),
                flags=["\\Seen"] if n % 3 == 0 else [],
                origin=OriginKey(source_id=source.id, uidl=f"m{n}"),
            )
            for n in batch
        ]
        store.append_messages(items=items, actor=f"source:{source.id}")
        print("ACK " + " ".join(f"m{n}" for n in batch), flush=True)
    print("DONE", flush=True)
    store.close()


if __name__ == "__main__":
    main()
