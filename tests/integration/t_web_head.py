#!/usr/bin/python3
"""t_web_head: HEAD on a DICOMweb resource answers the header fields GET would (RFC 9110
§9.3.2): the same status and Content-Type, and the same Content-Length when GET has one or
Transfer-Encoding: chunked when GET streams; never a body. HEAD on a WADO-RS study retrieval had
neither (GET sends a Content-Length over plain HTTP), so a client could not tell the size. The
connection stays usable after each HEAD (keep-alive).
"""
import http.client
import os

import lib
import web

MR = os.path.join(lib.TESTDATA, "pydicom/test_files/MR_small.dcm")


def exchange(c, method, path):
    c.request(method, path, headers=web.ADMIN)
    r = c.getresponse()
    body = r.read()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def main():
    if not os.path.exists(MR):
        lib.skip("test data missing: " + MR)
    import pydicom
    ds = pydicom.dcmread(MR)
    st_uid, se_uid, sop = ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
    node = web.WebNode(name="webhead")
    node.start()
    st, r = web.stow(node, "/dicomweb/studies", [MR], web.ADMIN)
    lib.check(st == 200, "stow: %s" % st)
    inst = "/dicomweb/studies/%s/series/%s/instances/%s" % (st_uid, se_uid, sop)
    paths = ["/dicomweb/studies/%s" % st_uid, "/dicomweb/studies/%s/series/%s" % (st_uid, se_uid),
             inst, inst + "/metadata", inst + "/frames/1", inst + "/rendered",
             "/dicomweb/studies?StudyInstanceUID=%s" % st_uid,
             "/dicomweb/wado?requestType=WADO&studyUID=%s&seriesUID=%s&objectUID=%s"
             % (st_uid, se_uid, sop)]
    c = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=60)
    for p in paths:
        gs, gh, gb = exchange(c, "GET", p)
        hs, hh, hb = exchange(c, "HEAD", p)
        what = "...%s" % p[-70:]
        lib.check(gs == 200 and hs == gs, "%s: HEAD %s, GET %s" % (what, hs, gs))
        ct = lambda h: h.get("content-type", "").split("boundary=")[0]
        lib.check(ct(hh) == ct(gh), "%s: same Content-Type (%r %r)" % (what, ct(hh), ct(gh)))
        if "content-length" in gh:
            lib.check(hh.get("content-length") == gh["content-length"] == str(len(gb)),
                      "%s: HEAD Content-Length %s = GET's %s" % (what, hh.get("content-length"),
                                                                gh["content-length"]))
        else:
            lib.check(gh.get("transfer-encoding") == "chunked" and
                      hh.get("transfer-encoding") == "chunked" and "content-length" not in hh,
                      "%s: chunked, both (%s / %s)" % (what, gh.get("transfer-encoding"),
                                                      hh.get("transfer-encoding")))
        lib.check(hb == b"", "%s: HEAD has no body" % what)
    c.close()
    rc = node.stop()
    lib.check(rc == 0, "clean stop (rc %s)" % rc)


lib.run_guarded(main)
