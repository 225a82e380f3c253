#!/usr/bin/env bash
# Set up and run the test suite. Extra arguments go to pytest (e.g. -k reader); the fast tiers
# alone, on both cores: bash scripts/test.sh -m "not system" -n 2 --dist loadfile
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
