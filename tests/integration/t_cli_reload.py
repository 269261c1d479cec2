#!/usr/bin/python3
"""t_cli_reload: `mitral serve -c FILE --aet TITLE --port N` then SIGHUP. The command-line flags
override the file, on the reload too: the node keeps answering to the --aet title (not the
file's node.ae_title), does not warn about a port change nobody made, and the file's other
changes (here associations.allowed_calling_aes) take effect for new associations."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import check  # noqa: E402


def wait_log(node, text, deadline_s=30.0):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if text in node.log_text():
            return True
        time.sleep(0.05)
    return False


def write_conf(node, allowed):
    with open(node.conf_path, "w") as f:
        f.write(lib.yaml_from_dict({"node.ae_title": "FILEAE",
                                    "associations.allowed_calling_aes": allowed}))


def body():
    if not lib.IS_MITRAL:
        lib.skip("SIGHUP reload is mitral's")
    node = lib.Node("reload", aet="FLAGAE",
                    conf={"node.ae_title": "FILEAE",
                          "associations.allowed_calling_aes": ["ECHOSCU", "WS1"]}).start()
    r = lib.echoscu(node, aec="FLAGAE")
    check(r.returncode == 0, "before SIGHUP: the --aet title is served: " + r.stdout[-300:])

    write_conf(node, ["WS2"])
    node.proc.send_signal(signal.SIGHUP)
    check(wait_log(node, "SIGHUP: config reloaded"), "SIGHUP reloads the config file")

    r = lib.echoscu(node, aec="FLAGAE", aet="WS2")
    check(r.returncode == 0, "after SIGHUP: the --aet title is still served: " + r.stdout[-300:])
    r = lib.echoscu(node, aec="FILEAE", aet="WS2")
    check(r.returncode != 0 and "Called AE Title Not Recognized" in r.stdout,
          "after SIGHUP: the file's node.ae_title stays overridden by --aet: " + r.stdout[-300:])
    r = lib.echoscu(node, aec="FLAGAE", aet="ECHOSCU")
    check(r.returncode != 0 and "Calling AE Title Not Recognized" in r.stdout,
          "after SIGHUP: the new allowed_calling_aes is in force: " + r.stdout[-300:])
    check("bind/port changes need a restart" not in node.log_text(),
          "no warning about a port change: --port overrides the file on reload too")
    check(node.stop() == 0, "node exits 0 on SIGTERM")


lib.run_guarded(body)
