# Sourced by the wrk benches: `start_server BINARY NAME [TOKEN]` starts BINARY on a fresh SQLite
# file in "$dir" (the caller's temporary folder), with TOKEN as its admin token when given, waits
# for it to listen, stores the benches' one provider, and sets `addr`.
start_server() {
    local env=()
    [ -n "${3:-}" ] && env=(BIFROST_ADMIN_TOKEN="$3")
    env "${env[@]}" "$1" serve --bind 127.0.0.1:0 --store "sqlite://$dir/$2.db" \
        --log-format json 2>"$dir/$2.log" &
    addr=
    for _ in $(seq 100); do
        addr=$(grep -o '"local_addr":"[^"]*"' "$dir/$2.log" | head -1 | cut -d'"' -f4 || true)
        [ -n "$addr" ] && break
        sleep 0.1
    done
    curl -sf -X PUT "http://$addr/api/providers/openai" -H 'content-type: application/json' \
        -H "authorization: Bearer ${3:-none}" \
        -d '{"keys":[{"id":"k1","value":"sk-0123456789abcdefghij","models":["gpt-4o"],"weight":1}],
             "network_config":{"base_url":"https://api.example.com/v1"}}' -o /dev/null
}
