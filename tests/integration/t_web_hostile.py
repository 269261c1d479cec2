#!/usr/bin/python3
"""t_web_hostile: the HTTP server under hostile or unusual clients, with raw sockets.

Huge request headers -> 431; a request line that is not HTTP -> 400; Content-Length beyond
http.max_body_mb -> 413; a slowloris client (header never finished) -> 408 and closed after
http.header_timeout; idle keep-alive connections closed; more than http.max_connections -> 503;
pipelined requests answered in order; keep-alive reuse; a chunked STOW-RS upload; STOW-RS
garbage and a client vanishing mid-upload. After each, the node still answers and at the end
it stops cleanly (no leak, no crash under ASan).
"""
import os
import socket
import time

import lib
import web

MR = os.path.join(lib.TESTDATA, "pydicom/test_files/MR_small.dcm")


def status_of(resp):
    try:
        return int(resp.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def alive(node):
    st, _, _ = web.request(node, "GET", "/dicomweb/studies", web.ADMIN)
    return st in (200, 204)


def main():
    if not os.path.exists(MR):
        lib.skip("test data missing")
    node = web.WebNode(name="hostile", extra={"http.header_timeout": "1s", "http.idle_timeout": "3s",
                                               "http.max_connections": 8, "http.max_body_mb": 1,
                                               "http.max_header_size": 4096})
    node.start()

    # huge header
    big = b"GET /dicomweb/studies HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10000 + b"\r\n\r\n"
    r = web.raw(node, big, read_timeout=10)
    lib.check(status_of(r) == 431, "huge header -> 431 (%r)" % r[:60])
    lib.check(alive(node), "alive after huge header")
    # many headers
    many = b"GET /dicomweb/studies HTTP/1.1\r\n" + b"".join(b"X-H%d: 1\r\n" % i for i in range(100)) + b"\r\n"
    r = web.raw(node, many, read_timeout=10)
    lib.check(status_of(r) == 431, "100 headers -> 431 (%r)" % r[:60])
    # not HTTP
    r = web.raw(node, b"\x16\x03\x01\x02\x00garbage\r\n\r\n", read_timeout=10)
    lib.check(status_of(r) == 400, "garbage -> 400 (%r)" % r[:60])
    r = web.raw(node, b"GET /dicomweb/studies/1.2.3%00/x HTTP/1.1\r\nHost: x\r\n\r\n", read_timeout=10)
    lib.check(status_of(r) == 400, "NUL in path -> 400 (%r)" % r[:60])
    # body too large (Content-Length over the limit): refused before reading it
    r = web.raw(node, b"POST /dicomweb/studies HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n"
                      b"Content-Type: multipart/related; type=\"application/dicom\"; boundary=b\r\n\r\n",
                read_timeout=10)
    lib.check(status_of(r) == 413, "Content-Length over max_body -> 413 (%r)" % r[:60])
    lib.check(alive(node), "alive after 413")
    # slowloris: a header that never ends
    s = socket.create_connection(("127.0.0.1", node.http_port), timeout=30)
    s.sendall(b"GET /dicomweb/studies HTTP/1.1\r\nHost: x\r\n")
    t0 = time.monotonic()
    got = b""
    try:
        for _ in range(20):
            s.sendall(b"X-Slow: 1\r\n")
            time.sleep(0.2)
        while True:
            d = s.recv(4096)
            if not d:
                break
            got += d
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        pass
    s.close()
    lib.check(status_of(got) == 408 or got == b"", "slowloris -> 408/closed (%r)" % got[:60])
    lib.check(time.monotonic() - t0 < 25, "slowloris connection did not outlive the timeouts")
    lib.check(alive(node), "alive after slowloris")
    # idle keep-alive connection closed by the server
    s = socket.create_connection(("127.0.0.1", node.http_port), timeout=30)
    try:
        d = s.recv(10)
        lib.check(d == b"", "idle connection closed by the server")
    except (ConnectionResetError, socket.timeout) as e:
        lib.check(not isinstance(e, socket.timeout), "idle connection closed (%r)" % e)
    s.close()

    # pipelining: two requests in one write, answered in order on one connection
    auth = web.ADMIN["Authorization"].encode()
    req = (b"GET /dicomweb/studies?limit=1 HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth + b"\r\n\r\n"
           b"GET /dicomweb/nothing HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth + b"\r\n"
           b"Connection: close\r\n\r\n")
    r = web.raw(node, req, read_timeout=10)
    codes = [int(x.split(b" ")[1]) for x in r.split(b"\r\n") if x.startswith(b"HTTP/1.1 ")]
    lib.check(codes == [204, 404] or codes == [200, 404], "pipelined: two answers in order (%r)" % codes)

    # chunked STOW upload
    body, ct = web.multipart_encode([open(MR, "rb").read()])
    chunks = b""
    for i in range(0, len(body), 1000):
        piece = body[i:i + 1000]
        chunks += b"%x\r\n" % len(piece) + piece + b"\r\n"
    chunks += b"0\r\n\r\n"
    req = (b"POST /dicomweb/studies HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth + b"\r\n"
           b"Transfer-Encoding: chunked\r\nContent-Type: " + ct.encode() + b"\r\nConnection: close\r\n\r\n" + chunks)
    r = web.raw(node, req, read_timeout=20)
    lib.check(status_of(r) == 200, "chunked STOW -> 200 (%r)" % r[:80])
    # keep-alive: several requests on one connection
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=20)
    ok = 0
    for _ in range(5):
        c.request("GET", "/dicomweb/studies", headers=web.ADMIN)
        rr = c.getresponse()
        rr.read()
        ok += rr.status == 200
    c.close()
    lib.check(ok == 5, "keep-alive: 5 answers on one connection")
    # client vanishes in the middle of a STOW body
    s = socket.create_connection(("127.0.0.1", node.http_port), timeout=10)
    s.sendall(b"POST /dicomweb/studies HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth + b"\r\n"
              b"Content-Length: %d\r\nContent-Type: " % len(body) + ct.encode() + b"\r\n\r\n" + body[:len(body) // 2])
    s.close()
    # clients that vanish in the middle of a retrieval (the node must not die of SIGPIPE,
    # nor leave the stream hanging): a big instance, read a little, close
    big = os.path.join(lib.TESTDATA, "dicom-test-files/WG04/REF/MR1_UNC")
    if os.path.exists(big):
        st, r = web.stow(node, "/dicomweb/studies", [big], web.ADMIN)
        if lib.check(st == 200 and r, "stored a 0.5 MB instance (%s)" % st):
            url = r["00081199"]["Value"][0]["00081190"]["Value"][0]
            path = "/" + url.split("://", 1)[1].split("/", 1)[1]
            for i in range(12):
                s = socket.create_connection(("127.0.0.1", node.http_port), timeout=10)
                s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth +
                          b"\r\nAccept: multipart/related; type=\"application/dicom\"; transfer-syntax=*\r\n\r\n")
                if i % 2:
                    try:
                        s.recv(1000 * i)
                    except OSError:
                        pass
                s.close()
            lib.check(alive(node), "alive after clients vanished mid-retrieval")
            st, _, b = web.request(node, "GET", path, dict(web.ADMIN, Accept='multipart/related; type="application/dicom"; transfer-syntax=*'))
            lib.check(st == 200 and len(b) > 500000, "a full retrieval still works")
    # garbage multipart body
    req = (b"POST /dicomweb/studies HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth + b"\r\n"
           b"Content-Length: 20\r\nContent-Type: multipart/related; type=\"application/dicom\"; boundary=qq\r\n"
           b"Connection: close\r\n\r\n" + b"x" * 20)
    r = web.raw(node, req, read_timeout=10)
    lib.check(status_of(r) == 400, "garbage multipart -> 400 (%r)" % r[:60])
    # too many connections
    socks = []
    for _ in range(12):
        socks.append(socket.create_connection(("127.0.0.1", node.http_port), timeout=10))
    time.sleep(0.3)
    refused = 0
    for s in socks:
        s.settimeout(0.5)
        try:
            d = s.recv(100)
            refused += status_of(d) == 503
        except socket.timeout:
            pass
    for s in socks:
        s.close()
    lib.check(refused >= 3, "connections over max_connections get 503 (%d)" % refused)
    time.sleep(0.3)
    lib.check(alive(node), "alive at the end")
    st, j = web.get_json(node, "/dicomweb/studies", web.ADMIN)
    # MR1_UNC and MR_small share their UIDs (MR_small is derived from it): one study
    lib.check(st == 200 and len(j) == 1, "one study stored (the vanished upload left nothing)")
    rc = node.stop()
    lib.check(rc == 0, "clean stop (rc %s)" % rc)


lib.run_guarded(main)
