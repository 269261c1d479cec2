#!/usr/bin/python3
"""
bench/tagging/interleave.py - "tagging adds < 2% to end-to-end ingest time", measured in short
interleaved blocks so the machine's slow drift cancels.

    bench/tagging/interleave.py [--studies 6] [--matrix 256] [--minutes 10] [--passes N]
                                [--block 200] [--settle 0.5] [--mitral build/mitral]
                                [--baseline OTHER/mitral] [--aa] [--shm] [--pin]

Why: bench/tagging/ingest.py pairs a tagging-on and a tagging-off run of the whole set (a few
seconds each, fresh nodes); on this VM the ingest's speed drifts by 20-30% between runs a
minute apart, so 30 rounds give an interval of +-5% around the median, too wide to decide 2%
(docs/tagging.md, "Cost in the ingest"). Here two nodes run side by side for a whole pass over
the generated files, one with tagging.enabled true and one with false (series_idle 200ms, as
ingest.py; study_idle 8s, several times the gap between two blocks of a node (~1-2.5 s), so a
study sent in several blocks is one exam as in a continuous send: with 1s, a gap of about a
second ended the study's exam record between blocks in some passes and not in others, and the
final tags differed between passes; with 4s it still happened once in 44 passes). Each node first gets a warm-up block (the first --block files of
a study of its own, not measured): what a fresh node does once (the pool's threads, the first
passes of the tagger's connection, cold page caches) made the first measured pair of every
pass +30-80% before. The files (in series order, as a modality sends them) are cut into blocks
of --block files; each block goes to every node, one after the other (the order rotates from
block to block; the start order alternates by pass), each through its own storescu
association. A pair of blocks is about a second apart, so both halves see about the same
machine. --baseline adds a third node (tagging on, another binary) to the same blocks. Passes
(fresh nodes each) run until --minutes is spent (at least 2), or --passes of them.

What a block costs a node (its "time", T):
  send   the wall time from storescu's association request to its last C-STORE response
         (read live from storescu -v's output: storescu's own start-up, ~25 ms of loading its
         dictionary, and its release are not the node's and would dilute the ratio), i.e. the
         ingest time of the block: every instance durable and acknowledged;
  after  the node's CPU time (every thread, /proc/PID/task/*/schedstat) from the end of its
         send to the start of its next one (the last block: until every series is tagged and
         the study passes have run): everything the node did in the background because of the
         block, above all the tagging-on node's extraction batches, series / study passes and
         tag writes that ran after the responses. It is charged as if it had run on the
         ingest's critical path, one CPU second = one second of ingest time: an upper bound
         (on two cores most of it overlaps the next block or idles an idle core).
         Less what the node spends idle for as long as it waits (the tagger's tick timer, every
         50 ms here: its cost grows with the settle and the other nodes' blocks, not with the
         instances; the lowest CPU rate seen in a quiet window of the pass, times the wait).
  T = send + after. The verdict is on T, paired: r = T_on / T_off of the two halves of each
  block pair; the estimate is the 10%-trimmed mean of log r (each side), as a ratio - 1: a
  single stall of +-30-100% lands on one half of a pair now and then, in A/A runs as well, and
  moves the sum and widens the median's interval; the trimmed mean keeps the rest of the pairs
  at ~1.5x the median's efficiency. Its 95% interval is a two-level bootstrap (passes, then
  their pairs: two nodes may differ for a whole pass); met / NOT MET only when the whole
  interval is on one side of 2%, else UNDECIDED: the last line, "VERDICT ...". Also printed:
  the median and the sum over the pairs with their intervals, the same for send alone (what
  the sender sees: the background work left out, a lower bound), per pass sums, and, per
  instance, what the loop, commit and pool threads did during the sends (run time, run-queue
  wait, preemptions: /proc/PID/task/*/schedstat and status) on and off.
--aa: every node tagging off (the method's noise floor). --shm: data directories in RAM.
--pin: every node on CPU 0, the sender and this script on CPU 1.
Between two blocks the node that just received waits until its CPU has not moved for 0.1 s,
the tagging-on node --settle seconds first (0.5 s: its extraction batch, 50 ms after the
first header, and the series passes, series_idle 200ms after a series' last instance, have
run), so its background work does not share the machine with the other node's block. What
can still come later: a deferred tag write (at most 1 s after the tagger's previous commit)
a millisecond or less of CPU, during the other node's next block; it is charged to the tagging node's "after" all the same. (The tagging-off node has no
background work: its "after" is ~0.)
What this measures that a continuous ingest does not: a series cut by a block boundary gets an
extra series pass in between (more tagging work than a continuous send: pessimistic for
tagging). What it leaves out: the once-per-node cost of the tagger (opening its index
connection at start-up, before the first block; bench/tagging/icount.py counts it apart) and
the warm-up block.
"""
import argparse
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
import lib  # noqa: E402

sys.path.insert(0, HERE)
import ingest  # noqa: E402  (fixtures, schedstat, n_tagged, paired statistics)


class PinnedNode(lib.Node):
    """A node whose every thread runs on CPU 0 (--pin; the sender and this script on CPU 1)."""

    def cmdline(self):
        return ["taskset", "-c", "0"] + super().cmdline()


def node_cpu(node):
    """Every thread's run time, seconds (schedstat: ns)."""
    return sum(ingest.thread_cpu(node.pid).values())


def switches(node):
    """(voluntary, involuntary) context switches of every thread of the node (/proc status):
    the involuntary ones are preemptions, where the scheduler took the CPU from a runnable
    thread."""
    vol = inv = 0
    for tid in os.listdir("/proc/%d/task" % node.pid):
        with open("/proc/%d/task/%s/status" % (node.pid, tid)) as f:
            for line in f:
                if line.startswith("voluntary_ctxt_switches"):
                    vol += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches"):
                    inv += int(line.split()[1])
    return vol, inv


STUDY_IDLE_S = 8  # the file comment


def roles(node):
    """Per thread role (loop, commit, pool; ingest.thread_cpu's rule), the thread's run time
    and run-queue wait (schedstat, s) and its involuntary context switches: what the node's
    threads did, and how long they were runnable but not running (a preemption, or waiting
    for a core), during a send."""
    pid = node.pid
    out = {r: [0.0, 0.0, 0] for r in ("loop", "commit", "pool")}
    others = 0
    for tid in sorted(int(t) for t in os.listdir("/proc/%d/task" % pid)):
        role = "loop" if tid == pid else ("commit" if others == 0 else "pool")
        others += tid != pid
        d = out[role]
        with open("/proc/%d/task/%d/schedstat" % (pid, tid)) as f:
            run, wait, _ = f.read().split()
        d[0] += int(run) / 1e9
        d[1] += int(wait) / 1e9
        with open("/proc/%d/task/%d/status" % (pid, tid)) as f:
            for line in f:
                if line.startswith("nonvoluntary_ctxt_switches"):
                    d[2] += int(line.split()[1])
    return out


def send_block(node, files):
    """Send files in one storescu association: the seconds from the association request to
    the last response, read live from storescu -v (see the file comment)."""
    cmd = ["storescu", "-v", "-nh", "-td", "120", "-aet", "STORESCU", "-aec", node.aet,
           "127.0.0.1", str(node.port)] + list(files)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         env=lib.PEER_ENV)
    t_req = t_last = None
    ok = 0
    for line in p.stdout:
        now = time.monotonic()
        if t_req is None and b"Requesting Association" in line:
            t_req = now
        elif b"Received Store Response (Success)" in line:
            t_last = now
            ok += 1
    p.wait()
    lib.check(ok == len(files) and t_req is not None and t_last is not None,
              "%s: stored %d of %d" % (node.name, ok, len(files)))
    return (t_last - t_req) if t_req is not None and t_last is not None else 0.0


def settle(node, min_s, quiet_s=0.1, max_s=10.0):
    """Wait min_s, then until the node's CPU has not moved (< 1 ms) for quiet_s. Returns the
    node's CPU rate (CPU s per s) in that quiet window: what it spends idle (the tagger's tick
    timer), or None if it never went quiet."""
    time.sleep(min_s)
    t_end = time.monotonic() + max_s
    prev, t_prev = node_cpu(node), time.monotonic()
    while time.monotonic() < t_end:
        time.sleep(quiet_s)
        cur, t_cur = node_cpu(node), time.monotonic()
        if cur - prev < 0.001:
            return (cur - prev) / (t_cur - t_prev)
        prev, t_prev = cur, t_cur
    return None


def one_pass(k, blocks, n_series, warm, modes, a):
    """One pass over the blocks into a fresh node per mode, after an unmeasured warm-up study
    (warm: its files and series): {mode: (send, after, after with idle)} per block, each
    tagging mode's final tags, each node's context switches and idle CPU rate, and what the
    node's threads did during its sends (roles(), summed)."""
    conf = {"tagging.series_idle": "200ms", "tagging.study_idle": "%ds" % STUDY_IDLE_S,
            "log.level": "info"}
    nodes = {}
    os.sync()
    start_order = list(modes) if k % 2 == 0 else list(modes)[::-1]  # alternating by pass
    for m in start_order:
        binary, tagging = modes[m]
        lib.MITRAL = binary  # lib.Node's command line takes it at start()
        data = tempfile.mkdtemp(prefix="mt-il-%s-" % m, dir="/dev/shm") if a.shm else None
        nodes[m] = (PinnedNode if a.pin else lib.Node)(name="il-%s" % m, data=data,
                            conf=dict(conf, **{"tagging.enabled": "true" if tagging else "false"}))
        nodes[m].start()
    time.sleep(0.5)  # every node's start-up (the tagger's index connection) done
    idle = {m: [] for m in modes}  # each node's CPU rate in its quiet windows
    # Warm-up, not measured: a study of its own to each node, so what a fresh node does once
    # (the pool's threads, page caches, the first series and study passes of the tagger's
    # connection) is not charged to the first measured block (it was: the first pair of a pass
    # came out +30-80% in session 6's runs, every pass).
    for m in start_order:
        send_block(nodes[m], warm[0])
        q = settle(nodes[m], a.settle if modes[m][1] else 0.0)
        if q is not None:
            idle[m].append(q)
    rows = []  # per block: {mode: (send, after, after window s)}; after is made net below
    mark = {}  # each node's CPU and time at the end of its last send
    pending = {}  # each node's previous block's row, awaiting its "after"
    during = {m: {r: [0.0, 0.0, 0] for r in ("loop", "commit", "pool")} for m in modes}
    names = list(modes)
    sw = {}
    for b, blk in enumerate(blocks):
        r = (b + k) % len(names)
        row = {}
        for m in names[r:] + names[:r]:  # each mode first in turn
            n = nodes[m]
            c0, t0 = node_cpu(n), time.monotonic()
            if m in pending:
                pending[m][m] = (pending[m][m][0], c0 - mark[m][0], t0 - mark[m][1])
            r0 = roles(n)
            send = send_block(n, blk)
            r1 = roles(n)
            mark[m] = (node_cpu(n), time.monotonic())
            for role, d in during[m].items():
                for i in range(len(d)):
                    d[i] += r1[role][i] - r0[role][i]
            row[m] = (send, 0.0, 0.0)
            pending[m] = row
            q = settle(n, a.settle if modes[m][1] else 0.0)  # a tagging-off node has no timers
            if q is not None:
                idle[m].append(q)
        rows.append(row)
    for m, n in nodes.items():
        if modes[m][1]:
            lib.wait_for(lambda: ingest.n_tagged(n) >= n_series + warm[1], "every series tagged",
                         deadline_s=300, interval=0.05)
    time.sleep(STUDY_IDLE_S + 0.2)  # the study passes
    tags = {}
    for m, n in nodes.items():
        settle(n, 0.0)
        sw[m] = switches(n)
        pending[m][m] = (pending[m][m][0], node_cpu(n) - mark[m][0],
                         time.monotonic() - mark[m][1])
        if modes[m][1]:
            tags[m] = sorted((r["series_uid"], r["tag"], r["view"], r["confidence"],
                              r["evidence"])
                             for r in n.query("SELECT series_uid, tag, view, confidence, "
                                              "evidence FROM series_tags"))
    # The idle CPU (the tagger's tick timer: every 50 ms with series_idle 200ms) runs for as
    # long as the node waits, which here is the settle and the other nodes' blocks, not its
    # ingest: it is taken out of "after" at the lowest rate seen in a quiet window of the pass
    # (the lowest: what is taken out is idle for sure). Kept: everything above that rate.
    for m in modes:
        rate = min(idle[m]) if idle[m] else 0.0
        for row in rows:
            send, after, span = row[m]
            row[m] = (send, max(0.0, after - rate * span), after)
        idle[m] = rate
    for n in nodes.values():
        n.stop()
        if a.shm:
            shutil.rmtree(n.dir)  # RAM: a pass's files go before the next pass
    return rows, tags, sw, idle, during


def resample(groups, rng):
    """A two-level bootstrap sample: the passes drawn with replacement, then each drawn pass's
    pairs with replacement. Two nodes differ for a whole pass (an A/A run on RAM put one node
    6-11% ahead of the other in both passes: where its threads ran, which node started first),
    so the pairs of a pass are not independent; resampling them alone gave intervals that
    excluded 0 in an A/A run."""
    out = []
    for _ in groups:
        g = rng.choice(groups)
        out += [rng.choice(g) for _ in g]
    return out


def trimmed_log_mean(ratios, cut=0.1):
    """exp(mean of log(ratio)) - 1 over the ratios left after dropping the lowest and the
    highest cut of them: the typical pair's on/off - 1, robust to the single stalls (+-30-80%
    a pair, in both directions, also in A/A runs) that make the sum swing, and ~1.5x as
    efficient as the median on the rest."""
    x = sorted(math.log(r) for r in ratios)
    k = int(len(x) * cut)
    x = x[k:len(x) - k]
    return math.exp(sum(x) / len(x)) - 1


STATS = (("trimmed mean", lambda r, on, off: trimmed_log_mean(r)),
         ("median", lambda r, on, off: statistics.median(r) - 1),
         ("sum", lambda r, on, off: sum(on) / sum(off) - 1))


def interval(groups, f_on, f_off, boot=4000):
    """Each of STATS over the pairs' on/off, with a two-level bootstrap 95% interval (fixed
    RNG seed): [(name, value, lo, hi)]."""
    rng = random.Random(5)

    def values(pairs):
        on = [f_on(p) for p in pairs]
        off = [f_off(p) for p in pairs]
        r = [x / y for x, y in zip(on, off)]
        return [f(r, on, off) for _, f in STATS]

    samples = [values(resample(groups, rng)) for _ in range(boot)]
    point = values([p for g in groups for p in g])
    lo, hi = int(0.025 * boot), int(0.975 * boot) - 1
    out = []
    for i, (name, _) in enumerate(STATS):
        v = sorted(x[i] for x in samples)
        out.append((name, point[i], v[lo], v[hi]))
    return out


def report(name, binary, groups, during, n):
    """The result of one tagging mode against the tagging-off node: groups holds, per pass,
    the block pairs ((send, after) on, (send, after) off); during, per mode, what the node's
    threads did during its sends. Returns the verdict line."""
    pairs = [p for g in groups for p in g]
    print()
    print("%s (%s) against tagging off, %d block pairs in %d passes (%d measured instances per "
          "node)" % (name, binary, len(pairs), len(groups), n))
    line = None
    for what, f in (("T = send + background CPU after it (the verdict)",
                     lambda p, i: p[i][0] + p[i][1]),
                    ("send alone (background work left out: a lower bound)",
                     lambda p, i: p[i][0])):
        use = [[p for p in g if f(p, 1) > 0] for g in groups]
        d = [f(p, 0) / f(p, 1) - 1 for g in use for p in g]
        res = interval(use, lambda p: f(p, 0), lambda p: f(p, 1))
        print("  %s, on/off - 1:" % what)
        for stat, v, lo, hi in res:
            print("    %-36s %+.2f%% [%+.2f%%, %+.2f%%]  %s" % (
                "of the pairs, " + stat if stat != "sum" else "of the sums over the pairs",
                v * 100, lo * 100, hi * 100, ingest.verdict(lo, hi)))
        if line is None:
            _, v, lo, hi = res[0]
            line = ("VERDICT %s: tagging adds %+.2f%% [%+.2f%%, %+.2f%%] to the ingest time "
                    "(T, trimmed mean of %d block pairs in %d passes, two-level bootstrap "
                    "95%%): %s" % (name, v * 100, lo * 100, hi * 100, len(pairs), len(groups),
                                   ingest.verdict(lo, hi).split(" (")[0]))
        print("    per pair (%%): %s" % " ".join("%+.0f" % (x * 100) for x in d))
    print("  per pass, sum on/off - 1 of T: %s" % " ".join(
        "%+.1f%%" % ((sum(p[0][0] + p[0][1] for p in g) / sum(p[1][0] + p[1][1] for p in g) - 1)
                     * 100) for g in groups))
    print("  per instance: send off %.1f us, on %.1f us; background CPU off %.1f us, on %.1f us"
          % tuple(sum(p[i][j] for p in pairs) / n * 1e6 for j, i in ((0, 1), (0, 0), (1, 1),
                                                                     (1, 0))))
    print("  during the sends, per instance (on - off): run time / run-queue wait (us), "
          "preemptions per 1000")
    for role in ("loop", "commit", "pool"):
        on, off = during[name][role], during["off"][role]
        print("    %-6s run %.1f - %.1f = %+.1f us, waiting %.1f - %.1f = %+.1f us, "
              "preempted %.0f - %.0f = %+.0f" % (
                  role, on[0] / n * 1e6, off[0] / n * 1e6, (on[0] - off[0]) / n * 1e6,
                  on[1] / n * 1e6, off[1] / n * 1e6, (on[1] - off[1]) / n * 1e6,
                  on[2] / n * 1e3, off[2] / n * 1e3, (on[2] - off[2]) / n * 1e3))
    return line


def main():
    ap = argparse.ArgumentParser()
    ingest.add_fixture_args(ap, 6)
    ap.set_defaults(matrix=256)
    ap.add_argument("--minutes", type=float, default=10.0,
                    help="run passes until this budget is spent (at least 2 passes)")
    ap.add_argument("--passes", type=int, default=0,
                    help="passes over the files (fresh nodes each); 0: as many as --minutes "
                    "allows")
    ap.add_argument("--block", type=int, default=200, help="files per block")
    ap.add_argument("--settle", type=float, default=0.5,
                    help="seconds a tagging node waits after its block before the next starts "
                    "(then until its CPU is still for 0.1 s)")
    ap.add_argument("--aa", action="store_true",
                    help="every node with tagging off (an A/A run: the method's noise floor)")
    ap.add_argument("--shm", action="store_true",
                    help="the nodes' data directories on /dev/shm (RAM: no disk flush time, so "
                    "the ingest is shorter and tagging's share of it larger: an upper bound of "
                    "the share on a disk)")
    ap.add_argument("--pin", action="store_true",
                    help="every node on CPU 0, the sender and this script on CPU 1: the nodes "
                    "do not move between cores (a source of per-node differences), and the "
                    "tagger's pool work shares the core with the ingest (no spare core: "
                    "tagging's whole CPU is on the critical path, an upper bound)")
    a = ap.parse_args()
    if a.pin:
        os.sched_setaffinity(0, {1})
    modes = {"this": (a.mitral, not a.aa)}
    if a.baseline:
        modes["baseline"] = (a.baseline, not a.aa)
    modes["off"] = (a.mitral, False)
    work = lib.tmpdir("mt-taginter-")
    seed, files, n_series = ingest.make_fixtures(a, work)
    # the warm-up study: fresh UIDs (the generator's are random), same image size
    _, wfiles, _ = ingest.make_fixtures(argparse.Namespace(**dict(vars(a), studies=1)),
                                        os.path.join(work, "warm"))
    wfiles = wfiles[:a.block]  # one block: enough for what a fresh node does once
    wseries = len(set(os.path.dirname(f) for f in wfiles))
    blocks = [files[i:i + a.block] for i in range(0, len(files), a.block)]
    print("seed %d: %d studies, %d series, %d files (%dx%d) in %d blocks of <= %d a pass, after "
          "a warm-up study (%d files, not measured); %s; nodes: %s; load average %s" % (
              seed, a.studies, n_series, len(files), a.matrix, a.matrix, len(blocks), a.block,
              len(wfiles), "%d passes" % a.passes if a.passes else "%.0f minutes" % a.minutes,
              ", ".join(modes), ingest.loadavg()), flush=True)
    rows, tag_runs = [], []
    during = {m: {r: [0.0, 0.0, 0] for r in ("loop", "commit", "pool")} for m in modes}
    t_start = time.monotonic()
    k = 0
    while True:
        spent = time.monotonic() - t_start
        if a.passes and k >= a.passes:
            break
        if not a.passes and k >= 2 and spent + spent / k > a.minutes * 60:
            break
        pr, tags, sw, idle, dur = one_pass(k, blocks, n_series, (wfiles, wseries), modes, a)
        k += 1
        tag_runs += tags.values()
        rows.append(pr)
        for m in modes:
            for role, d in dur[m].items():
                for i in range(len(d)):
                    during[m][role][i] += d[i]
        print("pass %d: %s; load %s" % (k, "; ".join(
            "%s send %.2f s + after %.3f s CPU (%.3f s with idle, %.2f ms/s), context "
            "switches %d + %d preempted"
            % (m, sum(r[m][0] for r in pr), sum(r[m][1] for r in pr),
               sum(r[m][2] for r in pr), idle[m] * 1e3, sw[m][0], sw[m][1])
            for m in modes), ingest.loadavg()), flush=True)
    n = len(files) * k
    lines = []
    for m in modes:
        if m != "off":
            lines.append(report(m, modes[m][0], [[(r[m], r["off"]) for r in g] for g in rows],
                                during, n))
    same = all(t == tag_runs[0] for t in tag_runs)
    print("\nfinal series tags identical in all %d tagging-on passes: %s"
          % (len(tag_runs), "yes" if same else "NO"))
    print("%.1f minutes; load average at the end: %s" % ((time.monotonic() - t_start) / 60,
                                                         ingest.loadavg()))
    for line in lines:
        print(line)
    lib.check(same, "the same tags in every pass")
    lib.finish()


if __name__ == "__main__":
    main()
