#!/usr/bin/env python3
"""An HTTP proxy in front of a registry that breaks uploads on cue, for the
push-resume tests: it passes requests through (Host kept, so the
registry's upload URLs name the proxy), except that it closes the
connection, forwarding nothing, on the Nth PATCH it sees.

    fault_proxy.py DIR UPSTREAM_PORT N MODE

MODE "once": only that PATCH is dropped. MODE "down": from that PATCH on,
every request is dropped until DIR/up exists. Writes its port to
DIR/port; logs "METHOD PATH STATUS" per request to DIR/log ("dropped"
for the ones it broke).
"""
import http.client
import http.server
import os
import sys
import threading

DIR, UPSTREAM, NTH, MODE = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
lock = threading.Lock()
patches = 0
down = False


def log(line):
    with lock, open(os.path.join(DIR, "log"), "a") as f:
        f.write(line + "\n")


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def relay(self):
        global patches, down
        with lock:
            if self.command == "PATCH":
                patches += 1
                if patches == NTH:
                    drop = True
                    down = MODE == "down"
                else:
                    drop = False
            else:
                drop = False
            if down and os.path.exists(os.path.join(DIR, "up")):
                down = False
            drop = drop or down
        if drop:
            log(f"{self.command} {self.path} dropped")
            self.close_connection = True
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        conn = http.client.HTTPConnection("127.0.0.1", UPSTREAM, timeout=60)
        headers = {k: v for k, v in self.headers.items()}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()
        log(f"{self.command} {self.path} {resp.status}")

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = relay

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
with open(os.path.join(DIR, "port.tmp"), "w") as f:
    f.write(str(server.server_port))
os.rename(os.path.join(DIR, "port.tmp"), os.path.join(DIR, "port"))
server.serve_forever()
