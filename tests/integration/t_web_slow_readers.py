#!/usr/bin/python3
"""t_web_slow_readers: clients that stop reading a large WADO-RS retrieval do not hold the
node's worker threads. Twelve connections (more than the 8 libuv pool threads) ask for a
12 MB study and read nothing; meanwhile QIDO-RS, metadata and another retrieval are answered
at once (before: each stalled sendfile batch held a pool thread in poll() for up to
http.idle_timeout, so every request that needs the pool waited that long). Then two of the
stalled clients read their responses to the end: byte for byte the stored files (the send
resumes where it stopped). http.idle_timeout is 600 s here: the requests' 120 s deadline only
stops a hung node from hanging the test.
"""
import os
import socket
import time

import lib
import web

MR1 = os.path.join(lib.TESTDATA, "dicom-test-files/WG04/REF/MR1_UNC")  # 512x512, ~0.5 MB
N_INST = 24
N_STALLED = 12


def study_parts():
    import io
    import pydicom
    from pydicom.uid import generate_uid
    study = generate_uid(prefix="1.2.826.0.1.3680043.10.1532.77.")
    series = generate_uid(prefix="1.2.826.0.1.3680043.10.1532.77.")
    out = []
    for i in range(N_INST):
        d = pydicom.dcmread(MR1)
        d.StudyInstanceUID, d.SeriesInstanceUID = study, series
        d.SOPInstanceUID = generate_uid(prefix="1.2.826.0.1.3680043.10.1532.77.")
        d.InstanceNumber = i + 1
        d.file_meta.MediaStorageSOPInstanceUID = d.SOPInstanceUID
        b = io.BytesIO()
        d.save_as(b, write_like_original=True)
        out.append((d.SOPInstanceUID, b.getvalue()))
    return study, out


def read_response(s):
    """One HTTP response with a Content-Length from socket s -> (headers, body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    head, _, body = buf.partition(b"\r\n\r\n")
    hdrs = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.decode().partition(":")
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs.get("content-length", "0"))
    while len(body) < n:
        d = s.recv(1 << 20)
        if not d:
            break
        body += d
    return head.split(b"\r\n")[0], hdrs, body


def main():
    if not os.path.exists(MR1):
        lib.skip("test data missing: " + MR1)
    node = web.WebNode(name="slowread", extra={"http.idle_timeout": "600s"})
    node.start()
    study, parts = study_parts()
    body, ct = web.multipart_encode([p for _, p in parts])
    h = dict(web.ADMIN)
    h["Content-Type"] = ct
    st, _, _ = web.request(node, "POST", "/dicomweb/studies", h, body)
    lib.check(st == 200, "stow %d instances: %s" % (N_INST, st))
    stored = {uid: open(web.stored_file(node, uid), "rb").read() for uid, _ in parts}

    req = ("GET /dicomweb/studies/%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
           "Accept: multipart/related; type=\"application/dicom\"; transfer-syntax=*\r\n\r\n"
           % (study, web.TOKEN_ADMIN)).encode()
    stalled = []
    for _ in range(N_STALLED):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills at once
        s.connect(("127.0.0.1", node.http_port))
        s.settimeout(120)
        s.sendall(req)
        stalled.append(s)
    time.sleep(1.0)  # let every retrieval start and fill its socket (not a timed check)

    t0 = time.monotonic()
    st, _, b = web.request(node, "GET", "/dicomweb/studies?StudyInstanceUID=" + study,
                           web.ADMIN, timeout=120)
    lib.check(st == 200, "QIDO-RS while %d clients read nothing: 200 (%s)" % (N_STALLED, st))
    st, _, _ = web.request(node, "GET", "/dicomweb/studies/%s/metadata" % study, web.ADMIN,
                           timeout=120)
    lib.check(st == 200, "metadata while they read nothing: 200 (%s)" % st)
    st, hd, b = web.request(node, "GET", "/dicomweb/studies/" + study, web.ADMIN, timeout=120)
    got = web.multipart_decode(hd["content-type"], b) if st == 200 else []
    lib.check(st == 200 and len(got) == N_INST, "a retrieval that reads: all %d (%s, %d)"
              % (N_INST, st, len(got)))
    lib.log("answered in %.1f s with %d stalled readers" % (time.monotonic() - t0, N_STALLED))

    # two stalled clients now read: their whole responses, byte for byte
    for k in (0, N_STALLED - 1):
        s = stalled[k]
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        line, hd, b = read_response(s)
        lib.check(line == b"HTTP/1.1 200 OK", "stalled client %d: %r" % (k, line))
        got = web.multipart_decode(hd.get("content-type", ""), b) if b else []
        same = len(got) == N_INST and all(p[1] in stored.values() for p in got) and \
            len({p[1] for p in got}) == N_INST
        lib.check(same, "stalled client %d: all %d files byte for byte (%d parts)"
                  % (k, N_INST, len(got)))
    for s in stalled:
        s.close()

    st, _, _ = web.request(node, "GET", "/dicomweb/studies", web.ADMIN, timeout=120)
    lib.check(st == 200, "afterwards: 200 (%s)" % st)
    rc = node.stop()
    lib.check(rc == 0, "clean stop (rc %s)" % rc)

    # a reader that never reads is closed after http.idle_timeout (here 2 s), node unharmed
    node = web.WebNode(name="slowidle", extra={"http.idle_timeout": "2s"})
    node.start()
    h = dict(web.ADMIN)
    h["Content-Type"] = ct
    st, _, _ = web.request(node, "POST", "/dicomweb/studies", h, body)
    lib.check(st == 200, "stow again: %s" % st)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", node.http_port))
    s.sendall(req)
    time.sleep(8.0)  # idle_timeout and a margin: the node must have closed it by now
    s.settimeout(120)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    n = 0
    try:
        while True:
            d = s.recv(1 << 20)
            if not d:
                break
            n += len(d)
    except ConnectionResetError:
        pass
    s.close()
    lib.check(n < N_INST * 500000, "an idle reader is cut off (%d bytes of ~%d)" % (n, N_INST * 525000))
    st, _, _ = web.request(node, "GET", "/dicomweb/studies", web.ADMIN, timeout=120)
    lib.check(st == 200, "after the idle close: 200 (%s)" % st)
    rc = node.stop()
    lib.check(rc == 0, "clean stop (rc %s)" % rc)


lib.run_guarded(main)
