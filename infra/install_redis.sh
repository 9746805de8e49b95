#!/usr/bin/env bash
# Debian's redis-server for the Redis online store tests; nothing to do when it is on the PATH.
set -euo pipefail
command -v redis-server >/dev/null && exit 0
if ! command -v apt-get >/dev/null; then
    echo "redis-server not found and apt-get unavailable: install Redis 7 (redis-server) yourself" >&2
    exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null
command -v redis-server >/dev/null
