#!/usr/bin/python3
"""t_get_cancel.py - C-GET with a raw requester of our own (dul.py): storage contexts proposed
with the SCP role (role selection SCU=0/SCP=1) next to a Study Root GET context; mitral's
C-STORE-RQs arrive on the same association and are answered by us: the second one with a
failure status (A700), which mitral counts as a failed sub-operation; a C-CANCEL-RQ after the
third makes the final C-GET-RSP FE00 with the counts, Failed SOP Instance UID List naming the
refused instance, fewer than all sub-operations done. A storage context proposed WITHOUT a GET
context is refused (result 1) for an SCP-only requestor."""
import os

import dul
import gen_mr
import lib
import qrlib

GET_STUDY = "1.2.840.10008.5.1.4.1.2.2.3"
C_GET_RQ, C_GET_RSP, C_CANCEL_RQ = 0x0010, 0x8010, 0x0FFF


def c_get_rq(msg_id):
    return dul.command([(0x0002, dul._uid(GET_STUDY)), (0x0100, dul._us(C_GET_RQ)),
                        (0x0110, dul._us(msg_id)), (0x0700, dul._us(0)),
                        (0x0800, dul._us(0x0000))])


def c_cancel_rq(msg_id):
    return dul.command([(0x0100, dul._us(C_CANCEL_RQ)), (0x0120, dul._us(msg_id)),
                        (0x0800, dul._us(0x0101))])


def body():
    if not lib.IS_MITRAL:
        lib.skip("C-GET is mitral's")
    gen = lib.tmpdir("mt-getc-gen-")
    files = gen_mr.generate(os.path.join(gen, "g"), count=20, series=2, phases=10, seed="getc")
    study = qrlib.study_uid(files[0])
    node = lib.Node("getc").start()
    try:
        r = lib.storescu(node, files)
        lib.check(r.returncode == 0, "storescu")

        # a storage context asking for the SCP role without a GET context: refused (1)
        a = dul.Assoc("127.0.0.1", node.port, calling="GETC",
                      contexts=[(dul.MR_STORAGE, [dul.EXPLICIT_LE])])
        lib.check(a.associate(roles=[(dul.MR_STORAGE, 0, 1)]), "associated")
        lib.check(a.results.get(1) == 1, "SCP-only storage context without GET: result %r"
                  % a.results.get(1))
        a.release()

        a = dul.Assoc("127.0.0.1", node.port, calling="GETC",
                      contexts=[(GET_STUDY, [dul.IMPLICIT_LE]),
                                (dul.MR_STORAGE, [dul.EXPLICIT_LE, dul.IMPLICIT_LE])],
                      max_pdu=32768)
        lib.check(a.associate(roles=[(dul.MR_STORAGE, 0, 1)]), "GET association")
        get_pc, st_pc = a.pcid_for(GET_STUDY), a.pcid_for(dul.MR_STORAGE)
        lib.check(get_pc is not None and st_pc is not None, "both contexts accepted: %r"
                  % (a.results,))
        a.send_message(get_pc, c_get_rq(7), True)
        a.send_message(get_pc, qrlib.study_identifier(study), False)
        stores, refused, final, pend = 0, None, None, 0
        while final is None:
            c, data = qrlib.read_msg(a)
            f = c.get("field")
            if f == 0x0001:  # C-STORE-RQ from mitral
                lib.check(c["pcid"] == st_pc and data, "C-STORE-RQ with its data set on the "
                          "storage context")
                stores += 1
                status = 0xA700 if stores == 2 else 0
                if stores == 2:
                    refused = c["raw"][0x1000].rstrip(b"\0").decode()
                a.send_message(st_pc, qrlib.c_store_rsp(c, status), True)
                if stores == 3:
                    a.send_message(get_pc, c_cancel_rq(7), True)
            elif f == C_GET_RSP:
                if c.get("status") in (0xFF00, 0xFF01):
                    pend += 1
                else:
                    final = (c, data)
            else:
                lib.check(False, "unexpected command 0x%04X" % (f or 0))
                break
        c, data = final
        lib.check(c.get("status") == 0xFE00, "final C-GET-RSP FE00, got 0x%04X" % c.get("status"))
        done = (qrlib.us(c, 0x1021) or 0) + (qrlib.us(c, 0x1022) or 0)
        lib.check(qrlib.us(c, 0x1022) == 1, "one failed sub-operation (the A700)")
        lib.check(stores < 20 and done == stores, "cancelled after %d of 20 (counts %d)"
                  % (stores, done))
        lib.check(qrlib.us(c, 0x1020) == 20 - stores, "remaining = not started: %r"
                  % qrlib.us(c, 0x1020))
        lib.check(data is not None and refused is not None and refused.encode() in data,
                  "Failed SOP Instance UID List names the refused instance")
        lib.check(pend >= 1, "pending responses")
        lib.check(a.release(), "release")
        lib.check(node.alive(), "node alive")
    finally:
        rc = node.stop()
        lib.check(rc == 0, "node exit %s" % rc)
        lib.check("AddressSanitizer" not in node.all_logs(), "no sanitizer report")


lib.run_guarded(body)
lib.finish()
