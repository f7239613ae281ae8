"""Owner-only modes for what the store keeps on disk, whatever the process umask.

The database holds password hashes and the blob directory holds mail: created 644/755 under
the usual umask 022, any local user could read them. Directories get 700 and the SQLite
files 600, at every start, so an older installation is tightened too.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
# SQLite creates the WAL and shared-memory files with the database file's mode.
_SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def make_private_dir(path: Path) -> None:
    """Create `path` (and parents) if missing and leave it readable by its owner only."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o777 != PRIVATE_DIR_MODE:
        path.chmod(PRIVATE_DIR_MODE)


def make_private_sqlite_file(path: Path) -> None:
    """Create the SQLite database file 600 before SQLite does (it would use 644)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
    os.close(fd)
    for suffix in _SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists() and companion.stat().st_mode & 0o777 != PRIVATE_FILE_MODE:
            companion.chmod(PRIVATE_FILE_MODE)
