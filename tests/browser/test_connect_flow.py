"""The connect flow in a real browser: headless Chromium (Debian's) on a small
page that plays the platform frontend's part (frontend/, served with the API
behind the same origin by server.py), the real oauth-gateway, and the Google
stand-in's consent page. connect.test.mjs drives the browser; this file
starts the servers, runs it, and checks what the gateway stored.
Screenshots land in tests/browser/output/ (or $BROWSER_OUTPUT_DIR).
"""

import json
import os
import shutil
import subprocess

import pytest

import harness
from harness import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def node_modules():
    """playwright-core from the lockfile (npm ci), when missing or older than the lockfile."""
    stamp = os.path.join(HERE, "node_modules", ".package-lock.json")
    if not os.path.exists(stamp) or os.path.getmtime(stamp) < os.path.getmtime(os.path.join(HERE,
                                                                                             "package-lock.json")):
        p = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, capture_output=True, text=True,
                           timeout=600)
        assert p.returncode == 0, p.stdout + p.stderr
    assert shutil.which(CHROMIUM) or os.path.exists(CHROMIUM), \
        f"{CHROMIUM} is missing: deploy/install-deps.sh installs Debian's chromium"


@pytest.fixture
def frontend(tmp_path):
    """Start server.py for a gateway address; returns a function giving the page's URL."""
    procs = []

    def start(gateway_url):
        log = open(tmp_path / "frontend.log", "w")
        p = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "server.py"), "--gateway", gateway_url],
                             stdout=subprocess.PIPE, stderr=log, text=True)
        procs.append(p)
        return json.loads(p.stdout.readline())["listening"] + "/"

    yield start
    for p in procs:
        p.terminate()
        p.wait(10)
        p.stdout.close()


def test_connect_google_calendar_in_a_browser(stack, frontend, node_modules):
    s = stack()
    gateway_addr = f"127.0.0.1:{free_port()}"
    google_email = "browser.user@example.com"
    page = frontend("http://" + gateway_addr)
    # Google sends the browser back to the frontend's origin, which passes the callback on to the gateway.
    redirect = page + "api/integrations/google/callback"
    s.start_standin(redirect_uri=redirect, email=google_email)
    user = s.add_user(email="owner@example.com")
    s.service("oauth-gateway", LISTEN_ADDR=gateway_addr, GOOGLE_REDIRECT_URI=redirect, FRONTEND_URL=page)

    output = os.environ.get("BROWSER_OUTPUT_DIR") or os.path.join(HERE, "output")
    for name in ("consent.png", "denied.png", "other-browser.png", "connected.png"):
        if os.path.exists(os.path.join(output, name)):
            os.remove(os.path.join(output, name))
    env = dict(os.environ, FRONTEND_URL=page, STANDIN_URL=s.standin.url, JWT=harness.jwt(user),
               GOOGLE_EMAIL=google_email, OUTPUT_DIR=output, CHROMIUM=CHROMIUM)
    p = subprocess.run(["node", "--test", "--test-reporter=spec", "connect.test.mjs"], cwd=HERE, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr

    row = s.one("SELECT google_calendar_connected, google_email, google_access_token, google_refresh_token,"
                " google_calendar_timezone FROM users WHERE id = %s", user)
    assert row[0] is True and row[1] == google_email
    assert row[2].startswith("v1:") and row[3].startswith("v1:")
    assert harness.unseal(row[3], user)
    assert row[4] == "Asia/Kolkata", "the calendar's zone was read at connect"
    for name in ("consent.png", "denied.png", "other-browser.png", "connected.png"):
        with open(os.path.join(output, name), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", name
