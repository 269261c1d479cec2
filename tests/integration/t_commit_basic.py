#!/usr/bin/python3
"""t_commit_basic.py - Storage Commitment Push Model SCP (issue 3), driven by a small SCU of our
own (raw sockets via dul.py; no packaged tool speaks it):
  1. same association: N-ACTION-RQ for 3 stored instances + 1 unknown -> N-ACTION-RSP 0000,
     then N-EVENT-REPORT-RQ event type 2 on the same association: Referenced SOP Sequence (3),
     Failed SOP Sequence (1, Failure Reason 0112); answered with N-EVENT-REPORT-RSP
  2. all stored -> event type 1, no Failed SOP Sequence; a wrong SOP class -> 0119
  3. the SCU releases right after the N-ACTION: the report comes on a NEW association from
     mitral to the SCU's address in move_destinations, with the SCP role proposed for mitral
     (role selection SCU=0/SCP=1)
  4. a bad request (no Transaction UID) -> N-ACTION-RSP failure, no report."""
import os
import socket
import struct
import threading

import dul
import gen_mr
import lib
import qrlib

from qrlib import (COMMIT, N_ACTION_RSP, N_EVENT_RQ, action_info,  # noqa: E402
                   check_report, n_action_rq, n_event_rsp)


def read_msg(sock_assoc):
    """-> (command dict, data set bytes or None)"""
    cmd, data, have_cmd = b"", b"", False
    expect_data = None
    while True:
        t, body = sock_assoc.recv_pdu()
        if t != dul.PDU_PDATA:
            raise dul.Closed("PDU type %d instead of P-DATA-TF" % t)
        pos = 0
        while pos + 6 <= len(body):
            ln, pcid, hdr = struct.unpack(">IBB", body[pos:pos + 6])
            frag = body[pos + 6:pos + 4 + ln]
            pos += 4 + ln
            if hdr & 1:
                cmd += frag
                if hdr & 2:
                    have_cmd = True
                    c = dul.parse_command(cmd)
                    dst = c["raw"].get(0x0800, b"\x01\x01")
                    expect_data = struct.unpack("<H", dst[:2])[0] != 0x0101
                    if not expect_data:
                        return c, None
            else:
                data += frag
                if hdr & 2:
                    return dul.parse_command(cmd), data
        if have_cmd and not expect_data:
            return dul.parse_command(cmd), None


def us(c, el):
    v = c["raw"].get(el)
    return struct.unpack("<H", v[:2])[0] if v else None


class ReportListener:
    """Accepts ONE association from mitral (as the storage commitment SCP, requestor), answers
    its N-EVENT-REPORT-RQ and the release. Records what it saw."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.report = None  # (command, data set)
        self.role = None    # (scu, scp) proposed for the commitment class
        self.error = None
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        try:
            self.sock.settimeout(120)
            conn, _ = self.sock.accept()
            a = dul.Assoc.__new__(dul.Assoc)
            a.sock = conn
            a.sock.settimeout(120)
            a.abort = None
            t, body = a.recv_pdu()
            assert t == dul.PDU_ASSOC_RQ, "A-ASSOCIATE-RQ expected, got %d" % t
            pcid, ts = None, None
            pos = 68
            while pos + 4 <= len(body):
                it, _, ln = struct.unpack(">BBH", body[pos:pos + 4])
                v = body[pos + 4:pos + 4 + ln]
                if it == 0x20:
                    q = 4
                    abstract, tss = None, []
                    while q + 4 <= len(v):
                        st, _, sl = struct.unpack(">BBH", v[q:q + 4])
                        sv = v[q + 4:q + 4 + sl].rstrip(b"\0").decode()
                        if st == 0x30:
                            abstract = sv
                        elif st == 0x40:
                            tss.append(sv)
                        q += 4 + sl
                    if abstract == COMMIT and pcid is None:
                        pcid, ts = v[0], tss[0]
                elif it == 0x50:
                    q = 0
                    while q + 4 <= len(v):
                        st, _, sl = struct.unpack(">BBH", v[q:q + 4])
                        sv = v[q + 4:q + 4 + sl]
                        if st == 0x54:
                            ul = struct.unpack(">H", sv[:2])[0]
                            if sv[2:2 + ul].rstrip(b"\0").decode() == COMMIT:
                                self.role = (sv[2 + ul], sv[3 + ul])
                        q += 4 + sl
                pos += 4 + ln
            called, calling = body[4:20], body[20:36]
            ac = struct.pack(">HH", 1, 0) + called + calling + b"\0" * 32
            ac += dul._item(0x10, dul._uid(dul.APP_CONTEXT))
            ac += dul._item(0x21, struct.pack(">BBBB", pcid, 0, 0, 0) + dul._item(0x40, dul._uid(ts)))
            cu = dul._uid(COMMIT)
            ui = dul._item(0x51, struct.pack(">I", 16384)) + dul._item(0x52, dul._uid(dul.IMPL_CLASS))
            ui += dul._item(0x54, struct.pack(">H", len(cu)) + cu + bytes([0, 1]))
            ac += dul._item(0x50, ui)
            a.send(dul.pdu(dul.PDU_ASSOC_AC, ac))
            a.peer_max_pdu = 16384
            c, data = read_msg(a)
            self.report = (c, data)
            a.send_message(pcid, n_event_rsp(us(c, 0x0110), us(c, 0x1002)), True)
            t, _ = a.recv_pdu()
            if t == dul.PDU_RELEASE_RQ:
                a.send(dul.pdu(dul.PDU_RELEASE_RP, b"\0\0\0\0"))
            conn.close()
        except Exception as e:  # noqa: BLE001
            self.error = repr(e)
        finally:
            self.sock.close()


def body():
    if not lib.IS_MITRAL:
        lib.skip("storage commitment is mitral's")
    gen = lib.tmpdir("mt-commit-gen-")
    files = gen_mr.generate(os.path.join(gen, "c"), count=4, series=1, phases=4, seed="commit")
    metas = [lib.read_meta(p) for p in files]
    listener = ReportListener()
    yaml = qrlib.dest_yaml([("COMMITSCU", listener.port)])
    node = lib.Node("commit", yaml_extra=yaml).start()
    try:
        r = lib.storescu(node, files)
        lib.check(r.returncode == 0, "storescu")
        refs = [(m["sop_class_uid"], m["sop_instance_uid"]) for m in metas]
        unknown = "2.25.1234567890123456789"

        # 1. same association, one unknown instance
        a = dul.Assoc("127.0.0.1", node.port, calling="COMMITSCU",
                      contexts=[(COMMIT, [dul.IMPLICIT_LE])])
        lib.check(a.associate(), "commitment context accepted")
        pc = a.pcid_for(COMMIT)
        lib.check(pc is not None, "commitment pcid")
        a.send_message(pc, n_action_rq(1), True)
        a.send_message(pc, action_info("2.25.111", refs[:3] + [(refs[0][0], unknown)]), False)
        c, _ = read_msg(a)
        lib.check(c.get("field") == N_ACTION_RSP and c.get("status") == 0,
                  "N-ACTION-RSP 0000: %r" % (c,))
        c, data = read_msg(a)
        lib.check(c.get("field") == N_EVENT_RQ, "N-EVENT-REPORT-RQ on the same association")
        lib.check(us(c, 0x1002) == 2, "event type 2 (failures)")
        ds = check_report(data, 3, {(unknown, 0x0112)})
        lib.check(ds.TransactionUID == "2.25.111", "Transaction UID echoed")
        a.send_message(pc, n_event_rsp(us(c, 0x0110), 2), True)

        # 2. all stored -> event type 1; a wrong SOP class -> 0119
        a.send_message(pc, n_action_rq(2), True)
        a.send_message(pc, action_info("2.25.222", refs), False)
        c, _ = read_msg(a)
        lib.check(c.get("status") == 0, "second N-ACTION-RSP")
        c, data = read_msg(a)
        lib.check(us(c, 0x1002) == 1, "event type 1 (all committed)")
        check_report(data, 4, set())
        a.send_message(pc, n_event_rsp(us(c, 0x0110), 1), True)
        a.send_message(pc, n_action_rq(3), True)
        a.send_message(pc, action_info("2.25.333", [("1.2.840.10008.5.1.4.1.1.2", refs[1][1])]),
                       False)
        read_msg(a)
        c, data = read_msg(a)
        check_report(data, 0, {(refs[1][1], 0x0119)})
        a.send_message(pc, n_event_rsp(us(c, 0x0110), 2), True)

        # 4. no Transaction UID -> failure, no report
        a.send_message(pc, n_action_rq(4), True)
        a.send_message(pc, action_info(None, refs[:1]), False)
        c, _ = read_msg(a)
        lib.check(c.get("status") not in (None, 0), "N-ACTION without Transaction UID refused")
        lib.check(a.release(), "release")

        # 3. release at once: the report comes on a new association. N-ACTION and A-RELEASE-RQ
        # go in one write, so mitral reads the release before its verification can finish
        # (a report that still comes on this association is answered, and noted).
        a = dul.Assoc("127.0.0.1", node.port, calling="COMMITSCU",
                      contexts=[(COMMIT, [dul.IMPLICIT_LE])])
        lib.check(a.associate(), "second association")
        pc = a.pcid_for(COMMIT)
        info = action_info("2.25.444", refs[:2])
        a.send(dul.pdata([(pc, True, True, n_action_rq(1))]) + dul.pdata([(pc, False, True, info)])
               + dul.pdu(dul.PDU_RELEASE_RQ, b"\0\0\0\0"))
        c, _ = read_msg(a)
        lib.check(c.get("status") == 0, "N-ACTION-RSP before the release")
        same = False
        t, body = a.recv_pdu()
        if t == dul.PDU_PDATA:  # the report won the race: answer it, then the release
            same = True
            lib.log("note: the report came on the releasing association (timing)")
            a.send_message(pc, n_event_rsp(1, 1), True)
            t, _ = a.recv_pdu()
        lib.check(t == dul.PDU_RELEASE_RP, "A-RELEASE-RP (got PDU type %d)" % t)
        a.close()
        if not same:
            listener.t.join(120)
            lib.check(listener.error is None, "report listener: %s" % listener.error)
            lib.check(listener.report is not None, "report received on a new association")
            if listener.report:
                c, data = listener.report
                lib.check(us(c, 0x1002) == 1, "new association: event type 1")
                check_report(data, 2, set())
            lib.check(listener.role == (0, 1), "mitral proposes SCU=0/SCP=1 for itself: %r"
                      % (listener.role,))
            lib.wait_for(lambda: "N-EVENT-REPORT (event 1) answered 0x0000 on a new association"
                         in node.all_logs(), "log of the delivered report")
        lib.check(node.alive(), "node alive")
    finally:
        rc = node.stop()
        lib.check(rc == 0, "node exit %s" % rc)
        lib.check("AddressSanitizer" not in node.all_logs(), "no sanitizer report")


lib.run_guarded(body)
lib.finish()
