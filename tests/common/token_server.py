#!/usr/bin/env python3
"""A registry token service for the docker:// tests, as Docker Hub runs one:
the registry answers 401 with a Bearer challenge naming this realm; clients
ask here for a token for a scope, anonymously (pull only) or with basic
credentials (pull and push), and present the signed JWT to the registry.

    token_server.py DIR USER:PASSWORD [TTL]

TTL: seconds a token lives (default 300). The registry allows 60 seconds
of clock skew past a token's expiry, so a TTL of -55 makes tokens that
it takes for about five seconds.

Writes DIR/cert.pem (the registry's rootcertbundle), then serves on
127.0.0.1 and writes the port to DIR/port; logs each grant to DIR/log.
"""
import base64
import datetime
import http.server
import json
import os
import sys
import time
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

DIR, CREDS = sys.argv[1], sys.argv[2]
TTL = int(sys.argv[3]) if len(sys.argv) > 3 else 300
ISSUER, SERVICE = "sqfuse-test-issuer", "sqfuse-test-registry"

key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (
    x509.CertificateBuilder()
    .subject_name(name)
    .issuer_name(name)
    .public_key(key.public_key())
    .serial_number(x509.random_serial_number())
    .not_valid_before(now - datetime.timedelta(days=1))
    .not_valid_after(now + datetime.timedelta(days=1))
    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    .sign(key, hashes.SHA256())
)
with open(os.path.join(DIR, "cert.pem"), "wb") as f:
    f.write(cert.public_bytes(serialization.Encoding.PEM))
X5C = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def token(sub, access):
    header = {"typ": "JWT", "alg": "RS256", "x5c": [X5C]}
    t = int(time.time())
    claims = {"iss": ISSUER, "sub": sub, "aud": SERVICE, "exp": t + TTL,
              "nbf": t - 10, "iat": t, "jti": os.urandom(8).hex(), "access": access}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(sig)}"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        auth = self.headers.get("Authorization", "")
        user = None
        if auth.startswith("Basic "):
            if base64.b64decode(auth[6:]).decode() != CREDS:
                self.send_response(401)
                self.end_headers()
                self.log("refused")
                return
            user = CREDS.split(":")[0]
        access = []
        for scope in q.get("scope", []):
            kind, repo, actions = scope.split(":")
            allowed = [a for a in actions.split(",") if user or a == "pull"]
            access.append({"type": kind, "name": repo, "actions": allowed})
        body = json.dumps({"token": token(user or "", access), "expires_in": max(TTL + 60, 1)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.log(f"granted {user or 'anonymous'} {json.dumps(access)}")

    def log(self, what):
        with open(os.path.join(DIR, "log"), "a") as f:
            f.write(what + "\n")

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
with open(os.path.join(DIR, "port.tmp"), "w") as f:
    f.write(str(server.server_port))
os.rename(os.path.join(DIR, "port.tmp"), os.path.join(DIR, "port"))
server.serve_forever()
