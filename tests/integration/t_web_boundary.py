#!/usr/bin/python3
"""t_web_boundary: a WADO-RS multipart response's boundary never occurs inside its parts
(RFC 2046 §5.1.1). A file whose text holds the string that was the node's fixed boundary
("\\r\\n--mitral-3d1f1a7c9b2e4d58" in ImageComments) was split by every client into a broken
part plus a forged one; each response now has its own random boundary. Checked on an instance
and a series retrieval (as stored and re-encoded), frames and bulk data: each decodes, by the
boundary alone, into exactly the stored file(s) / values.
"""
import io
import os

import lib
import web

MR = os.path.join(lib.TESTDATA, "pydicom/test_files/MR_small.dcm")
OLD = "mitral-3d1f1a7c9b2e4d58"


def crafted(tag, implicit=False):
    import pydicom
    from pydicom.uid import generate_uid
    d = pydicom.dcmread(MR)
    d.StudyInstanceUID = STUDY
    d.SeriesInstanceUID = SERIES
    d.SOPInstanceUID = generate_uid(prefix="1.2.826.0.1.3680043.10.1532.78.")
    d.file_meta.MediaStorageSOPInstanceUID = d.SOPInstanceUID
    fake = ("\r\n--%s\r\nContent-Type: application/dicom\r\nContent-Length: 4\r\n\r\nDICM"
            "\r\n--%s--\r\n" % (OLD, OLD))
    d.ImageComments = fake
    d.add_new(0x00091010, "LO", "MITRAL TEST")
    d.add_new(0x00091011, "OB", ("\r\n--" + OLD + "\r\n").encode() * 40)
    d.file_meta.TransferSyntaxUID = (pydicom.uid.ImplicitVRLittleEndian if implicit
                                     else pydicom.uid.ExplicitVRLittleEndian)
    d.is_implicit_VR, d.is_little_endian = implicit, True
    b = io.BytesIO()
    d.save_as(b)
    out = os.path.join(lib.tmpdir("mt-boundary-"), tag + ".dcm")
    open(out, "wb").write(b.getvalue())
    return out, str(d.SOPInstanceUID)


def boundary_of(h):
    import re
    m = re.search(r'boundary="?([^";]+)"?', h.get("content-type", ""))
    return m.group(1) if m else None


def main():
    global STUDY, SERIES
    if not os.path.exists(MR):
        lib.skip("test data missing: " + MR)
    from pydicom.uid import generate_uid
    STUDY = generate_uid(prefix="1.2.826.0.1.3680043.10.1532.78.")
    SERIES = generate_uid(prefix="1.2.826.0.1.3680043.10.1532.78.")
    node = web.WebNode(name="boundary")
    node.start()
    f1, i1 = crafted("explicit")
    f2, i2 = crafted("implicit", implicit=True)
    st, r = web.stow(node, "/dicomweb/studies", [f1, f2], web.ADMIN)
    lib.check(st == 200, "stow the crafted files: %s %r" % (st, r))
    stored = {i1: open(web.stored_file(node, i1), "rb").read(),
              i2: open(web.stored_file(node, i2), "rb").read()}
    base = "/dicomweb/studies/%s/series/%s" % (STUDY, SERIES)
    star = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
    seen = set()
    for what, url, accept, n_parts, want in (
            ("instance as stored", base + "/instances/" + i1, star, 1, [stored[i1]]),
            ("series as stored", base, star, 2, sorted(stored.values())),
            ("series re-encoded", base, {}, 2, None),
            ("bulk data", base + "/instances/" + i1 + "/bulkdata/00091011", {}, 1,
             [("\r\n--" + OLD + "\r\n").encode() * 40]),
            ("frames", base + "/instances/" + i1 + "/frames/1", {}, 1, None)):
        h = dict(web.ADMIN)
        h.update(accept)
        st, hd, b = web.request(node, "GET", url, h)
        if not lib.check(st == 200, "%s: 200 (%s %r)" % (what, st, b[:80])):
            continue
        bd = boundary_of(hd)
        seen.add(bd)
        try:
            parts = web.multipart_decode(hd["content-type"], b)
        except (AssertionError, UnicodeDecodeError) as e:  # split inside a part
            lib.check(False, "%s: decodes by the boundary (%r)" % (what, e))
            continue
        lib.check(len(parts) == n_parts, "%s: %d parts by the boundary (%d)" % (what, n_parts, len(parts)))
        lib.check(all(bd.encode() not in p[1] for p in parts), "%s: boundary not inside a part" % what)
        if want is not None:
            lib.check(sorted(p[1] for p in parts) == want, "%s: the stored bytes" % what)
    lib.check(OLD not in seen, "responses do not use the fixed boundary (%r)" % seen)
    lib.check(len(seen) > 1, "each response has its own boundary (%r)" % seen)
    rc = node.stop()
    lib.check(rc == 0, "clean stop (rc %s)" % rc)


lib.run_guarded(main)
