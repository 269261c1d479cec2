#!/usr/bin/python3
"""
bench/flush_floor.py - what one durable C-STORE cannot go below on this machine, measured.

Two numbers, taken in the same run so they see the same load:
  flush    a 130 KB file written to a temp name, renamed, then syncfs(2) of its file system:
           the one flush per batch that mitral's ingest pays (docs/internals/durability.md)
  ignore   storescu over one association to `storescp --ignore` (receives, stores nothing):
           the SCU, the network and the DIMSE round trip, with no storage at all
and, for reference, storescp writing files (no fsync: bench/ingest's anchor). With one
association storescu waits for each response, so a durable node cannot answer faster than
ignore + flush per instance, whatever it does in between.

  bench/flush_floor.py                 # DIR=/tmp  N=500 (files for the storescu part)
"""
import ctypes
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

DIR = os.environ.get("DIR", "/tmp")
N = int(os.environ.get("N", "500"))
BENCH_DIR = os.environ.get("BENCH_DIR", "/tmp/mitral-bench")
libc = ctypes.CDLL("libc.so.6", use_errno=True)


def flush_latency(reps=300):
    d = tempfile.mkdtemp(prefix="mt-flush-", dir=DIR)
    data = os.urandom(130 * 1024)
    fd_dir = os.open(d, os.O_RDONLY)
    lat = []
    try:
        for i in range(reps):
            tmp, final = os.path.join(d, "t%d.part" % i), os.path.join(d, "f%d.dcm" % i)
            with open(tmp, "wb") as f:
                f.write(data)
            os.rename(tmp, final)
            t = time.perf_counter()
            if libc.syncfs(fd_dir) != 0:
                raise OSError(ctypes.get_errno(), "syncfs")
            lat.append(time.perf_counter() - t)
    finally:
        os.close(fd_dir)
        shutil.rmtree(d, ignore_errors=True)
    return lat


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def storescu_rate(files, extra):
    d = tempfile.mkdtemp(prefix="mt-flush-scp-", dir=DIR)
    port = free_port()
    env = dict(os.environ, TCP_NODELAY="1")
    scp = subprocess.Popen(["storescp", "--fork", "-dhl", "-aet", "SCP", "-od", d] + extra +
                           [str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=env)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        t = time.monotonic()
        subprocess.run(["storescu", "-aec", "SCP", "127.0.0.1", str(port)] + files, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        return (time.monotonic() - t) / len(files)
    finally:
        scp.terminate()
        scp.wait()
        shutil.rmtree(d, ignore_errors=True)


def main():
    files = []
    for root, _, fs in os.walk(os.path.join(BENCH_DIR, "mr-2000")):
        files += [os.path.join(root, f) for f in fs if f.endswith(".dcm")]
    files = sorted(files)[:N]
    if not files or not shutil.which("storescp"):
        sys.exit("bench/flush_floor.py: needs dcmtk and bench/ingest's images (run it once)")
    rows = []
    for _ in range(2):
        lat = sorted(flush_latency())
        ign = storescu_rate(files, ["--ignore"])
        scp = storescu_rate(files, [])
        rows.append((statistics.median(lat), lat[int(len(lat) * 0.9)], ign, scp))
    print("%-28s %8s %8s" % ("per instance, ms", "run 1", "run 2"))
    for i, what in enumerate(("syncfs after write+rename p50", "syncfs p90",
                              "storescu -> storescp --ignore", "storescu -> storescp")):
        print("%-28s %8.3f %8.3f" % (what, rows[0][i] * 1000, rows[1][i] * 1000))
    for r, (p50, _, ign, scp) in enumerate(rows):
        print("run %d: a durable node over 1 association: >= %.3f ms an instance (ignore + flush "
              "p50) = <= %.0f images/s; storescp: %.0f images/s" % (
                  r + 1, (ign + p50) * 1000, 1 / (ign + p50), 1 / scp))


if __name__ == "__main__":
    main()
