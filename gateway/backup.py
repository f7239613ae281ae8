"""A user's backup and restore: export to Maildir or mbox, import from either.

Maildir export is lossless: bytes, flags (info suffix), keywords (`dovecot-keywords`, the file
Dovecot and mbsync read) and internal dates (file mtime). Folders use the "fs" layout: mailbox
`a/b` is the Maildir `DIR/a/b`. mbox is for interoperability: the format itself quotes `From `
lines and carries flags in Status/X-Status headers, so it cannot be byte-exact.
"""

from __future__ import annotations

import mailbox
import os
import secrets
import shutil
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from gateway.progress import NoProgress, ProgressReporter
from gateway.store import MailboxInfo, MailStore, NewMessage, NotFoundError
from gateway.store.flags import ANSWERED, DELETED, DRAFT, FLAGGED, SEEN
from gateway.store.views import EntryInfo

# Maildir info letters (https://cr.yp.to/proto/maildir.html), in the required ASCII order.
_MAILDIR_LETTERS = (("D", DRAFT), ("F", FLAGGED), ("R", ANSWERED), ("S", SEEN), ("T", DELETED))
# mbox Status/X-Status letters as Python's mailbox.mboxMessage uses them; \Draft has none.
_MBOX_LETTERS = (("R", SEEN), ("A", ANSWERED), ("F", FLAGGED), ("D", DELETED))
_MBOX_NAMES = (("R", "\\Seen"), ("A", "\\Answered"), ("F", "\\Flagged"), ("D", "\\Deleted"))
_KEYWORD_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_KEYWORDS_FILE = "dovecot-keywords"
_IMPORT_BATCH = 200


class UnsafePathError(ValueError):
    """A path built from a mailbox or file name would leave the export or import directory."""


def confined_path(directory: Path, mailbox_name: str, suffix: str = "") -> Path:
    """Where mailbox `mailbox_name` goes under `directory`, whatever the stored name holds.

    Levels no file system name may be (`.`, `..`, empty, with NUL) are written escaped, so
    `a/../x` is `a/%2E%2E/x`; a path that still resolves outside (a symlink placed in the
    target) is refused.
    """
    levels = [_safe_level(level) for level in mailbox_name.split("/")]
    levels[-1] += suffix
    path = directory.joinpath(*levels)
    _require_inside(directory, path)
    return path


def _safe_level(level: str) -> str:
    if level in ("", ".", ".."):
        return "%2E" * len(level) or "%"
    return level.replace("\x00", "%00").replace(os.sep, "%2F")


def _require_inside(directory: Path, path: Path) -> None:
    root = directory.resolve()
    if not path.resolve().is_relative_to(root):
        raise UnsafePathError(f"{path} resolves outside {root}")


def _mailboxes_with_entries(
    store: MailStore, user_id: int, progress: ProgressReporter
) -> list[tuple[MailboxInfo, list[EntryInfo]]]:
    """Every mailbox with its entries, read first so the progress bar knows the total."""
    listed = [
        (info, store.list_entries(mailbox_id=info.id))
        for info in store.list_mailboxes(user_id=user_id)
    ]
    progress.set_total(sum(len(entries) for _info, entries in listed))
    return listed


def export_maildir(
    store: MailStore,
    *,
    user_id: int,
    directory: Path,
    progress: ProgressReporter | None = None,
) -> int:
    """Write every mailbox of a user as a Maildir under `directory`; returns messages written."""
    progress = progress or NoProgress()
    written = 0
    for info, entries in _mailboxes_with_entries(store, user_id, progress):
        folder = confined_path(directory, info.name)
        for sub in ("cur", "new", "tmp"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        keywords = sorted({k for entry in entries for k in entry.keywords})[: len(_KEYWORD_LETTERS)]
        letter_for = dict(zip(keywords, _KEYWORD_LETTERS, strict=False))
        if keywords:
            lines = "".join(f"{index} {name}\n" for index, name in enumerate(keywords))
            (folder / _KEYWORDS_FILE).write_text(lines)
        metadata = store.get_messages(message_ids=[entry.message_id for entry in entries])
        for entry in entries:
            info_letters = "".join(letter for letter, bit in _MAILDIR_LETTERS if entry.flags & bit)
            info_letters += "".join(
                sorted(letter_for[k] for k in entry.keywords if k in letter_for)
            )
            name = f"{time.time_ns()}.{secrets.token_hex(6)}.{socket.gethostname()}"
            tmp_path = folder / "tmp" / name
            with (
                store.open_message(message_id=entry.message_id) as source,
                tmp_path.open("xb") as out,
            ):
                shutil.copyfileobj(source, out, 1024 * 1024)
            stamp = metadata[entry.message_id].internal_date.timestamp()
            os.utime(tmp_path, (stamp, stamp))
            os.replace(tmp_path, folder / "cur" / f"{name}:2,{info_letters}")
            written += 1
            progress.advance()
    return written


def export_mbox(
    store: MailStore,
    *,
    user_id: int,
    directory: Path,
    progress: ProgressReporter | None = None,
) -> int:
    """Write every mailbox of a user as `<name>.mbox` files under `directory`."""
    progress = progress or NoProgress()
    written = 0
    for info, entries in _mailboxes_with_entries(store, user_id, progress):
        # Appended, not with_suffix: mailbox "a.b" is a.b.mbox, not a.mbox.
        path = confined_path(directory, info.name, ".mbox")
        path.parent.mkdir(parents=True, exist_ok=True)
        box = mailbox.mbox(path, create=True)
        box.lock()
        try:
            metadata = store.get_messages(message_ids=[entry.message_id for entry in entries])
            for entry in entries:
                with store.open_message(message_id=entry.message_id) as source:
                    message = mailbox.mboxMessage(source.read())
                message.set_flags(
                    "".join(letter for letter, bit in _MBOX_LETTERS if entry.flags & bit)
                )
                message.set_from(
                    "MAILER-DAEMON", metadata[entry.message_id].internal_date.timetuple()
                )
                box.add(message)
                written += 1
                progress.advance()
            box.flush()
        finally:
            box.unlock()
            box.close()
    return written


def import_path(
    store: MailStore,
    *,
    user_id: int,
    path: Path,
    mailbox_name: str | None = None,
    progress: ProgressReporter | None = None,
) -> int:
    """Import a Maildir tree, an mbox file or a directory of mbox files; returns messages added.

    `progress` advances per message read (the total is not known in advance)."""
    progress = progress or NoProgress()
    imported = 0
    for name, messages in _discover(path, mailbox_name):
        try:
            target = store.get_mailbox(user_id=user_id, name=name)
        except NotFoundError:
            target = store.create_mailbox(user_id=user_id, name=name)
        batch: list[NewMessage] = []
        for content, flags, internal_date in messages:
            batch.append(NewMessage(target.id, content, flags, internal_date))
            progress.advance(label=name)
            if len(batch) >= _IMPORT_BATCH:
                imported += len(store.append_messages(items=batch, actor="import"))
                batch = []
        if batch:
            imported += len(store.append_messages(items=batch, actor="import"))
    return imported


_Imported = Iterator[tuple[bytes, list[str], datetime | None]]


def _discover(path: Path, mailbox_name: str | None) -> Iterator[tuple[str, _Imported]]:
    if path.is_file():
        yield mailbox_name or _mailbox_name_for_file(path), _read_mbox(path)
        return
    if not path.is_dir():
        raise FileNotFoundError(f"nothing to import at {path}")
    for folder in sorted([path, *[p for p in path.rglob("*") if p.is_dir()]]):
        relative = folder.relative_to(path)
        if (folder / "cur").is_dir():
            _require_inside(path, folder)
            for sub in ("cur", "new"):
                for entry in (folder / sub).glob("*"):
                    # A message file linked to /etc/shadow must not become a message.
                    _require_inside(path, entry)
            yield _maildir_folder_name(relative, mailbox_name), _read_maildir(folder)
    for file in sorted(path.rglob("*.mbox")):
        _require_inside(path, file)
        yield _mailbox_name_for_file(file.relative_to(path)), _read_mbox(file)


def _maildir_folder_name(relative: Path, override: str | None) -> str:
    if relative == Path("."):
        return override or "INBOX"
    parts = list(relative.parts)
    if len(parts) == 1 and parts[0].startswith("."):
        # Maildir++ subfolder of a root Maildir: ".Sent" or ".Lists.python".
        return "/".join(parts[0][1:].split("."))
    return "/".join(parts)


def _mailbox_name_for_file(path: Path) -> str:
    if path.suffix != ".mbox":
        return "INBOX"
    return "/".join(path.with_name(path.name.removesuffix(".mbox")).parts)


def _read_maildir(folder: Path) -> _Imported:
    keywords = _read_keywords(folder)
    box = mailbox.Maildir(folder, factory=None, create=False)
    for key in sorted(box.keys()):
        message = box.get_message(key)
        flags = [name for letter, name in _LETTER_NAMES if letter in message.get_flags()]
        flags += [keywords[c] for c in message.get_flags() if c in keywords]
        internal_date = datetime.fromtimestamp(message.get_date(), UTC)
        with box.get_file(key) as handle:
            yield handle.read(), flags, internal_date


def _read_keywords(folder: Path) -> dict[str, str]:
    path = folder / _KEYWORDS_FILE
    if not path.exists():
        return {}
    result: dict[str, str] = {}
    for line in path.read_text(errors="replace").splitlines():
        index, _, name = line.partition(" ")
        if index.isdigit() and int(index) < len(_KEYWORD_LETTERS) and name:
            result[_KEYWORD_LETTERS[int(index)]] = name
    return result


def _read_mbox(path: Path) -> _Imported:
    box = mailbox.mbox(path, create=False)
    for key in list(box.iterkeys()):
        message = box.get_message(key)
        flags = [name for letter, name in _MBOX_NAMES if letter in message.get_flags()]
        # get_bytes leaves out the From_ line: it is mbox framing, not part of the message.
        yield box.get_bytes(key), flags, None


_LETTER_NAMES = (
    ("D", "\\Draft"),
    ("F", "\\Flagged"),
    ("R", "\\Answered"),
    ("S", "\\Seen"),
    ("T", "\\Deleted"),
)
