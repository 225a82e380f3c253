#!/usr/bin/env bash
# The browser of the UI tests (lakehouse_assets_tests/system/test_ui_browser.py): Debian's chromium,
# driven by the Python playwright package (Playwright's own browser download is not used).
# Installs it when /usr/bin/chromium is missing; needs root (as in CI).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-browser: /usr/bin/chromium is missing; run as root or: sudo apt-get install chromium" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
/usr/bin/chromium --version
