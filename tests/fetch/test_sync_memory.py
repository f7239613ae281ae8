"""A 25 MB message streams from POP3 and from IMAP to the blob store with bounded memory.

POP3 RETR is read in 64 KiB chunks; the IMAP engine reads messages above 8 MiB in 1 MiB partial
fetches (`BODY.PEEK[]<offset.length>`). The sync runs in a fresh child process
(`tests.fetch.rss_probe`) so its peak RSS is its own.
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


@pytest.fixture(scope="module", autouse=True)
def _accounts(dovecot_module: DovecotServer) -> None:
    # Dovecot re-reads its passwd file by mtime (1 s resolution): add every account up front.
    for protocol in PROTOCOLS:
        dovecot_module.add_user(f"big{protocol}", "pw")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_25_mb_message_costs_far_less_than_its_size_in_rss(
    tmp_path: Path, dovecot_module: DovecotServer, protocol: str
) -> None:
    big = large_attachment(SIZE)
    assert b"\n" not in big.replace(b"\r\n", b""), "CRLF only: Dovecot serves it unchanged"
    account = f"big{protocol}"
    dovecot_module.load_maildir(account, "INBOX", [big])
    settings = make_settings(tmp_path / "data", max_message_size=64 * 1024 * 1024)
    store = open_store(settings)
    try:
        port = dovecot_module.pop3_port if protocol == "pop3" else dovecot_module.imap_port
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
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    growth_mb = (figures["after_kib"] - figures["before_kib"]) / 1024
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
