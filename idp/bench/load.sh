#!/usr/bin/env bash
# IDP load measurement on this machine, against a real `ficus serve` on
# PostgreSQL: client-credentials issuance, introspection and refresh
# rotation and web-hook ingest (also from 64 senders), and through the
# gateway a pass-through route and the cache-miss exchange (every request an
# opaque token this instance has never seen, swapped for a JWT), each next to a
# PostgreSQL baseline measured in the same run (one INSERT, or one SELECT by
# key, per operation, from the same number of workers; for ingest an INSERT
# of the same 1 KiB row into a table of the inbox's shape). The deliverer
# sends the events to a local sink answering 200 (idpload -op sink, as the
# monolith behind the gateway), and each ingest measurement waits until the
# inbox has nothing pending, so delivery is measured (while and after the
# load) and never competes with the next measurement. Bounded: each
# measurement runs DURATION (default 5s) on 127.0.0.1. Writes the IDP section of docs/benchmarks.md, then runs
# flood.sh (its own section).
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-5s}
CONNS=${CONNS:-32}
OUT=${OUT:-docs/benchmarks.md}
# MAX_BATCH sets store.group_commit.max_batch (1: every write its own commit,
# to compare); FLOOD=0 skips the flood section (repeated runs).
MAX_BATCH=${MAX_BATCH:-64}
FLOOD=${FLOOD:-1}
ADMIN=${TEST_DATABASE_URL:-${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}}
db="ficus_bench_$$"
work=$(mktemp -d /tmp/ficus-idpbench.XXXXXX)
pid=""
sink=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  [ -n "$sink" ] && kill "$sink" 2>/dev/null && wait "$sink" 2>/dev/null || true
  psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
psql "$ADMIN" -qc "CREATE DATABASE $db" >/dev/null
export FICUS_BENCH_DSN="${ADMIN%/*}/$db?sslmode=disable"
case "$ADMIN" in *\?*) FICUS_BENCH_DSN="$(echo "$ADMIN" | sed -E "s#/[^/?]*\?#/$db?#")";; esac

go build -o "$work/ficus" ./cmd/ficus
go build -o "$work/idpload" ./idp/bench/idpload
# The gateway ops (exchange, passthrough) reach an upstream that idpload
# serves at 127.0.0.1:18190: /svc needs an opaque token, swapped for a JWT.
# Web-hook deliveries go to the sink at 127.0.0.1:18090.
cat > "$work/routes.yaml" <<R
version: 1
monolith: legacy
upstreams:
  legacy: {url: "http://127.0.0.1:18190"}
  svc: {url: "http://127.0.0.1:18190", audience: svc}
  sink: {url: "http://127.0.0.1:18090"}
routes:
  - {name: svc, match: {prefix: /svc}, to: svc, auth: {policy: oauth2}}
  - {name: pass, match: {prefix: /pass}, to: legacy}
  # The web-hook deliverer's target (/hooks) is the sink below.
  - {name: hooks, match: {prefix: /hooks}, to: sink}
R
cat > "$work/ficus.yaml" <<C
listen: {addr: "127.0.0.1:18180", ops_addr: "127.0.0.1:18181"}
store: {driver: postgres, dsn: env:FICUS_BENCH_DSN, max_conns: $CONNS, group_commit: {max_batch: $MAX_BATCH}}
routes: {file: routes.yaml}
log: {level: warn, access_log: false}
idp: {allow_password: true, client_rate: 1000000, login_per_minute: 1000000, max_tokens_per_user: 100000}
webhooks:
  adapters:
    - name: stripe
      path: /webhooks/stripe
      schemes: [{type: stripe, secrets: [env:FICUS_BENCH_WHSEC]}]
      target: /hooks
      client_id: hook-adapter
      client_secret: env:FICUS_BENCH_HOOK_SECRET
C
export FICUS_BENCH_WHSEC=whsec_bench_signing_secret FICUS_BENCH_HOOK_SECRET=not-yet
secret=$("$work/ficus" idp client create bench --first-party --scope a -c "$work/ficus.yaml" \
  --grant client_credentials --grant password --grant refresh_token --grant introspection | awk '/client_secret/ {print $2}')
FICUS_BENCH_HOOK_SECRET=$("$work/ficus" idp client create hook-adapter --scope a -c "$work/ficus.yaml" \
  --grant client_credentials | awk '/client_secret/ {print $2}')
"$work/idpload" -op sink -listen 127.0.0.1:18090 2> "$work/sink.log" &
sink=$!
echo "bench-password-1" | "$work/ficus" idp user create bench --password-stdin -c "$work/ficus.yaml" >/dev/null
"$work/ficus" serve -c "$work/ficus.yaml" > "$work/serve.log" 2>&1 &
pid=$!
for i in $(seq 100); do curl -fsS -o /dev/null http://127.0.0.1:18180/.well-known/jwks.json 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null -X POST http://127.0.0.1:18090/ || { echo "the delivery target did not start:"; cat "$work/sink.log"; exit 1; } >&2

load() { "$work/idpload" -url http://127.0.0.1:18180 -op "$1" -client bench -secret "$secret" -user bench -password bench-password-1 \
  -dsn "$FICUS_BENCH_DSN" -c "$CONNS" -d "$DURATION"; }
declare -A R P50 P99 DLV DLVALL DRAIN
# webhook64 and pg_insert_hook64: the ingest goal's 64 concurrent senders,
# next to the INSERT baseline from 64 workers (on at most $CONNS
# connections, ficus's store.max_conns). An ingest measurement also reports
# delivery: events delivered per second while it ran, over it and the
# drain that followed, and the drain's seconds.
# OPS picks some of them (trial runs; the table is written for all).
for op in ${OPS:-pg_insert client_credentials pg_select introspect passthrough exchange_hit exchange refresh pg_insert_hook webhook pg_insert_hook64 webhook64}; do
  if [ "$op" = webhook ] || [ "$op" = webhook64 ]; then
    c=$CONNS; [ "$op" = webhook64 ] && c=64
    read -r _ rate p50 p99 errs dlv dlvall drain < <("$work/idpload" -url http://127.0.0.1:18180 -op webhook -secret "$FICUS_BENCH_WHSEC" \
      -dsn "$FICUS_BENCH_DSN" -c "$c" -d "$DURATION")
    DLV[$op]=$dlv DLVALL[$op]=$dlvall DRAIN[$op]=$drain
    echo "$op delivery: $dlv/s while ingesting, $dlvall/s over ingest and drain, drained ${drain}s after" >&2
  elif [ "$op" = pg_insert_hook ] || [ "$op" = pg_insert_hook64 ]; then
    c=$CONNS; [ "$op" = pg_insert_hook64 ] && c=64
    read -r _ rate p50 p99 errs < <("$work/idpload" -op pg_insert_hook -dsn "$FICUS_BENCH_DSN" -pool "$CONNS" -c "$c" -d "$DURATION")
  else
    read -r _ rate p50 p99 errs < <(load $op)
  fi
  R[$op]=$rate P50[$op]=$p50 P99[$op]=$p99
  echo "$op: $rate/s p50 ${p50}ms p99 ${p99}ms errors $errs" >&2
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
# Stop the server before the Go benchmarks share the database.
kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; pid=""
mint=$(go test -run '^$' -bench 'BenchmarkMintJWT' -benchmem -benchtime 1s ./idp 2>&1 | grep -E '^Benchmark')
drain=$(go test -run '^$' -bench 'BenchmarkDelivery' -benchtime 3000x ./adapters 2>&1 | grep -E '^Benchmark')

block=$(cat <<MD
<!-- idp:begin -->
Produced by \`make bench\` (\`idp/bench/load.sh\`: \`ficus serve\` on PostgreSQL $(psql "$ADMIN" -Atc 'show server_version' 2>/dev/null),
$CONNS concurrent HTTP clients, $DURATION per measurement) on $(date -u +%Y-%m-%d), $(nproc) cores shared by the load generator,
ficus and PostgreSQL. Baselines are raw pgx statements from the same number of workers in the same run.

| operation | per second | p50 ms | p99 ms | vs baseline |
|---|---:|---:|---:|---|
| baseline: INSERT one token row | ${R[pg_insert]} | ${P50[pg_insert]} | ${P99[pg_insert]} | 1.00× |
| client_credentials token (HTTP, client auth, insert, audit) | ${R[client_credentials]} | ${P50[client_credentials]} | ${P99[client_credentials]} | $(ratio "${R[client_credentials]}" "${R[pg_insert]}")× the INSERT baseline |
| baseline: SELECT one row by key | ${R[pg_select]} | ${P50[pg_select]} | ${P99[pg_select]} | 1.00× |
| introspection (RFC 7662, HTTP, client auth) | ${R[introspect]} | ${P50[introspect]} | ${P99[introspect]} | $(ratio "${R[introspect]}" "${R[pg_select]}")× the SELECT baseline |
| gateway pass-through: GET through a route without auth to a local upstream | ${R[passthrough]} | ${P50[passthrough]} | ${P99[passthrough]} | $(ratio "${R[passthrough]}" "${R[pg_select]}")× the SELECT baseline |
| gateway exchange, cached: GET through an oauth2 route, each client one token again and again | ${R[exchange_hit]} | ${P50[exchange_hit]} | ${P99[exchange_hit]} | $(ratio "${R[exchange_hit]}" "${R[passthrough]}")× the pass-through |
| gateway cache-miss exchange: GET through an oauth2 route, each with a token never seen (look-up + JWT mint), distinct tokens/s | ${R[exchange]} | ${P50[exchange]} | ${P99[exchange]} | $(ratio "${R[exchange]}" "${R[passthrough]}")× the pass-through, $(ratio "${R[exchange]}" "${R[pg_select]}")× the SELECT baseline |
| refresh_token rotation (batched read, then one compare-and-set UPDATE + INSERT per batch) | ${R[refresh]} | ${P50[refresh]} | ${P99[refresh]} | $(ratio "${R[refresh]}" "${R[pg_insert]}")× the INSERT baseline |
| baseline: INSERT one 1 KiB event row (inbox shape, ON CONFLICT DO NOTHING RETURNING) | ${R[pg_insert_hook]} | ${P50[pg_insert_hook]} | ${P99[pg_insert_hook]} | 1.00× |
| web-hook ingest: 1 KiB Stripe-signed event, verified and committed before 200 | ${R[webhook]} | ${P50[webhook]} | ${P99[webhook]} | $(ratio "${R[webhook]}" "${R[pg_insert_hook]}")× the event INSERT baseline |
| baseline: INSERT one 1 KiB event row, 64 workers | ${R[pg_insert_hook64]} | ${P50[pg_insert_hook64]} | ${P99[pg_insert_hook64]} | 1.00× |
| web-hook ingest as above, 64 concurrent senders | ${R[webhook64]} | ${P50[webhook64]} | ${P99[webhook64]} | $(ratio "${R[webhook64]}" "${R[pg_insert_hook64]}")× the event INSERT baseline (64 workers) |

Delivery during those ingest runs (8 workers, to a local target answering 200 through the gateway):

| ingest run | delivered/s while ingesting | vs the ingest rate | delivered/s over ingest and drain | inbox empty after the senders stop (s) |
|---|---:|---|---:|---:|
| 32 senders | ${DLV[webhook]} | $(ratio "${DLV[webhook]}" "${R[webhook]}")× | ${DLVALL[webhook]} | ${DRAIN[webhook]} |
| 64 senders | ${DLV[webhook64]} | $(ratio "${DLV[webhook64]}" "${R[webhook64]}")× | ${DLVALL[webhook64]} | ${DRAIN[webhook64]} |

Writes are group-committed (\`store.group_commit\`: max_batch $MAX_BATCH, 1 ms wait only
while another batch commits, 2 flushers per kind).

JWT minting (Go benchmark, same run):

\`\`\`
$mint
\`\`\`

Web-hook delivery draining 3,000 stored 1 KiB events to a local target with 8
workers, by claim batch size (events/s; compare with the ingest row above):

\`\`\`
$drain
\`\`\`
<!-- idp:end -->
MD
)
printf '%s\n' "$block" | strangler/bench/write-section.sh idp "$OUT"
echo "$block"

# The bogus-token flood (peak memory under 200 concurrent bogus client
# authentications, real clients served meanwhile): its own section.
[ "$FLOOD" = 0 ] || OUT="$OUT" idp/bench/flood.sh
