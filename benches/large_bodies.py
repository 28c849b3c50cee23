#!/usr/bin/env python3
"""Memory under large bodies: rounds of concurrent ~4 MiB PUTs, the server's RSS after each.

    python3 benches/large_bodies.py target/release/bifrost-providers [ROUNDS] [CLIENTS]

Runs the same rounds against three servers, one after the other, each on a new SQLite file:
the budget off (`--max-buffered-body-bytes` at its largest, as before the budget existed), the
default budget (64 MiB), and the default budget with mimalloc told to return freed memory at
once (`MIMALLOC_PURGE_DELAY=0`). Prints, per server and round, the RSS one second after the
round and the peak RSS so far (VmHWM), and the statuses the round took and
the statuses it heard. Standard library only.
"""

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

BIN = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
CLIENTS = int(sys.argv[3]) if len(sys.argv) > 3 else 64

# A provider body just under the 4 MiB limit: one key with a long `models` list (refused by
# validation past 10,000 names, after the whole body was read and decoded, as a large valid body
# would be).
MODELS = ["m%07d" % i for i in range(330_000)]
BODY = json.dumps({"keys": [{"name": "k", "value": "sk-" + "a" * 40, "models": MODELS}]}).encode()

SERVERS = [
    ("budget off", ["--max-buffered-body-bytes", str(16 << 30)], {}),
    ("default budget (64 MiB)", [], {}),
    ("default budget, MIMALLOC_PURGE_DELAY=0", [], {"MIMALLOC_PURGE_DELAY": "0"}),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            fields[name] = value.split()
    return int(fields["VmRSS"][0]) // 1024, int(fields["VmHWM"][0]) // 1024


def put(port, statuses):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("PUT", "/api/providers/openai", BODY, {"content-type": "application/json"})
        response = connection.getresponse()
        response.read()
        statuses.append(response.status)
    finally:
        connection.close()


def run(label, args, env):
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        server = subprocess.Popen(
            [BIN, "serve", "--bind", f"127.0.0.1:{port}", "--store", f"sqlite://{folder}/s.db", *args],
            env=dict(os.environ, **env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", port)).close()
                    break
                except OSError:
                    time.sleep(0.05)
            rss, _ = memory(server.pid)
            print(f"| {label} | start | {rss} | {rss} | | |")
            for round_ in range(1, ROUNDS + 1):
                statuses = []
                began = time.monotonic()
                threads = [threading.Thread(target=put, args=(port, statuses)) for _ in range(CLIENTS)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                took = time.monotonic() - began
                time.sleep(1)
                rss, peak = memory(server.pid)
                seen = ", ".join(f"{s}×{statuses.count(s)}" for s in sorted(set(statuses)))
                print(f"| {label} | {round_} | {rss} | {peak} | {took:.1f} | {seen} |", flush=True)
        finally:
            server.terminate()
            server.wait()


print(f"body: {len(BODY)} bytes, {CLIENTS} clients at once, {ROUNDS} rounds")
print("| server | round | RSS after, MiB | peak RSS, MiB | round, s | statuses |")
print("|---|---:|---:|---:|---:|---|")
for label, args, env in SERVERS:
    run(label, args, env)
