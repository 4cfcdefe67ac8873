#!/usr/bin/env bash
# docker/compose.yaml's three-site cluster under real faults, with a client load on the host
# (tests/docker/load.py: writes and reads, every byte checked) running through each:
#   partition    the paris site cut off the others (its containers leave the `wan` network), healed
#   kill-node    kill -9 of one storage node, started again
#   kill-site    kill -9 of a whole site (its gateway and both nodes), started again
#   pause        one node frozen (docker pause): calls to it hang until timeouts, then resumes
#   disk-full    one node's disk (a 2 GiB tmpfs) filled to the last byte, then freed
#   rolling      every container restarted one after the other (docker restart: SIGTERM)
# After each: the cluster returns to full redundancy (6 of 6 nodes up, no shard awaiting
# healing, the three metadata replicas at the same applied index). At the end every
# acknowledged object reads back identical from the gateways. Prints a table: fault,
# requests, answers by error code, wrong bytes, stale reads, objects lost; fails unless
# nothing was lost, wrong or stale and no request hung. Ends everything it starts.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/coffre-target}"
bash docker/build.sh >/dev/null
BIN="$CARGO_TARGET_DIR/release/coffre"
set -a; . docker/.env; set +a

if docker compose version >/dev/null 2>&1; then dc=(docker compose); else dc=(docker-compose); fi
project="coffre-faults-$$"
work=$(mktemp -d /tmp/coffre-faults.XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export COFFRE_PUBLISH_S3=$(free_port) COFFRE_PUBLISH_ADMIN=$(free_port)

# node-marseille-2 keeps its shards on a size-limited tmpfs (2 GiB: four times what the load writes to it) mounted on the host (it outlives
# the container's restarts, unlike a tmpfs inside it).
full="$work/full"
mkdir -p "$full"
[ "$(id -u)" = 0 ] || { echo "the fault test mounts a tmpfs and fills it: run it as root (CI does)"; exit 1; }
mount -t tmpfs -o size=2g,mode=0700,uid=10001,gid=10001 coffre-faults "$full"
cat >"$work/override.yaml" <<EOF
services:
  node-marseille-2:
    volumes: ["$full:/data/shards"]
EOF
compose() { "${dc[@]}" -p "$project" -f docker/compose.yaml -f "$work/override.yaml" "$@"; }
loader=""
cleanup() {
  set +e
  [ -n "$loader" ] && kill "$loader" 2>/dev/null && wait "$loader" 2>/dev/null
  if [ "${KEEP:-}" != 1 ]; then
    compose down -v --remove-orphans >/dev/null 2>&1
    umount "$full" 2>/dev/null
    rm -rf "$work"
  else
    echo "KEEP=1: cluster $project and $work left in place"
  fi
} 
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for c in gw-paris gw-lille gw-marseille; do echo "--- $c"; compose logs --tail 30 "$c" 2>&1 | tail -30; done
  exit 1
}

compose up -d >"$work/up.log" 2>&1 || { cat "$work/up.log"; fail "compose up"; }
cid() { compose ps -q "$1"; }
# The host reaches every container on its site's network (which a cut leaves in place).
gateways=(gw-paris gw-lille gw-marseille)
nodes=(node-paris-1 node-paris-2 node-lille-1 node-lille-2 node-marseille-1 node-marseille-2)
gw_ip() { docker inspect -f "{{(index .NetworkSettings.Networks \"${project}_${1#gw-}\").IPAddress}}" "$(cid "$1")"; }
# The gateways by container and network: a restarted container may get another address.
endpoints=""
for g in "${gateways[@]}"; do endpoints+="${endpoints:+,}$(cid "$g")/${project}_${g#gw-}"; done
export COFFRE_ADMIN_ENDPOINT="http://127.0.0.1:$COFFRE_PUBLISH_ADMIN"
export AWS_ACCESS_KEY_ID=$COFFRE_ROOT_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$COFFRE_ROOT_SECRET_KEY AWS_DEFAULT_REGION=fr-par

# Full redundancy: every node up, nothing awaiting healing, the replicas level.
redundant() {
  "$BIN" admin status 2>/dev/null | grep -q "6 of 6 nodes up" || return 1
  local deg
  deg=$("$BIN" admin audit residency faults --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["degraded_shards"])') || return 1
  [ "$deg" = 0 ] || return 1
  local applied=()
  for g in "${gateways[@]}"; do
    applied+=("$(COFFRE_ADMIN_ENDPOINT="http://$(gw_ip "$g"):9001" "$BIN" admin meta status --json 2>/dev/null |
      python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["last_applied"] if v["leader"] is not None else "none")')") || return 1
  done
  [ "${applied[0]}" != none ] && [ "${applied[0]}" = "${applied[1]}" ] && [ "${applied[1]}" = "${applied[2]}" ]
}
wait_redundant() {
  for _ in $(seq 180); do redundant && return 0; sleep 1; done
  "$BIN" admin status || true
  "$BIN" admin audit residency faults || true
  fail "the cluster did not return to full redundancy after $1"
}

for _ in $(seq 120); do "$BIN" admin status 2>/dev/null | grep -q "6 of 6 nodes up" && break; sleep 1; done
for _ in $(seq 60); do aws --endpoint-url "http://127.0.0.1:$COFFRE_PUBLISH_S3" s3 mb s3://faults >/dev/null 2>&1 && break; sleep 1; done
aws --endpoint-url "http://127.0.0.1:$COFFRE_PUBLISH_S3" s3 ls s3://faults >/dev/null || fail "the S3 endpoint on 127.0.0.1 does not answer"
wait_redundant start

ledger="$work/ledger.jsonl"
phases=()
start_load() {
  python3 tests/docker/load.py run --phase "$1" --endpoints "$endpoints" --bucket faults \
    --ledger "$ledger" --stats "$work/stats-$1.json" &
  loader=$!
  phases+=("$1")
  sleep 4
}
stop_load() {
  sleep 4
  kill -TERM "$loader"; wait "$loader" || fail "the load of $1 failed"
  loader=""
  echo "phase $1: $(cat "$work/stats-$1.json")"
  local t0=$SECONDS
  wait_redundant "$1"
  echo "phase $1: full redundancy $((SECONDS - t0)) s after the load stopped"
}
# PHASES="partition pause" runs only those (to investigate one).
want() { [[ " ${PHASES:-partition kill-node kill-site pause disk-full rolling} " == *" $1 "* ]]; }
containers_of() { for c in "gw-$1" "node-$1-1" "node-$1-2"; do cid "$c"; done; }

# (a) a site cut off the others, then healed.
if want partition; then
  start_load partition
  for c in $(containers_of paris); do docker network disconnect "${project}_wan" "$c"; done
  sleep 20
  for c in $(containers_of paris); do docker network connect "${project}_wan" "$c"; done
  stop_load partition
fi

# (b) kill -9 of one node, then of a whole site.
if want kill-node; then
  start_load kill-node
  docker kill -s KILL "$(cid node-lille-1)" >/dev/null
  sleep 12
  docker start "$(cid node-lille-1)" >/dev/null
  stop_load kill-node
fi

if want kill-site; then
  start_load kill-site
  docker kill -s KILL $(containers_of paris) >/dev/null
  sleep 15
  docker start $(containers_of paris) >/dev/null
  stop_load kill-site
fi

# A node that stops answering without closing its connections.
if want pause; then
  start_load pause
  docker pause "$(cid node-lille-2)" >/dev/null
  sleep 15
  docker unpause "$(cid node-lille-2)" >/dev/null
  stop_load pause
fi

# (c) one node's disk full, then freed.
if want disk-full; then
  start_load disk-full
  dd if=/dev/zero of="$full/filler" bs=1M 2>/dev/null || true    # until ENOSPC
  sleep 15
  rm -f "$full/filler"
  stop_load disk-full
fi

# (d) every container restarted, one after the other, each back before the next.
if want rolling; then
  start_load rolling
  for c in "${nodes[@]}" "${gateways[@]}"; do
    docker restart -t 20 "$(cid "$c")" >/dev/null
    if [[ $c == gw-* ]]; then
      for _ in $(seq 60); do [ "$(docker inspect -f '{{.State.Health.Status}}' "$(cid "$c")")" = healthy ] && break; sleep 1; done
    else
      for _ in $(seq 60); do "$BIN" admin status 2>/dev/null | grep -q "6 of 6 nodes up" && break; sleep 1; done
    fi
  done
  stop_load rolling
fi

# Every acknowledged object, read back from the gateways.
python3 tests/docker/load.py verify --endpoints "$endpoints" --bucket faults --ledger "$ledger" --stats "$work/stats-verify.json" || true

python3 - "$work" "${phases[@]}" verify <<'PY'
import json, sys
work, phases = sys.argv[1], sys.argv[2:]
bad = []
print(f"{'fault':<11} {'requests':>8} {'ok':>6} {'p50 ms':>6} {'max ms':>6}  {'wrong':>5} {'stale':>5} {'lost':>4}  errors by code")
for p in phases:
    s = json.load(open(f"{work}/stats-{p}.json"))
    lost = len(s.get("lost", []))
    errs = ", ".join(f"{k} {v}" for k, v in sorted(s["errors"].items())) or "-"
    print(f"{p:<11} {s['requests']:>8} {s['ok']:>6} {s['p50_ms']:>6} {s['max_ms']:>6}  {len(s['wrong']):>5} {len(s['stale']):>5} {lost:>4}  {errs}")
    if s["wrong"] or s["stale"] or lost:
        bad.append(f"{p}: wrong {s['wrong'][:5]} stale {s['stale'][:5]} lost {s.get('lost', [])[:5]}")
    if s["errors"].get("timeout"):
        bad.append(f"{p}: {s['errors']['timeout']} request(s) hung (no answer in 30 s)")
    odd = [k for k in s["errors"] if k.startswith("client:")]
    if odd:
        bad.append(f"{p}: client-side failures {odd}")
    if s["ok"] == 0:
        bad.append(f"{p}: no request succeeded")
v = json.load(open(f"{work}/stats-verify.json"))
print(f"{v['objects']} acknowledged objects checked at the end")
if bad:
    print("FAIL:", *bad, sep="\n  ")
    sys.exit(1)
PY
echo "PASS docker cluster faults: nothing lost, no wrong byte, no hang; full redundancy after each fault"
