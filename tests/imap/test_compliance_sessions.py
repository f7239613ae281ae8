"""Regressions imaptest (Dovecot's compliance tool) found in sessions on a real server.

Each test names the defect class it guards, so CI keeps it fixed without imaptest. Runs on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

from tests.support.corpus import crlf
from tests.support.gateway_server import PASSWORD, USER, RunningGateway
from tests.support.imap_raw import CommandResult, RawImapClient

MESSAGE = crlf("From: a@example.org\nSubject: s\n\nbody\n")


def session(gateway: RunningGateway) -> RawImapClient:
    client = RawImapClient(gateway.host, gateway.port, timeout=10)
    client.login(USER, PASSWORD)
    return client


def append(client: RawImapClient, mailbox: bytes, flags: bytes = b"()") -> bytes:
    literal = b"{%d+}\r\n" % len(MESSAGE)
    return client.command(b"APPEND " + mailbox + b" " + flags + b" " + literal + MESSAGE).tagged


def test_recreated_mailbox_is_not_its_deleted_namesake(
    gateway_any_backend: RunningGateway,
) -> None:
    """SQLite reuses a deleted mailbox's id: SELECT must not serve the old one's cached view,
    and messages appended to the new one are \\Recent to the first session (RFC 3501 §2.3.2)."""
    with session(gateway_any_backend) as client:
        client.command(b"CREATE box")
        for _ in range(3):
            append(client, b"box")
        client.command(b"SELECT box")
        client.command(b"UNSELECT")
        client.command(b"DELETE box")
        client.command(b"CREATE box")
        append(client, b"box")
        selected = b"".join(client.command(b"SELECT box").untagged)
        assert b"* 1 EXISTS\r\n" in selected
        assert b"* 1 RECENT\r\n" in selected
        assert client.command(b"SEARCH RECENT").untagged == [b"* SEARCH 1\r\n"]
        with session(gateway_any_backend) as other:
            # \Recent belongs to one session only.
            assert b"* 0 RECENT\r\n" in other.command(b"SELECT box").untagged


def lines_of(result: CommandResult) -> list[bytes]:
    return [line.rstrip(b"\r\n") for line in result.untagged]


def test_new_keyword_is_announced_in_flags_before_any_fetch_shows_it(
    gateway_any_backend: RunningGateway,
) -> None:
    """RFC 3501 §7.2.6: FLAGS/PERMANENTFLAGS list a keyword before a FETCH carries it, for
    this session's STORE and for another session's."""
    with session(gateway_any_backend) as client, session(gateway_any_backend) as other:
        append(client, b"INBOX")
        append(client, b"INBOX")
        client.command(b"SELECT INBOX")
        other.command(b"SELECT INBOX")
        stored = lines_of(client.command(b"STORE 1 +FLAGS ($keyword1)"))
        assert stored[0].startswith(b"* FLAGS (") and b"$keyword1" in stored[0]
        assert stored[1].startswith(b"* OK [PERMANENTFLAGS (") and b"$keyword1 \\*)]" in stored[1]
        assert stored[2] == b"* 1 FETCH (FLAGS (\\Recent $keyword1))"
        # A silent STORE still tells of the keyword, and says it only once.
        assert lines_of(client.command(b"STORE 2 +FLAGS.SILENT ($keyword2)"))[0].startswith(
            b"* FLAGS ("
        )
        assert lines_of(client.command(b"STORE 2 +FLAGS ($keyword2)")) == [
            b"* 2 FETCH (FLAGS (\\Recent $keyword2))"
        ]
        seen = lines_of(other.command(b"NOOP"))
        flags_at = next(i for i, line in enumerate(seen) if line.startswith(b"* FLAGS ("))
        fetch_at = next(i for i, line in enumerate(seen) if b"FETCH" in line)
        assert flags_at < fetch_at, seen
        assert b"$keyword1 $keyword2" in seen[flags_at]


def test_condstore_enabled_by_fetch_modseq_reports_modseq_everywhere(
    gateway_any_backend: RunningGateway,
) -> None:
    """RFC 7162 §3.1: FETCH MODSEQ enables CONDSTORE; the session then gets HIGHESTMODSEQ
    at once and MODSEQ in every FETCH its STORE causes (§3.1.4)."""
    with session(gateway_any_backend) as client:
        for _ in range(3):
            append(client, b"INBOX")
        client.command(b"SELECT INBOX")
        enabled = lines_of(client.command(b"FETCH 1 MODSEQ"))
        assert any(line.startswith(b"* OK [HIGHESTMODSEQ ") for line in enabled), enabled
        stored = lines_of(client.command(b"STORE 1 +FLAGS (\\Seen)"))
        assert len(stored) == 1 and b" MODSEQ (" in stored[0], stored
        client.command(b"STORE 3 +FLAGS (\\Seen)")
        modseqs = {
            int(line.split(b"MODSEQ (")[1].split(b")")[0]): int(line.split()[1])
            for line in lines_of(client.command(b"FETCH 1:3 MODSEQ"))
        }
        by_number = {number: modseq for modseq, number in modseqs.items()}
        search = b'SEARCH RETURN (%s) 1:3 MODSEQ "/flags/\\\\seen" all 1'
        # RFC 7162 §3.1.5: the MODSEQ of the messages the ESEARCH reports.
        assert lines_of(client.command(search % b"MIN")) == [
            b'* ESEARCH (TAG "t%d") MIN 1 MODSEQ %d' % (client._tag, by_number[1])
        ]
        assert lines_of(client.command(search % b"MAX")) == [
            b'* ESEARCH (TAG "t%d") MAX 3 MODSEQ %d' % (client._tag, by_number[3])
        ]
        assert lines_of(client.command(search % b"ALL")) == [
            b'* ESEARCH (TAG "t%d") ALL 1:3 MODSEQ %d' % (client._tag, max(by_number.values()))
        ]


def test_move_into_the_selected_mailbox(gateway_any_backend: RunningGateway) -> None:
    """RFC 6851 forbids nothing here and Dovecot moves: the message gets a new UID at the
    end, announced as EXPUNGE then EXISTS with the new count."""
    with session(gateway_any_backend) as client:
        append(client, b"INBOX")
        append(client, b"INBOX")
        client.command(b"SELECT INBOX")
        moved = client.command(b"MOVE 1 INBOX")
        assert moved.tagged.startswith(b"t%d OK" % client._tag)
        lines = lines_of(moved)
        assert lines[0].startswith(b"* OK [COPYUID ") and lines[0].split()[4:6] == [b"1", b"3]"]
        assert lines[1:] == [b"* 1 EXPUNGE", b"* 2 EXISTS", b"* 2 RECENT"]
        assert lines_of(client.command(b"FETCH 1:* UID")) == [
            b"* 1 FETCH (UID 2)",
            b"* 2 FETCH (UID 3)",
        ]


def test_examine_and_status_leave_recent_to_the_selecting_session(
    gateway_any_backend: RunningGateway,
) -> None:
    """RFC 3501 §6.3.2: EXAMINE must not take \\Recent away; STATUS counts it likewise."""
    with session(gateway_any_backend) as client:
        client.command(b"CREATE box")
        append(client, b"box")
        append(client, b"box")
        for _ in range(2):
            assert b"* 2 RECENT\r\n" in client.command(b"EXAMINE box").untagged
        client.command(b"CLOSE")
        assert client.command(b"STATUS box (MESSAGES RECENT)").untagged == [
            b'* STATUS "box" (MESSAGES 2 RECENT 2)\r\n'
        ]
        assert b"* 2 RECENT\r\n" in client.command(b"SELECT box").untagged
        client.command(b"CLOSE")
        assert client.command(b"STATUS box (RECENT)").untagged == [b'* STATUS "box" (RECENT 0)\r\n']


def test_other_sessions_changes_show_at_the_next_command(
    gateway_any_backend: RunningGateway,
) -> None:
    """RFC 3501 §5.2, §7.4.1: another session's APPEND is announced before the response to
    `FETCH 1,* UID` (so `*` is the new message), its EXPUNGE at the next EXPUNGE."""
    with session(gateway_any_backend) as client, session(gateway_any_backend) as other:
        for _ in range(2):
            append(client, b"INBOX")
        client.command(b"SELECT INBOX")
        other.command(b"SELECT INBOX")
        append(other, b"INBOX")
        fetched = lines_of(client.command(b"FETCH 1,* UID"))
        assert b"* 3 EXISTS" in fetched
        assert fetched[-2:] == [b"* 1 FETCH (UID 1)", b"* 3 FETCH (UID 3)"]
        assert lines_of(client.command(b"UID FETCH 3:* UID")) == [b"* 3 FETCH (UID 3)"]
        other.command(b"STORE 2 +FLAGS.SILENT (\\Deleted)")
        other.command(b"EXPUNGE")
        assert b"* 2 EXPUNGE" in lines_of(client.command(b"EXPUNGE"))
        assert lines_of(client.command(b"UID FETCH 1:* UID")) == [
            b"* 1 FETCH (UID 1)",
            b"* 2 FETCH (UID 3)",
        ]


def test_name_that_is_not_modified_utf7_is_refused_with_no(gateway: RunningGateway) -> None:
    """A well-formed atom that no mailbox can have: SELECT answers NO (not BAD) and LIST
    with it as pattern answers OK with nothing; the session goes on (imaptest `atoms`)."""
    atom = b"!#$&'+,-.0123456789:;<=>?@^_`|[}"
    with session(gateway) as client:
        assert b" NO " in client.command(b"SELECT " + atom, check=False).tagged
        assert client.command(b'LIST "" ' + atom + b"%*").untagged == []
        assert client.command(b"NOOP").tagged.endswith(b"OK NOOP completed")


def listed(client: RawImapClient, command: bytes) -> list[bytes]:
    return sorted(lines_of(client.command(command)))


def test_subscriptions_outlive_mailboxes_and_list_extended_follows_rfc_5258(
    gateway_any_backend: RunningGateway,
) -> None:
    """imaptest `listext` and `subscribe`: CREATE does not subscribe; a deleted mailbox
    stays subscribed as \\NonExistent; RECURSIVEMATCH gives CHILDINFO only to a parent whose
    subscribed descendant the pattern does not reach; LSUB `%` shows such a parent \\Noselect."""
    with session(gateway_any_backend) as client:
        for name in (b"t/a", b"t/p/c", b"t/gone", b"t/q/q", b"t/r/r", b"t/r/s"):
            client.command(b"CREATE " + name)
        for name in (b"t/a", b"t/p/c", b"t/gone", b"t/q/q", b"t/r/r", b"t/r/s"):
            client.command(b"SUBSCRIBE " + name)
        client.command(b"DELETE t/gone")
        assert listed(client, b'LIST (SUBSCRIBED) "" t/*') == [
            b'* LIST (\\HasNoChildren \\Subscribed) "/" "t/a"',
            b'* LIST (\\HasNoChildren \\Subscribed) "/" "t/p/c"',
            b'* LIST (\\HasNoChildren \\Subscribed) "/" "t/q/q"',
            b'* LIST (\\HasNoChildren \\Subscribed) "/" "t/r/r"',
            b'* LIST (\\HasNoChildren \\Subscribed) "/" "t/r/s"',
            b'* LIST (\\NonExistent \\Subscribed) "/" "t/gone"',
        ]
        assert listed(client, b'LIST (SUBSCRIBED RECURSIVEMATCH) "" t/p% RETURN (CHILDREN)') == [
            b'* LIST (\\HasChildren) "/" "t/p" ("CHILDINFO" ("SUBSCRIBED"))'
        ]
        assert listed(client, b'LIST (SUBSCRIBED RECURSIVEMATCH) "" t*q') == [
            b'* LIST (\\HasNoChildren \\Subscribed) "/" "t/q/q"'
        ]
        assert listed(client, b'LIST (SUBSCRIBED RECURSIVEMATCH) "" t*r') == [
            b'* LIST (\\HasChildren) "/" "t/r" ("CHILDINFO" ("SUBSCRIBED"))',
            b'* LIST (\\HasNoChildren \\Subscribed) "/" "t/r/r"',
        ]
        assert listed(client, b'LIST "" t/% RETURN (CHILDREN SUBSCRIBED)') == [
            b'* LIST (\\HasChildren) "/" "t/p"',
            b'* LIST (\\HasChildren) "/" "t/q"',
            b'* LIST (\\HasChildren) "/" "t/r"',
            b'* LIST (\\HasNoChildren \\Subscribed) "/" "t/a"',
        ]
        assert listed(client, b'LSUB "" t/%') == [
            b'* LSUB () "/" "t/a"',
            b'* LSUB () "/" "t/gone"',
            b'* LSUB (\\Noselect) "/" "t/p"',
            b'* LSUB (\\Noselect) "/" "t/q"',
            b'* LSUB (\\Noselect) "/" "t/r"',
        ]
        client.command(b"UNSUBSCRIBE t/gone")
        assert b"t/gone" not in b"".join(client.command(b'LSUB "" *').untagged)


def test_store_on_a_message_another_session_expunged_succeeds(
    gateway_any_backend: RunningGateway,
) -> None:
    """imaptest stress mode: STORE touching a message another session just expunged answers
    OK, as Dovecot does (RFC 2180 §4.2.1 allows OK or NO); the EXPUNGE comes at NOOP."""
    with session(gateway_any_backend) as client, session(gateway_any_backend) as other:
        for _ in range(3):
            append(client, b"INBOX")
        client.command(b"SELECT INBOX")
        other.command(b"SELECT INBOX")
        other.command(b"STORE 2 +FLAGS.SILENT (\\Deleted)")
        other.command(b"EXPUNGE")
        stored = client.command(b"STORE 1:3 +FLAGS (\\Seen)")
        assert stored.tagged.endswith(b"OK Store completed")
        assert not any(line.startswith(b"* 2 FETCH") for line in lines_of(stored))
        assert b"* 2 EXPUNGE" in lines_of(client.command(b"NOOP"))


def test_sequence_set_edges_and_search_by_size_and_header(gateway: RunningGateway) -> None:
    """imaptest `fetch`, `search-size`, `search-header`: reversed ranges, `*`, a UID range
    starting past the end (RFC 3501 §6.4.8: `n:*` still names the last message), SIZE and
    HEADER keys, on a mailbox that replaced a deleted one of the same name."""
    with session(gateway) as client:
        client.command(b"CREATE box")
        append(client, b"box")
        client.command(b"DELETE box")
        client.command(b"CREATE box")
        bodies = [
            crlf("Subject: s1\n\nshort\n"),
            crlf("X-Extra: yes\n\n" + "long body\n" * 20),
            crlf("Subject: s3\n\nmid body text\n"),
        ]
        for body in bodies:
            client.command(b"APPEND box {%d+}\r\n" % len(body) + body)
        client.command(b"SELECT box")
        expected = [b"* 1 FETCH (UID 1)", b"* 2 FETCH (UID 2)", b"* 3 FETCH (UID 3)"]
        assert lines_of(client.command(b"FETCH 3:1 UID")) == expected
        assert lines_of(client.command(b"FETCH *:1 UID")) == expected
        assert lines_of(client.command(b"FETCH 1,* UID")) == [expected[0], expected[2]]
        assert lines_of(client.command(b"UID FETCH 4:* UID")) == [expected[2]]
        size = len(bodies[0])
        assert lines_of(client.command(b"SEARCH SMALLER %d" % (size + 1))) == [b"* SEARCH 1"]
        assert lines_of(client.command(b"SEARCH LARGER %d" % size)) == [b"* SEARCH 2 3"]
        assert lines_of(client.command(b'SEARCH NOT HEADER SUBJECT ""')) == [b"* SEARCH 2"]
        assert lines_of(client.command(b'SEARCH NOT HEADER X-EXTRA ""')) == [b"* SEARCH 1 3"]
