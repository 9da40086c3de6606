#!/usr/bin/env bash
# README's first command: installs what is missing, builds vapord and runs it on the demo queue.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target vapord

mkdir -p var/demo
echo "vapord: demo queue config/demo/jobs.yaml, database var/demo/vapor.db."
echo "Live page: http://127.0.0.1:9786/  (token for Start/Stop: var/demo/api-token). Ctrl-C to stop."
exec build/release/daemon/vapord --config config/demo/vapord.yaml "$@"
