#!/usr/bin/python3
"""t_find_charset.py - C-FIND matches names stored in any Specific Character Set (issue 3's
C-FIND, PS3.4 C.2.2.2: values are compared as characters, whatever their encoding).

pydicom's charset test files (Cyrillic ISO_IR 144, Greek ISO_IR 126, Arabic ISO_IR 127,
Japanese and Korean under ISO 2022 code extensions, Chinese GB18030, UTF-8) are stored with
storescu; then findscu asks in UTF-8 (SpecificCharacterSet ISO_IR 192) for each patient's name
by a wildcard on the group that carries the non-ASCII text (alphabetic, or ideographic for the
ISO 2022 / GB18030 names), exact and with '*': each finds its own study and no other, at
STUDY and PATIENT level; the answer carries the stored bytes and the stored character set
(which pydicom decodes back to the same name). A Cyrillic query sent in ISO_IR 144 finds the
same study."""
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import lib  # noqa: E402

try:
    import pydicom  # noqa: E402
except ImportError:
    lib.skip("pydicom not installed")

CHARSETS = os.path.join(ROOT, "..", "shared", "testdata", "pydicom", "charset_files")
# file -> the component group (0 alphabetic, 1 ideographic) whose text is not ASCII
FILES = {"chrRuss.dcm": 0, "chrGreek.dcm": 0, "chrArab.dcm": 0, "chrH31.dcm": 1,
         "chrI2.dcm": 1, "chrX2.dcm": 1, "chrX1.dcm": 1, "chrKoreanMulti.dcm": 0}


def find(node, xdir, keys, model="-S"):
    shutil.rmtree(xdir, ignore_errors=True)
    os.mkdir(xdir)
    cmd = ["findscu", "-v", model, "-X", "-od", xdir, "-aec", node.aet, "-aet", "FINDSCU"]
    for k in keys:
        cmd += ["-k", k]
    r = lib.run(cmd + ["127.0.0.1", str(node.port)])
    rs = [pydicom.dcmread(os.path.join(xdir, f), force=True) for f in sorted(os.listdir(xdir))]
    return r, rs


def main():
    files = [os.path.join(CHARSETS, f) for f in FILES]
    if not all(os.path.exists(f) for f in files):
        lib.skip("charset test files absent: " + CHARSETS)
    node = lib.Node(name="findcs")
    node.start()
    r = lib.storescu(node, files)
    lib.check(r.returncode == 0, "storescu: " + r.stdout[-300:])
    xdir = os.path.join(lib.tmpdir("mt-findcs-"), "x")
    names = {}
    for name in FILES:
        ds = pydicom.dcmread(os.path.join(CHARSETS, name))
        ds.decode()
        names[name] = str(ds.PatientName)
    for name, group in FILES.items():
        pn = names[name]
        text = pn.split("=")[group]
        family = text.split("^")[0]
        prefix = "=" * group  # earlier groups: no condition
        exact = sorted(set(n for n in names.values() if n.split("=")[group:group + 1] == [text]))
        fam = sorted(set(n for n in names.values() if len(n.split("=")) > group and
                         n.split("=")[group].split("^")[0] == family))
        for pattern, want in ((prefix + text, exact), (prefix + family + "*", fam)):
            for level, model in (("STUDY", "-S"), ("PATIENT", "-P")):
                key = "PatientName=" + pattern
                r, rs = find(node, xdir, ["QueryRetrieveLevel=" + level,
                                          "SpecificCharacterSet=ISO_IR 192", key.encode("utf-8"),
                                          "StudyInstanceUID" if level == "STUDY" else "PatientID"],
                             model)
                got = []
                for x in rs:
                    x.decode()
                    got.append(str(x.PatientName))
                lib.check(sorted(got) == want, "%s, %s level, %s: found %r, want %r%s"
                          % (name, level, pattern, got, want,
                             "" if rs else "\n" + r.stdout[-400:]))
    # the query in the stored data's own single-byte character set
    r, rs = find(node, xdir, ["QueryRetrieveLevel=STUDY", "SpecificCharacterSet=ISO_IR 144",
                              "PatientName=" .encode() + "Люк*".encode("iso8859_5"),
                              "StudyInstanceUID"])
    lib.check(len(rs) == 1, "an ISO_IR 144 query finds the Cyrillic study (%d)" % len(rs))
    lib.finish()


if __name__ == "__main__":
    lib.run_guarded(main)
