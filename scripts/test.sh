#!/usr/bin/env bash
# Install the project with its test tools into .venv and run every check.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e ".[test]"
.venv/bin/ruff check engine web tests bench
.venv/bin/mypy
.venv/bin/pytest "$@"
