#!/usr/bin/python3
"""t_tag_reindex_route.py - `mitral tag --reindex` fires the routing rules on the CMR series tag.

A rule on cmr_series is armed for each instance at store time and fires when the series' tag is
written (node/route/rules.h); a re-index writes every tag again, so it evaluates the armed
rules as a pass does: a rule that matches and has not fired for an instance fires, once per
stored copy. The node (rule: cmr_series lge -> forward to a destination that is down, project
lge) stores one generated CMR study and tags it. Then, node stopped:
  - as after a tagger upgrade that turned the LGE series from another tag into lge: the tags
    are removed, the LGE instances' armed rows set back to not fired, their queue rows and the
    lge project's study deleted;
  - `mitral tag --reindex -c CONF --data DIR` writes the tags back, queues exactly the LGE instances again
    (each once), marks their rows fired and puts the study into the lge project, and says how
    many it queued;
  - a second --reindex queues nothing (the rules fired already);
  - --reindex with --data and no config has no rules: tags only.
"""
import os
import re
import sqlite3
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lib  # noqa: E402
import tagfx  # noqa: E402

if not lib.IS_MITRAL:
    lib.skip("needs mitral's index")


def main():
    files, truth = tagfx.fixtures(studies=1, seed=11)
    d = lib.tmpdir("mt-tagrx-")
    rules = os.path.join(d, "rules.yaml")
    with open(rules, "w") as f:
        f.write("rules:\n"
                "  - name: lge-out\n"
                "    match: {cmr_series: lge}\n"
                "    forward: [down]\n"
                "    projects: [lge]\n")
    conf = dict(tagfx.CONF)
    conf.update({"routing.rules": rules, "forward.retry_initial": "1h"})
    node = lib.Node("rx", data=d, conf=conf,
                    yaml_extra="destinations:\n  - name: down\n    ae_title: DOWN\n"
                               "    host: 127.0.0.1\n    port: %d\n"
                               "projects:\n  - name: lge\n    ae_title: LGE_PRJ\n"
                               % lib.free_port())
    node.start()
    tagfx.store_and_wait(node, files, len(truth))
    node.stop()

    def lge_sops():
        return {r["sop_instance_uid"] for r in node.query(
            "SELECT i.sop_instance_uid FROM instances i JOIN series se ON se.pk = i.series_pk "
            "JOIN series_tags t ON t.series_uid = se.series_instance_uid "
            "WHERE t.tag LIKE 'lge%'")}

    expected = lge_sops()
    lib.check(len(expected) > 0, "the node tagged some LGE instances (%d)" % len(expected))
    queued = {r["sop_instance_uid"] for r in node.query("SELECT sop_instance_uid FROM "
                                                         "forward_queue")}
    lib.check(queued == expected, "the node queued the LGE instances (%d, %d expected)"
              % (len(queued), len(expected)))

    # a tagger upgrade that makes these series lge: no tag, not fired, nothing queued
    db = sqlite3.connect(os.path.join(d, "index.sqlite"))
    db.execute("DELETE FROM series_tags")
    db.execute("UPDATE tag_routes SET fired = 0")
    db.execute("DELETE FROM forward_queue")
    db.execute("DELETE FROM project_studies WHERE project = 'lge'")
    db.commit()
    db.close()

    r = lib.run([lib.MITRAL, "tag", "--reindex", "-c", node.conf_path, "--data", d])
    lib.check(r.returncode == 0, "reindex: rc %d %s" % (r.returncode, r.stderr))
    m = re.search(r"(\d+) series re-tagged \(\S+\), (\d+) instance\(s\) queued", r.stderr)
    lib.check(m is not None and int(m.group(1)) == len(truth) and
              int(m.group(2)) == len(expected),
              "reindex re-tagged every series and queued the LGE instances: %s" % r.stderr)
    lib.check(lge_sops() == expected, "the same series are lge again")
    rows = node.query("SELECT sop_instance_uid, count(*) AS n FROM forward_queue "
                      "GROUP BY sop_instance_uid")
    lib.check({x["sop_instance_uid"] for x in rows} == expected and
              all(x["n"] == 1 for x in rows), "each LGE instance queued once")
    fired = {x["sop_instance_uid"] for x in node.query("SELECT sop_instance_uid FROM "
                                                        "tag_routes WHERE fired = 1")}
    lib.check(fired == expected, "the rule fired for exactly the LGE instances")
    lib.check(node.query("SELECT count(*) AS n FROM project_studies WHERE project = 'lge'")
              [0]["n"] == 1, "the study is in the lge project again")

    r = lib.run([lib.MITRAL, "tag", "--reindex", "-c", node.conf_path, "--data", d])
    lib.check(r.returncode == 0 and "0 instance(s) queued" in r.stderr,
              "a second reindex queues nothing: %s" % r.stderr)
    lib.check(node.query("SELECT count(*) AS n FROM forward_queue")[0]["n"] == len(expected),
              "the queue is unchanged")
    r = lib.run([lib.MITRAL, "tag", "--reindex", "--data", d])
    lib.check(r.returncode == 0 and "0 instance(s) queued" in r.stderr,
              "--data without a config: no rules, tags only: %s" % r.stderr)


lib.run_guarded(main)
