"""Mailbox operations: the folder tree, subscriptions and per-mailbox counters."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, case, delete, func
from sqlalchemy import select as select_columns
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from gateway.store.base import StoreBase, mailbox_view
from gateway.store.errors import (
    AlreadyExistsError,
    InvalidOperationError,
    LimitExceededError,
    NotFoundError,
)
from gateway.store.flags import SEEN
from gateway.store.models import Mailbox, MailboxEntry, Message, Subscription
from gateway.store.tables import MAILBOX_INFO_COLUMNS, MAILBOXES
from gateway.store.views import MailboxInfo, MailboxStatus

SEPARATOR = "/"
INBOX = "INBOX"
SPECIAL_USES = ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")


_MAILBOX_BY_NAME = select_columns(*MAILBOX_INFO_COLUMNS).where(
    MAILBOXES.c.user_id == bindparam("user_id"), MAILBOXES.c.name == bindparam("name")
)


def normalize_mailbox_name(name: str) -> str:
    """Canonical form: INBOX case-folded (RFC 3501 §5.1), no empty hierarchy levels."""
    parts = name.split(SEPARATOR)
    if name.endswith(SEPARATOR):
        parts = parts[:-1]  # RFC 3501 §6.3.3: a trailing separator only declares intent.
    if not parts or any(part == "" for part in parts):
        raise InvalidOperationError(f"invalid mailbox name: {name!r}")
    if any(ord(char) < 32 or char == "\x7f" for char in name):
        raise InvalidOperationError("mailbox name contains control characters")
    if parts[0].upper() == INBOX:
        parts[0] = INBOX
    return SEPARATOR.join(parts)


# Hierarchy levels no client needs and that a path built from the name would walk out with
# (`gateway export` joins the levels into a directory path).
_RESERVED_LEVELS = frozenset({".", ".."})


@dataclass(frozen=True)
class MailboxLimits:
    """What one user may create (settings `imap_max_mailboxes`, `…_depth`, `…_name_length`)."""

    max_mailboxes: int = 1000
    max_depth: int = 20
    max_name_length: int = 1024


def check_new_mailbox_name(name: str, limits: MailboxLimits | None) -> None:
    """Refuse a name CREATE or RENAME must not bring into being (normalised `name`)."""
    levels = name.split(SEPARATOR)
    if any(level in _RESERVED_LEVELS for level in levels):
        raise InvalidOperationError("mailbox name levels . and .. are reserved")
    if limits is None:
        return
    if len(name) > limits.max_name_length:
        raise LimitExceededError(f"mailbox name longer than {limits.max_name_length} characters")
    if len(levels) > limits.max_depth:
        raise LimitExceededError(f"mailbox hierarchy deeper than {limits.max_depth} levels")


class MailboxOperations(StoreBase):
    def list_mailboxes(self, *, user_id: int) -> list[MailboxInfo]:
        with self.database.read() as session:
            rows = session.exec(
                select(Mailbox).where(Mailbox.user_id == user_id).order_by(col(Mailbox.name))
            )
            return [mailbox_view(mailbox) for mailbox in rows]

    def get_mailbox(
        self, *, user_id: int, name: str, include_noselect: bool = False
    ) -> MailboxInfo:
        """A mailbox by name; every IMAP SELECT, STATUS, APPEND and COPY starts here, so it
        runs a statement compiled once on a bare cursor rather than through the ORM."""
        params = {"user_id": user_id, "name": normalize_mailbox_name(name)}
        with self.database.raw_read() as connection:
            rows = self.database.raw_query(_MAILBOX_BY_NAME).run(connection, params)
        if not rows or (rows[0][-1] and not include_noselect):
            # A \Noselect name (RFC 3501 §6.3.4) holds no messages: nothing opens it.
            raise NotFoundError(f"no such mailbox: {name}")
        return MailboxInfo(*rows[0])

    def list_subscriptions(self, *, user_id: int) -> list[str]:
        """Subscribed names, whether or not a mailbox of that name exists (RFC 3501 §6.3.9)."""
        with self.database.read() as session:
            return list(
                session.exec(
                    select(Subscription.name)
                    .where(Subscription.user_id == user_id)
                    .order_by(col(Subscription.name))
                )
            )

    def create_mailbox(
        self,
        *,
        user_id: int,
        name: str,
        special_use: str | None = None,
        limits: MailboxLimits | None = None,
        subscribe: bool = True,
    ) -> MailboxInfo:
        """Create a mailbox and any missing parents (RFC 3501 §6.3.3) within `limits`.

        Mailboxes the gateway makes (fetched folders, restores) are subscribed so every client
        shows them; an IMAP CREATE passes `subscribe=False` and leaves that to the client, as
        Dovecot does.
        """
        name = normalize_mailbox_name(name)
        check_new_mailbox_name(name, limits)
        if special_use is not None and special_use not in SPECIAL_USES:
            raise InvalidOperationError(f"unknown special use: {special_use}")
        try:
            with self.database.write() as session:
                existing = self._find(session, user_id, name)
                if existing is not None and not existing.noselect:
                    raise AlreadyExistsError(f"mailbox already exists: {name}")
                levels = name.split(SEPARATOR)
                missing = [
                    SEPARATOR.join(levels[:depth])
                    for depth in range(1, len(levels))
                    if self._find(session, user_id, SEPARATOR.join(levels[:depth])) is None
                ]
                self._check_room(session, user_id, len(missing) + (existing is None), limits)
                for parent in missing:
                    self._insert_mailbox(session, user_id, parent, None)
                if subscribe:
                    for subscribed in [*missing, name]:
                        self._subscribe(session, user_id, subscribed)
                if existing is not None:
                    # Creating a \Noselect name makes it a mailbox again, as Dovecot does.
                    existing.noselect = False
                    existing.special_use = special_use
                    session.add(existing)
                    return mailbox_view(existing)
                return mailbox_view(self._insert_mailbox(session, user_id, name, special_use))
        except IntegrityError as error:
            raise AlreadyExistsError(f"mailbox already exists: {name}") from error

    def delete_mailbox(self, *, user_id: int, name: str) -> None:
        """Delete a mailbox and its messages (RFC 3501 §6.3.4): a mailbox with inferiors
        keeps its name as a Noselect one, so the inferiors keep their parent. Its subscription
        stays (§6.3.9)."""
        name = normalize_mailbox_name(name)
        if name == INBOX:
            raise InvalidOperationError("INBOX cannot be deleted")
        with self.database.write() as session:
            mailbox = self._mailbox_by_name(session, user_id, name)
            has_inferiors = self._has_inferiors(session, user_id, name)
            if mailbox.noselect and has_inferiors:
                raise InvalidOperationError(
                    f"{name} has inferior mailboxes and holds no messages: delete those first"
                )
            message_ids = set(
                session.exec(
                    select(MailboxEntry.message_id).where(MailboxEntry.mailbox_id == mailbox.id)
                )
            )
            # Sessions that have it selected learn of the deletion from a higher MODSEQ.
            assert mailbox.id is not None  # noqa: S101
            gone = {mailbox.id: (user_id, mailbox.highestmodseq + 1)}
            if has_inferiors:
                session.execute(
                    delete(MailboxEntry).where(col(MailboxEntry.mailbox_id) == mailbox.id)
                )
                mailbox.noselect = True
                mailbox.special_use = None
                mailbox.highestmodseq += 1
                session.add(mailbox)
            else:
                session.delete(mailbox)
            session.flush()
            self._delete_unreferenced_messages(session, message_ids)
        self._notify(gone, "delete")

    def rename_mailbox(
        self,
        *,
        user_id: int,
        old_name: str,
        new_name: str,
        limits: MailboxLimits | None = None,
    ) -> MailboxInfo:
        """Rename a mailbox with its inferiors; renaming INBOX moves its messages instead."""
        old_name = normalize_mailbox_name(old_name)
        new_name = normalize_mailbox_name(new_name)
        check_new_mailbox_name(new_name, limits)
        try:
            return self._rename_mailbox(user_id, old_name, new_name, limits)
        except IntegrityError as error:
            # Another session created a clashing name meanwhile: a clear NO, not a crash.
            raise AlreadyExistsError(f"mailbox already exists: {new_name}") from error

    def _rename_mailbox(
        self, user_id: int, old_name: str, new_name: str, limits: MailboxLimits | None
    ) -> MailboxInfo:
        with self.database.write() as session:
            mailbox = self._mailbox_by_name(session, user_id, old_name)
            if self._find(session, user_id, new_name) is not None:
                raise AlreadyExistsError(f"mailbox already exists: {new_name}")
            if new_name.startswith(old_name + SEPARATOR):
                raise InvalidOperationError("cannot rename a mailbox into its own inferior")
            if old_name == INBOX:
                return mailbox_view(self._rename_inbox(session, mailbox, new_name))
            inferiors = session.exec(
                select(Mailbox).where(
                    Mailbox.user_id == user_id,
                    col(Mailbox.name).startswith(old_name + SEPARATOR, autoescape=True),
                )
            ).all()
            renamed = {box.name: new_name + box.name[len(old_name) :] for box in inferiors}
            for target in renamed.values():
                check_new_mailbox_name(target, limits)
                if self._find(session, user_id, target) is not None:
                    raise AlreadyExistsError(f"mailbox already exists: {target}")
            levels = new_name.split(SEPARATOR)
            missing = [
                SEPARATOR.join(levels[:depth])
                for depth in range(1, len(levels))
                if self._find(session, user_id, SEPARATOR.join(levels[:depth])) is None
            ]
            self._check_room(session, user_id, len(missing), limits)
            mailbox.name = new_name
            session.add(mailbox)
            for inferior in inferiors:
                inferior.name = renamed[inferior.name]
                session.add(inferior)
            self._rename_subscriptions(session, user_id, old_name, new_name)
            session.flush()
            for parent in missing:
                self._insert_mailbox(session, user_id, parent, None)
            return mailbox_view(mailbox)

    def set_subscribed(self, *, user_id: int, name: str, subscribed: bool) -> None:
        """SUBSCRIBE needs the mailbox to exist (RFC 3501 §6.3.6 allows the check);
        UNSUBSCRIBE works on any name, existing, subscribed or not (nothing to undo)."""
        name = normalize_mailbox_name(name)
        with self.database.write() as session:
            existing = session.get(Subscription, (user_id, name))
            if not subscribed:
                if existing is not None:
                    session.delete(existing)
                return
            self._mailbox_by_name(session, user_id, name)
            if existing is None:
                self._subscribe(session, user_id, name)

    def mailbox_status(self, *, mailbox_id: int) -> MailboxStatus:
        """Counters for STATUS/SELECT in one round trip."""
        with self.database.read() as session:
            mailbox = self._mailbox(session, mailbox_id)
            row = session.exec(
                select(
                    func.count(),
                    func.coalesce(func.sum(col(Message.size)), 0),
                    func.coalesce(
                        func.sum(case((col(MailboxEntry.flags).op("&")(SEEN) == 0, 1), else_=0)),
                        0,
                    ),
                )
                .select_from(MailboxEntry)
                .join(Message, col(Message.id) == col(MailboxEntry.message_id))
                .where(MailboxEntry.mailbox_id == mailbox_id)
            ).one()
            return MailboxStatus(
                mailbox=mailbox_view(mailbox),
                messages=int(row[0]),
                size=int(row[1]),
                unseen=int(row[2]),
            )

    # --- helpers --------------------------------------------------------------------------

    def _rename_inbox(self, session: Session, inbox: Mailbox, new_name: str) -> Mailbox:
        # RFC 3501 §6.3.5: renaming INBOX moves all its messages to a new mailbox and leaves
        # INBOX empty; inferiors of INBOX are not renamed.
        assert inbox.id is not None  # noqa: S101
        target = self._insert_mailbox(session, inbox.user_id, new_name, None)
        assert target.id is not None  # noqa: S101
        entries = session.exec(
            select(MailboxEntry)
            .where(MailboxEntry.mailbox_id == inbox.id)
            .order_by(col(MailboxEntry.uid))
        ).all()
        if entries:
            self._bump_mailbox(session, inbox.id, 0)
            first_uid, modseq = self._bump_mailbox(session, target.id, len(entries))
            for offset, entry in enumerate(entries):
                entry.mailbox_id = target.id
                entry.uid = first_uid + offset
                entry.modseq = modseq
                session.add(entry)
        return target

    @staticmethod
    def _subscribe(session: Session, user_id: int, name: str) -> None:
        if session.get(Subscription, (user_id, name)) is None:
            session.add(Subscription(user_id=user_id, name=name))
            session.flush()

    @staticmethod
    def _rename_subscriptions(session: Session, user_id: int, old_name: str, new_name: str) -> None:
        """A renamed mailbox and its inferiors stay subscribed under their new names."""
        subscribed = session.exec(
            select(Subscription).where(
                Subscription.user_id == user_id,
                (col(Subscription.name) == old_name)
                | col(Subscription.name).startswith(old_name + SEPARATOR, autoescape=True),
            )
        ).all()
        renamed = {new_name + row.name[len(old_name) :] for row in subscribed}
        for row in subscribed:
            session.delete(row)
        session.flush()
        for name in renamed:
            MailboxOperations._subscribe(session, user_id, name)

    def _insert_mailbox(
        self, session: Session, user_id: int, name: str, special_use: str | None
    ) -> Mailbox:
        mailbox = Mailbox(
            user_id=user_id,
            name=name,
            special_use=special_use,
            uidvalidity=self._allocate_uidvalidity(session),
        )
        session.add(mailbox)
        session.flush()
        return mailbox

    @staticmethod
    def _has_inferiors(session: Session, user_id: int, name: str) -> bool:
        return (
            session.exec(
                select(Mailbox.id).where(
                    Mailbox.user_id == user_id,
                    col(Mailbox.name).startswith(name + SEPARATOR, autoescape=True),
                )
            ).first()
            is not None
        )

    @staticmethod
    def _check_room(
        session: Session, user_id: int, adding: int, limits: MailboxLimits | None
    ) -> None:
        if limits is None or adding <= 0:
            return
        count = session.exec(
            select(func.count()).select_from(Mailbox).where(Mailbox.user_id == user_id)
        ).one()
        if count + adding > limits.max_mailboxes:
            raise LimitExceededError(f"at most {limits.max_mailboxes} mailboxes per user")

    @staticmethod
    def _find(session: Session, user_id: int, name: str) -> Mailbox | None:
        return session.exec(
            select(Mailbox).where(Mailbox.user_id == user_id, Mailbox.name == name)
        ).first()

    def _mailbox_by_name(self, session: Session, user_id: int, name: str) -> Mailbox:
        mailbox = self._find(session, user_id, normalize_mailbox_name(name))
        if mailbox is None:
            raise NotFoundError(f"no such mailbox: {name}")
        return mailbox
