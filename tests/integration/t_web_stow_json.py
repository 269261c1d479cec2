#!/usr/bin/python3
"""t_web_stow_json.py - STOW-RS metadata + bulk data (multipart/related;
type="application/dicom+json", PS3.18 §10.5): instances built by pydicom's DICOM JSON encoder
(an independent implementation of Annex F) are posted as one metadata part plus bulk data
parts (Content-Location = BulkDataURI, also inside sequences two levels deep) and InlineBinary
values; WADO-RS gives each instance back and its data set must equal what was sent (every VR,
PN with ideographic groups, AT, numbers, nested SQ); QIDO-RS finds it; compressed Pixel Data
parts with a transfer-syntax parameter come back encapsulated in that syntax; one request
with broken instances stores the good ones only, each broken one in FailedSOPSequence with
its reason and no file; malformed JSON, a missing metadata part and application/dicom+xml are
refused whole (400/400/415); metadata -> STOW JSON -> metadata round trips between two nodes."""
import io
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
import stowjson  # noqa: E402
import web  # noqa: E402

try:
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from pydicom.encaps import generate_pixel_data_frame
except ImportError:
    lib.skip("pydicom not installed")

TD = os.path.join(os.environ.get("MT_SOURCE_DIR", "."), "..", "shared", "testdata", "pydicom",
                  "test_files")
MR = os.path.join(TD, "MR_small.dcm")
RLE = os.path.join(TD, "MR_small_RLE.dcm")
RLE2 = os.path.join(TD, "SC_rgb_rle_2frame.dcm")
ACC = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
MR_CLASS = "1.2.840.10008.5.1.4.1.1.4"


def every_vr(n):
    """A data set with one element of each VR (private block for the rare ones), PN with
    three groups, AT, and bulk data inside sequences two levels down."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = MR_CLASS
    ds.SOPInstanceUID = "2.25.8813.%d.1.1" % n
    ds.StudyInstanceUID = "2.25.8813.%d" % n
    ds.SeriesInstanceUID = "2.25.8813.%d.1" % n
    ds.PatientID = "SJ%d" % n
    ds.PatientName = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    ds.PatientAge = "042Y"                                     # AS
    ds.StationAETitle = "CMR_SCANNER"                          # AE
    ds.Modality = "MR"                                         # CS
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]          # CS multi
    ds.StudyDate = "20261201"                                  # DA
    ds.AcquisitionDateTime = "20261201101112.123456"           # DT
    ds.StudyTime = "101112.5"                                  # TM
    ds.SliceThickness = "8.0"                                  # DS
    ds.PixelSpacing = ["1.40625", "-1.5e-3"]                   # DS multi
    ds.InstanceNumber = "17"                                   # IS
    ds.EchoNumbers = ["1", "-2"]                               # IS multi
    ds.StudyDescription = "CMR^function"                       # LO
    ds.ImageComments = "line one\r\nline two\\ with backslash"  # LT
    ds.StationName = "MR1"                                     # SH
    ds.DerivationDescription = "ST text ünïcode"               # ST
    ds.add_new(0x00081190, "UR", "http://example.org/a b")     # UR
    ds.add_new(0x00400280, "UT", "unlimited text")             # UT (Comments on Perf. Proc.)
    ds.add_new(0x00189089, "FD", [0.0, 0.6, -0.8])            # FD (Diffusion Gradient Orientation)
    ds.Rows = 2                                                # US
    ds.Columns = 2
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = b"\x01\x00\x02\x00\x03\x00\x04\x00"        # OW, inline (small)
    ds[0x7FE00010].VR = "OW"
    ds.add_new(0x00091000, "LO", "MITRAL TEST")                # private creator
    ds.add_new(0x00091001, "SS", [-32768, 32767])
    ds.add_new(0x00091002, "SL", [-2147483648, 7])
    ds.add_new(0x00091003, "UL", [4294967295, 0])
    ds.add_new(0x00091004, "FL", [1.5, -0.25])
    ds.add_new(0x00091005, "AT", [0x00100010, 0x7FE00010])
    ds.add_new(0x00091006, "UC", "unlimited characters")
    ds.add_new(0x00091007, "OB", bytes(range(256)) * 3)      # bulk
    ds.add_new(0x00091008, "OF", b"\x00\x00\x80\x3f" * 4)    # inline
    ds.add_new(0x00091009, "OD", b"\x00" * 7 + b"\x40")
    ds.add_new(0x0009100A, "OL", b"\x01\x02\x03\x04" * 40)   # bulk
    ds.add_new(0x0009100B, "UN", b"\xde\xad\xbe\xef")
    ds.add_new(0x0009100C, "SV", [-9223372036854775808, 5])
    ds.add_new(0x0009100D, "UV", [18446744073709551615, 6])
    ds.add_new(0x0009100E, "OV", b"\x11" * 8)
    ds.add_new(0x0009100F, "UI", ["1.2.3", "4.5.6"])
    ds.add_new(0x00091010, "US", [])                           # empty
    inner = Dataset()
    inner.add_new(0x00091000, "LO", "MITRAL TEST")
    inner.add_new(0x00091020, "OB", b"\x55" * 100)            # bulk at depth 2
    inner.CodeValue = "X2"
    mid = Dataset()
    mid.CodeValue = "X1"
    mid.CodeMeaning = "middle"
    mid.add_new(0x00091000, "LO", "MITRAL TEST")
    mid.add_new(0x00091021, "OW", b"\x66\x00" * 40)           # bulk at depth 1
    mid.add_new(0x00091022, "SQ", Sequence([inner]))
    ds.ProcedureCodeSequence = Sequence([mid, Dataset()])      # an empty item too
    ds.ReferencedImageSequence = Sequence([])                  # empty sequence
    return ds


def retrieve(node, uids):
    st, h, b = web.request(node, "GET", "/dicomweb/studies/%s/series/%s/instances/%s" % uids,
                           dict(web.ADMIN, **ACC))
    parts = web.multipart_decode(h.get("content-type", ""), b) if st == 200 else []
    if not lib.check(st == 200 and len(parts) == 1, "WADO-RS instance %s (%s)" % (uids[2], st)):
        return None
    return pydicom.dcmread(io.BytesIO(parts[0][1]))


def same_ds(a, b, what):
    """Every element of a is in b with the same VR and value (recursively)."""
    ok = True
    for el in a:
        if el.tag.group == 0x0002 or el.tag == 0xFFFCFFFC:
            continue
        if el.tag not in b:
            ok = lib.check(False, "%s: %s missing" % (what, el.tag)) and ok
            continue
        e2 = b[el.tag]
        ok = lib.check(el.VR == e2.VR, "%s: %s VR %s != %s" % (what, el.tag, el.VR, e2.VR)) and ok
        if el.VR == "SQ":
            ok = lib.check(len(el.value) == len(e2.value), "%s: %s items" % (what, el.tag)) and ok
            for i, (x, y) in enumerate(zip(el.value, e2.value)):
                ok = same_ds(x, y, "%s %s[%d]" % (what, el.tag, i)) and ok
            continue
        v1, v2 = el.value, e2.value
        if el.VR in ("FL", "FD", "DS"):
            l1 = list(v1) if isinstance(v1, (list, pydicom.multival.MultiValue)) else [v1]
            l2 = list(v2) if isinstance(v2, (list, pydicom.multival.MultiValue)) else [v2]
            same = len(l1) == len(l2) and all(
                (x is None and y is None) or (x is not None and y is not None and
                                              abs(float(x) - float(y)) <= 1e-6 * max(1, abs(float(x))))
                for x, y in zip(l1, l2))
        else:
            same = v1 == v2 or (not v1 and not v2)
        ok = lib.check(same, "%s: %s value %r != %r" % (what, el.tag, v1, v2)) and ok
    return ok


def test_every_vr(node):
    ds = every_vr(1)
    j, bulk = stowjson.to_json(ds, threshold=64)
    lib.check(len(bulk) == 4, "four bulk values (two inside sequences): %s" % list(bulk))
    st, r, raw = stowjson.post(node, "/dicomweb/studies", [j], bulk)
    lib.check(st == 200 and r and "00081199" in r, "every-VR instance stored (%s %r)" % (st, raw[:300]))
    back = retrieve(node, (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID))
    if back is not None:
        lib.check(str(back.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.1",
                  "stored as Explicit VR Little Endian")
        lib.check(same_ds(ds, back, "every-VR"), "retrieved data set equals the one sent")
        lib.check(str(back.PatientName) == str(ds.PatientName), "PN with ideographic groups")
    st, q = web.get_json(node, "/dicomweb/instances?SOPInstanceUID=" + ds.SOPInstanceUID, web.ADMIN)
    lib.check(st == 200 and len(q) == 1, "QIDO-RS finds the instance (%s)" % st)
    if q:
        lib.check(q[0]["00100010"]["Value"][0].get("Ideographic") == "山田^太郎",
                  "QIDO-RS PatientName ideographic group: %r" % q[0]["00100010"])


def test_mr_small_and_rle(node):
    ds = pydicom.dcmread(MR)
    j, bulk = stowjson.to_json(ds, threshold=1024)
    st, r, _ = stowjson.post(node, "/dicomweb/studies/" + ds.StudyInstanceUID, [j], bulk)
    lib.check(st == 200, "MR_small via JSON + bulk Pixel Data into /studies/{uid} (%s)" % st)
    back = retrieve(node, (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID))
    if back is not None:
        lib.check(same_ds(ds, back, "MR_small"), "MR_small: retrieved data set equals the original")
        lib.check(back.PixelData == ds.PixelData, "MR_small: Pixel Data byte-identical")

    store_rle(node, RLE, "2.25.8813.77.0.1", "image/dicom-rle; transfer-syntax=1.2.840.10008.1.2.5")
    store_rle(node, RLE2, "2.25.8813.77.1.1", "image/dicom-rle")  # the media type's default


def store_rle(node, path, sop_uid, ctype):
    """RLE frames as bulk data parts (one per frame, same Content-Location), the transfer syntax
    from the media type: stored encapsulated, frames and decoded pixels as the original."""
    rle = pydicom.dcmread(path)
    frames = list(generate_pixel_data_frame(rle.PixelData, int(getattr(rle, "NumberOfFrames", 1))))
    rle.SOPInstanceUID = sop_uid
    del rle.PixelData
    j, bulk = stowjson.to_json(rle, threshold=1024)
    uri = "http://client.example/rle/%s/7FE00010" % sop_uid
    j["7FE00010"] = {"vr": "OB", "BulkDataURI": uri}
    bulk[uri] = frames
    what = "%s (%d frames)" % (os.path.basename(path), len(frames))
    st, r, raw = stowjson.post(node, "/dicomweb/studies", [j], bulk,
                               bulk_types={uri: ctype})
    lib.check(st == 200, "%s: RLE frames as %s stored (%s %r)" % (what, ctype, st, raw[:200]))
    back = retrieve(node, (rle.StudyInstanceUID, rle.SeriesInstanceUID, sop_uid))
    if back is None:
        return
    lib.check(str(back.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.5",
              "%s: stored encapsulated in RLE Lossless (%s)" % (what, back.file_meta.TransferSyntaxUID))
    got = list(generate_pixel_data_frame(back.PixelData, len(frames)))
    lib.check(got == frames, "%s: encapsulated frames equal the parts sent" % what)
    # dcmtk decodes it as it decodes the original (pydicom has no numpy here)
    tmp = lib.tmpdir("mt-stowj-rle-")
    got_path, out_o, out_b = (os.path.join(tmp, n) for n in ("back.dcm", "o.dcm", "b.dcm"))
    back.save_as(got_path)
    lib.run(["dcmdrle", path, out_o])
    lib.run(["dcmdrle", got_path, out_b])
    lib.check(os.path.exists(out_b) and
              pydicom.dcmread(out_o).PixelData == pydicom.dcmread(out_b).PixelData,
              "%s: decoded pixels equal (dcmdrle)" % what)


def test_failures(node):
    good = every_vr(2)
    jg, bulk = stowjson.to_json(good)
    bad_vr = every_vr(3)
    jv, b3 = stowjson.to_json(bad_vr, base="http://client.example/b3/")
    jv["00280010"] = {"vr": "US", "Value": ["two"]}           # VR/value mismatch
    nobulk = every_vr(4)
    jn, _ = stowjson.to_json(nobulk, base="http://client.example/missing/")  # parts never sent
    nouid = every_vr(5)
    ju, b5 = stowjson.to_json(nouid, base="http://client.example/b5/")
    del ju["00080018"]
    badts = every_vr(6)
    jt, b6 = stowjson.to_json(badts, base="http://client.example/b6/")
    jt["7FE00010"] = {"vr": "OB", "BulkDataURI": "http://client.example/b6/px"}
    b6["http://client.example/b6/px"] = b"\xff\xd8\xff\xd9"
    inst_ok = good.SOPInstanceUID
    allbulk = {}
    for b in (bulk, b3, b5, b6):
        allbulk.update(b)
    before = len(node.index_instances())
    st, r, raw = stowjson.post(node, "/dicomweb/studies", [jg, jv, jn, ju, jt], allbulk,
                               bulk_types={"http://client.example/b6/px":
                                           "image/jpeg; transfer-syntax=1.2.3.4.5.6"})
    lib.check(st == 202, "some stored, some failed -> 202 (%s %r)" % (st, raw[:300]))
    if not r:
        return
    ok = [i["00081155"]["Value"][0] for i in r.get("00081199", {}).get("Value", [])]
    failed = {i["00081155"]["Value"][0] if "Value" in i.get("00081155", {}) else "":
              i["00081197"]["Value"][0] for i in r.get("00081198", {}).get("Value", [])}
    lib.check(ok == [inst_ok], "only the good instance stored: %r" % ok)
    lib.check(failed.get(bad_vr.SOPInstanceUID) == 0xC000, "VR/value mismatch: C000 (%r)" % failed)
    lib.check(failed.get(nobulk.SOPInstanceUID) == 0xC000, "BulkDataURI without a part: C000")
    lib.check(failed.get("") == 0xC000, "no SOP Instance UID: C000")
    lib.check(failed.get(badts.SOPInstanceUID) == 0xC122, "unknown transfer-syntax: C122")
    lib.check(len(node.index_instances()) == before + 1, "one instance more in the index")
    for u in (bad_vr.SOPInstanceUID, nobulk.SOPInstanceUID, badts.SOPInstanceUID):
        lib.check(web.stored_file(node, u) is None, "no file for failed %s" % u)
    lib.check(retrieve(node, (good.StudyInstanceUID, good.SeriesInstanceUID, inst_ok)) is not None,
              "the good instance retrievable")


def test_whole_request_errors(node):
    before = len(node.index_instances())
    j, bulk = stowjson.to_json(every_vr(8))
    st, _, raw = stowjson.post(node, "/dicomweb/studies", b'[{"00080016": {"vr": "UI", "Value": [',
                               bulk)
    lib.check(st == 400 and b"metadata" in raw, "malformed JSON -> 400 (%s %r)" % (st, raw[:100]))
    # a good instance next to a malformed metadata part is not stored either
    b1, ct = stowjson.body([j], bulk, extra_parts=[("Content-Type: application/dicom+json", b"{,}")])
    st, _, raw = web.request(node, "POST", "/dicomweb/studies", dict(web.ADMIN, **{"Content-Type": ct}), b1)
    lib.check(st == 400, "second metadata part malformed -> 400, nothing stored (%s)" % st)
    b2, ct = stowjson.body([], {}, meta_type="application/octet-stream")
    st, _, raw = web.request(node, "POST", "/dicomweb/studies", dict(web.ADMIN, **{"Content-Type": ct}), b2)
    lib.check(st == 400 and b"no application/dicom+json" in raw, "no metadata part -> 400 (%s)" % st)
    st, _, raw = stowjson.post(node, "/dicomweb/studies", b"[" * 100000 + b"]" * 100000, {})
    lib.check(st == 400 and b"nested too deeply" in raw, "hostile nesting -> 400 (%s %r)" % (st, raw[:80]))
    st, _, raw = stowjson.post(node, "/dicomweb/studies", b'{"a": 1}', {})
    lib.check(st == 409, "an object that is no instance -> 409 with C000 (%s)" % st)
    st, _, raw = web.request(node, "POST", "/dicomweb/studies",
                             dict(web.ADMIN, **{"Content-Type": 'multipart/related; type="application/dicom+xml"; boundary=x'}),
                             b"--x--\r\n")
    lib.check(st == 415 and b"dicom+xml" in raw, "application/dicom+xml -> 415 (%s %r)" % (st, raw))
    st, r, raw = stowjson.post(node, "/dicomweb/studies/2.25.1", [j], bulk)
    lib.check(st == 409 and r and r["00081198"]["Value"][0]["00081197"]["Value"][0] == 0xA900,
              "study of the URL differs -> A900, 409 (%s)" % st)
    lib.check(len(node.index_instances()) == before, "nothing stored by refused requests")
    lib.check(not node.tmp_files(), "no temp files left: %r" % node.tmp_files())


def test_curl(node):
    """the same request from curl (the README's recipe): body file, --data-binary"""
    ds = every_vr(9)
    j, bulk = stowjson.to_json(ds)
    body, ct = stowjson.body([j], bulk)
    path = os.path.join(lib.tmpdir("mt-stowj-curl-"), "body")
    with open(path, "wb") as f:
        f.write(body)
    out = lib.run(["curl", "-sS", "-w", "\n%{http_code}", "-H", "Authorization: Bearer " + web.TOKEN_ADMIN,
                   "-H", "Content-Type: " + ct, "-H", "Accept: application/dicom+json",
                   "--data-binary", "@" + path,
                   "http://127.0.0.1:%d/dicomweb/studies" % node.http_port])
    resp, _, code = out.stdout.rpartition("\n")
    lib.check(code.strip() == "200", "curl: stored (%s)" % code)
    r = json.loads(resp) if resp.strip() else {}
    lib.check([i["00081155"]["Value"][0] for i in r.get("00081199", {}).get("Value", [])]
              == [ds.SOPInstanceUID], "curl: ReferencedSOPSequence names the instance")
    back = retrieve(node, (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID))
    if back is not None:
        lib.check(same_ds(ds, back, "curl"), "curl: retrieved data set equals the one sent")


def test_round_trip():
    """metadata of node A -> STOW JSON (+ its bulk data) to node B -> metadata of B equal."""
    a = web.WebNode(name="stowj-a")
    b = web.WebNode(name="stowj-b")
    a.start()
    b.start()
    try:
        ds = pydicom.dcmread(MR)
        st, _ = web.stow(a, "/dicomweb/studies", [MR], web.ADMIN)
        lib.check(st == 200, "node A: MR_small stored as application/dicom (%s)" % st)
        path = "/dicomweb/studies/%s/series/%s/instances/%s" % (
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        st, ma = web.get_json(a, path + "/metadata", dict(web.ADMIN, Accept="application/dicom+json"))
        lib.check(st == 200 and ma, "node A metadata (%s)" % st)
        if not ma:
            return
        bulk = {}
        for tag, el in ma[0].items():
            uri = el.get("BulkDataURI")
            if not uri:
                continue
            rel = uri[uri.index("/dicomweb/"):]
            st, h, body = web.request(a, "GET", rel, dict(web.ADMIN, Accept="multipart/related; type=\"application/octet-stream\""))
            parts = web.multipart_decode(h.get("content-type", ""), body) if st == 200 else []
            lib.check(st == 200 and len(parts) == 1, "node A bulk data %s (%s)" % (tag, st))
            if parts:
                bulk[uri] = parts[0][1]
        lib.check(bulk, "node A metadata carries BulkDataURIs")
        st, r, raw = stowjson.post(b, "/dicomweb/studies", ma, bulk)
        lib.check(st == 200, "node B: A's metadata + bulk data stored (%s %r)" % (st, raw[:200]))
        st, mb = web.get_json(b, path + "/metadata", dict(web.ADMIN, Accept="application/dicom+json"))
        lib.check(st == 200 and mb, "node B metadata (%s)" % st)
        if mb:
            strip = lambda m: {t: {k: v for k, v in e.items() if k != "BulkDataURI"} for t, e in m.items()}
            lib.check(strip(ma[0]) == strip(mb[0]), "metadata round trip equal")
            lib.check(set(ma[0]) == set(mb[0]), "same attributes")
        uids = tuple(path.split("/")[3::2])
        da, db = retrieve(a, uids), retrieve(b, uids)
        if da is not None and db is not None:
            lib.check(same_ds(da, db, "A vs B"), "node B's instance equals node A's")
    finally:
        ra, rb = a.stop(), b.stop()
    lib.check(ra == 0 and rb == 0, "clean stops")


def test_hold_limit():
    """http.stow_hold_mb: a metadata + bulk data request over it is refused whole (413)"""
    node = web.WebNode(name="stowj-hold", extra={"http.stow_hold_mb": 1})
    node.start()
    try:
        ds = every_vr(10)
        j, bulk = stowjson.to_json(ds)
        bulk["http://client.example/big"] = b"\0" * (1 << 20)
        st, _, raw = stowjson.post(node, "/dicomweb/studies", [j], bulk)
        lib.check(st == 413 and b"http.stow_hold_mb" in raw, "over stow_hold_mb -> 413 (%s %r)" % (st, raw[:120]))
        lib.check(not node.index_instances(), "nothing stored")
        del bulk["http://client.example/big"]
        st, _, _ = stowjson.post(node, "/dicomweb/studies", [j], bulk)
        lib.check(st == 200, "under the limit: stored (%s)" % st)
    finally:
        rc = node.stop()
    lib.check(rc == 0, "clean stop (rc %s)" % rc)


def main():
    node = web.WebNode(name="stowj")
    node.start()
    try:
        test_every_vr(node)
        test_mr_small_and_rle(node)
        test_failures(node)
        test_whole_request_errors(node)
        test_curl(node)
    finally:
        rc = node.stop()
    lib.check(rc == 0, "clean stop (rc %s)" % rc)
    test_round_trip()
    test_hold_limit()


lib.run_guarded(main)
