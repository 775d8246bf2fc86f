"""The catalog as classic Helm chart repositories, driven by real Helm (helm-python-sdk): charts pushed with
``helm push`` to a registry notifying a real ``ocicat serve`` on a private catalog, then listed by Helm's own index
loader, pulled with ``helm pull --repo`` and verified with ``helm verify``; Monocular's search as
``helm search hub`` asks it; permissions, revalidation and hostile paths."""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import json
import subprocess
import uuid
from pathlib import Path

import helm_python as helm
import pytest
import requests
import yaml

from harness.helm import helm_push, make_chart
from harness.oci import push_chart
from harness.processes import wait_until
from ocicat import accounts
from ocicat.catalog import visibility

from .stack import start_stack, stop_stack

WEBAPP_VERSIONS = ["0.9.0", "1.0.0", "1.1.0-rc.1", "1.1.0"]  # pushed in this order
HELM_ORDER = ["1.1.0", "1.1.0-rc.1", "1.0.0", "0.9.0"]  # newest first, SemVer precedence


@pytest.fixture(scope="module")
def charts(make_database, tmp_path_factory):
    """A private catalog holding, under a team namespace, four versions of webapp, one of db and, a level down,
    tool (signed, with its provenance pushed); a chart in a sibling namespace; and one in a public namespace."""
    work = tmp_path_factory.mktemp("helmrepo")
    stack = start_stack(make_database, work)
    corp = f"corp-{uuid.uuid4().hex[:8]}"
    team, other, public = f"{corp}/team", f"{corp}/other", f"{corp}/pub"
    with stack.db.transaction() as cur:
        visibility.set_rule(cur, public, True)
    archives = {}
    for version in WEBAPP_VERSIONS:
        archives["webapp", version] = make_chart(work, "webapp", version, app_version=f"app-{version}",
                                                 description="The web application", keywords=["frontend", "http"])
    archives["db", "2.0.0"] = make_chart(work, "db", "2.0.0", description="A postgres database for the team")
    archives["tool", "0.1.0"] = make_chart(work, "tool", "0.1.0", description="A signed tool")
    keyring = _sign(work, archives["tool", "0.1.0"])
    archives["secret", "1.0.0"] = make_chart(work, "secret", "1.0.0", description="Nobody on the team may see this")
    archives["pubchart", "3.0.0"] = make_chart(work, "pubchart", "3.0.0", description="Anyone may see this")
    places = {"webapp": team, "db": team, "tool": f"{team}/sub", "secret": other, "pubchart": public}
    for (name, _), archive in archives.items():
        helm_push(archive, stack.registry, places[name])
    admin = _token(stack, admin=True)
    for (name, version) in archives:
        _tagged(stack, admin, f"{places[name]}/{name}", version)
    yield stack, {"team": team, "other": other, "public": public, "corp": corp, "archives": archives,
                  "keyring": keyring, "admin": admin}
    stop_stack(stack)


def _tagged(stack, headers: dict, repository: str, version: str) -> dict:
    """Wait until the catalog has the chart version's tag, and return the tag. Helm can push a manifest and then
    tag it, two registry events: the chart version is known before a Helm index lists it (it lists what tags name)."""
    return wait_until(lambda: stack.tags(repository, headers).get(version), what=f"{repository}:{version} tagged")


def _sign(work: Path, archive: Path) -> Path:
    """Sign ``archive`` with Helm (a .prov beside it, which helm push sends along) using a new GnuPG key; returns
    the public keyring that verifies it."""
    home = work / "gnupg"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
    subprocess.run([*gpg, "--quick-gen-key", "Chart Signer <signer@example.com>", "rsa2048", "sign", "never"],
                   check=True, capture_output=True, timeout=120)
    secring, pubring = work / "secring.gpg", work / "pubring.gpg"
    secring.write_bytes(subprocess.run([*gpg, "--export-secret-keys"], check=True, capture_output=True).stdout)
    pubring.write_bytes(subprocess.run([*gpg, "--export"], check=True, capture_output=True).stdout)
    assert Path(helm.sign(archive, key="Chart Signer", keyring=secring)) == archive.with_name(archive.name + ".prov")
    return pubring


def _token(stack, roles: dict[str, str] | None = None, admin: bool = False, basic: bool = False):
    """A new user's credentials: (name, token) for HTTP Basic, else the Bearer headers."""
    name, token = stack.user(roles, admin)
    return (name, token) if basic else {"Authorization": f"Bearer {token}"}


def test_helm_lists_pulls_and_verifies_charts_from_the_namespace_repository(charts, tmp_path):
    stack, c = charts
    user, token = _token(stack, {c["team"]: "reporter"}, basic=True)
    url = f"{stack.api}/helm/{c['team']}"

    index = helm.repo_index(url, username=user, password=token)  # Helm's own download and loader
    entries = index["entries"]
    assert sorted(entries) == ["db", "tool", "webapp"]
    assert [v["version"] for v in entries["webapp"]] == HELM_ORDER
    newest = entries["webapp"][0]
    archive = c["archives"]["webapp", "1.1.0"]
    assert newest["digest"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert newest["urls"] == ["charts/webapp-1.1.0.tgz"]
    assert newest["appVersion"] == "app-1.1.0" and newest["keywords"] == ["frontend", "http"]
    assert newest["description"] == "The web application" and newest["apiVersion"] == "v2"
    assert entries["tool"][0]["urls"] == ["sub/charts/tool-0.1.0.tgz"]  # its own namespace's URL

    for name, version in (("webapp", "1.1.0"), ("webapp", "1.1.0-rc.1"), ("tool", "0.1.0")):
        pulled = tmp_path / f"{name}-{version}"
        pulled.mkdir()
        helm.pull(name, repo_url=url, version=version, username=user, password=token, destination=pulled)
        [got] = pulled.iterdir()
        assert got.read_bytes() == c["archives"][name, version].read_bytes(), f"{name} {version} differs"

    # The provenance Helm pushed with tool is served beside its archive, and Helm verifies the pair.
    auth = (user, token)
    head = requests.head(f"{url}/charts/webapp-1.1.0.tgz", auth=auth, timeout=10)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == archive.stat().st_size
    assert head.headers["ETag"] == f'"sha256:{newest["digest"]}"'
    prov = requests.get(f"{url}/sub/charts/tool-0.1.0.tgz.prov", auth=auth, timeout=10)
    assert prov.status_code == 200, prov.text
    (tmp_path / "tool-0.1.0.tgz.prov").write_bytes(prov.content)
    pulled_tool = next((tmp_path / "tool-0.1.0").iterdir())
    helm.verify(pulled_tool, c["keyring"], provenance_file=tmp_path / "tool-0.1.0.tgz.prov")
    missing = requests.get(f"{url}/charts/webapp-1.1.0.tgz.prov", auth=auth, timeout=10)
    assert missing.status_code == 404 and missing.headers["Content-Type"] == "application/problem+json"

    # The namespace's own level only.
    own = requests.get(f"{url}/index.yaml", params={"recursive": "false"}, auth=auth, timeout=10)
    assert sorted(yaml.safe_load(own.content)["entries"]) == ["db", "webapp"]
    bad = requests.get(f"{url}/index.yaml", params={"recursive": "maybe"}, auth=auth, timeout=10)
    assert bad.status_code == 400 and "recursive" in bad.json()["errors"]


def test_the_index_is_gzipped_revalidated_and_the_same_bytes_until_the_namespace_changes(charts, tmp_path):
    stack, c = charts
    headers = _token(stack, {c["team"]: "developer"})
    url = f"{stack.api}/helm/{c['team']}/index.yaml"
    first = requests.get(url, headers=headers, timeout=10, stream=True)
    assert first.status_code == 200 and first.headers["Content-Encoding"] == "gzip"
    wire = first.raw.read()
    assert len(wire) < len(gzip.decompress(wire))
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert etag.startswith('W/"')

    assert requests.get(url, headers={**headers, "If-None-Match": etag}, timeout=10).status_code == 304
    # by the ETag alone: a date in whole seconds cannot tell two pushes in one second apart
    assert requests.get(url, headers={**headers, "If-Modified-Since": modified}, timeout=10).status_code == 200
    for refusal in ("identity", "gzip;q=0, identity", "*;q=0, identity"):
        plain = requests.get(url, headers={**headers, "Accept-Encoding": refusal}, timeout=10)
        assert plain.headers.get("Content-Encoding") is None and plain.content == gzip.decompress(wire), refusal
    assert requests.get(url, headers=headers, timeout=10).content == gzip.decompress(wire)  # deterministic

    helm_push(make_chart(tmp_path, "webapp", "1.2.0"), stack.registry, c["team"])
    # (a push can reach the catalog as more than one change: each changes the ETag)
    changed = wait_until(lambda: (r := requests.get(url, headers={**headers, "If-None-Match": etag}, timeout=10))
                         .status_code == 200 and "1.2.0" in r.text and r, what="the push in the index")
    assert changed.headers["ETag"] != etag
    assert [v["version"] for v in yaml.safe_load(changed.content)["entries"]["webapp"]] == ["1.2.0", *HELM_ORDER]


def test_each_caller_sees_only_their_charts_and_a_revoked_grant_applies_at_once(charts):
    stack, c = charts
    user, token = _token(stack, {c["team"]: "reporter"}, basic=True)
    reporter = (user, token)
    corp = f"{stack.api}/helm/{c['corp']}"

    # Another namespace's index and archives are absent for the reporter, and ask an anonymous caller to sign in.
    for path in (f"/helm/{c['other']}/index.yaml", f"/helm/{c['other']}/charts/secret-1.0.0.tgz"):
        hidden = requests.get(f"{stack.api}{path}", auth=reporter, timeout=10)
        assert hidden.status_code == 404 and hidden.headers["Content-Type"] == "application/problem+json", path
        anonymous = requests.get(f"{stack.api}{path}", timeout=10)
        assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic"), path
    assert requests.get(f"{stack.api}/helm/{c['other']}/index.yaml", headers=c["admin"], timeout=10).status_code == 200

    # One namespace, three callers, three visible sets: three indexes, and no ETag of one revalidates another's.
    seen = {}
    for who, kwargs in (("admin", {"headers": c["admin"]}), ("reporter", {"auth": reporter}), ("anonymous", {})):
        response = requests.get(f"{corp}/index.yaml", timeout=10, **kwargs)
        assert response.status_code == 200, (who, response.text)
        seen[who] = (response.headers["ETag"], sorted(yaml.safe_load(response.content)["entries"]))
    assert seen["admin"][1] == ["db", "pubchart", "secret", "tool", "webapp"]
    assert seen["reporter"][1] == ["db", "pubchart", "tool", "webapp"]
    assert seen["anonymous"][1] == ["pubchart"]
    assert len({etag for etag, _ in seen.values()}) == 3
    again = requests.get(f"{corp}/index.yaml", auth=reporter, headers={"If-None-Match": seen["admin"][0]}, timeout=10)
    assert again.status_code == 200 and "secret" not in yaml.safe_load(again.content)["entries"]

    with stack.db.transaction() as cur:
        accounts.revoke(cur, user, c["team"])
    assert requests.get(f"{stack.api}/helm/{c['team']}/index.yaml", auth=reporter, timeout=10).status_code == 404
    assert requests.get(f"{stack.api}/helm/{c['team']}/charts/webapp-1.0.0.tgz", auth=reporter,
                        timeout=10).status_code == 404
    after = requests.get(f"{corp}/index.yaml", auth=reporter, timeout=10)
    assert sorted(yaml.safe_load(after.content)["entries"]) == ["pubchart"]


@pytest.mark.parametrize("path", [
    "/helm/{team}/charts/..%2F..%2Fother%2Fcharts%2Fsecret-1.0.0.tgz",
    "/helm/{team}/charts/../../other/charts/secret-1.0.0.tgz",
    "/helm/{team}/charts/webapp-1.0.0.tgz%00.tgz",
    "/helm/{team}/charts/webapp-..%2F1.0.0.tgz",
    "/helm/{team}/charts/webapp-1.0.0.zip",
    "/helm/{team}/charts/webapp-9.9.9.tgz",
    "/helm/{team}/charts/.tgz",
    "/helm/{team}/charts/-1.0.0.tgz",
    "/helm/..%2F{team}/index.yaml",
    "/helm/{team}/../other/index.yaml",
    "/helm/CORP/index.yaml",
    "/helm/{team}%00/index.yaml",
    "/helm/{team}/charts/a" + "-1" * 120 + ".tgz",  # a hundred places a version could start: one statement
    "/helm/{team}/charts/a" + "-1" * 1500 + ".tgz",  # longer than any chart's file name
])
def test_path_tricks_get_a_problem_document(charts, path):
    """Sent as written (no client normalizes the dots away) by a reporter of the team, who may not see other/."""
    stack, c = charts
    user, token = _token(stack, {c["team"]: "reporter"}, basic=True)
    connection = http.client.HTTPConnection(stack.api.removeprefix("http://"), timeout=10)
    try:
        connection.request("GET", path.format(team=c["team"]),
                           headers={"Authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()})
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status == 404, (path, response.status, body[:200])
    assert response.getheader("Content-Type") == "application/problem+json"


def test_a_version_that_is_not_semver_is_not_listed(charts):
    stack, c = charts
    repository = f"{c['team']}/odd"
    push_chart(stack.registry.url, repository, "nightly", "nightly-build")  # a chart no Helm would push
    _tagged(stack, c["admin"], repository, "nightly")
    index = requests.get(f"{stack.api}/helm/{c['team']}/index.yaml", headers=c["admin"], timeout=10)
    assert "odd" not in yaml.safe_load(index.content)["entries"]
    file = requests.get(f"{stack.api}/helm/{c['team']}/charts/odd-nightly-build.tgz", headers=c["admin"], timeout=10)
    assert file.status_code == 404 and file.headers["Content-Type"] == "application/problem+json"


def test_a_chart_gone_from_the_registry_is_a_404_not_a_partial_download(charts, tmp_path):
    stack, c = charts
    repository = f"{c['team']}/gone"
    helm_push(make_chart(tmp_path, "gone", "1.0.0"), stack.registry, c["team"])
    tag = _tagged(stack, c["admin"], repository, "1.0.0")
    manifest = requests.get(f"{stack.api}/api/v1/repositories/{repository}/-/manifests/{tag['digest']}",
                            headers=c["admin"], timeout=10).json()
    [layer] = [l for l in manifest["layers"] if l["media_type"].endswith("chart.content.v1.tar+gzip")]
    # The blob goes, the manifest stays: the catalog still lists the version, the registry no longer has its archive.
    deleted = requests.delete(f"{stack.registry.url}/v2/{repository}/blobs/{layer['digest']}", timeout=10)
    assert deleted.status_code == 202, deleted.text
    response = requests.get(f"{stack.api}/helm/{c['team']}/charts/gone-1.0.0.tgz", headers=c["admin"], timeout=10)
    assert response.status_code == 404 and response.headers["Content-Type"] == "application/problem+json"
    assert "no longer has" in response.json()["detail"]
    assert requests.get(f"{stack.api}/healthz", timeout=10).status_code == 200


def test_helm_search_hub_finds_charts_by_keyword_as_far_as_the_caller_may_see(charts):
    stack, c = charts
    search = f"{stack.api}/api/chartsvc/v1/charts/search"
    # What helm search hub sends (internal/monocular/search.go): no credentials, q the keywords joined by spaces.
    anonymous = requests.get(search, params={"q": "anyone"}, headers={"User-Agent": "Helm/4.0.0"}, timeout=10)
    assert anonymous.status_code == 200
    [hit] = anonymous.json()["data"]
    # The fields Helm reads, as it reads them.
    assert hit["id"] == f"{c['public']}/pubchart"
    assert hit["artifactHub"]["packageUrl"] == f"{stack.api}/ui/charts/{c['public']}/pubchart/3.0.0"
    assert hit["attributes"]["description"] == "Anyone may see this"
    assert hit["attributes"]["repo"] == {"name": "pub", "url": f"{stack.api}/helm/{c['public']}"}
    assert hit["relationships"]["latestChartVersion"]["data"] == {"version": "3.0.0", "app_version": "1.16.0"}
    assert requests.get(search, params={"q": "postgres"}, timeout=10).json()["data"] == []  # private

    reporter = _token(stack, {c["team"]: "reporter"})
    found = requests.get(search, params={"q": "postgres database"}, headers=reporter, timeout=10).json()["data"]
    assert [h["id"] for h in found] == [f"{c['team']}/db"]
    webapp = requests.get(search, params={"q": "webapp"}, headers=reporter, timeout=10).json()["data"]
    assert webapp[0]["relationships"]["latestChartVersion"]["data"]["version"] in ("1.1.0", "1.2.0")
    assert "secret" not in {h["id"].rsplit("/", 1)[-1] for h in
                            requests.get(search, params={"q": ""}, headers=reporter, timeout=10).json()["data"]}


def _entry(db, **chart) -> dict:
    """What helm_index_entry (migrations/functions) writes of a chart row with these columns."""
    row = {"name": "webapp", "version": "1.2.3", "keywords": [], "sources": [], "maintainers": [], "dependencies": [],
           "annotations": {}, "deprecated": False, **chart}
    with db.transaction() as cur:
        cur.execute("SELECT helm_index_entry(jsonb_populate_record(NULL::helm_charts, %s::jsonb)) AS entry",
                    (json.dumps(row),))
        return json.loads(cur.fetchone()["entry"])


def test_an_entry_has_the_fields_helm_repo_index_writes_in_its_order_and_omits_empty_ones(db):
    entry = _entry(db, api_version="v2", app_version="1.16.0", description="Web app", home="", kube_version=">=1.25.0",
                   type="application", keywords=["web"], maintainers=[{"name": "Ops", "email": "o@x.y"}],
                   annotations={"category": "web"}, deprecated=True)
    assert entry == {"annotations": {"category": "web"}, "apiVersion": "v2", "appVersion": "1.16.0", "deprecated": True,
                     "description": "Web app", "keywords": ["web"], "kubeVersion": ">=1.25.0",
                     "maintainers": [{"email": "o@x.y", "name": "Ops"}], "name": "webapp", "type": "application",
                     "version": "1.2.3"}
    assert list(entry) == sorted(entry)


def test_maintainers_and_dependencies_keep_only_what_helm_decodes(db):
    """The indexer checks the top-level types; inside these maps anything can come, and one number where Helm wants
    a string, or (for Helm before 3.13) one key it does not know, would make it refuse the whole index."""
    entry = _entry(db, maintainers=[{"name": "Ops", "email": 5, "phone": "123"}, {"url": ["x"]}, {}],
                   dependencies=[{"name": "redis", "version": "17.x", "repository": "oci://r", "tags": ["a", 1],
                                  "enabled": "yes", "import-values": ["child"], "alias": 3, "extra": {"x": 1}},
                                 {"name": "db", "enabled": True, "condition": "db.enabled"}])
    assert entry["maintainers"] == [{"name": "Ops"}]
    assert entry["dependencies"] == [
        {"name": "redis", "version": "17.x", "repository": "oci://r", "tags": ["a"], "import-values": ["child"]},
        {"condition": "db.enabled", "enabled": True, "name": "db"}]
    assert "maintainers" not in _entry(db, maintainers=[{"phone": "1"}])


def test_a_top_level_namespace_called_charts_has_its_repository_too(charts, tmp_path):
    """/helm/charts/index.yaml could be read as the file index.yaml among the top level's archives."""
    stack, c = charts
    archive = make_chart(tmp_path, "toplevel", "1.0.0")
    helm_push(archive, stack.registry, "charts")
    _tagged(stack, c["admin"], "charts/toplevel", "1.0.0")
    index = requests.get(f"{stack.api}/helm/charts/index.yaml", headers=c["admin"], timeout=10)
    assert index.status_code == 200, index.text
    [entry] = yaml.safe_load(index.content)["entries"]["toplevel"]
    assert entry["urls"] == ["charts/toplevel-1.0.0.tgz"]
    file = requests.get(f"{stack.api}/helm/charts/{entry['urls'][0]}", headers=c["admin"], timeout=10)
    assert file.status_code == 200 and file.content == archive.read_bytes()
