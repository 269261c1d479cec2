#!/usr/bin/python3
"""t_route_slow_peer.py - forwarding from the page cache (sendfile, node/scu.c send_data_file)
to a destination that reads slowly: node A forwards 12 instances of ~720 KB with a window of
16 to a scripted SCP (dul_scp.py, slow_read) whose small receive buffer and pauses fill A's
socket part way through instances; the rest of each is read from the file and queued behind
what went out, and every data set still arrives byte for byte as A stored it, in several
P-DATA-TF fragments (the SCP's Maximum Length is 64 KiB). A's debug log says where a direct
write stopped; the test fails if that never happened (the path it exists for was not
taken) on a kernel with cachestat(2) (Linux 6.5+); on an older one (Debian 12's own 6.1)
nothing goes from the page cache and only the byte-for-byte checks apply."""
import os

import dul_scp
import lib
import routefx

try:
    import pydicom  # noqa: F401 (routefx writes the files with it)
    from pydicom.uid import generate_uid
except ImportError:
    pydicom = None

N = 12


def body():
    if pydicom is None:
        lib.skip("pydicom not available")
    work = lib.tmpdir("mt-route-slow-")
    study, series = generate_uid(), generate_uid()
    files = []
    for i in range(N):
        p = os.path.join(work, "s%03d.dcm" % i)
        routefx.mr_file(p, i, study, series, "SLOW1", "Slow^Peer", 600)
        files.append(p)
    port = lib.free_port()
    scp = dul_scp.Scp(port, window=16, slow_read=0.001)
    a = routefx.site(port, {"forward.retry_initial": "50ms", "log.level": "debug"})
    try:
        routefx.relay_byte_for_byte(a, scp, files)
        if routefx.kernel_has_cachestat():
            lib.check("the rest queued" in a.log_text(),
                      "A's socket filled during an instance (the queued-rest path ran)")
    finally:
        a.stop()
        scp.stop()


lib.run_guarded(body)
lib.finish()
