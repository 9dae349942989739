#!/usr/bin/env bash
# Runs a command with TEST_DATABASE_URL pointing at a PostgreSQL server that
# accepts connections, found in this order:
#   1. TEST_DATABASE_URL, then DATABASE_URL, if set;
#   2. the local default postgres://postgres@127.0.0.1:5432/postgres;
#   3. a throwaway cluster started with initdb/pg_ctl (if installed),
#      removed when the command ends.
# Fails with a clear message when none can be had: tests need a real
# PostgreSQL and never skip it.
set -euo pipefail

probe() { # url
  if command -v psql >/dev/null 2>&1; then
    psql "$1" -Atqc 'select 1' >/dev/null 2>&1
  else
    # Without psql, let the Go helper decide; assume reachable if the port answers.
    local hostport; hostport=$(echo "$1" | sed -E 's#^[a-z]+://([^@/]*@)?([^/?]*).*#\2#')
    (exec 3<>/dev/tcp/${hostport%:*}/${hostport##*:}) 2>/dev/null
  fi
}

url="${TEST_DATABASE_URL:-${DATABASE_URL:-}}"
if [ -n "$url" ]; then
  probe "$url" || { echo "with-postgres: cannot connect to ${url%%@*}@… (from TEST_DATABASE_URL/DATABASE_URL)" >&2; exit 1; }
else
  default="postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
  if probe "$default"; then
    url="$default"
  else
    initdb=$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | tail -1 || true)
    if [ -z "$initdb" ]; then
      echo "with-postgres: no PostgreSQL at 127.0.0.1:5432, TEST_DATABASE_URL/DATABASE_URL unset, and no initdb to start one." >&2
      echo "  Install PostgreSQL (apt-get install postgresql) or point TEST_DATABASE_URL at a server." >&2
      exit 1
    fi
    bindir=$(dirname "$initdb")
    dir=$(mktemp -d /tmp/ficus-pg.XXXXXX)
    port=$(( 20000 + RANDOM % 20000 ))
    runas=()
    if [ "$(id -u)" = 0 ]; then chown -R nobody "$dir" 2>/dev/null || true; runas=(runuser -u nobody --); fi
    echo "with-postgres: starting a throwaway cluster in $dir on port $port" >&2
    "${runas[@]}" "$bindir/initdb" -D "$dir/data" -U postgres -A trust >/dev/null
    "${runas[@]}" "$bindir/pg_ctl" -D "$dir/data" -o "-p $port -k $dir -c listen_addresses=127.0.0.1" -l "$dir/log" -w start >/dev/null
    trap '"${runas[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1; rm -rf "$dir"' EXIT
    url="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
  fi
fi
export TEST_DATABASE_URL="$url"
"$@"
