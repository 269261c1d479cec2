#!/usr/bin/python3
"""t_duplicates: storage.duplicates = overwrite | keep-first | reject. Two different data sets
with the same SOP Instance UID (A then B), on one association and across associations and a
restart: overwrite keeps B (success), keep-first keeps A (success), reject keeps A and answers
0111 Duplicate SOP Instance. Always one file and one index row."""
import os

import pydicom

import dul
import gen_mr
import lib


def make_pair(d):
    a = gen_mr.generate(os.path.join(d, "a"), count=1, series=1, seed="t_duplicates")[0]
    ds = pydicom.dcmread(a)
    ds.ImageComments = "second copy, different content"
    ds.InstanceNumber = 99
    b = os.path.join(d, "b.dcm")
    ds.save_as(b, write_like_original=False)
    return a, b


def store(node, path):
    cls, sop, ts, data = dul.split_part10(path)
    a = dul.Assoc("127.0.0.1", node.port, called=node.aet, contexts=[(cls, [ts])])
    if not lib.check(a.associate(), "association rejected %r" % (a.reject,)):
        return None
    status, rsp = a.store(1, cls, sop, data)
    a.release()
    return status, rsp


def stored_is(node, path):
    files = node.stored_paths()
    return len(files) == 1 and lib.dataset_bytes(files[0]) == lib.dataset_bytes(path)


def body():
    if not lib.IS_MITRAL:
        lib.skip("duplicate policies are mitral's (MT_TARGET=%s)" % lib.TARGET)
    a, b = make_pair(lib.tmpdir("mt-dup-src-"))
    sop = pydicom.dcmread(a).SOPInstanceUID
    for policy, want_status, keep in (("overwrite", 0x0000, b), ("keep-first", 0x0000, a),
                                      ("reject", 0x0111, a)):
        node = lib.Node(policy, conf={"storage.duplicates": policy}).start()
        r = store(node, a)
        lib.check(r and r[0] == 0, "%s: first store status %r" % (policy, r and r[0]))
        r = store(node, b)
        lib.check(r and r[0] == want_status, "%s: second store status %r, want 0x%04X" % (
            policy, r and r[0], want_status))
        if want_status:
            lib.check(r and r[1].get("comment"), "%s: no ErrorComment with 0x%04X" % (policy, want_status))
        lib.wait_for(lambda: not node.tmp_files(), "%s: temp files gone" % policy)
        lib.check(stored_is(node, keep), "%s: stored file is not the %s copy" % (
            policy, "second" if keep == b else "first"))
        rows = node.query("SELECT instance_number, path FROM instances WHERE sop_instance_uid = ?", (sop,))
        lib.check(len(rows) == 1, "%s: %d index rows" % (policy, len(rows)))
        if rows:
            lib.check(rows[0]["instance_number"] == (99 if keep == b else 1),
                      "%s: index instance_number %r" % (policy, rows[0]["instance_number"]))

        # the same twice on one association, with storescu (a real SCU's view of the status)
        r2 = lib.storescu(node, [b, b], extra=["-R"])
        res = [s for _, s in lib.store_results(r2.stdout)]
        if want_status == 0:
            lib.check(res == ["Success", "Success"], "%s: storescu responses %r" % (policy, res))
        else:
            lib.check(len(res) == 2 and all(s and s != "Success" for s in res),
                      "%s: storescu responses %r, want two failures" % (policy, res))
        # and after a restart: the policy holds against what is on disk
        lib.check(node.stop() == 0, "%s: exit code after SIGTERM" % policy)
        node.start()
        r = store(node, b)
        lib.check(r and r[0] == want_status, "%s after restart: status %r" % (policy, r and r[0]))
        lib.check(stored_is(node, keep), "%s after restart: wrong file kept" % policy)
        st = node.stats()
        lib.check(st.get("instances") == 1 and st.get("series") == 1, "%s: stats %r" % (policy, st))
        lib.check(not node.tmp_files(), "%s: temp files left" % policy)
        lib.check(node.stop() == 0, "%s: exit code after SIGTERM" % policy)


lib.run_guarded(body)
