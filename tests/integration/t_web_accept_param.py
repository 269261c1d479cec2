#!/usr/bin/python3
"""t_web_accept_param: the accept query parameter (PS3.18 §8.3.3.1) stands in for the Accept
header on QIDO-RS and WADO-RS (QIDO answered 400 "unknown query parameter accept"); when both
are given the parameter wins. An unencoded '+' ("application/dicom+json", decoded as a space)
is read as '+' between two media-type characters. What cannot be produced is 406 as with the
header.
"""
import os
import urllib.parse

import lib
import web

MR = os.path.join(lib.TESTDATA, "pydicom/test_files/MR_small.dcm")


def main():
    if not os.path.exists(MR):
        lib.skip("test data missing: " + MR)
    import pydicom
    ds = pydicom.dcmread(MR)
    st_uid, se_uid, sop = ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
    node = web.WebNode(name="acceptparam")
    node.start()
    st, r = web.stow(node, "/dicomweb/studies", [MR], web.ADMIN)
    lib.check(st == 200, "stow: %s" % st)
    inst = "/dicomweb/studies/%s/series/%s/instances/%s" % (st_uid, se_uid, sop)
    enc = urllib.parse.quote

    def get(path, accept_param, accept_header=None):
        h = dict(web.ADMIN)
        if accept_header:
            h["Accept"] = accept_header
        sep = "&" if "?" in path else "?"
        return web.request(node, "GET", path + sep + "accept=" + accept_param, h)

    cases = [  # path, accept= value (already in the URL's encoding), header, status, type prefix
        ("/dicomweb/studies", enc("application/dicom+json"), None, 200, "application/dicom+json"),
        ("/dicomweb/studies", "application/dicom+json", None, 200, "application/dicom+json"),
        ("/dicomweb/studies?StudyInstanceUID=" + st_uid, enc("application/json"), None, 200,
         "application/dicom+json"),
        ("/dicomweb/studies", enc("application/dicom+xml"), None, 406, ""),
        ("/dicomweb/studies", "", None, 200, "application/dicom+json"),  # empty: */*
        ("/dicomweb/studies", enc("application/dicom+xml"), "application/dicom+json", 406, ""),
        ("/dicomweb/studies", enc("application/dicom+json"), "text/html", 200,
         "application/dicom+json"),
        (inst + "/rendered", enc("image/png"), "image/jpeg", 200, "image/png"),
        (inst + "/rendered", enc("image/jpeg"), None, 200, "image/jpeg"),
        (inst + "/metadata", enc("application/dicom+json"), "image/png", 200,
         "application/dicom+json"),
        (inst, enc('multipart/related; type="application/dicom"; transfer-syntax=*'), "image/png",
         200, "multipart/related"),
        (inst, enc("image/png"), None, 406, ""),
        (inst + "/frames/1", enc("multipart/related; type=application/octet-stream"), None,
         200, "multipart/related"),
    ]
    for path, a, hdr, want, ctype in cases:
        st, h, b = get(path, a, hdr)
        lib.check(st == want and h.get("content-type", "").startswith(ctype),
                  "...%s accept=%s (header %s): %s %s (%s %s %r)" %
                  (path[-30:], a, hdr, want, ctype, st, h.get("content-type"), b[:60]))
    rc = node.stop()
    lib.check(rc == 0, "clean stop (rc %s)" % rc)


lib.run_guarded(main)
