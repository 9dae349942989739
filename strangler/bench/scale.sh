#!/usr/bin/env bash
# A large rule set under load (issue 16), on this machine: `ficus serve` on a
# file of ROUTES routes of which HOT see traffic, driven by
# strangler/bench/scaleload for one phase without reloads and one while the
# file is rewritten every EVERY (every rewrite changes every route's target).
# Prints one line per binary: p50/p99 of both phases, /metrics size, the
# last build's time and bytes, peak RSS. With BASE=<commit>, the same run is
# made first against a ficus built from that commit, for same-run ratios.
# Bounded: two phases of DURATION per binary, 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-5s}
CONNS=${CONNS:-32}
ROUTES=${ROUTES:-10000}
HOT=${HOT:-100}
EVERY=${EVERY:-1s}
work=$(mktemp -d /tmp/ficus-scale.XXXXXX)
trap 'rm -rf "$work"' EXIT
go build -o "$work/scaleload" ./strangler/bench/scaleload
run() { # name binary
  mkdir -p "$work/$1"
  echo "$1 $("$work/scaleload" -ficus "$2" -dir "$work/$1" -routes "$ROUTES" -hot "$HOT" -c "$CONNS" -d "$DURATION" -every "$EVERY")"
}
if [ -n "${BASE:-}" ]; then
  mkdir -p "$work/base-src"
  git archive "$BASE" | tar -x -C "$work/base-src"
  (cd "$work/base-src" && go build -o "$work/ficus-base" ./cmd/ficus)
  run "base($BASE)" "$work/ficus-base"
fi
go build -o "$work/ficus" ./cmd/ficus
run "this" "$work/ficus"
echo "load: $(uptime)"
