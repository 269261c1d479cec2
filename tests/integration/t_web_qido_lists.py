#!/usr/bin/python3
"""t_web_qido_lists: QIDO-RS value lists and literal values (PS3.18 §8.3.4.1, PS3.4 C.2.2.2).
ModalitiesInStudy=MR,CT is a list like MR\\CT (it answered 204: the comma was kept as part of
one value); a comma in another attribute stays a character of the value. A UID with '*' is a
literal single value (no wild card matching on UI, C.2.2.2.4): no match, in QIDO-RS and C-FIND.
A TM single value matches only the same time (C.2.2.2.1); the range 0727-0727 matches 072730.
"""
import os

import lib
import web

CT = os.path.join(lib.TESTDATA, "pydicom/test_files/CT_small.dcm")  # StudyTime 072730, CT


def findscu(node, keys):
    cmd = ["findscu", "-S", "-aec", node.aet, "127.0.0.1", str(node.port)]
    for k in keys:
        cmd += ["-k", k]
    r = lib.run(cmd, timeout=120)
    out = (r.stdout or "") + (r.stderr or "")
    return r.returncode, out.count("Find Response") - out.count("Final Find Response")


def main():
    if not os.path.exists(CT):
        lib.skip("test data missing: " + CT)
    node = web.WebNode(name="qidolists")
    node.start()
    st, r = web.stow(node, "/dicomweb/studies", [CT], web.ADMIN)
    lib.check(st == 200, "stow: %s" % st)

    def q(query):
        st, h, b = web.request(node, "GET", "/dicomweb/studies?" + query, web.ADMIN)
        return st

    for query in ("ModalitiesInStudy=CT", "ModalitiesInStudy=MR%5CCT", "ModalitiesInStudy=MR,CT",
                  "ModalitiesInStudy=CT,MR", "00080061=MR,CT", "StudyTime=072730",
                  "StudyTime=0727-0727"):
        lib.check(q(query) == 200, "%s: matches" % query)
    for query in ("ModalitiesInStudy=MR,PT", "StudyInstanceUID=1.3.*", "StudyInstanceUID=1.?.6*",
                  "StudyTime=0727", "StudyDescription=a,b"):
        lib.check(q(query) == 204, "%s: no match, 204 (%s)" % (query, q(query)))
    st, h, b = web.request(node, "GET", "/dicomweb/series?SeriesInstanceUID=1.*", web.ADMIN)
    lib.check(st == 204, "series SeriesInstanceUID=1.*: literal, 204 (%s)" % st)

    # C-FIND: the same values, the same answers
    for keys, n in ((["QueryRetrieveLevel=STUDY", "StudyInstanceUID=1.3.*"], 0),
                    (["QueryRetrieveLevel=STUDY", "StudyInstanceUID", "StudyTime=0727"], 0),
                    (["QueryRetrieveLevel=STUDY", "StudyInstanceUID", "StudyTime=0727-0727"], 1),
                    (["QueryRetrieveLevel=STUDY", "StudyInstanceUID",
                      "ModalitiesInStudy=MR\\CT"], 1)):
        rc, got = findscu(node, keys)
        lib.check(rc == 0 and got == n, "C-FIND %s: %d matches (%s, rc %s)" % (keys, n, got, rc))

    rc = node.stop()
    lib.check(rc == 0, "clean stop (rc %s)" % rc)


lib.run_guarded(main)
