#!/usr/bin/python3
"""t_web_deid: STOW-RS goes through de-identification exactly like C-STORE.

A node with deid.profile cmr-registry receives a generated CMR study full of identifiers
(tests/deid/check_leaks.py) and real files by STOW-RS into project p1. Checks: every part is
stored; the response names the mapped (2.25) SOP Instance UIDs; no identifying value of any
input is in the storage, the index or the log; QIDO-RS and WADO-RS metadata answer the
de-identified values; the retrieved instance is the stored (de-identified) file."""
import json
import os
import sys

import lib
import web

sys.path.insert(0, os.path.join(lib.SRC, "tests", "deid"))

REAL = ["pydicom/test_files/MR_small.dcm", "pydicom/test_files/CT_small.dcm"]


def files_under(d):
    return sorted(os.path.join(a, f) for a, _, fs in os.walk(d) for f in fs)


def main():
    try:
        import pydicom
        import check_leaks
    except ImportError:
        lib.skip("pydicom / tests/deid missing")
    work = lib.tmpdir("mt-web-deid-")
    key = os.path.join(work, "key")
    with open(key, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(key, 0o600)
    gen = os.path.join(work, "gen")
    os.mkdir(gen)
    inputs = check_leaks.make_cmr_study(gen)
    inputs += [os.path.join(lib.TESTDATA, r) for r in REAL if os.path.exists(os.path.join(lib.TESTDATA, r))]
    node = web.WebNode(name="webdeid", extra={"deid.profile": "cmr-registry", "deid.key_file": key})
    node.start()
    st, r = web.stow(node, "/projects/p1/dicomweb/studies", inputs, web.ALICE)
    refs = (r or {}).get("00081199", {}).get("Value", [])
    lib.check(st == 200 and len(refs) == len(inputs), "STOW: %d of %d stored (%s)" % (len(refs), len(inputs), st))
    orig_uids = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in inputs}
    got_uids = [x["00081155"]["Value"][0] for x in refs]
    lib.check(all(u.startswith("2.25.") and u not in orig_uids for u in got_uids),
              "response names the mapped SOP Instance UIDs")
    # QIDO / metadata answer de-identified values
    st, studies = web.get_json(node, "/projects/p1/dicomweb/studies?includefield=all", web.ALICE)
    lib.check(st == 200 and studies, "QIDO after de-identified STOW (%s)" % st)
    for s in studies or []:
        lib.check(s["0020000D"]["Value"][0].startswith("2.25."), "study UID is mapped")
    if refs:
        url = refs[0]["00081190"]["Value"][0]
        path = url.split("://", 1)[1].split("/", 1)[1]
        st, h, b = web.request(node, "GET", "/" + path,
                               dict(web.ALICE, Accept='multipart/related; type="application/dicom"; transfer-syntax=*'))
        parts = web.multipart_decode(h.get("content-type", ""), b) if st == 200 else []
        stored = web.stored_file(node, got_uids[0])
        lib.check(parts and stored and parts[0][1] == open(stored, "rb").read(),
                  "retrieved instance = stored de-identified file")
        st, meta = web.get_json(node, "/" + path + "/metadata", web.ALICE)
        lib.check(st == 200 and meta and meta[0].get("00120062", {}).get("Value") == ["YES"],
                  "metadata: PatientIdentityRemoved YES")
    rc = node.stop()
    lib.check(rc == 0, "clean stop (rc %s)" % rc)
    # leak scan: storage, index, log
    blob = b"".join(open(f, "rb").read() for f in files_under(node.data) if not f.endswith(".log"))
    for lp in node.logs:
        blob += open(lp, "rb").read()
    check_leaks.KEPT = check_leaks.kept_tags("cmr-registry")
    leaks, n_forms = [], 0
    for i, p in enumerate(inputs):
        src = pydicom.dcmread(p, force=True)
        found, priv, shared = [], [], ([], set())
        check_leaks.collect(src, found, priv, shared)
        cs = src.get("SpecificCharacterSet", "ISO_IR 6")
        cs = [cs] if isinstance(cs, str) else (list(cs) or ["ISO_IR 6"])
        generated = p.startswith(gen)
        excused = b"\n".join(shared[0] + sorted(shared[1])) if not generated else b""
        for kw, s in found + (priv if generated else []):
            for v in check_leaks.variants(kw, s, cs):
                if v.upper() in excused or v.upper() in check_leaks.OURS:
                    continue
                n_forms += 1
                if v in blob:
                    leaks.append((i, kw))
    for i, kw in sorted(set(leaks)):
        lib.log("LEAK: input #%d: a value of %s is in the storage, the index or the log" % (i, kw))
    lib.check(not leaks, "no identifying value in storage, index or log (%d value forms)" % n_forms)


lib.run_guarded(main)
