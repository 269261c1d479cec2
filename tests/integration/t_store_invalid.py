#!/usr/bin/python3
"""t_store_invalid: the invalid instances of ../shared/testdata are refused, and nothing of them
is stored. Sent with dul.py in their own transfer syntax, data set bytes as in the file:

  truncated files (MANIFEST: MR_truncated, rtplan_truncated, emri_small_jpeg_2k_lossless_too_short)
      -> C000 Cannot Understand (or the association aborted), no file
  files whose data set lacks Study or Series Instance UID
      -> A900 Data Set Does Not Match SOP Class, no file
  a data set whose SOP Instance UID differs from the command's            -> A900

Then a valid instance is still stored: the refusals leave the node as it was.
"""
import os

import pydicom

import dul
import gen_mr
import lib

TRUNCATED = ("pydicom/test_files/MR_truncated.dcm", "pydicom/test_files/rtplan_truncated.dcm",
             "pydicom-data/emri_small_jpeg_2k_lossless_too_short.dcm")


def missing_uids(root, classes):
    out = []
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for fn in sorted(files):
            p = os.path.join(dirpath, fn)
            m = lib.read_meta(p)
            if not m or m.get("sop_class_uid") not in classes or not m.get("transfer_syntax_uid"):
                continue
            try:
                ds = pydicom.dcmread(p, stop_before_pixels=True)
                if ds.get("SOPClassUID") != m["sop_class_uid"] or ds.get("SOPInstanceUID") != m["sop_instance_uid"]:
                    continue
                if not lib.uid_ok(str(ds.SOPInstanceUID)):
                    continue
                if "StudyInstanceUID" in ds and "SeriesInstanceUID" in ds:
                    continue
            except Exception:  # noqa: BLE001
                continue
            out.append(p)
    return out


def send(node, path, cls=None, sop=None):
    """-> status, or 'aborted'"""
    fcls, fsop, ts, data = dul.split_part10(path)
    cls, sop = cls or fcls, sop or fsop
    a = dul.Assoc("127.0.0.1", node.port, called=node.aet, contexts=[(cls, [ts])])
    if not a.associate() or 1 not in a.accepted:
        a.close()
        return "not accepted"
    try:
        st, rsp = a.store(1, cls, sop, data)
        a.release()
        return st
    except (dul.Closed, OSError):
        a.close()
        return "aborted"


def body():
    if not lib.IS_MITRAL:
        lib.skip("checks mitral's failure statuses (MT_TARGET=%s)" % lib.TARGET)
    have_shared = os.path.isdir(lib.TESTDATA)
    node = lib.Node("invalid").start()
    if have_shared:
        for rel in TRUNCATED:
            p = os.path.join(lib.TESTDATA, rel)
            if not os.path.exists(p):
                continue
            st = send(node, p)
            lib.check(st in (0xC000, "aborted") or (isinstance(st, int) and (st & 0xF000) == 0xC000),
                      "%s: status %r, want C000 (or abort)" % (rel, st))
        miss = missing_uids(lib.TESTDATA, lib.storage_sop_classes())
        lib.log("%d files without Study/Series Instance UID" % len(miss))
        for p in miss:
            st = send(node, p)
            lib.check(st == 0xA900, "%s: status %r, want A900" % (os.path.relpath(p, lib.TESTDATA), st))
    else:
        lib.log("(no ../shared: only the generated cases)")
    good = gen_mr.generate(lib.tmpdir("mt-inv-src-"), count=2, series=1, seed="t_store_invalid")
    cls, sop, ts, data = dul.split_part10(good[0])
    st = send(node, good[0], sop=sop[:-1] + ("1" if sop[-1] != "1" else "2"))
    lib.check(st == 0xA900, "SOP Instance UID differs from the command: status %r, want A900" % (st,))

    lib.wait_for(lambda: not node.tmp_files(), "temp files gone")
    lib.check(node.stored_paths() == [], "refused instances left files: %r" % node.stored_paths()[:3])
    lib.check(node.stats().get("instances") == 0, "refused instances indexed: %r" % node.stats())
    st = send(node, good[1])
    lib.check(st == 0, "a valid instance after the refusals: status %r" % (st,))
    lib.check(len(node.stored_paths()) == 1, "valid instance not stored")
    lib.check(node.stop() == 0, "exit code after SIGTERM")


lib.run_guarded(body)
