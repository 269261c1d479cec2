#!/usr/bin/python3
"""t_tag_retrieve: C-MOVE / C-GET of "only the series with these tags" of a study (issue 5,
docs/tagging.md, docs/conformance.md).

Two generated CMR studies are stored and tagged; then with movescu and getscu (Study Root) and
an identifier file carrying (4D49,0010) "MITRAL CMR 1" and (4D49,1010) (dcmtk's -k does not know
(4D49,1010): see tagfx.py):
  - STUDY level, StudyInstanceUID + tag P: exactly the instances of the series of that study
    whose tag matches P (single value, wildcard, '\\' list) arrive, nothing of the other study;
  - STUDY level, a UID list of both studies + a wildcard tag: the matching series of both;
  - SERIES level, a series UID list + tag: the listed series that match only;
  - view key (4D49,1011): the series of that view;
  - a tag that matches nothing: Success, no sub-operations, nothing arrives.
"""
import os
import shutil

import lib
import qrlib
import tagfx


def move(node, dest, qfile):
    cmd = ["movescu", "-v", "-S", "-aet", "MOVESCU", "-aec", node.aet, "-aem", dest,
           "127.0.0.1", str(node.port), qfile]
    r = lib.run(cmd, timeout=240)
    r.stdout = (r.stdout or "") + (r.stderr or "")
    return r


def get(node, outdir, qfile):
    cmd = ["getscu", "-v", "-S", "-aet", "GETSCU", "-aec", node.aet, "-od", outdir,
           "127.0.0.1", str(node.port), qfile]
    r = lib.run(cmd, timeout=240)
    r.stdout = (r.stdout or "") + (r.stderr or "")
    return r


def series_of(paths):
    out = {}
    for p in paths:
        m = lib.read_meta(p)
        lib.check(m is not None, "unreadable %s" % p)
        import pydicom
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        out[str(ds.SeriesInstanceUID)] = out.get(str(ds.SeriesInstanceUID), 0) + 1
    return out


def body():
    if not shutil.which("movescu") or not shutil.which("getscu") or not shutil.which("storescp"):
        lib.skip("dcmtk movescu/getscu/storescp not installed")
    if not lib.IS_MITRAL:
        lib.skip("tagging is mitral's")
    files, truth = tagfx.fixtures()
    dest = qrlib.StoreSCP("DEST", extra=["+xa"]).start()
    node = lib.Node("tagret", conf=dict(tagfx.CONF),
                    yaml_extra=qrlib.dest_yaml([("DEST", dest.port)])).start()
    try:
        rows = tagfx.store_and_wait(node, files, len(truth))
        by_series = {r["series_uid"]: r for r in rows}
        studies = sorted({r["study_uid"] for r in rows})
        s0 = studies[0]
        qdir = lib.tmpdir("mt-tagq-q-")
        qf = os.path.join(qdir, "q.dcm")

        def want_of(pattern, study_set, series_set=None, key="tag"):
            return {u: r["n"] for u, r in by_series.items()
                    if r["study_uid"] in study_set and (series_set is None or u in series_set)
                    and tagfx.matches(pattern, r[key])}

        cases = []
        for pattern in ("cine.sax", "lge.*", "cine.2ch\\cine.4ch", "nothing.such"):
            cases.append(("STUDY", {"StudyInstanceUID": s0}, pattern, None,
                          want_of(pattern, {s0})))
        cases.append(("STUDY", {"StudyInstanceUID": "\\".join(studies)}, "cine.*", None,
                      want_of("cine.*", set(studies))))
        some = sorted(u for u, r in by_series.items() if r["study_uid"] == s0)[:10]
        cases.append(("SERIES", {"StudyInstanceUID": s0, "SeriesInstanceUID": "\\".join(some)},
                      "cine.*\\lge.*", None, want_of("cine.*\\lge.*", {s0}, set(some))))
        view = sorted({r["view"] for r in rows if r["view"]})[0]
        cases.append(("STUDY", {"StudyInstanceUID": s0}, None, view,
                      want_of(view, {s0}, key="view")))

        for level, keys, tag, v, want in cases:
            what = "%s %s tag=%s view=%s" % (level, list(keys), tag, v)
            tagfx.identifier(qf, level, keys, tag=tag, view=v)
            dest.clear()
            r = move(node, "DEST", qf)
            lib.check(qrlib.final_status(r.stdout) == "Success",
                      "move %s: status %r\n%s" % (what, qrlib.final_status(r.stdout), r.stdout[-1500:]))
            got = series_of(dest.files())
            lib.check(got == want, "move %s: %d series / %d instances arrived, want %d / %d"
                      % (what, len(got), sum(got.values()), len(want), sum(want.values())))
            out = lib.tmpdir("mt-tagq-get-")
            r = get(node, out, qf)
            lib.check("Received C-GET Response (Success)" in r.stdout and
                      "Number of Failed Suboperations    : 0" in r.stdout,
                      "get %s: not Success\n%s" % (what, r.stdout[-1500:]))
            got = series_of([os.path.join(out, f) for f in os.listdir(out)])
            lib.check(got == want, "get %s: %d series / %d instances, want %d / %d"
                      % (what, len(got), sum(got.values()), len(want), sum(want.values())))
            lib.log("%s: %d series, %d instances" % (what, len(want), sum(want.values())))
        lib.check(node.stop() == 0, "node did not stop cleanly")
    finally:
        dest.stop()


if __name__ == "__main__":
    lib.run_guarded(body)
