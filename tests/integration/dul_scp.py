"""
dul_scp.py - a scripted Storage SCP (PS3.8 upper layer, PS3.7 C-STORE) for the forwarding
tests: it accepts one association at a time, accepts every proposed context with its first
transfer syntax, answers an asynchronous operations window proposal with its own `window`
(or with no item at all when window is None, like dcmtk's storescp), and decides per C-STORE
what to do, so that tests can hold responses back, answer out of order and drop the
connection with operations outstanding.

  scp = dul_scp.Scp(port, window=8, policy=...)   # listens on 127.0.0.1:port (a thread)
  scp.acked       SOP Instance UIDs answered 0000, in order
  scp.held        SOP Instance UIDs received completely and not answered
  scp.max_outstanding   most C-STOREs received and not yet answered at one time
  scp.datasets    {SOP Instance UID: the data set bytes received} (the last of each)
  Scp(..., slow_read=s)  a small receive buffer and a pause of s seconds before every read of
                  at most 4 KiB: the sender's socket fills (its writes come back short)
  scp.rq_window   the window item of the last A-ASSOCIATE-RQ ((invoked, performed) or None)
  scp.ended       an Event: set when an association ended
  scp.stop()

policy(scp, sop, n) is called when a C-STORE (command and data set) is complete, n counting
the received and unanswered ones including this one, and returns
"ack" (answer 0000 now), "hold" (keep it unanswered: answered by the next "flush", or when
nothing arrives for `idle` seconds), "flush" (answer it and every held one, newest first:
out of order), "hold-until-drop" (as hold, but never answered on idle) or "drop" (close the
connection: FIN after the responses sent so far, everything held stays unanswered) or
"ack-drop" (answer this one, then drop: the SCU has nothing outstanding when the link ends).
Default: "ack". An answer is 0000 unless scp.statuses[sop] = (status, comment) says
otherwise (scp.answered lists every (sop, status) sent; scp.acked only the 0000s). scp.ignore_release = True: an A-RELEASE-RQ is never answered (sets
scp.release_ignored). With silent=True the SCP reads
the A-ASSOCIATE-RQ and never answers it (a destination hanging during association set-up).

Built with dul.py's encoders; only the standard library.
"""
import socket
import struct
import threading
import time

import dul


def _items(b, pos):
    while pos + 4 <= len(b):
        t, _, ln = struct.unpack(">BBH", b[pos:pos + 4])
        yield t, b[pos + 4:pos + 4 + ln]
        pos += 4 + ln


def _text(v):
    return v.rstrip(b"\0 ").decode("ascii", "replace")


def parse_rq(body):
    """A-ASSOCIATE-RQ body -> (called, calling, [(pcid, abstract, [ts])], window or None)."""
    called, calling = _text(body[4:20]), _text(body[20:36])
    pcs, window = [], None
    for t, v in _items(body, 68):
        if t == 0x20:
            abstract, tss = None, []
            for st, sv in _items(v, 4):
                if st == 0x30:
                    abstract = _text(sv)
                elif st == 0x40:
                    tss.append(_text(sv))
            pcs.append((v[0], abstract, tss))
        elif t == 0x50:
            for st, sv in _items(v, 0):
                if st == 0x53 and len(sv) == 4:
                    window = struct.unpack(">HH", sv)
    return called, calling, pcs, window


def assoc_ac(called, calling, pcs, window):
    body = struct.pack(">HH", 1, 0) + dul._ae(called) + dul._ae(calling) + b"\0" * 32
    body += dul._item(0x10, dul._uid(dul.APP_CONTEXT))
    for pcid, _, tss in pcs:
        body += dul._item(0x21, struct.pack(">BBBB", pcid, 0, 0, 0) +
                          dul._item(0x40, dul._uid(tss[0])))
    ui = dul._item(0x51, struct.pack(">I", 65536)) + dul._item(0x52, dul._uid(dul.IMPL_CLASS))
    if window is not None:
        ui += dul._item(0x53, struct.pack(">HH", window, 1))
    body += dul._item(0x50, ui)
    return dul.pdu(dul.PDU_ASSOC_AC, body)


def c_store_rsp(msg_id, sop_class, sop_inst, status=0, comment=None):
    fields = [(0x0002, dul._uid(sop_class)), (0x0100, dul._us(dul.C_STORE_RSP)),
              (0x0120, dul._us(msg_id)), (0x0800, dul._us(0x0101)),
              (0x0900, dul._us(status)), (0x1000, dul._uid(sop_inst))]
    if comment:  # Error Comment (0000,0902), LO
        b = comment.encode("ascii")
        fields.append((0x0902, b + b" " if len(b) % 2 else b))
    return dul.command(fields)


class Scp:
    def __init__(self, port, window=None, policy=None, silent=False, idle=0.3, slow_read=0):
        self.port, self.window, self.policy, self.silent = port, window, policy, silent
        self.idle = idle
        self.slow_read = slow_read
        self.datasets = {}
        self.flush_on_idle = True
        self.ignore_release = False  # True: A-RELEASE-RQ left unanswered (release_ignored set)
        self.release_ignored = threading.Event()
        self.acked, self.held, self.rq_window = [], [], None
        self.statuses = {}  # SOP Instance UID -> (status, ErrorComment or None) it is answered
        self.answered = []  # (SOP Instance UID, status) of every response, in order
        self.max_outstanding = 0
        self.associations = 0
        self.got_rq = threading.Event()
        self.ended = threading.Event()  # an association ended (released, aborted, dropped)
        self.lock = threading.Lock()
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if slow_read:  # before listen: the window it advertises
            self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.ls.bind(("127.0.0.1", port))
        self.ls.listen(8)
        self.stopping = False
        self.conns = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def stop(self):
        self.stopping = True
        try:
            self.ls.close()
        except OSError:
            pass
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
        self.thread.join(10)

    # -- the connection --
    def _serve(self):
        while not self.stopping:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            self.conns.append(c)
            try:
                self._association(c)
            except (OSError, dul.Closed, struct.error):
                pass
            self.ended.set()
            if not self.silent:
                try:
                    c.close()
                except OSError:
                    pass

    def _recv_pdu(self, c):
        """One PDU; bytes read before a socket.timeout stay in self.rbuf for the next call."""
        while True:
            if len(self.rbuf) >= 6:
                t, _, ln = struct.unpack(">BBI", self.rbuf[:6])
                if len(self.rbuf) >= 6 + ln:
                    body, self.rbuf = self.rbuf[6:6 + ln], self.rbuf[6 + ln:]
                    return t, body
            if self.slow_read:
                time.sleep(self.slow_read)
            k = c.recv(4096 if self.slow_read else 65536)
            if not k:
                raise dul.Closed("closed")
            self.rbuf += k

    def _association(self, c):
        self.rbuf = b""
        t, body = self._recv_pdu(c)
        if t != dul.PDU_ASSOC_RQ:
            return
        called, calling, pcs, window = parse_rq(body)
        self.rq_window = window
        self.associations += 1
        self.got_rq.set()
        if self.silent:
            while not self.stopping:  # read whatever comes (an A-ABORT), never answer
                if not c.recv(65536):
                    return
            return
        answer = None if self.window is None or window is None else self.window
        c.sendall(assoc_ac(called, calling, pcs, answer))
        waiting = []  # (msg_id, class, inst, pcid) unanswered, oldest first
        cmd, data, cur = b"", b"", None
        c.settimeout(self.idle)
        while True:
            try:
                t, body = self._recv_pdu(c)
            except socket.timeout:
                if waiting and self.flush_on_idle:
                    self._answer(c, list(reversed(waiting)))
                    waiting = []
                continue
            if t == dul.PDU_RELEASE_RQ:
                if self.ignore_release:  # a destination stuck: never answers the A-RELEASE-RQ
                    self.release_ignored.set()
                    continue
                c.sendall(dul.pdu(dul.PDU_RELEASE_RP, b"\0\0\0\0"))
                return
            if t != dul.PDU_PDATA:
                return
            pos = 0
            while pos + 6 <= len(body):
                ln, pcid, hdr = struct.unpack(">IBB", body[pos:pos + 6])
                frag = body[pos + 6:pos + 4 + ln]
                pos += 4 + ln
                if hdr & 1:
                    cmd += frag
                    if hdr & 2:
                        cur = dul.parse_command(cmd)
                        cmd = b""
                    continue
                data += frag
                if not hdr & 2:
                    continue
                raw = cur["raw"]
                msg_id = struct.unpack("<H", raw[0x0110][:2])[0]
                op = (msg_id, _text(raw[0x0002]), _text(raw[0x1000]), pcid)
                with self.lock:
                    self.datasets[op[2]] = data
                data, cur = b"", None
                waiting.append(op)
                with self.lock:
                    self.max_outstanding = max(self.max_outstanding, len(waiting))
                what = self.policy(self, op[2], len(waiting)) if self.policy else "ack"
                if what in ("drop", "hold-until-drop"):
                    self.flush_on_idle = False
                if what == "hold-until-drop":
                    continue
                if what == "drop":
                    with self.lock:
                        self.held.extend(o[2] for o in waiting)
                    self._drop(c)
                    return
                if what == "ack-drop":
                    self._answer(c, [waiting.pop()])
                    with self.lock:
                        self.held.extend(o[2] for o in waiting)
                    self._drop(c)
                    return
                if what == "hold":
                    continue
                todo = [waiting.pop()] if what == "ack" else list(reversed(waiting))
                if what == "flush":
                    waiting = []
                self._answer(c, todo)

    def _drop(self, c):
        """End the connection without A-RELEASE or A-ABORT: FIN after the responses already
        sent (so the SCU reads them), then discard what still arrives until the SCU closes.
        A close() with unread input would send a RST instead, and the SCU's kernel could
        discard responses it had not read yet."""
        c.shutdown(socket.SHUT_WR)
        c.settimeout(10)
        try:
            while c.recv(65536):
                pass
        except OSError:
            pass
        c.close()

    def _answer(self, c, ops):
        for m, cls, inst, pc in ops:
            status, comment = self.statuses.get(inst, (0, None))
            c.sendall(dul.pdata([(pc, True, True, c_store_rsp(m, cls, inst, status, comment))]))
            with self.lock:
                if status == 0:
                    self.acked.append(inst)
                self.answered.append((inst, status))
