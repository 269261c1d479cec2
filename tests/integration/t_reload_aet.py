#!/usr/bin/python3
"""t_reload_aet.py - SIGHUP keeps what the command line set.

`mitral serve -c FILE --aet SITE`: the AE title given on the command line overrides the
file's node.ae_title. A SIGHUP (to reload routing rules, say) reloaded the file and the node
answered to the file's AE title from then on, rejecting every association of the PACS that
calls SITE ("called AE title not recognised"). The command line's --aet is kept across
reloads (as --port, --bind and --data are); without --aet the file's node.ae_title applies.
"""
import os
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lib  # noqa: E402

if not lib.IS_MITRAL:
    lib.skip("needs mitral")


def main():
    a = lib.Node("site", aet="SITE", conf={"log.level": "info"}).start()
    r = lib.echoscu(a)
    lib.check(r.returncode == 0, "C-ECHO to SITE before the SIGHUP")
    os.kill(a.pid, signal.SIGHUP)
    lib.wait_for(lambda: "SIGHUP: config reloaded" in a.log_text(), "the SIGHUP is handled", 30)
    r = lib.echoscu(a)
    lib.check(r.returncode == 0, "C-ECHO to SITE after the SIGHUP (--aet kept): %s"
              % (r.stdout + r.stderr)[-300:])
    lib.check("need a restart" not in a.log_text(),
              "no warning that --port/--bind differ from the file")
    a.stop()


lib.run_guarded(main)
