#!/usr/bin/python3
"""t_tag_node: CMR tagging inside the node (issue 5, docs/tagging.md).

A generated multi-vendor CMR set (tests/tagging/gen_cmr_fixtures.py: one Siemens, one GE and
one Philips exam) is sent with storescu; the node tags every series off the event loop after
tagging.series_idle and again after tagging.study_idle, into the index (series_tags). Then:
  - every series has exactly one row, with the same tag and view as `mitral tag` gives
    offline over the same files (the node tags from the original headers);
  - `mitral report protocols --format csv` equals `mitral tag --report csv` over the files;
    json, table and --by manufacturer work; --project of an unknown project reports 0 exams;
  - every C-STORE succeeded (tagging never fails or delays a store);
  - `mitral tag --reindex` re-tags every stored series from the files (revision bumped);
  - with a de-identification profile, no original Study/Series Instance UID reaches
    series_tags (rows are keyed by the stored UIDs).
"""
import glob
import os

import lib
import tagfx


def tags_offline(fx):
    r = lib.run([lib.MITRAL, "tag", fx])
    lib.check(r.returncode == 0, "mitral tag offline exit %s" % r.returncode)
    out = {}
    for line in (r.stdout or "").splitlines():
        p = line.split(",", 4)
        if len(p) == 5:
            out[p[0]] = (p[1], p[2])
    return out


def query_file(path, study, tag=None, extra=()):
    """A C-FIND identifier with the private keys spelled with their VRs (findscu -k cannot:
    the tags are not in its dictionary)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian
    ds = Dataset()
    ds.QueryRetrieveLevel = "SERIES"
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = ""
    ds.add_new(0x4D490010, "LO", "MITRAL CMR 1")
    ds.add_new(0x4D491010, "LO", tag or "")
    for t, vr in extra:
        ds.add_new(t, vr, "")
    fm = FileMetaDataset()
    fm.TransferSyntaxUID = ExplicitVRLittleEndian
    fm.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.2.2.1"
    fm.MediaStorageSOPInstanceUID = "1.2.3.4"
    ds.file_meta = fm
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(path, write_like_original=False)
    return path


def findscu(node, qfile):
    cmd = ["findscu", "-v", "-S", "-aet", "FINDSCU", "-aec", node.aet, "127.0.0.1",
           str(node.port), qfile]
    r = lib.run(cmd, timeout=120)
    r.stdout = (r.stdout or "") + (r.stderr or "")
    return r


def body():
    if not lib.IS_MITRAL:
        lib.skip("tagging is mitral's")
    try:
        import pydicom  # noqa: F401
    except ImportError:
        lib.skip("pydicom missing")
    base = lib.tmpdir("mt-tagfx-")
    fx = os.path.join(base, "fx")
    files, truth = tagfx.fixtures(studies=3, seed=7, phases=12, dynamics=22, fx=fx)

    node = lib.Node("tag", conf={"tagging.series_idle": "500ms", "tagging.study_idle": "2s"}).start()
    r = lib.storescu(node, files, timeout=280)
    ok = r.stdout.count("Received Store Response (Success)")
    lib.check(ok == len(files), "stored %d of %d files:\n%s" % (ok, len(files), r.stdout[-2000:]))

    def n_tagged():
        try:
            return node.query("SELECT count(*) AS n FROM series_tags")[0]["n"]
        except Exception:
            return -1
    lib.wait_for(lambda: n_tagged() >= len(truth), "every series tagged", deadline_s=120)
    tagfx.wait_settled(node)  # the study pass may still revise them

    # C-FIND on the private SERIES keys (docs/conformance.md): match and return
    off = tags_offline(fx)
    study = truth[0]["study"]
    in_study = {t["SeriesInstanceUID"] for t in truth if t["study"] == study}
    for pattern, pred in (("cine.sax", lambda t: t == "cine.sax"),
                          ("lge.*", lambda t: t.startswith("lge.")),
                          ("cine.2ch\\cine.4ch", lambda t: t in ("cine.2ch", "cine.4ch"))):
        want = sum(1 for u in in_study if pred(off.get(u, ("", ""))[0]))
        q = query_file(os.path.join(base, "q.dcm"), study, pattern,
                       extra=((0x4D491011, "CS"), (0x4D491012, "DS")))
        r = findscu(node, q)
        got = r.stdout.count("(Pending)")
        lib.check(got == want, "C-FIND tag=%s: %d matches, want %d:\n%s" %
                  (pattern, got, want, r.stdout[-1500:]))
        lib.check(want == 0 or "MITRAL CMR 1" in r.stdout, "private creator not returned")
    r = findscu(node, query_file(os.path.join(base, "q.dcm"), study))
    lib.check(r.stdout.count("(Pending)") == len(in_study), "universal tag key: not every series")
    for u in list(in_study)[:5]:
        lib.check(("[%s]" % off[u][0]) in r.stdout or ("[%s ]" % off[u][0]) in r.stdout,
                  "tag %s of %s not returned" % (off[u][0], u))
    lib.check(node.stop() == 0, "node did not stop cleanly")

    rows = node.query("SELECT series_uid, study_uid, tag, view, confidence, version, revision "
                      "FROM series_tags")
    lib.check(len(rows) == len(truth), "%d tag rows, %d series" % (len(rows), len(truth)))
    same = 0
    for row in rows:
        uid, tag, view = row["series_uid"], row["tag"], row["view"]
        conf, version = row["confidence"], row["version"]
        want = off.get(uid)
        lib.check(want is not None, "tagged series %s unknown offline" % uid)
        if want and (tag, view) == want:
            same += 1
        elif want:
            lib.check(False, "series %s: node %s/%s, offline %s/%s" % (uid, tag, view, want[0], want[1]))
        lib.check(version.startswith("cmr-"), "version %r" % version)
        lib.check(0.0 <= conf <= 1.0, "confidence %r" % conf)
    lib.log("node tags equal offline tags: %d/%d" % (same, len(rows)))

    # mitral tag --reindex: every stored series re-tagged from the stored files
    import sqlite3
    con = sqlite3.connect(node.index, timeout=30)
    con.execute("UPDATE series_tags SET tag = 'stale', version = 'old'")
    con.commit()
    con.close()
    r = node.cli("tag", "--reindex", "--data", node.data)
    lib.check(r.returncode == 0, "--reindex exit %s: %s" % (r.returncode, r.stderr))
    again = {row["series_uid"]: (row["tag"], row["view"], row["version"], row["revision"])
             for row in node.query("SELECT series_uid, tag, view, version, revision FROM series_tags")}
    lib.check(len(again) == len(truth), "--reindex: %d rows" % len(again))
    lib.check(all(v[2].startswith("cmr-") for v in again.values()), "--reindex: version not set")
    lib.check(all(again[u][:2] == off[u] for u in again if u in off),
              "--reindex tags differ from the offline tags of the same (not de-identified) files")
    lib.check(all(v[3] >= 1 for v in again.values()), "--reindex: revision not bumped")

    rep = node.cli("report", "protocols", "--data", node.data, "--format", "csv")
    lib.check(rep.returncode == 0, "report exit %s: %s" % (rep.returncode, rep.stderr))
    offrep = lib.run([lib.MITRAL, "tag", "--report", "csv", fx])
    lib.check(rep.stdout == offrep.stdout,
              "node report differs from offline:\n%s\n---\n%s" % (rep.stdout, offrep.stdout))
    lib.check("# exams,3" in rep.stdout and "cine.sax,3,100.0" in rep.stdout,
              "report:\n" + rep.stdout)
    for args in (["--format", "json"], ["--format", "table", "--by", "manufacturer"]):
        r2 = node.cli("report", "protocols", "--data", node.data, *args)
        lib.check(r2.returncode == 0 and r2.stdout, "report %s failed" % args)
    r3 = node.cli("report", "protocols", "--data", node.data, "--project", "nope", "--format", "csv")
    lib.check("# exams,0" in r3.stdout, "unknown project:\n" + r3.stdout)

    # de-identification: tags keyed by the stored UIDs
    prof = os.path.join(lib.SRC, "deid-profiles")
    if os.path.isdir(prof) and glob.glob(os.path.join(prof, "*.yaml")):
        key = os.path.join(base, "site.key")
        with open(key, "wb") as f:
            f.write(os.urandom(32))
        os.chmod(key, 0o600)
        name = sorted(os.path.splitext(os.path.basename(p))[0]
                      for p in glob.glob(os.path.join(prof, "*.yaml")))
        name = "basic" if "basic" in name else name[0]
        node2 = lib.Node("tagdeid", conf={"tagging.series_idle": "500ms",
                                          "tagging.study_idle": "2s", "deid.profile": name,
                                          "deid.key_file": key}).start()
        one = sorted(glob.glob(os.path.join(fx, "study000", "*", "*.dcm")))
        r = lib.storescu(node2, one, timeout=280)
        lib.check(r.stdout.count("Received Store Response (Success)") == len(one),
                  "deid store failed:\n" + r.stdout[-2000:])
        n0 = len({t["SeriesInstanceUID"] for t in truth if t["study"] == truth[0]["study"]})
        lib.wait_for(lambda: node2.query("SELECT count(*) AS n FROM series_tags")[0]["n"] >= n0,
                     "deid: every series tagged", deadline_s=120)
        node2.stop()
        uids = {t["SeriesInstanceUID"] for t in truth} | {t["study"] for t in truth}
        got = node2.query("SELECT series_uid, study_uid FROM series_tags")
        leaked = [u for row in got for u in row.values() if u in uids]
        lib.check(not leaked, "original UIDs in series_tags: %s" % leaked[:3])
        stored = {r["series_instance_uid"] for r in node2.query("SELECT series_instance_uid FROM series")}
        lib.check({r["series_uid"] for r in got} <= stored, "series_tags not keyed by the stored UIDs")


if __name__ == "__main__":
    lib.run_guarded(body)
