"""Property test of the command layer: any sequence of commands a client sends, valid or not,
gets OK, NO or BAD (never an internal error), and the server goes on serving others.

Bounded for CI: a fixed number of examples against one server on port 0.
"""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.gateway_server import PASSWORD, USER, RunningGateway
from tests.support.imap_raw import RawImapClient

_NAME_PARTS = ["a", "b", "INBOX", "..", ".", "%", "*", "x y", "&AOk-", "Sent", "ü", "~"]
names = st.lists(st.sampled_from(_NAME_PARTS), min_size=0, max_size=4).map("/".join)
sequence_sets = st.sampled_from(["1", "1:*", "*", "2,4:7", "0", "4294967295", "1:3,*", "$"])
search_keys = st.lists(
    st.sampled_from(
        [
            "ALL", "SEEN", "NOT SEEN", "TEXT hello", "BODY x", "OR SEEN FLAGGED",
            'HEADER Subject ""', "LARGER 10", "SINCE 1-Jan-2020", "UID 1:*", "1:2",
            "NOT (TEXT a TEXT b)", "KEYWORD $x", "MODSEQ 1", "SUBJECT é",
        ]
    ),
    min_size=1,
    max_size=6,
).map(" ".join)  # fmt: skip


def quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


commands = st.one_of(
    st.builds(lambda n: f"CREATE {quoted(n)}", names),
    st.builds(lambda n: f"DELETE {quoted(n)}", names),
    st.builds(lambda a, b: f"RENAME {quoted(a)} {quoted(b)}", names, names),
    st.builds(lambda r, p: f"LIST {quoted(r)} {quoted(p)}", names, names),
    st.builds(lambda p: f"LSUB \"\" {quoted(p)}", names),
    st.builds(lambda n: f"SELECT {quoted(n)}", names),
    st.builds(lambda n: f"EXAMINE {quoted(n)}", names),
    st.builds(lambda n: f"STATUS {quoted(n)} (MESSAGES UIDNEXT UNSEEN)", names),
    st.builds(lambda n: f"SUBSCRIBE {quoted(n)}", names),
    st.builds(lambda s: f"FETCH {s} (FLAGS UID BODY.PEEK[HEADER])", sequence_sets),
    st.builds(lambda s: f"UID FETCH {s} (RFC822.SIZE ENVELOPE)", sequence_sets),
    st.builds(lambda s: f"STORE {s} +FLAGS (\\Seen $fuzz)", sequence_sets),
    st.builds(lambda s: f"COPY {s} INBOX", sequence_sets),
    st.builds(lambda k: f"SEARCH {k}", search_keys),
    st.builds(lambda k: f"UID SEARCH RETURN (MIN MAX COUNT) {k}", search_keys),
    st.sampled_from(
        [
            "NOOP", "CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "NAMESPACE", "CAPABILITY",
            "ENABLE CONDSTORE", "ID NIL", "FROB", "LIST", 'LIST "" ""', "SELECT",
            'APPEND INBOX {21+}\r\nSubject: f\r\n\r\nbody\r\n', "SEARCH", "FETCH 1",
        ]
    ),
)  # fmt: skip

_TAGGED = re.compile(rb"^t\d+ (OK|NO|BAD)\b")


def test_any_command_sequence_gets_a_clear_answer(tmp_path: Path) -> None:
    with RunningGateway(tmp_path / "data") as gateway:
        gateway.add_user()

        @settings(
            max_examples=60,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            database=None,
        )
        @given(st.lists(commands, min_size=1, max_size=12))
        def run(sequence: list[str]) -> None:
            with RawImapClient(gateway.host, gateway.port, timeout=30) as client:
                client.login(USER, PASSWORD)
                for command in sequence:
                    result = client.command(command.encode(), check=False)
                    assert _TAGGED.match(result.tagged), (command, result.tagged)
                    assert b"SERVERBUG" not in result.tagged, (command, result.tagged)
                    assert not any(b"* BYE" in line for line in result.untagged), command
            with RawImapClient(gateway.host, gateway.port, timeout=30) as other:
                other.login(USER, PASSWORD)
                assert other.command(b"NOOP").tagged.endswith(b"OK NOOP completed")

        run()
