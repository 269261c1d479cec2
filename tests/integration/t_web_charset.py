#!/usr/bin/python3
"""t_web_charset.py - DICOMweb JSON text in UTF-8 from every Specific Character Set (issue 7:
values as dcm2json gives them; where Debian's dcm2json cannot convert, ISO 2022 IR 87 with
glibc's iconv, pydicom's decoding is the reference).

Every file of ../shared/testdata/pydicom/charset_files (single-byte sets, ISO 2022 code
extensions for Japanese, Korean and Chinese, GB18030, UTF-8, a sequence item with its own
character set) is stored by C-STORE; then WADO-RS /metadata of each instance and a QIDO-RS
instance search that returns PatientName: every PN component group and every LO/SH/ST/LT
value, at any depth, must be the text pydicom decodes from the file, and the response must be
valid UTF-8 JSON declaring ISO_IR 192."""
import glob
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import lib  # noqa: E402
import web  # noqa: E402

try:
    import pydicom  # noqa: E402
except ImportError:
    lib.skip("pydicom not installed")

CHARSETS = os.path.join(ROOT, "..", "shared", "testdata", "pydicom", "charset_files")
TEXT_VRS = ("LO", "SH", "ST", "LT", "UT", "UC")


def pn_groups(text):
    groups = dict(zip(("Alphabetic", "Ideographic", "Phonetic"), text.split("=")))
    return {g: v.rstrip(" ") for g, v in groups.items() if v.rstrip(" ")}


def expected_values(ds):
    """{(path of tag hex strings): [decoded strings, PN as dicts]} from pydicom."""
    out = {}

    def walk(d, path):
        for el in d:
            if el.tag.is_private:
                continue  # implicit VR private elements are UN to us (and to dcm2json)
            key = path + (format(el.tag, "08X"),)
            if el.VR == "SQ":
                for k, item in enumerate(el.value):
                    walk(item, key + (k,))
            elif el.VR == "PN" and el.value:
                vals = el.value if el.VM > 1 else [el.value]
                out[key] = [pn_groups(str(v)) for v in vals]
            elif el.VR in TEXT_VRS and el.value not in (None, ""):
                vals = list(el.value) if el.VM > 1 else [el.value]
                out[key] = [str(v).strip(" ") if el.VR not in ("ST", "LT", "UT") else
                            str(v).rstrip(" ") for v in vals]
    walk(ds, ())
    return out


def got_values(obj):
    out = {}

    def walk(o, path):
        for tag, e in o.items():
            key = path + (tag,)
            if e.get("vr") == "SQ":
                for k, item in enumerate(e.get("Value", [])):
                    walk(item, key + (k,))
            elif e.get("vr") in TEXT_VRS + ("PN",) and "Value" in e:
                out[key] = e["Value"]
    walk(obj, ())
    return out


def main():
    files = sorted(glob.glob(os.path.join(CHARSETS, "*.dcm")))
    if len(files) < 10:
        lib.skip("charset test files absent: " + CHARSETS)
    node = web.WebNode(name="charset")
    node.start()
    tmp = lib.tmpdir("mt-charset-in-")
    # the files share UIDs in places: store them one at a time, check each right after
    for f in files:
        name = os.path.basename(f)
        ds = pydicom.dcmread(f)
        if "StudyInstanceUID" not in ds or "SOPInstanceUID" not in ds:
            # chrSQEncoding*: minimal data sets (a sequence item with its own character set)
            ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
            ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.%d.1" % len(name)
            ds.SeriesInstanceUID = ds.StudyInstanceUID + ".1"
            f = os.path.join(tmp, name)
            ds.save_as(f, write_like_original=True)
            ds = pydicom.dcmread(f)
        ds.decode()
        # C-STORE, not STOW-RS: some of these files' meta headers name another SOP instance
        # than their data set, which STOW-RS rightly refuses (A900)
        r = lib.storescu(node, [f])
        if not lib.check(r.returncode == 0, "%s: storescu: %s" % (name, r.stdout[-300:])):
            continue
        s, se, i = ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
        st, h, body = web.request(node, "GET", "/dicomweb/studies/%s/series/%s/instances/%s/"
                                  "metadata" % (s, se, i), web.ADMIN)
        lib.check(st == 200, "%s: metadata status %s" % (name, st))
        try:
            meta = json.loads(body.decode("utf-8"))[0]
        except (UnicodeDecodeError, ValueError, IndexError) as e:
            lib.check(False, "%s: metadata is not UTF-8 JSON: %s" % (name, e))
            continue
        cs = meta.get("00080005", {}).get("Value")
        lib.check(cs in (None, ["ISO_IR 192"]), "%s: SpecificCharacterSet %r" % (name, cs))
        want, got = expected_values(ds), got_values(meta)
        for key, v in want.items():
            lib.check(got.get(key) == v, "%s: %s is %r, pydicom reads %r"
                      % (name, "/".join(map(str, key)), got.get(key), v))
        if "PatientName" in ds:
            st, h, body = web.request(node, "GET", "/dicomweb/studies/%s/instances?SOPInstanceUID"
                                      "=%s&includefield=00100010" % (s, i), web.ADMIN)
            q = json.loads(body.decode("utf-8")) if st == 200 else []
            pn = q[0].get("00100010", {}).get("Value") if q else None
            lib.check(pn == want.get(("00100010",)), "%s: QIDO PatientName %r, pydicom %r"
                      % (name, pn, want.get(("00100010",))))
    lib.finish()


if __name__ == "__main__":
    lib.run_guarded(main)
