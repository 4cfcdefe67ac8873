#!/usr/bin/env bash
# Starts a fresh Coffre server and runs every client script against it.
# Usage: run-all.sh PATH/TO/coffre
set -uo pipefail
bin=${1:?usage: run-all.sh PATH/TO/coffre}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT

export AWS_ACCESS_KEY_ID=COFFRECLIENTKEY AWS_SECRET_ACCESS_KEY=coffre-client-secret AWS_DEFAULT_REGION=fr-par
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
COFFRE_ROOT_ACCESS_KEY=$AWS_ACCESS_KEY_ID COFFRE_ROOT_SECRET_KEY=$AWS_SECRET_ACCESS_KEY RUST_LOG=warn \
  "$bin" server --data "$work/data" --listen "127.0.0.1:$port" --admin-listen 127.0.0.1:0 >"$work/server.out" 2>"$work/server.err" &
pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
export ENDPOINT="http://127.0.0.1:$port" WORK="$work" COFFRE_BIN="$bin"
# The operator's plane, for scripts that manage tenants (coffre admin …).
export COFFRE_ADMIN_ENDPOINT=$(sed -n 's/^Coffre admin endpoint: \([^ ]*\).*/\1/p' "$work/server.out")
export COFFRE_ADMIN_TOKEN=$(cat "$work/data/admin.token")

passed=0; failed=0
# Each script runs in a session of its own: what it leaves running is found by that session's
# id, never by name, so another user's or another suite's coffre processes are not touched.
# (Zombies of processes killed a moment ago are not leaks.)
leaked() { ps -eo pid=,sid=,stat= | awk -v s="$1" '$2 == s && $3 !~ /^Z/ {print $1}'; }
for t in "$here"/[0-9]*.sh; do
  name=$(basename "$t" .sh)
  (cd "$work" && exec setsid bash -euo pipefail "$t") >"$work/$name.log" 2>&1 &
  script=$!
  if wait "$script"; then
    echo "PASS client $name"; passed=$((passed+1))
  else
    echo "FAIL client $name"; failed=$((failed+1)); tail -n 30 "$work/$name.log"; tail -n 20 "$work/server.err"
  fi
  # The session's id is the script's pid (setsid made it the leader).
  for _ in $(seq 20); do [ -z "$(leaked "$script")" ] && break; sleep 0.1; done
  left=$(leaked "$script")
  if [ -n "$left" ]; then
    echo "FAIL client $name left processes running:"; ps -o pid,args -p $left
    kill $left 2>/dev/null; failed=$((failed+1))
  fi
done
echo "clients: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
