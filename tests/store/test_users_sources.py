"""Users, identities and sources: hashing, uniqueness, encryption at rest."""

from __future__ import annotations

import time

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from gateway.settings import Settings
from gateway.store import AlreadyExistsError, InvalidOperationError, MailStore, NotFoundError
from gateway.store.secrets_box import SecretBox, SecretDecryptionError


def test_new_user_gets_inbox_and_special_use_folders(store: MailStore) -> None:
    user = store.create_user(name="alice", password="correct horse")
    mailboxes = {m.name: m.special_use for m in store.list_mailboxes(user_id=user.id)}
    assert mailboxes == {
        "INBOX": None,
        "Sent": "\\Sent",
        "Drafts": "\\Drafts",
        "Trash": "\\Trash",
        "Junk": "\\Junk",
        "Archive": "\\Archive",
    }
    validities = [m.uidvalidity for m in store.list_mailboxes(user_id=user.id)]
    assert len(set(validities)) == len(validities)


def test_user_names_are_unique_and_validated(store: MailStore) -> None:
    store.create_user(name="alice", password="pw")
    with pytest.raises(AlreadyExistsError):
        store.create_user(name="alice", password="other")
    for bad in ("", "has space", "x" * 256, "tab\there"):
        with pytest.raises(InvalidOperationError):
            store.create_user(name=bad, password="pw")
    with pytest.raises(InvalidOperationError):
        store.create_user(name="bob", password="")


def test_authentication_uses_argon2_and_password_change(store: MailStore) -> None:
    store.create_user(name="alice", password="first password")
    assert store.authenticate_user(name="alice", password="first password") is not None
    assert store.authenticate_user(name="alice", password="wrong") is None
    assert store.authenticate_user(name="nobody", password="first password") is None
    store.set_user_password(name="alice", password="second")
    assert store.authenticate_user(name="alice", password="first password") is None
    assert store.authenticate_user(name="alice", password="second") is not None
    with store.database.read() as session:
        stored = session.execute(text("SELECT password_hash FROM users")).scalar_one()
    assert stored.startswith("$argon2id$")
    assert "second" not in stored


def test_identities(store: MailStore) -> None:
    user = store.create_user(name="alice", password="pw")
    store.add_identity(user_id=user.id, address="Alice@Example.org", is_default=True)
    with pytest.raises(AlreadyExistsError):
        store.add_identity(user_id=user.id, address="alice@example.org")
    with pytest.raises(InvalidOperationError):
        store.add_identity(user_id=user.id, address="not an address")
    assert [i.address for i in store.list_identities(user_id=user.id)] == ["alice@example.org"]


SECRET = "s3cr3t-Pa55w0rd-unique-marker"


def _add_source(store: MailStore, user_id: int, name: str = "isp") -> int:
    return store.add_source(
        user_id=user_id,
        name=name,
        protocol="pop3",
        host="pop.example.net",
        port=995,
        security="tls",
        username="alice",
        secret=SECRET,
    ).id


def test_source_secret_is_encrypted_at_rest(store: MailStore, backend_settings: Settings) -> None:
    user = store.create_user(name="alice", password="pw")
    source_id = _add_source(store, user.id)
    assert store.read_source_secret(source_id=source_id) == SECRET
    listed = store.list_sources(user_id=user.id)
    assert [s.name for s in listed] == ["isp"]
    assert SECRET not in repr(listed)
    with store.database.read() as session:
        raw = session.execute(text("SELECT secret_ciphertext FROM sources")).scalar_one()
    assert SECRET.encode() not in bytes(raw)
    if backend_settings.database_url is None:
        # The whole SQLite file (and its WAL), not just the column, must not hold the secret.
        files = list(backend_settings.data_dir.glob("gateway.sqlite3*"))
        assert files
        for path in files:
            assert SECRET.encode() not in path.read_bytes()


def test_source_secret_with_wrong_key_fails_clearly(store: MailStore) -> None:
    user = store.create_user(name="alice", password="pw")
    source_id = _add_source(store, user.id)
    store._secrets = SecretBox(Fernet.generate_key())  # a different key, as after a bad restore
    with pytest.raises(SecretDecryptionError, match="GATEWAY_SECRET_KEY"):
        store.read_source_secret(source_id=source_id)


def test_source_validation_and_removal(store: MailStore) -> None:
    user = store.create_user(name="alice", password="pw")
    source_id = _add_source(store, user.id)
    with pytest.raises(AlreadyExistsError):
        _add_source(store, user.id)
    base = dict(
        user_id=user.id,
        name="x",
        protocol="imap",
        host="h",
        port=993,
        security="tls",
        username="u",
        secret="s",
    )
    for override in (
        {"protocol": "smtp"},
        {"security": "ssl"},
        {"port": 0},
        {"name": "a/b"},
        {"poll_interval": 5},
        {"host": ""},
    ):
        with pytest.raises(InvalidOperationError):
            store.add_source(**{**base, **override})  # type: ignore[arg-type]
    assert store.get_source(user_name="alice", name="isp").id == source_id
    store.remove_source(source_id=source_id)
    with pytest.raises(NotFoundError):
        store.get_source(user_name="alice", name="isp")


def test_delete_user_removes_their_mail_sources_and_leaves_others(store: MailStore) -> None:
    alice = store.create_user(name="alice", password="pw")
    bob = store.create_user(name="bob", password="pw")
    _add_source(store, alice.id)
    for user in (alice, bob):
        inbox = store.get_mailbox(user_id=user.id, name="INBOX")
        store.append_message(mailbox_id=inbox.id, content=f"Subject: {user.name}\r\n\r\nx".encode())
    store.delete_user(name="alice")
    assert [u.name for u in store.list_users()] == ["bob"]
    assert store.list_mailboxes(user_id=alice.id) == []
    assert store.list_sources(user_id=alice.id) == []
    assert store.collect_garbage(grace_seconds=0) == 1  # alice's message file only
    bob_inbox = store.get_mailbox(user_id=bob.id, name="INBOX")
    assert store.mailbox_status(mailbox_id=bob_inbox.id).messages == 1
    with pytest.raises(NotFoundError):
        store.delete_user(name="alice")


def test_login_cache_skips_argon2_but_never_a_wrong_or_changed_password(store: MailStore) -> None:
    store.create_user(name="carol", password="first-pw")
    started = time.perf_counter()
    assert store.authenticate_user(name="carol", password="first-pw") is not None
    full_check = time.perf_counter() - started
    started = time.perf_counter()
    assert store.authenticate_user(name="carol", password="first-pw") is not None
    assert time.perf_counter() - started < full_check / 3
    assert store.authenticate_user(name="carol", password="first-pw ") is None
    assert store.authenticate_user(name="carol", password="") is None
    store.set_user_password(name="carol", password="second-pw")
    assert store.authenticate_user(name="carol", password="first-pw") is None
    assert store.authenticate_user(name="carol", password="second-pw") is not None


def test_a_malformed_secret_key_is_refused_when_the_store_opens(tmp_path: object) -> None:
    """cryptography is imported at first use, yet a bad GATEWAY_SECRET_KEY still stops the
    gateway at start-up, not at the first sync; a rotation list is checked key by key."""
    good = Fernet.generate_key().decode()
    for bad in ("not-a-key", good[:-4], f"{good},tooshort"):
        with pytest.raises(ValueError, match="32 url-safe base64"):
            SecretBox(bad)
    box = SecretBox(f"{Fernet.generate_key().decode()},{good}")
    assert box.decrypt(SecretBox(good).encrypt("pw")) == "pw"
