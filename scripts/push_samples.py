"""Push a few sample Helm charts to a registry with real Helm (helm-python-sdk), ocicat's own chart first, then
wait until ocicat shows them."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import helm_python as helm
import requests
import yaml

OWN_CHART = Path(__file__).resolve().parent.parent / "deploy" / "helm" / "ocicat"
OWN_NAMESPACE = "ocicat/charts"

SAMPLES = [
    ("samples/charts", "webapp", "1.2.3+build.4", {"appVersion": "2.4.1", "description": "A sample web application",
                                                   "keywords": ["web", "demo"], "home": "https://example.com/webapp"}),
    ("samples/charts", "webapp", "1.3.0", {"appVersion": "2.5.0", "description": "A sample web application"}),
    ("samples/charts", "cache", "17.3.0", {"appVersion": "7.2.4", "description": "An in-memory cache",
                                           "maintainers": [{"name": "Platform team", "email": "platform@example.com"}]}),
    ("platform/infra", "ingress", "4.8.0", {"appVersion": "1.9.4", "description": "Ingress controller",
                                            "annotations": {"category": "Networking"}}),
]


def main(registry: str) -> None:
    api = f"http://{os.environ.get('OCICAT_LISTEN', '127.0.0.1:8080')}/api/v1"
    with tempfile.TemporaryDirectory() as tmp:
        archive = helm.package(OWN_CHART, destination=tmp)
        helm.push(archive, f"oci://{registry}/{OWN_NAMESPACE}", plain_http=True)
        print(f"pushed {OWN_NAMESPACE}/ocicat (ocicat's own chart)")
        for namespace, name, version, fields in SAMPLES:
            parent = Path(tempfile.mkdtemp(dir=tmp))
            helm.Chart.create(name, parent)
            chart_yaml = parent / name / "Chart.yaml"
            meta = yaml.safe_load(chart_yaml.read_text())
            meta.update(fields)
            chart_yaml.write_text(yaml.safe_dump(meta, sort_keys=False))
            archive = helm.package(parent / name, destination=parent, version=version)
            helm.push(archive, f"oci://{registry}/{namespace}", plain_http=True)
            print(f"pushed {namespace}/{name}:{version}")

    # Every version pushed, each with the tag Helm pushes after the manifest.
    deadline = time.monotonic() + 15
    wanted = {(f"{ns}/{name}", version.replace("+", "_")) for ns, name, version, _ in SAMPLES}
    wanted.add((f"{OWN_NAMESPACE}/ocicat", yaml.safe_load((OWN_CHART / "Chart.yaml").read_text())["version"]))
    while time.monotonic() < deadline:
        if all(_tagged(api, repository, tag) for repository, tag in wanted):
            print(f"ocicat indexed its own chart and {len(SAMPLES)} sample chart versions")
            return
        time.sleep(0.1)
    sys.exit("error: ocicat did not index the sample charts within 15 s")


def _tagged(api: str, repository: str, tag: str) -> bool:
    response = requests.get(f"{api}/repositories/{repository}/-/tags", params={"name": tag}, timeout=5)
    return response.status_code == 200 and any(t["name"] == tag for t in response.json()["items"])

if __name__ == "__main__":
    main(sys.argv[1])
