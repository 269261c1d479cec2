#!/usr/bin/python3
"""t_web_rendered.py - WADO-RS rendered and thumbnail resources for colour and grayscale native
images, study/series level included (PS3.18 §10.4.1.1.3-4).

Fixtures: ../shared/testdata colour files (RGB interleaved and planar, YBR_FULL, YBR_FULL_422,
PALETTE COLOR with 16-bit entries, little and big endian, an RLE-compressed RGB) and small
pydicom-made images whose every pixel is known (RGB 16-bit planar, PALETTE COLOR with 8-bit
entries, a 3-instance MONOCHROME2 series). Each PNG (lossless) is decoded here and compared
with the expected pixels worked out in Python from the raw Pixel Data (the PS3.3 equations);
JPEGs are checked for size and component count. Also: viewport (fit, crop, flip), window,
quality, annotation (accepted, Warning), bad parameters 400, compressed 406 with the reason,
study/series rendered as multipart/related with one part per renderable instance and its
Content-Location, and series/study thumbnails = the middle instance of the first series."""
import os
import struct
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
import web  # noqa: E402

import pydicom  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402

TD = lib.TESTDATA
SHARED = {
    "rgb": "pydicom/test_files/examples_rgb_color.dcm",
    "rgb_planar": "pydicom-data/color-pl.dcm",
    "ybr_full": "pydicom-data/SC_ybr_full_uncompressed.dcm",
    "ybr_422": "pydicom/test_files/SC_ybr_full_422_uncompressed.dcm",
    "palette16": "pydicom/test_files/examples_palette.dcm",
    "palette_implicit": "orthanc-tests/Implicit-vr-us-palette.dcm",
    "palette_segmented": "pydicom-data/gdcm-US-ALOKA-16_big.dcm",
    "rgb_be": "pydicom-data/SC_rgb_expb.dcm",
    "rle": "pydicom/test_files/SC_rgb_rle.dcm",
}


# ---- decoding what the node sends ----

def png_decode(b):
    """8-bit grey/RGB non-interlaced PNG -> (w, h, channels, bytes)."""
    assert b[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w = 8, b"", None
    while pos < len(b):
        n, = struct.unpack(">I", b[pos:pos + 4])
        typ, data = b[pos + 4:pos + 8], b[pos + 8:pos + 8 + n]
        pos += 12 + n
        if typ == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", data[:10])
            assert depth == 8 and ctype in (0, 2)
            ch = 3 if ctype == 2 else 1
        elif typ == b"IDAT":
            idat += data
    raw, out, stride = zlib.decompress(idat), bytearray(), w * ch
    prev = bytearray(stride)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - ch] if x >= ch else 0
            up, c = prev[x], prev[x - ch] if x >= ch else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + up) & 255
            elif f == 3:
                line[x] = (line[x] + (a + up) // 2) & 255
            elif f == 4:
                p = a + up - c
                pa, pb, pc = abs(p - a), abs(p - up), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else up if pb <= pc else c)) & 255
        out += line
        prev = line
    return w, h, ch, bytes(out)


def jpeg_sof(b):
    """(width, height, components) from a JPEG's SOF marker."""
    assert b[:2] == b"\xff\xd8", "not a JPEG"
    pos = 2
    while pos < len(b):
        marker, n = b[pos + 1], struct.unpack(">H", b[pos + 2:pos + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            h, w, comps = struct.unpack(">HHB", b[pos + 5:pos + 10])
            return w, h, comps
        pos += 2 + n
    raise AssertionError("no SOF")


# ---- expected pixels, from the raw Pixel Data (PS3.3 C.7.6.3.1.2, C.7.6.3.1.5-6) ----

def clamp8(v):
    return 0 if v <= 0 else 255 if v >= 255 else int(v + 0.5)


def ybr(y, cb, cr):
    return (clamp8(y + 1.402 * (cr - 128)), clamp8(y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128)),
            clamp8(y + 1.772 * (cb - 128)))


def expected_rgb(ds):
    rows, cols, pi = ds.Rows, ds.Columns, ds.PhotometricInterpretation
    be = not ds.file_meta.TransferSyntaxUID.is_little_endian if hasattr(ds, "file_meta") else False
    px, bits = bytes(ds.PixelData), ds.BitsAllocated
    nf = int(getattr(ds, "NumberOfFrames", 1) or 1)
    npx = rows * cols

    def samples(raw):
        if bits == 8:
            return list(raw)
        fmt = (">" if be else "<") + "%dH" % (len(raw) // 2)
        return list(struct.unpack(fmt, raw))
    if pi == "PALETTE COLOR":
        s = samples(px[:npx * bits // 8])
        luts = []
        for c in ("Red", "Green", "Blue"):
            n, first, lb = getattr(ds, c + "PaletteColorLookupTableDescriptor")
            data = bytes(getattr(ds, c + "PaletteColorLookupTableData"))
            n = n or 65536
            if lb == 16:
                ent = [data[2 * i] if be else data[2 * i + 1] for i in range(n)]
            else:
                ent = list(data[:n])
            luts.append((first, ent))
        out = bytearray()
        for v in s:
            for first, ent in luts:
                out.append(ent[min(max(v - first, 0), len(ent) - 1)])
        return bytes(out)
    shift = (ds.BitsStored if bits == 16 else 8) - 8
    if pi == "YBR_FULL_422":
        s = samples(px[:npx * 2 * bits // 8])
        out = bytearray()
        for i in range(0, npx, 2):
            y1, y2, cb, cr = (v >> shift for v in s[2 * i:2 * i + 4])
            out += bytes(ybr(y1, cb, cr)) + bytes(ybr(y2, cb, cr))
        return bytes(out)
    s = samples(px[:npx * 3 * bits // 8])
    planar = int(getattr(ds, "PlanarConfiguration", 0) or 0)
    out = bytearray()
    for i in range(npx):
        v = [s[c * npx + i] if planar else s[3 * i + c] for c in range(3)]
        v = [x >> shift for x in v]
        out += bytes(ybr(*v)) if pi == "YBR_FULL" else bytes(v)
    assert nf >= 1
    return bytes(out)


def close(a, b, tol):
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b))


# ---- pydicom-made fixtures ----

def base_ds(study, series, sop, inst_no=1):
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.PatientID, ds.PatientName, ds.Modality = "RND1", "Render^Test", "OT"
    ds.SeriesNumber, ds.InstanceNumber = 1, inst_no
    return ds


def save(ds, path, ts=pydicom.uid.ExplicitVRLittleEndian):
    m = FileMetaDataset()
    m.MediaStorageSOPClassUID, m.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    m.TransferSyntaxUID = ts
    ds.file_meta = m
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(path, write_like_original=False)
    return path


def make_rgb16_planar(path):
    ds = base_ds("2.25.7320.1", "2.25.7320.1.1", "2.25.7320.1.1.1")
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 4, 6, 3, "RGB"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PlanarConfiguration = 1
    vals = [(c * 1000 + i * 150) % 4096 for c in range(3) for i in range(24)]
    ds.PixelData = struct.pack("<%dH" % len(vals), *vals)
    return save(ds, path)


def make_palette8(path):
    ds = base_ds("2.25.7320.2", "2.25.7320.2.1", "2.25.7320.2.1.1")
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 2, 8, 1, "PALETTE COLOR"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    for c, k in (("Red", 3), ("Green", 5), ("Blue", 7)):
        setattr(ds, c + "PaletteColorLookupTableDescriptor", [16, 4, 8])
        ds.add_new({"Red": 0x00281201, "Green": 0x00281202, "Blue": 0x00281203}[c], "OW",
                   bytes((k * i) & 255 for i in range(16)))
    ds[0x00281101].VR = ds[0x00281102].VR = ds[0x00281103].VR = "US"
    ds.PixelData = bytes(range(0, 32, 2))
    return save(ds, path)


def make_mono_series(d):
    paths = []
    for k in range(3):
        ds = base_ds("2.25.7320.3", "2.25.7320.3.1", "2.25.7320.3.1.%d" % (k + 1), k + 1)
        ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 8, 16, 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        vals = [(x * 100 + y * 10 + k * 1000) for y in range(8) for x in range(16)]
        ds.PixelData = struct.pack("<128H", *vals)
        paths.append(save(ds, os.path.join(d, "mono%d.dcm" % k)))
    return paths


def unique_copy(src, d, i):
    """The shared files reuse UIDs between them: a copy with its own study/series/instance
    UIDs, encoded as the original (transfer syntax, byte order, VR)."""
    ds = pydicom.dcmread(src)
    ds.StudyInstanceUID = "2.25.7320.10.%d" % i
    ds.SeriesInstanceUID = "2.25.7320.10.%d.1" % i
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "2.25.7320.10.%d.1.1" % i
    out = os.path.join(d, "shared%d.dcm" % i)
    ds.save_as(out, write_like_original=True)
    return out


def main():
    missing = [k for k, p in SHARED.items() if not os.path.exists(os.path.join(TD, p))]
    if missing:
        lib.skip("test data missing: %s" % missing)
    d = lib.tmpdir("mt-web-rendered-")
    made = {"rgb16_planar": make_rgb16_planar(os.path.join(d, "rgb16.dcm")),
            "palette8": make_palette8(os.path.join(d, "pal8.dcm"))}
    mono = make_mono_series(d)
    files = {k: unique_copy(os.path.join(TD, p), d, i) for i, (k, p) in enumerate(SHARED.items())}
    files.update(made)
    node = web.WebNode(name="rendered")
    node.start()
    B = "/projects/p1/dicomweb"
    for k, f in list(files.items()) + [("mono%d" % i, p) for i, p in enumerate(mono)]:
        st, _ = web.stow(node, B + "/studies", [f], web.ALICE)
        lib.check(st == 200, "STOW %s (%s)" % (k, st))

    def url(ds):
        return "%s/studies/%s/series/%s/instances/%s" % (B, ds.StudyInstanceUID,
                                                          ds.SeriesInstanceUID, ds.SOPInstanceUID)

    def get(path, accept="image/png", extra=None):
        h = dict(web.ALICE, Accept=accept)
        h.update(extra or {})
        return web.request(node, "GET", path, h)

    # --- every colour layout, PNG compared pixel by pixel ---
    for k, f in files.items():
        ds = pydicom.dcmread(f)
        st, h, b = get(url(ds) + "/rendered")
        if k == "rle":
            lib.check(st == 406 and b"1.2.840.10008.1.2.5" in b,
                      "compressed (RLE) colour: 406 naming the transfer syntax (%s %r)" % (st, b[:120]))
            continue
        if k == "palette_segmented":
            lib.check(st == 406 and b"segmented" in b, "segmented palette: 406 saying so (%s)" % st)
            continue
        if not lib.check(st == 200 and h.get("content-type") == "image/png",
                         "%s rendered as PNG (%s %r)" % (k, st, b[:150])):
            continue
        w, hh, ch, px = png_decode(b)
        want = expected_rgb(ds)
        tol = 2 if ds.PhotometricInterpretation.startswith("YBR") else 0
        lib.check((w, hh, ch) == (ds.Columns, ds.Rows, 3), "%s: %dx%dx%d" % (k, w, hh, ch))
        lib.check(close(px, want, tol), "%s: every pixel as expected (tolerance %d)" % (k, tol))
        st, h, b = get(url(ds) + "/rendered", "image/jpeg")
        lib.check(st == 200 and jpeg_sof(b) == (ds.Columns, ds.Rows, 3),
                  "%s rendered as a 3-component JPEG (%s)" % (k, st))

    # --- viewport: fit, crop + flip (exact, on the palette image), thumbnail size ---
    pal = pydicom.dcmread(files["palette8"])
    full = png_decode(get(url(pal) + "/rendered")[2])[3]
    st, _, b = get(url(pal) + "/rendered?viewport=4,4")
    lib.check(st == 200 and png_decode(b)[:2] == (4, 1), "viewport=4,4 fits 8x2 into 4x1")
    st, _, b = get(url(pal) + "/rendered?viewport=2,2,8,0,-2,2")
    want = full[3 * 7:3 * 8] + full[3 * 6:3 * 7] + full[3 * 15:3 * 16] + full[3 * 14:3 * 15]
    lib.check(st == 200 and png_decode(b)[3] == want,
              "viewport source region sx=8 sw=-2: the last two columns, flipped")
    st, _, b = get(url(pal) + "/rendered?viewport=,6")
    lib.check(st == 200 and png_decode(b)[:2] == (24, 6), "viewport with only vh scales up")
    rgb = pydicom.dcmread(files["rgb"])
    st, _, b = get(url(rgb) + "/thumbnail")
    tw, th = png_decode(b)[:2] if st == 200 else (0, 0)
    lib.check(st == 200 and max(tw, th) == 128, "instance thumbnail fits 128 (%dx%d)" % (tw, th))

    # --- quality, window, annotation, bad parameters ---
    st1, _, lo = get(url(rgb) + "/rendered?quality=5", "image/jpeg")
    st2, _, hi = get(url(rgb) + "/rendered?quality=98", "image/jpeg")
    lib.check(st1 == st2 == 200 and len(lo) < len(hi), "quality=5 is smaller than quality=98")
    m0 = pydicom.dcmread(mono[0])
    st, _, b = get(url(m0) + "/rendered?window=750,1,linear-exact")
    px = png_decode(b)[3] if st == 200 else b""
    lib.check(st == 200 and px[0] == 0 and px[15] == 255, "window=c,w,linear-exact applies")
    st, h, b = get(url(m0) + "/rendered?annotation=patient,technique")
    lib.check(st == 200 and "annotation" in h.get("warning", ""),
              "annotation accepted and ignored, with a Warning (%s)" % h.get("warning"))
    for bad in ("window=1", "window=1,0", "window=1,2,cubic", "quality=0", "quality=x",
                "viewport=0,10", "viewport=1,2,3", "viewport=10,10,100,100,5,5"):
        st, _, b = get(url(m0) + "/rendered?" + bad)
        lib.check(st == 400, "%s is 400 (%s)" % (bad, st))
    st, _, _ = get(url(m0) + "/frames/2/rendered")
    lib.check(st == 404, "frame 2 of a single-frame image: 404 (%s)" % st)

    # --- study and series rendered: one part per instance, in order, with Content-Location ---
    series = "%s/studies/2.25.7320.3/series/2.25.7320.3.1" % B
    st, h, b = get(series + "/rendered", 'multipart/related; type="image/png"')
    parts = web.multipart_decode(h.get("content-type", ""), b) if st == 200 else []
    lib.check(st == 200 and 'type="image/png"' in h.get("content-type", "") and len(parts) == 3,
              "series rendered: multipart/related of 3 PNGs (%s, %d)" % (st, len(parts)))
    for i, p in enumerate(parts):
        one = get(url(pydicom.dcmread(mono[i])) + "/rendered")[2]
        lib.check(p[1] == one, "part %d = the instance's rendered PNG" % (i + 1))
    st, h, b = web.request(node, "GET", series + "/rendered",
                           dict(web.ALICE, Accept="image/jpeg"))
    lib.check(st == 200 and b.count(b"Content-Location: ") == 3 and
              b"/instances/2.25.7320.3.1.2/rendered" in b, "series rendered as JPEG parts with "
              "Content-Location")
    st, h, b = get("%s/studies/2.25.7320.3/rendered" % B, "image/png")
    lib.check(st == 200 and len(web.multipart_decode(h.get("content-type", ""), b)) == 3,
              "study rendered: all its instances")
    rle = pydicom.dcmread(files["rle"])
    st, _, b = get("%s/studies/%s/rendered" % (B, rle.StudyInstanceUID))
    lib.check(st == 406, "a study with nothing renderable: 406 (%s)" % st)

    # --- series/study thumbnail: one image, the middle instance of the first series ---
    mid = get(url(pydicom.dcmread(mono[1])) + "/thumbnail")[2]
    st, h, b = get(series + "/thumbnail")
    lib.check(st == 200 and h.get("content-type") == "image/png" and b == mid,
              "series thumbnail = the middle instance's thumbnail")
    st, h, b = get("%s/studies/2.25.7320.3/thumbnail" % B)
    lib.check(st == 200 and b == mid, "study thumbnail = the same representative image")

    # --- WADO-URI colour ---
    st, h, b = web.request(node, "GET", "%s/wado?requestType=WADO&studyUID=%s&seriesUID=%s&objectUID"
                           "=%s&contentType=image/png&columns=64" % (B, rgb.StudyInstanceUID,
                                                                      rgb.SeriesInstanceUID,
                                                                      rgb.SOPInstanceUID), web.ALICE)
    lib.check(st == 200 and png_decode(b)[0] == 64 and png_decode(b)[2] == 3,
              "WADO-URI colour PNG with columns=64 (%s)" % st)
    st, _, _ = get("%s/studies/2.25.7320.3/series/2.25.7320.3.1/rendered" % B, "image/png",
                   {"Authorization": web.BOB["Authorization"]})
    lib.check(st in (403, 404), "another project's user: no rendered series (%s)" % st)
    lib.check(node.stop() == 0, "clean stop")


lib.run_guarded(main)
