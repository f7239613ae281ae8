"""S3-compatible object storage for blobs: the one module that talks to boto3.

`GATEWAY_BLOB_URL=s3://bucket/prefix?endpoint=http://host:9000&region=us-east-1` names the
bucket, a key prefix and, for anything but AWS itself (MinIO, Ceph, SeaweedFS), the endpoint.
Credentials come the way every AWS tool reads them (`AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, a web identity token on EKS, an instance profile), never from the URL,
so they never land in a log line that prints the URL.

A PUT that returned is durable in the object store (S3's contract: a successful PUT is stored
redundantly before it answers), which is what `BlobStore.commit` waits for before a row may point
at the object. Keys are `prefix/ab/<sha256>`, like the local directory's layout.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from gateway.store.errors import StoreError
from gateway.store.object_location import ObjectLocation

log = logging.getLogger("gateway.store.objects")

# S3 DeleteObjects takes at most 1,000 keys per request.
_DELETE_BATCH = 1000
_MISSING_CODES = {"404", "NoSuchKey", "NotFound"}


class ObjectStoreUnavailableError(StoreError):
    """The bucket of GATEWAY_BLOB_URL cannot be reached or used."""


@dataclass(frozen=True)
class StoredObject:
    digest: str
    key: str
    modified: datetime


class ObjectStore:
    """Put, get, list and delete blob objects in one bucket (boto3's client is thread-safe)."""

    def __init__(self, location: ObjectLocation, *, max_connections: int = 16) -> None:
        self.location = location
        config = Config(
            max_pool_connections=max_connections,
            retries={"max_attempts": 5, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
            # Path-style addressing works with every S3-compatible server (virtual-host style
            # needs DNS for each bucket name, which MinIO/SeaweedFS setups rarely have).
            s3={"addressing_style": "path"},
        )
        self._client: Any = boto3.session.Session().client(
            "s3", endpoint_url=location.endpoint, region_name=location.region, config=config
        )

    def check_bucket(self) -> None:
        """Fail at start-up, clearly, when the bucket is missing or the credentials are wrong."""
        try:
            self._client.head_bucket(Bucket=self.location.bucket)
        except (BotoCoreError, ClientError) as error:
            raise ObjectStoreUnavailableError(
                f"object storage bucket {self.location.bucket!r} at "
                f"{self.location.endpoint or 'AWS S3'} is not usable: {error}"
            ) from error

    def create_bucket(self) -> None:
        """Create the bucket (tests and first-time setups; production buckets exist already)."""
        self._client.create_bucket(Bucket=self.location.bucket)

    def put_file(self, digest: str, path: Path) -> None:
        """Upload a file; returns once the object store has it durably (S3 PUT semantics)."""
        with path.open("rb") as body:
            self._client.put_object(
                Bucket=self.location.bucket, Key=self.location.key_for(digest), Body=body
            )

    def get_file(self, digest: str, path: Path) -> bool:
        """Download an object into `path`; False when no such object exists."""
        try:
            response = self._client.get_object(
                Bucket=self.location.bucket, Key=self.location.key_for(digest)
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING_CODES:
                return False
            raise
        with path.open("xb") as target:
            for chunk in response["Body"].iter_chunks(1 << 20):
                target.write(chunk)
        return True

    def list_objects(self) -> Iterator[StoredObject]:
        """Every blob object under the prefix (keys of other writers are left out)."""
        prefix = f"{self.location.prefix}/" if self.location.prefix else ""
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.location.bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                digest = self.location.digest_of(entry["Key"])
                if digest is not None:
                    yield StoredObject(digest, entry["Key"], entry["LastModified"])

    def delete_objects(self, keys: Iterable[str]) -> None:
        batch: list[dict[str, str]] = []
        for key in keys:
            batch.append({"Key": key})
            if len(batch) == _DELETE_BATCH:
                self._delete_batch(batch)
                batch = []
        if batch:
            self._delete_batch(batch)

    def _delete_batch(self, batch: list[dict[str, str]]) -> None:
        response = self._client.delete_objects(
            Bucket=self.location.bucket, Delete={"Objects": batch, "Quiet": True}
        )
        for error in response.get("Errors", []):
            log.warning(
                "event=blob_delete_failed key=%s code=%s", error.get("Key"), error.get("Code")
            )
