#!/usr/bin/python3
"""t_get_basic.py - C-GET SCP (issue 3) with dcmtk's getscu: the sub-operations go back on the
requesting association, on the storage contexts getscu proposed with the SCP role (role
selection, negotiate.c); study / series / image level; the files received are identical to the
stored ones; a compressed instance that getscu did not offer to accept fails its sub-operation
(final status B000 or A702) while native ones arrive; project scoping through a project AE."""
import os
import shutil

import gen_mr
import lib
import qrlib

TS_DIR = os.path.join(lib.TESTDATA, "orthanc-tests", "TransferSyntaxes")


def sops_in(d):
    res = {}
    for f in os.listdir(d):
        p = os.path.join(d, f)
        m = lib.read_meta(p)
        if m:
            res[m["sop_instance_uid"]] = p
    return res


def fresh(d):
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def body():
    if not shutil.which("getscu"):
        lib.skip("dcmtk getscu not installed")
    if not lib.IS_MITRAL:
        lib.skip("C-GET is mitral's")
    gen = lib.tmpdir("mt-get-gen-")
    a_files = gen_mr.generate(os.path.join(gen, "a"), count=10, series=2, phases=5, seed="get-a",
                              patient_id="GET-A")
    b_files = gen_mr.generate(os.path.join(gen, "b"), count=3, series=1, phases=3, seed="get-b",
                              patient_id="GET-B")
    study_a = qrlib.study_uid(a_files[0])
    study_b = qrlib.study_uid(b_files[0])
    node = lib.Node("get", yaml_extra="projects:\n  - name: getp\n    ae_title: GET_PROJ\n").start()
    out = lib.tmpdir("mt-get-out-")
    try:
        r = lib.storescu(node, a_files + b_files)
        lib.check(r.returncode == 0, "storescu exit %s" % r.returncode)
        stored = node.stored_by_sop()
        a_sops = {lib.read_meta(p)["sop_instance_uid"] for p in a_files}

        r = qrlib.getscu(node, fresh(out), ["QueryRetrieveLevel=STUDY", "StudyInstanceUID=" + study_a])
        lib.check(r.returncode == 0, "getscu exit %s\n%s" % (r.returncode, r.stdout[-2000:]))
        got = sops_in(out)
        lib.check(set(got) == a_sops, "study get: %d of 10 received" % len(got))
        qrlib.check_identical({s: stored[s] for s in a_sops}, got, "study get")
        lib.check("Number of Completed Suboperations : 10" in r.stdout,
                  "getscu reports 10 completed\n" + r.stdout[-1500:])

        import pydicom
        ds0 = pydicom.dcmread(a_files[0], stop_before_pixels=True)
        r = qrlib.getscu(node, fresh(out), ["QueryRetrieveLevel=SERIES", "StudyInstanceUID=" + study_a,
                                            "SeriesInstanceUID=" + ds0.SeriesInstanceUID])
        lib.check(len(sops_in(out)) == 5, "series get: 5 received, got %d" % len(sops_in(out)))
        r = qrlib.getscu(node, fresh(out), ["QueryRetrieveLevel=IMAGE", "StudyInstanceUID=" + study_a,
                                            "SeriesInstanceUID=" + ds0.SeriesInstanceUID,
                                            "SOPInstanceUID=" + ds0.SOPInstanceUID])
        lib.check(set(sops_in(out)) == {ds0.SOPInstanceUID}, "image get: that instance")

        # project scoping
        r = node.cli("project", "add", "getp", "--study", study_a, "-c", node.conf_path,
                     "--data", node.data)
        lib.check(r.returncode == 0, "project add")
        r = qrlib.getscu(node, fresh(out), ["QueryRetrieveLevel=STUDY", "StudyInstanceUID=" + study_b],
                         aec="GET_PROJ")
        lib.check(not sops_in(out), "a study outside the project is not retrievable (C-GET)")
        r = qrlib.getscu(node, fresh(out), ["QueryRetrieveLevel=STUDY", "StudyInstanceUID=" + study_a],
                         aec="GET_PROJ")
        lib.check(set(sops_in(out)) == a_sops, "the project's study through its AE (C-GET)")

        # compressed: getscu proposes uncompressed storage contexts only by default
        jpeg = os.path.join(TS_DIR, "1.2.840.10008.1.2.4.50.dcm")
        if os.path.exists(jpeg):
            lib.storescu(node, [jpeg], extra=["-xy"])
            sop = lib.read_meta(jpeg)["sop_instance_uid"]
            if sop in node.stored_by_sop():
                r = qrlib.getscu(node, fresh(out), ["QueryRetrieveLevel=STUDY",
                                                    "StudyInstanceUID=" + qrlib.study_uid(jpeg)])
                lib.check(sop not in sops_in(out), "JPEG not delivered on uncompressed contexts")
                lib.check("Number of Failed Suboperations    : 1" in r.stdout,
                          "C-GET reports the failed sub-operation\n" + r.stdout[-1500:])
        lib.check(node.alive(), "node alive")
        lib.check("AddressSanitizer" not in node.all_logs(), "no sanitizer report")
    finally:
        rc = node.stop()
        lib.check(rc == 0, "node exit code %s" % rc)


lib.run_guarded(body)
lib.finish()
