"""Progress bars on long commands: reported per message/source, drawn only on a terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet

from gateway.backup import export_maildir, export_mbox, import_path
from gateway.settings import Settings
from gateway.store import MailStore, open_store
from gateway.sync_pass import run_sync_pass

GATEWAY = str(Path(sys.executable).with_name("gateway"))


@dataclass
class RecordingProgress:
    totals: list[int | None] = field(default_factory=list)
    advanced: int = 0
    labels: list[str] = field(default_factory=list)

    def set_total(self, total: int | None) -> None:
        self.totals.append(total)

    def advance(self, count: int = 1, *, label: str | None = None) -> None:
        self.advanced += count
        if label:
            self.labels.append(label)


def _fill(store: MailStore, user_id: int, count: int) -> None:
    inbox = store.get_mailbox(user_id=user_id, name="INBOX").id
    for n in range(count):
        store.append_message(mailbox_id=inbox, content=f"Subject: {n}\r\n\r\nx\r\n".encode())


def test_export_import_and_sync_report_their_progress(sqlite_store: MailStore, tmp_path: Path):
    user = sqlite_store.create_user(name="pat", password="pw")
    _fill(sqlite_store, user.id, 7)
    for exporter in (export_maildir, export_mbox):
        progress = RecordingProgress()
        target = tmp_path / exporter.__name__
        assert exporter(sqlite_store, user_id=user.id, directory=target, progress=progress) == 7
        assert progress.totals == [7] and progress.advanced == 7
    other = sqlite_store.create_user(name="quinn", password="pw")
    progress = RecordingProgress()
    imported = import_path(
        sqlite_store, user_id=other.id, path=tmp_path / "export_maildir", progress=progress
    )
    assert imported == 7 and progress.advanced == 7 and set(progress.labels) == {"INBOX"}
    progress = RecordingProgress()
    sqlite_store.add_source(
        user_id=user.id, name="nowhere", protocol="pop3", host="127.0.0.1", port=1,
        security="tls", username="u", secret="s",
    )  # fmt: skip
    assert run_sync_pass(sqlite_store, user_name="pat", source_name=None, progress=progress) == 1
    assert progress.totals == [1] and progress.labels == ["nowhere"]


def test_progress_bar_only_on_a_terminal(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        GATEWAY_DATA_DIR=str(tmp_path / "data"), GATEWAY_SECRET_KEY=Fernet.generate_key().decode()
    )
    settings = Settings(
        data_dir=tmp_path / "data", secret_key=env["GATEWAY_SECRET_KEY"], _env_file=None
    )
    store = open_store(settings)
    try:
        _fill(store, store.create_user(name="pat", password="pw").id, 3)
    finally:
        store.close()
    command = [GATEWAY, "export", "--user", "pat", str(tmp_path / "out")]
    piped = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0 and "━" not in piped.stderr
    leader, follower = os.openpty()
    with os.fdopen(leader, "rb", buffering=0) as terminal:
        process = subprocess.Popen(
            [*command[:-1], str(tmp_path / "out2")], env=env, stdout=subprocess.PIPE,
            stderr=follower,
        )  # fmt: skip
        os.close(follower)
        drawn = b""
        while True:
            try:
                chunk = terminal.read(4096)
            except OSError:  # EIO: the command closed the terminal
                break
            if not chunk:
                break
            drawn += chunk
        assert process.wait(timeout=120) == 0
    text = drawn.decode(errors="replace")
    assert "export" in text and "3/3" in text and "messages" in text


def test_rich_is_imported_only_for_a_terminal() -> None:
    """`gateway sync` from cron or a script must not pay for the progress bar's library."""
    probe = (
        "import sys, gateway.sync_pass, gateway.backup\n"
        "from gateway.progress import terminal_progress, NoProgress\n"
        "with terminal_progress('sync', 'sources') as progress:\n"
        "    assert isinstance(progress, NoProgress)\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'rich'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]"
