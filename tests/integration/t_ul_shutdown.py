#!/usr/bin/env python3
"""t_ul_shutdown.py - what happens to associations in flight:
  - a C-STORE cut short by the peer (A-ABORT, or the socket closed) leaves no file behind:
    on_abort reaches the store service, which drops its temp file;
  - SIGTERM with an association that then releases: the node exits once it has gone;
  - SIGTERM with an association that stays: after the drain period the node A-ABORTs it
    (mt_listen_abort_all) and exits 0."""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ul_peer import (MR_STORAGE, Node, Peer, EXPLICIT_LE, abort_fields, check,  # noqa
                     command_set, pdata, pdu, release_rq)

CONTEXTS = ((1, MR_STORAGE, (EXPLICIT_LE,)),)


def session(node):
    p = Peer(node.port, timeout=120)
    t, _ = p.associate(contexts=CONTEXTS)
    if t != 0x02:
        raise SystemExit("FAIL: association not accepted (%r)" % (t,))
    return p


def files_under(d):
    out = []
    for root, _, names in os.walk(d):
        out += [os.path.join(root, n) for n in names]
    return out


# a partial data set: a long OB value header promising more than is sent
partial = (b"\x08\x00\x16\x00UI\x1a\x00" + b"1.2.840.10008.5.1.4.1.1.4\0" +
           b"\x08\x00\x18\x00UI\x08\x00" + b"1.2.3.4\0" +
           b"\xe0\x7f\x10\x00OB\0\0" + struct.pack("<I", 1 << 20) + b"\0" * 200000)

node = Node()
try:
    p = session(node)
    p.send(pdata(1, True, True, command_set(0x0001, 1, MR_STORAGE, sop_instance="1.2.3.4",
                                            has_data=True)))
    for i in range(0, len(partial), 16000):
        p.send(pdata(1, False, False, partial[i:i + 16000]))
    p.send(pdu(0x07, b"\0\0\0\0"))  # A-ABORT in the middle of the data set
    check(p.closed_by_node(), "A-ABORT during a C-STORE data set: node closes")
    p.close()

    p = session(node)
    p.send(pdata(1, True, True, command_set(0x0001, 1, MR_STORAGE, sop_instance="1.2.3.5",
                                            has_data=True)))
    p.send(pdata(1, False, False, partial[:50000]))
    p.close()  # socket closed in the middle of the data set

    # a complete C-STORE followed at once by A-ABORT: the commit may already be under way;
    # its completion then arrives after the association is gone (the request's reference keeps
    # it valid). Whichever way the race goes, nothing may crash or leak (ASan at exit).
    src = os.path.join(os.environ.get("MT_SOURCE_DIR", "."), "..", "shared", "testdata",
                       "pydicom", "test_files", "MR_small.dcm")
    if os.path.exists(src):
        raw = open(src, "rb").read()
        glen = struct.unpack_from("<I", raw, 132 + 8)[0]
        dataset = raw[132 + 12 + glen:]
        pos = dataset.find(b"\x08\x00\x18\x00UI")
        n = struct.unpack_from("<H", dataset, pos + 6)[0]
        inst = dataset[pos + 8:pos + 8 + n].rstrip(b"\0 ").decode()
        for k in range(5):
            p = session(node)
            p.send(pdata(1, True, True, command_set(0x0001, 1, MR_STORAGE, sop_instance=inst,
                                                    has_data=True)) +
                   pdata(1, False, True, dataset) + pdu(0x07, b"\0\0\0\0"))
            p.close()
        p = session(node)  # the node still works
        p.send(release_rq())
        check(p.recv_pdu()[0] == 0x06, "complete C-STORE + immediate A-ABORT (x5): node fine")
        p.close()

    # SIGTERM while an association is open and then released
    p = session(node)
    node.proc.send_signal(15)
    p.send(release_rq())
    t, _ = p.recv_pdu()
    check(t == 0x06, "SIGTERM, then A-RELEASE-RQ: still answered with A-RELEASE-RP")
    p.close()
    rc = node.proc.wait(timeout=120)
    check(rc == 0, "node exits 0 once the last association has gone")
    storage = os.path.join(node.dir, "data", "storage")
    left = [f for f in files_under(storage) if "1.2.3.4" in f or "1.2.3.5" in f or
            os.sep + ".tmp" + os.sep in f]
    check(not left, "no file left by the aborted C-STOREs (%r)" % (left,))
    log = node.read_log()
    check("outstanding request(s) abandoned" in log, "log: outstanding request abandoned")
finally:
    node.stop()
    node.cleanup()

node = Node()
try:
    p = session(node)
    node.proc.send_signal(15)
    t, body = p.recv_pdu()  # the drain period passes (node.c MT_NODE_DRAIN_MS)
    check(t == 0x07 and abort_fields(body)[0] == 0,
          "SIGTERM with an association that stays: A-ABORT after the drain period")
    p.close()
    rc = node.proc.wait(timeout=120)
    check(rc == 0, "node exits 0 after aborting it")
    check("node shutting down: A-ABORT" in node.read_log(), "log: shutdown abort")
finally:
    node.stop()
    node.cleanup()
