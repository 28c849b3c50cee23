#!/usr/bin/env bash
# GET one provider under wrk against two server binaries (say, main's and a branch's), in the
# same minutes, alternating, without and with an admin token; prints each rate and the ratio
# second / first. Needs wrk (Debian: apt-get install wrk).
# Usage: benches/wrk_compare.sh FIRST_BINARY SECOND_BINARY [seconds per run]
set -euo pipefail
first="$1" second="$2" secs="${3:-5}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$dir"' EXIT
token="bench-admin-token-0123456789abcdef"
. "$(dirname "$0")/serve.sh"
start_server "$first" a; a=$addr
start_server "$second" b; b=$addr
start_server "$first" at "$token"; at=$addr
start_server "$second" bt "$token"; bt=$addr
rate() { wrk -t2 -c"$1" -d"${secs}s" -H "authorization: Bearer $token" \
    "http://$2/api/providers/openai" | awk '/Requests\/sec/ {print $2}'; }
printf '| token | connections | first req/s | second req/s | second / first |\n|---|---:|---:|---:|---:|\n'
for pair in "none $a $b" "admin $at $bt"; do
    set -- $pair
    for c in 8 64 256; do
        x=$(rate "$c" "$2") y=$(rate "$c" "$3")
        awk -v k="$1" -v c="$c" -v x="$x" -v y="$y" \
            'BEGIN { printf "| %s | %s | %.0f | %.0f | %.2f |\n", k, c, x, y, y / x }'
    done
done
