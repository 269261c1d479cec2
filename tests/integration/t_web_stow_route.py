#!/usr/bin/python3
"""t_web_stow_route.py - STOW-RS parts go through routing.rules exactly as C-STORE (issue 7).

Node A: http on, no node-wide de-identification, rules (below), a DICOM destination B
("central", a second mitral node). Uploads of a generated CMR study full of identifiers
(tests/deid/check_leaks.py: SAX cine, LGE PSIR and T1 MOLLI series) and an SR copy:
  1. application/dicom to /dicomweb (admin): 202; the T1 and SR parts are in
     FailedSOPSequence with FailureReason 0124 (Refused: Not Authorized), a Warning header per
     reason names the rule's reason and the count; nothing of them in the storage or the index;
     the LGE parts were de-identified by the rule's profile (mapped UIDs, no identifying value
     in A's stored files nor at B: byte scan), joined project scar and were forwarded to B; the
     cine parts are stored as received (data set bytes identical) and joined project web (the
     calling_ae-absent rule) and entry (called_ae: node.ae_title), never project dimse (a
     rule that needs a calling AE).
  2. /projects/p1/dicomweb as alice: the `user: alice` rule: projects ai and p1 (the URL's),
     forwarded to B, not de-identified.
  3. /projects/p2/dicomweb as bob: peer 127.0.0.0/8 + called_ae P2AE (the project's AE
     title): project lan and p2.
  4. application/dicom+json (metadata + bulk data): an LGE instance and an SR: 202, the SR
     refused with 0124 + Warning, the LGE de-identified, in scar, forwarded; an SR alone: 409.
  5. SIGHUP with rules that refuse everything while a request is in flight: its later part is
     still decided by the rules it started with (stored); the next request is refused.
  6. `mitral route test --http --user alice / --project p2` says the same as the node.
"""
import json
import os
import re
import signal
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests", "deid"))
import lib  # noqa: E402
import web  # noqa: E402

try:
    import pydicom  # noqa: E402
    from pydicom.uid import generate_uid  # noqa: E402
    import check_leaks  # noqa: E402
    import stowjson  # noqa: E402
except ImportError:
    lib.skip("pydicom not installed")
if not lib.IS_MITRAL:
    lib.skip("needs mitral on both sides")

RULES = """rules:
  - name: node-entry
    match: {called_ae: SITE}
    projects: [entry]
    continue: true
  - name: web-uploads
    match: {calling_ae: {absent: true}}
    projects: [web]
    continue: true
  - name: dimse-only
    match: {calling_ae: {present: true}}
    projects: [dimse]
    continue: true
  - name: no-sr
    match: {Modality: SR}
    reject: "structured reports stay at the site"
  - name: no-maps
    match: {SeriesDescription: {glob: "*MOLLI*"}}
    reject: mapping series are not accepted
  - name: scar
    match: {SeriesDescription: {glob: "*LGE*"}}
    projects: [scar]
    deid: basic
    forward: [central]
  - name: ai
    match: {user: alice}
    projects: [ai]
    forward: [central]
  - name: lan
    match: {peer: 127.0.0.0/8, called_ae: P2AE}
    projects: [lan]
"""
CLOSED = """rules:
  - name: closed
    match: {}
    reject: "uploads closed for maintenance"
"""
PROJECTS = [("entry", "ENTRYAE"), ("web", "WEBAE"), ("dimse", "DIMSEAE"), ("scar", "SCARAE"), ("ai", "AIAE"),
            ("lan", "LANAE")]


def desc(path):
    return str(pydicom.dcmread(path, stop_before_pixels=True).SeriesDescription)


def sop_of(path):
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def copy_study(paths, outdir, tag):
    """The files again as a new study (new Study/Series/SOP Instance UIDs)."""
    study, series, out = generate_uid(), {}, []
    for i, p in enumerate(paths):
        d = pydicom.dcmread(p)
        d.StudyInstanceUID = study
        d.SeriesInstanceUID = series.setdefault(str(d.SeriesInstanceUID), generate_uid())
        d.SOPInstanceUID = d.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        q = os.path.join(outdir, "%s%d.dcm" % (tag, i))
        d.save_as(q)
        out.append(q)
    return out


def stow(node, path, files, headers):
    """-> (status, response JSON, all headers)"""
    body, ct = web.multipart_encode([open(f, "rb").read() for f in files])
    h = dict(headers, **{"Content-Type": ct, "Accept": "application/dicom+json"})
    st, hd, b = web.request(node, "POST", path, h, body)
    return st, (json.loads(b) if b else None), hd


def seq(resp, tag):
    return (resp or {}).get(tag, {}).get("Value", [])


def warnings(hd):
    return [v for k, v in hd["_all"] if k.lower() == "warning"]


def refs_by_sop(resp):
    return {x["00081155"]["Value"][0] for x in seq(resp, "00081199")}


def failed(resp):
    return {x["00081155"]["Value"][0]: x["00081197"]["Value"][0] for x in seq(resp, "00081198")}


def projects_of(node):
    out = {}
    for r in node.query("SELECT project, study_uid FROM project_studies"):
        out.setdefault(r["project"], set()).add(r["study_uid"])
    return out


def stored_file(node, sop):
    rows = node.query("SELECT path FROM instances WHERE sop_instance_uid = ?", (sop,))
    return os.path.join(node.storage, rows[0]["path"]) if rows else None


def study_of(node, sop):
    rows = node.query("SELECT st.study_instance_uid AS s FROM instances i JOIN series se ON "
                      "i.series_pk = se.pk JOIN studies st ON se.study_pk = st.pk WHERE "
                      "i.sop_instance_uid = ?", (sop,))
    return rows[0]["s"] if rows else None


def leaks_in(blob, inputs, gen_dir):
    """Identifying values of the inputs found in blob (check_leaks, profile basic)."""
    check_leaks.KEPT = check_leaks.kept_tags("basic")
    leaks, n = [], 0
    for i, p in enumerate(inputs):
        src = pydicom.dcmread(p, force=True)
        found, priv, shared = [], [], ([], set())
        check_leaks.collect(src, found, priv, shared)
        cs = src.get("SpecificCharacterSet", "ISO_IR 6")
        cs = [cs] if isinstance(cs, str) else (list(cs) or ["ISO_IR 6"])
        for kw, s in found + (priv if p.startswith(gen_dir) else []):
            for v in check_leaks.variants(kw, s, cs):
                if v.upper() in check_leaks.OURS:
                    continue
                n += 1
                if v in blob:
                    leaks.append((i, kw))
    return sorted(set(leaks)), n


def slow_stow(node, path, files, headers, between):
    """A STOW-RS request sent in two pieces: the headers, the first part and the start of the
    second; then between() runs; then the rest. -> (status, response JSON)"""
    boundary = "mt-route-snapshot-9"
    parts = [open(f, "rb").read() for f in files]
    pre = b"--%s\r\nContent-Type: application/dicom\r\n\r\n" % boundary.encode()
    body = pre + parts[0] + b"\r\n" + pre + parts[1] + b"\r\n--%s--\r\n" % boundary.encode()
    cut = len(pre) + len(parts[0]) + 2 + len(pre) + 200  # inside part 2's File Meta
    head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/related; "
            "type=\"application/dicom\"; boundary=%s\r\nAccept: application/dicom+json\r\n"
            "Content-Length: %d\r\n%s\r\n" % (path, boundary, len(body), "".join(
                "%s: %s\r\n" % kv for kv in headers.items()))).encode()
    s = socket.create_connection(("127.0.0.1", node.http_port), timeout=60)
    try:
        s.sendall(head + body[:cut])
        between()
        s.sendall(body[cut:])
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < int(
                re.search(rb"(?i)content-length: *(\d+)", data.split(b"\r\n\r\n", 1)[0])
                .group(1)):
            d = s.recv(65536)
            if not d:
                break
            data += d
    finally:
        s.close()
    hdr, _, rb = data.partition(b"\r\n\r\n")
    st = int(hdr.split(b" ", 2)[1])
    return st, (json.loads(rb) if rb else None)


def main():
    work = lib.tmpdir("mt-web-stow-route-")
    key = lib.deid_key_file(work)
    gen = os.path.join(work, "gen")
    os.mkdir(gen)
    study = check_leaks.make_cmr_study(gen)
    cine = [p for p in study if "cine" in desc(p)]
    lge = [p for p in study if "LGE" in desc(p)]
    t1 = [p for p in study if "MOLLI" in desc(p)]
    sr = os.path.join(gen, "sr.dcm")
    d = pydicom.dcmread(cine[0])
    d.Modality = "SR"
    d.SOPInstanceUID = d.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    d.save_as(sr)
    lib.check(len(cine) == 2 and len(lge) == 2 and len(t1) == 2, "generated study: 3 series")

    rules = os.path.join(work, "rules.yaml")
    with open(rules, "w") as f:
        f.write(RULES)
    b = lib.Node("central", aet="CENTRAL")
    b.port = lib.free_port()
    conf = {"routing.rules": rules, "forward.retry_initial": "100ms", "forward.retry_max": "1s",
            "log.level": "debug"}
    conf["deid.key_file"] = key
    a = web.WebNode(name="site", aet="SITE", extra=conf, more_projects=PROJECTS,
                    yaml_extra="destinations:\n  - name: central\n    ae_title: CENTRAL\n"
                               "    host: 127.0.0.1\n    port: %d\n" % b.port)
    b.start()
    a.start()

    # 1. application/dicom, admin, /dicomweb
    st, r1, hd = stow(a, "/dicomweb/studies", cine + lge + t1 + [sr], web.ADMIN)
    stored1, failed1 = refs_by_sop(r1), failed(r1)
    lib.check(st == 202, "some refused by rules: 202 (got %s)" % st)
    refused = {sop_of(p) for p in t1 + [sr]}
    lib.check(set(failed1) == refused and set(failed1.values()) == {0x0124},
              "T1 and SR parts in FailedSOPSequence with FailureReason 0124: %s" % failed1)
    w = warnings(hd)
    lib.check(any("0124" in x and "mapping series are not accepted (2 instances)" in x
                  for x in w) and
              any("structured reports stay at the site (1 instance)" in x for x in w) and
              len(w) == 2, "a Warning per rule reason, with the count: %s" % w)
    lib.check(len(stored1) == 4, "cine and LGE parts stored (%d)" % len(stored1))
    inst = a.index_instances()
    lib.check(not refused & set(inst), "refused parts are not in the index")
    blob_a = b"".join(open(p, "rb").read() for p in a.stored_paths())
    lib.check(not any(u.encode() in blob_a for u in refused) and not a.tmp_files(),
              "refused parts left no file (no SOP Instance UID of theirs in the storage)")
    cine_sops = {sop_of(p) for p in cine}
    lib.check(cine_sops <= stored1, "cine parts stored under their own UIDs (no deid)")
    same = sum(lib.dataset_bytes(stored_file(a, sop_of(p))) == lib.dataset_bytes(p)
               for p in cine)
    lib.check(same == len(cine), "cine parts stored as received, byte for byte (%d)" % same)
    lge_stored = stored1 - cine_sops
    lib.check(len(lge_stored) == 2 and all(u.startswith("2.25.") for u in lge_stored) and
              not lge_stored & {sop_of(p) for p in lge},
              "LGE parts de-identified by the rule's profile (mapped UIDs): %s" % lge_stored)
    lge_blob = b"".join(open(stored_file(a, u), "rb").read() for u in lge_stored)
    leaks, n_forms = leaks_in(lge_blob, lge, gen)
    lib.check(not leaks and n_forms > 20, "no identifying value of the LGE inputs in their "
              "stored files (%d value forms; leaks %s)" % (n_forms, leaks))
    proj = projects_of(a)
    cine_study = study_of(a, sop_of(cine[0]))
    lge_study = study_of(a, sorted(lge_stored)[0])
    lib.check(proj.get("scar") == {lge_study}, "LGE study in project scar: %s" % proj)
    lib.check(proj.get("web", set()) >= {cine_study, lge_study},
              "calling_ae absent: every STOW-RS study in project web")
    lib.check("dimse" not in proj, "a rule that needs a calling AE never matches STOW-RS")
    lib.check(proj.get("entry") == {cine_study, lge_study},
              "/dicomweb: called_ae is node.ae_title (SITE)")

    # 2. project p1, user alice
    c2 = copy_study(cine, gen, "alice")
    st, r2, hd = stow(a, "/projects/p1/dicomweb/studies", c2, web.ALICE)
    lib.check(st == 200 and refs_by_sop(r2) == {sop_of(p) for p in c2} and not warnings(hd),
              "alice's upload stored (200, no warning): %s" % st)
    s2 = study_of(a, sop_of(c2[0]))
    proj = projects_of(a)
    lib.check(s2 in proj.get("ai", ()) and s2 in proj.get("p1", ()) and
              s2 not in proj.get("lan", ()) and s2 not in proj.get("entry", ()),
              "user: alice -> projects ai and the URL's p1 (called_ae P1AE, not SITE)")

    # 3. project p2, user bob: peer + called_ae (the project's AE title)
    c3 = copy_study(cine, gen, "bob")
    st, r3, _ = stow(a, "/projects/p2/dicomweb/studies", c3, web.BOB)
    s3 = study_of(a, sop_of(c3[0]))
    proj = projects_of(a)
    lib.check(st == 200 and s3 in proj.get("lan", ()) and s3 in proj.get("p2", ()) and
              s3 not in proj.get("ai", ()), "peer 127.0.0.0/8 + called_ae P2AE -> lan, p2")

    # 4. application/dicom+json: an LGE instance and an SR
    lj = copy_study(lge[:1], gen, "json")[0]
    big = pydicom.dcmread(lj)  # 1.5 MiB of Pixel Data: the undecided bytes go in slices
    big.Rows = big.Columns = 886
    big.PixelData = bytes(range(256)) * (886 * 886 * 2 // 256) + b"\0" * (886 * 886 * 2 % 256)
    big.save_as(lj)
    srj = copy_study([sr], gen, "jsonsr")[0]
    insts, bulk = [], {}
    for p in (lj, srj):
        j, bk = stowjson.to_json(pydicom.dcmread(p), base="http://client.example/b%d/" % len(insts))
        insts.append(j)
        bulk.update(bk)
    b4, ct4 = stowjson.body(insts, bulk)
    st, hd4, raw4 = web.request(a, "POST", "/dicomweb/studies", dict(
        web.ADMIN, **{"Content-Type": ct4, "Accept": "application/dicom+json"}), b4)
    r4 = json.loads(raw4) if raw4 else None
    f4, s4 = failed(r4), refs_by_sop(r4)
    lib.check(st == 202 and f4 == {sop_of(srj): 0x0124} and len(s4) == 1,
              "dicom+json: SR refused (0124), LGE stored: %s %s" % (st, f4))
    lib.check(any("structured reports stay at the site (1 instance)" in x
                  for x in warnings(hd4)), "dicom+json: the reason in a Warning")
    lj_stored = next(iter(s4)) if s4 else ""
    lib.check(lj_stored.startswith("2.25.") and sop_of(srj) not in a.index_instances(),
              "dicom+json LGE de-identified (%s), SR not indexed" % lj_stored)
    lib.check(lib.dataset_bytes(stored_file(a, lj_stored)).endswith(big.PixelData),
              "dicom+json: the large Pixel Data stored whole")
    leaks, _ = leaks_in(open(stored_file(a, lj_stored), "rb").read(), [lj], gen)
    lib.check(not leaks, "dicom+json LGE: no identifying value stored (%s)" % leaks)
    lib.check(study_of(a, lj_stored) in projects_of(a).get("scar", ()), "dicom+json: scar")
    st, r5 = stowjson.post(a, "/dicomweb/studies", [insts[1]],
                           {k: v for k, v in bulk.items() if "/b1/" in k})[:2]
    lib.check(st == 409 and list(failed(r5).values()) == [0x0124],
              "dicom+json: all refused -> 409 (%s)" % st)

    # forwarding: LGE (de-identified, 3) and alice's (2) reach B as A stored them
    to_b = lge_stored | {lj_stored} | {sop_of(p) for p in c2}
    lib.wait_for(lambda: not a.query("SELECT 1 FROM forward_queue") and
                 set(b.index_instances()) >= to_b, "A's forwards reach B", 120)
    at_b = set(b.index_instances())
    lib.check(at_b == to_b, "B holds exactly the forwarded instances (%d, expected %d)"
              % (len(at_b), len(to_b)))
    same = sum(lib.dataset_bytes(stored_file(a, u)) == lib.dataset_bytes(stored_file(b, u))
               for u in to_b)
    lib.check(same == len(to_b), "B's data sets are A's stored ones (%d/%d)" % (same, len(to_b)))
    blob_b = b"".join(open(p, "rb").read() for p in b.stored_paths()
                      if sop_of(p) in lge_stored | {lj_stored})
    leaks, _ = leaks_in(blob_b, lge + [lj], gen)
    lib.check(not leaks, "no identifying value of the LGE inputs at B (%s)" % leaks)

    # 5. SIGHUP while a request is in flight
    c6 = copy_study(cine, gen, "inflight")
    c7 = copy_study(cine[:1], gen, "after")
    reloads = a.log_text().count("SIGHUP: config reloaded")
    decided = a.log_text().count("stow part 1 route:")

    def swap_rules():
        lib.wait_for(lambda: a.log_text().count("stow part 1 route:") > decided,
                     "the in-flight request's first part was decided", 30)
        with open(rules, "w") as f:
            f.write(CLOSED)
        a.proc.send_signal(signal.SIGHUP)
        lib.wait_for(lambda: a.log_text().count("SIGHUP: config reloaded") > reloads,
                     "SIGHUP reloaded the rules", 30)

    st, r6 = slow_stow(a, "/dicomweb/studies", c6, web.ADMIN, swap_rules)
    lib.check(st == 200 and refs_by_sop(r6) == {sop_of(p) for p in c6},
              "a request in flight keeps its rules: both parts stored (%s)" % st)
    st, r7, hd7 = stow(a, "/dicomweb/studies", c7, web.ADMIN)
    lib.check(st == 409 and any("uploads closed for maintenance" in x for x in warnings(hd7)),
              "the next request gets the new rules: refused (%s %s)" % (st, warnings(hd7)))

    # 6. route test simulates the HTTP source
    with open(rules, "w") as f:
        f.write(RULES)
    r = lib.run([lib.MITRAL, "route", "test", "-c", a.conf_path, "--http", "--user", "alice",
                 cine[0]])
    lib.check(r.returncode == 0 and re.search(r"matched +web-uploads, ai", r.stdout) and
              re.search(r"projects +web, ai", r.stdout) and "forward   central" in r.stdout,
              "route test --http --user alice: %s" % r.stdout)
    r = lib.run([lib.MITRAL, "route", "test", "-c", a.conf_path, "--project", "p2", cine[0]])
    lib.check(r.returncode == 0 and re.search(r"projects +p2, web, lan", r.stdout),
              "route test --project p2: %s" % r.stdout)
    r = lib.run([lib.MITRAL, "route", "test", "-c", a.conf_path, "--http", sr])
    lib.check(r.returncode == 0 and "FailureReason 0124" in r.stdout, "route test --http: "
              "a reject as STOW-RS answers it: %s" % r.stdout)
    r = lib.run([lib.MITRAL, "route", "test", "-c", a.conf_path, cine[0]])
    lib.check(r.returncode == 0 and re.search(r"projects +dimse", r.stdout) and
              not re.search(r"(matched|projects) .*web", r.stdout), "route test (association): dimse, not web: %s" % r.stdout)

    for name, node in (("A", a), ("B", b)):
        rc = node.stop()
        text = node.all_logs()
        lib.check(rc == 0 and "Sanitizer" not in text and "runtime error" not in text,
                  "%s stopped cleanly (exit %s)" % (name, rc))


lib.run_guarded(main)
