"""The local cache of blob objects: the files FETCH reads when blobs live in an object store.

Cache files are not fsynced (the object is the durable copy). A power loss could leave a cache
file renamed into place but short, so the cache remembers the boot it was written in and is
emptied when the machine has booted since; a process that merely crashed (kill -9) loses
nothing the kernel had accepted. Past `max_bytes` the oldest entries go first.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path

log = logging.getLogger("gateway.store.blobs")

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
_BOOT_MARK = "boot_id"
# After a trim the cache holds at most this share of its limit, so trims stay rare.
_TRIM_TO = 0.8


def _current_boot() -> str:
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:
        return "unknown"  # not Linux: every start is treated as a new boot


class BlobCache:
    """Entries `root/ab/<hash>` beside the blob store's `root/tmp/`, bounded in size."""

    def __init__(self, root: Path, *, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._forget_other_boots()
        self._bytes = sum(size for size, _, _ in self._entries())

    def keep(self, source: Path, final: Path, size: int) -> None:
        """Move a complete file into the cache under its final name."""
        try:
            os.replace(source, final)
        except FileNotFoundError:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, final)
        with self._lock:
            self._bytes += size
            over = self._bytes > self.max_bytes
        if over:
            self.trim()

    def trim(self) -> None:
        """Remove the oldest entries until the cache is back under its share of the limit."""
        with self._lock:
            entries = sorted(self._entries(), key=lambda entry: entry[1])
            total = sum(size for size, _, _ in entries)
            target = int(self.max_bytes * _TRIM_TO)
            for size, _, path in entries:
                if total <= target:
                    break
                path.unlink(missing_ok=True)
                total -= size
            self._bytes = total

    def _entries(self) -> list[tuple[int, float, Path]]:
        entries: list[tuple[int, float, Path]] = []
        for shard in self.root.iterdir():
            if len(shard.name) != 2 or not shard.is_dir():
                continue
            for path in shard.iterdir():
                try:
                    status = path.stat()
                except FileNotFoundError:
                    continue  # removed meanwhile by another process
                entries.append((status.st_size, status.st_mtime, path))
        return entries

    def _forget_other_boots(self) -> None:
        mark = self.root / _BOOT_MARK
        boot = _current_boot()
        try:
            recorded = mark.read_text().strip()
        except FileNotFoundError:
            recorded = None
        if recorded == boot and boot != "unknown":
            return
        for shard in self.root.iterdir():
            if len(shard.name) == 2 and shard.is_dir():
                shutil.rmtree(shard, ignore_errors=True)
        mark.write_text(boot + "\n")
        if recorded is not None:
            log.info("event=blob_cache_cleared reason=new_boot")
