#!/usr/bin/env bash
# Set up and run ocicat on its embedded defaults next to a real local registry,
# push sample Helm charts with real Helm, and print the URLs. Ctrl-C stops all.
#
#   bash scripts/quickstart.sh
#
# Settings (environment): OCICAT_LISTEN (default 127.0.0.1:8080),
# QUICKSTART_REGISTRY_PORT (default 5000), OCICAT_DATA_DIR (default ./.ocicat).
set -euo pipefail
cd "$(dirname "$0")/.."

export OCICAT_LISTEN="${OCICAT_LISTEN:-127.0.0.1:8080}"
export OCICAT_DATA_DIR="${OCICAT_DATA_DIR:-$PWD/.ocicat}"
registry_port="${QUICKSTART_REGISTRY_PORT:-5000}"
registry_dir="$OCICAT_DATA_DIR/registry"

# 1. Install: Debian's CNCF registry, and ocicat with the Helm SDK in a venv.
if ! command -v docker-registry >/dev/null; then
  echo "==> installing docker-registry (Debian package)"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq docker-registry >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  python3 -m venv .venv
fi
echo "==> installing ocicat into .venv"
pip_log="$(mktemp)"
.venv/bin/pip install -q --disable-pip-version-check -e '.[demo]' >"$pip_log" 2>&1 || { cat "$pip_log" >&2; exit 1; }
rm -f "$pip_log"

# 2. Configure: a webhook secret kept across runs, a registry that notifies ocicat.
umask 077  # the secret, and the registry config that carries it, are for this user only
mkdir -p "$registry_dir"
[ -s "$OCICAT_DATA_DIR/webhook-secret" ] || .venv/bin/python -c 'import secrets; print(secrets.token_hex(24))' > "$OCICAT_DATA_DIR/webhook-secret"
export OCICAT_WEBHOOK_SECRETS="$(cat "$OCICAT_DATA_DIR/webhook-secret")"
export OCICAT_REGISTRY_URL="http://127.0.0.1:$registry_port"
export OCICAT_DEFAULT_VISIBILITY=public
unset OCICAT_DATABASE_URL  # the embedded PostgreSQL under $OCICAT_DATA_DIR
cat > "$registry_dir/config.yml" <<YAML
version: 0.1
log: {level: warn}
storage:
  cache: {blobdescriptor: inmemory}
  filesystem: {rootdirectory: $registry_dir/data}
  delete: {enabled: true}
http: {addr: "127.0.0.1:$registry_port", secret: quickstart}
notifications:
  endpoints:
    - name: ocicat
      url: http://$OCICAT_LISTEN/api/v1/events
      headers: {Authorization: ["Bearer $OCICAT_WEBHOOK_SECRETS"]}
      timeout: 2s
      threshold: 5
      backoff: 1s
      ignore: {mediatypes: [application/octet-stream], actions: [pull, mount]}
YAML

# 3. Run both, stop both on exit.
pids=()
cleanup() { trap - EXIT INT TERM; kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
docker-registry serve "$registry_dir/config.yml" >>"$registry_dir/registry.log" 2>&1 &
pids+=($!)
.venv/bin/ocicat serve &
pids+=($!)

wait_for() {
  for _ in $(seq 1 300); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "error: $1 did not come up" >&2; exit 1
}
wait_for "http://127.0.0.1:$registry_port/v2/"
wait_for "http://$OCICAT_LISTEN/readyz"

# 4. Push sample charts with real Helm (helm-python-sdk: Helm 4's Go SDK).
.venv/bin/python scripts/push_samples.py "127.0.0.1:$registry_port"

cat <<EOF2

ocicat is running on its embedded defaults (data in $OCICAT_DATA_DIR).
  Web UI:       http://$OCICAT_LISTEN/ui/
  ocicat chart: http://$OCICAT_LISTEN/ui/charts/ocicat/charts/ocicat/$(sed -n 's/^version: //p' deploy/helm/ocicat/Chart.yaml)
  Sample chart: http://$OCICAT_LISTEN/ui/charts/samples/charts/webapp/1.2.3+build.4
  API:          http://$OCICAT_LISTEN/api/v1/repositories
  Chart (JSON): http://$OCICAT_LISTEN/api/v1/charts/samples/charts/webapp/-/versions/1.2.3+build.4
  Helm repo:    http://$OCICAT_LISTEN/helm/samples  (helm repo add samples http://$OCICAT_LISTEN/helm/samples)
  Registry:     http://127.0.0.1:$registry_port  (helm push <chart>.tgz oci://127.0.0.1:$registry_port/<namespace> --plain-http)
Press Ctrl-C to stop.
EOF2
wait -n "${pids[@]}"
