#!/usr/bin/python3
"""t_cli: the command line. --version, --help, serve --help, unknown commands; `mitral dump`;
`mitral index stats` and `mitral index rebuild` (delete the index, rebuild it from the files:
same counts, same rows); a config file that sets the port and data dir; bad config files stop
`serve` with a non-zero exit and a "file:line: ..." message."""
import os
import re

import pydicom

import gen_mr
import lib


def body():
    if not lib.IS_MITRAL:
        lib.skip("the command line is mitral's (MT_TARGET=%s)" % lib.TARGET)
    M = lib.MITRAL
    r = lib.run([M, "--version"])
    lib.check(r.returncode == 0 and re.match(r"mitral \d+\.\d+\.\d+", r.stdout),
              "--version: exit %s, %r" % (r.returncode, r.stdout))
    lib.check("1.2.826.0.1.3680043.10.1532.1" in r.stdout, "--version lacks the implementation class UID")
    r = lib.run([M, "--help"])
    lib.check(r.returncode == 0 and all(w in r.stdout for w in ("serve", "dump", "index stats", "index rebuild")),
              "--help: exit %s, %r" % (r.returncode, r.stdout[:300]))
    r = lib.run([M, "serve", "--help"])
    lib.check(r.returncode == 0 and "--port" in r.stdout and "--data" in r.stdout, "serve --help: %r" % r.stdout[:300])
    r = lib.run([M, "index", "--help"])
    lib.check(r.returncode == 0 and "rebuild" in r.stdout, "index --help: %r" % r.stdout[:300])
    r = lib.run([M, "frobnicate"])
    lib.check(r.returncode != 0 and "unknown command" in r.stderr, "unknown command: exit %s %r" % (r.returncode, r.stderr))
    r = lib.run([M])
    lib.check(r.returncode != 0 and "usage" in r.stderr, "no command: exit %s" % r.returncode)
    r = lib.run([M, "serve", "--port", "99999"])
    lib.check(r.returncode != 0 and "port" in r.stderr, "--port 99999: exit %s %r" % (r.returncode, r.stderr))
    r = lib.run([M, "serve", "--aet", "A" * 17])
    lib.check(r.returncode != 0 and "AE title" in r.stderr, "--aet too long: exit %s %r" % (r.returncode, r.stderr))

    # -- store some instances, then dump / stats / rebuild --
    src = lib.tmpdir("mt-cli-src-")
    files = gen_mr.generate(src, count=12, series=3, phases=4, seed="t_cli")
    node = lib.Node("cli").start()
    r = lib.storescu(node, files, extra=["-R"])
    lib.check([s for _, s in lib.store_results(r.stdout)] == ["Success"] * 12, "storescu:\n" + r.stdout[-2000:])
    lib.check(node.stop() == 0, "exit code after SIGTERM")

    stored = node.stored_paths()
    lib.check(len(stored) == 12, "%d files stored" % len(stored))
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    target = node.stored_by_sop().get(ds.SOPInstanceUID)
    r = lib.run([M, "dump", target])
    lib.check(r.returncode == 0, "dump: exit %s %r" % (r.returncode, r.stderr))
    for want in (ds.SOPInstanceUID, ds.StudyInstanceUID, "(0010,0020)", "MT-0001", "(7FE0,0010)",
                 "1.2.840.10008.1.2.1", "1.2.826.0.1.3680043.10.1532.1"):
        lib.check(want.lower() in r.stdout.lower(), "dump output lacks %r" % want)
    r = lib.run([M, "dump", target, files[1]])
    lib.check(r.returncode == 0 and r.stdout.count("# Dataset") == 2, "dump of two files")
    notdicom = os.path.join(src, "not.dcm")
    with open(notdicom, "wb") as f:
        f.write(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff")  # meta element past the end
    r = lib.run([M, "dump", notdicom])
    lib.check(r.returncode != 0 and r.stderr.strip(), "dump of a broken file: exit %s %r" % (r.returncode, r.stderr))
    lib.check("offset" in r.stderr, "dump error names no offset: %r" % r.stderr)
    empty = os.path.join(src, "empty.dcm")
    open(empty, "wb").close()
    r = lib.run([M, "dump", empty])
    lib.check(r.returncode == 1 and "empty file" in r.stderr,
              "dump of an empty file is an error: exit %s %r" % (r.returncode, r.stderr))
    r = lib.run([M, "dump", os.path.join(src, "absent.dcm")])
    lib.check(r.returncode != 0, "dump of a missing file: exit 0")

    st = node.stats()
    want = {"patients": 1, "studies": 1, "series": 3, "instances": 12,
            "bytes": sum(os.path.getsize(p) for p in stored)}
    lib.check(st == want, "index stats %r, want %r" % (st, want))
    before = sorted((r["sop_instance_uid"], r["path"], r["size"], r["series_instance_uid"], r["patient_id"])
                    for r in node.index_instances().values())
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(node.index + suffix):
            os.unlink(node.index + suffix)
    r = lib.run([M, "index", "rebuild", "--data", node.data])
    lib.check(r.returncode == 0, "index rebuild: exit %s %r" % (r.returncode, r.stderr))
    lib.check(lib.parse_stats(r.stdout) == want, "rebuild printed %r, want %r" % (r.stdout, want))
    lib.check(node.stats() == want, "stats after rebuild %r" % node.stats())
    after = sorted((r["sop_instance_uid"], r["path"], r["size"], r["series_instance_uid"], r["patient_id"])
                   for r in node.index_instances().values())
    lib.check(before == after, "rows differ after rebuild")
    # rebuild over an existing index: same again
    r = lib.run([M, "index", "rebuild", "--data", node.data])
    lib.check(r.returncode == 0 and lib.parse_stats(r.stdout) == want, "second rebuild %r %r" % (r.stdout, r.stderr))
    # the node serves from the rebuilt index
    node.start()
    lib.check(lib.echoscu(node).returncode == 0, "echo after rebuild")
    lib.check(node.stop() == 0, "exit code after SIGTERM")

    # -- config files --
    d = lib.tmpdir("mt-cli-conf-")
    port = lib.free_port()
    good = os.path.join(d, "good.yaml")
    with open(good, "w") as f:
        f.write("node:\n  ae_title: CLI_NODE\n  bind: 127.0.0.1\n  port: %d\n  data_dir: %s\n"
                "log:\n  level: debug\n" % (port, os.path.join(d, "data")))
    conf_node = lib.Node("conf", aet="CLI_NODE", port=port, data=d)
    conf_node.cmdline = lambda: [M, "serve", "-c", good]
    conf_node.start()
    lib.check(lib.echoscu(conf_node, aec="CLI_NODE").returncode == 0, "node from a config file: echo")
    lib.check(conf_node.stop() == 0, "exit code after SIGTERM")
    lib.check(os.path.isdir(os.path.join(d, "data", "storage")) and os.path.exists(os.path.join(d, "data", "index.sqlite")),
              "data_dir from the config file not used")
    r = lib.run([M, "index", "stats", "-c", good])
    lib.check(r.returncode == 0 and lib.parse_stats(r.stdout).get("instances") == 0, "index stats -c: %r %r" % (r.stdout, r.stderr))

    bad_cases = [
        ("unknown key", "node:\n  ae_title: X\n  colour: blue\n", 3),
        ("bad port", "node:\n  port: 99999\n", 2),
        ("bad enum", "storage:\n  duplicates: sometimes\n", 2),
        ("bad duration", "associations:\n  idle_timeout: soon\n", 2),
        ("AE too long", "node:\n  ae_title: ABCDEFGHIJKLMNOPQ\n", 2),
        ("not a mapping", "node: [1, 2\n", 1),
    ]
    for name, text, line in bad_cases:
        p = os.path.join(d, "bad.yaml")
        with open(p, "w") as f:
            f.write(text)
        r = lib.run([M, "serve", "-c", p, "--port", str(lib.free_port())], timeout=60)
        msg = r.stderr.strip()
        lib.check(r.returncode not in (0, None, -9), "%s: serve exit %s" % (name, r.returncode))
        m = re.search(re.escape(p) + r":(\d+):", msg)
        lib.check(m is not None, "%s: message is not 'file:line: ...': %r" % (name, msg))
        if m and name != "not a mapping":
            lib.check(int(m.group(1)) == line, "%s: line %s, want %d (%r)" % (name, m.group(1), line, msg))
    r = lib.run([M, "serve", "-c", os.path.join(d, "absent.yaml")], timeout=60)
    lib.check(r.returncode != 0 and "absent.yaml" in r.stderr, "missing config file: exit %s %r" % (r.returncode, r.stderr))


lib.run_guarded(body)
