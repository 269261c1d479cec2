#!/usr/bin/python3
"""t_web_client: a real DICOMweb client, the `dicomweb-client` package from the npm registry
(tests/web/package.json + package-lock.json; installed with `npm ci` into tests/web/node_modules
when missing), run by tests/web/client.js under Node.js against a project base URL:
STOW-RS store, QIDO-RS search for studies/series/instances, WADO-RS series metadata, instance
and frames. Checks: every instance it retrieved is byte-identical to the stored file, its
metadata equals dcm2json's for the same attributes, and its frames are the pixel data's frames.
"""
import json
import os
import shutil
import subprocess

import lib
import web

FILES = [os.path.join(lib.TESTDATA, p) for p in
         ("dicom-test-files/WG04/REF/MR1_UNC", "pydicom-data/emri_small.dcm")]
WEBDIR = os.path.join(lib.SRC, "tests", "web")


def ensure_client():
    if not shutil.which("node") or not shutil.which("npm"):
        lib.skip("node/npm not installed (scripts/install-deps installs nodejs npm)")
    if os.path.isdir(os.path.join(WEBDIR, "node_modules", "dicomweb-client")):
        return
    r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=WEBDIR, capture_output=True,
                       timeout=240)
    if r.returncode != 0:
        lib.skip("npm ci failed (registry unreachable?): " + r.stderr.decode()[-300:])


def main():
    for f in FILES:
        if not os.path.exists(f):
            lib.skip("test data missing: " + f)
    ensure_client()
    node = web.WebNode(name="client")
    node.start()
    out = lib.tmpdir("mt-web-client-")
    base = "http://127.0.0.1:%d/projects/p1/dicomweb" % node.http_port
    r = subprocess.run(["node", os.path.join(WEBDIR, "client.js"), base, web.TOKEN_ADMIN, out] + FILES,
                       capture_output=True, timeout=240)
    lib.log(r.stdout.decode() + r.stderr.decode())
    if not lib.check(r.returncode == 0, "client.js ran (rc %d)" % r.returncode):
        return
    report = json.load(open(os.path.join(out, "report.json")))
    lib.check(report["studies"] == 2, "searchForStudies found the 2 stored MR studies (%r)" % report)
    import pydicom
    want = {}
    for f in FILES:
        d = pydicom.dcmread(f)
        want[str(d.SOPInstanceUID)] = d
    lib.check(set(report["instances"]) == set(want), "every stored instance was retrieved")
    for uid, d in want.items():
        stored = web.stored_file(node, uid)
        got = open(os.path.join(out, uid + ".dcm"), "rb").read()
        lib.check(got == open(stored, "rb").read(), "%s: retrieved instance byte-identical" % uid)
        meta = json.load(open(os.path.join(out, uid + ".json")))
        web.compare_meta(meta, web.dcm2json(stored), "%s metadata" % uid)
        fs = d.Rows * d.Columns * (d.BitsAllocated // 8) * int(getattr(d, "SamplesPerPixel", 1))
        for k in report["instances"][uid]["frames"]:
            fr = open(os.path.join(out, "%s.frame%d" % (uid, k)), "rb").read()
            lib.check(fr == d.PixelData[(k - 1) * fs:k * fs], "%s: frame %d" % (uid, k))
    st, j = web.get_json(node, "/projects/p1/dicomweb/studies", web.ALICE)
    lib.check(st == 200 and len(j) == 2, "the studies the client stored joined project p1")
    rc = node.stop()
    lib.check(rc == 0, "clean stop (rc %s)" % rc)


lib.run_guarded(main)
