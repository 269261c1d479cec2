"""
tagfx.py - helpers of the CMR tag query tests (t_tag_qido.py, t_tag_retrieve.py): generated CMR
studies (tests/tagging/gen_cmr_fixtures.py) stored into a node with short tagging.series_idle /
study_idle, waiting until every series has its series_tags row, and a C-FIND/C-MOVE/C-GET
identifier file carrying the private keys (dcmtk's -k knows (4D49,0010) but not (4D49,1010):
"unknown tag"; so the keys are written with their VRs by pydicom).
"""
import csv
import glob
import os
import sys
import time

import lib

CONF = {"tagging.series_idle": "500ms", "tagging.study_idle": "1s"}


def fixtures(studies=2, seed=7, phases=4, dynamics=6, fx=None):
    """-> (files, truth rows), generated into fx (default: a new temp directory); skips
    without pydicom"""
    try:
        import pydicom  # noqa: F401
    except ImportError:
        lib.skip("pydicom missing")
    fx = fx or os.path.join(lib.tmpdir("mt-tagq-"), "fx")
    gen = os.path.join(lib.SRC, "tests", "tagging", "gen_cmr_fixtures.py")
    r = lib.run([sys.executable, gen, "--out", fx, "--studies", str(studies), "--seed", str(seed),
                 "--phases", str(phases), "--dynamics", str(dynamics)])
    lib.check(r.returncode == 0, "fixture generator failed: %s %s" % (r.stdout, r.stderr))
    with open(os.path.join(fx, "truth.csv")) as f:
        truth = list(csv.DictReader(f))
    return sorted(glob.glob(os.path.join(fx, "study*", "*", "*.dcm"))), truth


def wait_settled(node, quiet_s=2.5, deadline_s=60):
    """Wait until series_tags has not changed for quiet_s: the study pass (study_idle 1s after
    the last instance) may still revise tags written by the series passes, and the tagger
    commits at most once a second (node/tagger.c WRITE_GAP_MS). The tests compare final tags."""
    def snap():
        return sorted(tuple(r.values()) for r in node.query(
            "SELECT series_uid, tag, view, revision FROM series_tags"))
    last, changed = snap(), time.monotonic()
    end = changed + deadline_s
    while time.monotonic() - changed < quiet_s and time.monotonic() < end:
        time.sleep(0.2)
        now = snap()
        if now != last:
            last, changed = now, time.monotonic()
    lib.check(time.monotonic() - changed >= quiet_s, "series_tags still changing")


def store_and_wait(node, files, n_series):
    """store every file, wait until n_series are tagged; -> rows of series_tags"""
    r = lib.storescu(node, files, timeout=280)
    ok = r.stdout.count("Received Store Response (Success)")
    lib.check(ok == len(files), "stored %d of %d files:\n%s" % (ok, len(files), r.stdout[-2000:]))

    def n_tagged():
        try:
            return node.query("SELECT count(*) AS n FROM series_tags")[0]["n"]
        except Exception:
            return -1
    lib.wait_for(lambda: n_tagged() >= n_series, "every series tagged", deadline_s=120)
    wait_settled(node)
    rows = node.query("SELECT t.series_uid, t.study_uid, t.tag, t.view, "
                      "(SELECT count(*) FROM instances i JOIN series se ON se.pk = i.series_pk "
                      "WHERE se.series_instance_uid = t.series_uid) AS n FROM series_tags t")
    lib.check(len(rows) == n_series, "%d tag rows, %d series" % (len(rows), n_series))
    return rows


def identifier(path, level, keys, tag=None, view=None):
    """an identifier file: QueryRetrieveLevel, keys {keyword: value}, the private creator and
    the CMR tag / view keys when given"""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for k, v in keys.items():
        setattr(ds, k, v)
    if tag is not None or view is not None:
        ds.add_new(0x4D490010, "LO", "MITRAL CMR 1")
    if tag is not None:
        ds.add_new(0x4D491010, "LO", tag)
    if view is not None:
        ds.add_new(0x4D491011, "CS", view)
    fm = FileMetaDataset()
    fm.TransferSyntaxUID = ExplicitVRLittleEndian
    fm.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.2.2.2"
    fm.MediaStorageSOPInstanceUID = "1.2.3.4"
    ds.file_meta = fm
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(path, write_like_original=False)
    return path


def matches(pattern, value):
    """the C-FIND semantics of the CMR key (docs/tagging.md): '\\' list of alternatives, each
    with '*' '?' wildcards, case-insensitive"""
    import fnmatch
    value = (value or "").lower()
    return any(fnmatch.fnmatchcase(value, alt.lower()) for alt in pattern.split("\\"))
