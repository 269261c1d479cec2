#!/usr/bin/python3
"""t_route_orphans: queue entries for a destination that the config no longer names.

A site node forwards to `central`, which is down, so its entries stay queued. The admin then
renames the destination to `core` (or removes it) and restarts the node: the forwarder scans
only the destinations it has, so the old entries would wait for ever without a word. The node
now warns at start-up, naming the destination, its pending and dead counts and the command
that clears them; once they are purged (`mitral queue purge --dest central --all`), a restart
says nothing more. Entries of a destination still configured are not reported."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import check  # noqa: E402

try:
    import pydicom  # noqa: F401,E402
    from pydicom.uid import generate_uid  # noqa: E402
except ImportError:
    lib.skip("pydicom not installed")
if not lib.IS_MITRAL:
    lib.skip("needs mitral")
import routefx  # noqa: E402

WARNING = "for destination 'central', which the config does not name"


def renamed(a, name):
    a.yaml_extra = a.yaml_extra.replace("name: central", "name: %s" % name)  # written at start
    with open(a.conf["routing.rules"], "w") as f:
        f.write("rules:\n  - name: all\n    forward: [%s]\n" % name)


def body():
    work = lib.tmpdir("mt-orphans-")
    study, series = generate_uid(), generate_uid()
    files = [os.path.join(work, "%d.dcm" % i) for i in range(3)]
    for i, p in enumerate(files):
        routefx.mr_file(p, i, study, series, "ORPH1", "Orphan^Queue", 4)
    a = routefx.site(lib.free_port(), {"forward.connect_timeout": "1s"})  # nobody listens
    r = lib.storescu(a, files)
    check(sum(1 for _, s in lib.store_results(r.stdout) if s == "Success") == 3,
          "3 instances stored at A")
    check(routefx.queue_len(a) == 3, "3 entries queued for central")
    check(WARNING not in a.log_text(), "no warning while central is configured")
    check(a.stop() == 0, "A stops")

    renamed(a, "core")
    a.start()
    log = a.log_text()
    check(WARNING in log and "3 pending and 0 dead entries" in log,
          "start-up warns of central's 3 entries: " + log[-600:])
    check("mitral queue purge --dest central --all" in log, "the warning names the command")
    check(a.stop() == 0, "A stops")

    r = lib.run([lib.MITRAL, "queue", "purge", "--dest", "central", "--all", "--data", a.data])
    check(r.returncode == 0 and "purged 3 entries" in r.stdout, "purge: %s" % r.stdout)
    a.start()
    check(WARNING not in a.log_text(), "after the purge, no warning: " + a.log_text()[-400:])
    check(a.stop() == 0, "A stops")


lib.run_guarded(body)
