#!/usr/bin/python3
"""t_tag_qido: the CMR series tag as a QIDO-RS parameter (issue 5, docs/tagging.md).

Two generated CMR studies are stored into a node with http enabled and no users (loopback =
admin); once every series is tagged:
  - /series?cmrtag=P, /studies/{s}/series?cmrtag=P and the private form ?4D491010=P return
    exactly the series whose series_tags row matches P (single value, wildcard, comma and
    backslash lists), each with (4D49,0010) "MITRAL CMR 1" and (4D49,1010) = its tag;
  - cmrview=V matches the view; includefield=cmrtag,cmrview (or all) returns them unmatched,
    and they are not in the default attributes;
  - /instances?cmrtag=P returns the instances of those series;
  - /studies?cmrtag=P returns the studies having at least one such series (no CMR element);
  - no match is 204.
"""
import json
import urllib.parse

import lib
import tagfx
import web


def qido(node, path, params):
    st, h, b = web.request(node, "GET", "/dicomweb" + path + "?" + urllib.parse.urlencode(params),
                           {"Accept": "application/dicom+json"})
    lib.check(st in (200, 204), "%s %s: %s %s" % (path, params, st, b[:300]))
    return json.loads(b) if st == 200 else []


def val(obj, tag):
    e = obj.get(tag) or {}
    v = e.get("Value") or []
    return v[0] if v else None


def body():
    if not lib.IS_MITRAL:
        lib.skip("tagging is mitral's")
    files, truth = tagfx.fixtures()
    conf = dict(tagfx.CONF)
    node = web.WebNode(users=False, extra=conf, name="tagqido").start()
    rows = tagfx.store_and_wait(node, files, len(truth))
    by_series = {r["series_uid"]: r for r in rows}
    study = truth[0]["study"]

    for pattern in ("cine.sax", "lge.*", "cine.2ch\\cine.4ch", "cine.2ch,cine.4ch", "CINE.?CH",
                    "nothing.such"):
        want = {u for u, r in by_series.items() if tagfx.matches(pattern.replace(",", "\\"), r["tag"])}
        for name in ("cmrtag", "4D491010"):
            got = qido(node, "/series", {name: pattern})
            uids = {val(o, "0020000E") for o in got}
            lib.check(uids == want, "/series?%s=%s: %d series, want %d" % (name, pattern, len(uids), len(want)))
            for o in got:
                lib.check(val(o, "4D490010") == "MITRAL CMR 1", "private creator missing: %s" % o)
                lib.check(val(o, "4D491010") == by_series[val(o, "0020000E")]["tag"],
                          "tag not returned: %s" % o.get("4D491010"))
                lib.check(o["4D491010"]["vr"] == "LO", "VR of (4D49,1010)")
        in_study = {u for u in want if by_series[u]["study_uid"] == study}
        got = qido(node, "/studies/%s/series" % study, {"cmrtag": pattern})
        lib.check({val(o, "0020000E") for o in got} == in_study, "study series ?cmrtag=%s" % pattern)
        studies = {by_series[u]["study_uid"] for u in want}
        got = qido(node, "/studies", {"cmrtag": pattern})
        lib.check({val(o, "0020000D") for o in got} == studies, "/studies?cmrtag=%s" % pattern)
        lib.check(all("4D491010" not in o and "4D490010" not in o for o in got),
                  "/studies returned a series attribute")
        n_inst = sum(by_series[u]["n"] for u in want)
        got = qido(node, "/instances", {"cmrtag": pattern, "limit": "5000"})
        lib.check(len(got) == n_inst, "/instances?cmrtag=%s: %d, want %d" % (pattern, len(got), n_inst))
        lib.check(all(val(o, "0020000E") in want for o in got), "/instances: wrong series")

    views = {r["view"] for r in rows if r["view"]}
    lib.check(views, "no series has a view")
    for v in sorted(views)[:3]:
        want = {u for u, r in by_series.items() if (r["view"] or "").lower() == v.lower()}
        got = qido(node, "/series", {"cmrview": v})
        lib.check({val(o, "0020000E") for o in got} == want, "/series?cmrview=%s" % v)
        lib.check(all(val(o, "4D491011") == v for o in got), "view not returned")

    got = qido(node, "/studies/%s/series" % study, {"includefield": "cmrtag,cmrview"})
    lib.check(len(got) == sum(1 for r in rows if r["study_uid"] == study), "includefield: all series")
    for o in got:
        r = by_series[val(o, "0020000E")]
        lib.check(val(o, "4D490010") == "MITRAL CMR 1" and val(o, "4D491010") == r["tag"],
                  "includefield=cmrtag: %s" % o)
    got = qido(node, "/studies/%s/series" % study, {})
    lib.check(got and all("4D491010" not in o and "4D490010" not in o for o in got),
              "CMR attributes returned without includefield or a match")
    got = qido(node, "/series", {"includefield": "all", "limit": "3"})
    lib.check(all(val(o, "4D491010") for o in got), "includefield=all: no CMR tag")
    lib.check(node.stop() == 0, "node did not stop cleanly")


if __name__ == "__main__":
    lib.run_guarded(body)
