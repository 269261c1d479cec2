#!/usr/bin/env python3
"""Score `mitral tag` output against a fixture truth.csv (gen_cmr_fixtures.py).

    score.py TRUTH.csv TAGS.csv [--min-informative 0.99] [--min-geometry 0.95]
             [--max-unknown 0.03] [--quiet] [--strict]

Prints overall accuracy, accuracy per naming mode (informative names; missing/misleading
names, where physics and geometry must decide), per true tag, the `unknown` rate (unknown
and perfusion.unknown are abstentions) and every mistake. Exit 1 when a threshold is missed
or when any wrong tag has confidence >= 0.9 (spec: never a confident wrong tag).
"""
import argparse
import collections
import csv
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("truth")
    ap.add_argument("tags")
    ap.add_argument("--min-informative", type=float, default=0.99)
    ap.add_argument("--min-geometry", type=float, default=0.95)
    ap.add_argument("--max-unknown", type=float, default=0.03)
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--strict", action="store_true",
                    help="every series must be right, except the abstention the spec mandates "
                         "(perfusion.unknown when heart rate and order disagree, section 6)")
    a = ap.parse_args()
    truth = {}
    with open(a.truth) as f:
        for r in csv.DictReader(f):
            truth[r["SeriesInstanceUID"]] = r
    got = {}
    with open(a.tags) as f:
        for line in f:
            p = line.rstrip("\n").split(",", 4)
            if len(p) < 5 or p[0] == "SeriesInstanceUID":
                continue
            got[p[0]] = (p[1], p[2], float(p[3]), p[4])
    per_mode = collections.defaultdict(lambda: [0, 0])
    per_tag = collections.defaultdict(lambda: [0, 0])
    unknown = 0
    confident_wrong = []
    mistakes = []
    for uid, t in truth.items():
        tag, view, conf, ev = got.get(uid, ("<missing>", "", 0.0, ""))
        ok = tag == t["tag"]
        mode = "informative" if t["naming"] == "informative" else "geometry"
        per_mode[mode][0] += ok
        per_mode[mode][1] += 1
        per_tag[t["tag"]][0] += ok
        per_tag[t["tag"]][1] += 1
        if tag in ("unknown", "perfusion.unknown"):
            unknown += 1
        if not ok:
            mistakes.append((t["study"][-6:], t["vendor"], t["naming"], t["perf"], t["description"],
                             t["tag"], tag, conf, ev))
            if conf >= 0.9 and tag not in ("unknown", "perfusion.unknown"):
                confident_wrong.append(mistakes[-1])
    n = len(truth)
    right = sum(v[0] for v in per_mode.values())
    print("series %d  accuracy %.4f  unknown %.4f  confident-wrong %d" %
          (n, right / n if n else 0, unknown / n if n else 0, len(confident_wrong)))
    for m, (r, k) in sorted(per_mode.items()):
        print("  %-12s %4d/%-4d %.4f" % (m, r, k, r / k))
    if not a.quiet:
        for tg, (r, k) in sorted(per_tag.items()):
            print("  %-18s %4d/%-4d %.3f" % (tg, r, k, r / k))
        for m in mistakes:
            print("  MISTAKE study=%s %s %s perf=%s desc=%r truth=%s got=%s conf=%.2f ev=%s" % m)
    fail = False
    if a.strict:
        bad = [m for m in mistakes if not (m[6] == "perfusion.unknown" and "hr_order_disagree" in m[8])]
        if bad:
            print("FAIL: %d series wrong (strict)" % len(bad))
            fail = True
    if per_mode["informative"][1] and per_mode["informative"][0] / per_mode["informative"][1] < a.min_informative:
        print("FAIL: informative-name accuracy below %.2f" % a.min_informative)
        fail = True
    if per_mode["geometry"][1] and per_mode["geometry"][0] / per_mode["geometry"][1] < a.min_geometry:
        print("FAIL: geometry-decides accuracy below %.2f" % a.min_geometry)
        fail = True
    if n and unknown / n > a.max_unknown:
        print("FAIL: unknown rate above %.2f" % a.max_unknown)
        fail = True
    if confident_wrong:
        print("FAIL: %d wrong tags at confidence >= 0.9" % len(confident_wrong))
        fail = True
    sys.exit(1 if fail else 0)


if __name__ == "__main__":
    main()
