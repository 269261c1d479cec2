#!/usr/bin/env python3
"""t_ul_assoc.py - association establishment and release (PS3.8 §9.2, negotiate.h policy):
echoscu accepted and released; A-ASSOCIATE-RJ with the right result/source/reason for a wrong
called AE (1/1/7), a calling AE outside the allow list (1/1/3), an unsupported protocol
version (1/2/2) and the concurrent-association limit (2/3/2); the node keeps serving."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ul_peer import (Node, Peer, VERIFICATION, IMPLICIT_LE, check, dcmtk, rj_fields,  # noqa
                     release_rq)

node = Node(conf_extra="associations:\n  allowed_calling_aes: [ECHOSCU, RAWPEER, HOLDER]\n"
                       "  max: 2\n")
try:
    rc, out = dcmtk("echoscu", "-v", "-aet", "ECHOSCU", "-aec", "MITRAL", "127.0.0.1",
                    str(node.port))
    check(rc == 0 and "Success" in out, "echoscu: C-ECHO success")

    rc, out = dcmtk("echoscu", "-aet", "ECHOSCU", "-aec", "WRONG", "127.0.0.1", str(node.port))
    check(rc != 0 and "Called AE Title Not Recognized" in out,
          "echoscu -aec WRONG: rejected, called AE title not recognized")

    p = Peer(node.port)
    t, body = p.associate(called="WRONG")
    check(t == 0x03 and rj_fields(body) == (1, 1, 7), "raw: wrong called AE -> RJ 1/1/7")
    p.close()

    p = Peer(node.port)
    t, body = p.associate(calling="STRANGER")
    check(t == 0x03 and rj_fields(body) == (1, 1, 3), "raw: calling AE not allowed -> RJ 1/1/3")
    p.close()

    p = Peer(node.port)
    t, body = p.associate(version=2)
    check(t == 0x03 and rj_fields(body) == (1, 2, 2),
          "raw: protocol version 2 only -> RJ 1/2/2 (AE-6, provider rejects)")
    p.close()

    # the limit: two associations held open, the third is rejected (transient, local limit)
    def hold():
        # the rejected peers above may not have been closed on the node's side yet: retry
        for _ in range(100):
            h = Peer(node.port)
            if h.associate(calling="HOLDER")[0] == 0x02:
                return h
            h.close()
        raise SystemExit("FAIL: holder never accepted")

    h1 = hold()
    h2 = hold()
    check(True, "two holders accepted (max: 2)")
    p = Peer(node.port)
    t, body = p.associate()
    check(t == 0x03 and rj_fields(body) == (2, 3, 2), "third association -> RJ 2/3/2 (limit)")
    p.close()
    for h in (h1, h2):
        h.send(release_rq())
        t, _ = h.recv_pdu()
        check(t == 0x06, "holder released: A-RELEASE-RP")
        h.close()

    # the node still serves (and the released holders no longer count, eventually: retry
    # while their close is processed, no timing assumed)
    for attempt in range(50):
        rc, out = dcmtk("echoscu", "-aet", "ECHOSCU", "-aec", "MITRAL", "127.0.0.1",
                        str(node.port))
        if rc == 0:
            break
    check(rc == 0, "echoscu after the rejections: success")

    log = node.read_log()
    check("association rejected: called AE title" in log and "reason=7" in log,
          "log: rejection with its reason")
    check("association released" in log, "log: released line")
finally:
    rc = node.stop()
    node.cleanup()
check(rc == 0, "node stopped cleanly on SIGTERM")
