#!/usr/bin/env bash
# GET one provider under wrk (a second process, C, keep-alive) against the release server on a
# fresh SQLite file and, in the same minutes, against the bare hyper baseline of
# `cargo bench --bench api` answering the same bytes; prints each rate and the ratio.
# Needs wrk (Debian: apt-get install wrk). Usage: benches/wrk.sh [seconds per run]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-5}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }
cargo build --release --quiet
cargo bench --bench api --no-run --quiet 2>/dev/null
bench=$(ls -t target/release/deps/api-* | grep -v '\.d$' | head -1)
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$dir"' EXIT
. benches/serve.sh
start_server target/release/bifrost-providers p
curl -sf "http://$addr/api/providers/openai" -o "$dir/body.json"
BIFROST_BENCH_BASELINE_BODY="$dir/body.json" "$bench" >"$dir/baseline.addr" &
sleep 0.5
baseline=$(cat "$dir/baseline.addr")
rate() { wrk -t2 -c"$1" -d"${secs}s" "http://$2/api/providers/openai" | awk '/Requests\/sec/ {print $2}'; }
printf '| connections | hyper req/s | server req/s | server / hyper |\n|---:|---:|---:|---:|\n'
for c in 8 64 256; do
    theirs=$(rate "$c" "$baseline")
    ours=$(rate "$c" "$addr")
    awk -v c="$c" -v t="$theirs" -v o="$ours" 'BEGIN { printf "| %s | %.0f | %.0f | %.2f |\n", c, t, o, o / t }'
done
