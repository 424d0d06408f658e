"""The Google stand-in over real HTTP: OAuth, userinfo, Calendar, faults and the admin API.

Run: /usr/bin/python3 -m pytest -q tests/e2e/test_google_standin.py
(GOOGLE_STANDIN_BIN picks another binary, e.g. an AddressSanitizer build.)
"""

import base64
import http.server
import json
import os
import re
import socket
import socketserver
import sys
import threading
import time
import urllib.parse
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser

import pytest
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from standin import CALENDAR_SCOPE, EMAIL_SCOPE, Standin, StandinError, pkce_pair  # noqa: E402

CLIENT_ID = "standin-client-id"
CLIENT_SECRET = "standin-client-secret"
REDIRECT = "http://127.0.0.1:9/callback"
USER = "alice@example.com"
BASE32HEX = re.compile(r"^[0-9a-v]{5,1024}$")
RFC3339_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

INVALID_CREDENTIALS = {"error": {
    "code": 401, "message": "Invalid Credentials",
    "errors": [{"domain": "global", "reason": "authError", "message": "Invalid Credentials",
                "locationType": "header", "location": "Authorization"}],
    "status": "UNAUTHENTICATED"}}


def google_error(code, domain, reason, message, status):
    return {"error": {"code": code, "message": message,
                      "errors": [{"domain": domain, "reason": reason, "message": message}], "status": status}}


def sanitizer_report(text):
    return any(s in text for s in ("AddressSanitizer", "LeakSanitizer", "runtime error:"))


@pytest.fixture(scope="module")
def sd():
    s = Standin().start(timezone="Europe/Zurich")
    yield s
    rc = s.stop()
    log = s.log()
    s.close()
    assert rc == 0, f"stand-in exited {rc}:\n{log[-4000:]}"
    assert not sanitizer_report(log), log[-8000:]


@pytest.fixture(autouse=True)
def clean(sd):
    sd.admin("reset", {})
    yield


def no_redirect_get(url, **kw):
    return requests.get(url, allow_redirects=False, timeout=10, **kw)


def token_post(sd, fields, auth=None):
    return requests.post(sd.url + "/token", data=fields, auth=auth, timeout=10)


def bearer(token):
    return {"Authorization": "Bearer " + token}


class FormParser(HTMLParser):
    """Collects the inputs, buttons and labels of the consent page."""

    def __init__(self):
        super().__init__()
        self.form = None
        self.inputs = []
        self.buttons = []
        self.labels = {}
        self._label = None
        self._button = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.form = a
        elif tag == "input":
            self.inputs.append(a)
        elif tag == "button":
            self._button = dict(a, text="")
        elif tag == "label":
            self._label = a.get("for")
            self.labels.setdefault(self._label, "")

    def handle_endtag(self, tag):
        if tag == "button" and self._button is not None:
            self.buttons.append(self._button)
            self._button = None
        elif tag == "label":
            self._label = None

    def handle_data(self, data):
        if self._button is not None:
            self._button["text"] += data
        if self._label is not None:
            self.labels[self._label] += data


def auth_url(sd, **params):
    q = {"client_id": CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code",
         "scope": CALENDAR_SCOPE + " email", "state": "st-1", "access_type": "offline"}
    q.update(params)
    q = {k: v for k, v in q.items() if v is not None}
    return sd.url + "/o/oauth2/v2/auth?" + urllib.parse.urlencode(q)


def redirect_params(resp):
    assert resp.status_code == 302, resp.text
    loc = resp.headers["Location"]
    assert loc.startswith(REDIRECT + "?")
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))


def exchange(sd, code, verifier=None, redirect_uri=REDIRECT, secret=CLIENT_SECRET):
    fields = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
              "client_id": CLIENT_ID, "client_secret": secret}
    if verifier is not None:
        fields["code_verifier"] = verifier
    return token_post(sd, fields)


def tokens_for(sd, email=USER, scope=CALENDAR_SCOPE + " " + EMAIL_SCOPE):
    return sd.connect(email, scope=scope, redirect_uri=REDIRECT)


def events_url(sd, suffix="", cal="primary"):
    return f"{sd.url}/calendar/v3/calendars/{urllib.parse.quote(cal, safe='')}/events{suffix}"


def new_event(**extra):
    ev = {"summary": "Demo call", "description": "From the lead",
          "start": {"dateTime": "2030-05-01T10:00:00+02:00", "timeZone": "Europe/Zurich"},
          "end": {"dateTime": "2030-05-01T10:30:00+02:00", "timeZone": "Europe/Zurich"}}
    ev.update(extra)
    return ev


# --- process and CLI ---------------------------------------------------------


def test_refuses_non_loopback():
    s = Standin()
    with pytest.raises(StandinError):
        s.start(listen="0.0.0.0:0")
    assert "non-loopback" in s.log()
    s.close()


def test_cli_flags_and_clean_exit():
    with Standin().start(client_id="cid-x", client_secret="sec-x", redirect_uri=["http://localhost:5/a", REDIRECT],
                         auto_approve=True, email="Bob@Example.com", timezone="Asia/Kolkata",
                         access_token_ttl=1) as s:
        cfg = s.admin("config")
        assert cfg == {"client_id": "cid-x", "client_secret": "sec-x",
                       "redirect_uris": ["http://localhost:5/a", REDIRECT], "auto_approve": True,
                       "email": "bob@example.com", "timezone": "Asia/Kolkata", "access_token_ttl": 1}
        verifier, challenge = pkce_pair()
        r = no_redirect_get(s.url + "/o/oauth2/v2/auth?" + urllib.parse.urlencode({
            "client_id": "cid-x", "redirect_uri": REDIRECT, "response_type": "code", "scope": CALENDAR_SCOPE,
            "code_challenge": challenge, "code_challenge_method": "S256", "access_type": "offline"}))
        code = redirect_params(r)["code"]
        t = requests.post(s.url + "/token", data={"grant_type": "authorization_code", "code": code,
                                                  "redirect_uri": REDIRECT, "code_verifier": verifier},
                          auth=("cid-x", "sec-x"), timeout=10)
        assert t.status_code == 200, t.text
        assert t.json()["expires_in"] == 1
        r = requests.get(events_url(s), headers=bearer(t.json()["access_token"]), timeout=10)
        assert r.status_code == 200 and r.json()["timeZone"] == "Asia/Kolkata"
        assert r.json()["summary"] == "bob@example.com"
        time.sleep(1.2)
        r = requests.get(events_url(s), headers=bearer(t.json()["access_token"]), timeout=10)
        assert r.status_code == 401 and r.json() == INVALID_CREDENTIALS
        assert s.stop() == 0
        assert not sanitizer_report(s.log())


# --- OAuth -------------------------------------------------------------------


def test_consent_page_and_full_pkce_flow(sd):
    verifier, challenge = pkce_pair()
    r = no_redirect_get(auth_url(sd, login_hint="Carol@Example.com", code_challenge=challenge,
                                 code_challenge_method="S256"))
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    p = FormParser()
    p.feed(r.text)
    assert p.form["method"] == "post"
    hidden = {i["name"]: i["value"] for i in p.inputs if i.get("type") == "hidden"}
    assert hidden["client_id"] == CLIENT_ID and hidden["redirect_uri"] == REDIRECT
    assert hidden["state"] == "st-1" and hidden["code_challenge"] == challenge
    email_input = next(i for i in p.inputs if i.get("type") == "email")
    assert email_input["value"] == "carol@example.com"
    boxes = [i for i in p.inputs if i.get("type") == "checkbox"]
    assert [b["value"] for b in boxes] == [CALENDAR_SCOPE, EMAIL_SCOPE]
    assert all("checked" in b for b in boxes)
    for control in boxes + [email_input]:
        assert p.labels.get(control["id"]), f"no label for {control['id']}"
    assert {(b["value"], b["text"]) for b in p.buttons} == {("allow", "Allow"), ("deny", "Deny")}
    assert "<title>" in r.text and "calendar" in r.text.lower()

    # Submit the form as a browser would: hidden fields, checked boxes, the email, the Allow button.
    fields = [(k, v) for k, v in hidden.items()] + [("email", email_input["value"])]
    fields += [("granted_scope", b["value"]) for b in boxes] + [("decision", "allow")]
    r = requests.post(sd.url + p.form["action"], data=fields, allow_redirects=False, timeout=10)
    q = redirect_params(r)
    assert q["state"] == "st-1" and q["scope"] == f"{CALENDAR_SCOPE} {EMAIL_SCOPE}"
    assert q["code"].startswith("4/0")

    t = exchange(sd, q["code"], verifier)
    assert t.status_code == 200, t.text
    assert t.headers["Content-Type"] == "application/json; charset=utf-8"
    body = t.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["access_token"].startswith("ya29.") and body["refresh_token"].startswith("1//")
    assert body["scope"] == f"{CALENDAR_SCOPE} {EMAIL_SCOPE}"
    assert "id_token" not in body
    info = requests.get(sd.url + "/oauth2/v2/userinfo", headers=bearer(body["access_token"]), timeout=10).json()
    assert info["email"] == "carol@example.com" and info["verified_email"] is True

    # The code is single-use.
    again = exchange(sd, q["code"], verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_consent_deny(sd):
    r = no_redirect_get(auth_url(sd))
    assert r.status_code == 200
    r = requests.post(sd.url + "/o/oauth2/v2/consent", allow_redirects=False, timeout=10, data={
        "client_id": CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code", "scope": CALENDAR_SCOPE,
        "state": "st-9", "email": USER, "decision": "deny"})
    assert redirect_params(r) == {"error": "access_denied", "state": "st-9"}


def test_granular_consent_fewer_scopes(sd):
    q = sd.authorize(USER, scope=f"{CALENDAR_SCOPE} {EMAIL_SCOPE}", redirect_uri=REDIRECT)
    assert q["scope"] == f"{CALENDAR_SCOPE} {EMAIL_SCOPE}"
    r = requests.post(sd.url + "/o/oauth2/v2/consent", allow_redirects=False, timeout=10, data=[
        ("client_id", CLIENT_ID), ("redirect_uri", REDIRECT), ("response_type", "code"),
        ("scope", f"{CALENDAR_SCOPE} email"), ("email", USER), ("granted_scope", EMAIL_SCOPE),
        ("decision", "allow"), ("prompt", "consent")])
    q = redirect_params(r)
    assert q["scope"] == EMAIL_SCOPE
    t = exchange(sd, q["code"]).json()
    assert t["scope"] == EMAIL_SCOPE
    r = requests.post(events_url(sd), json=new_event(), headers=bearer(t["access_token"]), timeout=10)
    assert r.status_code == 403
    assert r.json()["error"]["errors"][0]["reason"] == "insufficientPermissions"
    assert r.json()["error"]["message"] == "Request had insufficient authentication scopes."
    assert r.json()["error"]["status"] == "PERMISSION_DENIED"


def test_auto_approve_and_refresh_token_only_on_consent(sd):
    sd.admin("config", {"auto_approve": True, "email": "dave@example.com"})
    verifier, challenge = pkce_pair()
    r = no_redirect_get(auth_url(sd, code_challenge=challenge, code_challenge_method="S256"))
    q = redirect_params(r)
    t = exchange(sd, q["code"], verifier).json()
    assert "refresh_token" in t
    info = requests.get(sd.url + "/userinfo/v2/me", headers=bearer(t["access_token"]), timeout=10).json()
    assert info["email"] == "dave@example.com"

    # Already consented: Google goes straight back and gives no new refresh token...
    sd.admin("config", {"auto_approve": False})
    q = redirect_params(no_redirect_get(auth_url(sd)))
    t = exchange(sd, q["code"]).json()
    assert "refresh_token" not in t and t["access_token"].startswith("ya29.")
    # ...unless prompt=consent shows the screen again.
    sd.admin("config", {"auto_approve": True})
    q = redirect_params(no_redirect_get(auth_url(sd, prompt="consent")))
    assert "refresh_token" in exchange(sd, q["code"]).json()
    # Online access never gets one.
    q = redirect_params(no_redirect_get(auth_url(sd, prompt="consent", access_type="online")))
    assert "refresh_token" not in exchange(sd, q["code"]).json()


def test_authorize_errors_never_redirect(sd):
    r = no_redirect_get(auth_url(sd, client_id="someone-else"))
    assert r.status_code == 400 and "Location" not in r.headers
    assert "Error 401: invalid_client" in r.text
    r = no_redirect_get(auth_url(sd, scope=None))
    assert r.status_code == 400 and "invalid_request" in r.text and "Location" not in r.headers
    r = no_redirect_get(auth_url(sd, redirect_uri="https://evil.example.com/cb"))
    assert r.status_code == 400 and "redirect_uri_mismatch" in r.text and "Location" not in r.headers
    r = no_redirect_get(auth_url(sd, response_type="token"))
    assert r.status_code == 400 and "Location" not in r.headers
    r = no_redirect_get(auth_url(sd, code_challenge="x" * 43, code_challenge_method="S512"))
    assert r.status_code == 400 and "invalid_request" in r.text
    r = no_redirect_get(auth_url(sd, scope="calendar"))
    assert r.status_code == 400 and "invalid_scope" in r.text
    # Registered URIs match exactly, trailing slash included.
    sd.admin("config", {"redirect_uris": ["http://127.0.0.1:9/other"]})
    r = no_redirect_get(auth_url(sd))
    assert r.status_code == 400 and "redirect_uri_mismatch" in r.text
    r = no_redirect_get(auth_url(sd, redirect_uri="http://127.0.0.1:9/other/"))
    assert r.status_code == 400 and "redirect_uri_mismatch" in r.text
    r = no_redirect_get(auth_url(sd, redirect_uri="http://127.0.0.1:9/other"))
    assert r.status_code == 200


def test_pkce_mismatch_and_missing_verifier(sd):
    verifier, challenge = pkce_pair()
    code = sd.authorize(USER, redirect_uri=REDIRECT, challenge=challenge)["code"]
    r = exchange(sd, code, pkce_pair()[0])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = exchange(sd, code)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = exchange(sd, code, "short")
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert exchange(sd, code, verifier).status_code == 200


def test_token_client_and_request_errors(sd):
    code = sd.authorize(USER, redirect_uri=REDIRECT)["code"]
    r = exchange(sd, code, secret="wrong")
    assert r.status_code == 401
    assert r.json() == {"error": "invalid_client", "error_description": "Unauthorized"}
    r = token_post(sd, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                        "client_id": "nobody", "client_secret": "x"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = token_post(sd, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
                   auth=(CLIENT_ID, "wrong"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = token_post(sd, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT + "x",
                        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = token_post(sd, {"grant_type": "authorization_code", "redirect_uri": REDIRECT,
                        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = token_post(sd, {"code": code, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = token_post(sd, {"grant_type": "password", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"
    r = token_post(sd, {"grant_type": "authorization_code", "code": "4/0bogus", "redirect_uri": REDIRECT,
                        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # HTTP Basic client authentication works as well as the body.
    r = token_post(sd, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
                   auth=(CLIENT_ID, CLIENT_SECRET))
    assert r.status_code == 200, r.text


def test_refresh(sd):
    t = tokens_for(sd)
    r = token_post(sd, {"grant_type": "refresh_token", "refresh_token": t["refresh_token"],
                        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"access_token", "expires_in", "scope", "token_type"}
    assert body["access_token"] != t["access_token"] and body["scope"] == t["scope"]
    for token in (t["access_token"], body["access_token"]):
        assert requests.get(events_url(sd), headers=bearer(token), timeout=10).status_code == 200
    r = token_post(sd, {"grant_type": "refresh_token", "refresh_token": "1//nope",
                        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
    stats = sd.admin("stats")
    assert stats["token_refreshes"] == {USER: 1}
    assert stats["live_grants"] == 1


def test_revoke_ends_grant(sd):
    t = tokens_for(sd)
    r = requests.post(sd.url + "/revoke", data={"token": t["refresh_token"]}, timeout=10)
    assert r.status_code == 200 and r.content == b""
    r = token_post(sd, {"grant_type": "refresh_token", "refresh_token": t["refresh_token"],
                        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
    r = requests.get(events_url(sd), headers=bearer(t["access_token"]), timeout=10)
    assert r.status_code == 401 and r.json() == INVALID_CREDENTIALS
    r = requests.post(sd.url + "/revoke?token=" + urllib.parse.quote(t["refresh_token"]), timeout=10)
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_token", "error_description": "Token expired or revoked"}
    # Revoking an access token (in the query) ends the grant too.
    t = tokens_for(sd)
    r = requests.post(sd.url + "/revoke?token=" + urllib.parse.quote(t["access_token"]), timeout=10)
    assert r.status_code == 200
    r = token_post(sd, {"grant_type": "refresh_token", "refresh_token": t["refresh_token"],
                        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert sd.admin("stats")["live_grants"] == 0


def test_userinfo(sd):
    t = tokens_for(sd)
    for path in ("/oauth2/v2/userinfo", "/userinfo/v2/me"):
        r = requests.get(sd.url + path, headers=bearer(t["access_token"]), timeout=10)
        assert r.status_code == 200
        info = r.json()
        assert info["email"] == USER and info["verified_email"] is True
        assert re.fullmatch(r"\d{21}", info["id"]) and info["picture"].startswith("https://")
    oidc = requests.get(sd.url + "/v1/userinfo", headers=bearer(t["access_token"]), timeout=10).json()
    assert oidc["sub"] == info["id"] and oidc["email_verified"] is True
    # Without an email scope there is no email.
    t2 = tokens_for(sd, email="erin@example.com", scope=CALENDAR_SCOPE)
    info2 = requests.get(sd.url + "/oauth2/v2/userinfo", headers=bearer(t2["access_token"]), timeout=10).json()
    assert "email" not in info2 and "id" in info2
    r = requests.get(sd.url + "/oauth2/v2/userinfo", timeout=10)
    assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"
    r = requests.get(sd.url + "/oauth2/v2/userinfo", headers=bearer("ya29.garbage"), timeout=10)
    assert r.status_code == 401 and r.json() == INVALID_CREDENTIALS


def test_openid_id_token(sd):
    t = sd.connect(USER, scope="openid email", redirect_uri=REDIRECT)
    assert t["scope"] == f"openid {EMAIL_SCOPE}"
    header, payload, _ = t["id_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["email"] == USER and claims["aud"] == CLIENT_ID and claims["iss"] == "https://accounts.google.com"


# --- Calendar ----------------------------------------------------------------


def test_insert_shape(sd):
    t = tokens_for(sd)
    ev = new_event(attendees=[{"email": "lead@example.org", "displayName": "Lead"}],
                   extendedProperties={"private": {"bookingId": "42"}})
    r = requests.post(events_url(sd) + "?sendUpdates=all", json=ev, headers=bearer(t["access_token"]), timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    e = r.json()
    assert e["kind"] == "calendar#event" and e["status"] == "confirmed"
    assert BASE32HEX.match(e["id"]) and e["iCalUID"] == e["id"] + "@google.com"
    assert re.fullmatch(r'"\d+"', e["etag"])
    assert RFC3339_MILLIS.match(e["created"]) and RFC3339_MILLIS.match(e["updated"])
    assert e["htmlLink"].startswith("https://www.google.com/calendar/event?eid=")
    assert e["summary"] == "Demo call" and e["description"] == "From the lead"
    assert e["start"] == ev["start"] and e["end"] == ev["end"]
    assert e["attendees"] == [{"email": "lead@example.org", "displayName": "Lead", "responseStatus": "needsAction"}]
    assert e["organizer"] == {"email": USER, "self": True} and e["creator"] == {"email": USER, "self": True}
    assert e["sequence"] == 0 and e["reminders"] == {"useDefault": True}
    assert e["extendedProperties"] == {"private": {"bookingId": "42"}}
    assert "conferenceData" not in e and "hangoutLink" not in e
    got = requests.get(events_url(sd, "/" + e["id"]), headers=bearer(t["access_token"]), timeout=10)
    assert got.status_code == 200 and got.json() == e
    # The account's email is the same calendar as "primary".
    got = requests.get(events_url(sd, "/" + e["id"], cal=USER), headers=bearer(t["access_token"]), timeout=10)
    assert got.status_code == 200 and got.json()["id"] == e["id"]
    r = requests.get(events_url(sd, cal="someone@example.com"), headers=bearer(t["access_token"]), timeout=10)
    assert r.status_code == 404


def test_insert_client_ids(sd):
    h = bearer(tokens_for(sd)["access_token"])
    r = requests.post(events_url(sd), json=new_event(id="lead0123abcv"), headers=h, timeout=10)
    assert r.status_code == 200 and r.json()["id"] == "lead0123abcv"
    for bad in ("lead-0123", "abcw1", "ab12", "UPPERCASE1", "x" * 6):
        r = requests.post(events_url(sd), json=new_event(id=bad), headers=h, timeout=10)
        assert r.status_code == 400, bad
        assert r.json() == google_error(400, "global", "invalid", "Invalid resource id value.", "INVALID_ARGUMENT")
    dup = google_error(409, "global", "duplicate", "The requested identifier already exists.", "ALREADY_EXISTS")
    r = requests.post(events_url(sd), json=new_event(id="lead0123abcv"), headers=h, timeout=10)
    assert r.status_code == 409 and r.json() == dup
    assert requests.delete(events_url(sd, "/lead0123abcv"), headers=h, timeout=10).status_code == 204
    r = requests.post(events_url(sd), json=new_event(id="lead0123abcv"), headers=h, timeout=10)
    assert r.status_code == 409 and r.json() == dup
    # Ids are per calendar: another account may use the same one.
    h2 = bearer(tokens_for(sd, email="frank@example.com")["access_token"])
    assert requests.post(events_url(sd), json=new_event(id="lead0123abcv"), headers=h2, timeout=10).status_code == 200


def test_insert_validation(sd):
    h = bearer(tokens_for(sd)["access_token"])

    def post(body, raw=None):
        if raw is not None:
            return requests.post(events_url(sd), data=raw, headers=dict(h, **{"Content-Type": "application/json"}),
                                 timeout=10)
        return requests.post(events_url(sd), json=body, headers=h, timeout=10)

    r = post(None, raw="{not json")
    assert r.status_code == 400
    assert r.json() == google_error(400, "global", "parseError", "Parse Error", "INVALID_ARGUMENT")
    ev = new_event()
    del ev["end"]
    r = post(ev)
    assert r.status_code == 400 and r.json()["error"]["errors"][0]["reason"] == "required"
    assert r.json()["error"]["message"] == "Missing end time."
    r = post(new_event(end={"dateTime": "2030-05-01T09:00:00+02:00"}))
    assert r.status_code == 400
    assert r.json() == google_error(400, "calendar", "timeRangeEmpty", "The specified time range is empty.",
                                    "INVALID_ARGUMENT")
    r = post(new_event(start={"dateTime": "2030-05-01T10:00:00"}, end={"dateTime": "2030-05-01T11:00:00"}))
    assert r.status_code == 400 and r.json()["error"]["code"] == 400
    # A local time with a zone is fine.
    r = post(new_event(start={"dateTime": "2030-05-01T10:00:00", "timeZone": "Asia/Kolkata"},
                       end={"dateTime": "2030-05-01T11:00:00", "timeZone": "Asia/Kolkata"}))
    assert r.status_code == 200, r.text
    r = post(new_event(start={"dateTime": "2030-05-01T10:00:00Z", "timeZone": "Mars/Olympus"}))
    assert r.status_code == 400
    r = post(new_event(start={"date": "2030-05-01"}, end={"date": "2030-05-02"}))
    assert r.status_code == 200, r.text
    r = post(new_event(start={"date": "2030-05-01"}))
    assert r.status_code == 400
    r = post(new_event(attendees=[{"displayName": "nobody"}]))
    assert r.status_code == 400 and r.json()["error"]["errors"][0]["reason"] == "required"
    r = post(new_event(sendUpdates="x"))
    assert r.status_code == 200
    r = requests.post(events_url(sd) + "?sendUpdates=sometimes", json=new_event(), headers=h, timeout=10)
    assert r.status_code == 400


def test_get_patch_update(sd):
    h = bearer(tokens_for(sd)["access_token"])
    e = requests.post(events_url(sd), json=new_event(attendees=[{"email": "a@example.org"}]), headers=h,
                      timeout=10).json()
    url = events_url(sd, "/" + e["id"])
    r = requests.patch(url, json={"description": "changed"}, headers=h, timeout=10)
    assert r.status_code == 200
    p = r.json()
    assert p["description"] == "changed" and p["summary"] == e["summary"] and p["start"] == e["start"]
    assert p["etag"] != e["etag"] and p["sequence"] == 0 and p["updated"] >= e["updated"]
    assert p["attendees"] == e["attendees"] and p["created"] == e["created"]
    new_start = {"dateTime": "2030-05-02T10:00:00+02:00"}
    new_end = {"dateTime": "2030-05-02T10:30:00+02:00"}
    r = requests.patch(url, json={"start": new_start, "end": new_end}, headers=h, timeout=10)
    p2 = r.json()
    assert p2["start"] == new_start and p2["end"] == new_end and p2["sequence"] == 1
    assert p2["etag"] != p["etag"]
    # Stale If-Match is refused; the current one is fine.
    r = requests.patch(url, json={"summary": "x"}, headers=dict(h, **{"If-Match": e["etag"]}), timeout=10)
    assert r.status_code == 412 and r.json()["error"]["errors"][0]["reason"] == "conditionNotMet"
    assert r.json()["error"]["status"] == "FAILED_PRECONDITION"
    r = requests.patch(url, json={"summary": "x"}, headers=dict(h, **{"If-Match": p2["etag"]}), timeout=10)
    assert r.status_code == 200 and r.json()["sequence"] == 2
    r = requests.patch(url, json={"end": {"dateTime": "2030-05-01T00:00:00Z"}}, headers=h, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["errors"][0]["reason"] == "timeRangeEmpty"
    # update replaces the whole event.
    r = requests.put(url, json={"summary": "Replaced", "start": new_start, "end": new_end}, headers=h, timeout=10)
    assert r.status_code == 200
    u = r.json()
    assert u["summary"] == "Replaced" and "description" not in u and "attendees" not in u
    assert u["id"] == e["id"] and u["created"] == e["created"] and u["iCalUID"] == e["iCalUID"]
    assert u["sequence"] == 3
    r = requests.put(url, json={"summary": "no times"}, headers=h, timeout=10)
    assert r.status_code == 400
    nf = google_error(404, "global", "notFound", "Not Found", "NOT_FOUND")
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        r = requests.request(method, events_url(sd, "/unknown0id"), json={}, headers=h, timeout=10)
        assert r.status_code == 404 and r.json() == nf, method


def test_delete_cancel_and_undelete(sd):
    h = bearer(tokens_for(sd)["access_token"])
    e = requests.post(events_url(sd), json=new_event(id="cancelme01"), headers=h, timeout=10).json()
    url = events_url(sd, "/cancelme01")
    r = requests.delete(url + "?sendUpdates=all", headers=h, timeout=10)
    assert r.status_code == 204 and r.content == b""
    r = requests.delete(url, headers=h, timeout=10)
    assert r.status_code == 410
    assert r.json() == google_error(410, "global", "deleted", "Resource has been deleted", "NOT_FOUND")
    g = requests.get(url, headers=h, timeout=10)
    assert g.status_code == 200 and g.json()["status"] == "cancelled" and g.json()["sequence"] == 1
    assert g.json()["etag"] != e["etag"]
    ids = [i["id"] for i in requests.get(events_url(sd), headers=h, timeout=10).json()["items"]]
    assert "cancelme01" not in ids
    items = requests.get(events_url(sd) + "?showDeleted=true", headers=h, timeout=10).json()["items"]
    assert [i["status"] for i in items if i["id"] == "cancelme01"] == ["cancelled"]
    # Patching the status back is how a client reuses a deleted id.
    r = requests.patch(url, json={"status": "confirmed", "summary": "Back"}, headers=h, timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "confirmed"
    ids = [i["id"] for i in requests.get(events_url(sd), headers=h, timeout=10).json()["items"]]
    assert "cancelme01" in ids


def test_list_filters_and_paging(sd):
    h = bearer(tokens_for(sd)["access_token"])
    for day, booking in ((3, "1"), (1, "2"), (2, "3"), (4, "2")):
        r = requests.post(events_url(sd), headers=h, timeout=10, json=new_event(
            start={"dateTime": f"2030-06-0{day}T09:00:00Z"}, end={"dateTime": f"2030-06-0{day}T10:00:00Z"},
            extendedProperties={"private": {"bookingId": booking}, "shared": {"k": booking}}))
        assert r.status_code == 200
    r = requests.get(events_url(sd), headers=h, timeout=10)
    body = r.json()
    assert r.status_code == 200
    assert body["kind"] == "calendar#events" and body["timeZone"] == "Europe/Zurich"
    assert body["summary"] == USER and body["accessRole"] == "owner" and body["defaultReminders"] == []
    assert len(body["items"]) == 4 and RFC3339_MILLIS.match(body["updated"])
    r = requests.get(events_url(sd), params={"privateExtendedProperty": "bookingId=2"}, headers=h, timeout=10)
    assert [i["start"]["dateTime"][:10] for i in r.json()["items"]] == ["2030-06-01", "2030-06-04"]
    r = requests.get(events_url(sd), params=[("privateExtendedProperty", "bookingId=2"),
                                            ("sharedExtendedProperty", "k=1")], headers=h, timeout=10)
    assert r.json()["items"] == []
    r = requests.get(events_url(sd), params={"timeMin": "2030-06-02T00:00:00+00:00",
                                            "timeMax": "2030-06-04T00:00:00Z", "singleEvents": "true",
                                            "orderBy": "startTime"}, headers=h, timeout=10)
    assert [i["start"]["dateTime"][:10] for i in r.json()["items"]] == ["2030-06-02", "2030-06-03"]
    r = requests.get(events_url(sd), params={"orderBy": "startTime"}, headers=h, timeout=10)
    assert r.status_code == 400
    r = requests.get(events_url(sd), params={"timeMin": "yesterday"}, headers=h, timeout=10)
    assert r.status_code == 400
    seen = []
    params = {"maxResults": 3, "singleEvents": "true", "orderBy": "startTime"}
    while True:
        page = requests.get(events_url(sd), params=params, headers=h, timeout=10).json()
        seen += [i["start"]["dateTime"][:10] for i in page["items"]]
        if "nextPageToken" not in page:
            break
        params["pageToken"] = page["nextPageToken"]
    assert seen == ["2030-06-01", "2030-06-02", "2030-06-03", "2030-06-04"]
    sd.admin("accounts", {"email": USER, "timezone": "America/New_York"})
    assert requests.get(events_url(sd), headers=h, timeout=10).json()["timeZone"] == "America/New_York"


def test_meet_conference(sd):
    h = bearer(tokens_for(sd)["access_token"])
    create = {"createRequest": {"requestId": "req-1", "conferenceSolutionKey": {"type": "hangoutsMeet"}}}
    r = requests.post(events_url(sd) + "?conferenceDataVersion=1", json=new_event(conferenceData=create),
                      headers=h, timeout=10)
    assert r.status_code == 200, r.text
    e = r.json()
    cd = e["conferenceData"]
    assert re.fullmatch(r"[a-z]{3}-[a-z]{4}-[a-z]{3}", cd["conferenceId"])
    assert cd["createRequest"] == {"requestId": "req-1", "conferenceSolutionKey": {"type": "hangoutsMeet"},
                                   "status": {"statusCode": "success"}}
    assert cd["entryPoints"] == [{"entryPointType": "video", "uri": "https://meet.google.com/" + cd["conferenceId"],
                                  "label": "meet.google.com/" + cd["conferenceId"]}]
    assert cd["conferenceSolution"]["key"] == {"type": "hangoutsMeet"}
    assert cd["conferenceSolution"]["name"] == "Google Meet" and cd["conferenceSolution"]["iconUri"]
    assert e["hangoutLink"] == "https://meet.google.com/" + cd["conferenceId"]
    url = events_url(sd, "/" + e["id"])
    # The same requestId again is ignored; conference changes without version 1 are dropped.
    r = requests.patch(url + "?conferenceDataVersion=1", json={"conferenceData": create, "summary": "s2"},
                       headers=h, timeout=10)
    assert r.json()["conferenceData"]["conferenceId"] == cd["conferenceId"]
    r = requests.patch(url, json={"conferenceData": None, "summary": "s3"}, headers=h, timeout=10)
    assert r.json()["conferenceData"]["conferenceId"] == cd["conferenceId"]
    r = requests.post(events_url(sd) + "?conferenceDataVersion=0", json=new_event(conferenceData=create),
                      headers=h, timeout=10)
    assert r.status_code == 200 and "conferenceData" not in r.json() and "hangoutLink" not in r.json()
    r = requests.post(events_url(sd), json=new_event(conferenceData=create), headers=h, timeout=10)
    assert "conferenceData" not in r.json()
    bad = {"createRequest": {"requestId": "r", "conferenceSolutionKey": {"type": "eventHangout"}}}
    r = requests.post(events_url(sd) + "?conferenceDataVersion=1", json=new_event(conferenceData=bad),
                      headers=h, timeout=10)
    assert r.status_code == 400


def test_expired_and_missing_token(sd):
    t = tokens_for(sd)
    h = bearer(t["access_token"])
    assert requests.get(events_url(sd), headers=h, timeout=10).status_code == 200
    assert sd.admin("expire-tokens", {"email": USER}) == {"expired": 1}
    r = requests.get(events_url(sd), headers=h, timeout=10)
    assert r.status_code == 401 and r.json() == INVALID_CREDENTIALS
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    r = requests.get(events_url(sd), timeout=10)
    assert r.status_code == 401 and r.json()["error"]["errors"][0]["reason"] == "required"
    # A refresh still works after expiry.
    r = token_post(sd, {"grant_type": "refresh_token", "refresh_token": t["refresh_token"],
                        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert requests.get(events_url(sd), headers=bearer(r.json()["access_token"]), timeout=10).status_code == 200


def test_admin_revoke_grants(sd):
    t = tokens_for(sd)
    assert sd.admin("revoke-grants", {"email": USER}) == {"revoked": 1}
    r = token_post(sd, {"grant_type": "refresh_token", "refresh_token": t["refresh_token"],
                        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = requests.get(events_url(sd), headers=bearer(t["access_token"]), timeout=10)
    assert r.status_code == 401
    # The consent is gone too: the next authorization shows the page again.
    assert no_redirect_get(auth_url(sd, login_hint=USER)).status_code == 200


# --- faults ------------------------------------------------------------------


def test_fault_rules(sd):
    h = bearer(tokens_for(sd)["access_token"])
    sd.admin("faults", {"rules": [
        {"method": "POST", "path_prefix": "/calendar/v3/", "status": 500, "count": 2, "reason": "backendError"},
        {"method": "GET", "path_prefix": "/calendar/v3/", "status": 429},
        {"path_prefix": "/calendar/v3/", "status": 403, "reason": "rateLimitExceeded"},
        {"path_prefix": "/calendar/v3/", "status": 403, "reason": "userRateLimitExceeded"},
        {"path_prefix": "/calendar/v3/", "status": 503},
        {"path_prefix": "/token", "status": 500},
    ]})
    backend = google_error(500, "global", "backendError", "Backend Error", "INTERNAL")
    for _ in range(2):
        r = requests.post(events_url(sd), json=new_event(), headers=h, timeout=10)
        assert r.status_code == 500 and r.json() == backend
    r = requests.get(events_url(sd), headers=h, timeout=10)
    assert r.status_code == 429
    assert r.json() == google_error(429, "usageLimits", "rateLimitExceeded", "Rate Limit Exceeded",
                                    "RESOURCE_EXHAUSTED")
    r = requests.get(events_url(sd), headers=h, timeout=10)
    assert r.status_code == 403
    assert r.json() == google_error(403, "usageLimits", "rateLimitExceeded", "Rate Limit Exceeded",
                                    "PERMISSION_DENIED")
    r = requests.get(events_url(sd), headers=h, timeout=10)
    assert r.status_code == 403 and r.json()["error"]["errors"][0] == {
        "domain": "usageLimits", "reason": "userRateLimitExceeded", "message": "User Rate Limit Exceeded"}
    r = requests.get(events_url(sd), headers=h, timeout=10)
    assert r.status_code == 503
    assert r.json() == google_error(503, "global", "backendError", "The service is currently unavailable.",
                                    "UNAVAILABLE")
    r = requests.post(events_url(sd), json=new_event(id="afterfault1"), headers=h, timeout=10)
    assert r.status_code == 200
    # Admin requests are never faulted, even while a token rule waits.
    assert sd.admin("faults")["rules"] == [{"path_prefix": "/token", "status": 500, "count": 1}]
    r = token_post(sd, {"grant_type": "refresh_token", "refresh_token": "1//x", "client_id": CLIENT_ID,
                        "client_secret": CLIENT_SECRET})
    assert r.status_code == 500 and r.json()["error"] == "internal_failure"
    assert requests.get(events_url(sd), headers=h, timeout=10).status_code == 200
    stats = sd.admin("stats")
    assert stats["faults_injected"] == 7
    assert stats["endpoints"]["events.insert"] == {"500": 2, "200": 1}


def test_random_faults_seeded_and_cleared(sd):
    h = bearer(tokens_for(sd)["access_token"])
    sd.admin("faults", {"fail_fraction": 1.0, "fail_statuses": [503], "seed": 7,
                        "fail_path_prefix": "/calendar/v3/"})
    for _ in range(3):
        assert requests.get(events_url(sd), headers=h, timeout=10).status_code == 503
    assert requests.get(sd.url + "/oauth2/v2/userinfo", headers=h, timeout=10).status_code == 200
    sd.admin("faults", method="DELETE")
    assert requests.get(events_url(sd), headers=h, timeout=10).status_code == 200
    sd.admin("faults", {"fail_fraction": 0.5, "seed": 123})
    first = [requests.get(events_url(sd), headers=h, timeout=10).status_code for _ in range(20)]
    sd.admin("faults", {"fail_fraction": 0.5, "seed": 123})
    second = [requests.get(events_url(sd), headers=h, timeout=10).status_code for _ in range(20)]
    assert first == second and 200 in first and set(first) - {200}
    with pytest.raises(StandinError):
        sd.admin("faults", {"fail_fraction": 2})
    with pytest.raises(StandinError):
        sd.admin("faults", {"bogus": 1})


def test_latency_does_not_block(sd):
    h = bearer(tokens_for(sd)["access_token"])
    sd.admin("faults", {"latency_ms": 300})
    times = {}

    def call(i):
        t0 = time.monotonic()
        r = requests.get(events_url(sd), headers=h, timeout=10)
        times[i] = (r.status_code, time.monotonic() - t0)

    t0 = time.monotonic()
    threads = [threading.Thread(target=call, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    # Admin calls are answered at once meanwhile.
    a0 = time.monotonic()
    sd.admin("stats")
    admin_time = time.monotonic() - a0
    for t in threads:
        t.join()
    total = time.monotonic() - t0
    assert all(s == 200 and d >= 0.29 for s, d in times.values()), times
    assert total < 0.55, total
    assert admin_time < 0.25, admin_time


def test_rule_latency_only(sd):
    h = bearer(tokens_for(sd)["access_token"])
    sd.admin("faults", {"rules": [{"path_prefix": "/calendar/v3/", "latency_ms": 200}]})
    t0 = time.monotonic()
    assert requests.get(events_url(sd), headers=h, timeout=10).status_code == 200
    assert time.monotonic() - t0 >= 0.19
    t0 = time.monotonic()
    requests.get(events_url(sd), headers=h, timeout=10)
    assert time.monotonic() - t0 < 0.19


# --- admin and limits --------------------------------------------------------


def test_admin_views(sd):
    t = tokens_for(sd)
    h = bearer(t["access_token"])
    create = {"createRequest": {"requestId": "r1", "conferenceSolutionKey": {"type": "hangoutsMeet"}}}
    e = requests.post(events_url(sd) + "?sendUpdates=all&conferenceDataVersion=1",
                      json=new_event(conferenceData=create), headers=h, timeout=10).json()
    requests.patch(events_url(sd, "/" + e["id"]) + "?sendUpdates=none", json={"summary": "x"}, headers=h,
                   timeout=10)
    requests.delete(events_url(sd, "/" + e["id"]) + "?sendUpdates=all", headers=h, timeout=10)
    evs = sd.admin("events?email=" + USER)["events"]
    assert len(evs) == 1
    meta = evs[0]["_standin"]
    assert meta["send_updates"] == ["all", "none", "all"]
    assert meta["ops"] == ["insert", "patch", "delete"]
    assert meta["writes"] == 3 and meta["conference_data_version"] is None
    assert meta["history"][0]["conference_data_version"] == 1
    assert evs[0]["status"] == "cancelled"
    assert sd.admin("events?email=nobody@example.com")["events"] == []
    stats = sd.admin("stats")
    assert stats["endpoints"]["events.insert"] == {"200": 1}
    assert stats["endpoints"]["events.delete"] == {"204": 1}
    assert stats["endpoints"]["token"] == {"200": 1}
    assert stats["live_grants"] == 1 and stats["events"] == 1
    reqs = sd.admin("requests")["requests"]
    assert [r["endpoint"] for r in reqs][-3:] == ["events.insert", "events.patch", "events.delete"]
    assert reqs[-1]["status"] == 204 and reqs[-1]["email"] == USER and reqs[-1]["method"] == "DELETE"
    dump = json.dumps(reqs)
    assert t["access_token"] not in dump and t["refresh_token"] not in dump and "?" not in dump
    assert sd.admin("accounts")["accounts"][0]["email"] == USER
    sd.admin("config", {"timezone": "Asia/Tokyo", "access_token_ttl": 60})
    assert sd.admin("config")["timezone"] == "Asia/Tokyo"
    with pytest.raises(StandinError):
        sd.admin("config", {"timezone": "Nowhere/Special"})
    sd.admin("reset", {})
    assert sd.admin("events")["events"] == [] and sd.admin("requests")["requests"] == []
    assert sd.admin("config")["timezone"] == "Europe/Zurich"
    assert requests.get(events_url(sd), headers=h, timeout=10).status_code == 401
    with pytest.raises(StandinError):
        sd.admin("nothing-here")


def test_other_calendar_endpoints(sd):
    t = tokens_for(sd, scope="https://www.googleapis.com/auth/calendar")
    h = bearer(t["access_token"])
    r = requests.get(f"{sd.url}/calendar/v3/users/me/settings/timezone", headers=h, timeout=10)
    assert r.status_code == 200 and r.json()["value"] == "Europe/Zurich"
    r = requests.get(f"{sd.url}/calendar/v3/calendars/primary", headers=h, timeout=10)
    assert r.status_code == 200 and r.json()["id"] == USER and r.json()["timeZone"] == "Europe/Zurich"
    r = requests.get(f"{sd.url}/calendar/v3/users/me/calendarList/primary", headers=h, timeout=10)
    assert r.status_code == 200 and r.json()["primary"] is True
    # calendar.events alone may not read settings, as with Google.
    h2 = bearer(tokens_for(sd, email="gina@example.com")["access_token"])
    r = requests.get(f"{sd.url}/calendar/v3/users/me/settings/timezone", headers=h2, timeout=10)
    assert r.status_code == 403
    r = requests.get(f"{sd.url}/calendar/v3/calendars/primary/acl", headers=h, timeout=10)
    assert r.status_code == 404 and r.json()["error"]["errors"][0]["reason"] == "notFound"


def test_body_too_large(sd):
    h = bearer(tokens_for(sd)["access_token"])
    r = requests.post(events_url(sd), data=b"{" + b" " * (1024 * 1024 + 10) + b"}",
                      headers=dict(h, **{"Content-Type": "application/json"}), timeout=30)
    assert r.status_code == 413
    assert requests.get(events_url(sd), headers=h, timeout=10).status_code == 200


def test_many_events_stay_fast(sd):
    h = bearer(tokens_for(sd)["access_token"])
    s = requests.Session()
    t0 = time.monotonic()
    for i in range(2000):
        r = s.post(events_url(sd), json=new_event(id=f"bulk{i:05d}"), headers=h, timeout=10)
        assert r.status_code == 200
    assert time.monotonic() - t0 < 30
    r = s.get(events_url(sd, "/bulk01999"), headers=h, timeout=10)
    assert r.status_code == 200
    r = s.get(events_url(sd), params={"maxResults": 2500}, headers=h, timeout=10)
    assert len(r.json()["items"]) == 2000


# --- freeBusy ----------------------------------------------------------------

FREEBUSY_SCOPE = "https://www.googleapis.com/auth/calendar.freebusy"


def freebusy(sd, body, token=None, raw=None):
    headers = bearer(token) if token is not None else {}
    if raw is not None:
        return requests.post(f"{sd.url}/calendar/v3/freeBusy", data=raw,
                             headers=dict(headers, **{"Content-Type": "application/json"}), timeout=10)
    return requests.post(f"{sd.url}/calendar/v3/freeBusy", json=body, headers=headers, timeout=10)


def fb_token(sd, email=USER, scope=FREEBUSY_SCOPE):
    return tokens_for(sd, email=email, scope=scope)["access_token"]


def ui_event(sd, start, end, email=USER, **extra):
    """The user adds an event in Google's UI; start/end are RFC 3339 strings or dates."""
    key = "date" if len(start) == 10 else "dateTime"
    ev = dict({"summary": "Busy", "start": {key: start}, "end": {key: end}}, **extra)
    return sd.admin("events", {"email": email, "event": ev})


def fb_query(tmin="2030-05-01T00:00:00Z", tmax="2030-05-02T00:00:00Z", ids=("primary",), **extra):
    return dict({"timeMin": tmin, "timeMax": tmax, "items": [{"id": i} for i in ids]}, **extra)


def spans(*pairs):
    return [{"start": s, "end": e} for s, e in pairs]


def test_freebusy_merges_clips_and_sorts(sd):
    t = fb_token(sd)
    # Out of order, overlapping, touching, and one reaching past each end of the window.
    ui_event(sd, "2030-05-01T14:00:00Z", "2030-05-01T15:00:00Z")
    ui_event(sd, "2030-05-01T09:00:00Z", "2030-05-01T10:00:00Z")
    ui_event(sd, "2030-05-01T09:30:00Z", "2030-05-01T11:00:00Z")
    ui_event(sd, "2030-05-01T11:00:00Z", "2030-05-01T11:30:00Z")
    ui_event(sd, "2030-04-30T22:00:00Z", "2030-05-01T01:00:00Z")
    ui_event(sd, "2030-05-01T23:00:00Z", "2030-05-02T02:00:00+00:00")
    ui_event(sd, "2030-05-01T16:00:00+02:00", "2030-05-01T16:45:00+02:00")  # 14:00-14:45Z, inside the first
    ui_event(sd, "2030-04-29T09:00:00Z", "2030-04-29T10:00:00Z")  # before the window
    ui_event(sd, "2030-05-02T00:00:00Z", "2030-05-02T01:00:00Z")  # starts at timeMax: outside
    r = freebusy(sd, fb_query(), t)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert r.json() == {
        "kind": "calendar#freeBusy", "timeMin": "2030-05-01T00:00:00.000Z", "timeMax": "2030-05-02T00:00:00.000Z",
        "calendars": {"primary": {"busy": spans(
            ("2030-05-01T00:00:00Z", "2030-05-01T01:00:00Z"),
            ("2030-05-01T09:00:00Z", "2030-05-01T11:30:00Z"),
            ("2030-05-01T14:00:00Z", "2030-05-01T15:00:00Z"),
            ("2030-05-01T23:00:00Z", "2030-05-02T00:00:00Z"))}}}
    # The account's own email is the same calendar, under the key asked; an empty window is no span.
    r = freebusy(sd, fb_query("2030-05-01T12:00:00+02:00", "2030-05-01T13:00:00+02:00", ids=[USER.upper()]), t)
    assert r.json() == {"kind": "calendar#freeBusy", "timeMin": "2030-05-01T10:00:00.000Z",
                        "timeMax": "2030-05-01T11:00:00.000Z",
                        "calendars": {USER.upper(): {"busy": spans(("2030-05-01T10:00:00Z",
                                                                     "2030-05-01T11:00:00Z"))}}}
    r = freebusy(sd, fb_query("2030-05-01T16:00:00Z", "2030-05-01T20:00:00Z"), t)
    assert r.json()["calendars"] == {"primary": {"busy": []}}
    stats = sd.admin("stats")
    assert stats["endpoints"]["freebusy.query"] == {"200": 3}


def test_freebusy_time_zone_of_answer(sd):
    t = fb_token(sd)
    ui_event(sd, "2030-01-07T15:00:00Z", "2030-01-07T16:00:00Z")
    r = freebusy(sd, fb_query("2030-01-07T00:00:00-05:00", "2030-01-08T00:00:00-05:00",
                              timeZone="America/New_York"), t)
    # timeMin/timeMax come back in UTC with milliseconds; busy spans in the zone asked.
    assert r.json() == {"kind": "calendar#freeBusy", "timeMin": "2030-01-07T05:00:00.000Z",
                        "timeMax": "2030-01-08T05:00:00.000Z",
                        "calendars": {"primary": {"busy": spans(("2030-01-07T10:00:00-05:00",
                                                                  "2030-01-07T11:00:00-05:00"))}}}
    # A zone Google does not know answers in UTC rather than failing.
    r = freebusy(sd, fb_query("2030-01-07T00:00:00Z", "2030-01-08T00:00:00Z", timeZone="-05:00"), t)
    assert r.json()["calendars"]["primary"]["busy"] == spans(("2030-01-07T15:00:00Z", "2030-01-07T16:00:00Z"))


def test_freebusy_transparent_cancelled_and_other_free_time(sd):
    t = fb_token(sd)
    h = bearer(tokens_for(sd)["access_token"])  # calendar.events: the client's own writes
    ui_event(sd, "2030-05-01T08:00:00Z", "2030-05-01T09:00:00Z", transparency="transparent")
    ui_event(sd, "2030-05-01T10:00:00Z", "2030-05-01T11:00:00Z", transparency="opaque")
    ui_event(sd, "2030-05-01T12:00:00Z", "2030-05-01T13:00:00Z", status="tentative")
    ui_event(sd, "2030-05-01T14:00:00Z", "2030-05-01T15:00:00Z", status="cancelled")
    ui_event(sd, "2030-05-01T07:00:00Z", "2030-05-01T17:00:00Z", eventType="workingLocation")
    ui_event(sd, "2030-05-01T18:00:00Z", "2030-05-01T18:00:00Z")  # zero length: no span
    r = requests.post(events_url(sd), headers=h, timeout=10, json=new_event(
        id="deletedlater1", start={"dateTime": "2030-05-01T20:00:00Z"}, end={"dateTime": "2030-05-01T21:00:00Z"}))
    assert r.status_code == 200
    assert requests.delete(events_url(sd, "/deletedlater1"), headers=h, timeout=10).status_code == 204
    r = requests.post(events_url(sd), headers=h, timeout=10, json=new_event(
        start={"dateTime": "2030-05-01T21:00:00Z"}, end={"dateTime": "2030-05-01T21:30:00Z"}))
    assert r.status_code == 200
    r = freebusy(sd, fb_query(), t)
    assert r.json()["calendars"]["primary"]["busy"] == spans(
        ("2030-05-01T10:00:00Z", "2030-05-01T11:00:00Z"),
        ("2030-05-01T12:00:00Z", "2030-05-01T13:00:00Z"),
        ("2030-05-01T21:00:00Z", "2030-05-01T21:30:00Z"))


def test_freebusy_all_day_events_in_calendar_zone(sd):
    t = fb_token(sd)
    # The calendar's zone is Europe/Zurich (UTC+2 in May): the day is 22:00Z to 22:00Z.
    ui_event(sd, "2030-05-02", "2030-05-03")
    r = freebusy(sd, fb_query("2030-05-01T00:00:00Z", "2030-05-04T00:00:00Z"), t)
    assert r.json()["calendars"]["primary"]["busy"] == spans(("2030-05-01T22:00:00Z", "2030-05-02T22:00:00Z"))
    r = freebusy(sd, fb_query("2030-05-02T12:00:00+02:00", "2030-05-02T13:00:00+02:00", timeZone="Europe/Zurich"),
                 t)
    assert r.json()["calendars"]["primary"]["busy"] == spans(("2030-05-02T12:00:00+02:00",
                                                              "2030-05-02T13:00:00+02:00"))
    # An account with its own zone: its all-day event follows that zone.
    sd.admin("accounts", {"email": "tokyo@example.com", "timezone": "Asia/Tokyo"})
    ui_event(sd, "2030-05-02", "2030-05-04", email="tokyo@example.com")
    t2 = fb_token(sd, email="tokyo@example.com")
    r = freebusy(sd, fb_query("2030-05-01T00:00:00Z", "2030-05-05T00:00:00Z"), t2)
    assert r.json()["calendars"]["primary"]["busy"] == spans(("2030-05-01T15:00:00Z", "2030-05-03T15:00:00Z"))


def test_freebusy_calendars_the_token_cannot_see(sd):
    ui_event(sd, "2030-05-01T09:00:00Z", "2030-05-01T10:00:00Z", email="bob@example.com")
    ui_event(sd, "2030-05-01T11:00:00Z", "2030-05-01T12:00:00Z")
    t = fb_token(sd)
    r = freebusy(sd, fb_query(ids=["bob@example.com", "primary", "nobody@group.calendar.google.com",
                                   "primary"]), t)
    assert r.status_code == 200
    not_found = {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}
    assert r.json()["calendars"] == {
        "bob@example.com": not_found,
        "primary": {"busy": spans(("2030-05-01T11:00:00Z", "2030-05-01T12:00:00Z"))},
        "nobody@group.calendar.google.com": not_found}
    assert list(r.json()["calendars"]) == ["bob@example.com", "primary", "nobody@group.calendar.google.com"]
    # No items: no calendars, still a 200.
    r = freebusy(sd, {"timeMin": "2030-05-01T00:00:00Z", "timeMax": "2030-05-02T00:00:00Z"}, t)
    assert r.status_code == 200 and r.json()["calendars"] == {}


def test_freebusy_too_many_calendars(sd):
    t = fb_token(sd)
    ui_event(sd, "2030-05-01T09:00:00Z", "2030-05-01T10:00:00Z")
    ids = ["primary"] + [f"c{i}@example.com" for i in range(50)]
    r = freebusy(sd, fb_query(ids=ids), t)
    assert r.status_code == 200
    cals = r.json()["calendars"]
    assert len(cals) == 51
    assert all(c == {"errors": [{"domain": "global", "reason": "tooManyCalendarsRequested"}], "busy": []}
               for c in cals.values())
    # calendarExpansionMax lowers the limit; exactly at it, every calendar is answered.
    r = freebusy(sd, fb_query(ids=ids[:3], calendarExpansionMax=2), t)
    assert r.json()["calendars"]["primary"]["errors"][0]["reason"] == "tooManyCalendarsRequested"
    r = freebusy(sd, fb_query(ids=ids[:2], calendarExpansionMax=2), t)
    assert r.json()["calendars"]["primary"] == {"busy": spans(("2030-05-01T09:00:00Z", "2030-05-01T10:00:00Z"))}
    r = freebusy(sd, fb_query(ids=ids[:50]), t)
    assert r.json()["calendars"]["primary"]["busy"] != []


def test_freebusy_bad_requests(sd):
    t = fb_token(sd)

    def error_of(r):
        assert r.status_code == 400, r.text
        e = r.json()["error"]
        assert e["code"] == 400 and e["status"] == "INVALID_ARGUMENT" and len(e["errors"]) == 1
        assert e["message"] == e["errors"][0]["message"]
        return e["errors"][0]

    e = error_of(freebusy(sd, fb_query("2030-05-02T00:00:00Z", "2030-05-01T00:00:00Z"), t))
    assert e == {"domain": "calendar", "reason": "timeRangeEmpty", "message": "The specified time range is empty.",
                 "locationType": "parameter", "location": "timeMax"}
    e = error_of(freebusy(sd, fb_query("2030-05-01T02:00:00+02:00", "2030-05-01T00:00:00Z"), t))
    assert e["reason"] == "timeRangeEmpty"
    # 62 days is the longest window; a second more is too long.
    r = freebusy(sd, fb_query("2030-05-01T00:00:00Z", "2030-07-02T00:00:00Z"), t)
    assert r.status_code == 200
    e = error_of(freebusy(sd, fb_query("2030-05-01T00:00:00Z", "2030-07-02T00:00:01Z"), t))
    assert e == {"domain": "calendar", "reason": "timeRangeTooLong",
                 "message": "The requested time range is too long.", "locationType": "parameter",
                 "location": "timeMax"}
    for field in ("timeMin", "timeMax"):
        body = fb_query()
        del body[field]
        e = error_of(freebusy(sd, body, t))
        assert e["domain"] == "global" and e["reason"] == "required" and e["location"] == field
        for bad in ("2030-05-01T00:00:00", "2030-05-01", "tomorrow", 1893456000):
            e = error_of(freebusy(sd, dict(fb_query(), **{field: bad}), t))
            assert e["reason"] == "invalid" and e["location"] == field, bad
    e = error_of(freebusy(sd, {"timeMin": "2030-05-01T00:00:00Z", "timeMax": "2030-05-02T00:00:00Z",
                               "items": [{}]}, t))
    assert e["reason"] == "required"
    assert error_of(freebusy(sd, fb_query(items="primary"), t))["reason"] == "invalid"
    assert error_of(freebusy(sd, fb_query(calendarExpansionMax=-1), t))["reason"] == "invalid"
    assert error_of(freebusy(sd, fb_query(timeZone=5), t))["reason"] == "invalid"
    for raw in (b"{not json", b"[]", b'"x"'):
        e = error_of(freebusy(sd, None, t, raw=raw))
        assert e == {"domain": "global", "reason": "parseError", "message": "Parse Error"}
    # An empty body lacks timeMin.
    assert error_of(freebusy(sd, None, t, raw=b""))["reason"] == "required"


def test_freebusy_auth_and_scopes(sd):
    r = freebusy(sd, fb_query())
    assert r.status_code == 401 and r.json()["error"]["errors"][0]["reason"] == "required"
    r = freebusy(sd, fb_query(), "ya29.not-a-token")
    assert r.status_code == 401 and r.json() == INVALID_CREDENTIALS
    # Google's freebusy.query takes calendar, calendar.readonly, calendar.freebusy or
    # calendar.events.freebusy; the events scopes are not enough.
    for i, scope in enumerate(["calendar", "calendar.readonly", "calendar.freebusy", "calendar.events.freebusy"]):
        t = fb_token(sd, email=f"ok{i}@example.com", scope="https://www.googleapis.com/auth/" + scope)
        assert freebusy(sd, fb_query(), t).status_code == 200, scope
    for i, scope in enumerate(["calendar.events", "calendar.events.readonly", "calendar.events.owned",
                               "userinfo.email"]):
        t = fb_token(sd, email=f"no{i}@example.com", scope="https://www.googleapis.com/auth/" + scope)
        r = freebusy(sd, fb_query(), t)
        assert r.status_code == 403, scope
        assert r.json()["error"]["errors"][0]["reason"] == "insufficientPermissions"
        assert r.json()["error"]["message"] == "Request had insufficient authentication scopes."
    # An expired token is a 401 like everywhere else.
    t = fb_token(sd, email="late@example.com")
    sd.admin("expire-tokens", {"email": "late@example.com"})
    assert freebusy(sd, fb_query(), t).json() == INVALID_CREDENTIALS
    # Scopes are checked before the body.
    t = fb_token(sd, email="no9@example.com", scope=CALENDAR_SCOPE)
    assert freebusy(sd, None, t, raw=b"{").status_code == 403


def test_freebusy_faults(sd):
    t = fb_token(sd)
    sd.admin("faults", {"rules": [
        {"method": "POST", "path_prefix": "/calendar/v3/freeBusy", "status": 429},
        {"path_prefix": "/calendar/v3/freeBusy", "status": 403, "reason": "rateLimitExceeded"},
        {"path_prefix": "/calendar/v3/freeBusy", "status": 500},
        {"path_prefix": "/calendar/v3/freeBusy", "latency_ms": 300},
    ]})
    r = freebusy(sd, fb_query(), t)
    assert r.status_code == 429 and r.json() == google_error(429, "usageLimits", "rateLimitExceeded",
                                                             "Rate Limit Exceeded", "RESOURCE_EXHAUSTED")
    r = freebusy(sd, fb_query(), t)
    assert r.status_code == 403 and r.json() == google_error(403, "usageLimits", "rateLimitExceeded",
                                                             "Rate Limit Exceeded", "PERMISSION_DENIED")
    r = freebusy(sd, fb_query(), t)
    assert r.status_code == 500 and r.json() == google_error(500, "global", "backendError", "Backend Error",
                                                             "INTERNAL")
    t0 = time.monotonic()
    r = freebusy(sd, fb_query(), t)
    assert r.status_code == 200 and time.monotonic() - t0 >= 0.3
    assert sd.admin("faults")["rules"] == []
    assert sd.admin("stats")["endpoints"]["freebusy.query"] == {"429": 1, "403": 1, "500": 1, "200": 1}
    # Random failures limited to the path apply to it too.
    sd.admin("faults", {"fail_fraction": 1.0, "fail_statuses": [503], "fail_path_prefix": "/calendar/v3/freeBusy"})
    assert freebusy(sd, fb_query(), t).status_code == 503
    assert requests.get(events_url(sd), headers=bearer(tokens_for(sd)["access_token"]), timeout=10).status_code == 200


def test_freebusy_per_calendar_error_knob(sd):
    t = fb_token(sd)
    ui_event(sd, "2030-05-01T09:00:00Z", "2030-05-01T10:00:00Z")
    assert sd.admin("freebusy") == {"calendar_errors": {}, "max_range_days": 62}
    answer = sd.admin("freebusy", {"calendar_errors": {USER.upper(): "internalError"}})
    assert answer == {"calendar_errors": {USER: {"domain": "global", "reason": "internalError"}},
                      "max_range_days": 62}
    r = freebusy(sd, fb_query(ids=["primary", USER, "bob@example.com"]), t)
    assert r.status_code == 200
    internal = {"errors": [{"domain": "global", "reason": "internalError"}], "busy": []}
    assert r.json()["calendars"] == {"primary": internal, USER: internal, "bob@example.com": {
        "errors": [{"domain": "global", "reason": "notFound"}], "busy": []}}
    # Any reason and domain; null clears one calendar's error.
    sd.admin("freebusy", {"calendar_errors": {USER: {"reason": "backendError", "domain": "calendar"}}})
    assert freebusy(sd, fb_query(), t).json()["calendars"]["primary"]["errors"] == [
        {"domain": "calendar", "reason": "backendError"}]
    sd.admin("freebusy", {"calendar_errors": {USER: None}})
    assert freebusy(sd, fb_query(), t).json()["calendars"]["primary"] == {
        "busy": spans(("2030-05-01T09:00:00Z", "2030-05-01T10:00:00Z"))}
    # The largest window is a knob too; DELETE and reset restore the defaults.
    sd.admin("freebusy", {"max_range_days": 1, "calendar_errors": {USER: "internalError"}})
    r = freebusy(sd, fb_query("2030-05-01T00:00:00Z", "2030-05-02T00:00:01Z"), t)
    assert r.status_code == 400 and r.json()["error"]["errors"][0]["reason"] == "timeRangeTooLong"
    assert sd.admin("freebusy", method="DELETE") == {"calendar_errors": {}, "max_range_days": 62}
    sd.admin("freebusy", {"calendar_errors": {USER: "internalError"}})
    sd.admin("reset", {})
    assert sd.admin("freebusy") == {"calendar_errors": {}, "max_range_days": 62}
    for bad in ({"calendar_errors": {"not-an-email": "x"}}, {"calendar_errors": {USER: 5}},
                {"calendar_errors": {USER: {"domain": "global"}}}, {"max_range_days": 0}, {"bogus": 1},
                {"calendar_errors": []}):
        with pytest.raises(StandinError):
            sd.admin("freebusy", bad)


def test_admin_adds_event_as_user_in_ui(sd):
    ev = ui_event(sd, "2030-05-01T09:00:00+02:00", "2030-05-01T10:00:00+02:00", email="Carol@example.com",
                  id="uievent001", location="Room 1")
    assert ev["id"] == "uievent001" and ev["status"] == "confirmed" and ev["kind"] == "calendar#event"
    assert ev["organizer"]["email"] == "carol@example.com"
    assert ev["_standin"]["calendar"] == "carol@example.com" and ev["_standin"]["ops"] == ["ui.insert"]
    assert ev["_standin"]["send_updates"] == [None]
    # The client sees it like any other event of the calendar.
    h = bearer(tokens_for(sd, email="carol@example.com")["access_token"])
    r = requests.get(events_url(sd, "/uievent001"), headers=h, timeout=10)
    assert r.status_code == 200 and r.json() == {k: v for k, v in ev.items() if k != "_standin"}
    # Not a client request: nothing in the journal.
    assert "events.insert" not in sd.admin("stats")["endpoints"]
    # Google's checks still hold.
    status, _, body = sd.request("POST", "/_standin/events", {"email": "carol@example.com", "event": {
        "id": "uievent001", "start": {"date": "2030-05-01"}, "end": {"date": "2030-05-02"}}})
    assert status == 400 and json.loads(body)["reason"] == "duplicate"
    status, _, body = sd.request("POST", "/_standin/events", {"email": "carol@example.com", "event": {
        "start": {"date": "2030-05-02"}, "end": {"date": "2030-05-01"}}})
    assert status == 400 and json.loads(body)["reason"] == "timeRangeEmpty"
    for bad in ({"event": {}}, {"email": "carol@example.com"}, {"email": "x", "event": {}}):
        with pytest.raises(StandinError):
            sd.admin("events", bad)


# Push notifications (events.watch, channels.stop) and incremental sync

WATCH_SCOPE = "https://www.googleapis.com/auth/calendar.events"
SYNC_FULL_REQUIRED = google_error(410, "calendar", "fullSyncRequired",
                                  "Sync token is no longer valid, a full sync is required.", "NOT_FOUND")


class PushReceiver:
    """A loopback HTTP server that records every push: (path, headers as a dict, body)."""

    def __init__(self, status=200):
        self.pushes = []
        self.status = status
        self.cond = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                with receiver.cond:
                    receiver.pushes.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    receiver.cond.notify_all()
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?x=1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n, timeout=5):
        """The first n pushes, waiting for them."""
        with self.cond:
            self.cond.wait_for(lambda: len(self.pushes) >= n, timeout)
            assert len(self.pushes) >= n, f"{len(self.pushes)} pushes, wanted {n}: {self.pushes}"
            return list(self.pushes)

    def settle(self, n, delay=0.3):
        """Exactly n pushes once things are quiet."""
        time.sleep(delay)
        with self.cond:
            assert len(self.pushes) == n, self.pushes
            return list(self.pushes)

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@pytest.fixture
def hook():
    r = PushReceiver()
    yield r
    r.close()


def watch(sd, token, body, cal="primary"):
    return requests.post(events_url(sd, "/watch", cal), json=body, headers=bearer(token), timeout=10)


def channel(address, cid="chan-1", **extra):
    return dict({"id": cid, "type": "web_hook", "address": address}, **extra)


def push_log(sd):
    return sd.admin("pushes")["pushes"]


def wait_log(sd, n, timeout=5):
    """The push log once n pushes have an outcome."""
    deadline = time.time() + timeout
    while True:
        log = push_log(sd)
        if len([p for p in log if p["result"] != "pending"]) >= n or time.time() > deadline:
            return log
        time.sleep(0.05)


def insert(sd, token, **extra):
    r = requests.post(events_url(sd), json=new_event(**extra), headers=bearer(token), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_watch_answers_a_channel_and_pushes_sync_then_exists(sd, hook):
    t = tokens_for(sd)["access_token"]
    before = int(time.time() * 1000)
    r = watch(sd, t, channel(hook.url, token="tok-123-secret", params={"ttl": "3600"}))
    assert r.status_code == 200, r.text
    ch = r.json()
    assert ch["kind"] == "api#channel" and ch["id"] == "chan-1" and ch["token"] == "tok-123-secret"
    assert isinstance(ch["expiration"], str) and ch["expiration"].isdigit()
    assert before + 3600_000 <= int(ch["expiration"]) <= before + 3600_000 + 5000
    assert ch["resourceUri"].startswith("https://www.googleapis.com/calendar/v3/calendars/primary/events")
    assert re.match(r"^[A-Za-z0-9_-]{10,}$", ch["resourceId"])
    path, h, body = hook.wait(1)[0]
    assert path == "/hook?x=1" and body == b""
    assert h["x-goog-channel-id"] == "chan-1" and h["x-goog-channel-token"] == "tok-123-secret"
    assert h["x-goog-resource-state"] == "sync" and h["x-goog-message-number"] == "1"
    assert h["x-goog-resource-id"] == ch["resourceId"] and h["x-goog-resource-uri"] == ch["resourceUri"]
    exp = h["x-goog-channel-expiration"]
    assert re.match(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                    r"\d{4} \d\d:\d\d:\d\d GMT$", exp), exp
    assert int(parsedate_to_datetime(exp).timestamp()) == int(ch["expiration"]) // 1000
    e = insert(sd, t)
    requests.patch(events_url(sd, "/" + e["id"]), json={"summary": "moved"}, headers=bearer(t), timeout=10)
    requests.put(events_url(sd, "/" + e["id"]), json=new_event(summary="put"), headers=bearer(t), timeout=10)
    requests.delete(events_url(sd, "/" + e["id"]), headers=bearer(t), timeout=10)
    pushes = hook.wait(5)
    assert [p[1]["x-goog-resource-state"] for p in pushes] == ["sync"] + ["exists"] * 4
    assert [int(p[1]["x-goog-message-number"]) for p in pushes] == [1, 2, 3, 4, 5]
    assert all(p[1]["x-goog-channel-token"] == "tok-123-secret" and p[2] == b"" for p in pushes)
    # A read changes nothing; another account's change does not reach this channel.
    requests.get(events_url(sd), headers=bearer(t), timeout=10)
    ui_event(sd, "2030-05-01T08:00:00Z", "2030-05-01T09:00:00Z", email="bob@example.com")
    hook.settle(5)
    log = wait_log(sd, 5)
    assert [(p["state"], p["message_number"], p["result"], p["status"]) for p in log] == \
        [("sync", 1, "delivered", 200)] + [("exists", n, "delivered", 200) for n in (2, 3, 4, 5)]
    assert all(p["channel_id"] == "chan-1" and p["calendar"] == USER and p["address"] == hook.url for p in log)
    chans = sd.admin("pushes")["channels"]
    assert chans[0]["state"] == "live" and chans[0]["messages"] == 5 and chans[0]["token"] == "tok-123-secret"
    # Channel tokens are secrets the platform must not log: the stand-in lists them.
    assert {"kind": "channel_token", "value": "tok-123-secret"} in sd.admin("secrets")


def test_watch_without_token_sends_no_token_header_and_resource_id_is_stable(sd, hook):
    t = tokens_for(sd)["access_token"]
    a = watch(sd, t, channel(hook.url, "c-a")).json()
    b = watch(sd, t, channel(hook.url.replace("127.0.0.1", "localhost"), "c-b", type="webhook"), USER).json()
    assert "token" not in a and a["resourceId"] == b["resourceId"]
    other = watch(sd, tokens_for(sd, "bob@example.com")["access_token"], channel(hook.url, "c-c")).json()
    assert other["resourceId"] != a["resourceId"]
    pushes = hook.wait(3)
    assert all("x-goog-channel-token" not in p[1] for p in pushes)
    # Default lifetime: 7 days.
    assert abs(int(a["expiration"]) - (time.time() + 604800) * 1000) < 10_000


def test_watch_errors(sd, hook):
    t = tokens_for(sd)["access_token"]

    def reason(r, status=400):
        assert r.status_code == status, r.text
        return r.json()["error"]["errors"][0]["reason"]

    r = watch(sd, t, channel("http://example.com/hook"))
    assert reason(r) == "push.webhookUrlNotHttps"
    assert r.json()["error"]["message"] == "WebHook callback must be HTTPS: http://example.com/hook"
    assert r.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert reason(watch(sd, t, channel("http://10.0.0.1/hook"))) == "push.webhookUrlNotHttps"
    assert reason(watch(sd, t, channel("ftp://127.0.0.1/hook"))) == "push.webhookUrlNotHttps"
    assert reason(watch(sd, t, {"type": "web_hook", "address": hook.url})) == "required"
    assert reason(watch(sd, t, channel(hook.url, ""))) == "required"
    assert reason(watch(sd, t, channel(hook.url, "x" * 65))) == "invalid"
    assert reason(watch(sd, t, channel(hook.url, type="carrier_pigeon"))) == "push.channelTypeNotSupported"
    assert reason(watch(sd, t, {"id": "c", "type": "web_hook"})) == "push.webhookUrlNoHostOrAddress"
    assert reason(watch(sd, t, channel("not a url"))) == "push.webhookUrlNoHostOrAddress"
    assert reason(watch(sd, t, channel(hook.url, params={"ttl": "soon"}))) == "invalid"
    assert reason(watch(sd, t, channel(hook.url, expiration="1000"))) == "invalid"
    r = requests.post(events_url(sd, "/watch"), data="{", headers=bearer(t), timeout=10)
    assert reason(r) == "parseError"
    assert watch(sd, "bogus", channel(hook.url)).json() == INVALID_CREDENTIALS
    assert reason(watch(sd, t, channel(hook.url), cal="someone@example.com"), 404) == "notFound"
    r = requests.post(events_url(sd, "/watch"), json=channel(hook.url), timeout=10)
    assert reason(r, 401) == "required"
    assert reason(watch(sd, tokens_for(sd, scope=EMAIL_SCOPE)["access_token"], channel(hook.url)),
                  403) == "insufficientPermissions"
    ro = tokens_for(sd, scope="https://www.googleapis.com/auth/calendar.readonly")["access_token"]
    assert watch(sd, ro, channel(hook.url, "ro-1")).status_code == 200
    # https is Google's rule: accepted, but the stand-in cannot deliver it.
    assert watch(sd, t, channel("https://hooks.example.com/g", "tls-1")).status_code == 200
    assert reason(watch(sd, t, channel(hook.url, "ro-1"))) == "channelIdNotUnique"
    log = wait_log(sd, 2)
    assert {p["channel_id"]: p["result"] for p in log} == {"ro-1": "delivered", "tls-1": "undeliverable"}


def test_watch_lifetime_cap_and_expiration(sd, hook):
    t = tokens_for(sd)["access_token"]
    sd.admin("pushes", {"max_ttl_s": 60})
    now = time.time() * 1000
    a = watch(sd, t, channel(hook.url, "long", params={"ttl": "86400"})).json()
    assert now + 55_000 < int(a["expiration"]) <= now + 65_000
    b = watch(sd, t, channel(hook.url, "short", expiration=str(int(now) + 2000))).json()
    assert int(b["expiration"]) == int(now) + 2000
    c = watch(sd, t, channel(hook.url, "both", expiration=int(now) + 30_000, params={"ttl": "10"})).json()
    assert now + 9_000 < int(c["expiration"]) <= now + 11_000
    hook.wait(3)
    time.sleep(2.2)
    insert(sd, t)
    pushes = hook.wait(5)
    assert sorted(p[1]["x-goog-channel-id"] for p in pushes[3:]) == ["both", "long"]
    hook.settle(5)
    states = {c["id"]: c["state"] for c in sd.admin("pushes")["channels"]}
    assert states == {"long": "live", "short": "expired", "both": "live"}
    with pytest.raises(StandinError):
        sd.admin("pushes", {"max_ttl_s": 0})
    with pytest.raises(StandinError):
        sd.admin("pushes", {"bogus": 1})


def test_stop_channel(sd, hook):
    t = tokens_for(sd)["access_token"]
    ch = watch(sd, t, channel(hook.url, "stop-me")).json()
    hook.wait(1)
    stop = sd.url + "/calendar/v3/channels/stop"
    r = requests.post(stop, json={"id": "stop-me", "resourceId": "wrong"}, headers=bearer(t), timeout=10)
    assert r.status_code == 404 and r.json()["error"]["errors"][0]["reason"] == "notFound"
    assert r.json()["error"]["message"] == "Channel 'stop-me' not found for project '0'"
    bob = tokens_for(sd, "bob@example.com")["access_token"]
    r = requests.post(stop, json={"id": "stop-me", "resourceId": ch["resourceId"]}, headers=bearer(bob), timeout=10)
    assert r.status_code == 404
    r = requests.post(stop, json={"id": "stop-me"}, headers=bearer(t), timeout=10)
    assert r.status_code == 400 and r.json()["error"]["errors"][0]["reason"] == "required"
    assert requests.post(stop, json={"id": "stop-me", "resourceId": ch["resourceId"]}, timeout=10).status_code == 401
    r = requests.post(stop, json={"id": "stop-me", "resourceId": ch["resourceId"]}, headers=bearer(t), timeout=10)
    assert r.status_code == 204 and r.content == b""
    r = requests.post(stop, json={"id": "stop-me", "resourceId": ch["resourceId"]}, headers=bearer(t), timeout=10)
    assert r.status_code == 404
    insert(sd, t)
    sd.admin("events", {"email": USER, "event": {"start": {"date": "2030-01-01"}, "end": {"date": "2030-01-02"}}})
    hook.settle(1)
    assert sd.admin("pushes")["channels"][0]["state"] == "stopped"
    assert sd.admin("stats")["endpoints"]["channels.stop"] == {"404": 3, "400": 1, "401": 1, "204": 1}


def test_pushes_can_be_dropped_and_failures_are_logged(sd, hook):
    t = tokens_for(sd)["access_token"]
    sd.admin("pushes", {"drop_next": 2})
    watch(sd, t, channel(hook.url))
    insert(sd, t)
    insert(sd, t)
    hook.wait(1)
    assert [p[1]["x-goog-message-number"] for p in hook.settle(1)] == ["3"]
    sd.admin("pushes", {"drop_all": True})
    insert(sd, t)
    hook.settle(1)
    assert sd.admin("pushes")["settings"] == {"drop_all": True, "drop_next": 0, "max_ttl_s": 2592000}
    sd.admin("pushes", {"drop_all": False})
    hook.status = 500
    insert(sd, t)
    hook.wait(2)
    log = wait_log(sd, 5)
    assert [(p["message_number"], p["result"], p["status"]) for p in log] == [
        (1, "dropped", None), (2, "dropped", None), (3, "delivered", 200), (4, "dropped", None),
        (5, "failed", 500)]
    # A receiver that is gone: the push fails, nothing blocks.
    dead = PushReceiver()
    url = dead.url
    dead.close()
    watch(sd, t, channel(url, "dead"))
    assert requests.get(events_url(sd), headers=bearer(t), timeout=10).status_code == 200
    log = wait_log(sd, 6)
    assert log[-1]["channel_id"] == "dead" and log[-1]["result"] == "failed" and log[-1]["status"] is None
    # A receiver that never answers: the push stays pending while the API goes on; a reset forgets it.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        watch(sd, t, channel(f"http://127.0.0.1:{silent.getsockname()[1]}/h", "silent"))
        insert(sd, t)
        time.sleep(0.2)
        assert [p["result"] for p in push_log(sd) if p["channel_id"] == "silent"] == ["pending", "pending"]
        sd.admin("pushes", method="DELETE")
    finally:
        silent.close()
    assert sd.admin("pushes") == {"settings": {"drop_all": False, "drop_next": 0, "max_ttl_s": 2592000},
                                  "channels": [], "pushes": []}


def list_all(sd, token, **params):
    """Every page of events.list; returns (items, pages)."""
    items, pages = [], []
    params = dict(params)
    while True:
        r = requests.get(events_url(sd), params=params, headers=bearer(token), timeout=10)
        assert r.status_code == 200, r.text
        page = r.json()
        pages.append(page)
        items += page["items"]
        if "nextPageToken" not in page:
            return items, pages
        params["pageToken"] = page["nextPageToken"]


def test_full_list_pages_and_gives_a_sync_token_on_the_last_page_only(sd):
    t = tokens_for(sd)["access_token"]
    ids = [insert(sd, t, summary=f"e{i}")["id"] for i in range(7)]
    requests.delete(events_url(sd, "/" + ids[2]), headers=bearer(t), timeout=10)
    items, pages = list_all(sd, t, maxResults=3)
    assert [i["id"] for i in items] == [x for x in ids if x != ids[2]]
    assert len(pages) == 2
    assert "nextSyncToken" not in pages[0] and "nextSyncToken" in pages[-1]
    assert "nextPageToken" not in pages[-1]
    # Lists with filters Google forbids next to a sync token get none.
    for params in ({"timeMin": "2030-01-01T00:00:00Z"}, {"privateExtendedProperty": "a=b"},
                   {"orderBy": "updated"}, {"q": "e1"}, {"iCalUID": "x"}, {"updatedMin": "2020-01-01T00:00:00Z"}):
        _, pages = list_all(sd, t, **params)
        assert all("nextSyncToken" not in p for p in pages), params
    # A change between two pages is not lost: the token stands for the first page's moment.
    r = requests.get(events_url(sd), params={"maxResults": 3}, headers=bearer(t), timeout=10).json()
    requests.patch(events_url(sd, "/" + ids[0]), json={"summary": "late"}, headers=bearer(t), timeout=10)
    r2 = requests.get(events_url(sd), params={"maxResults": 3, "pageToken": r["nextPageToken"]},
                      headers=bearer(t), timeout=10).json()
    r3 = requests.get(events_url(sd), params={"syncToken": r2["nextSyncToken"]}, headers=bearer(t), timeout=10)
    assert [i["summary"] for i in r3.json()["items"]] == ["late"]


def test_incremental_sync_returns_changed_and_deleted_events_only(sd):
    t = tokens_for(sd)["access_token"]
    h = bearer(t)
    keep, change, gone = (insert(sd, t, summary=s) for s in ("keep", "change", "gone"))
    _, pages = list_all(sd, t)
    token = pages[-1]["nextSyncToken"]
    r = requests.get(events_url(sd), params={"syncToken": token}, headers=h, timeout=10)
    assert r.status_code == 200 and r.json()["items"] == [] and r.json()["nextSyncToken"]
    assert "nextPageToken" not in r.json()
    requests.patch(events_url(sd, "/" + change["id"]), json={"summary": "changed"}, headers=h, timeout=10)
    requests.delete(events_url(sd, "/" + gone["id"]), headers=h, timeout=10)
    new = insert(sd, t, summary="new")
    r = requests.get(events_url(sd), params={"syncToken": token}, headers=h, timeout=10).json()
    assert [i["id"] for i in r["items"]] == [change["id"], gone["id"], new["id"]]
    assert r["items"][0]["summary"] == "changed" and r["items"][2]["summary"] == "new"
    deleted = r["items"][1]
    assert deleted["status"] == "cancelled" and set(deleted) == {"kind", "etag", "id", "status"}
    assert keep["id"] not in json.dumps(r["items"])
    # The new token sees nothing more; an old token still works until invalidated.
    r2 = requests.get(events_url(sd), params={"syncToken": r["nextSyncToken"]}, headers=h, timeout=10).json()
    assert r2["items"] == []
    # Incremental paging: every change once, the sync token on the last page.
    for i in range(5):
        insert(sd, t, summary=f"p{i}")
    items, pages = list_all(sd, t, syncToken=r["nextSyncToken"], maxResults=2)
    assert [i["summary"] for i in items] == [f"p{i}" for i in range(5)]
    assert len(pages) == 3 and all("nextSyncToken" not in p for p in pages[:-1])
    assert "nextSyncToken" in pages[-1]


def test_sync_token_filters_and_invalid_tokens(sd):
    t = tokens_for(sd)["access_token"]
    h = bearer(t)
    insert(sd, t)
    token = list_all(sd, t)[1][-1]["nextSyncToken"]
    for name, value in (("timeMin", "2030-01-01T00:00:00Z"), ("timeMax", "2030-01-01T00:00:00Z"),
                        ("updatedMin", "2030-01-01T00:00:00Z"), ("orderBy", "updated"), ("iCalUID", "x"),
                        ("privateExtendedProperty", "a=b"), ("sharedExtendedProperty", "a=b"), ("q", "x")):
        r = requests.get(events_url(sd), params={"syncToken": token, name: value}, headers=h, timeout=10)
        assert r.status_code == 400, (name, r.text)
        err = r.json()["error"]["errors"][0]
        assert err["reason"] == "invalid" and err["location"] == name
    for bad in ("garbage", "CP" + "0" * 24, token + "x"):
        r = requests.get(events_url(sd), params={"syncToken": bad}, headers=h, timeout=10)
        assert r.status_code == 410 and r.json() == SYNC_FULL_REQUIRED
    assert requests.get(events_url(sd), params={"syncToken": token}, headers=h, timeout=10).status_code == 200
    # Another account's token is not this calendar's.
    bob = tokens_for(sd, "bob@example.com")["access_token"]
    r = requests.get(events_url(sd), params={"syncToken": token}, headers=bearer(bob), timeout=10)
    assert r.status_code == 410
    assert sd.admin("invalidate-sync-tokens", {"email": USER}) == {"invalidated": 1}
    r = requests.get(events_url(sd), params={"syncToken": token}, headers=h, timeout=10)
    assert r.status_code == 410 and r.json() == SYNC_FULL_REQUIRED
    fresh = list_all(sd, t)[1][-1]["nextSyncToken"]
    assert requests.get(events_url(sd), params={"syncToken": fresh}, headers=h, timeout=10).status_code == 200
    assert sd.admin("invalidate-sync-tokens", {}) == {"invalidated": 2}
    assert requests.get(events_url(sd), params={"syncToken": fresh}, headers=h, timeout=10).status_code == 410
    # Page tokens of one kind of list do not fit the other.
    r = requests.get(events_url(sd), params={"pageToken": "c1"}, headers=h, timeout=10)
    assert r.status_code == 400


def test_admin_ui_move_delete_and_answer(sd, hook):
    t = tokens_for(sd)["access_token"]
    h = bearer(t)
    e = insert(sd, t, attendees=[{"email": "lead@example.org"}])
    token = list_all(sd, t)[1][-1]["nextSyncToken"]
    watch(sd, t, channel(hook.url, token="tk"))
    hook.wait(1)
    moved = sd.admin("events/move", {"email": USER, "id": e["id"], "shift_s": 3600})
    assert moved["start"]["dateTime"] == "2030-05-01T11:00:00+02:00"
    assert moved["end"]["dateTime"] == "2030-05-01T11:30:00+02:00"
    assert moved["sequence"] == e["sequence"] + 1 and moved["etag"] != e["etag"]
    assert moved["_standin"]["ops"] == ["insert", "ui.move"]
    moved2 = sd.admin("events/move", {"email": USER, "id": e["id"], "start": {"dateTime": "2030-05-02T09:00:00Z"},
                                      "end": {"dateTime": "2030-05-02T10:00:00Z"}})
    assert moved2["start"] == {"dateTime": "2030-05-02T09:00:00Z"}
    answered = sd.admin("events/respond", {"email": USER, "id": e["id"], "attendee": "LEAD@example.org",
                                           "response": "declined"})
    assert answered["attendees"][0]["responseStatus"] == "declined"
    assert answered["sequence"] == moved2["sequence"] and answered["etag"] != moved2["etag"]
    assert answered["updated"] >= moved2["updated"]
    r = requests.get(events_url(sd), params={"syncToken": token}, headers=h, timeout=10).json()
    assert len(r["items"]) == 1 and r["items"][0]["attendees"][0]["responseStatus"] == "declined"
    assert r["items"][0]["start"] == {"dateTime": "2030-05-02T09:00:00Z"}
    gone = sd.admin("events/delete", {"email": USER, "id": e["id"]})
    assert gone["status"] == "cancelled" and gone["_standin"]["ops"][-1] == "ui.delete"
    r = requests.get(events_url(sd), params={"syncToken": r["nextSyncToken"]}, headers=h, timeout=10).json()
    assert r["items"] == [{"kind": "calendar#event", "etag": gone["etag"], "id": e["id"], "status": "cancelled"}]
    assert requests.delete(events_url(sd, "/" + e["id"]), headers=h, timeout=10).status_code == 410
    added = ui_event(sd, "2030-05-03T09:00:00Z", "2030-05-03T10:00:00Z")
    pushes = hook.wait(6)
    assert [p[1]["x-goog-resource-state"] for p in pushes] == ["sync"] + ["exists"] * 5
    assert [p[1]["x-goog-message-number"] for p in pushes] == [str(n) for n in range(1, 7)]
    r = requests.get(events_url(sd), params={"syncToken": r["nextSyncToken"]}, headers=h, timeout=10).json()
    assert [i["id"] for i in r["items"]] == [added["id"]]
    # Mistakes are 400/404 and change nothing.
    for path, body, status in (
            ("events/move", {"email": USER, "id": e["id"], "shift_s": 60}, 400),
            ("events/delete", {"email": USER, "id": e["id"]}, 400),
            ("events/move", {"email": USER, "id": "nothere", "shift_s": 60}, 404),
            ("events/respond", {"email": USER, "id": added["id"], "attendee": "x@example.org",
                                "response": "accepted"}, 400),
            ("events/respond", {"email": USER, "id": added["id"], "attendee": "x@example.org",
                                "response": "maybe"}, 400),
            ("events/move", {"email": USER, "id": added["id"], "shift_s": "soon"}, 400),
            ("events/move", {"email": USER, "id": added["id"], "start": {"dateTime": "2030-05-03T09:00:00Z"}}, 400)):
        status_got, _, body_got = sd.request("POST", "/_standin/" + path, body)
        assert status_got == status, (path, body, body_got)
    all_day = ui_event(sd, "2030-05-04", "2030-05-05")
    moved = sd.admin("events/move", {"email": USER, "id": all_day["id"], "shift_s": -86400})
    assert moved["start"] == {"date": "2030-05-03"} and moved["end"] == {"date": "2030-05-04"}
    hook.wait(8)


class CalendarPage(HTMLParser):
    """The forms (action and hidden fields) and the text of the admin calendar view."""

    def __init__(self):
        super().__init__()
        self.forms, self.text, self.scripts = [], [], 0
        self._form = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        elif tag == "form":
            self._form = {"action": a.get("action"), "method": a.get("method"), "fields": {}, "label": ""}
        elif tag == "input" and self._form is not None:
            self._form["fields"][a["name"]] = a.get("value")

    def handle_endtag(self, tag):
        if tag == "form" and self._form is not None:
            self.forms.append(self._form)
            self._form = None

    def handle_data(self, data):
        self.text.append(data)
        if self._form is not None:
            self._form["label"] += data


def calendar_page(sd):
    r = requests.get(sd.url + "/_standin/events", headers={"Accept": "text/html,application/xhtml+xml"},
                     timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    p = CalendarPage()
    p.feed(r.text)
    return r.text, p


def submit(sd, form):
    return requests.post(sd.url + form["action"], data=form["fields"], allow_redirects=False, timeout=10)


def test_admin_html_calendar_view_and_its_buttons(sd, hook):
    hostile = "<script>alert('x')</script> & \"quotes\""
    e = ui_event(sd, "2030-05-01T08:00:00Z", "2030-05-01T09:00:00Z", summary=hostile,
                 attendees=[{"email": "lead@example.org"}, {"email": USER}])
    ui_event(sd, "2030-05-02T08:00:00Z", "2030-05-02T09:00:00Z", email="bob@example.com", summary="Bob's")
    t = tokens_for(sd)["access_token"]
    watch(sd, t, channel(hook.url))
    hook.wait(1)
    # JSON stays the default.
    assert e["id"] in [x["id"] for x in requests.get(sd.url + "/_standin/events", timeout=10).json()["events"]]
    assert requests.get(sd.url + "/_standin/events", headers={"Accept": "application/json"},
                        timeout=10).headers["Content-Type"].startswith("application/json")
    html, page = calendar_page(sd)
    assert "<script>" not in html and page.scripts == 0
    text = "".join(page.text)
    assert hostile in text and "Bob's" in text
    assert USER in text and "bob@example.com" in text and "Europe/Zurich" in text
    assert "2030-05-01" in text and "10:00–11:00" in text  # in the calendar's zone
    assert "lead@example.org" in text and "needsAction" in text and "confirmed" in text
    mine = [f for f in page.forms if f["fields"].get("id") == e["id"]]
    assert all(f["method"] == "post" for f in mine)
    by_label = {f["label"].strip(): f for f in mine}
    assert set(by_label) == {"+1 hour", "+1 day", "Delete", "Accept as attendee", "Decline as attendee"}
    assert by_label["Decline as attendee"]["fields"] == {"email": USER, "id": e["id"], "attendee": "lead@example.org",
                                                         "response": "declined"}
    r = submit(sd, by_label["+1 hour"])
    assert r.status_code == 303 and r.headers["Location"] == "/_standin/events"
    r = submit(sd, by_label["+1 day"])
    assert r.status_code == 303
    r = submit(sd, by_label["Decline as attendee"])
    assert r.status_code == 303
    _, page = calendar_page(sd)
    text = "".join(page.text)
    assert "2030-05-02" in text and "11:00–12:00" in text and "declined" in text
    ev = sd.admin("events?email=" + USER)["events"][0]
    assert ev["start"]["dateTime"] == "2030-05-02T09:00:00+00:00"
    assert ev["_standin"]["ops"] == ["ui.insert", "ui.move", "ui.move", "attendee.respond"]
    r = submit(sd, by_label["Delete"])
    assert r.status_code == 303
    _, page = calendar_page(sd)
    assert "cancelled" in "".join(page.text)
    assert not [f for f in page.forms if f["fields"].get("id") == e["id"]]
    pushes = hook.wait(5)
    assert [p[1]["x-goog-message-number"] for p in pushes] == ["1", "2", "3", "4", "5"]
    # A form for an event that is gone answers 404 JSON, not a redirect.
    r = requests.post(sd.url + "/_standin/events/delete", data={"email": USER, "id": "nothere"},
                      allow_redirects=False, timeout=10)
    assert r.status_code == 404
