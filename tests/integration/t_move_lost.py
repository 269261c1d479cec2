#!/usr/bin/python3
"""t_move_lost.py - a C-MOVE destination that ends the association with nothing outstanding:
the scripted SCP (dul_scp.py, policy "ack-drop") answers a C-STORE and then closes the
connection, so the node learns of the loss while it has no operation awaiting a response (the
next sub-operation may still be being read from disk). The move ends with a final response
that counts the delivered sub-operations as completed and every other one as failed (B000 or
A702, Failed SOP Instance UID List), the node keeps serving (C-ECHO, then a whole move to a
well-behaved storescp succeeds), and nothing is retried on the lost link (the test build runs
under ASan/UBSan: a sub-operation sent through the freed association would end the node)."""
import os
import re
import shutil

import dul_scp
import gen_mr
import lib
import qrlib


def counts(text):
    """The last final response's counters from movescu -d, e.g. {'Completed': 3, 'Failed': 9}
    ('D: Completed Suboperations       : 3')."""
    out = {}
    for k, v in re.findall(r"(Completed|Failed|Warning) Suboperations\s*: (\d+)", text):
        out[k] = int(v)
    return out


def body():
    if not shutil.which("movescu") or not shutil.which("storescp"):
        lib.skip("dcmtk movescu/storescp not installed")
    if not lib.IS_MITRAL:
        lib.skip("C-MOVE is mitral's")
    gen = lib.tmpdir("mt-movelost-gen-")
    files = gen_mr.generate(os.path.join(gen, "a"), count=12, series=1, phases=12,
                            seed="move-lost", patient_id="MOVE-LOST")
    study = qrlib.study_uid(files[0])
    state = {"drop_at": 0, "seen": 0}

    def policy(scp, sop, n):
        state["seen"] += 1
        return "ack-drop" if state["seen"] == state["drop_at"] else "ack"

    lost_port = lib.free_port()
    scp = dul_scp.Scp(lost_port, window=None, policy=policy)
    good = qrlib.StoreSCP("GOOD", extra=["+xa"]).start()
    yaml = qrlib.dest_yaml([("LOST", lost_port), ("GOOD", good.port)])
    node = lib.Node("movelost", yaml_extra=yaml).start()
    try:
        r = lib.storescu(node, files)
        lib.check(r.returncode == 0, "storescu exit %s" % r.returncode)
        for drop_at in (1, 3, 7, 12):
            state.update(drop_at=drop_at, seen=0)
            scp.ended.clear()
            r = qrlib.movescu(node, "LOST", ["QueryRetrieveLevel=STUDY",
                                             "StudyInstanceUID=" + study], extra=["-d"])
            st = qrlib.final_status(r.stdout) or ""
            c = counts(r.stdout)
            lib.log("drop after %d: %s %s" % (drop_at, st, c))
            if drop_at < 12:
                lib.check("Success" not in st, "drop after %d: final status %r is not a failure"
                          % (drop_at, st))
                lib.check(c.get("Completed") == drop_at and c.get("Failed") == 12 - drop_at,
                          "drop after %d: completed/failed %s\n%s" % (drop_at, c, r.stdout[-1500:]))
            else:
                lib.check(c.get("Completed") == 12, "drop after the last: all 12 completed %s" % c)
            lib.check(node.alive(), "node alive after drop at %d" % drop_at)
            e = lib.echoscu(node)
            lib.check(e.returncode == 0, "C-ECHO after drop at %d" % drop_at)
        r = qrlib.movescu(node, "GOOD", ["QueryRetrieveLevel=STUDY", "StudyInstanceUID=" + study])
        lib.check(qrlib.final_status(r.stdout) == "Success", "move to a good destination: %r"
                  % qrlib.final_status(r.stdout))
        lib.check(len(good.by_sop()) == 12, "12 instances at the good destination")
        log = node.all_logs()
        lib.check("AddressSanitizer" not in log and "runtime error" not in log,
                  "no sanitizer report in the node's log")
    finally:
        node.stop()
        good.stop()
        scp.stop()


if __name__ == "__main__":
    lib.run_guarded(body)
