"""
dul.py - a minimal DICOM upper layer client (PS3.8) and DIMSE (PS3.7) for the integration
tests: enough to associate with one or more presentation contexts, send C-ECHO and C-STORE
requests (whole, or cut anywhere), read responses, release or abort, and to send bytes that
no well-behaved SCU would (the hostile tests).

Written from PS3.8 §9.3 and PS3.7 §9.3/Annex E; only the standard library.

  a = dul.Assoc("127.0.0.1", port, called="MITRAL", calling="DULTEST",
                contexts=[(dul.VERIFICATION, [dul.IMPLICIT_LE])])
  a.associate()                  # -> True (accepted), or a.reject = (result, source, reason)
  a.echo()                       # -> status
  a.store(pcid, sop_class, sop_inst, dataset_bytes)   # -> (status, response command dict)
  a.release()
"""
import socket
import struct

VERIFICATION = "1.2.840.10008.1.1"
MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
APP_CONTEXT = "1.2.840.10008.3.1.1.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
IMPL_CLASS = "1.2.826.0.1.3680043.10.1532.99"

PDU_ASSOC_RQ, PDU_ASSOC_AC, PDU_ASSOC_RJ = 1, 2, 3
PDU_PDATA, PDU_RELEASE_RQ, PDU_RELEASE_RP, PDU_ABORT = 4, 5, 6, 7

C_STORE_RQ, C_STORE_RSP = 0x0001, 0x8001
C_ECHO_RQ, C_ECHO_RSP = 0x0030, 0x8030


class Closed(Exception):
    """The peer closed the connection (or reset it)."""


def _uid(s):
    b = s.encode("ascii")
    return b + b"\0" if len(b) % 2 else b


def _ae(s):
    return s.encode("ascii").ljust(16, b" ")[:16]


def _item(t, body):
    return struct.pack(">BBH", t, 0, len(body)) + body


def pdu(t, body):
    return struct.pack(">BBI", t, 0, len(body)) + body


def assoc_rq(called, calling, contexts, max_pdu=16384, async_ops=None, roles=None):
    """contexts: [(abstract, [ts...])] -> A-ASSOCIATE-RQ PDU bytes; pcids 1, 3, 5...
    roles: [(sop_class, scu, scp)] SCP/SCU role selection items (PS3.7 D.3.3.4)."""
    body = struct.pack(">HH", 1, 0) + _ae(called) + _ae(calling) + b"\0" * 32
    body += _item(0x10, _uid(APP_CONTEXT))
    for i, (abstract, tss) in enumerate(contexts):
        pc = struct.pack(">BBBB", 2 * i + 1, 0, 0, 0) + _item(0x30, _uid(abstract))
        for ts in tss:
            pc += _item(0x40, _uid(ts))
        body += _item(0x20, pc)
    ui = _item(0x51, struct.pack(">I", max_pdu)) + _item(0x52, _uid(IMPL_CLASS))
    if async_ops:
        ui += _item(0x53, struct.pack(">HH", async_ops[0], async_ops[1]))
    for uid, scu, scp in roles or ():
        u = _uid(uid)
        ui += _item(0x54, struct.pack(">H", len(u)) + u + bytes([scu, scp]))
    ui += _item(0x55, b"MT_DULTEST")
    body += _item(0x50, ui)
    return pdu(PDU_ASSOC_RQ, body)


def parse_assoc_ac(body):
    """-> ({pcid: (result, ts)}, peer max pdu, async window (invoked, performed) or None)"""
    pcs, max_pdu, window = {}, 0, None
    pos = 68
    while pos + 4 <= len(body):
        t, _, ln = struct.unpack(">BBH", body[pos:pos + 4])
        v = body[pos + 4:pos + 4 + ln]
        if t == 0x21:
            pcid, result = v[0], v[2]
            ts = None
            if len(v) >= 8 and v[4] == 0x40:
                tl = struct.unpack(">H", v[6:8])[0]
                ts = v[8:8 + tl].rstrip(b"\0 ").decode()
            pcs[pcid] = (result, ts)
        elif t == 0x50:
            q = 0
            while q + 4 <= len(v):
                st, _, sl = struct.unpack(">BBH", v[q:q + 4])
                if st == 0x51 and sl == 4:
                    max_pdu = struct.unpack(">I", v[q + 4:q + 8])[0]
                elif st == 0x53 and sl == 4:
                    window = struct.unpack(">HH", v[q + 4:q + 8])
                q += 4 + sl
        pos += 4 + ln
    return pcs, max_pdu, window


# ---- DIMSE command sets: implicit VR little endian, group 0000 ----

def _elem(tag_el, value):
    return struct.pack("<HHI", 0x0000, tag_el, len(value)) + value


def _us(v):
    return struct.pack("<H", v)


def command(fields):
    """fields: [(element, bytes)] sorted -> command set with (0000,0000) group length."""
    body = b"".join(_elem(el, v) for el, v in sorted(fields))
    return _elem(0x0000, struct.pack("<I", len(body))) + body


def c_echo_rq(msg_id):
    return command([(0x0002, _uid(VERIFICATION)), (0x0100, _us(C_ECHO_RQ)),
                    (0x0110, _us(msg_id)), (0x0800, _us(0x0101))])


def c_store_rq(msg_id, sop_class, sop_inst, priority=0):
    return command([(0x0002, _uid(sop_class)), (0x0100, _us(C_STORE_RQ)), (0x0110, _us(msg_id)),
                    (0x0700, _us(priority)), (0x0800, _us(0x0000)), (0x1000, _uid(sop_inst))])


def parse_command(b):
    """Command set bytes -> {element: raw bytes}; plus 'status', 'field', 'comment' helpers."""
    out = {}
    pos = 0
    while pos + 8 <= len(b):
        g, e, ln = struct.unpack("<HHI", b[pos:pos + 8])
        out[e] = b[pos + 8:pos + 8 + ln]
        pos += 8 + ln
    res = {"raw": out}
    if 0x0900 in out:
        res["status"] = struct.unpack("<H", out[0x0900][:2])[0]
    if 0x0100 in out:
        res["field"] = struct.unpack("<H", out[0x0100][:2])[0]
    if 0x0902 in out:
        res["comment"] = out[0x0902].rstrip(b"\0 ").decode("ascii", "replace")
    if 0x0120 in out:
        res["responded_to"] = struct.unpack("<H", out[0x0120][:2])[0]
    return res


def pdata(items):
    """items: [(pcid, is_command, is_last, bytes)] -> one P-DATA-TF PDU."""
    body = b""
    for pcid, is_cmd, last, data in items:
        hdr = (1 if is_cmd else 0) | (2 if last else 0)
        body += struct.pack(">IBB", len(data) + 2, pcid, hdr) + data
    return pdu(PDU_PDATA, body)


class Assoc:
    def __init__(self, host, port, called="MITRAL", calling="DULTEST", contexts=None,
                 max_pdu=16384, timeout=30.0):
        self.host, self.port = host, port
        self.called, self.calling = called, calling
        self.contexts = contexts or [(VERIFICATION, [IMPLICIT_LE])]
        self.max_pdu = max_pdu
        self.peer_max_pdu = 0
        self.accepted = {}  # pcid -> ts
        self.results = {}   # pcid -> result code
        self.reject = None
        self.async_window = None  # (invoked, performed) from the A-ASSOCIATE-AC, if any
        self.abort = None  # (source, reason) of an A-ABORT received
        self.msg_id = 0
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)

    # -- raw bytes --
    def send(self, b):
        try:
            self.sock.sendall(b)
        except (BrokenPipeError, ConnectionResetError) as e:
            raise Closed(str(e))

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except ConnectionResetError as e:
                raise Closed(str(e))
            if not chunk:
                raise Closed("EOF after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return buf

    def recv_pdu(self):
        """-> (type, body). Raises Closed on EOF/reset, socket.timeout on timeout."""
        hdr = self.recv_exact(6)
        t, _, ln = struct.unpack(">BBI", hdr)
        body = self.recv_exact(ln)
        if t == PDU_ABORT and len(body) >= 4:
            self.abort = (body[2], body[3])
        return t, body

    def wait_closed(self, timeout=60.0):
        """Read until the peer closes. Returns the list of PDU types received before EOF
        (e.g. [7] for an A-ABORT then close), or None if it is still open after timeout."""
        self.sock.settimeout(timeout)
        types = []
        try:
            while True:
                t, _ = self.recv_pdu()
                types.append(t)
        except Closed:
            return types
        except socket.timeout:
            return None
        except OSError:
            return types

    def close(self, rst=False):
        if rst:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    # -- association --
    def associate(self, async_ops=None, roles=None):
        self.send(assoc_rq(self.called, self.calling, self.contexts, self.max_pdu, async_ops,
                           roles))
        t, body = self.recv_pdu()
        if t == PDU_ASSOC_AC:
            pcs, self.peer_max_pdu, self.async_window = parse_assoc_ac(body)
            for pcid, (result, ts) in pcs.items():
                self.results[pcid] = result
                if result == 0:
                    self.accepted[pcid] = ts
            return True
        if t == PDU_ASSOC_RJ:
            self.reject = (body[1], body[2], body[3])
            return False
        raise Closed("unexpected PDU type %d in answer to A-ASSOCIATE-RQ" % t)

    def pcid_for(self, abstract):
        for i, (a, _) in enumerate(self.contexts):
            if a == abstract and (2 * i + 1) in self.accepted:
                return 2 * i + 1
        return None

    def max_pdv(self):
        """Largest PDV value we may send in one P-DATA-TF (peer's max, minus headers)."""
        m = self.peer_max_pdu or (1 << 20)
        return max(m - 6 - 6, 64)

    def send_message(self, pcid, data, is_command):
        """Send one command or data set, fragmented to the peer's max PDU."""
        n = self.max_pdv()
        pos = 0
        while True:
            chunk = data[pos:pos + n]
            pos += len(chunk)
            last = pos >= len(data)
            self.send(pdata([(pcid, is_command, last, chunk)]))
            if last:
                return

    def read_message(self):
        """Read one response command set (and data set if any): -> parsed command dict."""
        cmd = b""
        while True:
            t, body = self.recv_pdu()
            if t != PDU_PDATA:
                raise Closed("PDU type %d instead of P-DATA-TF" % t)
            pos = 0
            done = False
            while pos + 6 <= len(body):
                ln, pcid, hdr = struct.unpack(">IBB", body[pos:pos + 6])
                if hdr & 1:
                    cmd += body[pos + 6:pos + 4 + ln]
                    if hdr & 2:
                        done = True
                pos += 4 + ln
            if done:
                return parse_command(cmd)

    def echo(self):
        pcid = self.pcid_for(VERIFICATION)
        self.msg_id += 1
        self.send_message(pcid, c_echo_rq(self.msg_id), True)
        return self.read_message().get("status")

    def store(self, pcid, sop_class, sop_inst, ds):
        """-> (status, response dict). An odd-length data set (a deflated stream) gets the
        single trailing NUL of PS3.5 A.5: PDV fragments are even."""
        if len(ds) % 2:
            ds = ds + b"\0"
        self.msg_id += 1
        self.send_message(pcid, c_store_rq(self.msg_id, sop_class, sop_inst), True)
        self.send_message(pcid, ds, False)
        rsp = self.read_message()
        return rsp.get("status"), rsp

    def release(self):
        self.send(pdu(PDU_RELEASE_RQ, b"\0\0\0\0"))
        t, _ = self.recv_pdu()
        self.sock.close()
        return t == PDU_RELEASE_RP

    def send_abort(self):
        self.send(pdu(PDU_ABORT, b"\0\0\0\0"))
        self.sock.close()


def split_part10(path):
    """-> (sop_class, sop_inst, ts, dataset bytes) of a Part 10 file (meta is explicit LE)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[128:132] != b"DICM":
        raise ValueError("%s: not a Part 10 file" % path)
    pos = 132
    vals = {}
    while pos + 8 <= len(data):
        g, e = struct.unpack("<HH", data[pos:pos + 4])
        if g != 2:
            break
        vr = data[pos + 4:pos + 6]
        if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT", b"OF", b"UC", b"UR"):
            ln = struct.unpack("<I", data[pos + 8:pos + 12])[0]
            hdr = 12
        else:
            ln = struct.unpack("<H", data[pos + 6:pos + 8])[0]
            hdr = 8
        vals[e] = data[pos + hdr:pos + hdr + ln].rstrip(b"\0 ").decode("ascii", "replace")
        pos += hdr + ln
    return vals.get(2), vals.get(3), vals.get(0x10), data[pos:]
