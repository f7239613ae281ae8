"""The web panel in a real headless Chromium (Debian `chromium`) driven by Playwright, against
`gateway serve` and a real Dovecot: log in, suggest, add, test, sync, errors, Japanese,
accessibility (axe-core), and the README's screenshots.

Regenerate the screenshots with `sh scripts/screenshots.sh` (sets GATEWAY_SCREENSHOT_DIR).
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support.dovecot import DovecotServer
from tests.support.fixtures_dovecot import DOVECOT_PASSWORD, DOVECOT_USER
from tests.support.served_gateway import ServedGateway

pytestmark = [pytest.mark.system, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
PASSWORD = "panel-Secret-pw-1"
SERIOUS = {"serious", "critical"}


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(f"{CHROMIUM} missing: install the Debian package chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def served_source(served: ServedGateway, name: str, *, token: str | None = None) -> dict:
    """A source as the API shows it, read with a fresh login (or the given token)."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    headers = {"Content-Type": "application/json"}
    if token is None:
        login = urllib.request.Request(  # noqa: S310 - http to our own test server
            f"{served.base_url}/api/login",
            data=json.dumps({"username": "alice", "password": PASSWORD}).encode(),
            headers=headers,
        )
        opener.open(login, timeout=10).read()
    else:
        headers["Authorization"] = f"Bearer {token}"
    url = f"{served.base_url}/api/sources"
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - our test server
    sources = json.loads(opener.open(request, timeout=10).read())
    return next(source for source in sources if source["name"] == name)


def _message(number: int) -> bytes:
    return f"Subject: panel test {number}\r\nFrom: a@example.com\r\n\r\nbody {number}\r\n".encode()


def _assert_accessible(page: Page, where: str) -> None:
    results = Axe().run(page)
    serious = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in results.response["violations"]
        if v["impact"] in SERIOUS
    ]
    assert serious == [], f"{where}: {serious}"


def test_panel_end_to_end(browser: Browser, dovecot: DovecotServer, tmp_path: Path) -> None:
    shots = Path(os.environ.get("GATEWAY_SCREENSHOT_DIR") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    dovecot.load_maildir(DOVECOT_USER, "INBOX", [_message(n) for n in range(3)])
    users = {"alice": (PASSWORD, True)}
    with ServedGateway(tmp_path / "data", users) as served:
        context = browser.new_context(locale="en-US", viewport={"width": 1200, "height": 900})
        page = context.new_page()
        page.goto(served.base_url)

        # Log in: a wrong password is a clear error, the right one opens the dashboard.
        page.get_by_label("User name").fill("alice")
        page.get_by_label("Password").fill("wrong")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.")
        _assert_accessible(page, "login")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Sources")).to_be_visible()

        # Add a source: suggest settings from the address, then point it at the test Dovecot.
        nav = page.get_by_role("navigation", name="Main")
        nav.get_by_role("link", name="Add source").click()
        page.get_by_label("Email address").fill("tester@gmail.com")
        page.get_by_role("button", name="Suggest settings").click()
        expect(page.get_by_label("Server", exact=True)).to_have_value("imap.gmail.com")
        expect(page.get_by_text("Settings found (provider)")).to_be_visible()
        page.get_by_label("Name (e.g. work)").fill("work")
        page.get_by_label("Server", exact=True).fill("127.0.0.1")
        page.get_by_label("Security").select_option("none")
        page.get_by_label("Port").fill(str(dovecot.imap_port))
        page.get_by_label("Allow sending the password unencrypted").check()
        page.get_by_label("User name at the server").fill(DOVECOT_USER)
        page.get_by_label("Password", exact=True).fill("not-the-password")
        page.get_by_role("button", name="Test").click()
        result = page.locator("#test-result")
        expect(result).to_contain_text("Failed at step “login (user name or password)”")
        page.get_by_label("Password", exact=True).fill(DOVECOT_PASSWORD)
        page.get_by_role("button", name="Test").click()
        expect(result).to_contain_text("Connection OK. Folders:")
        expect(result).to_contain_text("INBOX")
        # POP3 shows the retention choices, each explained (the screenshot shows them too).
        page.get_by_label("Protocol").select_option("pop3")
        expect(page.get_by_text("Other devices reading this account")).to_be_visible()
        expect(page.get_by_label("Port")).to_have_value("110")
        page.get_by_label("Deleted right after downloading").check()
        _assert_accessible(page, "add source")
        page.screenshot(path=str(shots / "add-source.png"), full_page=True)
        page.get_by_label("Protocol").select_option("imap")
        page.get_by_label("Port").fill(str(dovecot.imap_port))
        page.get_by_label("When you delete a message here").select_option("keep")
        expect(page.get_by_text("never touches the server")).to_be_visible()
        expect(page.get_by_role("group")).to_be_hidden()
        page.get_by_role("button", name="Save").click()

        # The dashboard shows the first sync without a reload; Sync now fetches new mail.
        card = page.locator("article[data-source='work']")
        messages = card.get_by_test_id("messages")
        expect(messages).to_have_text("3", timeout=30_000)
        expect(card.get_by_test_id("state")).to_have_text("OK")
        dovecot.load_maildir(DOVECOT_USER, "INBOX", [_message(n) for n in range(3, 5)])
        card.get_by_role("button", name="Sync now").click()
        expect(messages).to_have_text("5", timeout=30_000)
        # The chart has this hour's column of syncs.
        expect(card.locator("svg.chart rect")).to_have_count(1, timeout=10_000)
        card.get_by_role("button", name="Test").click()
        expect(card.locator(".result")).to_have_text("Connection OK.")
        _assert_accessible(page, "dashboard")
        page.screenshot(path=str(shots / "dashboard.png"), full_page=True)

        # Edit: a changed interval is saved without retyping the password.
        card.get_by_role("link", name="Edit").click()
        page.get_by_label("Check every (seconds)").fill("120")
        page.get_by_role("button", name="Save").click()
        expect(card).to_be_visible()
        saved = served_source(served, "work")
        assert saved["poll_interval"] == 120 and saved["options"]["delete_policy"] == "keep"

        # Identities and API tokens: a token is shown once, then works for scripts.
        nav.get_by_role("link", name="Identities").click()
        page.get_by_label("Address").fill("tester@example.com")
        page.get_by_role("button", name="Add").click()
        expect(page.get_by_text("tester@example.com", exact=True)).to_be_visible()
        nav.get_by_role("link", name="API tokens").click()
        page.get_by_label("Token name").fill("backup")
        page.get_by_role("button", name="Add").click()
        token = page.locator("code.secret").inner_text()
        assert token.startswith("gwt_")
        expect(page.get_by_role("listitem").filter(has_text="backup")).to_be_visible()
        assert served_source(served, "work", token=token)["name"] == "work"
        _assert_accessible(page, "tokens")

        # Keyboard only: from the top of a fresh page, Tab passes the skip link to the
        # navigation and Enter follows a link.
        page.reload()
        expect(page.get_by_role("heading", name="API tokens")).to_be_visible()
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        expect(page).to_have_url(re.compile(r"#/$"))

        # Japanese, chosen in the menu, kept across a reload.
        page.get_by_label("Language").select_option("ja")
        expect(page.get_by_role("heading", name="取得元")).to_be_visible()
        expect(card.get_by_role("button", name="今すぐ同期")).to_be_visible()
        expect(card.locator("[data-code=no_tls]")).to_contain_text("TLSなし")
        page.reload()
        expect(nav.get_by_role("link", name="取得元を追加")).to_be_visible()
        _assert_accessible(page, "dashboard (ja)")
        # The API's documentation renders from files shipped with the package (no CDN).
        page.goto(f"{served.base_url}/docs")
        expect(page.get_by_text("/api/sources/{source_id}/test").first).to_be_visible()
        context.close()

        # A browser asking for Japanese gets Japanese from the start; small screens work.
        phone = browser.new_context(locale="ja-JP", viewport={"width": 390, "height": 800})
        small = phone.new_page()
        small.goto(served.base_url)
        expect(small.get_by_role("heading", name="ログイン")).to_be_visible()
        phone.close()
    assert PASSWORD not in served.log() and DOVECOT_PASSWORD not in served.log()
