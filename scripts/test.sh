#!/bin/sh
# Install everything the tests need (Debian packages, PostgreSQL, Python packages) and run
# lint, type checks and the whole test suite. Used verbatim by .ci/run.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib-system.sh

apt_install dovecot-imapd dovecot-pop3d isync offlineimap chromium swaks postfix python3-venv
ensure_postgres
ensure_node
sh scripts/bootstrap-python.sh test
# The OAuth2 authorization server of the tests (oidc-provider), pinned by its lock file.
(cd tests/peers/oidc && npm ci --no-audit --no-fund --silent)

.venv/bin/ruff check gateway tests benchmarks
.venv/bin/ruff format --check gateway tests benchmarks
.venv/bin/mypy
.venv/bin/pytest -n 2 --dist loadfile "$@"
