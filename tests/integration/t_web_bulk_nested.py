#!/usr/bin/python3
"""t_web_bulk_nested.py - BulkDataURI for large binary values nested in sequences at any depth:
an instance (made with pydicom) with OB/OW values over the 1 KiB threshold at the top level, in
item 2 of a sequence, and two sequences deep; WADO-RS /metadata names each with a BulkDataURI
of the form .../bulkdata/SSSSSSSS/N/GGGGEEEE, each URI serves exactly the stored bytes, small
values stay InlineBinary, and malformed or non-existent paths are 404."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
import web  # noqa: E402

STUDY, SERIES, SOP = "2.25.7311.1", "2.25.7311.1.1", "2.25.7311.1.1.1"
BIG1 = bytes(range(256)) * 8            # 2048 bytes, top level
BIG2 = bytes([7, 9]) * 1500             # 3000 bytes, item 2 of a sequence
BIG3 = b"\x01\x02\x03\x04" * 1000       # 4000 bytes, two sequences deep (OW)
SMALL = b"\xAA\xBB" * 10                # 20 bytes: InlineBinary


def make(path):
    try:
        import pydicom
        from pydicom.dataset import Dataset, FileMetaDataset
        from pydicom.sequence import Sequence
    except ImportError:
        lib.skip("pydicom not installed")
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ds.SOPInstanceUID = SOP
    ds.PatientID = "BN1"
    ds.PatientName = "Bulk^Nested"
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = SERIES
    ds.Modality = "MR"
    ds.add_new(0x00091010, "LO", "MITRAL TEST")  # private creator
    ds.add_new(0x00091011, "OB", BIG1)
    i1, i2 = Dataset(), Dataset()
    i1.CodeValue = "A"
    i1.add_new(0x00091010, "LO", "MITRAL TEST")
    i1.add_new(0x00091011, "OB", SMALL)
    i2.CodeValue = "B"
    i2.add_new(0x00091010, "LO", "MITRAL TEST")
    i2.add_new(0x00091011, "OB", BIG2)
    inner = Dataset()
    inner.add_new(0x00091010, "LO", "MITRAL TEST")
    inner.add_new(0x00091012, "OW", BIG3)
    i2.add_new(0x00091013, "SQ", Sequence([inner]))
    ds.add_new(0x00091014, "SQ", Sequence([i1, i2]))
    m = FileMetaDataset()
    m.MediaStorageSOPClassUID = ds.SOPClassUID
    m.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    m.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta = m
    ds.is_little_endian = True
    ds.is_implicit_VR = False
    ds.save_as(path, write_like_original=False)


def bulk_get(node, url):
    path = url.split("://", 1)[1]
    path = path[path.index("/"):]
    st, h, b = web.request(node, "GET", path, dict(web.ALICE, Accept="multipart/related; "
                                                   "type=\"application/octet-stream\""))
    if st != 200:
        return st, None
    parts = web.multipart_decode(h.get("content-type", ""), b)
    return st, parts[0][1] if len(parts) == 1 else None


def main():
    d = lib.tmpdir("mt-web-bulknest-")
    f = os.path.join(d, "nested.dcm")
    make(f)
    node = web.WebNode(name="bulknest")
    node.start()
    st, _ = web.stow(node, "/projects/p1/dicomweb/studies", [f], web.ALICE)
    lib.check(st == 200, "STOW the nested instance (%s)" % st)
    base = "/projects/p1/dicomweb/studies/%s/series/%s/instances/%s" % (STUDY, SERIES, SOP)
    st, meta = web.get_json(node, base + "/metadata", web.ALICE)
    lib.check(st == 200 and isinstance(meta, list) and len(meta) == 1, "metadata (%s)" % st)
    m = meta[0] if st == 200 else {}
    top = m.get("00091011", {})
    seq = m.get("00091014", {}).get("Value", [{}, {}])
    it1 = seq[0] if seq else {}
    it2 = seq[1] if len(seq) > 1 else {}
    deep = it2.get("00091013", {}).get("Value", [{}])[0].get("00091012", {})
    u1, u2, u3 = (top.get("BulkDataURI", ""), it2.get("00091011", {}).get("BulkDataURI", ""),
                  deep.get("BulkDataURI", ""))
    lib.check(u1.endswith(base + "/bulkdata/00091011"), "top-level BulkDataURI (%s)" % u1)
    lib.check(u2.endswith(base + "/bulkdata/00091014/2/00091011"),
              "BulkDataURI in item 2 of a sequence (%s)" % u2)
    lib.check(u3.endswith(base + "/bulkdata/00091014/2/00091013/1/00091012"),
              "BulkDataURI two sequences deep (%s)" % u3)
    lib.check(it1.get("00091011", {}).get("InlineBinary") is not None,
              "a small nested value stays InlineBinary")
    for url, want, what in ((u1, BIG1, "top"), (u2, BIG2, "item 2"), (u3, BIG3, "deep")):
        if not url:
            continue
        st, got = bulk_get(node, url)
        lib.check(st == 200 and got == want, "bulkdata %s serves the stored bytes (%s, %s bytes)"
                  % (what, st, len(got) if got else None))
    for bad in ("/bulkdata/00091014/3/00091011", "/bulkdata/00091014/0/00091011",
                "/bulkdata/00091014", "/bulkdata/00091014/x/00091011",
                "/bulkdata/00091014/2/00091013/1/00099999", "/bulkdata/0009101"):
        st, _, _ = web.request(node, "GET", base + bad, web.ALICE)
        lib.check(st == 404, "%s is 404 (%s)" % (bad, st))
    st, _, _ = web.request(node, "GET", base + "/bulkdata/00091014/2/00091011", web.BOB)
    lib.check(st in (403, 404), "another project's user cannot read nested bulk data (%s)" % st)
    lib.check(node.stop() == 0, "clean stop")


lib.run_guarded(main)
