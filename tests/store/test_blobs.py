"""The blob directory's commit paths: what ends up under a hash name, and what never does."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from gateway.store import blobs as blobs_module
from gateway.store.blobs import BlobStore, PendingBlob

CONTENT = b"Subject: blob\r\n\r\n" + b"body line\r\n" * 500
DIGEST = hashlib.sha256(CONTENT).hexdigest()


def pending(store: BlobStore, content: bytes = CONTENT) -> PendingBlob:
    blob = store.begin()
    blob.write(content)
    return blob


def test_a_single_blob_lands_under_its_hash_and_leaves_no_temp_file(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    store.commit([pending(store)])
    assert store.read(DIGEST) == CONTENT
    assert list(store.tmp_root.iterdir()) == []


def test_content_already_there_stays_whole_and_its_grace_period_is_renewed(
    tmp_path: Path,
) -> None:
    """Content shared with a committed message: the garbage collector must wait again."""
    store = BlobStore(tmp_path / "blobs")
    store.commit([pending(store)])
    final = store.path_for(DIGEST)
    os.utime(final, (1_000_000, 1_000_000))
    store.commit([pending(store)])
    assert final.stat().st_mtime > 1_000_000
    assert store.read(DIGEST) == CONTENT
    assert list(store.tmp_root.iterdir()) == []


def test_the_same_content_twice_in_one_commit(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    store.commit([pending(store), pending(store)])
    assert store.read(DIGEST) == CONTENT
    assert list(store.tmp_root.iterdir()) == []


@pytest.mark.parametrize("count", [3, 20])  # per-file fsyncs, then one syncfs for a batch
def test_every_blob_of_a_batch_is_flushed_before_it_is_reported_done(
    tmp_path: Path, count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    real_syncfs = blobs_module._syncfs
    assert real_syncfs is not None, "syncfs(2) is in every glibc this project supports"

    def recording_syncfs(fd: int) -> int:
        synced.append("syncfs")
        return int(real_syncfs(fd))

    monkeypatch.setattr(blobs_module.os, "fsync", recording_fsync)
    monkeypatch.setattr(blobs_module, "_syncfs", recording_syncfs)
    store = BlobStore(tmp_path / "blobs")
    contents = [CONTENT + b"%d" % n for n in range(count)]
    store.commit([pending(store, content) for content in contents])
    directories = set()
    for content in contents:
        digest = hashlib.sha256(content).hexdigest()
        assert store.read(digest) == content
        directories.add(str(store.path_for(digest).parent))
    if count < 8:
        assert directories | {str(store.root)} <= set(synced), "every new name's directory"
        files = [path for path in synced if path not in directories | {str(store.root)}]
        assert len(files) == count, "each file's data"
    else:
        assert synced == ["syncfs", "syncfs"], "data before the names, then the names"
    assert list(store.tmp_root.iterdir()) == []


def test_a_flush_queued_behind_busy_helpers_does_not_hold_up_its_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`commit_soon` waits for a free helper to start flushing; with every helper busy (many
    concurrent APPENDs) its flush is queued, and the caller must go on at once."""
    store = BlobStore(tmp_path / "blobs")
    release = hold_flushes(monkeypatch)
    # Long enough that a wait could not go unnoticed, short enough not to hang the suite.
    monkeypatch.setattr(blobs_module, "_SYNC_START_WAIT", 10.0)
    contents = [CONTENT + b"%d" % n for n in range(blobs_module._SYNC_THREADS + 1)]
    try:
        futures = [store.commit_soon(close(pending(store, c))) for c in contents[:-1]]
        started = time.monotonic()
        futures.append(store.commit_soon(close(pending(store, contents[-1]))))
        assert time.monotonic() - started < 5.0, "waited for a helper that was not free"
    finally:
        release.set()
    for future in futures:
        future.result(timeout=30)
    for content in contents:
        assert store.read(hashlib.sha256(content).hexdigest()) == content
    store.close()


def test_close_waits_for_flushes_in_progress_without_deadlock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shutdown (SIGTERM) can close the store while an APPEND's file is still flushing."""
    store = BlobStore(tmp_path / "blobs")
    release = hold_flushes(monkeypatch)
    future = store.commit_soon(close(pending(store)))
    closer = threading.Thread(target=store.close, daemon=True)
    closer.start()
    time.sleep(0.05)  # close() is now waiting for the flush
    release.set()
    closer.join(timeout=10)
    assert not closer.is_alive(), "close() deadlocked with the finishing flush"
    future.result(timeout=1)
    assert store.read(DIGEST) == CONTENT


def hold_flushes(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Make every helper's flush wait, once under way, until the returned event is set."""
    release = threading.Event()
    real_commit = BlobStore.commit

    def held_commit(
        self: BlobStore, blobs: list[PendingBlob], *, syncing: threading.Event | None = None
    ) -> None:
        if syncing is not None:
            syncing.set()  # "flushing" from here on, as far as the caller can tell
        release.wait(30)
        real_commit(self, blobs)

    monkeypatch.setattr(BlobStore, "commit", held_commit)
    return release


def close(blob: PendingBlob) -> PendingBlob:
    blob.close()
    return blob
