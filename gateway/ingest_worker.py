"""The CPU half of the store's ingest: temp blob file, hash, MIME analysis, row values.

Kept apart from `gateway.store` so that worker processes import only `gateway.mime` and start
quickly. Only the store calls into it; the parent makes the files durable and commits rows.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import secrets
import signal
import threading
import time
from pathlib import Path

from gateway.mime import AnalyzedMessage, analyze_message, parts_to_json

# Column name → value for one row of the store's `messages` table.
MessageColumns = dict[str, object]

_PR_SET_PDEATHSIG = 1


def start_worker(parent: int) -> None:
    """Initializer: die with the parent `parent`, even when it is killed with SIGKILL.

    A kill -9 of the gateway must not leave workers behind holding its files and pipes.
    """
    name = ctypes.util.find_library("c")
    if name is not None:
        libc = ctypes.CDLL(name, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    # The parent may have died while this process was still starting, before prctl.
    if os.getppid() != parent:
        os._exit(1)
    # Covers systems without prctl.
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def write_temporary(tmp_root: Path, content: bytes) -> tuple[Path, str]:
    """Write `content` to a new temp file under `tmp_root`; returns (path, sha256 hex)."""
    tmp_path = tmp_root / f"{secrets.token_hex(12)}.tmp"
    with tmp_path.open("xb") as handle:
        handle.write(content)
    return tmp_path, hashlib.sha256(content).hexdigest()


def write_and_analyze(job: tuple[Path, bytes]) -> tuple[Path, str, MessageColumns]:
    tmp_root, content = job
    tmp_path, digest = write_temporary(tmp_root, content)
    return tmp_path, digest, message_columns(analyze_message(content))


def message_columns(analysis: AnalyzedMessage) -> MessageColumns:
    """The `messages` columns that depend on content alone, ready to insert."""
    return {
        "sent_date": analysis.sent_date,
        "message_id_header": None
        if analysis.message_id is None
        else _clean_text(analysis.message_id),
        "subject": _clean_text(analysis.subject),
        "from_addr": _clean_text(analysis.from_addr),
        "to_addr": _clean_text(analysis.to_addr),
        "cc_addr": _clean_text(analysis.cc_addr),
        "bcc_addr": _clean_text(analysis.bcc_addr),
        "envelope": analysis.envelope,
        "bodystructure": analysis.bodystructure,
        "body": analysis.body,
        "parts_json": parts_to_json(analysis.parts),
        "header_text": _clean_text(analysis.header_text),
        "body_text": _clean_text(analysis.body_text),
        "body_text_truncated": analysis.body_text_truncated,
    }


def _clean_text(text: str) -> str:
    """Make decoded text storable on every backend: PostgreSQL rejects NUL and lone surrogates."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text.encode("utf-8", "replace").decode("utf-8")
