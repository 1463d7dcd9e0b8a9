#!/usr/bin/env bash
# tests/pg.sh start|stop|url DIR | createdb DIR NAME: the private PostgreSQL cluster every
# server-starting test shares (a ctest fixture starts it once per run and
# stops it at the end). Unix socket only, trust authentication for its one
# role `novacron`; as root the cluster runs as the `postgres` system user
# (initdb refuses root). Each test server uses the database `novacron`
# unless a test makes its own with `createdb` (see harness.py).
set -euo pipefail
cmd=${1:?start|stop|url}
dir=${2:?directory}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[[ -n $bin ]] || { echo "pg.sh: no /usr/lib/postgresql/*/bin (install postgresql)" >&2; exit 1; }
as_pg() {
  for v in $(compgen -e PG); do unset "$v"; done
  if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
url() { printf 'postgresql:///novacron?host=%s&port=5432&user=novacron\n' "$dir/sock"; }
case $cmd in
createdb) # a fresh, empty database NAME for a test that must not share `novacron`
  name=${3:?database name}
  as_pg "$bin/dropdb" --if-exists -h "$dir/sock" -p 5432 -U novacron "$name"
  as_pg "$bin/createdb" -h "$dir/sock" -p 5432 -U novacron "$name"
  ;;
start)
  "$0" stop "$dir" >/dev/null 2>&1 || true
  rm -rf "$dir"
  mkdir -p "$dir"
  [[ $(id -u) == 0 ]] && chown postgres: "$dir"
  as_pg mkdir -p "$dir/sock"
  as_pg "$bin/initdb" -D "$dir/data" -U novacron -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; exit 1; }
  printf "listen_addresses = ''\nunix_socket_directories = '%s'\nport = 5432\nfsync = off\nmax_connections = 300\nsynchronous_commit = off\nfull_page_writes = off\n" \
    "$dir/sock" | as_pg sh -c 'cat >>"$1"' sh "$dir/data/postgresql.conf"
  as_pg "$bin/pg_ctl" start -D "$dir/data" -l "$dir/postgres.log" -w -t 60 -s ||
    { tail -n 30 "$dir/postgres.log" >&2; exit 1; }
  as_pg "$bin/createdb" -h "$dir/sock" -p 5432 -U novacron novacron
  echo "pg.sh: PostgreSQL running for the tests: $(url)"
  ;;
stop)
  [[ -f $dir/data/PG_VERSION ]] || exit 0
  as_pg "$bin/pg_ctl" stop -D "$dir/data" -m fast -w -s || true
  rm -rf "$dir"
  ;;
url) url ;;
*) echo "usage: $0 start|stop|url DIR" >&2; exit 2 ;;
esac
