"""ul_peer.py - helpers for the upper-layer integration tests (t_ul_*.py): start and stop a
mitral node on a free 127.0.0.1 port, and a raw-socket DICOM peer that builds PDUs by hand
(PS3.8 §9.3) so tests can send what dcmtk never would. Not a test itself (no t_ prefix)."""

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

VERIFICATION = "1.2.840.10008.1.1"
MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
APP_CONTEXT = "1.2.840.10008.3.1.1.1"


def skip(msg):
    print("SKIP: " + msg)
    sys.exit(0)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Node:
    """mitral serve on a free port with a temporary data directory."""

    def __init__(self, conf_extra="", aet="MITRAL"):
        self.binary = os.environ.get("MITRAL")
        if not self.binary or not os.path.exists(self.binary):
            skip("MITRAL (path of the mitral binary) not set")
        self.dir = tempfile.mkdtemp(prefix="mt_ul_")
        self.port = free_port()
        self.aet = aet
        conf = os.path.join(self.dir, "mitral.yaml")
        with open(conf, "w") as f:
            f.write("node:\n  ae_title: %s\n  bind: 127.0.0.1\n  port: %d\n  data_dir: %s\n"
                    % (aet, self.port, os.path.join(self.dir, "data")))
            f.write(conf_extra)
        self.log_path = os.path.join(self.dir, "log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([self.binary, "serve", "-c", conf], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        # wait until it accepts connections (not a timed assertion: bounded retry)
        for _ in range(200):
            if self.proc.poll() is not None:
                raise SystemExit("mitral exited at start-up:\n" + self.read_log())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise SystemExit("mitral does not listen on port %d" % self.port)

    def read_log(self):
        with open(self.log_path) as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        log = self.read_log()
        if "ERROR: AddressSanitizer" in log or "LeakSanitizer" in log or "runtime error" in log:
            print(log)
            raise SystemExit("sanitizer report in the node's log")
        return self.proc.returncode

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def dcmtk(tool, *args, timeout=120):
    """Run a dcmtk tool with TCP_NODELAY=1; returns (exit code, output)."""
    if not shutil.which(tool):
        skip(tool + " not installed")
    env = dict(os.environ, TCP_NODELAY="1")
    p = subprocess.run([tool] + list(args), env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace")


# ---- PDU building (PS3.8 §9.3) ----

def pdu(ptype, body):
    return struct.pack(">BBI", ptype, 0, len(body)) + body


def item(itype, value):
    return struct.pack(">BBH", itype, 0, len(value)) + value


def uid(u):
    b = u.encode()
    return b + (b"\0" if len(b) % 2 else b"")


def associate_rq(called="MITRAL", calling="RAWPEER", contexts=((1, VERIFICATION, (IMPLICIT_LE,)),),
                 version=1, max_len=16384, app_context=APP_CONTEXT):
    body = struct.pack(">HH", version, 0)
    body += called.ljust(16).encode() + calling.ljust(16).encode() + b"\0" * 32
    body += item(0x10, app_context.encode())
    for pcid, abstract, tss in contexts:
        v = struct.pack(">BBBB", pcid, 0, 0, 0) + item(0x30, abstract.encode())
        for ts in tss:
            v += item(0x40, ts.encode())
        body += item(0x20, v)
    ui = item(0x51, struct.pack(">I", max_len)) + item(0x52, b"1.2.3.4")
    body += item(0x50, ui)
    return pdu(0x01, body)


def pdata(pcid, command, last, data):
    mch = (1 if command else 0) | (2 if last else 0)
    return pdu(0x04, struct.pack(">IBB", len(data) + 2, pcid, mch) + data)


def release_rq():
    return pdu(0x05, b"\0" * 4)


def elem_us(tag_e, v):
    return struct.pack("<HHIH", 0, tag_e, 2, v)


def elem_str(tag_e, s):
    b = uid(s)
    return struct.pack("<HHI", 0, tag_e, len(b)) + b


def command_set(field, msg_id, sop_class=None, sop_instance=None, has_data=False, extra=b""):
    """A command set in implicit VR LE with its group length (PS3.7 §6.3, Annex E)."""
    body = b""
    if sop_class:
        body += elem_str(0x0002, sop_class)
    body += elem_us(0x0100, field)
    body += elem_us(0x0110, msg_id)
    if field in (0x0001, 0x0020, 0x0021, 0x0010):
        body += elem_us(0x0700, 0)  # priority
    body += elem_us(0x0800, 0x0001 if has_data else 0x0101)
    if sop_instance:
        body += elem_str(0x1000, sop_instance)
    body += extra
    return struct.pack("<HHII", 0, 0, 4, len(body)) + body


def parse_command(b):
    """Command set bytes -> {element: value} (US as int, strings stripped)."""
    out = {}
    pos = 0
    while pos + 8 <= len(b):
        g, e, n = struct.unpack_from("<HHI", b, pos)
        v = b[pos + 8:pos + 8 + n]
        pos += 8 + n
        if n == 2 and e not in (0x0002, 0x0003, 0x1000, 0x1001):
            out[e] = struct.unpack("<H", v)[0]
        else:
            out[e] = v.rstrip(b"\0 ").decode(errors="replace")
    return out


class Peer:
    """A raw-socket association requestor."""

    def __init__(self, port, timeout=30):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = bytearray()
        self.pos = 0

    def send(self, b):
        self.s.sendall(b)

    def recv_exact(self, n):
        while len(self.buf) - self.pos < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            if self.pos:
                del self.buf[:self.pos]
                self.pos = 0
            self.buf += chunk
        out = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return out

    def recv_pdu(self):
        """(type, body), or (None, None) when the node closed the connection."""
        try:
            h = self.recv_exact(6)
        except (EOFError, ConnectionResetError):
            return None, None
        t, _, n = struct.unpack(">BBI", h)
        return t, self.recv_exact(n)

    def closed_by_node(self):
        """True when the node closes the connection (reads until EOF)."""
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def associate(self, **kw):
        self.send(associate_rq(**kw))
        return self.recv_pdu()

    def recv_command(self):
        """Reassemble the next command set (P-DATA-TF PDVs) -> (pcid, dict)."""
        cmd = b""
        while True:
            t, body = self.recv_pdu()
            if t != 0x04:
                raise AssertionError("expected P-DATA-TF, got %r" % (t,))
            pos = 0
            while pos < len(body):
                n, pcid, mch = struct.unpack_from(">IBB", body, pos)
                cmd += body[pos + 6:pos + 4 + n]
                pos += 4 + n
                if mch & 1 and mch & 2:
                    return pcid, parse_command(cmd)

    def close(self):
        self.s.close()


def abort_fields(body):
    """A-ABORT body -> (source, reason)."""
    return body[2], body[3]


def rj_fields(body):
    """A-ASSOCIATE-RJ body -> (result, source, reason)."""
    return body[1], body[2], body[3]


def check(cond, msg):
    if not cond:
        raise SystemExit("FAIL: " + msg)
    print("ok - " + msg)
