"""The panel's sending and administration pages in a real headless Chromium (Debian
`chromium`) driven by Playwright, against `gateway serve`: identities with relay settings
(the relay password never comes back), the outbound queue with retry and drop, the users
page (password reset, administrator flag, the last administrator kept), in English and
Japanese, each checked with axe-core.

`sh scripts/screenshots.sh` also writes identities.png and queue.png from here.
"""

from __future__ import annotations

import json
import os
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Page, expect

from gateway.settings import Settings
from gateway.store import open_store
from gateway.store.views import OutboundSubmission
from tests.support.served_gateway import ServedGateway
from tests.system.test_web_panel import _assert_accessible, browser  # noqa: F401 - fixture

pytestmark = [pytest.mark.system, pytest.mark.slow]

ALICE_PASSWORD = "alice-Panel-pw-1"
BOB_PASSWORD = "bob-Panel-pw-2"
BOB_NEW_PASSWORD = "bob-Reset-pw-3"
RELAY_SECRET = "Relay-Panel-Secret-4"
# Far enough ahead that the running relay worker never claims these messages.
FUTURE = datetime.now(UTC) + timedelta(days=2)


def _queue_messages(served: ServedGateway) -> dict[str, int]:
    """Alice: one deferred, one bounced, one waiting; Bob: one waiting."""
    settings = Settings(
        data_dir=served.data_dir,
        secret_key=served.env["GATEWAY_SECRET_KEY"],
        _env_file=None,  # type: ignore[call-arg]
    )
    store = open_store(settings, migrate=False)
    try:
        ids: dict[str, int] = {}

        def queue(name: str, *labels: str) -> None:
            user = store.get_user(name=name)
            address = f"{name}@queue.example"
            identity = store.find_identity(user_id=user.id, address=address)
            identity = identity or store.add_identity(user_id=user.id, address=address)
            queued = store.queue_outbound_messages(
                items=[
                    OutboundSubmission(
                        user_id=user.id,
                        identity_id=identity.id,
                        sender=address,
                        recipients=(f"{label}@rcpt.example",),
                        blob=store.write_outbound_blob(
                            content=f"Subject: {label}\r\n\r\n".encode()
                        ),
                        message_id_header=f"<{label}@queue.example>",
                    )
                    for label in labels
                ],
                now=FUTURE,
                lifetime=timedelta(days=5),
            )
            ids.update(zip(labels, queued, strict=True))

        # One failed try for the first two, as the relay worker records it.
        queue("alice", "deferred", "bounced")
        store.claim_outbound_messages(owner="test", now=FUTURE, limit=2, lease=timedelta(hours=1))
        store.defer_outbound_message(
            outbound_id=ids["deferred"],
            owner="test",
            error="421 4.7.0 try again later",
            next_attempt_at=FUTURE,
        )
        store.finish_outbound_message(
            outbound_id=ids["bounced"], state="bounced", now=FUTURE, error="550 5.1.1 no such user"
        )
        queue("alice", "waiting")
        queue("bob", "bob")
        return ids
    finally:
        store.close()


def _api_identities(served: ServedGateway) -> str:
    """GET /api/identities as Alice, raw (to look for the secret in it)."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    login = urllib.request.Request(  # noqa: S310 - http to our own test server
        f"{served.base_url}/api/login",
        data=json.dumps({"username": "alice", "password": ALICE_PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
    )
    opener.open(login, timeout=10).read()
    return opener.open(f"{served.base_url}/api/identities", timeout=10).read().decode()


def _accept(dialog: Dialog) -> None:
    dialog.accept()


def _log_in(page: Page, name: str, password: str) -> None:
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_identities_queue_and_users_pages(
    browser: Browser,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    shots = Path(os.environ.get("GATEWAY_SCREENSHOT_DIR") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    users = {"alice": (ALICE_PASSWORD, True), "bob": (BOB_PASSWORD, False)}
    with ServedGateway(tmp_path / "data", users) as served:
        ids = _queue_messages(served)
        context = browser.new_context(locale="en-US", viewport={"width": 1200, "height": 900})
        page = context.new_page()
        page.on("dialog", _accept)
        page.goto(served.base_url)
        _log_in(page, "alice", ALICE_PASSWORD)
        nav = page.get_by_role("navigation", name="Main")
        expect(page.get_by_role("heading", name="Sources")).to_be_visible()

        # Identities: add one with its own relay and password; the password never returns.
        nav.get_by_role("link", name="Identities").click()
        page.get_by_label("Address", exact=True).fill("alice@example.com")
        page.get_by_label("Display name").fill("Alice")
        page.get_by_label("Relay server").fill("smtp.example.com")
        page.get_by_label("Relay security").select_option("tls")
        expect(page.get_by_label("Relay port")).to_have_value("465")
        page.get_by_label("Login at the relay").fill("alice.login")
        page.get_by_label("Relay password").fill(RELAY_SECRET)
        page.get_by_label("Also save a copy in the source's own Sent folder").check()
        page.get_by_role("button", name="Add", exact=True).click()
        entry = page.locator("li[data-identity='alice@example.com']")
        expect(entry).to_contain_text("tls://smtp.example.com:465")
        expect(entry).to_contain_text("login: alice.login")
        expect(entry).to_contain_text("own password saved")
        expect(entry).to_contain_text("copy in the source's Sent")
        expect(page.get_by_label("Relay password")).to_have_value("")
        page.screenshot(path=str(shots / "identities.png"), full_page=True)
        # A wrong value the browser lets through is refused by the server, naming the field.
        page.get_by_label("Address", exact=True).fill("bob@example.com")
        page.get_by_label("Relay server").fill("smtp example.com")
        page.get_by_role("button", name="Add", exact=True).click()
        expect(page.get_by_role("alert").filter(has_text="relay_host")).to_be_visible()
        _assert_accessible(page, "identities")

        # Edit (by keyboard: Enter on the button, focus lands in the form) without a
        # password: the saved one stays.
        entry.get_by_role("button", name="Edit").focus()
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Edit alice@example.com")).to_be_visible()
        expect(page.get_by_label("Display name")).to_be_focused()
        expect(page.get_by_label("Relay password (leave empty to keep it)")).to_have_value("")
        page.get_by_label("Relay port").fill("2465")
        page.get_by_role("button", name="Save").click()
        expect(entry).to_contain_text("tls://smtp.example.com:2465")
        expect(entry).to_contain_text("own password saved")
        listed = _api_identities(served)
        assert '"has_relay_secret":true' in listed and RELAY_SECRET not in listed
        assert RELAY_SECRET not in page.content()

        # The outbound queue: an administrator sees everyone's messages, with their state.
        nav.get_by_role("link", name="Outbound queue").click()
        expect(page.get_by_role("heading", name="Outbound queue")).to_be_visible()
        rows = page.locator("table.queue tbody tr")
        expect(rows).to_have_count(4)
        deferred = page.locator(f"tr[data-queue-id='{ids['deferred']}']")
        expect(deferred.get_by_test_id("queue-state")).to_have_text("Deferred")
        expect(deferred).to_contain_text("421 4.7.0 try again later")
        expect(deferred).to_contain_text("alice")
        bounced = page.locator(f"tr[data-queue-id='{ids['bounced']}']")
        expect(bounced.get_by_test_id("queue-state")).to_have_text("Bounced")
        expect(bounced.get_by_role("button", name="Drop")).to_have_count(0)
        waiting = page.locator(f"tr[data-queue-id='{ids['waiting']}']")
        expect(waiting.get_by_test_id("queue-state")).to_have_text("Waiting")
        expect(waiting.locator("td").nth(5)).to_have_text("0")  # no try yet
        _assert_accessible(page, "queue")
        page.screenshot(path=str(shots / "queue.png"), full_page=True)
        # Drop Bob's message (confirmed), retry the bounced one (queued again).
        page.locator(f"tr[data-queue-id='{ids['bob']}']").get_by_role("button", name="Drop").click()
        expect(rows).to_have_count(3)
        bounced.get_by_role("button", name="Retry now").click()
        expect(bounced.get_by_test_id("queue-state")).to_have_text("Deferred")
        expect(page.get_by_role("status").filter(has_text="will be tried now")).to_be_visible()

        # Users: the last administrator keeps the flag; a reset password locks the old one out.
        nav.get_by_role("link", name="Users").click()
        alice_entry = page.locator("li[data-user='alice']")
        alice_entry.get_by_role("button", name="Remove administrator").click()
        expect(page.get_by_role("alert").filter(has_text="last administrator")).to_be_visible()
        bob_entry = page.locator("li[data-user='bob']")
        bob_entry.get_by_role("button", name="Reset password").click()
        page.get_by_label("New password for bob").fill(BOB_NEW_PASSWORD)
        bob_entry.get_by_role("button", name="Save").click()
        expect(page.get_by_role("status").filter(has_text="Password of bob reset")).to_be_visible()
        bob_entry.get_by_role("button", name="Make administrator").click()
        expect(bob_entry).to_contain_text("(Administrator)")
        _assert_accessible(page, "users")

        # Japanese: the new pages speak it too.
        page.get_by_label("Language").select_option("ja")
        nav.get_by_role("link", name="送信キュー").click()
        expect(page.get_by_role("heading", name="送信キュー")).to_be_visible()
        expect(deferred.get_by_test_id("queue-state")).to_have_text("保留中")
        expect(page.get_by_role("columnheader", name="次の試行")).to_be_visible()
        _assert_accessible(page, "queue (ja)")
        nav.get_by_role("link", name="送信アドレス").click()
        expect(entry).to_contain_text("専用パスワード保存済み")
        expect(page.get_by_label("送信サーバー", exact=True)).to_be_visible()
        _assert_accessible(page, "identities (ja)")
        nav.get_by_role("link", name="ユーザー").click()
        expect(alice_entry.get_by_role("button", name="管理者から外す")).to_be_visible()
        context.close()

        # Bob: the new password works, the old does not; his queue shows only his mail.
        bob_context = browser.new_context(locale="en-US")
        bob_page = bob_context.new_page()
        bob_page.goto(served.base_url)
        _log_in(bob_page, "bob", BOB_PASSWORD)
        expect(bob_page.get_by_role("alert")).to_have_text("Wrong user name or password.")
        bob_page.get_by_label("Password").fill(BOB_NEW_PASSWORD)
        bob_page.get_by_role("button", name="Log in").click()
        expect(bob_page.get_by_role("link", name="Users")).to_be_visible()  # now an admin
        bob_context.close()
    log = served.log()
    for secret in (RELAY_SECRET, ALICE_PASSWORD, BOB_NEW_PASSWORD):
        assert secret not in log
