#!/usr/bin/python3
"""t_route_window.py - forwarding with an asynchronous operations window (PS3.7 D.3.3.3).

1. Against mitral (node B, associations.max_async_operations 16): node A proposes
   forward.max_async_operations 16; B's log shows the window accepted; A's own DIMSE log
   shows more than one C-STORE outstanding at a time and never more than 16; every instance
   arrives once.
2. Against a scripted SCP that accepts a window of 4, holds its responses until 4 are
   outstanding and then answers them newest first: A never has more than 4 outstanding, fills
   the window, matches the out-of-order responses by Message ID, and the queue drains with
   every instance acknowledged exactly once.
3. Against dcmtk's storescp (no window item in its A-ASSOCIATE-AC): one C-STORE at a time,
   every file arrives.
4. A backlog of 3 series with forward.associations 3: three associations at once.
5. forward.max_async_operations 1: no window item is proposed at all.
"""
import os
import re
import subprocess
import sys

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

N = 48


def make_files(work, n, series=3):
    files, sops = [], []
    study = generate_uid()
    series_uids = [generate_uid() for _ in range(series)]
    for i in range(n):
        p = os.path.join(work, "w%03d.dcm" % i)
        sops.append(routefx.mr_file(p, i, study, series_uids[i % series], "WINDOW1",
                                    "Window^Test", 64))
        files.append(p)
    return files, sops


def site(port, extra=None, assoc=1):
    conf = {"forward.retry_initial": "50ms", "forward.retry_max": "200ms",
            "forward.connect_timeout": "5s", "log.level": "debug"}
    conf.update(extra or {})
    return routefx.site(port, conf, assoc)


queue_len = routefx.queue_len


def outstanding(log):
    """Most C-STOREs sent and not yet answered at one time, from A's debug log (the
    forwarder's associations only: A opens no other ones here), per association id."""
    best, cur = 0, {}
    for line in log.splitlines():
        m = re.search(r"assoc=(\d+)", line)
        key = m.group(1) if m else "?"
        if re.search(r"send C-STORE-RQ msgid=", line):
            cur[key] = cur.get(key, 0) + 1
            best = max(best, cur[key])
        elif re.search(r"recv C-STORE-RSP msgid=", line):
            cur[key] = cur.get(key, 0) - 1
    return best


def store_into(a, files):
    r = lib.storescu(a, files, aet="PACS")
    ok = sum(1 for _, s in lib.store_results(r.stdout) if s == "Success")
    lib.check(ok == len(files), "%d instances stored at A (%d)" % (len(files), ok))


def against_mitral(files, sops):
    b = lib.Node("central", aet="CENTRAL", conf={"storage.duplicates": "reject"}).start()
    a = site(b.port, assoc=1)
    store_into(a, files)
    lib.wait_for(lambda: queue_len(a) == 0, "A's queue drains into B", 120)
    at_b = {r["sop_instance_uid"] for r in b.query("SELECT sop_instance_uid FROM instances")}
    lib.check(at_b == set(sops), "B holds every instance (%d of %d)" % (len(at_b), len(sops)))
    lib.check("async=16/1" in b.log_text(), "B accepted the proposed window of 16")
    a.stop()
    b.stop()
    most = outstanding(a.log_text())
    lib.log("most C-STOREs outstanding on one association (mitral B): %d" % most)
    lib.check(1 < most <= 16, "several C-STOREs outstanding, never more than 16 (%d)" % most)
    lib.check("status 0x0111" not in a.log_text(), "nothing was sent to B twice")


def against_scripted(files, sops):
    port = lib.free_port()

    def policy(scp, sop, n):
        return "flush" if n >= 4 else "hold"

    scp = dul_scp.Scp(port, window=4, policy=policy, idle=0.3)
    a = site(port, assoc=1)
    store_into(a, files)
    lib.wait_for(lambda: queue_len(a) == 0, "A's queue drains into the scripted SCP", 120)
    a.stop()
    scp.stop()
    lib.check(scp.rq_window == (16, 1), "A proposed invoked 16, performed 1 (%s)" %
              (scp.rq_window,))
    lib.check(scp.max_outstanding == 4, "A filled the window of 4 and never exceeded it (%d)"
              % scp.max_outstanding)
    lib.check(sorted(scp.acked) == sorted(sops),
              "every instance acknowledged exactly once (%d acks, %d distinct, %d instances)"
              % (len(scp.acked), len(set(scp.acked)), len(sops)))
    lib.check(outstanding(a.log_text()) <= 4, "A's log agrees: at most 4 outstanding")


def against_storescp(files, sops):
    port = lib.free_port()
    out = lib.tmpdir("mt-route-storescp-")
    log = open(os.path.join(out, "storescp.log"), "wb")
    p = subprocess.Popen(["storescp", "-aet", "CENTRAL", "-od", out, "-fe", ".dcm", str(port)],
                         stdout=log, stderr=subprocess.STDOUT, env=lib.PEER_ENV)
    log.close()
    try:
        lib.wait_for(lambda: lib.port_listening(port), "storescp listens", proc=p)
        a = site(port, assoc=1)
        store_into(a, files)
        lib.wait_for(lambda: queue_len(a) == 0, "A's queue drains into storescp", 120)
        a.stop()
    finally:
        p.terminate()
        p.wait(30)
    got = set()
    for f in os.listdir(out):
        if f.endswith(".dcm"):
            m = lib.read_meta(os.path.join(out, f))
            if m:
                got.add(m["sop_instance_uid"])
    lib.check(got == set(sops), "storescp received every instance (%d of %d)" %
              (len(got), len(sops)))
    most = outstanding(a.log_text())
    lib.check(most == 1, "no window with storescp: one C-STORE at a time (%d)" % most)


def concurrent(log):
    """Most associations open at once in B's log."""
    best = cur = 0
    for line in log.splitlines():
        if "association accepted:" in line:
            cur += 1
            best = max(best, cur)
        elif "association released" in line or "association aborted" in line:
            cur -= 1
    return best


def spread(files, sops):
    """A backlog of 3 series, forward.associations 3: three associations at once, one series
    each, and every instance arrives once."""
    b = lib.Node("central", aet="CENTRAL", conf={"storage.duplicates": "reject"})
    b.port = lib.free_port()
    a = site(b.port, assoc=3)
    store_into(a, files)  # B is down: the backlog builds up
    b.start()
    lib.wait_for(lambda: queue_len(a) == 0, "A's backlog drains into B", 120)
    at_b = {r["sop_instance_uid"] for r in b.query("SELECT sop_instance_uid FROM instances")}
    a.stop()
    b.stop()
    lib.check(at_b == set(sops), "B holds every instance (%d of %d)" % (len(at_b), len(sops)))
    most = concurrent(b.log_text())
    lib.log("most associations open at once at B: %d" % most)
    lib.check(most == 3, "3 series went over 3 associations at once (%d)" % most)


def window_off(files, sops):
    port = lib.free_port()
    scp = dul_scp.Scp(port, window=8)
    a = site(port, extra={"forward.max_async_operations": "1"})
    store_into(a, files[:6])
    lib.wait_for(lambda: queue_len(a) == 0, "A's queue drains (window off)", 120)
    a.stop()
    scp.stop()
    lib.check(scp.rq_window is None, "max_async_operations 1: no window item proposed (%s)"
              % (scp.rq_window,))
    lib.check(sorted(scp.acked) == sorted(sops[:6]), "the 6 instances acknowledged once")


def sanitizer_clean():
    """No node of this test reported an ASan/UBSan error (sanitizer builds)."""
    for n in lib._nodes:
        text = n.all_logs()
        lib.check("Sanitizer:" not in text and "runtime error:" not in text,
                  "%s: no sanitizer report in its log" % n.name)


def main():
    work = lib.tmpdir("mt-route-win-")
    files, sops = make_files(work, N)
    against_mitral(files, sops)
    against_scripted(files, sops)
    spread(files, sops)
    against_storescp(files, sops)
    window_off(files, sops)
    sanitizer_clean()


lib.run_guarded(main)
