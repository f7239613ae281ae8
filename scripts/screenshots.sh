#!/bin/sh
# Regenerate docs/screenshots/ (dashboard, add-source form, identities, outbound queue; shown
# in the README) by running the browser tests against a real Dovecot and `gateway serve` in
# headless Chromium.
set -eu
cd "$(dirname "$0")/.."
GATEWAY_SCREENSHOT_DIR="$(pwd)/docs/screenshots" \
    .venv/bin/pytest tests/system/test_web_panel.py tests/system/test_web_sending_pages.py \
    -q -p no:randomly
