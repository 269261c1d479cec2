#!/usr/bin/python3
"""t_web_tls: DICOMweb over HTTPS (http.tls_port with a self-signed certificate made by the
openssl command line): QIDO-RS, STOW-RS and WADO-RS through TLS give the same answers as over
plain HTTP, URLs in responses say https, a plain-HTTP client on the TLS port and a TLS client
on the plain port are refused cleanly, and the node stops cleanly."""
import os
import socket
import ssl
import subprocess

import lib
import web

MR = os.path.join(lib.TESTDATA, "pydicom/test_files/CT_small.dcm")


def main():
    if not os.path.exists(MR):
        lib.skip("test data missing")
    d = lib.tmpdir("mt-web-tls-")
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1"], capture_output=True)
    if r.returncode != 0:
        lib.skip("openssl req failed: " + r.stderr.decode()[-200:])
    tls_port = lib.free_port()
    node = web.WebNode(name="tls", extra={"http.tls_port": tls_port, "http.tls_cert": cert,
                                          "http.tls_key": key})
    node.start()
    lib.wait_for(lambda: lib.port_listening(tls_port), "https listens")
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False
    import http.client

    def treq(method, path, headers=None, body=None):
        c = http.client.HTTPSConnection("127.0.0.1", tls_port, context=ctx, timeout=30)
        try:
            c.request(method, path, body=body, headers=headers or {})
            rr = c.getresponse()
            return rr.status, {k.lower(): v for k, v in rr.getheaders()}, rr.read()
        finally:
            c.close()

    body, ct = web.multipart_encode([open(MR, "rb").read()])
    st, h, b = treq("POST", "/projects/p1/dicomweb/studies", dict(web.ALICE, **{"Content-Type": ct}), body)
    lib.check(st == 200 and b"https://" in b, "STOW over TLS, URLs say https (%s)" % st)
    st, h, b = treq("GET", "/projects/p1/dicomweb/studies", web.ALICE)
    st2, h2, b2 = web.request(node, "GET", "/projects/p1/dicomweb/studies", web.ALICE)
    lib.check(st == 200 and st2 == 200 and b.replace(b"https://", b"http://").replace(
        b":%d/" % tls_port, b":%d/" % node.http_port) == b2, "QIDO over TLS = QIDO over HTTP")
    import json
    sop = json.loads(b)[0]
    s_uid = sop["0020000D"]["Value"][0]
    acc = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
    st, h, b = treq("GET", "/projects/p1/dicomweb/studies/%s" % s_uid, dict(web.ALICE, **acc))
    st2, h2, b2 = web.request(node, "GET", "/projects/p1/dicomweb/studies/%s" % s_uid, dict(web.ALICE, **acc))
    p1 = web.multipart_decode(h.get("content-type", ""), b) if st == 200 else []
    p2 = web.multipart_decode(h2.get("content-type", ""), b2) if st2 == 200 else []
    lib.check(p1 and p2 and p1[0][1] == p2[0][1], "WADO-RS over TLS = over HTTP")
    # keep-alive through TLS: several requests on one connection
    c = http.client.HTTPSConnection("127.0.0.1", tls_port, context=ctx, timeout=30)
    n = 0
    for _ in range(4):
        c.request("GET", "/projects/p1/dicomweb/studies", headers=web.ALICE)
        rr = c.getresponse()
        rr.read()
        n += rr.status == 200
    c.close()
    lib.check(n == 4, "keep-alive over TLS")
    # plain HTTP on the TLS port: the handshake fails, the connection closes
    out = b""
    try:
        s = socket.create_connection(("127.0.0.1", tls_port), timeout=10)
        s.sendall(b"GET /dicomweb/studies HTTP/1.1\r\nHost: x\r\n\r\n")
        while True:
            dd = s.recv(4096)
            if not dd:
                break
            out += dd
        s.close()
    except OSError:
        pass
    lib.check(b"HTTP/1.1 200" not in out, "plain HTTP on the TLS port is refused")
    # TLS on the plain port: 400 or closed
    try:
        with socket.create_connection(("127.0.0.1", node.http_port), timeout=10) as s:
            with ctx.wrap_socket(s) as t:
                t.sendall(b"x")
        ok = False
    except (ssl.SSLError, OSError):
        ok = True
    lib.check(ok, "TLS on the plain port fails cleanly")
    st, _, _ = web.request(node, "GET", "/projects/p1/dicomweb/studies", web.ALICE)
    lib.check(st == 200, "node still answers")
    rc = node.stop()
    lib.check(rc == 0, "clean stop (rc %s)" % rc)


lib.run_guarded(main)
