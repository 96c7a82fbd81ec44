#!/usr/bin/env bash
# Install the app into .venv, create demo users (printed once) and serve on SQLite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e .
.venv/bin/itsm demo
exec .venv/bin/itsm serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
