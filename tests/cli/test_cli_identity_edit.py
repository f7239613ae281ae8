"""`gateway identity edit`: relay settings change, the secret stays unless replaced, and wrong
values are refused by the same model the admin API uses."""

from __future__ import annotations

from pathlib import Path

from gateway.settings import Settings
from gateway.store import open_store
from tests.cli.test_cli import env as cli_env  # noqa: F401 - the fixture, shared
from tests.cli.test_cli import run


def _relay_secret(env: dict[str, str], address: str) -> str:
    settings = Settings(
        data_dir=Path(env["GATEWAY_DATA_DIR"]),
        secret_key=env["GATEWAY_SECRET_KEY"],
        _env_file=None,  # type: ignore[call-arg]
    )
    store = open_store(settings)
    try:
        user = store.get_user(name="alice")
        identity = store.find_identity(user_id=user.id, address=address)
        assert identity is not None
        return store.read_relay_target(identity_id=identity.id).secret
    finally:
        store.close()


def test_identity_edit(cli_env: dict[str, str]) -> None:  # noqa: F811 - the fixture
    env = cli_env
    run(env, "user", "add", "alice", stdin="pw\n")
    run(
        env, "identity", "add", "--user", "alice", "alias@gmail.com", "--relay-password",
        stdin="first-secret\n",
    )  # fmt: skip
    edited = run(
        env, "identity", "edit", "--user", "alice", "ALIAS@gmail.com",
        "--relay-host", "relay.example.net", "--relay-port", "465", "--relay-security", "tls",
        "--display-name", "Alias", "--save-to-source-sent",
    ).stdout  # fmt: skip
    assert "updated identity alice/alias@gmail.com via tls://relay.example.net:465" in edited
    listed = run(env, "identity", "list", "--user", "alice").stdout
    assert "tls://relay.example.net:465\talias@gmail.com (own secret)\tsent copy at source" in (
        listed
    )
    # No --relay-password: the stored secret is kept.
    assert _relay_secret(env, "alias@gmail.com") == "first-secret"
    run(
        env, "identity", "edit", "--user", "alice", "alias@gmail.com", "--relay-password",
        stdin="second-secret\n",
    )  # fmt: skip
    assert _relay_secret(env, "alias@gmail.com") == "second-secret"
    run(env, "identity", "edit", "--user", "alice", "alias@gmail.com", "--use-source-secret")
    assert "(source secret)" in run(env, "identity", "list", "--user", "alice").stdout

    # The API's model refuses these, naming the field.
    port = run(
        env, "identity", "edit", "--user", "alice", "alias@gmail.com", "--relay-port", "0",
        check=False,
    )  # fmt: skip
    assert port.returncode == 2 and "relay_port" in port.stderr
    plaintext = run(
        env, "identity", "edit", "--user", "alice", "alias@gmail.com",
        "--relay-security", "none", check=False,
    )  # fmt: skip
    assert plaintext.returncode == 2 and "allow_plaintext" in plaintext.stderr
    run(
        env, "identity", "edit", "--user", "alice", "alias@gmail.com",
        "--relay-security", "none", "--option", "allow_plaintext=true",
    )  # fmt: skip
    both = run(
        env, "identity", "edit", "--user", "alice", "alias@gmail.com",
        "--relay-password", "--use-source-secret", check=False,
    )  # fmt: skip
    assert both.returncode == 2 and "not both" in both.stderr
    missing = run(
        env, "identity", "edit", "--user", "alice", "nobody@gmail.com", "--relay-port", "587",
        check=False,
    )  # fmt: skip
    assert missing.returncode == 1 and "no such identity" in missing.stderr
