#!/usr/bin/env bash
# Set up (if needed) and run the linters, the whole test suite and the quick benchmark guard.
# Extra arguments go to pytest (for example --slow for the long crash and load suites).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/pytest -q --durations=15 "$@"
# Fails only on a gross regression (single-item cost growing with N, slow start), not on noise.
.venv/bin/python bench/run.py --quick
