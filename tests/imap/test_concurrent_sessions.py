"""Sessions on one mailbox see each other's changes, only where RFC 3501 §7.4.1 allows.

Two raw clients select INBOX and change it in turn while an IDLE client listens; each client
keeps its own sequence-number → UID map, updated only from the untagged responses it receives,
and that map must always equal the server's truth. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import random
import re
import socket
import time

from tests.support.corpus import crlf
from tests.support.gateway_server import PASSWORD, USER, RunningGateway
from tests.support.imap_raw import CommandResult, RawImapClient

MESSAGE = crlf("From: a@example.org\nSubject: hello {n}\n\nbody {n}\n")
_UNTAGGED = re.compile(rb"^\* (\d+) (EXISTS|EXPUNGE|RECENT|FETCH)\b(.*)", re.DOTALL)
_UID = re.compile(rb"\bUID (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")


def message(number: int) -> bytes:
    return MESSAGE.replace(b"{n}", str(number).encode())


class TrackedSession:
    """A raw client that mirrors the mailbox from the responses it receives, as a client must."""

    def __init__(self, gateway: RunningGateway, name: str) -> None:
        self.name = name
        self.client = RawImapClient(gateway.host, gateway.port, timeout=10)
        self.client.login(USER, PASSWORD)
        self.uids: list[int | None] = []
        self.flags: dict[int, set[bytes]] = {}

    def select(self) -> None:
        result = self.client.command(b"SELECT INBOX")
        exists = next(
            int(m.group(1))
            for line in result.untagged
            if (m := _UNTAGGED.match(line)) and m.group(2) == b"EXISTS"
        )
        self.uids = [None] * exists
        self.learn_uids()

    def learn_uids(self) -> None:
        """Fill in UIDs of messages announced by EXISTS (UID FETCH may carry more updates)."""
        self.run(b"UID FETCH 1:* (UID FLAGS)")

    def run(
        self, command: bytes, *, by_sequence: bool = False, check: bool = True
    ) -> CommandResult:
        result = self.client.command(command, check=check)
        self.apply(result.untagged, by_sequence=by_sequence, context=command)
        return result

    def apply(self, lines: list[bytes], *, by_sequence: bool = False, context: bytes = b"") -> None:
        for line in lines:
            match = _UNTAGGED.match(line)
            if match is None:
                continue
            number, kind, rest = int(match.group(1)), match.group(2), match.group(3)
            if kind == b"EXPUNGE":
                # RFC 3501 §7.4.1: never during FETCH, STORE or SEARCH by sequence number.
                assert not by_sequence, (self.name, context, lines)
                uid = self.uids.pop(number - 1)
                self.flags.pop(uid or 0, None)
            elif kind == b"EXISTS":
                assert number >= len(self.uids), (self.name, line, len(self.uids))
                self.uids.extend([None] * (number - len(self.uids)))
            elif kind == b"FETCH":
                assert 1 <= number <= len(self.uids), (self.name, line, len(self.uids))
                uid_match = _UID.search(rest)
                if uid_match:
                    uid = int(uid_match.group(1))
                    known = self.uids[number - 1]
                    assert known in (None, uid), (self.name, line, known)
                    self.uids[number - 1] = uid
                flags_match = _FLAGS.search(rest)
                uid_here = self.uids[number - 1]
                if flags_match and uid_here is not None:
                    names = set(flags_match.group(1).split()) - {b"\\Recent"}
                    self.flags[uid_here] = names

    def close(self) -> None:
        self.client.close()


def truth(gateway: RunningGateway) -> tuple[list[int], dict[int, set[bytes]]]:
    """What the store holds for INBOX right now."""
    user = gateway.store.get_user(name=USER)
    inbox = gateway.store.get_mailbox(user_id=user.id, name="INBOX")
    entries = gateway.store.list_entries(mailbox_id=inbox.id)
    flags = {entry.uid: {name.encode() for name in entry.flag_names} for entry in entries}
    return [entry.uid for entry in entries], flags


class IdleListener:
    """A raw socket in IDLE collecting every untagged line it hears."""

    def __init__(self, gateway: RunningGateway) -> None:
        self.sock = socket.create_connection((gateway.host, gateway.port), timeout=10)
        self.buffer = b""
        self.read_line()
        self.send(f"a LOGIN {USER} {PASSWORD}\r\nb SELECT INBOX\r\nc IDLE\r\n".encode())
        while not self.read_line().startswith(b"+ "):
            pass
        self.heard: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_line(self, timeout: float = 10.0) -> bytes:
        self.sock.settimeout(timeout)
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            assert chunk, "IDLE connection closed"
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line + b"\r\n"

    def wait_for(self, pattern: bytes, timeout: float = 5.0) -> list[bytes]:
        """Read until a line matching `pattern` arrives; returns everything heard meanwhile."""
        deadline = time.monotonic() + timeout
        heard = []
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, (pattern, heard)
            line = self.read_line(remaining)
            heard.append(line)
            self.heard.append(line)
            if re.search(pattern, line):
                return heard

    def done(self) -> None:
        self.send(b"DONE\r\n")
        while not (line := self.read_line()).startswith(b"c "):
            self.heard.append(line)
        assert line.startswith(b"c OK"), line
        self.sock.close()


def idle_count_matches(idle: IdleListener, count: int, uids: list[int]) -> bool:
    for line in idle.heard:
        match = _UNTAGGED.match(line)
        if match and match.group(2) == b"EXISTS":
            assert int(match.group(1)) >= count, line
            count = int(match.group(1))
        elif match and match.group(2) == b"EXPUNGE":
            assert int(match.group(1)) <= count, line
            count -= 1
    return count == len(uids)


def test_sessions_see_each_others_store_expunge_and_append(
    gateway_any_backend: RunningGateway,
) -> None:
    gateway = gateway_any_backend
    first = TrackedSession(gateway, "first")
    second = TrackedSession(gateway, "second")
    for number in range(6):
        first.client.command(b"APPEND INBOX {%d+}\r\n" % len(message(number)) + message(number))
    first.select()
    second.select()
    idle = IdleListener(gateway)
    assert first.uids == second.uids == [1, 2, 3, 4, 5, 6]

    # STORE in one session: FETCH FLAGS in the other at its next command, and in IDLE at once.
    second.run(b"STORE 2 +FLAGS (\\Flagged $Todo)", by_sequence=True)
    idle.wait_for(rb"^\* 2 FETCH .*\\Flagged")
    first.run(b"NOOP")
    assert first.flags[2] == {b"\\Flagged", b"$Todo"}

    # EXPUNGE in one session: the other hears nothing during FETCH/STORE/SEARCH by number…
    second.run(b"STORE 3 +FLAGS.SILENT (\\Deleted)", by_sequence=True)
    second.run(b"EXPUNGE")
    assert second.uids == [1, 2, 4, 5, 6]
    idle.wait_for(rb"^\* 3 EXPUNGE")
    fetched = first.run(b"FETCH 1:6 (FLAGS)", by_sequence=True, check=False)
    # RFC 2180 §4.1.2: the expunged message may be left out, with NO [EXPUNGEISSUED] or OK.
    assert b" OK " in fetched.tagged or b"EXPUNGEISSUED" in fetched.tagged, fetched.tagged
    assert len(first.uids) == 6
    stored = first.run(b"STORE 1:6 +FLAGS (\\Answered)", by_sequence=True, check=False)
    assert b" OK " in stored.tagged or b"EXPUNGEISSUED" in stored.tagged, stored.tagged
    searched = first.run(b"SEARCH ALL", by_sequence=True)
    # The expunged message keeps its number until announced and may still match on its flags.
    assert searched.untagged[0].startswith(b"* SEARCH 1 2"), searched
    # …and is told at the next command that allows it.
    first.run(b"NOOP")
    assert first.uids == [1, 2, 4, 5, 6]
    idle.wait_for(rb"^\* 5 FETCH .*\\Answered")

    # APPEND from a third connection: EXISTS everywhere, even during a FETCH by number.
    third = RawImapClient(gateway.host, gateway.port, timeout=10)
    third.login(USER, PASSWORD)
    third.command(b"APPEND INBOX (\\Seen) {%d+}\r\n" % len(message(9)) + message(9))
    idle.wait_for(rb"^\* 6 EXISTS")
    first.run(b"FETCH 1 (FLAGS)", by_sequence=True)
    second.run(b"FETCH 1 (FLAGS)", by_sequence=True)
    assert len(first.uids) == len(second.uids) == 6
    first.learn_uids()
    second.learn_uids()
    # UID commands may carry EXPUNGE (RFC 3501 §7.4.1 restricts only sequence-number commands).
    third.command(b"SELECT INBOX")
    third.command(b"UID STORE 1 +FLAGS.SILENT (\\Deleted)")
    third.command(b"UID EXPUNGE 1")
    idle.wait_for(rb"^\* 1 EXPUNGE")
    first.run(b"UID FETCH 1:* (FLAGS)")
    assert first.uids == [2, 4, 5, 6, 7]
    third.close()
    idle.done()

    second.run(b"NOOP")
    uids, flags = truth(gateway)
    for session in (first, second):
        assert session.uids == uids, session.name
        for uid in uids:
            assert session.flags.get(uid, set()) == flags[uid], (session.name, uid)
    first.close()
    second.close()


def test_random_interleaving_keeps_every_view_consistent(
    gateway_any_backend: RunningGateway,
) -> None:
    """Random STORE/EXPUNGE/APPEND/MOVE in two sessions; each view always matches the truth."""
    gateway = gateway_any_backend
    sessions = [TrackedSession(gateway, "A"), TrackedSession(gateway, "B")]
    for number in range(10):
        sessions[0].client.command(
            b"APPEND INBOX {%d+}\r\n" % len(message(number)) + message(number)
        )
    for session in sessions:
        session.select()
    idle = IdleListener(gateway)
    rng = random.Random(7)
    flag_names = [b"\\Seen", b"\\Flagged", b"\\Answered", b"$Label1", b"$Junk"]
    for step in range(60):
        actor = sessions[step % 2]
        count = len(actor.uids)
        action = rng.random()
        if action < 0.35 and count:
            low = rng.randint(1, count)
            high = rng.randint(low, count)
            sign = rng.choice([b"+", b"-"])
            flag = rng.choice(flag_names)
            actor.run(
                b"STORE %d:%d %sFLAGS (%s)" % (low, high, sign, flag), by_sequence=True, check=False
            )
        elif action < 0.5 and count:
            actor.run(b"FETCH 1:* (FLAGS)", by_sequence=True, check=False)
        elif action < 0.6 and count:
            actor.run(b"SEARCH FLAGGED", by_sequence=True)
        elif action < 0.75 and count:
            victim = rng.randint(1, count)
            actor.run(b"STORE %d +FLAGS.SILENT (\\Deleted)" % victim, by_sequence=True, check=False)
            actor.run(b"EXPUNGE")
        elif action < 0.85 and count:
            actor.run(b"MOVE %d Archive" % rng.randint(1, count), check=False)
        else:
            content = message(100 + step)
            actor.run(b"APPEND INBOX {%d+}\r\n" % len(content) + content)
            actor.learn_uids()
    for session in sessions:
        session.run(b"NOOP")
        session.learn_uids()
    uids, flags = truth(gateway)
    for session in sessions:
        assert session.uids == uids, session.name
        assert {uid: session.flags.get(uid, set()) for uid in uids} == flags, session.name
    # The IDLE listener's count, moved only by the EXISTS and EXPUNGE it heard, ends right.
    idle.wait_for(rb"^\* %d EXISTS" % len(uids)) if not idle_count_matches(idle, 10, uids) else None
    idle.done()
    assert idle_count_matches(idle, 10, uids), idle.heard
    for session in sessions:
        session.close()
