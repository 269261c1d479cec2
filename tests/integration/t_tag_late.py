#!/usr/bin/python3
"""t_tag_late: instances of a series that arrive after its study's features were dropped
(tagging.study_idle passed: node/tagger.c) must not replace the series' tag with one decided
on fewer instances.

A first-pass perfusion series (30 dynamics x 3 slices, no names: physics decides) is stored
and tagged; after the study pass, two of its instances are sent again (a site re-sending):
the tag, confidence and revision stay (before: the two instances alone made the series
`unknown`, revision 1). A second series stored in two parts with the study pass between them
(15, then 75 instances) is re-tagged from the larger part.
"""
import os
import time

import lib
import tagfx


def perfusion(out, study, series, t0):
    """90 files: 30 dynamics of 3 parallel oblique slices ~0.9 s apart, saturation recovery"""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    mr = "1.2.840.10008.5.1.4.1.1.4"
    iop = [0.7071, 0.7071, 0.0, 0.4082, -0.4082, 0.8165]  # normal (1,-1,-1)/sqrt3
    files = []
    for dyn in range(30):
        for pos in range(3):
            sec = t0 + dyn * 0.9 + pos * 0.2
            fm = FileMetaDataset()
            fm.MediaStorageSOPClassUID = mr
            fm.MediaStorageSOPInstanceUID = generate_uid()
            fm.TransferSyntaxUID = ExplicitVRLittleEndian
            d = FileDataset(None, {}, file_meta=fm, preamble=b"\0" * 128)
            d.SOPClassUID, d.SOPInstanceUID = mr, fm.MediaStorageSOPInstanceUID
            d.StudyInstanceUID, d.SeriesInstanceUID = study, series
            d.Modality, d.Manufacturer, d.PatientID, d.StudyDate = "MR", "SIEMENS", "LATE1", "20260101"
            d.ScanningSequence, d.SequenceVariant = "GR", "MP"
            d.RepetitionTime, d.EchoTime, d.InversionTime = 2.5, 1.1, 100
            d.ImageOrientationPatient = iop
            d.ImagePositionPatient = [5.77 * pos, -5.77 * pos, -5.77 * pos]
            d.AcquisitionTime = "%02d%02d%06.3f" % (sec // 3600, sec % 3600 // 60, sec % 60)
            d.InstanceNumber = len(files) + 1
            d.Rows = d.Columns = 4
            d.BitsAllocated = d.BitsStored = 16
            d.HighBit, d.PixelRepresentation, d.SamplesPerPixel = 15, 0, 1
            d.PhotometricInterpretation = "MONOCHROME2"
            d.PixelData = b"\0" * 32
            path = os.path.join(out, "%s-%03d.dcm" % (series[-6:], len(files)))
            d.save_as(path, write_like_original=False)
            files.append(path)
    return files


def body():
    if not lib.IS_MITRAL:
        lib.skip("tagging is mitral's")
    try:
        from pydicom.uid import generate_uid
    except ImportError:
        lib.skip("pydicom missing")
    out = lib.tmpdir("mt-taglate-")
    study, sa, sb = generate_uid(), generate_uid(), generate_uid()
    fa = perfusion(out, study, sa, 36000)
    fb = perfusion(out, study, sb, 36000 + 900)
    node = lib.Node("taglate", conf={"tagging.series_idle": "300ms",
                                     "tagging.study_idle": "1s"}).start()

    def row(uid):
        r = node.query("SELECT tag, confidence, revision, evidence FROM series_tags "
                       "WHERE series_uid = ?", (uid,))
        return r[0] if r else None

    def store(files, uid):
        r = lib.storescu(node, files)
        ok = r.stdout.count("Received Store Response (Success)")
        lib.check(ok == len(files), "stored %d of %d" % (ok, len(files)))
        lib.wait_for(lambda: row(uid) is not None, "series tagged", deadline_s=60)
        tagfx.wait_settled(node)
        time.sleep(1.5)  # past study_idle: the study pass has run, the features are dropped
        tagfx.wait_settled(node)
        return row(uid)

    first = store(fa, sa)
    lib.check(first["tag"].startswith("perfusion."), "full series: %s" % first)
    again = store(fa[:2], sa)
    lib.check((again["tag"], again["confidence"], again["revision"]) ==
              (first["tag"], first["confidence"], first["revision"]),
              "two re-sent instances replaced the tag: %s -> %s" % (first, again))

    part = store(fb[:15], sb)  # 5 dynamics: not yet a perfusion
    rest = store(fb[15:], sb)
    lib.check(rest["tag"].startswith("perfusion."),
              "the larger part did not re-tag the series: %s -> %s" % (part, rest))
    lib.check(rest["revision"] == part["revision"] + 1, "revision not bumped: %s" % rest)
    lib.check(node.stop() == 0, "node did not stop cleanly")


lib.run_guarded(body)
