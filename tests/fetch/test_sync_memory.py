"""Large messages sync from POP3 and from IMAP with bounded memory.

A 25 MB message streams to the blob store: POP3 RETR is read in 64 KiB chunks, the IMAP engine
reads messages above 8 MiB in 1 MiB partial fetches (`BODY.PEEK[]<offset.length>`). Smaller
large messages travel whole in batches, which close before they would pass their byte limit.
Each sync runs in a fresh child process (`tests.fetch.rss_probe`) so its peak RSS is its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.store import open_store
from tests.fetch.helpers import add_pop3_source, inbox_contents
from tests.support.corpus import large_attachment
from tests.support.dovecot import DovecotServer
from tests.support.fixtures_store import make_settings

pytestmark = pytest.mark.system
SIZE = 25 * 1024 * 1024
PROTOCOLS = ("pop3", "imap")
BATCHED_COUNT = 20
BATCHED_SIZE = 6 * 1024 * 1024  # below the streaming line: fetched whole, in batches


@pytest.fixture(scope="module", autouse=True)
def _accounts(dovecot_module: DovecotServer) -> None:
    # Dovecot re-reads its passwd file by mtime (1 s resolution): add every account up front.
    for protocol in PROTOCOLS:
        dovecot_module.add_user(f"big{protocol}", "pw")
        dovecot_module.add_user(f"many{protocol}", "pw")


def _sync_in_probe(tmp_path: Path, dovecot: DovecotServer, account: str, protocol: str) -> dict:
    """Sync `account` into a fresh store from a child process; its RSS figures."""
    settings = make_settings(tmp_path / "data", max_message_size=64 * 1024 * 1024)
    store = open_store(settings)
    try:
        port = dovecot.pop3_port if protocol == "pop3" else dovecot.imap_port
        add_pop3_source(store, port=port, username=account, password="pw", protocol=protocol)
    finally:
        store.close()
    env = dict(os.environ)
    env.update(
        GATEWAY_DATA_DIR=str(settings.data_dir),
        GATEWAY_SECRET_KEY=settings.secret_key or "",
        GATEWAY_MAX_MESSAGE_SIZE=str(64 * 1024 * 1024),
    )
    result = subprocess.run(
        [sys.executable, "-m", "tests.fetch.rss_probe"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr
    figures: dict = json.loads(result.stdout.strip().splitlines()[-1])
    figures["growth_mb"] = (figures["after_kib"] - figures["before_kib"]) / 1024
    figures["settings"] = settings
    return figures


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_25_mb_message_costs_far_less_than_its_size_in_rss(
    tmp_path: Path, dovecot_module: DovecotServer, protocol: str
) -> None:
    big = large_attachment(SIZE)
    assert b"\n" not in big.replace(b"\r\n", b""), "CRLF only: Dovecot serves it unchanged"
    account = f"big{protocol}"
    dovecot_module.load_maildir(account, "INBOX", [big])
    figures = _sync_in_probe(tmp_path, dovecot_module, account, protocol)
    settings = figures.pop("settings")
    growth_mb = figures["growth_mb"]
    print(f"\n25 MB {protocol} message: peak RSS growth {growth_mb:.1f} MB ({figures})")
    assert figures["bytes"] == len(big)
    # Holding the message once would cost 25 MB, a parsed copy 50 MB.
    assert growth_mb < 16, "peak RSS grew by a large fraction of the message size"
    store = open_store(settings)
    try:
        [(content, keywords)] = inbox_contents(store)
        assert content == big, "the chunks were put together byte for byte"
        assert keywords == {"$Src-isp"}
    finally:
        store.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_batched_large_messages_keep_rss_far_below_the_mailbox(
    tmp_path: Path, dovecot_module: DovecotServer, protocol: str
) -> None:
    messages = [
        large_attachment(BATCHED_SIZE, seed=i).replace(b"<large@", f"<large-{i}@".encode())
        for i in range(BATCHED_COUNT)
    ]
    account = f"many{protocol}"
    dovecot_module.load_maildir(account, "INBOX", messages)
    figures = _sync_in_probe(tmp_path, dovecot_module, account, protocol)
    settings = figures.pop("settings")
    total_mb = sum(map(len, messages)) / 1024 / 1024
    growth_mb = figures["growth_mb"]
    print(f"\n{BATCHED_COUNT} x 6 MiB over {protocol}: peak RSS growth {growth_mb:.1f} MB")
    assert figures["bytes"] == sum(map(len, messages))
    # A few batches are alive at once (downloaded ahead, analysed, committed), each closed
    # before it would pass its byte limit: nowhere near the whole mailbox.
    assert growth_mb < total_mb * 0.75, figures
    store = open_store(settings)
    try:
        assert sorted(content for content, _ in inbox_contents(store)) == sorted(messages)
    finally:
        store.close()
