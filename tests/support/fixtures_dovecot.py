"""pytest fixtures for a private Dovecot (see tests/support/dovecot.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.support.dovecot import DovecotServer

DOVECOT_USER = "tester"
DOVECOT_PASSWORD = "secret-pw"


@contextmanager
def running_dovecot() -> Iterator[DovecotServer]:
    """A started Dovecot with one user (DOVECOT_USER / DOVECOT_PASSWORD), stopped on exit."""
    server = DovecotServer()
    server.start()
    try:
        server.add_user(DOVECOT_USER, DOVECOT_PASSWORD)
        yield server
    finally:
        server.stop()


@pytest.fixture
def dovecot() -> Iterator[DovecotServer]:
    """A Dovecot for one test."""
    with running_dovecot() as server:
        yield server


@pytest.fixture(scope="module")
def dovecot_module() -> Iterator[DovecotServer]:
    """A Dovecot shared by all tests of one module."""
    with running_dovecot() as server:
        yield server
