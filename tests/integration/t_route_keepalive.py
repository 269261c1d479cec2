#!/usr/bin/python3
"""t_route_keepalive.py - forwarding associations kept open between batches (issue 6).

1. Streaming into a scripted SCP (tests/integration/dul_scp.py, which counts associations):
   instances stored at A one at a time, each forwarded as its own small batch, with
   forward.associations 2 and forward.idle_release 3s: all go over ONE association.
2. Idle longer than idle_release: A releases it (A-RELEASE, the SCP sees the association end);
   the next instance opens a new association.
3. An instance of a SOP class the open association did not propose: A releases it and opens
   one proposing it (and what the previous one carried): it is delivered; an instance of the
   first class right after needs no further association.
4. Against mitral B (storage.duplicates reject, so a second send of an instance would show as
   status 0x0111 in A's log): a stream over one association (B's log: one "association
   accepted"), then B killed (kill -9) while the association is idle-open: A notices, the
   next instances (B restarted) are delivered exactly once over a new association. Stopping A
   with an association idle-open (idle_release 60s) releases it at once.
5. Stopping A while the destination never answers the A-RELEASE-RQ: A aborts after 2 s.
6. B (duplicates reject) already holds an instance when A forwards it (what a send whose
   response was lost leaves behind): B answers 0111, A counts it delivered (its queue drains,
   nothing dead, a warning says why) instead of retrying what can never be accepted.
Every acknowledged instance is acknowledged exactly once; the queue drains.
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
    import pydicom  # noqa: E402,F401 (the skip check; routefx writes the files)
    from pydicom.uid import generate_uid  # noqa: E402
except ImportError:
    lib.skip("pydicom not installed")
if not lib.IS_MITRAL:
    lib.skip("needs mitral")

MR = "1.2.840.10008.5.1.4.1.1.4"
SC = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture: not proposed for an MR-only stream
STUDY, SERIES = generate_uid(), generate_uid()


def make_file(work, i, sop_class=MR):
    p = os.path.join(work, "k%03d.dcm" % i)
    return p, routefx.mr_file(p, i, STUDY, SERIES, "KEEP1", "Keep^Alive", 32, sop_class)


class Files:
    def __init__(self):
        self.work = lib.tmpdir("mt-route-keep-")
        self.n = 0

    def one(self, sop_class=MR):
        self.n += 1
        return make_file(self.work, self.n, sop_class)


def site(port, idle, assoc=2):
    conf = {"forward.retry_initial": "100ms", "forward.retry_max": "300ms",
            "forward.connect_timeout": "5s", "forward.idle_release": idle,
            "log.level": "debug"}
    return routefx.site(port, conf, assoc)


queue_len = routefx.queue_len


def store_one(a, path):
    r = lib.storescu(a, [path], aet="MODALITY")
    ok = [s for _, s in lib.store_results(r.stdout)]
    lib.check(ok == ["Success"], "stored at A (%s)" % ok)


def stream(a, files, n, delivered, sop_class=MR):
    """Store n instances one at a time, each forwarded before the next is stored."""
    sops = []
    for _ in range(n):
        p, sop = files.one(sop_class)
        store_one(a, p)
        sops.append(sop)
        lib.wait_for(lambda: delivered(sop), "instance forwarded", 60)
    return sops


def scripted(files):
    port = lib.free_port()
    scp = dul_scp.Scp(port, window=None)
    a = site(port, "3s")

    def acked(sop):
        return sop in scp.acked

    sops = stream(a, files, 12, acked)
    lib.check(scp.associations == 1,
              "1: 12 instances streamed over one association (%d)" % scp.associations)
    lib.check(not scp.ended.is_set(), "1: the association is still open")

    t0 = time.monotonic()
    lib.wait_for(scp.ended.is_set, "2: the idle association is released", 30)
    idle = time.monotonic() - t0
    lib.log("association ended %.1f s after the last instance" % idle)
    lib.check("releasing the association" in a.log_text(), "2: A released it for idleness")
    scp.ended.clear()
    sops += stream(a, files, 1, acked)
    lib.check(scp.associations == 2, "2: the next instance opened a new association (%d)"
              % scp.associations)

    sops += stream(a, files, 1, acked, SC)
    lib.check(scp.associations == 3, "3: a new SOP class re-opened the association (%d)"
              % scp.associations)
    lib.check("not proposed on the open association" in a.log_text(),
              "3: A says why it re-opened")
    sops += stream(a, files, 2, acked)
    lib.check(scp.associations == 3, "3: the MR instances after it need no new association (%d)"
              % scp.associations)
    lib.wait_for(lambda: queue_len(a) == 0, "A's queue is empty", 30)
    a.stop()
    scp.stop()
    lib.check(sorted(scp.acked) == sorted(sops),
              "every instance acknowledged exactly once (%d acks, %d distinct, %d instances)"
              % (len(scp.acked), len(set(scp.acked)), len(sops)))


def accepted(b, which=-1):
    return b.log_text(which).count("association accepted:")


def killed_while_idle(files):
    b = lib.Node("central", aet="CENTRAL", conf={"storage.duplicates": "reject"}).start()
    a = site(b.port, "60s")

    def at_b(sop):  # and acknowledged: A's queue entry is gone
        return (bool(b.query("SELECT 1 FROM instances WHERE sop_instance_uid = ?", (sop,)))
                and queue_len(a) == 0)

    sops = stream(a, files, 8, at_b)
    lib.check(accepted(b) == 1, "4: 8 instances streamed to B over one association (%d)"
              % accepted(b))
    b.kill9()
    lib.wait_for(lambda: "idle association ended by the destination" in a.log_text(),
                 "4: A notices that B went away", 30)
    b.start()
    sops += stream(a, files, 4, at_b)
    lib.check(accepted(b) == 1, "4: after B's restart, one new association (%d)" % accepted(b))
    lib.wait_for(lambda: queue_len(a) == 0, "A's queue is empty", 30)
    held = {r["sop_instance_uid"] for r in b.query("SELECT sop_instance_uid FROM instances")}
    lib.check(held == set(sops), "B holds every instance (%d of %d)" % (len(held), len(sops)))
    lib.check("status 0x0111" not in a.log_text(), "4: nothing was sent to B twice")
    lib.check("not delivered" not in a.log_text(), "4: no instance failed")
    t0 = time.monotonic()
    a.stop()
    took = time.monotonic() - t0
    lib.log("A stopped in %.1f s with an idle association open" % took)
    lib.wait_for(lambda: "association released" in b.log_text(),
                 "4: stopping A released the idle association (A-RELEASE)", 10)
    lib.check(took < 30, "4: A stopped without waiting for idle_release (%.1f s)" % took)
    b.stop()


def stuck_release(files):
    """5. Stopping A while its idle association's destination never answers the A-RELEASE-RQ:
    A aborts it after its 2 s grace and stops."""
    port = lib.free_port()
    scp = dul_scp.Scp(port, window=None)
    scp.ignore_release = True
    a = site(port, "60s")
    sops = stream(a, files, 2, lambda sop: sop in scp.acked)
    lib.wait_for(lambda: queue_len(a) == 0, "5: A's queue is empty", 30)
    t0 = time.monotonic()
    a.stop()
    took = time.monotonic() - t0
    lib.log("A stopped in %.1f s with a stuck release" % took)
    lib.check(scp.release_ignored.is_set(), "5: A sent an A-RELEASE-RQ on stop")
    lib.check("release not answered: A-ABORT" in a.log_text(), "5: A aborted the stuck release")
    scp.stop()
    lib.check(sorted(scp.acked) == sorted(sops), "5: both instances acknowledged once")


def duplicate_held(files):
    b = lib.Node("central2", aet="CENTRAL", conf={"storage.duplicates": "reject"}).start()
    a = site(b.port, "1s")
    p, sop = files.one()
    r = lib.storescu(b, [p], aet="EARLIER")
    lib.check([s for _, s in lib.store_results(r.stdout)] == ["Success"], "6: stored at B first")
    store_one(a, p)
    lib.wait_for(lambda: "already holds this SOP Instance UID" in a.log_text(),
                 "6: B answered 0111 and A said so", 60)
    lib.wait_for(lambda: queue_len(a) == 0, "6: A's queue is empty", 30)
    dead = a.query("SELECT count(*) AS n FROM forward_queue WHERE state = 1")[0]["n"]
    lib.check(dead == 0, "6: nothing dead-lettered (%d)" % dead)
    lib.check(b.query("SELECT count(*) AS n FROM instances")[0]["n"] == 1, "6: B holds it once")
    a.stop()
    b.stop()


def sanitizer_clean():
    for n in lib._nodes:
        text = n.all_logs()
        lib.check("Sanitizer:" not in text and "runtime error:" not in text,
                  "%s: no sanitizer report in its log" % n.name)


def main():
    files = Files()
    scripted(files)
    killed_while_idle(files)
    stuck_release(files)
    duplicate_held(files)
    sanitizer_clean()


lib.run_guarded(main)
