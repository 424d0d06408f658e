"""Start, drive and stop the Google stand-in (tests/google-standin) from Python tests.

    with Standin().start(auto_approve=True, timezone="Europe/Zurich") as sd:
        tokens = sd.connect("user@example.com")
        sd.admin("faults", {"rules": [{"path_prefix": "/calendar/v3/", "status": 500}]})

Only the standard library is used, so any test (pytest or not) can import it.
The binary comes from GOOGLE_STANDIN_BIN, else $BUILD_DIR (default build/)/tests/google-standin/google-standin.
"""

import base64
import hashlib
import json
import os
import secrets
import signal
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import weakref

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_BIN = os.path.join(os.environ.get("BUILD_DIR") or os.path.join(ROOT, "build"), "tests", "google-standin",
                           "google-standin")
CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar.events"
EMAIL_SCOPE = "https://www.googleapis.com/auth/userinfo.email"
FREEBUSY_SCOPE = "https://www.googleapis.com/auth/calendar.freebusy"


def pkce_pair():
    """A PKCE (verifier, S256 challenge) pair."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _remove_quietly(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class StandinError(Exception):
    pass


class Standin:
    def __init__(self, binary=None):
        self.binary = binary or os.environ.get("GOOGLE_STANDIN_BIN") or DEFAULT_BIN
        self.proc = None
        self.url = None
        self.flags = {}
        self.returncode = None
        self._log = None
        self._opener = urllib.request.build_opener(_NoRedirect)

    # Lifetime

    def start(self, **flags):
        """Start with CLI flags given as keywords: client_id="x" is --client-id x,
        auto_approve=True is --auto-approve, redirect_uri=[...] repeats the flag."""
        if not os.path.exists(self.binary):
            raise StandinError(f"{self.binary} is missing: build it first (meson compile -C build)")
        args = [self.binary, "--listen", flags.pop("listen", "127.0.0.1:0")]
        for key, value in flags.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                args.append(flag)
            elif value is False or value is None:
                continue
            elif isinstance(value, (list, tuple)):
                for v in value:
                    args += [flag, str(v)]
            else:
                args += [flag, str(value)]
        self.flags = flags
        self._log = tempfile.NamedTemporaryFile(prefix="google-standin-", suffix=".log", delete=False)
        # stop() keeps the log readable for a post-mortem; it goes when this object does.
        weakref.finalize(self, _remove_quietly, self._log.name)
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._log, text=True)
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            raise StandinError(f"the stand-in exited at start (rc {self.proc.returncode}): {self.log()}")
        self.url = json.loads(line)["listening"]
        return self

    def stop(self, timeout=15):
        """SIGTERM and wait; returns the exit status (0 when it shut down cleanly)."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.returncode = self.proc.returncode
        self.proc = None
        return self.returncode

    def log(self):
        """Everything the stand-in wrote to stderr so far (JSON log lines, sanitizer reports)."""
        if self._log is None:
            return ""
        with open(self._log.name, errors="replace") as f:
            return f.read()

    def close(self):
        self.stop()
        if self._log is not None:
            self._log.close()
            _remove_quietly(self._log.name)
            self._log = None

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # HTTP

    def request(self, method, path, body=None, headers=None):
        """(status, headers, body bytes) without following redirects or raising on errors."""
        data = body
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            data = body.encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=hdrs)
        try:
            with self._opener.open(req, timeout=30) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def admin(self, path, json_body=None, method=None):
        """Call /_standin/<path>: GET without a body, POST with one; returns the JSON answer."""
        if not path.startswith("/"):
            path = "/_standin/" + path
        method = method or ("GET" if json_body is None else "POST")
        status, _, body = self.request(method, path, json_body)
        answer = json.loads(body) if body else None
        if status != 200:
            raise StandinError(f"{method} {path}: {status} {answer}")
        return answer

    # OAuth helpers for tests that just need a token

    def authorize(self, email, scope=CALENDAR_SCOPE + " " + EMAIL_SCOPE, redirect_uri="http://127.0.0.1:9/cb",
                  offline=True, prompt=None, challenge=None, state="s"):
        """Consent as email (the form's Allow) and return the redirect's query parameters."""
        form = {
            "client_id": self.client_id, "redirect_uri": redirect_uri, "response_type": "code",
            "scope": scope, "state": state, "email": email, "decision": "allow",
            "access_type": "offline" if offline else "online",
        }
        if prompt:
            form["prompt"] = prompt
        if challenge:
            form["code_challenge"], form["code_challenge_method"] = challenge, "S256"
        fields = list(form.items()) + [("granted_scope", s) for s in scope.split()]
        status, headers, body = self.request("POST", "/o/oauth2/v2/consent", urllib.parse.urlencode(fields),
                                             {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 302:
            raise StandinError(f"consent: {status} {body[:300]!r}")
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(headers["Location"]).query))

    def connect(self, email, scope=CALENDAR_SCOPE + " " + FREEBUSY_SCOPE + " " + EMAIL_SCOPE,
                redirect_uri="http://127.0.0.1:9/cb"):
        """A full code flow with PKCE for email; returns the token response (with refresh_token)."""
        verifier, challenge = pkce_pair()
        code = self.authorize(email, scope, redirect_uri, prompt="consent", challenge=challenge)["code"]
        fields = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                  "client_id": self.client_id, "client_secret": self.client_secret, "code_verifier": verifier}
        status, _, body = self.request("POST", "/token", urllib.parse.urlencode(fields),
                                       {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 200:
            raise StandinError(f"token: {status} {body!r}")
        return json.loads(body)

    @property
    def client_id(self):
        return self.admin("config")["client_id"]

    @property
    def client_secret(self):
        return self.admin("config")["client_secret"]
