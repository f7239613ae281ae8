"""A private Dovecot 2.3 instance on 127.0.0.1 for system tests and benchmarks.

Everything lives in one temporary directory (config, base_dir, state_dir, logs, mail), so the
instance never touches the system Dovecot.  See DESIGN.md, "Facts that save time with Dovecot".
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType

DOVECOT_BINARY = "/usr/sbin/dovecot"
DOVEADM_BINARY = "/usr/bin/doveadm"
MAIL_USER = "gwmail"
START_TIMEOUT = 15.0


class DovecotError(RuntimeError):
    """Dovecot is missing, failed to start, or a doveadm command failed."""


def _require_binaries() -> None:
    missing = [b for b in (DOVECOT_BINARY, DOVEADM_BINARY) if not os.access(b, os.X_OK)]
    if missing:
        raise DovecotError(
            f"Dovecot binaries not found: {', '.join(missing)}; "
            "install the Debian packages dovecot-imapd and dovecot-pop3d"
        )
    for user in ("dovecot", "dovenull"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            raise DovecotError(
                f"system user {user!r} missing; it is created by the Debian dovecot-core package"
            ) from None


def ensure_mail_user(name: str = MAIL_USER) -> tuple[int, int]:
    """Return (uid, gid) of the unprivileged mail owner, creating the system user if needed."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        if os.geteuid() != 0:
            raise DovecotError(f"mail user {name!r} missing and we are not root") from None
        subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (small race window; fine for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
                greeting = sock.recv(100)
                if greeting:
                    return True
        except OSError:
            time.sleep(0.05)
    return False


class DovecotServer:
    """A throwaway Dovecot serving IMAP and POP3 on free 127.0.0.1 ports.

    Use as a context manager, or call start()/stop().  ``work_dir`` is only used when every
    directory above it is traversable by the unprivileged Dovecot users; otherwise (pytest's
    tmp_path lives under a 0700 directory) a private directory under /tmp is made instead.
    """

    def __init__(
        self,
        work_dir: Path | None = None,
        *,
        extra_config: str = "",
        auth_mechanisms: str = "plain login",
        extra_passdb: str = "",
    ) -> None:
        """`extra_config` is appended to the generated configuration (e.g. an
        `imap_capability` line to play a server without some extensions); `extra_passdb` is
        a passdb block placed before the passwd-file one (the OAuth2 peer's)."""
        _require_binaries()
        self.extra_config = extra_config
        self.auth_mechanisms = auth_mechanisms
        self.extra_passdb = extra_passdb
        self._owns_root = True
        self.root = Path(tempfile.mkdtemp(prefix="gw-dovecot-"))
        if work_dir is not None and _traversable(work_dir):
            shutil.rmtree(self.root)
            self.root = work_dir / "dovecot"
            self.root.mkdir(parents=True, exist_ok=True)
            self._owns_root = False
        self.root.chmod(0o755)
        self.uid, self.gid = ensure_mail_user()
        self.mail_user = pwd.getpwuid(self.uid).pw_name
        self.mail_group = grp.getgrgid(self.gid).gr_name
        self.imap_port = free_port()
        self.pop3_port = free_port()
        self.config_path = self.root / "dovecot.conf"
        self.passwd_path = self.root / "passwd"
        self.home_root = self.root / "home"
        self.log_path = self.root / "dovecot.log"
        self._users: dict[str, str] = {}
        self._running = False
        self._file_counter = 0

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> DovecotServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Write the config and start the master process; wait until IMAP and POP3 answer."""
        for sub in ("base", "state"):
            (self.root / sub).mkdir(exist_ok=True)
        self.home_root.mkdir(exist_ok=True)
        os.chown(self.home_root, self.uid, self.gid)
        self.passwd_path.touch()
        self.config_path.write_text(self._config_text())
        # The master daemonizes and keeps inherited descriptors open, so its output goes to a
        # file: a pipe (capture_output) would never reach EOF.
        startup_log = self.root / "startup.log"
        with startup_log.open("wb") as output:
            result = subprocess.run(
                [DOVECOT_BINARY, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
            )
        if result.returncode != 0:
            errors = startup_log.read_text(errors="replace")
            raise DovecotError(f"dovecot failed to start: {errors}{self._log_tail()}")
        self._running = True
        for port in (self.imap_port, self.pop3_port):
            if not _wait_for_port(port, START_TIMEOUT):
                self.stop()
                raise DovecotError(f"dovecot did not listen on {port}: {self._log_tail()}")

    def stop(self) -> None:
        """Stop the master process and remove the directory if we created it."""
        if self._running:
            subprocess.run(
                [DOVECOT_BINARY, "-c", str(self.config_path), "stop"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self._running = False
            self._wait_for_master_exit()
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def _wait_for_master_exit(self) -> None:
        pid_file = self.root / "base" / "master.pid"
        deadline = time.monotonic() + 10
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    # -- users and mail --------------------------------------------------------------------

    def add_user(self, name: str, password: str) -> None:
        """Add a passwd-file user ({PLAIN} password); Dovecot re-reads the file on change."""
        self._users[name] = password
        lines = [f"{user}:{{PLAIN}}{pw}::::::" for user, pw in self._users.items()]
        self.passwd_path.write_text("\n".join(lines) + "\n")
        home = self.home_dir(name)
        home.mkdir(parents=True, exist_ok=True)
        os.chown(home, self.uid, self.gid)

    def home_dir(self, user: str) -> Path:
        return self.home_root / user

    def maildir_path(self, user: str, folder: str = "INBOX") -> Path:
        """Path of a Maildir++ folder: INBOX is the root, others are ``.name`` subfolders."""
        base = self.home_dir(user) / "Maildir"
        return base if folder.upper() == "INBOX" else base / ("." + folder.replace("/", "."))

    def load_maildir(self, user: str, folder: str, messages: Iterable[bytes]) -> int:
        """Write messages as Maildir files (tmp/ then rename into cur/) and index them.

        UIDs follow the iteration order: file names start with strictly increasing timestamps,
        which is how Dovecot orders new Maildir files.  Returns the number of messages written.
        """
        path = self.maildir_path(user, folder)
        for sub in ("", "cur", "new", "tmp"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        self._chown_tree(self.home_dir(user) / "Maildir")
        count = 0
        base_time = 1_600_000_000
        for raw in messages:
            self._file_counter += 1
            name = f"{base_time + self._file_counter}.M{self._file_counter:07d}P1.gw"
            tmp = path / "tmp" / name
            tmp.write_bytes(raw)
            os.chown(tmp, self.uid, self.gid)
            tmp.rename(path / "cur" / f"{name}:2,")
            count += 1
        self.doveadm("mailbox", "status", "-u", user, "messages", folder)
        return count

    def _chown_tree(self, top: Path) -> None:
        os.chown(top, self.uid, self.gid)
        for dirpath, dirnames, filenames in os.walk(top):
            for entry in dirnames + filenames:
                os.chown(os.path.join(dirpath, entry), self.uid, self.gid)

    def doveadm(self, *args: str, check: bool = True) -> str:
        """Run ``doveadm -c CONF ARGS`` and return its stdout."""
        result = subprocess.run(
            [DOVEADM_BINARY, "-c", str(self.config_path), *args], capture_output=True, text=True
        )
        if check and result.returncode != 0:
            raise DovecotError(f"doveadm {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    # -- helpers ---------------------------------------------------------------------------

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n" + "\n".join(text.splitlines()[-lines:])

    def _config_text(self) -> str:
        root = self.root
        return f"""\
# Generated by tests/support/dovecot.py: a private instance, see DESIGN.md.
base_dir = {root}/base
state_dir = {root}/state
instance_name = gw-dovecot-{self.imap_port}
listen = 127.0.0.1
protocols = imap pop3
ssl = no
disable_plaintext_auth = no
auth_mechanisms = {self.auth_mechanisms}
log_path = {self.log_path}
first_valid_uid = {self.uid}
last_valid_uid = {self.uid}
first_valid_gid = {self.gid}
last_valid_gid = {self.gid}
mail_location = maildir:~/Maildir
mail_fsync = never
pop3_uidl_format = %08Xu%08Xv
mail_max_userip_connections = 1000
namespace inbox {{
  inbox = yes
  separator = /
}}
{self.extra_passdb}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd_path}
}}
userdb {{
  driver = static
  args = uid={self.uid} gid={self.gid} home={self.home_root}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service imap {{
  process_limit = 1024
}}
service pop3 {{
  process_limit = 1024
}}
protocol imap {{
  mail_max_userip_connections = 1000
}}
protocol pop3 {{
  mail_max_userip_connections = 1000
}}
{self.extra_config}
"""


def _traversable(path: Path) -> bool:
    """True if every directory from / down to ``path`` lets other users pass through."""
    current = path.resolve()
    for directory in [current, *current.parents]:
        try:
            mode = directory.stat().st_mode
        except OSError:
            return False
        if not mode & 0o001:
            return False
    return True


def start_dovecot(
    users: Sequence[tuple[str, str]] = (), work_dir: Path | None = None
) -> DovecotServer:
    """Start a server with the given (user, password) pairs already added."""
    server = DovecotServer(work_dir)
    server.start()
    for name, password in users:
        server.add_user(name, password)
    return server
