"""Reads that never block (gateway/store/nowait_read.py), against the real page cache.

Evicting pages (posix_fadvise) and dentries (/proc/sys/vm/drop_caches, as root) is how these
tests make a file "not in memory"; the machine's Linux must support openat2 and RWF_NOWAIT.
"""

from __future__ import annotations

import os
from pathlib import Path

from gateway.store import nowait_read
from gateway.store.blobs import BlobStore


def _evict_pages(path: Path) -> None:
    # DONTNEED skips dirty and writeback pages: on a loaded machine one pass can leave them
    # cached, so sync, flush and drop twice (as tests/imap/test_loop_fetch.py does).
    for _ in range(2):
        os.sync()
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def test_this_machine_supports_non_blocking_reads() -> None:
    assert nowait_read.supported(), "Linux 5.12+ with openat2(RESOLVE_CACHED) is required"


def test_a_cached_file_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    data = os.urandom(200_000)
    path.write_bytes(data)
    assert nowait_read.read_if_cached(str(path), len(data)) == data
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert nowait_read.read_if_cached(str(empty), 0) == b""


def test_pages_not_in_memory_are_not_read(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"x" * 100_000)
    _evict_pages(path)
    assert nowait_read.read_if_cached(str(path), 1 << 20) is None
    path.read_bytes()
    assert nowait_read.read_if_cached(str(path), 1 << 20) == b"x" * 100_000


def test_a_path_not_in_the_dentry_cache_is_not_opened(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "blob"
    path.parent.mkdir()
    path.write_bytes(b"content")
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("2")  # dentries and inodes
    assert nowait_read.read_if_cached(str(path), 100) is None
    assert nowait_read.supported()  # EAGAIN is an answer, not a missing feature
    assert path.read_bytes() == b"content"
    assert nowait_read.read_if_cached(str(path), 100) == b"content"


def test_too_large_missing_and_symlinked_files_give_none(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"12345")
    assert nowait_read.read_if_cached(str(path), 4) is None
    assert nowait_read.read_if_cached(str(tmp_path / "missing"), 100) is None
    link = tmp_path / "link"
    link.symlink_to(path)
    assert nowait_read.read_if_cached(str(link), 100) is None
    assert nowait_read.read_if_cached(str(tmp_path), 100) is None  # a directory
    assert nowait_read.supported()


def test_a_fifo_is_neither_waited_for_nor_read(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert nowait_read.read_if_cached(str(fifo), 100) is None  # returns at once, no writer
    assert nowait_read.supported()


def test_blob_store_reads_committed_blobs_if_cached(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "data").symlink_to(real)  # a data directory on a symlinked volume
    blobs = BlobStore(tmp_path / "data" / "blobs")
    pending = blobs.begin()
    pending.write(b"Subject: hi\r\n\r\nbody\r\n")
    blobs.commit([pending])
    assert pending.digest is not None
    assert blobs.read_if_cached(pending.digest, 1 << 20) == b"Subject: hi\r\n\r\nbody\r\n"
    _evict_pages(blobs.path_for(pending.digest))
    assert blobs.read_if_cached(pending.digest, 1 << 20) is None
    assert blobs.read_if_cached("0" * 64, 1 << 20) is None
