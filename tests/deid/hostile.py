#!/usr/bin/python3
"""hostile.py - de-identification fixtures built to make identifying data survive (issue 4).

Each instance hides identifiers where an engine is likely to miss them: sequences several levels
deep (kept functional groups, a sequence off the keep list, items of a private sequence),
private blocks (a known creator, an unknown creator, elements without a creator, private data
inside items), attributes outside Table E.1-1, curves (50xx) and overlays (60xx) with text,
Other Patient IDs Sequence, Request Attributes Sequence, File Meta text, non-ASCII names in
ISO 2022 / UTF-8 / Latin-1 (and the same patient's name in another encoding, other case),
person names with all five components, backslash-separated values.

make_study(outdir) writes the files and returns (paths, idents): idents maps each path to the
identifying strings (str) that must not appear in any output byte, in any encoding.
"""
import os
import struct

import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
MR = "1.2.840.10008.5.1.4.1.1.4"

# (Specific Character Set, patient name, a person named in a description, a word in lower case
# that the description repeats upper-cased)
PEOPLE = [
    ("ISO_IR 100", "Grünwälder^Jürgen^Maximilian^Dr.^Jr.", "Böttcherin^Ännchen"),
    ("ISO_IR 192", "Grünwälder^Jürgen^Maximilian^Dr.^Jr.", "Ødegårdsen^Bjørnar"),
    ("\\ISO 2022 IR 87", "Yamada^Tarou=山田^太郎=やまだ^たろう", "佐藤^花子"),
    ("ISO_IR 100\\ISO_IR 100", "Quixotezza^Dulcinea", "Sanchopanza^Rocinante"),
]


def person(name):
    return [p for p in name.replace("=", "^").split("^") if len(p) >= 2 and p != "Dr." and
            p != "Jr."]


def code_item(value, meaning):
    c = Dataset()
    c.CodeValue = value
    c.CodingSchemeDesignator = "99HOSTILE"
    c.CodeMeaning = meaning
    return c


def make_instance(path, study_uid, series_uid, frame_uid, sop, ref_sop, ts, who, k):
    cs, pname, other = who
    ids = []
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MR
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ts
    meta.SourceApplicationEntityTitle = "SRCAEHOSTILE"
    meta.SendingApplicationEntityTitle = "SENDAEHOSTILE"
    meta.PrivateInformationCreatorUID = "1.2.3.4.5"
    meta.PrivateInformation = b"METAPRIVHOSTILE1"
    ids += ["SRCAEHOSTILE", "SENDAEHOSTILE", "METAPRIVHOSTILE1"]
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = cs
    ds.SOPClassUID = MR
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = frame_uid
    ds.Modality = "MR"
    ds.PatientName = pname
    ds.PatientID = "HPID-77%04d" % 31
    ds.IssuerOfPatientID = "HOSTILEISSUER"
    ds.PatientBirthDate = "19580312"
    ds.PatientSex = "F"
    ds.PatientAge = "066Y"
    ds.StudyDate = "20240305"
    ds.SeriesDate = "20240305"
    ds.StudyTime = "083000"
    ds.AccessionNumber = "HACC990011"
    ds.StudyID = "HSTUDY4242"
    ds.OperatorsName = "Framekomment^Fridolin"
    ds.NameOfPhysiciansReadingStudy = "Kurvenreich^Kunigunde"
    ids += ["HPID-770031", "HOSTILEISSUER", "HACC990011", "HSTUDY4242"]
    ids += person(pname) + person(other)
    # backslash-separated values
    ds.OtherPatientIDs = ["HOTHER11111", "HOTHER22222"]
    ds.PerformingPhysicianName = ["Cardiodoc^Cassandra", other]
    ids += ["HOTHER11111", "HOTHER22222", "Cardiodoc", "Cassandra"]
    # Other Patient IDs Sequence, two items
    op = []
    for n in ("HOPSEQ0001", "HOPSEQ0002"):
        it = Dataset()
        it.PatientID = n
        it.IssuerOfPatientID = "HOPISSUERX"
        it.TypeOfPatientID = "TEXT"
        op.append(it)
    ds.OtherPatientIDsSequence = Sequence(op)
    ids += ["HOPSEQ0001", "HOPSEQ0002", "HOPISSUERX"]
    # Request Attributes Sequence, with a code sequence inside, a person and a private block
    req = Dataset()
    req.RequestedProcedureID = "HREQPROC55"
    req.ScheduledProcedureStepID = "HSPS667788"
    req.AccessionNumber = "HACC990011"
    req.RequestedProcedureDescription = "Stress CMR for Cardiodoc"
    req.RequestingPhysician = "Wachtelkoenig^Wilma"
    req.ReasonForTheRequestedProcedure = "chest pain, ring Frau WACHTELKOENIG 0171-5551234"
    req.ScheduledProcedureStepDescription = "CMR adenosine"
    req.RequestedProcedureCodeSequence = Sequence([code_item("HRPC01", "Wachtelkoenig protocol")])
    req.add_new(0x00330010, "LO", "HOSTILE REQ CREATOR")
    req.add_new(0x00331001, "LO", "Requestprivat Wachtelkoenig")
    ds.RequestAttributesSequence = Sequence([req])
    ids += ["HREQPROC55", "HSPS667788", "Wachtelkoenig", "Requestprivat"]
    # A description naming the patient in another case (non-ASCII letters upper-cased too)
    ds.StudyDescription = "CMR %s" % person(pname)[0].upper()
    ds.SeriesDescription = "cine %s" % person(pname)[1].lower()
    ds.ProtocolName = "sax %s" % person(pname)[0]
    # Code Sequence Macro text the keep list keeps (a local scheme's meanings)
    ds.PerformedProtocolCodeSequence = Sequence([code_item("HPPC1", "protocol for %s"
                                                           % person(pname)[0])])
    ds.add_new(0x00081032, "SQ", Sequence([code_item("HPC2", "procedure of Cardiodoc")]))
    # Enhanced-MR-like functional groups, kept by the keep list, with identifiers five deep
    deep = Dataset()
    deep.PersonName = "Tiefverschachtelt^Theodora"
    deep.InstitutionName = "Tiefklinik Hostilia"
    deep.add_new(0x00091010, "LO", "HOSTILE DEEP")
    deep.add_new(0x00091001, "LT", "tiefprivat Theodora")
    deep.add_new(0x00111001, "LT", "orphanprivat Oswin")  # no creator in this item
    lvl4 = Dataset()
    lvl4.ContentSequence = Sequence([deep])
    lvl4.ReferencedSOPClassUID = MR
    lvl4.ReferencedSOPInstanceUID = ref_sop
    lvl3 = Dataset()
    lvl3.ReferencedImageSequence = Sequence([lvl4])
    lvl3.PatientName = "Dreiebenen^Dorothea"
    lvl3.StudyDate = "20240305"
    lvl2 = Dataset()
    lvl2.DerivationImageSequence = Sequence([lvl3])
    lvl2.FrameAcquisitionDateTime = "20240305083015"
    lvl2.FrameComments = "frame by FRAMEKOMMENT fridolin"  # the OperatorsName below
    lvl1 = Dataset()
    lvl1.FrameContentSequence = Sequence([lvl2])
    lvl1.add_new(0x00210010, "LO", "HOSTILE FG")
    lvl1.add_new(0x00211001, "LO", "fgprivat Fridolin")
    ds.SharedFunctionalGroupsSequence = Sequence([lvl1])
    ids += ["Tiefverschachtelt", "Theodora", "Tiefklinik", "Hostilia", "tiefprivat",
            "orphanprivat", "Oswin", "Dreiebenen", "Dorothea", "Framekomment", "Fridolin",
            "fgprivat"]
    # A sequence off the keep list (public, not in the table) with a name inside
    off = Dataset()
    off.PatientName = "Offlist^Ottilie"
    ds.add_new(0x00400100, "SQ", Sequence([off]))  # Scheduled Procedure Step Seq.
    ids += ["Offlist", "Ottilie"]
    # A private sequence with public identifiers inside, under an unknown creator
    ps = Dataset()
    ps.PatientName = "Privatseq^Petronella"
    ps.PatientID = "HPRIVSEQ99"
    ds.add_new(0x00430010, "LO", "UNKNOWN CREATOR XYZ")
    ds.add_new(0x00431001, "SQ", Sequence([ps]))
    ds.add_new(0x00451001, "LO", "nocreator Norbert")  # element without creator
    ds.add_new(0x00470001, "LO", "lowprivate Lothar")  # (gggg,0001-000F)
    ids += ["Privatseq", "Petronella", "HPRIVSEQ99", "nocreator", "Norbert", "lowprivate",
            "Lothar"]
    # Outside the table: a public text attribute, a date, a time
    ds.add_new(0x00102297, "PN", "Responsible^Rupertina")  # Responsible Person (in table)
    ds.add_new(0x00181003, "LO", "HDEVICEID88")  # Device ID, not in the table
    ds.add_new(0x00080418, "LT", "call Ausserhalb Amadeus")  # Transaction Status Comment
    ds.add_new(0x0040A13A, "DT", "20240305091500")  # Referenced DateTime
    ids += ["Rupertina", "HDEVICEID88", "Ausserhalb", "Amadeus"]
    # Curves and overlays with text
    ds.add_new(0x50000005, "US", 1)
    ds.add_new(0x50000010, "US", 2)
    ds.add_new(0x50000020, "CS", "ECG")
    ds.add_new(0x50000022, "LO", "curve of kurvenreich KUNIGUNDE")  # NameOfPhysiciansReadingStudy
    ds.add_new(0x50002500, "LO", "label HPID-770031")
    ds.add_new(0x50003000, "OW", b"\0\1\0\2")
    ds.add_new(0x60020010, "US", 4)
    ds.add_new(0x60020011, "US", 4)
    ds.add_new(0x60020022, "LO", "overlay of Overlaydesc Olympia")
    ds.add_new(0x60020040, "CS", "G")
    ds.add_new(0x60020050, "SS", [1, 1])
    ds.add_new(0x60020100, "US", 1)
    ds.add_new(0x60020102, "US", 0)
    ds.add_new(0x60021500, "LO", "Overlaylabel Ophelia")
    ds.add_new(0x60023000, "OW", b"\0\0")
    ds.add_new(0x60024000, "LT", "Overlaycomment by Kurvenreich, see HACC990011")
    ids += ["Kurvenreich", "Kunigunde", "Overlaydesc", "Olympia", "Overlaylabel", "Ophelia",
            "5551234"]
    ds.BurnedInAnnotation = "NO"
    ds.InstanceNumber = str(k + 1)
    ds.Rows = 2
    ds.Columns = 2
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes(8)
    ds.save_as(path, write_like_original=False)
    return ids


def make_study(outdir, n=4):
    """n instances of one study, two series; instance k references instance k-1 (the first:
    the last), five levels down. Returns (paths, {path: [identifying strings]}, sops)."""
    study = generate_uid()
    series = [generate_uid(), generate_uid()]
    frame = generate_uid()
    sops = [generate_uid() for _ in range(n)]
    paths, idents = [], {}
    for k in range(n):
        p = os.path.join(outdir, "hostile_%d.dcm" % k)
        ts = ExplicitVRLittleEndian if k % 2 == 0 else ImplicitVRLittleEndian
        idents[p] = make_instance(p, study, series[k % 2], frame, sops[k], sops[k - 1], ts,
                                  PEOPLE[k % len(PEOPLE)], k)
        paths.append(p)
    return paths, idents, sops


def encodings(s, charsets):
    """Byte forms of s: raw in each charset, UTF-8, Latin-1, upper and lower case."""
    out = set()
    for form in {s, s.upper(), s.lower()}:
        for enc in ("utf-8", "latin-1", "iso2022_jp", "shift_jis", "euc_jp"):
            try:
                out.add(form.encode(enc))
            except UnicodeEncodeError:
                pass
        try:
            out.add(pydicom.charset.encode_string(form, charsets))
        except Exception:
            pass
    # an ISO 2022 encoding's escape sequences differ by context: its ideographic bytes alone
    for enc in ("iso2022_jp",):
        try:
            b = s.encode(enc)
            if b.startswith(b"\x1b$B") and b.endswith(b"\x1b(B"):
                out.add(b[3:-3])
        except UnicodeEncodeError:
            pass
    return {b for b in out if len(b) >= 4}


# ---- raw bytes pydicom would not write: UN-encoded public elements, undefined lengths, odd
# lengths, an explicit-VR file whose names sit in UN ----
def _el(g, e, vr, val):
    if isinstance(val, str):
        val = val.encode("latin-1")
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT", b"UC", b"UR"):
        ln = 0xFFFFFFFF if val is None else len(val)
        return struct.pack("<HH2sHI", g, e, vr, 0, ln) + (val or b"")
    return struct.pack("<HH2sH", g, e, vr, len(val)) + val


def _item(body, undefined=True):
    if undefined:
        return (struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + body +
                struct.pack("<HHI", 0xFFFE, 0xE00D, 0))
    return struct.pack("<HHI", 0xFFFE, 0xE000, len(body)) + body


def _seq_undefined(g, e, vr, items):
    return (struct.pack("<HH2sHI", g, e, vr, 0, 0xFFFFFFFF) + b"".join(items) +
            struct.pack("<HHI", 0xFFFE, 0xE0DD, 0))


def _implicit(g, e, val):
    if isinstance(val, str):
        val = val.encode("latin-1")
    return struct.pack("<HHI", g, e, len(val)) + val


RAW_IDENTS = ["Unbekannt", "Ulrich", "Unseqname", "Ursula", "Oddname", "ODDPID123",
              "Unfgname", "Unfgklinik", "Privsq", "19580312", "1.2.3.999."]


def raw_instance(sop, ref):
    """Explicit VR LE Part 10 bytes. sop, ref: UIDs (str)."""
    sop_b = (sop + "\0" * (len(sop) % 2)).encode()
    ref_b = (ref + "\0" * (len(ref) % 2)).encode()
    body = (_el(2, 1, b"OB", b"\0\1") + _el(2, 2, b"UI", b"1.2.840.10008.5.1.4.1.1.4\0") +
            _el(2, 3, b"UI", sop_b) + _el(2, 0x10, b"UI", b"1.2.840.10008.1.2.1\0") +
            _el(2, 0x12, b"UI", b"1.2.3.4\0"))
    out = b"\0" * 128 + b"DICM" + _el(2, 0, b"UL", struct.pack("<I", len(body))) + body
    ds = _el(8, 5, b"CS", "ISO_IR 100")
    ds += _el(8, 0x16, b"UI", b"1.2.840.10008.5.1.4.1.1.4\0")
    ds += _el(8, 0x18, b"UI", sop_b)
    ds += _el(8, 0x60, b"CS", "MR")
    ds += _el(8, 0x90, b"UN", "Unbekannt^Ulrich")  # a PN as UN: still a name
    inner = (_implicit(8, 0x1150, b"1.2.840.10008.5.1.4.1.1.4\0") + _implicit(8, 0x1155, ref_b) +
             _implicit(0x10, 0x10, "Unseqname^Ursula"))
    ds += _seq_undefined(8, 0x1140, b"UN", [_item(inner)])  # UN, undefined length (CP-246)
    ds += _el(8, 0x1030, b"LO", "CMR ULRICH")
    ds += _el(8, 0x103E, b"LO", "cine Unbekannt")
    ds += _el(0x10, 0x10, b"PN", "Oddname^Odo")  # odd length, unpadded
    ds += _el(0x10, 0x20, b"LO", "ODDPID123")  # odd length
    ds += _el(0x10, 0x30, b"DA", "19580312")
    ds += _el(0x18, 0x1030, b"LO", "sax Oddname Ursula")
    ds += _el(0x20, 0xD, b"UI", b"1.2.3.999.1\0")
    ds += _el(0x20, 0xE, b"UI", b"1.2.3.999.2\0")
    ds += _el(0x20, 0x52, b"UI", b"1.2.3.999.3\0")
    fg = _implicit(0x10, 0x10, "Unfgname^Ute") + _implicit(0x8, 0x80, "Unfgklinik")
    ds += _el(0x5200, 0x9229, b"UN", _item(fg, undefined=False))  # UN, defined length
    ds += _el(0x29, 0x10, b"LO", "SOMEVENDOR")
    ds += _seq_undefined(0x29, 0x1001, b"SQ", [_item(_el(0x10, 0x10, b"PN", "Privsq^Pia"))])
    for e, v in ((2, 1), (0x10, 2), (0x11, 2), (0x100, 16), (0x101, 12), (0x102, 11), (0x103, 0)):
        if e == 0x10:
            ds += _el(0x28, 4, b"CS", "MONOCHROME2 ")
        ds += _el(0x28, e, b"US", struct.pack("<H", v))
    ds += _el(0x7FE0, 0x10, b"OW", b"\0" * 8)
    return out + ds
