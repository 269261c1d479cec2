#!/usr/bin/python3
"""t_route_refused.py - what the forwarder does with each kind of C-STORE response status
(PS3.4 B.2.3, PS3.7 Annex C), from a scripted destination (dul_scp.py) that answers chosen
statuses per SOP Instance UID.

- B000 (warning: coercion): delivered, the entry is removed.
- A700 (Refused: Out of Resources) and 0110 (Processing Failure): transient at the destination:
  retried with backoff, and delivered once the destination answers 0000.
- A900 (Data Set does not match SOP Class), C000 (Cannot Understand), 0122 (SOP Class not
  supported), 0124 (Not Authorized): the destination would refuse the same bytes again; the
  entry is dead at its first answer (as a DICOMweb destination's FailureReason is,
  docs/conformance.md 6.7), not retried for hours, and `mitral queue list` says why.
- The destination's Error Comment (0000,0902) is kept with the status in the entry's
  last_error (what an admin reads in `mitral queue list`), and logged.
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

STATUSES = [(0xB000, None), (0xA700, "disk full"), (0x0110, None), (0xA900, None),
            (0xC000, "cannot parse the data set"), (0x0122, None),
            (0x0124, "not in a project of ours")]


def rows(node):
    return {r["sop_instance_uid"]: r for r in node.query(
        "SELECT sop_instance_uid, state, attempts, last_error FROM forward_queue")}


def main():
    work = lib.tmpdir("mt-refused-")
    port = lib.free_port()
    scp = dul_scp.Scp(port, window=4)
    a = routefx.site(port, {"forward.retry_initial": "100ms", "forward.retry_max": "200ms",
                            "forward.max_attempts": "1000"})
    files, sop_of = [], {}
    study = "1.2.826.0.1.3680043.8.498.78"
    for i, (status, comment) in enumerate(STATUSES):
        p = os.path.join(work, "%d.dcm" % i)
        sop = routefx.mr_file(p, i, study, study + ".%d" % i, "REFPID", "REF^PAT", 8)
        scp.statuses[sop] = (status, comment)
        sop_of[status] = sop
        files.append(p)
    r = lib.storescu(a, files, aet="PACS")
    lib.check(sum(1 for _, s in lib.store_results(r.stdout) if s == "Success") == len(files),
              "every instance stored at A")
    transient = (sop_of[0xA700], sop_of[0x0110])
    lib.wait_for(lambda: all(rows(a).get(s, {}).get("attempts", 0) >= 3 for s in transient),
                 "A700 and 0110 are retried", 60)
    time.sleep(1)  # the other outcomes are written by now (outcomes are held <= 0.5 s)
    q = rows(a)
    lib.check(sop_of[0xB000] not in q, "B000 (warning) is delivered: entry removed")
    for st in (0xA700, 0x0110):
        e = q.get(sop_of[st], {})
        lib.check(e.get("state") == 0, "0x%04X is transient: retried, pending (%s)" % (st, e))
    for st in (0xA900, 0xC000, 0x0122, 0x0124):
        e = q.get(sop_of[st], {})
        lib.check(e.get("state") == 1 and e.get("attempts") == 1,
                  "0x%04X is a refusal: dead at its first answer (%s)" % (st, e))
        lib.check("0x%04X" % st in (e.get("last_error") or ""),
                  "0x%04X: last_error names the status (%s)" % (st, e.get("last_error")))
    for st, comment in STATUSES:
        if comment and st != 0xB000:
            e = q.get(sop_of[st], {})
            lib.check(comment in (e.get("last_error") or ""),
                      "0x%04X: last_error has the destination's Error Comment (%s)"
                      % (st, e.get("last_error")))
    lib.check("cannot parse the data set" in a.log_text(), "the Error Comment is logged")
    answers = [s for s, st in scp.answered if st in (0xA900, 0xC000, 0x0122, 0x0124)]
    lib.check(len(answers) == 4, "each refused instance was sent once (%d sends)" % len(answers))
    r = lib.run([lib.MITRAL, "queue", "list", "--dead", "--data", a.data])
    lib.check(r.returncode == 0 and "4 entries" in r.stdout, "queue list --dead: the 4 refusals")
    # the destination recovers: the transient ones arrive
    for st in (0xA700, 0x0110):
        del scp.statuses[sop_of[st]]
    lib.wait_for(lambda: all(s not in rows(a) for s in transient),
                 "A700 / 0110 delivered once the destination answers 0000", 60)
    lib.check(set(transient) <= set(scp.acked), "the destination acknowledged them")
    a.stop()
    scp.stop()


lib.run_guarded(main)
