#!/usr/bin/python3
"""t_store_missing_uid: a data set that lacks SOP Class UID or SOP Instance UID (or is empty)
is refused with A900 and an ErrorComment that says which attribute is missing, not that it
"differs from the command" (the admin reading the sender's log must see what to fix); one whose
UIDs differ from the command's still says "differs". Nothing is stored."""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dul  # noqa: E402
import lib  # noqa: E402
from lib import check  # noqa: E402

SC = "1.2.840.10008.5.1.4.1.1.7"


def elem(group, el, value):
    v = value.encode()
    if len(v) % 2:
        v += b"\0"
    return struct.pack("<HHI", group, el, len(v)) + v


def body():
    if not lib.IS_MITRAL:
        lib.skip("mitral's ErrorComments")
    node = lib.Node("missuid").start()
    study, series = elem(0x0020, 0x000D, "1.2.7.1"), elem(0x0020, 0x000E, "1.2.7.2")
    cases = [
        ("no SOP Class UID", elem(0x0008, 0x0018, "1.2.7.3") + study + series, "1.2.7.3",
         "SOPClassUID missing"),
        ("no SOP Instance UID", elem(0x0008, 0x0016, SC) + study + series, "1.2.7.4",
         "SOPInstanceUID missing"),
        ("empty data set", b"", "1.2.7.5", "SOPClassUID missing"),
        ("other SOP Instance UID", elem(0x0008, 0x0016, SC) + elem(0x0008, 0x0018, "1.2.7.6") +
         study + series, "1.2.7.7", "SOPInstanceUID differs from command"),
    ]
    for what, ds, sop, want in cases:
        a = dul.Assoc("127.0.0.1", node.port, contexts=[(SC, [dul.IMPLICIT_LE])])
        check(a.associate(), "associated")
        status, rsp = a.store(a.pcid_for(SC), SC, sop, ds)
        a.release()
        comment = rsp.get("comment") or ""
        check(status == 0xA900 and comment == want, "%s: A900 %r, got %04x %r"
              % (what, want, status, comment))
    check(node.stored_paths() == [], "nothing stored")
    check(node.stop() == 0, "node exits 0")


lib.run_guarded(body)
