#!/usr/bin/python3
"""t_find_seq.py - C-FIND sequence keys (issue 3): the PS3.4 Annex C sequence keys are returned
with their stored items, and sequence matching (one item with values) selects the entities with
a matching item.

Generated instances (pydicom) carry ProcedureCodeSequence, ReferencedStudySequence,
OtherPatientIDsSequence (study/patient), RequestAttributesSequence with a nested
ScheduledProtocolCodeSequence, PerformedProtocolCodeSequence (series) and
ConceptNameCodeSequence (image); one is sent in Implicit VR Little Endian (re-encoded in the
index). findscu queries in explicit and implicit VR contexts; then the node is stopped,
`mitral index rebuild` re-creates the index from the files, and the same answers come back.
Finally a node with deid.profile cmr-registry: no identifying sequence content is answered."""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from ul_peer import Node, check, dcmtk, skip  # noqa: E402

try:
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
except ImportError:
    skip("pydicom not installed")

MR = "1.2.840.10008.5.1.4.1.1.4"
B = "2.25.7301"
work = tempfile.mkdtemp(prefix="mt_findseq_")
gen = os.path.join(work, "gen")
os.mkdir(gen)


def code(value, scheme, meaning):
    c = Dataset()
    c.CodeValue = value
    c.CodingSchemeDesignator = scheme
    c.CodeMeaning = meaning
    return c


def make(name, pid, study, series, sop, codes, implicit=False):
    ds = Dataset()
    ds.SOPClassUID = MR
    ds.SOPInstanceUID = sop
    ds.PatientID = pid
    ds.PatientName = "Seq^" + pid
    ds.StudyInstanceUID = study
    ds.StudyDate = "20240101"
    ds.SeriesInstanceUID = series
    ds.Modality = "MR"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    if codes:
        ds.ProcedureCodeSequence = Sequence([code(v, "L", m) for v, m in codes])
        ref = Dataset()
        ref.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
        ref.ReferencedSOPInstanceUID = study + ".99"
        ds.ReferencedStudySequence = Sequence([ref])
        other = Dataset()
        other.PatientID = "ALT-" + pid
        other.TypeOfPatientID = "TEXT"
        ds.OtherPatientIDsSequence = Sequence([other])
        req = Dataset()
        req.RequestedProcedureID = "RP-" + pid
        req.ScheduledProtocolCodeSequence = Sequence([code("P9", "99X", "Protocol nine")])
        ds.RequestAttributesSequence = Sequence([req])
        ds.PerformedProtocolCodeSequence = Sequence([code("PP1", "99X", "Performed one")])
        ds.ConceptNameCodeSequence = Sequence([code("121070", "DCM", "Findings")])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MR
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = (pydicom.uid.ImplicitVRLittleEndian if implicit
                              else pydicom.uid.ExplicitVRLittleEndian)
    ds.file_meta = meta
    path = os.path.join(gen, name)
    try:
        ds.save_as(path, enforce_file_format=True)
    except TypeError:  # pydicom < 3
        ds.is_little_endian = True
        ds.is_implicit_VR = implicit
        ds.save_as(path, write_like_original=False)
    return path


fa = make("a.dcm", "SA", B + ".1", B + ".1.1", B + ".1.1.1",
          [("CMR1", "Cardiac MR"), ("CMR2", "Stress perfusion")])
fb = make("b.dcm", "SB", B + ".2", B + ".2.1", B + ".2.1.1", [("CMR3", "Flow")], implicit=True)
fc = make("c.dcm", "SC", B + ".3", B + ".3.1", B + ".3.1.1", None)

node = Node()
xdir = os.path.join(work, "x")


def find(keys, model="-S", extra=()):
    shutil.rmtree(xdir, ignore_errors=True)
    os.mkdir(xdir)
    args = ["-v", model, "-X", "-od", xdir, "-aec", "MITRAL", "-aet", "FINDSCU"] + list(extra)
    for k in keys:
        args += ["-k", k]
    args += ["127.0.0.1", str(node.port)]
    rc, out = dcmtk("findscu", *args)
    final = None
    for line in out.splitlines():
        if "Final Find Response" in line:
            final = line.split("(", 1)[-1].rstrip(")")
    rs = [pydicom.dcmread(os.path.join(xdir, f), force=True) for f in sorted(os.listdir(xdir))]
    return final, rs, out


def by_study(rs):
    return {str(r.StudyInstanceUID): r for r in rs}


def codes_of(r, kw="ProcedureCodeSequence"):
    return [str(i.CodeValue) for i in getattr(r, kw, [])]


def checks(label, extra=()):
    st, rs, _ = find(["QueryRetrieveLevel=STUDY", "StudyInstanceUID", "(0008,1032)",
                      "(0008,1110)", "(0010,1002)"], extra=extra)
    s = by_study(rs)
    check(st == "Success" and len(rs) == 3, "%s: STUDY level, three studies" % label)
    check(codes_of(s[B + ".1"]) == ["CMR1", "CMR2"] and codes_of(s[B + ".2"]) == ["CMR3"] and
          "ProcedureCodeSequence" in s[B + ".3"] and codes_of(s[B + ".3"]) == [],
          "%s: ProcedureCodeSequence returned with the stored items (empty when none)" % label)
    a = s[B + ".1"]
    check(len(a.ReferencedStudySequence) == 1 and
          a.ReferencedStudySequence[0].ReferencedSOPInstanceUID == B + ".1.99",
          "%s: ReferencedStudySequence item" % label)
    check(a.OtherPatientIDsSequence[0].PatientID == "ALT-SA" and
          s[B + ".2"].OtherPatientIDsSequence[0].PatientID == "ALT-SB",
          "%s: OtherPatientIDsSequence (patient key at STUDY level, study root)" % label)

    st, rs, _ = find(["QueryRetrieveLevel=PATIENT", "PatientID=SA", "OtherPatientIDsSequence"],
                     model="-P", extra=extra)
    check(st == "Success" and len(rs) == 1 and
          rs[0].OtherPatientIDsSequence[0].TypeOfPatientID == "TEXT",
          "%s: PATIENT level OtherPatientIDsSequence" % label)

    st, rs, _ = find(["QueryRetrieveLevel=SERIES", "StudyInstanceUID=" + B + ".1",
                      "SeriesInstanceUID", "RequestAttributesSequence",
                      "PerformedProtocolCodeSequence"], extra=extra)
    check(st == "Success" and len(rs) == 1, "%s: SERIES level" % label)
    r = rs[0]
    req = r.RequestAttributesSequence[0]
    check(req.RequestedProcedureID == "RP-SA" and
          req.ScheduledProtocolCodeSequence[0].CodeValue == "P9",
          "%s: RequestAttributesSequence with its nested sequence" % label)
    check(codes_of(r, "PerformedProtocolCodeSequence") == ["PP1"],
          "%s: PerformedProtocolCodeSequence" % label)

    st, rs, _ = find(["QueryRetrieveLevel=IMAGE", "StudyInstanceUID=" + B + ".2",
                      "SeriesInstanceUID=" + B + ".2.1", "SOPInstanceUID",
                      "ConceptNameCodeSequence"], extra=extra)
    check(st == "Success" and len(rs) == 1 and
          codes_of(rs[0], "ConceptNameCodeSequence") == ["121070"],
          "%s: IMAGE level ConceptNameCodeSequence (stored from implicit VR)" % label)

    # sequence matching: one item with a value
    st, rs, out = find(["QueryRetrieveLevel=STUDY", "StudyInstanceUID",
                        "ProcedureCodeSequence[0].CodeValue=CMR2",
                        "ProcedureCodeSequence[0].CodeMeaning"], extra=extra)
    check(st == "Success" and len(rs) == 1 and str(rs[0].StudyInstanceUID) == B + ".1" and
          codes_of(rs[0]) == ["CMR2"], "%s: sequence matching, single value: the matching "
          "study, only the matching item" % label)
    check("Pending Warning" not in out and "0xff01" not in out.lower(),
          "%s: sequence matching is not a warning" % label)
    st, rs, _ = find(["QueryRetrieveLevel=STUDY", "StudyInstanceUID",
                      "ProcedureCodeSequence[0].CodeValue=CMR*"], extra=extra)
    check(st == "Success" and sorted(str(r.StudyInstanceUID) for r in rs) ==
          [B + ".1", B + ".2"], "%s: sequence matching, wildcard" % label)
    st, rs, _ = find(["QueryRetrieveLevel=STUDY", "StudyInstanceUID",
                      "ProcedureCodeSequence[0].CodeValue=NONE"], extra=extra)
    check(st == "Success" and len(rs) == 0, "%s: sequence matching, no match" % label)


try:
    rc, out = dcmtk("storescu", "-aec", "MITRAL", "127.0.0.1", str(node.port), fa, fc)
    check(rc == 0, "stored two explicit VR files")
    rc, out = dcmtk("storescu", "-xi", "-aec", "MITRAL", "127.0.0.1", str(node.port), fb)
    check(rc == 0, "stored one file in implicit VR")
    checks("explicit VR")
    checks("implicit VR context", extra=("-xi",))

    check(node.stop() == 0, "node stopped")
    data = os.path.join(node.dir, "data")
    r = subprocess.run([node.binary, "index", "rebuild", "--data", data],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(r.returncode == 0, "index rebuild: %s" % r.stdout[-300:])
    old = node
    node = Node()  # a fresh node on the rebuilt data directory
    node.stop()
    shutil.rmtree(os.path.join(node.dir, "data"), ignore_errors=True)
    shutil.move(data, os.path.join(node.dir, "data"))
    node.log = open(node.log_path, "a")
    conf = os.path.join(node.dir, "mitral.yaml")
    node.proc = subprocess.Popen([node.binary, "serve", "-c", conf], stdout=node.log,
                                 stderr=subprocess.STDOUT)
    import socket
    import time
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", node.port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    checks("after index rebuild")
    old.cleanup()
    node.stop()
    node.cleanup()

    # de-identification: what the index keeps is the de-identified header's sequences
    key = os.path.join(work, "key")
    with open(key, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(key, 0o600)
    node = Node(conf_extra="deid:\n  profile: cmr-registry\n  key_file: %s\n" % key)
    rc, out = dcmtk("storescu", "-aec", "MITRAL", "127.0.0.1", str(node.port), fa)
    check(rc == 0, "deid: stored")
    st, rs, _ = find(["QueryRetrieveLevel=STUDY", "StudyInstanceUID", "OtherPatientIDsSequence",
                      "RequestAttributesSequence", "ProcedureCodeSequence"])
    check(st == "Success" and len(rs) == 1, "deid: one study")
    text = str(rs[0])
    check("ALT-SA" not in text and "RP-SA" not in text,
          "deid: no identifying sequence content in the response")
    study = str(rs[0].StudyInstanceUID)
    st, rs, _ = find(["QueryRetrieveLevel=SERIES", "StudyInstanceUID=" + study,
                      "RequestAttributesSequence"])
    check(st == "Success" and all("RP-SA" not in str(r) for r in rs),
          "deid: series level sequence content de-identified")
finally:
    node.stop()
    node.cleanup()
    shutil.rmtree(work, ignore_errors=True)
