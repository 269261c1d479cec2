#!/usr/bin/python3
"""t_store_crash.py - the ingest's crash recovery (docs/internals/durability.md) with a real
node killed mid-transfer.

storescu sends a few hundred cine MR instances (several series, so both the slow path that
marks a new series directory and the one-flush path run) over one association; the node gets
SIGKILL once a given number of files exist in storage; the restarted node reconciles. Then:
  - no temp file is left; every stored file has a verified row of the same path and size, and
    every row its file;
  - every instance storescu got a Success response for is stored and indexed;
  - `mitral index rebuild` (node stopped) gives the same statistics;
  - sending everything again stores everything.
Repeated at three kill points. SIGKILL keeps the page cache (a power cut would not), so this
checks the recovery logic; the flush ordering is argued in the design note and exercised by
the unit tests' simulated crash states (tests/unit/node/store/ingest.c)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_mr  # noqa: E402
import lib  # noqa: E402


def n_stored(node):
    n = 0
    for root, dirs, files in os.walk(node.storage):
        if os.path.abspath(root) == os.path.abspath(node.storage):
            dirs[:] = [d for d in dirs if d != ".tmp"]
        n += sum(1 for f in files if f.endswith(".dcm"))
    return n


def consistent(node, what):
    """Files and rows agree exactly; returns the set of indexed SOP Instance UIDs."""
    lib.check(node.tmp_files() == [], "%s: temp files left: %s" % (what, node.tmp_files()[:5]))
    rows = node.index_instances()
    files = {}
    for p in node.stored_paths():
        if not p.endswith(".dcm"):
            continue
        files[os.path.relpath(p, node.storage)] = os.path.getsize(p)
    by_path = {r["path"]: r for r in rows.values()}
    for rel, size in files.items():
        r = by_path.get(rel)
        if lib.check(r is not None, "%s: file without a row: %s" % (what, rel)):
            lib.check(r["size"] == size, "%s: %s: row size %s, file %s" % (what, rel, r["size"], size))
    for rel, r in by_path.items():
        lib.check(rel in files, "%s: row without a file: %s" % (what, rel))
        lib.check(r["verified"] == 1, "%s: row not verified after start-up: %s" % (what, rel))
    return set(rows)


def body():
    src = lib.tmpdir("mt-crash-src-")
    files = gen_mr.generate(src, count=240, series=8, phases=30, seed="crash")
    sop_of = {p: lib.read_meta(p)["sop_instance_uid"] for p in files}
    for kill_at in (5, 60, 170):
        node = lib.Node(name="crash%d" % kill_at)
        node.start()
        logpath = os.path.join(node.dir, "storescu.log")
        p = lib.storescu_popen(node, files, logpath)
        lib.wait_for(lambda: n_stored(node) >= kill_at or p.poll() is not None,
                     "%d files stored" % kill_at, deadline_s=240)
        node.kill9()
        p.wait()
        with open(logpath, "rb") as f:
            results = lib.store_results(f.read().decode("utf-8", "replace"))
        acked = {sop_of[f] for f, rsp in results if rsp and rsp.startswith("Success")}
        lib.log("kill at %d: %d files on disk, %d acknowledged" % (
            kill_at, n_stored(node), len(acked)))

        node.start()  # reconciliation runs before the node listens
        indexed = consistent(node, "kill at %d" % kill_at)
        missing = acked - indexed
        lib.check(not missing, "kill at %d: %d acknowledged instances lost, e.g. %s" % (
            kill_at, len(missing), sorted(missing)[:3]))
        lib.check(node.stop() == 0, "kill at %d: exit code after SIGTERM" % kill_at)

        before = node.stats()
        r = node.cli("index", "rebuild", "--data", node.data)
        lib.check(r.returncode == 0, "rebuild exit %s: %s" % (r.returncode, r.stderr[-500:]))
        lib.check(lib.parse_stats(r.stdout) == before, "kill at %d: rebuild %s != %s" % (
            kill_at, lib.parse_stats(r.stdout), before))

        node.start()
        r = lib.storescu(node, files)
        ok = [f for f, rsp in lib.store_results(r.stdout) if rsp and rsp.startswith("Success")]
        lib.check(len(ok) == len(files), "kill at %d: resend: %d of %d succeeded" % (
            kill_at, len(ok), len(files)))
        lib.check(node.stop() == 0, "kill at %d: exit code after the resend" % kill_at)
        lib.check(consistent(node, "kill at %d, resent" % kill_at) == set(sop_of.values()),
                  "kill at %d: not every instance indexed after the resend" % kill_at)
        lib.check(node.stats().get("instances") == len(files), "kill at %d: stats" % kill_at)


lib.run_guarded(body)
