#!/usr/bin/python3
"""t_store_bad_uid: an instance whose UIDs are not UIDs (characters other than digits and dots,
an empty component, more than 64 characters; '/' and '..' among them, which must never reach
a path) is refused with A900 Data Set Does Not Match SOP Class and an ErrorComment naming the
UID problem (PS3.4 B.2.3: the data set violates its IOD; 0110 Processing Failure would blame
the node), nothing is stored anywhere, and the node goes on storing a valid instance."""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dul  # noqa: E402
import lib  # noqa: E402
from lib import check  # noqa: E402

SC = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image Storage


def elem(group, el, value):
    v = value.encode()
    if len(v) % 2:
        v += b"\0"
    return struct.pack("<HHI", group, el, len(v)) + v


def dataset(sop, study, series):
    return (elem(0x0008, 0x0016, SC) + elem(0x0008, 0x0018, sop) + elem(0x0010, 0x0010, "UID^BAD") +
            elem(0x0020, 0x000D, study) + elem(0x0020, 0x000E, series))


def store(node, sop, study, series):
    a = dul.Assoc("127.0.0.1", node.port, contexts=[(SC, [dul.IMPLICIT_LE])])
    check(a.associate(), "associated")
    status, rsp = a.store(a.pcid_for(SC), SC, sop, dataset(sop, study, series))
    a.release()
    return status, rsp.get("comment") or ""


def body():
    if not lib.IS_MITRAL:
        lib.skip("mitral's statuses")
    node = lib.Node("baduid").start()
    outside = lib.tmpdir("mt-baduid-outside-")
    cases = [
        ("1.2.3/../../" + os.path.basename(outside) + "/x", "1.2.3", "1.2.3.4"),
        ("1.2.3.5", "../../../../" + outside.strip("/") + "/y", "1.2.3.6"),
        ("1.2.3.7", "1.2.3.8", "1.2..3"),
        ("1.2.3.9", "1.2.3.10", "1.2.3.11." + "1" * 60),  # (the command's own UIDs are
        # checked as the command set is parsed: one past 64 characters aborts the association)
        ("1.2.3.12", "1.2.3.abc", "1.2.3.13"),
    ]
    for sop, study, series in cases:
        status, comment = store(node, sop, study, series)
        check(status == 0xA900, "%s / %s / %s: status A900, got %04x (%s)"
              % (sop, study, series, status, comment))
        check("UID" in comment, "the ErrorComment names the UID problem: %r" % comment)
    check(node.stored_paths() == [], "nothing stored: %s" % node.stored_paths()[:3])
    check(os.listdir(outside) == [], "nothing written outside the storage root")
    check(node.tmp_files() == [], "no temp file left")
    status, comment = store(node, "1.2.3.100", "1.2.3.101", "1.2.3.102")
    check(status == 0, "a valid instance is still stored: %04x %s" % (status, comment))
    check(len(node.stored_paths()) == 1, "one file stored")
    check(node.stop() == 0, "node exits 0")


lib.run_guarded(body)
