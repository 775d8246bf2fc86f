"""Comparing chart versions pushed with real Helm: the upgrade report written at push time, the compare API, the
template contents stored once, and hostile values that must not blow a comparison up."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from playwright.sync_api import expect

from harness.events import fresh_push_event
from harness.helm import helm_push, make_chart
from harness.oci import push_chart
from harness.processes import wait_until
from indexer.bus import PostgresQueue
from indexer.indexing import EventIndexer
from indexer.registry import RegistryClient
from ocicat.events import Event

from .pages import shoot

VALUES_1 = """\
# Number of pods
replicaCount: 1
legacy:
  # turns the old sidecar on
  enabled: false
ingress:
  # -- the ingress class to use
  class: nginx
  host: example.test
image:
  repository: registry.example/web
  tag: "1.0.0"
"""
VALUES_2 = """\
# Number of pods
replicaCount: 3
ingress:
  # -- the ingress class to use
  className: nginx
  host: example.test
image:
  repository: registry.example/web
  tag: "1.1.0"
auth:
  password: ""
"""
SCHEMA_1 = {"type": "object", "properties": {"replicaCount": {"type": "integer"}, "ingress": {"type": "object"}}}
SCHEMA_2 = {"type": "object", "required": ["auth"],
            "properties": {"replicaCount": {"type": "integer"}, "ingress": {"type": "object"},
                           "auth": {"$ref": "#/definitions/auth"}},
            "definitions": {"auth": {"type": "object", "required": ["password"],
                                     "properties": {"password": {"type": "string", "description": "the password"}}}}}
CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.test
spec:
  group: example.test
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            size: {type: %s}
"""
CHANGES_15 = "- kind: added\n  description: A quieter sidecar\n"
CHANGES_2 = ("- kind: removed\n  description: The legacy sidecar\n"
             "- kind: changed\n  description: ingress.class is now ingress.className\n")


def _version(tmp_path, version: str, values: str, schema: dict, crd_type: str, redis: str, web_tag: str,
             kube: str, changes: str | None = None):
    annotations = {"artifacthub.io/images": f"- name: web\n  image: registry.example/web:{web_tag}\n"}
    if changes:
        annotations["artifacthub.io/changes"] = changes
    return make_chart(
        tmp_path, "shop", version, app_version=web_tag, description="A shop",
        files={"values.yaml": values, "values.schema.json": json.dumps(schema), "crds/widgets.yaml": CRD % crd_type,
               "charts/redis/Chart.yaml": f"apiVersion: v2\nname: redis\nversion: {redis}\n",
               "templates/extra.yaml": f"# the shop's own template, version {version}\nkind: ConfigMap\n"},
        kubeVersion=kube, annotations=annotations,
        dependencies=[{"name": "redis", "version": redis, "repository": "oci://registry.example/charts"}])


def _push(stack, tmp_path, namespace, *versions):
    for spec in versions:
        helm_push(_version(tmp_path, **spec), stack.registry, namespace)
    repository = f"{namespace}/shop"
    wanted = {spec["version"] for spec in versions}
    wait_until(lambda: wanted <= set(stack.tags(repository)), timeout=60, what="the chart versions")
    return repository


V1 = dict(version="1.0.0", values=VALUES_1, schema=SCHEMA_1, crd_type="integer", redis="17.3.1", web_tag="1.0.0",
          kube=">=1.22.0-0")
V15 = {**V1, "version": "1.5.0", "changes": CHANGES_15}
V2 = dict(version="2.0.0", values=VALUES_2, schema=SCHEMA_2, crd_type="string", redis="18.0.1", web_tag="1.1.0",
          kube=">=1.25.0-0", changes=CHANGES_2)

# Each change the two versions differ by, in the report's order (by category, then by path):
# (category, path, breaking).
EXPECTED_REPORT = [
    ("value-removed", "legacy", True),
    ("value-renamed", "ingress.className", True),
    ("schema-required", "auth", True),
    ("schema-required", "auth.password", True),
    ("default-changed", "image.tag", False),
    ("default-changed", "replicaCount", False),
    ("crd-changed", "crds/widgets.yaml", True),
    ("kube-version", "kubeVersion", True),
    ("dependency-major", "redis", True),
    ("image-changed", "registry.example/web", False),
]


@pytest.fixture(scope="module")
def shop(stack, tmp_path_factory):
    """1.0.0 and 2.0.0 pushed, then 1.5.0 (the same as 1.0.0 but for its changelog) pushed late, in between."""
    tmp_path = tmp_path_factory.mktemp("shop")
    namespace = f"compare-{uuid.uuid4().hex[:8]}"
    repository = _push(stack, tmp_path, namespace, V1, V2)
    first = stack.get(f"/api/v1/charts/{repository}/-/versions/2.0.0").json()["upgrade_report"]
    _push(stack, tmp_path, namespace, V15)
    return repository, first


def _items(report):
    return [(i["category"], i["path"], i["breaking"]) for i in report["items"]]


def test_the_upgrade_report_lists_every_change_in_order_with_its_path(stack, shop):
    repository, first = shop
    assert first["from"]["version"] == "1.0.0"
    assert _items(first) == EXPECTED_REPORT
    crd = next(i for i in first["items"] if i["category"] == "crd-changed")
    assert crd["fields"] == ["spec.versions[0].schema.openAPIV3Schema.properties.size.type"]
    renamed = next(i for i in first["items"] if i["category"] == "value-renamed")
    assert renamed["from"] == "ingress.class"
    dependency = next(i for i in first["items"] if i["category"] == "dependency-major")
    assert (dependency["from"], dependency["to"]) == ("17.3.1", "18.0.1")

    # 1.5.0, pushed after 2.0.0, sits between: 2.0.0's report is rewritten against it, and says the same.
    version = stack.get(f"/api/v1/charts/{repository}/-/versions/2.0.0").json()
    assert version["upgrade_report"]["from"]["version"] == "1.5.0"
    assert _items(version["upgrade_report"]) == EXPECTED_REPORT
    between = stack.get(f"/api/v1/charts/{repository}/-/versions/1.5.0").json()["upgrade_report"]
    assert between["from"]["version"] == "1.0.0" and between["items"] == [] and between["breaking"] == 0
    assert stack.get(f"/api/v1/charts/{repository}/-/versions/1.0.0").json()["upgrade_report"] is None

    # The version list and search hits carry the counts.
    listed = {v["version"]: v["upgrade"] for v in stack.get(f"/api/v1/charts/{repository}/-/versions").json()["items"]}
    assert listed["2.0.0"] == {"from": {"version": "1.5.0", "digest": version["upgrade_report"]["from"]["digest"]},
                               "breaking": 7, "changes": 10}
    assert listed["1.0.0"] is None
    # A search hit shows the version pushed last: 1.5.0, with nothing breaking since 1.0.0.
    hits = stack.get("/api/v1/search", q=repository.split("/")[0]).json()["items"]
    assert [(h["chart_version"], h["upgrade"]["from"]["version"], h["upgrade"]["breaking"]) for h in hits
            if h["name"] == repository] == [("1.5.0", "1.0.0", 0)]


def test_compare_shows_every_part_and_the_changelogs_between(stack, shop):
    repository, _ = shop
    c = stack.get(f"/api/v1/charts/{repository}/-/compare", **{"from": "1.0.0", "to": "2.0.0"}).json()
    assert _items(c["report"]) == EXPECTED_REPORT
    assert {f["field"]: (f["from"], f["to"]) for f in c["fields"]}["kubeVersion"] == (">=1.22.0-0", ">=1.25.0-0")
    values = c["values"]
    assert values["removed"] == [{"path": "legacy", "value": {"enabled": False}, "comment": None}]
    assert values["renamed"] == [{"from": "ingress.class", "to": "ingress.className", "value": "nginx",
                                  "comment": "the ingress class to use"}]
    assert {v["path"]: (v["from"], v["to"]) for v in values["changed"]} == {"image.tag": ("1.0.0", "1.1.0"),
                                                                            "replicaCount": (1, 3)}
    assert [v["path"] for v in values["added"]] == ["auth"]
    assert c["schema"]["required"] == [{"path": "auth", "new": True}, {"path": "auth.password", "new": True}]
    assert [(t["path"], t["status"]) for t in c["templates"]] == [("templates/extra.yaml", "changed")]
    assert "-# the shop's own template, version 1.0.0\n+# the shop's own template, version 2.0.0\n" \
        in c["templates"][0]["diff"]
    assert "-            size: {type: integer}\n+            size: {type: string}\n" in c["crds"][0]["diff"]
    assert c["dependencies"] == [{"name": "redis", "status": "changed", "from": "17.3.1", "to": "18.0.1",
                                  "major": True}]
    assert [(i["from"], i["to"]) for i in c["images"]] == [("registry.example/web:1.0.0", "registry.example/web:1.1.0")]
    assert [(v["version"], [x["description"] for x in v["changes"]]) for v in c["changelog"]] == [
        ("2.0.0", ["The legacy sidecar", "ingress.class is now ingress.className"]),
        ("1.5.0", ["A quieter sidecar"])]

    # Backwards is a comparison too (a downgrade): the same changelogs, the changes the other way round.
    back = stack.get(f"/api/v1/charts/{repository}/-/compare", **{"from": "2.0.0", "to": "1.0.0"}).json()
    assert [v["version"] for v in back["changelog"]] == ["2.0.0", "1.5.0"]
    assert back["dependencies"][0]["major"] is False

    missing = stack.get(f"/api/v1/charts/{repository}/-/compare", **{"from": "1.0.0", "to": "9.9.9"})
    assert missing.status_code == 404 and "9.9.9" in missing.json()["detail"]
    assert stack.get(f"/api/v1/charts/{repository}/-/compare", to="2.0.0").status_code == 400


def test_the_published_event_carries_the_upgrade_summary(stack, shop):
    repository, _ = shop
    with stack.db.transaction() as cur:
        cur.execute("SELECT data FROM catalog_events WHERE repository = %s AND type = 'chart.version.published'"
                    " ORDER BY id", (repository,))
        charts = {row["data"]["chart"]["version"]: row["data"]["chart"]["upgrade"] for row in cur.fetchall()}
    assert charts["1.0.0"] is None
    assert charts["2.0.0"]["from"]["version"] == "1.0.0" and charts["2.0.0"]["breaking"] == 7
    assert charts["1.5.0"]["breaking"] == 0


def test_template_contents_are_served_and_stored_once_across_versions(stack, shop):
    repository, _ = shop
    files = stack.get(f"/api/v1/charts/{repository}/-/versions/1.5.0/files").json()["items"]
    by_path = {f["path"]: f for f in files}
    assert by_path["templates/extra.yaml"]["content"] == "# the shop's own template, version 1.5.0\nkind: ConfigMap\n"
    assert "size: {type: integer}" in by_path["crds/widgets.yaml"]["content"]
    assert by_path["templates/deployment.yaml"]["size"] > 0 and not by_path["templates/deployment.yaml"]["truncated"]
    with stack.db.transaction() as cur:
        cur.execute("""SELECT count(*) AS files, count(DISTINCT f.digest) AS contents FROM chart_files f
                        JOIN manifests m ON m.id = f.manifest_id JOIN repositories r ON r.id = m.repository_id
                       WHERE r.name = %s""", (repository,))
        counts = cur.fetchone()
        rows, distinct = counts["files"], counts["contents"]
    # Helm's scaffold templates are the same in all three versions: only extra.yaml (3 texts) and the CRD (2) differ.
    per_version = len(files)
    assert rows == 3 * per_version
    assert distinct == per_version - 2 + 3 + 2


def test_hostile_values_give_a_bounded_report_with_a_note_never_a_timeout_or_a_500(stack):
    """Values built to blow a diff up: 100,000 keys (refused at parse, as alias bombs are), 40,000 changed keys,
    nesting deeper than the parser takes, and 4 MiB strings. Each meets its bound, said in the notes (how long that
    takes is bench/compare.py's to measure, not a test's)."""
    repository = f"compare-hostile-{uuid.uuid4().hex[:8]}/blowup"
    keys = "".join(f"k{i}: {i}\n" for i in range(40_000))
    versions = {
        "1.0.0": keys,
        "2.0.0": keys.replace(": ", ": 1"),  # every key changed
        "3.0.0": "".join(f"k{i}: {i}\n" for i in range(100_000)),
        "4.0.0": "a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 150)) + "  " * 150 + "v: 1\n",
        "5.0.0": "blob: " + "a" * (4 * 1024 * 1024) + "\n",
        "6.0.0": "blob: " + "b" * (4 * 1024 * 1024) + "\n",
    }
    for version, values in versions.items():
        push_chart(stack.registry.url, repository, version, version, files={"values.yaml": values})
    wait_until(lambda: set(versions) <= set(stack.tags(repository)), timeout=120, what="the hostile versions")
    reports = {v: stack.get(f"/api/v1/charts/{repository}/-/versions/{v}").json()["upgrade_report"] for v in versions}
    assert reports["2.0.0"]["changes"] == 1000 and reports["2.0.0"]["more"] == 900
    assert "only the first 1000 changes" in reports["2.0.0"]["notes"][0]
    assert reports["3.0.0"]["notes"] == [
        "values not compared: 3.0.0: values.yaml expands to more than 100000 YAML nodes (alias bomb?)"]
    # 4.0.0 compares with 3.0.0, refused first
    assert "values not compared: 3.0.0: values.yaml expands" in reports["4.0.0"]["notes"][0]
    assert reports["5.0.0"]["notes"] == ["values not compared: 4.0.0: values.yaml nests deeper than 100 levels"]
    assert reports["6.0.0"]["items"][0]["path"] == "blob" and reports["6.0.0"]["items"][0]["from"].endswith("…")
    for low, high in (("1.0.0", "2.0.0"), ("2.0.0", "3.0.0"), ("5.0.0", "6.0.0"), ("1.0.0", "6.0.0")):
        response = stack.get(f"/api/v1/charts/{repository}/-/compare", **{"from": low, "to": high})
        assert response.status_code == 200
        assert response.json()["notes"] or response.json()["values"]["changed"]
    assert stack.server.process.poll() is None


def test_the_compare_page_and_the_chart_page_show_what_the_api_says(open_page, stack, shop):
    repository, _ = shop
    page, watch = open_page(f"/ui/charts/{repository}/-/compare?from=1.0.0&to=2.0.0")
    expect(page.get_by_role("heading", level=1)).to_have_text("shop: 1.0.0 → 2.0.0")
    report = page.get_by_role("list", name="Upgrade report").locator("li")
    expect(report).to_have_count(len(EXPECTED_REPORT))
    assert [(item.get_attribute("data-category"), item.locator("code.path").inner_text(),
             "breaking" in (item.get_attribute("class") or "")) for item in report.all()] == EXPECTED_REPORT
    expect(page.locator("#report")).to_contain_text("7 breaking candidates among 10 changes")
    expect(page.locator("#values")).to_contain_text("ingress.className")
    expect(page.locator("#templates pre.diff .diff-add")).to_have_text("+# the shop's own template, version 2.0.0")
    expect(page.locator("#crds")).to_contain_text("spec.versions[0].schema.openAPIV3Schema.properties.size.type")
    expect(page.locator("#dependencies")).to_contain_text("major version bump")
    expect(page.locator("#changelog h3")).to_have_text(["2.0.0", "1.5.0"])
    shoot(page, "compare")

    # The pickers make a new deep link.
    page.get_by_label("From").select_option("1.5.0")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"/-/compare\?from=1\.5\.0&to=2\.0\.0$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("shop: 1.5.0 → 2.0.0")
    expect(page.locator("#changelog h3")).to_have_text(["2.0.0"])

    page.goto(f"/ui/charts/{repository}/2.0.0")
    expect(page.locator("#upgrade")).to_contain_text("Upgrading from 1.5.0: 7 breaking candidates")
    expect(page.locator("#versions .badge-breaking")).to_have_text(["7 breaking candidates"])
    expect(page.locator("#changelog")).to_contain_text("The legacy sidecar")
    auth = page.locator("#schema .schema-root > li").filter(has=page.locator("code.schema-key", has_text="auth"))
    expect(auth).to_contain_text("required")
    auth.locator("summary").first.click()  # a level is built when it is opened
    expect(auth.locator(".schema-description")).to_have_text("the password")
    page.locator("#templates summary", has_text="templates/extra.yaml").click()
    expect(page.get_by_label("templates/extra.yaml", exact=True)).to_have_text(
        "# the shop's own template, version 2.0.0\nkind: ConfigMap\n")
    page.get_by_role("link", name="Compare 1.5.0 with 2.0.0").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("shop: 1.5.0 → 2.0.0")
    shoot(page, "chart-upgrade")
    watch.assert_quiet()


def _index(db, registry, repository: str, *versions: str, files: dict | None = None, **fields) -> None:
    """Versions pushed as Helm lays them out and indexed by the worker's own handler, one at a time."""
    queue = PostgresQueue(db)
    for version in versions:
        digest = push_chart(registry.url, repository, version, version,
                            files={"values.yaml": f"release: '{version}'\n", **(files or {})}, **fields)
        queue.publish([Event.load(fresh_push_event(repository, digest, version))], [])
        assert queue.process_one(EventIndexer(db, RegistryClient(registry.url)))


def _bases(db) -> dict[str, str | None]:
    with db.transaction() as cur:
        cur.execute("SELECT c.version, b.version AS base, c.upgrade_report->'from'->>'version' AS reported"
                    " FROM helm_charts c LEFT JOIN helm_charts b ON b.manifest_id = c.upgrade_base_id")
        rows = cur.fetchall()
    assert all(row["base"] == row["reported"] for row in rows), rows
    return {row["version"]: row["base"] for row in rows}


def test_versions_pushed_out_of_order_get_the_reports_of_their_place(db, registry):
    repository = f"order-{uuid.uuid4().hex[:8]}/app"
    _index(db, registry, repository, "1.0.0-rc.1", "1.0.0", "2.0.0-rc.1", "2.0.0")
    assert _bases(db) == {"1.0.0-rc.1": None, "1.0.0": "1.0.0-rc.1", "2.0.0-rc.1": "1.0.0", "2.0.0": "1.0.0"}
    # A release below them all: the releases with a prerelease base take it, whatever order they sort in.
    _index(db, registry, repository, "0.9.0")
    assert _bases(db) == {"0.9.0": None, "1.0.0-rc.1": "0.9.0", "1.0.0": "0.9.0", "2.0.0-rc.1": "1.0.0",
                          "2.0.0": "1.0.0"}
    # A release in between: the next release and its prerelease move to it.
    _index(db, registry, repository, "1.5.0")
    assert _bases(db) == {"0.9.0": None, "1.0.0-rc.1": "0.9.0", "1.0.0": "0.9.0", "1.5.0": "1.0.0",
                          "2.0.0-rc.1": "1.5.0", "2.0.0": "1.5.0"}
    with db.transaction() as cur:
        cur.execute("SELECT upgrade_report FROM helm_charts WHERE version = '2.0.0'")
        report = cur.fetchone()["upgrade_report"]
    assert [(i["path"], i["from"], i["to"]) for i in report["items"]] == [("release", '"1.5.0"', '"2.0.0"')]


def test_charts_whose_files_hold_what_json_cannot_are_indexed_and_compared(db, registry):
    """NaN and NUL in a CRD, a dependency named by a list in Chart.lock and Chart.yaml, a schema whose $schema is a
    number: the versions are indexed without error and their report written."""
    repository = f"odd-{uuid.uuid4().hex[:8]}/app"
    files = {"crds/a.yaml": 'kind: CustomResourceDefinition\nx: .nan\ny: "a\\0b"\n',
             "Chart.lock": "dependencies:\n- name: [x]\n  version: 1.0.0\n",
             "values.schema.json": json.dumps({"$schema": 5, "properties": {"a": {"$ref": "#"}}})}
    _index(db, registry, repository, "1.0.0", files=files, dependencies=[{"name": ["x"], "version": "1"}])
    files["crds/a.yaml"] = files["crds/a.yaml"].replace(".nan", ".inf")
    _index(db, registry, repository, "2.0.0", files=files, dependencies=[{"name": ["x"], "version": "2"}])
    with db.transaction() as cur:
        cur.execute("SELECT m.error, c.version, c.upgrade_report FROM helm_charts c"
                    " JOIN manifests m ON m.id = c.manifest_id ORDER BY c.version")
        rows = cur.fetchall()
        cur.execute("SELECT count(*) AS n FROM dead_letters")
        assert cur.fetchone()["n"] == 0
    assert [row["error"] for row in rows] == [None, None]
    assert [(i["category"], i["path"]) for i in rows[1]["upgrade_report"]["items"]] == [
        ("default-changed", "release"), ("crd-changed", "crds/a.yaml")]
    assert rows[1]["upgrade_report"]["items"][1]["fields"] == ["x"]
