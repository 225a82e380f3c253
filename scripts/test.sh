#!/usr/bin/env bash
# Set up and run the test suite, a test file per worker on every core (the suite is mostly
# waiting on subprocesses: dagster dev, moto, the CLI). Extra arguments go to pytest and win
# (e.g. -k reader, -n 0 for one process); the fast tiers alone: bash scripts/test.sh -m "not system"
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -n auto --dist loadfile "$@"
