"""pytest fixtures for a private Dovecot (see tests/support/dovecot.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.dovecot import DovecotServer

DOVECOT_USER = "tester"
DOVECOT_PASSWORD = "secret-pw"


@pytest.fixture
def dovecot() -> Iterator[DovecotServer]:
    """A running Dovecot with one user (DOVECOT_USER / DOVECOT_PASSWORD), stopped afterwards."""
    server = DovecotServer()
    server.start()
    try:
        server.add_user(DOVECOT_USER, DOVECOT_PASSWORD)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def dovecot_module() -> Iterator[DovecotServer]:
    """Like ``dovecot`` but shared by all tests of one module."""
    server = DovecotServer()
    server.start()
    try:
        server.add_user(DOVECOT_USER, DOVECOT_PASSWORD)
        yield server
    finally:
        server.stop()
