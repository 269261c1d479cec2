#!/usr/bin/env python3
"""t_ul_hostile.py - hostile and broken peers on raw sockets get the A-ABORT that PS3.8 Table
9-10 prescribes (with the provider reason of Table 9-26), and the node keeps serving:
garbage bytes, unknown PDU type, oversized PDU length, malformed A-ASSOCIATE-RQ, PDUs that do
not fit the state (P-DATA before association, a second A-ASSOCIATE-RQ), PDVs on a context that
was not accepted, data without a command, A-RELEASE-RQ inside a message, a malformed command
set, a peer A-ABORT, a truncated PDU, ARTIM expiry (nothing sent) and the idle timeout."""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ul_peer import (Node, Peer, VERIFICATION, IMPLICIT_LE, abort_fields, associate_rq,  # noqa
                     check, command_set, dcmtk, pdata, pdu, release_rq)

node = Node(conf_extra="associations:\n  artim_timeout: 1s\n  idle_timeout: 2s\n")


def expect_abort(p, source, reason, what):
    t, body = p.recv_pdu()
    check(t == 0x07 and abort_fields(body) == (source, reason),
          "%s -> A-ABORT %d/%d (got type %r %r)" % (what, source, reason, t,
                                                   abort_fields(body) if t == 0x07 else body))
    p.close()


def established():
    p = Peer(node.port)
    t, _ = p.associate()
    if t != 0x02:
        raise SystemExit("FAIL: association not accepted (%r)" % (t,))
    return p


try:
    p = Peer(node.port)
    p.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    expect_abort(p, 2, 1, "HTTP request")

    p = Peer(node.port)
    p.send(pdu(0x09, b"\0" * 10))
    expect_abort(p, 2, 1, "unknown PDU type 0x09")

    p = Peer(node.port)
    p.send(struct.pack(">BBI", 0x01, 0, 0x7FFFFFF0))
    expect_abort(p, 2, 6, "A-ASSOCIATE-RQ claiming 2 GB")

    p = Peer(node.port)
    rq = bytearray(associate_rq())
    rq[6 + 68 + 2:6 + 68 + 4] = struct.pack(">H", 0xFFF0)  # app context item length too long
    p.send(bytes(rq))
    expect_abort(p, 2, 6, "A-ASSOCIATE-RQ item length past the PDU")

    p = Peer(node.port)
    p.send(pdata(1, True, True, b"\0" * 8))
    expect_abort(p, 2, 2, "P-DATA-TF before association (Sta2, AA-1)")

    p = established()
    p.send(associate_rq())
    expect_abort(p, 2, 2, "second A-ASSOCIATE-RQ in Sta6 (AA-8)")

    p = established()
    p.send(pdata(3, True, True, command_set(0x0030, 1, VERIFICATION)))
    expect_abort(p, 2, 6, "PDV on presentation context 3 (not proposed)")

    p = established()
    p.send(pdata(1, False, True, b"\x08\x00\x16\x00\x00\x00\x00\x00"))
    expect_abort(p, 2, 5, "data set fragment without a command")

    p = established()
    cmd = command_set(0x0030, 1, VERIFICATION)
    p.send(pdata(1, True, False, cmd[:10]))
    p.send(release_rq())
    expect_abort(p, 2, 2, "A-RELEASE-RQ in the middle of a command set")

    p = established()
    p.send(pdata(1, True, True, b"\x01\x02\x03\x04garbage!"))
    expect_abort(p, 0, 0, "malformed command set (DIMSE user aborts)")

    p = established()
    p.send(pdu(0x07, b"\0\0\0\0"))
    check(p.closed_by_node(), "peer A-ABORT in Sta6 -> node closes the connection (AA-3)")
    p.close()

    p = Peer(node.port)
    p.send(associate_rq()[:20])
    p.close()
    check(node.alive(), "truncated A-ASSOCIATE-RQ then close: node alive")

    p = Peer(node.port)
    check(p.closed_by_node(), "nothing sent: node closes on ARTIM expiry (Evt18, AA-2)")
    p.close()

    p = established()
    expect_abort(p, 0, 0, "association idle: A-ABORT")

    rc, out = dcmtk("echoscu", "-aec", "MITRAL", "127.0.0.1", str(node.port))
    check(rc == 0, "echoscu after all of that: success")
    log = node.read_log()
    check("ARTIM timer expired" in log, "log: ARTIM expiry")
    check("idle for" in log, "log: idle timeout")
finally:
    rc = node.stop()
    node.cleanup()
check(rc == 0, "node stopped cleanly on SIGTERM")
