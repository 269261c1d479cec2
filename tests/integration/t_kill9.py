#!/usr/bin/python3
"""t_kill9: durability. Four storescu associations send generated MR instances in parallel; the
node is killed with SIGKILL mid-stream (once some responses have arrived), then restarted on
the same data. Every instance whose Success response a sender logged is there (file with the
same data set, index row); every index row has its file; no temp file remains; then the rest is
sent again and everything is there exactly once."""
import os
import time

import pydicom

import gen_mr
import lib

N_SENDERS = 4
PER_SENDER = 50


def body():
    src = lib.tmpdir("mt-k9-src-")
    files = gen_mr.generate(src, count=N_SENDERS * PER_SENDER, series=N_SENDERS, phases=25, seed="t_kill9")
    sop_of = {p: pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in files}
    node = lib.Node("k9").start()
    procs = []
    for s in sorted(os.listdir(src)):
        d = os.path.join(src, s)
        fl = sorted(os.path.join(d, f) for f in os.listdir(d))
        logp = os.path.join(node.dir, "storescu-%s.log" % s)
        procs.append((lib.storescu_popen(node, fl, logp, extra=["-R"]), logp))

    def n_success():
        n = 0
        for _, logp in procs:
            with open(logp, errors="replace") as f:
                n += f.read().count("Received Store Response (Success)")
        return n
    # kill once a fifth has been acknowledged: the rest is in flight on 4 associations
    lib.wait_for(lambda: n_success() >= N_SENDERS * PER_SENDER // 5, "some responses", deadline_s=120)
    node.kill9()
    for p, _ in procs:
        try:
            p.wait(120)
        except Exception:  # noqa: BLE001
            p.kill()
    acked = set()
    for _, logp in procs:
        with open(logp, errors="replace") as f:
            for fpath, status in lib.store_results(f.read()):
                if status == "Success":
                    acked.add(fpath)
    lib.log("%d of %d instances acknowledged before SIGKILL" % (len(acked), len(files)))
    lib.check(len(acked) < len(files), "every instance was acknowledged before the kill: nothing tested")

    node.start()
    lib.check(not node.tmp_files(), "temp files after restart: %r" % node.tmp_files()[:5])
    stored = node.stored_by_sop()
    rows = node.index_instances() if lib.IS_MITRAL else {}
    lost = [p for p in acked if sop_of[p] not in stored]
    lib.check(not lost, "%d acknowledged instances lost: %r" % (len(lost), lost[:5]))
    unindexed = [p for p in acked if lib.IS_MITRAL and sop_of[p] not in rows]
    lib.check(not unindexed, "%d acknowledged instances not indexed" % len(unindexed))
    bad = [p for p in acked if sop_of[p] in stored and lib.compare_datasets(p, stored[sop_of[p]])]
    lib.check(not bad, "%d acknowledged instances with a different data set: %r" % (len(bad), bad[:3]))
    if lib.IS_MITRAL:
        for u, r in rows.items():
            p = os.path.join(node.storage, r["path"])
            if not lib.check(os.path.exists(p) and os.path.getsize(p) == r["size"],
                             "index row without its file (or wrong size): %s" % r["path"]):
                break
        lib.check(len(rows) == len(stored), "%d index rows, %d files" % (len(rows), len(stored)))

    # send everything again: all there once
    r = lib.storescu(node, files, extra=["-R"])
    res = [s for _, s in lib.store_results(r.stdout)]
    lib.check(res == ["Success"] * len(files), "resend: %d responses, not all Success" % len(res))
    lib.wait_for(lambda: not node.tmp_files(), "temp files gone")
    stored = node.stored_by_sop()
    lib.check(set(stored) == set(sop_of.values()), "after resend: %d of %d stored" % (len(stored), len(files)))
    if lib.IS_MITRAL:
        st = node.stats()
        lib.check(st.get("instances") == len(files) and st.get("series") == N_SENDERS and st.get("studies") == 1,
                  "stats after resend %r" % st)
    lib.check(node.stop() == 0, "exit code after SIGTERM")


lib.run_guarded(body)
