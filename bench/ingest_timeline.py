#!/usr/bin/python3
"""
bench/ingest_timeline.py - where one association's C-STORE time goes, step by step.

Runs `mitral serve` under `perf trace` (syscall tracepoints: far less overhead than strace's
ptrace stops, which tripled the time per instance), sends N bench images over one storescu
association, and cuts each instance's cycle (our answer written -> the next answer written) at
the system calls that mark its steps:

  scu      answer written -> the data set's last read (storescu's own round trip)
  1 wake   last read -> first call of the commit thread (the loop parses, hands over)
  2 create the temp file's openat / linkat (spare inode, store_fs.c)
  3 write  -> end of the write of the instance bytes
  4 put    -> rename (close, BEGIN, the row's put())
  5 commit rename -> syncfs (COMMIT: the WAL frames)
  6 syncfs the flush
  7 verify syncfs -> eventfd (the verified=1 transaction, the completion post)
  8 answer eventfd -> our next answer write (the loop wakes, writes the C-STORE-RSP)

  bench/ingest_timeline.py [MITRAL ...]     # default build/mitral; N=500; several binaries
                                            # alternate (A B A B ...) ROUNDS times (default 2)
Needs perf (linux-perf) allowed to trace (root or perf_event_paranoid <= 1), storescu, and the
images bench/ingest generated (BENCH_DIR, default /tmp/mitral-bench/mr-2000).
"""
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = int(os.environ.get("N", "500"))
ROUNDS = int(os.environ.get("ROUNDS", "2"))
BENCH_DIR = os.environ.get("BENCH_DIR", "/tmp/mitral-bench")
PEER_ENV = dict(os.environ, TCP_NODELAY="1")
LINE = re.compile(r"\s*([\d.]+) \(\s*([\d.]+) ms\): \S+?/(\d+) (\w+)\((.*)\)\s+= (-?\d+)")
# a call another thread's event interrupted: perf prints "name(args) ..." first, then this
# line with the same start time and the whole duration (the arguments are lost)
CONTINUED = re.compile(r"\s*([\d.]+) \(\s*([\d.]+) ms\): \S+?/(\d+)\s+\.\.\. \[continued\]: "
                       r"(\w+)\(\)\)\s+= (-?\d+)")
STEPS = ["scu", "1 wake", "2 create", "3 write", "4 put", "5 commit", "6 syncfs", "7 verify",
         "8 answer", "node (1-8)", "cycle"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def images():
    d = os.path.join(BENCH_DIR, "mr-2000")
    files = []
    for root, _, fs in os.walk(d):
        files += [os.path.join(root, f) for f in fs if f.endswith(".dcm")]
    if len(files) < N:
        sys.exit("%s: %d images, need %d (run bench/ingest first)" % (d, len(files), N))
    return sorted(files)[:N]


def trace(exe, files):
    d = tempfile.mkdtemp(prefix="mt-timeline-")
    out, port = os.path.join(d, "trace.txt"), free_port()
    log = open(os.path.join(d, "log"), "w")
    p = subprocess.Popen(["perf", "trace", "-o", out, "-e",
                          "read,write,openat,linkat,rename,syncfs,close", "--", exe, "serve",
                          "--bind", "127.0.0.1", "--port", str(port), "--aet", "MITRAL",
                          "--data", os.path.join(d, "data")], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or p.poll() is not None:
                    sys.exit("%s did not start under perf trace (see %s)" % (exe, d))
                time.sleep(0.1)
        subprocess.run(["storescu", "-aet", "BENCH", "-aec", "MITRAL", "127.0.0.1", str(port)] +
                       files, env=PEER_ENV, check=True, stdout=subprocess.DEVNULL)
    finally:
        kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True)
        for k in kids.stdout.split():
            os.kill(int(k), signal.SIGTERM)  # mitral, the child of perf
        p.wait(60)
        log.close()
    ev = []
    with open(out) as f:
        for line in f:
            m = LINE.match(line)
            if m:
                ev.append((float(m[1]), float(m[2]), int(m[3]), m[4], m[5], int(m[6])))
            elif (m := CONTINUED.match(line)):
                ev.append((float(m[1]), float(m[2]), int(m[3]), m[4], "", int(m[5])))
    ev.sort(key=lambda e: e[0])
    shutil.rmtree(d, ignore_errors=True)
    return ev


def steps(ev):
    """Per-step lists (ms) over the instances whose cycle has one flush."""
    loop = ev[0][2]
    answers = [i for i, e in enumerate(ev)
               if e[3] == "write" and e[2] == loop and "socket" in e[4] and e[5] == 148]
    got = {k: [] for k in STEPS}
    for a, b in zip(answers, answers[1:]):
        seg = ev[a + 1:b + 1]
        t0, t_end = ev[a][0] + ev[a][1], ev[b][0]
        reads = [e for e in seg if e[3] == "read" and e[2] == loop and e[5] > 1000]
        ct = [e for e in seg if e[2] != loop]
        if not reads:
            continue
        data = reads[-1][0] + reads[-1][1]
        sf = [e for e in ct if e[3] == "syncfs"]
        if len(sf) != 1:
            continue
        # the commit thread's calls after the data arrived (a spare inode made by another
        # thread, or earlier in the cycle, is not on the instance's path)
        # (the temp file is created and written by the commit thread, or, for an instance
        # that found it idle, by a pool thread while the commit thread indexes: any thread)
        anyt = [e for e in ct if e[0] >= data]
        ct = [e for e in anyt if e[2] == sf[0][2]]
        create = [e for e in anyt if e[3] in ("openat", "linkat") and ".tmp" in e[4]]
        wr = [e for e in anyt if e[3] == "write" and e[5] > 1000]
        rn = [e for e in ct if e[3] == "rename" and e[5] == 0]
        sf = [e for e in ct if e[3] == "syncfs"]
        if not (create and wr and rn) or len(sf) != 1:
            continue
        c, w, s = create[0], wr[0], sf[0]
        ef = [e for e in ct if e[3] == "write" and e[5] == 8 and e[0] >= s[0] + s[1]]
        if not ef:
            continue
        for k, v in zip(STEPS, [data - t0, c[0] - data, c[1], w[0] + w[1] - c[0] - c[1],
                                rn[-1][0] - w[0] - w[1], s[0] - rn[-1][0], s[1],
                                ef[0][0] - s[0] - s[1], t_end - ef[0][0], t_end - data,
                                t_end - t0]):
            got[k].append(v)
    return got


def main():
    exes = sys.argv[1:] or [os.path.join(SRC, "build", "mitral")]
    if not shutil.which("perf") or not shutil.which("storescu"):
        sys.exit("needs perf (apt-get install linux-perf) and storescu (dcmtk)")
    files = images()
    res = {x: {k: [] for k in STEPS} for x in exes}
    for r in range(ROUNDS):
        for x in exes:
            for k, v in steps(trace(x, files)).items():
                res[x][k] += v
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print("one association, %d instances x %d rounds, load average %s; p50 ms per instance"
          % (N, ROUNDS, " ".join(load)))
    names = [os.path.basename(x) for x in exes]
    if len(set(names)) < len(names):  # build/mitral vs other/build/mitral: name the tree
        names = [os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(x))))
                 for x in exes]
    print("%-12s" % "step" + "".join("%20s" % n[-19:] for n in names))
    for k in STEPS:
        print("%-12s" % k + "".join("%20.3f" % statistics.median(res[x][k]) if res[x][k] else
                                    "%20s" % "-" for x in exes))
    print("%-12s" % "instances" + "".join("%20d" % len(res[x]["cycle"]) for x in exes))


if __name__ == "__main__":
    main()
