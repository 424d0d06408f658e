"""The oauth-gateway's web UI from the server's side (issue 9), on real
PostgreSQL, RabbitMQ and the Google stand-in: which routes exist in which
configuration (WEB_UI off is production's default and serves nothing new),
the embedded files with their types, ETags and browser hardening, the local
stack's sign-in helper and its opt-in, and the rules under which the API
takes the session cookie: only with X-Requested-With: fetch and never from
another site. tests/browser/ui.test.mjs drives the pages in Chromium.
"""

import re
import uuid

import requests

from harness import jwt
from test_gateway import Gateway, assert_error

PAGE_TYPES = {"/": "text/html", "/static/app.css": "text/css", "/static/common.js": "text/javascript",
              "/static/integrations.js": "text/javascript", "/static/lead.js": "text/javascript",
              "/static/favicon.svg": "image/svg+xml"}
UI = {"X-Requested-With": "fetch"}


def refused(r, status):
    assert_error(r, status)
    return r


def cookie(user, name="token"):
    return {"Cookie": f"{name}={jwt(user)}"}


def test_web_ui_off_serves_nothing_new(stack):
    s = stack()
    gw = Gateway(s)
    for path in ["/", "/leads/" + str(uuid.uuid4()), "/static/app.css", "/dev/sign-in"]:
        assert_error(gw.get(path), 404)
    # Without WEB_UI the cookie still serves only the navigation to /auth, whatever the request says.
    user = s.add_user()
    assert_error(gw.get("/api/integrations/google/status", headers={**cookie(user), **UI}), 401)


def test_pages_and_files(stack):
    s = stack()
    gw = Gateway(s, WEB_UI="on")
    for path, kind in PAGE_TYPES.items():
        r = gw.get(path)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["Content-Type"].startswith(kind), (path, r.headers)
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert "script-src 'self'" in r.headers["Content-Security-Policy"]
        assert r.headers["Cache-Control"] == "no-cache"
        etag = r.headers["ETag"]
        again = gw.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and not again.content and again.headers["ETag"] == etag
    lead = gw.get("/leads/" + str(uuid.uuid4()))
    assert lead.status_code == 200 and 'src="/static/lead.js"' in lead.text
    # The pages load nothing from elsewhere and run no inline script (the CSP would block it anyway).
    for path in ("/", "/leads/x"):
        text = gw.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), path
        assert not re.search(r"(src|href)=\"https?:", text), path
    # No helper configured: the pages do not offer it, and it is not there.
    assert '<meta name="dev-sign-in" content="">' in gw.get("/").text
    assert_error(gw.get("/dev/sign-in"), 404)
    # Pages have one URL each; unknown files are JSON 404s like any unknown path.
    assert_error(gw.get("/static/index.html"), 404)
    assert_error(gw.get("/static/nope.js"), 404)
    assert_error(gw.get("/static/..%2fweb.c"), 404)
    # A file's name matches as written: no encoded NUL ends it early, no trailing slash is forgiven.
    assert_error(gw.get("/static/app.css%00.js"), 400, "invalid_request")
    assert_error(gw.get("/static/app.css/"), 404, "not_found")
    assert_error(gw.call("POST", "/"), 405)
    head = gw.call("HEAD", "/static/app.css")
    assert head.status_code == 200 and not head.content


def test_unknown_pages_are_html_for_browsers_and_json_for_the_api(stack):
    s = stack()
    gw = Gateway(s, WEB_UI="on")
    browser = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    for path in ("/nowhere", "/leads", "/leads/x/y", "/static/nope.js", "/static/index.html"):
        r = gw.get(path, headers=browser)
        assert r.status_code == 404, (path, r.text)
        assert r.headers["Content-Type"].startswith("text/html"), (path, r.headers)
        assert "Page not found" in r.text and 'href="/"' in r.text
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert not re.search(r"<script(?![^>]*\bsrc=)", r.text)
        assert gw.call("HEAD", path, headers=browser).status_code == 404
    # The API answers JSON whatever the client accepts; so do clients that do not ask for HTML, and writes.
    for path in ("/api/nothing", "/api", "/api/calendar/meetings/a/b/c"):
        assert_error(gw.get(path, headers=browser), 404, "not_found")
    assert_error(gw.get("/nowhere", headers={"Accept": "application/json"}), 404, "not_found")
    assert_error(gw.get("/nowhere"), 404, "not_found")
    assert_error(gw.call("POST", "/nowhere", headers=browser), 404, "not_found")
    # Without WEB_UI there are no pages: JSON for everyone.
    off = Gateway(s)
    assert_error(off.get("/nowhere", headers=browser), 404, "not_found")


def test_dev_sign_in_sets_the_session_cookie(stack):
    s = stack()
    user = s.add_user()
    gw = Gateway(s, WEB_UI="on", WEB_UI_DEV_USER=user.upper())
    r = gw.get("/dev/sign-in")
    assert r.status_code == 302 and r.headers["Location"] == "/"
    # Back to the page that offered it, when that is a path on this site; anywhere else, to /.
    lead = "/leads/" + str(uuid.uuid4())
    for nxt, where in [(lead, lead), (lead + "?a=b", lead + "?a=b"), ("//evil.example/", "/"),
                       ("/\\evil.example", "/"), ("https://evil.example/", "/"), ("evil", "/"),
                       ("/a\r\nSet-Cookie: x=y", "/"), ("/a b", "/"), ("/" + "x" * 600, "/"), ("", "/")]:
        r = gw.get("/dev/sign-in", params={"next": nxt})
        assert r.status_code == 302 and r.headers["Location"] == where, (nxt, r.headers)
    set_cookie = r.headers["Set-Cookie"]
    assert set_cookie.startswith("token=")
    for attr in ("HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"):
        assert attr in set_cookie, set_cookie
    token = set_cookie.split(";")[0].split("=", 1)[1]
    # The pages offer the helper now, with an ETag of their own.
    page = gw.get("/")
    assert '<meta name="dev-sign-in" content="/dev/sign-in">' in page.text
    assert page.headers["ETag"].endswith('-dev"')
    # The minted token is an ordinary platform token: it works as a bearer token too.
    r = gw.get("/api/integrations/google/status", headers={"Authorization": "Bearer " + token})
    assert r.status_code == 200 and r.json() == {"connected": False, "email": None}
    # And through a browser session, as the pages use it.
    browser = requests.Session()
    browser.get(gw.url + "/dev/sign-in", allow_redirects=False, timeout=10)
    r = browser.get(gw.url + "/api/integrations/google/status", headers=UI, timeout=10)
    assert r.status_code == 200, r.text
    assert "the development sign-in helper" in gw.svc.logs()
    assert token not in gw.svc.logs()


def test_dev_sign_in_needs_web_ui_and_a_uuid(stack):
    s = stack()
    for env, problem in (({"WEB_UI_DEV_USER": str(uuid.uuid4())}, "needs WEB_UI=on"),
                         ({"WEB_UI": "on", "WEB_UI_DEV_USER": "demo"}, "must be a user's id")):
        svc = s.service("oauth-gateway", start=False, **env)
        svc.start(wait_ready=False)
        assert svc.proc.wait(20) == 78
        assert "WEB_UI_DEV_USER" in svc.logs() and problem in svc.logs(), svc.logs()


def test_the_api_takes_the_cookie_only_from_the_pages(stack):
    s = stack()
    user = s.add_user()
    gw = Gateway(s, WEB_UI="on")
    status = "/api/integrations/google/status"
    assert gw.get(status, headers={**cookie(user), **UI}).status_code == 200
    assert gw.get(status, headers={**cookie(user), **UI, "Sec-Fetch-Site": "same-origin"}).status_code == 200
    # A form, an image or a link from anywhere sends the cookie but cannot add the header.
    r = refused(gw.get(status, headers=cookie(user)), 401)
    assert "X-Requested-With: fetch" in r.json()["error"]["message"]
    assert "WWW-Authenticate" in r.headers
    assert_error(gw.call("POST", "/api/integrations/google/disconnect", headers=cookie(user)), 401)
    mid = str(uuid.uuid4())
    assert_error(gw.call("DELETE", f"/api/calendar/meetings/{mid}", headers=cookie(user)), 401)
    assert_error(gw.call("PUT", f"/api/calendar/meetings/{mid}/reschedule", headers=cookie(user),
                         json={"newDateTime": "2099-01-01T10:00:00Z"}), 401)
    # A browser that says the request comes from another site is refused even with the header.
    for site in ("cross-site", "same-site"):
        r = refused(gw.get(status, headers={**cookie(user), **UI, "Sec-Fetch-Site": site}), 401)
        assert "this site's own pages" in r.json()["error"]["message"]
    # Another site's script would need a CORS preflight first, and none is ever granted.
    pre = gw.call("OPTIONS", status, headers={"Origin": "https://evil.example",
                                               "Access-Control-Request-Method": "GET",
                                               "Access-Control-Request-Headers": "x-requested-with"})
    assert pre.status_code == 405 and "Access-Control-Allow-Origin" not in pre.headers
    # Only the cookie of the configured name counts, and a bad token in it is refused as any bad token is.
    assert_error(gw.get(status, headers={**cookie(user, "session"), **UI}), 401)
    assert_error(gw.get(status, headers={"Cookie": "token=not.a.jwt", **UI}), 401)
    # The bearer header still wins and needs nothing else.
    assert gw.get(status, user).status_code == 200
    # A write through the cookie from the page: the meeting is the user's, so this reaches the checks.
    r = gw.call("DELETE", f"/api/calendar/meetings/{mid}", headers={**cookie(user), **UI})
    assert_error(r, 404)
