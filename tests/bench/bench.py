"""Benchmarks of issue 8 (run by tests/bench/run on a stack it started): the
pipeline's throughput, latency, CPU and memory against this machine's own
ceilings, the 10 s delay's accuracy, and the gateway against pgbench -S.

Every ratio is measured side by side in the same run, because the machine
is shared and absolute numbers drift. Nothing here is a test: it reports.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))

from harness import Stack, jwt, wait_for  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
OPEN_STACKS = []


def new_stack(name, tmp):
    """A Stack that main() closes should its part fail half-way."""
    s = Stack(name, tmp)
    OPEN_STACKS.append(s)
    return s


def close_stack(s):
    """Stop the part's services; what Stack.close() finds wrong (an exit status, a secret in a log) is shown."""
    OPEN_STACKS.remove(s)
    for problem in s.close():
        print(f"bench: {problem}", file=sys.stderr)


def proc_stats(pid):
    """(cpu seconds, current RSS MiB, peak RSS MiB) of a live process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK
    rss = hwm = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    return cpu, rss, hwm


def cpu_by_program():
    """CPU seconds used so far by every process on the machine, summed per program (PostgreSQL's
    backends together, RabbitMQ's Erlang VM, each service)."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
            cpu = proc_stats(int(pid))[0]
        except (OSError, IndexError, ValueError):
            continue
        name = "postgres" if comm.startswith("postgres") else "rabbitmq" if comm.startswith(("beam", "erl_")) \
            else "kernel workers" if comm.startswith(("kworker", "ksoftirq")) else comm
        out[name] = out.get(name, 0) + cpu
    return out


def pct(values, p):
    values = sorted(values)
    if not values:
        return None
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


# The first lead's demo time; each next lead is half an hour later.
START = datetime.datetime(2099, 1, 1, 9, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=5, minutes=30)))


def make_world(s, users, leads):
    """users connected users and leads leads spread over them, inserted in bulk, each lead at a half-hour slot of
    its own so the conflict check passes them all. Returns [(lead, user)]."""
    from psycopg2.extras import execute_values
    ids = [s.add_user() for _ in range(users)]
    for u in ids:
        s.connect_calendar(u, f"g-{u[:8]}@example.com")
    rows_calls, rows_leads, out = [], [], []
    for i in range(leads):
        u = ids[i % users]
        call, lead = str(uuid.uuid4()), str(uuid.uuid4())
        phone = "+91" + str(uuid.uuid4().int)[:10]
        rows_calls.append((call, u, phone, f"https://rec.example.com/{call}.mp3", "completed"))
        demo = (START + datetime.timedelta(minutes=30 * i)).isoformat()
        rows_leads.append((lead, call, u, phone, "John Smith", f"lead{i}@example.com", "TechCorp", demo,
                           json.dumps({"intent": "High"}), "Hot", "Wants a demo", "individual"))
        out.append((lead, u))
    with s.db().cursor() as cur:
        execute_values(cur, "INSERT INTO calls (id, user_id, phone_number, recording_url, status) VALUES %s",
                       rows_calls, page_size=1000)
        execute_values(cur, "INSERT INTO lead_analytics (id, call_id, user_id, phone_number, extracted_name,"
                       " extracted_email, company_name, demo_book_datetime, reasoning, lead_status_tag,"
                       " smart_notification, analysis_type) VALUES %s", rows_leads, page_size=1000)
    return out


def publish(s, build, leads, rate=0):
    """Publish lead.analyzed for leads through bench-amqp; returns {lead: publish epoch ms}."""
    text = "".join(f"{lead} {user}\n" for lead, user in leads)
    tool = os.path.join(build, "tests", "bench", "bench-amqp")
    out = subprocess.run([tool, "publish", s.amqp_url, str(rate)], input=text, capture_output=True, text=True,
                         check=True).stdout
    return {lead: int(ms) for lead, ms in (line.split() for line in out.splitlines())}


def rows_by_lead(s, leads):
    rows = s.query("SELECT lead_analytics_id::text, (extract(epoch FROM created_at) * 1000)::bigint, count(*)"
                   " OVER (PARTITION BY lead_analytics_id) FROM calendar_meetings"
                   " WHERE lead_analytics_id = ANY(%s::uuid[])", [lead for lead, _ in leads])
    return rows


def pipeline(args, latency_ms, label, schedulers=1):
    """One pipeline run: N leads for U users through `schedulers` schedulers, Google answering after latency_ms.
    With several, the scheduler's figures are their sums (CPU) and the largest (RSS)."""
    s = new_stack(f"bench_{label}", args.tmp)
    s.start_standin()
    s.standin.admin("faults", {"latency_ms": latency_ms})
    leads = make_world(s, args.users, args.leads)
    env = dict(SCHEDULE_DELAY_MS="0", PREFETCH=str(args.prefetch), LOG_LEVEL="warn", MEET_LINKS="on")
    scheds = [s.service("scheduler-worker", **env) for _ in range(schedulers)]
    sched = scheds[0]
    gateway = s.service("oauth-gateway", LOG_LEVEL="warn")
    # The mailer is its own container and drains mailer.jobs at its own pace (see mailer()); here its
    # jobs wait in the queue, as they would behind a slow mail server.
    time.sleep(1.0)

    def stats():
        """proc_stats of the gateway and of the schedulers together."""
        per = [proc_stats(x.proc.pid) for x in scheds]
        return {sched.name: (sum(p[0] for p in per), max(p[1] for p in per), max(p[2] for p in per)),
                gateway.name: proc_stats(gateway.proc.pid)}
    idle = stats()
    machine_before = cpu_by_program()
    perf = None
    if args.perf:
        perf = subprocess.Popen(["perf", "record", "-a", "-g", "-F", "999", "-o", f"{args.perf}.{label}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
    start_ms = time.time() * 1000
    published = publish(s, args.build, leads)
    pub_s = (time.time() * 1000 - start_ms) / 1000
    want = len(leads)
    wait_for(lambda: s.one("SELECT count(*) FROM calendar_meetings")[0] >= want, args.timeout, interval=0.2,
             what=f"{want} meetings")
    if perf:
        perf.send_signal(signal.SIGINT)
        perf.wait()
    rows = rows_by_lead(s, leads)
    end_ms = max(r[1] for r in rows)
    busy = stats()
    machine_after = cpu_by_program()
    cpu = {k: round(v - machine_before.get(k, 0), 2) for k, v in machine_after.items()}
    lat = [r[1] - published[r[0]] for r in rows if r[0] in published]
    events = sum(len(s.standin.admin(f"events?email=g-{u[:8]}@example.com")["events"])
                 for u in {u for _, u in leads})
    seconds = (end_ms - min(published.values())) / 1000
    result = {
        "latency_ms": latency_ms, "users": args.users, "leads": want, "prefetch": args.prefetch,
        "schedulers": schedulers,
        "meetings_per_s": round(want / seconds, 1), "seconds": round(seconds, 2), "publish_s": round(pub_s, 2),
        "publish_to_row_ms": {"p50": pct(lat, 50), "p99": pct(lat, 99), "max": max(lat)},
        "rows": len(rows), "events": events,
        "duplicates": sum(1 for r in rows if r[2] > 1) + max(0, events - want),
        "missing": want - len({r[0] for r in rows}),
        "services": {name: {"cpu_s": round(busy[name][0] - idle[name][0], 2),
                            "cpu_ms_per_meeting": round((busy[name][0] - idle[name][0]) * 1000 / want, 3),
                            "rss_idle_mib": round(idle[name][1], 1), "rss_peak_mib": round(busy[name][2], 1)}
                     for name in busy},
        "cpu_s_by_program": dict(sorted(((k, v) for k, v in cpu.items() if v >= 0.2), key=lambda kv: -kv[1])),
    }
    if args.mail:
        result["mailer"] = mailer(s, want, args)
    close_stack(s)
    return result


def scale(args):
    """One scheduler against two on the same machine, at L = 100, for each PREFETCH of --scale-prefetch:
    pairs interleaved (1, 2, 1, 2), since the machine's speed drifts within minutes. A small PREFETCH bounds
    each scheduler by Google's latency, so a second one adds its own deliveries in flight; a large one leaves
    the shared cores, PostgreSQL first, as the bound."""
    out = {}
    for prefetch in (int(p) for p in args.scale_prefetch.split(",")):
        a = argparse.Namespace(**dict(vars(args), prefetch=prefetch, mail=False))
        runs = {1: [], 2: []}
        for n in (1, 2, 1, 2):
            r = pipeline(a, 100, f"scale{prefetch}_{n}", schedulers=n)
            runs[n].append(r)
            print(json.dumps({"prefetch": prefetch, "schedulers": n, "meetings_per_s": r["meetings_per_s"],
                              "cpu_s_by_program": r["cpu_s_by_program"]}), file=sys.stderr, flush=True)

        def summary(rs):
            return {"meetings_per_s": [r["meetings_per_s"] for r in rs],
                    "scheduler_cpu_ms_per_meeting": [r["services"]["scheduler-worker"]["cpu_ms_per_meeting"]
                                                     for r in rs],
                    "postgres_cpu_ms_per_meeting": [round(r["cpu_s_by_program"].get("postgres", 0) * 1000
                                                          / r["leads"], 3) for r in rs],
                    "machine_cpu_ms_per_meeting": [round(sum(r["cpu_s_by_program"].values()) * 1000 / r["leads"], 3)
                                                   for r in rs],
                    "duplicates": sum(r["duplicates"] for r in rs), "missing": sum(r["missing"] for r in rs)}
        one, two = summary(runs[1]), summary(runs[2])
        out[f"prefetch_{prefetch}"] = {
            "one": one, "two": two,
            "speedup": [round(b / a, 2) for a, b in zip(one["meetings_per_s"], two["meetings_per_s"])]}
    return out


def idle(args):
    """Each service's RSS with nothing to do: started on an empty stack, measured a second after it is ready.
    (The pipeline's mailer starts with thousands of jobs waiting, so its first sample is not idle.)"""
    s = new_stack("bench_idle", args.tmp)
    s.start_standin()
    svcs = [s.service(name, LOG_LEVEL="warn") for name in ("scheduler-worker", "mailer-worker", "oauth-gateway")]
    time.sleep(1.0)
    result = {svc.name: {"rss_idle_mib": round(proc_stats(svc.proc.pid)[1], 1)} for svc in svcs}
    close_stack(s)
    return result


def sent_count(s):
    return s.one("SELECT count(*) FROM mail_deliveries WHERE status = 'sent'")[0]


def mailer(s, jobs, args):
    """The mailer draining the run's mail jobs into the SMTP sink (Python's aiosmtpd, itself a bound).

    cpu_s counts from the process's start (connecting, the first statements prepared); the steady figure
    counts only between the moments a tenth and nine tenths of the mails are recorded sent, so start-up
    and the drain's tail are left out. smtp_connections is the mailer's own count of the SMTP connections it
    opened (mailer_smtp_connections_total; a mail over a reused connection opens none)."""
    svc = s.service("mailer-worker", LOG_LEVEL="warn")
    pid = svc.proc.pid
    idle = proc_stats(pid)
    t0 = time.time()
    perf = None
    if args.mailer_perf:
        perf = subprocess.Popen(["perf", "record", "-g", "-F", "1999", "-p", str(pid), "-o", args.mailer_perf],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marks = []

    def progress():
        n = sent_count(s)
        cpu = proc_stats(pid)[0]
        if (not marks and n >= jobs // 10) or (len(marks) == 1 and n >= jobs * 9 // 10):
            marks.append((n, cpu, time.time()))
        return n >= jobs
    wait_for(progress, 600, interval=0.1, what=f"{jobs} mails")
    seconds = time.time() - t0
    busy = proc_stats(pid)
    if perf:
        perf.send_signal(signal.SIGINT)
        perf.wait()
    connects = svc.metrics().get("mailer_smtp_connections_total")
    result = {"mails": jobs, "mails_per_s": round(jobs / seconds, 1), "cpu_s": round(busy[0] - idle[0], 2),
              "cpu_ms_per_mail": round((busy[0] - idle[0]) * 1000 / jobs, 3),
              "rss_at_start_mib": round(idle[1], 1), "rss_peak_mib": round(busy[2], 1),
              "smtp_connections": int(connects) if connects is not None else None}
    if len(marks) == 2 and marks[1][0] > marks[0][0]:
        (n0, c0, t0), (n1, c1, t1) = marks
        result["steady"] = {"mails": n1 - n0, "cpu_ms_per_mail": round((c1 - c0) * 1000 / (n1 - n0), 3),
                            "mails_per_s": round((n1 - n0) / (t1 - t0), 1)}
    return result


def delay_accuracy(args):
    """The real 10 s delay at args.rate leads/s: row time - publish time - 10 s."""
    s = new_stack("bench_delay", args.tmp)
    s.start_standin()
    count = int(args.rate * args.delay_seconds)
    leads = make_world(s, max(10, args.rate // 8), count)
    s.service("scheduler-worker", SCHEDULE_DELAY_MS="10000", LOG_LEVEL="warn")
    published = publish(s, args.build, leads, rate=args.rate)
    wait_for(lambda: s.one("SELECT count(*) FROM calendar_meetings")[0] >= count, 60 + args.delay_seconds,
             interval=0.2, what="delayed meetings")
    err = [r[1] - published[r[0]] - 10000 for r in rows_by_lead(s, leads)]
    close_stack(s)
    return {"rate_per_s": args.rate, "leads": count,
            "error_ms": {"min": min(err), "p50": pct(err, 50), "p90": pct(err, 90), "p99": pct(err, 99),
                         "max": max(err), "mean": round(statistics.mean(err), 1)}}


def amqp_ceiling(args):
    s = new_stack("bench_amqp", args.tmp)
    tool = os.path.join(args.build, "tests", "bench", "bench-amqp")
    out = subprocess.run([tool, "ceiling", s.amqp_url, str(args.leads)], capture_output=True, text=True, check=True)
    close_stack(s)
    return json.loads(out.stdout)


def pgbench(args, dbname, script=None, select_only=False, clients=8, seconds=10):
    """Transactions per second of pgbench against the stack's server."""
    cmd = ["pgbench", "-h", "127.0.0.1", "-p", os.environ["TEST_PG_PORT"], "-U", "postgres", "-n",
           "-c", str(clients), "-j", "2", "-T", str(seconds)]
    logs = os.path.join(args.tmp, "pgbench-latency")
    if select_only:
        # A tenth of the transactions' latencies, for the p99 the gateway's is compared with.
        shutil.rmtree(logs, ignore_errors=True)
        os.makedirs(logs)
        cmd += ["-S", "-l", "--sampling-rate=0.1", "--log-prefix=" + os.path.join(logs, "tx")]
    if script:
        cmd += ["-f", script]
    out = subprocess.run(cmd + [dbname], capture_output=True, text=True, check=True).stdout
    tps = float(re.search(r"tps = ([0-9.]+)", out).group(1))
    lat = re.search(r"latency average = ([0-9.]+) ms", out)
    result = {"tps": round(tps, 1), "latency_avg_ms": float(lat.group(1)) if lat else None, "clients": clients}
    if select_only:
        # Each line: client, transaction, latency in microseconds, script, epoch seconds, microseconds.
        us = sorted(int(line.split()[2]) for f in os.listdir(logs) for line in open(os.path.join(logs, f)))
        result["p50_ms"] = round(us[len(us) // 2] / 1000, 2)
        result["p99_ms"] = round(us[min(len(us) - 1, len(us) * 99 // 100)] / 1000, 2)
    return result


def pg_ceiling(args):
    """Bare inserts of meeting rows, one per transaction, as many connections as the scheduler's pool."""
    s = new_stack("bench_pg", args.tmp)
    s.query("CREATE TABLE bench_meetings (LIKE calendar_meetings INCLUDING DEFAULTS INCLUDING INDEXES)")
    script = os.path.join(args.tmp, "insert.sql")
    with open(script, "w") as f:
        f.write("INSERT INTO bench_meetings (user_id, lead_analytics_id, google_event_id, google_calendar_id,"
                " meeting_title, attendee_email, meeting_start_time, meeting_end_time, timezone, status,"
                " meet_link, html_link, meeting_description) VALUES (gen_random_uuid(), gen_random_uuid(),"
                " md5(random()::text), 'primary', 'John Smith + TechCorp + Demo', 'lead@example.com',"
                " now() + interval '1 day', now() + interval '1 day 30 minutes', 'Asia/Kolkata', 'scheduled',"
                " 'https://meet.google.com/abc-defg-hij', 'https://www.google.com/calendar/event?eid=x',"
                " repeat('Lead context and the AI analysis. ', 20));\n")
    result = pgbench(args, s.dbname, script=script, clients=8, seconds=args.pg_seconds)
    close_stack(s)
    return result


def wrk(url, token, seconds, connections=32):
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-H",
                          f"Authorization: Bearer {token}", url], capture_output=True, text=True, check=True).stdout
    if "Requests/sec" not in out:
        raise RuntimeError("wrk: " + out)
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))

    def ms(text):
        v, unit = re.match(r"([0-9.]+)(us|ms|s|m)", text).groups()
        return round(float(v) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit], 3)
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    requests = re.search(r"(\d+) requests in", out)
    return {"rps": round(rps, 1), "p50_ms": p50, "p99_ms": p99, "connections": connections,
            "requests": int(requests.group(1)) if requests else round(rps * seconds),
            "errors": int(non2xx.group(1)) if non2xx else 0}


def gateway(args):
    """Status and meetings list under wrk, beside pgbench -S on the same server."""
    s = new_stack("bench_gateway", args.tmp)
    s.start_standin()
    user = s.add_user()
    s.connect_calendar(user, "g@example.com")
    with s.db().cursor() as cur:
        for i in range(20):
            cur.execute("INSERT INTO calendar_meetings (user_id, google_event_id, google_calendar_id, meeting_title,"
                        " attendee_email, meeting_start_time, meeting_end_time, timezone, status) VALUES"
                        " (%s, %s, 'primary', 'Demo', 'lead@example.com', now() + make_interval(days => %s),"
                        " now() + make_interval(days => %s, mins => 30), 'Asia/Kolkata', 'scheduled')",
                        (user, "ev" + uuid.uuid4().hex, i + 1, i + 1))
    gw = s.service("oauth-gateway", LOG_LEVEL="warn")
    idle = proc_stats(gw.proc.pid)
    token = jwt(user)
    base = gw.health_url
    subprocess.run(["pgbench", "-h", "127.0.0.1", "-p", os.environ["TEST_PG_PORT"], "-U", "postgres", "-i", "-q",
                    "-s", "1", s.dbname], capture_output=True, check=True)
    # Interleaved, twice each: this machine's speed drifts by a third within minutes.
    rounds = []
    for _ in range(2):
        rounds.append((pgbench(args, s.dbname, select_only=True, clients=32, seconds=args.wrk_seconds),
                       wrk(base + "/api/integrations/google/status", token, args.wrk_seconds)))
    meetings = wrk(base + "/api/calendar/meetings?limit=20", token, args.wrk_seconds)
    # No JWT, no database: the floor this machine puts under any answer's tail at this concurrency.
    healthz = wrk(base + "/healthz", token, args.wrk_seconds)
    busy = proc_stats(gw.proc.pid)
    close_stack(s)
    requests = sum(r[1]["requests"] for r in rounds) + meetings["requests"] + healthz["requests"]
    ceiling = {"tps": round(statistics.mean(r[0]["tps"] for r in rounds), 1), "clients": 32,
               "p50_ms": max(r[0]["p50_ms"] for r in rounds), "p99_ms": max(r[0]["p99_ms"] for r in rounds),
               "rounds": [r[0]["tps"] for r in rounds]}
    status = {"rps": round(statistics.mean(r[1]["rps"] for r in rounds), 1),
              "p50_ms": max(r[1]["p50_ms"] for r in rounds), "p99_ms": max(r[1]["p99_ms"] for r in rounds),
              "connections": 32, "errors": sum(r[1]["errors"] for r in rounds),
              "rounds": [r[1]["rps"] for r in rounds]}
    return {"status": status, "meetings": meetings, "healthz": healthz, "pgbench_select_only": ceiling,
            "status_vs_pgbench": round(status["rps"] / ceiling["tps"], 3),
            "gateway": {"cpu_s": round(busy[0] - idle[0], 2), "requests": requests,
                        "cpu_ms_per_request": round((busy[0] - idle[0]) * 1000 / max(1, requests), 4),
                        "rss_idle_mib": round(idle[1], 1), "rss_peak_mib": round(busy[2], 1)}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--leads", type=int, default=5000)
    ap.add_argument("--prefetch", type=int, default=256)
    ap.add_argument("--rate", type=int, default=100)
    ap.add_argument("--delay-seconds", type=int, default=20)
    ap.add_argument("--wrk-seconds", type=int, default=10)
    ap.add_argument("--pg-seconds", type=int, default=10)
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--only", default="idle,amqp,pg,l0,l100,delay,gateway",
                    help="parts to run; also scale (one scheduler against two), not run by default")
    ap.add_argument("--scale-prefetch", default="64,256", help="the PREFETCH values of the scale part")
    ap.add_argument("--perf", metavar="FILE", help="perf record -a -g while each pipeline works, into FILE.<part>")
    ap.add_argument("--no-mail", dest="mail", action="store_false", help="skip the mailer's drain after L=100")
    ap.add_argument("--mailer-perf", metavar="FILE", help="perf record -g -p <mailer> while it drains, into FILE")
    args = ap.parse_args()
    parts = args.only.split(",")
    report = {"machine": machine(), "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    steps = [("idle", "idle", idle), ("amqp_ceiling", "amqp", amqp_ceiling), ("pg_ceiling", "pg", pg_ceiling),
             ("pipeline_l0", "l0", lambda a: pipeline(argparse.Namespace(**dict(vars(a), mail=False)), 0, "l0")),
             ("pipeline_l100", "l100", lambda a: pipeline(a, 100, "l100")),
             ("delay", "delay", delay_accuracy), ("gateway", "gateway", gateway), ("scale", "scale", scale)]
    try:
        for key, name, fn in steps:
            if name in parts:
                print(f"bench: {key} ...", file=sys.stderr, flush=True)
                report[key] = fn(args)
                print(json.dumps(report[key]), file=sys.stderr, flush=True)
    finally:
        for s in list(OPEN_STACKS):
            close_stack(s)
    lower = min(report["amqp_ceiling"]["per_second"], report["pg_ceiling"]["tps"]) \
        if "amqp_ceiling" in report and "pg_ceiling" in report else None
    if lower:
        report["lower_ceiling_per_s"] = lower
        for key in ("pipeline_l0", "pipeline_l100"):
            if key in report:
                report[key]["fraction_of_lower_ceiling"] = round(report[key]["meetings_per_s"] / lower, 3)
    report["services"] = services_summary(report)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps(report, indent=2))
    print_summary(report["services"])


# The code-health targets each service is read against (docs/benchmarks.md).
TARGETS = {"scheduler-worker": {"cpu_ms": 0.3, "rss_idle_mib": 11.0},
           "mailer-worker": {"cpu_ms": 0.25},
           "oauth-gateway": {"rss_idle_mib": 11.0}}


def services_summary(report):
    """Per service, from whichever parts ran: CPU per unit of its work (a booking at L=100, else L=0; a mail,
    steady state; a gateway request), idle RSS (the idle part, else the sample before the load) and peak RSS
    under load, each with its target when there is one."""
    out = {name: {} for name in ("scheduler-worker", "mailer-worker", "oauth-gateway")}
    pipe = report.get("pipeline_l100") or report.get("pipeline_l0")
    if pipe:
        sched = pipe["services"]["scheduler-worker"]
        out["scheduler-worker"].update(cpu_ms=sched["cpu_ms_per_meeting"], cpu_per="booking",
                                       cpu_from=f"pipeline at L={pipe['latency_ms']}",
                                       rss_idle_mib=sched["rss_idle_mib"], rss_peak_mib=sched["rss_peak_mib"])
        out["oauth-gateway"].update(rss_idle_mib=pipe["services"]["oauth-gateway"]["rss_idle_mib"])
    mail = (report.get("pipeline_l100") or {}).get("mailer")
    if mail:
        steady = mail.get("steady")
        out["mailer-worker"].update(cpu_ms=steady["cpu_ms_per_mail"] if steady else mail["cpu_ms_per_mail"],
                                    cpu_per="mail", cpu_from="steady drain" if steady else "whole drain",
                                    cpu_ms_whole_drain=mail["cpu_ms_per_mail"], rss_peak_mib=mail["rss_peak_mib"],
                                    smtp_connections=mail.get("smtp_connections"))
    gw = (report.get("gateway") or {}).get("gateway")
    if gw:
        out["oauth-gateway"].update(cpu_ms=gw["cpu_ms_per_request"], cpu_per="request", cpu_from="gateway part",
                                    rss_peak_mib=gw["rss_peak_mib"])
        out["oauth-gateway"].setdefault("rss_idle_mib", gw["rss_idle_mib"])
    for name, v in (report.get("idle") or {}).items():
        out[name]["rss_idle_mib"] = v["rss_idle_mib"]
    for name, targets in TARGETS.items():
        for key, limit in targets.items():
            if out[name].get(key) is not None:
                out[name].setdefault("targets", {})[key] = {"max": limit, "met": out[name][key] <= limit}
    return out


def print_summary(services):
    print("\nper service        CPU per unit (ms)           RSS idle / peak (MiB)   targets", file=sys.stderr)
    for name, v in services.items():
        cpu = f"{v['cpu_ms']:.3f} per {v['cpu_per']}" if v.get("cpu_ms") is not None else "-"
        rss = f"{v.get('rss_idle_mib', '-')} / {v.get('rss_peak_mib', '-')}"
        targets = ", ".join(f"{k} <= {t['max']}: {'met' if t['met'] else 'MISSED'}"
                            for k, t in v.get("targets", {}).items())
        print(f"{name:18} {cpu:27} {rss:23} {targets}", file=sys.stderr)


def machine():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024
    return {"cpus": os.cpu_count(), "cpu": model, "mem_mib": mem, "kernel": os.uname().release}


if __name__ == "__main__":
    main()
