"""Conflicts and availability through the gateway (docs/booking.md, "Conflicts"): a manual create or a
reschedule over the rep's busy time is refused with the busy spans unless the request allows it, a meeting's
own slot is never its own conflict, and GET /api/calendar/availability answers the rep's busy and free time
from Google through the scheduler. The automatic bookings' side is in test_scheduler.py."""

import uuid

import pytest

from harness import wait_for
from test_gateway import Gateway, assert_error, connected_user
from test_mailer import wait_mails

M = "/api/calendar/meetings"
A = "/api/calendar/availability"


def busy_event(s, email, start, end, **extra):
    """The rep adds an event of their own in Google's UI."""
    ev = dict({"summary": "Dentist", "start": {"dateTime": start}, "end": {"dateTime": end}}, **extra)
    return s.standin.admin("events", {"email": email, "event": ev})


@pytest.fixture
def world(stack):
    s = stack()
    s.start_standin()
    gw = Gateway(s)
    s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    user, gmail = connected_user(s)
    s.query("UPDATE users SET google_calendar_timezone = 'Asia/Kolkata' WHERE id = %s", user)
    return s, gw, user, gmail


def test_manual_create_over_busy_time_is_refused_unless_allowed(world):
    s, gw, user, gmail = world
    busy_event(s, gmail, "2099-05-05T10:15:00+05:30", "2099-05-05T11:00:00+05:30")
    lead = s.add_lead(user)["lead"]
    r = gw.call("POST", M, user, json={"leadAnalyticsId": lead, "dateTime": "2099-05-05T10:00:00+05:30"})
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["error"]["code"] == "conflict" and "busy" in body["error"]["message"]
    assert body["busy"] == [{"start": "2099-05-05T10:15:00+05:30", "end": "2099-05-05T10:30:00+05:30"}]
    assert gw.get(f"{M}/lead/{lead}", user).json()["meetings"] == []
    assert len(s.standin.admin(f"events?email={gmail}")["events"]) == 1, "nothing was booked"

    assert_error(gw.call("POST", M, user, json={"leadAnalyticsId": lead, "allowConflict": "yes"}), 400,
                 "invalid_request", "allowConflict")
    r = gw.call("POST", M, user, json={"leadAnalyticsId": lead, "dateTime": "2099-05-05T10:00:00+05:30",
                                       "allowConflict": True})
    assert r.status_code == 201, r.text
    meeting = r.json()["meeting"]
    assert meeting["has_conflict"] is True
    assert meeting["conflict_detail"] == "2099-05-05T10:15:00+05:30 to 2099-05-05T10:30:00+05:30"

    # A free slot says so.
    other = s.add_lead(user)["lead"]
    r = gw.call("POST", M, user, json={"leadAnalyticsId": other, "dateTime": "2099-05-05T12:00:00+05:30"})
    assert r.status_code == 201, r.text
    assert r.json()["meeting"]["has_conflict"] is False and r.json()["meeting"]["conflict_detail"] is None


def test_reschedule_checks_the_new_slot_but_not_the_meetings_own(world):
    s, gw, user, gmail = world
    lead = s.add_lead(user)["lead"]
    r = gw.call("POST", M, user, json={"leadAnalyticsId": lead, "dateTime": "2099-06-01T10:00:00+05:30"})
    assert r.status_code == 201, r.text
    meeting = r.json()["meeting"]
    busy_event(s, gmail, "2099-06-02T09:00:00+05:30", "2099-06-02T12:00:00+05:30")

    # Fifteen minutes later overlaps only the meeting itself.
    r = gw.call("PUT", f"{M}/{meeting['id']}/reschedule", user, json={"newDateTime": "2099-06-01T10:15:00+05:30"})
    assert r.status_code == 200, r.text
    moved = r.json()["meeting"]
    assert moved["has_conflict"] is False

    # Into the rep's busy morning: refused with the busy span, nothing changes.
    r = gw.call("PUT", f"{M}/{moved['id']}/reschedule", user, json={"newDateTime": "2099-06-02T10:00:00+05:30"})
    assert r.status_code == 409, r.text
    assert r.json()["busy"] == [{"start": "2099-06-02T10:00:00+05:30", "end": "2099-06-02T10:30:00+05:30"}]
    assert gw.get(f"{M}/{moved['id']}", user).json()["meeting"]["status"] == "scheduled"
    event = [e for e in s.standin.admin(f"events?email={gmail}")["events"] if e["id"] == moved["google_event_id"]]
    assert event[0]["start"]["dateTime"].startswith("2099-06-01T10:15:00"), "Google's event did not move"

    r = gw.call("PUT", f"{M}/{moved['id']}/reschedule", user,
                json={"newDateTime": "2099-06-02T10:00:00+05:30", "allowConflict": True})
    assert r.status_code == 200, r.text
    again = r.json()["meeting"]
    assert again["has_conflict"] is True and again["conflict_detail"].startswith("2099-06-02T10:00:00+05:30 to")


def test_a_reschedule_whose_event_an_earlier_attempt_moved_is_not_refused_by_it(world):
    """A scheduler that died between Google's answer to the move and its commit leaves the event in the new slot;
    the command, redelivered, must not find the meeting's own moved event as the rep's busy time."""
    s, gw, user, gmail = world
    lead = s.add_lead(user)["lead"]
    r = gw.call("POST", M, user, json={"leadAnalyticsId": lead, "dateTime": "2099-07-01T10:00:00+05:30"})
    assert r.status_code == 201, r.text
    meeting = r.json()["meeting"]
    # The first sync of the connection has run, so nothing but the command looks at the event from here on.
    wait_for(lambda: s.one("SELECT google_synced_at IS NOT NULL FROM users WHERE id = %s", user)[0], 30,
             what="the first sync")
    # What the dead attempt did at Google: the event is in the new slot, the row still in the old one.
    s.standin.admin("events/move", {"email": gmail, "id": meeting["google_event_id"],
                                    "start": {"dateTime": "2099-07-02T15:00:00+05:30"},
                                    "end": {"dateTime": "2099-07-02T15:30:00+05:30"}})

    r = gw.call("PUT", f"{M}/{meeting['id']}/reschedule", user, json={"newDateTime": "2099-07-02T15:00:00+05:30"})
    assert r.status_code == 200, r.text
    moved = r.json()["meeting"]
    assert moved["meeting_start_time"] == "2099-07-02T09:30:00Z" and moved["has_conflict"] is None
    assert "earlier attempt" in moved["conflict_detail"]

    # A real clash is still refused: the rep's own event in the slot.
    busy_event(s, gmail, "2099-07-03T15:00:00+05:30", "2099-07-03T16:00:00+05:30")
    r = gw.call("PUT", f"{M}/{moved['id']}/reschedule", user, json={"newDateTime": "2099-07-03T15:00:00+05:30"})
    assert r.status_code == 409, r.text
    assert r.json()["busy"] == [{"start": "2099-07-03T15:00:00+05:30", "end": "2099-07-03T15:30:00+05:30"}]


def test_availability_answers_busy_and_free_time(world):
    s, gw, user, gmail = world
    busy_event(s, gmail, "2099-07-01T10:00:00+05:30", "2099-07-01T11:00:00+05:30")
    busy_event(s, gmail, "2099-07-01T11:20:00+05:30", "2099-07-01T12:00:00+05:30")
    busy_event(s, gmail, "2099-07-01T14:00:00+05:30", "2099-07-01T15:00:00+05:30", transparency="transparent")
    q = "?from=2099-07-01T09:00:00%2B05:30&to=2099-07-01T13:00:00%2B05:30&duration_minutes=45"
    r = gw.get(A + q, user)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "time_zone": "Asia/Kolkata",
        "busy": [{"start": "2099-07-01T10:00:00+05:30", "end": "2099-07-01T11:00:00+05:30"},
                 {"start": "2099-07-01T11:20:00+05:30", "end": "2099-07-01T12:00:00+05:30"}],
        "free": [{"start": "2099-07-01T09:00:00+05:30", "end": "2099-07-01T10:00:00+05:30"},
                 {"start": "2099-07-01T12:00:00+05:30", "end": "2099-07-01T13:00:00+05:30"}],
    }, "the 20 free minutes between the two are too short for 45"
    # The default span is 30 minutes; asked in UTC, answered in the rep's zone.
    r = gw.get(A + "?from=2099-07-01T05:00:00Z&to=2099-07-01T07:00:00Z", user)
    assert r.status_code == 200, r.text
    assert r.json()["free"] == [{"start": "2099-07-01T12:00:00+05:30", "end": "2099-07-01T12:30:00+05:30"}]

    bad = {
        "": "from is required",
        "?from=2099-07-01T09:00:00": "from must be",
        "?from=2099-07-01T09:00:00Z": "to is required",
        "?from=2099-07-01T09:00:00Z&to=2099-07-01T09:00:00Z": "to must be after from",
        "?from=2099-07-01T09:00:00Z&to=2099-08-02T09:00:01Z": "at most 31 days",
        "?from=2099-07-01T09:00:00Z&to=2099-07-02T09:00:00Z&duration_minutes=3": "duration_minutes",
        "?from=2099-07-01T09:00:00Z&to=2099-07-02T09:00:00Z&duration_minutes=thirty": "duration_minutes",
    }
    for query, words in bad.items():
        assert_error(gw.get(A + query, user), 400, "invalid_request", words)
    assert_error(gw.get(A + q), 401)
    stranger = s.add_user()
    assert_error(gw.get(A + q, stranger), 409, "not_connected")


def test_availability_when_google_cannot_say(world):
    s, gw, user, gmail = world
    q = "?from=2099-07-01T09:00:00Z&to=2099-07-01T13:00:00Z"
    s.standin.admin("freebusy", {"calendar_errors": {gmail: "internalError"}})
    assert_error(gw.get(A + q, user), 502, "google_rejected", "internalError")
    s.standin.admin("freebusy", {"calendar_errors": {gmail: None}})
    s.standin.admin("faults", {"rules": [{"path_prefix": "/calendar/v3/freeBusy", "status": 503, "count": 3}]})
    assert_error(gw.get(A + q, user), 503, "unavailable")
    assert gw.get(A + q, user).status_code == 200, "and answers again once Google does"


def test_a_lead_over_busy_time_reaches_the_owner_as_a_mail(stack):
    """End to end: the scheduler skips the lead for the conflict and the mailer tells the owner."""
    s = stack()
    s.start_standin()
    addr = f"owner+{uuid.uuid4().hex[:8]}@example.com"
    user = s.add_user(email=addr)
    gmail = f"g-{user[:8]}@example.com"
    s.connect_calendar(user, gmail, timezone="Asia/Kolkata")
    busy_event(s, gmail, "2099-08-08T16:45:00+05:30", "2099-08-08T17:15:00+05:30")
    lead = s.add_lead(user, demo="2099-08-08T17:00:00+05:30", name="Nia Busy")
    free = s.add_lead(user, demo="2099-08-08T18:00:00+05:30")
    s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    s.service("mailer-worker")
    s.publish_lead(lead["lead"], user)
    s.publish_lead(free["lead"], user)
    mails = wait_mails(s, addr, count=2, timeout=30)
    actions = sorted(m["X-Meeting-Action"] for _, m in mails)
    assert actions == ["conflict", "created"], actions
    conflict = next(m for _, m in mails if m["X-Meeting-Action"] == "conflict")
    assert "Nia Busy" in conflict["Subject"] and conflict["X-Lead-Id"] == lead["lead"]
    assert s.one("SELECT outcome, reason FROM calendar_booking_outcomes WHERE lead_analytics_id = %s",
                 lead["lead"]) == ("skipped", "conflict")
    # The free lead was booked only after Google was asked about its slot.
    requests = [(r["method"], r["path"]) for r in s.standin.admin("requests")["requests"]
                if r["path"].startswith("/calendar/v3/")]
    first_insert = requests.index(("POST", "/calendar/v3/calendars/primary/events"))
    assert ("POST", "/calendar/v3/freeBusy") in requests[:first_insert]
    assert len([e for e in s.standin.admin(f"events?email={gmail}")["events"]
                if e.get("status") != "cancelled"]) == 2, "the busy event and the free lead's meeting"
