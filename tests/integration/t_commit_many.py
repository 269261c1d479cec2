#!/usr/bin/python3
"""t_commit_many.py - Storage Commitment (issue 3) for a whole study at once, as a modality
or a workstation asks it after sending a series: one N-ACTION-RQ naming 30 stored instances
(Referenced SOP Sequence of 30 items, ~1.3 KB of UIDs) must be answered with event type 1 and
all 30 committed, none failed; and through a project AE title the instances of a study outside
the project fail with 0112 (no such object instance) while the project's own are committed,
in one request. Driven by the small SCU of our own in qrlib / dul.py."""
import os

import dul
import gen_mr
import lib
import qrlib
from qrlib import COMMIT, N_ACTION_RSP, N_EVENT_RQ, action_info, n_action_rq, n_event_rsp


def commit(node, refs, txn, aec=None):
    """One N-ACTION on a new association; -> (N-ACTION-RSP status, event type, report bytes)."""
    a = dul.Assoc("127.0.0.1", node.port, calling="COMMITSCU", called=aec or node.aet,
                  contexts=[(COMMIT, [dul.IMPLICIT_LE])])
    lib.check(a.associate(), "commitment context accepted")
    pc = a.pcid_for(COMMIT)
    a.send_message(pc, n_action_rq(1), True)
    a.send_message(pc, action_info(txn, refs), False)
    c, _ = qrlib.read_msg(a)
    lib.check(c.get("field") == N_ACTION_RSP, "N-ACTION-RSP: %r" % (c,))
    status = c.get("status")
    c, data = qrlib.read_msg(a)
    lib.check(c.get("field") == N_EVENT_RQ, "N-EVENT-REPORT-RQ on the same association")
    event = qrlib.us(c, 0x1002)
    a.send_message(pc, n_event_rsp(qrlib.us(c, 0x0110), event), True)
    lib.check(a.release(), "release")
    return status, event, data


def body():
    if not lib.IS_MITRAL:
        lib.skip("storage commitment is mitral's")
    gen = lib.tmpdir("mt-commitm-gen-")
    a_files = gen_mr.generate(os.path.join(gen, "a"), count=30, series=2, phases=15,
                              seed="commit-many-a", patient_id="CM-A")
    b_files = gen_mr.generate(os.path.join(gen, "b"), count=6, series=1, phases=6,
                              seed="commit-many-b", patient_id="CM-B")
    refs_a = [(m["sop_class_uid"], m["sop_instance_uid"]) for m in map(lib.read_meta, a_files)]
    refs_b = [(m["sop_class_uid"], m["sop_instance_uid"]) for m in map(lib.read_meta, b_files)]
    yaml = "projects:\n  - name: cm\n    ae_title: CM_PROJ\n"
    node = lib.Node("commitm", yaml_extra=yaml).start()
    try:
        r = lib.storescu(node, a_files + b_files)
        lib.check(r.returncode == 0, "storescu exit %s" % r.returncode)
        lib.check(len(node.stored_by_sop()) == 36, "36 stored")

        status, event, data = commit(node, refs_a, "2.25.5551")
        lib.check(status == 0, "N-ACTION-RSP 0000, got %r" % status)
        lib.check(event == 1, "30 stored instances: event type 1 (all committed), got %r" % event)
        ds = qrlib.check_report(data, 30, set())
        lib.check(ds.TransactionUID == "2.25.5551", "Transaction UID echoed")

        r = node.cli("project", "add", "cm", "--study", qrlib.study_uid(a_files[0]), "-c",
                     node.conf_path, "--data", node.data)
        lib.check(r.returncode == 0, "project add: %s" % (r.stdout + r.stderr))
        status, event, data = commit(node, refs_a + refs_b, "2.25.5552", aec="CM_PROJ")
        lib.check(event == 2, "through the project AE: event type 2, got %r" % event)
        qrlib.check_report(data, 30, {(inst, 0x0112) for _, inst in refs_b})
        lib.check(node.alive(), "node alive")
    finally:
        rc = node.stop()
        lib.check(rc == 0, "node exit %s" % rc)
        lib.check("AddressSanitizer" not in node.all_logs(), "no sanitizer report")


lib.run_guarded(body)
lib.finish()
