"""Shared pytest plugins: each fixture family lives in its own module under tests/support."""

pytest_plugins = [
    "tests.support.fixtures_store",
    "tests.support.fixtures_dovecot",
    "tests.support.fixtures_gateway",
    "tests.support.fixtures_oauth2",
]
