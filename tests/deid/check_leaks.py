#!/usr/bin/python3
"""check_leaks.py - no identifying value of an input survives de-identification (issue 4).

For every file of ../shared/testdata (or --testdata) and for generated CMR-like studies full of
identifiers (names in several character sets, IDs, birth dates, institution, physicians, private
tags, identifiers nested in sequences, descriptions quoting the patient), run the de-identifier
once per input file and scan the OUTPUT BYTES for every identifying value of the input: raw (as
encoded in the input), upper-cased, and dates in the DA, ISO and European forms.

Usage: tests/deid/check_leaks.py --cmd "build/mitral deid" [--profile basic] [--testdata DIR]
The command gets `--profile P --key KEY --profiles-dir DIR IN OUT_DIR` appended.
Every output must also be read by dcmtk's dcmdump, and attributes no profile touches (SOP
Class, Modality, the image pixel module, Pixel Data; with cmr-registry also the retained patient
characteristics and device identity) must be equal in input and output. Attributes outside
Table E.1-1 follow the profile's default, X: a public attribute of an output (at any depth) that
is neither a row of the table (or of the profile file) nor on the keep list
(deid-profiles/basic-keep.yaml) is reported, and the generated inputs carry such attributes with
identifying values (EXTRA_IDENT).
Exit status 0: no leak. 1: leaks (listed by input number and attribute, never by value), broken
outputs or changed retained attributes.
Needs python3-pydicom.
"""
import argparse
import concurrent.futures
import hashlib
import hmac
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# Attributes whose values identify (PS3.15 Table E.1-1 rows the profiles never retain).
IDENT = [
    "PatientName", "PatientID", "OtherPatientIDs", "PatientBirthDate", "PatientBirthName",
    "PatientMotherBirthName", "PatientAddress", "PatientTelephoneNumbers", "InstitutionName",
    "InstitutionAddress", "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName",
    "NameOfPhysiciansReadingStudy", "PhysiciansOfRecord", "RequestingPhysician",
    "AccessionNumber", "MedicalRecordLocator", "IssuerOfPatientID", "ReferringPhysicianAddress",
    "InstitutionalDepartmentName", "PersonName", "StudyID",
    "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate", "AcquisitionDateTime",
]
DATE_ONLY = {"PatientBirthDate", "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate",
             "AcquisitionDateTime"}
# Attributes outside Table E.1-1 and off the keep list, with identifying values, written into the
# generated inputs: the default X must remove them (tag: (VR, value)).
EXTRA_IDENT = {
    0x00100033: ("LO", "GEBURT ALTCAL MUHARRAM 1381"),   # PatientBirthDateInAlternativeCalendar
    0x00181003: ("LO", "DEVID-MRC45612X"),               # DeviceID
    0x00080418: ("LT", "Rueckruf Frau Ziegenhals 0171-5551234"),  # TransactionStatusComment
    0x0008041F: ("DT", "20230818121500"),                # StudyUpdateDateTime
    0x00181064: ("LO", "Zuweiser Zacharias Triggerung"),  # CardiacFramingType
}
# Attributes no profile changes (not in PS3.15 Table E.1-1): compared input vs output.
RETAINED = ["SOPClassUID", "Modality", "Rows", "Columns", "BitsAllocated", "BitsStored",
            "SamplesPerPixel", "PhotometricInterpretation", "ImageType", "PixelData"]
# Retained by the cmr-registry profile's options (patient characteristics, device identity).
RETAINED_CMR = ["PatientSex", "PatientAge", "PatientWeight", "PatientSize", "Manufacturer",
                "ManufacturerModelName", "MagneticFieldStrength", "DeviceSerialNumber"]


def strings_of(value):
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        out = []
        for v in value:
            out += strings_of(v)
        return out
    return [str(value)]


# Text the de-identifier itself adds (PS3.15 E.1.1: CID 7050 code meanings, the method).
OURS = b"\n".join(x.upper().encode() for x in [
    "Basic Application Confidentiality Profile", "Retain Safe Private Option",
    "Retain UIDs Option", "Retain Device Identity Option", "Retain Institution Identity Option",
    "Retain Patient Characteristics Option",
    "Retain Longitudinal Temporal Information Full Dates Option",
    "Retain Longitudinal Temporal Information Modified Dates Option",
    "Clean Descriptors Option", "Clean Structured Content Option", "Clean Graphics Option",
    "mitral", "DEIDENTIFIED", "MODIFIED", "REMOVED", "UNMODIFIED"])

# The option columns each committed profile selects (deid-profiles/*.yaml).
PROFILE_OPTIONS = {
    "basic": [],
    "cmr-registry": ["rtnPatCharsOpt", "rtnDevIdOpt", "rtnLongModifDatesOpt", "cleanDescOpt"],
}


def kept_tags(profile):
    """Tags whose values the profile keeps unchanged (K): everything not in Table E.1-1 and the
    K cells of the selected options. Read from the same JSON the profiles are generated from."""
    table = os.path.join(ROOT, "..", "shared", "standard", "innolitics",
                         "confidentiality_profile_attributes.json")
    rows = json.load(open(table, encoding="utf-8"))
    listed, kept = set(), set()
    for r in rows:
        t = r["tag"].strip("()").replace(",", "").upper()
        if len(t) != 8 or "X" in t:
            continue
        listed.add(int(t, 16))
        if any(r.get(c) == "K" for c in PROFILE_OPTIONS.get(profile, [])):
            kept.add(int(t, 16))
    return listed, kept


def tag_rule(text):
    """'(60xx,0010)' -> (value, mask)."""
    h = text.strip("()").replace(",", "")
    val = int("".join("0" if c in "xX" else c for c in h), 16)
    mask = int("".join("0" if c in "xX" else "F" for c in h), 16)
    return val, mask


def load_rules(path, section):
    """Tag rules of a deid-profiles YAML file: {(value, mask): action} of one top-level mapping
    (`keep` of basic-keep.yaml, `attributes` of a profile), read line by line."""
    out, inside = {}, False
    for line in open(path, encoding="utf-8"):
        if not line.startswith(" "):
            inside = line.startswith(section + ":")
            continue
        m = re.match(r'  "(\([0-9A-Fa-fx]{4},[0-9A-Fa-fx]{4}\))": (\S+)', line)
        if inside and m:
            out[tag_rule(m.group(1))] = m.group(2)
    return out


def rule_match(rules, tag):
    if (tag, 0xFFFFFFFF) in rules:
        return rules[(tag, 0xFFFFFFFF)]
    for (v, m), a in rules.items():
        if m != 0xFFFFFFFF and not (tag >> 16) & 1 and tag & m == v:
            return a
    return None


KEEP_LIST = load_rules(os.path.join(ROOT, "deid-profiles", "basic-keep.yaml"), "keep")
TABLE = {}  # every row of Table E.1-1 and of the profile file, as rules


def table_rules(profile):
    table = os.path.join(ROOT, "..", "shared", "standard", "innolitics",
                         "confidentiality_profile_attributes.json")
    out = {}
    for r in json.load(open(table, encoding="utf-8")):
        if not r["tag"].upper().startswith("(GGGG"):
            out[tag_rule(r["tag"])] = r["basicProfile"]
    pf = os.path.join(ROOT, "deid-profiles", profile + ".yaml")
    if os.path.exists(pf):
        out.update(load_rules(pf, "attributes"))
    return out


# Added by the de-identifier itself (PS3.15 E.1.1).
ADDED = {0x00120062, 0x00120063, 0x00120064, 0x00280303}


def outside_rules(ds, depth=0):
    """Public attributes of an output at any depth that the table, the profile file and the keep
    list all leave to the default (X): they must not be there."""
    bad = set()
    for el in ds:
        t = int(el.tag)
        if el.tag.is_private or (t >> 16) == 0x0002 or (t & 0xFFFF) == 0 or t in ADDED:
            continue
        if rule_match(TABLE, t) is None and rule_match(KEEP_LIST, t) is None:
            bad.add("(%04X,%04X)" % (t >> 16, t & 0xFFFF))
        if el.VR == "SQ":
            for it in el.value or []:
                bad |= outside_rules(it, depth + 1)
    return bad


KEPT = (set(), set())
X_TAGS = set()  # tags the profile removes outright (X), from the same JSON


def removed_tags(profile):
    table = os.path.join(ROOT, "..", "shared", "standard", "innolitics",
                         "confidentiality_profile_attributes.json")
    out = set()
    for r in json.load(open(table, encoding="utf-8")):
        t = r["tag"].strip("()").replace(",", "").upper()
        if len(t) != 8 or "X" in t:
            continue
        action = r["basicProfile"]
        for c in PROFILE_OPTIONS.get(profile, []):
            action = r.get(c, action)
        if action == "X":
            out.add(int(t, 16))
    return out


def removed_by_table(keyword):
    tag = pydicom.datadict.tag_for_keyword(keyword)
    return tag is not None and tag in X_TAGS


def is_kept(tag):
    """Kept as it is: a K cell of a selected option, or outside the table and K on the keep
    list (the default of both shipped profiles is X)."""
    listed, kept = KEPT
    if int(tag) in listed:
        return int(tag) in kept
    return rule_match(KEEP_LIST, int(tag)) == "K"


def collect(ds, found, private_texts, shared):
    """shared: (codes, texts) of the attributes of a REAL input that the profile keeps as they
    are (K). A word of an identifying value that also occurs in one of them (a patient called
    "Perfusion^Stroke" in a PERFUSION image; InstitutionName TOSHIBA, Manufacturer TOSHIBA_MEC)
    cannot be told apart from it in the output bytes and is not checked."""
    codes, texts = shared
    for el in ds.iterall():
        if el.VR == "SQ":
            continue
        kw = el.keyword
        if not el.tag.is_private and kw not in IDENT and is_kept(el.tag):
            try:
                for v in strings_of(el.value):
                    if el.VR in ("CS", "UI", "DS", "IS", "AE", "AS"):
                        codes.append(v.upper().encode("utf-8", "replace"))
                    elif el.VR in ("LO", "SH", "LT", "ST", "UT", "PN"):
                        texts.add(v.strip().upper().encode("utf-8", "replace"))
            except Exception:
                pass
        if int(el.tag) in EXTRA_IDENT and el.value not in (None, "", b""):
            for s in strings_of(el.value):
                found.append(("(%04X,%04X)" % (el.tag.group, el.tag.element), s))
        if kw in IDENT and el.value not in (None, "", b""):
            raw = el.value
            for s in strings_of(raw):
                found.append((kw, s))
        if el.tag.is_private and el.VR in ("LO", "SH", "LT", "ST", "UT", "PN") and el.value:
            for s in strings_of(el.value):
                private_texts.append((str(el.tag), s))


PSEUDO_UID = re.compile(rb"2\.25\.[0-9]+")


def leak_context(v, blob, blob_log):
    """Where a surviving value was found, without printing it: in the output or the CLI's log,
    and whether every occurrence lies inside a 2.25 UID (a keyed pseudonym is 39 random
    decimal digits, so a digit-only value can turn up there by chance: then the key, which is
    random per run, decides, and the report says so)."""
    def inside_uids(data):
        spans = [m.span() for m in PSEUDO_UID.finditer(data)]
        at, hits = 0, []
        while True:
            i = data.find(v, at)
            if i < 0:
                return hits
            hits.append(any(a <= i and i + len(v) <= b for a, b in spans))
            at = i + 1
    where = []
    for name, data in (("output", blob), ("log", blob_log)):
        hits = inside_uids(data)
        if hits:
            where.append("%s: %d time(s)%s" % (name, len(hits), ", all inside 2.25 UIDs "
                                               "(chance?)" if all(hits) else ""))
    return "; ".join(where)


def variants(kw, s, charset):
    """The byte strings that must not appear for one identifying value."""
    out = set()
    s = s.strip()
    if kw in DATE_ONLY or (len(s) >= 8 and s[:8].isdigit() and (kw.endswith("Date") or
                                                               kw == "(0008,041F)")):
        s = s[:8]  # DT: its date
        if len(s) == 8 and s.isdigit() and s != "19000101":  # 19000101: the D dummy
            y, m, d = s[:4], s[4:6], s[6:]
            for f in (s, "%s-%s-%s" % (y, m, d), "%s.%s.%s" % (d, m, y), "%s/%s/%s" % (d, m, y)):
                out.add(f.encode())
        return out
    parts = [s] + [p for p in s.replace("=", "^").split("^") if p]
    for p in parts:
        p = p.strip()
        if len(p) < 4 or p.upper() in ("NONE", "ANONYMOUS", "ANONYMIZED", "UNKNOWN", "TEST",
                                       "DEIDENTIFIED"):
            continue
        if p.isdigit() and len(p) < 6:
            continue
        for enc in ("utf-8", "latin-1"):
            try:
                b = p.encode(enc)
                out.add(b)
                out.add(p.upper().encode(enc))
            except UnicodeEncodeError:
                pass
        try:
            out.add(pydicom.charset.encode_string(p, charset))
        except Exception:
            pass
    return out


def make_cmr_study(outdir, n_series=3, n_inst=2):
    """Generated CMR-like instances: identifiers everywhere, several character sets."""
    people = [
        ("ISO_IR 100", "Müller^Jürgen^^Dr.", "Schäfer^Anna"),
        ("ISO_IR 192", "Mészáros^Zoë", "Ødegård^Bjørn"),
        ("ISO_IR 192", "山田^太郎=ヤマダ^タロウ", "佐藤^花子"),
        ("", "ZZTESTPATIENT^ALPHA", "HOUSEMD^GREGORY"),
    ]
    paths = []
    study_uid = generate_uid()
    for si in range(n_series):
        series_uid = generate_uid()
        for ii in range(n_inst):
            cs, pname, phys = people[(si * n_inst + ii) % len(people)]
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
            sop = generate_uid()
            meta.MediaStorageSOPInstanceUID = sop
            meta.TransferSyntaxUID = ExplicitVRLittleEndian if ii % 2 == 0 else ImplicitVRLittleEndian
            meta.SourceApplicationEntityTitle = "HOSPITALPACS7"
            ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
            if cs:
                ds.SpecificCharacterSet = cs
            ds.SOPClassUID = meta.MediaStorageSOPClassUID
            ds.SOPInstanceUID = sop
            ds.StudyInstanceUID = study_uid
            ds.SeriesInstanceUID = series_uid
            ds.FrameOfReferenceUID = generate_uid()
            ds.Modality = "MR"
            ds.PatientName = pname
            ds.PatientID = "CMRPID%06d" % (4711 + si)
            ds.OtherPatientIDs = ["OTHERID99871", "SSN123456789"]
            ds.PatientBirthDate = "19610817"
            ds.PatientSex = "M"
            ds.PatientAge = "062Y"
            ds.PatientWeight = "82"
            ds.PatientSize = "1.80"
            ds.PatientAddress = "Hauptstrasse 12, 80331 Muenchen"
            ds.InstitutionName = "Klinikum Rechts der Isarwinkel"
            ds.InstitutionAddress = "Ismaninger Strasse 22"
            ds.ReferringPhysicianName = phys
            ds.PerformingPhysicianName = ["Kardiologe^Karl", "Radiologin^Rita"]
            ds.OperatorsName = "Technikerin^Tina"
            ds.AccessionNumber = "ACCN20230817"
            ds.StudyID = "STUDY8812"
            ds.StudyDate = "20230817"
            ds.SeriesDate = "20230817"
            ds.StudyTime = "101500"
            ds.AcquisitionDateTime = "20230817102000.000000"
            ds.StudyDescription = "CMR Stress perfusion"
            ds.SeriesDescription = ["SAX cine", "LGE PSIR", "T1 MOLLI"][si % 3] + " Technikerin 17.08.2023"
            ds.ProtocolName = "cine_retro_sax CMRPID%06d" % (4711 + si)
            # free text quoting this instance's own patient (C must scrub it; a name that is
            # nowhere else in the instance cannot be recognised: docs/deid.md, limits)
            ds.ImageComments = "Patient %s called, see ACCN20230817" % pname.split("^")[0]
            ds.Manufacturer = "SIEMENS"
            ds.ManufacturerModelName = "MAGNETOM Aera"
            ds.MagneticFieldStrength = "1.5"
            ds.DeviceSerialNumber = "45612"
            ds.StationName = "MRC45612"
            ds.InstanceNumber = str(ii + 1)
            ds.BurnedInAnnotation = "NO"
            ref = Dataset()
            ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
            ref.ReferencedSOPInstanceUID = generate_uid()
            ds.ReferencedImageSequence = Sequence([ref])
            req = Dataset()
            req.RequestingPhysician = "Zuweiser^Zacharias"
            req.AccessionNumber = "ACCN20230817"
            inner = Dataset()
            inner.PersonName = "Verschachtelt^Victoria"
            inner.CodeValue = "X1"
            inner.CodingSchemeDesignator = "99LOCAL"
            inner.CodeMeaning = "Verschachtelt Victoria"
            req.PersonIdentificationCodeSequence = Sequence([inner])
            ds.RequestAttributesSequence = Sequence([req])
            for t, (vr, v) in EXTRA_IDENT.items():
                ds.add_new(t, vr, v)
            ds.add_new(0x00290010, "LO", "ACME PRIVATE")
            ds.add_new(0x00291010, "LO", "private copy of Ödipus^Orest")
            ds.add_new(0x00291011, "SH", "PRIVID77665")
            ds.add_new(0x00190010, "LO", "SIEMENS MR HEADER")
            ds.add_new(0x0019100C, "IS", "800")
            ds.Rows = 4
            ds.Columns = 4
            ds.BitsAllocated = 16
            ds.BitsStored = 12
            ds.HighBit = 11
            ds.PixelRepresentation = 0
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.PixelData = bytes(32)
            p = os.path.join(outdir, "gen_%d_%d.dcm" % (si, ii))
            ds.save_as(p, write_like_original=False)
            paths.append(p)
    return paths


# New dciodvfy errors that mean the encoder or the engine broke the file. Others are listed,
# not failed: they follow from the table's own actions (X on Acquisition Context Sequence,
# Type 2 in the enhanced IODs; conditions of 2C attributes that read removed attributes such as
# Responsible Person or Body Part Examined) or from inputs dciodvfy could not read.
DCIODVFY_FATAL = (r"Tags out of order|trailing garbage|Bad Sequence number of Items|"
                  r"Value invalid for this VR|invalid data values|Empty attribute \(no value\) "
                  r"Type 1|Missing attribute Type 1 Required")


def dciodvfy_errors(path):
    """dciodvfy's error messages for a file, with UIDs and values blanked so that an input and
    its de-identified output compare; None when dciodvfy is not installed."""
    if not shutil.which("dciodvfy"):
        return None
    r = subprocess.run(["dciodvfy", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = set()
    for line in r.stdout.decode("utf-8", "replace").splitlines():
        if line.startswith("Error"):
            out.add(re.sub(r"(UID|value|Value) .*", r"\1 ...", line))
    return out


def real_files(testdata):
    for dirpath, _, files in os.walk(testdata):
        for f in sorted(files):
            p = os.path.join(dirpath, f)
            if f.endswith((".md", ".txt", ".json", ".py")) or f.startswith("LICENSE"):
                continue
            yield p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cmd", default=os.environ.get("MITRAL_DEID", "mitral deid"))
    ap.add_argument("--profile", default="basic")
    ap.add_argument("--profiles-dir", default=os.path.join(ROOT, "deid-profiles"))
    ap.add_argument("--testdata", default=os.path.join(ROOT, "..", "shared", "testdata"))
    ap.add_argument("--generated-only", action="store_true")
    ap.add_argument("--dciodvfy", action="store_true",
                    help="fail on dciodvfy errors the output has and the input had not")
    args = ap.parse_args()
    global KEPT, X_TAGS, TABLE
    KEPT = kept_tags(args.profile)
    TABLE = table_rules(args.profile)
    X_TAGS = removed_tags(args.profile)

    tmp = tempfile.mkdtemp(prefix="mt-deid-leaks-")
    key = os.path.join(tmp, "key")
    with open(key, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(key, 0o600)
    gen_dir = os.path.join(tmp, "gen")
    os.mkdir(gen_dir)
    inputs = make_cmr_study(gen_dir)
    if not args.generated_only:
        inputs += list(real_files(args.testdata))

    n_checked = n_written = n_skipped = n_retained = 0
    leaks, broken, changed = [], [], []
    notes = set()
    retained = RETAINED + (RETAINED_CMR if args.profile == "cmr-registry" else [])
    # One `mitral deid` run per batch of inputs, not per input (process start-up dominated the
    # run time): the output of an input is found by the name the CLI gives it, its mapped SOP
    # Instance UID, computed here from the key as pseudonym.h specifies (so the test also checks
    # that spec). Inputs sharing a SOP Instance UID go to different batches; inputs whose
    # output is not where expected (skipped, unreadable, a profile that keeps UIDs) are run on
    # their own.
    with open(key, "rb") as f:
        secret = f.read()

    def mapped(uid):
        h = hmac.new(secret, b"mitral-deid-v1\x00uid\x00" + uid.encode(), hashlib.sha256)
        return "2.25.%d" % int.from_bytes(h.digest()[:16], "big")

    def run(paths, out):
        cmd = shlex.split(args.cmd) + ["--profile", args.profile, "--key", key,
                                       "--profiles-dir", args.profiles_dir] + paths + [out]
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        files = {}
        for d, _, fs in os.walk(out):
            for f in fs:
                files.setdefault(f, []).append(os.path.join(d, f))
        return r.stdout + r.stderr, files

    batches, uid_of = [], {}
    for idx, path in enumerate(inputs):
        try:
            uid_of[idx] = str(pydicom.dcmread(path, force=True, stop_before_pixels=True)
                              .SOPInstanceUID).strip()
        except Exception:
            continue
        for b in batches:
            if uid_of[idx] not in b:
                b[uid_of[idx]] = idx
                break
        else:
            batches.append({uid_of[idx]: idx})
    result = {}  # idx -> (log bytes, [output files])
    for k, b in enumerate(batches):
        log, files = run([inputs[i] for i in b.values()], os.path.join(tmp, "batch%d" % k))
        for uid, i in b.items():
            got = files.get(mapped(uid) + ".dcm", [])
            if len(got) == 1:
                result[i] = (log, got)
    for idx, path in enumerate(inputs):
        if idx not in result:
            log, files = run([path], os.path.join(tmp, "out%d" % idx))
            result[idx] = (log, [f for fs in files.values() for f in fs])

    # dcmdump and dciodvfy over every output (and dciodvfy over its input), a few at a time.
    def dcmdump(o):
        d = subprocess.run(["dcmdump", "-q", o], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
        return d.returncode, d.stderr

    jobs = [("dump", o) for _, outs in result.values() for o in outs]
    if args.dciodvfy:
        jobs += [("vfy", o) for _, outs in result.values() for o in outs]
        jobs += [("vfy", inputs[i]) for i, (_, outs) in result.items() if len(outs) == 1]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as ex:
        tool = dict(zip(jobs, ex.map(
            lambda j: dcmdump(j[1]) if j[0] == "dump" else dciodvfy_errors(j[1]), jobs)))

    for idx, path in enumerate(inputs):
        generated = path.startswith(gen_dir)
        where = "generated" if generated else os.path.relpath(path, args.testdata)
        src = None
        try:
            src = pydicom.dcmread(path, force=True)
            found, priv, shared = [], [], ([], set())
            collect(src, found, priv, shared)
            charset = src.get("SpecificCharacterSet", "ISO_IR 6")
            if isinstance(charset, str):
                charset = [charset]
            charset = list(charset) or ["ISO_IR 6"]
        except Exception:
            found, priv, shared, charset = [], [], ([], set()), ["ISO_IR 6"]
        blob_log, outs = result[idx]
        if generated and len(outs) != 1:
            broken.append((idx, where, "no output for a generated input"))
        if not outs:
            n_skipped += 1
            if os.environ.get("MT_DEID_DEBUG"):
                print("SKIPPED", where)
            continue
        n_written += 1
        blob = b"".join(open(o, "rb").read() for o in outs)
        # blob_log: the CLI's output for the batch; the log must not carry values either
        # Generated inputs: nothing is excused. Real inputs: see collect().
        excused = b"\n".join(shared[0] + sorted(shared[1])) if not generated else b""
        # Private texts are checked in the generated files only: real vendor blocks are full of
        # generic words ("Gain", "Width") that legitimately occur elsewhere in the output.
        for kw, s in found + (priv if generated else []):
            for v in variants(kw, s, charset):
                if v.upper() in excused or v.upper() in OURS:
                    continue
                n_checked += 1
                if v in blob or v in blob_log:
                    leaks.append((idx, where, kw, leak_context(v, blob, blob_log)))
        for o in outs:
            rc, err = tool[("dump", o)]
            if rc != 0 or b"E: " in err:
                broken.append((idx, where, "dcmdump: " + err.decode("utf-8", "replace")[:200]))
            if src is None or len(outs) != 1:
                continue
            deflated = src is not None and str(getattr(getattr(
                src, "file_meta", None), "TransferSyntaxUID", "")) in ("1.2.840.10008.1.2.1.99",
                                                                      "1.2.840.10008.1.2.8.1")
            if args.dciodvfy and not deflated:  # dciodvfy cannot read deflated input
                new = (tool[("vfy", o)] or set()) - (tool[("vfy", path)] or set())
                for e in sorted(new):
                    m = re.search(r"Missing attribute Type \S+ Required Element=<(\w+)>", e)
                    if m and removed_by_table(m.group(1)):
                        notes.add(e[:160] + " (the table removes it)")
                    elif re.search(DCIODVFY_FATAL, e):
                        broken.append((idx, where, "dciodvfy: new " + e[:160]))
                    else:
                        notes.add(e[:160])
            try:
                dst = pydicom.dcmread(o)
            except Exception as e:
                broken.append((idx, where, "pydicom: %s" % type(e).__name__))
                continue
            for t in sorted(outside_rules(dst)):
                broken.append((idx, where, "%s: outside Table E.1-1 and the keep list, kept" % t))
            for kw in retained:
                if kw in src and not src[kw].tag.is_private:
                    n_retained += 1
                    a = src[kw].value
                    b = dst[kw].value if kw in dst else None
                    if a != b:
                        changed.append((idx, where, kw))
    for idx, where, kw, ctx in sorted(set(leaks)):
        print("LEAK input #%d (%s): a value of %s survives (%s)" % (idx, where, kw, ctx))
    for idx, where, why in broken:
        print("BROKEN input #%d (%s): %s" % (idx, where, why))
    for e in sorted(notes):
        print("NOTE: new in some output, from the table's actions: " + e)
    for idx, where, kw in sorted(set(changed)):
        print("CHANGED input #%d (%s): retained attribute %s differs" % (idx, where, kw))
    print("check_leaks: profile %s: %d inputs, %d de-identified, %d skipped, %d value forms "
          "checked, %d leaks; %d outputs broken; %d retained values compared, %d changed"
          % (args.profile, len(inputs), n_written, n_skipped, n_checked, len(set(leaks)),
             len(broken), n_retained, len(set(changed))))
    subprocess.run(["rm", "-rf", tmp])
    return 1 if leaks or broken or changed else 0


if __name__ == "__main__":
    sys.exit(main())
