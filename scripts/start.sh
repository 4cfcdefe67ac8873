#!/usr/bin/env bash
# Builds and starts the embedded store (flags are passed to `coffre server`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh libclang-dev
# The same build as scripts/test.sh (one target dir for both).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/coffre-target}"
exec cargo run --release --bin coffre -- server "$@"
