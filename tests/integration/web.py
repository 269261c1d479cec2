"""
web.py - helpers of the DICOMweb integration tests (t_web_*.py): a mitral node with http
enabled, projects and users (lib.Node writes two-level YAML only, so the users:/projects: lists
are appended here), a tiny HTTP client on http.client, and multipart/related encode/decode.
"""
import base64
import hashlib
import http.client
import json
import os
import re
import socket
import subprocess

import lib

TOKEN_ADMIN = "admin-token-0123456789abcdef"
TOKEN_BOB = "bob-token-fedcba9876543210"
PW_ALICE = "alice-Secret-1"


def sha256_hash(secret):
    return "sha256$" + hashlib.sha256(secret.encode()).hexdigest()


def pbkdf2_hash(secret, it=1000):
    salt = b"0123456789abcdef"
    h = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, it)
    return "pbkdf2-sha256$%d$%s$%s" % (it, salt.hex(), h.hex())


class WebNode(lib.Node):
    """lib.Node plus http: and the users:/projects: lists."""

    def __init__(self, users=True, extra=None, more_projects=(), **kw):
        self.http_port = lib.free_port()
        self.more_projects = list(more_projects)  # (name, ae_title) after p1 and p2
        conf = {"http.enabled": "true", "http.port": self.http_port, "http.bind": "127.0.0.1"}
        conf.update(extra or {})
        super().__init__(conf=conf, **kw)
        self.with_users = users

    def cmdline(self):
        cmd = super().cmdline()
        with open(self.conf_path, "a") as f:
            f.write("projects:\n"
                    "  - name: p1\n    ae_title: P1AE\n"
                    "  - name: p2\n    ae_title: P2AE\n")
            for name, aet in self.more_projects:
                f.write("  - name: %s\n    ae_title: %s\n" % (name, aet))
            if self.with_users:
                f.write("users:\n"
                        "  - name: admin\n    token: %s\n    admin: true\n"
                        "  - name: alice\n    password: %s\n    projects: [p1]\n"
                        "  - name: bob\n    token: %s\n    projects: [p2]\n"
                        % (sha256_hash(TOKEN_ADMIN), pbkdf2_hash(PW_ALICE),
                           sha256_hash(TOKEN_BOB)))
        return cmd

    def wait_listening(self):
        ok = super().wait_listening()
        return ok and lib.wait_for(lambda: lib.port_listening(self.http_port),
                                   "http listens on %d" % self.http_port, proc=self.proc)


def auth_basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()}


def auth_bearer(tok):
    return {"Authorization": "Bearer " + tok}


ADMIN = auth_bearer(TOKEN_ADMIN)
ALICE = auth_basic("alice", PW_ALICE)
BOB = auth_bearer(TOKEN_BOB)


def request(node, method, path, headers=None, body=None, timeout=60):
    """-> (status, headers dict (lower-case names, last wins), body bytes)"""
    c = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        hdrs["_all"] = r.getheaders()
        return r.status, hdrs, data
    finally:
        c.close()


def get_json(node, path, headers=None):
    st, h, b = request(node, "GET", path, headers)
    return st, (json.loads(b) if b and st == 200 else None)


def multipart_encode(parts, ctype="application/dicom", boundary="mt-test-boundary-42"):
    body = b""
    for p in parts:
        body += b"--" + boundary.encode() + b"\r\nContent-Type: " + ctype.encode() + b"\r\n\r\n"
        body += p + b"\r\n"
    body += b"--" + boundary.encode() + b"--\r\n"
    return body, 'multipart/related; type="%s"; boundary=%s' % (ctype, boundary)


def multipart_decode(content_type, body):
    """-> list of (headers dict, bytes)"""
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    assert m, content_type
    delim = b"--" + m.group(1).encode()
    out = []
    chunks = body.split(b"\r\n" + delim)
    # the first delimiter may open the body without a CRLF
    first = chunks[0]
    if first.startswith(delim):
        chunks[0] = first[len(delim):]
    else:
        chunks = chunks[1:]
    for ch in chunks:
        if ch.startswith(b"--"):
            break
        assert ch.startswith(b"\r\n"), ch[:20]
        head, _, data = ch[2:].partition(b"\r\n\r\n")
        hd = {}
        for line in head.split(b"\r\n"):
            k, _, v = line.decode().partition(":")
            hd[k.strip().lower()] = v.strip()
        out.append((hd, data))
    return out


def stow(node, path, files, headers=None):
    body, ct = multipart_encode([open(f, "rb").read() for f in files])
    h = dict(headers or {})
    h["Content-Type"] = ct
    h["Accept"] = "application/dicom+json"
    st, hd, b = request(node, "POST", path, h, body)
    return st, (json.loads(b) if b and hd.get("content-type", "").startswith("application/dicom+json") else None)


def raw(node, data, read_timeout=30.0):
    """Send raw bytes on a new connection, return what comes back until close/timeout."""
    s = socket.create_connection(("127.0.0.1", node.http_port), timeout=read_timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            if not d:
                break
            out += d
        return out
    finally:
        s.close()


def stored_file(node, sop_uid):
    """The stored file of an instance (path from the index)."""
    import sqlite3
    db = sqlite3.connect("file:%s?mode=ro" % node.index, uri=True)
    try:
        row = db.execute("SELECT * FROM instances WHERE sop_instance_uid=?", (sop_uid,)).fetchone()
        cols = [d[0] for d in db.execute("SELECT * FROM instances LIMIT 0").description]
    finally:
        db.close()
    if not row:
        return None
    r = dict(zip(cols, row))
    for k in ("rel_path", "path", "file_path"):
        if k in r and r[k]:
            return os.path.join(node.storage, r[k])
    return None


def dcm2json(path):
    out = subprocess.run(["dcm2json", path], check=True, capture_output=True).stdout
    return json.loads(out)


def same_value(a, b):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(a)))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        ka = {k for k in a if k not in ("BulkDataURI", "InlineBinary")}
        kb = {k for k in b if k not in ("BulkDataURI", "InlineBinary")}
        return ka == kb and all(same_value(a[k], b[k]) for k in ka)
    return a == b


def compare_meta(ours, ref, what):
    """Every attribute dcm2json writes with a Value is in ours with an equal value."""
    n = 0
    for tag, el in ref.items():
        if "Value" not in el or el.get("vr") in ("OB", "OW", "OF", "OD", "UN", "OL", "OV"):
            continue
        mine = ours.get(tag)
        if not lib.check(mine is not None, "%s: %s missing from metadata" % (what, tag)):
            continue
        if el["vr"] == "SQ":
            lib.check(len(mine.get("Value", [])) == len(el["Value"]),
                      "%s: %s item count differs" % (what, tag))
            continue
        lib.check(mine.get("vr") == el["vr"], "%s: %s vr %s != %s" % (what, tag, mine.get("vr"), el["vr"]))
        lib.check(same_value(mine.get("Value"), el["Value"]),
                  "%s: %s value %r != dcm2json %r" % (what, tag, mine.get("Value"), el["Value"]))
        n += 1
    lib.check(n > 20, "%s: compared %d attributes" % (what, n))


