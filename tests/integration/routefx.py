"""
routefx.py - fixtures shared by the forwarding tests (t_route_keepalive, t_route_window,
t_route_lost): a site node whose one rule forwards everything to a DICOM destination CENTRAL,
the length of its outbound queue, and small single-frame MR files written with pydicom.

  a = routefx.site(port, conf, assoc)     # started; conf: the test's forward.* settings
  routefx.queue_len(a)                    # rows in A's forward_queue
  routefx.mr_file(path, i, study, series, patient_id, patient_name, size)   # -> SOP Instance UID
  routefx.data_set(path)                  # a stored file's bytes after its File Meta
  routefx.kernel_has_cachestat()          # whether A can send from the page cache at all
  routefx.relay_byte_for_byte(a, scp, files)   # storescu -> A -> the dul_scp SCP, checked
"""
import ctypes
import errno
import os
import struct

import lib

MR = "1.2.840.10008.5.1.4.1.1.4"


def site(port, conf, assoc=1):
    a = lib.Node("site", aet="SITE", conf=conf,
                 yaml_extra="destinations:\n  - name: central\n    ae_title: CENTRAL\n"
                            "    host: 127.0.0.1\n    port: %d\n    associations: %d\n"
                            % (port, assoc))
    rules = os.path.join(a.dir, "rules.yaml")
    with open(rules, "w") as f:
        f.write("rules:\n  - name: all\n    forward: [central]\n")
    a.conf["routing.rules"] = rules
    return a.start()


def queue_len(node):
    return node.query("SELECT count(*) AS n FROM forward_queue")[0]["n"]


def mr_file(path, i, study, series, patient_id, patient_name, size, sop_class=MR):
    """Instance number i + 1 of a size x size 16-bit image (every byte i % 256), Explicit VR
    Little Endian; Modality MR for the MR class, OT otherwise."""
    import pydicom
    from pydicom.uid import generate_uid
    meta = pydicom.dataset.FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds = pydicom.dataset.FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.Modality = "MR" if sop_class == MR else "OT"
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.InstanceNumber = i + 1
    ds.Rows = ds.Columns = size
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes([i % 256]) * (size * size * 2)
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(path, write_like_original=False)
    return str(ds.SOPInstanceUID)


def kernel_has_cachestat():
    """cachestat(2) (syscall 451 on every architecture): without it A never sends from the
    page cache (node/util/cachestat.c)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    if libc.syscall(ctypes.c_long(451), -1, None, None, 0) == 0:
        return True
    return ctypes.get_errno() != errno.ENOSYS


def data_set(path):
    """The bytes after the File Meta: what a C-STORE carries."""
    with open(path, "rb") as f:
        b = f.read()
    lib.check(b[128:132] == b"DICM" and b[132:136] == b"\x02\x00\x00\x00",
              "%s starts with its File Meta group length" % path)
    return b[132 + 12 + struct.unpack("<I", b[140:144])[0]:]


def relay_byte_for_byte(a, scp, files):
    """storescu sends files to A; once A's queue has drained into scp (dul_scp.Scp), every
    stored instance must have been acknowledged once and have arrived as A stored it."""
    r = lib.storescu(a, files, aet="PACS")
    ok = sum(1 for _, s in lib.store_results(r.stdout) if s == "Success")
    lib.check(ok == len(files), "%d instances stored at A (%d)" % (len(files), ok))
    lib.wait_for(lambda: queue_len(a) == 0, "A's queue drains into the SCP", 120)
    stored = a.stored_by_sop()
    lib.check(sorted(scp.acked) == sorted(stored),
              "every instance acknowledged once (%d acks, %d stored)"
              % (len(scp.acked), len(stored)))
    for sop, path in stored.items():
        lib.check(scp.datasets.get(sop) == data_set(path),
                  "%s arrived byte for byte as stored" % sop)
