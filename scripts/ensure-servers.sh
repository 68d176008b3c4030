#!/usr/bin/env bash
# Installs the native servers the test harness starts (memcached, redis-server + redis-cli,
# PostgreSQL) with apt-get when they are absent. Idempotent: does nothing when all are present.
# Without root it prints the exact command to run and exits 1.
set -euo pipefail

missing=()
command -v memcached >/dev/null 2>&1 || missing+=(memcached)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && ! command -v postgres >/dev/null 2>&1; then
  missing+=(postgresql)
fi

if ((${#missing[@]} > 0)); then
  cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "ensure-servers: missing ${missing[*]}; run as root: $cmd" >&2
    exit 1
  fi
  echo "ensure-servers: installing ${missing[*]} with apt-get ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  # apt-get's log only when it fails
  log=$(mktemp)
  if ! { apt-get -q update && apt-get -q install -y --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "ensure-servers: apt-get failed; run as root: $cmd" >&2
    exit 1
  fi
  rm -f "$log"
fi

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
echo "memcached:    $(memcached -V)"
echo "redis-server: $(redis-server --version)"
echo "redis-cli:    $(redis-cli --version)"
echo "postgres:     $("${pg_bin:+$pg_bin/}postgres" --version)"
