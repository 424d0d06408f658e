#!/usr/bin/python3
"""A real SMTP server on loopback that keeps every message for the tests.

Built on Debian's python3-aiosmtpd. Each accepted message is written to a
Maildir with the envelope prepended as X-Sink-Mail-From / X-Sink-Rcpt-To
headers. Recipients steer failures, so parallel tests never share state:

    tempfail3+anything@host   answered 451 at RCPT the first 3 times
    reject+anything@host      answered 550 at RCPT, always

--tls-cert/--tls-key offer STARTTLS (--require-tls makes it mandatory) and
--auth user:password requires AUTH PLAIN/LOGIN. Without --tls-cert (as
stack.py starts it) there is no STARTTLS, so a mailer sending here needs
SMTP_REQUIRE_TLS=off, which tests/e2e/harness.py and deploy/local/up set:
the mailer's default refuses to send in clear text.
"""

import argparse
import asyncio
import mailbox
import re
import signal
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

TEMPFAIL = re.compile(r"^tempfail(\d+)\+", re.I)


class Sink:
    def __init__(self, maildir):
        self.box = mailbox.Maildir(maildir, create=True)
        self.attempts = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("reject+"):
            return "550 5.1.1 Mailbox unavailable (sink: reject)"
        m = TEMPFAIL.match(local)
        if m:
            n = self.attempts.get(address, 0) + 1
            self.attempts[address] = n
            if n <= int(m.group(1)):
                return "451 4.3.0 Try again later (sink: tempfail)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        head = f"X-Sink-Mail-From: {envelope.mail_from}\r\n"
        for r in envelope.rcpt_tos:
            head += f"X-Sink-Rcpt-To: {r}\r\n"
        if session.ssl is not None:
            head += "X-Sink-TLS: yes\r\n"
        self.box.add(head.encode() + envelope.original_content)
        return "250 OK: queued"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--maildir", required=True)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--require-tls", action="store_true")
    ap.add_argument("--auth")
    a = ap.parse_args()

    kw = {}
    if a.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        kw.update(tls_context=ctx, require_starttls=a.require_tls)
    if a.auth:
        user, password = a.auth.split(":", 1)

        def check(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
                and auth_data.password.decode() == password
            return AuthResult(success=ok)

        kw.update(authenticator=check, auth_required=True, auth_require_tls=bool(a.tls_cert))
    controller = Controller(Sink(a.maildir), hostname="127.0.0.1", port=a.port, **kw)
    controller.start()
    print(f"smtp sink listening on 127.0.0.1:{a.port}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
