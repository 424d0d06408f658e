"""What an end-to-end test needs from the run's real servers.

tests/run starts one PostgreSQL, one RabbitMQ and one SMTP server for the
whole run (tests/harness/stack.py) and exports where they are (TEST_*). Each
test gets its own database (cloned from the migrated template), its own
RabbitMQ virtual host, its own Google stand-in, and its own services, so
tests never see each other's state and can run in any order.

    def test_x(stack):
        s = stack("x")                      # database + vhost + stand-in named after the test
        sched = s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
        s.publish("leads", "lead.analyzed", {...})
        s.wait_for(lambda: s.query("SELECT ...") == ...)

Each service connects as its own broker user (tests/harness/stack.py makes
them; each test's vhost grants them exactly what `gcalctl broker-users`
says), so every test runs under the permissions deploy/ gives. Stack.publish()
and the queue helpers use the administrator (guest).

Only Debian's python3-psycopg2 and python3-requests are needed.
"""

import base64
import datetime
import hashlib
import hmac
import itertools
import json
import mailbox
import os
import re
import signal
import subprocess
import time
import urllib.parse
import uuid

import psycopg2
import requests

import logscan
from standin import Standin

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD_DIR") or os.path.join(ROOT, "build")
TOKEN_KEY = "1:" + base64.b64encode(b"k" * 32).decode()
JWT_SECRET = "e2e-jwt-secret-0123456789abcdef-0123456789"  # the gateway takes 32 bytes or more
# The broker user of each service, and of the other publishers (gcalctl "ops", the platform's "webhook").
SERVICE_ROLES = {"oauth-gateway": "gateway", "scheduler-worker": "scheduler", "mailer-worker": "mailer"}
_GRANTS = None


def broker_grants():
    """lib/topology's grants as gcalctl prints them: [{role, user, who, configure, write, read}]."""
    global _GRANTS
    if _GRANTS is None:
        gcalctl = os.path.join(BUILD, "services", "gcalctl", "gcalctl")
        _GRANTS = json.loads(subprocess.run([gcalctl, "broker-users", "--json"], capture_output=True, text=True,
                                            check=True).stdout)
    return _GRANTS


def broker_user(role):
    """The broker user name of a role ("gateway" -> "gcal-gateway")."""
    return next(g["user"] for g in broker_grants() if g["role"] == role)


def require(name):
    v = os.environ.get(name)
    if not v:
        raise RuntimeError(f"{name} is not set: run the suite through tests/run, which starts the servers")
    return v


_DEMO_SLOTS = itertools.count()


def next_demo_time():
    """A demo time no other lead of this test process has (half-hour slots from 2099-01-01 09:00 +05:30), so two
    leads of one user never clash in the rep's calendar and the scheduler's conflict check passes them both."""
    n = next(_DEMO_SLOTS)
    t = datetime.datetime(2099, 1, 1, 9, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=5, minutes=30)))
    return (t + datetime.timedelta(minutes=30 * n)).isoformat()


def with_vhost(urls, vhost):
    """A broker URL, or AMQP_URL's comma-separated list of them (a cluster's nodes), with the vhost on each."""
    return ",".join(u + "/" + vhost for u in urls.split(","))


_PORTS_GIVEN = set()


def free_port():
    """A free loopback port, never one this process handed out before: the kernel may offer a port again as soon
    as the probing socket is closed, and a gateway once got the same port for LISTEN_ADDR and METRICS_ADDR."""
    import socket
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port


def jwt(user_id, secret=JWT_SECRET, exp_in=3600, claim="sub", alg="HS256", extra=None):
    """An HS256 JWT as the platform issues them; a claim given as None in extra is left out."""
    def b64(d):
        return base64.urlsafe_b64encode(d).rstrip(b"=").decode()
    header = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = {claim: user_id, "exp": int(time.time()) + exp_in, "iat": int(time.time())}
    payload.update(extra or {})
    payload = {k: v for k, v in payload.items() if v is not None}
    body = b64(json.dumps(payload).encode())
    sig = b64(hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest())
    return f"{header}.{body}.{sig}"


def wait_for(fn, timeout=20.0, interval=0.05, what="condition"):
    """Poll fn until it returns something truthy; return that, or fail after timeout."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")


class Service:
    """One of our binaries, started with an environment and stopped cleanly."""

    def __init__(self, name, env, log_path, health_url, metrics_url=None):
        self.name = name
        self.env = env
        self.log_path = log_path
        self.health_url = health_url
        self.metrics_url = metrics_url or health_url  # the gateway's /metrics is off its public listener
        self.proc = None

    def start(self, wait_ready=True):
        binary = os.path.join(BUILD, "services", self.name, self.name)
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen([binary], env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        if wait_ready:
            wait_for(self.ready, 30, what=f"{self.name} /readyz")
        return self

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.logs()[-3000:]}")
        try:
            return requests.get(self.health_url + "/readyz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def metrics(self):
        text = requests.get(self.metrics_url + "/metrics", timeout=5).text
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                out[k] = float(v)
        return out

    def logs(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def log_lines(self):
        return [json.loads(line) for line in self.logs().splitlines() if line.startswith("{")]

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.name} did not stop within {timeout}s after SIGTERM")

    def kill(self):
        """SIGKILL, as a crash would."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Stack:
    """A test's private slice of the shared servers, plus its own services."""

    def __init__(self, name, tmpdir):
        digest = hashlib.sha1(name.encode()).hexdigest()[:6]
        self.name = re.sub(r"[^a-z0-9_]", "_", name.lower())[:32] + "_" + digest
        self.tmp = tmpdir
        self.pg_port = require("TEST_PG_PORT")
        self.api = require("TEST_RABBITMQ_API")
        # A cluster's nodes each serve the management API (tests/harness/stack.py --rabbit-cluster).
        self.apis = [a for a in os.environ.get("TEST_RABBITMQ_APIS", "").split(",") if a] or [self.api]
        self.smtp_url = require("TEST_SMTP_URL")
        self.maildir = require("TEST_MAILDIR")
        self.services = []
        self.standin = None
        self._db = None
        self.database_url = self._create_database()
        self.vhost = self.name
        self.amqp_url = self._create_vhost()

    # Infrastructure

    def _admin_conn(self):
        c = psycopg2.connect(host="127.0.0.1", port=self.pg_port, user="postgres", dbname="postgres")
        c.autocommit = True
        return c

    def _create_database(self):
        db = "e_" + self.name
        # Not "with c": psycopg2 2.9 opens a transaction there even in autocommit, and CREATE DATABASE refuses one.
        c = self._admin_conn()
        try:
            with c.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
                cur.execute(f'CREATE DATABASE "{db}" TEMPLATE gcal_template')
        finally:
            c.close()
        self.dbname = db
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/{db}"

    def _rabbit(self, method, path, **kw):
        """The management API of self.api, or of the next cluster node when that one does not answer."""
        apis = [self.api] + [a for a in self.apis if a != self.api]
        for api in apis:
            try:
                return requests.request(method, api + path, timeout=20, **kw)
            except requests.ConnectionError:
                if api == apis[-1]:
                    raise

    def _create_vhost(self):
        self._rabbit("DELETE", f"/vhosts/{self.name}")
        r = self._rabbit("PUT", f"/vhosts/{self.name}", json={})
        assert r.status_code in (201, 204), r.text
        r = self._rabbit("PUT", f"/permissions/{self.name}/guest",
                         json={"configure": ".*", "write": ".*", "read": ".*"})
        assert r.status_code in (201, 204), r.text
        # Each service's own user, with exactly its grant on this vhost.
        self.amqp_urls = {}
        for g in broker_grants():
            r = self._rabbit("PUT", f"/permissions/{self.name}/{g['user']}",
                             json={k: g[k] for k in ("configure", "write", "read")})
            assert r.status_code in (201, 204), r.text
            self.amqp_urls[g["role"]] = with_vhost(require("TEST_AMQP_URL_" + g["role"].upper()), self.name)
        return with_vhost(require("TEST_AMQP_URL"), self.name)

    def amqp_url_for(self, role):
        """The AMQP URL of this test's vhost as a role's broker user: gateway, scheduler, mailer, webhook, ops."""
        return self.amqp_urls[role]

    def start_standin(self, **flags):
        flags.setdefault("timezone", "Asia/Kolkata")
        self.standin = Standin().start(**flags)
        return self.standin

    # Services

    def env(self, **overrides):
        """The services' environment: every variable, pointing at this test's servers (None unsets one)."""
        if self.standin is None:
            self.start_standin()
        g = self.standin.url
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DATABASE_URL": self.database_url,
            "AMQP_URL": self.amqp_url,
            "GOOGLE_CLIENT_ID": "standin-client-id",
            "GOOGLE_CLIENT_SECRET": "standin-client-secret",
            "GOOGLE_REDIRECT_URI": "http://127.0.0.1:1/api/integrations/google/callback",
            "GOOGLE_AUTH_URL": g + "/o/oauth2/v2/auth",
            "GOOGLE_TOKEN_URL": g + "/token",
            "GOOGLE_REVOKE_URL": g + "/revoke",
            "GOOGLE_USERINFO_URL": g + "/oauth2/v2/userinfo",
            "GOOGLE_CALENDAR_API_URL": g + "/calendar/v3",
            "TOKEN_ENCRYPTION_KEY": TOKEN_KEY,
            "JWT_SECRET": JWT_SECRET,
            "FRONTEND_URL": "http://127.0.0.1:3000/integrations",
            "SMTP_URL": self.smtp_url,
            # The run's SMTP sink (tests/harness/smtp_sink.py) is plain SMTP on loopback, without STARTTLS.
            "SMTP_REQUIRE_TLS": "off",
            "MAIL_FROM": "Calendar Bot <calendar@example.com>",
            "DEFAULT_TIMEZONE": "Asia/Kolkata",
            # The tests book fixed times in 2099, which stay ahead whenever they run; the default horizon is
            # tested on its own (test_gateway.py).
            "BOOKING_HORIZON_DAYS": "36500",
            "LOG_LEVEL": "debug",
            "GNUTLS_NO_IMPLICIT_INIT": "1",  # as deploy/ runs the services
            "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        }
        for k, v in overrides.items():
            if v is None:
                env.pop(k, None)  # unset: the service's own default applies
            else:
                env[k] = str(v)
        return env

    def service(self, name, start=True, **overrides):
        """Start one of the three services with this test's environment, as its own broker user; the
        scheduler takes commands from the gateway's (COMMAND_AMQP_USERS), as deploy/ configures it."""
        port = free_port()
        key = "LISTEN_ADDR" if name == "oauth-gateway" else "METRICS_ADDR"
        overrides.setdefault(key, f"127.0.0.1:{port}")
        if name == "oauth-gateway":
            overrides.setdefault("METRICS_ADDR", f"127.0.0.1:{free_port()}")
        overrides.setdefault("AMQP_URL", self.amqp_url_for(SERVICE_ROLES[name]))
        if name == "scheduler-worker":
            overrides.setdefault("COMMAND_AMQP_USERS", broker_user("gateway"))
        env = self.env(**overrides)
        health = "http://" + env[key]
        svc = Service(name, env, os.path.join(self.tmp, f"{name}-{len(self.services)}.log"), health,
                      "http://" + env["METRICS_ADDR"])
        self.services.append(svc)
        if start:
            svc.start()
        return svc

    # Database

    def db(self):
        if self._db is None or self._db.closed:
            self._db = psycopg2.connect(self.database_url)
            self._db.autocommit = True
        return self._db

    def query(self, sql, *params):
        for attempt in (1, 2):
            try:
                with self.db().cursor() as cur:
                    cur.execute(sql, params)
                    return cur.fetchall() if cur.description else None
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                # The server restarted under us (the fault suite does that): reconnect once.
                self._db = None
                if attempt == 2:
                    raise

    def one(self, sql, *params):
        rows = self.query(sql, *params)
        return rows[0] if rows else None

    def add_user(self, email=None, name="Owner"):
        uid = str(uuid.uuid4())
        self.query("INSERT INTO users (id, email, name) VALUES (%s, %s, %s)", uid,
                   email or f"owner-{uid[:8]}@example.com", name)
        return uid

    def connect_calendar(self, user_id, email=None, expires_in=3600, timezone=None):
        """Give the user tokens from the stand-in's real OAuth flow, sealed as the gateway would."""
        tokens = self.standin.connect(email or f"g-{user_id[:8]}@example.com")
        self.query("UPDATE users SET google_access_token = %s, google_refresh_token = %s,"
                   " google_token_expiry = now() + make_interval(secs => %s), google_calendar_connected = TRUE,"
                   " google_calendar_id = 'primary', google_email = %s, google_calendar_timezone = %s"
                   " WHERE id = %s",
                   seal(tokens["access_token"], user_id), seal(tokens["refresh_token"], user_id), expires_in,
                   email or f"g-{user_id[:8]}@example.com", timezone, user_id)
        return tokens

    def add_lead(self, user_id, demo="next", email="lead@example.com", name="John Smith",
                 company="TechCorp", phone=None, contact_email=None, analysis_type="individual", **extra):
        """A call and its lead; demo "next" is a time of its own (next_demo_time()), None no time at all."""
        demo = next_demo_time() if demo == "next" else demo
        phone = phone or "+91" + str(uuid.uuid4().int)[:10]
        call = str(uuid.uuid4())
        transcript = str(uuid.uuid4())
        lead = str(uuid.uuid4())
        self.query("INSERT INTO calls (id, user_id, phone_number, recording_url, status) VALUES (%s, %s, %s, %s,"
                   " 'completed')", call, user_id, phone, f"https://rec.example.com/{call}.mp3")
        self.query("INSERT INTO transcripts (id, call_id, user_id, content) VALUES (%s, %s, %s, %s)",
                   transcript, call, user_id, "Agent: Hello\nLead: Hi, book me a demo.")
        self.query("UPDATE calls SET transcript_id = %s WHERE id = %s", transcript, call)
        if contact_email is not None:
            self.query("INSERT INTO contacts (user_id, phone_number, email, name, company) VALUES"
                       " (%s, %s, %s, %s, %s)", user_id, phone, contact_email, name, company)
        self.query("INSERT INTO lead_analytics (id, call_id, user_id, phone_number, extracted_name, extracted_email,"
                   " company_name, demo_book_datetime, reasoning, lead_status_tag, smart_notification,"
                   " analysis_type) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                   lead, call, user_id, phone, name, email, company, demo,
                   json.dumps(extra.get("reasoning", {"intent": "High", "budget": "Approved"})),
                   extra.get("status_tag", "Hot"), extra.get("summary", "Wants a demo next week"), analysis_type)
        return {"lead": lead, "call": call, "phone": phone}

    # Broker

    def publish(self, exchange, routing_key, body, **props):
        """Publish through the management API (persistent) as the administrator; returns True if routed.
        user_id=... publishes as that broker user would (guest may impersonate, see tests/harness/stack.py)."""
        payload = body if isinstance(body, str) else json.dumps(body)
        properties = {"delivery_mode": 2, "content_type": "application/json"}
        properties.update(props)
        r = self._rabbit("POST", f"/exchanges/{self.vhost}/{urllib.parse.quote(exchange, safe='') or 'amq.default'}"
                         "/publish", json={"properties": properties, "routing_key": routing_key,
                                           "payload": payload, "payload_encoding": "string"})
        r.raise_for_status()
        return r.json()["routed"]

    def publish_lead(self, lead_id, user_id, **extra):
        body = {"lead_analytics_id": lead_id, "user_id": user_id}
        body.update(extra)
        return self.publish("leads", "lead.analyzed", body, message_id=f"webhook-{uuid.uuid4()}")

    def queue(self, name):
        r = self._rabbit("GET", f"/queues/{self.vhost}/{name}")
        return r.json() if r.status_code == 200 else None

    def depth(self, name):
        q = self.queue(name)
        return None if q is None else q.get("messages", 0)

    def take(self, name, count=100):
        """Remove and return up to count messages of a queue."""
        r = self._rabbit("POST", f"/queues/{self.vhost}/{name}/get",
                         json={"count": count, "ackmode": "ack_requeue_false", "encoding": "auto"})
        r.raise_for_status()
        return r.json()

    def peek(self, name, count=100):
        r = self._rabbit("POST", f"/queues/{self.vhost}/{name}/get",
                         json={"count": count, "ackmode": "ack_requeue_true", "encoding": "auto"})
        r.raise_for_status()
        return r.json()

    # Mail

    def mails(self, to=None):
        """Messages the SMTP server received, optionally only those for one recipient."""
        box = mailbox.Maildir(self.maildir, create=False)
        out = []
        for key in box.keys():
            m = box.get_message(key)
            rcpts = [v.strip().lower() for v in m.get_all("X-Sink-Rcpt-To", [])]
            if to is None or to.lower() in rcpts:
                out.append(m)
        return out

    # Teardown

    def secrets(self):
        """Every secret this test's world knew (see logscan.py)."""
        out = []
        for svc in self.services:
            out += logscan.config_secrets(svc.env)
        if self.standin is not None and self.standin.proc is not None and self.standin.proc.poll() is None:
            try:
                out += [(s["kind"], s["value"]) for s in self.standin.admin("secrets")]
            except Exception as e:  # a stand-in a test broke on purpose: the configuration's secrets still count
                print(f"log scan: stand-in secrets unavailable: {e}")
        return out

    def scan_logs(self, secrets=None):
        """Problems in the logs of every service this test started: secrets shown, lines that are not JSON."""
        secrets = self.secrets() if secrets is None else secrets
        problems = []
        for svc in self.services:
            problems += logscan.scan(os.path.basename(svc.log_path), svc.logs(), secrets)
        return problems

    def close(self):
        errors = []
        # Asked before anything stops; the logs are read after, shutdown lines included.
        secrets = self.secrets() if self.services else []
        for svc in reversed(self.services):
            if svc.proc is not None and svc.proc.poll() is None:
                try:
                    rc = svc.stop()
                    if rc != 0:
                        errors.append(f"{svc.name} exited with {rc} on SIGTERM:\n{svc.logs()[-2000:]}")
                except AssertionError as e:
                    errors.append(str(e))
        if self.services:
            errors += self.scan_logs(secrets)
        if self.standin is not None:
            self.standin.stop()
        if self._db is not None:
            self._db.close()
        self._rabbit("DELETE", f"/vhosts/{self.vhost}")
        return errors


def _key(keyring, version):
    for entry in keyring.split(","):
        v, _, b64 = entry.strip().rpartition(":")
        if int(v or 1) == version:
            return base64.b64decode(b64)
    raise KeyError(version)


def seal(plaintext, user_id, keyring=TOKEN_KEY):
    """Seal a token in lib/vault.c's format with PyNaCl (libsodium), an independent implementation."""
    from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt
    version = int(keyring.split(",")[0].split(":")[0])
    nonce = os.urandom(24)
    ct = crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext.encode(), user_id.encode(), nonce,
                                                    _key(keyring, version))
    return f"v{version}:" + base64.b64encode(nonce + ct).decode()


def unseal(sealed, user_id, keyring=TOKEN_KEY):
    """Open a value sealed by the services; raises if it is not sealed for this user."""
    from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt
    m = re.fullmatch(r"v(\d+):(.+)", sealed)
    if not m:
        raise ValueError("not a sealed value")
    blob = base64.b64decode(m.group(2))
    return crypto_aead_xchacha20poly1305_ietf_decrypt(blob[24:], user_id.encode(), blob[:24],
                                                      _key(keyring, int(m.group(1)))).decode()
