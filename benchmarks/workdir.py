"""The benchmarks' scratch space, and why a fresh run may wait a minute after clearing it.

On ext4 without a journal (this VM's root file system has none), allocating an inode skips
those freed in the last 60 s (360 s while their inode table block is still dirty), looking each
one up in the buffer cache. Right after a previous run's tens of thousands of files are deleted,
every new file therefore costs ~0.8 ms of kernel CPU instead of ~0.05 ms, for minutes; the
gateway, Dovecot, mbsync and the other peers all create one file per message, so their figures
would depend on what ran before. A benchmark that clears old files syncs and waits the window
out, unless the machine mounts only journalled file systems.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = ROOT / ".benchmark-work"
_RECENTLY_DELETED_SECONDS = 61
_MANY_FILES = 1000
_PROBE_FILES = 200


def add_location_arguments(parser: argparse.ArgumentParser, subdirectory: str, holds: str) -> None:
    """`--corpus-dir` and `--work-dir`, the same for every benchmark."""
    parser.add_argument(
        "--corpus-dir",
        type=Path,
        default=DEFAULT_ROOT / "corpus",
        help="where the generated corpus is kept and reused (default: .benchmark-work/corpus)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=default_work_root(),
        help=f"its {subdirectory}/ subdirectory is emptied, then holds {holds} "
        "(default: $GATEWAY_BENCH_DIR, else .benchmark-work)",
    )


def default_work_root() -> Path:
    """$GATEWAY_BENCH_DIR, else `.benchmark-work` in the checkout."""
    named = os.environ.get("GATEWAY_BENCH_DIR")
    return Path(named) if named else DEFAULT_ROOT


def clear_and_settle(directory: Path) -> None:
    """Empty `directory` (created if missing); if that freed many inodes, wait them out."""
    freed = sum(len(files) for _, _, files in os.walk(directory)) if directory.exists() else 0
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.sync()
    if freed >= _MANY_FILES and not _has_journal(directory):
        # Unconditionally: a probe of a few hundred files right after the deletion can land on
        # inodes that were not freed and look fast while the run's ten thousand do not.
        print(
            f"removed {freed} files of an earlier run; waiting {_RECENTLY_DELETED_SECONDS} s "
            "for ext4 to stop skipping their inodes (benchmarks/workdir.py)",
            file=sys.stderr,  # stdout may carry a benchmark's --json
            flush=True,
        )
        time.sleep(_RECENTLY_DELETED_SECONDS)
    print(
        f"work dir: {directory} (creating a file: {file_create_ms(directory):.3f} ms CPU)",
        file=sys.stderr,
    )


def _has_journal(directory: Path) -> bool:
    """Whether the file system holding `directory` keeps a jbd2 journal (then ext4 skips
    nothing): /proc/fs/jbd2 lists one `<device>-<inode>` entry per journal."""
    device = os.stat(directory).st_dev
    name = Path(f"/sys/dev/block/{os.major(device)}:{os.minor(device)}").resolve().name
    journals = Path("/proc/fs/jbd2")
    return journals.is_dir() and any(p.name.startswith(f"{name}-") for p in journals.iterdir())


def file_create_ms(directory: Path) -> float:
    """CPU milliseconds to create, write 20 KB to and close one new file in `directory`."""
    probe = directory / f"probe-{secrets.token_hex(4)}"
    probe.mkdir()
    try:
        started = time.process_time()
        for _ in range(_PROBE_FILES):
            with (probe / secrets.token_hex(12)).open("xb") as handle:
                handle.write(b"x" * 20_000)
        return (time.process_time() - started) * 1000 / _PROBE_FILES
    finally:
        shutil.rmtree(probe, ignore_errors=True)
