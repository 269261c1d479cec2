#!/usr/bin/python3
"""
gen_mr.py - writes realistic cardiac MR instances (MR Image Storage, 256x256, 16 bits
allocated / 12 stored, ~130 KB each): one patient, one study, N series of short-axis cine
stacks (slices x cardiac phases), with the attributes a 1.5 T scanner puts in a cine SSFP
image (trigger time, cardiac number of images, TR/TE/flip, position/orientation, spacing ...).

Used by the integration tests (no external data needed) and by bench/ingest.

  gen_mr.py OUT_DIR [--count N] [--series S] [--phases P] [--seed TEXT]
                    [--ts explicit|implicit|big] [--patient-id ID] [--study-uid UID]
  Files are OUT_DIR/<series>/<instance>.dcm. Prints one line: "<count> files <bytes> bytes".
  UIDs are 2.25.<decimal> derived from the seed, so the same arguments give the same files.

Also importable: generate(out_dir, count, series, ...) -> list of paths.
Pure Python (pydicom only, no numpy): pixel frames are synthetic phantoms (a beating ellipse
in a torso), computed once per phase and shared by the slices, each slice slightly shifted.
"""
import argparse
import array
import hashlib
import math
import os
import sys

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian

MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
IMPL_CLASS = "1.2.826.0.1.3680043.10.1532.98"
ROWS = COLS = 256
TS = {"explicit": ExplicitVRLittleEndian, "implicit": ImplicitVRLittleEndian,
      "big": ExplicitVRBigEndian}


def uid(seed, *parts):
    h = hashlib.sha256(("|".join([seed] + [str(p) for p in parts])).encode()).digest()
    return "2.25." + str(int.from_bytes(h[:15], "big"))


def phantom(phase, phases):
    """One 256x256 frame (uint16, 12-bit range): torso, lungs, a beating LV blood pool."""
    a = array.array("H", bytes(ROWS * COLS * 2))
    t = 2 * math.pi * phase / max(phases, 1)
    lv = 28 + 10 * math.cos(t)  # LV radius (end-diastole at phase 0)
    for y in range(ROWS):
        dy = (y - 128) / 110.0
        row = y * COLS
        for x in range(COLS):
            dx = (x - 128) / 120.0
            r2 = dx * dx + dy * dy
            if r2 > 1.0:
                continue  # air
            v = 600 + ((x * 7 + y * 13) % 41)  # tissue with texture
            lx, ly = (x - 88) / 36.0, (y - 120) / 50.0
            rx, ry = (x - 168) / 36.0, (y - 120) / 50.0
            if lx * lx + ly * ly < 1 or rx * rx + ry * ry < 1:
                v = 80 + ((x + y) % 17)  # lungs
            cx, cy = x - 132, y - 124
            d = math.sqrt(cx * cx + cy * cy)
            if d < lv + 9:
                v = 900  # myocardium
            if d < lv:
                v = 2400 + ((x * 3 + y * 5) % 63)  # bright blood (SSFP)
            a[row + x] = v
    return a


def generate(out_dir, count=60, series=3, phases=25, seed="mitral", ts="explicit",
             patient_id="MT-0001", study_uid=None, quiet=True):
    ts_uid = TS[ts]
    study_uid = study_uid or uid(seed, "study")
    frames = {}
    paths = []
    per_series = [count // series + (1 if i < count % series else 0) for i in range(series)]
    n = 0
    for s in range(series):
        series_uid = uid(seed, "series", s)
        sdir = os.path.join(out_dir, "s%03d" % (s + 1))
        os.makedirs(sdir, exist_ok=True)
        for i in range(per_series[s]):
            n += 1
            phase = i % phases
            slc = i // phases
            key = phase
            if key not in frames:
                frames[key] = phantom(phase, phases)
            px = frames[key]
            shift = (slc * 3 + s) % 32  # each slice its own shift: no two files identical
            px = px[shift * COLS:] + px[:shift * COLS]
            if ts_uid == ExplicitVRBigEndian:
                px = array.array("H", px)
                px.byteswap()
            sop_uid = uid(seed, "sop", s, i)

            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = MR_STORAGE
            meta.MediaStorageSOPInstanceUID = sop_uid
            meta.TransferSyntaxUID = ts_uid
            meta.ImplementationClassUID = IMPL_CLASS
            meta.ImplementationVersionName = "MT_GEN_MR"

            ds = Dataset()
            ds.file_meta = meta
            ds.is_little_endian = ts_uid != ExplicitVRBigEndian
            ds.is_implicit_VR = ts_uid == ImplicitVRLittleEndian
            ds.SpecificCharacterSet = "ISO_IR 100"
            ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
            ds.SOPClassUID = MR_STORAGE
            ds.SOPInstanceUID = sop_uid
            ds.StudyDate = "20260115"
            ds.SeriesDate = "20260115"
            ds.AcquisitionDate = "20260115"
            ds.ContentDate = "20260115"
            ds.StudyTime = "083000"
            ds.SeriesTime = "%02d%02d00" % (8 + (30 + 3 * s) // 60, (30 + 3 * s) % 60)
            ds.AcquisitionTime = ds.SeriesTime
            ds.ContentTime = ds.SeriesTime
            ds.AccessionNumber = "ACC" + uid(seed, "acc")[5:14]
            ds.Modality = "MR"
            ds.Manufacturer = "MITRAL-SIM"
            ds.InstitutionName = "Registry Test Site"
            ds.ReferringPhysicianName = "Referrer^Test"
            ds.StationName = "MRSIM01"
            ds.StudyDescription = "CMR^Function"
            ds.SeriesDescription = "SAX cine SSFP %d" % (s + 1)
            ds.ManufacturerModelName = "Simulated 1.5T"
            ds.PatientName = "Test^Cardiac^%s" % patient_id
            ds.PatientID = patient_id
            ds.PatientBirthDate = "19700101"
            ds.PatientSex = "O"
            ds.PatientAge = "056Y"
            ds.PatientSize = "1.75"
            ds.PatientWeight = "72"
            ds.BodyPartExamined = "HEART"
            ds.ScanningSequence = "GR"
            ds.SequenceVariant = ["SS", "SK"]
            ds.ScanOptions = "CG"
            ds.MRAcquisitionType = "2D"
            ds.SequenceName = "*tfi2d1_25"
            ds.SliceThickness = "8"
            ds.RepetitionTime = "3.2"
            ds.EchoTime = "1.4"
            ds.NumberOfAverages = "1"
            ds.ImagingFrequency = "63.6"
            ds.ImagedNucleus = "1H"
            ds.MagneticFieldStrength = "1.5"
            ds.SpacingBetweenSlices = "10"
            ds.EchoTrainLength = "1"
            ds.PixelBandwidth = "930"
            ds.DeviceSerialNumber = "00000"
            ds.SoftwareVersions = "gen_mr.py"
            ds.ProtocolName = "cine_sax"
            ds.HeartRate = "60"
            ds.CardiacNumberOfImages = str(phases)
            ds.TriggerTime = "%.1f" % (phase * 1000.0 / phases)
            ds.NominalInterval = "1000"
            ds.FlipAngle = "60"
            ds.PatientPosition = "HFS"
            ds.StudyInstanceUID = study_uid
            ds.SeriesInstanceUID = series_uid
            ds.StudyID = "1"
            ds.SeriesNumber = str(s + 1)
            ds.AcquisitionNumber = "1"
            ds.InstanceNumber = str(i + 1)
            z = -40.0 + 10.0 * slc
            ds.ImagePositionPatient = ["-180.0", "-160.0", "%.1f" % z]
            ds.ImageOrientationPatient = ["0.7071", "0.7071", "0", "-0.4082", "0.4082", "0.8165"]
            ds.FrameOfReferenceUID = uid(seed, "for")
            ds.PositionReferenceIndicator = ""
            ds.SliceLocation = "%.1f" % z
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.Rows = ROWS
            ds.Columns = COLS
            ds.PixelSpacing = ["1.40625", "1.40625"]
            ds.BitsAllocated = 16
            ds.BitsStored = 12
            ds.HighBit = 11
            ds.PixelRepresentation = 0
            ds.WindowCenter = "1200"
            ds.WindowWidth = "2400"
            ds.PixelData = px.tobytes()
            ds["PixelData"].VR = "OW"

            path = os.path.join(sdir, "%05d.dcm" % (i + 1))
            ds.save_as(path, write_like_original=False)
            paths.append(path)
    if not quiet:
        total = sum(os.path.getsize(p) for p in paths)
        print("%d files %d bytes" % (len(paths), total))
    return paths


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("out_dir")
    ap.add_argument("--count", type=int, default=60)
    ap.add_argument("--series", type=int, default=3)
    ap.add_argument("--phases", type=int, default=25)
    ap.add_argument("--seed", default="mitral")
    ap.add_argument("--ts", choices=sorted(TS), default="explicit")
    ap.add_argument("--patient-id", default="MT-0001")
    ap.add_argument("--study-uid", default=None)
    a = ap.parse_args()
    if a.count < 1 or a.series < 1 or a.series > a.count:
        sys.exit("gen_mr.py: need 1 <= series <= count")
    generate(a.out_dir, a.count, a.series, a.phases, a.seed, a.ts, a.patient_id, a.study_uid,
             quiet=False)


if __name__ == "__main__":
    main()
