#!/usr/bin/python3
"""t_move_basic.py - C-MOVE SCP (issue 3) with dcmtk's movescu and storescp destinations:
study / series / image level (Study Root) and patient level (Patient Root), the files that
arrive are identical to the stored ones; an unknown destination gets A801; a destination that
is down gets failed sub-operations (A702, Failed SOP Instance UID List) and the node keeps
serving; a destination that accepts only uncompressed syntaxes gets native instances
(re-encoded when needed) and failed sub-operations for compressed ones (B000); project scoping
(a study outside the project is not retrievable through the project AE title); C-CANCEL
mid-move (movescu --cancel, destination slowed with storescp --sleep-after): final FE00."""
import os
import re
import shutil

import gen_mr
import lib
import qrlib

TS_DIR = os.path.join(lib.TESTDATA, "orthanc-tests", "TransferSyntaxes")


def body():
    if not shutil.which("movescu") or not shutil.which("storescp"):
        lib.skip("dcmtk movescu/storescp not installed")
    if not lib.IS_MITRAL:
        lib.skip("C-MOVE is mitral's")
    gen = lib.tmpdir("mt-move-gen-")
    a_files = gen_mr.generate(os.path.join(gen, "a"), count=12, series=2, phases=6, seed="move-a",
                              patient_id="MOVE-A")
    b_files = gen_mr.generate(os.path.join(gen, "b"), count=4, series=1, phases=4, seed="move-b",
                              patient_id="MOVE-B")
    study_a = qrlib.study_uid(a_files[0])
    study_b = qrlib.study_uid(b_files[0])

    dest = qrlib.StoreSCP("DEST", extra=["+xa"]).start()          # accepts everything
    plain = qrlib.StoreSCP("PLAIN", name="plain").start()         # uncompressed only
    slow = qrlib.StoreSCP("SLOW", extra=["--sleep-after", "1"], name="slow").start()
    down_port = lib.free_port()                                   # nobody listens there
    yaml = qrlib.dest_yaml([("DEST", dest.port), ("PLAIN", plain.port), ("SLOW", slow.port),
                            ("DOWN", down_port)])
    yaml += "projects:\n  - name: movep\n    ae_title: MOVE_PROJ\n"
    node = lib.Node("move", yaml_extra=yaml).start()
    try:
        r = lib.storescu(node, a_files + b_files)
        lib.check(r.returncode == 0, "storescu exit %s" % r.returncode)
        stored = node.stored_by_sop()
        lib.check(len(stored) == 16, "16 instances stored, got %d" % len(stored))
        a_sops = {lib.read_meta(p)["sop_instance_uid"] for p in a_files}

        # ---- study level ----
        r = qrlib.movescu(node, "DEST", ["QueryRetrieveLevel=STUDY", "StudyInstanceUID=" + study_a])
        lib.check(qrlib.final_status(r.stdout) == "Success", "study move: status %r\n%s"
                  % (qrlib.final_status(r.stdout), r.stdout[-2000:]))
        got = dest.by_sop()
        lib.check(set(got) == a_sops, "study move: %d of 12 arrived (and nothing else)" % len(got))
        qrlib.check_identical({s: stored[s] for s in a_sops}, got, "study move")
        lib.check(r.stdout.count("(Pending)") >= 1, "study move: pending responses")

        # ---- series level ----
        dest.clear()
        import pydicom
        series = pydicom.dcmread(a_files[0], stop_before_pixels=True).SeriesInstanceUID
        in_series = {lib.read_meta(p)["sop_instance_uid"] for p in a_files
                     if pydicom.dcmread(p, stop_before_pixels=True).SeriesInstanceUID == series}
        r = qrlib.movescu(node, "DEST", ["QueryRetrieveLevel=SERIES", "StudyInstanceUID=" + study_a,
                                         "SeriesInstanceUID=" + series])
        lib.check(qrlib.final_status(r.stdout) == "Success", "series move: status")
        lib.check(set(dest.by_sop()) == in_series, "series move: the series' %d instances arrive"
                  % len(in_series))

        # ---- image level ----
        dest.clear()
        one = sorted(a_sops)[0]
        ds1 = pydicom.dcmread(stored[one], stop_before_pixels=True)
        r = qrlib.movescu(node, "DEST", ["QueryRetrieveLevel=IMAGE", "StudyInstanceUID=" + study_a,
                                         "SeriesInstanceUID=" + ds1.SeriesInstanceUID,
                                         "SOPInstanceUID=" + one])
        lib.check(qrlib.final_status(r.stdout) == "Success", "image move: status")
        lib.check(set(dest.by_sop()) == {one}, "image move: exactly that instance arrives")

        # ---- patient root, patient level ----
        dest.clear()
        r = qrlib.movescu(node, "DEST", ["QueryRetrieveLevel=PATIENT", "PatientID=MOVE-B"],
                          study_root=False)
        lib.check(qrlib.final_status(r.stdout) == "Success", "patient move: status")
        lib.check(len(dest.by_sop()) == 4, "patient move: patient B's 4 instances arrive")

        # ---- unknown destination ----
        r = qrlib.movescu(node, "NOWHERE", ["QueryRetrieveLevel=STUDY", "StudyInstanceUID=" + study_a])
        lib.check("MoveDestinationUnknown" in r.stdout or "A801" in r.stdout.upper(),
                  "unknown destination: A801\n" + r.stdout[-1500:])

        # ---- destination down ----
        r = qrlib.movescu(node, "DOWN", ["QueryRetrieveLevel=STUDY", "StudyInstanceUID=" + study_b])
        lib.check("OutOfResourcesSubOperations" in r.stdout or "A702" in r.stdout.upper(),
                  "destination down: A702\n" + r.stdout[-1500:])
        lib.check(node.alive(), "node alive after a move to a destination that is down")
        r = lib.echoscu(node)
        lib.check(r.returncode == 0, "echo after the failed move")

        # ---- destination that refuses compressed syntaxes ----
        if os.path.isdir(TS_DIR):
            jpeg = os.path.join(TS_DIR, "1.2.840.10008.1.2.4.50.dcm")
            big = os.path.join(TS_DIR, "1.2.840.10008.1.2.2.dcm")
            defl = os.path.join(TS_DIR, "1.2.840.10008.1.2.1.99.dcm")
            lib.storescu(node, [jpeg], extra=["-xy"])  # JPEG baseline proposed as such
            lib.storescu(node, [big, defl])
            stored = node.stored_by_sop()
            for f, want_ok in ((jpeg, False), (big, True), (defl, True)):
                sop = lib.read_meta(f)["sop_instance_uid"]
                if sop not in stored:
                    lib.log("note: %s not stored (storescu could not send it)" % f)
                    continue
                plain.clear()
                st = qrlib.study_uid(f)
                r = qrlib.movescu(node, "PLAIN", ["QueryRetrieveLevel=STUDY", "StudyInstanceUID=" + st],
                                  extra=["-d"])  # -d prints the final response's identifier
                fs = qrlib.final_status(r.stdout)
                got = plain.by_sop()
                if want_ok:
                    lib.check(fs is not None and "Success" in fs and sop in got,
                              "%s to an uncompressed-only destination: %r\n%s"
                              % (os.path.basename(f), fs, r.stdout[-1500:]))
                    if sop in got:
                        d = lib.compare_datasets(stored[sop], got[sop])
                        lib.check(d is None, "%s re-encoded copy equals the stored one: %s"
                                  % (os.path.basename(f), d))
                        m = lib.read_meta(got[sop])
                        lib.check(m["transfer_syntax_uid"] in lib.UNCOMPRESSED,
                                  "arrived in an uncompressed syntax: %s" % m["transfer_syntax_uid"])
                else:
                    lib.check(sop not in got, "compressed instance not sent uncompressed")
                    lib.check(fs is not None and fs[:6].lower() in ("0xa702", "0xb000"),
                              "compressed to an uncompressed-only destination fails: %r\n%s"
                              % (fs, r.stdout[-1500:]))
                    lib.check("(0008,0058)" in r.stdout and sop in r.stdout,
                              "Failed SOP Instance UID List names it\n" + r.stdout[-1500:])
        else:
            lib.log("note: %s absent: compressed-syntax checks skipped" % TS_DIR)

        # ---- project scoping ----
        r = node.cli("project", "add", "movep", "--study", study_a, "-c", node.conf_path,
                     "--data", node.data)
        lib.check(r.returncode == 0, "project add: %s %s" % (r.stdout, r.stderr))
        dest.clear()
        r = qrlib.movescu(node, "DEST", ["QueryRetrieveLevel=STUDY", "StudyInstanceUID=" + study_b],
                          aec="MOVE_PROJ")
        lib.check(qrlib.final_status(r.stdout) == "Success" and not dest.files(),
                  "a study outside the project is not retrievable through the project AE\n"
                  + r.stdout[-1500:])
        r = qrlib.movescu(node, "DEST", ["QueryRetrieveLevel=STUDY", "StudyInstanceUID=" + study_a],
                          aec="MOVE_PROJ")
        lib.check(qrlib.final_status(r.stdout) == "Success" and set(dest.by_sop()) == a_sops,
                  "the project's study is retrievable through the project AE")

        # ---- C-CANCEL mid-move ----
        r = qrlib.movescu(node, "SLOW", ["QueryRetrieveLevel=STUDY", "StudyInstanceUID=" + study_a],
                          extra=["--cancel", "1"])
        fs = qrlib.final_status(r.stdout)
        lib.check(fs is not None and "Cancel" in fs, "movescu --cancel 1: final %r\n%s"
                  % (fs, r.stdout[-2000:]))
        lib.check(len(slow.files()) < 12, "cancelled move stopped early (%d of 12 arrived)"
                  % len(slow.files()))
        lib.check(node.alive(), "node alive after the cancelled move")

        # ---- the requester vanishes mid-move (movescu killed): the node drops the work ----
        import subprocess
        import time
        slow.clear()
        cmd = ["movescu", "-S", "-aet", "MOVESCU", "-aec", node.aet, "-aem", "SLOW",
               "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID=" + study_a,
               "127.0.0.1", str(node.port)]
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=lib.PEER_ENV)
        lib.wait_for(lambda: len(slow.files()) >= 1, "first sub-operation of the killed move")
        p.kill()
        p.wait()
        lib.wait_for(lambda: "outstanding request(s) abandoned" in node.all_logs(),
                     "the node notices the requester is gone")
        lib.wait_for(lambda: len(re.findall(r"c-move msgid=\d+ dest=SLOW", node.all_logs())) >= 2,
                     "the abandoned move ends (after its sub-operation in progress)")
        lib.check(len(slow.files()) < 12, "abandoned move stopped early")
        r = lib.echoscu(node)
        lib.check(r.returncode == 0, "echo after the abandoned move")

        # ---- the destination dies mid-move: failed sub-operations, node unharmed ----
        slow2 = qrlib.StoreSCP("SLOW", extra=["--sleep-after", "1"], name="slow2")
        slow2.port = slow.port
        slow.stop()
        slow2.start()
        out = []
        t = __import__("threading").Thread(target=lambda: out.append(qrlib.movescu(
            node, "SLOW", ["QueryRetrieveLevel=STUDY", "StudyInstanceUID=" + study_a],
            extra=["-d"])))
        t.start()
        lib.wait_for(lambda: len(slow2.files()) >= 1, "first sub-operation before the kill")
        slow2.proc.kill()
        slow2.proc.wait()
        t.join(120)
        fs = qrlib.final_status(out[0].stdout) if out else None
        lib.check(fs is not None and fs[:6].lower() in ("0xb000", "0xa702"),
                  "destination killed mid-move: B000/A702, got %r" % (fs,))
        lib.check(out and "(0008,0058)" in out[0].stdout, "failed UIDs listed")
        lib.check(node.alive(), "node alive after the destination died")
        r = lib.echoscu(node)
        lib.check(r.returncode == 0, "echo after the destination died")

        log = node.all_logs()
        lib.check("ERROR: AddressSanitizer" not in log, "no sanitizer report")
        lib.check(re.search(r"c-move msgid=\d+ dest=SLOW .*status=0xFE00", log) is not None,
                  "log line of the cancelled move")
    finally:
        rc = node.stop()
        lib.check(rc == 0, "node exit code %s" % rc)
        for d in (dest, plain, slow):
            d.stop()


lib.run_guarded(body)
lib.finish()
