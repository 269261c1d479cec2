#!/usr/bin/python3
"""t_web_stow_accept: STOW-RS answers DICOM JSON only, so an Accept that excludes it
(application/dicom+xml) is 406 before anything is stored (it stored the instance and answered
JSON anyway); Accept absent, */*, application/dicom+json or a list that includes it stores as
before, and the response is application/dicom+json.
"""
import os

import lib
import web

CT = os.path.join(lib.TESTDATA, "pydicom/test_files/CT_small.dcm")
MR = os.path.join(lib.TESTDATA, "pydicom/test_files/MR_small.dcm")


def post(node, path, accept):
    body, ct = web.multipart_encode([open(path, "rb").read()])
    h = dict(web.ADMIN)
    h["Content-Type"] = ct
    if accept is not None:
        h["Accept"] = accept
    return web.request(node, "POST", "/dicomweb/studies", h, body)


def n_instances(node):
    st, h, b = web.request(node, "GET", "/dicomweb/instances", web.ADMIN)
    return 0 if st == 204 else b.count(b'"00080018"')


def main():
    for f in (CT, MR):
        if not os.path.exists(f):
            lib.skip("test data missing: " + f)
    node = web.WebNode(name="stowaccept")
    node.start()
    for accept in ("application/dicom+xml", "multipart/related; type=\"application/dicom+xml\"",
                   "application/dicom+json;q=0", "text/html"):
        st, h, b = post(node, CT, accept)
        lib.check(st == 406 and b"nothing was stored" in b, "Accept %s: 406 (%s %r)"
                  % (accept, st, b[:80]))
        lib.check(n_instances(node) == 0, "Accept %s: nothing stored" % accept)
    n = 0
    for accept, f in ((None, CT), ("*/*", MR), ("application/dicom+xml, application/dicom+json;q=0.5", CT),
                      ("application/json", MR)):
        st, h, b = post(node, f, accept)
        lib.check(st == 200 and h.get("content-type", "").startswith("application/dicom+json"),
                  "Accept %s: 200 dicom+json (%s %s)" % (accept, st, h.get("content-type")))
    lib.check(n_instances(node) == 2, "two instances stored (%d)" % n_instances(node))
    rc = node.stop()
    lib.check(rc == 0, "clean stop (rc %s)" % rc)


lib.run_guarded(main)
