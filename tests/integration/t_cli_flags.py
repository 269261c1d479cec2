#!/usr/bin/python3
"""t_cli_flags: `mitral serve` flags get the checks the same values get in the config file:
an --aet that is all spaces or holds a control character, and a --bind that is not an address
literal, stop serve with exit 2 and a message before anything is created (no data directory,
no index), as node.ae_title / node.bind in a file do. A good --aet with surrounding spaces is
trimmed (PS3.5: leading and trailing spaces are not significant), as in the file. An --aet that
is a project's AE title is refused, as node.ae_title is in the file.
--help after a subcommand's own word (`mitral queue list --help`, ...) prints that command's
usage on stdout and exits 0, for every command that has subcommands."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import check  # noqa: E402


def refused(args, what, needle):
    d = os.path.join(lib.tmpdir("mt-flags-"), "data")
    r = lib.run([lib.MITRAL, "serve", "--data", d, "--port", str(lib.free_port())] + args,
                timeout=30)
    check(r.returncode == 2, "%s: serve exits 2 (rc=%s) %s" % (what, r.returncode, r.stderr[-200:]))
    check(needle in r.stderr, "%s: the message says why: %r" % (what, r.stderr[-300:]))
    check(not os.path.exists(d), "%s: nothing is created" % what)


def body():
    if not lib.IS_MITRAL:
        lib.skip("mitral's CLI")
    for words in (["index", "stats"], ["index", "rebuild"], ["queue", "list"], ["queue", "retry"],
                  ["queue", "purge"], ["project", "list"], ["quarantine", "list"],
                  ["route", "test"], ["report", "protocols"], ["serve"], ["dump"]):
        r = lib.run([lib.MITRAL] + words + ["--help"], timeout=30)
        check(r.returncode == 0 and r.stdout.startswith("usage: mitral " + words[0]),
              "mitral %s --help: exit 0 and the usage on stdout (rc=%s, stdout %r, stderr %r)"
              % (" ".join(words), r.returncode, r.stdout[:80], r.stderr[-120:]))
    refused(["--aet", "    "], "--aet all spaces", "is not an AE title")
    refused(["--aet", "A\tB"], "--aet with a tab", "is not an AE title")
    refused(["--aet", "A" * 17], "--aet of 17 characters", "is not an AE title")
    refused(["--bind", "notanip"], "--bind not an address", "is not an IPv4 or IPv6 address")
    conf = os.path.join(lib.tmpdir("mt-flags-"), "mitral.yaml")
    with open(conf, "w") as f:
        f.write("projects:\n  - name: reg\n    ae_title: CMR_REG\n")
    refused(["-c", conf, "--aet", "CMR_REG"], "--aet equal to a project's AE title",
            "is the AE title of project reg")

    node = lib.Node("flags", aet=" SPACED ").start()
    check("ae=SPACED " in node.log_text(), "--aet ' SPACED ' is trimmed: " + node.log_text()[-300:])
    r = lib.echoscu(node, aec="SPACED")
    check(r.returncode == 0, "the trimmed title is served: " + r.stdout[-300:])
    check(node.stop() == 0, "node exits 0")


lib.run_guarded(body)
