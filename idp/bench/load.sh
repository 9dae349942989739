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
#
# Floors: what an HTTP server doing nothing reaches with the same generator,
# worker count and duration on this machine, measured next to the ficus op
# it bounds: a no-op Go net/http endpoint (idpload -op null: parses the form,
# discards the body, answers a fixed JSON body) and, when an nginx binary is
# installed (strangler/bench/load.sh installs one; this script does not),
# nginx with one worker, access_log off, answering `return 200` with the
# same body. And the INSERT baseline once more with synchronous_commit=off,
# to show what share of it is the commit's WAL flush. The goals table puts
# each issue-15 goal beside what the floors reach: "out of reach here" when
# even nginx doing nothing stays below the goal.
#
# PORT_BASE (default 18080) moves every port, so that two runs never share
# one: ficus PORT_BASE+100 (ops +101), the delivery sink +10, the gateway's
# upstream +110, the no-op server +111, nginx +112; flood.sh uses +200/+201.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-5s}
CONNS=${CONNS:-32}
OUT=${OUT:-docs/benchmarks.md}
# MAX_BATCH sets store.group_commit.max_batch (1: every write its own commit,
# to compare); FLOOD=0 skips the flood section (repeated runs).
MAX_BATCH=${MAX_BATCH:-64}
FLOOD=${FLOOD:-1}
B=${PORT_BASE:-18080}
FICUS_PORT=$((B+100)) OPS_PORT=$((B+101)) SINK_PORT=$((B+10)) UP_PORT=$((B+110)) NULL_PORT=$((B+111)) NGX_PORT=$((B+112)) COMMIT_PORT=$((B+113))
ADMIN=${TEST_DATABASE_URL:-${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}}
db="ficus_bench_$$"
work=$(mktemp -d /tmp/ficus-idpbench.XXXXXX)
pid=""
sink=""
null=""
commit=""
ngx=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  [ -n "$sink" ] && kill "$sink" 2>/dev/null && wait "$sink" 2>/dev/null || true
  [ -n "$null" ] && kill "$null" 2>/dev/null && wait "$null" 2>/dev/null || true
  [ -n "$commit" ] && kill "$commit" 2>/dev/null && wait "$commit" 2>/dev/null || true
  [ -n "$ngx" ] && kill "$ngx" 2>/dev/null && wait "$ngx" 2>/dev/null || true
  psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
psql "$ADMIN" -qc "CREATE DATABASE $db" >/dev/null
# ficus's pool and a baseline's are open at once: on a shared PostgreSQL,
# say so before the baselines fail to connect.
free=$(psql "$ADMIN" -Atc "SELECT current_setting('max_connections')::int - count(*) FROM pg_stat_activity" 2>/dev/null || echo 1000)
[ "$free" -ge $((2 * CONNS + 8)) ] ||
  echo "warning: PostgreSQL has $free free connections, this run needs about $((2 * CONNS + 8)); baselines may fail to connect" >&2
export FICUS_BENCH_DSN="${ADMIN%/*}/$db?sslmode=disable"
case "$ADMIN" in *\?*) FICUS_BENCH_DSN="$(echo "$ADMIN" | sed -E "s#/[^/?]*\?#/$db?#")";; esac
# The same database, each session committing without waiting for the WAL
# flush (pg_insert_async).
ASYNC_DSN="$FICUS_BENCH_DSN&options=-c%20synchronous_commit%3Doff"

go build -o "$work/ficus" ./cmd/ficus
go build -o "$work/idpload" ./idp/bench/idpload
# The gateway ops (exchange, passthrough) reach an upstream that idpload
# serves at 127.0.0.1:$UP_PORT: /svc needs an opaque token, swapped for a JWT.
# Web-hook deliveries go to the sink at 127.0.0.1:$SINK_PORT.
cat > "$work/routes.yaml" <<R
version: 1
monolith: legacy
upstreams:
  legacy: {url: "http://127.0.0.1:$UP_PORT"}
  svc: {url: "http://127.0.0.1:$UP_PORT", audience: svc}
  sink: {url: "http://127.0.0.1:$SINK_PORT"}
routes:
  - {name: svc, match: {prefix: /svc}, to: svc, auth: {policy: oauth2}}
  - {name: pass, match: {prefix: /pass}, to: legacy}
  # The web-hook deliverer's target (/hooks) is the sink below.
  - {name: hooks, match: {prefix: /hooks}, to: sink}
R
cat > "$work/ficus.yaml" <<C
listen: {addr: "127.0.0.1:$FICUS_PORT", ops_addr: "127.0.0.1:$OPS_PORT"}
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
"$work/idpload" -op sink -listen 127.0.0.1:$SINK_PORT 2> "$work/sink.log" &
sink=$!
"$work/idpload" -op null -listen 127.0.0.1:$NULL_PORT 2> "$work/null.log" &
null=$!
# The same no-op endpoint committing one INSERT per request before it
# answers (the token row for a form, the 1 KiB event row for JSON): the
# floor of an endpoint that commits each write, on ficus's pool size.
"$work/idpload" -op null -listen 127.0.0.1:$COMMIT_PORT -dsn "$FICUS_BENCH_DSN" -pool "$CONNS" 2> "$work/commit.log" &
commit=$!
echo "bench-password-1" | "$work/ficus" idp user create bench --password-stdin -c "$work/ficus.yaml" >/dev/null
"$work/ficus" serve -c "$work/ficus.yaml" > "$work/serve.log" 2>&1 &
pid=$!
for i in $(seq 100); do curl -fsS -o /dev/null http://127.0.0.1:$FICUS_PORT/.well-known/jwks.json 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null -X POST http://127.0.0.1:$SINK_PORT/ || { echo "the delivery target did not start:"; cat "$work/sink.log"; exit 1; } >&2
for i in $(seq 50); do curl -fsS -o /dev/null -X POST http://127.0.0.1:$NULL_PORT/ 2>/dev/null && break; sleep 0.1; done
# nginx answers the no-op server's own body, byte for byte.
null_body=$(curl -fsS -X POST http://127.0.0.1:$NULL_PORT/) || { echo "the no-op server did not start:"; cat "$work/null.log"; exit 1; } >&2
NGINX=$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)
if [ -n "$NGINX" ]; then
  mkdir -p "$work/nginx"
  cat > "$work/nginx.conf" <<NGX
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  # Go's server keeps a connection for any number of requests: so does this one.
  keepalive_requests 1000000;
  client_body_temp_path $work/nginx/body;
  server {
    listen 127.0.0.1:$NGX_PORT;
    default_type application/json;
    location / { return 200 '$null_body'; }
  }
}
NGX
  "$NGINX" -c "$work/nginx.conf" -p "$work/nginx" -g 'daemon off;' 2> "$work/nginx/start.log" &
  ngx=$!
  for i in $(seq 50); do curl -fsS -o /dev/null -X POST http://127.0.0.1:$NGX_PORT/ 2>/dev/null && break; sleep 0.1; done
  if [ "$(curl -fsS -X POST http://127.0.0.1:$NGX_PORT/ 2>/dev/null)" != "$null_body" ]; then
    echo "nginx did not start; its floors are not measured:" >&2; cat "$work/nginx/start.log" "$work/nginx/error.log" >&2 2>/dev/null || true
    kill "$ngx" 2>/dev/null || true; ngx=""
  fi
else
  echo "no nginx binary: the nginx floors are not measured (strangler/bench/load.sh installs nginx-light)" >&2
fi

load() { "$work/idpload" -url http://127.0.0.1:$FICUS_PORT -op "$1" -client bench -secret "$secret" -user bench -password bench-password-1 \
  -dsn "$FICUS_BENCH_DSN" -upstream 127.0.0.1:$UP_PORT -c "$CONNS" -d "$DURATION"; }
declare -A R P50 P99 ERRS DLV DLVALL DRAIN
# webhook64 and pg_insert_hook64: the ingest goal's 64 concurrent senders,
# next to the INSERT baseline from 64 workers (on at most $CONNS
# connections, ficus's store.max_conns). An ingest measurement also reports
# delivery: events delivered per second while it ran, over it and the
# drain that followed, and the drain's seconds.
# null_X, nginx_X and commit_X: op X (client_credentials as cc, webhook64
# with 64 senders) against the no-op Go server, nginx and the no-op server
# committing each write, each right after the ficus op it bounds;
# pg_insert_async right after the INSERT baseline.
# OPS picks some of them (trial runs; the tables show the others empty).
ALL_OPS="pg_insert pg_insert_async client_credentials null_cc nginx_cc commit_cc pg_select introspect null_introspect nginx_introspect
  passthrough exchange_hit exchange refresh pg_insert_hook webhook pg_insert_hook64 webhook64 null_webhook64 nginx_webhook64 commit_webhook64"
for op in ${OPS:-$ALL_OPS}; do
  if [[ "$op" == null_* || "$op" == nginx_* || "$op" == commit_* ]]; then
    port=$NULL_PORT
    if [[ "$op" == nginx_* ]]; then
      [ -n "$ngx" ] || continue
      port=$NGX_PORT
    fi
    [[ "$op" != commit_* ]] || port=$COMMIT_PORT
    shape=${op#*_} c=$CONNS
    case "$shape" in cc) shape=client_credentials;; webhook64) shape=webhook c=64;; esac
    read -r _ rate p50 p99 errs < <("$work/idpload" -url http://127.0.0.1:$port -op "$shape" -client bench -secret "$secret" \
      -user bench -password bench-password-1 -c "$c" -d "$DURATION")
  elif [ "$op" = pg_insert_async ]; then
    read -r _ rate p50 p99 errs < <("$work/idpload" -op pg_insert -dsn "$ASYNC_DSN" -c "$CONNS" -d "$DURATION")
  elif [ "$op" = webhook ] || [ "$op" = webhook64 ]; then
    c=$CONNS; [ "$op" = webhook64 ] && c=64
    read -r _ rate p50 p99 errs dlv dlvall drain < <("$work/idpload" -url http://127.0.0.1:$FICUS_PORT -op webhook -secret "$FICUS_BENCH_WHSEC" \
      -dsn "$FICUS_BENCH_DSN" -c "$c" -d "$DURATION")
    DLV[$op]=$dlv DLVALL[$op]=$dlvall DRAIN[$op]=$drain
    echo "$op delivery: $dlv/s while ingesting, $dlvall/s over ingest and drain, drained ${drain}s after" >&2
  elif [ "$op" = pg_insert_hook ] || [ "$op" = pg_insert_hook64 ]; then
    c=$CONNS; [ "$op" = pg_insert_hook64 ] && c=64
    read -r _ rate p50 p99 errs < <("$work/idpload" -op pg_insert_hook -dsn "$FICUS_BENCH_DSN" -pool "$CONNS" -c "$c" -d "$DURATION")
  else
    read -r _ rate p50 p99 errs < <(load $op)
  fi
  R[$op]=$rate P50[$op]=$p50 P99[$op]=$p99 ERRS[$op]=$errs
  echo "$op: $rate/s p50 ${p50}ms p99 ${p99}ms errors $errs" >&2
done
# OPS may pick a few: the others are empty in the tables ("–", or blank).
for op in $ALL_OPS; do
  R[$op]=${R[$op]:-} P50[$op]=${P50[$op]:-} P99[$op]=${P99[$op]:-} ERRS[$op]=${ERRS[$op]:-0}
  DLV[$op]=${DLV[$op]:-} DLVALL[$op]=${DLVALL[$op]:-} DRAIN[$op]=${DRAIN[$op]:-}
done
# ratio A B: A/B to two places, "–" when either was not measured.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "" || b == 0) print "–"; else printf "%.2f", a/b}'; }
# x VALUE: VALUE×, or "–" when it was not measured.
x() { if [ -z "$1" ] || [ "$1" = – ]; then echo "–"; else echo "$1×"; fi; }
# verdict OP GOAL FICUS NGINX NULL [COMMIT]: met when ficus's value meets
# the goal (OP >= or <); "out of reach here" when even nginx doing nothing
# does not; missed otherwise. Without nginx, a no-op Go server that misses
# the goal too is said so (nginx may still reach it). A miss that the no-op
# server committing each write misses too says so, and whether ficus is
# above or below that floor.
verdict() {
  awk -v op="$1" -v g="$2" -v f="$3" -v n="$4" -v z="$5" -v c="${6:-}" 'function ok(v) {return (op == ">=" && v+0 >= g+0) || (op == "<" && v+0 < g+0)}
    function none(v) {return v == "" || v == "–"}
    BEGIN {
      if (none(f)) print "–"
      else if (ok(f)) print "met"
      else if (!none(n) && !ok(n)) print "out of reach here"
      else if (none(n) && !none(z) && !ok(z)) print "missed (so does the no-op Go server; nginx not measured)"
      else if (!none(c) && !ok(c)) print "missed; so does a no-op endpoint committing each write (ficus " (((op == ">=" && f+0 >= c+0) || (op == "<" && f+0 <= c+0)) ? "above" : "below") " it)"
      else print "missed"
    }'
}
# Stop the server before the Go benchmarks share the database.
kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; pid=""
mint=$(go test -run '^$' -bench 'BenchmarkMintJWT' -benchmem -benchtime 1s ./idp 2>&1 | grep -E '^Benchmark')
drain=$(go test -run '^$' -bench 'BenchmarkDelivery' -benchtime 3000x ./adapters 2>&1 | grep -E '^Benchmark')

# One row per issue-15 goal: ficus's value, what the floors reach against
# the same baseline, the goal, the verdict.
# A goal whose ficus op or baseline had errors gets no verdict.
goal_row() { # label OP GOAL-number GOAL-text ficus nginx null commit ops...
  local v; v=$(verdict "$2" "$3" "$5" "$6" "$7" "$8")
  for o in "${@:9}"; do [ "${ERRS[$o]:-0}" = 0 ] || v="not counted: $o had errors"; done
  echo "| $1 | $5 | $7 | $6 | $8 | $4 | $v |"
}
gcc=$(ratio "${R[client_credentials]:-}" "${R[pg_insert]:-}") ncc=$(ratio "${R[null_cc]:-}" "${R[pg_insert]:-}") xcc=$(ratio "${R[nginx_cc]:-}" "${R[pg_insert]:-}")
gin=$(ratio "${R[introspect]:-}" "${R[pg_select]:-}") nin=$(ratio "${R[null_introspect]:-}" "${R[pg_select]:-}") xin=$(ratio "${R[nginx_introspect]:-}" "${R[pg_select]:-}")
grf=$(ratio "${R[refresh]:-}" "${R[pg_insert]:-}")
gwh=$(ratio "${R[webhook64]:-}" "${R[pg_insert_hook64]:-}") nwh=$(ratio "${R[null_webhook64]:-}" "${R[pg_insert_hook64]:-}") xwh=$(ratio "${R[nginx_webhook64]:-}" "${R[pg_insert_hook64]:-}")
ccc=$(ratio "${R[commit_cc]:-}" "${R[pg_insert]:-}") cwh=$(ratio "${R[commit_webhook64]:-}" "${R[pg_insert_hook64]:-}")
ms() { [ -n "$1" ] && echo "$1 ms" || echo "–"; }
ps() { [ -n "$1" ] && echo "$1/s" || echo "–"; }
goals=$(
  echo "| issue 15 goal | ficus | no-op Go server | nginx doing nothing | no-op Go server committing each write | goal | |"
  echo "|---|---:|---:|---:|---:|---:|---|"
  goal_row "client credentials vs the INSERT baseline" ">=" 1 "≥ 1.00×" "$(x "$gcc")" "$(x "$xcc")" "$(x "$ncc")" "$(x "$ccc")" client_credentials pg_insert
  goal_row "introspection vs the SELECT baseline" ">=" 1 "≥ 1.00×" "$(x "$gin")" "$(x "$xin")" "$(x "$nin")" "–" introspect pg_select
  goal_row "refresh rotation vs the INSERT baseline (floors: the client-credentials request)" ">=" 0.5 "≥ 0.50×" "$(x "$grf")" "$(x "$xcc")" "$(x "$ncc")" "$(x "$ccc")" refresh pg_insert
  goal_row "web-hook ingest, 1 KiB signed events, 64 senders, vs the same INSERT from 64 workers" ">=" 1.2 "≥ 1.20×" "$(x "$gwh")" "$(x "$xwh")" "$(x "$nwh")" "$(x "$cwh")" webhook64 pg_insert_hook64
  goal_row "web-hook ingest p99 at 64 senders" "<" 50 "< 50 ms" "$(ms "${P99[webhook64]:-}")" "$(ms "${P99[nginx_webhook64]:-}")" "$(ms "${P99[null_webhook64]:-}")" "$(ms "${P99[commit_webhook64]:-}")" webhook64
  goal_row "cache-miss exchange, distinct tokens/s (floors: one introspection-shaped hop, no gateway)" ">=" 5000 "≥ 5,000/s" "$(ps "${R[exchange]:-}")" "$(ps "${R[nginx_introspect]:-}")" "$(ps "${R[null_introspect]:-}")" "–" exchange
)
# Failed operations make a row (and every ratio over it) unreliable: the
# block says which (a shared PostgreSQL may refuse connections, for one).
failed=""
for op in "${!ERRS[@]}"; do [ "${ERRS[$op]:-0}" = 0 ] || failed+="${failed:+, }$op: ${ERRS[$op]} errors"; done
[ -z "$failed" ] || failed="**Operations with errors in this run** (their rows, and the ratios over them, do not count): $failed."
# What share of the INSERT baseline is waiting for the commit's WAL flush.
flush=$(awk -v s="${R[pg_insert]:-}" -v a="${R[pg_insert_async]:-}" 'BEGIN {if (s == "" || a == "" || a+0 <= s+0) print "none measurable"; else printf "%.0f%%", 100*(1-s/a)}')
nginx_note="nginx: not measured (no nginx answering here; \`strangler/bench/load.sh\` installs nginx-light)"
[ -z "$ngx" ] || nginx_note="nginx $("$NGINX" -v 2>&1 | sed 's#.*/##') with one worker and access_log off answering \`return 200\` with the same body"
# Floor rows of the operations table: after the ficus op they bound.
floor_rows() { # null-op nginx-op baseline-op baseline-name ficus-op [commit-op]
  echo "| floor: no-op Go server (\`idpload -op null\`), the same requests | ${R[$1]:-–} | ${P50[$1]:-–} | ${P99[$1]:-–} | $(x "$(ratio "${R[$1]:-}" "${R[$3]:-}")") $4; ficus $(x "$(ratio "${R[$5]:-}" "${R[$1]:-}")") this |"
  echo "| floor: nginx \`return 200\`, the same requests | ${R[$2]:-–} | ${P50[$2]:-–} | ${P99[$2]:-–} | $(x "$(ratio "${R[$2]:-}" "${R[$3]:-}")") $4; ficus $(x "$(ratio "${R[$5]:-}" "${R[$2]:-}")") this |"
  [ -z "${6:-}" ] ||
    echo "| floor: the no-op Go server committing one INSERT per request (\`idpload -op null -dsn\`), the same requests | ${R[$6]:-–} | ${P50[$6]:-–} | ${P99[$6]:-–} | $(x "$(ratio "${R[$6]:-}" "${R[$3]:-}")") $4; ficus $(x "$(ratio "${R[$5]:-}" "${R[$6]:-}")") this |"
}

block=$(cat <<MD
<!-- idp:begin -->
Produced by \`make bench\` (\`idp/bench/load.sh\`: \`ficus serve\` on PostgreSQL $(psql "$ADMIN" -Atc 'show server_version' 2>/dev/null),
$CONNS concurrent HTTP clients, $DURATION per measurement) on $(date -u +%Y-%m-%d), $(nproc) cores shared by the load generator,
ficus and PostgreSQL. Baselines are raw pgx statements from the same number of workers in the same run. Floors, each measured
right after the ficus operation it bounds, with the same generator and workers: a no-op Go net/http endpoint (\`idpload -op null\`:
parses the form, discards the body, answers a fixed JSON body), $nginx_note, and the no-op endpoint committing one
INSERT per request before it answers (\`-dsn\`: the token row, or the 1 KiB event row; a connection each up to $CONNS) — the floor of an
endpoint that commits every write on its own, which only sharing commits can pass.

$goals
${failed:+
$failed
}
An INSERT that does not wait for its WAL flush (\`synchronous_commit=off\`): ${R[pg_insert_async]:-–}/s,
$(x "$(ratio "${R[pg_insert_async]:-}" "${R[pg_insert]:-}")") the INSERT baseline: the commit's flush is $flush of a baseline INSERT's time.

| operation | per second | p50 ms | p99 ms | vs baseline |
|---|---:|---:|---:|---|
| baseline: INSERT one token row | ${R[pg_insert]} | ${P50[pg_insert]} | ${P99[pg_insert]} | 1.00× |
| baseline: INSERT one token row, \`synchronous_commit=off\` | ${R[pg_insert_async]:-–} | ${P50[pg_insert_async]:-–} | ${P99[pg_insert_async]:-–} | $(x "$(ratio "${R[pg_insert_async]:-}" "${R[pg_insert]:-}")") the INSERT baseline |
| client_credentials token (HTTP, client auth, insert, audit) | ${R[client_credentials]} | ${P50[client_credentials]} | ${P99[client_credentials]} | $(ratio "${R[client_credentials]}" "${R[pg_insert]}")× the INSERT baseline |
$(floor_rows null_cc nginx_cc pg_insert "the INSERT baseline" client_credentials commit_cc)
| baseline: SELECT one row by key | ${R[pg_select]} | ${P50[pg_select]} | ${P99[pg_select]} | 1.00× |
| introspection (RFC 7662, HTTP, client auth) | ${R[introspect]} | ${P50[introspect]} | ${P99[introspect]} | $(ratio "${R[introspect]}" "${R[pg_select]}")× the SELECT baseline |
$(floor_rows null_introspect nginx_introspect pg_select "the SELECT baseline" introspect)
| gateway pass-through: GET through a route without auth to a local upstream | ${R[passthrough]} | ${P50[passthrough]} | ${P99[passthrough]} | $(ratio "${R[passthrough]}" "${R[pg_select]}")× the SELECT baseline |
| gateway exchange, cached: GET through an oauth2 route, each client one token again and again | ${R[exchange_hit]} | ${P50[exchange_hit]} | ${P99[exchange_hit]} | $(ratio "${R[exchange_hit]}" "${R[passthrough]}")× the pass-through |
| gateway cache-miss exchange: GET through an oauth2 route, each with a token never seen (look-up + JWT mint), distinct tokens/s | ${R[exchange]} | ${P50[exchange]} | ${P99[exchange]} | $(ratio "${R[exchange]}" "${R[passthrough]}")× the pass-through, $(ratio "${R[exchange]}" "${R[pg_select]}")× the SELECT baseline |
| refresh_token rotation (batched read, then one compare-and-set UPDATE + INSERT per batch) | ${R[refresh]} | ${P50[refresh]} | ${P99[refresh]} | $(ratio "${R[refresh]}" "${R[pg_insert]}")× the INSERT baseline |
| baseline: INSERT one 1 KiB event row (inbox shape, ON CONFLICT DO NOTHING RETURNING) | ${R[pg_insert_hook]} | ${P50[pg_insert_hook]} | ${P99[pg_insert_hook]} | 1.00× |
| web-hook ingest: 1 KiB Stripe-signed event, verified and committed before 200 | ${R[webhook]} | ${P50[webhook]} | ${P99[webhook]} | $(ratio "${R[webhook]}" "${R[pg_insert_hook]}")× the event INSERT baseline |
| baseline: INSERT one 1 KiB event row, 64 workers | ${R[pg_insert_hook64]} | ${P50[pg_insert_hook64]} | ${P99[pg_insert_hook64]} | 1.00× |
| web-hook ingest as above, 64 concurrent senders | ${R[webhook64]} | ${P50[webhook64]} | ${P99[webhook64]} | $(ratio "${R[webhook64]}" "${R[pg_insert_hook64]}")× the event INSERT baseline (64 workers) |
$(floor_rows null_webhook64 nginx_webhook64 pg_insert_hook64 "the event INSERT baseline (64 workers)" webhook64 commit_webhook64)

Delivery during those ingest runs (ficus's default of 16 workers, to a local target answering 200 through the gateway):

| ingest run | delivered/s while ingesting | vs the ingest rate | delivered/s over ingest and drain | inbox empty after the senders stop (s) |
|---|---:|---|---:|---:|
| 32 senders | ${DLV[webhook]} | $(ratio "${DLV[webhook]}" "${R[webhook]}")× | ${DLVALL[webhook]} | ${DRAIN[webhook]} |
| 64 senders | ${DLV[webhook64]} | $(ratio "${DLV[webhook64]}" "${R[webhook64]}")× | ${DLVALL[webhook64]} | ${DRAIN[webhook64]} |

Writes are group-committed (\`store.group_commit\`: max_batch $MAX_BATCH; while another batch
commits, a batch gathers until that commit ends, 1 ms at most; 2 flushers per kind).

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
