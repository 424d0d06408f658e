"""Scan service logs for secrets: the check behind "no token, code or secret in any log line".

Every e2e and fault test ends in Stack.close(), which calls scan() over the
log of each service the test started, with every secret the test's world
knew: the configuration's credentials and keys, and every authorization
code, access and refresh token, OAuth state and PKCE verifier the Google
stand-in issued or received (GET /_standin/secrets). JWT-shaped strings are
refused whatever their key. Every line must also be one JSON object, the
structured log the operators' tooling reads.
"""

import base64
import json
import re

JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
SECRET_ENV = ("GOOGLE_CLIENT_SECRET", "JWT_SECRET", "SMTP_PASSWORD", "TOKEN_ENCRYPTION_KEY")


def config_secrets(env):
    """(kind, value) for the secrets in a service's environment; a key ring counts key by key."""
    out = []
    for name in SECRET_ENV:
        value = env.get(name)
        if not value:
            continue
        out.append((name, value))
        if name == "TOKEN_ENCRYPTION_KEY":
            for entry in value.split(","):
                b64 = entry.strip().rpartition(":")[2]
                out.append((name + " key", b64))
                try:
                    raw = base64.b64decode(b64)
                    out.append((name + " key (hex)", raw.hex()))
                except ValueError:
                    pass
    return out


def scan(name, text, secrets):
    """Problems in one log: lines that are not JSON, and lines that show a secret. A list of strings."""
    problems = []
    wanted = [(kind, value) for kind, value in secrets if value and len(value) >= 8]
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            if not isinstance(json.loads(line), dict):
                raise ValueError("not an object")
        except ValueError:
            problems.append(f"{name}:{n}: not a JSON log line: {line[:200]}")
            continue
        for kind, value in wanted:
            # Also JSON- or URL-escaped inside a logged string, and a long one's tail alone: a token
            # logged without its "ya29." prefix has leaked all the same.
            forms = {value, json.dumps(value)[1:-1], value.replace("/", "%2F")}
            if len(value) >= 32:
                forms.add(value[-20:])
            if any(f in line for f in forms):
                problems.append(f"{name}:{n}: shows a {kind}")
        if JWT_SHAPE.search(line):
            problems.append(f"{name}:{n}: shows a JWT")
    return problems
