"""Security tests of issue 6 that no other suite already makes: the log
scanner itself, tokens at rest moved between users, redirects that only
configuration chooses, SQL that is only ever constant text with parameters,
hostile values carried through the whole pipeline unchanged, and no Google
token left in the services' memory once they are done with it.

And the gateway's HTTP server against anonymous clients: request heads with a deadline and a size,
framing that allows one reading only, bodies refused from their Content-Length and authentication
before a byte of them is read, a cap on connections, memory that stays bounded under many unfinished
requests.

Broker trust: the broker is not a trust boundary. A command published by any
broker user but the gateway's is refused and changes nothing; a command the
gateway's user did publish is still checked field by field; a lead.analyzed
naming another user than the lead's owner is refused, and no outcome row of
one user is ever rewritten in another's name. (That a broker user without
write permission cannot publish to calendar.commands at all, and that a
forged user-id is refused by the broker itself, is in
tests/integration/test_mq.c.)

JWT refusals (alg none, wrong key, expired, missing claim) are in
test_gateway.py::test_jwt_is_required_and_checked and tests/unit/test_jwt.c;
state reuse and forgery in test_gateway.py::test_reused_forged_and_expired_states_are_refused.
Every e2e test's logs are scanned for secrets by Stack.close() (logscan.py).
"""

import json
import os
import shutil
import socket
import time
import urllib.parse
import uuid

import jsonschema
import pytest
import requests

import harness
import logscan
import sqlscan
from harness import JWT_SECRET, broker_user, jwt, unseal, wait_for
from test_gateway import Gateway, connect, frontend_result, status
from test_mailer import parts, wait_mails

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_log_scanner_catches_what_it_must():
    """A secret in any form a careless log line could carry is found; clean JSON logs pass."""
    token = "ya29." + "A" * 40 + "tail-of-the-token-xyz"
    secrets = [("access_token", token), ("JWT_SECRET", JWT_SECRET)]
    clean = json.dumps({"level": "info", "msg": "meeting created", "user": str(uuid.uuid4())})
    assert logscan.scan("svc", clean + "\n\n" + clean, secrets) == []
    leaks = [
        json.dumps({"msg": "x", "token": token}),
        json.dumps({"msg": "x", "detail": token[5:]}),            # without its prefix
        json.dumps({"msg": "x", "url": "https://a/?t=" + token.replace("/", "%2F")}),
        json.dumps({"msg": "x", "key": JWT_SECRET}),
        json.dumps({"msg": "x", "auth": "Bearer " + jwt(str(uuid.uuid4()), secret="another")}),
    ]
    for line in leaks:
        assert logscan.scan("svc", clean + "\n" + line, secrets), line
    assert logscan.scan("svc", "plain text, not JSON", secrets) == ["svc:1: not a JSON log line: plain text, not JSON"]
    keys = dict(logscan.config_secrets({"TOKEN_ENCRYPTION_KEY": "2:" + "b" * 44 + ",1:" + "a" * 44}))
    assert "TOKEN_ENCRYPTION_KEY key" in keys, "each key of a key ring is a secret of its own"


def test_sql_is_only_constant_text(tmp_path):
    """Every query's SQL is a constant; a query built at run time anywhere in the tree is named by file and line."""
    problems, calls = sqlscan.scan(ROOT)
    assert problems == []
    assert calls >= 40, f"only {calls} query calls found: the scanner lost track of the code"

    # The scanner must see a planted violation: SQL formatted with a value, in a copy of the tree.
    copy = tmp_path / "tree"
    for d in ("lib", "services"):
        shutil.copytree(os.path.join(ROOT, d), copy / d)
    target = copy / "services" / "scheduler-worker" / "sweep.c"
    src = target.read_text()
    planted = src.replace("db_query(s->env.db, sweep_disconnects_sql,",
                          "db_query(s->env.db, xasprintf(\"SELECT '%s'\", s->env.cfg->mail_from),", 1)
    assert planted != src
    target.write_text(planted)
    problems, _ = sqlscan.scan(str(copy), dirs=("lib", "services"))
    assert len(problems) == 1 and problems[0].startswith("services/scheduler-worker/sweep.c:"), problems


def issued(s, kind):
    return [x["value"] for x in s.standin.admin("secrets") if x["kind"] == kind]


def google_requests(s):
    return s.standin.admin("requests")["requests"]


def test_sealed_tokens_moved_to_another_user_do_not_open(stack):
    """Tokens are sealed at rest and bound to their user: copied to another user's row they open for nobody,
    no Google call is made with them, the lead is recorded as not connected and disconnect still succeeds."""
    s = stack()
    gw = Gateway(s)
    alice, bob = s.add_user(), s.add_user()
    assert connect(gw, alice, "alice@example.com")[0] == {"google": "connected"}
    assert connect(gw, bob, "bob@example.com")[0] == {"google": "connected"}
    rows = {u: s.one("SELECT google_access_token, google_refresh_token FROM users WHERE id = %s", u)
            for u in (alice, bob)}
    tokens = issued(s, "access_token") + issued(s, "refresh_token")
    assert len(tokens) == 4
    for u, (access, refresh) in rows.items():
        assert not any(t in access or t in refresh for t in tokens), "a token stored as plaintext"
        assert unseal(access, u) in tokens and unseal(refresh, u) in tokens

    s.query("UPDATE users SET google_access_token = %s, google_refresh_token = %s WHERE id = %s",
            rows[alice][0], rows[alice][1], bob)
    before = len(google_requests(s))
    sched = s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    lead = s.add_lead(bob)
    assert s.publish_lead(lead["lead"], bob)
    got = wait_for(lambda: s.one("SELECT outcome, reason FROM calendar_booking_outcomes"
                                 " WHERE lead_analytics_id = %s", lead["lead"]), 20, what="the lead's outcome")
    assert got == ("skipped", "not_connected")
    assert "a row moved between users" in sched.logs()
    r = gw.call("POST", "/api/integrations/google/disconnect", bob)
    assert r.status_code == 200 and r.json()["connected"] is False and r.json()["revoked"] is False
    assert google_requests(s)[before:] == [], "a moved token reached Google"
    assert s.one("SELECT google_access_token, google_refresh_token FROM users WHERE id = %s", bob) == (None, None)

    # Alice's own row is untouched and still works.
    lead = s.add_lead(alice)
    assert s.publish_lead(lead["lead"], alice)
    assert wait_for(lambda: s.one("SELECT status FROM calendar_meetings WHERE lead_analytics_id = %s",
                                  lead["lead"]), 20) == ("scheduled",)


def memory_holds(pid, pieces):
    """Which of pieces (bytes) are in the process's heap or anonymous read-write mappings, live or freed."""
    found = set()
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if not fields[1].startswith("rw") or (len(fields) > 5 and fields[5] != "[heap]"):
                continue
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except OSError:
                continue
            found |= {p for p in pieces if p in data}
    return found


def test_no_google_token_stays_in_the_services_memory(stack):
    """The gateway (code exchange, userinfo, calendar probe) and the scheduler (refresh, booking, a command)
    hold Google's tokens in plaintext while they use them, and zero every buffer that held one before freeing it
    (lib/xmalloc.h), libcurl's included: afterwards no piece of any access or refresh token is left in either
    process's memory, where a core dump or a read past a buffer would find it."""
    binary = os.path.join(harness.BUILD, "services", "scheduler-worker", "scheduler-worker")
    with open(binary, "rb") as f:
        if b"__asan_init" in f.read():
            pytest.skip("AddressSanitizer's shadow memory is too large to read (the unit and integration scans "
                        "run on the normal build)")
    s = stack()
    gw = Gateway(s)
    sched = s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    user = s.add_user()
    assert connect(gw, user, "mem@example.com")[0] == {"google": "connected"}
    # Due for a refresh: the scheduler refreshes before it books.
    s.query("UPDATE users SET google_token_expiry = now() + interval '1 minute' WHERE id = %s", user)
    lead = s.add_lead(user)
    assert s.publish_lead(lead["lead"], user)
    meeting = wait_for(lambda: s.one("SELECT id FROM calendar_meetings WHERE lead_analytics_id = %s AND"
                                     " status = 'scheduled'", lead["lead"]), 20, what="the booking")[0]
    r = gw.call("PUT", f"/api/calendar/meetings/{meeting}/reschedule", user,
                json={"newDateTime": "2099-10-02T11:00:00+05:30"})
    assert r.status_code == 200, r.text
    tokens = issued(s, "access_token") + issued(s, "refresh_token")
    assert len(tokens) >= 3, "the connect's two tokens and the refresh's access token"
    assert s.standin.admin("stats")["token_refreshes"], "the scheduler refreshed"
    # The allocator writes over a freed block's first bytes: look for each token's tail.
    pieces = {t[-24:].encode(): t[:12] for t in tokens}
    for svc in (gw.svc, sched):
        left = memory_holds(svc.proc.pid, pieces)
        assert not left, f"{svc.name} still holds {sorted(pieces[p] + '...' for p in left)}"


def test_redirects_come_only_from_configuration(stack):
    """Whatever a request carries, the callback sends the browser to FRONTEND_URL and nowhere else, the
    authorization URL names GOOGLE_REDIRECT_URI, and no header can be injected."""
    s = stack()
    gw = Gateway(s)
    user = s.add_user()
    evil = "https://evil.example/steal"
    hostile = {
        "Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
        "Forwarded": "host=evil.example", "Referer": evil, "Origin": "https://evil.example",
        "Accept": "application/json",
    }
    query = urllib.parse.urlencode({"redirect_uri": evil, "redirect": evil, "next": evil, "return_to": evil})
    r = gw.get("/api/integrations/google/auth?" + query, user, headers=hostile)
    assert r.status_code == 200, r.text
    auth = urllib.parse.parse_qs(urllib.parse.urlsplit(r.json()["authUrl"]).query)
    assert auth["redirect_uri"] == [gw.svc.env["GOOGLE_REDIRECT_URI"]]
    assert r.json()["authUrl"].startswith(s.standin.url + "/o/oauth2/v2/auth?")

    callbacks = [
        {"state": evil, "code": "x", "redirect_uri": evil},
        {"error": "access_denied", "error_description": "x\r\nLocation: " + evil, "state": "s"},
        {"error": "x\r\nSet-Cookie: a=b", "state": "s\r\nLocation: " + evil},
        {"next": evil, "return_to": "//evil.example", "state": ""},
        {"code": "4/0abc", "state": "%0d%0aLocation:%20" + evil},
    ]
    for params in callbacks:
        r = requests.get(gw.url + "/api/integrations/google/callback?" + urllib.parse.urlencode(params),
                         headers=hostile, allow_redirects=False, timeout=30)
        result = frontend_result(gw, r)   # asserts Location starts with FRONTEND_URL + "?"
        assert result["google"] == "error" and result["reason"] in ("invalid_state", "access_denied"), params
        assert "Set-Cookie" not in r.headers and "evil" not in r.headers["Location"], r.headers
        assert all("\r" not in v and "\n" not in v for v in r.headers.values())

    # A real connect with the same hostile extras still lands on FRONTEND_URL.
    result, callback = connect(gw, user, "user@example.com")
    r = requests.get(callback + "&" + query, headers=hostile, allow_redirects=False, timeout=30)
    assert frontend_result(gw, r)["reason"] == "invalid_state", "the state was spent by the first visit"
    assert result == {"google": "connected"} and status(gw, user)["connected"] is True


HOSTILE = {
    "name": "Robert'); DROP TABLE calendar_meetings; -- \u00e9\u65e5",
    "company": "O'Brien & \"Sons\" \\ $1 %s {call_id}",
    "email_local": "o'brien+x",
    "reasoning": {"intent": "'; DELETE FROM users; --", "budget": "<script>alert(1)</script> $$ \\x00"},
    "summary": "Line one\nLine two with \\N and E'\\\\' and " + "long " * 80,
}


def test_hostile_values_travel_unchanged(stack):
    """SQL metacharacters, quotes, backslashes, placeholders and long text in every lead field are stored,
    sent to Google and mailed exactly as written; every table is still there afterwards."""
    s = stack()
    s.start_standin()
    user = s.add_user()
    owner = s.one("SELECT email FROM users WHERE id = %s", user)[0]
    gmail = f"g-{user[:8]}@example.com"
    s.connect_calendar(user, gmail)
    attendee = HOSTILE["email_local"] + "@example.com"
    lead = s.add_lead(user, email=attendee, name=HOSTILE["name"], company=HOSTILE["company"],
                      reasoning=HOSTILE["reasoning"], summary=HOSTILE["summary"])
    s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    s.service("mailer-worker")
    assert s.publish_lead(lead["lead"], user)
    row = wait_for(lambda: s.one("SELECT meeting_title, attendee_email, google_event_id FROM calendar_meetings"
                                 " WHERE lead_analytics_id = %s", lead["lead"]), 20, what="the meeting")
    title = f"{HOSTILE['name']} + {HOSTILE['company']} + Demo"
    assert row[:2] == (title, attendee)
    event = [e for e in s.standin.admin(f"events?email={gmail}")["events"] if e["id"] == row[2]][0]
    assert event["summary"] == title
    assert [a["email"] for a in event["attendees"]] == [attendee]
    for text in (HOSTILE["name"], HOSTILE["reasoning"]["intent"], HOSTILE["summary"].strip()):
        assert text in event["description"], text

    _, msg = wait_mails(s, owner)[0]
    body, html, _ = parts(msg)
    assert HOSTILE["name"] in body and HOSTILE["company"] in body
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert msg["Subject"] is not None and "\n" not in str(msg["Subject"])
    tables = {r[0] for r in s.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"users", "calendar_meetings", "lead_analytics", "calendar_booking_outcomes"} <= tables
    assert s.one("SELECT count(*) FROM users")[0] >= 1


# Broker trust


def calendar(s, email):
    """The user's events at the Google stand-in, without the stand-in's bookkeeping that changes on reads."""
    return [{k: v for k, v in e.items() if k != "_standin"} for e in s.standin.admin(f"events?email={email}")["events"]]


def dead_letters(s, reason):
    return [m for m in s.peek("scheduler.dead") if m["properties"]["headers"].get("x-dead-reason") == reason]


def refused(sched, message, reason):
    return sched.metrics().get(f'scheduler_messages_refused_total{{message="{message}",reason="{reason}"}}', 0)


def booked(s, user, gmail, **lead):
    """A lead of user booked by the scheduler; returns (lead id, meeting id)."""
    lead_id = s.add_lead(user, **lead)["lead"]
    assert s.publish_lead(lead_id, user)
    row = wait_for(lambda: s.one("SELECT id FROM calendar_meetings WHERE lead_analytics_id = %s", lead_id), 20,
                   what="the booked meeting")
    return lead_id, str(row[0])


def world(s):
    """Every row a command or a lead could change."""
    return {t: s.query(f"SELECT * FROM {t} ORDER BY 1") for t in
            ("calendar_meetings", "calendar_commands", "calendar_booking_outcomes")}


def send_command(s, body, **props):
    cid = str(uuid.uuid4())
    body = dict(body, command_id=cid)
    assert s.publish("calendar.commands", "meeting." + body["command"], body, message_id=cid, correlation_id=cid,
                     reply_to="test.replies", type="meeting.command", **props)
    return cid


def test_commands_only_from_the_gateways_broker_user(stack):
    """Commands hand-published without a user-id, or by any broker user but the gateway's (another service's
    credentials, the administrator's), are dead-lettered unanswered as untrusted_publisher and change nothing:
    the Google calendar, the meetings, the stored commands. The same cancel from the gateway's user works."""
    s = stack()
    s.start_standin()
    victim = s.add_user()
    gmail = f"g-{victim[:8]}@example.com"
    s.connect_calendar(victim, gmail)
    sched = s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    s._rabbit("PUT", f"/queues/{s.vhost}/test.replies", json={"durable": False, "auto_delete": False})
    lead, meeting = booked(s, victim, gmail)
    spare = s.add_lead(victim, demo=None)["lead"]
    before_calendar, before_rows = calendar(s, gmail), world(s)

    create = {"command": "create", "user_id": victim, "lead_analytics_id": spare, "date_time": "2099-05-01T10:00:00",
              "attendee_email": "outsider@evil.example", "attendee_name": "Eve\r\nBcc: all@evil.example"}
    cancel = {"command": "cancel", "user_id": victim, "meeting_id": meeting, "reason": "forged"}
    sent = [
        send_command(s, create),                                            # no user-id at all
        send_command(s, cancel),
        send_command(s, cancel, user_id=broker_user("mailer")),            # another service's broker user
        send_command(s, create, user_id=broker_user("scheduler") + "x"),   # a user that is nobody's
        send_command(s, cancel, user_id="guest"),                          # the administrator itself
    ]
    dead = wait_for(lambda: (lambda d: d if len(d) == len(sent) else None)(dead_letters(s, "untrusted_publisher")),
                    30, what="every forged command dead-lettered")
    assert {m["properties"]["message_id"] for m in dead} == set(sent)
    publishers = sorted(m["properties"]["headers"].get("x-dead-publisher", "(none)") for m in dead)
    assert publishers == sorted(["(none)", "(none)", broker_user("mailer"), broker_user("scheduler") + "x", "guest"])
    assert all("COMMAND_AMQP_USERS" in m["properties"]["headers"]["x-dead-detail"] for m in dead)
    assert refused(sched, "command", "untrusted_publisher") == len(sent)
    assert s.peek("test.replies") == [], "a forged command is not answered: its reply_to is the forger's word"
    assert calendar(s, gmail) == before_calendar, "the victim's Google calendar is unchanged"
    assert world(s) == before_rows, "no meeting, command or outcome row changed"
    assert s.one("SELECT status FROM calendar_meetings WHERE id = %s", meeting) == ("scheduled",)
    lines = [ln for ln in sched.log_lines() if ln["msg"].startswith("command refused: its publisher")]
    assert len(lines) == len(sent) and {ln["publisher"] for ln in lines} >= {"(none)", "guest"}

    # The same cancel from the gateway's broker user goes through: it was the publisher that was refused.
    cid = send_command(s, cancel, user_id=broker_user("gateway"))
    reply = wait_for(lambda: [json.loads(m["payload"]) for m in s.peek("test.replies")
                              if m["properties"].get("correlation_id") == cid], 20, what="the gateway's reply")[0]
    assert reply["ok"] and reply["meeting"]["status"] == "cancelled"
    assert calendar(s, gmail)[0]["status"] == "cancelled"


HOSTILE_COMMANDS = [
    ("attendee_name", {"attendee_name": "Eve\r\nBcc: all@evil.example"}),
    ("attendee_name", {"attendee_name": "tab\there"}),
    ("attendee_name", {"attendee_name": "n" * 256}),
    ("attendee_email", {"attendee_email": "a@example.com\r\nBcc: all@evil.example"}),
    ("attendee_email", {"attendee_email": "a@b.example, c@evil.example"}),
    ("attendee_email", {"attendee_email": "x" * 250 + "@example.com"}),
    ("attendee_email", {"attendee_email": "nobody"}),
    ("date_time", {"date_time": "tomorrow at five"}),
    ("every member", {"date_time": 20990501}),
    ("takes only", {"attendee_phone": "+1 555 0100"}),
    ("takes only", {"meeting_id": str(uuid.uuid4())}),
    ("lead_analytics_id", {"lead_analytics_id": "not-a-uuid"}),
]


def test_commands_are_checked_again_field_by_field(stack):
    """A command from the gateway's own broker user is still checked as the gateway checks a request (names
    without control characters, emails, lengths, date-times, UUIDs, only the members of its kind): the
    refusal is answered `invalid`, dead-lettered as malformed and changes nothing."""
    s = stack()
    s.start_standin()
    user = s.add_user()
    gmail = f"g-{user[:8]}@example.com"
    s.connect_calendar(user, gmail)
    sched = s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    s._rabbit("PUT", f"/queues/{s.vhost}/test.replies", json={"durable": False, "auto_delete": False})
    lead = s.add_lead(user, demo=None)["lead"]
    _, meeting = booked(s, user, gmail)
    before_calendar, before_rows = calendar(s, gmail), world(s)
    gateway = broker_user("gateway")
    base = {"command": "create", "user_id": user, "lead_analytics_id": lead, "date_time": "2099-05-01T10:00:00"}
    cases = [(why, dict(base, **extra)) for why, extra in HOSTILE_COMMANDS]
    cases += [
        ("reason", {"command": "cancel", "user_id": user, "meeting_id": meeting, "reason": "r" * 2001}),
        ("takes only", {"command": "cancel", "user_id": user, "meeting_id": meeting, "lead_analytics_id": lead}),
        ("new_date_time", {"command": "reschedule", "user_id": user, "meeting_id": meeting}),
        ("new_date_time", {"command": "reschedule", "user_id": user, "meeting_id": meeting,
                           "new_date_time": "2099-13-01T10:00:00Z"}),
    ]
    ids = {}
    for why, body in cases:
        ids[send_command(s, body, user_id=gateway)] = why
    # A body with a member twice: two JSON readers could each take another copy.
    cid = str(uuid.uuid4())
    twice = ('{"command":"cancel","command_id":"%s","user_id":"%s","meeting_id":"%s","reason":"a","reason":"b"}'
             % (cid, user, meeting))
    assert s.publish("calendar.commands", "meeting.cancel", twice, message_id=cid, correlation_id=cid,
                     reply_to="test.replies", type="meeting.command", user_id=gateway)
    ids[cid] = "twice"

    replies = wait_for(lambda: (lambda r: r if len(r) == len(ids) else None)(
        {m["properties"]["correlation_id"]: json.loads(m["payload"]) for m in s.peek("test.replies")}), 30,
        what="an answer to every command")
    for cid, why in ids.items():
        r = replies[cid]
        assert r["ok"] is False and r["error"]["code"] == "invalid", (why, r)
        assert why in r["error"]["message"], (why, r)
    dead = wait_for(lambda: (lambda d: d if len(d) == len(ids) else None)(dead_letters(s, "malformed")), 20,
                    what="every refused command dead-lettered")
    assert {m["properties"]["message_id"] for m in dead} == set(ids)
    assert refused(sched, "command", "malformed") == len(ids)
    assert calendar(s, gmail) == before_calendar
    assert world(s) == before_rows
    assert not [r for r in s.query("SELECT attendee_name FROM calendar_meetings")
                if r[0] and ("\r" in r[0] or "\n" in r[0])]

    # Within the rules the same command is taken (the name may hold any printable text).
    cid = send_command(s, dict(base, attendee_name="Zoë O'Brien <CTO>", attendee_email="Lead@Example.com"),
                       user_id=gateway)
    reply = wait_for(lambda: [json.loads(m["payload"]) for m in s.peek("test.replies")
                              if m["properties"].get("correlation_id") == cid], 20, what="the good command's reply")[0]
    assert reply["ok"], reply
    assert reply["meeting"]["attendee_name"] == "Zoë O'Brien <CTO>"


# Replies: a quote and a backslash in every value one carries
QUOTED = 'Say "hi" \\ back\\slash \\" end\\'


def test_replies_carry_quotes_and_backslashes_exactly(stack):
    """A quote and a backslash in every value a reply carries (the attendee's name in the meeting and the
    previous one, a cancel reason, a refusal naming what Google said) reach the gateway's answers, and the
    scheduler's own replies (a stored one repeated too), as valid JSON holding exactly the value sent."""
    s = stack()
    s.start_standin()
    gw = Gateway(s)
    s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    user = s.add_user()
    gmail = f"g-{user[:8]}@example.com"
    s.connect_calendar(user, gmail)
    lead = s.add_lead(user, demo=None)["lead"]
    create = {"leadAnalyticsId": lead, "dateTime": "2099-10-01T10:00:00+05:30", "attendeeName": QUOTED}

    def answer(r, status):
        assert r.status_code == status, r.text
        return json.loads(r.text)   # strict: what the gateway sent is JSON as written

    # Google refuses: its reason is named in the refusal.
    reason = 'no"pe\\x'
    s.standin.admin("faults", {"rules": [{"method": "POST", "path_prefix": "/calendar/v3/calendars/", "status": 400,
                                          "reason": reason, "count": 1}]})
    err = answer(gw.call("POST", "/api/calendar/meetings", user, json=create), 502)["error"]
    assert err["code"] == "google_rejected" and f"({reason})" in err["message"], err

    created = answer(gw.call("POST", "/api/calendar/meetings", user, json=create), 201)["meeting"]
    assert created["attendee_name"] == QUOTED
    body = answer(gw.call("PUT", f"/api/calendar/meetings/{created['id']}/reschedule", user,
                          json={"newDateTime": "2099-10-02T11:00:00+05:30"}), 200)
    assert body["meeting"]["attendee_name"] == QUOTED and body["previous"]["attendee_name"] == QUOTED
    moved = body["meeting"]["id"]
    cancelled = answer(gw.call("DELETE", f"/api/calendar/meetings/{moved}", user, json={"reason": QUOTED}),
                       200)["meeting"]
    assert cancelled["cancellation_reason"] == QUOTED and cancelled["attendee_name"] == QUOTED
    assert answer(gw.get(f"/api/calendar/meetings/{moved}", user), 200)["meeting"]["cancellation_reason"] == QUOTED
    listed = answer(gw.get(f"/api/calendar/meetings/lead/{lead}", user), 200)["meetings"]
    assert {m["attendee_name"] for m in listed} == {QUOTED}

    # The same cancel again, as a redelivery brings it: the stored reply, repeated, still holds the exact values.
    s._rabbit("PUT", f"/queues/{s.vhost}/test.replies", json={"durable": False, "auto_delete": False})
    cid = str(s.one("SELECT command_id FROM calendar_commands WHERE command = 'cancel' AND user_id = %s", user)[0])
    again = {"command": "cancel", "command_id": cid, "user_id": user, "meeting_id": moved, "reason": QUOTED}
    assert s.publish("calendar.commands", "meeting.cancel", again, message_id=cid, correlation_id=cid,
                     reply_to="test.replies", type="meeting.command", user_id=broker_user("gateway"))
    # A refusal the scheduler answers itself (the gateway would not send it): its text is JSON too.
    bad = send_command(s, {"command": "cancel", "user_id": user, "meeting_id": moved, "reason": "r" * 2001},
                       user_id=broker_user("gateway"))
    replies = wait_for(lambda: (lambda r: r if len(r) == 2 else None)(
        {m["properties"]["correlation_id"]: json.loads(m["payload"]) for m in s.peek("test.replies")}), 20,
        what="both replies")
    assert replies[cid]["ok"] is True and replies[cid]["command_id"] == cid
    assert replies[cid]["meeting"]["cancellation_reason"] == QUOTED
    assert replies[cid]["meeting"]["attendee_name"] == QUOTED
    assert replies[bad]["ok"] is False and replies[bad]["command_id"] == bad
    assert replies[bad]["error"]["code"] == "invalid" and "reason" in replies[bad]["error"]["message"]
    with open(os.path.join(ROOT, "proto", "messages", "meeting.command-reply.schema.json")) as f:
        schema = json.load(f)
    for reply in replies.values():
        jsonschema.validate(reply, schema)


def test_a_forged_lead_names_nobody_but_the_leads_owner(stack):
    """lead.analyzed naming another user than lead_analytics.user_id is refused (user_mismatch) and touches
    neither user: no outcome row changes or appears, no event in either calendar. An outcome row is only ever
    rewritten in its own user's name."""
    s = stack()
    s.start_standin()
    alice, bob = s.add_user(), s.add_user()
    a_mail, b_mail = f"g-{alice[:8]}@example.com", f"g-{bob[:8]}@example.com"
    s.connect_calendar(alice, a_mail)
    s.connect_calendar(bob, b_mail)
    sched = s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")

    # Alice's lead was skipped (no demo time): her outcome row exists. Another of hers is bookable.
    skipped = s.add_lead(alice, demo=None)["lead"]
    assert s.publish_lead(skipped, alice)
    row = wait_for(lambda: s.one("SELECT * FROM calendar_booking_outcomes WHERE lead_analytics_id = %s", skipped),
                   20, what="alice's outcome")
    bookable = s.add_lead(alice)["lead"]
    # An outcome of alice's for a lead since deleted: no lead_analytics row says whose it is.
    gone = str(uuid.uuid4())
    s.query("INSERT INTO calendar_booking_outcomes (lead_analytics_id, user_id, outcome, reason, detail, attempts)"
            " VALUES (%s, %s, 'failed', 'google_rejected', 'Google refused the event', 1)", gone, alice)
    before = world(s)

    # Forged in bob's name: x-attempt 2 skips the wait for a lead that is not there yet.
    for lead in (skipped, bookable):
        assert s.publish("leads", "lead.analyzed", {"lead_analytics_id": lead, "user_id": bob},
                         message_id=f"forged-{lead}", headers={"x-attempt": 2})
    dead = wait_for(lambda: (lambda d: d if len(d) == 2 else None)(dead_letters(s, "user_mismatch")), 30,
                    what="both forged leads dead-lettered")
    assert {m["properties"]["message_id"] for m in dead} == {f"forged-{skipped}", f"forged-{bookable}"}
    assert refused(sched, "lead", "user_mismatch") == 2
    assert s.publish("leads", "lead.analyzed", {"lead_analytics_id": gone, "user_id": bob}, message_id="forged-gone",
                     headers={"x-attempt": 2})
    wait_for(lambda: sched.metrics().get('scheduler_leads_not_scheduled_total{reason="unknown_lead"}'), 20,
             what="the unknown lead handled")

    assert world(s) == before, "no outcome (or meeting) row changed or appeared"
    assert s.one("SELECT * FROM calendar_booking_outcomes WHERE lead_analytics_id = %s", skipped) == row
    assert s.one("SELECT user_id::text, reason FROM calendar_booking_outcomes WHERE lead_analytics_id = %s",
                 gone) == (alice, "google_rejected")
    assert s.query("SELECT 1 FROM calendar_booking_outcomes WHERE user_id = %s", bob) == []
    assert calendar(s, a_mail) == [] and calendar(s, b_mail) == []
    lines = [ln for ln in sched.log_lines() if ln["msg"].startswith("lead refused")]
    assert {(ln["message_user"], ln["owner"]) for ln in lines} == {(bob, alice)}

    # The lead's own owner still books it.
    assert s.publish_lead(bookable, alice)
    wait_for(lambda: calendar(s, a_mail), 20, what="alice's meeting")
    assert calendar(s, b_mail) == []


# The gateway's HTTP server against anonymous clients


def gw_addr(gw):
    host, port = gw.url[len("http://"):].split(":")
    return host, int(port)


def parse_answer(data):
    """(status, lower-cased headers, body) of the first HTTP answer in data."""
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, rest[:int(headers.get("content-length", len(rest)))]


def read_until_closed(c, timeout):
    """What the server sends until it closes (b"" when it closed with nothing), or None on timeout."""
    c.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = c.recv(65536)
            if not chunk:
                return data
            data += chunk
    except socket.timeout:
        return None
    except ConnectionResetError:
        return data


def exchange(gw, data, timeout=5):
    """Send raw bytes on a fresh connection; the answer parsed, and the server must then close."""
    with socket.create_connection(gw_addr(gw)) as c:
        c.sendall(data)
        got = read_until_closed(c, timeout)
    assert got, f"no answer to {data[:80]!r}"
    return parse_answer(got)


def assert_json_error(answer, status, code=None):
    got, headers, body = answer
    assert got == status, (got, body)
    assert headers["content-type"].startswith("application/json"), headers
    err = json.loads(body)["error"]
    assert set(err) == {"code", "message"} and err["message"], err
    if code is not None:
        assert err["code"] == code, err
    return err


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS:")).split()[1])


def test_slow_request_head_is_cut_off(stack):
    """A head trickled in a line at a time, or never sent, is answered 408 at HTTP_HEADER_TIMEOUT and closed:
    every line no longer buys another full timeout."""
    s = stack()
    gw = Gateway(s, HTTP_HEADER_TIMEOUT="1")
    with socket.create_connection(gw_addr(gw)) as c:
        start = time.time()
        c.sendall(b"GET /api/integrations/google/status HTTP/1.1\r\nHost: x\r\n")
        got = None
        for i in range(20):
            try:
                c.sendall(f"X-Slow-{i}: still here\r\n".encode())
            except OSError:
                break
            c.settimeout(0.3)
            try:
                got = c.recv(65536)
                break
            except socket.timeout:
                pass
        elapsed = time.time() - start
        got = (got or b"") + (read_until_closed(c, 3) or b"")
    assert elapsed < 2.5, f"the head was allowed {elapsed:.1f}s"
    assert_json_error(parse_answer(got), 408, "timeout")

    # A connection that sends nothing at all goes the same way.
    with socket.create_connection(gw_addr(gw)) as c:
        start = time.time()
        got = read_until_closed(c, 4)
    assert got is not None and time.time() - start < 2.5
    assert_json_error(parse_answer(got), 408, "timeout")
    # A prompt client on a kept-alive connection is not hurried between its requests.
    with requests.Session() as session:
        for _ in range(2):
            assert session.get(gw.url + "/healthz", timeout=5).status_code == 200
            time.sleep(1.5)


def test_body_is_refused_from_its_head_before_it_is_sent(stack):
    """A Content-Length over MAX_BODY_BYTES is answered 413 at once, and an anonymous request 401, both
    without waiting for a byte of the body, and the connection is closed."""
    s = stack()
    gw = Gateway(s, MAX_BODY_BYTES="4096")
    user = s.add_user()
    auth = b"Authorization: Bearer " + jwt(user).encode() + b"\r\n"
    for head, status, code in [
        (b"POST /api/calendar/meetings HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Length: 104857600\r\n\r\n",
         413, "payload_too_large"),
        (b"POST /api/calendar/meetings HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n", 401, "unauthorized"),
        (b"PUT /api/calendar/meetings/" + str(uuid.uuid4()).encode() + b"/reschedule HTTP/1.1\r\nHost: x\r\n"
         b"Expect: 100-continue\r\nContent-Length: 100\r\n\r\n", 401, "unauthorized"),
    ]:
        start = time.time()
        answer = exchange(gw, head, timeout=3)
        assert time.time() - start < 2, "the server waited for the body"
        assert_json_error(answer, status, code)
        assert answer[1]["connection"] == "close"

    # Authenticated and within the limit, the body is read (with 100 Continue when asked) and reaches the handler.
    with socket.create_connection(gw_addr(gw)) as c:
        c.settimeout(5)
        c.sendall(b"POST /api/calendar/meetings HTTP/1.1\r\nHost: x\r\n" + auth +
                  b"Expect: 100-continue\r\nContent-Length: 9\r\n\r\n")
        assert c.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        c.sendall(b"{not json")
        answer = c.recv(65536)
    err = assert_json_error(parse_answer(answer), 400, "invalid_request")
    assert "not valid JSON" in err["message"]


def test_framing_that_could_be_read_two_ways_is_refused(stack):
    """Request smuggling needs two readings of one message: a second Content-Length (even an equal one), one
    beside Transfer-Encoding, a folded or CR-split header get 400, and Transfer-Encoding alone 411, each in the
    API's JSON shape, and the connection is closed so nothing behind it is read as a request. So do the
    protocol errors libevent used to answer with its own HTML page."""
    s = stack()
    gw = Gateway(s)
    user = s.add_user()
    auth = b"Authorization: Bearer " + jwt(user).encode() + b"\r\n"
    post = b"POST /api/calendar/meetings HTTP/1.1\r\nHost: x\r\n" + auth
    smuggled = b"GET /api/integrations/google/status HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n"
    for data, status, code in [
        (post + b"Content-Length: 2\r\nContent-Length: 80\r\n\r\n{}" + smuggled, 400, "invalid_request"),
        (post + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}" + smuggled, 400, "invalid_request"),
        (post + b"Content-Length: 2, 2\r\n\r\n{}", 400, "invalid_request"),
        (post + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, 400,
         "invalid_request"),
        (post + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 411, "length_required"),
        (post + b"Content-Length: 2\r\nX-Folded: a\r\n b\r\n\r\n{}", 400, "invalid_request"),
        (post + b"Content-Length: 2\r\nX-Split: a\rContent-Length: 90\r\n\r\n{}", 400, "invalid_request"),
        (b"GET / HTTP/9.9\r\n\r\n", 505, "version_not_supported"),
        (b"this is not HTTP\r\n\r\n", 400, "invalid_request"),
        (b"BREW /pot HTTP/1.1\r\n\r\n", 501, "not_implemented"),
        (b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n", 431, "headers_too_large"),
        (b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", 431, "headers_too_large"),
        (post + b"Content-Length: -1\r\n\r\n", 400, "invalid_request"),
        (post + b"Content-Length: 2\r\nX-Bare: a\rb\r\n\r\n{}", 400, "invalid_request"),
        (b"GET /api/calendar/meet\0ings HTTP/1.1\r\nHost: x\r\n\r\n", 400, "invalid_request"),
        (b"\x01\x02garbage\r\n\r\n", 400, "invalid_request"),
    ]:
        answer = exchange(gw, data)
        assert_json_error(answer, status, code)
        assert answer[1].get("connection") == "close", data[:100]
    assert "request answered" in gw.svc.logs()
    assert '"route":"/api/integrations/google/status"' not in gw.svc.logs(), "a smuggled request was served"

    # A body of 2,000,000 bytes or more is refused in the same shape under the default limit, from its head.
    big = exchange(gw, post + b"Content-Length: 2000000\r\n\r\n" + b"x" * 65536)
    assert_json_error(big, 413, "payload_too_large")


def test_connections_beyond_the_cap_are_refused(stack):
    """With HTTP_MAX_CONNECTIONS open, one more is answered 503 at once and closed; when one closes, the
    next is served again."""
    s = stack()
    gw = Gateway(s, HTTP_MAX_CONNECTIONS="4")
    wait_for(lambda: gw.svc.metrics().get("http_connections") == 0, 10, what="the readiness probes' connections closed")
    held = [socket.create_connection(gw_addr(gw)) for _ in range(4)]
    try:
        wait_for(lambda: gw.svc.metrics().get("http_connections") == 4, 5, what="four connections open")
        answer = exchange(gw, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", timeout=3)
        assert_json_error(answer, 503, "unavailable")
        assert gw.svc.metrics()["http_connections_refused_total"] == 1
        held.pop().close()
        wait_for(lambda: gw.svc.metrics().get("http_connections") == 3, 5, what="a connection closed")
        assert requests.get(gw.url + "/healthz", timeout=5).status_code == 200
    finally:
        for c in held:
            c.close()
    assert "too many connections" in gw.svc.logs()


def test_unfinished_bodies_keep_memory_bounded(stack):
    """A hundred connections that each announce a megabyte and send 64 KiB of it, with or without a user,
    cost the gateway no more than a few MiB: nothing is buffered beyond a refused head."""
    s = stack()
    # Under AddressSanitizer freed memory waits in a quarantine that would count as held: none here.
    gw = Gateway(s, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:quarantine_size_mb=0")
    user = s.add_user()
    auth = b"Authorization: Bearer " + jwt(user).encode() + b"\r\n"
    pid = gw.svc.proc.pid
    for _ in range(3):
        requests.get(gw.url + "/healthz", timeout=5)
    before = rss_kib(pid)
    chunk = b"x" * 65536
    conns = []
    try:
        for i in range(100):
            c = socket.create_connection(gw_addr(gw))
            c.settimeout(2)
            c.sendall(b"POST /api/calendar/meetings HTTP/1.1\r\nHost: x\r\n" + (auth if i % 2 else b"") +
                      b"Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n")
            try:
                c.sendall(chunk)
            except OSError:
                pass
            conns.append(c)
        time.sleep(0.5)
        grown = rss_kib(pid) - before
    finally:
        for c in conns:
            c.close()
    assert grown < 3 * 1024, f"RSS grew by {grown} KiB with 100 unfinished bodies"
    assert requests.get(gw.url + "/healthz", timeout=5).status_code == 200
