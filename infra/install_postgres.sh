#!/usr/bin/env bash
# Debian's PostgreSQL server binaries for the Dagster-on-PostgreSQL tests; nothing to do when initdb is found
# (on the PATH or under /usr/lib/postgresql/*/bin, where Debian puts it). No cluster is created here: the
# tests start their own server (infra/local_postgres.py).
set -euo pipefail
command -v initdb >/dev/null && exit 0
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && exit 0
if ! command -v apt-get >/dev/null; then
    echo "initdb not found and apt-get unavailable: install PostgreSQL 15+ (server binaries) yourself" >&2
    exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
