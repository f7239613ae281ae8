"""`gateway identity ...` and `gateway queue ...` as operators use them (real subprocesses)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.settings import Settings
from gateway.store import open_store
from gateway.store.views import OutboundSubmission
from tests.cli.test_cli import env as cli_env  # noqa: F401 - the fixture, shared
from tests.cli.test_cli import run


def test_identity_commands(cli_env: dict[str, str]) -> None:  # noqa: F811 - the fixture
    env = cli_env
    run(env, "user", "add", "alice", stdin="pw\n")
    run(
        env,
        "source", "add", "--user", "alice", "--name", "mail", "--protocol", "imap",
        "--host", "imap.example.org", "--port", "993", "--security", "tls",
        "--username", "Alice@Example.org",
        stdin="source-secret\n",
    )  # fmt: skip
    run(
        env,
        "identity", "add", "--user", "alice", "alias@gmail.com",
        "--relay-username", "alias", "--relay-password", "--option", "timeout_seconds=20",
        stdin="relay-secret\n",
    )  # fmt: skip
    listed = run(env, "identity", "list").stdout
    # The source's own address came with the source, relayed like its provider's mail.
    assert "alice/alice@example.org\tstarttls://smtp.example.org:587\tAlice@Example.org " in listed
    assert "(source secret)\tsent copy at source" in listed
    assert "alice/alias@gmail.com\tstarttls://smtp.gmail.com:587\talias (own secret)\t-" in listed
    assert "secret" not in listed.replace("own secret", "").replace("source secret", "")
    duplicate = run(env, "identity", "add", "--user", "alice", "ALIAS@gmail.com", check=False)
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
    bad = run(
        env, "identity", "add", "--user", "alice", "alias2@x.org", "--option", "x=1", check=False
    )
    assert bad.returncode == 2 and "tls_ca_file" in bad.stderr
    run(env, "identity", "remove", "--user", "alice", "alias@gmail.com")
    assert "alias@gmail.com" not in run(env, "identity", "list", "--user", "alice").stdout
    gone = run(env, "identity", "remove", "--user", "alice", "alias@gmail.com", check=False)
    assert gone.returncode == 1 and "no such identity" in gone.stderr


def test_queue_commands(cli_env: dict[str, str]) -> None:  # noqa: F811 - the fixture
    env = cli_env
    run(env, "user", "add", "alice", stdin="pw\n")
    run(env, "identity", "add", "--user", "alice", "alice@example.org")
    settings = Settings(
        data_dir=Path(env["GATEWAY_DATA_DIR"]),
        secret_key=env["GATEWAY_SECRET_KEY"],
        _env_file=None,  # type: ignore[call-arg]
    )
    store = open_store(settings)
    try:
        user = store.get_user(name="alice")
        (identity,) = store.list_identities(user_id=user.id)
        later = datetime.now(UTC) + timedelta(hours=1)
        ids = store.queue_outbound_messages(
            items=[
                OutboundSubmission(
                    user_id=user.id,
                    identity_id=identity.id,
                    sender="alice@example.org",
                    recipients=("bob@example.net",),
                    blob=store.write_outbound_blob(
                        content=b"From: alice@example.org\r\n\r\nhi\r\n"
                    ),
                    message_id_header=f"<{n}@example.org>",
                )
                for n in range(2)
            ],
            now=later,
            lifetime=timedelta(days=5),
        )
    finally:
        store.close()
    listed = run(env, "queue", "list").stdout.splitlines()
    assert [line.split("\t")[:2] for line in listed] == [[str(i), "queued"] for i in ids]
    assert "alice\talice@example.org -> bob@example.net" in listed[0]
    assert run(env, "queue", "retry", str(ids[0])).stdout.strip() == f"message {ids[0]} is due now"
    run(env, "queue", "drop", str(ids[1]))
    assert [line.split("\t")[1] for line in run(env, "queue", "list").stdout.splitlines()] == [
        "queued"
    ]
    assert "dropped" in run(env, "queue", "list", "--all").stdout
    again = run(env, "queue", "drop", str(ids[1]), check=False)
    assert again.returncode == 1 and "not queued" in again.stderr
    missing = run(env, "queue", "retry", "999", check=False)
    assert missing.returncode == 1 and "no such outbound message" in missing.stderr
