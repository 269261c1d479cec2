#!/usr/bin/python3
"""t_route_stow_peer.py - the STOW-RS user agent against a scripted origin server (issue 6).

A Python server on loopback answers A's STOW-RS requests in turn with: 503; garbage, then
close; nothing at all (A's request_timeout fires); 200 chunked, then closes the kept-alive
connection behind A's back; 202 with the first instance failed (FailureReason C000); 200 that
forgets the last instance; then plain 200s, over kept-alive connections, one of which it
closes as A reuses it (A sends that request again on a new connection, not counted as a
failure). Every request is checked on arrival (method,
path, Bearer token, multipart/related type and boundary, Content-Length equal to the body).
In the end: every instance but the C000 one was delivered, as bytes identical to A's stored
file; the C000 one is dead with its reason; the transient failures were retried (A's log has
each reason); A stops cleanly.
"""
import json
import os
import socket
import socketserver
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests", "deid"))
import lib  # noqa: E402

try:
    import pydicom  # noqa: E402
    import check_leaks  # noqa: E402
except ImportError:
    lib.skip("pydicom not installed")
if not lib.IS_MITRAL:
    lib.skip("needs mitral")

TOKEN = "peer-token-0123456789"
PATH = "/dicomweb/studies"


class State:
    lock = threading.Lock()
    n = 0
    delivered = {}  # sop -> bytes (confirmed in a response)
    problems = []
    trick_done = False


def read_request(f):
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        c = f.read(1)
        if not c:
            return None
        head += c
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    hdr = {}
    for l in lines[1:]:
        if l:
            k, v = l.split(":", 1)
            hdr[k.strip().lower()] = v.strip()
    n = int(hdr.get("content-length", "-1"))
    body = f.read(n) if n > 0 else b""
    return method, path, hdr, body


def parts_of(ctype, body):
    b = ctype.split("boundary=")[1].split(";")[0].strip('"').encode()
    out = []
    for chunk in body.split(b"--" + b)[1:]:
        if chunk.startswith(b"--"):
            break
        h, _, data = chunk.partition(b"\r\n\r\n")
        if not h.strip().lower().startswith(b"content-type: application/dicom"):
            State.problems.append("part type %r" % h[:60])
        out.append(data[:-2] if data.endswith(b"\r\n") else data)
    return out


def sop_of(data):
    import io
    return str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID)


def result_json(ok, failed):
    obj = {}
    if failed:
        obj["00081198"] = {"vr": "SQ", "Value": [
            {"00081155": {"vr": "UI", "Value": [s]}, "00081197": {"vr": "US", "Value": [r]}}
            for s, r in failed]}
    if ok:
        obj["00081199"] = {"vr": "SQ", "Value": [
            {"00081155": {"vr": "UI", "Value": [s]}} for s in ok]}
    return json.dumps(obj).encode()


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        on_conn = 0
        while True:
            req = read_request(self.rfile)
            if req is None:
                return
            method, path, hdr, body = req
            on_conn += 1
            with State.lock:
                i = State.n
                State.n += 1
                trick = i >= 6 and on_conn > 1 and not State.trick_done
                State.trick_done = State.trick_done or trick
            if trick:  # as if the server closed the idle connection just as A reused it
                self.connection.close()
                return
            ct = hdr.get("content-type", "")
            if method != "POST" or path != PATH or hdr.get("authorization") != "Bearer " + TOKEN \
                    or not ct.startswith('multipart/related; type="application/dicom"') \
                    or int(hdr.get("content-length", "-1")) != len(body) \
                    or hdr.get("accept") != "application/dicom+json":
                State.problems.append("request %d: %s %s %s" % (i, method, path, hdr))
            parts = parts_of(ct, body)
            sops = [sop_of(p) for p in parts]
            w = self.wfile
            if i == 0:
                w.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy")
                continue
            if i == 1:
                w.write(b"HELLO WORLD\r\n\r\n")
                return
            if i == 2:
                time.sleep(3)  # longer than A's request_timeout
                return
            ok, failed = list(zip(sops, parts)), []
            if i == 4:
                failed, ok = [(sops[0], 0xC000)], ok[1:]
            if i == 5:
                ok = ok[:-1]
            for s, data in ok:
                State.delivered[s] = data
            js = result_json([s for s, _ in ok], failed)
            status = b"202 Accepted" if failed else b"200 OK"
            if i == 3:
                w.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/dicom+json\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n")
                for k in range(0, len(js), 7):
                    piece = js[k:k + 7]
                    w.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                w.write(b"0\r\n\r\n")
                w.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                return  # closed behind A's back (no Connection: close)
            w.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/dicom+json\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(js) + js)


def main():
    work = lib.tmpdir("mt-stow-peer-")
    gen = os.path.join(work, "gen")
    os.mkdir(gen)
    files = check_leaks.make_cmr_study(gen, n_series=2, n_inst=4)
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    port = srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    tok = os.path.join(work, "token")
    with open(tok, "w") as f:
        f.write(TOKEN + "\n")
    os.chmod(tok, 0o600)
    rules = os.path.join(work, "rules.yaml")
    with open(rules, "w") as f:
        f.write("rules:\n  - name: all\n    forward: [peer]\n")
    a = lib.Node("site", aet="SITE",
                 conf={"routing.rules": rules, "forward.retry_initial": "50ms",
                       "forward.retry_max": "200ms", "forward.max_attempts": "1000",
                       "forward.connect_timeout": "2s", "log.level": "debug"},
                 # a host name (resolved on the libuv pool; ::1 first, when it resolves to
                 # both, is refused and 127.0.0.1 tried next)
                 yaml_extra="destinations:\n  - name: peer\n    stow_url: http://localhost:%d%s\n"
                            "    token_file: %s\n    connections: 1\n"
                            "    max_instances_per_request: 3\n    request_timeout: 1s\n"
                            % (port, PATH, tok))
    a.start()
    r = lib.storescu(a, files, aet="PACS")
    n = sum(1 for _, s in lib.store_results(r.stdout) if s == "Success")
    lib.check(n == len(files), "stored at A (%d/%d)" % (n, len(files)))
    lib.wait_for(lambda: not a.query("SELECT 1 FROM forward_queue WHERE state = 0"),
                 "A's queue settles", 120)
    stored = dict((r["sop_instance_uid"], r["path"]) for r in
                  a.query("SELECT sop_instance_uid, path FROM instances"))
    dead = a.query("SELECT sop_instance_uid, attempts, last_error FROM forward_queue")
    lib.check(len(dead) == 1 and "FailureReason 0xC000" in dead[0]["last_error"],
              "the C000 instance is dead with its reason: %s" % dead)
    want = set(stored) - {d["sop_instance_uid"] for d in dead}
    lib.check(set(State.delivered) == want, "every other instance delivered (%d of %d)"
              % (len(State.delivered), len(want)))
    same = sum(State.delivered.get(s) == open(os.path.join(a.storage, p), "rb").read()
               for s, p in stored.items() if s in want)
    lib.check(same == len(want), "the parts are A's stored files byte for byte (%d/%d)"
              % (same, len(want)))
    lib.check(not State.problems, "every request well formed: %s" % State.problems[:3])
    lib.check(State.n >= 7 and State.trick_done, "the scripted answers were all used (%d "
              "requests)" % State.n)
    log = a.log_text()
    for what in ("HTTP 503", "bad response", "timed out", "not in the response",
                 "sending again on a new one"):
        lib.check(what in log, "A logged the transient failure: %s" % what)
    rc = a.stop()
    lib.check(rc == 0 and "Sanitizer" not in a.log_text(), "A stops cleanly (exit %s)" % rc)
    srv.shutdown()
    srv.server_close()

    # stopping in the middle of a request: a server that reads and never answers
    got = threading.Event()

    class Silent(socketserver.StreamRequestHandler):
        def handle(self):
            if read_request(self.rfile):
                got.set()
            time.sleep(20)

    quiet = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Silent)
    quiet.daemon_threads = True
    threading.Thread(target=quiet.serve_forever, daemon=True).start()
    a2 = lib.Node("site2", aet="SITE2",
                  conf={"routing.rules": rules},
                  yaml_extra="destinations:\n  - name: peer\n    stow_url: http://127.0.0.1:%d%s\n"
                             "    token_file: %s\n" % (quiet.server_address[1], PATH, tok))
    a2.start()
    lib.storescu(a2, files[:1], aet="PACS")
    lib.check(got.wait(60), "the silent server got A2's request")
    t0 = time.time()
    rc = a2.stop()
    lib.check(rc == 0 and time.time() - t0 < 15 and "Sanitizer" not in a2.log_text(),
              "A2 stops cleanly with a request in flight (exit %s, %.1f s)" % (rc, time.time() - t0))
    rows = a2.query("SELECT state, attempts FROM forward_queue")
    lib.check(rows == [{"state": 0, "attempts": 0}],
              "the interrupted entry stays queued as it was: %s" % rows)
    quiet.shutdown()
    quiet.server_close()


lib.run_guarded(main)
