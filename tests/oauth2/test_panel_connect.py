"""In headless Chromium: log in to the panel, press "Connect with …", sign in and consent on
the provider's own pages (oidc-provider), come back, and see the source sync mail from
Dovecot over XOAUTH2."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.support.fixtures_oauth2 import OAUTH2_USER, running_oauth2_peers
from tests.support.served_gateway import ServedGateway
from tests.system.test_web_panel import PASSWORD, browser, served_source

pytestmark = [pytest.mark.system, pytest.mark.slow]
__all__ = ["browser"]  # the Chromium fixture, shared with the panel's own test


def test_connect_with_provider_in_the_browser(browser: Browser, tmp_path: Path) -> None:
    with running_oauth2_peers(interactive=True) as peers:
        peers.dovecot.load_maildir(
            OAUTH2_USER,
            "INBOX",
            [
                f"Subject: oauth {n}\r\nFrom: a@example.test\r\n\r\nbody\r\n".encode()
                for n in range(2)
            ],
        )
        served = ServedGateway(tmp_path / "data", {"alice": (PASSWORD, False)})
        served.env.update(peers.gateway_env())
        with served:
            page = browser.new_context(locale="en-US").new_page()
            page.goto(served.base_url)
            page.get_by_label("User name").fill("alice")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.get_by_role("navigation", name="Main").get_by_role(
                "link", name="Add source"
            ).click()
            page.get_by_role("button", name="Connect with Test provider").click()

            # The provider's pages: sign in as the mailbox's owner, then allow access.
            expect(page.get_by_role("heading", name="Test provider: login")).to_be_visible()
            page.get_by_label("Email").fill(OAUTH2_USER)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("button", name="Allow").click()

            # Back in the panel: the new source syncs both messages over XOAUTH2.
            expect(page.locator("#status")).to_contain_text("Account connected")
            card = page.locator(f'article[data-source="{OAUTH2_USER}"]')
            expect(card.get_by_test_id("messages")).to_have_text("2", timeout=30_000)
            source = served_source(served, OAUTH2_USER)
            assert source["auth_method"] == "oauth2" and source["status"]["state"] == "ok"
        assert "method=XOAUTH2" in peers.dovecot.log_path.read_text()
