#!/usr/bin/python3
"""
bench/tagging/icount.py - the node's whole-process instruction count with tagging on vs off.

    bench/tagging/icount.py [--studies 1] [--matrix 16] [--reps 1] [--mitral build/mitral]
                            [--baseline OTHER_BUILD/mitral] [--keep DIR] [--functions 25]

The measure of issue 5's "tagging adds < 2% to end-to-end ingest time" that the machine's load
does not move: `mitral serve` runs under `valgrind --tool=callgrind --separate-threads=yes`
and receives the same generated files (one storescu association) three times per build: with
no files (the node's start and stop alone), with tagging off and with tagging on (series_idle
200ms, study_idle 1s, as bench/tagging/ingest.py). Per run it reads the instructions (Ir)
executed by every thread of the node, and the number of system calls valgrind saw them make.
The same binary over the same files executes nearly the same instructions whatever else the
machine does; what still moves them is timing (how many event-loop turns, timer ticks, busy
waits and batches a run takes; under valgrind the node is ~30-50x slower, so these differ from
a native run): --reps N repeats every run to show that spread.

It prints, per build: instructions per instance with tagging off (the node's start and stop
subtracted), the instructions tagging adds per instance and as % of the tagging-off node, and
the same split by thread (loop, pool, commit...: where the extra cost lands), and (--functions
N) the N functions whose inclusive cost differs most between the on and the off run of one rep,
from callgrind_annotate.

What it cannot show: the kernel's time (valgrind counts user-space instructions; the system
calls are counted, not timed), cache misses and waiting (an instruction count is not time), and
it runs the node at valgrind's speed, where timers fire relatively more often. It says how much
work tagging adds to the node; bench/tagging/ingest.py says how long it takes on this machine.
"""
import argparse
import collections
import glob
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
import lib  # noqa: E402

sys.path.insert(0, HERE)
import ingest  # noqa: E402  (bench/tagging/ingest.py: the fixtures, n_tagged)

SETTLE_S = 3.0  # after the send (and the tags): the study passes (study_idle 1s) at valgrind speed


class GrindNode(lib.Node):
    """A node run under callgrind, one output file per thread in out_dir."""

    def __init__(self, out_dir, binary, **kw):
        super().__init__(**kw)
        self.out_dir = out_dir
        self.binary = binary

    def cmdline(self):
        cmd = super().cmdline()
        cmd[0] = self.binary
        return ["valgrind", "--tool=callgrind", "--separate-threads=yes",
                "--collect-systime=usec", "--dump-instr=no",
                "--callgrind-out-file=%s/cg.out" % self.out_dir] + cmd


def read_totals(path):
    """{event: count} of one callgrind output file (its 'events:' and 'summary:'/'totals:')."""
    events, total = None, None
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith(("summary:", "totals:")):
                total = [int(x) for x in line.split()[1:]]
    return dict(zip(events or [], total or []))


def thread_role(path):
    """The thread of one per-thread output (cg.out-NN): 01 is the main thread (the event loop),
    the one that ran commit_thread the ingest's commit thread; the rest are the libuv pool."""
    if path.endswith("-01"):
        return "loop"
    with open(path, errors="replace") as f:
        return "commit" if "commit_thread" in f.read() else "pool"


def fn_inclusive(path, names):
    """{name: inclusive Ir} of the named functions in one per-thread output."""
    r = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--show=Ir", "--threshold=100",
                        path], capture_output=True, text=True, errors="replace")
    out = collections.Counter()
    for line in r.stdout.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+\*?\s*(\S.*?)(?: \[.*\])?$", line)
        if m:
            fn = m.group(2).split(":", 1)[-1]
            if fn in names:
                out[fn] = max(out[fn], int(m.group(1).replace(",", "")))
    return out


def run_one(binary, files, n_series, tagging, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    conf = {"tagging.enabled": "true" if tagging else "false",
            "tagging.series_idle": "200ms", "tagging.study_idle": "1s", "log.level": "info"}
    node = GrindNode(out_dir, binary, name="cg-%s" % ("on" if tagging else "off"), conf=conf)
    node.start()
    if files:
        r = lib.storescu(node, files, timeout=3600)
        ok = r.stdout.count("Received Store Response (Success)")
        lib.check(ok == len(files), "%s: stored %d of %d" % (node.name, ok, len(files)))
        if tagging:
            lib.wait_for(lambda: ingest.n_tagged(node) >= n_series, "every series tagged",
                         deadline_s=600, interval=0.2)
    time.sleep(SETTLE_S)
    tags = None
    if tagging and files:
        tags = sorted(tuple(r.values()) for r in node.query(
            "SELECT series_uid, tag, view, confidence, evidence FROM series_tags"))
    node.stop(deadline_s=300)
    per_thread, sys_thread, total = collections.Counter(), collections.Counter(), collections.Counter()
    once = 0
    for p in sorted(glob.glob(os.path.join(out_dir, "cg.out*"))):
        t = read_totals(p)
        role = thread_role(p)
        per_thread[role] += t.get("Ir", 0)
        sys_thread[role] += t.get("sysCount", 0)
        total.update(t)
        if role == "pool" and tagging:  # the tagger's index connection: opened once per node
            once += fn_inclusive(p, {"mt_index_sqlite_open"})["mt_index_sqlite_open"]
    m = re.search(r"tagger: .*", node.log_text())
    return {"Ir": total.get("Ir", 0), "sys": total.get("sysCount", 0), "threads": per_thread,
            "sys_threads": sys_thread, "once": once, "dir": out_dir, "tags": tags,
            "log": m.group(0) if m else ""}


def inclusive(out_dir):
    """{thread role: function: inclusive Ir} summed over the threads of one run."""
    acc = collections.Counter()
    for p in glob.glob(os.path.join(out_dir, "cg.out*")):
        role = thread_role(p)
        r = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--show=Ir",
                            "--threshold=100", p], capture_output=True, text=True,
                           errors="replace")
        for line in r.stdout.splitlines():
            m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+\*?\s*(\S.*?)(?: \[.*\])?$", line)
            if m and m.group(2) != "PROGRAM TOTALS":
                acc["%s: %s" % (role, m.group(2).split(":", 1)[-1])] += \
                    int(m.group(1).replace(",", ""))
    return acc


def wrapper(key):
    """A frame every thread's cost passes through (or an unnamed one of a stripped library)."""
    fn = key.split(": ", 1)[-1]
    return fn.startswith(("0x", "__libc_start", "(below main)")) or fn in (
        "clone", "start_thread", "main", "cmd_serve", "mt_node_run", "uv_run")


def report(name, binary, runs, n, nfun):
    idle = statistics.median(r["Ir"] for r in runs["idle"])
    off = [r["Ir"] - idle for r in runs["off"]]
    on = [r["Ir"] - idle for r in runs["on"]]
    off_m, on_m = statistics.median(off), statistics.median(on)
    print("\n%s (%s), %d instances, callgrind (user-space instructions, every thread)"
          % (name, binary, n))
    print("  node start+stop alone: %.1f M instructions (subtracted below)" % (idle / 1e6))
    print("  tagging off: %.0f instructions per instance  (reps: %s)"
          % (off_m / n, ", ".join("%.0f" % (x / n) for x in off)))
    print("  tagging on:  %.0f instructions per instance  (reps: %s)"
          % (on_m / n, ", ".join("%.0f" % (x / n) for x in on)))
    d = on_m - off_m
    print("  tagging adds %.0f instructions per instance = %+.2f%% of the tagging-off node's "
          "user-space instructions" % (d / n, d / off_m * 100))
    once = statistics.median(r["once"] for r in runs["on"])
    print("    of which once per node start (the tagger opening its index connection: migration "
          "check, prepared statements): %.0f per instance here (%.1f M in all); without it "
          "%.0f = %+.2f%%" % (once / n, once / 1e6, (d - once) / n, (d - once) / off_m * 100))
    for r in runs["on"]:
        print("    node log: %s" % r["log"])
    sys_off = statistics.median(r["sys"] for r in runs["off"])
    sys_on = statistics.median(r["sys"] for r in runs["on"])
    print("  system calls per instance: off %.1f, on %.1f" % (sys_off / n, sys_on / n))
    print("  by thread, per instance (start and stop included), instructions and system calls:")
    for role in ("loop", "commit", "pool"):
        a = statistics.median(r["threads"][role] for r in runs["off"])
        b = statistics.median(r["threads"][role] for r in runs["on"])
        sa = statistics.median(r["sys_threads"][role] for r in runs["off"])
        sb = statistics.median(r["sys_threads"][role] for r in runs["on"])
        print("    %-7s off %8.0f  on %8.0f  %+7.0f   | calls off %5.1f  on %5.1f  %+5.1f"
              % (role, a / n, b / n, (b - a) / n, sa / n, sb / n, (sb - sa) / n))
    if nfun:
        fa, fb = inclusive(runs["off"][0]["dir"]), inclusive(runs["on"][0]["dir"])
        fa = {k: v for k, v in fa.items() if not wrapper(k)}
        fb = {k: v for k, v in fb.items() if not wrapper(k)}
        fa, fb = collections.Counter(fa), collections.Counter(fb)
        diff = sorted(((fb[k] - fa[k], k) for k in set(fa) | set(fb)), key=lambda x: -abs(x[0]))
        print("  functions whose inclusive cost differs most, on - off (rep 1), per instance:")
        for dv, k in diff[:nfun]:
            print("    %+9.0f  %s" % (dv / n, k[:110]))


def main():
    ap = argparse.ArgumentParser()
    ingest.add_fixture_args(ap, 1)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--functions", type=int, default=25)
    ap.add_argument("--keep", help="keep the callgrind outputs under this directory")
    a = ap.parse_args()
    if not shutil.which("valgrind"):
        print("valgrind is not installed")
        sys.exit(77)
    work = a.keep or lib.tmpdir("mt-tagicount-")
    seed, files, n_series = ingest.make_fixtures(a, work)
    print("seed %d: %d studies, %d series, %d files (%dx%d), load average %s"
          % (seed, a.studies, n_series, len(files), a.matrix, a.matrix,
             " ".join("%.2f" % x for x in os.getloadavg())), flush=True)
    builds = [("this", a.mitral)] + ([("baseline", a.baseline)] if a.baseline else [])
    res = {b: {"idle": [], "off": [], "on": []} for b, _ in builds}
    for rep in range(a.reps):
        for name, binary in builds:
            for mode in ("idle", "off", "on"):
                x = run_one(binary, files if mode != "idle" else [], n_series, mode == "on",
                            os.path.join(work, "%s-%s-%d" % (name, mode, rep)))
                res[name][mode].append(x)
                print("rep %d %-8s %-4s %12d instructions, %7d system calls" %
                      (rep + 1, name, mode, x["Ir"], x["sys"]), flush=True)
    for name, binary in builds:
        report(name, binary, res[name], len(files), a.functions)
    tags = [x["tags"] for b, _ in builds for x in res[b]["on"]]
    same = all(t == tags[0] for t in tags)
    print("\nfinal series tags identical in all %d tagging-on runs: %s"
          % (len(tags), "yes" if same else "NO"))
    print("load average at the end: %s" % " ".join("%.2f" % x for x in os.getloadavg()))
    lib.check(same, "the same tags in every run")
    if a.keep:
        lib._tmpdirs.remove(work) if work in lib._tmpdirs else None
    lib.finish()


if __name__ == "__main__":
    main()
