#!/usr/bin/python3
"""t_cli_dump_big: `mitral dump` of a 2 GiB multi-frame instance (16384 frames of 256x256x16,
native Pixel Data of defined length; the file is sparse, so it costs no disk) prints the header
and the Pixel Data line without holding the file in memory: the process's peak RSS stays far
below the file's size (it was over twice the size when the whole file was read into a buffer
and every value copied into the tree)."""
import os
import resource
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import check  # noqa: E402

FRAMES = 16384
PIXEL_BYTES = FRAMES * 256 * 256 * 2  # 2 GiB
MAX_RSS_MB = 400  # generous for an ASan build; the file is 2048 MB


def write_big(path):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian
    ds = Dataset()
    fm = FileMetaDataset()
    fm.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"  # Enhanced MR Image Storage
    fm.MediaStorageSOPInstanceUID = "2.25.4242424242"
    fm.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = fm
    ds.SOPClassUID = fm.MediaStorageSOPClassUID
    ds.SOPInstanceUID = fm.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "2.25.4242424243", "2.25.4242424244"
    ds.PatientName, ds.PatientID, ds.Modality = "BIG^DUMP", "BIG1", "MR"
    ds.Rows = ds.Columns = 256
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.NumberOfFrames = FRAMES
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(path, write_like_original=False)
    with open(path, "ab") as f:
        f.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, PIXEL_BYTES))
        f.truncate(f.tell() + PIXEL_BYTES)  # sparse: zeros that take no disk


def body():
    if not lib.IS_MITRAL:
        lib.skip("mitral's CLI")
    path = os.path.join(lib.tmpdir("mt-dump-big-"), "big.dcm")
    write_big(path)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    r = subprocess.run([lib.MITRAL, "dump", path], capture_output=True, text=True,
                       errors="replace", timeout=240, env=lib.PEER_ENV)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    check(r.returncode == 0, "dump exits 0: rc=%s %s" % (r.returncode, r.stderr[-300:]))
    check("BIG^DUMP" in r.stdout and "NumberOfFrames" in r.stdout,
          "dump prints the header: " + r.stdout[:300])
    check("# %d, 1 PixelData" % PIXEL_BYTES in r.stdout, "dump prints the Pixel Data line")
    check(before / 1024.0 < MAX_RSS_MB, "no earlier child used much memory")
    check(peak_mb < MAX_RSS_MB, "dump's peak RSS %.0f MB < %d MB for a %d MB file"
          % (peak_mb, MAX_RSS_MB, PIXEL_BYTES >> 20))


lib.run_guarded(body)
