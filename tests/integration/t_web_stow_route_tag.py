#!/usr/bin/python3
"""t_web_stow_route_tag.py - rules on the CMR series tag armed by STOW-RS uploads (issue 7).

Node A: a rule forwarding the LGE series to B and adding project lge, evaluated when the
series is tagged (`match: {cmr_series: lge, calling_ae: {absent: true}}`: armed only for
uploads without a calling AE, i.e. STOW-RS), deid.profile basic. A generated multi-series CMR
study (tests/tagging/gen_cmr_fixtures.py) is POSTed to A by STOW-RS in two requests. Then:
every stored instance armed the rule (one tag_routes row each); once A tagged its series, B
holds exactly the instances of the series A tagged lge.* (A's de-identified UIDs), each fired
row is one of them, A's queue is empty, and the study is in project lge. The same files by
C-STORE to a second node with the same rules arm nothing (a calling AE is present).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lib  # noqa: E402
import tagfx  # noqa: E402
import web  # noqa: E402

if not lib.IS_MITRAL:
    lib.skip("needs mitral on both sides")

RULES = """rules:
  - name: lge-to-central
    match: {cmr_series: lge, calling_ae: {absent: true}}
    forward: [central]
    projects: [lge]
"""


def main():
    files, truth = tagfx.fixtures(studies=1, seed=11)
    work = lib.tmpdir("mt-web-stow-rtag-")
    rules = os.path.join(work, "rules.yaml")
    with open(rules, "w") as f:
        f.write(RULES)
    b = lib.Node("central", aet="CENTRAL", conf={"tagging.enabled": "false"})
    b.port = lib.free_port()
    conf = dict(tagfx.CONF)
    conf.update({"tagging.series_idle": "300ms", "deid.profile": "basic",
                 "deid.key_file": lib.deid_key_file(work), "routing.rules": rules,
                 "forward.retry_initial": "100ms", "forward.retry_max": "1s"})
    dest = ("destinations:\n  - name: central\n    ae_title: CENTRAL\n    host: 127.0.0.1\n"
            "    port: %d\n" % b.port)
    a = web.WebNode(name="site", aet="SITE", extra=conf, more_projects=[("lge", "LGEAE")],
                    yaml_extra=dest)
    b.start()
    a.start()
    half = len(files) // 2
    n_ok = 0
    for chunk in (files[:half], files[half:]):
        st, r = web.stow(a, "/dicomweb/studies", chunk, web.ADMIN)
        n_ok += len((r or {}).get("00081199", {}).get("Value", []))
        lib.check(st == 200, "STOW-RS of %d files: %s" % (len(chunk), st))
    lib.check(n_ok == len(files), "every file stored (%d of %d)" % (n_ok, len(files)))
    armed = a.query("SELECT sop_instance_uid, fired FROM tag_routes")
    n_inst = a.query("SELECT count(*) AS n FROM instances")[0]["n"]
    lib.check(len(armed) == n_inst == len(files),
              "every uploaded instance armed the rule (%d rows, %d instances)"
              % (len(armed), n_inst))
    lib.wait_for(lambda: a.query("SELECT count(*) AS n FROM series_tags")[0]["n"] >= len(
        {t["SeriesInstanceUID"] for t in truth}), "A tagged every series", 120)
    expected = {r["sop_instance_uid"] for r in a.query(
        "SELECT i.sop_instance_uid FROM instances i JOIN series se ON se.pk = i.series_pk "
        "JOIN series_tags t ON t.series_uid = se.series_instance_uid WHERE t.tag LIKE 'lge%'")}
    lib.check(expected, "A tagged some series lge.* (%d instances)" % len(expected))

    def b_sops():
        try:
            return {r["sop_instance_uid"] for r in b.query("SELECT sop_instance_uid FROM instances")}
        except Exception:  # noqa: BLE001
            return set()

    lib.wait_for(lambda: len(b_sops()) >= len(expected) and
                 a.query("SELECT count(*) AS n FROM forward_queue")[0]["n"] == 0,
                 "B holds the LGE instances and A's queue is empty", 120)
    lib.check(b_sops() == expected, "B holds exactly the instances A tagged lge.* (%d, "
              "expected %d)" % (len(b_sops()), len(expected)))
    fired = {r["sop_instance_uid"] for r in a.query("SELECT sop_instance_uid FROM tag_routes "
                                                   "WHERE fired = 1")}
    lib.check(fired == expected, "fired exactly for the LGE instances")
    lib.check(a.query("SELECT count(*) AS n FROM project_studies WHERE project = 'lge'")[0]["n"]
              == 1, "the rule's project holds the study")

    # the same rules, C-STORE: a calling AE is present, nothing is armed
    c = lib.Node("dimse", aet="DIMSE", conf={"routing.rules": rules},
                 yaml_extra=dest + "projects:\n  - name: lge\n    ae_title: LGEAE\n")
    c.start()
    r = lib.storescu(c, files[:4], aet="PACS")
    ok = r.stdout.count("Received Store Response (Success)")
    lib.check(ok == 4 and not c.query("SELECT 1 FROM tag_routes"),
              "C-STORE with a calling AE arms nothing (%d stored)" % ok)
    for name, node in (("A", a), ("B", b), ("C", c)):
        rc = node.stop()
        text = node.all_logs()
        lib.check(rc == 0 and "Sanitizer" not in text and "runtime error" not in text,
                  "%s stopped cleanly (exit %s)" % (name, rc))


lib.run_guarded(main)
