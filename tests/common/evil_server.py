#!/usr/bin/env python3
"""A registry and an HTTP server that answer badly, for tests: listens on
127.0.0.1:PORT (printed on stdout once listening) and misbehaves by path:

  /v2/endless/manifests/*   200, a manifest body that never ends
  /v2/trickle/manifests/*   200, one byte of a manifest every 200 ms, forever
  /v2/errbody/manifests/*   404, an error body that never ends
  /v2/tokenbomb/manifests/* 401 Bearer challenge; /token streams endlessly
  /v2/bigblob/...           a valid manifest whose layer blob never ends
  /img/forbidden.sqfs       HEAD: a 1 MiB object; GET: 403, a body that never ends

Exits when its stdin closes (the test that started it is gone)."""

import hashlib
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG = b"{}"
CONFIG_DIGEST = "sha256:" + hashlib.sha256(CONFIG).hexdigest()
LAYER_DIGEST = "sha256:" + "ab" * 32
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": CONFIG_DIGEST,
            "size": len(CONFIG),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": LAYER_DIGEST,
                "size": 1024,
            }
        ],
    }
).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def endless(self, status, ctype, piece, pause=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            while True:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
                if pause:
                    threading.Event().wait(pause)
        except OSError:
            pass  # the client gave up, as it should
        self.close_connection = True

    def whole(self, status, ctype, body, extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self):
        if self.path == "/img/forbidden.sqfs":
            self.send_response(200)
            self.send_header("Content-Length", str(1 << 20))
            self.send_header("ETag", '"v1"')
            self.send_header("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            return
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        p = self.path
        if p == "/img/forbidden.sqfs":
            return self.endless(403, "text/plain", b"no " * 20000)
        host = self.headers.get("Host", "127.0.0.1")
        if p == "/v2/" or p == "/v2":
            return self.whole(200, "application/json", b"{}")
        if p.startswith("/v2/endless/manifests/"):
            return self.endless(200, MANIFEST_TYPE, b'{"a":"' + b"x" * 65536)
        if p.startswith("/v2/trickle/manifests/"):
            return self.endless(200, MANIFEST_TYPE, b" ", pause=0.2)
        if p.startswith("/v2/errbody/manifests/"):
            return self.endless(404, "application/json", b"e" * 65536)
        if p.startswith("/v2/tokenbomb/manifests/"):
            if self.headers.get("Authorization"):
                return self.whole(200, MANIFEST_TYPE, MANIFEST)
            challenge = 'Bearer realm="http://%s/token",service="evil",scope="repository:tokenbomb:pull"' % host
            return self.whole(401, "application/json", b"{}", [("WWW-Authenticate", challenge)])
        if p.startswith("/token"):
            return self.endless(200, "application/json", b'{"token":"' + b"t" * 65536)
        if p.startswith("/v2/bigblob/manifests/"):
            return self.whole(200, MANIFEST_TYPE, MANIFEST)
        if p == "/v2/bigblob/blobs/" + CONFIG_DIGEST:
            return self.whole(200, "application/octet-stream", CONFIG)
        if p.startswith("/v2/bigblob/blobs/"):
            return self.endless(200, "application/octet-stream", b"\0" * 65536)
        self.whole(404, "application/json", b'{"errors":[{"code":"NAME_UNKNOWN","message":"no such thing"}]}')


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    print(srv.server_address[1], flush=True)
    sys.stdin.read()  # until the test closes it (or dies)


if __name__ == "__main__":
    main()
