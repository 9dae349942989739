#!/usr/bin/env bash
# Bogus-token flood against a real `ficus serve` on PostgreSQL: BOGUS
# concurrent workers (default 200) send client-credentials requests with
# random client ids and secrets, each of which costs ficus an argon2id run
# (64 MiB), while LEGIT workers (default 4) of a real client ask for tokens
# and a second real client, whose secret is not verified yet, asks for its
# first token. Two scenarios, each on a fresh process so its peak memory
# (VmHWM) is its own:
#   distributed  every bogus request from a random X-Forwarded-For address
#                (ficus trusts 127.0.0.1 as a proxy): only the hashing
#                budget stands between the flood and ficus's memory;
#   one address  the same flood from one address: the per-address failure
#                limit refuses it before any hashing.
# Bounded: DURATION (default 20s) per scenario on 127.0.0.1. Writes the
# idp-flood section of docs/benchmarks.md. PORT_BASE (default 18080, as
# load.sh's) moves the ports: ficus listens on PORT_BASE+200 (ops +201).
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-20s}
BOGUS=${BOGUS:-200}
LEGIT=${LEGIT:-4}
OUT=${OUT:-docs/benchmarks.md}
B=${PORT_BASE:-18080}
FICUS_PORT=$((B+200)) OPS_PORT=$((B+201))
ADMIN=${TEST_DATABASE_URL:-${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}}
db="ficus_flood_$$"
work=$(mktemp -d /tmp/ficus-idpflood.XXXXXX)
pid=""
stop() { { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; } || true; pid=""; }
cleanup() {
  stop || true
  psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
psql "$ADMIN" -qc "CREATE DATABASE $db" >/dev/null
export FICUS_FLOOD_DSN="${ADMIN%/*}/$db?sslmode=disable"
case "$ADMIN" in *\?*) FICUS_FLOOD_DSN="$(echo "$ADMIN" | sed -E "s#/[^/?]*\?#/$db?#")";; esac

# FICUS=path/to/ficus measures another build (e.g. an older one) instead.
if [ -n "${FICUS:-}" ]; then cp "$FICUS" "$work/ficus"; else go build -o "$work/ficus" ./cmd/ficus; fi
go build -o "$work/idpload" ./idp/bench/idpload
# The monolith is never called: the flood only asks the IDP for tokens.
printf 'version: 1\nmonolith: legacy\nupstreams:\n  legacy: {url: "http://127.0.0.1:%d"}\nroutes: []\n' $((B+10)) > "$work/routes.yaml"
cat > "$work/ficus.yaml" <<C
listen: {addr: "127.0.0.1:$FICUS_PORT", ops_addr: "127.0.0.1:$OPS_PORT"}
store: {driver: postgres, dsn: env:FICUS_FLOOD_DSN}
routes: {file: routes.yaml}
log: {level: error, access_log: false}
trusted_proxies: [127.0.0.1]
C
create() { "$work/ficus" idp client create "$1" --grant client_credentials --scope a -c "$work/ficus.yaml" | awk '/client_secret/ {print $2}'; }
secret=$(create real)
cold_secret=$(create cold)

declare -A LINE
for scenario in distributed one-address; do
  "$work/ficus" serve -c "$work/ficus.yaml" > "$work/serve.log" 2>&1 &
  pid=$!
  for i in $(seq 100); do curl -fsS -o /dev/null http://127.0.0.1:$FICUS_PORT/.well-known/jwks.json 2>/dev/null && break; sleep 0.1; done
  xff=""; [ "$scenario" = distributed ] && xff="-xff"
  LINE[$scenario]=$("$work/idpload" -url http://127.0.0.1:$FICUS_PORT -op flood -bogus "$BOGUS" -c "$LEGIT" $xff -pid "$pid" \
    -client real -secret "$secret" -cold-client cold -cold-secret "$cold_secret" -d "$DURATION")
  echo "$scenario: ${LINE[$scenario]}" >&2
  stop
  # the cold client's secret is verified now; the next scenario starts cold again
  "$work/ficus" idp client delete cold -c "$work/ficus.yaml" >/dev/null
  cold_secret=$(create cold)
done

row() { # scenario label
  read -r _ total s401 s503 s429 other ok failed p50 p99 cold_n cold_ok before peak <<<"${LINE[$1]}"
  local cold="no token in $cold_n tries"
  [ "$cold_ok" = true ] && cold="token after $cold_n tries"
  echo "| $2 | $total | $s401 / $s503 / $s429 / $other | $ok of $((ok + failed)) | $p50 / $p99 | $cold | $before | **$peak** |"
}
block=$(cat <<MD
<!-- idp-flood:begin -->
Produced by \`make bench\` (\`idp/bench/flood.sh\`, run alone with \`.ci/with-postgres.sh idp/bench/flood.sh\`) on $(date -u +%Y-%m-%d),
$(nproc) cores shared by the load generator, ficus and PostgreSQL $(psql "$ADMIN" -Atc 'show server_version' 2>/dev/null | cut -d' ' -f1).
\`ficus serve\` with the default hashing settings (argon2id 64 MiB, \`idp.hash_memory\` 128 MiB, \`idp.hash_wait\` 2s);
$BOGUS bogus workers and $LEGIT workers of a real client, $DURATION per scenario:

\`\`\`
idpload -op flood -bogus $BOGUS -c $LEGIT [-xff] -pid <ficus pid> -client real -secret … -cold-client cold -cold-secret … -d $DURATION
\`\`\`

| scenario | bogus requests | 401 / 503 / 429 / other | real client: tokens | real client p50 / p99 ms | a second real client's first token (verifies its secret) | RSS before MiB | peak RSS MiB |
|---|---:|---|---:|---:|---|---:|---:|
$(row distributed "from $BOGUS random addresses (via a trusted proxy)")
$(row one-address "from one address")
<!-- idp-flood:end -->
MD
)
printf '%s\n' "$block" | strangler/bench/write-section.sh idp-flood "$OUT"
echo "$block"
