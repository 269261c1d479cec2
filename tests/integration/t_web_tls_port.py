#!/usr/bin/python3
"""t_web_tls_port: TLS on the main HTTP port (http.tls). With `both`, curl over https:// and
over http:// on the SAME port get the same QIDO-RS answer (the node sniffs the first byte:
0x16 starts TLS); URLs in STOW responses follow the scheme the client used. With `only`, https
works and a clear HTTP request gets no HTTP answer. A bad certificate path is refused at start.
The node stops cleanly each time."""
import os
import subprocess

import lib
import web

MR = os.path.join(lib.TESTDATA, "pydicom/test_files/CT_small.dcm")
AUTH = "alice:" + web.PW_ALICE


def curl(url, cert, extra=()):
    cmd = ["curl", "-s", "-S", "--max-time", "30", "-u", AUTH, "-o", "-", "-w", "\n%{http_code}"]
    if cert:
        cmd += ["--cacert", cert]
    r = subprocess.run(cmd + list(extra) + [url], capture_output=True)
    out = r.stdout
    body, _, code = out.rpartition(b"\n")
    return r.returncode, int(code or b"0"), body


def main():
    if not os.path.exists(MR):
        lib.skip("test data missing")
    d = lib.tmpdir("mt-web-tlsport-")
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], capture_output=True)
    if r.returncode != 0:
        lib.skip("openssl req failed: " + r.stderr.decode()[-200:])

    # --- both: TLS and clear HTTP on one port ---
    node = web.WebNode(name="tlsboth", extra={"http.tls": "both", "http.tls_cert": cert,
                                              "http.tls_key": key})
    node.start()
    port = node.http_port
    base = "127.0.0.1:%d/projects/p1/dicomweb" % port
    body, ct = web.multipart_encode([open(MR, "rb").read()])
    bf = os.path.join(d, "stow.bin")
    with open(bf, "wb") as f:
        f.write(body)
    rc, st, b = curl("https://%s/studies" % base, cert,
                     ["-X", "POST", "-H", "Content-Type: " + ct, "--data-binary", "@" + bf])
    lib.check(rc == 0 and st == 200 and b"https://127.0.0.1:%d/" % port in b,
              "STOW over https on the main port, URLs say https (curl rc %d, %d)" % (rc, st))
    rc1, st1, b1 = curl("https://%s/studies" % base, cert)
    rc2, st2, b2 = curl("http://%s/studies" % base, None)
    lib.check(rc1 == 0 and st1 == 200 and rc2 == 0 and st2 == 200,
              "https and http on the same port both answer (%d/%d, %d/%d)" % (rc1, st1, rc2, st2))
    lib.check(b1.replace(b"https://", b"http://") == b2 and b"https://" in b1 and b"1.3.6.1.4.1.5962" in b1,
              "the same QIDO-RS answer both ways (RetrieveURL in the scheme used)")
    # keep-alive over https: two URLs in one curl run share one TLS connection
    r = subprocess.run(["curl", "-s", "-S", "--max-time", "30", "-u", AUTH, "--cacert", cert,
                        "-o", "/dev/null", "-o", "/dev/null", "-w", "%{num_connects} ",
                        "https://%s/studies" % base, "https://%s/series" % base],
                       capture_output=True)
    lib.check(r.returncode == 0 and r.stdout.split() == [b"1", b"0"],
              "keep-alive over sniffed TLS (%r)" % r.stdout)
    lib.check(node.stop() == 0, "clean stop (both)")

    # --- only: TLS only on the main port ---
    node = web.WebNode(name="tlsonly", extra={"http.tls": "only", "http.tls_cert": cert,
                                              "http.tls_key": key})
    node.start()
    base = "127.0.0.1:%d/projects/p1/dicomweb" % node.http_port
    rc, st, b = curl("https://%s/studies" % base, cert)
    lib.check(rc == 0 and st in (200, 204), "https on a TLS-only port answers (%d)" % st)
    rc, st, b = curl("http://%s/studies" % base, None)
    lib.check(st == 0 and rc != 0, "clear HTTP on a TLS-only port gets no HTTP answer (rc %d, %d)"
              % (rc, st))
    rc, st, b = curl("https://%s/studies" % base, cert)
    lib.check(rc == 0 and st in (200, 204), "node still answers after the clear client")
    lib.check(node.stop() == 0, "clean stop (only)")

    # --- no certificate: refused at start ---
    node = web.WebNode(name="tlsbad", extra={"http.tls": "both"})
    node.start(wait=False)
    try:
        rc = node.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        rc = None
    lib.check(rc not in (None, 0), "http.tls without tls_cert/tls_key: the node refuses to start "
              "(%s)" % rc)
    node.stop()

lib.run_guarded(main)
