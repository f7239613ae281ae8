#!/bin/sh
# Install the gateway into .venv and start it on its embedded defaults (SQLite + ./data).
set -eu
cd "$(dirname "$0")/.."
sh scripts/bootstrap-python.sh
exec .venv/bin/gateway serve
