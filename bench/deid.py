#!/usr/bin/python3
"""bench/deid.py - de-identification throughput (issue 4).

  bench/deid.py [--mitral build/mitral] [--instances 300] [--rows 256] [--profile NAME|FILE]
                [--keep DIR]

Inputs: a generated CMR study (tests/deid/check_leaks.py's generator: identifiers everywhere,
private tags, nested sequences) of --instances instances of --rows x --rows 16-bit pixels.

1. Batch CLI: `mitral deid --profile cmr-registry` over the directory vs `gdcmanon -e` (GDCM's
   Basic Profile, with a throw-away certificate) over the same directory: instances/s each,
   and the ratio (target: mitral >= 2x gdcmanon), by wall time and by CPU time (user+sys of
   the process: the wall time of the CLI includes its syncfs, which on a shared machine also
   waits for other processes' writes). Best of 5 runs.
2. End to end through C-STORE: one storescu association sending every instance to a node with
   `deid.profile: cmr-registry` (or --profile) and to a node with `deid.profile: none`, in 3
   interleaved rounds; instances/s each (best round) and the cost of de-identification
   (target: < 10% of ingest throughput).

Timings are wall-clock on a shared machine: compare the two columns of one run, not runs.
Build mitral without sanitizers (-DCMAKE_BUILD_TYPE=Release) for meaningful numbers.
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "deid"))
import check_leaks  # noqa: E402
import pydicom  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def make_inputs(d, n, rows):
    per = max(1, n // 3)
    paths = check_leaks.make_cmr_study(d, n_series=3, n_inst=per)
    for p in paths:  # a realistic image size
        ds = pydicom.dcmread(p)
        ds.Rows = ds.Columns = rows
        ds.PixelData = os.urandom(rows * rows * 2)
        ds.save_as(p, write_like_original=False)
    return paths


def best(f, k=3):
    ts = []
    for _ in range(k):
        t0 = time.monotonic()
        f()
        ts.append(time.monotonic() - t0)
    return min(ts)


def best_cpu(f, k=3, prepare=None):
    """(best wall time, best CPU time user+sys of the child processes) of k runs. On a shared
    machine the CLI's wall time is dominated by its one syncfs (which also waits for other
    processes' dirty pages): the CPU time compares the tools' work. prepare() runs before each
    timed run, untimed: it removes the previous run's output and syncs the file system, so
    neither tool is charged for deleting or flushing what came before it."""
    ts, cs = [], []
    for _ in range(k):
        if prepare:
            prepare()
        c0, t0 = os.times(), time.monotonic()
        f()
        c1 = os.times()
        ts.append(time.monotonic() - t0)
        cs.append(c1.children_user - c0.children_user + c1.children_system - c0.children_system)
    return min(ts), min(cs)


def node(mitral, work, name, profile, key):
    d = os.path.join(work, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    port = free_port()
    conf = os.path.join(d, "mitral.yaml")
    with open(conf, "w") as f:
        f.write("node:\n  bind: 127.0.0.1\n  port: %d\n  data_dir: %s\n" % (port, d))
        f.write("deid:\n  profile: %s\n  key_file: %s\n" % (profile, key))
    log = open(os.path.join(d, "log"), "w")
    p = subprocess.Popen([mitral, "serve", "-c", conf], stdout=log, stderr=subprocess.STDOUT)
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    return p, port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mitral", default=os.path.join(ROOT, "build", "mitral"))
    ap.add_argument("--instances", type=int, default=300)
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--keep")
    ap.add_argument("--profile", default="cmr-registry",
                    help="profile NAME or FILE for the CLI and the de-identifying node")
    a = ap.parse_args()
    work = a.keep or tempfile.mkdtemp(prefix="mt-bench-deid-")
    os.makedirs(work, exist_ok=True)
    src = os.path.join(work, "in")
    shutil.rmtree(src, ignore_errors=True)
    os.makedirs(src)
    inputs = make_inputs(src, a.instances, a.rows)
    n = len(inputs)
    key = os.path.join(work, "key")
    with open(key, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(key, 0o600)
    print("bench/deid: %d instances, %dx%d 16-bit, mitral %s" % (n, a.rows, a.rows, a.mitral))

    out = os.path.join(work, "out")

    def fresh(d, make=False):
        def prepare():
            shutil.rmtree(d, ignore_errors=True)
            if make:
                os.makedirs(d)
            os.sync()
        return prepare

    def run_mitral():
        subprocess.run([a.mitral, "deid", "--profile", a.profile, "--key", key, src, out],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)

    t_m, c_m = best_cpu(run_mitral, 5, fresh(out))
    print("batch CLI  mitral deid (profile):      %8.1f instances/s  (%.1f per CPU s)"
          % (n / t_m, n / max(c_m, 1e-3)))
    if shutil.which("gdcmanon"):
        cert, pkey = os.path.join(work, "c.pem"), os.path.join(work, "k.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        pkey, "-out", cert, "-days", "2", "-subj", "/CN=bench"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        gout = os.path.join(work, "gout")

        def run_gdcm():
            subprocess.run(["gdcmanon", "-e", "-c", cert, "-i", src, "-o", gout],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)

        t_g, c_g = best_cpu(run_gdcm, 5, fresh(gout, make=True))
        print("batch CLI  gdcmanon -e (basic):        %8.1f instances/s  (%.1f per CPU s)"
              % (n / t_g, n / max(c_g, 1e-3)))
        print("           mitral / gdcmanon:          %8.2fx wall, %.2fx CPU (target >= 2x)"
              % (t_g / t_m, c_g / max(c_m, 1e-3)))
    else:
        print("batch CLI  gdcmanon not installed (Debian libgdcm-tools): skipped")

    if not shutil.which("storescu"):
        print("C-STORE    storescu not installed: skipped")
        return 0
    def node_cpu(pid):
        """utime + stime of the node so far, seconds (/proc/PID/stat fields 14 and 15)."""
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def send(profile, i):
        p, port = node(a.mitral, work, "node-%s-%d" % ("none" if profile == "none" else "deid", i),
                       profile, key)
        try:
            env = dict(os.environ, TCP_NODELAY="1")
            t0 = time.monotonic()
            subprocess.run(["storescu", "-aec", "MITRAL", "127.0.0.1", str(port)] + inputs,
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=True)
            wall = time.monotonic() - t0
            return wall, node_cpu(p.pid)
        finally:
            p.terminate()
            p.wait()

    # Interleaved rounds (none, cmr-registry, none, ...), each node on a fresh data directory,
    # so that a change of the machine's load during the run hits both columns alike.
    times = {"none": [], a.profile: []}
    cpus = {"none": [], a.profile: []}
    for i in range(3):
        for profile in times:
            wall, cpu = send(profile, i)
            times[profile].append(wall)
            cpus[profile].append(cpu)
    rates = {profile: n / min(ts) for profile, ts in times.items()}
    for profile in times:
        print("C-STORE    node, deid.profile %-12s %8.1f instances/s, node CPU %.0f us/instance"
              % (profile + ":", rates[profile], 1e6 * min(cpus[profile]) / n))
    cost = 1 - rates[a.profile] / rates["none"]
    print("           de-identification cost:     %8.1f %% of ingest throughput (target < 10%%)"
          % (100 * cost))
    print("           node CPU with / without:    %8.2fx (the steadier measure on a shared "
          "machine)" % (min(cpus[a.profile]) / max(min(cpus["none"]), 1e-6)))
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
