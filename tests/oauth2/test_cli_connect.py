"""`gateway source connect` in a real subprocess: print the URL, take the pasted redirect."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.support.fixtures_oauth2 import OAUTH2_USER, OAuth2Peers

pytestmark = pytest.mark.system
GATEWAY = str(Path(sys.executable).with_name("gateway"))


def test_cli_connect_prints_url_and_takes_the_pasted_redirect(
    tmp_path: Path, oauth2_peers: OAuth2Peers
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        GATEWAY_DATA_DIR=str(tmp_path / "data"),
        GATEWAY_SECRET_KEY=Fernet.generate_key().decode(),
        GATEWAY_ADMIN_PORT="18080",
        **oauth2_peers.gateway_env(),
    )
    subprocess.run([GATEWAY, "migrate"], env=env, check=True, capture_output=True)
    subprocess.run(
        [GATEWAY, "user", "add", "owner"], env=env, input=b"pw\n", check=True, capture_output=True
    )
    process = subprocess.Popen(
        [GATEWAY, "source", "connect", "--user", "owner", "--provider", "generic"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdin is not None
    assert "Open this address" in process.stdout.readline()
    url = process.stdout.readline().strip()
    redirect = oauth2_peers.provider.follow(url, "http://127.0.0.1:18080/api/oauth2/callback")
    out, err = process.communicate(redirect + "\n", timeout=60)
    assert process.returncode == 0, err
    assert f"connected source owner/{OAUTH2_USER} as {OAUTH2_USER}" in out
    listing = subprocess.run(
        [GATEWAY, "source", "list"], env=env, check=True, capture_output=True, text=True
    ).stdout
    assert "imap (oauth2 generic)\t" in listing and OAUTH2_USER in listing
    synced = subprocess.run([GATEWAY, "sync"], env=env, capture_output=True, text=True)
    assert synced.returncode == 0, synced.stderr
