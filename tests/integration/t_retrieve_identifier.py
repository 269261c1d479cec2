#!/usr/bin/python3
"""t_retrieve_identifier.py - C-MOVE / C-GET identifiers that name no entity at the retrieve
level (PS3.4 C.4.2.2.1, C.4.3.2.1: a hierarchical retrieve names the entities to retrieve by
their unique key at the Query/Retrieve level: PatientID, a Study / Series / SOP Instance UID or
a list of UIDs). movescu / getscu with only QueryRetrieveLevel=STUDY (or with only a
non-unique key such as PatientID at STUDY level, or an empty StudyInstanceUID) must be refused
with A900 (Identifier does not match SOP Class), an ErrorComment and the OffendingElement,
and nothing sent: not the whole archive, nor every study of a patient. A proper identifier
still retrieves, also a UID list of 150 SOP Instance UIDs (longer than 4 KiB) whose stored
instances come last."""
import os
import re
import shutil

import gen_mr
import lib
import qrlib


def body():
    if not shutil.which("movescu") or not shutil.which("getscu"):
        lib.skip("dcmtk movescu/getscu not installed")
    if not lib.IS_MITRAL:
        lib.skip("C-MOVE is mitral's")
    gen = lib.tmpdir("mt-rid-gen-")
    a_files = gen_mr.generate(os.path.join(gen, "a"), count=3, series=1, phases=3, seed="rid-a",
                              patient_id="RID-A")
    b_files = gen_mr.generate(os.path.join(gen, "b"), count=2, series=1, phases=2, seed="rid-b",
                              patient_id="RID-B")
    study_a = qrlib.study_uid(a_files[0])
    dest = qrlib.StoreSCP("DEST").start()
    node = lib.Node("rid", yaml_extra=qrlib.dest_yaml([("DEST", dest.port)])).start()
    try:
        r = lib.storescu(node, a_files + b_files)
        lib.check(r.returncode == 0, "storescu exit %s" % r.returncode)

        bad = [
            (["QueryRetrieveLevel=STUDY"], True),
            (["QueryRetrieveLevel=STUDY", "StudyInstanceUID="], True),
            (["QueryRetrieveLevel=STUDY", "PatientID=RID-A"], True),
            (["QueryRetrieveLevel=SERIES", "StudyInstanceUID=" + study_a], True),
            (["QueryRetrieveLevel=PATIENT"], False),
        ]
        for keys, study_root in bad:
            what = " ".join(keys) + (" (Study Root)" if study_root else " (Patient Root)")
            dest.clear()
            r = qrlib.movescu(node, "DEST", keys, study_root=study_root, extra=["-d"])
            fs = qrlib.final_status(r.stdout) or ""
            lib.check(fs.lower().startswith("0xa900"), "C-MOVE %s: A900, got %r\n%s"
                      % (what, fs, r.stdout[-1500:]))
            lib.check("ErrorComment" in r.stdout, "C-MOVE %s: an ErrorComment" % what)
            want = "(0010,0020)" if "PATIENT" in keys[0] else \
                "(0020,000e)" if "SERIES" in keys[0] else "(0020,000d)"
            lib.check(re.search(r"OffendingElement", r.stdout) and want in r.stdout,
                      "C-MOVE %s: OffendingElement %s\n%s" % (what, want, r.stdout[-1500:]))
            lib.check(not dest.files(), "C-MOVE %s: nothing sent, %d arrived"
                      % (what, len(dest.files())))
            out = lib.tmpdir("mt-rid-get-")
            r = qrlib.getscu(node, out, keys, study_root=study_root, extra=["-d"])
            fs = qrlib.final_status(r.stdout) or ""
            lib.check(fs.lower().startswith("0xa900"), "C-GET %s: A900, got %r\n%s"
                      % (what, fs, r.stdout[-1500:]))
            lib.check(not os.listdir(out), "C-GET %s: nothing sent, %d arrived"
                      % (what, len(os.listdir(out))))

        # a proper identifier still works, at every level
        dest.clear()
        r = qrlib.movescu(node, "DEST", ["QueryRetrieveLevel=STUDY", "StudyInstanceUID=" + study_a])
        lib.check(qrlib.final_status(r.stdout) == "Success", "study move: %r"
                  % qrlib.final_status(r.stdout))
        lib.check(len(dest.files()) == 3, "study move: 3 arrive, got %d" % len(dest.files()))
        dest.clear()
        r = qrlib.movescu(node, "DEST", ["QueryRetrieveLevel=PATIENT", "PatientID=RID-B"],
                          study_root=False)
        lib.check(qrlib.final_status(r.stdout) == "Success", "patient move: %r"
                  % qrlib.final_status(r.stdout))
        lib.check(len(dest.files()) == 2, "patient move: 2 arrive, got %d" % len(dest.files()))

        # an IMAGE-level retrieve naming 150 instances in a UID list (~6.9 KB): the ones at
        # the end of the list are retrieved too (the list was cut at 4 KiB: success, fewer)
        import pydicom
        first = pydicom.dcmread(a_files[0], stop_before_pixels=True)
        mine = sorted(lib.read_meta(p)["sop_instance_uid"] for p in a_files)
        uids = ["2.25.%040d" % i for i in range(147)] + mine
        keys = ["QueryRetrieveLevel=IMAGE", "StudyInstanceUID=" + study_a,
                "SeriesInstanceUID=" + first.SeriesInstanceUID, "SOPInstanceUID=" + "\\".join(uids)]
        dest.clear()
        r = qrlib.movescu(node, "DEST", keys)
        lib.check(qrlib.final_status(r.stdout) == "Success", "150-UID move: %r"
                  % qrlib.final_status(r.stdout))
        lib.check(len(dest.files()) == 3, "150-UID move: the 3 stored ones arrive, got %d"
                  % len(dest.files()))
        out = lib.tmpdir("mt-rid-get-")
        r = qrlib.getscu(node, out, keys)
        lib.check(len(os.listdir(out)) == 3, "150-UID get: 3 arrive, got %d" % len(os.listdir(out)))
        lib.check(node.alive(), "node alive")
    finally:
        dest.stop()
        node.stop()


lib.run_guarded(body)
lib.finish()
