#!/usr/bin/python3
"""Start and stop the real servers a test run (or the local stack) needs.

    stack.py start DIR [--only pg,rabbit,smtp,standin] [--rabbit-cluster]
    stack.py stop DIR
    stack.py rabbit-restart DIR [--node a|b|c]      kill a broker hard and start it again on its data
    stack.py rabbit-kill DIR [--node a|b|c] / rabbit-start DIR [--node a|b|c]
    stack.py rabbit-queues DIR [--vhost V]          queues with their leader and members (JSON)
    stack.py pg-stop DIR / pg-start DIR

`start` brings up PostgreSQL (initdb in DIR, loopback, a free port), RabbitMQ
(its own node name, ports, Erlang port mapper and data directory, and the
services' broker users, made by `gcalctl broker-users --apply` as deploy/
makes them), a real SMTP server that keeps every message in a Maildir, and
the Google stand-in. With --rabbit-cluster RabbitMQ is three nodes joined
into one cluster (start_rabbit_cluster), whose nodes can be killed and
started one by one (--node).
It applies every migration to a template database and writes DIR/env, a file
of `export NAME=value` lines that tests and services read. `stop` ends
everything recorded in DIR/pids.json, whatever state it is in, and is safe
to run twice. Nothing here relies on a server that happened to be running.

Only the Python standard library and Debian's packages are used.
"""

import argparse
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import base64
import secrets

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PG_BIN = None


def log(msg):
    print(f"stack: {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bindir():
    global PG_BIN
    if PG_BIN:
        return PG_BIN
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
        cand = out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        cand = ""
    # pg_config belongs to libpq-dev and may name a directory without a server.
    for d in [cand] + sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if d and os.path.exists(os.path.join(d, "initdb")) and os.path.exists(os.path.join(d, "postgres")):
            PG_BIN = d
            return d
    sys.exit("stack: no PostgreSQL server binaries found (apt-get install postgresql)")


def as_pg_user():
    """initdb and postgres refuse to run as root: drop to the postgres user."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        sys.exit("stack: running as root needs the 'postgres' system user (apt-get install postgresql)")
    return ["runuser", "-u", "postgres", "--"]


class Pids:
    def __init__(self, path):
        self.path = path
        self.data = {}
        if os.path.exists(path):
            with open(path) as f:
                self.data = json.load(f)

    def add(self, name, **info):
        self.data[name] = info
        self.save()

    def save(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f, indent=1)
        os.replace(tmp, self.path)


def wait_for(what, fn, timeout, proc=None, logfile=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        try:
            if fn():
                return
        except Exception:
            pass
        time.sleep(0.2)
    tail = ""
    if logfile and os.path.exists(logfile):
        with open(logfile, errors="replace") as f:
            tail = f.read()[-3000:]
    raise RuntimeError(f"{what} did not become ready in {timeout}s\n{tail}")


def start_pg(d, pids, env):
    bindir = pg_bindir()
    pgdir = os.path.join(d, "pg")
    os.makedirs(pgdir, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(pgdir, "postgres")
    port = int(env.get("PG_PORT") or free_port())
    data = os.path.join(pgdir, "data")
    subprocess.run(as_pg_user() + [os.path.join(bindir, "initdb"), "-D", data, "-A", "trust", "-U", "postgres",
                   "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"], check=True, stdout=subprocess.DEVNULL)
    opts = (f"-c listen_addresses=127.0.0.1 -p {port} -k {pgdir} -c fsync=off -c synchronous_commit=on "
            f"-c max_connections=300 -c shared_buffers=128MB")
    subprocess.run(as_pg_user() + [os.path.join(bindir, "pg_ctl"), "-D", data, "-o", opts, "-l",
                   os.path.join(pgdir, "log"), "-w", "-t", "60", "start"], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(data, "postmaster.pid")) as f:
        pid = int(f.readline())
    pids.add("postgres", pid=pid, kind="postgres", data=data, bindir=bindir, opts=opts)
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    env["TEST_PG_URL"] = url
    env["TEST_PG_PORT"] = str(port)
    env["TEST_PG_DATA"] = data
    env["TEST_PG_BIN"] = bindir
    apply_migrations(url, port)
    log(f"postgres on 127.0.0.1:{port}")


def psql(port, db, *args, **kw):
    return subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(port),
                           "-U", "postgres", "-d", db, *args], check=True, **kw)


def apply_migrations(url, port):
    """The template every test database is cloned from: all migrations, in lexical order."""
    psql(port, "postgres", "-c", "CREATE DATABASE gcal_template")
    for f in sorted(glob.glob(os.path.join(ROOT, "migrations", "*.sql"))):
        psql(port, "gcal_template", "-f", f, stdout=subprocess.DEVNULL)
    psql(port, "postgres", "-c", "ALTER DATABASE gcal_template WITH IS_TEMPLATE true")


def rabbit_api(port, method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.read()


def broker_users(port, amqp_ports, build_dir, env):
    """Each service's own broker user with a fresh password, permitted on the vhost "/" (the local stack's);
    the e2e harness grants the same users on each test's vhost (tests/e2e/harness.py).
    TEST_AMQP_URL_<ROLE> is the broker URL (no vhost) of each: GATEWAY, SCHEDULER, MAILER, WEBHOOK, OPS; with a
    cluster, one URL per node, comma-separated.

    guest is also given the `impersonator` tag, here and nowhere else: a test can then publish through
    the management API as another broker user would (the user-id property of its choice), e.g. a command
    as the gateway publishes it. The services' users have no tags at all."""
    gcalctl = os.path.join(build_dir, "services", "gcalctl", "gcalctl")
    if not os.path.exists(gcalctl):
        sys.exit(f"stack: {gcalctl} is missing: build first (meson compile -C {build_dir})")
    grants = json.loads(subprocess.run([gcalctl, "broker-users", "--json"], capture_output=True, text=True,
                                       check=True).stdout)
    penv = dict(os.environ, RABBITMQ_API_URL=f"http://guest:guest@127.0.0.1:{port}/api", LOG_LEVEL="warn")
    for g in grants:
        password = secrets.token_hex(16)
        penv[g["role"].upper() + "_AMQP_PASSWORD"] = password
        env["TEST_AMQP_URL_" + g["role"].upper()] = ",".join(f"amqp://{g['user']}:{password}@127.0.0.1:{p}"
                                                             for p in amqp_ports)
    p = subprocess.run([gcalctl, "broker-users", "--apply", "--vhost", "/"], env=penv, capture_output=True,
                       text=True)
    if p.returncode != 0:
        raise RuntimeError(f"gcalctl broker-users --apply failed:\n{p.stdout}{p.stderr}")
    rabbit_api(port, "PUT", "/users/guest", {"password": "guest", "tags": "administrator,impersonator"})


RABBIT_ERL_ARGS = "-kernel inet_dist_use_interface {127,0,0,1}"
# Three Erlang VMs share the machine with everything else: no scheduler spins waiting for work, and fewer
# I/O threads than the default 128.
RABBIT_LEAN_ARGS = "+sbwt none +sbwtdcpu none +sbwtdio none +A 16"


def rabbit_conf(rdir, amqp, mgmt, extra=""):
    with open(os.path.join(rdir, "rabbitmq.conf"), "w") as f:
        f.write(f"listeners.tcp.default = 127.0.0.1:{amqp}\n"
                f"management.tcp.port = {mgmt}\nmanagement.tcp.ip = 127.0.0.1\n"
                "loopback_users = none\nlog.console = false\nlog.file.level = warning\n"
                "vm_memory_high_watermark.relative = 0.6\ndisk_free_limit.absolute = 50MB\n"
                # Queue depths in the management API lag by this much; tests read them.
                "collect_statistics_interval = 500\n" + extra)
    with open(os.path.join(rdir, "enabled_plugins"), "w") as f:
        f.write("[rabbitmq_management].\n")


def rabbit_env(rdir, home, node, dist, epmd, erl_args=RABBIT_ERL_ARGS):
    """The RABBITMQ_* and ERL_* variables of one node: its name, files and ports, loopback only."""
    return {"HOME": home, "RABBITMQ_NODENAME": node,
            "RABBITMQ_CONFIG_FILE": os.path.join(rdir, "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(rdir, "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": os.path.join(rdir, "mnesia"), "RABBITMQ_LOG_BASE": os.path.join(rdir, "log"),
            "RABBITMQ_DIST_PORT": str(dist), "ERL_EPMD_PORT": str(epmd),
            # Loopback only, like every other server here: the port mapper and the distribution port
            # otherwise listen on every interface.
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": erl_args,
            "RABBITMQ_CTL_ERL_ARGS": RABBIT_ERL_ARGS,
            "RABBITMQ_PID_FILE": os.path.join(rdir, "pid"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": os.path.join(rdir, "plugins-expand")}


def start_rabbit(d, pids, env, build_dir):
    rdir = os.path.join(d, "rabbit")
    os.makedirs(rdir, exist_ok=True)
    amqp = int(env.get("AMQP_PORT") or free_port())
    mgmt = free_port() if not env.get("RABBIT_MGMT_PORT") else int(env["RABBIT_MGMT_PORT"])
    dist, epmd = free_port(), free_port()
    rabbit_conf(rdir, amqp, mgmt)
    renv = rabbit_env(rdir, rdir, f"gcaltest{os.getpid()}@localhost", dist, epmd)
    run_rabbit(pids, "rabbitmq", rdir, renv, epmd, amqp, mgmt)
    env["TEST_AMQP_URL"] = f"amqp://guest:guest@127.0.0.1:{amqp}"
    env["TEST_AMQP_PORT"] = str(amqp)
    env["TEST_RABBITMQ_API"] = f"http://guest:guest@127.0.0.1:{mgmt}/api"
    env["TEST_RABBITMQ_MGMT_PORT"] = str(mgmt)
    env["TEST_RABBITMQ_DIR"] = rdir
    broker_users(mgmt, [amqp], build_dir, env)
    log(f"rabbitmq on 127.0.0.1:{amqp} (management {mgmt}), a broker user per service")


CLUSTER_NODES = "abc"
RABBIT_CLUSTER_ADVANCED = "[{rabbit, [{dead_letter_worker_publisher_confirm_timeout, 10000}]}].\n"


def start_rabbit_cluster(d, pids, env, build_dir):
    """Three RabbitMQ nodes on loopback made one cluster with `rabbitmqctl join_cluster`, before any queue
    exists, so every quorum queue declared later gets a member on each node (RabbitMQ's default initial group
    size is the whole cluster). The nodes share one Erlang cookie (a HOME of their own) and one port mapper;
    each has its own node name, AMQP, management and distribution ports and data directory.

    TEST_AMQP_URL and TEST_AMQP_URL_<ROLE> are then lists, node a first (AMQP_URL's comma-separated form, no
    vhost: tests/e2e/harness.py adds it to each entry); TEST_RABBITMQ_APIS lists each node's management API
    and TEST_RABBITMQ_NODES each node's letter=name, in the same order."""
    home = os.path.join(d, "rabbit-home")
    os.makedirs(home, exist_ok=True)
    cookie = os.path.join(home, ".erlang.cookie")
    with open(cookie, "w") as f:
        f.write(secrets.token_hex(20))
    os.chmod(cookie, 0o400)
    epmd = free_port()
    nodes = []
    for letter in CLUSTER_NODES:
        rdir = os.path.join(d, "rabbit-" + letter)
        os.makedirs(rdir, exist_ok=True)
        amqp, mgmt, dist = free_port(), free_port(), free_port()
        # A small Raft WAL: three nodes' quorum queues in memory on a shared machine.
        rabbit_conf(rdir, amqp, mgmt, "raft.wal_max_size_bytes = 16777216\n")
        with open(os.path.join(rdir, "advanced.config"), "w") as f:
            f.write(RABBIT_CLUSTER_ADVANCED)
        node = f"rabbit-{letter}-{os.getpid()}@localhost"
        renv = rabbit_env(rdir, home, node, dist, epmd, RABBIT_ERL_ARGS + " " + RABBIT_LEAN_ARGS)
        renv["RABBITMQ_ADVANCED_CONFIG_FILE"] = os.path.join(rdir, "advanced.config")
        nodes.append((letter, rdir, renv, amqp, mgmt))
    # The first node starts the port mapper the others register with.
    for i, (letter, rdir, renv, amqp, mgmt) in enumerate(nodes):
        spawn_rabbit(pids, "rabbitmq-" + letter, rdir, renv, epmd, amqp, mgmt)
        if i == 0:
            wait_rabbit(pids.data["rabbitmq-a"])
    for letter, *_ in nodes[1:]:
        wait_rabbit(pids.data["rabbitmq-" + letter])
    first = pids.data["rabbitmq-a"]
    for letter, *_ in nodes[1:]:
        info = pids.data["rabbitmq-" + letter]
        for args in (["stop_app"], ["reset"], ["join_cluster", first["env"]["RABBITMQ_NODENAME"]], ["start_app"]):
            rabbitmqctl(info, *args)
        wait_rabbit(info)
    names = sorted(pids.data["rabbitmq-" + l]["env"]["RABBITMQ_NODENAME"] for l in CLUSTER_NODES)
    wait_for("the cluster of three", lambda: sorted(n["name"] for n in json.loads(
        rabbit_api(first["mgmt_port"], "GET", "/nodes")) if n.get("running")) == names, 60)
    ports = [pids.data["rabbitmq-" + l]["amqp_port"] for l in CLUSTER_NODES]
    mgmts = [pids.data["rabbitmq-" + l]["mgmt_port"] for l in CLUSTER_NODES]
    env["TEST_AMQP_URL"] = ",".join(f"amqp://guest:guest@127.0.0.1:{p}" for p in ports)
    env["TEST_AMQP_PORT"] = str(ports[0])
    env["TEST_RABBITMQ_API"] = f"http://guest:guest@127.0.0.1:{mgmts[0]}/api"
    env["TEST_RABBITMQ_APIS"] = ",".join(f"http://guest:guest@127.0.0.1:{m}/api" for m in mgmts)
    env["TEST_RABBITMQ_MGMT_PORT"] = str(mgmts[0])
    env["TEST_RABBITMQ_NODES"] = ",".join(f"{l}={pids.data['rabbitmq-' + l]['env']['RABBITMQ_NODENAME']}"
                                          for l in CLUSTER_NODES)
    env["TEST_RABBITMQ_DIR"] = first["dir"]
    broker_users(mgmts[0], ports, build_dir, env)
    log("rabbitmq cluster of three on 127.0.0.1: " + ", ".join(
        f"{l} amqp {p} (management {m})" for l, p, m in zip(CLUSTER_NODES, ports, mgmts)))


def rabbitmqctl(info, *args, timeout=120):
    """rabbitmqctl against one node, with that node's cookie and port mapper; returns its stdout."""
    p = subprocess.run(["/usr/lib/rabbitmq/bin/rabbitmqctl", "-n", info["env"]["RABBITMQ_NODENAME"], *args],
                       env=dict(os.environ, **info["env"]), capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {info['env']['RABBITMQ_NODENAME']} failed:\n"
                           f"{p.stdout}{p.stderr}")
    return p.stdout


def spawn_rabbit(pids, name, rdir, renv, epmd, amqp, mgmt):
    out = open(os.path.join(rdir, "out.log"), "a")
    proc = subprocess.Popen(["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=dict(os.environ, **renv), stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)
    pids.add(name, pid=proc.pid, pgid=proc.pid, kind="rabbitmq", epmd_port=epmd, dir=rdir, env=renv,
             amqp_port=amqp, mgmt_port=mgmt)


def wait_rabbit(info):
    def alive():
        try:
            os.kill(info["pid"], 0)
            return True
        except ProcessLookupError:
            raise RuntimeError(f"rabbitmq {info['env']['RABBITMQ_NODENAME']} exited")
    logfile = os.path.join(info["dir"], "out.log")
    wait_for("rabbitmq", lambda: alive() and rabbit_api(info["mgmt_port"], "GET", "/overview"), 90,
             logfile=logfile)
    # The management API answers a little before the AMQP listener is up.
    wait_for("rabbitmq amqp listener",
             lambda: socket.create_connection(("127.0.0.1", info["amqp_port"]), 1).close() or True, 30)


def run_rabbit(pids, name, rdir, renv, epmd, amqp, mgmt):
    spawn_rabbit(pids, name, rdir, renv, epmd, amqp, mgmt)
    wait_rabbit(pids.data[name])


def rabbit_entry(pids, node):
    """The pids.json entry of a node: the single broker, or node a, b or c of a cluster."""
    name = "rabbitmq" if node is None else "rabbitmq-" + node
    if name not in pids.data:
        sys.exit(f"stack: no broker {name} in this stack")
    return name, pids.data[name]


def rabbit_kill(info):
    """SIGKILL, as a crash would, and wait until the VM is gone."""
    try:
        os.killpg(info["pgid"], signal.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.kill(info["pid"], 0)
            time.sleep(0.1)
        except ProcessLookupError:
            break


def cmd_rabbit_restart(d, node):
    """A broker crash and restart: SIGKILL, then the same node on the same data."""
    pids = Pids(os.path.join(d, "pids.json"))
    name, info = rabbit_entry(pids, node)
    rabbit_kill(info)
    run_rabbit(pids, name, info["dir"], info["env"], info["epmd_port"], info["amqp_port"], info["mgmt_port"])
    log(f"{name} restarted")


def cmd_rabbit_kill(d, node):
    pids = Pids(os.path.join(d, "pids.json"))
    name, info = rabbit_entry(pids, node)
    rabbit_kill(info)
    log(f"{name} killed")


def cmd_rabbit_start(d, node):
    """Start a killed node again on its data; a cluster node rejoins its cluster by itself."""
    pids = Pids(os.path.join(d, "pids.json"))
    name, info = rabbit_entry(pids, node)
    run_rabbit(pids, name, info["dir"], info["env"], info["epmd_port"], info["amqp_port"], info["mgmt_port"])
    log(f"{name} started")


def cmd_rabbit_queues(d, vhost):
    """Each queue of a vhost with its type, leader, members and the members online, as JSON on stdout, from
    `rabbitmqctl list_queues` on the first node that answers (no management API needed)."""
    pids = Pids(os.path.join(d, "pids.json"))
    errors = []
    for name, info in pids.data.items():
        if info.get("kind") != "rabbitmq":
            continue
        try:
            out = rabbitmqctl(info, "list_queues", "-p", vhost, "--formatter", "json", "-q", "name", "type",
                              "leader", "members", "online", timeout=60)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            errors.append(str(e))
            continue
        print(json.dumps(json.loads(out)))
        return
    sys.exit("stack: no node answered:\n" + "\n".join(errors))


def cmd_pg(d, action):
    info = Pids(os.path.join(d, "pids.json")).data["postgres"]
    ctl = as_pg_user() + [os.path.join(info["bindir"], "pg_ctl"), "-D", info["data"], "-w", "-t", "60"]
    if action == "stop":
        subprocess.run(ctl + ["-m", "fast", "stop"], check=True, stdout=subprocess.DEVNULL)
    else:
        subprocess.run(ctl + ["-o", info["opts"], "-l", os.path.join(os.path.dirname(info["data"]), "log"),
                              "start"], check=True, stdout=subprocess.DEVNULL)
    log(f"postgres {action}")


def start_smtp(d, pids, env):
    sdir = os.path.join(d, "smtp")
    maildir = os.path.join(sdir, "maildir")
    os.makedirs(sdir, exist_ok=True)
    port = int(env.get("SMTP_PORT") or free_port())
    out = open(os.path.join(sdir, "out.log"), "w")
    proc = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "smtp_sink.py"), "--port", str(port),
                             "--maildir", maildir], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    pids.add("smtp", pid=proc.pid, pgid=proc.pid, kind="plain")
    wait_for("smtp sink", lambda: socket.create_connection(("127.0.0.1", port), 1).close() or True, 20, proc,
             os.path.join(sdir, "out.log"))
    env["TEST_SMTP_URL"] = f"smtp://127.0.0.1:{port}"
    env["TEST_SMTP_PORT"] = str(port)
    env["TEST_MAILDIR"] = maildir
    log(f"smtp sink on 127.0.0.1:{port}, maildir {maildir}")


def start_standin(d, pids, env, build_dir, extra):
    binary = os.path.join(build_dir, "tests", "google-standin", "google-standin")
    if not os.path.exists(binary):
        sys.exit(f"stack: {binary} is missing: build first (meson compile -C {build_dir})")
    port = env.get("STANDIN_PORT") or "0"
    out = open(os.path.join(d, "standin.log"), "w")
    proc = subprocess.Popen([binary, "--listen", f"127.0.0.1:{port}", *extra], stdout=subprocess.PIPE,
                            stderr=out, start_new_session=True, text=True)
    line = proc.stdout.readline()
    if not line:
        sys.exit("stack: the Google stand-in exited at start; see " + os.path.join(d, "standin.log"))
    url = json.loads(line)["listening"]
    pids.add("standin", pid=proc.pid, pgid=proc.pid, kind="plain")
    env["TEST_GOOGLE_URL"] = url
    log(f"google stand-in on {url}")


def stop_pid(name, info):
    pid = info.get("pid")
    if info.get("kind") == "postgres":
        subprocess.run(as_pg_user() + [os.path.join(info["bindir"], "pg_ctl"), "-D", info["data"], "-m",
                       "immediate", "-w", "-t", "20", "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    targets = []
    if info.get("pgid"):
        targets.append(("group", info["pgid"]))
    if pid:
        targets.append(("pid", pid))
    # A test broker's data is thrown away, so there is nothing to shut down cleanly.
    sigs = (signal.SIGKILL,) if info.get("kind") == "rabbitmq" else (signal.SIGTERM, signal.SIGKILL)
    for sig in sigs:
        alive = False
        for kind, ident in targets:
            try:
                if kind == "group":
                    os.killpg(ident, sig)
                else:
                    os.kill(ident, sig)
                alive = True
            except ProcessLookupError:
                pass
            except PermissionError:
                pass
        if not alive:
            break
        deadline = time.time() + (8 if sig == signal.SIGTERM else 3)
        while time.time() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            continue
        break
    if info.get("kind") == "rabbitmq" and info.get("epmd_port"):
        # RabbitMQ starts an Erlang port mapper as a daemon outside its process group.
        port = str(info["epmd_port"])
        subprocess.run(["pkill", "-KILL", "-f", f"epmd.*-port {port}"], stderr=subprocess.DEVNULL)
        for p in glob.glob("/proc/[0-9]*"):
            try:
                with open(os.path.join(p, "environ"), "rb") as f:
                    envb = f.read()
                with open(os.path.join(p, "comm")) as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if comm == "epmd" and f"ERL_EPMD_PORT={port}".encode() in envb:
                try:
                    os.kill(int(os.path.basename(p)), signal.SIGKILL)
                except ProcessLookupError:
                    pass


def cmd_stop(d):
    path = os.path.join(d, "pids.json")
    if not os.path.exists(path):
        return
    pids = Pids(path)
    for name in reversed(list(pids.data)):
        stop_pid(name, pids.data[name])
    os.remove(path)
    log(f"stopped everything under {d}")


def cmd_start(d, only, build_dir, standin_args, cluster=False):
    os.makedirs(d, exist_ok=True)
    pids = Pids(os.path.join(d, "pids.json"))
    env = {k: v for k, v in os.environ.items() if k in ("PG_PORT", "AMQP_PORT", "RABBIT_MGMT_PORT",
                                                          "SMTP_PORT", "STANDIN_PORT")}
    try:
        if "pg" in only:
            start_pg(d, pids, env)
        if "rabbit" in only and cluster:
            start_rabbit_cluster(d, pids, env, build_dir)
        elif "rabbit" in only:
            start_rabbit(d, pids, env, build_dir)
        if "smtp" in only:
            start_smtp(d, pids, env)
        if "standin" in only:
            start_standin(d, pids, env, build_dir, standin_args)
    except BaseException:
        cmd_stop(d)
        raise
    env["TEST_STACK_DIR"] = d
    with open(os.path.join(d, "env"), "w") as f:
        for k, v in sorted(env.items()):
            if k.startswith("TEST_"):
                f.write(f"export {k}='{v}'\n")
    log(f"environment written to {os.path.join(d, 'env')}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["start", "stop", "rabbit-restart", "rabbit-kill", "rabbit-start",
                                       "rabbit-queues", "pg-stop", "pg-start"])
    ap.add_argument("dir")
    ap.add_argument("--only", default="pg,rabbit,smtp,standin")
    ap.add_argument("--rabbit-cluster", action="store_true", help="three RabbitMQ nodes as one cluster")
    ap.add_argument("--node", choices=list(CLUSTER_NODES), help="the cluster node to kill, start or restart")
    ap.add_argument("--vhost", default="/")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--standin-arg", action="append", default=[])
    a = ap.parse_args()
    d = os.path.abspath(a.dir)
    if a.action == "start":
        cmd_start(d, a.only.split(","), a.build_dir, a.standin_arg, a.rabbit_cluster)
    elif a.action == "rabbit-restart":
        cmd_rabbit_restart(d, a.node)
    elif a.action == "rabbit-kill":
        cmd_rabbit_kill(d, a.node)
    elif a.action == "rabbit-start":
        cmd_rabbit_start(d, a.node)
    elif a.action == "rabbit-queues":
        cmd_rabbit_queues(d, a.vhost)
    elif a.action in ("pg-stop", "pg-start"):
        cmd_pg(d, a.action[3:])
    else:
        cmd_stop(d)


if __name__ == "__main__":
    main()
