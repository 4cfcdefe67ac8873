#!/usr/bin/env python3
"""A bounded S3 client load with verification, for tests/docker/20-cluster-faults.sh.

  load.py run    --phase P --endpoints E,E --bucket B --ledger FILE --stats FILE [--workers N]
  load.py verify --endpoints E,E --bucket B --ledger FILE --stats FILE

An endpoint E is a URL or CONTAINER/NETWORK (the container's current address on that network).

`run` works until SIGTERM: each worker writes new objects (unique keys) and overwrites a few
keys of its own ("hot" keys), and reads back both. An object's bytes are a function of its key
and write sequence number, and start with a header naming them, so any read is checked: the
bytes must be exactly those of one write, and of a write no older than the last acknowledged
one (a read never goes back in time) nor newer than the last attempted. Every acknowledged
write goes to the ledger (JSON lines) before the next request; `verify` reads every ledger
object back. Requests are not retried: the stats count each answer by its S3 error code,
`connect` when no gateway process answered (one being restarted), `timeout` when one
answered nothing within 30 s (a hang, which must never happen).
"""
import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import boto3
import botocore.config
import botocore.exceptions

HEADER = 64


def body(key, seq, size):
    head = json.dumps({"k": key, "s": seq}).encode().ljust(HEADER, b" ")
    rng = random.Random(f"{key}/{seq}")
    return head + rng.randbytes(max(size - HEADER, 0))


def parse(data):
    try:
        h = json.loads(data[:HEADER].decode())
        return h["k"], h["s"]
    except Exception:
        return None, None


def size_for(key, seq):
    rng = random.Random(f"size/{key}/{seq}")
    # Mostly small objects, some of several stripes.
    return rng.choice([HEADER, 1000, 30_000, 200_000, 1_500_000])


def resolve(endpoint):
    """An endpoint is a URL, or CONTAINER/NETWORK: the container's address on that network,
    asked of Docker (a restarted container may come back with another address)."""
    if "://" in endpoint:
        return endpoint
    container, network = endpoint.split("/")
    ip = subprocess.run(["docker", "inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}', container],
                        capture_output=True, text=True).stdout.strip()
    return f"http://{ip}:9000" if ip else None


class Client:
    """Round robin over the gateways; one that refused a connection is skipped for 3 s, as a
    load balancer's health check would, and its address asked again."""

    def __init__(self, endpoints):
        self.cfg = botocore.config.Config(
            connect_timeout=3,
            read_timeout=30,
            retries={"max_attempts": 1, "mode": "standard"},
            s3={"addressing_style": "path"},
        )
        self.endpoints = endpoints
        self.urls = [None] * len(endpoints)
        self.s3 = [None] * len(endpoints)
        for i in range(len(endpoints)):
            self.connect(i)
        self.down_until = [0.0] * len(endpoints)
        self.i = random.randrange(len(endpoints))

    def connect(self, i):
        url = resolve(self.endpoints[i])
        if url and url != self.urls[i]:
            self.urls[i] = url
            self.s3[i] = boto3.client("s3", endpoint_url=url, config=self.cfg, region_name="fr-par")

    def pick(self):
        now = time.monotonic()
        for _ in range(len(self.s3)):
            self.i = (self.i + 1) % len(self.s3)
            if self.down_until[self.i] <= now and self.s3[self.i] is not None:
                return self.i
        for j in range(len(self.s3)):
            if self.s3[(self.i + j) % len(self.s3)] is not None:
                return (self.i + j) % len(self.s3)
        raise RuntimeError("no gateway has an address")

    def failed(self, i):
        self.down_until[i] = time.monotonic() + 3
        self.connect(i)

    def call(self, op, **kw):
        """(outcome, result): outcome is "ok", an S3 error code, "connect" or "timeout"."""
        i = self.pick()
        self.last = i
        try:
            return "ok", getattr(self.s3[i], op)(**kw)
        except botocore.exceptions.ClientError as e:
            return e.response.get("Error", {}).get("Code") or str(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")), None
        except botocore.exceptions.ReadTimeoutError:
            return "timeout", None
        except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError,
                botocore.exceptions.ConnectTimeoutError) as e:
            self.failed(i)
            if os.environ.get("LOAD_DEBUG"):
                print(f"{time.strftime('%T')} {self.s3[i].meta.endpoint_url} {op}: {type(e).__name__}: {e}", file=sys.stderr)
            return "connect", None
        except Exception as e:  # a connection reset mid-answer, an incomplete body
            self.failed(i)
            if "onnection" in str(e) or "IncompleteRead" in type(e).__name__:
                return "connect", None
            print(f"client error: {type(e).__name__}: {e}", file=sys.stderr)
            return f"client:{type(e).__name__}", None


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.ok = 0
        self.errors = {}
        self.wrong = []
        self.stale = []
        self.ms = []

    def count(self, outcome, ms=0.0):
        with self.lock:
            self.requests += 1
            self.ms.append(ms)
            if outcome == "ok":
                self.ok += 1
            else:
                self.errors[outcome] = self.errors.get(outcome, 0) + 1

    def dump(self, path, phase, **extra):
        with open(path, "w") as f:
            ms = sorted(self.ms) or [0.0]
            json.dump({"phase": phase, "requests": self.requests, "ok": self.ok, "errors": self.errors,
                       "wrong": self.wrong, "stale": self.stale, "p50_ms": round(ms[len(ms) // 2]),
                       "p99_ms": round(ms[len(ms) * 99 // 100]), "max_ms": round(ms[-1]), **extra}, f)


def timed(client, stats, op, **kw):
    t = time.monotonic()
    outcome, r = client.call(op, **kw)
    note(client, op, outcome, t)
    stats.count(outcome, (time.monotonic() - t) * 1000)
    return outcome, r


def note(client, op, outcome, started):
    """With LOAD_DEBUG, every request slower than 5 s, on stderr."""
    secs = time.monotonic() - started
    if secs > 5 and os.environ.get("LOAD_DEBUG"):
        print(f"{time.strftime('%T')} {client.urls[client.last]} {op}: {outcome} after {secs:.1f} s", file=sys.stderr)


def get(client, stats, bucket, key):
    """(outcome, bytes or None)."""
    t = time.monotonic()
    outcome, r = client.call("get_object", Bucket=bucket, Key=key)
    data = None
    if outcome == "ok":
        try:
            data = r["Body"].read()
        except Exception:
            outcome = "connect"
    note(client, "get_object", outcome, t)
    stats.count(outcome, (time.monotonic() - t) * 1000)
    return outcome, data


def check(stats, key, data, lo, hi):
    """The bytes must be those of one write of `key` whose seq is in [lo, hi]."""
    k, s = parse(data)
    if k != key or s is None or data != body(key, s, size_for(key, s)):
        stats.wrong.append(key)
        return False
    if s < lo or s > hi:
        stats.stale.append(f"{key}: read seq {s}, acknowledged {lo}, attempted {hi}")
        return False
    return True


def run(args):
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stats = Stats()
    ledger = open(args.ledger, "a")
    ledger_lock = threading.Lock()

    def record(key, seq):
        with ledger_lock:
            ledger.write(json.dumps({"key": key, "seq": seq}) + "\n")
            ledger.flush()

    def worker(w):
        client = Client(args.endpoints.split(","))
        rng = random.Random(f"{args.phase}/{w}")
        written = []  # unique keys acknowledged
        hot = {f"hot/{args.phase}/{w}-{j}": [0, 0] for j in range(4)}  # key -> [acked, attempted]
        n = 0
        while not stop.is_set():
            r = rng.random()
            if r < 0.35:
                n += 1
                key = f"{args.phase}/{w}/{n}"
                outcome, _ = timed(client, stats, "put_object", Bucket=args.bucket, Key=key, Body=body(key, 1, size_for(key, 1)))
                if outcome == "ok":
                    record(key, 1)
                    written.append(key)
            elif r < 0.5:
                key = rng.choice(list(hot))
                state = hot[key]
                state[1] += 1
                seq = state[1]
                with ledger_lock:
                    ledger.write(json.dumps({"key": key, "attempt": seq}) + "\n")
                    ledger.flush()
                outcome, _ = timed(client, stats, "put_object", Bucket=args.bucket, Key=key, Body=body(key, seq, size_for(key, seq)))
                if outcome == "ok":
                    state[0] = seq
                    record(key, seq)
            elif r < 0.8 and written:
                key = rng.choice(written)
                outcome, data = get(client, stats, args.bucket, key)
                if data is not None:
                    check(stats, key, data, 1, 1)
                elif outcome == "NoSuchKey":
                    stats.stale.append(f"{key}: NoSuchKey after its write was acknowledged")
            else:
                key = rng.choice(list(hot))
                lo, hi = hot[key]
                if hi == 0:
                    continue
                outcome, data = get(client, stats, args.bucket, key)
                if data is not None:
                    check(stats, key, data, max(lo, 1), hi)
                elif outcome == "NoSuchKey" and lo > 0:
                    stats.stale.append(f"{key}: NoSuchKey after write {lo} was acknowledged")
                # (a NoSuchKey before any write of the key was acknowledged is right)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(args.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats.dump(args.stats, args.phase)


def verify(args):
    acked, attempted = {}, {}
    for line in open(args.ledger):
        e = json.loads(line)
        if "attempt" in e:
            attempted[e["key"]] = max(attempted.get(e["key"], 0), e["attempt"])
        else:
            acked[e["key"]] = max(acked.get(e["key"], 0), e["seq"])
    client = Client(args.endpoints.split(","))
    stats = Stats()
    lost = []
    for key, seq in sorted(acked.items()):
        data = None
        for _ in range(3):  # a gateway restarting: ask another
            _, data = get(client, stats, args.bucket, key)
            if data is not None:
                break
        if data is None or not check(stats, key, data, seq, max(seq, attempted.get(key, seq))):
            lost.append(key)
    stats.dump(args.stats, "verify", objects=len(acked), lost=lost)
    print(f"verify: {len(acked)} acknowledged objects, {len(lost)} lost or wrong")
    return 1 if lost else 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["run", "verify"])
    p.add_argument("--phase", default="load")
    p.add_argument("--endpoints", required=True)
    p.add_argument("--bucket", required=True)
    p.add_argument("--ledger", required=True)
    p.add_argument("--stats", required=True)
    p.add_argument("--workers", type=int, default=4)
    args = p.parse_args()
    if args.mode == "run":
        run(args)
        return 0
    return verify(args)


if __name__ == "__main__":
    sys.exit(main())
