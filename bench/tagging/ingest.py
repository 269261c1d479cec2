#!/usr/bin/python3
"""
bench/tagging/ingest.py - issue 5's last target: "tagging adds < 2% to end-to-end ingest time".

    bench/tagging/ingest.py [--studies 6] [--rounds 5] [--matrix 16] [--mitral build/mitral]
                            [--baseline OTHER_BUILD/mitral]

Generates --studies multi-vendor CMR studies (tests/tagging/gen_cmr_fixtures.py, a fresh seed
each run unless MT_TAG_SEED is set; --matrix: image size, default 16x16 so the instances are
header-dominated, the worst case for the ratio; 256 gives real-sized ~130 KB images) and, in
every round, sends the same files with one storescu
association into two fresh nodes (empty data directories), one with tagging.enabled true and one
with false, the order alternating from round to round. Idle timers are short
(tagging.series_idle 200ms, study_idle 1s), so the series passes run during the send (the
fixtures arrive series after series) and the study passes right after it.

Per node it measures:
  ingest   wall time of the storescu run (first association request to the last response: every
           instance durable and acknowledged). This is "end-to-end ingest time".
  tagged   (tagging on) the wait after storescu until series_tags holds a row for every series
           of the input, reported separately: it is bounded below by the configured idle timers,
           so it measures a setting, not a cost.
  own      (tagging on) the tagger's own CPU (CLOCK_THREAD_CPUTIME_ID, logged by the node at
           exit): extraction batches and passes on the pool, and (builds that log it) the
           features joining their series on the loop: the part of cpu that is tagging for sure,
           free of the run-to-run noise of the rest. Not in it: the capture on the loop
           (node/tag/capture.c: the header copy and the slot table, ~0.5 us per instance
           measured apart, docs/tagging.md) and the hand-over of each capture to the pool.
  cpu      the node's own CPU time: every thread's run time from /proc/PID/task/*/schedstat
           (ns), read once the node is done (tagging on: every series tagged and the study
           passes over; off: the send over) and just before it is stopped: all the tagging work
           (header capture, extraction, passes, tag writes, and what they cost the ingest's
           own threads) is in it. Also split by thread (loop, commit thread, pool) and into
           utime / stime (/proc/PID/stat, 10 ms ticks).
The wall clock and the node's CPU on the shared 2-core machine move by 10-50% between identical
runs (most of the node's CPU is the kernel's: file creation, and ext4's inode allocation scans
inodes deleted in the last 60 s by anyone on the machine: `perf record`, docs/tagging.md), so
the medians alone cannot decide a 2% target. Each round runs on and off back to back; the
report gives the median of the per-round on/off - 1 and a bootstrap 95% interval of it, and
says "met" / "NOT MET" only when the whole interval is on one side of 2% (else UNDECIDED).
The steady measures are the tagger's own CPU (above) and bench/tagging/icount.py (the node's
instruction count under callgrind, on vs off).
With --baseline, every round runs both binaries (order alternating too) on the same files, and
the report is printed for each: before/after from one run, under the same load.
"""
import argparse
import csv
import glob
import os
import random
import re
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
import lib  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_split(pid, tid=None):
    """(utime, stime) of a process (every thread, live or ended) or of one thread, seconds."""
    path = "/proc/%d/stat" % pid if tid is None else "/proc/%d/task/%d/stat" % (pid, tid)
    with open(path) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) / TICKS, int(rest[12]) / TICKS


def run_ns(pid, tid):
    """Time a thread has run on a CPU, ns (/proc/PID/task/TID/schedstat: exact, where stat's
    utime and stime count 10 ms ticks)."""
    with open("/proc/%d/task/%d/schedstat" % (pid, tid)) as f:
        return int(f.read().split()[0])


def thread_cpu(pid):
    """CPU seconds by thread role (schedstat): the loop (the main thread), the ingest's commit
    thread (the first thread the node starts, at mt_ingest_open) and the rest (the libuv pool:
    tagging's extraction and passes, the store's file work). Live threads: read before the
    stop (the node's threads all live until it exits)."""
    tids = sorted(int(t) for t in os.listdir("/proc/%d/task" % pid))
    out = {"loop": run_ns(pid, pid) / 1e9, "commit": 0.0, "pool": 0.0}
    for i, tid in enumerate(t for t in tids if t != pid):
        out["commit" if i == 0 else "pool"] += run_ns(pid, tid) / 1e9
    return out


def loadavg():
    return " ".join("%.2f" % x for x in os.getloadavg())


def n_tagged(node):
    try:
        return node.query("SELECT count(*) AS n FROM series_tags")[0]["n"]
    except Exception:  # noqa: BLE001 - the table may not exist yet
        return -1


def one_run(files, n_series, tagging):
    conf = {"tagging.enabled": "true" if tagging else "false",
            "tagging.series_idle": "200ms", "tagging.study_idle": "1s", "log.level": "info"}
    node = lib.Node(name="tag-%s" % ("on" if tagging else "off"), conf=conf)
    # The ingest's syncfs flushes every dirty page of the file system: without this, a run
    # would also pay for what the run before it left unwritten (every other run, in turn).
    os.sync()
    node.start()
    t0 = time.monotonic()
    r = lib.storescu(node, files, timeout=900)
    t1 = time.monotonic()
    ok = r.stdout.count("Received Store Response (Success)")
    lib.check(ok == len(files), "%s: stored %d of %d" % (node.name, ok, len(files)))
    waited = 0.0
    if tagging:
        lib.wait_for(lambda: n_tagged(node) >= n_series, "every series tagged", deadline_s=300,
                     interval=0.01)
        waited = time.monotonic() - t1
        time.sleep(1.2)  # the study passes (study_idle 1s) revise; their CPU is counted too
    else:
        time.sleep(1.2)  # the same settle, so both read the CPU at the same point
    utime, stime = cpu_split(node.pid)
    threads = thread_cpu(node.pid)
    cpu = sum(threads.values())
    tagged = n_tagged(node) if tagging else 0
    tags = sorted((r["series_uid"], r["tag"], r["view"], r["confidence"], r["evidence"])
                  for r in node.query("SELECT series_uid, tag, view, confidence, evidence "
                                      "FROM series_tags")) if tagging else None
    node.stop()
    own = 0.0
    if tagging:
        lib.check(tagged == n_series, "%d of %d series tagged" % (tagged, n_series))
        m = re.search(r"tagger: \d+ headers extracted \(([\d.]+) ms CPU\), \d+ passes over "
                      r"\d+ series \(([\d.]+) ms CPU\)", node.log_text())
        lib.check(m is not None, "the tagger's CPU line is in the log")
        ext, pas = (float(m.group(1)) / 1000, float(m.group(2)) / 1000) if m else (0.0, 0.0)
        # builds since the header capture's slot table also log the loop's share
        j = re.search(r"features joined their series in ([\d.]+) ms CPU", node.log_text())
        join = float(j.group(1)) / 1000 if j else 0.0
        own = ext + pas + join
        w = re.search(r"(\d+) tag rows written in (\d+) transactions", node.log_text())
        writes = "; %s tag rows in %s transactions" % w.groups() if w else ""
    else:
        ext = pas = join = 0.0
        writes = ""
    return {"ingest": t1 - t0, "tagged": waited, "cpu": cpu, "utime": utime, "stime": stime,
            "loop": threads["loop"], "commit": threads["commit"], "pool": threads["pool"],
            "own": own, "ext": ext, "pass": pas, "join": join, "tags": tags, "writes": writes}


def paired(res_on, res_off, key, boot=5000):
    """Round i's on/off - 1 for key (the two runs of a round are adjacent, under about the same
    load): the median over the rounds and a bootstrap 95% interval of that median (the rounds
    resampled with replacement; a fixed RNG seed, so the same rounds give the same interval)."""
    d = [a[key] / b[key] - 1 for a, b in zip(res_on, res_off) if b[key] > 0]
    if not d:
        return 0.0, 0.0, 0.0, d
    rng = random.Random(5)
    meds = sorted(statistics.median(rng.choice(d) for _ in d) for _ in range(boot))
    return statistics.median(d), meds[int(0.025 * boot)], meds[int(0.975 * boot) - 1], d


def verdict(lo, hi):
    """What a 95% interval of on/off - 1 says about the < 2% target."""
    if hi < 0.02:
        return "met (the whole interval is under 2%)"
    if lo >= 0.02:
        return "NOT MET (the whole interval is at or over 2%)"
    return "UNDECIDED (the interval spans 2%: more rounds, or a quieter machine)"


def report_paired(res_on, res_off, n_files):
    print("  paired by round (on/off - 1 of the two adjacent runs; median, bootstrap 95%% "
          "interval of the median, %d rounds):" % len(res_on))
    for key, what in (("ingest", "ingest wall time"), ("cpu", "node CPU (all threads)")):
        med, lo, hi, d = paired(res_on, res_off, key)
        print("    %-24s %+6.1f%%  [%+.1f%%, %+.1f%%]  %s" % (what, med * 100, lo * 100, hi * 100,
                                                          verdict(lo, hi)))
        print("      per round: %s" % " ".join("%+.1f%%" % (x * 100) for x in d))
    print("  where the node's CPU goes, us per instance (medians; on - off paired by round):")
    for key in ("utime", "stime", "loop", "commit", "pool"):  # stat's ticks; schedstat's ns
        off = statistics.median(r[key] for r in res_off) / n_files * 1e6
        on = statistics.median(r[key] for r in res_on) / n_files * 1e6
        dd = statistics.median(a[key] - b[key] for a, b in zip(res_on, res_off)) / n_files * 1e6
        print("    %-7s off %6.1f  on %6.1f  on - off %+6.1f" % (
            {"loop": "loop th", "commit": "commit", "pool": "pool+"}.get(key, key), off, on, dd))


def report(name, binary, res_on, res_off, n_files):
    keys = ("ingest", "tagged", "cpu", "own", "ext", "pass", "join")
    on = {m: statistics.median(r[m] for r in res_on) for m in keys}
    off = {m: statistics.median(r[m] for r in res_off) for m in keys}
    wall = on["ingest"] / off["ingest"] - 1
    cpu = on["cpu"] / off["cpu"] - 1
    print()
    print("%s (%s), medians   ingest s   images/s   cpu s" % (name, binary))
    for med, mode in ((off, "tagging off"), (on, "tagging on")):
        print("  %-14s %9.2f %10.0f %7.2f" % (mode, med["ingest"], n_files / med["ingest"],
                                              med["cpu"]))
    print("  tagging on: every series tagged %.2f s after the send (series_idle 200ms; reported "
          "apart, not in the target)" % on["tagged"])
    print("  ingest wall time, on/off - 1 of the medians: %+.1f%%  (no verdict: see the paired "
          "interval below)" % (wall * 100))
    print("  node CPU time,    on/off - 1 of the medians: %+.1f%%" % (cpu * 100))
    own = on["own"] / off["cpu"]
    print("  tagger's own CPU / node CPU off: %.2f%%  (a lower bound of tagging's share: the "
          "capture on the loop and what the tag writes cost the ingest are not in it)  %s"
          % (own * 100, "under 2%" if own < 0.02 else "OVER 2%"))
    print("  per instance: tagger %.1f us of CPU (extract %.1f, passes %.1f, joining series "
          "on the loop %s); " % (on["own"] / n_files * 1e6, on["ext"] / n_files * 1e6,
                                 on["pass"] / n_files * 1e6,
                                 "%.1f" % (on["join"] / n_files * 1e6) if on["join"]
                                 else "not logged"), end="")
    print("tagging adds %.1f us of node CPU (%.0f us off, %.0f us on)"
          % ((on["cpu"] - off["cpu"]) / n_files * 1e6, off["cpu"] / n_files * 1e6,
             on["cpu"] / n_files * 1e6))
    report_paired(res_on, res_off, n_files)


def add_fixture_args(ap, studies):
    """The generated set and the builds (shared with bench/tagging/icount.py)."""
    ap.add_argument("--studies", type=int, default=studies)
    ap.add_argument("--phases", type=int, default=12)
    ap.add_argument("--dynamics", type=int, default=22)
    ap.add_argument("--matrix", type=int, default=16,
                    help="Rows = Columns of the generated images (256: ~130 KB, a real CMR image)")
    ap.add_argument("--mitral", default=os.path.join(SRC, "build", "mitral"))
    ap.add_argument("--baseline", help="a second binary (e.g. main's) measured in the same "
                    "rounds, interleaved, for a before/after from one run")


def make_fixtures(a, work):
    """Generate the studies into work/fx: (seed, files, number of series)."""
    seed = int(os.environ.get("MT_TAG_SEED") or int.from_bytes(os.urandom(4), "little"))
    fx = os.path.join(work, "fx")
    gen = os.path.join(SRC, "tests", "tagging", "gen_cmr_fixtures.py")
    r = lib.run([sys.executable, gen, "--out", fx, "--studies", str(a.studies), "--seed",
                 str(seed), "--phases", str(a.phases), "--dynamics", str(a.dynamics),
                 "--matrix", str(a.matrix)], timeout=900)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
        sys.exit(1)
    files = sorted(glob.glob(os.path.join(fx, "study*", "*", "*.dcm")))
    with open(os.path.join(fx, "truth.csv")) as f:
        n_series = len(list(csv.DictReader(f)))
    return seed, files, n_series


def main():
    ap = argparse.ArgumentParser()
    add_fixture_args(ap, 6)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    lib.MITRAL = a.mitral
    seed, files, n_series = make_fixtures(a, lib.tmpdir("mt-tagbench-"))
    mb = sum(os.path.getsize(p) for p in files) / 1e6
    print("seed %d: %d studies, %d series, %d files, %.1f MB; %d rounds, modes alternating; "
          "load average %s" % (seed, a.studies, n_series, len(files), mb, a.rounds, loadavg()),
          flush=True)
    builds = [("this", a.mitral)] + ([("baseline", a.baseline)] if a.baseline else [])
    res = {(b, t): [] for b, _ in builds for t in (True, False)}
    for i in range(a.rounds):
        order = (True, False) if i % 2 == 0 else (False, True)
        for name, binary in builds if i % 2 == 0 else builds[::-1]:
            lib.MITRAL = binary
            for tagging in order:
                x = one_run(files, n_series, tagging)
                res[(name, tagging)].append(x)
                print("round %d %-8s tagging %-3s  ingest %6.2f s (%6.0f images/s)  cpu %6.2f s%s"
                      % (i + 1, name, "on" if tagging else "off", x["ingest"],
                         len(files) / x["ingest"], x["cpu"],
                         "  tagged %.2f s after the send, tagger %.3f s (extract %.3f, passes "
                         "%.3f%s)" % (x["tagged"], x["own"], x["ext"], x["pass"], x["writes"])
                         if tagging else ""),
                      flush=True)
    for name, binary in builds:
        report(name, binary, res[(name, True)], res[(name, False)], len(files))
    runs = [x["tags"] for b, _ in builds for x in res[(b, True)]]
    same = all(t == runs[0] for t in runs)
    print("\nfinal series tags (uid, tag, view, confidence, evidence) identical in all %d "
          "tagging-on runs%s: %s" % (len(runs), " of both builds" if a.baseline else "",
                                     "yes" if same else "NO"))
    print("load average at the end: %s" % loadavg())
    lib.check(same, "the same tags in every run")
    lib.finish()


if __name__ == "__main__":
    main()
