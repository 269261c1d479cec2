#!/usr/bin/python3
"""
bench/flush_floor.py - what one durable C-STORE cannot go below on this machine, measured.

Two numbers, taken in the same run so they see the same load:
  flush    a 130 KB file written to a temp name, renamed, then syncfs(2) of its file system:
           the one flush per batch that mitral's ingest pays (docs/internals/durability.md)
  ignore   storescu over one association to `storescp --ignore` (receives, stores nothing):
           the SCU, the network and the DIMSE round trip, with no storage at all
and, for reference, storescp writing files (no fsync: bench/ingest's anchor) and mitral itself
(MITRAL, default build/mitral; durable), all over one association. With one association
storescu waits for each response, so a durable node cannot answer faster than ignore + flush
per instance, whatever it does in between: when that floor is above storescp's time, parity
over one association is out of reach on this machine, and mitral minus the floor is what the
node's own steps cost (durability.md, "The one-association floor").

  bench/flush_floor.py      # DIR=/tmp  N=300 files a storescu part, REPS=5 alternations (medians)
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
N = int(os.environ.get("N", "300"))
REPS = int(os.environ.get("REPS", "5"))
BENCH_DIR = os.environ.get("BENCH_DIR", "/tmp/mitral-bench")
MITRAL = os.environ.get("MITRAL", os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "build", "mitral"))
libc = ctypes.CDLL("libc.so.6", use_errno=True)


libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
SFR_WAIT_ALL = 1 | 2 | 4  # WAIT_BEFORE | WRITE | WAIT_AFTER


def flush_latency(reps=300, written=False):
    """syncfs after a 130 KB write and a rename; written: the data is on the device first
    (sync_file_range, not timed), so only the metadata and the device FLUSH are left: the flush
    of a node that streamed each instance to disk while it arrived."""
    d = tempfile.mkdtemp(prefix="mt-flush-", dir=DIR)
    data = os.urandom(130 * 1024)
    fd_dir = os.open(d, os.O_RDONLY)
    lat = []
    try:
        for i in range(reps):
            tmp, final = os.path.join(d, "t%d.part" % i), os.path.join(d, "f%d.dcm" % i)
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                if written:
                    libc.sync_file_range(f.fileno(), 0, 0, SFR_WAIT_ALL)
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


def storescu_rate(files, extra, mitral=False):
    d = tempfile.mkdtemp(prefix="mt-flush-scp-", dir=DIR)
    port = free_port()
    env = dict(os.environ, TCP_NODELAY="1")
    cmd = ([MITRAL, "serve", "--bind", "127.0.0.1", "--port", str(port), "--aet", "SCP",
            "--data", os.path.join(d, "data")] if mitral else
           ["storescp", "--fork", "-dhl", "-aet", "SCP", "-od", d] + extra + [str(port)])
    scp = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
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
    sets = sorted(x for x in os.listdir(BENCH_DIR) if x.startswith("mr-")) if os.path.isdir(
        BENCH_DIR) else []
    src = "mr-2000" if "mr-2000" in sets else (sets[-1] if sets else "mr-2000")
    for root, _, fs in os.walk(os.path.join(BENCH_DIR, src)):
        files += [os.path.join(root, f) for f in fs if f.endswith(".dcm")]
    files = sorted(files)[:N]
    if not files or not shutil.which("storescp"):
        sys.exit("bench/flush_floor.py: needs dcmtk and bench/ingest's images (run it once)")
    have_mitral = os.access(MITRAL, os.X_OK)
    rows = []  # one per repetition: the parts alternate, so each sees the same load
    for _ in range(REPS):
        lat = sorted(flush_latency(reps=150))
        pre = sorted(flush_latency(reps=150, written=True))
        ign = storescu_rate(files, ["--ignore"])
        scp = storescu_rate(files, [])
        mit = storescu_rate(files, [], mitral=True) if have_mitral else float("nan")
        rows.append((statistics.median(lat), lat[int(len(lat) * 0.9)], statistics.median(pre),
                     ign, scp, mit))
    med = [statistics.median(r[i] for r in rows) for i in range(6)]
    print("load average at the end: %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
    print("%-34s %s %8s" % ("per instance, ms", " ".join("%6s" % ("rep%d" % (i + 1))
                                                        for i in range(REPS)), "median"))
    for i, what in enumerate(("syncfs after write+rename p50", "syncfs p90",
                              "syncfs, data already written, p50",
                              "storescu -> storescp --ignore", "storescu -> storescp",
                              "storescu -> mitral")):
        print("%-34s %s %8.3f" % (what, " ".join("%6.3f" % (r[i] * 1000) for r in rows),
                                  med[i] * 1000))
    p50, _, pre, ign, scp, mit = med
    # storescp's own cost over the round trip is writing a file to the page cache; a durable
    # node's is at least one flush: parity needs the flush below storescp's own cost
    own = scp - ign
    print("medians: storescp's own cost over the round trip %.3f ms an instance; the flush "
          "%.3f ms (%.3f with the data already written)" % (own * 1000, p50 * 1000, pre * 1000))
    floor = ign + p50
    print("a durable node over 1 association: >= %.3f ms an instance (ignore + flush p50) = "
          "<= %.0f images/s (<= %.0f with the data already written); storescp: %.0f images/s; "
          "best possible mitral/storescp %.2f: parity %s" % (
              floor * 1000, 1 / floor, 1 / (ign + pre), 1 / scp, scp / floor,
              "out of reach" if floor > scp else "possible in principle"))
    if have_mitral:
        print("mitral: %.0f images/s, %.3f ms an instance above that floor (its own steps)" % (
            1 / mit, (mit - floor) * 1000))

if __name__ == "__main__":
    main()
