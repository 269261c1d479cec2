#!/usr/bin/python3
"""t_async: the asynchronous operations window. An SCU that proposes 8 invoked operations gets
min(8, associations.max_async_operations) in the A-ASSOCIATE-AC, may then send 8 C-STORE
requests before reading any response, and gets one Success response per request (Message ID
Being Responded To covering all of them); all 8 instances stored and indexed."""
import dul
import gen_mr
import lib


def body():
    if not lib.IS_MITRAL:
        lib.skip("checks mitral's negotiated window (MT_TARGET=%s)" % lib.TARGET)
    files = gen_mr.generate(lib.tmpdir("mt-async-src-"), count=8, series=1, phases=8, seed="t_async")
    node = lib.Node("async").start()
    a = dul.Assoc("127.0.0.1", node.port, called=node.aet, contexts=[(dul.MR_STORAGE, [dul.EXPLICIT_LE])])
    lib.check(a.associate(async_ops=(8, 1)), "association rejected %r" % (a.reject,))
    lib.check(a.async_window == (8, 1), "AC async window %r, want (8, 1)" % (a.async_window,))
    lib.check(a.accepted.get(1) == dul.EXPLICIT_LE, "MR context not accepted")
    sops = []
    for i, f in enumerate(files):
        cls, sop, ts, data = dul.split_part10(f)
        sops.append(sop)
        a.send_message(1, dul.c_store_rq(i + 1, cls, sop), True)
        a.send_message(1, data, False)
    got = {}
    for _ in files:
        rsp = a.read_message()
        got[rsp.get("responded_to")] = rsp.get("status")
    lib.check(got == {i + 1: 0 for i in range(8)}, "responses %r" % got)
    lib.check(a.release(), "no A-RELEASE-RP")
    lib.wait_for(lambda: not node.tmp_files(), "temp files gone")
    stored = node.stored_by_sop()
    lib.check(set(stored) == set(sops), "%d of 8 stored" % len(set(stored) & set(sops)))
    lib.check(node.stats().get("instances") == 8, "stats %r" % node.stats())
    lib.check(node.stop() == 0, "exit code after SIGTERM")


lib.run_guarded(body)
