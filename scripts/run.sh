#!/usr/bin/env bash
# Install the app into .venv (and the diagram viewer and modeler from npm), create demo
# users (their passwords are printed once) and serve on the SQLite default.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e .
npm install --no-audit --no-fund --silent
npm run build --silent
.venv/bin/itsm demo
exec .venv/bin/itsm serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
