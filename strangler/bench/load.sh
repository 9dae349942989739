#!/usr/bin/env bash
# Load comparison on loopback, all in one run against the same upstream:
#   direct upstream | nginx proxy_pass (keep-alive) | the floor of a net/http
#   proxy (floorproxy) | minimal Go ReverseProxy | ficus on a monolith route
#   | ficus on a split route | ..., and nginx and ficus both writing an
#   access log line per request (nginx-log, ficus-log). Every other target
#   logs nothing, as nginx's access_log off.
# Rounds are interleaved so that a noisy neighbour hurts every target alike;
# each target's result is its median over the rounds. Results are written
# to docs/benchmarks.md (between markers) as ratios, with the raw numbers.
#
# The goals of issue 15 get a table of their own, met or missed:
# pass-through (ficus-monolith) throughput >= 0.6x nginx's and p99 <= 2x
# nginx's; the oauth2 route with a cached token >= 0.95x its instance's
# own pass-through (ficus-idp-monolith); ficus's peak RSS < 64 MiB.
#
# Bounded: ROUNDS x targets x DURATION of load (default 3 x 8 x 5s), on
# 127.0.0.1 only. Needs wrk and nginx (apt-get install wrk nginx-light).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
# Issue 15's load: wrk -t2 -c64.
CONNS=${CONNS:-64}
WRK_THREADS=${WRK_THREADS:-2}
OUT=${OUT:-docs/benchmarks.md}
work=$(mktemp -d /tmp/ficus-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

for tool in wrk nginx; do
  command -v $tool >/dev/null || [ -x /usr/sbin/$tool ] || {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "installing wrk and nginx-light (Debian packages)" >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light >/dev/null
    else
      echo "load.sh needs wrk and nginx: apt-get install wrk nginx-light" >&2; exit 1
    fi
  }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# PORT_BASE moves every port (two runs on one machine must not share them).
B=${PORT_BASE:-18080}
UP=$((B+10)) NGX=$((B+11)) MIN=$((B+2)) FICUS=$B OPS=$((B+1)) SIDECAR=$((B+3)) FICUS2=$((B+4)) OPS2=$((B+5))
FLOOR=$((B+6)) FICUSLOG=$((B+7)) OPSLOG=$((B+8)) NGXLOG=$((B+12))
mkdir -p "$work/logs"
# The proxying both nginx targets do (nginx-log adds its access log).
cat > "$work/proxy.conf" <<'NGX'
location / {
  proxy_pass http://backend;
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header Host $host;
  proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
}
NGX
cat > "$work/nginx.conf" <<NGX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream backend { server 127.0.0.1:$UP; keepalive 256; }
  server { listen 127.0.0.1:$UP; location / { return 200 "hello from upstream\n"; } }
  server { listen 127.0.0.1:$NGX; include $work/proxy.conf; }
  server { listen 127.0.0.1:$NGXLOG; access_log $work/logs/nginx-access.log combined; include $work/proxy.conf; }
}
NGX
"$NGINX" -c "$work/nginx.conf" -p "$work" -g 'daemon off;' &
pids+=($!)

go build -o "$work/minproxy" ./strangler/bench/minproxy
go build -o "$work/floorproxy" ./strangler/bench/floorproxy
go build -o "$work/ficus" ./cmd/ficus
"$work/minproxy" -listen 127.0.0.1:$MIN -upstream http://127.0.0.1:$UP &
pids+=($!)
declare -A PID
PID[minimal]=$!
"$work/floorproxy" -listen 127.0.0.1:$FLOOR -upstream 127.0.0.1:$UP &
pids+=($!)
PID[floor]=$!

cat > "$work/routes.yaml" <<R
version: 1
monolith: legacy
upstreams:
  legacy: {url: "http://127.0.0.1:$UP", max_idle_conns: 1024}
  svc: {url: "http://127.0.0.1:$UP", max_idle_conns: 1024, audience: bench-svc}
routes:
  - name: split
    match: {prefix: /split}
    split: [{to: svc, weight: 50}, {to: legacy, weight: 50}]
    sticky: {cookie: ficus_cohort}
  - name: oauth2
    match: {prefix: /oauth2-route}
    to: svc
    auth: {policy: oauth2, scopes_all: [bench]}
R
# The IDP needs a persistent store for the CLI to create the bench clients.
ADMIN=${TEST_DATABASE_URL:-${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}}
db="ficus_loadbench_$$"
psql "$ADMIN" -qc "CREATE DATABASE $db" >/dev/null
export FICUS_LOADBENCH_DSN="$(echo "$ADMIN" | sed -E "s#/[^/?]*(\?|$)#/$db\1#")"
trap 'cleanup; psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
# ficus as a pure gateway (pass-through targets and memory), the same with
# its access log on (beside nginx-log), and ficus with its IDP on PostgreSQL
# (the oauth2 route, compared with its own monolith route).
cat > "$work/ficus.yaml" <<C
listen: {addr: "127.0.0.1:$FICUS", ops_addr: "127.0.0.1:$OPS"}
routes: {file: routes.yaml}
log: {level: warn, access_log: false}
idp: {enabled: false}
C
cat > "$work/ficus-log.yaml" <<C
listen: {addr: "127.0.0.1:$FICUSLOG", ops_addr: "127.0.0.1:$OPSLOG"}
routes: {file: routes.yaml}
log: {level: warn, access_log: true}
idp: {enabled: false}
C
cat > "$work/ficus-idp.yaml" <<C
listen: {addr: "127.0.0.1:$FICUS2", ops_addr: "127.0.0.1:$OPS2"}
store: {driver: postgres, dsn: env:FICUS_LOADBENCH_DSN}
routes: {file: routes.yaml}
log: {level: warn, access_log: false}
idp: {issuer: "http://127.0.0.1:$FICUS2", client_rate: 1000000}
C
app_secret=$("$work/ficus" idp client create bench-app --grant client_credentials --scope bench -c "$work/ficus-idp.yaml" | awk '/client_secret/ {print $2}')
xchg_secret=$("$work/ficus" idp client create bench-xchg --grant urn:ietf:params:oauth:grant-type:token-exchange --audience bench-svc -c "$work/ficus-idp.yaml" | awk '/client_secret/ {print $2}')
"$work/ficus" serve --config "$work/ficus.yaml" > "$work/access.log" 2> "$work/ficus.err" &
ficus_pid=$!
pids+=($ficus_pid)
PID[ficus-monolith]=$ficus_pid PID[ficus-split]=$ficus_pid
"$work/ficus" serve --config "$work/ficus-log.yaml" > "$work/access-log.log" 2> "$work/ficus-log.err" &
pids+=($!)
PID[ficus-log]=$!
"$work/ficus" serve --config "$work/ficus-idp.yaml" > "$work/access2.log" 2> "$work/ficus2.err" &
pids+=($!)
PID[ficus-idp-monolith]=$! PID[ficus-oauth2]=$!
for i in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$FICUS2/.well-known/jwks.json" 2>/dev/null && break; sleep 0.1; done
"$work/ficus" sidecar --listen 127.0.0.1:$SIDECAR --upstream http://127.0.0.1:$UP --jwks http://127.0.0.1:$FICUS2/.well-known/jwks.json \
  --issuer http://127.0.0.1:$FICUS2 --audience bench-svc > /dev/null 2>&1 &
pids+=($!)
PID[sidecar]=$!

for port in $UP $NGX $NGXLOG $MIN $FLOOR $FICUS $FICUSLOG; do
  for i in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break; sleep 0.1; done
done

token=$(curl -fsS -u bench-app:$app_secret -d grant_type=client_credentials http://127.0.0.1:$FICUS2/oauth2/token | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
jwt=$(curl -fsS -u bench-xchg:$xchg_secret -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange -d subject_token=$token \
  -d subject_token_type=urn:ietf:params:oauth:token-type:access_token -d audience=bench-svc http://127.0.0.1:$FICUS2/oauth2/token | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
for i in $(seq 50); do curl -fsS -o /dev/null -H "Authorization: Bearer $jwt" "http://127.0.0.1:$SIDECAR/x" 2>/dev/null && break; sleep 0.1; done
declare -A URLS=(
  [direct]="http://127.0.0.1:$UP/x"
  [nginx]="http://127.0.0.1:$NGX/x"
  [floor]="http://127.0.0.1:$FLOOR/x"
  [nginx-log]="http://127.0.0.1:$NGXLOG/x"
  [ficus-log]="http://127.0.0.1:$FICUSLOG/x"
  [minimal]="http://127.0.0.1:$MIN/x"
  [ficus-monolith]="http://127.0.0.1:$FICUS/x"
  [ficus-split]="http://127.0.0.1:$FICUS/split/x"
  [ficus-idp-monolith]="http://127.0.0.1:$FICUS2/x"
  [ficus-oauth2]="http://127.0.0.1:$FICUS2/oauth2-route/x"
  [sidecar]="http://127.0.0.1:$SIDECAR/x"
)
ORDER=(${TARGETS:-direct nginx floor minimal ficus-monolith ficus-split ficus-idp-monolith ficus-oauth2 sidecar nginx-log ficus-log})
declare -A RPS P99 CPU
# cpu PID: the process's CPU time (user + system) so far, in clock ticks.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
TICK=$(getconf CLK_TCK)
for r in $(seq "$ROUNDS"); do
  for name in "${ORDER[@]}"; do
    hdr=()
    [ "$name" = ficus-split ] && hdr=(-H "Cookie: ficus_cohort=bench-cohort-$r")
    # The same client request on both: only the route's policy differs.
    [ "$name" = ficus-oauth2 ] && hdr=(-H "Authorization: Bearer $token")
    [ "$name" = ficus-idp-monolith ] && hdr=(-H "Authorization: Bearer $token")
    [ "$name" = sidecar ] && hdr=(-H "Authorization: Bearer $jwt")
    p=${PID[$name]:-}
    c0=0; [ -z "$p" ] || c0=$(cpu "$p")
    out=$(wrk -t"$WRK_THREADS" -c"$CONNS" -d"$DURATION" --latency "${hdr[@]}" "${URLS[$name]}")
    rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
    # CPU per request of the proxy's own process (the Go targets): a
    # figure the machine's other load moves far less than req/s.
    if [ -n "$p" ]; then
      reqs=$(echo "$out" | awk '/requests in/ {print $1}')
      CPU[$name]+="$(awk -v d="$(( $(cpu "$p") - c0 ))" -v t="$TICK" -v n="$reqs" 'BEGIN {if (n > 0) printf "%.1f", d / t * 1e6 / n}') "
    fi
    p99=$(echo "$out" | awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}')
    errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}')
    [ -z "$errs" ] || echo "round $r $name: $errs" >&2
    RPS[$name]+="$rps "; P99[$name]+="$p99 "
    echo "round $r  $name  $rps req/s  p99 ${p99}ms" >&2
  done
done
rss_kb=$(awk '/VmHWM/ {print $2}' /proc/$ficus_pid/status)

median() { tr ' ' '\n' | { grep -v '^$' || true; } | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A MR MP MC
for name in "${ORDER[@]}"; do
  MR[$name]=$(echo "${RPS[$name]}" | median)
  MP[$name]=$(echo "${P99[$name]}" | median)
  MC[$name]=$(echo "${CPU[$name]:-}" | median)
done
# TARGETS may pick a few: the others are empty (shown as "-").
for name in "${!URLS[@]}"; do MR[$name]=${MR[$name]:-} MP[$name]=${MP[$name]:-} MC[$name]=${MC[$name]:-}; done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a/b}'; }
# verdict VALUE OP GOAL: met or missed (- when there is no value).
verdict() { awk -v v="$1" -v op="$2" -v g="$3" 'BEGIN {if (v == "" || v == "-") print "-"; else if ((op == ">=" && v+0 >= g+0) || (op == "<=" && v+0 <= g+0) || (op == "<" && v+0 < g+0)) print "met"; else print "missed"}'; }

table=$(
  echo "| target | req/s (median) | p99 ms (median) | throughput vs minimal Go proxy | p99 vs minimal | throughput vs nginx | CPU µs/request of the proxy process (median) |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for name in "${ORDER[@]}"; do
    echo "| $name | ${MR[$name]} | ${MP[$name]} | $(ratio "${MR[$name]}" "${MR[minimal]}")× | $(ratio "${MP[$name]}" "${MP[minimal]}")× | $(ratio "${MR[$name]}" "${MR[nginx]}")× | ${MC[$name]:--} |"
  done
)
rss_mib=$(awk -v k="$rss_kb" 'BEGIN {printf "%.1f", k/1024}')
thr=$(ratio "${MR[ficus-monolith]:-}" "${MR[nginx]:-}")
p99r=$(ratio "${MP[ficus-monolith]:-}" "${MP[nginx]:-}")
oau=$(ratio "${MR[ficus-oauth2]:-}" "${MR[ficus-idp-monolith]:-}")
goals=$(
  echo "| issue 15 goal | measured | goal | |"
  echo "|---|---:|---:|---|"
  echo "| pass-through throughput vs nginx (ficus-monolith / nginx req/s; neither logs) | ${thr}× | ≥ 0.60× | $(verdict "$thr" ">=" 0.6) |"
  echo "| pass-through p99 vs nginx's p99 (ficus-monolith / nginx) | ${p99r}× | ≤ 2.00× | $(verdict "$p99r" "<=" 2) |"
  echo "| oauth2 route, cached token, vs own pass-through (ficus-oauth2 / ficus-idp-monolith req/s) | ${oau}× | ≥ 0.95× | $(verdict "$oau" ">=" 0.95) |"
  echo "| ficus peak resident memory (VmHWM of the pass-through instance) | ${rss_mib} MiB | < 64 MiB | $(verdict "$rss_mib" "<" 64) |"
)
# What no proxy on Go's net/http server goes below (floorproxy), and the
# pair that both write an access log line per request.
floors=$(
  echo "| beside the goals | throughput | p99 |"
  echo "|---|---:|---:|"
  echo "| floor (floorproxy) vs nginx | $(ratio "${MR[floor]:-}" "${MR[nginx]:-}")× | $(ratio "${MP[floor]:-}" "${MP[nginx]:-}")× |"
  echo "| ficus-monolith vs the floor | $(ratio "${MR[ficus-monolith]:-}" "${MR[floor]:-}")× | $(ratio "${MP[ficus-monolith]:-}" "${MP[floor]:-}")× |"
  echo "| oauth2 route vs own pass-through, CPU per request (ficus-oauth2 / ficus-idp-monolith µs) | $(ratio "${MC[ficus-oauth2]:-}" "${MC[ficus-idp-monolith]:-}")× | |"
  echo "| both logging every request: ficus-log vs nginx-log | $(ratio "${MR[ficus-log]:-}" "${MR[nginx-log]:-}")× | $(ratio "${MP[ficus-log]:-}" "${MP[nginx-log]:-}")× |"
)
summary="ficus peak resident memory (VmHWM) during the run: $((rss_kb / 1024)) MiB.
ficus-oauth2 (opaque token swapped for a cached JWT, on the ficus instance with the IDP) runs at $(ratio "${MR[ficus-oauth2]}" "${MR[ficus-idp-monolith]}")× that instance's own pass-through throughput (ficus-idp-monolith).
The sidecar (verifying the JWT offline, then proxying) runs at $(ratio "${MR[sidecar]}" "${MR[direct]}")× a direct call and $(ratio "${MR[sidecar]}" "${MR[minimal]}")× the minimal Go proxy; its p99 is $(ratio "${MP[sidecar]}" "${MP[direct]}")× the direct p99."

gobench=$(go test -run '^$' -bench 'BenchmarkMatch|BenchmarkNormalizePath|BenchmarkRoundTrip|BenchmarkGatewayOverhead|BenchmarkCacheHitExchange' -benchmem -benchtime 1s ./routes ./strangler ./strangler/auth 2>&1 | grep -E '^(Benchmark|ok)')

block=$(cat <<MD
<!-- load:begin -->
Produced by \`make bench\` (\`strangler/bench/load.sh\`: $ROUNDS interleaved rounds, wrk -t$WRK_THREADS -c$CONNS -d$DURATION per target and round,
medians shown) on $(date -u +%Y-%m-%d), $(nproc) cores, wrk sharing the cores with the proxies and the nginx upstream (one nginx worker
serves both nginx targets and the upstream). No target writes an access log but nginx-log and ficus-log, which both write a line per
request to a file. Ratios are against targets measured in the same run; absolute numbers move with the machine's other load.

$goals

$floors

$table

$summary

Go benchmarks from the same run:

\`\`\`
$gobench
\`\`\`
<!-- load:end -->
MD
)
printf '%s\n' "$block" | strangler/bench/write-section.sh load "$OUT"
echo "$goals"
echo "$floors"
echo "$table"
echo "$summary"
