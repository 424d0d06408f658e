"""End-to-end tests of the oauth-gateway (issue 4) on real PostgreSQL, RabbitMQ
and the Google stand-in: the connect flow through the stand-in's consent page
(form and auto-approve) to the callback, state and scope refusals, disconnect,
status, JWT authentication, the meetings API with the scheduler behind it,
input limits and errors, metrics, and that no secret reaches the log.

Each test starts its own gateway with GOOGLE_REDIRECT_URI pointing at that
gateway, so the stand-in sends the browser back to it.
"""

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import socket
import threading
import time
import urllib.parse
import uuid
from html.parser import HTMLParser

import jsonschema
import pytest
import requests

from harness import JWT_SECRET, broker_user, free_port, jwt, unseal, wait_for

CALENDAR = "https://www.googleapis.com/auth/calendar.events"
EMAIL = "https://www.googleapis.com/auth/userinfo.email"
FREEBUSY = "https://www.googleapis.com/auth/calendar.freebusy"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# Helpers


class Gateway:
    """One oauth-gateway whose redirect URI is its own callback."""

    def __init__(self, stack, wait_ready=True, **env):
        addr = f"127.0.0.1:{free_port()}"
        env.setdefault("GOOGLE_REDIRECT_URI", f"http://{addr}/api/integrations/google/callback")
        self.stack = stack
        self.url = "http://" + addr
        self.svc = stack.service("oauth-gateway", start=False, LISTEN_ADDR=addr, **env)
        self.svc.start(wait_ready=wait_ready)
        if not wait_ready:
            wait_for(lambda: get_ok(self.url + "/healthz"), 20, what="gateway listening")
        self.frontend = self.svc.env["FRONTEND_URL"]
        # The browser that starts connects: it keeps the cookie /auth sets, which the callback needs.
        self.browser = requests.Session()

    def call(self, method, path, user=None, token=None, headers=None, session=None, **kw):
        h = dict(headers or {})
        if user is not None:
            h["Authorization"] = "Bearer " + jwt(user)
        if token is not None:
            h["Authorization"] = "Bearer " + token
        return (session or requests).request(method, self.url + path, headers=h, allow_redirects=False, timeout=30,
                                             **kw)

    def get(self, path, user=None, **kw):
        return self.call("GET", path, user, **kw)

    def auth_url(self, user):
        r = self.get("/api/integrations/google/auth", user, headers={"Accept": "application/json"},
                     session=self.browser)
        assert r.status_code == 200, r.text
        return r.json()["authUrl"]

    def finish(self, callback, **kw):
        """Google's redirect back, followed by the browser that started the connect."""
        return self.browser.get(callback, allow_redirects=False, timeout=30, **kw)


def get_ok(url):
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False

class ConsentForm(HTMLParser):
    """The stand-in's consent page: its form fields, as a browser would submit them."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.fields = []
        self.scopes = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.action = a.get("action")
        elif tag == "input" and a.get("type") == "checkbox":
            if "checked" in a:
                self.scopes.append(a["value"])
        elif tag == "input" and a.get("name"):
            self.fields.append((a["name"], a.get("value") or ""))


def consent(stack, auth_url, email, decision="allow", untick=()):
    """Open Google's page and answer its form like a browser; returns the redirect back to us."""
    page = requests.get(auth_url, allow_redirects=False, timeout=10)
    if page.status_code == 302:
        return page.headers["Location"]
    assert page.status_code == 200, page.text
    form = ConsentForm()
    form.feed(page.text)
    fields = [(k, email if k == "email" else v) for k, v in form.fields]
    fields += [("granted_scope", s) for s in form.scopes if s not in untick]
    fields.append(("decision", decision))
    r = requests.post(stack.standin.url + form.action, data=fields, allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text
    return r.headers["Location"]


def frontend_result(gw, r):
    """The query the callback's redirect hands the frontend."""
    assert r.status_code == 302, r.text
    loc = r.headers["Location"]
    assert loc.startswith(gw.frontend + "?"), loc
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))


def connect(gw, user, email, **kw):
    """The whole flow for user as the Google account email; returns (frontend query, callback URL)."""
    callback = consent(gw.stack, gw.auth_url(user), email, **kw)
    assert callback.startswith(gw.url + "/api/integrations/google/callback?"), callback
    return frontend_result(gw, gw.finish(callback)), callback


def status(gw, user):
    r = gw.get("/api/integrations/google/status", user)
    assert r.status_code == 200, r.text
    return r.json()


def user_row(s, user):
    return s.one("SELECT google_access_token, google_refresh_token, google_calendar_connected, google_email,"
                 " google_calendar_id, google_calendar_timezone, google_scopes, google_connected_at,"
                 " google_disconnected_at, google_disconnect_reason, google_disconnect_notified_at,"
                 " google_token_expiry - now() FROM users WHERE id = %s", user)


def token_grant(s, fields):
    return requests.post(s.standin.url + "/token", timeout=10, data=dict(
        fields, client_id="standin-client-id", client_secret="standin-client-secret"))


def assert_error(r, status, code=None, mentions=None):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    err = r.json()["error"]
    assert set(err) == {"code", "message"} and err["message"], err
    if code is not None:
        assert err["code"] == code, err
    if mentions is not None:
        assert mentions in err["message"], err
    return err


def s256(verifier):
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def add_meeting(s, user, lead=None, hours=24, status="scheduled", title="Demo", minutes=30):
    """A meeting row as the scheduler writes it, starting hours from now."""
    mid = str(uuid.uuid4())
    s.query("INSERT INTO calendar_meetings (id, user_id, lead_analytics_id, google_event_id, google_calendar_id,"
            " meeting_title, attendee_email, meeting_start_time, meeting_end_time, timezone, status)"
            " VALUES (%s, %s, %s, %s, 'primary', %s, 'lead@example.com', now() + make_interval(hours => %s),"
            " now() + make_interval(hours => %s, mins => %s), 'Asia/Kolkata', %s)",
            mid, user, lead, "ev" + uuid.uuid4().hex, title, hours, hours, minutes, status)
    return mid


def connected_user(s):
    user = s.add_user()
    email = f"g-{user[:8]}@example.com"
    s.connect_calendar(user, email)
    return user, email


# The connect flow


def scheduler_down(s):
    """A scheduler ran once on this vhost (it declares and binds scheduler.commands; the gateway's broker user may
    only declare the exchange) and is stopped: commands wait in their queue."""
    s.service("scheduler-worker").stop()


def test_connect_through_the_consent_form(stack):
    s = stack()
    gw = Gateway(s)
    user = s.add_user()
    assert status(gw, user) == {"connected": False, "email": None}

    auth_url = gw.auth_url(user)
    parts = urllib.parse.urlsplit(auth_url)
    q = dict(urllib.parse.parse_qsl(parts.query))
    assert auth_url.startswith(s.standin.url + "/o/oauth2/v2/auth?")
    assert q["client_id"] == "standin-client-id"
    assert q["redirect_uri"] == gw.url + "/api/integrations/google/callback"
    assert q["response_type"] == "code"
    assert q["scope"] == CALENDAR + " " + FREEBUSY + " " + EMAIL
    assert (q["access_type"], q["prompt"], q["include_granted_scopes"]) == ("offline", "consent", "true")
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43
    assert len(q["state"]) == 43 and set(q["state"]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                           "0123456789-_")

    # Only the state's hash is stored, with the PKCE verifier sealed for the user.
    state_hash, sealed_verifier, expires = s.one("SELECT state_hash, code_verifier, expires_at - now()"
                                                 " FROM oauth_states WHERE user_id = %s", user)
    assert bytes(state_hash) == hashlib.sha256(q["state"].encode()).digest()
    assert 9 * 60 < expires.total_seconds() <= 10 * 60
    verifier = unseal(sealed_verifier, user)
    assert s256(verifier) == q["code_challenge"]

    callback = consent(s, auth_url, "Alice.Google@example.com")
    result = frontend_result(gw, gw.finish(callback))
    assert result == {"google": "connected"}
    assert status(gw, user) == {"connected": True, "email": "alice.google@example.com"}

    (access, refresh, connected, gmail, cal_id, zone, scopes, connected_at, disconnected_at, reason, notified,
     ttl) = user_row(s, user)
    assert connected and gmail == "alice.google@example.com" and cal_id == "primary"
    assert zone == "Asia/Kolkata", "the calendar's zone as Google reported it"
    assert CALENDAR in scopes.split() and EMAIL in scopes.split()
    assert connected_at is not None and disconnected_at is None and reason is None and notified is None
    assert 3000 < ttl.total_seconds() <= 3600
    # Sealed, bound to the user, and exactly what Google issued (PyNaCl opens them: an independent implementation).
    assert access.startswith("v1:") and refresh.startswith("v1:")
    plain_access, plain_refresh = unseal(access, user), unseal(refresh, user)
    assert plain_access not in access and plain_refresh not in refresh
    with pytest.raises(Exception):
        unseal(access, str(uuid.uuid4()))
    me = requests.get(s.standin.url + "/oauth2/v2/userinfo", headers={"Authorization": "Bearer " + plain_access},
                      timeout=10)
    assert me.status_code == 200 and me.json()["email"] == "alice.google@example.com"
    refreshed = token_grant(s, {"grant_type": "refresh_token", "refresh_token": plain_refresh})
    assert refreshed.status_code == 200, refreshed.text

    # The state is spent; the callback's URL carries secrets that must not reach the log.
    assert s.one("SELECT used_at IS NOT NULL FROM oauth_states WHERE user_id = %s", user) == (True,)
    code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback).query))["code"]
    token = jwt(user)
    assert gw.call("GET", "/api/integrations/google/status", token=token).status_code == 200
    logs = gw.svc.logs()
    for secret in (q["state"], code, verifier, plain_access, plain_refresh, token, token.split(".")[2], JWT_SECRET,
                   sealed_verifier, access, refresh):
        assert secret not in logs


def test_connect_by_browser_navigation_with_auto_approve(stack):
    s = stack()
    s.start_standin(auto_approve=True, email="auto@example.com")
    gw = Gateway(s)
    user = s.add_user()
    # A plain navigation: no Accept: application/json and no header, only the session cookie.
    r = gw.get("/api/integrations/google/auth", headers={"Cookie": "theme=dark; token=" + jwt(user)},
               session=gw.browser)
    assert r.status_code == 302
    assert r.headers["Location"].startswith(s.standin.url + "/o/oauth2/v2/auth?")
    assert r.headers["Cache-Control"] == "no-store"
    callback = consent(s, r.headers["Location"], "ignored@example.com")
    assert frontend_result(gw, gw.finish(callback)) == {"google": "connected"}
    assert status(gw, user) == {"connected": True, "email": "auto@example.com"}

    # The cookie only serves /auth, under the configured name, and a token in the URL never counts.
    assert_error(gw.get("/api/integrations/google/status", headers={"Cookie": "token=" + jwt(user)}), 401)
    assert_error(gw.get("/api/integrations/google/auth", headers={"Cookie": "session=" + jwt(user)}), 401)
    assert_error(gw.get("/api/integrations/google/auth?token=" + jwt(user)), 401)
    assert_error(gw.get("/api/integrations/google/auth?access_token=" + jwt(user)), 401)


def test_auth_redirects_unless_json_is_asked_for(stack):
    s = stack()
    gw = Gateway(s, FRONTEND_URL="http://127.0.0.1:3000/app?tab=integrations#calendar")
    user = s.add_user()
    r = gw.get("/api/integrations/google/auth", user)
    assert r.status_code == 302 and r.headers["Location"].startswith(s.standin.url + "/o/oauth2/v2/auth?")
    r = gw.get("/api/integrations/google/auth", user, headers={"Accept": "text/html, application/json;q=0.9"})
    assert r.status_code == 200 and r.json()["authUrl"].startswith(s.standin.url)
    # Each call is a new single-use state.
    assert s.one("SELECT count(*) FROM oauth_states WHERE user_id = %s", user) == (2,)
    # A FRONTEND_URL with a query and a fragment keeps both.
    r = gw.get("/api/integrations/google/callback?state=nope&code=x")
    assert r.headers["Location"] == ("http://127.0.0.1:3000/app?tab=integrations&google=error&reason=invalid_state"
                                     "#calendar")
    assert r.headers["Referrer-Policy"] == "no-referrer"


def test_reused_forged_and_expired_states_are_refused(stack):
    s = stack()
    gw = Gateway(s)
    user = s.add_user()
    result, callback = connect(gw, user, "first@example.com")
    assert result == {"google": "connected"}
    # The same callback again (a replay, or a double click): the state is spent.
    again = frontend_result(gw, gw.finish(callback))
    assert again == {"google": "error", "reason": "invalid_state"}

    forged = [
        "/api/integrations/google/callback?code=abc",
        "/api/integrations/google/callback?state=&code=abc",
        "/api/integrations/google/callback?state=" + base64.urlsafe_b64encode(os.urandom(32)).decode() + "&code=x",
        "/api/integrations/google/callback?state=%00%27;--&code=x",
    ]
    for path in forged:
        assert frontend_result(gw, gw.get(path)) == {"google": "error", "reason": "invalid_state"}, path

    # Expired: Google sends the browser back after the state's ten minutes.
    other = s.add_user()
    callback = consent(s, gw.auth_url(other), "late@example.com")
    s.query("UPDATE oauth_states SET expires_at = now() - interval '1 second' WHERE user_id = %s", other)
    late = frontend_result(gw, gw.finish(callback))
    assert late == {"google": "error", "reason": "invalid_state"}
    assert status(gw, other) == {"connected": False, "email": None}
    assert user_row(s, other)[0] is None


def test_callback_finished_by_another_signed_in_user_is_refused(stack):
    s = stack()
    gw = Gateway(s)
    victim, attacker = s.add_user(), s.add_user()
    # The attacker starts a connect in a browser the victim then signs in to and finishes it with the victim's
    # Google account: the browser is the one that started it, the signed-in user is not.
    callback = consent(s, gw.auth_url(attacker), "victim@example.com")
    r = gw.finish(callback, cookies={"token": jwt(victim)})
    assert frontend_result(gw, r) == {"google": "error", "reason": "invalid_state"}
    assert status(gw, attacker) == {"connected": False, "email": None}


def test_consent_url_opened_in_another_browser_is_refused(stack):
    s = stack()
    gw = Gateway(s)
    alice = s.add_user()
    # Alice asks for her consent URL (the JSON form a frontend uses) and hands it to someone else, who allows
    # access to their own Google account in their own browser.
    auth_url = gw.auth_url(alice)
    callback = consent(s, auth_url, "someone.else@example.com")
    elsewhere = requests.Session()
    assert frontend_result(gw, elsewhere.get(callback, allow_redirects=False, timeout=30)) == \
        {"google": "error", "reason": "invalid_state"}
    assert status(gw, alice) == {"connected": False, "email": None}
    assert user_row(s, alice)[:4] == (None, None, False, None)
    assert not [q for q in s.standin.admin("requests")["requests"] if q["path"].startswith("/token")], \
        "the code is never exchanged"
    # The state is spent: the callback URL, handed back to Alice, does not connect that account either.
    assert frontend_result(gw, gw.finish(callback)) == {"google": "error", "reason": "invalid_state"}
    assert status(gw, alice) == {"connected": False, "email": None}
    assert "from a browser that did not start the connect" in gw.svc.logs()
    # Her own connect, finished in her own browser, works.
    assert connect(gw, alice, "alice@example.com")[0] == {"google": "connected"}
    assert status(gw, alice) == {"connected": True, "email": "alice@example.com"}


def test_browser_cookie_binds_each_state(stack):
    s = stack()
    gw = Gateway(s)
    user = s.add_user()
    first = gw.get("/api/integrations/google/auth", user, headers={"Accept": "application/json"},
                   session=gw.browser)
    cookie = first.headers["Set-Cookie"]
    name, _, rest = cookie.partition("=")
    value = rest.split(";")[0]
    attrs = {a.strip().split("=")[0].lower(): a.strip() for a in cookie.split(";")[1:]}
    assert name == "gcal_oauth_browser" and len(value) == 43
    assert attrs["path"] == "Path=/api/integrations/google" and attrs["max-age"] == "Max-Age=600"
    assert "httponly" in attrs and attrs["samesite"] == "SameSite=Lax"
    assert "secure" not in attrs, "the callback here is plain http on loopback"
    # Only the cookie's hash is stored, beside the state's.
    stored = s.one("SELECT browser_hash FROM oauth_states WHERE user_id = %s", user)[0]
    assert bytes(stored) == hashlib.sha256(value.encode()).digest()
    # A second connect in the same browser (another tab) keeps the value, so both tabs can finish.
    second = gw.get("/api/integrations/google/auth", user, headers={"Accept": "application/json"},
                    session=gw.browser)
    assert second.headers["Set-Cookie"].split(";")[0] == cookie.split(";")[0]
    callbacks = [consent(s, r.json()["authUrl"], f"tab{i}@example.com") for i, r in enumerate((first, second))]
    assert [frontend_result(gw, gw.finish(c)) for c in callbacks] == [{"google": "connected"}] * 2
    # A forged cookie does not count, and is replaced.
    r = gw.get("/api/integrations/google/auth", user, headers={"Accept": "application/json",
                                                                 "Cookie": "gcal_oauth_browser=" + "A" * 43})
    assert r.headers["Set-Cookie"].startswith("gcal_oauth_browser=" + "A" * 43)
    callback = consent(s, r.json()["authUrl"], "forged@example.com")
    assert frontend_result(gw, gw.finish(callback)) == {"google": "error", "reason": "invalid_state"}


def test_secure_browser_cookie_behind_https(stack):
    s = stack()
    gw = Gateway(s, GOOGLE_REDIRECT_URI="https://gcal.example.com/connect/google/callback")
    user = s.add_user()
    r = gw.get("/api/integrations/google/auth", user, headers={"Accept": "application/json"})
    attrs = [a.strip() for a in r.headers["Set-Cookie"].split(";")]
    assert "Secure" in attrs and "Path=/connect/google" in attrs, attrs


def test_live_states_per_user_are_capped(stack):
    s = stack()
    gw = Gateway(s)
    user, other = s.add_user(), s.add_user()
    gw.auth_url(other)
    urls = [gw.auth_url(user) for _ in range(8)]
    assert s.one("SELECT count(*) FROM oauth_states WHERE user_id = %s", user) == (5,)
    assert s.one("SELECT count(*) FROM oauth_states WHERE user_id = %s", other) == (1,), "per user"
    # The newest still work; the oldest are gone.
    assert frontend_result(gw, gw.finish(consent(s, urls[0], "old@example.com"))) == \
        {"google": "error", "reason": "invalid_state"}
    assert frontend_result(gw, gw.finish(consent(s, urls[-1], "new@example.com"))) == {"google": "connected"}


def test_denied_consent(stack):
    s = stack()
    gw = Gateway(s)
    user = s.add_user()
    result, _ = connect(gw, user, "no@example.com", decision="deny")
    assert result == {"google": "error", "reason": "access_denied"}
    assert status(gw, user) == {"connected": False, "email": None}
    assert s.one("SELECT used_at IS NOT NULL FROM oauth_states WHERE user_id = %s", user) == (True,)


def test_missing_calendar_scope_is_refused_and_revoked(stack):
    s = stack()
    gw = Gateway(s)
    user = s.add_user()
    result, _ = connect(gw, user, "partial@example.com", untick=(CALENDAR,))
    assert result == {"google": "error", "reason": "missing_scope"}
    assert status(gw, user) == {"connected": False, "email": None}
    assert user_row(s, user)[:3] == (None, None, False)
    revokes = [r for r in s.standin.admin("requests")["requests"] if r["path"].startswith("/revoke")]
    assert [r["status"] for r in revokes] == [200], "what was granted is given back"
    assert s.standin.admin("stats")["live_grants"] == 0


def test_failed_code_exchange(stack):
    s = stack()
    gw = Gateway(s)
    user = s.add_user()
    callback = consent(s, gw.auth_url(user), "x@example.com")
    # Google's token endpoint fails the exchange.
    s.standin.admin("faults", {"rules": [{"path_prefix": "/token", "status": 500, "count": 1}]})
    r = gw.finish(callback)
    assert frontend_result(gw, r) == {"google": "error", "reason": "exchange_failed"}
    assert status(gw, user) == {"connected": False, "email": None}


def test_disconnect_revokes_the_grant(stack):
    s = stack()
    gw = Gateway(s)
    user = s.add_user()
    assert connect(gw, user, "bye@example.com")[0] == {"google": "connected"}
    access, refresh = (unseal(v, user) for v in user_row(s, user)[:2])

    r = gw.call("POST", "/api/integrations/google/disconnect", user)
    assert r.status_code == 200 and r.json() == {"connected": False, "email": None, "revoked": True}
    assert status(gw, user) == {"connected": False, "email": None}
    row = user_row(s, user)
    assert row[:3] == (None, None, False)
    assert row[9] == "user_disconnected" and row[8] is not None and row[10] is not None, \
        "the user's own disconnect is recorded and needs no mail"
    # The refresh token ended the whole grant at Google.
    dead = token_grant(s, {"grant_type": "refresh_token", "refresh_token": refresh})
    assert dead.status_code == 400 and dead.json()["error"] == "invalid_grant"
    assert requests.get(s.standin.url + "/oauth2/v2/userinfo", headers={"Authorization": "Bearer " + access},
                        timeout=10).status_code == 401
    # Again: nothing to revoke, same answer.
    r = gw.call("POST", "/api/integrations/google/disconnect", user)
    assert r.status_code == 200 and r.json() == {"connected": False, "email": None, "revoked": True}
    # Connecting again clears the disconnect.
    assert connect(gw, user, "back@example.com")[0] == {"google": "connected"}
    assert status(gw, user) == {"connected": True, "email": "back@example.com"}
    row = user_row(s, user)
    assert row[8:11] == (None, None, None)


def test_disconnect_does_not_wait_long_for_google(stack):
    s = stack()
    gw = Gateway(s)
    user = s.add_user()
    assert connect(gw, user, "slow@example.com")[0] == {"google": "connected"}
    s.standin.admin("faults", {"rules": [{"path_prefix": "/revoke", "latency_ms": 20000}]})
    start = time.time()
    r = gw.call("POST", "/api/integrations/google/disconnect", user)
    assert r.status_code == 200 and time.time() - start < 8
    assert user_row(s, user)[:3] == (None, None, False), "tokens are gone even though Google did not answer"
    body = r.json()
    assert body["revoked"] is False and "Google Account" in body["message"], "the user is told to remove it there"


def test_disconnect_with_a_token_that_cannot_be_opened_says_so(stack):
    s = stack()
    gw = Gateway(s)
    user, _ = connected_user(s)
    # Sealed under a key this gateway does not have (a rotation that dropped it too early).
    s.query("UPDATE users SET google_refresh_token = 'v9:' || repeat('QUJD', 20)"
            " WHERE id = %s", user)
    r = gw.call("POST", "/api/integrations/google/disconnect", user)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["connected"], body["email"], body["revoked"]) == (False, None, False)
    assert "Google Account" in body["message"]
    assert user_row(s, user)[:3] == (None, None, False), "the user is out all the same"
    assert not [q for q in s.standin.admin("requests")["requests"] if q["path"].startswith("/revoke")]
    assert "the grant was not revoked at Google" in gw.svc.logs()


# JWT


def test_jwt_is_required_and_checked(stack):
    s = stack()
    gw = Gateway(s)
    user = s.add_user()
    path = "/api/integrations/google/status"
    assert gw.get(path, user).status_code == 200
    bad = {
        "none": None,
        "alg none": jwt(user, alg="none").rsplit(".", 1)[0] + ".",
        "alg none signed": jwt(user, alg="none"),
        "HS512": jwt(user, alg="HS512"),
        "wrong key": jwt(user, secret="another-secret-0123456789abcdef-0123456789"),
        "expired": jwt(user, exp_in=-120),
        "not yet valid": jwt(user, extra={"nbf": int(time.time()) + 600}),
        "issued in the future": jwt(user, extra={"iat": int(time.time()) + 600}),
        "no user claim": jwt(user, claim="uid"),
        "user claim not a UUID": jwt("alice"),
        "user claim a number": jwt(12345),
        "no exp": None,
        "garbage": "not.a.jwt",
    }
    # exp left out entirely.
    parts = jwt(user).split(".")
    payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=="))
    del payload["exp"]
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    sig = base64.urlsafe_b64encode(hmac.new(JWT_SECRET.encode(), f"{parts[0]}.{body}".encode(),
                                            hashlib.sha256).digest()).rstrip(b"=").decode()
    bad["no exp"] = f"{parts[0]}.{body}.{sig}"
    for what, token in bad.items():
        r = gw.call("GET", path, token=token) if token else gw.get(path)
        assert_error(r, 401, "unauthorized")
        challenge = r.headers["WWW-Authenticate"]
        # Without any token the challenge carries no error code (RFC 6750 section 3.1).
        assert challenge == ('Bearer realm="calendar", error="invalid_token"' if token else
                             'Bearer realm="calendar"'), (what, challenge)
    # Within the 60 s skew an expired token still works.
    assert gw.call("GET", path, token=jwt(user, exp_in=-30)).status_code == 200
    assert_error(gw.get(path, headers={"Authorization": "Basic " + base64.b64encode(b"a:b").decode()}), 401)
    assert_error(gw.get(path, headers={"Authorization": "Bearer " + jwt(user) + " extra"}), 401)
    # Upper-case UUIDs name the same user.
    assert gw.call("GET", path, token=jwt(user.upper())).json() == {"connected": False, "email": None}
    logs = gw.svc.logs()
    for token in bad.values():
        assert token is None or len(token) < 20 or token not in logs
    assert JWT_SECRET not in logs


def test_a_valid_token_of_an_unknown_user_is_refused_everywhere(stack):
    """One rule on every authenticated route: a user who is not in users gets 401, before any body is read;
    one created a moment later is let in at once."""
    s = stack()
    gw = Gateway(s, WEB_UI="on")
    ghost = str(uuid.uuid4())
    meeting = str(uuid.uuid4())
    calls = [("GET", "/api/integrations/google/auth", None), ("GET", "/api/integrations/google/status", None),
             ("POST", "/api/integrations/google/disconnect", None), ("GET", "/api/calendar/meetings", None),
             ("GET", f"/api/calendar/meetings/{meeting}", None), ("GET", f"/api/calendar/meetings/lead/{meeting}", None),
             ("POST", "/api/calendar/meetings", {"leadAnalyticsId": meeting}),
             ("PUT", f"/api/calendar/meetings/{meeting}/reschedule", {"newDateTime": "2099-01-01T10:00:00Z"}),
             ("DELETE", f"/api/calendar/meetings/{meeting}", None)]
    for method, path, body in calls:
        r = gw.call(method, path, ghost, json=body, headers={"Accept": "application/json"})
        assert_error(r, 401, "unauthorized", "does not exist")
        assert r.headers["WWW-Authenticate"] == 'Bearer realm="calendar", error="invalid_token"', path
        # The web UI's cookie is the same token: the same answer.
        r = gw.call(method, path, json=body, headers={"Cookie": "token=" + jwt(ghost), "X-Requested-With": "fetch",
                                                       "Accept": "application/json"})
        assert_error(r, 401, "unauthorized", "does not exist")
    assert "request refused: unknown user" in gw.svc.logs()
    assert s.one("SELECT count(*) FROM oauth_states") == (0,)

    # The same id, once it is a user, is let in at once (an unknown user is never remembered).
    s.query("INSERT INTO users (id, email, name) VALUES (%s, %s, %s)", ghost, f"{ghost[:8]}@example.com", "Late")
    assert gw.get("/api/integrations/google/status", ghost).json() == {"connected": False, "email": None}
    assert gw.get("/api/calendar/meetings", ghost).json() == {"meetings": []}


def test_jwt_lifetime_is_bounded(stack):
    """No token lives longer than JWT_MAX_LIFETIME_SECONDS (24 hours by default): exp - iat, and without iat
    how far exp lies ahead (plus the 60 s skew)."""
    s = stack()
    gw = Gateway(s)
    user = s.add_user()
    path = "/api/integrations/google/status"
    day = 24 * 3600
    assert gw.call("GET", path, token=jwt(user, exp_in=day)).status_code == 200
    assert gw.call("GET", path, token=jwt(user, exp_in=day, extra={"iat": None})).status_code == 200
    too_long = {
        "exp 1e308": jwt(user, extra={"exp": 1e308}),
        "exp 1e308 without iat": jwt(user, extra={"exp": 1e308, "iat": None}),
        "25 hours": jwt(user, exp_in=25 * 3600),
        "a year ahead without iat": jwt(user, exp_in=365 * day, extra={"iat": None}),
        "issued 2 days ago, an hour left": jwt(user, extra={"iat": int(time.time()) - 2 * day}),
    }
    for what, token in too_long.items():
        r = gw.call("GET", path, token=token)
        assert_error(r, 401, "unauthorized")
        assert "lifetime" in r.json()["error"]["message"], what

    short = Gateway(s, JWT_MAX_LIFETIME_SECONDS="3600")
    assert short.call("GET", path, token=jwt(user, exp_in=3600)).status_code == 200
    assert_error(short.call("GET", path, token=jwt(user, exp_in=2 * 3600)), 401)
    assert_error(short.call("GET", path, token=jwt(user, exp_in=day, extra={"iat": None})), 401)


def test_a_short_jwt_secret_stops_the_gateway(stack):
    s = stack()
    secret = "a-jwt-secret-of-31-bytes-012345"
    assert len(secret) == 31
    svc = s.service("oauth-gateway", start=False, JWT_SECRET=secret)
    svc.start(wait_ready=False)
    assert svc.proc.wait(20) == 78
    [line] = [entry for entry in svc.log_lines() if entry.get("variable") == "JWT_SECRET"]
    assert line["msg"] == "invalid configuration" and "at least 32 bytes" in line["problem"], line
    assert secret not in svc.logs()
    # 32 bytes start.
    Gateway(s, JWT_SECRET=secret + "x")


def test_jwt_issuer_audience_and_user_claim_when_configured(stack):
    s = stack()
    gw = Gateway(s, JWT_ISSUER="platform", JWT_AUDIENCE="calendar", JWT_USER_CLAIM="user_id")
    user = s.add_user()
    path = "/api/integrations/google/status"
    good = {"iss": "platform", "aud": "calendar"}
    assert gw.call("GET", path, token=jwt(user, claim="user_id", extra=good)).status_code == 200
    assert gw.call("GET", path, token=jwt(user, claim="user_id", extra={"iss": "platform",
                                                                        "aud": ["x", "calendar"]})).status_code == 200
    assert_error(gw.call("GET", path, token=jwt(user, extra=good)), 401)
    assert_error(gw.call("GET", path, token=jwt(user, claim="user_id", extra={"iss": "other", "aud": "calendar"})),
                 401)
    assert_error(gw.call("GET", path, token=jwt(user, claim="user_id", extra={"iss": "platform"})), 401)


# Meetings: reads


def test_meeting_lists(stack):
    s = stack()
    gw = Gateway(s)
    user, other = s.add_user(), s.add_user()
    later = add_meeting(s, user, hours=48, title="Later")
    soon = add_meeting(s, user, hours=2, title="Soon")
    cancelled = add_meeting(s, user, hours=5, status="cancelled")
    past = add_meeting(s, user, hours=-30, status="completed")
    ongoing = add_meeting(s, user, hours=0, minutes=30, title="Now")
    add_meeting(s, other, hours=3)

    r = gw.get("/api/calendar/meetings", user)
    assert r.status_code == 200
    got = r.json()["meetings"]
    assert [m["id"] for m in got] == [ongoing, soon, later], "upcoming, scheduled, ordered by start"
    m = got[1]
    for key in ("id", "user_id", "lead_analytics_id", "google_event_id", "google_calendar_id", "meeting_title",
                "attendee_email", "meeting_start_time", "meeting_end_time", "status", "timezone"):
        assert key in m
    assert m["meeting_title"] == "Soon" and m["user_id"] == user and m["status"] == "scheduled"
    assert "google_api_response" not in m and "google_access_token" not in json.dumps(got)

    def ids(query):
        r = gw.get("/api/calendar/meetings" + query, user)
        assert r.status_code == 200, r.text
        return [m["id"] for m in r.json()["meetings"]]

    assert ids("?limit=2") == [ongoing, soon]
    assert ids("?status=cancelled") == [cancelled]
    assert ids("?status=completed") == []
    assert ids("?status=completed&include_past=true") == [past]
    assert ids("?status=all&include_past=true") == [past, ongoing, soon, cancelled, later]
    assert ids("?status=all") == [ongoing, soon, cancelled, later]
    for i in range(105):
        add_meeting(s, user, hours=100 + i)
    assert len(ids("?limit=1000")) == 100, "limit is capped at 100"
    assert len(ids("")) == 10, "the default limit is 10"

    for query, field in (("?limit=0", "limit"), ("?limit=-1", "limit"), ("?limit=ten", "limit"),
                         ("?limit=5x", "limit"), ("?status=booked", "status"), ("?include_past=yes", "include_past")):
        assert_error(gw.get("/api/calendar/meetings" + query, user), 400, "invalid_request", field)


def test_one_meeting_and_another_users_meeting(stack):
    s = stack()
    gw = Gateway(s)
    user, other = s.add_user(), s.add_user()
    mine = add_meeting(s, user)
    theirs = add_meeting(s, other)
    r = gw.get(f"/api/calendar/meetings/{mine}", user)
    assert r.status_code == 200 and r.json()["meeting"]["id"] == mine
    assert gw.get(f"/api/calendar/meetings/{mine.upper()}", user).json()["meeting"]["id"] == mine
    assert_error(gw.get(f"/api/calendar/meetings/{theirs}", user), 404, "not_found")
    assert_error(gw.get(f"/api/calendar/meetings/{uuid.uuid4()}", user), 404, "not_found")
    assert_error(gw.get("/api/calendar/meetings/not-a-uuid", user), 400, "invalid_request", "meetingId")
    assert_error(gw.get("/api/calendar/meetings/lead", user), 400, "invalid_request", "meetingId")


def test_meetings_of_a_lead_with_its_outcome(stack):
    s = stack()
    gw = Gateway(s)
    user, other = s.add_user(), s.add_user()
    booked = s.add_lead(user)["lead"]
    old = add_meeting(s, user, lead=booked, hours=10, status="rescheduled")
    new = add_meeting(s, user, lead=booked, hours=20)
    s.query("INSERT INTO calendar_booking_outcomes (lead_analytics_id, user_id, outcome, meeting_id)"
            " VALUES (%s, %s, 'scheduled', %s)", booked, user, new)
    skipped = s.add_lead(user, demo="next week")["lead"]
    s.query("INSERT INTO calendar_booking_outcomes (lead_analytics_id, user_id, outcome, reason, detail)"
            " VALUES (%s, %s, 'skipped', 'bad_datetime', 'demo_book_datetime is not a date and time')",
            skipped, user)
    quiet = s.add_lead(user)["lead"]
    theirs = s.add_lead(other)["lead"]

    r = gw.get(f"/api/calendar/meetings/lead/{booked}", user).json()
    assert [m["id"] for m in r["meetings"]] == [old, new]
    assert r["outcome"]["outcome"] == "scheduled" and r["outcome"]["reason"] is None
    r = gw.get(f"/api/calendar/meetings/lead/{skipped}", user).json()
    assert r["meetings"] == []
    assert set(r["outcome"]) == {"outcome", "reason", "detail", "updated_at"}
    assert (r["outcome"]["outcome"], r["outcome"]["reason"]) == ("skipped", "bad_datetime")
    assert r["outcome"]["updated_at"].endswith("Z")
    assert gw.get(f"/api/calendar/meetings/lead/{quiet}", user).json() == {"meetings": [], "outcome": None}
    assert_error(gw.get(f"/api/calendar/meetings/lead/{theirs}", user), 404, "not_found")
    assert_error(gw.get(f"/api/calendar/meetings/lead/{uuid.uuid4()}", user), 404, "not_found")
    assert_error(gw.get("/api/calendar/meetings/lead/xyz", user), 400, "invalid_request", "leadAnalyticsId")


# Meetings: writes through the scheduler


def test_create_reschedule_cancel_end_to_end(stack):
    s = stack()
    s.start_standin()
    gw = Gateway(s)
    s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    user, gmail = connected_user(s)
    lead = s.add_lead(user, demo="2099-09-18T17:00:00+05:30", email="lead@example.com")["lead"]

    r = gw.call("POST", "/api/calendar/meetings", user, json={
        "leadAnalyticsId": lead, "attendeeEmail": "Buyer@Example.com", "attendeeName": "Bea Buyer",
        "dateTime": "2099-10-01T10:00:00+05:30"})
    assert r.status_code == 201, r.text
    created = r.json()["meeting"]
    assert created["status"] == "scheduled" and created["lead_analytics_id"] == lead
    assert created["meeting_start_time"] == "2099-10-01T04:30:00Z"
    assert created["attendee_email"] == "buyer@example.com"
    events = s.standin.admin(f"events?email={gmail}")["events"]
    assert [e["id"] for e in events] == [created["google_event_id"]]
    assert_error(gw.call("POST", "/api/calendar/meetings", user, json={"leadAnalyticsId": lead}), 409, "conflict")

    r = gw.call("PUT", f"/api/calendar/meetings/{created['id']}/reschedule", user,
                json={"newDateTime": "2099-10-02T11:00:00+05:30"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["previous"]["id"] == created["id"] and body["previous"]["status"] == "rescheduled"
    moved = body["meeting"]
    assert moved["rescheduled_from_meeting_id"] == created["id"] and moved["status"] == "scheduled"
    assert moved["meeting_start_time"] == "2099-10-02T05:30:00Z"
    assert gw.get(f"/api/calendar/meetings/{created['id']}", user).json()["meeting"]["status"] == "rescheduled"
    assert_error(gw.call("PUT", f"/api/calendar/meetings/{created['id']}/reschedule", user,
                         json={"newDateTime": "2099-10-03T11:00:00+05:30"}), 409, "conflict")

    r = gw.call("DELETE", f"/api/calendar/meetings/{moved['id']}", user, json={"reason": "Lead asked to cancel"})
    assert r.status_code == 200, r.text
    assert r.json()["meeting"]["status"] == "cancelled"
    assert r.json()["meeting"]["cancellation_reason"] == "Lead asked to cancel"
    assert_error(gw.call("DELETE", f"/api/calendar/meetings/{moved['id']}", user, json={"reason": "again"}), 409,
                 "conflict")
    assert s.standin.admin(f"events?email={gmail}")["events"][0]["status"] == "cancelled"

    # A cancelled lead can be booked again, without a body reason and with the lead's own time.
    r = gw.call("POST", "/api/calendar/meetings", user, json={"leadAnalyticsId": lead})
    assert r.status_code == 201, r.text
    again = r.json()["meeting"]
    r = gw.call("DELETE", f"/api/calendar/meetings/{again['id']}", user)
    assert r.status_code == 200 and r.json()["meeting"]["cancellation_reason"] is None

    lead_view = gw.get(f"/api/calendar/meetings/lead/{lead}", user).json()
    # By start: the rebooking at the lead's own time (18 Sep), the first booking (1 Oct), its move (2 Oct).
    assert [(m["id"], m["status"]) for m in lead_view["meetings"]] == [
        (again["id"], "cancelled"), (created["id"], "rescheduled"), (moved["id"], "cancelled")]


def test_writes_are_refused_for_other_users_and_bad_input(stack):
    s = stack()
    s.start_standin()
    gw = Gateway(s)
    sched = s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    user, _ = connected_user(s)
    other, _ = connected_user(s)
    mine = add_meeting(s, user, lead=s.add_lead(user)["lead"])
    theirs_lead = s.add_lead(other)["lead"]
    theirs = add_meeting(s, other, lead=theirs_lead)
    lead = s.add_lead(user)["lead"]

    # Another user's meeting or lead does not exist for this user.
    assert_error(gw.call("PUT", f"/api/calendar/meetings/{theirs}/reschedule", user,
                         json={"newDateTime": "2099-01-01T10:00:00Z"}), 404, "not_found")
    assert_error(gw.call("DELETE", f"/api/calendar/meetings/{theirs}", user, json={"reason": "x"}), 404)
    assert_error(gw.call("POST", "/api/calendar/meetings", user, json={"leadAnalyticsId": theirs_lead}), 404)
    assert s.one("SELECT status FROM calendar_meetings WHERE id = %s", theirs) == ("scheduled",)

    post = "/api/calendar/meetings"
    cases = [
        ("POST", post, {"attendeeEmail": "a@b.co"}, "leadAnalyticsId"),
        ("POST", post, {"leadAnalyticsId": "nope"}, "leadAnalyticsId"),
        ("POST", post, {"leadAnalyticsId": 42}, "leadAnalyticsId"),
        ("POST", post, {"leadAnalyticsId": lead, "dateTime": "tomorrow at 5"}, "dateTime"),
        ("POST", post, {"leadAnalyticsId": lead, "dateTime": "2099-02-30T10:00:00Z"}, "dateTime"),
        ("POST", post, {"leadAnalyticsId": lead, "dateTime": "2001-01-01T10:00:00Z"}, "dateTime"),
        ("POST", post, {"leadAnalyticsId": lead, "attendeeEmail": "not an email"}, "attendeeEmail"),
        ("POST", post, {"leadAnalyticsId": lead, "attendeeEmail": "a@b.co\r\nBcc: x@y.z"}, "attendeeEmail"),
        ("POST", post, {"leadAnalyticsId": lead, "attendeeName": "x" * 300}, "attendeeName"),
        ("PUT", f"{post}/{mine}/reschedule", {}, "newDateTime"),
        ("PUT", f"{post}/{mine}/reschedule", {"newDateTime": "18/09/2099 17:00"}, "newDateTime"),
        ("PUT", f"{post}/{mine}/reschedule", {"newDateTime": 1234}, "newDateTime"),
        ("PUT", f"{post}/not-a-uuid/reschedule", {"newDateTime": "2099-01-01T10:00:00Z"}, "meetingId"),
        ("DELETE", f"{post}/{mine}", {"reason": 7}, "reason"),
        ("DELETE", f"{post}/{mine}", {"reason": "x" * 2001}, "reason"),
        ("DELETE", f"{post}/12345", {}, "meetingId"),
    ]
    for method, path, body, field in cases:
        assert_error(gw.call(method, path, user, json=body), 400, "invalid_request", field)
    for method, path in (("POST", post), ("PUT", f"{post}/{mine}/reschedule")):
        assert_error(gw.call(method, path, user, data="{not json", headers={"Content-Type": "application/json"}),
                     400, "invalid_request", "JSON")
        assert_error(gw.call(method, path, user, json=["a", "list"]), 400, "invalid_request", "object")
        assert_error(gw.call(method, path, user), 400, "invalid_request", "body")
    assert s.one("SELECT status FROM calendar_meetings WHERE id = %s", mine) == ("scheduled",)

    # Beyond the booking horizon (730 days by default): refused up front, naming the field, not sent to Google.
    gw_default = Gateway(s, BOOKING_HORIZON_DAYS=None)
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 700 * 86400))
    for method, path, field in (("POST", post, "dateTime"), ("PUT", f"{post}/{mine}/reschedule", "newDateTime")):
        for when in ("9999-12-31T23:59:00Z", "9999-12-31 23:59", "2099-01-01T10:00:00+05:30"):
            body = {field: when} if method == "PUT" else {"leadAnalyticsId": lead, field: when}
            err = assert_error(gw_default.call(method, path, user, json=body), 400, "invalid_request", field)
            assert "730 days" in err["message"], err
    # Within it the check passes and the request goes on (to a lead this user does not have).
    assert_error(gw_default.call("POST", post, user, json={"leadAnalyticsId": theirs_lead, "dateTime": soon}), 404)

    # What only the scheduler can tell: a time without offset that is past in the calendar's zone, and Google
    # refusing the event.
    assert_error(gw.call("POST", post, user, json={"leadAnalyticsId": lead, "dateTime": "2001-01-01 10:00"}), 400,
                 "invalid_request", "dateTime: the date and time is in the past")
    # Without dateTime the lead's own demo time is used; when that has passed, the answer names dateTime too.
    passed = s.add_lead(user, demo="2001-01-01T10:00:00+05:30")["lead"]
    err = assert_error(gw.call("POST", post, user, json={"leadAnalyticsId": passed}), 400, "invalid_request",
                       "dateTime")
    assert "past" in err["message"], err
    # Both sides log the refusal's code where an operator can read it.
    for svc, msg in ((gw.svc, "the scheduler refused a command"), (sched, "command refused")):
        refusals = [line for line in svc.log_lines() if line.get("msg") == msg]
        assert refusals and refusals[-1]["error_code"] == "invalid", refusals
    s.standin.admin("faults", {"rules": [{"method": "POST", "path_prefix": "/calendar/v3/calendars/", "status": 400,
                                          "reason": "invalid", "count": 1}]})
    assert_error(gw.call("POST", post, user, json={"leadAnalyticsId": lead}), 502, "google_rejected")
    assert gw.get(f"/api/calendar/meetings/lead/{lead}", user).json()["meetings"] == []

    # Not connected: refused before anything is sent.
    stranger = s.add_user()
    assert_error(gw.call("POST", post, stranger, json={"leadAnalyticsId": s.add_lead(stranger)["lead"]}), 409,
                 "not_connected")


def test_no_reply_in_time_answers_pending(stack):
    s = stack()
    gw = Gateway(s)
    user, _ = connected_user(s)
    lead = s.add_lead(user)["lead"]
    # No scheduler ever ran on this broker: no queue takes the command, and the gateway says so at once.
    start = time.time()
    r = gw.call("POST", "/api/calendar/meetings", user, json={"leadAnalyticsId": lead})
    assert_error(r, 503, "unavailable")
    assert time.time() - start < 3
    # No scheduler runs now: the command waits in its queue.
    scheduler_down(s)
    start = time.time()
    r = gw.call("POST", "/api/calendar/meetings", user, json={"leadAnalyticsId": lead,
                                                               "dateTime": "2099-09-18 17:00"})
    assert r.status_code == 202, r.text
    assert 7 < time.time() - start < 15
    body = r.json()
    assert body["status"] == "pending" and uuid.UUID(body["command_id"]).version == 4
    msgs = s.peek("scheduler.commands")
    assert len(msgs) == 1
    m = msgs[0]
    props = m["properties"]
    assert m["routing_key"] == "meeting.create"
    assert props["type"] == "meeting.command" and props["delivery_mode"] == 2
    assert props["message_id"] == props["correlation_id"] == body["command_id"]
    assert props["reply_to"].startswith("amq.gen-")
    assert props["user_id"] == broker_user("gateway"), "the gateway names itself; the broker vouches for it"
    command = json.loads(m["payload"])
    assert command == {"command": "create", "command_id": body["command_id"], "user_id": user,
                       "lead_analytics_id": lead, "date_time": "2099-09-18 17:00"}
    with open(os.path.join(ROOT, "proto", "messages", "meeting.command.schema.json")) as f:
        jsonschema.validate(command, json.load(f))


def test_broker_list_fails_over_and_answers_lost_replies_at_once(stack):
    """AMQP_URL lists a broker that is down, then the real one: the gateway starts on the second. When its
    connection goes, a command the broker had confirmed is answered 202 pending at once (its reply queue went
    with the connection), and the gateway comes back through the list."""
    s = stack()
    real = s.amqp_url_for("gateway")
    down = re.sub(r"@127\.0\.0\.1:\d+/", f"@127.0.0.1:{free_port()}/", real)
    assert down != real
    gw = Gateway(s, AMQP_URL=f"{down} , {real}")
    connected = [line for line in gw.svc.log_lines() if line.get("msg") == "amqp connected"]
    assert connected and connected[-1]["broker"] == 2 and connected[-1]["brokers"] == 2, connected
    assert real.split("@")[0].split(":")[-1] not in gw.svc.logs(), "never the password"
    user, _ = connected_user(s)
    lead = s.add_lead(user)["lead"]
    scheduler_down(s)
    result = {}

    def post():
        start = time.time()
        result["r"] = gw.call("POST", "/api/calendar/meetings", user, json={"leadAnalyticsId": lead,
                                                                             "dateTime": "2099-09-18 17:00"})
        result["s"] = time.time() - start

    conns = []

    def gateway_connection():
        # The management API lists a new connection within its statistics interval.
        conns[:] = [c for c in s._rabbit("GET", "/connections").json() if c.get("vhost") == s.vhost and
                    c.get("client_properties", {}).get("connection_name") == "oauth-gateway"]
        return len(conns) == 1

    wait_for(gateway_connection, 15, interval=0.2, what="the gateway's connection in the management API")
    t = threading.Thread(target=post)
    t.start()
    wait_for(lambda: len(s.peek("scheduler.commands")) == 1, 5, what="the command in its queue")
    killed = time.time()
    r = s._rabbit("DELETE", "/connections/" + urllib.parse.quote(conns[0]["name"], safe=""))
    assert r.status_code == 204, r.text
    t.join(15)
    assert result["r"].status_code == 202, result["r"].text
    assert result["r"].json()["status"] == "pending"
    assert time.time() - killed < 3, "answered at once, not after the 8 s wait"
    assert result["s"] < 7
    wait_for(lambda: len([line for line in gw.svc.log_lines() if line.get("msg") == "amqp connected"]) >= 2, 20,
             what="the gateway reconnected")
    again = [line for line in gw.svc.log_lines() if line.get("msg") == "amqp connected"][-1]
    assert again["broker"] == 2, "past the broker that is down, to the real one"
    wait_for(lambda: requests.get(gw.url + "/readyz", timeout=5).status_code == 200, 20, what="ready again")


def test_broker_down_refuses_writes_and_keeps_reads(stack):
    s = stack()
    gw = Gateway(s, wait_ready=False, AMQP_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}/x")
    url = gw.url
    ready = requests.get(url + "/readyz", timeout=5)
    assert ready.status_code == 503 and ready.json()["checks"]["amqp"] is False
    user, _ = connected_user(s)
    mine = add_meeting(s, user)
    h = {"Authorization": "Bearer " + jwt(user)}
    start = time.time()
    r = requests.post(url + "/api/calendar/meetings", headers=h, json={"leadAnalyticsId": s.add_lead(user)["lead"]},
                      timeout=10)
    assert_error(r, 503, "unavailable")
    r = requests.put(f"{url}/api/calendar/meetings/{mine}/reschedule", headers=h,
                     json={"newDateTime": "2099-01-01T10:00:00Z"}, timeout=10)
    assert_error(r, 503, "unavailable")
    assert time.time() - start < 3, "fails fast"
    assert requests.get(url + "/api/calendar/meetings", headers=h, timeout=10).json()["meetings"][0]["id"] == mine


@contextlib.contextmanager
def database_refused(s):
    """The test's database refuses connections and its sessions are ended (the gateway's too) until the block
    ends: an outage as the gateway's pool sees one, with the run's other databases untouched."""
    admin = s._admin_conn()
    try:
        with admin.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{s.dbname}" ALLOW_CONNECTIONS false')
            # With a timeout it waits until each backend is gone, not only signalled.
            cur.execute("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = %s",
                        (s.dbname,))
        yield
    finally:
        with admin.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{s.dbname}" ALLOW_CONNECTIONS true')
        admin.close()


def test_database_outage_answers_503_at_once_and_recovers(stack):
    s = stack()
    gw = Gateway(s)
    user = s.add_user()
    mine = add_meeting(s, user)
    assert [m["id"] for m in gw.get("/api/calendar/meetings", user).json()["meetings"]] == [mine]

    with database_refused(s):
        wait_for(lambda: requests.get(gw.url + "/readyz", timeout=1).status_code == 503, 5,
                 what="/readyz not ready")
        ready = requests.get(gw.url + "/readyz", timeout=1)
        assert ready.json()["checks"] == {"database": False, "amqp": True}
        # Each read is answered at once, not when the pool's next connection attempt fails.
        for path in ("/api/calendar/meetings", f"/api/calendar/meetings/{mine}",
                     "/api/integrations/google/status"):
            start = time.time()
            r = requests.get(gw.url + path, headers={"Authorization": "Bearer " + jwt(user)}, timeout=5)
            took = time.time() - start
            assert_error(r, 503, "unavailable")
            assert r.headers.get("Retry-After") == "1", r.headers
            assert took < 0.5, f"{path} answered after {took:.2f} s"

    wait_for(lambda: requests.get(gw.url + "/readyz", timeout=1).status_code == 200, 40,
             what="/readyz ready again")
    assert [m["id"] for m in gw.get("/api/calendar/meetings", user).json()["meetings"]] == [mine]


# Protocol: limits, routes, methods, metrics, health


def test_body_limit_unknown_routes_and_methods(stack):
    s = stack()
    gw = Gateway(s, MAX_BODY_BYTES="2048")
    user = s.add_user()
    big = {"leadAnalyticsId": str(uuid.uuid4()), "attendeeName": "x" * 3000}
    assert_error(gw.call("POST", "/api/calendar/meetings", user, json=big), 413, "payload_too_large")
    assert_error(gw.call("POST", "/api/calendar/meetings", user, data="x" * 200_000), 413, "payload_too_large")
    # Far beyond any request of this API: refused from its head, in the same shape.
    assert_error(gw.call("POST", "/api/calendar/meetings", user, data="x" * 3_000_000), 413, "payload_too_large")
    assert_error(gw.call("DELETE", f"/api/calendar/meetings/{uuid.uuid4()}", user, data="y" * 5000), 413)

    assert_error(gw.get("/api/nothing", user), 404, "not_found")
    assert_error(gw.get("/", user), 404, "not_found")
    assert_error(gw.get("/api/calendar/meetings/a/b/c", user), 404, "not_found")
    r = gw.call("PATCH", "/api/calendar/meetings", user)
    assert_error(r, 405, "method_not_allowed")
    assert r.headers["Allow"] == "GET, POST, HEAD"
    r = gw.call("POST", f"/api/calendar/meetings/{uuid.uuid4()}", user)
    assert_error(r, 405)
    assert r.headers["Allow"] == "GET, HEAD, DELETE"
    assert_error(gw.call("GET", "/api/integrations/google/disconnect", user), 405)
    assert_error(gw.call("DELETE", "/api/integrations/google/status", user), 405)
    # Trailing slash and percent-encoding reach the same route.
    assert gw.get("/api/calendar/meetings/", user).status_code == 200
    assert gw.get("/api/calendar/%6Deetings", user).status_code == 200
    # An encoded NUL does not end a segment early: "meetings%00junk" is no "meetings".
    assert_error(gw.get("/api/calendar/meetings%00junk", user), 400, "invalid_request", "NUL")
    assert_error(gw.get(f"/api/calendar/meetings/{uuid.uuid4()}%00", user), 400, "invalid_request")


def test_health_and_metrics(stack):
    s = stack()
    gw = Gateway(s)
    user = s.add_user()
    assert requests.get(gw.url + "/healthz", timeout=5).status_code == 200
    ready = requests.get(gw.url + "/readyz", timeout=5)
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": True, "amqp": True}
    mid = add_meeting(s, user)
    gw.get(f"/api/calendar/meetings/{mid}", user)
    gw.get(f"/api/calendar/meetings/{uuid.uuid4()}", user)
    gw.get("/api/calendar/meetings/" + str(uuid.uuid4()))
    gw.get("/nowhere")
    m = gw.svc.metrics()
    route = '/api/calendar/meetings/:meetingId'
    assert m[f'http_requests_total{{route="{route}",method="GET",status="200"}}'] == 1
    assert m[f'http_requests_total{{route="{route}",method="GET",status="404"}}'] == 1
    assert m[f'http_requests_total{{route="{route}",method="GET",status="401"}}'] == 1
    assert m['http_requests_total{route="unmatched",method="GET",status="404"}'] == 1
    assert m[f'http_request_duration_seconds_count{{route="{route}"}}'] == 3
    assert not any(mid in k for k in m), "labels carry patterns, never ids"
    # /metrics is for operators on METRICS_ADDR: the public listener does not have it.
    assert_error(requests.get(gw.url + "/metrics", timeout=5), 404, "not_found")
    assert gw.svc.metrics_url != gw.url
    assert requests.get(gw.svc.metrics_url + "/readyz", timeout=5).status_code == 200


# Lifetime: requests that outlive their client or the process


def test_client_gone_before_the_answer(stack):
    s = stack()
    gw = Gateway(s)
    user, _ = connected_user(s)
    scheduler_down(s)
    body = json.dumps({"leadAnalyticsId": s.add_lead(user)["lead"]}).encode()
    host, port = gw.url[len("http://"):].split(":")
    # Deferred answers get no notice when the client leaves; the gateway must still answer once and live on.
    for _ in range(3):
        with socket.create_connection((host, int(port))) as c:
            c.sendall(b"POST /api/calendar/meetings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                      jwt(user).encode() + b"\r\nContent-Type: application/json\r\nContent-Length: " +
                      str(len(body)).encode() + b"\r\n\r\n" + body)
            time.sleep(0.2)
    time.sleep(9)
    assert gw.get("/api/integrations/google/status", user).json()["connected"] is True
    assert gw.svc.metrics()['http_requests_total{route="/api/calendar/meetings",method="POST",status="202"}'] == 3


def test_stop_answers_what_is_in_flight_and_exits_cleanly(stack):
    s = stack()
    gw = Gateway(s)
    user, _ = connected_user(s)
    lead = s.add_lead(user)["lead"]
    out = {}

    def post():
        out["r"] = gw.call("POST", "/api/calendar/meetings", user, json={"leadAnalyticsId": lead})

    t = threading.Thread(target=post)
    t.start()
    wait_for(lambda: "command sent" in gw.svc.logs(), 10, what="command sent")
    start = time.time()
    assert gw.svc.stop() == 0
    t.join(10)
    assert time.time() - start < 10
    assert_error(out["r"], 503, "unavailable")
