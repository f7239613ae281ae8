"""Fixtures for the SMTP tests: a provider upstream and our gateway relaying to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.smtp_peers import ADDRESS, SmtpGateway, UpstreamSmtp


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[UpstreamSmtp]:
    server = UpstreamSmtp(tmp_path / "provider").start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def smtp_gateway(tmp_path: Path, upstream: UpstreamSmtp) -> Iterator[SmtpGateway]:
    """Gateway (TLS required for AUTH) with user alice, identity ADDRESS relaying upstream."""
    with SmtpGateway(tmp_path / "data", allow_plaintext=False) as running:
        user_id = running.add_user()
        running.store.add_identity(user_id=user_id, address=ADDRESS, **upstream.relay_settings())
        yield running
