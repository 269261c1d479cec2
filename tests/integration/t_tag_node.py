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
  - with a de-identification profile, no original Study/Series Instance UID reaches
    series_tags (rows are keyed by the stored UIDs).
"""
import csv
import glob
import os
import sys

import lib


def tags_offline(fx):
    r = lib.run([lib.MITRAL, "tag", fx])
    lib.check(r.returncode == 0, "mitral tag offline exit %s" % r.returncode)
    out = {}
    for line in (r.stdout or "").splitlines():
        p = line.split(",", 4)
        if len(p) == 5:
            out[p[0]] = (p[1], p[2])
    return out


def body():
    if not lib.IS_MITRAL:
        lib.skip("tagging is mitral's")
    try:
        import pydicom  # noqa: F401
    except ImportError:
        lib.skip("pydicom missing")
    base = lib.tmpdir("mt-tagfx-")
    fx = os.path.join(base, "fx")
    gen = os.path.join(lib.SRC, "tests", "tagging", "gen_cmr_fixtures.py")
    r = lib.run([sys.executable, gen, "--out", fx, "--studies", "3", "--seed", "7",
                 "--phases", "12", "--dynamics", "22"])
    lib.check(r.returncode == 0, "fixture generator failed: %s %s" % (r.stdout, r.stderr))
    with open(os.path.join(fx, "truth.csv")) as f:
        truth = list(csv.DictReader(f))
    files = sorted(glob.glob(os.path.join(fx, "study*", "*", "*.dcm")))

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
    lib.check(node.stop() == 0, "node did not stop cleanly")

    rows = node.query("SELECT series_uid, study_uid, tag, view, confidence, version, revision "
                      "FROM series_tags")
    lib.check(len(rows) == len(truth), "%d tag rows, %d series" % (len(rows), len(truth)))
    off = tags_offline(fx)
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
