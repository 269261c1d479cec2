#!/usr/bin/python3
"""t_deid_hostile.py - issue 4's de-identification against inputs built to make identity survive.

tests/deid/hostile.py writes a four-instance study (two series, four character sets: ISO_IR
100, ISO_IR 192, ISO 2022 IR 87, a doubled ISO_IR 100; one patient ID, one name in two
encodings) whose identifiers hide five sequence levels deep, in private blocks (creators known
and unknown, elements without a creator, (gggg,0001-000F), private data in items and a private
sequence), in attributes outside Table E.1-1, in curves and overlays, Other Patient IDs
Sequence, Request Attributes Sequence, File Meta (Source/Sending AE, Private Information),
multi-valued and five-component names, descriptions quoting the patient in another letter
case; and two raw instances with UN-encoded names and sequences, undefined lengths and odd
lengths.

Checked, for `mitral deid` with basic, cmr-registry, each option of Table E.1-1 alone and all
options together:
- no identifying value in any output byte (raw, upper/lower case, UTF-8, Latin-1, ISO 2022 /
  Shift-JIS / EUC-JP); the only exception is what an option keeps on purpose (Retain
  Institution Identity: the institution's name);
- dcmdump reads every output; File Meta's SOP Instance UID is the data set's; no Source or
  Sending AE Title or Private Information is carried over;
- references: Referenced SOP Instance UID five levels down is the referenced instance's mapped
  SOP Instance UID; one Frame of Reference UID; one Patient ID pseudonym for all four instances;
  every date of the study shifted by the same whole number of days inside the configured range;
- Patient Identity Removed YES, the CID 7050 codes of the profile and of each option, and
  Longitudinal Temporal Information Modified as the options say;
- no private attribute survives except with Retain Safe Private, no 50xx/60xx group except with
  Clean Graphics;
- the same key gives the same bytes twice; another key other pseudonyms and UIDs.
Through a node whose routing rule says `deid: cmr-registry` (node-wide profile none): the
stored files are byte for byte the CLI's data sets, and neither they, the index database nor
the log hold an identifying value; Burned In Annotation " YES" is refused (0110) and not
stored.
"""
import glob
import hashlib
import hmac
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "deid"))
import lib  # noqa: E402

try:
    import pydicom  # noqa: E402
    import hostile  # noqa: E402
except ImportError:
    lib.skip("pydicom not installed")

PROFILES_DIR = os.path.join(ROOT, "deid-profiles")
OPTIONS = {  # option -> its CID 7050 code
    "retain-safe-private": "113111", "retain-uids": "113110",
    "retain-device-identity": "113109", "retain-institution-identity": "113112",
    "retain-patient-characteristics": "113108", "retain-long-full-dates": "113106",
    "retain-long-modified-dates": "113107", "clean-descriptors": "113105",
    "clean-structured-content": "113104", "clean-graphics": "113103"}
CMR_OPTIONS = ["retain-device-identity", "retain-patient-characteristics",
               "retain-long-modified-dates", "clean-descriptors"]
INSTITUTION = {"Tiefklinik", "Hostilia", "Unfgklinik"}  # kept on purpose by Retain Institution Identity


def deid(profile, key, inputs, out):
    r = subprocess.run([lib.MITRAL, "deid", "--profile", profile, "--key", key,
                        "--profiles-dir", PROFILES_DIR] + inputs + [out],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    outs = sorted(glob.glob(os.path.join(out, "**", "*.dcm"), recursive=True))
    lib.check(r.returncode == 0 and len(outs) == len(inputs),
              "%s: exit %d, %d of %d written: %s" % (profile, r.returncode, len(outs),
                                                     len(inputs), r.stderr[-300:]))
    return outs, r.stderr


def charsets(path):
    cs = pydicom.dcmread(path, stop_before_pixels=True).get("SpecificCharacterSet", "ISO_IR 6")
    return [cs] if isinstance(cs, str) else list(cs)


def scan(what, blobs, idents, excused=()):
    """idents: [(input path, [strings])]. No byte form of any string in any blob."""
    found = set()
    for path, strings in idents:
        cs = charsets(path) if path.endswith(".dcm") and "raw" not in path else ["ISO_IR 100"]
        for s in strings:
            if s in excused:
                continue
            for b in hostile.encodings(s, cs):
                if any(b in blob for blob in blobs):
                    found.add(s)
    # the value is named: these are made-up test identifiers, not patient data
    lib.check(not found, "%s: identifying values survive: %s" % (what, sorted(found)))


def mapper(key):
    secret = open(key, "rb").read()

    def mapped(uid):
        h = hmac.new(secret, b"mitral-deid-v1\x00uid\x00" + uid.encode(), hashlib.sha256)
        return "2.25.%d" % int.from_bytes(h.digest()[:16], "big")
    return mapped


def deep_ref(ds):
    return (ds.SharedFunctionalGroupsSequence[0].FrameContentSequence[0]
            .DerivationImageSequence[0].ReferencedImageSequence[0].ReferencedSOPInstanceUID)


def days(da):
    import datetime
    return datetime.date(int(da[:4]), int(da[4:6]), int(da[6:8])).toordinal()


def check_structure(name, options, outs, sops, mapped, shift_range):
    """outs: every output; the study's four are checked (the raw ones have no references)."""
    retain_uids = "retain-uids" in options
    m = (lambda u: u) if retain_uids else mapped
    by_sop = {m(s): k for k, s in enumerate(sops)}
    for o in outs:
        r = subprocess.run(["dcmdump", "-q", o], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
        lib.check(r.returncode == 0 and not r.stderr, "%s: dcmdump: %r" % (name, r.stderr[:200]))
    dss = [pydicom.dcmread(o) for o in outs]
    outs = [o for o, d in zip(outs, dss) if d.SOPInstanceUID in by_sop]
    dss = [d for d in dss if d.SOPInstanceUID in by_sop]
    lib.check(len(dss) == len(sops), "%s: the study's outputs found by their UIDs" % name)
    for o, ds in zip(outs, dss):
        fm = ds.file_meta
        lib.check(fm.MediaStorageSOPInstanceUID == ds.SOPInstanceUID,
                  "%s: File Meta SOP Instance UID is the data set's" % name)
        for t in (0x00020016, 0x00020017, 0x00020100, 0x00020102):
            lib.check(t not in fm, "%s: File Meta (%08X) not carried over" % (name, t))
        k = by_sop.get(ds.SOPInstanceUID)
        lib.check(k is not None, "%s: SOP Instance UID is the input's, mapped" % name)
        if k is not None:
            lib.check(deep_ref(ds) == m(sops[k - 1]),
                      "%s: Referenced SOP Instance UID five levels down points at the "
                      "referenced instance's new UID" % name)
        lib.check(ds.PatientIdentityRemoved == "YES", "%s: Patient Identity Removed" % name)
        codes = [c.CodeValue for c in ds.DeidentificationMethodCodeSequence]
        want = ["113100"] + [OPTIONS[o] for o in OPTIONS if o in options]
        lib.check(sorted(codes) == sorted(want), "%s: method codes %s, want %s"
                  % (name, codes, want))
        ltim = ("MODIFIED" if "retain-long-modified-dates" in options else
                "UNMODIFIED" if "retain-long-full-dates" in options else "REMOVED")
        lib.check(ds.LongitudinalTemporalInformationModified == ltim,
                  "%s: Longitudinal Temporal Information Modified %s" % (name, ltim))
        priv = [e.tag for e in ds.iterall() if e.tag.is_private]
        if "retain-safe-private" not in options:
            lib.check(not priv, "%s: private attributes left: %s" % (name, priv))
        groups = {e.tag.group for e in ds if 0x5000 <= e.tag.group <= 0x501E or
                  0x6000 <= e.tag.group <= 0x601E}
        if "clean-graphics" not in options:
            lib.check(not groups, "%s: curve/overlay groups left: %s" % (name, groups))
    lib.check(len({str(d.PatientID) for d in dss}) == 1,
              "%s: one Patient ID pseudonym for the patient's four instances" % name)
    lib.check(len({d.FrameOfReferenceUID for d in dss}) == 1, "%s: one Frame of Reference" % name)
    if "retain-long-modified-dates" in options:
        shifts = {days(str(d.StudyDate)) - days("20240305") for d in dss}
        shifts |= {days(str(d.SeriesDate)) - days("20240305") for d in dss}
        lib.check(len(shifts) == 1, "%s: one shift for the patient: %s" % (name, shifts))
        s = shifts.pop()
        lib.check(shift_range[0] <= s <= shift_range[1] and s != 0,
                  "%s: shift %d days inside %s" % (name, s, shift_range))
    return dss


def main():
    work = lib.tmpdir("mt-deid-hostile-")
    gen = os.path.join(work, "in")
    os.mkdir(gen)
    paths, idents, sops = hostile.make_study(gen)
    raw = [os.path.join(gen, "raw_%d.dcm" % k) for k in range(2)]
    raw_sops = ["1.2.3.999.10", "1.2.3.999.11"]
    for k, p in enumerate(raw):
        with open(p, "wb") as f:
            f.write(hostile.raw_instance(raw_sops[k], raw_sops[1 - k]))
    inputs = paths + raw
    all_idents = [(p, idents[p]) for p in paths] + [(p, hostile.RAW_IDENTS) for p in raw]
    key = lib.deid_key_file(work)
    mapped = mapper(key)

    profiles = {"basic": ("basic", []), "cmr-registry": ("cmr-registry", CMR_OPTIONS)}
    for o in OPTIONS:
        f = os.path.join(work, o + ".yaml")
        with open(f, "w") as fh:
            fh.write("name: only-%s\nbase: basic\noptions: [%s]\n" % (o, o))
        profiles[o] = (f, [o])
    every = [o for o in OPTIONS if o not in ("retain-long-full-dates", "retain-uids")]
    f = os.path.join(work, "every.yaml")
    with open(f, "w") as fh:
        fh.write("name: every\nbase: basic\noptions: [%s]\n" % ", ".join(every))
    profiles["every"] = (f, every)

    cmr_outs = None
    for name, (prof, options) in profiles.items():
        outs, log = deid(prof, key, inputs, os.path.join(work, "out-" + name))
        blobs = [open(o, "rb").read() for o in outs] + [log]
        excused = INSTITUTION if "retain-institution-identity" in options else ()
        if "retain-uids" in options:
            excused = set(excused) | {"1.2.3.999."}
        scan("deid " + name, blobs, all_idents, excused)
        rng = (-1095, -365) if name == "cmr-registry" else (-36500, 36500)
        dss = check_structure(name, options, outs, sops, mapped, rng)
        if name == "cmr-registry":
            cmr_outs = outs
            lib.check({str(d.PatientName) for d in dss} == {str(d.PatientID) for d in dss},
                      "cmr-registry: Patient's Name is the pseudonym")

    # determinism and key dependence
    again, _ = deid("cmr-registry", key, inputs, os.path.join(work, "again"))
    lib.check([open(a, "rb").read() for a in again] == [open(a, "rb").read() for a in cmr_outs],
              "same key, same inputs: the same bytes")
    key2 = os.path.join(work, "key2")
    with open(key2, "wb") as fh:
        fh.write(os.urandom(32))
    os.chmod(key2, 0o600)
    other, _ = deid("cmr-registry", key2, inputs, os.path.join(work, "other"))
    a = {str(pydicom.dcmread(o).PatientID) for o in cmr_outs}
    b = {str(pydicom.dcmread(o).PatientID) for o in other}
    lib.check(not (a & b), "another key: other pseudonyms")
    ua = {os.path.basename(o) for o in cmr_outs}
    ub = {os.path.basename(o) for o in other}
    lib.check(not (ua & ub), "another key: other UIDs")

    # the node: a routing rule names the profile, the node-wide profile is none
    rules = os.path.join(work, "rules.yaml")
    with open(rules, "w") as fh:
        fh.write("rules:\n  - name: registry\n    match: {Modality: MR}\n"
                 "    deid: cmr-registry\n")
    node = lib.Node("hostile", conf={"routing.rules": rules},
                    yaml_extra="deid:\n  profile: none\n  key_file: %s\n" % key)
    node.start()
    r = lib.storescu(node, inputs)
    lib.check(r.returncode == 0, "storescu of the hostile study: %s" % r.stderr[-300:])
    burned = os.path.join(work, "burned.dcm")
    d = pydicom.dcmread(paths[0])
    d.BurnedInAnnotation = " YES"
    d.SOPInstanceUID = d.file_meta.MediaStorageSOPInstanceUID = "1.2.3.999.77"
    d.save_as(burned)
    r = lib.storescu(node, [burned])
    node.stop()
    lib.check("status=0x0110 comment=refused: Burned In Annotation is YES" in node.all_logs(),
              "Burned In Annotation ' YES' refused with 0110")
    stored = node.stored_paths()
    lib.check(len(stored) == len(inputs), "%d of %d stored (the burned-in one not)"
              % (len(stored), len(inputs)))
    # (storescu re-encodes the raw inputs' UN sequences: only the study compares byte for byte)
    cli = {os.path.basename(o): o for o in cmr_outs}
    by_sop = {lib.read_meta(s)["sop_instance_uid"]: s for s in stored}
    for uid in sops:
        s = by_sop.get(mapped(uid))
        twin = cli.get(mapped(uid) + ".dcm")
        lib.check(s is not None and twin is not None and
                  lib.dataset_bytes(s) == lib.dataset_bytes(twin),
                  "node and CLI with the same key: the same data set bytes (%s)" % s)
    blobs = [open(s, "rb").read() for s in stored]
    blobs += [open(p, "rb").read() for p in glob.glob(node.index + "*")]
    blobs += [node.all_logs().encode("utf-8", "replace")]
    scan("node (files, index, log)", blobs, all_idents)
    lib.check(not any(b"1.2.3.999.77" in b for b in blobs), "the burned-in instance left no trace")


lib.run_guarded(main)
