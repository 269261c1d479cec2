#!/usr/bin/python3
"""t_web_keepalive: the HTTP layer's answers to requests without a body keep the connection
(a 4xx is an answer, not a reason to close), pipelined requests after one are answered in
order, and headers over the limits answer 431 whichever way they overflow.

- GET with an unknown parameter (400), an unknown UID (404), no credentials (401), a URL
  outside DICOMweb (404): each followed on the same connection by a good request, sent
  pipelined: both answered, the first without `Connection: close`.
- a request whose body is not read (a STOW-RS POST refused with 401) still closes (the rest
  of its body is not read), as before.
- one header value or a request line longer than http.max_header_size (and longer than the
  parser's own 80 KiB): 431, as for many small headers.
"""
import socket

import lib
import web

AUTH = b"Authorization: Bearer " + web.TOKEN_ADMIN.encode() + b"\r\n"
GOOD = b"GET /dicomweb/studies?limit=1 HTTP/1.1\r\nHost: x\r\n" + AUTH + b"Connection: close\r\n\r\n"


def exchange(node, data, timeout=20.0):
    """Send data on a new connection; return everything read until the server closes."""
    s = socket.create_connection(("127.0.0.1", node.http_port), timeout=timeout)
    out = b""
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        while True:
            try:
                d = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not d:
                break
            out += d
    finally:
        s.close()
    return out


def heads(resp):
    """The status lines and Connection headers of the responses in resp, in order."""
    lines = [l.rstrip(b"\r") for l in resp.split(b"\n")]  # text/plain bodies end with \n
    return [l for l in lines if l.startswith(b"HTTP/1.1 ") or l.lower().startswith(b"connection:")]


def status(resp):
    line = resp.split(b"\r\n", 1)[0]
    return int(line.split()[1]) if line.startswith(b"HTTP/1.1 ") else None


def main():
    node = web.WebNode(name="keepalive")
    node.start()

    cases = [
        (b"GET /dicomweb/studies?foo=1 HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\r\n", 400),
        (b"GET /dicomweb/studies/1.2.3.4/metadata HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\r\n", 404),
        (b"GET /dicomweb/studies HTTP/1.1\r\nHost: x\r\n\r\n", 401),
        (b"GET /elsewhere HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\r\n", 404),
        (b"GET /dicomweb/studies?foo=1 HTTP/1.1\r\nHost: x\r\n" + AUTH +
         b"Content-Length: 0\r\n\r\n", 400),
    ]
    for req, want in cases:
        what = req.split(b"\r\n", 1)[0].decode()
        h = heads(exchange(node, req + GOOD))
        lib.check(len(h) >= 1 and h[0] == b"HTTP/1.1 %d %s" % (want, h[0].split(b" ", 2)[2]),
                  "%s: first answer %d (%r)" % (what, want, h))
        lib.check(len(h) >= 2 and h[1].lower() != b"connection: close",
                  "%s: connection kept after the %d (%r)" % (what, want, h))
        lib.check(b"HTTP/1.1 204 No Content" in h[1:],
                  "%s: the pipelined request after it is answered (%r)" % (what, h))

    # a body that is not read: the connection closes after the answer (nothing is lost: the
    # client sees Connection: close)
    body = b"x" * 100000
    resp = exchange(node, b"POST /dicomweb/studies HTTP/1.1\r\nHost: x\r\nContent-Type: "
                    b"multipart/related; type=\"application/dicom\"; boundary=B\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(body) + body + GOOD)
    h = heads(resp)
    lib.check(h[:2] == [b"HTTP/1.1 401 Unauthorized", b"Connection: close"],
              "unread body: 401 and close (%r)" % h)

    # header limits: 431 however the limit is passed (http.max_header_size is 16384)
    for what, req in (
            ("a 17 KB header value", b"GET /dicomweb/studies HTTP/1.1\r\nHost: x\r\nX-Big: " +
             b"a" * 17000 + b"\r\n\r\n"),
            ("a 200 KB header value", b"GET /dicomweb/studies HTTP/1.1\r\nHost: x\r\nX-Big: " +
             b"a" * 200000 + b"\r\n\r\n"),
            ("a 17 KB request line", b"GET /dicomweb/studies?" + b"a" * 17000 +
             b" HTTP/1.1\r\nHost: x\r\n\r\n"),
            ("a 100 KB request line", b"GET /dicomweb/studies?" + b"a" * 100000 +
             b" HTTP/1.1\r\nHost: x\r\n\r\n"),
            ("100 header fields", b"GET /dicomweb/studies HTTP/1.1\r\nHost: x\r\n" +
             b"".join(b"X-%d: y\r\n" % i for i in range(100)) + b"\r\n")):
        resp = exchange(node, req)
        lib.check(status(resp) == 431, "%s: 431 (%r)" % (what, resp[:80]))

    # the node is unharmed
    lib.check(status(exchange(node, GOOD)) == 204, "a good request afterwards: 204 (no studies)")
    rc = node.stop()
    lib.check(rc == 0, "clean stop (rc %s)" % rc)


lib.run_guarded(main)
