#!/usr/bin/env bash
# Runs every test: installs what a fresh Debian machine lacks, then the Rust suites (unit,
# property and end-to-end tests with the AWS SDK), then the real-client scripts.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh libclang-dev rclone restic curl chromium-headless-shell prometheus softhsm2
command -v aws >/dev/null || python3 -m pip install -q awscli
python3 -c "import awscrt" 2>/dev/null || python3 -m pip install -q awscrt   # CRC32C in aws-cli
command -v s3cmd >/dev/null || python3 -m pip install -q s3cmd
python3 -c "import boto3" 2>/dev/null || python3 -m pip install -q boto3
python3 -c "import kmip" 2>/dev/null || python3 -m pip install -q pykmip   # the KMIP server of tests/keys_kmip.rs
command -v pyenv >/dev/null && pyenv rehash 2>/dev/null || true

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/coffre-target}"
cargo build --release --bins
cargo nextest run --release --workspace --no-fail-fast
# Doc tests (nextest runs none): what must not compile, such as an S3 operation declared
# without its action, is shown there.
cargo test --release --workspace --doc
bash tests/clients/run-all.sh "$CARGO_TARGET_DIR/release/coffre"
