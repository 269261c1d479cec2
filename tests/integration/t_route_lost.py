#!/usr/bin/python3
"""t_route_lost.py - what a forwarder does when the destination goes away with C-STOREs
outstanding (issue 6: only what was not acknowledged is retried, nothing acknowledged is
sent again, nothing unacknowledged is dropped), and stopping while an association is still
being set up.

1. A scripted SCP (window 16) acknowledges the first 5 instances, then receives 4 more
   without answering and drops the connection, and stops listening. Node B (mitral, with
   storage.duplicates: reject, so a second copy of anything would fail and never drain) then
   comes up on the same port: B receives exactly the instances that were not acknowledged,
   none of the 5 that were, and A's queue drains. A logged the held ones as not delivered
   because the association ended before their response.
2. The same destination acknowledges 5 and then answers nothing: forward.response_timeout
   (1s) aborts the association, and B again gets exactly the rest.
3. kill -9 of node B while A forwards a backlog of 240 generated CMR instances in 4 series
   over 2 associations with the window: B restarted on the same data; every instance arrives,
   each SOP Instance UID once in B's index and once on disk, A's queue empty.
4. A destination that accepts the TCP connection and never answers the A-ASSOCIATE-RQ
   (forward.connect_timeout 300s): SIGTERM stops node A at once (the association still
   being set up is aborted), and the queue entry is kept, no attempt counted.
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lib  # noqa: E402
import dul_scp  # noqa: E402
import routefx  # noqa: E402

try:
    import gen_mr  # noqa: E402
except ImportError:
    lib.skip("pydicom not installed")
if not lib.IS_MITRAL:
    lib.skip("needs mitral")


def site(port, extra=None, assoc=1):
    conf = {"forward.retry_initial": "50ms", "forward.retry_max": "300ms",
            "forward.connect_timeout": "5s", "forward.max_attempts": "1000"}
    conf.update(extra or {})
    return routefx.site(port, conf, assoc)


queue_len = routefx.queue_len


def sops_of(node):
    return [r["sop_instance_uid"] for r in node.query("SELECT sop_instance_uid FROM instances")]


def store_into(a, files):
    r = lib.storescu(a, files, aet="PACS")
    ok = sum(1 for _, s in lib.store_results(r.stdout) if s == "Success")
    lib.check(ok == len(files), "%d instances stored at A (%d)" % (len(files), ok))


def generate(work, count, series, seed):
    d = os.path.join(work, seed)
    gen_mr.generate(d, count=count, series=series, phases=20, seed=seed)
    return sorted(os.path.join(r, f) for r, _, fs in os.walk(d) for f in fs if f.endswith(".dcm"))


def dropped_with_outstanding(work):
    files = generate(work, 40, 1, "lost-drop")
    port = lib.free_port()
    state = {"acks": 0}

    def policy(scp, sop, n):
        if state["acks"] < 5:
            state["acks"] += 1
            return "ack"
        return "drop" if n >= 4 else "hold-until-drop"

    # A's first try fails at the first instance and its backoff (2 s) outlasts the rest of the
    # send, so the scripted SCP gets everything in one batch: with a short backoff, rows of a
    # failed round (their outcome held, forward.c) and rows stored after it could come as two
    # batches, the first too short to hold 4 unanswered after the 5 acknowledged
    a = site(port, extra={"forward.retry_initial": "2s", "forward.retry_max": "2s"})
    store_into(a, files)  # nobody listens yet: all of it waits in A's queue, one batch later
    scp = dul_scp.Scp(port, window=16, policy=policy)
    lib.wait_for(lambda: len(scp.held) >= 4, "the scripted SCP dropped the association "
                 "with 4 C-STOREs unanswered", 60)
    scp.stop()
    acked, held = list(scp.acked), list(scp.held)
    lib.check(len(acked) == 5 and len(set(acked)) == 5, "5 acknowledged (%d)" % len(acked))
    lib.check(scp.max_outstanding >= 4, "4 outstanding when dropped (%d)" % scp.max_outstanding)
    b = lib.Node("central", aet="CENTRAL", port=port, conf={"storage.duplicates": "reject"})
    b.start()
    lib.wait_for(lambda: queue_len(a) == 0, "A's queue drains into B", 120)
    all_sops = set(sops_of(a))
    at_b = sops_of(b)
    lib.check(len(at_b) == len(set(at_b)), "B holds no SOP Instance UID twice")
    lib.check(not set(acked) & set(at_b),
              "nothing acknowledged by the first destination was sent again (%d)"
              % len(set(acked) & set(at_b)))
    lib.check(set(at_b) == all_sops - set(acked),
              "B holds exactly the %d not acknowledged (%d)" % (len(all_sops) - 5, len(at_b)))
    lib.check(set(held) <= set(at_b), "the held ones arrived at B")
    log = a.log_text()
    lib.check(log.count("association lost before the response") >= 4,
              "A logged the outstanding ones as not delivered")
    lib.check("status 0x0111" not in log, "B never refused a duplicate")
    a.stop()
    b.stop()


def response_timeout(work):
    """The destination acknowledges 5, then never answers again: forward.response_timeout 1s
    aborts; B (reject duplicates) then gets exactly the rest."""
    files = generate(work, 30, 1, "lost-timeout")
    port = lib.free_port()
    state = {"acks": 0}

    def policy(scp, sop, n):
        if state["acks"] < 5:
            state["acks"] += 1
            return "ack"
        return "hold-until-drop"

    a = site(port, extra={"forward.response_timeout": "1s", "forward.retry_initial": "2s",
                          "forward.retry_max": "2s"})  # one batch: see dropped_with_outstanding
    store_into(a, files)
    scp = dul_scp.Scp(port, window=16, policy=policy)
    lib.check(scp.ended.wait(60), "A gave up on the silent destination")
    scp.stop()
    acked = list(scp.acked)
    lib.check(len(acked) == 5, "5 acknowledged (%d)" % len(acked))
    lib.check(scp.max_outstanding >= 2, "several outstanding when A timed out (%d)"
              % scp.max_outstanding)
    b = lib.Node("central", aet="CENTRAL", port=port, conf={"storage.duplicates": "reject"})
    b.start()
    lib.wait_for(lambda: queue_len(a) == 0, "A's queue drains into B", 120)
    at_b = sops_of(b)
    lib.check(set(at_b) == set(sops_of(a)) - set(acked) and len(at_b) == len(set(at_b)),
              "after the timeout B holds exactly the %d not acknowledged, once (%d)"
              % (len(files) - 5, len(at_b)))
    lib.check("response timed out" in a.log_text(), "A logged the response timeout")
    a.stop()
    b.stop()


def kill_destination(work):
    files = generate(work, 240, 4, "lost-kill")
    b = lib.Node("central", aet="CENTRAL")
    b.port = lib.free_port()
    a = site(b.port, assoc=2)
    store_into(a, files)  # B is down: all of it waits in A's queue
    n_files = len(files)
    b.start()
    t0 = time.time()
    mid = 0
    while time.time() - t0 < 120:
        try:
            mid = b.query("SELECT count(*) AS n FROM instances")[0]["n"]
        except Exception:  # the index may not exist yet
            mid = 0
        if mid >= 30:
            break
        time.sleep(0.005)
    b.kill9()
    lib.log("B killed with %d of %d instances indexed" % (mid, n_files))
    lib.check(mid < n_files, "B was killed mid-queue (%d of %d)" % (mid, n_files))
    b.start()
    lib.wait_for(lambda: queue_len(a) == 0, "A's queue drains after B's restart", 180)
    at_b = sops_of(b)
    lib.check(len(at_b) == n_files and set(at_b) == set(sops_of(a)),
              "B holds every instance once (%d rows, %d distinct, %d sent)"
              % (len(at_b), len(set(at_b)), n_files))
    on_disk = b.stored_by_sop()
    lib.check(len(b.stored_paths()) == n_files and set(on_disk) == set(at_b),
              "one file per instance at B (%d files)" % len(b.stored_paths()))
    log = a.log_text()
    lost = [l for l in log.splitlines() if "awaiting a response" in l]
    lib.log("A: %s" % (lost[0].split("association lost: ")[-1] if lost else "no loss logged"))
    lib.check(bool(lost), "A's association was lost under it")
    a.stop()
    b.stop()


def stop_while_connecting(work):
    files = generate(work, 1, 1, "lost-connect")
    port = lib.free_port()
    scp = dul_scp.Scp(port, silent=True)
    a = site(port, extra={"forward.connect_timeout": "300s"})
    store_into(a, files)
    lib.check(scp.got_rq.wait(60), "A sent its A-ASSOCIATE-RQ")
    t0 = time.time()
    rc = a.stop(deadline_s=30)
    took = time.time() - t0
    scp.stop()
    lib.check(rc == 0, "A stopped cleanly while its association was being set up (exit %s, "
              "%.1f s)" % (rc, took))
    rows = a.query("SELECT attempts, state FROM forward_queue")
    lib.check(len(rows) == 1 and rows[0]["attempts"] == 0 and rows[0]["state"] == 0,
              "the entry stays queued, no attempt counted: %s" % rows)
    lib.check("association set-up stopped" in a.log_text(), "A logged the stopped set-up")


def sanitizer_clean():
    """No node of this test reported an ASan/UBSan error (sanitizer builds)."""
    for n in lib._nodes:
        text = n.all_logs()
        lib.check("Sanitizer:" not in text and "runtime error:" not in text,
                  "%s: no sanitizer report in its log" % n.name)


def main():
    work = lib.tmpdir("mt-route-lost-")
    dropped_with_outstanding(work)
    response_timeout(work)
    kill_destination(work)
    stop_while_connecting(work)
    sanitizer_clean()


lib.run_guarded(main)
