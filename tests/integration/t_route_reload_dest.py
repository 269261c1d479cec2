#!/usr/bin/python3
"""t_route_reload_dest.py - SIGHUP with a new destination and a rule forwarding to it.

The forwarder keeps the destinations it started with (a destinations change needs a
restart, and the log says so). A reloaded rule naming a destination added since start must
therefore be refused at reload, like any unknown destination (the rules in force stay):
before, the rule loaded, its instances were queued for a destination nobody sends to, and
those entries stayed pending forever. The node's own destinations keep working after the
refused reload, and a restart picks the new destination up.
"""
import os
import signal
import sys

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

DEST = "  - name: %s\n    ae_title: %s\n    host: 127.0.0.1\n    port: %d\n"


def main():
    work = lib.tmpdir("mt-hupdest-")
    b = lib.Node("central", aet="CENTRAL").start()
    c = lib.Node("second", aet="SECOND").start()
    a = lib.Node("site", aet="SITE", yaml_extra="destinations:\n" + DEST % ("central", "CENTRAL", b.port))
    rules = os.path.join(a.dir, "rules.yaml")
    with open(rules, "w") as f:
        f.write("rules:\n  - name: all\n    forward: [central]\n")
    a.conf["routing.rules"] = rules
    a.start()
    files = []
    study = "1.2.826.0.1.3680043.8.498.79"
    for i in range(3):
        p = os.path.join(work, "%d.dcm" % i)
        routefx.mr_file(p, i, study, study + ".1", "HUPPID", "HUP^PAT", 8)
        files.append(p)
    r = lib.storescu(a, files[:1], aet="PACS")
    lib.wait_for(lambda: routefx.queue_len(a) == 0, "the first instance reaches central", 60)

    # the admin adds a destination and a rule forwarding to it, then SIGHUP
    a.yaml_extra = "destinations:\n" + DEST % ("central", "CENTRAL", b.port) + \
        DEST % ("second", "SECOND", c.port)
    a.cmdline()  # rewrites the config file
    with open(rules, "w") as f:
        f.write("rules:\n  - name: all\n    forward: [central, second]\n")
    os.kill(a.pid, signal.SIGHUP)
    lib.wait_for(lambda: "SIGHUP: config" in a.log_text(), "the SIGHUP is handled", 30)
    log = a.log_text()
    lib.check("destinations changes need a restart" in log, "the log says destinations need a "
              "restart")
    lib.check("config not reloaded" in log and "second" in log,
              "the rule naming the new destination is refused at reload: %s"
              % [x for x in log.splitlines() if "SIGHUP" in x])
    r = lib.storescu(a, files[1:2], aet="PACS")
    lib.check(sum(1 for _, s in lib.store_results(r.stdout) if s == "Success") == 1,
              "an instance stored after the SIGHUP")
    lib.wait_for(lambda: routefx.queue_len(a) == 0,
                 "nothing left queued for a destination the forwarder does not have", 30)
    lib.check(len(b.stored_paths()) == 2, "central got both instances (%d)" % len(b.stored_paths()))
    # a restart takes the new destination and rule
    a.stop()
    a.start()
    r = lib.storescu(a, files[2:], aet="PACS")
    lib.wait_for(lambda: routefx.queue_len(a) == 0, "after a restart both destinations drain", 60)
    lib.check(len(c.stored_paths()) == 1, "second got the instance stored after the restart")
    for n in (a, b, c):
        n.stop()


lib.run_guarded(main)
