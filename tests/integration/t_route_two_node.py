#!/usr/bin/python3
"""t_route_two_node.py - routing and reliable forwarding between two nodes (issue 6).

Node A (site): deid.profile basic with a keyed secret, one rule forwarding everything to B,
a rule refusing SR. Node B (central): projects filled by rules (MR studies -> cmr, the rest ->
other by the default rule). storescu/dcmsend send real files of ../shared/testdata and generated
CMR studies full of PHI (tests/deid/check_leaks.py) to A, in three batches:
  1. both up;
  2. B stopped (SIGTERM) after batch 1 reached it: A keeps storing, the queue grows
     (`mitral queue list` shows the entries and their last error);
  3. A killed -9 with the queue full; A restarted (the queue survives), B restarted; a second
     study of the same patient sent; A killed -9 again while it drains and restarted.
Then, once A's queue is empty:
  - B holds exactly A's instances (same SOP Instance UIDs, each once), and each stored file at
    B is byte for byte the file A stored (what is forwarded is what was stored);
  - no identifying value of any input is in B's storage or index (byte scan, check_leaks.py);
  - B's projects follow B's rules; the SR instance was refused by A (0124 + reason), nothing
    stored or queued for it;
  - the second study of the same patient carries the same pseudonymous PatientID at B.
`mitral route test` on A's config prints the matching rule and actions for an input.
"""
import hashlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests", "deid"))
import lib  # noqa: E402

try:
    import pydicom  # noqa: E402
    from pydicom.uid import generate_uid  # noqa: E402
    import check_leaks  # noqa: E402
except ImportError:
    lib.skip("pydicom not installed")

if not lib.IS_MITRAL:
    lib.skip("routing needs mitral on both sides")

REAL = ["pydicom/test_files/MR_small.dcm", "pydicom/test_files/MR_small_bigendian.dcm",
        "pydicom/test_files/CT_small.dcm", "pydicom/test_files/JPEG2000.dcm",
        "pydicom-data/MR-SIEMENS-DICOM-WithOverlays.dcm",
        "pydicom/charset_files/chrH31.dcm", "pydicom/charset_files/chrX1.dcm",
        "pydicom/test_files/MR2_J2KI.dcm", "pydicom/test_files/US1_J2KR.dcm",
        "pydicom/test_files/rtplan.dcm"]
NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}


def send(node, paths, aet="PACS"):
    """storescu for native syntaxes, dcmsend (the file's own syntax) for the rest. Returns the
    number of files answered with success."""
    native = [p for p in paths if str(pydicom.dcmread(p, stop_before_pixels=True)
                                      .file_meta.TransferSyntaxUID) in NATIVE]
    other = [p for p in paths if p not in native]
    ok = 0
    if native:
        r = lib.storescu(node, native, aet=aet)
        ok += sum(1 for _, s in lib.store_results(r.stdout) if s == "Success")
    for p in other:
        r = lib.run(["dcmsend", "-v", "-aet", aet, "-aec", node.aet, "127.0.0.1",
                     str(node.port), p])
        ok += ("(Success)" in (r.stdout + r.stderr))
    return ok


def q(node, sql):
    """Rows as tuples."""
    return [tuple(r.values()) for r in node.query(sql)]


def sop_set(node):
    return {r[0] for r in q(node, "SELECT sop_instance_uid FROM instances")}


def queue_len(node):
    return q(node, "SELECT count(*) FROM forward_queue")[0][0]


def main():
    work = lib.tmpdir("mt-route-")
    key = os.path.join(work, "site.key")
    with open(key, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(key, 0o600)
    gen = os.path.join(work, "gen")
    os.mkdir(gen)
    generated = check_leaks.make_cmr_study(gen)
    real = [os.path.join(lib.TESTDATA, r) for r in REAL if os.path.exists(os.path.join(lib.TESTDATA, r))]
    if not real:
        lib.log("no ../shared/testdata: generated studies only")
    # a second study of the first generated patient, "a week later"
    later = []
    first = pydicom.dcmread(generated[0])
    st, se = generate_uid(), generate_uid()
    for i in range(2):
        d = pydicom.dcmread(generated[0])
        d.StudyInstanceUID, d.SeriesInstanceUID = st, se
        d.SOPInstanceUID = d.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        d.StudyDate = d.SeriesDate = "20230824"
        d.AcquisitionDateTime = "20230824102000.000000"
        d.InstanceNumber = str(i + 1)
        p = os.path.join(gen, "later%d.dcm" % i)
        d.save_as(p)
        later.append(p)
    # an SR instance, refused by A's first rule
    sr = os.path.join(gen, "sr.dcm")
    d = pydicom.dcmread(generated[1])
    d.Modality = "SR"
    d.SOPInstanceUID = d.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    d.save_as(sr)

    b_dir = lib.tmpdir("mt-route-b-")
    rules_b = os.path.join(b_dir, "rules.yaml")
    with open(rules_b, "w") as f:
        f.write("rules:\n"
                "  - name: cmr\n"
                "    match: {Modality: MR}\n"
                "    projects: [cmr]\n"
                "default:\n"
                "  projects: [other]\n")
    b = lib.Node("central", aet="CENTRAL", data=b_dir, conf={"routing.rules": rules_b},
                 yaml_extra="projects:\n  - name: cmr\n    ae_title: CMR_REG\n"
                            "  - name: other\n    ae_title: OTHER_REG\n")
    b.port = lib.free_port()

    a_dir = lib.tmpdir("mt-route-a-")
    rules_a = os.path.join(a_dir, "rules")
    os.mkdir(rules_a)
    with open(os.path.join(rules_a, "10-refuse.yaml"), "w") as f:
        f.write("rules:\n"
                "  - name: no-sr\n"
                "    match: {Modality: [SR, KO]}\n"
                "    reject: structured reports stay at the site\n")
    with open(os.path.join(rules_a, "20-forward.yaml"), "w") as f:
        f.write("rules:\n"
                "  - name: to-central\n"
                "    match: {}\n"
                "    forward: [central]\n")
    a = lib.Node("site", aet="SITE", data=a_dir,
                 conf={"deid.profile": "basic", "deid.key_file": key,
                       "routing.rules": rules_a, "forward.retry_initial": "100ms",
                       "forward.retry_max": "1s", "forward.max_attempts": "100000",
                       "forward.associations": "2"},
                 yaml_extra="destinations:\n  - name: central\n    ae_title: CENTRAL\n"
                            "    host: 127.0.0.1\n    port: %d\n" % b.port)

    # route test: changes nothing, tells what would happen
    a.cmdline()  # writes the config file
    r = lib.run([lib.MITRAL, "route", "test", "-c", a.conf_path, sr, generated[0]])
    lib.check(r.returncode == 0 and "no-sr" in r.stdout and "reject" in r.stdout and
              "to-central" in r.stdout and "central" in r.stdout,
              "route test shows the reject rule and the forward rule: %s" % r.stdout[-400:])
    r = lib.run([lib.MITRAL, "route", "test", "-c", a.conf_path, gen])
    lib.check(r.returncode == 0 and r.stdout.count("to-central") >= len(generated),
              "route test of a directory walks it (%d files): rc=%s %s"
              % (len(generated), r.returncode, (r.stdout + r.stderr)[-400:]))
    r = lib.run([lib.MITRAL, "route", "test", "-c", a.conf_path, os.path.join(work, "absent")])
    lib.check(r.returncode == 1 and "absent: No such file" in r.stderr,
              "route test of a path that is not there: exit 1 and says so: %r" % r.stderr)
    bad = os.path.join(work, "bad.yaml")
    with open(bad, "w") as f:
        f.write("rules:\n  - match: {Modality: MR}\n    forward: [nowhere]\n")
    with open(os.path.join(work, "badconf.yaml"), "w") as f:
        f.write("routing:\n  rules: %s\n" % bad)
    r = lib.run([lib.MITRAL, "route", "test", "-c", os.path.join(work, "badconf.yaml"),
                 generated[0]])
    lib.check(r.returncode != 0 and "bad.yaml:3:" in r.stderr and "nowhere" in r.stderr,
              "a rule naming an unknown destination is refused with file:line: %s" % r.stderr)

    b.start()
    a.start()
    batch1 = generated[:3] + real[:4]
    batch2 = generated[3:] + real[4:]
    n1 = send(a, batch1)
    lib.check(n1 == len(batch1), "batch 1 stored at A (%d/%d)" % (n1, len(batch1)))
    lib.wait_for(lambda: len(sop_set(b)) >= 1, "B receives from A's queue", 120)
    b.stop()
    n2 = send(a, batch2)
    lib.check(n2 == len(batch2), "batch 2 stored at A while B is down (%d/%d)" % (n2, len(batch2)))
    r = lib.run([lib.MITRAL, "queue", "list", "--data", a.data])
    lib.check(r.returncode == 0 and "central" in r.stdout,
              "queue list shows entries for central while it is down")
    rsr = lib.storescu(a, [sr], aet="PACS")
    lib.check("0x124" in rsr.stdout.lower(), "SR refused by A's rule (0124)")
    lib.check("comment=structured reports stay at the site" in a.log_text(),
              "the rule's reason is the ErrorComment")
    pending = queue_len(a)
    lib.check(pending > 0, "A's queue holds entries while B is down (%d)" % pending)
    # kill -9 A with a full queue; restart both
    a.kill9()
    a.start()
    b.start()
    n3 = send(a, later)
    lib.check(n3 == len(later), "the later study stored at A")
    # kill -9 A again, probably mid-drain, and restart: the queue drains all the same
    a.kill9()
    a.start()
    lib.wait_for(lambda: queue_len(a) == 0, "A's queue drains", 240)
    a_sops, b_sops = sop_set(a), sop_set(b)
    lib.check(a_sops and a_sops == b_sops,
              "B holds exactly A's instances (A %d, B %d, missing %d, extra %d)"
              % (len(a_sops), len(b_sops), len(a_sops - b_sops), len(b_sops - a_sops)))
    distinct = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
                for p in batch1 + batch2 + later}
    lib.check(len(b_sops) == len(distinct), "every instance arrived, once (%d of %d distinct "
              "SOP instances)" % (len(b_sops), len(distinct)))
    lib.check(not q(a, "SELECT 1 FROM forward_queue WHERE state = 1"), "nothing dead-lettered")
    # the forwarded file is the stored file
    pa = dict(q(a, "SELECT sop_instance_uid, path FROM instances"))
    pb = dict(q(b, "SELECT sop_instance_uid, path FROM instances"))
    same = 0
    for sop in a_sops & b_sops:
        fa = open(os.path.join(a.storage, pa[sop]), "rb").read()
        fb = open(os.path.join(b.storage, pb[sop]), "rb").read()
        # the data set bytes: B writes its own file meta (source AE, implementation)
        da, db_ = lib.dataset_bytes(os.path.join(a.storage, pa[sop])), \
            lib.dataset_bytes(os.path.join(b.storage, pb[sop]))
        same += (hashlib.sha1(da).digest() == hashlib.sha1(db_).digest()) and bool(fa) and bool(fb)
    lib.check(same == len(a_sops & b_sops), "B's data sets are A's stored data sets byte for "
              "byte (%d/%d)" % (same, len(a_sops & b_sops)))
    lib.check(not any(sop == str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
                      for p in generated + real for sop in b_sops),
              "no original SOP Instance UID at B (A forwarded the de-identified files)")

    # no identifying value of any input at B (storage and index)
    blob = b""
    for dirpath, _, files in os.walk(b.storage):
        for fn in files:
            blob += open(os.path.join(dirpath, fn), "rb").read()
    for table in ("patients", "studies", "series", "instances", "project_studies"):
        for row in q(b, "SELECT * FROM %s" % table):  # the values, not the schema's words
            blob += "\x00".join(str(v) for v in row).encode("utf-8", "replace")
    check_leaks.KEPT = check_leaks.kept_tags("basic")
    leaks, n_forms = [], 0
    for i, p in enumerate(generated + real + later):
        src = pydicom.dcmread(p, force=True)
        found, priv, shared = [], [], ([], set())
        check_leaks.collect(src, found, priv, shared)
        cs = src.get("SpecificCharacterSet", "ISO_IR 6")
        cs = [cs] if isinstance(cs, str) else (list(cs) or ["ISO_IR 6"])
        is_gen = p.startswith(gen)
        excused = b"\n".join(shared[0] + sorted(shared[1])) if not is_gen else b""
        for kw, s in found + (priv if is_gen else []):
            for v in check_leaks.variants(kw, s, cs):
                if v.upper() in excused or v.upper() in check_leaks.OURS:
                    continue
                n_forms += 1
                if v in blob:
                    leaks.append((i, kw))
    for i, kw in sorted(set(leaks)):
        lib.log("LEAK: input #%d: a value of %s is at B" % (i, kw))
    lib.check(not leaks, "no identifying value of any input at B (%d value forms)" % n_forms)

    # projects at B by B's rules
    rows = q(b, "SELECT st.study_instance_uid, group_concat(DISTINCT se.modality) FROM "
                   "studies st JOIN series se ON se.study_pk = st.pk GROUP BY st.pk")
    members = {}
    for p, s in q(b, "SELECT project, study_uid FROM project_studies"):
        members.setdefault(s, set()).add(p)
    wrong = [s for s, mods in rows
             if members.get(s) != ({"cmr"} if "MR" in (mods or "").split(",") else {"other"})]
    lib.check(rows and not wrong, "B's projects follow its rules (%d studies, %d wrong)"
              % (len(rows), len(wrong)))
    # linkage: the later study of the first patient has the same pseudonym at B. Which
    # instances at B they are: the same profile and key offline (mitral deid) give their UIDs.
    out = os.path.join(work, "offline")
    r = lib.run([lib.MITRAL, "deid", "--profile", "basic", "--key", key, generated[0],
                 later[0], out])
    lib.check(r.returncode == 0, "mitral deid offline: %s" % r.stderr[-300:])
    offl = [pydicom.dcmread(os.path.join(dp, f), stop_before_pixels=True)
            for dp, _, fs in os.walk(out) for f in fs]
    got = []
    for o in offl:
        path = pb.get(str(o.SOPInstanceUID))
        lib.check(path is not None, "the de-identified instance is at B")
        if path:
            got.append(pydicom.dcmread(os.path.join(b.storage, path), stop_before_pixels=True))
    if lib.check(len(got) == 2, "both studies of the patient found at B"):
        lib.check(got[0].StudyInstanceUID != got[1].StudyInstanceUID, "two different studies")
        lib.check(got[0].PatientID == got[1].PatientID and got[0].PatientID != first.PatientID,
                  "the later study has the same pseudonymous PatientID at B")
    a.stop()
    b.stop()


lib.run_guarded(main)
