#!/usr/bin/env python3
"""Pushes an artifact to a registry the way other tools write theirs, with
nothing but the standard library, for the tests to mount:

    push_artifact.py PORT REPO:TAG oras FILE.sif
        as `apptainer push oras://` does: config
        application/vnd.sylabs.sif.config.v1+json, one layer
        application/vnd.sylabs.sif.layer.v1.sif titled after the file.
    push_artifact.py PORT REPO:TAG squashfs TOP.sqfs [BOTTOM.sqfs ...]
        as SingularityCE publishes SquashFS layers: layers of type
        application/vnd.sylabs.image.layer.v1.squashfs, bottom first, an
        empty OCI image config.

Monolithic uploads (POST, then PUT with the digest and the body); prints
the manifest's digest.
"""
import hashlib
import json
import os
import sys
import urllib.request

port, ref, kind, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
repo, tag = ref.rsplit(":", 1)
base = f"http://127.0.0.1:{port}/v2/{repo}"


def request(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    return urllib.request.urlopen(req)


def blob(data, media_type, annotations=None):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = request("POST", f"{base}/blobs/uploads/")
    location = start.headers["Location"]
    if location.startswith("/"):
        location = f"http://127.0.0.1:{port}{location}"
    sep = "&" if "?" in location else "?"
    request("PUT", f"{location}{sep}digest={digest}", data,
            {"Content-Type": "application/octet-stream"})
    d = {"mediaType": media_type, "digest": digest, "size": len(data)}
    if annotations:
        d["annotations"] = annotations
    return d


if kind == "oras":
    (sif,) = files
    config = blob(b"{}", "application/vnd.sylabs.sif.config.v1+json")
    layers = [blob(open(sif, "rb").read(), "application/vnd.sylabs.sif.layer.v1.sif",
                   {"org.opencontainers.image.title": os.path.basename(sif)})]
elif kind == "squashfs":
    config = blob(json.dumps({"architecture": "amd64", "os": "linux"}).encode(),
                  "application/vnd.oci.image.config.v1+json")
    layers = [blob(open(f, "rb").read(), "application/vnd.sylabs.image.layer.v1.squashfs")
              for f in reversed(files)]
else:
    sys.exit(f"unknown kind {kind}")

manifest = json.dumps({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": config,
    "layers": layers,
}).encode()
request("PUT", f"{base}/manifests/{tag}", manifest,
        {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
print("sha256:" + hashlib.sha256(manifest).hexdigest())
