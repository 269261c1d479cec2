#!/usr/bin/python3
"""t_route_order.py - order within a series survives a destination that was down (issue 6:
"order within a study is kept where practical"; README: a series' instances go out in
arrival order).

Three series are stored interleaved at A while the destination (a scripted SCP, window 4)
does not listen, A forwarding over 2 associations: the first instance of each series meets
the closed port, the rest is queued after that. Once the destination listens, each series
must arrive in the order A received it: the entries that met the closed port must not wait
behind their own series' younger ones. Before, a failed association gave its batch's entries
a backoff of their own beside the destination's (both 2 s + 0-25 % jitter here), so the
destination's next scan could find the younger entries due and the older ones not yet, and
sent them last; and while a failed batch's outcome was held (up to 0.5 s) a scan skipped
those rows but took their series' younger ones.
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lib  # noqa: E402
import dul_scp  # noqa: E402
import routefx  # noqa: E402

try:
    import pydicom  # noqa: E402, F401
except ImportError:
    lib.skip("pydicom not installed")
if not lib.IS_MITRAL:
    lib.skip("needs mitral")


def main():
    work = lib.tmpdir("mt-order-")
    port = lib.free_port()
    a = routefx.site(port, {"forward.retry_initial": "2s", "forward.retry_max": "2s",
                            "forward.max_async_operations": "4"}, assoc=2)
    files, order = [], {}
    study = "1.2.826.0.1.3680043.8.498.81"
    for i in range(8):
        for s in range(3):
            p = os.path.join(work, "s%d_%d.dcm" % (s, i))
            order.setdefault(s, []).append(
                routefx.mr_file(p, i, study, study + ".%d" % s, "ORDPID", "ORD^PAT", 8))
            files.append(p)
    # the first instance of each series meets the closed port; the rest is queued after that
    r = lib.storescu(a, files[:3], aet="PACS")
    lib.wait_for(lambda: "no association" in a.log_text(), "A found no association", 30)
    r2 = lib.storescu(a, files[3:], aet="PACS")
    lib.check(sum(1 for _, s in lib.store_results(r.stdout + r2.stdout) if s == "Success") ==
              len(files), "every instance stored at A")
    scp = dul_scp.Scp(port, window=4)
    lib.wait_for(lambda: routefx.queue_len(a) == 0, "A's queue drains", 60)
    got = [sop for sop, _ in scp.answered]
    for s, sops in sorted(order.items()):
        seq = [x for x in got if x in sops]
        lib.check(seq == sops, "series %d arrived in A's arrival order (positions %s)"
                  % (s, [sops.index(x) for x in seq]))
    lib.check(len(got) == len(files), "each instance sent once (%d sends, %d instances)"
              % (len(got), len(files)))
    a.stop()
    scp.stop()


lib.run_guarded(main)
