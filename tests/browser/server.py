#!/usr/bin/python3
"""The browser test's stand-in for the platform's frontend server, on loopback.

    server.py --gateway http://127.0.0.1:8080 [--port 0] [--root frontend/]

Serves the small page in frontend/ and passes /api/* through to the gateway,
as a frontend behind one origin (an ingress, a dev server's proxy) does, so
the page's fetch() carries its Authorization header without CORS, and the
cookie the gateway's /auth sets lands on the origin Google sends the browser
back to (the callback goes through here too). Redirects are handed to the
browser as they are. Prints {"listening": URL} once bound.
Only the Python standard library is used.
"""

import argparse
import http.server
import json
import os
import sys
import urllib.error
import urllib.request

PASSED_HEADERS = ("Authorization", "Accept", "Content-Type", "Cookie")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Handler(http.server.SimpleHTTPRequestHandler):
    gateway = None
    opener = urllib.request.build_opener(_NoRedirect)

    def log_message(self, fmt, *args):
        sys.stderr.write("frontend: " + (fmt % args) + "\n")

    def _proxy(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        req = urllib.request.Request(self.gateway + self.path, data=body, method=self.command)
        for name in PASSED_HEADERS:
            if self.headers.get(name):
                req.add_header(name, self.headers[name])
        try:
            resp = self.opener.open(req, timeout=30)
        except urllib.error.HTTPError as e:
            resp = e
        data = resp.read()
        self.send_response(resp.status if hasattr(resp, "status") else resp.code)
        for name in ("Content-Type", "Location", "Cache-Control", "Set-Cookie"):
            for value in resp.headers.get_all(name) or ():
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.startswith("/api/"):
            self._proxy()
        else:
            super().do_GET()

    def do_POST(self):
        if self.path.startswith("/api/"):
            self._proxy()
        else:
            self.send_error(405)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "frontend"))
    a = ap.parse_args()
    Handler.gateway = a.gateway.rstrip("/")

    def handler(*args, **kwargs):
        return Handler(*args, directory=a.root, **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), handler)
    print(json.dumps({"listening": f"http://127.0.0.1:{server.server_address[1]}"}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
