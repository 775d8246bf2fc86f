"""Sign-in with a real OpenID Connect provider (harness.oidc: panva's oidc-provider on Node.js), against a running
``ocicat serve``: sessions, CSRF, personal tokens, roles from groups and their loss at the next check, and every
forgery of the ID token and the flow refused. The GitLab-shaped permissions are in test_permissions's table."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from playwright.sync_api import expect

from harness.oci import push_chart
from harness.oidc import CLIENT_ID, CLIENT_SECRET, Provider, interact, sign_in, start_sign_in
from harness.processes import OCICAT, REPO_ROOT, free_port, wait_until
from ocicat import accounts
from ocicat.config import Config
from ocicat.sign_in import CHECK_LEASE, IdentityProvider

from .stack import start_stack, stop_stack

RUN = uuid.uuid4().hex[:6]
TEAM, OTHER = f"idteam{RUN}", f"idother{RUN}"
CHART, SECRET = f"{TEAM}/charts/site", f"{OTHER}/charts/vault"
# Generic provider (not GitLab): the administrator's rules map groups to roles.
RULES = [
    {"match": f"{TEAM}-readers", "path": TEAM, "role": "reporter"},
    {"match": "(?P<team>[a-z0-9]+)-developers", "path": "{team}", "role": "developer"},
    {"match": "ocicat-admins", "role": "admin"},
]
STALE = 6  # seconds the provider's roles count after its last answer (OCICAT_OIDC_STALE_SECONDS)
USERS = {
    "rita": {"preferred_username": "rita", "groups": [f"{TEAM}-readers"]},
    "dev": {"preferred_username": "dev", "groups": [f"{TEAM}-developers"]},
    "nobody": {"preferred_username": "nobody", "groups": ["unrelated"]},
    "boss": {"preferred_username": "boss", "groups": ["ocicat-admins"]},
}


@pytest.fixture(scope="module")
def signed(make_database, tmp_path_factory):
    logs = tmp_path_factory.mktemp("sign-in")
    port, fallback_port = free_port(), free_port()
    provider = Provider(USERS, [f"http://127.0.0.1:{p}/auth/callback" for p in (port, fallback_port)],
                        logs / "provider.log").start()
    provider.fallback_port = fallback_port  # a second API process, GitLab's fallback rule (test_the_fallback_rule...)
    stack = None
    try:
        stack = start_stack(make_database, logs, port=port, OCICAT_DEFAULT_VISIBILITY="private",
                            OCICAT_OIDC_ISSUER=provider.issuer, OCICAT_OIDC_CLIENT_ID=CLIENT_ID,
                            OCICAT_OIDC_CLIENT_SECRET=CLIENT_SECRET, OCICAT_OIDC_NAME="Test IdP",
                            OCICAT_OIDC_SCOPES="openid profile email groups", OCICAT_OIDC_ROLE_RULES=json.dumps(RULES),
                            OCICAT_OIDC_REFRESH_SECONDS="1", OCICAT_OIDC_STALE_SECONDS=str(STALE),
                            OCICAT_SECRET_KEY="test-" + uuid.uuid4().hex)
        digests = {name: push_chart(stack.registry.url, name, "1.0.0", "1.0.0") for name in (CHART, SECRET)}
        _, admin_token = stack.user(admin=True)
        wait_until(lambda: {r["name"] for r in stack.get("/api/v1/repositories", {"Authorization": f"Bearer {admin_token}"}
                                                         ).json()["items"]} >= {CHART, SECRET}, what="the charts")
        yield stack, provider, digests
    finally:
        if stack is not None:
            stop_stack(stack)
        provider.stop()


def _names(session: requests.Session, api: str) -> set[str]:
    response = session.get(f"{api}/api/v1/repositories", params={"limit": 500}, timeout=10)
    assert response.status_code == 200, response.text
    return {r["name"] for r in response.json()["items"]}


def test_groups_give_the_roles_the_rules_say(signed):
    stack, _, _ = signed
    assert _names(sign_in(stack.api, "rita"), stack.api) == {CHART}
    assert _names(sign_in(stack.api, "nobody"), stack.api) == set()
    boss = sign_in(stack.api, "boss")
    assert _names(boss, stack.api) >= {CHART, SECRET}
    assert boss.get(f"{stack.api}/api/v1/me", timeout=10).json()["admin"] is True
    me = sign_in(stack.api, "dev").get(f"{stack.api}/api/v1/me", timeout=10).json()
    assert me["user"] == "dev" and me["admin"] is False and me["session"] is True


def test_users_are_told_apart_by_the_provider_never_by_the_name_they_choose_there(signed):
    """A name taken by a local user (here an administrator) is not theirs to sign in as: the new user gets the name
    with a random suffix, and none of the local user's roles; an email address counts as a name only verified."""
    stack, provider, _ = signed
    local = f"admin{RUN}"
    with stack.db.transaction() as cur:
        accounts.create_user(cur, local, admin=True)
    provider.set_user("impostor", {"preferred_username": local, "groups": []})
    me = sign_in(stack.api, "impostor").get(f"{stack.api}/api/v1/me", timeout=10).json()
    assert re.fullmatch(rf"{local}-[0-9a-f]{{10}}", me["user"]) and me["admin"] is False, me
    granted = subprocess.run([*OCICAT, "grant", me["user"], TEAM, "reporter"], env=stack.env, cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=60)
    assert granted.returncode == 0 and f"made by signing in with {provider.issuer}" in granted.stderr, granted
    provider.set_user("mailer", {"email": local, "email_verified": False})
    assert sign_in(stack.api, "mailer").get(f"{stack.api}/api/v1/me", timeout=10).json()["user"] == "mailer"
    provider.set_user("verified", {"email": f"v{RUN}@example.com", "email_verified": True})
    assert sign_in(stack.api, "verified").get(f"{stack.api}/api/v1/me", timeout=10).json()["user"] == f"v{RUN}@example.com"


def test_losing_a_group_at_the_provider_loses_access_at_the_next_check(signed):
    """Checks are due every second here (OCICAT_OIDC_REFRESH_SECONDS=1): the refresh token is used, userinfo read
    again, and the rules applied to what it says now; the user's own API token follows too."""
    stack, provider, _ = signed
    provider.set_user("rita2", {"preferred_username": "rita2", "groups": [f"{TEAM}-readers"]})
    browser = sign_in(stack.api, "rita2")
    token = browser.post(f"{stack.api}/api/v1/me/tokens", json={"name": "ci"}, timeout=10).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert _names(browser, stack.api) == {CHART}
    assert stack.get(f"/api/v1/repositories/{CHART}", bearer).status_code == 200

    provider.set_user("rita2", {"preferred_username": "rita2", "groups": []})
    time.sleep(1.1)
    assert _names(browser, stack.api) == set()
    assert stack.get(f"/api/v1/repositories/{CHART}", bearer).status_code == 404

    provider.set_user("rita2", {"preferred_username": "rita2", "groups": [f"{TEAM}-readers"]})
    time.sleep(1.1)
    assert stack.get(f"/api/v1/repositories/{CHART}", bearer).status_code == 200
    assert _names(browser, stack.api) == {CHART}


def test_a_check_holds_a_lease_and_a_sign_in_while_it_asks_has_the_last_word(signed):
    """The check runs here, in the test's process, as a second API process would; while it asks the provider, no
    other check may start, and the user signs in anew with fewer groups: the check's older answer is dropped."""
    stack, provider, _ = signed
    provider.set_user("lease", {"preferred_username": f"lease{RUN}", "groups": [f"{TEAM}-developers"]})
    sign_in(stack.api, "lease")
    with stack.db.transaction() as cur:
        user = accounts.user_id(cur, f"lease{RUN}")
        cur.execute("UPDATE sign_ins SET asked_at = now() - interval '1 hour' WHERE user_id = %s", (user,))
    checker = IdentityProvider(Config.from_env(stack.env).oidc, stack.env["OCICAT_SECRET_KEY"])
    asked = checker.answer
    seen = {}

    def answer_while_signing_in(access_token):
        answer = asked(access_token)  # the developers group, as the provider said when asked
        with stack.db.transaction() as cur:  # leased: nobody else checks meanwhile, due or not
            seen["claimed"] = accounts.claim_check(cur, user, timedelta(0), CHECK_LEASE)
        provider.set_user("lease", {"preferred_username": f"lease{RUN}", "groups": []})
        seen["me"] = sign_in(stack.api, "lease").get(f"{stack.api}/api/v1/me", timeout=10).json()
        return answer

    checker.answer = answer_while_signing_in
    checker.recheck(stack.db, user)
    assert seen["claimed"] is None and seen["me"]["user"] == f"lease{RUN}"
    with stack.db.transaction() as cur:
        assert accounts.grants(cur, user) == {}  # the sign-in's answer stands
        cur.execute("SELECT checking_until FROM sign_ins WHERE user_id = %s", (user,))
        assert cur.fetchone()["checking_until"] is None  # and the lease is over


def test_a_state_changing_request_with_the_cookie_needs_the_csrf_token(signed):
    stack, _, digests = signed
    browser = sign_in(stack.api, "dev")
    csrf = browser.headers.pop("X-CSRF-Token")
    for headers in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": ""}):
        made = browser.post(f"{stack.api}/api/v1/me/tokens", json={"name": "x"}, headers=headers, timeout=10)
        assert made.status_code == 403 and "CSRF" in made.json()["detail"], made.text
        deleted = browser.delete(f"{stack.api}/api/v1/repositories/{CHART}/-/manifests/{digests[CHART]}",
                                 headers=headers, timeout=10)
        assert deleted.status_code == 403, deleted.text
        assert browser.post(f"{stack.api}/auth/sign-out", headers=headers, timeout=10).status_code == 403
    assert browser.get(f"{stack.api}/api/v1/me", timeout=10).json()["user"] == "dev"  # reads need none
    made = browser.post(f"{stack.api}/api/v1/me/tokens", json={"name": "x"}, headers={"X-CSRF-Token": csrf}, timeout=10)
    assert made.status_code == 201, made.text


def test_personal_tokens_made_listed_used_and_revoked(signed):
    stack, _, _ = signed
    browser = sign_in(stack.api, "rita")
    made = browser.post(f"{stack.api}/api/v1/me/tokens", json={"name": "laptop", "expires_in_days": 7}, timeout=10)
    assert made.status_code == 201, made.text
    token = made.json()
    expires = datetime.fromisoformat(token["expires_at"])
    assert timedelta(days=6, hours=23) < expires - datetime.now(timezone.utc) <= timedelta(days=7)
    bearer = {"Authorization": f"Bearer {token['token']}"}
    assert stack.get("/api/v1/me", bearer).json()["user"] == "rita"
    assert stack.get(f"/api/v1/repositories/{CHART}", bearer).status_code == 200
    listed = stack.get("/api/v1/me/tokens", bearer).json()["items"]
    assert [(t["id"], t["name"]) for t in listed][:1] == [(token["id"], "laptop")] and "token" not in listed[0]

    # a token cannot make tokens (a leaked one could outlive itself), nor can anyone without a session
    refused = requests.post(f"{stack.api}/api/v1/me/tokens", json={"name": "child"}, headers=bearer, timeout=10)
    assert refused.status_code == 403, refused.text
    assert requests.post(f"{stack.api}/api/v1/me/tokens", json={"name": "x"}, timeout=10).status_code == 401
    for bad in ({"name": ""}, {"name": "x", "expires_in_days": 0}, {"name": "x", "expires_in_days": 366},
                {"name": "a\nb"}, {"name": "x", "admin": True}, []):
        assert browser.post(f"{stack.api}/api/v1/me/tokens", json=bad, timeout=10).status_code == 400, bad

    # someone else's token is not there to revoke
    other = sign_in(stack.api, "nobody")
    assert other.delete(f"{stack.api}/api/v1/me/tokens/{token['id']}", timeout=10).status_code == 404
    assert browser.delete(f"{stack.api}/api/v1/me/tokens/{token['id']}", timeout=10).status_code == 204
    assert stack.get("/api/v1/me", bearer).status_code == 401
    assert browser.get(f"{stack.api}/api/v1/me/tokens", timeout=10).json()["items"][0]["revoked_at"]


def test_the_gitlab_fallback_rule_makes_every_member_of_a_group_a_reporter(signed, make_database, tmp_path):
    """OCICAT_OIDC_GITLAB_REPORTERS=groups, for installations whose application has no read_api scope: every group
    of the groups claim gives Reporter (Guests too, as documented); the role claims still give Developer and up."""
    stack, provider, digests = signed
    provider.set_user("gl-guest", {"groups": [TEAM]})
    provider.set_user("gl-dev", {"groups": [OTHER], "https://gitlab.org/claims/groups/developer": [OTHER]})
    fallback = start_stack(make_database, tmp_path, command="api", port=provider.fallback_port,
                           OCICAT_DATABASE_URL=stack.env["OCICAT_DATABASE_URL"], OCICAT_DEFAULT_VISIBILITY="private",
                           OCICAT_OIDC_ISSUER=provider.issuer, OCICAT_OIDC_CLIENT_ID=CLIENT_ID,
                           OCICAT_OIDC_CLIENT_SECRET=CLIENT_SECRET, OCICAT_OIDC_GITLAB="true",
                           OCICAT_OIDC_GITLAB_REPORTERS="groups", OCICAT_OIDC_SCOPES="openid groups",
                           OCICAT_SECRET_KEY="test-" + uuid.uuid4().hex)
    try:
        assert _names(sign_in(fallback.api, "gl-guest"), fallback.api) == {CHART}
        developer = sign_in(fallback.api, "gl-dev")
        assert _names(developer, fallback.api) == {SECRET}
        refused = developer.delete(f"{fallback.api}/api/v1/repositories/{CHART}/-/manifests/{digests[CHART]}",
                                   timeout=10)
        assert refused.status_code == 404, refused.text  # not even visible
        guest = sign_in(fallback.api, "gl-guest")
        refused = guest.delete(f"{fallback.api}/api/v1/repositories/{CHART}/-/manifests/{digests[CHART]}", timeout=10)
        assert refused.status_code == 403, refused.text  # a reporter views, never deletes
    finally:
        stop_stack(fallback)


def test_sign_out_ends_the_session_here_and_offers_the_providers_logout(signed):
    stack, provider, _ = signed
    browser = sign_in(stack.api, "rita")
    cookie = browser.cookies["ocicat_session"]
    answer = browser.post(f"{stack.api}/auth/sign-out", timeout=10)
    assert answer.status_code == 200, answer.text
    logout = answer.json()["provider_logout"]
    assert logout.startswith(f"{provider.issuer}/session/end?") and "id_token_hint=" in logout
    assert "ocicat_session" not in browser.cookies
    again = requests.get(f"{stack.api}/api/v1/me", cookies={"ocicat_session": cookie}, timeout=10)
    assert again.status_code == 401 and "sign in again" in again.json()["detail"]


def _refused(session: requests.Session, callback: str) -> None:
    """The callback sends the browser back to the sign-in page with the reason, and no session was made."""
    back = session.get(callback, allow_redirects=False, timeout=10)
    assert back.status_code == 303 and back.headers["Location"] == "/ui/sign-in?failed=unverified", (
        back.status_code, back.headers)
    assert "ocicat_session" not in session.cookies


def _nonce(authorize_url: str) -> str:
    return dict(p.split("=", 1) for p in authorize_url.split("?", 1)[1].split("&"))["nonce"]


def _forged(claims: dict, key=None, kid: str | None = None, algorithm: str = "RS256") -> str:
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid} if kid else None)


def test_forged_replayed_and_misdirected_id_tokens_are_refused(signed):
    stack, provider, _ = signed
    callback = f"{stack.api}/auth/callback"
    [kid] = provider.kids()
    sign_in(stack.api, "rita")
    replayed = provider.last_id_token()  # a genuine ID token of an earlier sign-in: its nonce was another's
    now = int(time.time())

    def claims(**changes) -> dict:
        return {"iss": provider.issuer, "aud": CLIENT_ID, "sub": "boss", "iat": now, "exp": now + 300, **changes}

    none_header = base64.urlsafe_b64encode(b'{"alg":"none","kid":"%s"}' % kid.encode()).rstrip(b"=").decode()
    # each case, and the reason the log gives for refusing it
    cases = {
        "replayed": (lambda nonce: replayed, "'nonce'"),
        "signed by another key": (lambda nonce: _forged(claims(nonce=nonce), kid=kid), "BadSignatureError"),
        "unsigned": (lambda nonce: none_header + "." + base64.urlsafe_b64encode(
            json.dumps(claims(nonce=nonce)).encode()).rstrip(b"=").decode() + ".", "'none' is not allowed"),
        # aud is "other" and no azp names ocicat: Authlib refuses it as not meant for this client
        "for another client": (lambda nonce: provider.other_client_id_token("boss", nonce), "'azp'"),
    }
    for case, (id_token, reason) in cases.items():
        session, url = start_sign_in(stack.api)
        provider.tamper(id_token(_nonce(url)))
        _refused(session, interact(session, url, "boss", callback))
        refusals = [line for line in stack.server.output().splitlines() if "sign-in refused" in line]
        assert reason in refusals[-1], (case, refusals[-1])


def test_a_state_mismatch_and_a_replayed_callback_are_refused(signed):
    stack, _, _ = signed
    callback = f"{stack.api}/auth/callback"
    session, url = start_sign_in(stack.api)
    answer = interact(session, url, "boss", callback)
    _refused(session, answer.replace("state=", "state=x"))

    # a callback from a sign-in this browser did not start (login CSRF): its state is not this browser's
    victim, url = start_sign_in(stack.api)
    attacker_answer = interact(requests.Session(), start_sign_in(stack.api)[1], "boss", callback)
    _refused(victim, attacker_answer)

    # the same callback twice: the state was used up the first time
    session, url = start_sign_in(stack.api)
    answer = interact(session, url, "boss", callback)
    [state_cookie] = [c.value for c in session.cookies if c.name == "ocicat_sign_in"]
    assert session.get(answer, allow_redirects=False, timeout=10).headers["Location"] == "/ui/"
    replay = requests.Session()  # even with the state cookie as it was before the first use
    replay.cookies.set("ocicat_sign_in", state_cookie)
    _refused(replay, answer)


@pytest.fixture(scope="module")
def stack(signed):
    """The signed-in catalog, for the browser fixtures (tests/integration/pages.py)."""
    return signed[0]


def test_sign_in_make_a_token_and_sign_out_in_a_real_browser(open_page, stack):
    page, watch = open_page("/ui/sign-in?failed=<b>Call+evil.example+now</b>")  # only the page's own words are shown
    expect(page.get_by_role("alert")).to_have_text("The sign-in failed. Please try again.")
    page.goto(f"{stack.api}/ui/sign-in?failed=provider")
    expect(page.get_by_role("alert")).to_have_text(
        "The identity provider could not be asked who you are. Please try again later.")
    page.get_by_role("link", name="Sign in with Test IdP").click()
    page.locator("input[name=login]").fill("rita")  # the provider's own login page
    page.locator("input[name=password]").fill("any")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()  # its consent page
    expect(page.locator("#session")).to_contain_text("Signed in as rita")
    watch.errors.clear()  # the provider's pages ask for web fonts, refused offline; ocicat's pages from here on
    expect(page.get_by_role("link", name="site")).to_be_visible()  # TEAM's chart, from the readers group
    expect(page.get_by_text(OTHER)).to_have_count(0)

    page.get_by_role("link", name="Tokens").click()
    expect(page.get_by_role("heading", name="Your API tokens")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("helm on my laptop")
    page.get_by_label("Expires in (days)").fill("3")
    page.get_by_role("button", name="Make a token").click()
    made = page.locator("code.new-token")
    expect(made).to_have_text(re.compile(r"^ocicat_\d+_"))
    bearer = {"Authorization": f"Bearer {made.text_content()}"}
    assert stack.get(f"/api/v1/repositories/{CHART}", bearer).status_code == 200
    row = page.locator("table.tokens tbody tr").filter(has_text="helm on my laptop")
    expect(row).to_contain_text("active")
    row.get_by_role("button", name="Revoke").click()
    expect(row).to_contain_text("revoked")
    assert stack.get("/api/v1/me", bearer).status_code == 401
    watch.assert_quiet()

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name=re.compile("Yes, sign me out", re.I)).click()  # the provider's logout page
    expect(page.locator("#session")).to_have_text("Sign in")
    assert page.url.startswith(f"{stack.api}/ui/")


def _may_view(stack, user: str, repository: str) -> bool:
    """What deliveries of catalog events ask (indexer.delivery), without any request of the user's."""
    with stack.db.transaction() as cur:
        cur.execute("SELECT user_may_view(id, %s, false) AS may FROM users WHERE name = %s", (repository, user))
        return cur.fetchone()["may"]


def test_a_provider_that_is_down_keeps_roles_for_a_while_and_one_that_forgot_the_user_ends_the_session(signed):
    """Last in this module: it restarts the provider, which forgets every grant it made (its store is in memory) and
    signs with a new key from then on (ocicat must fetch the provider's keys again: key rotation)."""
    stack, provider, _ = signed
    browser = sign_in(stack.api, "rita")
    token = browser.post(f"{stack.api}/api/v1/me/tokens", json={"name": "ci"}, timeout=10).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    old_keys = provider.kids()
    provider.stop()
    signed_at, logged = time.monotonic(), len(stack.server.output().splitlines())
    time.sleep(1.1)
    assert _names(browser, stack.api) == {CHART}  # could not be asked: the roles held stand for now
    assert any("cannot ask the provider" in line for line in stack.server.output().splitlines()[logged:])
    assert _may_view(stack, "rita", CHART)

    # STALE seconds after the last answer they lapse, for deliveries (no request at all) and requests alike
    time.sleep(max(0.0, STALE + 0.5 - (time.monotonic() - signed_at)))
    assert not _may_view(stack, "rita", CHART)
    assert _names(browser, stack.api) == set()
    assert stack.get(f"/api/v1/repositories/{CHART}", bearer).status_code == 404
    provider.start()
    time.sleep(1.1)
    assert stack.get(f"/api/v1/repositories/{CHART}", bearer).status_code == 404  # its refresh token is refused
    assert "no longer vouches" in stack.server.output()
    assert browser.get(f"{stack.api}/api/v1/me", timeout=10).status_code == 401  # and the session is over
    assert provider.kids().isdisjoint(old_keys)
    assert _names(sign_in(stack.api, "rita"), stack.api) == {CHART}  # until the next sign-in, under the new key
