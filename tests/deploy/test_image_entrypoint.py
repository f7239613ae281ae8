"""The container image's entry point, without a Docker engine: build what the Dockerfile builds
(a fresh venv from the project's wheel), give it the image's environment, run `gateway serve`
as an unprivileged user that can write only its data directory and /tmp, and check that it
comes up healthy and ready and that the image's own HEALTHCHECK command passes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.dockerfile import final_stage
from tests.support.dovecot import free_port

pytestmark = [pytest.mark.system, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534  # no home, no files of its own: as unprivileged as the image's user
# The image's base is Debian bookworm's Python 3.11; this machine's (Debian's python3 with
# python3-venv) is the same, and unlike a pyenv build under /root any user may run it.
BASE_PYTHON = Path("/usr/bin/python3")


@pytest.fixture(scope="module")
def image_root() -> Iterator[Path]:
    """A directory any user may traverse (pytest's tmp_path is root-only), holding /opt/gateway
    (root-owned, read-only to the gateway) as the Dockerfile's build stage makes it."""
    assert BASE_PYTHON.exists(), "Debian's python3 and python3-venv are needed (scripts/test.sh)"
    root = Path(tempfile.mkdtemp(prefix="gw-image-"))
    root.chmod(0o755)
    try:
        wheels = root / "wheels"
        venv = root / "opt" / "gateway"
        subprocess.run([str(BASE_PYTHON), "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)],
            check=True,
            capture_output=True,
            timeout=300,
        )
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", *map(str, wheels.glob("*.whl"))],
            check=True,
            capture_output=True,
            timeout=600,
        )
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _files_owned_by(uid: int, top: Path) -> list[Path]:
    owned = []
    for directory, subdirectories, files in os.walk(top):
        for name in [*subdirectories, *files]:
            path = Path(directory) / name
            if path.lstat().st_uid == uid:
                owned.append(path)
    return owned


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own test server
        return response.status, response.read()


def test_the_image_entry_point_comes_up_healthy_as_an_unprivileged_user(image_root: Path) -> None:
    stage = final_stage()
    assert stage.command == ["gateway", "serve"]
    assert stage.user == "10001:10001" and stage.workdir == "/data"
    assert stage.environment["GATEWAY_BIND"] == "0.0.0.0"  # noqa: S104 - reachable in a pod
    assert stage.environment["GATEWAY_DATA_DIR"] == "/data"
    assert sorted(stage.exposed) == sorted(
        int(stage.environment[f"GATEWAY_{name}_PORT"])
        for name in ("IMAP", "IMAPS", "SUBMISSION", "SMTPS", "ADMIN")
    )
    data, scratch = image_root / "data", image_root / "tmp"
    for directory in (data, scratch):
        directory.mkdir()
        os.chown(directory, NOBODY, NOBODY)
        directory.chmod(0o700)
    venv_bin = image_root / "opt" / "gateway" / "bin"
    environment = {
        key: value.replace("$PATH", "/usr/local/bin:/usr/bin:/bin").replace(
            "/opt/gateway/bin", str(venv_bin)
        )
        for key, value in stage.environment.items()
    }
    # Only what cannot be the same on a shared test machine differs from the image: the data
    # path, loopback instead of every interface, and free ports instead of the fixed ones.
    ports = {name: free_port() for name in ("IMAP", "IMAPS", "SUBMISSION", "SMTPS", "ADMIN")}
    environment.update(
        HOME="/nonexistent",
        TMPDIR=str(scratch),
        GATEWAY_DATA_DIR=str(data),
        GATEWAY_BIND="127.0.0.1",
        GATEWAY_INGEST_WORKERS="0",
        **{f"GATEWAY_{name}_PORT": str(port) for name, port in ports.items()},
    )
    before = {path: path.stat().st_mtime for path in (image_root / "opt").rglob("*")}
    process = subprocess.Popen(
        [str(venv_bin / stage.command[0]), *stage.command[1:]],
        env=environment,
        cwd=data,
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        admin = f"http://127.0.0.1:{ports['ADMIN']}"
        deadline = time.monotonic() + 90
        while True:
            try:
                assert _get(f"{admin}/healthz") == (200, b'{"status":"ok"}')
                break
            except OSError:
                assert process.poll() is None, process.communicate()[1][-3000:]
                assert time.monotonic() < deadline, "gateway serve never became healthy"
                time.sleep(0.2)
        assert _get(f"{admin}/readyz") == (200, b'{"status":"ok"}')  # the database answers
        status, page = _get(f"{admin}/")  # the panel ships inside the venv (gateway.web)
        assert status == 200 and b"<html" in page.lower()
        healthcheck = [
            str(venv_bin / stage.healthcheck[0]) if stage.healthcheck[0] == "python" else "",
            *stage.healthcheck[1:],
        ]
        checked = subprocess.run(
            healthcheck, env=environment, user=NOBODY, group=NOBODY, capture_output=True
        )
        assert checked.returncode == 0, checked.stderr
        with __import__("socket").create_connection(("127.0.0.1", ports["IMAP"]), 5) as imap:
            assert imap.recv(200).startswith(b"* OK")
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr[-3000:]
    assert "created admin user 'admin'" in stdout
    # It wrote its key, certificate, database and blobs into the data directory and nowhere
    # else: nothing under /opt changed, and it owns no file outside /data and /tmp.
    assert {path.name for path in data.iterdir()} >= {"gateway.sqlite3", "blobs"}
    assert {path: path.stat().st_mtime for path in (image_root / "opt").rglob("*")} == before
    outside = [
        path
        for path in _files_owned_by(NOBODY, image_root)
        if not (path.is_relative_to(data) or path.is_relative_to(scratch))
    ]
    assert outside == [] and _files_owned_by(NOBODY, image_root / "data") != []
