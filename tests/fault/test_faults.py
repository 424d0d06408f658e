"""Fault suite (issue 6): 1,000 leads for several users through the whole
stack while services are SIGKILLed at random points and restarted, RabbitMQ
is killed and restarted mid-run, PostgreSQL is stopped for 20 seconds, and
the Google stand-in fails 20% of calls with 500/503/429 and adds latency
spikes. Afterwards every lead that should have a meeting has exactly one
event at Google and one active row, every meeting has its owner's mail
exactly once (or a dead letter with the reason), and the dead-letter queues
hold only what the test put there. The counts are printed.

A client reads the meetings API all along, as the frontend would (a 5 s
timeout); the gateway's answers, and the longest stretch without one, are
reported, and during the database outage that stretch must stay short: the
gateway answers 503 with Retry-After at once while the database is down.

Two-way sync runs all along (docs/sync.md): the schedulers keep push
channels to the gateway's webhook and poll every 30 s, and while the chaos
runs the rep moves some booked meetings in Google's UI (out of every lead's
slot). Each move must be applied exactly once (the row rescheduled, one new
row at Google's time, one mail) and no other meeting may move or vanish.

Run with `tests/run fault` (or pytest -s to see the counts). FAULT_LEADS and
FAULT_SECONDS scale it.
"""

import collections
import concurrent.futures
import datetime
import os
import random
import subprocess
import threading
import time

import pytest

import faultkit
import harness
from harness import Stack, wait_for

LEADS = int(os.environ.get("FAULT_LEADS", "1000"))
CHAOS_SECONDS = int(os.environ.get("FAULT_SECONDS", "75"))
USERS = 5
# The longest a reader may go unanswered while only the database is down.
OUTAGE_MAX_GAP_S = 2.0
# Meetings the rep moves in Google during the chaos, by 12 hours: every lead's slot is between 08:00 and 19:00, so
# a moved meeting never takes another lead's time.
MOVES = 20
MOVE_S = 12 * 3600


def stack_cmd(d, *args):
    subprocess.run(["/usr/bin/python3", faultkit.STACK, *args, d], check=True, stderr=subprocess.DEVNULL)


@pytest.fixture
def fault_stack():
    """A private PostgreSQL, RabbitMQ and SMTP server, and the TEST_* variables pointing at them."""
    with faultkit.private_stack("gcal-fault.") as d:
        yield d


class Chaos(threading.Thread):
    """SIGKILL a random service every few seconds and start it again; one broker
    restart and one 20-second database outage on the way."""

    def __init__(self, s, stack_dir, services, seconds, seed):
        super().__init__(daemon=True)
        self.s, self.dir, self.services, self.seconds = s, stack_dir, services, seconds
        self.rng = random.Random(seed)
        self.kills = collections.Counter()
        self.events = []
        self.db_outage = None   # (stopped, started again), time.time()
        self.error = None

    def run(self):
        try:
            self._run()
        except Exception as e:  # reported by the test, not lost in a thread
            self.error = e

    def _restart(self, svc):
        svc.kill()
        self.kills[svc.name] += 1
        time.sleep(self.rng.uniform(0.2, 1.0))
        svc.start(wait_ready=False)

    def _run(self):
        start = time.time()
        broker_done = db_done = False
        while time.time() - start < self.seconds:
            t = time.time() - start
            if not broker_done and t > self.seconds * 0.2:
                broker_done = True
                self.events.append(f"{t:.0f}s: RabbitMQ killed and restarted")
                stack_cmd(self.dir, "rabbit-restart")
            elif not db_done and t > self.seconds * 0.45:
                db_done = True
                self.events.append(f"{t:.0f}s: PostgreSQL stopped for 20 s")
                stack_cmd(self.dir, "pg-stop")
                stopped = time.time()
                time.sleep(20)
                stack_cmd(self.dir, "pg-start")
                self.db_outage = (stopped, time.time())
            else:
                self._restart(self.rng.choice(self.services))
            time.sleep(self.rng.uniform(1.5, 4.0))


def test_nothing_lost_nothing_duplicated(fault_stack, tmp_path):
    seed = int(os.environ.get("FAULT_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    s = Stack("fault", str(tmp_path))
    s.start_standin()
    try:
        _run(s, fault_stack, rng, seed)
    finally:
        errors = s.close()
    # Killed services are restarted, so every one must still stop cleanly.
    assert not errors, "\n".join(errors)


def _run(s, stack_dir, rng, seed):
    users = faultkit.add_users(s, USERS)
    leads = faultkit.add_leads(s, users, LEADS, rng)

    s.standin.admin("faults", {"fail_fraction": 0.2, "fail_statuses": [500, 503, 429],
                               "fail_path_prefix": "/calendar/v3/", "latency_ms": 5, "latency_jitter_ms": 20,
                               "spike_every": 40, "spike_ms": 1500, "seed": seed})
    gateway = f"127.0.0.1:{harness.free_port()}"
    sync = {"GOOGLE_WEBHOOK_URL": f"http://{gateway}/webhooks/google/calendar", "SYNC_POLL_SECONDS": "30"}
    services = [
        s.service("scheduler-worker", SCHEDULE_DELAY_MS="1000", PREFETCH="32", LOG_LEVEL="info", **sync),
        s.service("scheduler-worker", SCHEDULE_DELAY_MS="1000", PREFETCH="32", LOG_LEVEL="info", **sync),
        s.service("mailer-worker", LOG_LEVEL="info"),
        s.service("oauth-gateway", LOG_LEVEL="info", LISTEN_ADDR=gateway),
    ]
    poison = [f"poison-{i}" for i in range(3)]

    reader = faultkit.Reader(services[3].health_url, users[0][0])
    reader.start()
    chaos = Chaos(s, stack_dir, services, CHAOS_SECONDS, seed)
    chaos.start()
    t0 = time.time()

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda item: faultkit.publish_lead(s, item), leads))
    for p in poison:
        wait_for(lambda: faultkit.attempt(lambda: s.publish("leads", "lead.analyzed", "{not json", message_id=p)),
                 60, what="poison published")
    published = time.time() - t0
    moved = _move_in_google(s, users, chaos)
    chaos.join()
    reader.stop.set()
    reader.join()
    assert chaos.error is None, chaos.error
    for svc in services:
        if svc.proc.poll() is not None:
            svc.start(wait_ready=False)
    for svc in services:
        wait_for(svc.ready, 60, what=f"{svc.name} ready after the chaos")

    # Everything settles: every lead has an outcome, every meeting's mail is sent or dead. A run that does
    # not settle still reports its counts below, then fails.
    outcomes_settled = faultkit.settle(
        lambda: s.one("SELECT count(*) FROM calendar_booking_outcomes")[0] >= len(leads), 600)
    synced = outcomes_settled and faultkit.settle(lambda: _moves_applied(s) >= len(moved), 300)
    mails_done = synced and faultkit.settle(lambda: faultkit.mails_settled(s), 600)
    settled = time.time() - t0

    tally = faultkit.Tally(s, users, leads)
    report = {"settled": bool(mails_done), "seed": seed}
    report.update(tally.report(leads))
    moved_rows = s.query("SELECT lead_analytics_id::text, meeting_start_time FROM calendar_meetings"
                         " WHERE status = 'scheduled' AND change_source = 'google'")
    moved_wrong = [lead for lead, start in moved_rows
                   if lead not in moved or start != moved[lead] + datetime.timedelta(seconds=MOVE_S)]
    report.update({
        "moved_in_google": len(moved),
        "moves_applied": len(moved_rows),
        "moves_wrong": len(moved_wrong),
        "google_ended_rows": s.one("SELECT count(*) FROM calendar_meetings WHERE change_source = 'google'"
                                   " AND status <> 'scheduled'")[0],
        "channels": dict(s.query("SELECT status, count(*) FROM calendar_watch_channels GROUP BY 1")),
        "kills": dict(chaos.kills),
        "faults_injected": s.standin.admin("stats").get("faults_injected"),
        "chaos": chaos.events,
        "gateway": reader.report(t0, chaos.db_outage),
        "published_in_s": round(published, 1),
        "settled_in_s": round(settled, 1),
    })
    faultkit.write_report("fault", report)

    assert synced, "the moves made in Google did not all arrive (see the report)"
    assert mails_done, "the run did not settle within 10 minutes (see the report)"
    tally.check(len(poison))
    assert len(moved) > 0 and len(moved_rows) == len(moved) and not moved_wrong, \
        f"moves in Google applied other than once each: {moved_wrong[:5]}"
    assert report["google_ended_rows"] == len(moved), "each move ended its one row; nothing else was ended"
    assert chaos.db_outage is not None, "the chaos stopped the database"
    gateway = report["gateway"]["db_outage"]
    assert gateway["longest_without_answer_s"] <= OUTAGE_MAX_GAP_S, \
        f"the gateway left readers unanswered during the database outage: {gateway}"


def _move_in_google(s, users, chaos):
    """While the chaos runs, the rep moves up to MOVES booked meetings in Google's UI, spread over the users;
    returns {lead: its start before the move}. Only meetings whose row is committed: an event the rep changes in
    the moment between the platform's insert and its commit is the limit docs/sync.md names."""
    moved = {}
    deadline = time.time() + 60
    while len(moved) < MOVES and chaos.is_alive() and time.time() < deadline:
        booked = {r[0] for r in faultkit.attempt(lambda: s.query(
            "SELECT lead_analytics_id::text FROM calendar_meetings WHERE status = 'scheduled'")) or []}
        for uid, cal in users:
            for ev in s.standin.admin(f"events?email={cal}")["events"]:
                lead = ev.get("extendedProperties", {}).get("private", {}).get("lead_analytics_id")
                if len(moved) < MOVES and lead in booked and lead not in moved and ev["status"] == "confirmed":
                    moved[lead] = datetime.datetime.fromisoformat(ev["start"]["dateTime"])
                    s.standin.admin("events/move", {"email": cal, "id": ev["id"], "shift_s": MOVE_S})
                    break
        time.sleep(1)
    return moved


def _moves_applied(s):
    return s.one("SELECT count(*) FROM calendar_meetings WHERE status = 'scheduled' AND change_source = 'google'")[0]

