"""Content-addressed blob files: streamed in, fsynced, renamed into place, never rewritten.

Durability order (DESIGN invariant 1): data fsynced → renamed to its hash name → rename made
durable → only then may a database row point at it. A crash at any step leaves at worst an
unreferenced file, which `collect_garbage` removes later.

With an object store (`GATEWAY_BLOB_URL=s3://…`, several replicas) the durable copy is the
object: a blob is committed once its PUT returned, and the local directory becomes a cache of
objects (`gateway.store.blob_cache`) that FETCH reads exactly as it reads local blobs, the
loop-side non-blocking read included. Callers see one interface either way.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import secrets
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from gateway.store.blob_cache import BlobCache
from gateway.store.nowait_read import read_if_cached

if TYPE_CHECKING:  # boto3 is imported only by a gateway configured for object storage
    from gateway.store.object_store import ObjectStore

_TMP_DIR = "tmp"
# Below this many files a batch is cheaper to sync file by file than with one syncfs(2).
_SYNCFS_THRESHOLD = 8
# Threads flushing single blobs for `commit_soon` (one per concurrent APPEND, up to this).
_SYNC_THREADS = 4
# How long `commit_soon` waits for its helper thread to start flushing (normally ~0.1 ms).
_SYNC_START_WAIT = 0.005
# Concurrent PUTs of one batch to an object store (a round trip each, ~1-10 ms).
_UPLOAD_THREADS = 8


def _load_libc_function(function: str) -> ctypes._NamedFuncPointer | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name, use_errno=True)
    return getattr(libc, function, None)


_syncfs = _load_libc_function("syncfs")


class PendingBlob:
    """A blob being written: stream chunks in, then hand it to `BlobStore.commit`."""

    def __init__(self, tmp_path: Path, file: BinaryIO | None) -> None:
        self.tmp_path = tmp_path
        self._file = file
        self._hash = hashlib.sha256()
        self.size = 0
        self.digest: str | None = None

    @classmethod
    def written(cls, tmp_path: Path, size: int, digest: str) -> PendingBlob:
        """A temp file a worker process already wrote and closed (`gateway.ingest_worker`)."""
        blob = cls(tmp_path, None)
        blob.size, blob.digest = size, digest
        return blob

    def write(self, chunk: bytes) -> None:
        assert self._file is not None  # noqa: S101 - only blobs from begin() take writes
        self._file.write(chunk)
        self._hash.update(chunk)
        self.size += len(chunk)

    def close(self) -> str:
        """Flush to the kernel and return the content hash; the data is not yet durable."""
        if self.digest is None:
            assert self._file is not None  # noqa: S101
            self._file.close()
            self.digest = self._hash.hexdigest()
        return self.digest

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
        self.tmp_path.unlink(missing_ok=True)


class BlobStore:
    """Files named by their SHA-256 under `root/ab/<hash>`; with `objects`, objects named
    alike in a bucket, `root` then holding a cache of them of at most `cache_bytes`."""

    def __init__(
        self, root: Path, *, objects: ObjectStore | None = None, cache_bytes: int = 1 << 30
    ) -> None:
        self._syncer: ThreadPoolExecutor | None = None
        self._syncer_lock = threading.Lock()
        self._flushing = 0  # flushes submitted to the helpers and not yet done
        self.root = root
        self.tmp_root = root / _TMP_DIR
        self.tmp_root.mkdir(parents=True, exist_ok=True)
        # Non-blocking reads refuse symbolic links anywhere in the path (a symlinked volume).
        self._resolved_root = os.path.realpath(root)
        self._objects = objects
        self._cache = BlobCache(root, max_bytes=cache_bytes) if objects is not None else None

    def _new_tmp_path(self) -> Path:
        return self.tmp_root / f"{secrets.token_hex(12)}.tmp"

    def _local_path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    def path_for(self, digest: str) -> Path:
        """A local file holding the blob (fetched into the cache first with an object store);
        the path of a missing blob does not exist."""
        path = self._local_path(digest)
        if self._objects is not None and not path.exists():
            self._download(digest)
        return path

    def begin(self) -> PendingBlob:
        tmp_path = self._new_tmp_path()
        return PendingBlob(tmp_path, tmp_path.open("xb"))

    def commit(
        self, blobs: Iterable[PendingBlob], *, syncing: threading.Event | None = None
    ) -> None:
        """Make every pending blob durable under its final name (group fsync for batches);
        `syncing` is set once the first flush is under way."""
        pending = list(blobs)
        for blob in pending:
            blob.close()
        if not pending:
            return
        if self._objects is not None:
            self._upload(self._objects, pending, syncing)
            return
        batched = len(pending) >= _SYNCFS_THRESHOLD and _syncfs is not None
        if batched:
            self._sync_filesystem()
        else:
            for blob in pending:
                _fsync_path(blob.tmp_path, syncing)
        touched: set[Path] = set()
        for blob in pending:
            assert blob.digest is not None  # noqa: S101 - set by close() above
            final = self._local_path(blob.digest)
            # Replacing identical content is harmless and atomic, and the fresh mtime renews the
            # garbage collector's grace period until our row commits.
            try:
                os.replace(blob.tmp_path, final)
            except FileNotFoundError:
                final.parent.mkdir(parents=True, exist_ok=True)
                touched.add(self.root)
                os.replace(blob.tmp_path, final)
            touched.add(final.parent)
        if batched:
            self._sync_filesystem()
        else:
            for directory in touched:
                _fsync_path(directory)

    def commit_soon(self, blob: PendingBlob) -> Future[None]:
        """`commit([blob])` in a helper thread, for a caller with other work to do meanwhile.

        An APPEND analyses the message while its file is flushed: the fsyncs release the GIL,
        so on two cores the ~1 ms of flushing hides behind the ~1.5 ms of analysis. The
        caller must wait for the result before any row may point at the blob.
        """
        with self._syncer_lock:
            if self._syncer is None:
                self._syncer = ThreadPoolExecutor(_SYNC_THREADS, thread_name_prefix="blob-sync")
            helper_free = self._flushing < _SYNC_THREADS
            syncing = threading.Event()
            future = self._syncer.submit(self.commit, [blob], syncing=syncing)
            self._flushing += 1
        future.add_done_callback(self._flush_done)
        if helper_free:
            # The helper needs the GIL to reach its fsync, and the caller's analysis would
            # hold it until the interpreter's next switch (5 ms): let the helper get there
            # first. With every helper busy the flush is queued, and waiting would gain nothing.
            syncing.wait(_SYNC_START_WAIT)
        return future

    def _flush_done(self, _future: Future[None]) -> None:
        with self._syncer_lock:
            self._flushing -= 1

    def close(self) -> None:
        """Stop the helper threads of `commit_soon` after the flushes they have begun."""
        with self._syncer_lock:
            syncer, self._syncer = self._syncer, None
        # Not under the lock: each finishing flush takes it (`_flush_done`).
        if syncer is not None:
            syncer.shutdown(wait=True)

    def _upload(
        self, objects: ObjectStore, pending: list[PendingBlob], syncing: threading.Event | None
    ) -> None:
        """Store each blob as an object (durable once every PUT returned), then keep the file
        as a cache entry. Re-putting content that exists renews the object's modification time,
        the garbage collector's grace period, as the local rename renews the file's."""
        if syncing is not None:
            syncing.set()
        uploads = {blob.digest: blob for blob in pending if blob.digest is not None}
        if len(uploads) == 1:
            ((digest, blob),) = uploads.items()
            objects.put_file(digest, blob.tmp_path)
        else:
            with ThreadPoolExecutor(_UPLOAD_THREADS, thread_name_prefix="blob-upload") as pool:
                for done in [
                    pool.submit(objects.put_file, digest, blob.tmp_path)
                    for digest, blob in uploads.items()
                ]:
                    done.result()
        assert self._cache is not None  # noqa: S101 - set together with `objects`
        for blob in pending:
            assert blob.digest is not None  # noqa: S101 - set by close()
            self._cache.keep(blob.tmp_path, self._local_path(blob.digest), blob.size)

    def _download(self, digest: str) -> None:
        """Fetch an object into the cache; nothing happens when there is no such object."""
        assert self._objects is not None and self._cache is not None  # noqa: S101
        tmp_path = self._new_tmp_path()
        try:
            if self._objects.get_file(digest, tmp_path):
                self._cache.keep(tmp_path, self._local_path(digest), tmp_path.stat().st_size)
        finally:
            tmp_path.unlink(missing_ok=True)

    def open(self, digest: str) -> BinaryIO:
        return self.path_for(digest).open("rb")

    def read(self, digest: str) -> bytes:
        return self.path_for(digest).read_bytes()

    def read_if_cached(self, digest: str, limit: int) -> bytes | None:
        """The blob if it is at most `limit` bytes and wholly in memory, without ever blocking
        (safe on the event loop); None when the caller must read it the ordinary way."""
        return read_if_cached(os.path.join(self._resolved_root, digest[:2], digest), limit)

    def iter_digests(self) -> Iterator[tuple[str, Path]]:
        for shard in self.root.iterdir():
            if shard.name == _TMP_DIR or not shard.is_dir():
                continue
            for path in shard.iterdir():
                yield path.name, path

    def collect_garbage(self, referenced: set[str], *, grace_seconds: float = 3600.0) -> int:
        """Delete blobs no row references, and abandoned temp files, older than the grace period.

        The grace period protects blobs of an ingest that has renamed its files but not yet
        committed its rows.
        """
        cutoff = time.time() - grace_seconds
        removed = 0
        if self._objects is not None:
            removed = self._collect_objects(self._objects, referenced, cutoff)
        for digest, path in list(self.iter_digests()):
            if digest not in referenced and (
                self._objects is not None or path.stat().st_mtime < cutoff
            ):
                # A cache entry of an unreferenced object goes at once: the object is the
                # truth, and a later read fetches it again if it is still there.
                path.unlink(missing_ok=True)
                if self._objects is None:
                    removed += 1
        for path in self.tmp_root.iterdir():
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def remove(self, digests: Iterable[str], *, grace_seconds: float) -> int:
        """Delete these blobs, which no row refers to any more, unless written (or renewed by an
        ingest of the same content) within the grace period; returns how many went. With an
        object store the cache entry goes and the object is left to `collect_garbage`."""
        cutoff = time.time() - grace_seconds
        removed = 0
        for digest in digests:
            path = self._local_path(digest)
            try:
                if self._objects is None and path.stat().st_mtime >= cutoff:
                    continue
                path.unlink()
            except FileNotFoundError:
                continue
            removed += self._objects is None
        return removed

    @staticmethod
    def _collect_objects(objects: ObjectStore, referenced: set[str], cutoff: float) -> int:
        """Delete unreferenced objects older than `cutoff`; every replica may run this at
        once (deleting a deleted key is a no-op in S3)."""
        doomed = [
            stored.key
            for stored in objects.list_objects()
            if stored.digest not in referenced and stored.modified.timestamp() < cutoff
        ]
        objects.delete_objects(doomed)
        return len(doomed)

    def _sync_filesystem(self) -> None:
        assert _syncfs is not None  # noqa: S101
        fd = os.open(self.root, os.O_RDONLY)
        try:
            if _syncfs(fd) != 0:
                errno = ctypes.get_errno()
                raise OSError(errno, os.strerror(errno), str(self.root))
        finally:
            os.close(fd)


def _fsync_path(path: Path, syncing: threading.Event | None = None) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if syncing is not None:
            syncing.set()
        os.fsync(fd)
    finally:
        os.close(fd)
