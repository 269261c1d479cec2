#!/usr/bin/python3
"""t_route_dest_down.py - a destination that is down for longer than forward.max_attempts
retries take (issue 6: "destination down for a while: everything arrives once it is back").

With the defaults (retry 1s doubling to 5m, 50 attempts) the attempts run out after ~4 hours,
long before forward.max_age (168h): an afternoon's outage of the central node must not
dead-letter the site's queue. Here the same at a smaller scale: retries 100-300 ms, 3
attempts, B down for ~5 s (about 20 association attempts). An association that cannot be
opened is no attempt at delivering an instance: the entries stay pending (their last error
says why), nothing is dead, and once B listens every instance arrives. Then a DICOMweb
(STOW-RS) destination that does not listen: its entries stay pending the same way.
forward.max_age still ends the wait (t_route_queue.py). Last, a destination that refuses the
association (A-ASSOCIATE-RJ: our calling AE title is not on its list): the entries stay
pending too, and their last error (what `mitral queue list` shows the admin) says who
refused and why, not just "no association".
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lib  # noqa: E402
import routefx  # noqa: E402

try:
    import pydicom  # noqa: E402, F401
except ImportError:
    lib.skip("pydicom not installed")
if not lib.IS_MITRAL:
    lib.skip("needs mitral")


def states(node):
    return node.query("SELECT state, attempts, last_error FROM forward_queue")


def main():
    work = lib.tmpdir("mt-down-")
    port = lib.free_port()
    a = routefx.site(port, {"forward.retry_initial": "100ms", "forward.retry_max": "300ms",
                            "forward.max_attempts": "3", "forward.connect_timeout": "1s"})
    files, sops = [], set()
    study = "1.2.826.0.1.3680043.8.498.77"
    for i in range(6):
        p = os.path.join(work, "%d.dcm" % i)
        sops.add(routefx.mr_file(p, i, study, study + ".1", "DOWNPID", "DOWN^PAT", 8))
        files.append(p)
    r = lib.storescu(a, files, aet="PACS")
    ok = sum(1 for _, s in lib.store_results(r.stdout) if s == "Success")
    lib.check(ok == len(files), "6 instances stored at A (%d)" % ok)
    # B stays down much longer than 3 attempts of 100-300 ms take
    lib.wait_for(lambda: a.all_logs().count("no association") >= 8,
                 "A tried to reach B several times", 60)
    time.sleep(2)
    rows = states(a)
    lib.check(len(rows) == 6 and all(r["state"] == 0 for r in rows),
              "B unreachable: the entries stay pending, none dead (%s)" %
              sorted({(r["state"], r["attempts"]) for r in rows}))
    lib.check(all("no association" in (r["last_error"] or "") for r in rows),
              "their last error says why: %s" % sorted({r["last_error"] for r in rows}))
    r = lib.run([lib.MITRAL, "queue", "list", "--data", a.data])
    lib.check(r.returncode == 0 and r.stdout.count(" pending ") == 6,
              "queue list shows 6 pending entries: %s" % r.stdout[-400:])
    b = lib.Node("central", aet="CENTRAL", port=port).start()
    lib.wait_for(lambda: routefx.queue_len(a) == 0, "A's queue drains once B is back", 120)
    at_b = {x["sop_instance_uid"] for x in b.query("SELECT sop_instance_uid FROM instances")}
    lib.check(at_b == sops, "every instance arrived at B (%d of %d)" % (len(at_b), len(sops)))
    a.stop()
    b.stop()

    # a STOW-RS destination that does not listen: the same
    wport = lib.free_port()
    w = lib.Node("website", aet="WSITE",
                 conf={"forward.retry_initial": "100ms", "forward.retry_max": "300ms",
                       "forward.max_attempts": "3", "forward.connect_timeout": "1s"},
                 yaml_extra="destinations:\n  - name: web\n    stow_url: "
                            "http://127.0.0.1:%d/dicomweb/studies\n" % wport)
    rules = os.path.join(w.dir, "rules.yaml")
    with open(rules, "w") as f:
        f.write("rules:\n  - name: all\n    forward: [web]\n")
    w.conf["routing.rules"] = rules
    w.start()
    r = lib.storescu(w, files[:2], aet="PACS")
    lib.check(sum(1 for _, s in lib.store_results(r.stdout) if s == "Success") == 2,
              "2 instances stored at the web site")
    lib.wait_for(lambda: w.all_logs().count("forward to web") >= 8,
                 "the web site tried its destination several times", 60)
    time.sleep(1)
    rows = states(w)
    lib.check(len(rows) == 2 and all(r["state"] == 0 for r in rows),
              "STOW-RS destination unreachable: pending, none dead (%s)" %
              sorted({(r["state"], r["attempts"], r["last_error"]) for r in rows}))
    w.stop()

    # a destination that rejects the association
    b = lib.Node("central", aet="CENTRAL",
                 conf={"associations.allowed_calling_aes": "[OTHER]"}).start()
    a = routefx.site(b.port, {"forward.retry_initial": "100ms", "forward.retry_max": "300ms",
                              "forward.max_attempts": "3"})
    r = lib.storescu(a, files[:1], aet="PACS")
    lib.wait_for(lambda: a.all_logs().count("rejected") >= 4, "B rejected A several times", 60)
    time.sleep(1)
    rows = states(a)
    lib.check(len(rows) == 1 and rows[0]["state"] == 0, "rejected association: pending (%s)"
              % rows)
    err = rows[0]["last_error"] if rows else ""
    lib.check("rejected" in (err or "") and "calling AE title not recognised" in (err or ""),
              "the last error says the destination rejected our calling AE title: %s" % err)
    a.stop()
    b.stop()


lib.run_guarded(main)
