#!/usr/bin/env bash
# Install everything (idempotent), then run the main job on the embedded demo corpus.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install.sh"
exec "$root/.venv/bin/casebench" demo "$@"
