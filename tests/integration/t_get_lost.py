#!/usr/bin/python3
"""t_get_lost.py - a C-GET requester that vanishes mid-retrieval: getscu is killed (kill -9,
so its kernel closes the connection with sub-operations in flight, one perhaps still being
read from disk by the node) after the first, the fifth and the fifteenth instance arrived.
The node drops that association and everything it still had to send on it, keeps serving
(C-ECHO; a whole C-GET afterwards brings every instance, identical to the stored ones) and,
under the test build's ASan/UBSan, reports nothing."""
import os
import shutil
import signal
import subprocess
import time

import gen_mr
import lib
import qrlib


def count_files(d):
    try:
        return len(os.listdir(d))
    except OSError:
        return 0


def body():
    if not shutil.which("getscu"):
        lib.skip("dcmtk getscu not installed")
    if not lib.IS_MITRAL:
        lib.skip("C-GET is mitral's")
    gen = lib.tmpdir("mt-getlost-gen-")
    files = gen_mr.generate(os.path.join(gen, "a"), count=40, series=1, phases=40,
                            seed="get-lost", patient_id="GET-LOST")
    study = qrlib.study_uid(files[0])
    node = lib.Node("getlost").start()
    try:
        r = lib.storescu(node, files)
        lib.check(r.returncode == 0, "storescu exit %s" % r.returncode)
        stored = node.stored_by_sop()
        for after in (1, 5, 15):
            out = lib.tmpdir("mt-getlost-out-")
            cmd = ["getscu", "-aet", "GETSCU", "-aec", node.aet, "-od", out, "-S",
                   "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID=" + study,
                   "127.0.0.1", str(node.port)]
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 60
            while count_files(out) < after and p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            p.send_signal(signal.SIGKILL)
            p.wait()
            got = count_files(out)
            lib.log("getscu killed after %d file(s) (wanted %d)" % (got, after))
            lib.check(got < len(files), "getscu was killed before the end (%d files)" % got)
            lib.check(node.alive(), "node alive after the requester vanished (%d)" % after)
            e = lib.echoscu(node)
            lib.check(e.returncode == 0, "C-ECHO after the requester vanished (%d)" % after)
        out = lib.tmpdir("mt-getlost-all-")
        r = qrlib.getscu(node, out, ["QueryRetrieveLevel=STUDY", "StudyInstanceUID=" + study])
        lib.check(qrlib.final_status(r.stdout) == "Success" or r.returncode == 0,
                  "whole get afterwards: %r" % qrlib.final_status(r.stdout))
        got = {}
        for f in os.listdir(out):
            m = lib.read_meta(os.path.join(out, f))
            if m:
                got[m["sop_instance_uid"]] = os.path.join(out, f)
        lib.check(set(got) == set(stored), "whole get afterwards: %d of %d" % (len(got), len(stored)))
        qrlib.check_identical(stored, got, "whole get afterwards")
        log = node.all_logs()
        lib.check("AddressSanitizer" not in log and "runtime error" not in log,
                  "no sanitizer report in the node's log")
    finally:
        node.stop()


if __name__ == "__main__":
    lib.run_guarded(body)
