"""The runbook's procedure for changing SCHEDULE_DELAY_MS (docs/operations.md),
step by step through RabbitMQ's management API as the runbook gives it, on the
real services: a scheduler started with another delay refuses to start (exit
78, naming the queue), and the switch loses no lead published meanwhile and
books none twice.
"""

import time

from harness import wait_for

HOLD = "scheduler.delay.hold"


def meetings(s, lead):
    return s.query("SELECT status FROM calendar_meetings WHERE lead_analytics_id = %s", lead)


def test_changing_schedule_delay_by_the_runbook(stack):
    s = stack()
    s.start_standin()
    user = s.add_user()
    s.connect_calendar(user, f"g-{user[:8]}@example.com")
    old = s.service("scheduler-worker", SCHEDULE_DELAY_MS="3000")

    # A scheduler with the new delay and the old queue in place refuses to start, naming the queue.
    new = s.service("scheduler-worker", start=False, SCHEDULE_DELAY_MS="1000")
    new.start(wait_ready=False)
    assert new.proc.wait(30) == 78
    refusal = [line for line in new.log_lines() if line["level"] == "error"]
    assert any(line.get("queue") == "scheduler.delay" and "docs/operations.md" in line["msg"] for line in refusal)

    before = s.add_lead(user)
    s.publish_lead(before["lead"], user)

    # 1. A holding queue takes new leads during the switch and gives them back to `leads` after its TTL.
    r = s._rabbit("PUT", f"/queues/{s.vhost}/{HOLD}", json={"durable": True, "arguments": {
        "x-queue-type": "quorum", "x-message-ttl": 5000, "x-dead-letter-exchange": "leads",
        "x-dead-letter-routing-key": "lead.analyzed", "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish"}})
    assert r.status_code in (201, 204), r.text
    r = s._rabbit("POST", f"/bindings/{s.vhost}/e/leads/q/{HOLD}", json={"routing_key": "lead.analyzed"})
    assert r.status_code == 201, r.text
    # 2. The delay queue takes nothing new, and empties into scheduler.leads within the old delay.
    r = s._rabbit("DELETE", f"/bindings/{s.vhost}/e/leads/q/scheduler.delay/lead.analyzed")
    assert r.status_code == 204, r.text
    during = s.add_lead(user)
    s.publish_lead(during["lead"], user)
    wait_for(lambda: s.depth("scheduler.delay") == 0, 20, what="an empty scheduler.delay")
    wait_for(lambda: meetings(s, before["lead"]), 20, what="the lead that was waiting booked")
    # 3. Stop every scheduler, delete the delay queue (quorum queues have no if-empty: look first), start
    #    them with the new delay.
    assert old.stop() == 0
    assert s.depth("scheduler.delay") == 0
    r = s._rabbit("DELETE", f"/queues/{s.vhost}/scheduler.delay")
    assert r.status_code == 204, r.text
    s.service("scheduler-worker", SCHEDULE_DELAY_MS="1000")
    q = s.queue("scheduler.delay")
    assert q["arguments"]["x-message-ttl"] == 1000
    # 4. Unbind the holding queue; what it holds comes back through the new delay queue.
    r = s._rabbit("DELETE", f"/bindings/{s.vhost}/e/leads/q/{HOLD}/lead.analyzed")
    assert r.status_code == 204, r.text
    wait_for(lambda: meetings(s, during["lead"]), 30, what="the lead published during the switch booked")
    # 5. Delete the empty holding queue.
    wait_for(lambda: s.depth(HOLD) == 0, 20, what="an empty holding queue")
    r = s._rabbit("DELETE", f"/queues/{s.vhost}/{HOLD}")
    assert r.status_code == 204, r.text

    after = s.add_lead(user)
    start = time.time()
    s.publish_lead(after["lead"], user)
    wait_for(lambda: meetings(s, after["lead"]), 20, what="a lead after the switch booked")
    assert time.time() - start >= 1.0
    for lead in (before, during, after):
        assert meetings(s, lead["lead"]) == [("scheduled",)]
