#!/usr/bin/python3
"""t_web_stow_tag.py - instances stored by STOW-RS are CMR-tagged like C-STORE ones (issues 5, 7:
"each part through routing, de-identification, tagging ... exactly as a C-STORE").

A generated multi-vendor CMR exam (tests/tagging/gen_cmr_fixtures.py) is POSTed to /dicomweb/
studies in several requests; the node tags every series from the original headers after
tagging.series_idle, into series_tags: one row per series, the same tag and view as
`mitral tag` gives offline over the same files. With the cmr-registry profile, the rows are
keyed by the stored (de-identified) UIDs and no original UID reaches series_tags."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lib  # noqa: E402
import tagfx  # noqa: E402
import web  # noqa: E402


def tags_offline(fx):
    r = lib.run([lib.MITRAL, "tag", fx])
    lib.check(r.returncode == 0, "mitral tag offline exit %s" % r.returncode)
    out = {}
    for line in (r.stdout or "").splitlines():
        p = line.split(",", 4)
        if len(p) == 5:
            out[p[0]] = (p[1], p[2])
    return out


def stow_all(node, files):
    for i in range(0, len(files), 40):
        st, r = web.stow(node, "/dicomweb/studies", files[i:i + 40], web.ADMIN)
        lib.check(st == 200, "STOW-RS of files %d..: status %s %s" % (i, st, str((r or {}).get("00081198"))[:300]))


def tagged(node):
    try:
        return node.query("SELECT series_uid, study_uid, tag, view FROM series_tags")
    except Exception:
        return []


def main():
    if not lib.IS_MITRAL:
        lib.skip("tagging is mitral's")
    try:
        import pydicom  # noqa: F401
    except ImportError:
        lib.skip("pydicom missing")
    base = lib.tmpdir("mt-stowtag-")
    fx = os.path.join(base, "fx")
    files, truth = tagfx.fixtures(studies=1, seed=11, phases=6, dynamics=8, fx=fx)
    off = tags_offline(fx)
    idle = {"tagging.series_idle": "300ms", "tagging.study_idle": "1s"}

    node = web.WebNode(name="stowtag", extra=idle)
    node.start()
    stow_all(node, files)
    lib.wait_for(lambda: len(tagged(node)) >= len(truth), "every series tagged", 120)
    tagfx.wait_settled(node)  # the study pass may still revise them
    rows = tagged(node)
    lib.check(len(rows) == len(truth), "%d tag rows for %d series" % (len(rows), len(truth)))
    for row in rows:
        want = off.get(row["series_uid"])
        lib.check(want == (row["tag"], row["view"]), "series %s: node %s/%s, offline %s"
                  % (row["series_uid"], row["tag"], row["view"], want))
    node.stop()

    # de-identified on the way in: tags keyed by the stored UIDs only
    key = os.path.join(base, "key")
    with open(key, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(key, 0o600)
    conf = dict(idle, **{"deid.profile": "cmr-registry", "deid.key_file": key})
    node2 = web.WebNode(name="stowtag-deid", extra=conf)
    node2.start()
    stow_all(node2, files)
    lib.wait_for(lambda: len(tagged(node2)) >= len(truth), "every de-identified series tagged",
                 120)
    rows = tagged(node2)
    originals = {t["SeriesInstanceUID"] for t in truth} | {t["study"] for t in truth}
    leaked = [r["series_uid"] for r in rows if r["series_uid"] in originals] + \
             [r["study_uid"] for r in rows if r["study_uid"] in originals]
    lib.check(not leaked, "original UIDs in series_tags: %s" % leaked[:3])
    stored = {r["series_instance_uid"] for r in node2.query(
        "SELECT series_instance_uid FROM series")}
    lib.check({r["series_uid"] for r in rows} <= stored, "series_tags keyed by the stored UIDs")
    want = sorted(off.values())
    got = sorted((r["tag"], r["view"]) for r in rows)
    lib.check(got == want, "de-identified: the same tags as offline (%s vs %s)" % (got, want))
    node2.stop()
    lib.finish()


if __name__ == "__main__":
    lib.run_guarded(main)
