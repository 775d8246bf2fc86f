#!/usr/bin/env bash
# Run the whole test suite against real components: PostgreSQL, Debian's docker-registry, real Helm, a Kafka-
# protocol broker, Debian's Chromium. Installs what is missing (Debian packages as root, or with sudo; Python
# packages into .venv), and when no PostgreSQL answers on 127.0.0.1:5432 (or at OCICAT_TEST_POSTGRES) starts a
# throwaway one of its own for the run.
#
#   bash scripts/test.sh [pytest arguments]        e.g. tests/unit for the fast half alone
set -euo pipefail
cd "$(dirname "$0")/.."

# 1. Debian packages the tests drive: the CNCF registry, Chromium for the web UI's browser tests (Playwright drives
#    /usr/bin/chromium and downloads no browser), PostgreSQL's server binaries (the fault test and a throwaway
#    cluster run servers of their own), curl (the quickstart), docker-compose (checks docker-compose.yml) and Node.js
#    (the OpenID Connect provider of the sign-in tests).
missing=()
command -v docker-registry >/dev/null || missing+=(docker-registry)
[ -x /usr/bin/chromium ] || missing+=(chromium)
compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || missing+=(postgresql)
command -v curl >/dev/null || missing+=(curl)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    echo "missing Debian packages: ${missing[*]}; run this as root (or with passwordless sudo) to install them" >&2
    exit 1
  fi
  echo "==> installing ${missing[*]} (Debian packages)"
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. ocicat and its test dependencies in .venv.
[ -x .venv/bin/python ] || python3 -m venv .venv
pip_log="$(mktemp)"
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]' >"$pip_log" 2>&1 || { cat "$pip_log" >&2; exit 1; }
rm -f "$pip_log"

# 2b. The OpenID Connect provider the sign-in tests sign in with (harness/oidc): panva's oidc-provider from the npm
#     registry, at the version package-lock.json pins.
[ -d harness/oidc/node_modules/oidc-provider ] || npm ci --prefix harness/oidc --no-audit --no-fund --loglevel=error

# 3. A PostgreSQL server: the one at OCICAT_TEST_POSTGRES (default: the machine's, trust auth on 127.0.0.1:5432),
#    else a throwaway cluster on a free loopback port, removed when the run ends.
export OCICAT_TEST_POSTGRES="${OCICAT_TEST_POSTGRES:-postgresql://postgres@127.0.0.1:5432/test}"
answers() { .venv/bin/python -c 'import sys, psycopg2; psycopg2.connect(sys.argv[1], connect_timeout=3).close()' "$1" 2>/dev/null; }
if ! answers "$OCICAT_TEST_POSTGRES"; then
  bin="$(dirname "$(ls -d /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -n 1)")"
  cluster="$(mktemp -d /tmp/ocicat-test-postgres-XXXXXX)"
  port="$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  as_postgres=()
  if [ "$(id -u)" -eq 0 ]; then  # initdb refuses to run as root: the cluster belongs to the postgres user
    chown postgres:postgres "$cluster"
    as_postgres=(runuser -u postgres --)
  fi
  echo "==> no PostgreSQL at $OCICAT_TEST_POSTGRES: starting a throwaway cluster on 127.0.0.1:$port"
  "${as_postgres[@]}" "$bin/initdb" -D "$cluster/data" -U postgres --auth=trust -E UTF8 >"$cluster/initdb.log"
  stop_cluster() { "${as_postgres[@]}" "$bin/pg_ctl" -D "$cluster/data" -m fast -w stop >/dev/null 2>&1 || true; rm -rf "$cluster"; }
  trap stop_cluster EXIT
  "${as_postgres[@]}" "$bin/pg_ctl" -D "$cluster/data" -l "$cluster/server.log" -w -t 60 \
    -o "-p $port -c listen_addresses=127.0.0.1 -k $cluster -c max_connections=300" start >/dev/null
  export OCICAT_TEST_POSTGRES="postgresql://postgres@127.0.0.1:$port/postgres"
fi

# 4. The suite. pytest exits 5 when it collected nothing: that is a failure here too.
.venv/bin/python -m pytest -q "$@"
