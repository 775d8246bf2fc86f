#!/usr/bin/env python
"""Chart-archive parsing benchmark: throughput on real-sized charts, memory when refusing gzip bombs.

    .venv/bin/python bench/parse.py [--seconds S] [--impossible-targets]

1. Throughput: indexer.chart_archive.read_chart_archive on two generated charts,
   a large one shaped like the biggest real-world charts (about 200 templates,
   2 MB of values.yaml, a 100 KB README, some MB of CRDs, a subchart) and a
   small typical one (the size of ``helm create``'s scaffold). Each is parsed
   over and over for S seconds in 5 rounds; the median round gives MB/s of
   compressed input and of decompressed tar stream. For scale, the same is
   given for zlib inflating the archive and nothing else.
2. Memory: a fresh Python process reads an archive into memory (as the worker
   holds a fetched layer) and parses it; its peak RSS is compared with the
   200 MiB target. The 1 GiB gzip bombs must all be refused; the large chart
   must be accepted. A process that only reads the file gives the baseline.
   The peak is the child's own VmHWM (/proc/self/status), not ru_maxrss:
   subprocess starts children with vfork + exec, and exec folds the parent's
   peak RSS into the child's ru_maxrss (RUSAGE_SELF and RUSAGE_CHILDREN alike),
   so a child that peaks at 11 MiB reports whatever this process peaked at.
3. README rendering at ingest, the worst READMEs ocicat accepts, and a real
   ``ocicat worker`` indexing all of the above (its VmHWM against the same
   target), then what the worst README's chart page costs to read.

Exits 1 if a target is missed or an archive gets the wrong outcome.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import yaml  # noqa: E402

from bench.common import Targets, add_targets_argument  # noqa: E402
from harness.chart_archives import (  # noqa: E402
    MiB,
    chart_tgz,
    many_files_bomb,
    one_file_bomb,
    trailing_zeros_bomb,
)
from indexer.chart_archive import ChartArchiveError, read_chart_archive  # noqa: E402
from indexer.readme import MAX_README_CHARS, readme_html  # noqa: E402

RSS_TARGET_MIB = 200
README_TARGET_MS = 50.0  # the worst README ocicat accepts, rendered and sanitized at ingest
README_READ_TARGET = 1.2  # reading the chart page of the worst README against one of a benign README of its size
ROUNDS = 5
WORDS = (
    "replicas image repository tag pullPolicy service port targetPort ingress enabled annotations resources "
    "limits requests cpu memory nodeSelector tolerations affinity persistence storageClass size accessModes "
    "metrics serviceMonitor interval scrapeTimeout labels podSecurityContext securityContext runAsUser fsGroup "
    "readinessProbe livenessProbe initialDelaySeconds periodSeconds timeoutSeconds existingSecret password "
    "auth tls certificate hostname path pathType extraEnvVars sidecars initContainers volumes volumeMounts"
).split()
SCALARS = ["true", "false", '""', "[]", "{}", "1", "10", "8080", "ClusterIP", "IfNotPresent", '"100m"', '"128Mi"']

# The child process for the memory measurement: the archive is read whole
# into memory first, as the worker holds a fetched layer. It prints what
# happened, then its peak RSS in KiB.
CHILD = """
import io, sys
sys.path.insert(0, sys.argv[1])
from indexer.chart_archive import ChartArchiveError, read_chart_archive
data = open(sys.argv[2], "rb").read()
outcome = "read only"
if sys.argv[3] == "parse":
    try:
        contents = read_chart_archive(io.BytesIO(data))
        outcome = f"accepted: {contents.files} files, {contents.total_bytes / 2**20:.1f} MiB"
    except ChartArchiveError as exc:
        outcome = f"refused: {exc}"
print(outcome)
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


# -- generated charts -------------------------------------------------------------


def hostile_readmes() -> dict[str, str]:
    """The READMEs that cost most to render and sanitize, each as large as ocicat renders (MAX_README_CHARS)."""
    n = MAX_README_CHARS
    return {
        "unclosed <div> (nesting past the limit)": "<div>" * (n // 5),
        "Markdown blockquotes (> > > ...)": "> " * (n // 2),
        "<b><p> (formatting reconstructed)": "<b><p>" * (n // 6),
        "nesting just under the limit, then flat": "<div>" * 250 + "<span>x</span>" * ((n - 1250) // 14),
        "unclosed links": "<a href=https://x.example>" * (n // 26),
        "brackets": "[" * n,
        "emphasis runs": "*a **b " * (n // 7),
        "a table 1,000 columns wide": ("|" + "a|" * 1000 + "\n|" + "-|" * 1000 + "\n") * (n // 4004),
        "real-looking, tables and links, rendering to just under the HTML limit": _largest_rendered(
            "## Parameters\n\n| Name | Description | Value |\n|---|---|---|\n"
            + "| `image.tag` | The [image](https://hub.example/x) tag | `1.2.3` |\n" * 20 + "\n"),
    }


def _largest_rendered(block: str) -> str:
    """``block`` repeated as often as the README still renders to HTML (under both of indexer.readme's limits)."""
    low, high = 1, MAX_README_CHARS // len(block)
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if readme_html(block * middle) is not None else (low, middle - 1)
    return block * low


def readme_cost(readme: str) -> float:
    """Median milliseconds of rendering and sanitizing ``readme`` as the worker does at ingest."""
    times = []
    for _ in range(5):
        started = time.perf_counter()
        readme_html(readme)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choices(WORDS, k=words))


def values_yaml(rng: random.Random, size: int) -> str:
    """Bitnami-style values: sections of documented parameters."""
    lines: list[str] = []
    length = 0
    while length < size:
        section = f"{rng.choice(WORDS)}{rng.randrange(1000)}"
        block = [f"## @section {section} parameters", f"{section}:"]
        for _ in range(rng.randrange(5, 30)):
            key = rng.choice(WORDS)
            block.append(f"  ## @param {section}.{key} {sentence(rng, 8)}")
            if rng.random() < 0.3:
                block.append(f"  {key}:")
                block += [f"    {rng.choice(WORDS)}: {rng.choice(SCALARS)}" for _ in range(rng.randrange(1, 6))]
            else:
                block.append(f"  {key}: {rng.choice(SCALARS)}")
        lines += block
        length += sum(len(line) + 1 for line in block)
    return "\n".join(lines) + "\n"


def template(rng: random.Random, name: str, size: int) -> str:
    """A Helm template: YAML interleaved with template actions."""
    lines = [
        "{{- if .Values.%s.enabled }}" % name,
        "apiVersion: apps/v1",
        "kind: Deployment",
        "metadata:",
        '  name: {{ include "common.names.fullname" . }}-%s' % name,
        '  labels: {{- include "common.labels.standard" . | nindent 4 }}',
        "spec:",
    ]
    while sum(len(line) + 1 for line in lines) < size:
        key = rng.choice(WORDS)
        indent = " " * rng.choice((2, 4, 6, 8))
        lines.append(f"{indent}{{{{- if .Values.{name}.{key} }}}}")
        lines.append(f"{indent}{key}: {{{{- toYaml .Values.{name}.{key} | nindent {len(indent) + 2} }}}}")
        lines.append(f"{indent}{{{{- end }}}}")
    return "\n".join(lines + ["{{- end }}"]) + "\n"


def crd(rng: random.Random, kind: str, size: int) -> str:
    """A CustomResourceDefinition whose openAPIV3Schema is mostly property descriptions."""
    lines = [
        "apiVersion: apiextensions.k8s.io/v1",
        "kind: CustomResourceDefinition",
        f"metadata:\n  name: {kind.lower()}s.example.com",
        "spec:\n  group: example.com\n  names:\n    kind: " + kind,
        "  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:",
        "        type: object\n        properties:",
    ]
    while sum(len(line) + 1 for line in lines) < size:
        lines.append(f"          {rng.choice(WORDS)}{rng.randrange(10_000)}:")
        lines.append(f"            description: {sentence(rng, rng.randrange(10, 40))}")
        lines.append(f"            type: {rng.choice(('string', 'integer', 'boolean', 'object', 'array'))}")
    return "\n".join(lines) + "\n"


def large_chart() -> bytes:
    rng = random.Random(1)
    files = {
        "Chart.yaml": yaml.safe_dump(
            {
                "apiVersion": "v2",
                "name": "platform",
                "version": "58.2.1",
                "appVersion": "v0.74.0",
                "description": sentence(rng, 20),
                "keywords": WORDS[:10],
                "maintainers": [{"name": w, "email": f"{w}@example.com"} for w in WORDS[:6]],
                "dependencies": [{"name": "common", "version": "2.x.x", "repository": "oci://example.com/charts"}],
                "annotations": {f"example.com/{w}": sentence(rng, 30) for w in WORDS[:20]},
            }
        ),
        "Chart.lock": "dependencies:\n- name: common\n  repository: oci://example.com/charts\n  version: 2.19.0\n"
        'digest: sha256:4d2c\ngenerated: "2024-05-01T10:00:00Z"\n',
        "README.md": "\n".join(f"| `{sentence(rng, 2)}` | {sentence(rng, 12)} | `{rng.choice(SCALARS)}` |" for _ in range(1300)),
        "values.yaml": values_yaml(rng, 2_000_000),
        "values.schema.json": json.dumps(
            {"type": "object", "properties": {f"{w}{i}": {"type": "string", "description": sentence(rng, 10)} for i in range(400) for w in WORDS[:10]}}
        ),
        ".helmignore": ".git/\n*.swp\n",
    }
    for i in range(200):
        files[f"templates/{rng.choice(WORDS).lower()}-{i}.yaml"] = template(rng, f"{rng.choice(WORDS)}{i}", rng.randrange(2000, 14_000))
    files["templates/_helpers.tpl"] = template(rng, "helpers", 20_000)
    files["templates/NOTES.txt"] = sentence(rng, 400)
    for kind in ("Alertmanager", "Prometheus", "PrometheusRule", "ServiceMonitor", "ThanosRuler"):
        files[f"crds/crd-{kind.lower()}.yaml"] = crd(rng, kind, 700_000)
    files["charts/common/Chart.yaml"] = "apiVersion: v2\nname: common\nversion: 2.19.0\ntype: library\n"
    for i in range(30):
        files[f"charts/common/templates/_{rng.choice(WORDS).lower()}{i}.tpl"] = template(rng, f"common{i}", 3000)
    return chart_tgz(files, top="platform")


def small_chart() -> bytes:
    rng = random.Random(2)
    files = {
        "Chart.yaml": "apiVersion: v2\nname: webapp\ndescription: A Helm chart for Kubernetes\ntype: application\n"
        'version: 0.1.0\nappVersion: "1.16.0"\n',
        "values.yaml": values_yaml(rng, 5000),
        ".helmignore": ".git/\n*.swp\n",
        "templates/NOTES.txt": sentence(rng, 300),
        "templates/_helpers.tpl": template(rng, "helpers", 1800),
        "templates/tests/test-connection.yaml": template(rng, "test", 400),
    }
    for name, size in (("deployment", 2400), ("hpa", 1000), ("httproute", 950), ("ingress", 1100), ("service", 350), ("serviceaccount", 400)):
        files[f"templates/{name}.yaml"] = template(rng, name, size)
    return chart_tgz(files, top="webapp")


# -- measurements -----------------------------------------------------------------


def rate(work, seconds: float) -> float:
    """Seconds per call of ``work``: the median of ROUNDS rounds, each repeating it for seconds / ROUNDS."""
    per_call = []
    for _ in range(ROUNDS):
        calls, start = 0, time.perf_counter()
        while True:
            work()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / ROUNDS:
                break
        per_call.append(elapsed / calls)
    return statistics.median(per_call)


def inflate(archive: bytes) -> None:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    for offset in range(0, len(archive), 64 * 1024):
        inflater.decompress(archive[offset : offset + 64 * 1024])


def peak_rss(path: Path, mode: str) -> tuple[float, str]:
    """Peak RSS in MiB of a fresh process that reads ``path`` and, in mode "parse", parses it; and what it said."""
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(REPO_ROOT), str(path), mode], capture_output=True, text=True
    )
    if child.returncode != 0:
        raise SystemExit(f"child failed ({child.returncode}) on {path.name}: {child.stderr.strip()}")
    outcome, peak_kib = child.stdout.strip().rsplit("\n", 1)
    return int(peak_kib) / 1024, outcome


def machine() -> list[str]:
    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        memory_kib = int(meminfo.readline().split()[1])
    return [
        f"machine: {cpu}; nproc {len(os.sched_getaffinity(0))} (of {os.cpu_count()}); memory {memory_kib / 2**20:.1f} GiB",
        f"versions: Python {platform.python_version()}; PyYAML {yaml.__version__} (libyaml {'yes' if yaml.__with_libyaml__ else 'no'}); "
        f"zlib {zlib.ZLIB_RUNTIME_VERSION}; {platform.platform()}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="time spent parsing each chart (default 5)")
    add_targets_argument(parser)
    args = parser.parse_args()
    targets = Targets(args.impossible_targets)

    print("\n".join(machine()))
    charts = {"large chart": large_chart(), "small chart": small_chart()}

    print(f"\n== throughput (median of {ROUNDS} rounds, {args.seconds:g} s per chart) ==")
    for name, archive in charts.items():
        tar_size = len(gzip.decompress(archive))
        contents = read_chart_archive(io.BytesIO(archive))
        parse_seconds = rate(lambda: read_chart_archive(io.BytesIO(archive)), args.seconds)
        inflate_seconds = rate(lambda: inflate(archive), args.seconds / 5)
        print(
            f"{name}: {len(archive) / 1e6:.3f} MB compressed, {tar_size / 1e6:.2f} MB tar, {contents.files} files "
            f"({len(contents.templates)} templates, {len(contents.crds)} CRDs, values {len(contents.values) / 1e6:.2f} MB, "
            f"README {len(contents.readme or '') / 1e3:.0f} KB)"
        )
        print(
            f"  parse: {parse_seconds * 1e3:.2f} ms = {len(archive) / parse_seconds / 1e6:.1f} MB/s compressed, "
            f"{tar_size / parse_seconds / 1e6:.1f} MB/s decompressed; {1 / parse_seconds:.0f} charts/s"
        )
        print(
            f"  zlib inflate alone: {inflate_seconds * 1e3:.2f} ms = {tar_size / inflate_seconds / 1e6:.1f} MB/s decompressed "
            f"(parsing costs {parse_seconds / inflate_seconds:.1f}x that)"
        )

    print(f"\n== README rendering at ingest, each at the {MAX_README_CHARS // 1024} KiB limit (target < "
          f"{README_TARGET_MS:.0f} ms, median of 5) ==")
    readmes = {**hostile_readmes(), "the large chart's README": read_chart_archive(io.BytesIO(charts["large chart"])).readme}
    for name, readme in readmes.items():
        cost = readme_cost(readme)
        shown = "as HTML" if readme_html(readme) is not None else "as text (over a limit)"
        verdict = targets.at_most(f"README {name}, rendered at ingest", cost, README_TARGET_MS, " ms")
        print(f"{name} ({len(readme) / 1024:.0f} KiB): {cost:.1f} ms, shown {shown} {verdict}")

    print(f"\n== peak RSS of a fresh process (target < {RSS_TARGET_MIB} MiB) ==")
    cases = {
        "1 GiB gzip bomb, one file": one_file_bomb(),
        "1 GiB gzip bomb, 205 files of 5 MiB": many_files_bomb(205),
        "1 GiB of zeros after the tar's end": trailing_zeros_bomb(),
        "large chart": charts["large chart"],
    }
    with tempfile.TemporaryDirectory() as workdir:
        for i, (name, archive) in enumerate(cases.items()):
            path = Path(workdir) / f"{i}.tgz"
            path.write_bytes(archive)
            baseline, _ = peak_rss(path, "read")
            peak, outcome = peak_rss(path, "parse")
            expected = "accepted" if name == "large chart" else "refused"
            verdict = targets.at_most(f"peak RSS of a process parsing the {name}", peak, RSS_TARGET_MIB, " MiB")
            right = targets.holds(f"the {name} {expected}: {outcome}", outcome.startswith(expected))
            print(
                f"{name} ({len(archive) / MiB:.2f} MiB compressed): peak {peak:.1f} MiB "
                f"(process that only reads the file: {baseline:.1f} MiB) {verdict}; {outcome} {right}"
            )
    worst = max(hostile_readmes().items(), key=lambda item: readme_cost(item[1]))
    worker_peak(cases, worst, targets)
    return targets.verdict()


def worker_peak(cases: dict[str, bytes], worst_readme: tuple[str, str], targets: Targets) -> None:
    """Peak memory of a real ``ocicat worker`` that fetches these chart layers from a real registry; and what
    reading the chart page of the worst README costs, against a benign README of the same size.

    The same archives as above are pushed as Helm charts; the worker streams
    each layer from the registry into the parser, records the refusal on the
    manifest and goes on. Its high-water mark (VmHWM) is read when it is done.
    """
    import psycopg2
    import requests

    from harness.oci import push_artifact
    from harness.processes import Ocicat, free_port, python_env, wait_http, wait_until
    from harness.registry import Registry
    from ocicat.oci.media_types import HELM_CHART_LAYER, HELM_CONFIG

    print(f"\n== peak RSS of a real `ocicat worker` indexing all of the above (target < {RSS_TARGET_MIB} MiB) ==")
    server = os.environ.get("OCICAT_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"ocicat_bench_parse_{os.getpid()}"
    admin = psycopg2.connect(server)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    port = free_port()
    registry = Registry(notify_url=f"http://127.0.0.1:{port}/api/v1/events", secret="bench").start()
    env = python_env(OCICAT_DATABASE_URL=server.rsplit("/", 1)[0] + f"/{name}", OCICAT_LISTEN=f"127.0.0.1:{port}",
                     OCICAT_REGISTRY_URL=registry.url, OCICAT_WEBHOOK_SECRETS="bench", OCICAT_DEFAULT_VISIBILITY="public")
    workdir = Path(tempfile.mkdtemp(prefix="ocicat-bench-parse-"))
    api = Ocicat("api", env, workdir / "api.log").start()
    worker = Ocicat("worker", env, workdir / "worker.log").start()
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        config = b'{"apiVersion": "v2", "name": "bench", "version": "1.0.0"}'
        for i, archive in enumerate(cases.values()):
            push_artifact(registry.url, f"bench/chart-{i}", "1.0.0", media_type=None,
                          config=(HELM_CONFIG, config), layers=[(HELM_CHART_LAYER, archive)])

        def indexed(i):
            response = requests.get(f"http://127.0.0.1:{port}/api/v1/repositories/bench/chart-{i}/-/tags", timeout=5)
            return response.status_code == 200 and response.json()["items"]

        tags = [wait_until(lambda: indexed(i), timeout=120, interval=0.2, what=f"chart {i}")[0] for i in range(len(cases))]
        status = Path(f"/proc/{worker.process.pid}/status").read_text()
        peak = int(next(l for l in status.splitlines() if l.startswith("VmHWM:")).split()[1]) / 1024
        for (case, _), tag in zip(cases.items(), tags):
            expected = tag["error"] if case != "large chart" else not tag["error"]
            verdict = targets.holds(f"`ocicat worker` on the {case}: {tag['error'] or 'indexed, no error'}", expected)
            print(f"{case}: {tag['error'] or 'indexed, no error'} {verdict}")
        print(f"worker peak (VmHWM) {peak:.1f} MiB: "
              + targets.at_most("peak RSS (VmHWM) of `ocicat worker`", peak, RSS_TARGET_MIB, " MiB"))
        readme_read_cost(registry, f"http://127.0.0.1:{port}", worst_readme, targets)
    finally:
        worker.stop()
        api.stop()
        registry.close()
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def readme_read_cost(registry, api: str, worst_readme: tuple[str, str], targets: Targets) -> None:
    """The chart page of the worst README against one of a benign README of its size: medians of 100 GETs each."""
    import requests

    from harness.oci import push_artifact
    from harness.processes import wait_until
    from ocicat.oci.media_types import HELM_CHART_LAYER, HELM_CONFIG

    name, worst = worst_readme
    benign = ("Some *text*, a [link](https://example.com) and `code`.\n\n" * (len(worst) // 60))[:len(worst)]
    session = requests.Session()
    medians = {}
    for label, readme in (("benign", benign), ("worst", worst)):
        config = json.dumps({"apiVersion": "v2", "name": label, "version": "1.0.0"}).encode()
        archive = chart_tgz({"Chart.yaml": f"apiVersion: v2\nname: {label}\nversion: 1.0.0\n", "README.md": readme},
                            top=label)
        push_artifact(registry.url, f"readme/{label}", "1.0.0", media_type=None, config=(HELM_CONFIG, config),
                      layers=[(HELM_CHART_LAYER, archive)])
        url = f"{api}/api/v1/charts/readme/{label}/-/versions/1.0.0"
        wait_until(lambda: session.get(url, timeout=5).status_code == 200, timeout=60, what=f"the {label} chart")
        for _ in range(10):
            session.get(url, timeout=5)
        times = []
        for _ in range(100):
            started = time.perf_counter()
            session.get(url, timeout=5).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
        medians[label] = statistics.median(times)
    ratio = medians["worst"] / medians["benign"]
    verdict = targets.at_most("chart page of the worst README / of a benign one, median", ratio, README_READ_TARGET,
                              "x", digits=2)
    print(f"\n== reading the chart page of the worst README ({name}) against a benign one of its size ==")
    print(f"GET chart version: median {medians['worst']:.1f} ms vs {medians['benign']:.1f} ms (n=100 each) = "
          f"{ratio:.2f}x: {verdict}")



if __name__ == "__main__":
    try:
        sys.exit(main())
    except ChartArchiveError as exc:  # a generated chart refused: the benchmark itself is broken
        raise SystemExit(f"generated chart refused: {exc}")
