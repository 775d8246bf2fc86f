"""The README's first command, run as written: embedded PostgreSQL, a real registry, real Helm pushes."""

from __future__ import annotations

import os
import signal
import subprocess

import helm_python as helm
import psutil
import requests

from harness.processes import REPO_ROOT, free_port, python_env, wait_until


def test_quickstart_runs_on_embedded_defaults_and_stops_cleanly(tmp_path):
    listen = f"127.0.0.1:{free_port()}"
    env = python_env(OCICAT_LISTEN=listen, QUICKSTART_REGISTRY_PORT=free_port(), OCICAT_DATA_DIR=tmp_path / "data")
    log = open(tmp_path / "quickstart.log", "w+")
    script = subprocess.Popen(["bash", "scripts/quickstart.sh"], cwd=REPO_ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    children = []
    try:
        wait_until(lambda: "Press Ctrl-C" in (tmp_path / "quickstart.log").read_text() or script.poll() is not None,
                   timeout=240, interval=0.5, what="the quickstart to finish starting")
        output = (tmp_path / "quickstart.log").read_text()
        assert script.poll() is None, output
        assert f"http://{listen}/api/v1/repositories" in output
        assert f"Web UI:       http://{listen}/ui/" in output
        assert 'type="module"' in requests.get(f"http://{listen}/ui/charts/samples/charts/webapp/1.2.3+build.4", timeout=5).text

        names = {r["name"] for r in requests.get(f"http://{listen}/api/v1/repositories", timeout=5).json()["items"]}
        assert {"samples/charts/webapp", "samples/charts/cache", "platform/infra/ingress"} <= names
        # The first thing a new user sees: ocicat's own chart, with its README, values and schema.
        assert f"ocicat chart: http://{listen}/ui/charts/ocicat/charts/ocicat/0.1.0" in output
        own = requests.get(f"http://{listen}/api/v1/charts/ocicat/charts/ocicat/-/versions/0.1.0", timeout=5).json()
        assert own["error"] is None and own["readme"].startswith("# ocicat") and "database:" in own["values"]
        assert own["values_schema"]["required"] == ["image", "database", "registry", "webhook"]
        assert "templates/worker.yaml" in own["templates"]
        chart = requests.get(f"http://{listen}/api/v1/charts/samples/charts/webapp/-/versions/1.2.3+build.4", timeout=5)
        assert chart.json()["app_version"] == "2.4.1"
        assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()  # the embedded server's own data
        # The Helm repository it prints, as Helm reads it; the samples are one level down, in samples/charts.
        assert f"helm repo add samples http://{listen}/helm/samples" in output
        index = helm.repo_index(f"http://{listen}/helm/samples")
        assert [v["version"] for v in index["entries"]["webapp"]] == ["1.3.0", "1.2.3+build.4"]
        helm.pull("webapp", repo_url=f"http://{listen}/helm/samples", version="1.2.3+build.4", destination=tmp_path)
        assert (tmp_path / "webapp-1.2.3+build.4.tgz").exists()

        children = psutil.Process(script.pid).children(recursive=True)
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGTERM)  # what Ctrl-C does to the terminal's process group
        script.wait(60)
    gone, alive = psutil.wait_procs(children, timeout=30)
    assert alive == [], [p.cmdline() for p in alive]
    # The embedded PostgreSQL is daemonized (not a child) and must stop too.
    wait_until(lambda: not [p for p in psutil.process_iter(["cmdline"]) if str(tmp_path) in " ".join(p.info["cmdline"] or [])],
               timeout=60, interval=0.2, what="every quickstart process, the embedded PostgreSQL included, to exit")
