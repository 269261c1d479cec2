#!/usr/bin/python3
"""t_find.py - C-FIND SCP and project folders (issue 3), with dcmtk's findscu and a raw peer.

Generated studies (pydicom) plus, when present, real files from ../shared/testdata (charset
samples, MR) are stored with storescu; then findscu at every level of Patient Root and Study
Root: each matching type (single, universal, wildcard * ?, date/time ranges open and closed,
UID lists, ModalitiesInStudy), PN case-insensitivity and component groups, character sets
(ISO_IR 100 and ISO_IR 192 queries; answers in the stored set), return keys (every requested
key in every response, sequences empty, computed counts, QueryRetrieveLevel, RetrieveAETitle),
hierarchical refusals (A900), project scoping through a project AE title (a study outside the
project is invisible), refused calling / called AE titles (A-ASSOCIATE-RJ 1/1/3, 1/1/7), the
match cap (A700 after query.max_matches pending responses), C-CANCEL (a raw peer cancels before
reading: final FE00; findscu --cancel), and the mitral project CLI."""
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from ul_peer import (IMPLICIT_LE, Node, Peer, check, command_set, dcmtk, elem_us,  # noqa: E402
                     parse_command, pdata, release_rq, skip)

try:
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset
except ImportError:
    skip("pydicom not installed")

TESTDATA = os.path.join(ROOT, "..", "shared", "testdata")
STUDY_ROOT = "1.2.840.10008.5.1.4.1.2.2.1"
PATIENT_ROOT = "1.2.840.10008.5.1.4.1.2.1.1"
MR = "1.2.840.10008.5.1.4.1.1.4"
CAP = 40

work = tempfile.mkdtemp(prefix="mt_find_")
gen = os.path.join(work, "gen")
os.mkdir(gen)
n_files = 0


def make(pid, name, study, date, time, series, modality, series_no, sop, inst_no,
         charset=None, desc="CMR study"):
    global n_files
    ds = Dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    ds.SOPClassUID = MR
    ds.SOPInstanceUID = sop
    ds.PatientID = pid
    ds.PatientName = name
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "M"
    ds.StudyInstanceUID = study
    ds.StudyDate = date
    ds.StudyTime = time
    ds.StudyDescription = desc
    ds.AccessionNumber = "ACC" + study[-3:]
    ds.SeriesInstanceUID = series
    ds.Modality = modality
    ds.SeriesNumber = series_no
    ds.SeriesDescription = "cine sax" if modality == "MR" else modality
    ds.InstanceNumber = inst_no
    ds.Rows = 8
    ds.Columns = 8
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MR
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta = meta
    n_files += 1
    path = os.path.join(gen, "%04d.dcm" % n_files)
    if charset == "ISO_IR 100":
        ds.PatientName = name.encode("latin-1")
    try:
        ds.save_as(path, enforce_file_format=True)
    except TypeError:  # pydicom < 3
        ds.is_little_endian = True
        ds.is_implicit_VR = False
        ds.save_as(path, write_like_original=False)
    return path


B = "2.25.7000"
make("PA", "Smith^John", B + ".1", "20200315", "093000", B + ".1.1", "MR", 1, B + ".1.1.1", 1)
make("PA", "Smith^John", B + ".1", "20200315", "093000", B + ".1.1", "MR", 1, B + ".1.1.2", 2)
make("PA", "Smith^John", B + ".1", "20200315", "093000", B + ".1.2", "SR", 2, B + ".1.2.1", 1)
make("PA", "Smith^John", B + ".2", "20190101", "140000", B + ".2.1", "CT", 1, B + ".2.1.1", 1)
make("PB", "M\u00fcller^J\u00fcrgen", B + ".3", "20210610", "100030", B + ".3.1", "MR", 1,
     B + ".3.1.1", 1, charset="ISO_IR 100")
make("PC", "Yamada^Tarou=\u5c71\u7530^\u592a\u90ce", B + ".4", "20221231", "235959", B + ".4.1",
     "MR", 1, B + ".4.1.1", 1, charset="ISO_IR 192")
for i in range(CAP + 10):  # a big series for the cap and C-CANCEL
    make("PBIG", "Big^Series", B + ".5", "20230101", "080000", B + ".5.1", "MR", 1,
         B + ".5.1.%d" % (i + 1), i + 1)
N_BIG = CAP + 10

REAL = ["pydicom/charset_files/chrX1.dcm", "pydicom/charset_files/chrGerm.dcm",
        "pydicom/charset_files/chrFren.dcm", "pydicom/test_files/MR_small.dcm",
        "pydicom/test_files/CT_small.dcm"]
real = [os.path.join(TESTDATA, r) for r in REAL if os.path.exists(os.path.join(TESTDATA, r))]
if not real:
    print("# ../shared/testdata absent: real files skipped")

conf_extra = """query:
  max_matches: %d
projects:
  - name: cmr
    ae_title: CMR_QR
    description: test project
    allowed_calling_aes: [WS1, FINDSCU]
  - name: open
    ae_title: OPEN_QR
""" % CAP
node = Node(conf_extra=conf_extra)
conf_path = os.path.join(node.dir, "mitral.yaml")
data_dir = os.path.join(node.dir, "data")
xdir = os.path.join(work, "x")


def find(keys, model="-S", aec="MITRAL", aet="FINDSCU", extra=()):
    """findscu; returns (final status text, [datasets])."""
    shutil.rmtree(xdir, ignore_errors=True)
    os.mkdir(xdir)
    args = ["-v", model, "-X", "-od", xdir, "-aec", aec, "-aet", aet] + list(extra)
    for k in keys:
        args += ["-k", k]
    args += ["127.0.0.1", str(node.port)]
    rc, out = dcmtk("findscu", *args)
    final = None
    for line in out.splitlines():
        if "Final Find Response" in line:
            final = line.split("(", 1)[-1].rstrip(")")
    if final is None and "Association Rejected" in out:
        final = "rejected: " + " ".join(l for l in out.splitlines() if "Reason" in l)
    rs = [pydicom.dcmread(os.path.join(xdir, f), force=True) for f in sorted(os.listdir(xdir))]
    return final, rs, out


def values(rs, kw):
    return sorted(str(getattr(r, kw, None)) for r in rs)


try:
    files = sorted(os.path.join(gen, f) for f in os.listdir(gen)) + real
    rc, out = dcmtk("storescu", "-aec", "MITRAL", "127.0.0.1", str(node.port), *files)
    check(rc == 0, "stored %d generated + %d real files" % (n_files, len(real)))

    # ---- levels and models ----
    st, rs, _ = find(["QueryRetrieveLevel=PATIENT", "PatientID=PA", "PatientName",
                      "NumberOfPatientRelatedStudies", "NumberOfPatientRelatedSeries",
                      "NumberOfPatientRelatedInstances"], model="-P")
    check(st == "Success" and len(rs) == 1, "Patient Root PATIENT level: one patient")
    r = rs[0]
    check(str(r.PatientName) == "Smith^John" and r.NumberOfPatientRelatedStudies == 2 and
          r.NumberOfPatientRelatedSeries == 3 and r.NumberOfPatientRelatedInstances == 4,
          "patient counts 2/3/4")
    check(r.QueryRetrieveLevel == "PATIENT" and r.RetrieveAETitle == "MITRAL",
          "QueryRetrieveLevel and RetrieveAETitle set")

    st, rs, _ = find(["QueryRetrieveLevel=STUDY", "PatientID=PA", "StudyInstanceUID",
                      "StudyDate", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
                      "ModalitiesInStudy", "SOPClassesInStudy", "ProcedureCodeSequence",
                      "ReferringPhysicianName", "AccessionNumber"], model="-P")
    check(st == "Success" and len(rs) == 2, "Patient Root STUDY level: two studies")
    s1 = [r for r in rs if r.StudyInstanceUID == B + ".1"][0]
    check(s1.NumberOfStudyRelatedSeries == 2 and s1.NumberOfStudyRelatedInstances == 3,
          "study counts 2/3")
    check(sorted(s1.ModalitiesInStudy) == ["MR", "SR"], "ModalitiesInStudy MR\\SR")
    check(s1.SOPClassesInStudy == MR, "SOPClassesInStudy")
    check(all("ProcedureCodeSequence" in r and len(r.ProcedureCodeSequence) == 0 and
              "ReferringPhysicianName" in r and r.ReferringPhysicianName == "" for r in rs),
          "every requested key in every response (sequence empty, unknown zero length)")
    check(s1.AccessionNumber == "ACC0.1", "AccessionNumber returned")

    st, rs, _ = find(["QueryRetrieveLevel=STUDY", "PatientID=PA"], model="-P")
    check(st == "Success" and all("StudyInstanceUID" in r for r in rs),
          "the level's unique key is always returned")

    st, rs, _ = find(["QueryRetrieveLevel=SERIES", "StudyInstanceUID=" + B + ".1",
                      "SeriesInstanceUID", "Modality", "SeriesNumber",
                      "NumberOfSeriesRelatedInstances"])
    check(st == "Success" and values(rs, "Modality") == ["MR", "SR"],
          "Study Root SERIES level within a study")
    check(sorted(int(r.NumberOfSeriesRelatedInstances) for r in rs) == [1, 2],
          "NumberOfSeriesRelatedInstances")

    st, rs, _ = find(["QueryRetrieveLevel=IMAGE", "PatientID=PA", "StudyInstanceUID=" + B + ".1",
                      "SeriesInstanceUID=" + B + ".1.1", "SOPInstanceUID", "InstanceNumber",
                      "Rows", "SOPClassUID"], model="-P")
    check(st == "Success" and values(rs, "SOPInstanceUID") == [B + ".1.1.1", B + ".1.1.2"],
          "Patient Root IMAGE level")
    check(all(int(r.Rows) == 8 for r in rs), "US value (Rows) re-encoded")

    st, rs, _ = find(["QueryRetrieveLevel=IMAGE", "StudyInstanceUID=" + B + ".1",
                      "SeriesInstanceUID=" + B + ".1.1", "InstanceNumber=2", "SOPInstanceUID"])
    check(st == "Success" and values(rs, "SOPInstanceUID") == [B + ".1.1.2"],
          "Study Root IMAGE level, single value on an IS key")

    st, rs, _ = find(["QueryRetrieveLevel=PATIENT", "PatientID=PB", "PatientName"], model="-O")
    check(st == "Success" and len(rs) == 1 and rs[0].PatientName == "M\u00fcller^J\u00fcrgen",
          "Patient/Study Only PATIENT level")
    st, rs, _ = find(["QueryRetrieveLevel=STUDY", "PatientID=PA", "StudyInstanceUID"], model="-O")
    check(st == "Success" and len(rs) == 2, "Patient/Study Only STUDY level")
    st, rs, _ = find(["QueryRetrieveLevel=SERIES", "PatientID=PA", "StudyInstanceUID=" + B + ".1"],
                     model="-O")
    check(st and "DataSetDoesNotMatchSOPClass" in st, "Patient/Study Only: no SERIES level")
    for ts_flag, name in (("-xi", "implicit VR"), ("-xb", "explicit VR big endian")):
        st, rs, _ = find(["QueryRetrieveLevel=IMAGE", "StudyInstanceUID=" + B + ".1",
                          "SeriesInstanceUID=" + B + ".1.1", "SOPInstanceUID", "Rows",
                          "InstanceNumber"], extra=[ts_flag])
        check(st == "Success" and len(rs) == 2 and all(int(r.Rows) == 8 for r in rs),
              "responses encoded in the context's transfer syntax (%s)" % name)

    # a context accepting only Deflated Explicit VR Little Endian: identifier and responses
    # deflated (raw peer; findscu always proposes the uncompressed syntaxes too)
    import zlib
    DEFLATED = "1.2.840.10008.1.2.1.99"
    ident = Dataset()
    ident.QueryRetrieveLevel = "SERIES"
    ident.StudyInstanceUID = B + ".1"
    ident.SeriesInstanceUID = ""
    ident.Modality = ""
    raw = DicomBytesIO()
    raw.is_little_endian = True
    raw.is_implicit_VR = False
    write_dataset(raw, ident)
    co = zlib.compressobj(wbits=-15)
    body = co.compress(raw.getvalue()) + co.flush()
    if len(body) % 2:
        body += b"\0"
    peer = Peer(node.port)
    t, _ = peer.associate(contexts=((1, STUDY_ROOT, (DEFLATED,)),))
    check(t == 0x02, "raw peer associated with a deflated-only context")
    peer.send(pdata(1, True, True, command_set(0x0020, 1, STUDY_ROOT, has_data=True)) +
              pdata(1, False, True, body))
    got, cmd, data, final = [], b"", b"", None
    while final is None:
        t, pb = peer.recv_pdu()
        check(t == 0x04, "P-DATA from the node")
        pos = 0
        while pos < len(pb):
            n, pcid, mch = struct.unpack_from(">IBB", pb, pos)
            frag = pb[pos + 6:pos + 4 + n]
            pos += 4 + n
            if mch & 1:
                cmd += frag
                if mch & 2:
                    c = parse_command(cmd)
                    cmd = b""
                    if c.get(0x0900) not in (0xFF00, 0xFF01):
                        final = c
            else:
                data += frag
                if mch & 2:
                    plain = zlib.decompress(data, -15)
                    got.append(pydicom.dcmread(DicomBytesIO(plain), force=True))
                    data = b""
    peer.send(release_rq())
    peer.recv_pdu()
    peer.close()
    check(final.get(0x0900) == 0 and sorted(str(g.Modality) for g in got) == ["MR", "SR"],
          "deflated context: identifier inflated, responses deflated")

    # ---- refusals ----
    st, rs, _ = find(["QueryRetrieveLevel=SERIES"])
    check(st and "DataSetDoesNotMatchSOPClass" in st and not rs,
          "SERIES without StudyInstanceUID refused (A900)")
    st, rs, _ = find(["QueryRetrieveLevel=PATIENT"])
    check(st and "DataSetDoesNotMatchSOPClass" in st, "PATIENT level in Study Root refused")
    st, rs, _ = find(["QueryRetrieveLevel=STUDY"], model="-P")
    check(st and "DataSetDoesNotMatchSOPClass" in st,
          "Patient Root STUDY level without PatientID refused")

    # ---- matching ----
    def study_uids(*keys, **kw):
        st, rs, _ = find(["QueryRetrieveLevel=STUDY", "StudyInstanceUID"] + list(keys), **kw)
        check(st is not None and st.startswith("Success"), "query %s answered" % (keys,))
        return sorted(str(r.StudyInstanceUID) for r in rs if str(r.StudyInstanceUID).startswith(B))

    check(study_uids("PatientID=PB") == [B + ".3"], "single value")
    check(len(study_uids("PatientID=")) == 5, "universal (zero length)")
    check(study_uids("PatientName=smi*") == [B + ".1", B + ".2"], "wildcard *, case-insensitive PN")
    check(study_uids("PatientName=SM?TH^JOHN") == [B + ".1", B + ".2"], "wildcard ?")
    check(study_uids("PatientName=SMITH^JOHN") == [B + ".1", B + ".2"],
          "PN single value, case-insensitive")
    check(study_uids("PatientName=SMITH") == [], "PN single value is not a prefix match")
    check(study_uids("StudyDate=20200101-20211231") == [B + ".1", B + ".3"], "date range")
    check(study_uids("StudyDate=20220101-") == [B + ".4", B + ".5"], "open date range (from)")
    check(study_uids("StudyDate=-20191231") == [B + ".2"], "open date range (to)")
    check(study_uids("StudyTime=0900-1000") == [B + ".1", B + ".3"],
          "time range, upper bound as prefix")
    check(study_uids("StudyInstanceUID=%s.1\\%s.4\\9.9" % (B, B)) == [B + ".1", B + ".4"],
          "UID list")
    check(study_uids("ModalitiesInStudy=CT") == [B + ".2"], "ModalitiesInStudy single")
    check(study_uids("ModalitiesInStudy=SR\\CT") == [B + ".1", B + ".2"], "ModalitiesInStudy list")
    check(study_uids("PatientID=PA", "StudyDate=2020-", "ModalitiesInStudy=MR") == [B + ".1"],
          "combined keys")
    check(study_uids("StudyDescription=CMR*") == sorted(B + ".%d" % i for i in range(1, 6)),
          "wildcard on a LO key")

    # ---- character sets ----
    check(study_uids("SpecificCharacterSet=ISO_IR 192", "PatientName=m\u00fcller*") == [B + ".3"],
          "ISO_IR 192 query finds a Latin-1 stored name")
    st, rs, _ = find(["QueryRetrieveLevel=STUDY", "SpecificCharacterSet=ISO_IR 192",
                      "PatientName=M\u00fcller^J\u00fcrgen"])
    check(len(rs) == 1 and rs[0].SpecificCharacterSet == "ISO_IR 100" and
          rs[0].PatientName == "M\u00fcller^J\u00fcrgen",
          "answer in the stored character set (ISO_IR 100)")
    check(study_uids("SpecificCharacterSet=ISO_IR 192",
                     "PatientName=Yamada^Tarou") == [B + ".4"],
          "PN component groups: alphabetic group matched")
    check(study_uids("SpecificCharacterSet=ISO_IR 192",
                     "PatientName==\u5c71\u7530*") == [B + ".4"],
          "PN component groups: ideographic group matched")
    if any(p.endswith("chrX1.dcm") for p in real):
        ref = pydicom.dcmread(os.path.join(TESTDATA, "pydicom/charset_files/chrX1.dcm"))
        family = str(ref.PatientName).split("^")[0]
        st, rs, _ = find(["QueryRetrieveLevel=STUDY", "SpecificCharacterSet=ISO_IR 192",
                          "PatientName=%s*" % family])
        check(len(rs) >= 1 and rs[0].SpecificCharacterSet == "ISO_IR 192" and
              str(rs[0].PatientName) == str(ref.PatientName),
              "testdata chrX1 (ISO_IR 192) found by name, answered in UTF-8")
    if any(p.endswith("chrGerm.dcm") for p in real):
        ref = pydicom.dcmread(os.path.join(TESTDATA, "pydicom/charset_files/chrGerm.dcm"))
        family = str(ref.PatientName).split("^")[0]
        # the query in ISO_IR 100: findscu sends the bytes of the argument as they are
        st, rs, out = find(["QueryRetrieveLevel=STUDY", "SpecificCharacterSet=ISO_IR 100",
                            ("PatientName=" + family + "*").encode("latin-1")])
        check(len(rs) >= 1 and rs[0].SpecificCharacterSet == "ISO_IR 100" and
              str(rs[0].PatientName) == str(ref.PatientName),
              "testdata chrGerm (ISO_IR 100) found by name")
    if any(p.endswith("MR_small.dcm") for p in real):
        ref = pydicom.dcmread(os.path.join(TESTDATA, "pydicom/test_files/MR_small.dcm"))
        st, rs, _ = find(["QueryRetrieveLevel=SERIES", "StudyInstanceUID=" + ref.StudyInstanceUID,
                          "SeriesInstanceUID", "Modality"])
        check(st == "Success" and len(rs) == 1 and rs[0].SeriesInstanceUID ==
              ref.SeriesInstanceUID, "testdata MR_small: its series found")

    # ---- the match cap ----
    st, rs, _ = find(["QueryRetrieveLevel=IMAGE", "StudyInstanceUID=" + B + ".5",
                      "SeriesInstanceUID=" + B + ".5.1", "SOPInstanceUID"])
    check(len(rs) == CAP and st is not None and "OutOfResources" in st,
          "more than query.max_matches: %d pending then A700 (%s)" % (CAP, st))

    # ---- projects: CLI, scoping, refused AE titles ----
    mitral = os.environ["MITRAL"]

    def cli(*args):
        p = subprocess.run([mitral, "project"] + list(args) + ["-c", conf_path], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        return p.returncode, p.stdout.decode(errors="replace")

    rc, out = cli("add", "cmr", "--study", B + ".1")
    check(rc == 0 and "added 1 study" in out, "project add --study")
    rc, out = cli("add", "cmr", "--query", "StudyDate>=20210101 Modality=MR PatientID=P*")
    check(rc == 0 and "added 3 studies" in out, "project add --query (3 studies): " + out.strip())
    rc, out = cli("remove", "cmr", "--query", "PatientID=PBIG")
    check(rc == 0 and "removed 1 study" in out, "project remove --query")
    rc, out = cli("add", "cmr", "--study", "9.9.9")
    check(rc != 0 and "not in the index" in out, "project add of an unknown study fails")
    rc, out = cli("show", "cmr")
    check(rc == 0 and "studies 3" in out and "series 4" in out and "instances 5" in out,
          "project show counts: " + " ".join(out.split()))
    rc, out = cli("list")
    check(rc == 0 and "cmr" in out and "CMR_QR" in out and "open" in out, "project list")
    rc, out = cli("show", "nope")
    check(rc != 0, "project show of an unknown project fails")

    st, rs, _ = find(["QueryRetrieveLevel=STUDY", "StudyInstanceUID"], aec="CMR_QR", aet="WS1")
    check(st == "Success" and sorted(r.StudyInstanceUID for r in rs) ==
          [B + ".1", B + ".3", B + ".4"], "project AE title sees only its studies")
    check(all(r.RetrieveAETitle == "CMR_QR" for r in rs), "RetrieveAETitle is the project's")
    st, rs, _ = find(["QueryRetrieveLevel=STUDY", "StudyInstanceUID=" + B + ".2"],
                     aec="CMR_QR", aet="WS1")
    check(st == "Success" and not rs, "a study outside the project is invisible (by UID)")
    st, rs, _ = find(["QueryRetrieveLevel=SERIES", "StudyInstanceUID=" + B + ".2"],
                     aec="CMR_QR", aet="WS1")
    check(st == "Success" and not rs, "... and so are its series")
    st, rs, _ = find(["QueryRetrieveLevel=PATIENT", "PatientID", "NumberOfPatientRelatedStudies"],
                     model="-P", aec="CMR_QR", aet="WS1")
    pa = [r for r in rs if r.PatientID == "PA"]
    check(len(pa) == 1 and pa[0].NumberOfPatientRelatedStudies == 1 and
          not any(r.PatientID == "PBIG" for r in rs),
          "patient level through a project: its patients, project-scoped counts")
    st, rs, _ = find(["QueryRetrieveLevel=STUDY"], aec="OPEN_QR", aet="ANYONE")
    check(st == "Success" and not rs, "an empty project: nothing visible (any calling AE)")
    st, rs, _ = find(["QueryRetrieveLevel=STUDY"], aec="CMR_QR", aet="INTRUDER")
    check(st and "rejected" in st and "Calling AE Title Not Recognized" in st,
          "calling AE not allowed for the project: A-ASSOCIATE-RJ 1/1/3")
    st, rs, _ = find(["QueryRetrieveLevel=STUDY"], aec="NO_SUCH_AE")
    check(st and "rejected" in st and "Called AE Title Not Recognized" in st,
          "unknown called AE: A-ASSOCIATE-RJ 1/1/7")

    # ---- C-CANCEL ----
    def encode_identifier(ds):
        b = DicomBytesIO()
        b.is_little_endian = True
        b.is_implicit_VR = True
        write_dataset(b, ds)
        return b.getvalue()

    ident = Dataset()
    ident.QueryRetrieveLevel = "IMAGE"
    ident.StudyInstanceUID = B + ".5"
    ident.SeriesInstanceUID = B + ".5.1"
    ident.SOPInstanceUID = ""
    peer = Peer(node.port)
    t, body = peer.associate(contexts=((1, STUDY_ROOT, (IMPLICIT_LE,)),))
    check(t == 0x02, "raw peer associated (Study Root FIND)")
    # C-FIND then at once C-CANCEL, before reading anything: the node reads the cancel before
    # it sends the first response (the query runs off the loop), so the final status is FE00
    find_rq = command_set(0x0020, 7, STUDY_ROOT, has_data=True)
    body = elem_us(0x0100, 0x0FFF) + elem_us(0x0120, 7) + elem_us(0x0800, 0x0101)
    cancel_rq = struct.pack("<HHII", 0, 0, 4, len(body)) + body
    peer.send(pdata(1, True, True, find_rq) + pdata(1, False, True, encode_identifier(ident)) +
              pdata(1, True, True, cancel_rq))
    n_pending, final = 0, None
    cmd = b""
    while final is None:
        t, body = peer.recv_pdu()
        if t != 0x04:
            print(node.read_log()[-3000:])
            check(False, "P-DATA from the node (got PDU type %r)" % (t,))
        pos = 0
        while pos < len(body):
            n, pcid, mch = struct.unpack_from(">IBB", body, pos)
            frag = body[pos + 6:pos + 4 + n]
            pos += 4 + n
            if mch & 1:
                cmd += frag
                if mch & 2:
                    c = parse_command(cmd)
                    cmd = b""
                    if c.get(0x0900) in (0xFF00, 0xFF01):
                        n_pending += 1
                    else:
                        final = c
    check(final.get(0x0900) == 0xFE00 and final.get(0x0120) == 7 and n_pending < N_BIG,
          "C-CANCEL-RQ: final status FE00 after %d of %d matches" % (n_pending, N_BIG))
    peer.send(release_rq())
    t, _ = peer.recv_pdu()
    check(t == 0x06, "released after the cancel")
    peer.close()
    # findscu --cancel: the node stays consistent whatever the race (Cancel or complete)
    st, rs, out = find(["QueryRetrieveLevel=IMAGE", "StudyInstanceUID=" + B + ".5",
                        "SeriesInstanceUID=" + B + ".5.1", "SOPInstanceUID"],
                       extra=["--cancel", "1"])
    check(st is not None, "findscu --cancel 1: final response received (%s, %d pending)"
          % (st, len(rs)))
    check("Releasing Association" in out or "Release" in out, "findscu released")
    rc, out = dcmtk("echoscu", "-aec", "MITRAL", "127.0.0.1", str(node.port))
    check(rc == 0 and node.alive(), "node healthy after the cancels")
finally:
    code = node.stop()
    log = node.read_log()
    node.cleanup()
    shutil.rmtree(work, ignore_errors=True)
check(code == 0, "node stopped cleanly")
print("t_find: all passed")
