#!/usr/bin/env bash
# Install what the browser tests (tests/browser) need, once: Debian's Chromium (apt-get) and the playwright
# Python package (a dev extra; installed into the venv if missing). Idempotent and never fatal: where Chromium
# cannot be installed (no root, no apt, no network) the browser tests skip and say why.
set -u
PY=${PYTHON:-.venv/bin/python}

find_chromium() {
  if [ -n "${LOWRES_CHROMIUM:-}" ]; then
    [ -x "$LOWRES_CHROMIUM" ] && echo "$LOWRES_CHROMIUM"
    return
  fi
  for candidate in /usr/lib/chromium/chromium chromium chromium-browser; do
    if [ -x "$candidate" ]; then echo "$candidate"; return; fi
    if command -v "$candidate" >/dev/null 2>&1; then command -v "$candidate"; return; fi
  done
}

ensure_playwright() {
  [ -x "$PY" ] || PY=python3
  if ! "$PY" -c "import playwright.sync_api" >/dev/null 2>&1; then
    echo "install_browser: installing the playwright Python package (dev extra)..." >&2
    "$PY" -m pip install -q "playwright>=1.45" >&2 || echo "install_browser: pip install playwright failed" >&2
  fi
}

install_chromium() {
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser: apt-get not found; browser tests will skip (install Chromium, or set LOWRES_CHROMIUM)" >&2
    return
  fi
  local sudo=""
  if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
      echo "install_browser: not root and no passwordless sudo; browser tests will skip" >&2
      return
    fi
  fi
  echo "install_browser: installing chromium (apt-get, quiet)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  if $sudo apt-get update -qq >/dev/null 2>&1 && $sudo apt-get install -y -qq chromium >/dev/null 2>&1; then
    echo "install_browser: chromium installed: $(find_chromium)" >&2
  else
    echo "install_browser: could not install chromium; browser tests will skip" >&2
  fi
}

ensure_playwright
if [ -z "$(find_chromium)" ]; then
  install_chromium
fi
exit 0
