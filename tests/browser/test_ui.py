"""The gateway's own web UI (issue 9) in a real browser: Debian's headless
Chromium driven by playwright-core (ui.test.mjs), against the real
oauth-gateway with WEB_UI on and the sign-in helper, the real scheduler, and
the Google stand-in's consent page. The browser signs in, connects Google
Calendar, sees the meetings of published leads appear, opens a lead,
reschedules its demo (and the stand-in's event moves), waits out a slow
Google ("Saving…", then the new time), sees a refused change
explained, cancels it (and it leaves the list), reads why another lead got no
demo, reads why a lead was skipped for the rep's busy time and books it with
"Book anyway" after the clash is shown, moves another into busy time with
"Move anyway", sees the overlap noted in the list and the free slots around
the busy time in "Your free time", sees what the two-way sync would write
(the lead's answer beside the attendee, a decline marked; moves and deletes
made in Google Calendar named as such in the history), and disconnects. Every step leaves a screenshot in
$BROWSER_OUTPUT_DIR/ui (default tests/browser/output/ui). (The README's
pictures come from ui-local-stack.mjs, the same walk on the local stack.)

This file starts the servers and seeds the leads; the browser publishes the
leads' `lead.analyzed` itself (through RabbitMQ's management API) once the
calendar is connected, and this file checks what the database holds after.
"""

import datetime
import os
import shutil
import subprocess
import urllib.parse

import pytest

from harness import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
IST = datetime.timezone(datetime.timedelta(hours=5, minutes=30))


@pytest.fixture(scope="module")
def playwright_core():
    """playwright-core from the shared lockfile (npm ci), when missing or older than the lockfile."""
    stamp = os.path.join(HERE, "node_modules", ".package-lock.json")
    lock = os.path.join(HERE, "package-lock.json")
    if not os.path.exists(stamp) or os.path.getmtime(stamp) < os.path.getmtime(lock):
        p = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, capture_output=True, text=True,
                           timeout=600)
        assert p.returncode == 0, p.stdout + p.stderr
    assert shutil.which(CHROMIUM) or os.path.exists(CHROMIUM), \
        f"{CHROMIUM} is missing: deploy/install-deps.sh installs Debian's chromium"


def demo_at(days, hour, minute=0):
    """A demo time as the call's analysis writes it: wall time in India with its offset, days from now."""
    d = datetime.datetime.now(IST).date() + datetime.timedelta(days=days)
    return datetime.datetime(d.year, d.month, d.day, hour, minute, tzinfo=IST).isoformat()


def test_web_ui_in_a_browser(stack, playwright_core):
    s = stack()
    addr = f"127.0.0.1:{free_port()}"
    gateway = "http://" + addr
    redirect = gateway + "/api/integrations/google/callback"
    google_email = "ui.owner@example.com"
    s.start_standin(redirect_uri=redirect, email=google_email)
    user = s.add_user(email="owner@example.com", name="Demo Owner")
    s.service("oauth-gateway", LISTEN_ADDR=addr, GOOGLE_REDIRECT_URI=redirect, FRONTEND_URL=gateway + "/",
              WEB_UI="on", WEB_UI_DEV_USER=user)
    s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")

    moved = s.add_lead(user, demo=demo_at(3, 16), name="Priya Sharma", company="Acme Robotics",
                       email="priya@acme.example")
    kept = s.add_lead(user, demo=demo_at(5, 11, 30), name="John Smith", company="TechCorp",
                      email="john@techcorp.example")
    skipped = s.add_lead(user, demo=None, name="Maria Garcia", company="Globex", email="maria@globex.example")
    clash_at = demo_at(2, 15)
    clash = s.add_lead(user, demo=clash_at, name="Chen Wei", company="Initech", email="chen@initech.example")

    api = urllib.parse.urlsplit(os.environ["TEST_RABBITMQ_API"])
    output = os.path.join(os.environ.get("BROWSER_OUTPUT_DIR") or os.path.join(HERE, "output"), "ui")
    shutil.rmtree(output, ignore_errors=True)
    env = dict(os.environ, GATEWAY_URL=gateway, STANDIN_URL=s.standin.url, GOOGLE_EMAIL=google_email,
               USER_ID=user, LEAD_MOVED=moved["lead"], LEAD_KEPT=kept["lead"], LEAD_SKIPPED=skipped["lead"],
               LEAD_CLASH=clash["lead"], LEAD_CLASH_AT=clash_at,
               RABBIT_PUBLISH_URL=f"{api.scheme}://{api.hostname}:{api.port}{api.path}/exchanges/"
                                  f"{urllib.parse.quote(s.vhost, safe='')}/leads/publish",
               RABBIT_AUTH=f"{api.username}:{api.password}", OUTPUT_DIR=output, CHROMIUM=CHROMIUM,
               DATABASE_URL=s.database_url)
    p = subprocess.run(["node", "--test", "--test-reporter=spec", "ui.test.mjs"], cwd=HERE, env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr

    # What the clicks left behind: one meeting moved twice (once while Google was slow), then cancelled with
    # its reason (the refused move changed nothing); the other untouched.
    rows = s.query("SELECT status, cancellation_reason, rescheduled_from_meeting_id IS NOT NULL FROM"
                   " calendar_meetings WHERE lead_analytics_id = %s ORDER BY created_at", moved["lead"])
    assert rows == [("rescheduled", None, False), ("rescheduled", None, True),
                    ("cancelled", "The lead asked to talk next quarter.", True)], rows
    # The other moved once, into busy time with Move anyway.
    assert s.query("SELECT status, has_conflict FROM calendar_meetings WHERE lead_analytics_id = %s"
                   " ORDER BY created_at", kept["lead"]) == [("rescheduled", False), ("scheduled", True)]
    # The lead skipped for the rep's board meeting, then booked over it with Book anyway, once; then, as the sync
    # would have it, moved a day later in Google Calendar.
    assert s.query("SELECT status, has_conflict, change_source FROM calendar_meetings WHERE lead_analytics_id = %s"
                   " ORDER BY created_at", clash["lead"]) == [("rescheduled", True, "google"),
                                                              ("scheduled", None, "google")]
    assert s.one("SELECT outcome, reason FROM calendar_booking_outcomes WHERE lead_analytics_id = %s",
                 skipped["lead"]) == ("skipped", "no_datetime")
    assert s.one("SELECT google_calendar_connected FROM users WHERE id = %s", user) == (False,)
    shots = sorted(os.listdir(output))
    assert len(shots) >= 12, shots
    for name in shots:
        with open(os.path.join(output, name), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", name
