"""Real Helm: charts scaffolded, packaged and pushed by Helm's own Go code (helm-python-sdk)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import helm_python as helm
import yaml

from .registry import Registry


def make_chart(workdir: Path, name: str, version: str, app_version: str = "1.16.0", files: dict[str, str] | None = None,
               **chart_fields) -> Path:
    """A real chart archive, scaffolded and packaged by Helm's own Go code (helm-python-sdk).

    ``files`` (path in the chart: text) are written over the scaffold before packaging: README.md, values.yaml, ...
    """
    parent = Path(tempfile.mkdtemp(dir=workdir))
    helm.Chart.create(name, parent)
    for relative, text in (files or {}).items():
        (parent / name / relative).parent.mkdir(parents=True, exist_ok=True)
        (parent / name / relative).write_text(text)
    chart_yaml = parent / name / "Chart.yaml"
    meta = yaml.safe_load(chart_yaml.read_text())
    meta.update(chart_fields)
    meta["appVersion"] = app_version
    chart_yaml.write_text(yaml.safe_dump(meta, sort_keys=False))
    return Path(helm.package(parent / name, destination=parent, version=version))


def helm_push(archive: Path, registry: Registry, namespace: str) -> None:
    helm.push(archive, f"oci://{registry.host}/{namespace}", plain_http=True)
