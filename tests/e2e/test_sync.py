"""Two-way sync end to end (services/scheduler-worker/sync.c, syncapply.c): the rep and the lead act in the Google
stand-in's UI (/_standin/events/move, /delete, /respond), the gateway's push arrives as calendar.changed on exchange
`calendar` (or no push at all, and the poll finds it), and the platform follows: a move reschedules the meeting,
a delete cancels it, the lead's answer is stored and a decline mailed, each applied once however often the change is
seen, whatever crashes, and without ever writing back to Google or taking the platform's own writes for the rep's.
"""

import datetime
import json
import threading
import time
import uuid

import psycopg2
import pytest

from harness import next_demo_time, wait_for
from test_gateway import Gateway, add_meeting
from test_mailer import raw_mails, wait_mails

M = "/api/calendar/meetings"
MAIL = "mailer.jobs"
DELETED = "Deleted in Google Calendar"
WRITES = ("events.insert", "events.patch", "events.update", "events.delete")


class World:
    """A connected owner, a gateway, a scheduler (and a mailer unless asked not to) on this test's servers."""

    def __init__(self, s, mailer=True, **scheduler_env):
        self.s = s
        s.start_standin()
        self.addr = f"owner+{uuid.uuid4().hex[:8]}@example.com"
        self.user = s.add_user(email=self.addr)
        self.gmail = f"g-{self.user[:8]}@example.com"
        s.connect_calendar(self.user, self.gmail, timezone="Asia/Kolkata")
        self.scheduler_env = dict({"SCHEDULE_DELAY_MS": "0"}, **scheduler_env)
        self.scheduler = s.service("scheduler-worker", **self.scheduler_env)
        self.gw = Gateway(s)
        if mailer:
            s.service("mailer-worker")
        self.pushes = 0

    def book(self, when=None, **body):
        """A meeting booked by hand through the gateway for a new lead: (lead id, meeting resource)."""
        lead = self.s.add_lead(self.user)["lead"]
        r = self.gw.call("POST", M, self.user, json=dict({"leadAnalyticsId": lead,
                                                          "dateTime": when or next_demo_time()}, **body))
        assert r.status_code == 201, r.text
        return lead, r.json()["meeting"]

    def push(self, wait=True, **extra):
        """calendar.changed as the gateway publishes it for a push on a live channel; wait: until the scheduler
        recorded the request."""
        before = self.s.one("SELECT now()")[0]
        self.pushes += 1
        body = dict({"user_id": self.user, "channel_id": str(uuid.uuid4()), "message_number": self.pushes}, **extra)
        assert self.s.publish("calendar", "calendar.changed", body, message_id=f"push-{uuid.uuid4()}")
        if wait:
            wait_for(lambda: (lambda t: t is not None and t > before)(self.sync_state()[1]), 20,
                     what="the request recorded")

    def sync_state(self):
        """(google_synced_at, google_sync_requested_at, google_sync_claimed_until)"""
        return self.s.one("SELECT google_synced_at, google_sync_requested_at, google_sync_claimed_until FROM users"
                          " WHERE id = %s", self.user)

    def wait_synced(self, after=None, timeout=30):
        """Until a run that started after `after` (the database's time; default now) has finished."""
        after = after or self.s.one("SELECT now()")[0]
        return wait_for(lambda: (lambda t: t is not None and t > after)(self.sync_state()[0]), timeout,
                        what="a sync that started after " + str(after))

    def settle(self):
        """A sync now, and its end: what Google holds from here on comes as an incremental change."""
        self.push()
        self.caught_up()

    def caught_up(self, timeout=30):
        """Until a run that started after the latest request has finished."""
        def done():
            synced, requested, claimed = self.sync_state()
            return synced is not None and (requested is None or synced >= requested) and claimed is None
        wait_for(done, timeout, what="the sync caught up with the requests")

    def rows(self, lead):
        return self.s.query("SELECT id::text, status, change_source, meeting_start_time, meeting_end_time,"
                            " rescheduled_from_meeting_id::text, cancellation_reason, attendee_response_status,"
                            " ical_sequence, sync_mail_pending FROM calendar_meetings WHERE lead_analytics_id = %s"
                            " ORDER BY created_at", lead)

    def event(self, event_id):
        return next(e for e in self.s.standin.admin(f"events?email={self.gmail}")["events"] if e["id"] == event_id)

    def move(self, event_id, shift_s=3600):
        return self.s.standin.admin("events/move", {"email": self.gmail, "id": event_id, "shift_s": shift_s})

    def delete(self, event_id):
        return self.s.standin.admin("events/delete", {"email": self.gmail, "id": event_id})

    def respond(self, event_id, response, attendee="lead@example.com"):
        return self.s.standin.admin("events/respond", {"email": self.gmail, "id": event_id, "attendee": attendee,
                                                       "response": response})

    def mails(self, action=None):
        return [m for _, m in raw_mails(self.s, self.addr) if action is None or m["X-Meeting-Action"] == action]

    def api_writes(self):
        """How many writes the services made through Google's API so far."""
        endpoints = self.s.standin.admin("stats")["endpoints"]
        return sum(sum(endpoints.get(e, {}).values()) for e in WRITES)

    def list_calls(self):
        return sum(self.s.standin.admin("stats")["endpoints"].get("events.list", {}).values())

    def mail_jobs(self):
        return [dict(json.loads(m["payload"]), _id=m["properties"].get("message_id"), _key=m["routing_key"])
                for m in self.s.peek(MAIL, 500)]


def at(iso):
    return datetime.datetime.fromisoformat(iso)


@pytest.fixture
def world(stack):
    return World(stack())


def test_a_move_in_google_reschedules_the_meeting(world):
    w, s = world, world.s
    lead, meeting = w.book()
    wait_mails(s, w.addr, 1)
    w.settle()  # the first (full) sync of a new connection: from here on, incremental
    writes = w.api_writes()

    moved = w.move(meeting["google_event_id"], shift_s=5400)
    assert moved["_standin"]["history"][-1]["op"] == "ui.move"
    w.push()
    rows = wait_for(lambda: (lambda r: r if len(r) == 2 else None)(w.rows(lead)), 20, what="the rescheduled row")
    old, new = rows
    assert old[0] == meeting["id"] and old[1] == "rescheduled" and old[2] == "google"
    assert new[1] == "scheduled" and new[2] == "google" and new[5] == meeting["id"]
    assert new[3] == at(meeting["meeting_start_time"].replace("Z", "+00:00")) + datetime.timedelta(minutes=90)
    assert (new[4] - new[3]).total_seconds() == 30 * 60
    assert new[8] == old[8] + 1, "the iCalendar sequence rises as for a platform reschedule"

    api = w.gw.get(f"{M}/lead/{lead}", w.user).json()["meetings"]
    current = next(m for m in api if m["status"] == "scheduled")
    assert current["id"] == new[0] and current["change_source"] == "google"
    assert current["meeting_start_time"] == new[3].astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert next(m for m in api if m["id"] == meeting["id"])["change_source"] == "google"

    mail = wait_for(lambda: w.mails("rescheduled"), 20, what="the rescheduled mail")
    assert len(mail) == 1 and mail[0]["X-Meeting-Id"] == new[0]
    # More pushes of the same change apply nothing more, and nothing was ever written back to Google.
    w.push()
    w.push()
    w.caught_up()
    time.sleep(1)
    assert len(w.rows(lead)) == 2 and len(w.mails("rescheduled")) == 1
    assert w.api_writes() == writes
    assert w.event(meeting["google_event_id"])["_standin"]["history"][-1]["op"] == "ui.move"
    assert w.rows(lead)[1][9] is None, "the mail was confirmed and its mark cleared"


def test_the_platform_ending_a_row_google_made_says_the_platform_did(world):
    """change_source on an ended row names who ended it: a meeting the rep moved in Google (its row 'google') and
    then cancelled from the platform is the platform's cancel, and its mail says nothing of Google Calendar."""
    w, s = world, world.s
    lead, meeting = w.book()
    w.settle()
    w.move(meeting["google_event_id"], shift_s=3600)
    w.push()
    rows = wait_for(lambda: (lambda r: r if len(r) == 2 else None)(w.rows(lead)), 20, what="the Google move")
    assert rows[1][2] == "google"
    wait_for(lambda: w.mails("rescheduled"), 20, what="the rescheduled mail")

    r = w.gw.call("DELETE", f"{M}/{rows[1][0]}", w.user, json={"reason": "lead asked"})
    assert r.status_code == 200, r.text
    assert r.json()["meeting"]["change_source"] == "platform"
    assert w.rows(lead)[1][1] == "cancelled" and w.rows(lead)[1][2] == "platform"
    mail = wait_for(lambda: w.mails("cancelled"), 20, what="the cancelled mail")[0]
    assert "deleted in Google Calendar" not in mail.get_body(("plain",)).get_content()


def test_a_meeting_made_all_day_in_google_runs_from_midnight_in_the_calendars_zone(world):
    w = world
    lead, meeting = w.book()
    w.settle()
    w.s.standin.admin("events/move", {"email": w.gmail, "id": meeting["google_event_id"],
                                      "start": {"date": "2099-04-10"}, "end": {"date": "2099-04-11"}})
    w.push()
    rows = wait_for(lambda: (lambda r: r if len(r) == 2 else None)(w.rows(lead)), 20, what="the move")
    kolkata = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    assert rows[1][3] == datetime.datetime(2099, 4, 10, tzinfo=kolkata)
    assert rows[1][4] == datetime.datetime(2099, 4, 11, tzinfo=kolkata)
    assert w.s.one("SELECT meeting_duration_minutes FROM calendar_meetings WHERE id = %s", rows[1][0])[0] == 1440


def test_a_delete_in_google_cancels_the_meeting(world):
    w, s = world, world.s
    lead, meeting = w.book()
    wait_mails(s, w.addr, 1)
    w.settle()
    writes = w.api_writes()

    w.delete(meeting["google_event_id"])
    w.push()
    row = wait_for(lambda: (lambda r: r if r[0][1] == "cancelled" else None)(w.rows(lead)), 20,
                   what="the cancelled meeting")
    assert len(row) == 1
    assert row[0][2] == "google" and row[0][6] == DELETED and row[0][8] == meeting["ical_sequence"] + 1
    mail = wait_for(lambda: w.mails("cancelled"), 20, what="the cancelled mail")
    assert len(mail) == 1 and mail[0]["X-Meeting-Id"] == meeting["id"]
    w.push()
    w.caught_up()
    time.sleep(1)
    assert len(w.mails("cancelled")) == 1
    assert w.api_writes() == writes, "the event is not made again, nor anything else written"
    assert w.event(meeting["google_event_id"])["status"] == "cancelled"


def test_no_reminder_for_a_meeting_deleted_in_google(stack):
    """Two meetings starting soon; one is deleted in Google. The reminder sweep reminds of the other only."""
    w = World(stack(), REMINDER_BEFORE_MINUTES="60")
    s = w.s
    soon = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    gone_lead, gone = w.book((soon + datetime.timedelta(minutes=20)).isoformat())
    kept_lead, kept = w.book((soon + datetime.timedelta(minutes=50)).isoformat())
    w.settle()
    w.delete(gone["google_event_id"])
    w.push()
    wait_for(lambda: w.rows(gone_lead)[0][1] == "cancelled", 20, what="the cancelled meeting")
    # Booked long ago, as far as the reminder sweep can tell: both are due for a reminder now.
    s.query("UPDATE calendar_meetings SET created_at = now() - interval '1 day' WHERE id IN (%s, %s)",
            gone["id"], kept["id"])
    wait_for(lambda: w.mails("reminder"), 45, what="the reminder of the meeting that was kept")
    time.sleep(1)
    assert [m["X-Meeting-Id"] for m in w.mails("reminder")] == [kept["id"]]
    assert s.one("SELECT reminder_queued_at FROM calendar_meetings WHERE id = %s", gone["id"])[0] is None
    assert s.one("SELECT count(*) FROM mail_deliveries WHERE meeting_id = %s AND kind = 'reminder'",
                 gone["id"])[0] == 0


def test_a_decline_is_stored_and_mailed_once_and_cancels_nothing(stack):
    """Without a mailer here: the mail jobs stay in mailer.jobs, where the published declined job is seen."""
    w = World(stack(), mailer=False)
    lead, meeting = w.book()
    w.settle()
    assert w.rows(lead)[0][7] == "needsAction", "the first sync notes the invitation's state"

    w.respond(meeting["google_event_id"], "declined")
    w.push()
    wait_for(lambda: w.rows(lead)[0][7] == "declined", 20, what="the decline")
    for _ in range(3):
        w.push()
    w.caught_up()
    row = w.rows(lead)
    assert len(row) == 1 and row[0][1] == "scheduled" and row[0][2] == "platform", "a decline cancels nothing"
    declined = wait_for(lambda: [j for j in w.mail_jobs() if j["kind"] == "declined"], 10, what="the declined job")
    assert [(j["_id"], j["_key"], j["meeting_id"], j["sequence"]) for j in declined] == [
        (f"meeting:{meeting['id']}:declined:1", "mail.meeting.declined", meeting["id"], 1)]
    api = w.gw.get(f"{M}/{meeting['id']}", w.user).json()["meeting"]
    assert api["attendee_response_status"] == "declined" and api["status"] == "scheduled"

    w.respond(meeting["google_event_id"], "accepted")
    w.push()
    wait_for(lambda: w.rows(lead)[0][7] == "accepted", 20, what="the accept")
    assert s_count(w, "SELECT attendee_response_changes FROM calendar_meetings WHERE id = %s", meeting["id"]) == 2
    assert len([j for j in w.mail_jobs() if j["kind"] == "declined"]) == 1, "an accept mails nothing"
    assert w.rows(lead)[0][9] is None


def s_count(w, sql, *params):
    return w.s.one(sql, *params)[0]


def test_the_platforms_own_changes_come_back_as_echoes(world):
    w, s = world, world.s
    lead, meeting = w.book()
    wait_mails(s, w.addr, 1)
    w.settle()

    r = w.gw.call("PUT", f"{M}/{meeting['id']}/reschedule", w.user, json={"newDateTime": next_demo_time()})
    assert r.status_code == 200, r.text
    moved = r.json()["meeting"]
    w.push()  # Google pushes the platform's own patch back, as it does
    w.caught_up()
    w.push()
    w.caught_up()
    rows = w.rows(lead)
    assert [(x[0], x[1], x[2]) for x in rows] == [(meeting["id"], "rescheduled", "platform"),
                                                   (moved["id"], "scheduled", "platform")]
    wait_for(lambda: w.mails("rescheduled"), 20, what="the rescheduled mail")

    r = w.gw.call("DELETE", f"{M}/{moved['id']}", w.user, json={"reason": "Lead asked to stop"})
    assert r.status_code == 200, r.text
    w.push()
    w.caught_up()
    w.push()
    w.caught_up()
    rows = w.rows(lead)
    assert len(rows) == 2 and rows[1][1] == "cancelled" and rows[1][2] == "platform"
    assert rows[1][6] == "Lead asked to stop", "the platform's reason stays"
    wait_for(lambda: w.mails("cancelled"), 20, what="the cancelled mail")
    time.sleep(1)
    assert len(w.mails("rescheduled")) == 1 and len(w.mails("cancelled")) == 1
    assert w.s.one("SELECT count(*) FROM calendar_meetings WHERE sync_hold_until IS NOT NULL")[0] == 0


def test_a_command_in_flight_holds_the_meeting_from_the_sync(world):
    """The reschedule has moved the event at Google but not committed yet (calendar_commands is locked) when a push
    arrives: the sync must not take the command's own write for the rep's; once the command commits it is an echo."""
    w, s = world, world.s
    lead, meeting = w.book()
    w.settle()
    new_time = next_demo_time()
    locker = s.db()
    locker.autocommit = False
    result = {}
    try:
        with locker.cursor() as cur:
            cur.execute("LOCK TABLE calendar_commands IN SHARE MODE")
        thread = threading.Thread(target=lambda: result.update(r=w.gw.call(
            "PUT", f"{M}/{meeting['id']}/reschedule", w.user, json={"newDateTime": new_time})))
        thread.start()
        wait_for(lambda: at(w.event(meeting["google_event_id"])["start"]["dateTime"]) == at(new_time), 20,
                 what="Google holds the command's move")
        lists = w.list_calls()
        w.push(wait=False)
        wait_for(lambda: w.list_calls() > lists, 20, what="a sync listing the calendar")
        time.sleep(1)
    finally:
        locker.rollback()
        locker.autocommit = True
    thread.join(30)
    assert result["r"].status_code in (200, 202), result["r"].text
    w.caught_up()
    rows = w.rows(lead)
    assert [(x[1], x[2]) for x in rows] == [("rescheduled", "platform"), ("scheduled", "platform")], rows
    assert s.one("SELECT reply->>'ok' FROM calendar_commands WHERE user_id = %s", w.user)[0] == "true"
    assert any(line.get("msg") == "a Google Calendar change waits for the next run" and line.get("why") == "hold"
               for line in w.scheduler.log_lines())
    wait_for(lambda: w.mails("rescheduled"), 20, what="the rescheduled mail")
    time.sleep(1)
    assert len(w.mails("rescheduled")) == 1


def test_without_any_push_the_poll_finds_a_move(stack):
    w = World(stack(), SYNC_POLL_SECONDS="5")
    lead, meeting = w.book()
    w.wait_synced()
    w.move(meeting["google_event_id"])
    rows = wait_for(lambda: (lambda r: r if len(r) == 2 else None)(w.rows(lead)), 30, what="the move, by polling")
    assert rows[1][1] == "scheduled" and rows[1][2] == "google"
    assert w.s.depth("scheduler.sync") == 0 and w.pushes == 0


def test_a_dead_sync_token_means_a_full_sync_that_still_applies_each_change_once(world):
    w, s = world, world.s
    lead, meeting = w.book()
    w.settle()
    full_before = w.scheduler.metrics().get('scheduler_sync_runs_total{kind="full"}', 0)
    w.move(meeting["google_event_id"])
    assert s.standin.admin("invalidate-sync-tokens", {"email": w.gmail})["invalidated"] >= 1
    w.push()
    rows = wait_for(lambda: (lambda r: r if len(r) == 2 else None)(w.rows(lead)), 20, what="the move")
    w.caught_up()
    w.push()
    w.caught_up()
    assert len(w.rows(lead)) == 2 and rows[1][2] == "google"
    assert w.scheduler.metrics()['scheduler_sync_runs_total{kind="full"}'] == full_before + 1
    assert s.one("SELECT google_sync_token IS NOT NULL FROM users WHERE id = %s", w.user)[0]
    wait_for(lambda: w.mails("rescheduled"), 20, what="the rescheduled mail")
    time.sleep(1)
    assert len(w.mails("rescheduled")) == 1


def test_a_full_sync_cancels_meetings_whose_events_vanished(world):
    w, s = world, world.s
    kept_lead, kept = w.book()
    deleted_lead, deleted = w.book()
    w.settle()
    w.scheduler.stop()
    # While nobody listened: one event deleted in Google's UI, and one meeting whose event Google no longer has
    # at all (as after Google purged it); the rep's own event is not the platform's business.
    w.delete(deleted["google_event_id"])
    vanished = add_meeting(s, w.user, lead=s.add_lead(w.user)["lead"], hours=24 * 365 * 50)
    s.standin.admin("events", {"email": w.gmail, "event": {"summary": "Dentist",
                                                            "start": {"dateTime": "2099-03-03T10:00:00Z"},
                                                            "end": {"dateTime": "2099-03-03T11:00:00Z"}}})
    w.push(wait=False, full=True)
    w.scheduler = s.service("scheduler-worker", **w.scheduler_env)
    w.push()
    w.caught_up()
    status = dict(s.query("SELECT id::text, status || '/' || change_source || '/' || COALESCE(cancellation_reason, '')"
                          " FROM calendar_meetings WHERE user_id = %s", w.user))
    assert status == {kept["id"]: "scheduled/platform/", deleted["id"]: f"cancelled/google/{DELETED}",
                      vanished: f"cancelled/google/{DELETED}"}
    mails = wait_for(lambda: (lambda m: m if len(m) >= 2 else None)(w.mails("cancelled")), 20, what="two mails")
    time.sleep(1)
    assert sorted(m["X-Meeting-Id"] for m in w.mails("cancelled")) == sorted([deleted["id"], vanished])
    assert len(mails) == 2


def test_many_pushes_at_once_cause_one_or_two_runs(world):
    w, s = world, world.s
    lead, meeting = w.book()
    w.settle()
    w.move(meeting["google_event_id"])
    # A slow list keeps the first run going while the burst arrives.
    s.standin.admin("faults", {"rules": [{"method": "GET", "path_prefix": "/calendar/v3/calendars/primary/events",
                                          "latency_ms": 800, "count": 50}]})
    before = w.list_calls()
    after = s.one("SELECT now()")[0]
    for _ in range(29):
        w.push(wait=False)
    w.push()
    w.caught_up()
    time.sleep(6)  # a sweep period: nothing left to run
    runs = w.list_calls() - before
    assert 1 <= runs <= 2, f"{runs} events.list calls for 30 pushes"
    assert len(w.rows(lead)) == 2


def test_a_scheduler_killed_between_pages_leaves_each_change_applied_once(world):
    """Page one (the move and 249 of the rep's new events) is applied, the second page is slow to come, and the
    scheduler is killed. Restarted (its claim run out), the next run lists the same changes again: still one
    reschedule and one mail."""
    w, s = world, world.s
    lead, meeting = w.book()
    wait_mails(s, w.addr, 1)
    w.settle()
    w.move(meeting["google_event_id"])
    for i in range(300):
        start = datetime.datetime(2098, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(hours=i)
        s.standin.admin("events", {"email": w.gmail, "event": {
            "summary": f"Rep's own {i}", "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + datetime.timedelta(minutes=30)).isoformat()}}})
    lists = "/calendar/v3/calendars/primary/events"
    s.standin.admin("faults", {"rules": [{"method": "GET", "path_prefix": lists, "latency_ms": 1},
                                         {"method": "GET", "path_prefix": lists, "latency_ms": 30000}]})
    w.push()
    wait_for(lambda: len(w.rows(lead)) == 2, 20, what="the move of page one")
    wait_for(lambda: s.standin.admin("faults")["rules"] == [], 20, what="the second page asked for")
    w.scheduler.kill()
    token = s.one("SELECT google_sync_token FROM users WHERE id = %s", w.user)[0]
    s.standin.admin("faults", method="DELETE")
    # As two minutes passing would: the dead scheduler's claim runs out.
    s.query("UPDATE users SET google_sync_claimed_until = now() - interval '1 second' WHERE id = %s", w.user)
    w.scheduler = s.service("scheduler-worker", **w.scheduler_env)
    w.caught_up()
    rows = w.rows(lead)
    assert [(x[1], x[2]) for x in rows] == [("rescheduled", "google"), ("scheduled", "google")]
    assert s.one("SELECT google_sync_token FROM users WHERE id = %s", w.user)[0] != token
    wait_for(lambda: w.mails("rescheduled"), 20, what="the rescheduled mail")
    time.sleep(1)
    assert len(w.mails("rescheduled")) == 1

    # A crash after the commit but before the broker confirmed the mail leaves the mark: the next run publishes
    # it again (the same message_id), the mailer drops the copy, and the mark goes.
    s.query("UPDATE calendar_meetings SET sync_mail_pending = 'rescheduled' WHERE id = %s", rows[1][0])
    w.push()
    wait_for(lambda: w.rows(lead)[1][9] is None, 20, what="the mark cleared")
    time.sleep(1)
    assert len(w.mails("rescheduled")) == 1


def test_a_scheduler_killed_before_applying_a_page_loses_nothing(world):
    """The page with the move has arrived (and with it the new sync token) but nothing is applied yet when the
    scheduler is killed: the token must not have been stored, so the next run lists the move again."""
    w, s = world, world.s
    lead, meeting = w.book()
    wait_mails(s, w.addr, 1)
    w.settle()
    w.move(meeting["google_event_id"])
    s.standin.admin("faults", {"rules": [{"method": "GET", "path_prefix": "/calendar/v3/calendars/primary/events",
                                          "latency_ms": 1500}]})
    lists = w.list_calls()
    locker = psycopg2.connect(s.database_url)
    try:
        w.push()
        wait_for(lambda: s.standin.admin("faults")["rules"] == [], 20, what="the list asked for")
        # Nothing reads the user's meetings until the lock goes: the page waits in the scheduler.
        with locker.cursor() as cur:
            cur.execute("LOCK TABLE calendar_meetings IN ACCESS EXCLUSIVE MODE")
        wait_for(lambda: w.list_calls() > lists, 20, what="the page answered")
        time.sleep(0.5)
        w.scheduler.kill()
    finally:
        locker.rollback()
        locker.close()
    assert len(w.rows(lead)) == 1, "nothing was applied before the kill"
    s.query("UPDATE users SET google_sync_claimed_until = now() - interval '1 second' WHERE id = %s", w.user)
    w.scheduler = s.service("scheduler-worker", **w.scheduler_env)
    w.caught_up()
    assert [(x[1], x[2]) for x in w.rows(lead)] == [("rescheduled", "google"), ("scheduled", "google")]
    wait_for(lambda: w.mails("rescheduled"), 20, what="the rescheduled mail")
    time.sleep(1)
    assert len(w.mails("rescheduled")) == 1


def test_two_schedulers_apply_each_change_once(stack):
    w = World(stack(), SYNC_POLL_SECONDS="5")
    s = w.s
    second = s.service("scheduler-worker", **w.scheduler_env)
    booked = [w.book() for _ in range(3)]
    w.settle()
    w.move(booked[0][1]["google_event_id"])
    w.move(booked[1][1]["google_event_id"], shift_s=7200)
    w.delete(booked[2][1]["google_event_id"])
    w.respond(booked[1][1]["google_event_id"], "declined")
    for _ in range(20):
        w.push(wait=False)
    wait_for(lambda: [len(w.rows(lead)) for lead, _ in booked] == [2, 2, 1] and w.rows(booked[2][0])[0][1] ==
             "cancelled" and w.rows(booked[1][0])[1][7] == "declined", 30, what="every change")
    for _ in range(10):
        w.push()
    w.caught_up()
    time.sleep(6)  # both sweeps had a turn
    assert [len(w.rows(lead)) for lead, _ in booked] == [2, 2, 1]
    wait_for(lambda: len(w.mails("rescheduled")) >= 2 and w.mails("cancelled") and w.mails("declined"), 20,
             what="the mails")
    time.sleep(1)
    assert len(w.mails("rescheduled")) == 2 and len(w.mails("cancelled")) == 1 and len(w.mails("declined")) == 1
    assert s.one("SELECT attendee_response_changes FROM calendar_meetings WHERE rescheduled_from_meeting_id = %s",
                 booked[1][1]["id"])[0] == 1
    assert second.metrics().get('scheduler_sync_changes_total{change="moved"}', 0) + \
        w.scheduler.metrics().get('scheduler_sync_changes_total{change="moved"}', 0) == 2
