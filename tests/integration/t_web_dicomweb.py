#!/usr/bin/python3
"""t_web_dicomweb: DICOMweb end to end with curl-like requests (http.client) against a node
with projects p1/p2 and users admin (bearer, admin), alice (Basic, p1), bob (bearer, p2).

STOW-RS into projects -> QIDO-RS (matching, includefield, limit/offset, 204, 400) -> WADO-RS
(instances byte-identical to the stored files, explicit VR LE re-encoding, metadata equal to
dcm2json's for the same attributes, frames, bulk data, rendered JPEG/PNG, WADO-URI) -> scope
and auth (401 with WWW-Authenticate, 403, other project's study 404) -> STOW failures (wrong
study 409/A900, not Part 10, malformed multipart 400, wrong media type 415).
"""
import json
import os

import lib
import web

T = lib.TESTDATA
MR1 = os.path.join(T, "dicom-test-files/WG04/REF/MR1_UNC")          # explicit LE, 512x512
CT = os.path.join(T, "pydicom/test_files/CT_small.dcm")             # explicit LE
MR_IMPL = os.path.join(T, "pydicom/test_files/MR_small_implicit.dcm")  # implicit LE
EMRI = os.path.join(T, "pydicom-data/emri_small.dcm")               # 10 frames, explicit LE
EMRI_RLE = os.path.join(T, "pydicom-data/emri_small_RLE.dcm")       # 10 frames, RLE


def uids(path):
    import pydicom
    d = pydicom.dcmread(path, stop_before_pixels=True)
    return str(d.StudyInstanceUID), str(d.SeriesInstanceUID), str(d.SOPInstanceUID)


def renamed(src, tag):
    """A copy of src with new Study/Series/SOP Instance UIDs (several test files share UIDs)."""
    import pydicom
    from pydicom.uid import generate_uid
    d = pydicom.dcmread(src)
    for kw in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        setattr(d, kw, generate_uid(prefix="1.2.826.0.1.3680043.10.1532.99."))
    d.file_meta.MediaStorageSOPInstanceUID = d.SOPInstanceUID
    out = os.path.join(lib.tmpdir("mt-web-data-"), tag + ".dcm")
    d.save_as(out, write_like_original=True)
    return out


def main():
    global MR_IMPL, EMRI_RLE
    for f in (MR1, CT, MR_IMPL, EMRI, EMRI_RLE):
        if not os.path.exists(f):
            lib.skip("test data missing: " + f)
    MR_IMPL = renamed(MR_IMPL, "mr_implicit")
    EMRI_RLE = renamed(EMRI_RLE, "emri_rle")
    node = web.WebNode(name="web")
    node.start()
    P1 = "/projects/p1/dicomweb"
    P2 = "/projects/p2/dicomweb"

    # ---- STOW-RS ----
    st, r = web.stow(node, P1 + "/studies", [MR1, CT, EMRI], web.ALICE)
    lib.check(st == 200, "stow p1: status %s %r" % (st, r))
    lib.check(r and len(r.get("00081199", {}).get("Value", [])) == 3, "stow p1: 3 referenced")
    st, r = web.stow(node, P2 + "/studies", [MR_IMPL, EMRI_RLE], web.BOB)
    lib.check(st == 200, "stow p2: status %s %r" % (st, r))

    s_mr1, r_mr1, i_mr1 = uids(MR1)
    s_ct, r_ct, i_ct = uids(CT)
    s_imp, r_imp, i_imp = uids(MR_IMPL)
    s_em, r_em, i_em = uids(EMRI)
    s_rle, r_rle, i_rle = uids(EMRI_RLE)

    # ---- scope and auth ----
    st, h, _ = web.request(node, "GET", P1 + "/studies")
    lib.check(st == 401 and "www-authenticate" in h, "no credentials -> 401 + WWW-Authenticate (%s)" % st)
    st, _, _ = web.request(node, "GET", P1 + "/studies", web.auth_basic("alice", "wrong"))
    lib.check(st == 401, "wrong password -> 401 (%s)" % st)
    st, _, _ = web.request(node, "GET", P1 + "/studies", web.auth_bearer("nope"))
    lib.check(st == 401, "wrong token -> 401 (%s)" % st)
    st, _, _ = web.request(node, "GET", P1 + "/studies", web.BOB)
    lib.check(st == 403, "bob on p1 -> 403 (%s)" % st)
    st, _, _ = web.request(node, "GET", "/dicomweb/studies", web.ALICE)
    lib.check(st == 403, "alice on /dicomweb -> 403 (%s)" % st)
    st, _, _ = web.request(node, "GET", "/projects/nope/dicomweb/studies", web.ADMIN)
    lib.check(st == 404, "unknown project -> 404 (%s)" % st)
    st, j = web.get_json(node, P1 + "/studies", web.ALICE)
    got = sorted(x["0020000D"]["Value"][0] for x in (j or []))
    lib.check(st == 200 and set(got) == {s_mr1, s_ct, s_em}, "p1 studies: %r" % got)
    st, j = web.get_json(node, "/dicomweb/studies", web.ADMIN)
    got = {x["0020000D"]["Value"][0] for x in (j or [])}
    lib.check({s_mr1, s_ct, s_em, s_imp, s_rle} <= got, "admin sees all studies")
    if s_imp not in (s_mr1, s_ct, s_em):
        st, _, _ = web.request(node, "GET", P1 + "/studies/%s/metadata" % s_imp, web.ALICE)
        lib.check(st == 404, "other project's study via p1 -> 404 (%s)" % st)
        st, _, _ = web.request(node, "GET", P1 + "/studies?StudyInstanceUID=" + s_imp, web.ALICE)
        lib.check(st == 204, "other project's study in QIDO -> 204 (%s)" % st)

    # ---- QIDO-RS ----
    st, j = web.get_json(node, P1 + "/studies?PatientName=compressedsamples*", web.ALICE)
    lib.check(st == 200 and j and all("CompressedSamples" in x["00100010"]["Value"][0]["Alphabetic"] for x in j),
              "wildcard, case-insensitive PN match")
    st, j = web.get_json(node, P1 + "/studies?00100020=4MR1", web.ALICE)
    lib.check(st == 200 and len(j) == 1 and j[0]["0020000D"]["Value"][0] == s_mr1, "match by tag")
    st, j = web.get_json(node, P1 + "/studies?StudyDate=20040101-20041231", web.ALICE)
    lib.check(st == 200 and s_mr1 in [x["0020000D"]["Value"][0] for x in j], "date range")
    st, _, _ = web.request(node, "GET", P1 + "/studies?StudyDate=19000101-19000102", web.ALICE)
    lib.check(st == 204, "no match -> 204 (%s)" % st)
    st, _, _ = web.request(node, "GET", P1 + "/studies?NoSuchKeyword=1", web.ALICE)
    lib.check(st == 400, "unknown parameter -> 400 (%s)" % st)
    st, j = web.get_json(node, P1 + "/studies?limit=1", web.ALICE)
    lib.check(st == 200 and len(j) == 1, "limit=1")
    st, j2 = web.get_json(node, P1 + "/studies?limit=1&offset=1", web.ALICE)
    lib.check(st == 200 and len(j2) == 1 and j2[0] != j[0], "offset=1")
    st, j = web.get_json(node, P1 + "/studies/%s/series?includefield=all" % s_mr1, web.ALICE)
    lib.check(st == 200 and len(j) == 1 and "00180020" in j[0], "includefield=all (ScanningSequence)")
    st, j = web.get_json(node, P1 + "/studies/%s/series/%s/instances" % (s_em, r_em), web.ALICE)
    lib.check(st == 200 and len(j) == 1 and j[0]["00080018"]["Value"][0] == i_em, "instances of series")
    st, j = web.get_json(node, P1 + "/series?Modality=MR&includefield=SeriesDescription", web.ALICE)
    lib.check(st == 200 and len(j) >= 2 and all(x["00080060"]["Value"] == ["MR"] for x in j), "/series?Modality=MR")
    st, j = web.get_json(node, P1 + "/instances?SOPInstanceUID=" + i_ct, web.ALICE)
    lib.check(st == 200 and len(j) == 1 and j[0]["00080016"]["Value"][0] == "1.2.840.10008.5.1.4.1.1.2",
              "/instances by SOPInstanceUID")
    st, h, _ = web.request(node, "GET", P1 + "/studies?fuzzymatching=true", web.ALICE)
    lib.check(st == 200 and "warning" in h, "fuzzymatching accepted with a Warning (%s)" % st)
    st, _, _ = web.request(node, "GET", P1 + "/studies", dict(web.ALICE, Accept="image/png"))
    lib.check(st == 406, "QIDO Accept image/png -> 406 (%s)" % st)

    # ---- WADO-RS instances ----
    acc = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
    st, h, b = web.request(node, "GET", P1 + "/studies/%s" % s_mr1, dict(web.ALICE, **acc))
    parts = web.multipart_decode(h.get("content-type", ""), b) if st == 200 else []
    lib.check(st == 200 and len(parts) == 1, "retrieve study: one part (%s)" % st)
    if parts:
        stored = open(web.stored_file(node, i_mr1), "rb").read()
        lib.check(parts[0][1] == stored, "retrieved instance byte-identical to the stored file")
        orig = open(MR1, "rb").read()
        lib.check(stored[-100000:] == orig[-100000:], "stored file carries the posted data set")
    st, h, b = web.request(node, "GET", P1 + "/studies/%s/series/%s/instances/%s" % (s_ct, r_ct, i_ct),
                           dict(web.ALICE, **acc))
    parts = web.multipart_decode(h.get("content-type", ""), b) if st == 200 else []
    lib.check(st == 200 and len(parts) == 1 and parts[0][1] == open(web.stored_file(node, i_ct), "rb").read(),
              "retrieve instance byte-identical")
    # explicit VR LE from implicit LE (bob, p2)
    acc_le = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1'}
    st, h, b = web.request(node, "GET", P2 + "/studies/%s/series/%s" % (s_imp, r_imp), dict(web.BOB, **acc_le))
    parts = web.multipart_decode(h.get("content-type", ""), b) if st == 200 else []
    lib.check(st == 200 and len(parts) == 1, "explicit LE retrieval (%s)" % st)
    if parts:
        import io
        import pydicom
        d = pydicom.dcmread(io.BytesIO(parts[0][1]))
        o = pydicom.dcmread(MR_IMPL)
        lib.check(str(d.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.1", "re-encoded: explicit LE")
        lib.check(d.PixelData == o.PixelData and d.PatientName == o.PatientName, "re-encoded: same content")
        lib.check("transfer-syntax=1.2.840.10008.1.2.1" in parts[0][0].get("content-type", ""),
                  "part Content-Type names the syntax")
    st, _, _ = web.request(node, "GET", P2 + "/studies/%s" % s_rle, dict(web.BOB, **acc_le))
    lib.check(st == 406, "explicit LE of RLE-compressed -> 406 (%s)" % st)

    # ---- metadata vs dcm2json ----
    st, j = web.get_json(node, P1 + "/studies/%s/series/%s/metadata" % (s_mr1, r_mr1),
                         dict(web.ALICE, Accept="application/dicom+json"))
    lib.check(st == 200 and j and len(j) == 1, "series metadata (%s)" % st)
    if j:
        web.compare_meta(j[0], web.dcm2json(web.stored_file(node, i_mr1)), "MR1 metadata")
        px = j[0].get("7FE00010", {})
        lib.check(px.get("BulkDataURI", "").endswith("/bulkdata/7FE00010"), "Pixel Data as BulkDataURI")
    st, j = web.get_json(node, P1 + "/studies/%s/metadata" % s_em, web.ALICE)
    if lib.check(st == 200 and j, "enhanced MR metadata (%s)" % st):
        web.compare_meta(j[0], web.dcm2json(web.stored_file(node, i_em)), "emri metadata")

    # ---- frames, bulk data, rendered ----
    import pydicom
    em = pydicom.dcmread(EMRI)
    fs = em.Rows * em.Columns * (em.BitsAllocated // 8)
    st, h, b = web.request(node, "GET", P1 + "/studies/%s/series/%s/instances/%s/frames/1,3,5" % (s_em, r_em, i_em),
                           web.ALICE)
    parts = web.multipart_decode(h.get("content-type", ""), b) if st == 200 else []
    lib.check(st == 200 and len(parts) == 3, "frames 1,3,5 (%s)" % st)
    for k, (hd, data) in zip((1, 3, 5), parts):
        lib.check(data == em.PixelData[(k - 1) * fs:k * fs], "frame %d bytes" % k)
        lib.check(hd.get("content-type", "").startswith("application/octet-stream"), "frame octet-stream")
    st, _, _ = web.request(node, "GET", P1 + "/studies/%s/series/%s/instances/%s/frames/11" % (s_em, r_em, i_em),
                           web.ALICE)
    lib.check(st == 404, "frame out of range -> 404 (%s)" % st)
    rle = pydicom.dcmread(EMRI_RLE)
    st, h, b = web.request(node, "GET", P2 + "/studies/%s/series/%s/instances/%s/frames/2" % (s_rle, r_rle, i_rle),
                           dict(web.BOB, Accept='multipart/related; type="image/dicom-rle"'))
    parts = web.multipart_decode(h.get("content-type", ""), b) if st == 200 else []
    if lib.check(st == 200 and len(parts) == 1, "RLE frame 2 (%s)" % st):
        from pydicom.encaps import generate_pixel_data_frame
        want = list(generate_pixel_data_frame(rle.PixelData, 10))[1]
        lib.check(parts[0][1] == want, "RLE frame 2 = stored fragment")
        lib.check("1.2.840.10008.1.2.5" in parts[0][0].get("content-type", ""), "RLE frame names its syntax")
    st, h, b = web.request(node, "GET", P1 + "/studies/%s/series/%s/instances/%s/bulkdata/7FE00010" % (s_mr1, r_mr1, i_mr1),
                           web.ALICE)
    parts = web.multipart_decode(h.get("content-type", ""), b) if st == 200 else []
    lib.check(st == 200 and parts and parts[0][1] == pydicom.dcmread(MR1).PixelData, "bulkdata Pixel Data")
    base = P1 + "/studies/%s/series/%s/instances/%s" % (s_mr1, r_mr1, i_mr1)
    st, h, b = web.request(node, "GET", base + "/rendered", dict(web.ALICE, Accept="image/jpeg"))
    lib.check(st == 200 and h.get("content-type") == "image/jpeg" and b[:2] == b"\xff\xd8", "rendered JPEG (%s)" % st)
    st, h, b = web.request(node, "GET", base + "/rendered?window=600,1200", dict(web.ALICE, Accept="image/png"))
    lib.check(st == 200 and b[:8] == b"\x89PNG\r\n\x1a\n", "rendered PNG with window (%s)" % st)
    st, h, b = web.request(node, "GET", base + "/thumbnail", dict(web.ALICE, Accept="image/png"))
    lib.check(st == 200 and b[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(b[16:20], "big") <= 128,
              "thumbnail PNG <= 128 wide (%s)" % st)
    st, _, _ = web.request(node, "GET", base + "/rendered", dict(web.ALICE, Accept="image/gif"))
    lib.check(st == 406, "rendered image/gif -> 406 (%s)" % st)
    # WADO-URI
    q = "requestType=WADO&studyUID=%s&seriesUID=%s&objectUID=%s" % (s_ct, r_ct, i_ct)
    st, h, b = web.request(node, "GET", P1 + "/wado?" + q + "&contentType=application/dicom", web.ALICE)
    lib.check(st == 200 and b == open(web.stored_file(node, i_ct), "rb").read(), "WADO-URI application/dicom")
    st, h, b = web.request(node, "GET", P1 + "/wado?" + q, web.ALICE)
    lib.check(st == 200 and b[:2] == b"\xff\xd8", "WADO-URI default image/jpeg (%s)" % st)
    st, _, _ = web.request(node, "GET", P1 + "/wado?requestType=WADO&studyUID=1", web.ALICE)
    lib.check(st == 400, "WADO-URI missing UIDs -> 400 (%s)" % st)

    # ---- STOW failures ----
    st, r = web.stow(node, P1 + "/studies/1.2.3.4", [CT], web.ALICE)
    fails = (r or {}).get("00081198", {}).get("Value", [])
    lib.check(st == 409 and fails and fails[0]["00081197"]["Value"] == [0xA900],
              "STOW to another study -> 409, A900 (%s %r)" % (st, r))
    body, ct = web.multipart_encode([b"not a dicom file at all" * 10])
    st, h, b = web.request(node, "POST", P1 + "/studies", dict(web.ALICE, **{"Content-Type": ct}), body)
    lib.check(st == 409 and b"C000" not in b and json.loads(b)["00081198"]["Value"][0]["00081197"]["Value"] == [0xC000],
              "STOW non-Part-10 part -> 409, C000 (%s)" % st)
    st, _, _ = web.request(node, "POST", P1 + "/studies",
                           dict(web.ALICE, **{"Content-Type": 'multipart/related; type="application/dicom"; boundary=zz'}),
                           b"--zz\r\nContent-Type: application/dicom\r\n\r\nabc")
    lib.check(st == 400, "STOW truncated multipart -> 400 (%s)" % st)
    st, _, _ = web.request(node, "POST", P1 + "/studies", dict(web.ALICE, **{"Content-Type": "application/json"}), b"{}")
    lib.check(st == 415, "STOW application/json -> 415 (%s)" % st)
    st, _, _ = web.request(node, "POST", P1 + "/studies", dict(web.BOB, **{"Content-Type": ct}), body)
    lib.check(st == 403, "STOW by bob into p1 -> 403 (%s)" % st)
    # bob posts (a copy of) p1's CT into p2: the study exists outside p2, so it may not join p2
    st, r = web.stow(node, P2 + "/studies", [CT], web.BOB)
    fails = (r or {}).get("00081198", {}).get("Value", [])
    lib.check(st == 409 and fails and fails[0]["00081197"]["Value"] == [0x0124],
              "STOW of another project's study -> 409, 0124 not authorized (%s %r)" % (st, r))
    st, _, _ = web.request(node, "GET", P2 + "/studies/%s/metadata" % s_ct, web.BOB)
    lib.check(st == 404, "... and bob still cannot read it (%s)" % st)
    st, j = web.get_json(node, P1 + "/studies", web.ALICE)
    lib.check(st == 200 and len(j) == 3, "p1 still holds its 3 studies")
    lib.check(node.alive(), "node alive")
    rc = node.stop()
    lib.check(rc == 0, "clean stop (rc %s)" % rc)


lib.run_guarded(main)
