"""End-to-end tests of the scheduler-worker (issue 3) on real PostgreSQL,
RabbitMQ and the Google stand-in: leads become exactly one event and one row,
every skip is recorded, failures retry or dead-letter, commands change Google
and the database and mail the owner.
"""

import contextlib
import json
import time
import uuid

from harness import broker_user, seal, wait_for

LEADS = "scheduler.leads"
MAIL = "mailer.jobs"


def google_events(s, email):
    return s.standin.admin(f"events?email={email}")["events"]


def meetings(s, lead):
    return s.query("SELECT id, status, google_event_id, attendee_email, meeting_title, timezone,"
                   " meeting_start_time, meeting_end_time FROM calendar_meetings WHERE lead_analytics_id = %s"
                   " ORDER BY created_at", lead)


def outcome(s, lead):
    return s.one("SELECT outcome, reason, detail FROM calendar_booking_outcomes WHERE lead_analytics_id = %s", lead)


def mail_jobs(s):
    return [json.loads(m["payload"]) | {"_id": m["properties"].get("message_id"), "_key": m["routing_key"]}
            for m in s.peek(MAIL, 500)]


@contextlib.contextmanager
def meetings_held(s):
    """calendar_meetings locked in SHARE mode until the block ends: every commit of a meeting waits."""
    locker = s.db()
    locker.autocommit = False
    with locker.cursor() as cur:
        cur.execute("LOCK TABLE calendar_meetings IN SHARE MODE")
        try:
            yield
        finally:
            locker.rollback()
            locker.autocommit = True


def booked_user(s, timezone=None):
    user = s.add_user()
    email = f"g-{user[:8]}@example.com"
    s.connect_calendar(user, email, timezone=timezone)
    return user, email


def test_lead_becomes_one_event_after_the_delay(stack):
    s = stack()
    s.start_standin()
    user, gmail = booked_user(s)
    lead = s.add_lead(user, demo="2099-09-18T17:00:00+05:30", email="extracted@example.com",
                      contact_email="Contact@Example.com", name="John Smith", company="TechCorp")
    s.service("scheduler-worker", SCHEDULE_DELAY_MS="2000")
    start = time.time()
    assert s.publish_lead(lead["lead"], user)
    time.sleep(1.2)
    assert meetings(s, lead["lead"]) == [], "booked before the delay"
    rows = wait_for(lambda: meetings(s, lead["lead"]), 20, what="meeting row")
    assert time.time() - start >= 2.0
    assert len(rows) == 1
    mid, status, event_id, attendee, title, tz, mstart, mend = rows[0]
    assert status == "scheduled"
    assert title == "John Smith + TechCorp + Demo"
    assert attendee == "contact@example.com", "the contact's email wins over the extracted one"
    assert tz == "Asia/Kolkata"
    assert (mend - mstart).total_seconds() == 30 * 60
    assert event_id == "lead" + lead["lead"].replace("-", "") + "g0"

    events = google_events(s, gmail)
    assert len(events) == 1
    ev = events[0]
    assert ev["id"] == event_id and ev["status"] == "confirmed"
    assert ev["summary"] == "John Smith + TechCorp + Demo"
    assert ev["start"] == {"dateTime": "2099-09-18T17:00:00+05:30", "timeZone": "Asia/Kolkata"}
    assert ev["end"] == {"dateTime": "2099-09-18T17:30:00+05:30", "timeZone": "Asia/Kolkata"}
    assert [a["email"] for a in ev["attendees"]] == ["contact@example.com"]
    assert "John Smith" in ev["description"] and "Scheduled via AI Calling Agent Platform" in ev["description"]
    assert ev.get("hangoutLink", "").startswith("https://meet.google.com/")
    assert ev["_standin"]["send_updates"][0] == "all"

    assert outcome(s, lead["lead"])[:2] == ("scheduled", None)
    jobs = wait_for(lambda: mail_jobs(s), 10, what="mail job")
    assert [(j["kind"], j["meeting_id"], j["_id"]) for j in jobs] == [("created", str(mid), f"meeting:{mid}:created:0")]


def test_redelivery_and_duplicates_give_one_event(stack):
    s = stack()
    s.start_standin()
    user, gmail = booked_user(s)
    lead = s.add_lead(user)
    s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    for _ in range(3):
        s.publish_lead(lead["lead"], user)
    wait_for(lambda: meetings(s, lead["lead"]), 20, what="meeting row")
    wait_for(lambda: s.depth(LEADS) == 0 and s.queue(LEADS).get("messages_unacknowledged", 1) == 0, 20,
             what="leads drained")
    time.sleep(0.5)
    assert len(meetings(s, lead["lead"])) == 1
    assert len(google_events(s, gmail)) == 1
    assert len({j["_id"] for j in mail_jobs(s)}) == 1, "duplicates publish the same mail job id"


def test_delivery_that_loses_the_commit_race_adopts_the_winner(stack):
    """Two deliveries of one lead reach the commit together: one row, one event, and the loser (its plain
    insert finds the winner's row) still finishes as a booking and publishes the same mail job."""
    s = stack()
    s.start_standin()
    user, gmail = booked_user(s)
    lead = s.add_lead(user)
    worker = s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    with meetings_held(s):
        s.publish_lead(lead["lead"], user)
        s.publish_lead(lead["lead"], user)
        wait_for(lambda: s.one("SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted"
                               " AND relation = 'calendar_meetings'::regclass")[0] == 2, 20,
                 what="both commits waiting")
    wait_for(lambda: s.depth(LEADS) == 0 and s.queue(LEADS).get("messages_unacknowledged", 1) == 0, 20,
             what="leads drained")
    wait_for(lambda: len(mail_jobs(s)) == 2, 20, what="a mail job from each delivery")
    assert len(meetings(s, lead["lead"])) == 1
    events = google_events(s, gmail)
    assert len(events) == 1 and events[0]["status"] == "confirmed"
    assert meetings(s, lead["lead"])[0][2] == events[0]["id"]
    assert len({j["_id"] for j in mail_jobs(s)}) == 1, "the same job twice, which the mailer sends once"
    assert outcome(s, lead["lead"])[0] == "scheduled"
    assert worker.metrics().get('scheduler_meetings_total{action="created"}') == 1, "the adopted row counted twice"


def test_crash_between_google_and_commit(stack):
    """SIGKILL after Google created the event but before the row committed: the restart adopts it."""
    s = stack()
    s.start_standin()
    user, gmail = booked_user(s)
    lead = s.add_lead(user)
    worker = s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    with meetings_held(s):
        s.publish_lead(lead["lead"], user)
        wait_for(lambda: len(s.standin.admin(f"events?email={gmail}")["events"]) == 1, 20, what="Google event")
        time.sleep(0.3)
        worker.kill()
    assert meetings(s, lead["lead"]) == []
    s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    wait_for(lambda: meetings(s, lead["lead"]), 20, what="meeting row after restart")
    time.sleep(0.5)
    assert len(meetings(s, lead["lead"])) == 1
    events = google_events(s, gmail)
    assert len(events) == 1 and events[0]["status"] == "confirmed"
    assert meetings(s, lead["lead"])[0][2] == events[0]["id"]


def test_google_blip_is_retried_in_process(stack):
    s = stack()
    s.start_standin()
    user, gmail = booked_user(s)
    lead = s.add_lead(user)
    s.standin.admin("faults", {"rules": [{"method": "POST", "path_prefix": "/calendar/v3/calendars/", "status": 429,
                                          "count": 1}]})
    w = s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    t0 = time.time()
    s.publish_lead(lead["lead"], user)
    wait_for(lambda: meetings(s, lead["lead"]), 30, what="meeting after a quick retry")
    assert time.time() - t0 >= 1, "the retry waited Google's first backoff step"
    assert len(google_events(s, gmail)) == 1
    inserts = [r["status"] for r in s.standin.admin("requests")["requests"]
               if r["method"] == "POST" and r["path"].startswith("/calendar/v3/calendars/")]
    assert inserts == [429, 200]
    m = w.metrics()
    assert m.get('google_quick_retries_total{op="events.insert"}') == 1
    assert not any(k.startswith("retries_total") for k in m), "no retry tier for a blip"


def test_google_down_for_seconds_goes_through_a_tier(stack):
    s = stack()
    s.start_standin()
    user, gmail = booked_user(s)
    lead = s.add_lead(user)
    # The first attempt and both of its quick retries fail; the lead waits on the first tier.
    s.standin.admin("faults", {"rules": [{"method": "POST", "path_prefix": "/calendar/v3/calendars/", "status": 500,
                                          "count": 3}]})
    w = s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    t0 = time.time()
    s.publish_lead(lead["lead"], user)
    wait_for(lambda: meetings(s, lead["lead"]), 40, what="meeting after the retry tier")
    assert time.time() - t0 >= 5 + 1 + 2, "two quick retries, then the 5 s tier"
    assert len(google_events(s, gmail)) == 1
    m = w.metrics()
    assert m.get('retries_total{queue="scheduler.retry.1"}') == 1
    assert m.get('google_quick_retries_total{op="events.insert"}') == 2


def test_permanent_google_refusal_is_recorded(stack):
    s = stack()
    s.start_standin()
    user, gmail = booked_user(s)
    lead = s.add_lead(user)
    s.standin.admin("faults", {"rules": [{"method": "POST", "path_prefix": "/calendar/v3/calendars/", "status": 403,
                                          "reason": "forbidden", "count": 1}]})
    s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    s.publish_lead(lead["lead"], user)
    o = wait_for(lambda: outcome(s, lead["lead"]), 20, what="outcome")
    assert o[0] == "failed" and o[1] == "google_rejected" and "forbidden" in o[2]
    assert meetings(s, lead["lead"]) == []


def test_invalid_grant_disconnects_and_mails(stack):
    s = stack()
    s.start_standin()
    user, gmail = booked_user(s)
    s.query("UPDATE users SET google_token_expiry = now() - interval '1 minute' WHERE id = %s", user)
    s.standin.admin("revoke-grants", {"email": gmail})
    lead = s.add_lead(user)
    s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    s.publish_lead(lead["lead"], user)
    o = wait_for(lambda: outcome(s, lead["lead"]), 20, what="outcome")
    assert o[:2] == ("failed", "grant_revoked")
    row = s.one("SELECT google_calendar_connected, google_access_token, google_refresh_token,"
                " google_disconnect_reason FROM users WHERE id = %s", user)
    assert row == (False, None, None, "grant_revoked")
    jobs = wait_for(lambda: [j for j in mail_jobs(s) if j["kind"] == "disconnected"], 20, what="disconnect mail")
    assert len(jobs) == 1 and jobs[0]["user_id"] == user and jobs[0]["_key"] == "mail.calendar.disconnected"
    wait_for(lambda: s.one("SELECT google_disconnect_notified_at IS NOT NULL FROM users WHERE id = %s", user)[0],
             10, what="disconnect marked notified")
    # A second lead of the disconnected user is skipped without calling Google again.
    lead2 = s.add_lead(user)
    s.publish_lead(lead2["lead"], user)
    assert wait_for(lambda: outcome(s, lead2["lead"]), 20)[:2] == ("skipped", "not_connected")
    time.sleep(0.5)
    assert len([j for j in mail_jobs(s) if j["kind"] == "disconnected"]) == 1, "one mail per revocation"


def test_expiring_token_is_refreshed_once(stack):
    s = stack()
    s.start_standin()
    user, gmail = booked_user(s)
    s.query("UPDATE users SET google_token_expiry = now() + interval '2 minutes' WHERE id = %s", user)
    leads = [s.add_lead(user) for _ in range(5)]
    s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    for lead in leads:
        s.publish_lead(lead["lead"], user)
    for lead in leads:
        wait_for(lambda: meetings(s, lead["lead"]), 20, what="meeting")
    stats = s.standin.admin("stats")
    assert stats["token_refreshes"].get(gmail) == 1, stats
    assert s.one("SELECT google_token_expiry > now() + interval '50 minutes' FROM users WHERE id = %s", user)[0]


def test_stop_while_a_token_refresh_hangs_exits_cleanly_and_keeps_the_lead(stack):
    """The drain times out with a refresh in flight: ending the HTTP client hands the aborted refresh to the
    token cache, which must still be there (under build-asan a use after free fails the exit status)."""
    s = stack()
    s.start_standin()
    user, gmail = booked_user(s)
    s.query("UPDATE users SET google_token_expiry = now() + interval '1 minute' WHERE id = %s", user)
    lead = s.add_lead(user)
    s.standin.admin("faults", {"rules": [{"method": "POST", "path_prefix": "/token", "latency_ms": 60000}]})
    w = s.service("scheduler-worker", SCHEDULE_DELAY_MS="0", DRAIN_TIMEOUT_MS="300")
    s.publish_lead(lead["lead"], user)
    wait_for(lambda: w.metrics().get("scheduler_leads_consumed_total", 0) >= 1, 20, what="lead consumed")
    time.sleep(1)   # loaded, and waiting on the token endpoint
    assert s.standin.admin("stats")["token_refreshes"].get(gmail) is None, "the refresh is still in flight"
    start = time.time()
    assert w.stop() == 0, w.logs()[-3000:]
    assert time.time() - start < 10, "the drain gave up after DRAIN_TIMEOUT_MS"
    assert "AddressSanitizer" not in w.logs()
    assert any(line.get("msg") == "stopping with work in flight; the broker will redeliver it"
               for line in w.log_lines())

    # Not acked, so not lost: the next worker books it (the delay rule was used up by the first refresh).
    wait_for(lambda: s.depth(LEADS) == 1, 20, what="the lead back in its queue")
    s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    wait_for(lambda: meetings(s, lead["lead"]), 30, what="meeting booked by the next worker")
    assert len(google_events(s, gmail)) == 1


def test_every_skip_reason_is_recorded(stack):
    s = stack()
    s.start_standin()
    user, gmail = booked_user(s)
    other = s.add_user()
    cases = {
        "no_datetime": s.add_lead(user, demo=None),
        "bad_datetime": s.add_lead(user, demo="next tuesday at 5"),
        "past_datetime": s.add_lead(user, demo="2001-01-01T10:00:00Z"),
        "no_email": s.add_lead(user, email=None),
        "not_individual": s.add_lead(user, analysis_type="group"),
        "not_connected": s.add_lead(other),
    }
    owners = {k: (other if k == "not_connected" else user) for k in cases}
    s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    for reason, lead in cases.items():
        s.publish_lead(lead["lead"], owners[reason])
    unknown = str(uuid.uuid4())
    s.publish_lead(unknown, user)
    for reason, lead in cases.items():
        o = wait_for(lambda: outcome(s, lead["lead"]), 20, what=reason)
        assert o[:2] == ("skipped", reason), (reason, o)
    assert wait_for(lambda: outcome(s, unknown), 30, what="unknown lead")[:2] == ("skipped", "unknown_lead")
    assert s.query("SELECT count(*) FROM calendar_meetings")[0][0] == 0
    assert google_events(s, gmail) == []


def test_malformed_message_is_dead_lettered_and_worker_keeps_running(stack):
    s = stack()
    s.start_standin()
    user, gmail = booked_user(s)
    w = s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    s.publish("leads", "lead.analyzed", "this is not json", message_id="poison-1")
    s.publish("leads", "lead.analyzed", {"lead_analytics_id": "nope"}, message_id="poison-2")
    dead = wait_for(lambda: s.peek("scheduler.dead") if s.depth("scheduler.dead") == 2 else None, 20,
                    what="dead letters")
    reasons = {m["properties"]["message_id"]: m["properties"]["headers"]["x-dead-reason"] for m in dead}
    assert reasons == {"poison-1": "malformed", "poison-2": "malformed"}
    assert all(m["properties"]["headers"].get("x-dead-detail") for m in dead)
    lead = s.add_lead(user)
    s.publish_lead(lead["lead"], user)
    wait_for(lambda: meetings(s, lead["lead"]), 20, what="a good lead after poison")
    assert w.proc.poll() is None


def command(s, body, reply_queue):
    """A command as the gateway publishes it (user-id = the gateway's broker user), and the scheduler's reply."""
    cid = str(uuid.uuid4())
    body = dict(body, command_id=cid)
    s.publish("calendar.commands", "meeting." + body["command"], body, message_id=cid, correlation_id=cid,
              reply_to=reply_queue, type="meeting.command", user_id=broker_user("gateway"))
    msgs = wait_for(lambda: [m for m in s.peek(reply_queue) if m["properties"].get("correlation_id") == cid], 20,
                    what=f"reply to {body['command']}")
    return json.loads(msgs[0]["payload"])


def test_reschedule_and_cancel(stack):
    s = stack()
    s.start_standin()
    user, gmail = booked_user(s)
    lead = s.add_lead(user, demo="2099-01-10T10:00:00+05:30")
    s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    s._rabbit("PUT", f"/queues/{s.vhost}/test.replies", json={"durable": False, "auto_delete": False})
    s.publish_lead(lead["lead"], user)
    first = wait_for(lambda: meetings(s, lead["lead"]), 20)[0]

    r = command(s, {"command": "reschedule", "user_id": user, "meeting_id": str(first[0]),
                    "new_date_time": "2099-01-11T15:30:00+05:30"}, "test.replies")
    assert r["ok"], r
    assert r["previous"]["id"] == str(first[0]) and r["previous"]["status"] == "rescheduled"
    new = r["meeting"]
    assert new["status"] == "scheduled" and new["rescheduled_from_meeting_id"] == str(first[0])
    assert new["meeting_start_time"] == "2099-01-11T10:00:00Z"
    ev = google_events(s, gmail)
    assert len(ev) == 1 and ev[0]["start"]["dateTime"] == "2099-01-11T15:30:00+05:30"
    assert ev[0]["_standin"]["send_updates"][-1] == "all"

    again = command(s, {"command": "reschedule", "user_id": user, "meeting_id": str(first[0]),
                        "new_date_time": "2099-01-12T15:30:00+05:30"}, "test.replies")
    assert again == {"ok": False, "command_id": again["command_id"],
                     "error": {"code": "conflict", "message": again["error"]["message"]}}

    other = s.add_user()
    r = command(s, {"command": "cancel", "user_id": other, "meeting_id": new["id"], "reason": "x"}, "test.replies")
    assert r["error"]["code"] == "not_found", "another user's meeting is invisible"

    r = command(s, {"command": "cancel", "user_id": user, "meeting_id": new["id"], "reason": "Lead asked to cancel"},
                "test.replies")
    assert r["ok"] and r["meeting"]["status"] == "cancelled"
    assert r["meeting"]["cancellation_reason"] == "Lead asked to cancel"
    assert google_events(s, gmail)[0]["status"] == "cancelled"

    kinds = sorted(j["kind"] for j in mail_jobs(s))
    assert kinds == ["cancelled", "created", "rescheduled"]
    assert s.query("SELECT status FROM calendar_meetings WHERE lead_analytics_id = %s ORDER BY created_at",
                   lead["lead"]) == [("rescheduled",), ("cancelled",)]


def test_cancel_of_event_deleted_at_google_succeeds(stack):
    s = stack()
    s.start_standin()
    user, gmail = booked_user(s)
    lead = s.add_lead(user)
    s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    s._rabbit("PUT", f"/queues/{s.vhost}/test.replies", json={"durable": False, "auto_delete": False})
    s.publish_lead(lead["lead"], user)
    m = wait_for(lambda: meetings(s, lead["lead"]), 20)[0]
    tokens = s.standin.connect(gmail)
    status, _, _ = s.standin.request("DELETE", f"/calendar/v3/calendars/primary/events/{m[2]}",
                                     headers={"Authorization": "Bearer " + tokens["access_token"]})
    assert status == 204
    r = command(s, {"command": "cancel", "user_id": user, "meeting_id": str(m[0]), "reason": "gone"}, "test.replies")
    assert r["ok"] and r["meeting"]["status"] == "cancelled"


def test_manual_create_and_rebook_after_cancel(stack):
    s = stack()
    s.start_standin()
    user, gmail = booked_user(s)
    lead = s.add_lead(user, demo=None)
    s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    s._rabbit("PUT", f"/queues/{s.vhost}/test.replies", json={"durable": False, "auto_delete": False})
    r = command(s, {"command": "create", "user_id": user, "lead_analytics_id": lead["lead"],
                    "date_time": "2099-03-01T09:00:00", "attendee_email": "manual@example.com"}, "test.replies")
    assert r["ok"], r
    assert r["meeting"]["attendee_email"] == "manual@example.com"
    assert r["meeting"]["meeting_start_time"] == "2099-03-01T03:30:00Z", "wall time in the calendar's zone"
    dup = command(s, {"command": "create", "user_id": user, "lead_analytics_id": lead["lead"],
                      "date_time": "2099-03-02T09:00:00"}, "test.replies")
    assert dup["error"]["code"] == "conflict"
    c = command(s, {"command": "cancel", "user_id": user, "meeting_id": r["meeting"]["id"], "reason": "r"},
                "test.replies")
    assert c["ok"]
    again = command(s, {"command": "create", "user_id": user, "lead_analytics_id": lead["lead"],
                        "date_time": "2099-03-05T09:00:00"}, "test.replies")
    assert again["ok"], again
    assert again["meeting"]["google_event_id"].endswith("g1"), "a new booking generation, a new Google id"
    assert len(google_events(s, gmail)) == 2
    bad = command(s, {"command": "create", "user_id": user, "lead_analytics_id": lead["lead"],
                      "date_time": "soon"}, "test.replies")
    assert bad["error"]["code"] in ("invalid", "conflict")


def test_reminders_once_with_two_workers_and_completion(stack):
    s = stack()
    s.start_standin()
    user, gmail = booked_user(s)
    ids = []
    for i in range(20):
        lead = s.add_lead(user)
        row = s.one("INSERT INTO calendar_meetings (user_id, lead_analytics_id, google_event_id, google_calendar_id,"
                    " meeting_title, attendee_email, meeting_start_time, meeting_end_time, created_at)"
                    " VALUES (%s, %s, %s, 'primary', 'T', 'a@example.com', now() + make_interval(mins => %s),"
                    " now() + make_interval(mins => %s), now() - interval '1 day') RETURNING id",
                    user, lead["lead"], f"ev{i:04d}x", 20 + i, 50 + i)
        ids.append(str(row[0]))
    late = s.add_lead(user)
    s.query("INSERT INTO calendar_meetings (user_id, lead_analytics_id, google_event_id, google_calendar_id,"
            " meeting_title, attendee_email, meeting_start_time, meeting_end_time, created_at) VALUES"
            " (%s, %s, 'evlatebooked', 'primary', 'T', 'a@example.com', now() + interval '10 minutes',"
            " now() + interval '40 minutes', now())", user, late["lead"])
    done = s.add_lead(user)
    s.query("INSERT INTO calendar_meetings (user_id, lead_analytics_id, google_event_id, google_calendar_id,"
            " meeting_title, attendee_email, meeting_start_time, meeting_end_time) VALUES"
            " (%s, %s, 'evpast0001', 'primary', 'T', 'a@example.com', now() - interval '2 hours',"
            " now() - interval '90 minutes')", user, done["lead"])
    s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    wait_for(lambda: s.one("SELECT count(*) FROM calendar_meetings WHERE reminder_queued_at IS NOT NULL")[0] == 20,
             30, what="every reminder queued")
    time.sleep(1.5)
    reminders = [j for j in mail_jobs(s) if j["kind"] == "reminder"]
    assert sorted(j["meeting_id"] for j in reminders) == sorted(ids), "one reminder per meeting, none twice"
    assert all(j["_id"] == f"meeting:{j['meeting_id']}:reminder:0" for j in reminders)
    assert s.one("SELECT reminder_queued_at FROM calendar_meetings WHERE google_event_id = 'evlatebooked'")[0] is None, \
        "a meeting booked inside the window gets no reminder"
    assert s.one("SELECT status FROM calendar_meetings WHERE google_event_id = 'evpast0001'")[0] == "completed"


# Conflicts: the rep's busy time (docs/booking.md, "Conflicts")


def busy_event(s, email, start, end, **extra):
    """The rep adds an event of their own in Google's UI."""
    ev = dict({"summary": "Dentist", "start": {"dateTime": start}, "end": {"dateTime": end}}, **extra)
    return s.standin.admin("events", {"email": email, "event": ev})


def test_conflict_skips_the_lead_and_mails_the_owner(stack):
    s = stack()
    s.start_standin()
    user, gmail = booked_user(s, timezone="Asia/Kolkata")
    busy_event(s, gmail, "2099-03-03T16:45:00+05:30", "2099-03-03T17:15:00+05:30")
    busy_event(s, gmail, "2099-03-03T17:20:00+05:30", "2099-03-03T18:00:00+05:30")
    # Neither of these is busy time: a transparent event and a cancelled one.
    busy_event(s, gmail, "2099-03-03T17:00:00+05:30", "2099-03-03T17:30:00+05:30", transparency="transparent")
    gone = busy_event(s, gmail, "2099-03-03T17:00:00+05:30", "2099-03-03T17:30:00+05:30")
    s.standin.admin("events/delete", {"email": gmail, "id": gone["id"]})
    lead = s.add_lead(user, demo="2099-03-03T17:00:00+05:30")
    w = s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    s.publish_lead(lead["lead"], user)
    o = wait_for(lambda: outcome(s, lead["lead"]), 20, what="outcome")
    assert o[:2] == ("skipped", "conflict"), o
    assert "2099-03-03T17:00:00+05:30 to 2099-03-03T17:15:00+05:30" in o[2], o
    assert "2099-03-03T17:20:00+05:30 to 2099-03-03T17:30:00+05:30" in o[2], o
    row = s.one("SELECT requested_start, requested_end, busy FROM calendar_booking_outcomes"
                " WHERE lead_analytics_id = %s", lead["lead"])
    assert row[0].isoformat() == "2099-03-03T11:30:00+00:00" and row[1].isoformat() == "2099-03-03T12:00:00+00:00"
    assert row[2] == [{"start": "2099-03-03T17:00:00+05:30", "end": "2099-03-03T17:15:00+05:30"},
                      {"start": "2099-03-03T17:20:00+05:30", "end": "2099-03-03T17:30:00+05:30"}]
    assert meetings(s, lead["lead"]) == []
    assert len(google_events(s, gmail)) == 4, "nothing was added to the rep's calendar"
    jobs = wait_for(lambda: [j for j in mail_jobs(s) if j["kind"] == "conflict"], 20, what="conflict mail job")
    assert len(jobs) == 1 and jobs[0]["lead_analytics_id"] == lead["lead"] and jobs[0]["user_id"] == user
    assert jobs[0]["_key"] == "mail.lead.conflict" and jobs[0]["_id"] == f"lead:{lead['lead']}:conflict"
    m = w.metrics()
    assert m.get('scheduler_conflict_checks_total{purpose="booking",result="busy"}') == 1
    assert m.get('scheduler_leads_not_scheduled_total{reason="conflict"}') == 1
    # Its redelivery records the same and the mailer drops the second job (same message_id).
    s.publish_lead(lead["lead"], user)
    wait_for(lambda: w.metrics().get('scheduler_conflict_checks_total{purpose="booking",result="busy"}') == 2, 20, what="second check")
    assert meetings(s, lead["lead"]) == [] and outcome(s, lead["lead"])[:2] == ("skipped", "conflict")


def test_conflict_policy_book_books_over_busy_time_and_says_so(stack):
    s = stack()
    s.start_standin()
    user, gmail = booked_user(s, timezone="Asia/Kolkata")
    busy_event(s, gmail, "2099-03-04T17:15:00+05:30", "2099-03-04T18:00:00+05:30")
    lead = s.add_lead(user, demo="2099-03-04T17:00:00+05:30")
    free = s.add_lead(user, demo="2099-03-04T19:00:00+05:30")
    s.service("scheduler-worker", SCHEDULE_DELAY_MS="0", CONFLICT_POLICY="book")
    s.publish_lead(lead["lead"], user)
    s.publish_lead(free["lead"], user)
    for one in (lead, free):
        wait_for(lambda: meetings(s, one["lead"]), 20, what="meeting")
    rows = {m: s.one("SELECT has_conflict, conflict_detail FROM calendar_meetings WHERE lead_analytics_id = %s", m)
            for m in (lead["lead"], free["lead"])}
    assert rows[lead["lead"]][0] is True
    assert rows[lead["lead"]][1] == "2099-03-04T17:15:00+05:30 to 2099-03-04T17:30:00+05:30"
    assert rows[free["lead"]] == (False, None), "a free slot says so"
    assert outcome(s, lead["lead"])[:2] == ("scheduled", None)


def test_a_calendar_google_cannot_report_on_is_booked_and_says_why(stack):
    s = stack()
    s.start_standin()
    user, gmail = booked_user(s)
    s.standin.admin("freebusy", {"calendar_errors": {gmail: "internalError"}})
    old_grant = s.add_user()
    old_mail = f"old-{old_grant[:8]}@example.com"
    # Connected before the calendar.freebusy scope was asked for.
    tokens = s.standin.connect(old_mail, scope="https://www.googleapis.com/auth/calendar.events"
                                               " https://www.googleapis.com/auth/userinfo.email")
    s.connect_calendar(old_grant, old_mail)
    s.query("UPDATE users SET google_access_token = %s, google_refresh_token = %s WHERE id = %s",
            seal(tokens["access_token"], old_grant), seal(tokens["refresh_token"], old_grant), old_grant)
    leads = {user: s.add_lead(user), old_grant: s.add_lead(old_grant)}
    w = s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    for owner, lead in leads.items():
        s.publish_lead(lead["lead"], owner)
    for lead in leads.values():
        wait_for(lambda: meetings(s, lead["lead"]), 20, what="meeting")
    row = s.one("SELECT has_conflict, conflict_detail FROM calendar_meetings WHERE lead_analytics_id = %s",
                leads[user]["lead"])
    assert row == (None, "Google could not report the calendar's busy time (internalError)")
    row = s.one("SELECT has_conflict, conflict_detail FROM calendar_meetings WHERE lead_analytics_id = %s",
                leads[old_grant]["lead"])
    assert row[0] is None and "reconnect Google Calendar" in row[1]
    assert w.metrics().get('scheduler_conflict_checks_total{purpose="booking",result="unchecked"}') == 2
    assert "could not read the rep's busy time from Google" in w.logs()


def test_free_busy_outage_is_retried_like_any_google_call(stack):
    s = stack()
    s.start_standin()
    user, gmail = booked_user(s)
    lead = s.add_lead(user)
    s.standin.admin("faults", {"rules": [{"method": "POST", "path_prefix": "/calendar/v3/freeBusy", "status": 503,
                                          "count": 3}]})
    w = s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    s.publish_lead(lead["lead"], user)
    wait_for(lambda: meetings(s, lead["lead"]), 40, what="meeting after the retry tier")
    m = w.metrics()
    assert m.get('google_quick_retries_total{op="freebusy.query"}') == 2
    assert m.get('retries_total{queue="scheduler.retry.1"}') == 1
    assert s.one("SELECT has_conflict FROM calendar_meetings WHERE lead_analytics_id = %s", lead["lead"]) == (False,)
