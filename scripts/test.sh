#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite plus the linters. Extra arguments go to pytest
# (for example --slow for the long crash and load suites).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/pytest -q "$@"
