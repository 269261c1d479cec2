#!/usr/bin/python3
"""t_web_qido_dates: QIDO-RS refuses a DA or TM match value that is not a date or time (or a
range of them, PS3.4 C.2.2.2.5) with 400 and a message naming the attribute, instead of
answering 204 as if nothing matched (a client sending ISO dates, 2000-01-01, silently got
"no studies"). Well-formed values and ranges still match as before.
"""
import os

import lib
import web

CT = os.path.join(lib.TESTDATA, "pydicom/test_files/CT_small.dcm")  # StudyDate 20040119, StudyTime 072730


def main():
    if not os.path.exists(CT):
        lib.skip("test data missing: " + CT)
    node = web.WebNode(name="qidodates")
    node.start()
    st, r = web.stow(node, "/dicomweb/studies", [CT], web.ADMIN)
    lib.check(st == 200, "stow: %s" % st)

    def q(query):
        return web.request(node, "GET", "/dicomweb/studies?" + query, web.ADMIN)

    for query in ("StudyDate=20040119", "StudyDate=20040101-20040131", "StudyDate=20040101-",
                  "StudyDate=-20040119", "StudyDate=", "StudyTime=072730", "StudyTime=07-08",
                  "StudyDate=20040119&StudyTime=-0800",
                  "00080020=20040119"):
        st, h, b = q(query)
        lib.check(st == 200, "%s: matches (%s %r)" % (query, st, b[:80]))
    for query in ("StudyDate=20050101-", "StudyTime=0800-0900", "StudyDate=20001231"):
        st, h, b = q(query)
        lib.check(st == 204, "%s: no match, 204 (%s)" % (query, st))
    for query, name in (("StudyDate=bad", "StudyDate"), ("StudyDate=2004-01-19", "StudyDate"),
                        ("StudyDate=200401", "StudyDate"), ("StudyDate=20041301", "StudyDate"),
                        ("StudyDate=20040100", "StudyDate"), ("StudyDate=20040119-2004",
                                                              "StudyDate"),
                        ("StudyDate=20040119--", "StudyDate"), ("00080020=x", "00080020"),
                        ("StudyTime=7", "StudyTime"), ("StudyTime=07:27", "StudyTime"),
                        ("StudyTime=250000", "StudyTime"), ("StudyTime=0727.5", "StudyTime"),
                        ("PatientBirthDate=1970", "PatientBirthDate")):
        st, h, b = q(query)
        lib.check(st == 400 and name.encode() in b,
                  "%s: 400 naming %s (%s %r)" % (query, name, st, b[:100]))

    rc = node.stop()
    lib.check(rc == 0, "clean stop (rc %s)" % rc)


lib.run_guarded(main)
