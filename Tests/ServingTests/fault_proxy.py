"""A fault-injecting HTTP proxy on 127.0.0.1 for the HTTP judge tests (Tests/ServingTests/ServeTests.swift).

The first attempt of every distinct request body gets a fault chosen by its SHA-256 (so the faults are
the same in every run): a stall longer than the client's timeout, a 500, a 429 (Retry-After: 0), a 200
whose JSON is cut in half, or no fault. Later attempts are forwarded to the upstream server unchanged.
Every request received is logged as one line "<sha256 of the body> <fault or 'forwarded'>" to --log
(flushed at once), so a test can count what reached the proxy. Prints "listening <port>" when ready.
Stops by itself after --lifetime seconds.
"""
import argparse
import hashlib
import http.client
import http.server
import sys
import threading
import time
import urllib.parse

FAULTS = ["stall", "500", "429", "truncated", None]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True, help="http://127.0.0.1:PORT")
    p.add_argument("--log", required=True)
    p.add_argument("--stall", type=float, default=4.0)
    p.add_argument("--lifetime", type=float, default=900)
    a = p.parse_args()
    up = urllib.parse.urlparse(a.upstream)
    assert up.hostname in ("127.0.0.1", "localhost"), "the proxy only forwards to loopback"
    seen = set()
    lock = threading.Lock()
    log = open(a.log, "a", buffering=1)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def send(self, status, body, headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n)
            key = hashlib.sha256(body).hexdigest()
            with lock:
                first = key not in seen
                seen.add(key)
            fault = FAULTS[int(key[:8], 16) % len(FAULTS)] if first else None
            log.write(f"{key} {fault or 'forwarded'}\n")
            if fault == "stall":
                time.sleep(a.stall)
                try:
                    self.send(503, b'{"error": {"message": "stalled"}}')
                except Exception:
                    pass
                return
            if fault == "500":
                return self.send(500, b'{"error": {"message": "injected 500", "type": "server_error"}}',
                                 [("Content-Type", "application/json")])
            if fault == "429":
                return self.send(429, b'{"error": {"message": "injected 429", "type": "rate_limit"}}',
                                 [("Content-Type", "application/json"), ("Retry-After", "0")])
            c = http.client.HTTPConnection(up.hostname, up.port, timeout=300)
            headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization")}
            c.request("POST", self.path, body=body, headers=headers)
            r = c.getresponse()
            data = r.read()
            c.close()
            if fault == "truncated":
                data = data[: len(data) // 2]
            self.send(r.status, data, [("Content-Type", r.getheader("Content-Type", "application/json"))])

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Timer(a.lifetime, srv.shutdown).start()
    print(f"listening {srv.server_address[1]}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
