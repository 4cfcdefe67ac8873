# The commands of docs/cluster-quickstart.md: a 3-site cluster on this machine, by hand.
coffre() { "$COFFRE_BIN" "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
# `coffre` is a function, so `$!` is the subshell running it (or, when bash execs the binary
# in it, the binary itself): stop the binary under it too. Errors do not stop the cleanup
# (`set -e` applies in a trap, and pkill fails when there is no child).
stop_all() {
  set +e
  for p in "${pids[@]}"; do pkill -P "$p"; kill "$p"; done
  wait
} 2>/dev/null
trap stop_all EXIT
# This cluster is its own: not the admin API of the server the other scripts use.
unset COFFRE_ADMIN_ENDPOINT COFFRE_ADMIN_TOKEN

# 1. The cluster CA, then one identity per node: its location is signed into its certificate.
coffre admin ca init --out qs/ca
for n in 1 2 3 4 5 6; do
  site=$(( (n + 1) / 2 ))                      # nodes 1-2 in site 1, 3-4 in site 2, 5-6 in site 3
  coffre admin node-identity --ca qs/ca --id "node-$n" --country FR --site "paris-$site" --zone a --out "qs/node-$n"
done
coffre admin node-identity --ca qs/ca --id gateway-1 --country FR --site paris-1 --role gateway --out qs/gateway

# 2. Six storage nodes (HTTP/2, mutual TLS).
for n in 1 2 3 4 5 6; do
  port=$(free_port)
  coffre node --data "qs/data-$n" --listen "127.0.0.1:$port" --identity "qs/node-$n" > "qs/node-$n.log" 2>&1 &
  pids+=($!)
  echo "https://127.0.0.1:$port" >> qs/addresses
done
sleep 0.5

# 3. The gateway: its identity, the CA, the nodes, and a region whose buckets stay in France
#    with shards spread over sites.
{
  echo '[cluster]'
  echo 'ca = "qs/ca"'
  echo 'identity = "qs/gateway"'
  while read -r a; do printf '[[nodes]]\naddress = "%s"\n' "$a"; done < qs/addresses
  printf '[regions.fr-par]\ncountries = ["FR"]\nfailure_domain = "site"\n'
} > qs/gateway.toml
s3_port=$(free_port); admin_port=$(free_port)
COFFRE_ROOT_ACCESS_KEY=$AWS_ACCESS_KEY_ID COFFRE_ROOT_SECRET_KEY=$AWS_SECRET_ACCESS_KEY \
  coffre server --data qs/gateway-data --listen "127.0.0.1:$s3_port" --admin-listen "127.0.0.1:$admin_port" --config qs/gateway.toml > qs/gateway.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$s3_port/health" >/dev/null && break; sleep 0.1; done

# 4. Use it with aws-cli; ask where the shards are.
aws() { command aws --endpoint-url "http://127.0.0.1:$s3_port" "$@"; }
aws s3 mb s3://dossiers
head -c 10000000 /dev/urandom > qs/scan.bin
aws s3 cp qs/scan.bin s3://dossiers/2026/scan.bin
aws s3 cp s3://dossiers/2026/scan.bin qs/scan.back && cmp qs/scan.bin qs/scan.back
export COFFRE_ADMIN_ENDPOINT="http://127.0.0.1:$admin_port" COFFRE_ADMIN_TOKEN=$(cat qs/gateway-data/admin.token)
coffre admin status
coffre admin placement dossiers 2026/scan.bin
coffre admin audit residency dossiers

# What the script checks: every node up, every shard in France, spread over the 3 sites.
status=$(coffre admin status); grep -q "6 of 6 nodes up" <<<"$status"
placement=$(coffre admin placement dossiers 2026/scan.bin --json)
python3 - "$placement" <<'PY'
import json, sys
p = json.loads(sys.argv[1])
assert all(s["country"] == "FR" for s in p["shards"]), p
assert len({s["site"] for s in p["shards"]}) == 3, p
PY
audit=$(coffre admin audit residency dossiers); grep -q ", 0 not" <<<"$audit"
