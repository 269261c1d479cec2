#!/usr/bin/python3
"""t_find_charset_patient.py - one patient, two studies in different character sets: the first
sent in ISO_IR 100 (Latin-1 bytes of "Müller^Jörg"), the second in ISO_IR 192 (UTF-8). The
patient's attributes are kept once (the latest values) while each study keeps its own
character set, so C-FIND must not mix them (PS3.4 C.4.1.1.3.1 / PS3.5 6.1: a response's values
are in its SpecificCharacterSet):
  - STUDY level, every study: PatientName decodes to "Müller^Jörg" with the response's
    SpecificCharacterSet (the first study's response declared ISO_IR 100 over UTF-8 bytes:
    "MÃ¼ller^JÃ¶rg"), and the study's own non-ASCII StudyDescription too;
  - PatientName=Müller* (a UTF-8 query) finds the patient at PATIENT level and both studies
    at STUDY level (they were matched against the bytes read in the wrong character set).
Files written with pydicom, sent with storescu, queried with findscu -X."""
import os
import shutil

import lib

try:
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
except ImportError:
    lib.skip("pydicom not installed")

NAME = "M\u00fcller^J\u00f6rg"
MR = "1.2.840.10008.5.1.4.1.1.4"


def write(path, charset, codec, study, desc):
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    ds.SOPClassUID = MR
    ds.SOPInstanceUID = study + ".1.1"
    ds.PatientID = "CSP-1"
    ds.PatientName = NAME.encode(codec)
    ds.StudyInstanceUID = study
    ds.StudyDescription = desc.encode(codec)
    ds.SeriesInstanceUID = study + ".1"
    ds.StudyDate = "20250101"
    ds.Modality = "MR"
    ds.Rows = 2
    ds.Columns = 2
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MR
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(path, write_like_original=False)


def find(node, xdir, model, qfile):
    shutil.rmtree(xdir, ignore_errors=True)
    os.mkdir(xdir)
    r = lib.run(["findscu", "-v", model, "-X", "-od", xdir, "-aec", node.aet, "-aet", "FINDSCU",
                 "127.0.0.1", str(node.port), qfile])
    lib.check(r.returncode == 0, "findscu exit %s: %s" % (r.returncode, r.stderr[-500:]))
    out = []
    for f in sorted(os.listdir(xdir)):
        ds = pydicom.dcmread(os.path.join(xdir, f), force=True)
        ds.decode()
        out.append(ds)
    return out


def query(path, level, name=""):
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.QueryRetrieveLevel = level
    ds.PatientName = name.encode("utf-8")
    ds.PatientID = ""
    if level == "STUDY":
        ds.StudyInstanceUID = ""
        ds.StudyDescription = ""
    ds.is_little_endian, ds.is_implicit_VR = True, True
    ds.save_as(path, write_like_original=True)


def body():
    if not shutil.which("findscu"):
        lib.skip("dcmtk findscu not installed")
    if not lib.IS_MITRAL:
        lib.skip("C-FIND is mitral's")
    work = lib.tmpdir("mt-findcsp-")
    f1, f2 = os.path.join(work, "latin1.dcm"), os.path.join(work, "utf8.dcm")
    write(f1, "ISO_IR 100", "latin-1", "2.25.77001", "Fr\u00fchjahr")
    write(f2, "ISO_IR 192", "utf-8", "2.25.77002", "Gr\u00f6\u00dfe")
    node = lib.Node("findcsp").start()
    try:
        for f in (f1, f2):  # in this order: the patient's latest values are UTF-8
            r = lib.storescu(node, [f])
            lib.check(r.returncode == 0, "storescu %s" % f)
        xdir = os.path.join(work, "x")
        q = os.path.join(work, "q.dcm")

        query(q, "STUDY")
        rs = find(node, xdir, "-S", q)
        lib.check(len(rs) == 2, "two studies, got %d" % len(rs))
        descs = {"2.25.77001": "Fr\u00fchjahr", "2.25.77002": "Gr\u00f6\u00dfe"}
        for ds in rs:
            uid = ds.StudyInstanceUID
            lib.check(str(ds.PatientName) == NAME, "study %s (%s): PatientName %r" %
                      (uid, ds.get("SpecificCharacterSet"), str(ds.PatientName)))
            lib.check(str(ds.StudyDescription) == descs.get(uid), "study %s (%s): "
                      "StudyDescription %r" % (uid, ds.get("SpecificCharacterSet"),
                                               str(ds.StudyDescription)))

        query(q, "PATIENT", "M\u00fcller*")
        rs = find(node, xdir, "-P", q)
        lib.check(len(rs) == 1, "PATIENT level PatientName=M\u00fcller*: 1 patient, got %d"
                  % len(rs))
        for ds in rs:
            lib.check(str(ds.PatientName) == NAME, "patient: PatientName %r" % str(ds.PatientName))
        query(q, "STUDY", "M\u00fcller*")
        rs = find(node, xdir, "-S", q)
        lib.check(len(rs) == 2, "STUDY level PatientName=M\u00fcller*: 2 studies, got %d"
                  % len(rs))
        lib.check(node.alive(), "node alive")
    finally:
        node.stop()


lib.run_guarded(body)
lib.finish()
