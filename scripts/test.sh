#!/usr/bin/env bash
# Install the project, its test tools and front-end packages, then run every check.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian packages the tests start themselves: chromium (browser tests) and dovecot
# (the IMAP server of the mail-in tests).
if ! command -v chromium >/dev/null || ! [ -x /usr/sbin/dovecot ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk dovecot-imapd >/dev/null
  else
    echo "scripts/test.sh: the tests need Debian's chromium and dovecot: sudo apt-get install chromium fonts-noto-cjk dovecot-imapd" >&2
    exit 1
  fi
fi
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e ".[test]"
npm install --no-audit --no-fund --silent
npm run build --silent
.venv/bin/ruff check engine web tests bench
.venv/bin/mypy
.venv/bin/pytest "$@"
