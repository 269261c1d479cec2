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
  PERF=1 N=1000 ...                         # instead: A's CPU samples by symbol (perf record
                                            # -e cpu-clock, kernel included), one run

Prints: total Ir of A with N and with BASE instances, Ir per instance, and the inclusive Ir per
instance of the functions listed in FUNCS (and the top self-cost functions), from
callgrind_annotate. Environment: N (200), BASE (20), ASSOC (1), FWD_ASSOC (4), DEID (1), MITRAL
(build/mitral), BENCH_DIR (/tmp/mitral-bench), KEEP (0), FUNCS (comma-separated names).
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
STRACE = os.environ.get("STRACE", "0") == "1"
STRACE_NODE = os.environ.get("STRACE_NODE", "A").upper()
PERF = os.environ.get("PERF", "0") == "1"
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
    if STRACE or PERF:  # signal the traced node itself: strace ends with it and writes its summary
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
        tool = ["strace", "-f", "-c", "-o", out]
    elif PERF:
        out = os.path.join(work, "perf.%s" % tag)
        tool = ["perf", "record", "-q", "-g", "-e", "cpu-clock", "-F", "2999", "-o", out, "--"]
    on_b = STRACE and STRACE_NODE == "B"  # B's system calls instead of A's
    b = start(db, "CENTRAL", pb, "", tool if on_b else ())
    a = start(da, "SITE", pa, conf, () if on_b else tool)
    try:
        if files:
            parts = [files[i::ASSOC] for i in range(ASSOC)]
            procs = [subprocess.Popen(["storescu", "-aet", "MODALITY", "-aec", "SITE",
                                       "127.0.0.1", str(pa)] + p, env=ENV,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for p in parts]
            for p in procs:
                if p.wait() != 0:
                    print("  warning: storescu failed")
            deadline = time.time() + 600
            while durable(db) < len(files) and time.time() < deadline:
                time.sleep(0.1)
            if durable(db) != len(files):
                print("  warning: B holds %d of %d" % (durable(db), len(files)))
    finally:
        stop(a)
        stop(b)
    return out


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
        if PERF:
            out = one_run(files, key, work, str(N))
            print("route_callgrind: PERF=1, A's samples relaying %d instances (perf record -e "
                  "cpu-clock, %s):" % (N, out))
            rep = subprocess.run(["perf", "report", "-i", out, "--stdio", "--sort",
                                  "sym", "--percent-limit", "0.4"],
                                 capture_output=True, text=True).stdout
            print("\n".join(ln for ln in rep.splitlines() if ln and not ln.startswith("#")))
            return
        base = one_run(files[:BASE], key, work, "base")
        full = one_run(files, key, work, str(N))
        per = N - BASE
        t0, t1 = total_ir(base), total_ir(full)
        print("route_callgrind: A %s, N=%d, ASSOC=%d, FWD_ASSOC=%d, %s" % (
            "de-identifies (basic)" if DEID else "stores as received", N, ASSOC, FWD_ASSOC,
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


if __name__ == "__main__":
    sys.exit(main())
