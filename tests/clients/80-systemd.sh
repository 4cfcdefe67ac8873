# docker/systemd/: the unit files parse (systemd-analyze verify), their sandbox scores as
# hardened (systemd-analyze security, offline), and the exact command lines they run start a
# store and a node that serve and stop cleanly on the SIGTERM systemd sends.
coffre() { "$COFFRE_BIN" "$@"; }
units="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/docker/systemd"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
unset COFFRE_ADMIN_ENDPOINT COFFRE_ADMIN_TOKEN
mkdir -p sd
pids=()
stop_all() {
  set +e
  for p in "${pids[@]}"; do kill "$p"; done
  wait
} 2>/dev/null
trap stop_all EXIT

for u in coffre-server coffre-node; do
  # The unit as installed, but for where the binary is.
  sed "s|/usr/local/bin/coffre|$COFFRE_BIN|" "$units/$u.service" >"sd/$u.service"
  systemd-analyze verify "sd/$u.service" >"sd/$u.verify" 2>&1 || { cat "sd/$u.verify"; echo "FAIL: $u.service does not verify"; exit 1; }
  # Any complaint but about this machine lacking the unit's neighbours is a defect.
  if grep -v "Cannot add dependency job\|not found, proceeding anyway" "sd/$u.verify" | grep -q .; then
    cat "sd/$u.verify"; echo "FAIL: systemd-analyze verify complains about $u.service"; exit 1
  fi
  grep -q '^NoNewPrivileges=yes' "sd/$u.service" && grep -q '^ProtectSystem=strict' "sd/$u.service" &&
    grep -q '^PrivateTmp=yes' "sd/$u.service" && grep -q '^User=coffre' "sd/$u.service" || { echo "FAIL: $u hardening"; exit 1; }
  exposure=$(systemd-analyze security --offline=true "sd/$u.service" 2>/dev/null | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
  echo "$u.service: exposure $exposure"
  python3 -c "import sys; sys.exit(0 if float('$exposure') <= 2.0 else 1)" || { echo "FAIL: $u.service exposure $exposure > 2.0"; exit 1; }
done

# What ExecStart runs, with Environment= from the unit and an env file like the documented one.
exec_start() { sed -n "s|^ExecStart=||p" "sd/$1.service"; }
s3=$(free_port)
cat >sd/coffre.env <<EOF
COFFRE_ROOT_ACCESS_KEY=SYSTEMDTESTKEY
COFFRE_ROOT_SECRET_KEY=systemd-test-secret
COFFRE_LISTEN=127.0.0.1:$s3
COFFRE_ADMIN_LISTEN=127.0.0.1:0
EOF
( set -a; . sd/coffre.env; export COFFRE_DATA="$PWD/sd/server-data"; exec $(exec_start coffre-server) ) >sd/server.log 2>&1 &
server=$!; pids+=($server)
for _ in $(seq 100); do coffre health --address "127.0.0.1:$s3" 2>/dev/null && break; sleep 0.1; done
coffre health --address "127.0.0.1:$s3"
AWS_ACCESS_KEY_ID=SYSTEMDTESTKEY AWS_SECRET_ACCESS_KEY=systemd-test-secret \
  aws --endpoint-url "http://127.0.0.1:$s3" s3 mb s3://systemd >/dev/null
[ "$(stat -c %a sd/server-data)" = 700 ] || { echo "FAIL: the data directory is not 0700"; exit 1; }

coffre admin ca init --out sd/ca >/dev/null
coffre admin node-identity --ca sd/ca --id sd-node --country FR --site paris --out sd/identity >/dev/null
node_port=$(free_port)
( export COFFRE_DATA="$PWD/sd/node-data"; exec $(exec_start coffre-node | sed "s|/etc/coffre/identity|$PWD/sd/identity|; s|0.0.0.0:9100|127.0.0.1:$node_port|") ) >sd/node.log 2>&1 &
node=$!; pids+=($node)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$node_port") 2>/dev/null && break; sleep 0.1; done
(exec 3<>"/dev/tcp/127.0.0.1/$node_port") || { cat sd/node.log; echo "FAIL: the node does not listen"; exit 1; }

# systemd stops with SIGTERM and waits TimeoutStopSec: both must exit 0 well before.
for p in $server $node; do
  kill -TERM "$p"
  for _ in $(seq 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$p" 2>/dev/null; then echo "FAIL: pid $p still running 20 s after SIGTERM"; exit 1; fi
  wait "$p" || { echo "FAIL: pid $p exited with $? on SIGTERM"; cat sd/server.log sd/node.log | tail -20; exit 1; }
done
pids=()
echo "systemd units verified; server and node started from their ExecStart and stopped on SIGTERM"
