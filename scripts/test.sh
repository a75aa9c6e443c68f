#!/usr/bin/env bash
# Install everything (idempotent), then lint and run the whole test suite, slow tests included.
# Extra arguments go to pytest (e.g. `-m "not slow"` for the quick subset).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install.sh"
cd "$root"
.venv/bin/ruff check casebench tests bench scripts leaderboard
.venv/bin/python -m pytest --doctest-modules casebench tests "$@"
