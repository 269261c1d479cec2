#!/usr/bin/python3
"""
bench/route_callgrind.py - node A's instructions per relayed instance, a measure the machine's
other load does not move (same binary + same inputs = the same count within ~0.1 %).

Node A (site: routing rule `forward: [central]`, de-identification with the basic profile,
forward.associations FWD_ASSOC) runs under `valgrind --tool=callgrind`; node B runs natively.
storescu sends N generated CMR instances (tests/integration/gen_mr.py, as bench/route) into A;
when B's index holds all N, A is stopped and callgrind writes its profile. The same is done
with the first BASE instances (start-up, shutdown, and the one-time costs that come with the
first instances: the pool's and the forwarder's SQLite connections, OpenSSL's HMAC fetch);
the difference / (N - BASE) is A's cost per instance. (Session 4 subtracted a run with 0
instances, which leaves those one-time costs in: ~60 k per instance more at N=200.)

  bench/route_callgrind.py                  # N=200
  N=200 DEID=0 bench/route_callgrind.py     # A stores as received
  BASE=0 bench/route_callgrind.py           # session 4's baseline (start-up only)
  KEEP=1 ...                                # keep the callgrind.out files (paths printed)
  STRACE=1 N=1000 ...                       # instead: A's system calls (strace -c -f), one run
  STRACE=1 STRACE_NODE=B ...                # the same for B (what A's sending costs B)
  STRACE=1 STRACE_OPTS="-k -e trace=sched_yield" ...  # strace's options instead of -c (here:
                                            # the stack of each sched_yield call)
  PERF=1 N=1000 ...                         # instead: A's CPU samples by symbol (perf record
                                            # -e cpu-clock, kernel included), one run
  TIMELINE=1 N=500 ...                      # instead: A's one-association cycle step by step
                                            # (perf trace; bench/ingest_timeline.py's steps)
  NATIVE=1 N=1000 ASSOC=4 ...               # instead: no tool; A's CPU ms per instance
                                            # (/proc/PID/stat) and the loopback TCP segments
                                            # sent per instance (nstat TcpOutSegs, all senders)
  B_DOWN=1 TIMELINE=1 ...                   # A with its destination down (nothing forwarded)
  DIRECT=1 ...                              # the anchor: B alone, storescu straight into it,
                                            # under the same tool (what the direct run costs B)

Prints: total Ir of A with N and with BASE instances, Ir per instance, and the inclusive Ir per
instance of the functions listed in FUNCS (and the top self-cost functions), from
callgrind_annotate. Environment: N (200), BASE (20), ASSOC (1), FWD_ASSOC (4), DEID (1), MITRAL
(build/mitral), BENCH_DIR (/tmp/mitral-bench), KEEP (0), FUNCS (comma-separated names),
SETTLE_S (65: PERF and STRACE runs wait that long after a bench deleted its trees).
"""
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import gen_mr  # noqa: E402
from lib import free_port, port_listening  # noqa: E402

N = int(os.environ.get("N", "200"))
BASE = int(os.environ.get("BASE", "20"))
ASSOC = int(os.environ.get("ASSOC", "1"))
FWD_ASSOC = int(os.environ.get("FWD_ASSOC", "4"))
DEID = os.environ.get("DEID", "1") != "0"
BENCH_DIR = os.environ.get("BENCH_DIR", "/tmp/mitral-bench")
MITRAL = os.environ.get("MITRAL") or os.path.join(ROOT, "build", "mitral")
KEEP = os.environ.get("KEEP", "0") == "1"
SETTLE_S = float(os.environ.get("SETTLE_S", "65"))
STRACE = os.environ.get("STRACE", "0") == "1"
STRACE_NODE = os.environ.get("STRACE_NODE", "A").upper()
STRACE_OPTS = os.environ.get("STRACE_OPTS", "-c")  # e.g. "-k -e trace=sched_yield": who calls it
PERF = os.environ.get("PERF", "0") == "1"
DIRECT = os.environ.get("DIRECT", "0") == "1"
TIMELINE = os.environ.get("TIMELINE", "0") == "1"
B_DOWN = os.environ.get("B_DOWN", "0") == "1"
NATIVE = os.environ.get("NATIVE", "0") == "1"
NATIVE_CPU = {}  # NATIVE: what one_run measured
FUNCS = [f for f in os.environ.get("FUNCS", ",".join([
    "store_on_data", "mt_deid_stream_feed", "mt_deid_stream_finish", "process_header",
    "mt_ds_parse", "mt_deid_apply", "mt_ds_encode", "mt_deid_stream_meta",
    "mt_route_ingest_meta", "mt_route_ingest_event", "deid_rec", "finish",
    "mt_index_rec_offer", "mt_ds_reader_feed", "send_store", "db_work", "commit_batch",
    "mt_tag_capture_feed", "commit_thread", "ix_put", "ix_queue_list", "batch_finish",
    "on_read", "mt_deid_hmac"])).split(",") if f]
ENV = dict(os.environ, TCP_NODELAY="1")


def durable(d):
    try:
        con = sqlite3.connect("file:%s?mode=ro" % os.path.join(d, "data", "index.sqlite"),
                              uri=True, timeout=5)
        try:
            return con.execute("SELECT count(*) FROM instances WHERE verified = 1").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def start(d, aet, port, conf, prefix=()):
    path = os.path.join(d, "mitral.yaml")
    with open(path, "w") as f:
        f.write(conf)
    log = open(os.path.join(d, "node.log"), "wb")
    p = subprocess.Popen(list(prefix) + [MITRAL, "serve", "-c", path, "--bind", "127.0.0.1",
                                         "--port", str(port), "--aet", aet, "--data",
                                         os.path.join(d, "data")],
                         stdout=log, stderr=subprocess.STDOUT, env=ENV)
    t = time.time()
    while not port_listening(port):
        if p.poll() is not None or time.time() - t > 120:
            sys.exit("route_callgrind: %s did not start (%s)" % (aet, log.name))
        time.sleep(0.05)
    return p


def stop(p):
    pid = p.pid
    if STRACE or PERF or TIMELINE:  # signal the traced node itself: strace ends with it and writes its summary
        try:
            with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
                pid = int(f.read().split()[0])
        except (OSError, IndexError, ValueError):
            pass
    os.kill(pid, signal.SIGTERM)
    try:
        p.wait(300)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def settle():
    """PERF and STRACE count kernel time: wait until SETTLE_S have passed since a bench deleted
    its trees (BENCH_DIR/last-cleanup, as bench/route), or creating each file costs several
    times the system time (ext4 without a journal skips recently freed inodes)."""
    if not (PERF or STRACE or TIMELINE or NATIVE):
        return
    try:
        with open(os.path.join(BENCH_DIR, "last-cleanup")) as f:
            wait = float(f.read()) + SETTLE_S - time.time()
    except (OSError, ValueError):
        return
    if wait > 0:
        print("  waiting %.0f s (SETTLE_S): the previous bench deleted its trees" % wait)
        time.sleep(wait)


def cleaned():
    with open(os.path.join(BENCH_DIR, "last-cleanup"), "w") as f:
        f.write("%f\n" % time.time())


def images(n):
    d = os.path.join(BENCH_DIR, "mr-%d" % n)
    if not os.path.isdir(d) or sum(len(f) for _, _, f in os.walk(d)) < n:
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        gen_mr.generate(d, count=n, series=max(1, n // 250), phases=25, seed="bench-%d" % n)
    fs = sorted(os.path.join(a, f) for a, _, fl in os.walk(d) for f in fl if f.endswith(".dcm"))
    return fs[:n]


def one_run(files, key, work, tag):
    """A under callgrind relays files to a native B; returns the callgrind.out path."""
    settle()
    da = os.path.join(work, "a-" + tag)
    db = os.path.join(work, "b-" + tag)
    os.makedirs(da)
    os.makedirs(db)
    pb, pa = free_port(), free_port()
    rules = os.path.join(da, "rules.yaml")
    with open(rules, "w") as f:
        f.write("rules:\n  - name: all\n    forward: [central]\n")
    conf = ("routing:\n  rules: %s\nforward:\n  associations: %d\n  retry_initial: 100ms\n"
            "destinations:\n  - name: central\n    ae_title: CENTRAL\n    host: 127.0.0.1\n"
            "    port: %d\n" % (rules, FWD_ASSOC, pb))
    if DEID:
        conf += "deid:\n  profile: basic\n  key_file: %s\n" % key
    out = os.path.join(work, "callgrind.out.%s" % tag)
    tool = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out]
    if STRACE:
        out = os.path.join(work, "strace.%s" % tag)
        tool = ["strace", "-f"] + STRACE_OPTS.split() + ["-o", out]
    elif NATIVE:
        tool = []
    elif TIMELINE:
        out = os.path.join(work, "trace.%s" % tag)
        tool = ["perf", "trace", "-o", out, "-e", "read,write,openat,linkat,rename,syncfs,close",
                "--"]
    elif PERF:
        out = os.path.join(work, "perf.%s" % tag)
        tool = ["perf", "record", "-q", "-g", "-e", "cpu-clock", "-F", "2999", "-o", out, "--"]
    on_b = DIRECT or (STRACE and STRACE_NODE == "B")  # B under the tool instead of A
    b = None if B_DOWN else start(db, "CENTRAL", pb, "", tool if on_b else ())
    a = None if DIRECT else start(da, "SITE", pa, conf, () if on_b else tool)
    aet, port = ("CENTRAL", pb) if DIRECT else ("SITE", pa)
    segs0 = out_segs()
    try:
        if files:
            parts = [files[i::ASSOC] for i in range(ASSOC)]
            procs = [subprocess.Popen(["storescu", "-aet", "MODALITY", "-aec", aet,
                                       "127.0.0.1", str(port)] + p, env=ENV,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for p in parts]
            for p in procs:
                if p.wait() != 0:
                    print("  warning: storescu failed")
            deadline = time.time() + 600
            while not B_DOWN and durable(db) < len(files) and time.time() < deadline:
                time.sleep(0.1)
            if not B_DOWN and durable(db) != len(files):
                print("  warning: B holds %d of %d" % (durable(db), len(files)))
        if NATIVE:
            NATIVE_CPU["segs"] = out_segs() - segs0
            for name, p in (("A", a), ("B", b)):
                if p:
                    with open("/proc/%d/stat" % p.pid) as f:
                        st = f.read().rsplit(")", 1)[1].split()
                    NATIVE_CPU[name] = (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
    finally:
        if a:
            stop(a)
        if b:
            stop(b)
    return out


def out_segs():
    """TcpOutSegs of the whole machine (nstat -az: absolute, no history kept)."""
    txt = subprocess.run(["nstat", "-az", "TcpOutSegs"], capture_output=True, text=True).stdout
    m = re.search(r"TcpOutSegs\s+(\d+)", txt)
    return int(m.group(1)) if m else 0


def total_ir(out):
    with open(out) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    return 0


def annotate(out, inclusive):
    """{function name: Ir} from callgrind_annotate."""
    cmd = ["callgrind_annotate", "--threshold=100"]
    if inclusive:
        cmd.append("--inclusive=yes")
    txt = subprocess.run(cmd + [out], capture_output=True, text=True).stdout
    res = {}
    for line in txt.splitlines():
        m = re.match(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(?:\S*:)?(\S+)", line)
        if m and ":" in line:
            name = line.rsplit(":", 1)[1].split()[0]
            ir = int(m.group(1).replace(",", ""))
            res[name] = max(res.get(name, 0), ir)
    return res


def perf_key(stack):
    """A sample's bucket: 'sys:' + the libc wrapper of the system call it is in, 'k:' for other
    kernel work (interrupts, page faults), or 'u:' + the user-space leaf symbol."""
    kern = [sym for sym, dso in stack if "kernel" in dso]
    if stack and "kernel" in stack[0][1]:
        if "do_syscall_64" in kern or "entry_SYSCALL_64_after_hwframe" in kern:
            user = [sym for sym, dso in stack if "kernel" not in dso]
            return "sys:" + (user[0] if user else "?")
        return "k:" + ("irq" if any("irq" in sym for sym in kern) else kern[-1])
    return "u:" + (stack[0][0] if stack else "?")


def perf_split(out):
    """Print the samples per thread (threads under 10 % together) and bucket (perf_key)."""
    txt = subprocess.run(["perf", "script", "-i", out, "-F", "tid,ip,sym,dso"],
                         capture_output=True, text=True).stdout
    per_tid, keys, tid, stack = {}, {}, None, []
    for line in txt.splitlines() + [""]:
        if not line.strip():
            if tid is not None:
                per_tid[tid] = per_tid.get(tid, 0) + 1
                k = perf_key(stack)
                keys.setdefault(tid, {})[k] = keys.get(tid, {}).get(k, 0) + 1
            tid, stack = None, []
        elif not line.startswith("\t"):
            tid, stack = line.split()[0], []
        else:
            m = re.match(r"(.*) \((.*)\)$", line.split(None, 1)[1])
            if m:
                stack.append((m.group(1).split("+")[0], m.group(2)))
    total = sum(per_tid.values()) or 1
    rest, rest_n = {}, 0
    for t in sorted(per_tid, key=per_tid.get, reverse=True):
        if per_tid[t] < 0.1 * total:
            rest_n += per_tid[t]
            for k, c in keys[t].items():
                rest[k] = rest.get(k, 0) + c
            continue
        print("thread %s: %.1f %% of %d samples" % (t, 100.0 * per_tid[t] / total, total))
        for k in sorted(keys[t], key=keys[t].get, reverse=True)[:16]:
            print("   %-44s %5.1f %%" % (k, 100.0 * keys[t][k] / total))
    print("the other threads together: %.1f %%" % (100.0 * rest_n / total))
    for k in sorted(rest, key=rest.get, reverse=True)[:12]:
        print("   %-44s %5.1f %%" % (k, 100.0 * rest[k] / total))


def timeline(out):
    """bench/ingest_timeline.py's steps of each one-association cycle, p50 and mean."""
    import statistics
    import ingest_timeline as tl
    ev = []
    with open(out) as f:
        for line in f:
            m = tl.LINE.match(line)
            if m:
                ev.append((float(m[1]), float(m[2]), int(m[3]), m[4], m[5], int(m[6])))
            elif (m := tl.CONTINUED.match(line)):
                ev.append((float(m[1]), float(m[2]), int(m[3]), m[4], "", int(m[5])))
    ev.sort(key=lambda e: e[0])
    got = tl.steps(ev)
    print("route_callgrind: TIMELINE=1, %s's cycle, ASSOC=%d, %d instances, %d cut; ms p50 / mean"
          % ("B (direct)" if DIRECT else "A", ASSOC, N, len(got["cycle"])))
    for k in tl.STEPS:
        if got[k]:
            print("  %-12s %7.3f %7.3f" % (k, statistics.median(got[k]), statistics.mean(got[k])))


def main():
    files = images(N)
    work = tempfile.mkdtemp(prefix="mt-bench-cg-")
    key = os.path.join(work, "key")
    with open(key, "wb") as f:
        f.write(b"route-callgrind-key-0123456789abcdef")  # fixed: the same pseudonyms each run
    os.chmod(key, 0o600)
    try:
        if STRACE:
            out = one_run(files, key, work, str(N))
            print("route_callgrind: STRACE=1, %s's system calls relaying %d instances (strace -c -f):"
                  % (STRACE_NODE, N))
            with open(out) as f:
                print(f.read())
            return
        if TIMELINE:
            timeline(one_run(files, key, work, str(N)))
            return
        if NATIVE:
            one_run(files, key, work, str(N))
            print("route_callgrind: NATIVE=1, %d instances, ASSOC=%d: CPU ms per instance %s; "
                  "TCP segments per instance %.2f (%s)" % (
                      N, ASSOC, ", ".join("%s %.3f" % (k, NATIVE_CPU[k] * 1000 / N)
                                          for k in ("A", "B") if k in NATIVE_CPU),
                      NATIVE_CPU["segs"] / N, MITRAL))
            return
        if PERF:
            out = one_run(files, key, work, str(N))
            node = "B (direct)" if DIRECT else "A"
            print("route_callgrind: PERF=1, %s's samples, %d instances (perf record -e "
                  "cpu-clock, %s); per thread, by system call or user-space leaf:" % (node, N, out))
            perf_split(out)
            return
        base = one_run(files[:BASE], key, work, "base")
        full = one_run(files, key, work, str(N))
        per = N - BASE
        t0, t1 = total_ir(base), total_ir(full)
        print("route_callgrind: %s, N=%d, ASSOC=%d, FWD_ASSOC=%d, %s" % (
            "DIRECT=1: B alone, storescu into it" if DIRECT else
            "A de-identifies (basic)" if DEID else "A stores as received", N, ASSOC, FWD_ASSOC,
            MITRAL))
        print("A total Ir: %d with %d instances, %d with %d; per instance %.0f k" % (
            t1, N, t0, BASE, (t1 - t0) / per / 1000))
        inc1, inc0 = annotate(full, True), annotate(base, True)
        print("inclusive k Ir per instance (minus the BASE run):")
        for fn in FUNCS:
            if fn in inc1:
                print("  %-28s %8.1f" % (fn, (inc1[fn] - inc0.get(fn, 0)) / per / 1000))
        self1, self0 = annotate(full, False), annotate(base, False)
        top = sorted(self1, key=lambda k: self1[k] - self0.get(k, 0), reverse=True)[:25]
        print("top self cost, k Ir per instance:")
        for fn in top:
            print("  %-40s %8.1f" % (fn, (self1[fn] - self0.get(fn, 0)) / per / 1000))
        if KEEP:
            print("kept: %s %s" % (base, full))
    finally:
        if not KEEP:
            for f in os.listdir(work):
                if f.startswith("callgrind.out"):
                    os.unlink(os.path.join(work, f))
        for f in os.listdir(work):
            p = os.path.join(work, f)
            if os.path.isdir(p):
                shutil.rmtree(p, ignore_errors=True)
        if not KEEP:
            shutil.rmtree(work, ignore_errors=True)
        cleaned()


if __name__ == "__main__":
    sys.exit(main())
