#!/usr/bin/env bash
# Run the whole test suite against real components: PostgreSQL on 127.0.0.1:5432
# (override with OCICAT_TEST_POSTGRES), Debian's docker-registry, real Helm, Debian's Chromium.
#
#   bash scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v docker-registry >/dev/null; then
  echo "docker-registry is missing: apt-get install docker-registry (or run .ci/run as root)" >&2
  exit 1
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "chromium is missing (the web UI's browser tests): apt-get install chromium (or run .ci/run as root)" >&2
  exit 1
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
pip_log="$(mktemp)"
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]' >"$pip_log" 2>&1 || { cat "$pip_log" >&2; exit 1; }
rm -f "$pip_log"
# pytest exits 5 when it collected nothing: that is a failure here too.
exec .venv/bin/python -m pytest -q "$@"
