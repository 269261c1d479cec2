#!/usr/bin/python3
"""t_web_seq.py - sequence keys (issue 3) through DICOMweb: an instance with
ProcedureCodeSequence and OtherPatientIDsSequence stored with STOW-RS, then QIDO-RS with
includefield of those keys returns their stored items (the STOW path fills the index blob)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
import web  # noqa: E402


def make(path):
    try:
        import pydicom
        from pydicom.dataset import Dataset, FileMetaDataset
        from pydicom.sequence import Sequence
    except ImportError:
        lib.skip("pydicom not installed")
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ds.SOPInstanceUID = "2.25.7302.1.1.1"
    ds.PatientID = "W1"
    ds.PatientName = "Web^Seq"
    ds.StudyInstanceUID = "2.25.7302.1"
    ds.SeriesInstanceUID = "2.25.7302.1.1"
    ds.Modality = "MR"
    c = Dataset()
    c.CodeValue = "CMR1"
    c.CodingSchemeDesignator = "L"
    c.CodeMeaning = "Cardiac MR"
    ds.ProcedureCodeSequence = Sequence([c])
    o = Dataset()
    o.PatientID = "ALT-W1"
    ds.OtherPatientIDsSequence = Sequence([o])
    m = FileMetaDataset()
    m.MediaStorageSOPClassUID = ds.SOPClassUID
    m.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    m.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta = m
    try:
        ds.save_as(path, enforce_file_format=True)
    except TypeError:  # pydicom < 3
        ds.is_little_endian = True
        ds.is_implicit_VR = False
        ds.save_as(path, write_like_original=False)


def main():
    path = os.path.join(lib.tmpdir("mt-web-seq-"), "seq.dcm")
    make(path)
    node = web.WebNode(name="webseq")
    node.start()
    try:
        st, _ = web.stow(node, "/dicomweb/studies", [path], web.ADMIN)
        lib.check(st == 200, "STOW-RS stored (%s)" % st)
        st, j = web.get_json(node, "/dicomweb/studies?StudyInstanceUID=2.25.7302.1"
                             "&includefield=00081032&includefield=00101002", web.ADMIN)
        lib.check(st == 200 and len(j) == 1, "QIDO-RS one study")
        pc = j[0].get("00081032", {})
        lib.check(pc.get("vr") == "SQ" and pc["Value"][0]["00080100"]["Value"] == ["CMR1"],
                  "ProcedureCodeSequence returned with its item: %r" % pc)
        op = j[0].get("00101002", {})
        lib.check(op.get("vr") == "SQ" and op["Value"][0]["00100020"]["Value"] == ["ALT-W1"],
                  "OtherPatientIDsSequence returned with its item: %r" % op)
    finally:
        rc = node.stop()
    lib.check(rc == 0, "clean stop (rc %s)" % rc)


lib.run_guarded(main)
