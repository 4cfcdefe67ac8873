#!/usr/bin/env bash
# Builds the release binary and the image `coffre:VERSION` (also tagged `coffre:latest`)
# without any registry: the image is the binary, the shared libraries `ldd` names, a passwd
# file and an empty /data owned by the user it runs as (10001). Writes into docker/.env what
# it lacks of the random root keys, admin token and master key docker/compose.yaml uses.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/coffre-target}"
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/deps.sh libclang-dev
cargo build --release --bin coffre
BIN="$CARGO_TARGET_DIR/release/coffre"
VERSION=$("$BIN" --version | awk '{print $2}')
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/etc" "$ctx/rootfs/tmp" "$ctx/data"
cp "$BIN" "$ctx/rootfs/usr/local/bin/coffre"
strip "$ctx/rootfs/usr/local/bin/coffre" 2>/dev/null || true
# The libraries at the paths the loader looks them up (the loader itself included).
for lib in $(ldd "$BIN" | awk '/=>/ {print $3} /ld-linux/ && !/=>/ {print $1}'); do
  mkdir -p "$ctx/rootfs$(dirname "$lib")"
  cp -L "$lib" "$ctx/rootfs$lib"
done
printf 'root:x:0:0:root:/:/nonexistent\ncoffre:x:10001:10001:coffre:/data:/nonexistent\n' >"$ctx/rootfs/etc/passwd"
printf 'root:x:0:\ncoffre:x:10001:\n' >"$ctx/rootfs/etc/group"
chmod 1777 "$ctx/rootfs/tmp"
cp docker/Dockerfile "$ctx/Dockerfile"
# The classic builder (no buildx here); its deprecation notice is shown only if the build fails.
if ! DOCKER_BUILDKIT=0 docker build -q -t "coffre:$VERSION" -t coffre:latest "$ctx" >/dev/null 2>"$ctx/build.err"; then
  cat "$ctx/build.err" >&2
  exit 1
fi
echo "image coffre:$VERSION (coffre:latest) built"
# The keys docker/compose.yaml needs, each written only if docker/.env lacks it (0600).
rand() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
umask 077
touch docker/.env
added=()
want() { grep -q "^$1=" docker/.env || { echo "$1=$2" >>docker/.env; added+=("$1"); }; }
want COFFRE_ROOT_ACCESS_KEY "CF$(rand 9 | tr 'a-f' 'A-F')"
want COFFRE_ROOT_SECRET_KEY "$(rand 20)"
want COFFRE_ADMIN_TOKEN "$(rand 32)"
want COFFRE_MASTER_KEY "$(rand 32)"
[ ${#added[@]} -eq 0 ] || echo "docker/.env: ${added[*]} written (keys for docker/compose.yaml; keep the master key safe)"
# What a client needs once `docker compose -f docker/compose.yaml up -d` runs; the secret is
# shown only when it was just generated (as the server's first start does), then it is in
# docker/.env.
access=$(sed -n 's/^COFFRE_ROOT_ACCESS_KEY=//p' docker/.env)
echo "S3 endpoint of docker/compose.yaml: http://127.0.0.1:9000 (region fr-par), admin API http://127.0.0.1:9001"
if [[ " ${added[*]} " == *" COFFRE_ROOT_SECRET_KEY "* ]]; then
  echo "access key: $access"
  echo "secret key: $(sed -n 's/^COFFRE_ROOT_SECRET_KEY=//p' docker/.env)"
else
  echo "access key: $access (the secret key and the admin token are in docker/.env)"
fi
