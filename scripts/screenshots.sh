#!/bin/sh
# Regenerate docs/screenshots/ (dashboard and add-source form, shown in the README) by running
# the browser test against a real Dovecot and `gateway serve` in headless Chromium.
set -eu
cd "$(dirname "$0")/.."
GATEWAY_SCREENSHOT_DIR="$(pwd)/docs/screenshots" \
    .venv/bin/pytest tests/system/test_web_panel.py -q -p no:randomly
