"""Blobs in an S3 object store (a real SeaweedFS started here): durable once the PUT returned,
content-addressed keys, garbage collection, and the local cache FETCH reads from."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from gateway.settings import Settings
from gateway.store.blob_cache import BlobCache
from gateway.store.blobs import BlobStore, PendingBlob
from gateway.store.object_location import BlobUrlError, ObjectLocation
from gateway.store.object_store import ObjectStore, ObjectStoreUnavailableError
from tests.support.seaweedfs import SeaweedServer

pytestmark = [pytest.mark.system]
BUCKET = "mail-blobs"


def content(number: int) -> bytes:
    return f"Subject: object {number}\r\n\r\n".encode() + b"body line\r\n" * (200 + number)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    with SeaweedServer(tmp_path_factory.mktemp("seaweedfs")) as server:
        server.create_bucket(BUCKET)
        yield server


@pytest.fixture
def objects(seaweed: SeaweedServer, monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    for name, value in seaweed.environment().items():
        monkeypatch.setenv(name, value)
    # One bucket, a prefix per test: every bucket is a SeaweedFS collection with its own volumes.
    prefix = f"test-{secrets.token_hex(4)}/v1"
    return ObjectStore(ObjectLocation.parse(seaweed.blob_url(BUCKET, prefix)))


def pending(store: BlobStore, data: bytes) -> PendingBlob:
    blob = store.begin()
    blob.write(data)
    return blob


def stored_digests(objects: ObjectStore) -> set[str]:
    return {stored.digest for stored in objects.list_objects()}


def test_a_committed_blob_is_an_object_under_its_hash_and_reads_back_anywhere(
    tmp_path: Path, objects: ObjectStore
) -> None:
    store = BlobStore(tmp_path / "a", objects=objects)
    data = content(1)
    store.commit([pending(store, data)])
    assert stored_digests(objects) == {digest(data)}
    keys = [stored.key for stored in objects.list_objects()]
    assert keys == [f"{objects.location.prefix}/{digest(data)[:2]}/{digest(data)}"]
    assert list(store.tmp_root.iterdir()) == []
    # Another replica, with an empty cache, reads it from the object store.
    other = BlobStore(tmp_path / "b", objects=objects)
    with other.open(digest(data)) as blob:
        assert blob.read() == data
    assert other.read(digest(data)) == data


def test_the_loop_side_read_serves_cached_objects_only(
    tmp_path: Path, objects: ObjectStore
) -> None:
    writer = BlobStore(tmp_path / "a", objects=objects)
    data = content(2)
    writer.commit([pending(writer, data)])
    # The writer keeps what it uploaded: FETCH right after APPEND needs no download.
    assert writer.read_if_cached(digest(data), 1 << 20) in (data, None)
    reader = BlobStore(tmp_path / "b", objects=objects)
    assert reader.read_if_cached(digest(data), 1 << 20) is None  # not fetched: never blocks
    assert reader.read(digest(data)) == data
    assert reader.path_for(digest(data)).read_bytes() == data


def test_a_batch_commit_stores_every_object_before_it_returns(
    tmp_path: Path, objects: ObjectStore
) -> None:
    store = BlobStore(tmp_path / "a", objects=objects)
    batch = [content(number) for number in range(20)]
    store.commit([pending(store, data) for data in [*batch, batch[0]]])
    assert stored_digests(objects) == {digest(data) for data in batch}


def test_commit_soon_completes_once_the_object_is_stored(
    tmp_path: Path, objects: ObjectStore
) -> None:
    store = BlobStore(tmp_path / "a", objects=objects)
    data = content(3)
    store.commit_soon(pending(store, data)).result(30)
    assert stored_digests(objects) == {digest(data)}
    store.close()


def test_a_failed_upload_fails_the_commit_and_names_nothing(
    tmp_path: Path, seaweed: SeaweedServer, objects: ObjectStore
) -> None:
    missing = ObjectStore(ObjectLocation.parse(seaweed.blob_url("no-such-bucket-here")))
    store = BlobStore(tmp_path / "a", objects=missing)
    data = content(4)
    with pytest.raises(ClientError, match=r"NoSuchBucket|AccessDenied"):
        store.commit([pending(store, data)])
    assert not (tmp_path / "a" / digest(data)[:2] / digest(data)).exists()
    with pytest.raises(FileNotFoundError):
        BlobStore(tmp_path / "b", objects=objects).read(digest(data))


def test_garbage_collection_deletes_old_unreferenced_objects_only(
    tmp_path: Path, objects: ObjectStore
) -> None:
    store = BlobStore(tmp_path / "a", objects=objects)
    kept, dropped = content(5), content(6)
    store.commit([pending(store, kept), pending(store, dropped)])
    # Within the grace period nothing goes: an ingest may not have committed its row yet.
    assert store.collect_garbage({digest(kept)}, grace_seconds=3600) == 0
    assert stored_digests(objects) == {digest(kept), digest(dropped)}
    assert store.collect_garbage({digest(kept)}, grace_seconds=-60) == 1
    assert stored_digests(objects) == {digest(kept)}
    assert not store.path_for(digest(dropped)).exists()
    assert store.read(digest(kept)) == kept


def test_the_cache_stays_within_its_limit_and_refetches_what_it_dropped(
    tmp_path: Path, objects: ObjectStore
) -> None:
    store = BlobStore(tmp_path / "a", objects=objects, cache_bytes=20_000)
    batch = [content(number) for number in range(10)]  # ~2.3-4 KB each
    for data in batch:
        store.commit([pending(store, data)])
    cached = sum(path.stat().st_size for _, path in store.iter_digests())
    assert cached <= 20_000
    assert [store.read(digest(data)) for data in batch] == batch


def test_a_cache_written_before_a_reboot_is_emptied(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    (root / "ab").mkdir(parents=True)
    (root / "ab" / ("ab" + "0" * 62)).write_bytes(b"maybe torn by a power loss")
    (root / "boot_id").write_text("an-earlier-boot\n")
    cache = BlobCache(root, max_bytes=1 << 20)
    assert not (root / "ab").exists()
    assert (root / "boot_id").read_text() != "an-earlier-boot\n"
    # Same boot: entries stay.
    (root / "cd").mkdir()
    (root / "cd" / ("cd" + "1" * 62)).write_bytes(b"kept")
    BlobCache(root, max_bytes=cache.max_bytes)
    assert (root / "cd" / ("cd" + "1" * 62)).read_bytes() == b"kept"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://bucket/prefix", "s3://bucket"),
        ("s3:///prefix", "s3://bucket"),
        ("s3://bucket/p?endpoint=ftp://host", "http"),
        ("s3://bucket/p?secret=x", "unknown parameters: secret"),
    ],
)
def test_a_bad_blob_url_gets_a_clear_error(url: str, message: str) -> None:
    with pytest.raises(BlobUrlError, match=message):
        ObjectLocation.parse(url)


def test_settings_refuse_a_bad_blob_url_and_start_up_a_missing_bucket(
    tmp_path: Path, seaweed: SeaweedServer, objects: ObjectStore
) -> None:
    from pydantic import ValidationError

    from gateway.store import open_store

    with pytest.raises(ValidationError, match="unknown parameters: key"):
        Settings(blob_url="s3://bucket/p?key=x", _env_file=None)  # type: ignore[call-arg]
    settings = Settings(
        data_dir=tmp_path / "data",
        blob_url=seaweed.blob_url("no-such-bucket-here"),
        _env_file=None,  # type: ignore[call-arg]
    )
    with pytest.raises(ObjectStoreUnavailableError, match="no-such-bucket-here"):
        open_store(settings)


def test_a_blob_url_names_bucket_prefix_endpoint_and_region() -> None:
    location = ObjectLocation.parse("s3://mail/a/b/?endpoint=https://s3.example:9000&region=eu-1")
    assert location == ObjectLocation("mail", "a/b", "https://s3.example:9000", "eu-1")
    assert location.key_for("ab" + "0" * 62) == "a/b/ab/ab" + "0" * 62
    assert location.digest_of("a/b/ab/ab" + "0" * 62) == "ab" + "0" * 62
    assert location.digest_of("a/b/other-file") is None
    assert ObjectLocation.parse("s3://mail").key_for("cd" + "1" * 62) == "cd/cd" + "1" * 62
