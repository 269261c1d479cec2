#!/usr/bin/python3
"""t_web_accept: WADO-RS instance retrieval negotiates the whole Accept list (PS3.18 §8.7.3,
RFC 9110 §12.5.1): when the preferred transfer syntax cannot be produced for the stored
instances, the next acceptable range (by q, then order) is used; 406 only when none can, and
its message says why.

A native (Explicit VR Little Endian) MR and an RLE multi-frame study:
- `transfer-syntax=1.2.840.10008.1.2.4.50` then `transfer-syntax=*;q=0.5`: 200, the stored
  files byte for byte; then a plain `type="application/dicom";q=0.5`: 200, native as
  Explicit VR LE, RLE as stored;
- explicit LE for the RLE study, then `*/*;q=0.1`: 200 (as stored);
- only syntaxes that cannot be produced: 406 whose message names no compression for the
  native file (it was "stored compressed" for any failure);
- a q=0 range is never chosen.
Frames (PS3.18 §8.7.3.3.2): a compressed frame goes only in its own media type (or with
`transfer-syntax=*`), a native one only as application/octet-stream; a range that does not
fit the stored frame gives way to the next acceptable one; none fits: 406 (an RLE frame asked
as image/jpeg came back as image/dicom-rle, a native one asked as image/jpeg or image/png
came back as octet-stream, and octet-stream then dicom-rle;q=0.5 was 406).
"""
import io
import os

import lib
import web

T = lib.TESTDATA
MR1 = os.path.join(T, "dicom-test-files/WG04/REF/MR1_UNC")   # explicit LE, native
RLE = os.path.join(T, "pydicom-data/emri_small_RLE.dcm")      # RLE, 10 frames
MP = 'multipart/related; type="application/dicom"'
EXPL = "1.2.840.10008.1.2.1"
JPEG = "1.2.840.10008.1.2.4.50"


def uids(path):
    import pydicom
    d = pydicom.dcmread(path, stop_before_pixels=True)
    return str(d.StudyInstanceUID), str(d.SeriesInstanceUID), str(d.SOPInstanceUID)


def parts(h, b):
    return web.multipart_decode(h["content-type"], b)


def main():
    for f in (MR1, RLE):
        if not os.path.exists(f):
            lib.skip("test data missing: " + f)
    import pydicom
    node = web.WebNode(name="accept")
    node.start()
    st, r = web.stow(node, "/dicomweb/studies", [MR1, RLE], web.ADMIN)
    lib.check(st == 200, "stow: %s %r" % (st, r))
    mr_s, mr_r, mr_i = uids(MR1)
    rle_s, _, rle_i = uids(RLE)
    mr_url = "/dicomweb/studies/%s" % mr_s
    rle_url = "/dicomweb/studies/%s" % rle_s
    mr_file = open(web.stored_file(node, mr_i), "rb").read()
    rle_file = open(web.stored_file(node, rle_i), "rb").read()

    def get(url, accept):
        h = dict(web.ADMIN)
        h["Accept"] = accept
        return web.request(node, "GET", url, h)

    # a syntax we cannot make, then transfer-syntax=* at a lower q
    for url, stored, what in ((mr_url, mr_file, "native"), (rle_url, rle_file, "RLE")):
        st, h, b = get(url, "%s; transfer-syntax=%s, %s; transfer-syntax=*; q=0.5" % (MP, JPEG, MP))
        lib.check(st == 200, "%s: JPEG then * (q=0.5): 200 (%s %r)" % (what, st, b[:100]))
        if st == 200:
            p = parts(h, b)
            lib.check(len(p) == 1 and p[0][1] == stored, "%s: JPEG then *: the stored file" % what)

    # a syntax we cannot make, then no syntax named (q=0.5)
    st, h, b = get(mr_url, "%s; transfer-syntax=%s, %s; q=0.5" % (MP, JPEG, MP))
    lib.check(st == 200, "native: JPEG then plain: 200 (%s %r)" % (st, b[:100]))
    if st == 200:
        p = parts(h, b)
        d = pydicom.dcmread(io.BytesIO(p[0][1]))
        lib.check(str(d.file_meta.TransferSyntaxUID) == EXPL, "native: JPEG then plain: explicit LE")

    # explicit LE for an RLE study, then */* at q=0.1
    st, h, b = get(rle_url, "%s; transfer-syntax=%s, */*; q=0.1" % (MP, EXPL))
    lib.check(st == 200, "RLE: explicit LE then */*: 200 (%s %r)" % (st, b[:100]))
    if st == 200:
        lib.check(parts(h, b)[0][1] == rle_file, "RLE: explicit LE then */*: as stored")

    # a q=0 range is refused, even if it could be produced
    st, h, b = get(rle_url, "%s; transfer-syntax=%s, %s; transfer-syntax=*; q=0" % (MP, EXPL, MP))
    lib.check(st == 406, "RLE: explicit LE, * at q=0: 406 (%s)" % st)
    lib.check(b"compressed" in b, "RLE 406 says it is stored compressed (%r)" % b)

    # nothing producible: 406 with a true reason
    st, h, b = get(mr_url, "%s; transfer-syntax=%s, %s; transfer-syntax=1.2.840.10008.1.2" % (MP, JPEG, MP))
    lib.check(st == 406, "native: JPEG or implicit LE: 406 (%s)" % st)
    lib.check(b"compressed" not in b and EXPL.encode() in b,
              "native 406 does not claim compression and names what it can send (%r)" % b)

    # ---- frames ----
    _, mr_series, _ = uids(MR1)
    _, rle_series, _ = uids(RLE)
    mr_fr = "/dicomweb/studies/%s/series/%s/instances/%s/frames/1" % (mr_s, mr_series, mr_i)
    rle_fr = "/dicomweb/studies/%s/series/%s/instances/%s/frames/2" % (rle_s, rle_series, rle_i)
    OCT = 'multipart/related; type="application/octet-stream"'
    RLEM = 'multipart/related; type="image/dicom-rle"'
    JPG = 'multipart/related; type="image/jpeg"'
    for url, accept, want in (
            (rle_fr, RLEM, "image/dicom-rle"),
            (rle_fr, OCT + "; transfer-syntax=*", "image/dicom-rle"),
            (rle_fr, OCT + ", " + RLEM + "; q=0.5", "image/dicom-rle"),
            (rle_fr, JPG + ", */*; q=0.1", "image/dicom-rle"),
            (rle_fr, "multipart/related; type=\"image/*\"", "image/dicom-rle"),
            (rle_fr, JPG, 406), (rle_fr, OCT, 406), (rle_fr, "application/octet-stream", 406),
            (rle_fr, JPG + ", " + OCT, 406),
            (mr_fr, OCT, "application/octet-stream"),
            (mr_fr, JPG + ", " + OCT + "; q=0.2", "application/octet-stream"),
            (mr_fr, "*/*", "application/octet-stream"),
            (mr_fr, JPG, 406), (mr_fr, "image/png", 406), (mr_fr, RLEM, 406)):
        st, h, b = get(url, accept)
        what = "frames %s, Accept %s" % ("RLE" if url == rle_fr else "native", accept)
        if want == 406:
            lib.check(st == 406, "%s: 406 (%s %s)" % (what, st, h.get("content-type")))
        else:
            lib.check(st == 200 and ('type="%s"' % want) in h.get("content-type", ""),
                      "%s: 200 %s (%s %s)" % (what, want, st, h.get("content-type")))

    rc = node.stop()
    lib.check(rc == 0, "clean stop (rc %s)" % rc)


lib.run_guarded(main)
