"""What the fault suites (test_faults.py, test_cluster.py) share: the leads they publish, the reader that
polls a gateway as the frontend would, and the tally that counts, once everything has settled, what reached
Google, the database and the mailbox against what was expected.

A meeting is expected to be mailed once per row: its "created" mail when it was booked, or its
"rescheduled" mail when it is the new row of a move; by Message-ID, so an SMTP redelivery of the same
message counts once (and is reported on its own). The refusing owner's mails are dead letters instead.
"""

import collections
import contextlib
import json
import os
import subprocess
import tempfile
import threading
import time
import uuid

import requests

import harness
from harness import jwt

STACK = os.path.join(harness.ROOT, "tests", "harness", "stack.py")

# The frontend's patience.
CLIENT_TIMEOUT_S = 5
# Mail to this owner is refused by the SMTP sink (tests/harness/smtp_sink.py): it must end as dead letters.
REFUSING_OWNER = "reject+fault@example.com"

# The mail job each meeting row owes, as its message_id (services/scheduler-worker/mailjob.c).
ROW_MAIL_ID = ("'meeting:' || m.id || CASE WHEN m.rescheduled_from_meeting_id IS NULL THEN ':created:'"
               " ELSE ':rescheduled:' END || m.ical_sequence")


@contextlib.contextmanager
def private_stack(prefix, *start_args):
    """A private PostgreSQL, RabbitMQ (start_args: --rabbit-cluster for three nodes) and SMTP server for the
    block, and the TEST_* variables pointing at them; everything is stopped afterwards, whatever happened."""
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    saved = {k: v for k, v in os.environ.items() if k.startswith("TEST_")}
    try:
        subprocess.run(["/usr/bin/python3", STACK, "start", d, "--only", "pg,rabbit,smtp", *start_args],
                       check=True)
        with open(os.path.join(d, "env")) as f:
            for line in f:
                k, _, v = line.strip().removeprefix("export ").partition("=")
                os.environ[k] = v.strip("'")
        yield d
    finally:
        subprocess.run(["/usr/bin/python3", STACK, "stop", d])
        subprocess.run(["rm", "-rf", d])
        for k in [k for k in os.environ if k.startswith("TEST_")]:
            del os.environ[k]
        os.environ.update(saved)


def attempt(fn):
    try:
        return fn()
    except Exception:
        return False


def settle(fn, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if attempt(fn):
            return True
        time.sleep(1)
    return False


def queue_empty(s, name):
    q = attempt(lambda: s.queue(name))
    return bool(q) and q.get("messages", 1) == 0 and q.get("messages_unacknowledged", 1) == 0


def add_users(s, count):
    """count users with connected calendars, the last one the refusing owner; returns [(id, calendar email)]."""
    users = []
    for i in range(count):
        email = REFUSING_OWNER if i == count - 1 else f"owner{i}-{uuid.uuid4().hex[:6]}@example.com"
        uid = s.add_user(email=email)
        cal = f"cal{i}-{uid[:6]}@example.com"
        s.connect_calendar(uid, cal)
        users.append((uid, cal))
    return users


def add_leads(s, users, count, rng):
    """count leads over the users, about 8% of them not bookable (no email, a time in the past, an owner
    without a calendar); returns [(lead id, owner, expect a meeting)]."""
    lonely = s.add_user()
    leads = []
    for n in range(count):
        r = rng.random()
        uid, _ = users[n % len(users)]
        # A slot of its own (22 half hours a day from 08:00), so no two leads of a user clash in the calendar.
        day, slot = divmod(n, 22)
        demo = f"2099-{1 + day // 28:02d}-{1 + day % 28:02d}T{8 + slot // 2:02d}:{slot % 2 * 30:02d}:00+05:30"
        if r < 0.03:
            leads.append((s.add_lead(uid, email=None)["lead"], uid, False))
        elif r < 0.06:
            leads.append((s.add_lead(uid, demo="2001-01-01T10:00:00Z")["lead"], uid, False))
        elif r < 0.08:
            leads.append((s.add_lead(lonely, demo=demo)["lead"], lonely, False))
        else:
            leads.append((s.add_lead(uid, demo=demo, email=f"lead{n}@example.com")["lead"], uid, True))
    return leads


def publish_lead(s, item):
    """Publish one lead as the webhook would, through whatever broker answers (it may be restarting)."""
    lead, uid, _ = item
    for _ in range(100):
        if attempt(lambda: s.publish_lead(lead, uid)):
            return
        time.sleep(0.5)
    raise AssertionError(f"could not publish {lead}")


def mails_settled(s):
    """Every meeting row has its mail sent or given up, and the work queues are empty."""
    open_rows = s.one("SELECT count(*) FROM calendar_meetings m WHERE NOT EXISTS (SELECT 1 FROM mail_deliveries d"
                      f" WHERE d.message_id = {ROW_MAIL_ID} AND d.status IN ('sent', 'failed'))")[0]
    return open_rows == 0 and all(queue_empty(s, q) for q in ("scheduler.leads", "mailer.jobs"))


class Reader(threading.Thread):
    """GET /api/calendar/meetings in a loop, as the frontend polls it, noting when each answer came and what it
    was; a timeout or a refused connection is no answer."""

    def __init__(self, url, user):
        super().__init__(daemon=True)
        self.url, self.user = url, user
        self.answers = []   # (time.time() when answered, status)
        self.no_answer = collections.Counter()
        self.stop = threading.Event()

    def run(self):
        headers = {"Authorization": "Bearer " + jwt(self.user, exp_in=24 * 3600)}
        while not self.stop.is_set():
            try:
                r = requests.get(self.url + "/api/calendar/meetings", headers=headers, timeout=CLIENT_TIMEOUT_S)
                self.answers.append((time.time(), r.status_code))
            except requests.RequestException as e:
                self.no_answer[type(e).__name__] += 1
                self.stop.wait(0.1)   # a gateway being restarted refuses at once: do not spin
                continue
            self.stop.wait(0.1)

    def longest_gap(self, start, end):
        """The longest time in [start, end] without an answer."""
        times = [start] + [t for t, _ in self.answers if start < t < end] + [end]
        return max(b - a for a, b in zip(times, times[1:]))

    def report(self, t0, outage=None):
        statuses = collections.Counter(str(st) for _, st in self.answers)
        out = {"answers": len(self.answers), "by_status": dict(statuses), "no_answer": dict(self.no_answer),
               "longest_without_answer_s": round(self.longest_gap(t0, self.answers[-1][0]), 1)
               if self.answers else None}
        if outage is not None:
            inside = [st for t, st in self.answers if outage[0] <= t <= outage[1]]
            out["db_outage"] = {"answers": len(inside), "by_status": dict(collections.Counter(map(str, inside))),
                                "longest_without_answer_s": round(self.longest_gap(*outage), 1)}
        return out


def write_report(suite, report):
    """Print the suite's report (pytest -s shows it) and keep it as build/<suite>-report.json."""
    print(f"\n{suite} suite report: " + json.dumps(report, indent=1))
    with open(os.path.join(harness.ROOT, "build", f"{suite}-report.json"), "w") as f:
        json.dump(report, f, indent=1)


class Tally:
    """What the run left behind, counted once it settled: events at Google, rows, outcomes, mails by
    Message-ID and dead letters (taken out of their queues)."""

    def __init__(self, s, users, leads):
        self.expected = {lead for lead, _, ok in leads if ok}
        self.events = collections.Counter()
        self.statuses = {}
        self.event_starts = {}
        for uid, cal in users:
            for ev in s.standin.admin(f"events?email={cal}")["events"]:
                lid = ev.get("extendedProperties", {}).get("private", {}).get("lead_analytics_id")
                self.events[lid] += 1
                self.statuses[lid] = ev["status"]
                self.event_starts[lid] = ev.get("start", {}).get("dateTime")
        self.rows = collections.Counter(dict(s.query("SELECT lead_analytics_id::text, count(*) FROM"
                                                     " calendar_meetings WHERE status = 'scheduled' GROUP BY 1")))
        self.outcomes = collections.Counter(r[0] for r in s.query("SELECT outcome || '/' || COALESCE(reason, '')"
                                                                  " FROM calendar_booking_outcomes"))
        self.missing = [lead for lead in self.expected if self.events[lead] != 1 or self.rows[lead] != 1]
        self.duplicated_events = sum(1 for n in self.events.values() if n > 1)
        self.duplicated_rows = sum(1 for n in self.rows.values() if n > 1)
        self.unexpected = [lead for lead in self.events if lead not in self.expected]

        # The mail each row owes: (row id, action) -> the owner's address.
        owed = {(str(r[0]), r[1]): r[2] for r in s.query(
            "SELECT m.id, CASE WHEN m.rescheduled_from_meeting_id IS NULL THEN 'created' ELSE 'rescheduled' END,"
            " u.email FROM calendar_meetings m JOIN users u ON u.id = m.user_id")}
        self.moves = sum(1 for _, action in owed if action == "rescheduled")
        by_row = collections.defaultdict(set)
        raw = collections.Counter()
        for m in s.mails():
            key = (m.get("X-Meeting-Id"), m.get("X-Meeting-Action"))
            if key in owed:
                by_row[key].add(m["Message-ID"])
                raw[key] += 1
        dead_mail = s.take("mailer.dead", 5000)
        dead_mail_rows = {(json.loads(d["payload"]).get("meeting_id"), json.loads(d["payload"]).get("kind"))
                          for d in dead_mail}
        self.dead_mail_reasons = collections.Counter(d["properties"]["headers"].get("x-dead-reason")
                                                     for d in dead_mail)
        self.mail_missing = [k for k in owed if len(by_row[k]) != 1 and not (k in dead_mail_rows and not by_row[k])]
        self.mail_duplicated = [k for k in owed if len(by_row[k]) > 1]
        self.mails_delivered = sum(1 for v in by_row.values() if v)
        self.raw_repeats = sum(n - 1 for n in raw.values() if n > 1)
        self.refused_rows = {k for k, email in owed.items() if email == REFUSING_OWNER}
        self.dead_mail_rows = dead_mail_rows
        dead_sched = s.take("scheduler.dead", 5000)
        self.dead_sched_reasons = collections.Counter(d["properties"]["headers"].get("x-dead-reason")
                                                      for d in dead_sched)
        self.queues = {q: {k: (attempt(lambda: s.queue(q)) or {}).get(k) for k in ("messages",
                                                                                    "messages_unacknowledged")}
                       for q in ("scheduler.leads", "scheduler.commands", "mailer.jobs")}
        self.unsettled = [list(map(str, r)) for r in s.query(
            "SELECT m.id::text, d.status, d.attempts, d.last_error FROM calendar_meetings m LEFT JOIN"
            f" mail_deliveries d ON d.message_id = {ROW_MAIL_ID} WHERE d.status IS DISTINCT FROM 'sent'"
            " AND d.status IS DISTINCT FROM 'failed' LIMIT 5")]

    def report(self, leads):
        return {
            "queues": self.queues,
            "unsettled_meetings": self.unsettled,
            "leads": len(leads),
            "expected_meetings": len(self.expected),
            "events_at_google": sum(self.events.values()),
            "active_rows": sum(self.rows.values()),
            "missing_or_duplicated_meetings": len(self.missing),
            "duplicated_events": self.duplicated_events,
            "duplicated_rows": self.duplicated_rows,
            "unexpected_events": len(self.unexpected),
            "outcomes": dict(self.outcomes),
            "moves": self.moves,
            "mails_delivered": self.mails_delivered,
            "mails_missing": len(self.mail_missing),
            "mails_duplicated": len(self.mail_duplicated),
            "smtp_redeliveries_same_message_id": self.raw_repeats,
            "mailer_dead": dict(self.dead_mail_reasons),
            "scheduler_dead": dict(self.dead_sched_reasons),
        }

    def check(self, poison):
        """The guarantees: each bookable lead one confirmed event and one active row, nothing for the others,
        each row its mail once (the refusing owner's as dead letters), and no other dead letter than the
        poison messages the suite published."""
        assert not self.missing, f"{len(self.missing)} leads without exactly one event and one row: " \
                                 f"{self.missing[:5]}"
        assert self.duplicated_events == 0 and self.duplicated_rows == 0 and not self.unexpected
        assert all(self.statuses[lead] == "confirmed" for lead in self.expected)
        assert not self.mail_missing, f"meetings without their mail: {self.mail_missing[:5]}"
        assert not self.mail_duplicated, f"meetings mailed twice: {self.mail_duplicated[:5]}"
        assert self.dead_mail_rows == self.refused_rows, "only the refused owner's mails are dead letters"
        assert set(self.dead_mail_reasons) <= {"smtp_rejected"}
        assert self.dead_sched_reasons == {"malformed": poison}, self.dead_sched_reasons
