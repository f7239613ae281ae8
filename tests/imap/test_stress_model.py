"""Concurrent random sessions, each checking every response against its own model.

Each client keeps the mailbox as the protocol told it (EXISTS, EXPUNGE, FETCH FLAGS) and
asserts that every FETCH and SEARCH answer agrees with that model; at the end every model
must equal the store's truth. This catches wrong sequence numbers after expunges, lost or
doubled updates and EXPUNGE sent where RFC 3501 §7.4.1 forbids it.
"""

from __future__ import annotations

import random
import re
import threading

from tests.support.corpus import crlf
from tests.support.gateway_server import PASSWORD, USER, RunningGateway
from tests.support.imap_raw import RawImapClient

_EXISTS = re.compile(rb"^\* (\d+) EXISTS")
_EXPUNGE = re.compile(rb"^\* (\d+) EXPUNGE")
_FETCH = re.compile(rb"^\* (\d+) FETCH \((.*)\)\r\n$", re.DOTALL)
_UID = re.compile(rb"UID (\d+)")
_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")
_SEARCH = re.compile(rb"^\* SEARCH(.*)\r\n$")
KEYWORDS = ["$Junk", "$Forwarded", "work", "\\Flagged", "\\Seen", "\\Deleted"]


class ModelClient:
    """A client that folds every untagged response into its model of the mailbox."""

    def __init__(self, gateway: RunningGateway, seed: int) -> None:
        self.raw = RawImapClient(gateway.host, gateway.port, timeout=30)
        self.raw.login(USER, PASSWORD)
        self.rng = random.Random(seed)
        self.uids: list[int | None] = []
        self.flags: dict[int, frozenset[str]] = {}
        self.run("SELECT INBOX")
        self.run("FETCH 1:* (UID FLAGS)" if self.uids else "NOOP")

    def run(self, command: str, *, by_sequence: bool = False) -> list[tuple[bytes, int]]:
        """Send a command, fold its responses; SEARCH results with the model size they saw."""
        result = self.raw.command(command.encode(), check=False)
        assert b" OK " in result.tagged or b"EXPUNGEISSUED" in result.tagged, (
            command,
            result.tagged,
        )
        searches = []
        for response in result.untagged:
            if by_sequence:
                # RFC 3501 §7.4.1: no EXPUNGE while answering FETCH/STORE/SEARCH by number.
                assert not _EXPUNGE.match(response), (command, response)
            self.fold(response)
            if match := _SEARCH.match(response):
                searches.append((match.group(1), len(self.uids)))
        return searches

    def fold(self, response: bytes) -> None:
        if match := _EXISTS.match(response):
            count = int(match.group(1))
            assert count >= len(self.uids), (response, len(self.uids))
            self.uids.extend([None] * (count - len(self.uids)))
        elif match := _EXPUNGE.match(response):
            number = int(match.group(1))
            assert 1 <= number <= len(self.uids), (response, len(self.uids))
            uid = self.uids.pop(number - 1)
            if uid is not None:
                self.flags.pop(uid, None)
        elif match := _FETCH.match(response):
            number = int(match.group(1))
            assert 1 <= number <= len(self.uids), (response, len(self.uids))
            uid_match = _UID.search(match.group(2))
            if uid_match:
                uid = int(uid_match.group(1))
                known = self.uids[number - 1]
                assert known in (None, uid), (response, known)
                self.uids[number - 1] = uid
            else:
                uid = self.uids[number - 1]  # type: ignore[assignment]
            flags_match = _FLAGS.search(match.group(2))
            if flags_match and uid is not None:
                names = flags_match.group(1).decode().split()
                self.flags[uid] = frozenset(n for n in names if n != "\\Recent")

    def random_step(self) -> None:
        known = [uid for uid in self.uids if uid is not None]
        choice = self.rng.random()
        if choice < 0.2 or not self.uids:
            body = crlf(f"From: s@example.org\nSubject: {self.rng.random()}\n\nbody\n")
            result = self.raw.command(b"APPEND INBOX {%d+}\r\n" % len(body) + body)
            for response in result.untagged:
                self.fold(response)
        elif choice < 0.4 and known:
            uid = self.rng.choice(known)
            sign = self.rng.choice("+-")
            flag = self.rng.choice(KEYWORDS)
            self.run(f"UID STORE {uid} {sign}FLAGS ({flag})")
        elif choice < 0.5:
            number = self.rng.randint(1, len(self.uids))
            self.run(f"STORE {number} +FLAGS ({self.rng.choice(KEYWORDS)})", by_sequence=True)
        elif choice < 0.65:
            self.run("FETCH 1:* (UID FLAGS)", by_sequence=True)
        elif choice < 0.75:
            ((found, size),) = self.run("SEARCH ALL", by_sequence=True)
            # Every message the client knows of when the answer arrives, none it does not.
            assert found == b"".join(b" %d" % n for n in range(1, size + 1)), (found, size)
        elif choice < 0.8:
            self.run("EXPUNGE")
        elif choice < 0.85 and known:
            self.run(f"UID EXPUNGE {self.rng.choice(known)}")
        else:
            self.run("NOOP")


def test_concurrent_random_sessions_agree_with_the_store(
    gateway_any_backend: RunningGateway,
) -> None:
    gateway = gateway_any_backend
    clients = [ModelClient(gateway, seed) for seed in range(4)]
    failures: list[BaseException] = []

    def work(client: ModelClient) -> None:
        try:
            for _ in range(120):
                client.random_step()
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=work, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures[0]
    inbox = gateway.store.get_mailbox(user_id=1, name="INBOX")
    truth = gateway.store.list_entries(mailbox_id=inbox.id)
    for client in clients:
        client.run("NOOP")
        client.run("FETCH 1:* (UID FLAGS)") if client.uids else None
        expected = [entry.uid for entry in truth]
        assert client.uids == expected, (
            sorted(set(expected) - set(client.uids)),  # type: ignore[arg-type]
            sorted(set(client.uids) - set(expected)),  # type: ignore[arg-type]
        )
        assert client.flags == {entry.uid: frozenset(entry.flag_names) for entry in truth}
        client.raw.close()
