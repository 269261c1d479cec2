#!/usr/bin/python3
"""t_route_reload.py - routing rules on the store path, swapped on SIGHUP (issue 6).

- A rule rejects MR: storescu gets 0124 (Refused: Not Authorized), the rule's reason is the
  ErrorComment (raw peer reads it), nothing is stored.
- SIGHUP with a broken rules file: refused ("file:line" in the log), the old rules stay.
- An association opened before a SIGHUP that installs new rules keeps the rules it started
  with; a new association gets the new ones (MR stored, its study joins project p1).
- A node does not start with a rules file naming an unknown project (file:line).
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from ul_peer import (EXPLICIT_LE, Node, Peer, check, command_set, dcmtk, pdata,  # noqa: E402
                     release_rq, skip)

try:
    import pydicom  # noqa: E402
except ImportError:
    skip("pydicom not installed")
import sqlite3  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
work = tempfile.mkdtemp(prefix="mt_route_reload_")
mr = os.path.join(work, "mr.dcm")
d = pydicom.Dataset()
meta = pydicom.dataset.FileMetaDataset()
meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
ds = pydicom.dataset.FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
ds.SOPClassUID = meta.MediaStorageSOPClassUID
ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
ds.StudyInstanceUID = pydicom.uid.generate_uid()
ds.SeriesInstanceUID = pydicom.uid.generate_uid()
ds.Modality = "MR"
ds.PatientID = "RELOAD1"
ds.PatientName = "Reload^Test"
ds.Rows = ds.Columns = 2
ds.BitsAllocated = ds.BitsStored = 16
ds.HighBit = 15
ds.PixelRepresentation = 0
ds.SamplesPerPixel = 1
ds.PhotometricInterpretation = "MONOCHROME2"
ds.PixelData = b"\0" * 8
ds.is_little_endian = True
ds.is_implicit_VR = False
ds.save_as(mr, write_like_original=False)

rules = os.path.join(work, "rules.yaml")
REJECT = "rules:\n  - name: no-mr\n    match: {Modality: MR}\n    reject: no MR today\n"
ACCEPT = "rules:\n  - name: mr\n    match: {Modality: MR}\n    projects: [p1]\n"
with open(rules, "w") as f:
    f.write(REJECT)
extra = ("routing:\n  rules: %s\nprojects:\n  - name: p1\n    ae_title: P1\n" % rules)


def raw_open(node):
    p = Peer(node.port)
    t, _ = p.associate(contexts=((1, str(ds.SOPClassUID), (EXPLICIT_LE,)),))
    check(t == 0x02, "raw peer: associated")
    return p


def raw_send(p, path, msg_id):
    src = pydicom.dcmread(path, stop_before_pixels=True)
    b = open(path, "rb").read()
    data = b[132 + 12 + src.file_meta.FileMetaInformationGroupLength:]
    p.send(pdata(1, True, True, command_set(0x0001, msg_id, str(src.SOPClassUID),
                                            str(src.SOPInstanceUID), has_data=True)))
    p.send(pdata(1, False, True, data))
    _, rsp = p.recv_command()
    return rsp


def raw_close(p):
    p.send(release_rq())
    p.recv_pdu()
    p.close()


def n_instances(node):
    con = sqlite3.connect(os.path.join(node.dir, "data", "index.sqlite"))
    try:
        return con.execute("SELECT count(*) FROM instances").fetchone()[0]
    finally:
        con.close()


def wait_log(node, needle, n=1):
    for _ in range(600):  # bounded wait for the signal to be handled, not a timed assertion
        if node.read_log().count(needle) >= n:
            return True
        time.sleep(0.05)
    return False


node = Node(conf_extra=extra)
try:
    rc, out = dcmtk("storescu", "-v", "-aec", "MITRAL", "127.0.0.1", str(node.port), mr)
    check("0x124" in out.lower(), "MR refused with 0124 by the rule")
    p = raw_open(node)
    rsp = raw_send(p, mr, 1)
    raw_close(p)
    check(rsp.get(0x0900) == 0x0124, "raw peer: status 0124 (%r)" % (rsp,))
    comment = rsp.get(0x0902)
    if isinstance(comment, bytes):
        comment = comment.decode("ascii", "replace")
    check(comment is not None and "no MR today" in str(comment),
          "ErrorComment is the rule's reason (%r)" % (comment,))
    check(n_instances(node) == 0, "nothing stored")

    with open(rules, "w") as f:
        f.write("rules:\n  - match: {Modalty: MR}\n")
    node.proc.send_signal(signal.SIGHUP)
    check(wait_log(node, "config not reloaded"), "SIGHUP with a bad rules file is refused")
    check("rules.yaml:2:" in node.read_log() and "Modalty" in node.read_log(),
          "the refusal names file:line and the keyword")
    rc, out = dcmtk("storescu", "-v", "-aec", "MITRAL", "127.0.0.1", str(node.port), mr)
    check("0x124" in out.lower(), "the old rules are still in force")

    held = raw_open(node)  # before the swap: keeps the rejecting rules
    with open(rules, "w") as f:
        f.write(ACCEPT)
    node.proc.send_signal(signal.SIGHUP)
    check(wait_log(node, "SIGHUP: config reloaded"), "SIGHUP with good rules reloads")
    rsp = raw_send(held, mr, 2)
    check(rsp.get(0x0900) == 0x0124, "an association in flight keeps the rules it started with")
    raw_close(held)
    rc, out = dcmtk("storescu", "-v", "-aec", "MITRAL", "127.0.0.1", str(node.port), mr)
    check("(Success)" in out, "a new association gets the new rules: stored")
    con = sqlite3.connect(os.path.join(node.dir, "data", "index.sqlite"))
    rows = con.execute("SELECT project, study_uid FROM project_studies").fetchall()
    con.close()
    check(rows == [("p1", str(ds.StudyInstanceUID))], "the study joined p1 with the instance")
finally:
    node.stop()
node.cleanup()

# a rules file naming an unknown project: the node refuses to start
with open(rules, "w") as f:
    f.write("rules:\n  - match: {Modality: MR}\n    projects: [nope]\n")
conf = os.path.join(work, "c.yaml")
with open(conf, "w") as f:
    f.write("node:\n  bind: 127.0.0.1\n  port: 1\n  data_dir: %s\n" % os.path.join(work, "d") +
            extra)
r = subprocess.run([os.environ["MITRAL"], "serve", "-c", conf], capture_output=True, text=True,
                   timeout=60)
check(r.returncode != 0 and "rules.yaml:3:" in (r.stdout + r.stderr) and
      "nope" in (r.stdout + r.stderr), "start-up refused: unknown project named with file:line")
print("all ok")
