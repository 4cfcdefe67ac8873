#!/usr/bin/env bash
# Builds and starts the embedded store (flags are passed to `coffre server`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh libclang-dev
exec cargo run --release -- server "$@"
