#!/bin/sh
# Shared by serve.sh and test.sh: make sure a Python >= 3.11 with venv exists, create .venv,
# install the project (plus the extras named in $1, e.g. "test") into it.
set -eu
cd "$(dirname "$0")/.."

. scripts/lib-system.sh

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "error: Python 3.11 or newer is required (set PYTHON=/path/to/python3.11)" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    if ! "$PYTHON" -m venv .venv 2>/dev/null; then
        rm -rf .venv
        command -v dpkg >/dev/null && apt_install python3-venv
        "$PYTHON" -m venv .venv
    fi
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ -n "${1:-}" ]; then
    .venv/bin/python -m pip install -q -e ".[$1]"
else
    .venv/bin/python -m pip install -q .
fi
