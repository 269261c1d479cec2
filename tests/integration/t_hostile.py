#!/usr/bin/python3
"""t_hostile: peers that misbehave, each while a well-behaved storescu sends at the same time.

  garbage           random bytes instead of an A-ASSOCIATE-RQ
  garbage-pdu       an unknown PDU type after a good association
  item-past-end     an A-ASSOCIATE-RQ whose presentation context item runs past the PDU
  pdv-past-end      a P-DATA-TF whose PDV item length runs past the PDU
  oversized         a P-DATA-TF longer than our max_pdu (only its header is needed)
  truncated-last    C-STORE-RQ + half a data set flagged "last", then A-RELEASE-RQ
  truncated-release C-STORE-RQ + half a data set, then A-RELEASE-RQ
  truncated-close   C-STORE-RQ + half a data set, then close
  stall-close       half a P-DATA-TF, stall while storescu runs, then close
  stall-idle        half a P-DATA-TF, stall until the node gives up (idle timeout)
  stall-setup       half an A-ASSOCIATE-RQ, stall until the node gives up (ARTIM)
  vanish            C-STORE-RQ + part of the data set, then a TCP reset
  peer-abort        C-STORE-RQ + part of the data set, then A-ABORT

For each: the node ends that association (A-ABORT and/or close; a failure status for the
truncated data set marked last), stores nothing of it (no file, no temp file once it is gone,
no index row), and the concurrent storescu stores all its instances. At the end the node still
answers C-ECHO and stops cleanly (exit 0: ASan/UBSan found nothing).
"""
import os
import random
import struct
import time

import dul
import gen_mr
import lib

MAX_PDU = 16384


def hostile_instance(src):
    """A generated MR instance nobody else sends (its SOP UID must never be stored)."""
    p = gen_mr.generate(os.path.join(src, "hostile"), count=1, series=1, seed="t_hostile_bad")[0]
    return dul.split_part10(p)


def connect(node, assoc=True, cls=dul.MR_STORAGE, ts=dul.EXPLICIT_LE):
    a = dul.Assoc("127.0.0.1", node.port, called=node.aet, calling="HOSTILE",
                  contexts=[(cls, [ts]), (dul.VERIFICATION, [dul.IMPLICIT_LE])])
    if assoc:
        lib.check(a.associate(), "hostile peer: association rejected %r" % (a.reject,))
    return a


class Case:
    def __init__(self, name):
        self.name = name


def run_case(node, name, setup, finish, good_files, expect="closed"):
    """setup(): puts a connection in its bad state, returns the Assoc. Then a storescu runs to
    completion; finish(a) ends the hostile side; the node must have closed it."""
    lib.log("case %s" % name)
    a = setup()
    logp = os.path.join(node.dir, "storescu-%s.log" % name)
    p = lib.storescu_popen(node, good_files, logp, extra=["-R"], aet="GOOD_" + name[:10].upper().replace("-", "_"))
    p.wait(240)
    out = open(logp, errors="replace").read()
    res = [s for _, s in lib.store_results(out)]
    lib.check(p.returncode == 0 and res == ["Success"] * len(good_files),
              "%s: concurrent storescu did not store everything: exit %s, %r" % (name, p.returncode, res))
    result = finish(a)
    if expect == "closed":
        lib.check(result is not None, "%s: node did not close the connection" % name)
    return result


def body():
    src = lib.tmpdir("mt-hostile-src-")
    good = gen_mr.generate(os.path.join(src, "good"), count=52, series=13, phases=4, seed="t_hostile_good")
    good_sets = [good[i * 4:(i + 1) * 4] for i in range(13)]
    cls, bad_sop, ts, bad_ds = hostile_instance(src)
    conf = {"associations.max_pdu": MAX_PDU, "associations.idle_timeout": "2s",
            "associations.artim_timeout": "2s"}
    node = lib.Node("hostile", conf=conf if lib.IS_MITRAL else None).start()
    rnd = random.Random(1234)
    half = bad_ds[:len(bad_ds) // 2]
    results = {}

    def closed(a, timeout=60):
        r = a.wait_closed(timeout)
        a.close()
        return r

    # 1 garbage instead of an association request
    def s_garbage():
        a = connect(node, assoc=False)
        a.send(bytes([0xFF]) + bytes(rnd.getrandbits(8) for _ in range(255)))
        return a
    results["garbage"] = run_case(node, "garbage", s_garbage, closed, good_sets[0])

    # 2 unknown PDU type after association
    def s_garbage_pdu():
        a = connect(node)
        a.send(dul.pdu(0x99, b"\x01\x02\x03\x04"))
        return a
    results["garbage-pdu"] = run_case(node, "garbage-pdu", s_garbage_pdu, closed, good_sets[1])

    # 3 item length past the end of the A-ASSOCIATE-RQ
    def s_item_past_end():
        a = connect(node, assoc=False)
        rq = bytearray(dul.assoc_rq(node.aet, "HOSTILE", [(dul.VERIFICATION, [dul.IMPLICIT_LE])]))
        # first item after the 68-byte fixed part (6 PDU header + 68): application context
        pos = 6 + 68
        pos += 4 + struct.unpack(">H", rq[pos + 2:pos + 4])[0]  # the presentation context item
        rq[pos + 2:pos + 4] = struct.pack(">H", 0xFFF0)
        a.send(bytes(rq))
        return a
    r = run_case(node, "item-past-end", s_item_past_end, closed, good_sets[2])
    lib.check(r is None or 2 not in r, "item-past-end: association accepted")
    results["item-past-end"] = r

    # 4 PDV item length past the end of the P-DATA-TF
    def s_pdv_past_end():
        a = connect(node)
        body = struct.pack(">IBB", 5000, 1, 0x03) + b"\0" * 100
        a.send(dul.pdu(dul.PDU_PDATA, body))
        return a
    results["pdv-past-end"] = run_case(node, "pdv-past-end", s_pdv_past_end, closed, good_sets[3])

    # 5 a PDU longer than our maximum: the header alone is enough to refuse it
    def s_oversized():
        a = connect(node)
        a.send(struct.pack(">BBI", dul.PDU_PDATA, 0, MAX_PDU * 8) + b"\0" * 1024)
        return a
    results["oversized"] = run_case(node, "oversized", s_oversized, closed, good_sets[4])

    # 6 truncated data set flagged last, then release: a failure status, nothing stored
    def s_trunc_last():
        a = connect(node)
        a.msg_id = 1
        a.send_message(1, dul.c_store_rq(1, cls, bad_sop), True)
        a.send_message(1, half, False)
        return a

    def f_trunc_last(a):
        try:
            rsp = a.read_message()
            st = rsp.get("status")
            lib.check(st is not None and st != 0 and (st & 0xF000) != 0xB000,
                      "truncated-last: status %r, want a failure" % (st,))
            results["truncated-last-status"] = st
            a.release()
            return []
        except (dul.Closed, OSError):
            return closed(a)
    run_case(node, "truncated-last", s_trunc_last, f_trunc_last, good_sets[5])

    # 7 truncated data set (not last), then A-RELEASE-RQ
    def s_trunc_release():
        a = connect(node)
        a.send_message(1, dul.c_store_rq(1, cls, bad_sop), True)
        a.send(dul.pdata([(1, False, False, half[:8000])]))
        return a

    def f_trunc_release(a):
        a.send(dul.pdu(dul.PDU_RELEASE_RQ, b"\0\0\0\0"))
        return closed(a)
    results["truncated-release"] = run_case(node, "truncated-release", s_trunc_release, f_trunc_release, good_sets[6])

    # 8 truncated data set, then close
    def f_close(a):
        a.close()
        return []
    run_case(node, "truncated-close", s_trunc_release, f_close, good_sets[7])

    # 9 stall mid-PDU, then close
    def s_stall():
        a = connect(node)
        a.send_message(1, dul.c_store_rq(1, cls, bad_sop), True)
        a.send(struct.pack(">BBI", dul.PDU_PDATA, 0, 8006) + struct.pack(">IBB", 8002, 1, 0) + half[:3000])
        return a
    run_case(node, "stall-close", s_stall, f_close, good_sets[8])

    # 10 stall mid-PDU until the node gives up (idle timeout 2 s)
    if lib.IS_MITRAL:
        results["stall-idle"] = run_case(node, "stall-idle", s_stall, lambda a: closed(a, 60), good_sets[9])

        # 11 half an A-ASSOCIATE-RQ, stall until the ARTIM timer fires
        def s_stall_setup():
            a = connect(node, assoc=False)
            rq = dul.assoc_rq(node.aet, "HOSTILE", [(dul.VERIFICATION, [dul.IMPLICIT_LE])])
            a.send(rq[:40])
            return a
        results["stall-setup"] = run_case(node, "stall-setup", s_stall_setup, lambda a: closed(a, 60), good_sets[10])

    # 12 vanish mid-instance (TCP reset)
    def s_vanish():
        a = connect(node)
        a.send_message(1, dul.c_store_rq(1, cls, bad_sop), True)
        a.send(dul.pdata([(1, False, False, half[:6000])]))
        return a

    def f_rst(a):
        a.close(rst=True)
        return []
    run_case(node, "vanish", s_vanish, f_rst, good_sets[11])

    # 13 A-ABORT from the peer mid-instance
    def f_abort(a):
        a.send_abort()
        return []
    run_case(node, "peer-abort", s_vanish, f_abort, good_sets[12])

    lib.log("what the node did: %r" % results)
    if lib.IS_MITRAL:
        for k in ("garbage-pdu", "pdv-past-end", "oversized"):
            r = results.get(k)
            lib.check(r is not None and dul.PDU_ABORT in r, "%s: no A-ABORT before the close (%r)" % (k, r))

    # -- nothing of the hostile instance anywhere; every good one stored --
    lib.wait_for(lambda: not node.tmp_files(), "temp files gone", deadline_s=60)
    stored = node.stored_by_sop()
    lib.check(bad_sop not in stored, "the hostile instance was stored")
    lib.check(len(stored) == len(good), "%d files stored, want %d" % (len(stored), len(good)))
    if lib.IS_MITRAL:
        rows = node.index_instances()
        lib.check(bad_sop not in rows, "the hostile instance is indexed")
        lib.check(len(rows) == len(good), "%d index rows, want %d" % (len(rows), len(good)))
    r = lib.echoscu(node)
    lib.check(r.returncode == 0, "node no longer answers C-ECHO")
    lib.check(not node.tmp_files(), "temp files left")
    lib.check(node.stop() == 0, "exit code after SIGTERM (sanitizers?)")
    if lib.IS_MITRAL:
        log = node.all_logs()
        lib.check("ERROR: AddressSanitizer" not in log and "runtime error" not in log, "sanitizer report in the log")


lib.run_guarded(body)
