"""offlineimap against our IMAP server: the same two-way scenario as the mbsync test.

offlineimap keeps its state in a `metadata` directory and names Maildir files `…,U=<uid>,FMD5=…`;
content and flags are compared with `tests.support.maildir_sync`.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Iterable
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from tests.support import maildir_sync as sync
from tests.support.gateway_server import PASSWORD, USER, RunningGateway

pytestmark = pytest.mark.system
OFFLINEIMAP = "offlineimap"


# offlineimap 8 passes every message through Python's email package (parse, then generate with
# this policy), which re-serialises some of them: a missing closing boundary is added, for one.
_OFFLINEIMAP_POLICY = policy.default.clone(
    cte_type="8bit", utf8=True, refold_source="none", linesep="\r\n"
)


@functools.cache  # the same stored bytes are rendered for every snapshot: do it once
def as_offlineimap_writes(content: bytes) -> bytes:
    """Stored content as offlineimap renders it after its email-package round trip."""
    try:
        return BytesParser(policy=_OFFLINEIMAP_POLICY).parsebytes(content).as_bytes()
    except Exception:  # offlineimap keeps the raw bytes when this fails
        return content


def server_snapshot(gateway: RunningGateway, folders: Iterable[str]) -> sync.Snapshot:
    return sync.server_snapshot(gateway, folders, as_offlineimap_writes)


def write_config(tmp_path: Path, gateway: RunningGateway, *, tls: bool) -> tuple[Path, Path]:
    """An offlineimaprc syncing every folder both ways; returns (config, Maildir root)."""
    maildir = tmp_path / "Mail"
    maildir.mkdir()
    if tls:
        # imaplib2 matches the certificate by DNS name only, not by IP address SAN.
        security = (
            f"remotehost = localhost\n"
            f"remoteport = {gateway.tls_port}\n"
            f"ssl = yes\n"
            f"sslcacertfile = {gateway.cert}\n"
            f"starttls = no\n"
        )
    else:
        # Plaintext LOGIN is allowed by the test gateway (`allow_plaintext`).
        security = f"remotehost = 127.0.0.1\nremoteport = {gateway.port}\nssl = no\nstarttls = no\n"
    config = tmp_path / "offlineimaprc"
    config.write_text(
        f"[general]\n"
        f"accounts = gateway\n"
        f"metadata = {tmp_path / 'offlineimap-state'}\n"
        # A throw-away Maildir in tmp: durability is not what this test is about.
        f"fsync = false\n"
        f"\n"
        f"[Account gateway]\n"
        f"localrepository = local\n"
        f"remoterepository = remote\n"
        f"\n"
        f"[Repository local]\n"
        f"type = Maildir\n"
        f"localfolders = {maildir}\n"
        f"sep = /\n"
        f"\n"
        f"[Repository remote]\n"
        f"type = IMAP\n"
        f"{security}"
        f"remoteuser = {USER}\n"
        f"remotepass = {PASSWORD}\n"
        f"auth_mechanisms = LOGIN\n"
        f"maxconnections = 2\n"
        f"holdconnectionopen = no\n"
    )
    return config, maildir


def run_offlineimap(config: Path) -> None:
    binary = shutil.which(OFFLINEIMAP)
    assert binary, "offlineimap is missing: install the Debian package offlineimap"
    result = subprocess.run(
        [binary, "-c", str(config), "-o", "-u", "basic"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "ERROR" not in output, output


def folder_dirs(maildir: Path, folders: list[str]) -> dict[str, Path]:
    return {folder: maildir / folder for folder in folders}


def test_offlineimap_two_way_sync_of_a_thousand_messages(tmp_path: Path) -> None:
    folders = list(sync.FOLDERS)
    with RunningGateway(tmp_path / "data") as gateway:
        gateway.add_user()
        assert sync.load_mailbox(gateway) == 1000
        config, maildir = write_config(tmp_path, gateway, tls=False)

        run_offlineimap(config)
        dirs = folder_dirs(maildir, folders)
        local = sync.maildir_snapshot(dirs)
        assert [len(local[folder]) for folder in folders] == [600, 250, 150]
        sync.assert_same(server_snapshot(gateway, folders), local)

        local_changes = sync.change_maildir(dirs)
        server_changes = sync.change_server(gateway, folders, as_offlineimap_writes)
        run_offlineimap(config)
        server = server_snapshot(gateway, folders)
        sync.assert_same(server, sync.maildir_snapshot(dirs))
        sync.assert_changes_applied(server, local_changes)
        sync.assert_changes_applied(server, server_changes)
        total = 1000 + local_changes.net_added + server_changes.net_added
        assert sum(len(items) for items in server.values()) == total


def test_offlineimap_over_implicit_tls(tmp_path: Path) -> None:
    folders = {"INBOX": 30, "Archive": 10}
    with RunningGateway(tmp_path / "data") as gateway:
        gateway.add_user()
        sync.load_mailbox(gateway, folders)
        config, maildir = write_config(tmp_path, gateway, tls=True)
        run_offlineimap(config)
        dirs = folder_dirs(maildir, list(folders))
        sync.assert_same(server_snapshot(gateway, folders), sync.maildir_snapshot(dirs))
        local_changes = sync.change_maildir(dirs)
        server_changes = sync.change_server(gateway, folders, as_offlineimap_writes)
        run_offlineimap(config)
        server = server_snapshot(gateway, folders)
        sync.assert_same(server, sync.maildir_snapshot(dirs))
        sync.assert_changes_applied(server, local_changes)
        sync.assert_changes_applied(server, server_changes)
