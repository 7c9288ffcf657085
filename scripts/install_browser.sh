#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (tests/browser), once. Idempotent and never fatal:
# where it cannot be installed (no root, no apt, no network) the browser tests skip and say why.
set -u
CHROMIUM=${LOWRES_CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_browser: apt-get not found; browser tests will skip (install Chromium at $CHROMIUM to run them)" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "install_browser: not root and no passwordless sudo; browser tests will skip" >&2
    exit 0
  fi
fi
echo "install_browser: installing chromium (apt-get, quiet)..." >&2
export DEBIAN_FRONTEND=noninteractive
if $SUDO apt-get update -qq >/dev/null 2>&1 && $SUDO apt-get install -y -qq chromium >/dev/null 2>&1; then
  echo "install_browser: chromium installed at $CHROMIUM" >&2
else
  echo "install_browser: could not install chromium; browser tests will skip" >&2
fi
exit 0
