#!/usr/bin/python3
"""t_route_evicted.py - forwarding a stored file whose pages left the page cache after the
pool thread found them there (node/scu.c write_file, node/svc/retrieve.c read_first): node A
forwards 8 instances of ~720 KB, one at a time (the scripted SCP, dul_scp.py, offers no
asynchronous operations window), to a destination that, before answering each C-STORE, drops
the next instance's file from the page cache (posix_fadvise DONTNEED: it is durable, so clean).
The next instance was prepared while the current one was awaited, so when the loop comes to
send it its pages are gone: the loop checks the cache again and has the data set read on a
pool thread instead of waiting for the disk in sendfile(2). Every data set must arrive byte
for byte as A stored it; on a kernel with cachestat(2) (Linux 6.5+) A's debug log must say
that the path ran. On an older kernel (Debian 12's own 6.1) nothing goes from the page cache
and only the byte-for-byte checks apply."""
import os
import time

import dul_scp
import lib
import routefx

try:
    import pydicom  # noqa: F401 (routefx writes the files with it)
    from pydicom.uid import generate_uid
except ImportError:
    pydicom = None

N = 8


def evict(paths):
    for p in paths:
        try:
            fd = os.open(p, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def body():
    if pydicom is None:
        lib.skip("pydicom not available")
    work = lib.tmpdir("mt-route-evict-")
    study, series = generate_uid(), generate_uid()
    files = []
    for i in range(N):
        p = os.path.join(work, "e%03d.dcm" % i)
        routefx.mr_file(p, i, study, series, "EVICT1", "Evicted^Pages", 600)
        files.append(p)
    node = {}

    def policy(scp, sop, n):
        time.sleep(0.2)  # the next instance's PREPARE has found its file cached
        # Only the next instance's file (A forwards in arrival order, its pk order): the one
        # prepared while this one was awaited. Evicting every stored file here made the test
        # depend on timing: when storescu had stored all N before the first answer, every
        # file was gone before its PREPARE and none went the path under test.
        a = node["a"]
        rows = a.query("SELECT sop_instance_uid, path FROM instances ORDER BY pk")
        uids = [r["sop_instance_uid"] for r in rows]
        if sop in uids and uids.index(sop) + 1 < len(rows):
            evict([os.path.join(a.storage, rows[uids.index(sop) + 1]["path"])])
        return "ack"

    port = lib.free_port()
    scp = dul_scp.Scp(port, window=None, policy=policy)
    a = routefx.site(port, {"forward.retry_initial": "50ms", "log.level": "debug"})
    node["a"] = a
    try:
        routefx.relay_byte_for_byte(a, scp, files)
        if routefx.kernel_has_cachestat():
            lib.check("no longer in the page cache" in a.log_text(),
                      "a file evicted after its PREPARE was read on the pool, not sent by "
                      "sendfile from the loop")
    finally:
        a.stop()
        scp.stop()


lib.run_guarded(body)
lib.finish()
