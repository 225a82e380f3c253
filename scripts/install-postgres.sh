#!/usr/bin/env bash
# The PostgreSQL of the production-instance tests and benchmark (lakehouse_assets_tests/
# postgres_server.py starts throwaway clusters of it on loopback): Debian's postgresql, whose
# package also creates the non-root `postgres` OS user a server must run as, and openssl for
# the test server's self-signed TLS certificate. Installs them when missing; needs root (as in CI).
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && command -v openssl >/dev/null \
    && { [ "$(id -u)" != 0 ] || id postgres >/dev/null 2>&1; }; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-postgres: PostgreSQL is missing; run as root or: sudo apt-get install postgresql openssl" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq postgresql openssl >/dev/null
ls /usr/lib/postgresql/*/bin/initdb
