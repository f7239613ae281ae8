"""`gateway serve` as a subprocess on free ports, with users created beforehand: the whole
product as a browser meets it (admin API, panel, fetch scheduler)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from cryptography.fernet import Fernet

from gateway.settings import Settings
from gateway.store import open_store
from tests.support.dovecot import free_port

GATEWAY = str(Path(sys.executable).with_name("gateway"))
START_TIMEOUT = 60.0


class ServedGateway:
    def __init__(self, data_dir: Path, users: dict[str, tuple[str, bool]]) -> None:
        self.data_dir = data_dir
        self.admin_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.admin_port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        self.env.update(
            GATEWAY_DATA_DIR=str(data_dir),
            GATEWAY_SECRET_KEY=Fernet.generate_key().decode(),
            GATEWAY_ADMIN_PORT=str(self.admin_port),
            GATEWAY_IMAP_PORT=str(free_port()),
            GATEWAY_IMAPS_PORT="0",
            GATEWAY_SUBMISSION_PORT="0",
            GATEWAY_SMTPS_PORT="0",
            GATEWAY_FETCH_RESCAN_SECONDS="1",
            GATEWAY_INGEST_WORKERS="0",
        )
        self._users = users
        self._process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / "serve.log"

    def __enter__(self) -> ServedGateway:
        settings = Settings(
            data_dir=self.data_dir,
            secret_key=self.env["GATEWAY_SECRET_KEY"],
            _env_file=None,  # type: ignore[call-arg]
        )
        store = open_store(settings)
        try:
            for name, (password, is_admin) in self._users.items():
                store.create_user(name=name, password=password, is_admin=is_admin)
        finally:
            store.close()
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [GATEWAY, "serve"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"gateway serve exited: {self.log()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=2):  # noqa: S310
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"gateway serve did not answer: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
