#!/usr/bin/python3
"""t_web_stow_edges: STOW-RS responses are valid DICOM JSON (PS3.18 Annex F) in the corner
cases: a part that is not DICOM has no SOP Class/Instance UID to report, so its
FailedSOPSequence item has ReferencedSOPClassUID / ReferencedSOPInstanceUID without a Value
(F.2.5: an empty value has no "Value"; it was ["" ], which no UI value may be) and is read back
by pydicom's JSON reader; a body with no part at all answers 400 with a message.
"""
import json
import os

import lib
import web

CT = os.path.join(lib.TESTDATA, "pydicom/test_files/CT_small.dcm")
BOUNDARY = "mt-test-boundary-42"
CTYPE = 'multipart/related; type="application/dicom"; boundary=' + BOUNDARY


def post(node, body):
    h = dict(web.ADMIN)
    h["Content-Type"] = CTYPE
    h["Accept"] = "application/dicom+json"
    return web.request(node, "POST", "/dicomweb/studies", h, body)


def main():
    if not os.path.exists(CT):
        lib.skip("test data missing: " + CT)
    import pydicom
    node = web.WebNode(name="stowedges")
    node.start()

    body, _ = web.multipart_encode([open(CT, "rb").read(), b"this is not a DICOM file"],
                                   boundary=BOUNDARY)
    st, h, b = post(node, body)
    lib.check(st == 202, "one good part, one not DICOM: 202 (%s)" % st)
    r = json.loads(b) if st in (200, 202, 409) else {}
    failed = r.get("00081198", {}).get("Value", [])
    lib.check(len(failed) == 1, "one failed item (%r)" % r)
    if failed:
        item = failed[0]
        lib.check(item.get("00081197", {}).get("Value") == [0xC000], "FailureReason C000 (%r)" % item)
        for tag in ("00081150", "00081155"):
            el = item.get(tag, {})
            lib.check(el.get("vr") == "UI" and "Value" not in el,
                      "%s of a part with no UIDs: present without a Value (%r)" % (tag, el))
    try:
        pydicom.Dataset.from_json(b.decode())
        ok = True
    except Exception as e:  # noqa: BLE001 - any reader failure is the defect
        ok = False
        lib.log("pydicom from_json: %r" % e)
    lib.check(ok, "the response reads as DICOM JSON (pydicom)")

    # only a not-DICOM part: 409, valid JSON too
    body, _ = web.multipart_encode([b"DICM" * 40], boundary=BOUNDARY)
    st, h, b = post(node, body)
    lib.check(st == 409, "a not-DICOM part alone: 409 (%s)" % st)
    el = json.loads(b)["00081198"]["Value"][0]["00081155"] if st == 409 else {}
    lib.check("Value" not in el, "a not-DICOM part alone: no empty UID value (%r)" % el)

    # no part at all: 400 with a message, not an empty object
    st, h, b = post(node, b"--" + BOUNDARY.encode() + b"--\r\n")
    lib.check(st == 400, "no parts: 400 (%s)" % st)
    lib.check(h.get("content-type", "").startswith("text/plain") and b"no part" in b,
              "no parts: a text message (%s %r)" % (h.get("content-type"), b))

    rc = node.stop()
    lib.check(rc == 0, "clean stop (rc %s)" % rc)


lib.run_guarded(main)
