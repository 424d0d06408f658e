"""End-to-end tests of gcalctl, the operator's tool (services/gcalctl), on the
run's real PostgreSQL and RabbitMQ, the Google stand-in and the real services:
publishing leads, listing and replaying dead letters after the data was fixed,
rotating the token key under running services, the user view, the health
probe and asking for a user's calendar to be synced again.
"""

import base64
import json
import os
import re
import subprocess
import uuid

import harness
from harness import seal, unseal, wait_for

GCALCTL = os.path.join(harness.BUILD, "services", "gcalctl", "gcalctl")
NEW_KEY = "2:" + base64.b64encode(b"n" * 32).decode()
RING_V2 = NEW_KEY + "," + harness.TOKEN_KEY


def gcalctl(s, *args, expect=0, **env):
    """Run gcalctl with the test's service environment, as the operator's broker user (gcal-ops, with only
    the permissions `gcalctl broker-users` gives it); returns the completed process."""
    env.setdefault("AMQP_URL", s.amqp_url_for("ops"))
    p = subprocess.run([GCALCTL, *args], env=s.env(**env), capture_output=True, text=True, timeout=60)
    assert p.returncode == expect, f"gcalctl {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p


def booked_user(s, email=None, timezone=None):
    user = s.add_user(email=email)
    gmail = f"g-{user[:8]}@example.com"
    tokens = s.connect_calendar(user, gmail, timezone=timezone)
    return user, gmail, tokens


def meetings(s, lead):
    return s.query("SELECT id, status FROM calendar_meetings WHERE lead_analytics_id = %s", lead)


def dead_list(s, queue):
    return json.loads(gcalctl(s, "dead", "list", queue, "--json").stdout)["queues"][0]


def test_publish_lead_books_through_the_scheduler(stack):
    s = stack()
    s.start_standin()
    user, _, _ = booked_user(s)
    lead = s.add_lead(user)
    s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")

    p = gcalctl(s, "publish-lead", "--user", user, "--lead", lead["lead"], "--message-id", "ops-publish-1")
    assert f"published lead {lead['lead']} of user {user} as message ops-publish-1" in p.stdout
    rows = wait_for(lambda: meetings(s, lead["lead"]), 20, what="meeting")
    assert rows[0][1] == "scheduled"
    meta = s.one("SELECT meeting_metadata FROM calendar_meetings WHERE lead_analytics_id = %s", lead["lead"])[0]
    assert meta["message_id"] == "ops-publish-1", "the scheduler saw our message id"

    # A fresh message id when none is given, and typos fail before anything is published.
    p = gcalctl(s, "publish-lead", "--user", user, "--lead", lead["lead"])
    assert re.search(r"as message gcalctl-[0-9a-f]{32}$", p.stdout.strip())
    p = gcalctl(s, "publish-lead", "--user", "nobody", "--lead", lead["lead"], expect=64)
    assert "must be UUIDs" in p.stderr
    gcalctl(s, "publish-lead", "--user", user, expect=64)


def test_publish_lead_fails_when_no_queue_takes_it(stack):
    s = stack()
    # No service ever ran in this vhost: nothing is bound to leads, so the broker returns the message.
    s._rabbit("PUT", f"/exchanges/{s.vhost}/leads", json={"type": "topic", "durable": True})
    p = gcalctl(s, "publish-lead", "--user", str(uuid.uuid4()), "--lead", str(uuid.uuid4()), expect=1)
    assert "no queue took the message" in p.stderr


def test_missing_configuration_exits_78(stack):
    s = stack()
    env = s.env()
    del env["AMQP_URL"]
    p = subprocess.run([GCALCTL, "dead", "list"], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 78
    assert '"variable":"AMQP_URL"' in p.stderr


def test_sample_lead_is_booked_tomorrow_at_three_in_the_users_zone(stack):
    s = stack()
    s.start_standin()
    user, gmail, _ = booked_user(s, timezone="America/New_York")
    s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")

    p = gcalctl(s, "sample-lead", "--user", user, "--email", "prospect@example.com")
    lead = re.search(r"inserted sample lead ([0-9a-f-]{36})", p.stdout).group(1)
    # The demo time is shown with the zone it is read in, and the offset that zone has then.
    assert re.search(r"demo at \d{4}-\d\d-\d\d 15:00 America/New_York \(\d{4}-\d\d-\d\dT15:00:00-0[45]:00\)",
                     p.stdout), p.stdout
    assert "published lead " + lead in p.stdout
    row = s.one("SELECT extracted_email, analysis_type, call_id IS NOT NULL FROM lead_analytics WHERE id = %s", lead)
    assert row == ("prospect@example.com", "individual", True)
    assert s.one("SELECT c.transcript_id IS NOT NULL FROM calls c JOIN lead_analytics l ON l.call_id = c.id"
                 " WHERE l.id = %s", lead) == (True,)
    wait_for(lambda: meetings(s, lead), 20, what="sample meeting")
    local = s.one("SELECT to_char(meeting_start_time AT TIME ZONE 'America/New_York', 'HH24:MI'), attendee_email,"
                  " meeting_start_time > now() FROM calendar_meetings WHERE lead_analytics_id = %s", lead)
    assert local == ("15:00", "prospect@example.com", True)

    p = gcalctl(s, "sample-lead", "--user", str(uuid.uuid4()), expect=1)
    assert "no such user" in p.stderr
    gcalctl(s, "sample-lead", "--user", user, "--at", "next tuesday", expect=64)
    for bad in ("not-an-email", "a@b", "two@at@example.com", "spa ce@example.com"):
        p = gcalctl(s, "sample-lead", "--user", user, "--email", bad, expect=64)
        assert "--email is not an email address" in p.stderr
    # A time with an offset is shown as given; a user without a calendar zone gets DEFAULT_TIMEZONE's.
    p = gcalctl(s, "sample-lead", "--user", user, "--at", "2099-03-01T10:00:00+01:00")
    assert "demo at 2099-03-01T10:00:00+01:00," in p.stdout
    p = gcalctl(s, "sample-lead", "--user", s.add_user(), "--at", "2099-03-01 10:00")
    assert "demo at 2099-03-01 10:00 Asia/Kolkata (2099-03-01T10:00:00+05:30)," in p.stdout


def test_every_subcommand_answers_help(stack):
    s = stack()
    for cmd in ("publish-lead", "sample-lead", "dead", "user", "rotate-key", "health", "resync"):
        for flag in ("--help", "-h"):
            p = gcalctl(s, cmd, flag)
            assert re.match(r"usage:\n  " + cmd + r"[ \n]", p.stdout), p.stdout
            assert "Configuration comes from the environment" in p.stdout and p.stderr == ""
    # Wherever it stands, and before anything is checked or done.
    p = gcalctl(s, "sample-lead", "--user", "not-a-uuid", "--help")
    assert "sample-lead --user ID" in p.stdout


def test_dead_letters_are_listed_kept_and_replayed_after_the_data_is_fixed(stack):
    s = stack()
    s.start_standin()
    # The owner's address is broken, so the mailer parks the "created" mail.
    user, gmail, _ = booked_user(s, email="not an address")
    lead = s.add_lead(user)
    s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    s.service("mailer-worker")

    # Two scheduler poisons: a message that is not a lead, and a lead whose Google calls failed on the
    # last retry tier (as if it had been through all seven tiers already).
    assert s.publish("leads", "lead.analyzed", "{not json", message_id="poison-malformed")
    s.standin.admin("faults", {"rules": [{"method": "POST", "path_prefix": "/calendar/v3/", "status": 503,
                                          "count": 1000}]})
    assert s.publish("leads", "lead.analyzed", {"lead_analytics_id": lead["lead"], "user_id": user},
                     message_id="poison-google", headers={"x-attempt": 7})
    wait_for(lambda: s.depth("scheduler.dead") == 2, 30, what="two scheduler dead letters")

    listed = dead_list(s, "scheduler")
    assert listed["queue"] == "scheduler.dead" and listed["depth"] == 2
    by_id = {m["message_id"]: m for m in listed["messages"]}
    assert by_id["poison-malformed"]["reason"] == "malformed"
    assert by_id["poison-malformed"]["detail"] == "the body is not a JSON object"
    assert by_id["poison-malformed"]["body_text"] == "{not json"
    google = by_id["poison-google"]
    assert google["reason"] == "retries_exhausted" and "gave up after 8 attempts" in google["detail"]
    assert google["routing_key"] == "lead.ready" and google["replays_to"] == "scheduler.leads"
    assert google["body"] == {"lead_analytics_id": lead["lead"], "user_id": user}
    assert google["age_seconds"] is None or google["age_seconds"] >= 0

    text = gcalctl(s, "dead", "list").stdout
    assert "scheduler.dead: 2 messages" in text and "mailer.dead: 0 messages" in text
    assert re.search(r"message_id\s+poison-google\n\s+routing_key\s+lead\.ready\n\s+age\s+\S+.*\n"
                     r"\s+reason\s+retries_exhausted\n\s+detail\s+gave up after 8 attempts", text)
    wait_for(lambda: s.depth("scheduler.dead") == 2, 10, what="the list to leave the queue as it was")

    # Fix: Google is back, but for a few more seconds of 503s (longer than the quick retries cover). The
    # replayed copy starts with a fresh retry count, so it goes through retry tier 1 instead of straight
    # back to the dead letters.
    s.standin.admin("faults", {"rules": [{"method": "POST", "path_prefix": "/calendar/v3/", "status": 503,
                                          "count": 3}]})
    p = gcalctl(s, "dead", "replay", "scheduler", "--id", "poison-google")
    assert "replayed poison-google to scheduler.leads" in p.stdout and "1 message replayed" in p.stdout
    rows = wait_for(lambda: meetings(s, lead["lead"]), 40, what="the replayed lead booked")
    assert rows[0][1] == "scheduled"
    assert len(s.standin.admin(f"events?email={gmail}")["events"]) == 1
    wait_for(lambda: s.depth("scheduler.dead") == 1, 10, what="only the malformed one left")
    assert [m["message_id"] for m in dead_list(s, "scheduler")["messages"]] == ["poison-malformed"]

    # The booking's mail found the broken owner address and was parked.
    job = wait_for(lambda: [m for m in dead_list(s, "mailer")["messages"]], 30, what="the mail dead letter")[0]
    assert job["reason"] == "invalid_recipient" and job["replays_to"] == "mailer.jobs"
    assert job["headers"]["x-trace-id"] == "poison-google", "the lead's message id follows the mail"
    mid = job["message_id"]
    assert mid == f"meeting:{rows[0][0]}:created:0"

    # Fix the data, replay, and the mail goes out, once.
    s.query("UPDATE users SET email = %s WHERE id = %s", f"fixed-{user[:8]}@example.com", user)
    p = gcalctl(s, "dead", "replay", "mailer.dead", "--all")
    assert f"replayed {mid} to mailer.jobs" in p.stdout
    wait_for(lambda: s.mails(f"fixed-{user[:8]}@example.com"), 30, what="the replayed mail")
    # The mailer records the send just after the server took the mail.
    wait_for(lambda: s.one("SELECT status FROM mail_deliveries WHERE message_id = %s", mid) == ("sent",), 10,
             what="the delivery recorded as sent")
    wait_for(lambda: s.depth("mailer.dead") == 0, 10, what="an empty mailer.dead")

    # A poison message replayed as it is comes back; an unknown id is an error and changes nothing.
    p = gcalctl(s, "dead", "replay", "scheduler", "--all")
    assert "1 message replayed from scheduler.dead" in p.stdout
    wait_for(lambda: [m["message_id"] for m in dead_list(s, "scheduler")["messages"]] == ["poison-malformed"], 20,
             what="the malformed message back in the dead letters")
    p = gcalctl(s, "dead", "replay", "scheduler", "--id", "no-such-message", expect=1)
    assert "no dead letter with this message id" in p.stderr
    gcalctl(s, "dead", "replay", "scheduler", expect=64)
    gcalctl(s, "dead", "replay", "scheduler", "--all", "--id", "x", expect=64)
    gcalctl(s, "dead", "list", "nowhere", expect=64)


def test_dead_list_of_a_queue_no_service_declared(stack):
    s = stack()
    p = gcalctl(s, "dead", "list", expect=1)
    assert "cannot read the queue" in p.stderr and "scheduler.dead" in p.stderr and "mailer.dead" in p.stderr


def test_rotate_key_reseals_everything_and_services_keep_working(stack):
    s = stack()
    s.start_standin()
    users = [booked_user(s) for _ in range(2)]
    verifier = "pkce-verifier-" + "x" * 40
    s.query("INSERT INTO oauth_states (state_hash, user_id, code_verifier, expires_at)"
            " VALUES (%s, %s, %s, now() + interval '10 minutes')", os.urandom(32), users[0][0],
            seal(verifier, users[0][0]))
    # A disconnected user has no tokens: nothing to do there.
    s.add_user()

    p = gcalctl(s, "rotate-key", TOKEN_ENCRYPTION_KEY=RING_V2)
    assert "sealing under key version 2" in p.stdout
    assert re.search(r"users\.google_access_token\s+re-sealed 2, changed meanwhile 0, cannot open 0; "
                     r"now 2 under v2, 0 under older keys", p.stdout)
    assert re.search(r"users\.google_refresh_token\s+re-sealed 2,", p.stdout)
    assert re.search(r"oauth_states\.code_verifier\s+re-sealed 1,", p.stdout)
    for user, _, tokens in users:
        access, refresh = s.one("SELECT google_access_token, google_refresh_token FROM users WHERE id = %s", user)
        assert access.startswith("v2:") and refresh.startswith("v2:")
        assert unseal(access, user, RING_V2) == tokens["access_token"]
        assert unseal(refresh, user, RING_V2) == tokens["refresh_token"]
    (sealed,) = s.one("SELECT code_verifier FROM oauth_states")
    assert sealed.startswith("v2:") and unseal(sealed, users[0][0], RING_V2) == verifier

    # Idempotent: a second run has nothing to do.
    p = gcalctl(s, "rotate-key", TOKEN_ENCRYPTION_KEY=RING_V2)
    assert "re-sealed 1" not in p.stdout and "re-sealed 2" not in p.stdout

    # A scheduler on the new ring books with the re-sealed access token, and refreshes with the
    # re-sealed refresh token once the access token has expired.
    s.service("scheduler-worker", SCHEDULE_DELAY_MS="0", TOKEN_ENCRYPTION_KEY=RING_V2)
    first = s.add_lead(users[0][0])
    s.publish_lead(first["lead"], users[0][0])
    wait_for(lambda: meetings(s, first["lead"]), 20, what="booking with a re-sealed token")
    s.query("UPDATE users SET google_token_expiry = now() - interval '1 hour' WHERE id = %s", users[1][0])
    s.standin.admin("expire-tokens", {"email": users[1][1]})
    second = s.add_lead(users[1][0])
    s.publish_lead(second["lead"], users[1][0])
    wait_for(lambda: meetings(s, second["lead"]), 20, what="booking after a refresh with a re-sealed token")
    (access,) = s.one("SELECT google_access_token FROM users WHERE id = %s", users[1][0])
    assert access.startswith("v2:") and unseal(access, users[1][0], RING_V2) != users[1][2]["access_token"]

    # A value no key of the ring opens is reported and left alone; the run fails so nobody drops a key.
    stray = s.add_user()
    s.query("UPDATE users SET google_refresh_token = %s WHERE id = %s",
            seal("orphan", stray, "9:" + base64.b64encode(b"z" * 32).decode()), stray)
    p = gcalctl(s, "rotate-key", TOKEN_ENCRYPTION_KEY=RING_V2, expect=1)
    assert re.search(r"users\.google_refresh_token\s+re-sealed 0, changed meanwhile 0, cannot open 1; "
                     r"now 2 under v2, 1 under older keys", p.stdout)
    assert "still sealed under older keys" in p.stderr


def test_user_view_shows_state_but_never_tokens(stack):
    s = stack()
    s.start_standin()
    user, gmail, tokens = booked_user(s, timezone="Europe/Zurich")
    booked = s.add_lead(user)
    skipped = s.add_lead(user, demo="")
    s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    s.publish_lead(booked["lead"], user)
    s.publish_lead(skipped["lead"], user)
    wait_for(lambda: len(s.query("SELECT 1 FROM calendar_booking_outcomes WHERE user_id = %s", user)) == 2, 20,
             what="two outcomes")
    sealed = s.one("SELECT google_access_token, google_refresh_token FROM users WHERE id = %s", user)

    text = gcalctl(s, "user", user).stdout
    for secret in (tokens["access_token"], tokens["refresh_token"], *sealed):
        assert secret not in text
    assert re.search(r"calendar\s+connected \(Google account " + re.escape(gmail), text)
    assert re.search(r"time zone\s+Europe/Zurich", text)
    assert re.search(r"tokens\s+access sealed with key v1 \(expires in \d+[hm] \d+[ms], ", text)
    assert "refresh sealed with key v1" in text
    assert re.search(r"meetings\s+1 scheduled", text)
    assert re.search(r"outcomes\s+.*1 scheduled", text) and "1 skipped (no_datetime)" in text
    assert booked["lead"] in text and skipped["lead"] in text

    doc = json.loads(gcalctl(s, "user", user, "--json").stdout)
    assert doc["user_id"] == user and doc["calendar"]["connected"] is True
    assert doc["calendar"]["google_email"] == gmail and doc["calendar"]["access_token_key_version"] == 1
    assert 0 < doc["calendar"]["token_expires_in_seconds"] <= 3600
    assert doc["meetings"]["counts"] == {"scheduled": 1}
    assert doc["meetings"]["recent"][0]["lead_analytics_id"] == booked["lead"]
    assert {(o["outcome"], o["reason"]) for o in doc["outcomes"]["counts"]} == {("scheduled", None),
                                                                               ("skipped", "no_datetime")}
    assert doc["last_disconnect"] is None
    for secret in (tokens["access_token"], tokens["refresh_token"], *sealed):
        assert secret not in json.dumps(doc)

    # After the user revoked access, the view says so and why.
    s.query("UPDATE users SET google_calendar_connected = FALSE, google_access_token = NULL,"
            " google_refresh_token = NULL, google_disconnected_at = now(), google_disconnect_reason = 'grant_revoked'"
            " WHERE id = %s", user)
    text = gcalctl(s, "user", user).stdout
    assert re.search(r"calendar\s+not connected", text) and re.search(r"disconnected\s+grant_revoked at ", text)
    assert "no access token" in text and "no refresh token" in text

    p = gcalctl(s, "user", str(uuid.uuid4()), expect=1)
    assert "no such user" in p.stderr
    gcalctl(s, "user", "not-a-uuid", expect=64)


def test_health_probe(stack):
    s = stack()
    w = s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    gcalctl(s, "health", w.health_url + "/healthz")
    gcalctl(s, "health", w.health_url + "/readyz", "--timeout", "3")
    p = gcalctl(s, "health", w.health_url + "/nothing-here", expect=1)
    assert '"status":404' in p.stderr
    p = gcalctl(s, "health", f"http://127.0.0.1:{harness.free_port()}/healthz", expect=1)
    assert "health probe failed" in p.stderr
    gcalctl(s, "health", expect=64)
    gcalctl(s, "health", w.health_url, "--timeout", "0", expect=64)


def test_resync_records_the_request_and_asks_the_scheduler(stack):
    s = stack()
    s.start_standin()
    user, _, _ = booked_user(s)
    s.query("UPDATE users SET google_sync_token = 'sync-token-1' WHERE id = %s", user)

    def row():
        return s.one("SELECT google_sync_requested_at IS NOT NULL, google_sync_token FROM users WHERE id = %s", user)

    # No scheduler ever ran here: the calendar exchange does not exist. The request is recorded all the same.
    p = gcalctl(s, "resync", user, expect=1)
    assert "not published" in p.stderr and "SYNC_POLL_SECONDS" in p.stderr
    assert row() == (True, "sync-token-1")

    s.service("scheduler-worker").stop()  # declares scheduler.sync; nothing consumes it now
    s.query("UPDATE users SET google_sync_requested_at = NULL WHERE id = %s", user)
    p = gcalctl(s, "resync", user.upper())
    assert re.search(r"^incremental sync of user " + user + r" requested as message gcalctl-resync-[0-9a-f]{32}$",
                     p.stdout.strip()), p.stdout
    assert row() == (True, "sync-token-1"), "an incremental sync keeps the token"
    p = gcalctl(s, "resync", "--full", user)
    assert p.stdout.startswith("full sync of user " + user)
    assert row() == (True, None), "the next sync is a full one"

    msgs = s.peek("scheduler.sync")
    assert [json.loads(m["payload"]) for m in msgs] == [{"user_id": user, "full": False},
                                                        {"user_id": user, "full": True}]
    for m in msgs:
        assert m["routing_key"] == "calendar.changed" and m["exchange"] == "calendar"
        props = m["properties"]
        assert props["user_id"] == harness.broker_user("ops") and props["type"] == "calendar.changed"
        assert props["delivery_mode"] == 2 and props["message_id"].startswith("gcalctl-resync-")

    assert "no such user" in gcalctl(s, "resync", str(uuid.uuid4()), expect=1).stderr
    assert "not connected" in gcalctl(s, "resync", s.add_user(), expect=1).stderr
    gcalctl(s, "resync", "not-a-uuid", expect=64)
    gcalctl(s, "resync", expect=64)
    gcalctl(s, "resync", user, user, expect=64)
    assert len(s.peek("scheduler.sync")) == 2, "refused commands publish nothing"
