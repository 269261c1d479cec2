#!/usr/bin/python3
"""t_web_stow_json_deid: STOW-RS metadata + bulk data goes through de-identification exactly
like an application/dicom part. A node with deid.profile cmr-registry receives the generated
CMR study of tests/deid/check_leaks.py (identifiers everywhere, also in sequences and private
tags) as DICOM JSON with bulk data parts. Checks: every instance stored under a mapped (2.25)
SOP Instance UID; PatientIdentityRemoved YES in the retrieved metadata; no identifying value
of the inputs (as the profile removes or replaces it) is in the storage, the index or the
log."""
import os
import sys

import lib
import stowjson
import web

sys.path.insert(0, os.path.join(lib.SRC, "tests", "deid"))


def main():
    try:
        import pydicom
        import check_leaks
    except ImportError:
        lib.skip("pydicom / tests/deid missing")
    work = lib.tmpdir("mt-stowj-deid-")
    key = lib.deid_key_file(work)
    gen = os.path.join(work, "gen")
    os.mkdir(gen)
    inputs = check_leaks.make_cmr_study(gen)
    metas, bulk = [], {}
    for i, p in enumerate(inputs):
        j, b = stowjson.to_json(pydicom.dcmread(p), base="http://client.example/%d/" % i,
                                threshold=16)
        metas.append(j)
        bulk.update(b)
    node = web.WebNode(name="stowjdeid", extra={"deid.profile": "cmr-registry",
                                                "deid.key_file": key})
    node.start()
    try:
        st, r, raw = stowjson.post(node, "/projects/p1/dicomweb/studies", metas, bulk,
                                   headers=web.ALICE)
        refs = (r or {}).get("00081199", {}).get("Value", [])
        lib.check(st == 200 and len(refs) == len(inputs),
                  "STOW JSON: %d of %d stored (%s %r)" % (len(refs), len(inputs), st, raw[:200]))
        orig = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in inputs}
        got = [x["00081155"]["Value"][0] for x in refs]
        lib.check(got and all(u.startswith("2.25.") and u not in orig for u in got),
                  "response names the mapped SOP Instance UIDs")
        if refs:
            path = refs[0]["00081190"]["Value"][0].split("://", 1)[1].split("/", 1)[1]
            st, meta = web.get_json(node, "/" + path + "/metadata", web.ALICE)
            lib.check(st == 200 and meta and meta[0].get("00120062", {}).get("Value") == ["YES"],
                      "metadata: PatientIdentityRemoved YES")
    finally:
        rc = node.stop()
    lib.check(rc == 0, "clean stop (rc %s)" % rc)
    blob = b""
    for a, _, fs in os.walk(node.data):
        for f in fs:
            blob += open(os.path.join(a, f), "rb").read()
    check_leaks.KEPT = check_leaks.kept_tags("cmr-registry")
    leaks, n = set(), 0
    for i, p in enumerate(inputs):
        found, priv, shared = [], [], ([], set())
        check_leaks.collect(pydicom.dcmread(p, force=True), found, priv, shared)
        for kw, s in found + priv:
            for v in check_leaks.variants(kw, s, ["ISO_IR 192"]):
                if v.upper() in check_leaks.OURS:
                    continue
                n += 1
                if v in blob:
                    leaks.add((i, kw))
    for i, kw in sorted(leaks):
        lib.log("LEAK: input #%d: a value of %s is in the storage, the index or the log" % (i, kw))
    lib.check(n > 20 and not leaks, "no identifying value stored or logged (%d value forms)" % n)


lib.run_guarded(main)
