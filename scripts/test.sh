#!/usr/bin/env bash
# Run the whole test suite against real components: PostgreSQL on 127.0.0.1:5432
# (override with OCICAT_TEST_POSTGRES), Debian's docker-registry, real Helm.
#
#   bash scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v docker-registry >/dev/null; then
  echo "docker-registry is missing: apt-get install docker-registry (or run .ci/run as root)" >&2
  exit 1
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
# pytest exits 5 when it collected nothing: that is a failure here too.
exec .venv/bin/python -m pytest -q "$@"
