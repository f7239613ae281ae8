"""mbsync (isync) against our IMAP server: full two-way sync of a 1,000-message mailbox.

mbsync stores Maildir files with LF line endings and an added `X-TUID:` header; the comparison
in `tests.support.maildir_sync` normalises both. mbsync 1.4 syncs system flags only (keywords
are not part of its model), so system flags are what is compared.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import maildir_sync as sync
from tests.support.gateway_server import PASSWORD, USER, RunningGateway

pytestmark = pytest.mark.system
MBSYNC = "mbsync"


def write_config(tmp_path: Path, gateway: RunningGateway, *, tls: bool) -> tuple[Path, Path]:
    """An mbsyncrc syncing every folder both ways; returns (config, Maildir root)."""
    maildir = tmp_path / "Mail"
    maildir.mkdir()
    if tls:
        # RFC 8314 implicit TLS on the IMAPS port; the self-signed certificate is trusted as is.
        security = f"Port {gateway.tls_port}\nSSLType IMAPS\nCertificateFile {gateway.cert}\n"
    else:
        # Plaintext LOGIN is allowed by the test gateway (`allow_plaintext`).
        security = f"Port {gateway.port}\nSSLType None\nAuthMechs LOGIN\n"
    config = tmp_path / "mbsyncrc"
    config.write_text(
        f"IMAPAccount gateway\n"
        f"Host 127.0.0.1\n"
        f"{security}"
        f"User {USER}\n"
        f"Pass {PASSWORD}\n"
        f"Timeout 60\n"
        f"\n"
        f"IMAPStore gateway-remote\n"
        f"Account gateway\n"
        f"\n"
        f"MaildirStore local\n"
        f"Path {maildir}/\n"
        f"Inbox {maildir}/INBOX\n"
        f"SubFolders Verbatim\n"
        f"\n"
        f"Channel gateway\n"
        f"Far :gateway-remote:\n"
        f"Near :local:\n"
        f"Patterns *\n"
        f"Create Both\n"
        f"Expunge Both\n"
        f"SyncState *\n"
    )
    return config, maildir


def run_mbsync(config: Path) -> None:
    binary = shutil.which(MBSYNC)
    assert binary, "mbsync is missing: install the Debian package isync"
    result = subprocess.run(
        [binary, "-c", str(config), "-a"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Error" not in result.stderr, result.stderr


def folder_dirs(maildir: Path, folders: list[str]) -> dict[str, Path]:
    return {folder: maildir / folder for folder in folders}


def test_mbsync_two_way_sync_of_a_thousand_messages(tmp_path: Path) -> None:
    folders = list(sync.FOLDERS)
    with RunningGateway(tmp_path / "data") as gateway:
        gateway.add_user()
        assert sync.load_mailbox(gateway) == 1000
        config, maildir = write_config(tmp_path, gateway, tls=False)

        run_mbsync(config)
        dirs = folder_dirs(maildir, folders)
        local = sync.maildir_snapshot(dirs)
        assert [len(local[folder]) for folder in folders] == [600, 250, 150]
        sync.assert_same(sync.server_snapshot(gateway, folders), local)
        # Empty special-use folders came along too.
        assert all((maildir / name / "cur").is_dir() for name in ("Sent", "Drafts", "Trash"))

        local_changes = sync.change_maildir(dirs)
        server_changes = sync.change_server(gateway, folders)
        run_mbsync(config)
        server = sync.server_snapshot(gateway, folders)
        sync.assert_same(server, sync.maildir_snapshot(dirs))
        sync.assert_changes_applied(server, local_changes)
        sync.assert_changes_applied(server, server_changes)
        total = 1000 + local_changes.net_added + server_changes.net_added
        assert sum(len(items) for items in server.values()) == total

        # A third run has nothing left to do and changes nothing.
        run_mbsync(config)
        assert sync.server_snapshot(gateway, folders) == server
        sync.assert_same(server, sync.maildir_snapshot(dirs))


def test_mbsync_over_implicit_tls(tmp_path: Path) -> None:
    folders = {"INBOX": 30, "Archive": 10}
    with RunningGateway(tmp_path / "data") as gateway:
        gateway.add_user()
        sync.load_mailbox(gateway, folders)
        config, maildir = write_config(tmp_path, gateway, tls=True)
        run_mbsync(config)
        dirs = folder_dirs(maildir, list(folders))
        sync.assert_same(sync.server_snapshot(gateway, folders), sync.maildir_snapshot(dirs))
        local_changes = sync.change_maildir(dirs)
        server_changes = sync.change_server(gateway, folders)
        run_mbsync(config)
        server = sync.server_snapshot(gateway, folders)
        sync.assert_same(server, sync.maildir_snapshot(dirs))
        sync.assert_changes_applied(server, local_changes)
        sync.assert_changes_applied(server, server_changes)
