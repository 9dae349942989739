#!/usr/bin/env bash
# A large rule set under load (issue 16), on this machine: `ficus serve` on a
# file of ROUTES routes of which HOT see traffic, driven by
# strangler/bench/scaleload for one phase without reloads and one while the
# file is rewritten every EVERY (every rewrite changes every route's target).
# Prints one line per binary: p50/p99 of both phases, /metrics size, the
# last build's time and bytes, peak RSS. With BASE=<commit>, the same run is
# made first against a ficus built from that commit, for same-run ratios.
# ROUNDS=N alternates the two phases N times in each run and pools each
# kind (p99_ratio: pooled p99 with reloads over without; round_p99_ratios:
# each pair's), so that load from elsewhere falls on both alike; RUNS=N
# repeats the whole (base, this) sequence N times, alternating binaries.
# The defaults (ROUNDS=1, RUNS=1) are the original single pair of phases.
# Bounded: 2 x ROUNDS phases of DURATION per binary and run, 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-5s}
CONNS=${CONNS:-32}
ROUTES=${ROUTES:-10000}
HOT=${HOT:-100}
EVERY=${EVERY:-1s}
ROUNDS=${ROUNDS:-1}
RUNS=${RUNS:-1}
work=$(mktemp -d /tmp/ficus-scale.XXXXXX)
trap 'rm -rf "$work"' EXIT
go build -o "$work/scaleload" ./strangler/bench/scaleload
run() { # name binary
  mkdir -p "$work/$1"
  echo "$1 $("$work/scaleload" -ficus "$2" -dir "$work/$1" -routes "$ROUTES" -hot "$HOT" -c "$CONNS" -d "$DURATION" -every "$EVERY" -rounds "$ROUNDS")"
  rm -rf "${work:?}/$1"
}
if [ -n "${BASE:-}" ]; then
  mkdir -p "$work/base-src"
  git archive "$BASE" | tar -x -C "$work/base-src"
  (cd "$work/base-src" && go build -o "$work/ficus-base" ./cmd/ficus)
fi
go build -o "$work/ficus" ./cmd/ficus
for i in $(seq "$RUNS"); do
  if [ -n "${BASE:-}" ]; then
    run "base($BASE)" "$work/ficus-base"
  fi
  run "this" "$work/ficus"
  echo "load: $(uptime)"
done
