#!/usr/bin/python3
"""t_web_stow_commit.py - a STOW-RS instance reported stored is stored: every part of a
request is committed, durable, indexed and retrievable, whichever way it came (application/
dicom parts, metadata + bulk data instances, through the admin base URL and through a project
base URL, whose parts wait for a scope check on a worker before their commit).

Regression test of the part lifetime in node/http/stow.c: a part hands its ingest job over at
commit and is freed at once (its completion callback gets a ticket, not the part). A part that
kept its job pointer after commit would cancel the committed job when freed, and the
instances of this test would be answered as stored yet be missing from the index and the
store, so each instance is checked three ways: the response, the index row with its file,
and a WADO-RS retrieve byte-identical to the file."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_mr  # noqa: E402
import lib  # noqa: E402
import stowjson  # noqa: E402
import web  # noqa: E402

try:
    import pydicom
except ImportError:
    lib.skip("pydicom not installed")

ACC = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}


def stored_ok(node, base, hdrs, ds, what):
    f = web.stored_file(node, ds.SOPInstanceUID)
    if not lib.check(f and os.path.exists(f), "%s: indexed with its file" % what):
        return
    st, h, b = web.request(node, "GET", "%s/studies/%s/series/%s/instances/%s" % (
        base, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID), dict(hdrs, **ACC))
    parts = web.multipart_decode(h.get("content-type", ""), b) if st == 200 else []
    lib.check(len(parts) == 1 and parts[0][1] == open(f, "rb").read(),
              "%s: retrieved byte-identical to the stored file (%s)" % (what, st))


def referenced(r):
    return [i["00081155"]["Value"][0] for i in (r or {}).get("00081199", {}).get("Value", [])]


def one_round(node, base, hdrs, files, tag):
    dss = [pydicom.dcmread(f) for f in files]
    half = len(files) // 2
    st, r = web.stow(node, base + "/studies", files[:half], hdrs)
    lib.check(st == 200 and sorted(referenced(r)) == sorted(d.SOPInstanceUID for d in dss[:half]),
              "%s: application/dicom parts all reported stored (%s)" % (tag, st))
    metas, bulk = [], {}
    for i, d in enumerate(dss[half:]):
        j, b = stowjson.to_json(d, base="http://client.example/%s/%d/" % (tag, i), threshold=1024)
        metas.append(j)
        bulk.update(b)
    st, r, raw = stowjson.post(node, base + "/studies", metas, bulk, headers=hdrs)
    lib.check(st == 200 and sorted(referenced(r)) == sorted(d.SOPInstanceUID for d in dss[half:]),
              "%s: metadata + bulk instances all reported stored (%s %r)" % (tag, st, raw[:200]))
    for i, d in enumerate(dss):
        stored_ok(node, base, hdrs, d, "%s instance %d" % (tag, i))


def main():
    tmp = lib.tmpdir("mt-stow-commit-")
    a = gen_mr.generate(os.path.join(tmp, "a"), count=12, series=2, phases=3, seed="stow-commit-a")
    p = gen_mr.generate(os.path.join(tmp, "p"), count=12, series=2, phases=3, seed="stow-commit-p")
    node = web.WebNode(name="stowcommit")
    node.start()
    try:
        one_round(node, "/dicomweb", web.ADMIN, a, "admin")
        one_round(node, "/projects/p1/dicomweb", web.ALICE, p, "project")
        n = len(node.index_instances())
        lib.check(n == len(a) + len(p), "index holds every instance (%d of %d)" % (n, len(a) + len(p)))
        lib.check(not node.tmp_files(), "no temp files left: %r" % node.tmp_files())
    finally:
        rc = node.stop()
    lib.check(rc == 0, "clean stop (rc %s)" % rc)


lib.run_guarded(main)
