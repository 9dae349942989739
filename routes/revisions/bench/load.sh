#!/usr/bin/env bash
# Route revisions under load, on this machine: three `ficus serve` on one
# PostgreSQL route store (routes.source: postgres), driven by
# routes/revisions/bench/revload, which stores a 10,000-route revision
# several times while it sends traffic through all three. Reports failed
# requests, p99 during the swaps against p99 before them, and the time
# from the store's commit to each instance serving the revision (median,
# max). FICUS_GOGC sets GOGC for the three instances only. Bounded: two
# phases of DURATION (default 5s) on 127.0.0.1. Writes
# the route-revision section of docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/../../.."
DURATION=${DURATION:-5s}
CONNS=${CONNS:-32}
ROUTES=${ROUTES:-10000}
APPLIES=${APPLIES:-5}
OUT=${OUT:-docs/benchmarks.md}
ADMIN=${TEST_DATABASE_URL:-${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}}
db="ficus_revbench_$$"
work=$(mktemp -d /tmp/ficus-revbench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
psql "$ADMIN" -qc "CREATE DATABASE $db" >/dev/null
export FICUS_BENCH_DSN="${ADMIN%/*}/$db?sslmode=disable"
case "$ADMIN" in *\?*) FICUS_BENCH_DSN="$(echo "$ADMIN" | sed -E "s#/[^/?]*\?#/$db?#")";; esac

go build -o "$work/ficus" ./cmd/ficus
go build -o "$work/revload" ./routes/revisions/bench/revload
fronts=() opses=()
for i in 0 1 2; do
  cat > "$work/ficus$i.yaml" <<C
listen: {addr: "127.0.0.1:1828$i", ops_addr: "127.0.0.1:1838$i"}
store: {driver: postgres, dsn: env:FICUS_BENCH_DSN}
routes: {source: postgres}
idp: {enabled: false}
log: {level: warn, access_log: false}
C
  [ "$i" = 0 ] && "$work/ficus" migrate -c "$work/ficus0.yaml" >/dev/null
  GOGC="${FICUS_GOGC:-${GOGC:-100}}" "$work/ficus" serve -c "$work/ficus$i.yaml" > "$work/serve$i.log" 2>&1 &
  pids+=($!)
  fronts+=("http://127.0.0.1:1828$i") opses+=("http://127.0.0.1:1838$i")
done
for o in "${opses[@]}"; do
  for _ in $(seq 100); do curl -fsS -o /dev/null "$o/healthz" 2>/dev/null && break; sleep 0.1; done
done
line=$("$work/revload" -dsn "$FICUS_BENCH_DSN" -fronts "$(IFS=,; echo "${fronts[*]}")" -ops "$(IFS=,; echo "${opses[*]}")" \
  -routes "$ROUTES" -applies "$APPLIES" -c "$CONNS" -d "$DURATION")
echo "$line" >&2
declare -A R
for kv in $line; do R[${kv%%=*}]=${kv#*=}; done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }

block=$(cat <<MD
<!-- revisions:begin -->
Produced by \`make bench\` (\`routes/revisions/bench/load.sh\`: three \`ficus serve\` on one PostgreSQL $(psql "$ADMIN" -Atc 'show server_version' 2>/dev/null | cut -d' ' -f1)
route store, \`revload\` with $CONNS concurrent clients spread over the three, $DURATION per phase) on $(date -u +%Y-%m-%d), $(nproc) cores
shared by the load generator, the three instances and PostgreSQL. Each of the ${R[applies]} revisions changes the target of every one of
its ${R[routes]} routes; the next one is stored once all three instances serve the previous one.

| phase | requests/s | p50 ms | p99 ms | failed requests |
|---|---:|---:|---:|---:|
| before the swaps | ${R[before_rps]} | ${R[before_p50]} | ${R[before_p99]} | ${R[before_failed]} |
| during ${R[applies]} swaps of ${R[routes]} routes | ${R[during_rps]} | ${R[during_p50]} | ${R[during_p99]} | ${R[during_failed]} of ${R[during_requests]} |

p99 during the swaps: $(ratio "${R[during_p99]}" "${R[before_p99]}")× the p99 before them (target: ≤ 2×).
Propagation, from the commit of the revision to an instance's \`/readyz\` naming it (${R[prop_n]} measurements: ${R[applies]} revisions × ${R[instances]} instances;
it includes parsing, validating and compiling the ${R[routes]} routes): median ${R[prop_median]} ms, max ${R[prop_max]} ms.
<!-- revisions:end -->
MD
)
printf '%s\n' "$block" | strangler/bench/write-section.sh revisions "$OUT"
echo "$block"
