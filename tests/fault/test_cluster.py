"""Cluster fault suite (issue 20): the services on a three-node RabbitMQ cluster (tests/harness/stack.py
--rabbit-cluster), two replicas of each worker and two gateways, each process given all three nodes in
AMQP_URL starting at a different one. 1,000 leads for ten users are published over half a minute, and the
gateways take reschedules of booked meetings all along, while:

- the node that holds the leaders of the work queues is killed with SIGKILL and started again 15 s later
  (its quorum queue members elect new leaders on the other two and catch up when it is back);
- each worker replica (two schedulers, two mailers) is SIGKILLed once and started again.

Afterwards: every bookable lead has exactly one confirmed event at Google and one active row, no other lead
has any, every meeting row has its mail once (the refusing owner's as dead letters), `scheduler.dead` holds
exactly the three malformed messages the suite published, every quorum queue has its three members online
again, and each move a gateway accepted (200, or 202 when the reply was lost) is where Google has it. A
reader polls each gateway's meetings list throughout; the report gives its answers and its longest stretch
without one, and for the reschedules the longest window in which a gateway answered none with 2xx (a
command a broker had not confirmed is refused 503 while the gateway moves to the next node).

Run with `tests/run cluster` (or pytest -s to see the report). CLUSTER_LEADS and CLUSTER_SEED scale or
replay it.
"""

import collections
import concurrent.futures
import datetime
import json
import os
import random
import subprocess
import threading
import time

import pytest
import requests

import faultkit
import test_loopback
from harness import SERVICE_ROLES, Stack, jwt, wait_for

LEADS = int(os.environ.get("CLUSTER_LEADS", "1000"))
USERS = 10
PUBLISH_SECONDS = 30
COMMAND_SECONDS = 40
NODE_DOWN_S = int(os.environ.get("CLUSTER_NODE_DOWN_S", "15"))
WORK_QUEUES = ("scheduler.delay", "scheduler.leads", "scheduler.commands", "mailer.jobs")
# What the suite accepts from a gateway: a reader never waits longer than this for an answer, and
# reschedules are refused (503) for at most this long at a stretch while the gateway's node goes away.
READER_MAX_GAP_S = 5.0
COMMAND_WINDOW_MAX_S = 10.0
# The gateway waits about 8 s for the scheduler's reply before it answers 202.
COMMAND_TIMEOUT_S = 20


def stack_cmd(d, *args):
    p = subprocess.run(["/usr/bin/python3", faultkit.STACK, *args, d], check=True, capture_output=True, text=True)
    return p.stdout


@pytest.fixture
def cluster_stack():
    with faultkit.private_stack("gcal-cluster.", "--rabbit-cluster") as d:
        yield d


def nodes():
    """[(letter, node name)] in AMQP_URL's order."""
    return [tuple(n.split("=", 1)) for n in os.environ["TEST_RABBITMQ_NODES"].split(",")]


def queues(stack_dir, vhost):
    return {q["name"]: q for q in json.loads(stack_cmd(stack_dir, "rabbit-queues", "--vhost", vhost))}


class Commander(threading.Thread):
    """Reschedule booked meetings through one gateway, one at a time, each meeting once, each to a slot of its
    own in 2098 (so the rep's calendar never clashes), noting what the gateway answered and when."""

    def __init__(self, s, url, index, picked, lock):
        super().__init__(daemon=True)
        self.s, self.url, self.index, self.picked, self.lock = s, url, index, picked, lock
        self.sent = []   # {meeting, lead, when, sent, answered, status}
        self.stop = threading.Event()
        self.error = None

    def run(self):
        try:
            n = 0
            while not self.stop.is_set():
                if self._one(n):
                    n += 1
                self.stop.wait(0.3)
        except Exception as e:  # reported by the test, not lost in a thread
            self.error = e

    def _one(self, n):
        with self.lock:
            row = faultkit.attempt(lambda: self.s.one(
                "SELECT id::text, user_id::text, lead_analytics_id::text FROM calendar_meetings WHERE status ="
                " 'scheduled' AND rescheduled_from_meeting_id IS NULL AND NOT (id::text = ANY(%s::text[]))"
                " ORDER BY random() LIMIT 1", list(self.picked)))
            if not row:
                return False
            self.picked.add(row[0])
        meeting, user, lead = row
        # Slots of this gateway's own: gateway 0 the mornings, gateway 1 the afternoons.
        day, slot = divmod(n, 8)
        when = datetime.datetime(2098, 1, 1, 8 + 4 * self.index, tzinfo=datetime.timezone.utc) + \
            datetime.timedelta(days=day, minutes=30 * slot)
        entry = {"meeting": meeting, "lead": lead, "when": when, "sent": time.time()}
        try:
            # allowConflict: the slots never clash, and the conflict check is not what this suite is about; it
            # would also refuse a move redelivered after a worker died between Google's answer and the commit,
            # finding the event the first attempt already moved (the refusal leaves the row behind Google).
            r = requests.put(f"{self.url}/api/calendar/meetings/{meeting}/reschedule",
                             headers={"Authorization": "Bearer " + jwt(user)},
                             json={"newDateTime": when.isoformat(), "allowConflict": True},
                             timeout=COMMAND_TIMEOUT_S)
            entry["status"] = r.status_code
            entry["answer"] = r.text[:300]
        except requests.RequestException as e:
            entry["status"] = type(e).__name__
        entry["answered"] = time.time()
        self.sent.append(entry)
        return True

    def refused_window(self):
        """The longest stretch from a command answered without 2xx to the next one answered 2xx (or the end)."""
        longest, start = 0.0, None
        for e in self.sent:
            ok = isinstance(e["status"], int) and 200 <= e["status"] < 300
            if not ok and start is None:
                start = e["sent"]
            elif ok and start is not None:
                longest, start = max(longest, e["sent"] - start), None
        if start is not None:
            longest = max(longest, self.sent[-1]["answered"] - start)
        return round(longest, 1)


class Chaos(threading.Thread):
    """The plan, in seconds from the start: each worker replica SIGKILLed once (and started again after
    0.2-1 s), the leaders' node SIGKILLed at 11 s and started again NODE_DOWN_S later."""

    def __init__(self, stack_dir, workers, victim, vhost, rng):
        super().__init__(daemon=True)
        self.dir, self.workers, self.victim, self.vhost, self.rng = stack_dir, workers, victim, vhost, rng
        self.events = []
        self.kills = collections.Counter()
        self.leaders_while_down = None
        self.node_down = None   # (killed, started again), time.time()
        self.error = None

    def run(self):
        try:
            self._run()
        except Exception as e:  # reported by the test, not lost in a thread
            self.error = e

    def _at(self, t0, t):
        time.sleep(max(0.0, t0 + t - time.time()))
        return time.time() - t0

    def _kill(self, t0, t, svc):
        now = self._at(t0, t)
        svc.kill()
        self.kills[svc.name] += 1
        self.events.append(f"{now:.0f}s: {svc.name} (replica on node {svc.first_node}) SIGKILLed")
        time.sleep(self.rng.uniform(0.2, 1.0))
        svc.start(wait_ready=False)

    def _run(self):
        t0 = time.time()
        sched, mailer = self.workers
        self._kill(t0, 3, sched[0])
        self._kill(t0, 7, mailer[0])
        now = self._at(t0, 11)
        stack_cmd(self.dir, "rabbit-kill", "--node", self.victim)
        killed = time.time()
        self.events.append(f"{now:.0f}s: RabbitMQ node {self.victim} (the leaders') SIGKILLed")
        self._kill(t0, 13, sched[1])
        now = self._at(t0, 16)
        self.leaders_while_down = {q: info["leader"] for q, info in queues(self.dir, self.vhost).items()
                                   if q in WORK_QUEUES}
        self.events.append(f"{now:.0f}s: leaders elsewhere: {sorted(set(self.leaders_while_down.values()))}")
        self._kill(t0, 19, mailer[1])
        now = self._at(t0, 11 + NODE_DOWN_S)
        stack_cmd(self.dir, "rabbit-start", "--node", self.victim)
        self.node_down = (killed, time.time())
        self.events.append(f"{now:.0f}s: RabbitMQ node {self.victim} started again "
                           f"(ready {time.time() - t0:.0f}s)")


def test_cluster_node_and_replica_kills_lose_nothing(cluster_stack, tmp_path):
    seed = int(os.environ.get("CLUSTER_SEED", str(int(time.time()))))
    s = Stack("cluster", str(tmp_path))
    s.start_standin()
    try:
        _run(s, cluster_stack, random.Random(seed), seed)
    finally:
        errors = s.close()
    # Killed services are restarted, so every one must still stop cleanly.
    assert not errors, "\n".join(errors)


def _every_node_on_loopback(stack_dir):
    """Each node holds AMQP, management and distribution ports, and nothing listens off loopback."""
    with open(os.path.join(stack_dir, "pids.json")) as f:
        brokers = [info for info in json.load(f).values() if info.get("kind") == "rabbitmq"]
    assert len(brokers) == 3
    listening = test_loopback.listening_inodes()
    for info in brokers:
        found = test_loopback.sockets_of(test_loopback.tree([info["pid"]]), listening)
        assert len({port for _, comm, _, port in found if comm == "beam.smp"}) >= 3, found
        assert all(test_loopback.is_loopback(addr) for _, _, addr, _ in found), found
    epmd = test_loopback.epmd_daemons(brokers[0]["epmd_port"])
    assert len(epmd) == 1, "one port mapper for the three nodes"
    assert all(test_loopback.is_loopback(addr) for _, _, addr, _ in test_loopback.sockets_of(epmd, listening))


def _run(s, stack_dir, rng, seed):
    _every_node_on_loopback(stack_dir)
    letters = [letter for letter, _ in nodes()]
    users = faultkit.add_users(s, USERS)
    leads = faultkit.add_leads(s, users, LEADS, rng)
    s.standin.admin("faults", {"latency_ms": 5, "latency_jitter_ms": 20, "seed": seed})

    def service(name, first, **env):
        """A service whose AMQP_URL lists every node, starting at node `first`."""
        urls = s.amqp_url_for(SERVICE_ROLES[name]).split(",")
        i = letters.index(first)
        svc = s.service(name, AMQP_URL=",".join(urls[i:] + urls[:i]), LOG_LEVEL="info", **env)
        svc.first_node = first
        return svc

    worker = {"SCHEDULE_DELAY_MS": "1000", "PREFETCH": "32"}
    # The first scheduler and mailer declare the queues from node a, so RabbitMQ (queue_leader_locator
    # client-local, its default) puts every leader there; the other replicas start on b and c.
    sched = [service("scheduler-worker", "a", **worker), None]
    mailer = [service("mailer-worker", "a"), None]
    sched[1] = service("scheduler-worker", "b", **worker)
    mailer[1] = service("mailer-worker", "c")
    gateways = [service("oauth-gateway", "a"), service("oauth-gateway", "b")]

    before = queues(stack_dir, s.vhost)
    names = {name for _, name in nodes()}
    durable = {q: info for q, info in before.items() if not q.startswith("amq.gen-")}
    assert all(info["type"] == "quorum" for info in durable.values()), durable
    assert all(set(info["members"]) == names for info in durable.values()), "a member on every node"
    leaders = collections.Counter(before[q]["leader"] for q in WORK_QUEUES)
    victim_name = leaders.most_common(1)[0][0]
    victim = next(letter for letter, name in nodes() if name == victim_name)

    poison = [f"poison-{i}" for i in range(3)]
    readers = [faultkit.Reader(gw.health_url, users[0][0]) for gw in gateways]
    lock, picked = threading.Lock(), set()
    commanders = [Commander(s, gw.health_url, i, picked, lock) for i, gw in enumerate(gateways)]
    chaos = Chaos(stack_dir, (sched, mailer), victim, s.vhost, rng)
    t0 = time.time()
    for th in readers + commanders + [chaos]:
        th.start()

    published_at = {}

    def publish(i):
        time.sleep(max(0.0, t0 + i * PUBLISH_SECONDS / len(leads) - time.time()))
        published_at[leads[i][0]] = time.time()
        faultkit.publish_lead(s, leads[i])

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        list(pool.map(publish, range(len(leads))))
    for p in poison:
        wait_for(lambda: faultkit.attempt(lambda: s.publish("leads", "lead.analyzed", "{not json", message_id=p)),
                 60, what="poison published")
    published = time.time() - t0
    chaos.join()
    time.sleep(max(0.0, t0 + COMMAND_SECONDS - time.time()))
    for th in commanders + readers:
        th.stop.set()
    for th in commanders + readers:
        th.join()
    assert chaos.error is None, chaos.error
    assert all(c.error is None for c in commanders), [c.error for c in commanders]
    services = sched + mailer + gateways
    for svc in services:
        wait_for(svc.ready, 60, what=f"{svc.name} ready after the chaos")

    outcomes_settled = faultkit.settle(
        lambda: s.one("SELECT count(*) FROM calendar_booking_outcomes")[0] >= len(leads), 600)
    mails_done = outcomes_settled and faultkit.settle(
        lambda: faultkit.mails_settled(s) and faultkit.queue_empty(s, "scheduler.commands"), 600)
    settled = time.time() - t0

    def all_online():
        now = queues(stack_dir, s.vhost)
        return all(set(now[q]["online"]) == names for q in durable) and now
    after = faultkit.settle(all_online, 120) and all_online()

    tally = faultkit.Tally(s, users, leads)
    # Each move a gateway took must be where Google has it; a refused one (503) may or may not have run,
    # but the row and Google must agree.
    rows = {str(r[0]): r[1] for r in s.query("SELECT lead_analytics_id, meeting_start_time FROM"
                                              " calendar_meetings WHERE status = 'scheduled'")}
    moves = [e for c in commanders for e in c.sent]
    by_status = collections.Counter(str(e["status"]) for e in moves)
    moves_wrong = []
    for e in moves:
        at_google = tally.event_starts.get(e["lead"])
        at_google = at_google and datetime.datetime.fromisoformat(at_google.replace("Z", "+00:00"))
        row = rows.get(e["lead"])
        accepted = e["status"] in (200, 202)
        if row != at_google or (accepted and row != e["when"]):
            moves_wrong.append({"lead": e["lead"], "status": e["status"], "asked": str(e["when"]),
                                "row": str(row), "google": str(at_google), "answer": e.get("answer")})

    # From publish to the meeting's first row (the 1 s delay included): the broker's part of a lead's trip.
    booked = {str(r[0]): r[1].timestamp() for r in s.query(
        "SELECT lead_analytics_id, min(created_at) FROM calendar_meetings GROUP BY 1")}
    latency = sorted(booked[lead] - published_at[lead] for lead in booked if lead in published_at)
    # The longest time no lead was booked while leads were waiting: the pipeline's pause, if any.
    times = sorted(booked.values())
    pause = max((b - a for a, b in zip(times, times[1:])), default=0.0)

    report = {"settled": bool(mails_done), "seed": seed}
    report.update(tally.report(leads))
    report.update({
        "nodes": dict(nodes()),
        "killed_node": victim,
        "leaders_before": {q: before[q]["leader"] for q in WORK_QUEUES},
        "leaders_while_down": chaos.leaders_while_down,
        "members_online_after": {q: len(after[q]["online"]) for q in WORK_QUEUES} if after else None,
        "kills": dict(chaos.kills),
        "chaos": chaos.events,
        "reschedules": {"sent": len(moves), "by_status": dict(by_status), "wrong": moves_wrong[:5],
                        "longest_refused_window_s": [c.refused_window() for c in commanders]},
        "gateways": [r.report(t0) for r in readers],
        "lead_to_meeting_s": {"p50": round(latency[len(latency) // 2], 1),
                              "p99": round(latency[len(latency) * 99 // 100], 1),
                              "max": round(latency[-1], 1)} if latency else None,
        "longest_pause_between_bookings_s": round(pause, 1),
        "published_in_s": round(published, 1),
        "settled_in_s": round(settled, 1),
    })
    faultkit.write_report("cluster", report)

    assert mails_done, "the run did not settle within 10 minutes (see the report)"
    assert after, "every quorum queue has its three members online again"
    assert victim_name not in chaos.leaders_while_down.values(), "new leaders while the node was down"
    tally.check(len(poison))
    assert set(by_status) <= {"200", "202", "503"}, by_status
    assert by_status["200"] + by_status["202"] > 0, "the gateways took reschedules"
    assert not moves_wrong, moves_wrong[:5]
    for c in commanders:
        assert c.refused_window() <= COMMAND_WINDOW_MAX_S, report["reschedules"]
    for r in report["gateways"]:
        assert not r["no_answer"] and r["longest_without_answer_s"] <= READER_MAX_GAP_S, report["gateways"]
