"""The CPU half of the store's ingest: temp blob file, hash, MIME analysis, row values.

Kept apart from `gateway.store` so that worker processes import only `gateway.mime` and start
quickly. Only the store calls into it; the parent makes the files durable and commits rows.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time
from pathlib import Path

from gateway.mime import AnalyzedMessage, analyze_message, parts_to_json, search_text

# Column name → value for one row of the store's `messages` table, and its `message_texts`.
MessageColumns = dict[str, object]
# The columns of MessageColumns that belong in `message_texts`.
TEXT_COLUMNS = ("header_text", "body_text", "body_text_truncated")

_WATCH_INTERVAL = 0.5  # seconds between checks that the gateway still runs
# The module the forkserver preloads, so that workers fork with it already imported.
WORKER_MODULE = __name__


def start_worker(gateway_pid: int) -> None:
    """Initializer: exit when the gateway process `gateway_pid` is gone, even after SIGKILL.

    Workers are forked by the multiprocessing forkserver, which lives as long as any worker
    does, so parent-death signals never fire; a kill -9 of the gateway must still not leave
    workers (and the forkserver) behind holding its files and pipes.
    """
    if not _is_alive(gateway_pid):
        os._exit(1)
    threading.Thread(target=_exit_when_gone, args=(gateway_pid,), daemon=True).start()


def _exit_when_gone(pid: int) -> None:
    while _is_alive(pid):
        time.sleep(_WATCH_INTERVAL)
    os._exit(1)


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed process stays a zombie until reaped; it is gone for our purposes.
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b") ", 1)[1][:1] != b"Z"
    except (OSError, IndexError):
        return True


def worker_ready() -> None:
    """A task that does nothing: submitted to start the workers ahead of real work."""


def write_temporary(tmp_root: Path, content: bytes) -> tuple[Path, str]:
    """Write `content` to a new temp file under `tmp_root`; returns (path, sha256 hex)."""
    tmp_path = tmp_root / f"{secrets.token_hex(12)}.tmp"
    with tmp_path.open("xb") as handle:
        handle.write(content)
    return tmp_path, hashlib.sha256(content).hexdigest()


def write_and_analyze(job: tuple[Path, bytes, bool]) -> tuple[Path, str, MessageColumns]:
    tmp_root, content, search_text = job
    tmp_path, digest = write_temporary(tmp_root, content)
    analysis = analyze_message(content, search_text=search_text)
    return tmp_path, digest, message_columns(analysis, search_text=search_text)


def analyze_stored(job: tuple[Path, bool]) -> MessageColumns:
    """The columns of a message whose blob is already stored (read here, not sent over)."""
    path, search_text = job
    analysis = analyze_message(path.read_bytes(), search_text=search_text)
    return message_columns(analysis, search_text=search_text)


def search_text_of(path: Path) -> tuple[str, bool] | str:
    """(body_text, body_text_truncated) of a stored message, for the search indexer, or why
    it could not be read. Never raises: one bad message must not stop the indexing of others."""
    try:
        content = path.read_bytes()
    except OSError as error:
        return type(error).__name__
    try:
        text, truncated = search_text(content)
    except Exception as error:  # a decoding bug must not stall every message behind this one
        return f"{type(error).__name__}: {error}"
    return storable_text(text), truncated


def message_columns(analysis: AnalyzedMessage, *, search_text: bool = True) -> MessageColumns:
    """The `messages` and `message_texts` columns that depend on content alone; without
    `search_text` the analysis skipped the body text, which the search indexer adds later."""
    return {
        "sent_date": analysis.sent_date,
        "message_id_header": None
        if analysis.message_id is None
        else storable_text(analysis.message_id),
        "subject": storable_text(analysis.subject),
        "from_addr": storable_text(analysis.from_addr),
        "to_addr": storable_text(analysis.to_addr),
        "cc_addr": storable_text(analysis.cc_addr),
        "bcc_addr": storable_text(analysis.bcc_addr),
        "envelope": analysis.envelope,
        "bodystructure": analysis.bodystructure,
        "body": analysis.body,
        "parts_json": parts_to_json(analysis.parts),
        "header_text": storable_text(analysis.header_text),
        "body_text": storable_text(analysis.body_text),
        "body_text_truncated": analysis.body_text_truncated,
        "search_pending": not search_text and analysis.body_text_truncated,
    }


def storable_text(text: str) -> str:
    """Make decoded text storable on every backend: PostgreSQL rejects NUL and lone surrogates."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if text.isascii():  # a flag lookup in CPython: most text needs no re-encoding
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text
