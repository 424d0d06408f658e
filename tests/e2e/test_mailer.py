"""End-to-end tests of the mailer-worker (issue 5) on real PostgreSQL, RabbitMQ
and a real SMTP server on loopback: every kind of mail arrives with its lead
context, parts and calendar invite; hostile lead text changes neither headers
nor markup; a job is mailed at most once; 4xx answers retry through a tier,
5xx and unreadable jobs are dead-lettered with a reason. A lead not booked for
a conflict is mailed with the busy times in the owner's zone (and not mailed
once it is no longer a conflict); a meeting booked over busy time says so.
Two-way sync's mails: the lead's decline (dropped once they accept again,
one mail per decline), and moves and deletes made in Google Calendar worded as
the owner's own, without an invite that would copy them.

The scheduler is not under test here: meetings are inserted with SQL and mail
jobs are published as the scheduler publishes them (mailjob.c).
"""

import email
import email.policy
import hashlib
import json
import mailbox
import os
import socket
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone

import icalendar

from harness import free_port, wait_for

MAIL_FROM = "Calendar Bot <calendar@example.com>"
TRANSCRIPT_URL = "https://app.example.com/calls/{call_id}/transcript"
FRONTEND_URL = "http://127.0.0.1:3000/integrations"
START = datetime(2099, 9, 18, 11, 30, tzinfo=timezone.utc)  # 17:00 in Asia/Kolkata
SINK = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "harness", "smtp_sink.py")
HOSTILE = "Eve\r\nBcc: victim@example.com <script>alert(1)</script>"


# Helpers


def mailer(s, **env):
    env.setdefault("TRANSCRIPT_URL", TRANSCRIPT_URL)
    return s.service("mailer-worker", **env)


def owner(s, local="owner", name="Olivia Owner"):
    """A user whose address is unique to this test, so the shared SMTP sink's mail can be told apart."""
    uid = str(uuid.uuid4())
    addr = f"{local}+{uid[:8]}@example.com"
    s.query("INSERT INTO users (id, email, name) VALUES (%s, %s, %s)", uid, addr, name)
    return uid, addr


def add_meeting(s, user, lead, start=START, minutes=30, status="scheduled", sequence=0, title=None,
                attendee_name="John Smith", previous=None, reason=None, event_id=None, meet=True):
    lead_id = lead["lead"] if lead else None
    event_id = event_id or "lead" + (lead_id or str(uuid.uuid4())).replace("-", "") + "g0"
    row = s.one("INSERT INTO calendar_meetings (user_id, lead_analytics_id, call_id, google_event_id,"
                " google_calendar_id, meeting_title, meeting_description, attendee_email, attendee_name,"
                " meeting_start_time, meeting_end_time, meeting_duration_minutes, timezone, status, ical_sequence,"
                " meet_link, html_link, rescheduled_from_meeting_id, cancellation_reason)"
                " VALUES (%s, %s, %s, %s, 'primary', %s, %s, 'lead@example.com', %s, %s,"
                " %s + make_interval(mins => %s), %s, 'Asia/Kolkata', %s, %s, %s, %s, %s, %s) RETURNING id",
                user, lead_id, lead["call"] if lead else None, event_id, title or "John Smith + TechCorp + Demo",
                "Demo Meeting with John Smith", attendee_name, start, start, minutes, minutes, status, sequence,
                "https://meet.google.com/abc-defg-hij" if meet else None,
                f"https://www.google.com/calendar/event?eid={event_id}", previous, reason)
    return str(row[0])


def publish_job(s, kind, user, meeting=None, sequence=0, message_id=None, **extra):
    body = {"kind": kind, "user_id": user, "sequence": sequence}
    if meeting:
        body["meeting_id"] = meeting
    body.update(extra)
    message_id = message_id or f"meeting:{meeting}:{kind}:{sequence}"
    key = "mail.calendar.disconnected" if kind == "disconnected" else f"mail.meeting.{kind}"
    assert s.publish("mail", key, body, message_id=message_id, type="mail.job")
    return message_id


def add_conflict(s, user, lead, busy, start=START, minutes=30, outcome="skipped", reason="conflict"):
    """The outcome the scheduler records for a lead it did not book because the owner is busy (lead.c)."""
    detail = "the calendar is busy then: " + ", ".join(f"{b['start']} to {b['end']}" for b in busy)
    s.query("INSERT INTO calendar_booking_outcomes (lead_analytics_id, user_id, outcome, reason, detail, attempts,"
            " requested_start, requested_end, busy) VALUES (%s, %s, %s, %s, %s, 1, %s,"
            " %s + make_interval(mins => %s), %s::jsonb)",
            lead["lead"], user, outcome, reason, detail, start, start, minutes, json.dumps(busy))


def publish_conflict(s, user, lead_id):
    """A conflict job as the scheduler publishes it (mailjob.c): no meeting, the lead's own message_id."""
    message_id = f"lead:{lead_id}:conflict"
    body = {"kind": "conflict", "user_id": user, "lead_analytics_id": lead_id, "sequence": 0}
    assert s.publish("mail", "mail.lead.conflict", body, message_id=message_id, type="mail.job")
    return message_id


def raw_mails(s, to):
    """(raw bytes, parsed message) of every mail the sink took for this recipient."""
    box = mailbox.Maildir(s.maildir, create=False)
    out = []
    for key in box.keys():
        raw = box.get_bytes(key)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        if to.lower() in [v.strip().lower() for v in msg.get_all("X-Sink-Rcpt-To", [])]:
            out.append((raw, msg))
    return out


def wait_mails(s, to, count=1, timeout=20):
    return wait_for(lambda: (lambda m: m if len(m) >= count else None)(raw_mails(s, to)), timeout,
                    what=f"{count} mail(s) to {to}")


def parts(msg):
    """text, html and the calendar part (or None) of a mail in the project's structure."""
    assert msg.get_content_type() == "multipart/mixed"
    top = list(msg.iter_parts())
    alt = top[0]
    assert alt.get_content_type() == "multipart/alternative"
    text, html = list(alt.iter_parts())
    assert text.get_content_type() == "text/plain" and text.get_content_charset() == "utf-8"
    assert html.get_content_type() == "text/html" and html.get_content_charset() == "utf-8"
    assert text["Content-Transfer-Encoding"] == "quoted-printable"
    cal = None
    if len(top) > 1:
        assert len(top) == 2
        cal = top[1]
        assert cal.get_content_type() == "text/calendar" and cal.get_content_charset() == "utf-8"
        assert cal.get_content_disposition() == "attachment" and cal.get_filename() == "invite.ics"
    return text.get_content().replace("\r\n", "\n"), html.get_content().replace("\r\n", "\n"), cal


def vevent(cal_part):
    raw = cal_part.get_payload(decode=True)
    cal = icalendar.Calendar.from_ical(raw)
    events = list(cal.walk("VEVENT"))
    assert len(events) == 1
    return cal, events[0], raw.decode()


def delivery(s, message_id):
    return s.one("SELECT status, attempts, last_error, sent_at IS NOT NULL FROM mail_deliveries"
                 " WHERE message_id = %s", message_id)


def metric(svc, kind, result):
    return svc.metrics().get(f'mailer_mails_total{{kind="{kind}",result="{result}"}}', 0)


def message_id_for(job_id):
    """The Message-ID the mailer derives from a job's message_id (BLAKE2b-128, as libsodium's generichash)."""
    return "<" + hashlib.blake2b(job_id.encode(), digest_size=16).hexdigest() + "@example.com>"


def raw_header(raw, name):
    """A header as it travelled (ASCII, folds joined with one space), to check its encoding."""
    lines = raw.partition(b"\r\n\r\n")[0].decode("ascii").split("\r\n")
    for i, line in enumerate(lines):
        if line.lower().startswith(name.lower() + ":"):
            value = line.split(":", 1)[1].strip()
            for cont in lines[i + 1:]:
                if not cont.startswith((" ", "\t")):
                    break
                value += " " + cont.strip()
            return value
    return None


def assert_lines_short(raw):
    """SMTP's hard limit everywhere; the transfer encodings' 76 characters in every body part."""
    for line in raw.split(b"\r\n"):
        assert len(line) <= 998, "a line longer than SMTP allows"
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    for part in msg.walk():
        if part.is_multipart():
            continue
        assert part["Content-Transfer-Encoding"] in ("quoted-printable", "base64")
        for line in part.get_payload().splitlines():
            assert len(line) <= 76, f"an encoded line longer than 76 characters: {line[:90]!r}"


# Tests


def test_created_mail_carries_the_lead_context_and_an_invite(stack):
    s = stack()
    user, addr = owner(s)
    lead = s.add_lead(user, name="John Smith", company="TechCorp", phone="+919876543210",
                      reasoning={"intent": "High", "budget": "Approved"}, status_tag="Hot",
                      summary="Wants a demo next week")
    meeting = add_meeting(s, user, lead)
    svc = mailer(s)
    job = publish_job(s, "created", user, meeting, lead_analytics_id=lead["lead"])

    [(raw, msg)] = wait_mails(s, addr)
    assert_lines_short(raw)
    assert msg.get_all("X-Sink-Rcpt-To") == [addr]
    assert msg["From"] == MAIL_FROM
    assert msg["To"].addresses[0].addr_spec == addr and msg["To"].addresses[0].display_name == "Olivia Owner"
    assert msg["Subject"].startswith("Meeting booked: John Smith + TechCorp + Demo, ")
    assert "17:00 UTC+05:30" in msg["Subject"]
    assert msg["Message-ID"] == message_id_for(job)
    assert msg["Date"].datetime.tzinfo is not None
    assert msg["X-Meeting-Action"] == "created"
    assert msg["X-Meeting-Id"] == meeting
    assert msg["X-Lead-Id"] == lead["lead"]
    assert msg["X-Meeting-Conflict"] is None, "a meeting whose calendar was not checked claims no conflict"
    assert msg["Auto-Submitted"] == "auto-generated"

    text, html, cal = parts(msg)
    for body in (text, html):
        assert "Olivia Owner" in body
        assert "John Smith" in body and "TechCorp" in body
        assert "+919876543210" in body and "Hot" in body
        assert "intent: High" in body and "budget: Approved" in body
        assert "Wants a demo next week" in body
        assert f"https://rec.example.com/{lead['call']}.mp3" in body
        assert TRANSCRIPT_URL.replace("{call_id}", lead["call"]) in body
        assert "lead@example.com" in body
        assert "18 September 2099, 17:00\u201317:30 (Asia/Kolkata, UTC+05:30)" in body
        assert "18 September 2099, 11:30\u201312:00 UTC" in body
        assert "https://meet.google.com/abc-defg-hij" in body
        assert "https://www.google.com/calendar/event?eid=" in body
    assert 'href="https://meet.google.com/abc-defg-hij"' in html

    assert cal.get_param("method") == "REQUEST"
    ical, ev, ics = vevent(cal)
    assert str(ical["METHOD"]) == "REQUEST"
    event_id = "lead" + lead["lead"].replace("-", "") + "g0"
    assert str(ev["UID"]) == f"{event_id}@google.com"
    assert int(ev["SEQUENCE"]) == 0
    assert ev.decoded("DTSTART") == START and "DTSTART:20990918T113000Z" in ics
    assert ev.decoded("DTEND") == START.replace(hour=12, minute=0)
    assert str(ev["ATTENDEE"]) == "mailto:lead@example.com"
    assert str(ev["ORGANIZER"]) == f"mailto:{addr}"
    assert str(ev["STATUS"]) == "CONFIRMED"
    assert "DTSTAMP" in ev

    wait_for(lambda: delivery(s, job) == ("sent", 1, None, True), 10, what="delivery recorded as sent")
    sent, sent_at = s.one("SELECT invite_email_sent, invite_email_sent_at IS NOT NULL FROM calendar_meetings"
                          " WHERE id = %s", meeting)
    assert sent and sent_at
    assert metric(svc, "created", "sent") == 1
    assert svc.metrics().get('mailer_send_duration_seconds_count{kind="created"}') == 1
    logs = svc.logs()
    assert addr not in logs, "an address in clear in the logs"
    assert any(line.get("msg") == "mail sent" and line.get("trace") == job for line in svc.log_lines())


def test_rescheduled_cancelled_reminder_and_disconnected_mails(stack):
    s = stack()
    user, addr = owner(s)
    lead = s.add_lead(user)
    old = add_meeting(s, user, lead, status="rescheduled", sequence=0)
    new = add_meeting(s, user, lead, start=START.replace(day=20, hour=4, minute=30), sequence=1, previous=old)
    lead2 = s.add_lead(user, name="Mia Reminder", company="RemindCo")
    due = add_meeting(s, user, lead2, title="Mia Reminder + RemindCo + Demo", attendee_name="Mia Reminder")
    lead3 = s.add_lead(user, name="Carl Cancel", company="CancelCo")
    gone = add_meeting(s, user, lead3, title="Carl Cancel + CancelCo + Demo", status="cancelled", sequence=1,
                       reason="Lead asked to move to next quarter", attendee_name="Carl Cancel")
    s.query("UPDATE users SET google_email = %s, google_disconnected_at = now(),"
            " google_disconnect_reason = 'grant_revoked' WHERE id = %s", "g-" + addr, user)
    stamp = s.one("SELECT EXTRACT(EPOCH FROM google_disconnected_at)::bigint FROM users WHERE id = %s", user)[0]
    svc = mailer(s)

    publish_job(s, "rescheduled", user, new, sequence=1, previous_meeting_id=old)
    publish_job(s, "cancelled", user, gone, sequence=1)
    publish_job(s, "reminder", user, due, sequence=0)
    disc = publish_job(s, "disconnected", user, message_id=f"disconnected:{user}:{stamp}", reason="grant_revoked")

    mails = {m["X-Meeting-Action"]: (raw, m) for raw, m in wait_mails(s, addr, 4)}
    assert set(mails) == {"rescheduled", "cancelled", "reminder", "disconnected"}
    for raw, _ in mails.values():
        assert_lines_short(raw)

    _, m = mails["rescheduled"]
    assert m["Subject"].startswith("Meeting rescheduled: John Smith + TechCorp + Demo, now ")
    assert m["X-Meeting-Id"] == new and m["X-Lead-Id"] == lead["lead"]
    text, html, cal = parts(m)
    for body in (text, html):
        assert "18 September 2099, 17:00\u201317:30 (Asia/Kolkata, UTC+05:30)" in body, "the old time"
        assert "20 September 2099, 10:00\u201310:30 (Asia/Kolkata, UTC+05:30)" in body, "the new time"
        assert "20 September 2099, 04:30\u201305:00 UTC" in body
    ical, ev, _ = vevent(cal)
    assert str(ical["METHOD"]) == "REQUEST" and str(ev["STATUS"]) == "CONFIRMED"
    assert int(ev["SEQUENCE"]) == 1
    assert str(ev["UID"]) == "lead" + lead["lead"].replace("-", "") + "g0@google.com", "the same Google event"
    assert ev.decoded("DTSTART") == START.replace(day=20, hour=4, minute=30)

    _, m = mails["cancelled"]
    assert m["Subject"].startswith("Meeting cancelled: Carl Cancel + CancelCo + Demo, ")
    text, html, cal = parts(m)
    assert "Lead asked to move to next quarter" in text and "Lead asked to move to next quarter" in html
    assert cal.get_param("method") == "CANCEL"
    ical, ev, _ = vevent(cal)
    assert str(ical["METHOD"]) == "CANCEL" and str(ev["STATUS"]) == "CANCELLED"
    assert int(ev["SEQUENCE"]) == 1

    _, m = mails["reminder"]
    assert m["Subject"].startswith("Reminder: Mia Reminder + RemindCo + Demo, ")
    text, html, cal = parts(m)
    assert "Mia Reminder" in text and "RemindCo" in html
    ical, ev, _ = vevent(cal)
    assert str(ical["METHOD"]) == "REQUEST" and ev.decoded("DTSTART") == START

    _, m = mails["disconnected"]
    assert m["Subject"] == "Action needed: your Google Calendar is disconnected"
    assert m["X-Meeting-Id"] is None and m["X-Lead-Id"] is None
    text, html, cal = parts(m)
    assert cal is None, "the disconnected mail has no calendar part"
    assert FRONTEND_URL in text and f'href="{FRONTEND_URL}"' in html
    assert "revoked" in text and "g-" + addr in text

    for kind, mid in (("rescheduled", new), ("cancelled", gone), ("reminder", due)):
        wait_for(lambda: (delivery(s, f"meeting:{mid}:{kind}:{0 if kind == 'reminder' else 1}") or [None])[0]
                 == "sent", 10, what=f"{kind} recorded")
    wait_for(lambda: (delivery(s, disc) or [None])[0] == "sent", 10, what="disconnected recorded")
    flags = {str(r[0]): r[1:] for r in s.query("SELECT id, invite_email_sent, reminder_email_sent, status"
                                                " FROM calendar_meetings WHERE user_id = %s", user)}
    assert flags[new] == (True, False, "scheduled"), "the new meeting's invite is marked"
    assert flags[old] == (False, False, "rescheduled"), "the replaced meeting is untouched"
    assert flags[due] == (False, True, "scheduled"), "the reminder is marked"
    assert flags[gone] == (False, False, "cancelled")
    for kind in ("rescheduled", "cancelled", "reminder", "disconnected"):
        assert metric(svc, kind, "sent") == 1


def test_hostile_and_non_ascii_lead_text(stack):
    s = stack()
    user, addr = owner(s, name="Owner \"Boss\" <b>")
    lead = s.add_lead(user, name=HOSTILE, company="<i>Evil</i> & Co", summary="<img src=x onerror=alert(2)>",
                      reasoning={"why": "<script>x</script>", "line\nbreak": "a\r\nBcc: b@example.com"})
    hostile = add_meeting(s, user, lead, title=HOSTILE + " + Demo", attendee_name=HOSTILE)
    lead2 = s.add_lead(user, name="Zoë Ångström", company="Société Générale 日本")
    title = "Zoë Ångström + Société Générale 日本 + Demo " + "ü" * 40
    unicode_meeting = add_meeting(s, user, lead2, title=title, attendee_name="Zoë Ångström")
    mailer(s)
    publish_job(s, "created", user, hostile)
    publish_job(s, "created", user, unicode_meeting)

    mails = {m["X-Meeting-Id"]: (raw, m) for raw, m in wait_mails(s, addr, 2)}
    raw, m = mails[hostile]
    head = raw.partition(b"\r\n\r\n")[0]
    assert m["Bcc"] is None and b"\r\nBcc:" not in head and not head.startswith(b"Bcc:"), "no Bcc header"
    assert m.get_all("X-Sink-Rcpt-To") == [addr], "no extra recipient"
    assert m["Subject"] == "Meeting booked: Eve Bcc: victim@example.com <script>alert(1)</script> + Demo, " \
        + m["Subject"].rsplit(", ", 1)[1]
    assert m["To"].addresses[0].addr_spec == addr and len(m["To"].addresses) == 1
    assert m["To"].addresses[0].display_name == 'Owner "Boss" <b>'
    text, html, cal = parts(m)
    assert "<script>" not in html and "<img" not in html and "<i>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "&lt;i&gt;Evil&lt;/i&gt; &amp; Co" in html
    assert "Eve\nBcc: victim@example.com <script>alert(1)</script>" in text, "plain text keeps the text"
    _, ev, ics = vevent(cal)
    assert "\r\nBcc:" not in ics, "no line of the calendar part starts with the injected text"
    assert str(ev["SUMMARY"]) == "Eve Bcc: victim@example.com <script>alert(1)</script> + Demo"

    raw, m = mails[unicode_meeting]
    assert_lines_short(raw)
    words = raw_header(raw, "Subject").split(" ")
    assert all(w.startswith("=?UTF-8?B?") and w.endswith("?=") and len(w) <= 75 for w in words), words
    assert len(words) > 1, "a long subject is split into several encoded words"
    assert m["Subject"].startswith("Meeting booked: " + title + ", ")
    text, html, _ = parts(m)
    assert "Zoë Ångström" in text and "Société Générale 日本" in html


def test_conflict_mail_shows_the_requested_time_and_the_busy_times_in_the_owners_zone(stack):
    s = stack()
    user, addr = owner(s)
    s.query("UPDATE users SET google_calendar_timezone = 'America/New_York' WHERE id = %s", user)
    lead = s.add_lead(user, name="John Smith", company="TechCorp", phone="+919876543210", status_tag="Hot",
                      contact_email="john@techcorp.example", summary="Wants a demo next week")
    # Written at the owner's offsets as the scheduler does, but read as instants: one span given in UTC.
    add_conflict(s, user, lead, [{"start": "2099-09-18T07:30:00-04:00", "end": "2099-09-18T07:45:00-04:00"},
                                 {"start": "2099-09-18T11:50:00Z", "end": "2099-09-18T12:00:00Z"}])
    # An owner whose calendar zone is unknown: DEFAULT_TIMEZONE (Asia/Kolkata in the tests), as the scheduler used.
    other, other_addr = owner(s, local="zoneless")
    hostile = s.add_lead(other, name=HOSTILE, company="<i>Evil</i> & Co", email="e@x.com\r\nBcc: v@example.com")
    add_conflict(s, other, hostile, [{"start": "2099-09-18T17:00:00+05:30", "end": "2099-09-18T17:30:00+05:30"}])
    svc = mailer(s)
    job = publish_conflict(s, user, lead["lead"])
    publish_conflict(s, other, hostile["lead"])

    [(raw, msg)] = wait_mails(s, addr)
    assert_lines_short(raw)
    assert msg.get_all("X-Sink-Rcpt-To") == [addr]
    assert msg["Subject"] == "Not booked: John Smith asked for Fri 18 Sep 2099 07:30 UTC-04:00, when you are busy"
    assert msg["X-Meeting-Action"] == "conflict"
    assert msg["X-Lead-Id"] == lead["lead"]
    assert msg["X-Meeting-Id"] is None and msg["X-Meeting-Conflict"] is None
    assert msg["Message-ID"] == message_id_for(job)
    text, html, cal = parts(msg)
    assert cal is None, "no calendar part: there is no meeting"
    for body in (text, html):
        assert "Olivia Owner" in body
        assert "did not book it" in body
        assert "18 September 2099, 07:30\u201308:00 (America/New_York, UTC-04:00)" in body, "the requested time"
        assert "18 September 2099, 11:30\u201312:00 UTC" in body
        assert "18 September 2099, 07:30\u201307:45 (America/New_York, UTC-04:00)" in body, "the first busy span"
        assert "18 September 2099, 07:50\u201308:00 (America/New_York, UTC-04:00)" in body, "the span given in UTC"
        assert "john@techcorp.example" in body, "the contact's address before the extracted one"
        assert "Open the lead in the app" in body and "book this time anyway" in body
        # The lead's context, as in the other mails.
        assert "TechCorp" in body and "+919876543210" in body and "Hot" in body
        assert "intent: High" in body and "Wants a demo next week" in body
        assert f"https://rec.example.com/{lead['call']}.mp3" in body
        assert TRANSCRIPT_URL.replace("{call_id}", lead["call"]) in body
        assert "Lead " + lead["lead"] in body
    assert "the calendar is busy then" not in text, "the spans, not the scheduler's sentence"
    assert 'href="mailto:john@techcorp.example"' in html

    [(raw, m)] = wait_mails(s, other_addr)
    head = raw.partition(b"\r\n\r\n")[0]
    assert m["Bcc"] is None and b"\r\nBcc:" not in head, "no Bcc header"
    assert m.get_all("X-Sink-Rcpt-To") == [other_addr], "no extra recipient"
    assert m["Subject"] == "Not booked: Eve Bcc: victim@example.com <script>alert(1)</script> asked for" \
        " Fri 18 Sep 2099 17:00 UTC+05:30, when you are busy"
    text, html, cal = parts(m)
    assert cal is None
    assert "18 September 2099, 17:00\u201317:30 (Asia/Kolkata, UTC+05:30)" in text, "DEFAULT_TIMEZONE"
    assert "<script>" not in html and "<i>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;i&gt;Evil&lt;/i&gt; &amp; Co" in html
    assert "v@example.com" not in text, "an address with a line break is not shown"

    wait_for(lambda: delivery(s, job) == ("sent", 1, None, True), 10, what="delivery recorded as sent")
    publish_conflict(s, user, lead["lead"])
    wait_for(lambda: metric(svc, "conflict", "duplicate") == 1, 10, what="the second copy dropped")
    assert len(raw_mails(s, addr)) == 1, "one mail for two copies of the job"
    assert metric(svc, "conflict", "sent") == 2


def test_conflict_mail_is_not_sent_once_the_lead_is_no_longer_a_conflict(stack):
    s = stack()
    user, addr = owner(s)
    lead = s.add_lead(user)
    # Someone booked the lead between the scheduler's skip and this job.
    add_conflict(s, user, lead, [{"start": "2099-09-18T17:00:00+05:30", "end": "2099-09-18T17:30:00+05:30"}],
                 outcome="scheduled", reason=None)
    svc = mailer(s)
    job = publish_conflict(s, user, lead["lead"])
    missing = str(uuid.uuid4())
    unknown = publish_conflict(s, user, missing)

    wait_for(lambda: metric(svc, "conflict", "skipped") == 1, 10, what="the job dropped")
    wait_for(lambda: (delivery(s, job) or [None])[0] == "failed", 10, what="the drop recorded")
    status, attempts, last_error, sent = delivery(s, job)
    assert (status, sent) == ("failed", False) and "the lead's outcome is scheduled" in last_error
    assert any(line.get("msg", "").startswith("conflict mail dropped") and line.get("trace") == job
               for line in svc.log_lines())
    dead = wait_for(lambda: s.take("mailer.dead"), 15, what="the unknown lead's dead letter")
    assert [(d["properties"]["message_id"], d["properties"]["headers"]["x-dead-reason"]) for d in dead] \
        == [(unknown, "unknown_lead")]
    assert raw_mails(s, addr) == []

    # Skipped for a conflict again (its booking cancelled, the lead redelivered): the same job id mails.
    s.query("UPDATE calendar_booking_outcomes SET outcome = 'skipped', reason = 'conflict'"
            " WHERE lead_analytics_id = %s", lead["lead"])
    publish_conflict(s, user, lead["lead"])
    [(_, m)] = wait_mails(s, addr)
    assert m["X-Meeting-Action"] == "conflict"
    wait_for(lambda: (delivery(s, job) or [None])[0] == "sent", 10, what="sent")


def test_a_meeting_booked_over_busy_time_says_so(stack):
    s = stack()
    user, addr = owner(s)
    busy_lead = s.add_lead(user, name="Bo Busy")
    busy = add_meeting(s, user, busy_lead, title="Bo Busy + Demo", attendee_name="Bo Busy")
    s.query("UPDATE calendar_meetings SET has_conflict = TRUE, conflict_detail = %s WHERE id = %s",
            "2099-09-18T17:15:00+05:30 to 2099-09-18T17:30:00+05:30", busy)
    unchecked_lead = s.add_lead(user, name="Una Unchecked")
    unchecked = add_meeting(s, user, unchecked_lead, title="Una Unchecked + Demo", attendee_name="Una Unchecked")
    s.query("UPDATE calendar_meetings SET has_conflict = NULL, conflict_detail = %s WHERE id = %s",
            "Google could not report the calendar's busy time (internalError)", unchecked)
    free_lead = s.add_lead(user, name="Fay Free")
    free = add_meeting(s, user, free_lead, title="Fay Free + Demo", attendee_name="Fay Free")
    s.query("UPDATE calendar_meetings SET has_conflict = FALSE WHERE id = %s", free)
    mailer(s)
    for meeting in (busy, unchecked, free):
        publish_job(s, "created", user, meeting)

    mails = {m["X-Meeting-Id"]: m for _, m in wait_mails(s, addr, 3)}
    spans = "2099-09-18T17:15:00+05:30 to 2099-09-18T17:30:00+05:30"
    m = mails[busy]
    assert m["X-Meeting-Conflict"] == "yes"
    text, html, cal = parts(m)
    assert "This meeting overlaps other events in your calendar: " + spans in text
    assert "This meeting overlaps other events in your calendar</strong>: " + spans in html
    assert cal is not None, "still the invite"

    m = mails[unchecked]
    assert m["X-Meeting-Conflict"] is None
    text, html, _ = parts(m)
    note = "We could not check your calendar for conflicts: Google could not report the calendar"
    assert note in text and note in html
    assert "overlaps" not in text

    m = mails[free]
    assert m["X-Meeting-Conflict"] is None
    text, html, _ = parts(m)
    assert "overlaps" not in text and "could not check" not in text


def test_declined_mail_names_the_lead_and_is_dropped_once_they_answer_again(stack):
    s = stack()
    user, addr = owner(s)
    lead = s.add_lead(user, name="John Smith", company="TechCorp")
    meeting = add_meeting(s, user, lead)
    # As the sync leaves it (docs/sync.md): the lead's first answer was a decline.
    s.query("UPDATE calendar_meetings SET attendee_response_status = 'declined', attendee_response_changes = 1"
            " WHERE id = %s", meeting)
    back = add_meeting(s, user, s.add_lead(user, name="Ann Again"), title="Ann Again + Demo",
                       attendee_name="Ann Again")
    # Declined, then accepted again before the mail went out.
    s.query("UPDATE calendar_meetings SET attendee_response_status = 'accepted', attendee_response_changes = 2"
            " WHERE id = %s", back)
    gone = add_meeting(s, user, s.add_lead(user, name="Cy Cancelled"), title="Cy Cancelled + Demo",
                       status="cancelled", reason="Lead asked to cancel", attendee_name="Cy Cancelled")
    s.query("UPDATE calendar_meetings SET attendee_response_status = 'declined', attendee_response_changes = 1"
            " WHERE id = %s", gone)
    svc = mailer(s)
    job = publish_job(s, "declined", user, meeting, sequence=1)
    assert job == f"meeting:{meeting}:declined:1"
    dropped = publish_job(s, "declined", user, back, sequence=1)
    moot = publish_job(s, "declined", user, gone, sequence=1)

    [(raw, m)] = wait_mails(s, addr)
    assert_lines_short(raw)
    assert m["X-Meeting-Action"] == "declined"
    assert m["X-Meeting-Id"] == meeting and m["X-Lead-Id"] == lead["lead"]
    assert m["Message-ID"] == message_id_for(job)
    assert m["Subject"] == "Invitation declined: John Smith + TechCorp + Demo, Fri 18 Sep 2099 17:00 UTC+05:30"
    text, html, cal = parts(m)
    assert cal is None, "a decline changes nothing in the meeting: no invite"
    assert "John Smith <lead@example.com> declined the invitation" in text
    assert '<strong>John Smith</strong> (<a href="mailto:lead@example.com">' in html
    for body in (text, html):
        assert "18 September 2099, 17:00\u201317:30 (Asia/Kolkata, UTC+05:30)" in body, "as the other mails show it"
        assert "The meeting stays in your Google Calendar" in body
        assert "reschedule it" in body and "cancel it" in body
        assert "https://www.google.com/calendar/event?eid=" in body
        assert "TechCorp" in body, "the lead's context"
    wait_for(lambda: delivery(s, job) == ("sent", 1, None, True), 10, what="sent")

    wait_for(lambda: metric(svc, "declined", "skipped") == 2, 10, what="two jobs dropped")
    for mid, why in ((dropped, "the lead's answer 2 is accepted"), (moot, "the meeting is cancelled")):
        status, _, last_error, sent = delivery(s, mid)
        assert (status, sent) == ("failed", False) and why in last_error, last_error
    assert any(line.get("msg", "").startswith("declined mail dropped") and line.get("trace") == dropped
               for line in svc.log_lines())

    # The same decline published twice is one mail; the lead's next decline is a mail of its own.
    publish_job(s, "declined", user, meeting, sequence=1)
    wait_for(lambda: metric(svc, "declined", "duplicate") == 1, 10, what="the second copy dropped")
    s.query("UPDATE calendar_meetings SET attendee_response_status = 'declined', attendee_response_changes = 3"
            " WHERE id = %s", back)
    again = publish_job(s, "declined", user, back, sequence=3)
    mails = wait_mails(s, addr, 2)
    assert sorted(m["X-Meeting-Id"] for _, m in mails) == sorted([meeting, back])
    wait_for(lambda: (delivery(s, again) or [None])[0] == "sent", 10, what="the second decline sent")
    # The first decline's job once more (a replay from the dead letters, say): no longer the lead's latest answer.
    publish_job(s, "declined", user, back, sequence=1)
    wait_for(lambda: metric(svc, "declined", "skipped") == 3, 10, what="the stale decline dropped")
    assert "the lead's answer 3 is declined; this job reports answer 1" in delivery(s, dropped)[2]
    assert len(raw_mails(s, addr)) == 2
    assert metric(svc, "declined", "sent") == 2
    flags = s.one("SELECT invite_email_sent, reminder_email_sent, status, attendee_response_status"
                  " FROM calendar_meetings WHERE id = %s", meeting)
    assert flags == (False, False, "scheduled", "declined"), "a decline mail changes nothing in the meeting"


def test_changes_made_in_google_calendar_say_so_without_an_invite(stack):
    s = stack()
    user, addr = owner(s)
    lead = s.add_lead(user, name="Gia Google", company="MoveCo")
    # The rows a move in Google leaves (docs/sync.md): the old one ended, a linked new one, both change_source google.
    old = add_meeting(s, user, lead, status="rescheduled", title="Gia Google + MoveCo + Demo", attendee_name="Gia Google")
    new = add_meeting(s, user, lead, start=START.replace(day=20, hour=4, minute=30), sequence=1, previous=old,
                      title="Gia Google + MoveCo + Demo", attendee_name="Gia Google")
    # Deleted in Google.
    lead2 = s.add_lead(user, name="Dan Deleted", company="GoneCo")
    deleted = add_meeting(s, user, lead2, title="Dan Deleted + GoneCo + Demo", status="cancelled", sequence=1,
                          reason="Deleted in Google Calendar", attendee_name="Dan Deleted")
    s.query("UPDATE calendar_meetings SET change_source = 'google' WHERE id IN (%s, %s, %s)", old, new, deleted)
    mailer(s)
    publish_job(s, "rescheduled", user, new, sequence=1, previous_meeting_id=old)
    publish_job(s, "cancelled", user, deleted, sequence=1)

    mails = {m["X-Meeting-Action"]: (raw, m) for raw, m in wait_mails(s, addr, 2)}
    raw, m = mails["rescheduled"]
    assert_lines_short(raw)
    assert m["X-Meeting-Id"] == new
    text, html, cal = parts(m)
    assert cal is None, "the owner's calendar holds the move: no invite that could copy it"
    for body in (text, html):
        assert "You moved this meeting in Google Calendar" in body
        assert "moved to a new time" not in body, "not the platform's wording"
        assert "18 September 2099, 17:00\u201317:30 (Asia/Kolkata, UTC+05:30)" in body, "the old time"
        assert "20 September 2099, 10:00\u201310:30 (Asia/Kolkata, UTC+05:30)" in body, "the new time"

    raw, m = mails["cancelled"]
    assert_lines_short(raw)
    assert m["X-Meeting-Id"] == deleted
    text, html, cal = parts(m)
    assert cal is None, "the owner's calendar holds the delete: no CANCEL"
    for body in (text, html):
        assert "This meeting was deleted in Google Calendar" in body
        assert "removed from your Google Calendar" not in body, "not the platform's wording"
        assert "Deleted in Google Calendar" in body and "Dan Deleted" in body


def test_a_redelivered_job_is_mailed_once(stack):
    s = stack()
    user, addr = owner(s)
    lead = s.add_lead(user)
    meeting = add_meeting(s, user, lead)
    lead2 = s.add_lead(user, name="Twin Copy")
    racing = add_meeting(s, user, lead2, title="Twin Copy + Demo")
    svc = mailer(s)

    job = publish_job(s, "created", user, meeting)
    wait_mails(s, addr)
    wait_for(lambda: (delivery(s, job) or [None])[0] == "sent", 10, what="sent")
    publish_job(s, "created", user, meeting)
    publish_job(s, "created", user, meeting)
    wait_for(lambda: metric(svc, "created", "duplicate") == 2, 10, what="two duplicates dropped")
    assert delivery(s, job)[:2] == ("sent", 1)

    # Two copies at once: the second finds the first's claim and waits in a retry tier, then drops.
    twin = publish_job(s, "created", user, racing)
    publish_job(s, "created", user, racing)
    wait_for(lambda: metric(svc, "created", "duplicate") == 3, 30, what="the racing copy dropped")
    assert delivery(s, twin)[:2] == ("sent", 1)
    assert len(raw_mails(s, addr)) == 2, "one mail per job"
    assert metric(svc, "created", "sent") == 2


def test_a_lease_left_by_a_crashed_copy_is_waited_out_not_overshot(stack):
    s = stack()
    user, addr = owner(s)
    lead = s.add_lead(user)
    meeting = add_meeting(s, user, lead)
    job = f"meeting:{meeting}:created:0"
    # A mailer claimed the job 108 s ago and died: its 120 s lease runs out in 12 s.
    s.query("INSERT INTO mail_deliveries (message_id, kind, meeting_id, user_id, status, attempts, updated_at)"
            " VALUES (%s, 'created', %s, %s, 'sending', 1, now() - interval '108 seconds')", job, meeting, user)
    svc = mailer(s)
    # This copy has been through three tiers already; the next (120 s) would overshoot the lease by
    # nearly two minutes, so it takes the 30 s tier, the first to reach past the lease.
    t0 = time.time()
    assert s.publish("mail", "mail.meeting.created", {"kind": "created", "user_id": user, "meeting_id": meeting,
                                                      "sequence": 0}, message_id=job, headers={"x-attempt": 3})
    wait_for(lambda: metric(svc, "created", "retried") == 1, 10, what="the copy sent to a tier")
    assert svc.metrics().get('retries_total{queue="mailer.retry.2"}') == 1
    wait_mails(s, addr, 1, timeout=60)
    assert time.time() - t0 >= 12, "not before the lease ran out"
    assert delivery(s, job)[:2] == ("sent", 2)


def test_a_temporary_failure_is_retried_through_a_tier(stack):
    s = stack()
    user, addr = owner(s, local="tempfail1")
    lead = s.add_lead(user)
    meeting = add_meeting(s, user, lead)
    svc = mailer(s)
    job = publish_job(s, "created", user, meeting)

    wait_for(lambda: metric(svc, "created", "retried") == 1, 10, what="the 451 sent to a retry tier")
    status, attempts, last_error, _ = delivery(s, job)
    assert (status, attempts) == ("failed", 1) and "451" in last_error
    [(raw, m)] = wait_mails(s, addr, 1, timeout=30)
    assert m["X-Meeting-Id"] == meeting
    wait_for(lambda: delivery(s, job) == ("sent", 2, None, True), 10, what="sent on the second attempt")
    assert s.one("SELECT invite_email_sent FROM calendar_meetings WHERE id = %s", meeting)[0]
    assert metric(svc, "created", "sent") == 1


def test_a_temporary_failure_on_the_last_tier_is_dead_lettered(stack):
    s = stack()
    user, addr = owner(s, local="tempfail1")
    lead = s.add_lead(user)
    meeting = add_meeting(s, user, lead)
    svc = mailer(s)
    job = f"meeting:{meeting}:created:0"
    # As if it had been through all six tiers already.
    assert s.publish("mail", "mail.meeting.created", {"kind": "created", "user_id": user, "meeting_id": meeting,
                                                      "sequence": 0}, message_id=job, headers={"x-attempt": 6})

    dead = wait_for(lambda: s.take("mailer.dead"), 15, what="a dead letter")
    headers = dead[0]["properties"]["headers"]
    assert headers["x-dead-reason"] == "retries_exhausted"
    assert "gave up after 7 attempts" in headers["x-dead-detail"] and "451" in headers["x-dead-detail"]
    status, _, last_error, _ = delivery(s, job)
    assert status == "failed" and last_error.startswith("retries_exhausted: ")
    assert metric(svc, "created", "failed") == 1 and metric(svc, "created", "retried") == 0


def test_a_rejected_mail_is_dead_lettered(stack):
    s = stack()
    user, addr = owner(s, local="reject")
    lead = s.add_lead(user)
    meeting = add_meeting(s, user, lead)
    before = s.one("SELECT updated_at FROM calendar_meetings WHERE id = %s", meeting)[0]
    svc = mailer(s)
    job = publish_job(s, "created", user, meeting)

    dead = wait_for(lambda: s.take("mailer.dead"), 15, what="a dead letter")
    assert len(dead) == 1
    headers = dead[0]["properties"]["headers"]
    assert headers["x-dead-reason"] == "smtp_rejected"
    assert "550" in headers["x-dead-detail"]
    assert dead[0]["properties"]["message_id"] == job
    status, attempts, last_error, sent = delivery(s, job)
    assert (status, attempts, sent) == ("failed", 1, False) and "550" in last_error
    assert raw_mails(s, addr) == []
    assert s.one("SELECT invite_email_sent, updated_at FROM calendar_meetings WHERE id = %s", meeting) \
        == (False, before), "a failed mail never touches the meeting"
    assert metric(svc, "created", "failed") == 1


def test_unreadable_and_unknown_jobs_are_dead_lettered_and_the_worker_goes_on(stack):
    s = stack()
    user, addr = owner(s)
    lead = s.add_lead(user)
    meeting = add_meeting(s, user, lead)
    svc = mailer(s)

    assert s.publish("mail", "mail.meeting.created", "{not json", message_id="garbage-1")
    assert s.publish("mail", "mail.meeting.created", {"kind": "created", "user_id": user}, message_id="garbage-2")
    assert s.publish("mail", "mail.meeting.created", {"kind": "created", "user_id": user, "meeting_id": meeting})
    missing = str(uuid.uuid4())
    unknown = publish_job(s, "created", user, missing)
    stranger, _ = owner(s, local="stranger")
    foreign = publish_job(s, "created", stranger, meeting, message_id=f"meeting:{meeting}:created:9")

    dead = wait_for(lambda: (lambda d: d if len(d) >= 5 else None)(s.peek("mailer.dead")), 15, what="5 dead letters")
    reasons = sorted((m["properties"].get("message_id", ""), m["properties"]["headers"]["x-dead-reason"]) for m in dead)
    assert reasons == sorted([("garbage-1", "malformed"), ("garbage-2", "malformed"), ("", "malformed"),
                              (unknown, "unknown_meeting"), (foreign, "unknown_meeting")])
    assert delivery(s, unknown)[0] == "failed"
    assert delivery(s, foreign)[0] == "failed", "another user's meeting is not theirs to mail"

    job = publish_job(s, "created", user, meeting)
    wait_mails(s, addr)
    wait_for(lambda: (delivery(s, job) or [None])[0] == "sent", 10, what="a good job after the bad ones")
    assert svc.proc.poll() is None
    assert metric(svc, "unknown", "failed") == 2, "the jobs whose kind could not be read"
    assert metric(svc, "created", "failed") == 3


def test_smtp_auth_and_required_tls(stack, tmp_path):
    s = stack()
    user, addr = owner(s)
    lead = s.add_lead(user)
    meeting = add_meeting(s, user, lead)
    port = free_port()
    maildir = tmp_path / "auth-maildir"
    sink = subprocess.Popen(["/usr/bin/python3", SINK, "--port", str(port), "--maildir", str(maildir),
                             "--auth", "mailer:s3cret-passw0rd"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _connects(port), 10, what="the private SMTP sink")
        svc = mailer(s, SMTP_URL=f"smtp://127.0.0.1:{port}", SMTP_USER="mailer", SMTP_PASSWORD="s3cret-passw0rd")
        job = publish_job(s, "created", user, meeting)
        wait_for(lambda: (delivery(s, job) or [None])[0] == "sent", 15, what="sent with AUTH")
        box = mailbox.Maildir(str(maildir), create=False)
        assert len(box.keys()) == 1
        assert "s3cret-passw0rd" not in svc.logs()
        assert svc.stop() == 0

        # The default (SMTP_REQUIRE_TLS unset: TLS required) against a server without STARTTLS: nothing goes
        # out in clear text, neither the mail nor the password; the job fails and is retried through a
        # tier as any SMTP failure is.
        plain = mailer(s, SMTP_REQUIRE_TLS=None, SMTP_URL=f"smtp://127.0.0.1:{port}", SMTP_USER="mailer",
                       SMTP_PASSWORD="s3cret-passw0rd")
        assert "SMTP_REQUIRE_TLS" not in plain.env
        meeting2 = add_meeting(s, user, s.add_lead(user, name="Tia Tls"), title="Tia Tls + Demo")
        job2 = publish_job(s, "created", user, meeting2)
        wait_for(lambda: metric(plain, "created", "retried") == 1, 10, what="the refusal sent to a retry tier")
        status, attempts, last_error, sent = delivery(s, job2)
        assert (status, attempts, sent) == ("failed", 1, False), (status, attempts, sent)
        assert "TLS" in last_error or "SSL" in last_error, last_error
        assert len(box.keys()) == 1, "nothing more arrived in clear text"
        assert [m for _, m in raw_mails(s, addr) if m["X-Meeting-Id"] == meeting2] == []
        assert not s.one("SELECT invite_email_sent FROM calendar_meetings WHERE id = %s", meeting2)[0]
        assert "s3cret-passw0rd" not in plain.logs()
        assert plain.stop() == 0

        # SMTP_REQUIRE_TLS=off, as only a deployment with a trusted plain relay says it: the retry goes out.
        mailer(s, SMTP_REQUIRE_TLS="off", SMTP_URL=f"smtp://127.0.0.1:{port}", SMTP_USER="mailer",
               SMTP_PASSWORD="s3cret-passw0rd")
        wait_for(lambda: (delivery(s, job2) or [None])[0] == "sent", 30, what="sent from its retry tier")
        assert len(box.keys()) == 2
    finally:
        sink.terminate()
        sink.wait(10)


def _connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
        return True
    except OSError:
        return False


def test_bursts_reuse_smtp_connections_and_handles(stack):
    """Two bursts of 12 mails with a quiet spell between open at most one SMTP connection per mail in flight
    (PREFETCH) in all: curl keeps them in its cache across the spell (a burst may still open one more when it
    reaches more mails at once than the first did). Each mail still carries its own recipient and headers
    though the curl handles are reused from mail to mail."""
    s = stack()
    owners = [owner(s, local=f"burst{i}") for i in range(3)]
    svc = mailer(s, PREFETCH="4")
    jobs = {}
    for rnd in range(2):
        for i in range(12):
            user, addr = owners[i % 3]
            meeting = add_meeting(s, user, None, start=START + timedelta(days=rnd * 30 + i))
            jobs[meeting] = (publish_job(s, "created", user, meeting), addr)
        wait_for(lambda: all((delivery(s, j) or [None])[0] == "sent" for j, _ in jobs.values()), 60,
                 what=f"burst {rnd + 1} sent")
        connections = svc.metrics().get("mailer_smtp_connections_total", 0)
        assert 1 <= connections <= 4, f"after burst {rnd + 1}: {connections} connections for 4 mails in flight"
        if rnd == 0:
            time.sleep(2)
    for user, addr in owners:
        mails = wait_mails(s, addr, count=8)
        assert len(mails) == 8
        for raw, msg in mails:
            meeting = msg["X-Meeting-Id"]
            assert jobs[meeting][1] == addr and msg.get_all("X-Sink-Rcpt-To") == [addr]
            assert msg["To"].addresses[0].addr_spec == addr
            assert len(msg.get_all("Subject")) == 1 and len(msg.get_all("X-Meeting-Id")) == 1
