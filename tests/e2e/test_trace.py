"""A lead can be followed through the logs: the webhook's message_id is the
trace id that the scheduler logs while it books the lead, puts on the mail job
(header x-trace-id), and the mailer logs while it sends the mail. Every log
line is one JSON object (docs/operations.md, "Following a lead").
"""

import uuid

import pytest

from harness import wait_for


def lines_with(svc, value):
    """The service's JSON log lines in which some field has exactly this value."""
    return [line for line in svc.log_lines() if value in [v for v in line.values() if isinstance(v, str)]]


@pytest.fixture
def traced(stack):
    """A lead published with a known message_id, booked and mailed: (stack, scheduler, mailer, trace id)."""
    s = stack()
    s.start_standin()
    user = s.add_user()
    s.connect_calendar(user, f"g-{user[:8]}@example.com")
    owner = s.one("SELECT email FROM users WHERE id = %s", user)[0]
    lead = s.add_lead(user)
    scheduler = s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    mailer = s.service("mailer-worker")
    trace = f"webhook-{uuid.uuid4()}"
    assert s.publish("leads", "lead.analyzed", {"lead_analytics_id": lead["lead"], "user_id": user},
                     message_id=trace)
    wait_for(lambda: s.mails(owner), 30, what="the owner's mail")
    wait_for(lambda: s.one("SELECT count(*) FROM mail_deliveries WHERE status = 'sent'")[0] == 1, 10,
             what="the mail recorded as sent")
    return s, scheduler, mailer, trace


def test_every_log_line_is_one_json_object(traced):
    _, scheduler, mailer, _ = traced
    for svc in (scheduler, mailer):
        lines = [line for line in svc.logs().splitlines() if line.strip()]
        assert lines and len(svc.log_lines()) == len(lines), f"{svc.name} wrote a line that is not JSON"
        for line in svc.log_lines():
            assert {"ts", "level", "svc", "msg"} <= set(line), line


def test_the_scheduler_logs_the_webhook_message_id(traced):
    s, scheduler, _, trace = traced
    lines = lines_with(scheduler, trace)
    assert any(line["msg"] == "meeting created" and line.get("trace") == trace for line in lines), lines
    # And hands it on to the mailer with the job.
    meta = s.one("SELECT meeting_metadata FROM calendar_meetings")[0]
    assert meta["message_id"] == trace


def test_the_mailer_logs_the_same_trace_id(traced):
    _, _, mailer, trace = traced
    lines = lines_with(mailer, trace)
    assert any(line["msg"] == "mail sent" for line in lines), \
        f"no mailer line carries the trace id {trace}: {mailer.log_lines()}"
