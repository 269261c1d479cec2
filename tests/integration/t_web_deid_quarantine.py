#!/usr/bin/python3
"""t_web_deid_quarantine: STOW-RS parts with Burned In Annotation YES go to the same quarantine
as C-STORE (docs/deid.md "Quarantine"; node/http/stow.c).

A node whose profile (cmr-registry's settings in a temp file) says burned-in-annotation:
quarantine receives by STOW-RS into project p1 one instance with Burned In Annotation YES and
one without. Checks: 202 (PS3.18 Table 10.5.3-1: stored, warnings exist); both in
ReferencedSOPSequence, no FailedSOPSequence; the burned-in one with WarningReason (0008,1196)
B000 (PS3.18 Annex I.2.1) and an empty RetrieveURL, the clean one with its RetrieveURL; the
study RetrieveURL is the clean one's; <storage>/.quarantine/<mapped UID>.dcm holds it,
de-identified (no identifying value of the input, PatientIdentityRemoved YES); QIDO-RS does
not see it and the index has one instance; `mitral quarantine list` shows it and `release`
(node stopped) indexes it. A STOW of only the burned-in part answers 202 as well. A node with
burned-in-annotation: reject answers 409 with FailureReason 0110 and keeps nothing."""
import os
import sys

import lib
import web

sys.path.insert(0, os.path.join(lib.SRC, "tests", "deid"))

W_COERCION = 0xB000


def qfiles(node):
    q = os.path.join(node.storage, ".quarantine")
    return sorted(f for f in os.listdir(q) if f.endswith(".dcm")) if os.path.isdir(q) else []


def refs_of(r, tag):
    return (r or {}).get(tag, {}).get("Value", [])


def main():
    try:
        import pydicom
        import check_leaks
    except ImportError:
        lib.skip("pydicom / tests/deid missing")
    work = lib.tmpdir("mt-web-deid-quar-")
    key = os.path.join(work, "key")
    with open(key, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(key, 0o600)
    gen = os.path.join(work, "gen")
    os.mkdir(gen)
    inputs = check_leaks.make_cmr_study(gen)
    clean = inputs[1]
    d = pydicom.dcmread(inputs[0])
    d.BurnedInAnnotation = "YES"
    d.SOPInstanceUID = d.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    burned = os.path.join(work, "burned.dcm")
    d.save_as(burned)
    d.SOPInstanceUID = d.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    burned2 = os.path.join(work, "burned2.dcm")
    d.save_as(burned2)

    src = open(os.path.join(lib.SRC, "deid-profiles", "cmr-registry.yaml")).read()
    lib.check("burned-in-annotation: reject" in src, "cmr-registry.yaml has the burned-in key")
    prof = os.path.join(work, "cmr-quarantine.yaml")
    with open(prof, "w") as f:
        f.write(src.replace("name: cmr-registry", "name: cmr-quarantine")
                .replace("burned-in-annotation: reject", "burned-in-annotation: quarantine"))
    node = web.WebNode(name="webquar", extra={"deid.profile": prof, "deid.key_file": key})
    node.start()
    st, r = web.stow(node, "/projects/p1/dicomweb/studies", [burned, clean], web.ALICE)
    refs = refs_of(r, "00081199")
    lib.check(st == 202, "STOW with a quarantined part: 202 (got %s)" % st)
    lib.check(len(refs) == 2 and not refs_of(r, "00081198"),
              "both parts in ReferencedSOPSequence, no FailedSOPSequence (%s)" % r)
    warned = [x for x in refs if "00081196" in x]
    plain = [x for x in refs if "00081196" not in x]
    lib.check(len(warned) == 1 and warned[0]["00081196"].get("Value") == [W_COERCION],
              "the burned-in part: WarningReason B000")
    q_uid = warned[0]["00081155"]["Value"][0] if warned else ""
    lib.check(q_uid.startswith("2.25."), "its mapped SOP Instance UID is reported")
    lib.check(warned and not warned[0].get("00081190", {}).get("Value"),
              "quarantined: empty RetrieveURL")
    lib.check(len(plain) == 1 and plain[0]["00081190"]["Value"][0].endswith(
        plain[0]["00081155"]["Value"][0]), "the clean part: stored with its RetrieveURL")
    study_url = refs_of(r, "00081190")
    lib.check(plain and study_url and plain[0]["00081190"]["Value"][0].startswith(study_url[0]),
              "study RetrieveURL is the clean instance's study")
    lib.check(qfiles(node) == [q_uid + ".dcm"], "in .quarantine as <mapped UID>.dcm: %s"
              % qfiles(node))
    st, inst = web.get_json(node, "/projects/p1/dicomweb/instances", web.ALICE)
    uids = [x["00080018"]["Value"][0] for x in inst or []]
    lib.check(st == 200 and q_uid not in uids and len(uids) == 1,
              "QIDO-RS sees the clean instance only (%s)" % uids)
    st, r2 = web.stow(node, "/projects/p1/dicomweb/studies", [burned2], web.ALICE)
    w2 = [x for x in refs_of(r2, "00081199") if "00081196" in x]
    lib.check(st == 202 and len(w2) == 1, "only a quarantined part: 202 with a warning (%s)" % st)
    rc = node.stop()
    lib.check(rc == 0, "clean stop (rc %s)" % rc)
    lib.check(node.stats().get("instances") == 1, "index: one instance")
    lib.check("stow: quarantined (Burned In Annotation YES)" in node.all_logs(),
              "the node logs the quarantine")

    qpath = os.path.join(node.storage, ".quarantine", q_uid + ".dcm")
    blob = open(qpath, "rb").read()
    qd = pydicom.dcmread(qpath)
    lib.check(str(qd.get("PatientIdentityRemoved", "")) == "YES" and
              str(qd.get("BurnedInAnnotation", "")) == "YES",
              "quarantined file: PatientIdentityRemoved YES, Burned In Annotation YES kept")
    check_leaks.KEPT = check_leaks.kept_tags("cmr-registry")
    s = pydicom.dcmread(burned, force=True)
    found, priv, shared = [], [], ([], set())
    check_leaks.collect(s, found, priv, shared)
    cs = s.get("SpecificCharacterSet", "ISO_IR 6")
    cs = [cs] if isinstance(cs, str) else (list(cs) or ["ISO_IR 6"])
    leaks, n_forms = [], 0
    for kw, v0 in found + priv:
        for v in check_leaks.variants(kw, v0, cs):
            if v.upper() in check_leaks.OURS:
                continue
            n_forms += 1
            if v in blob:
                leaks.append(kw)
    lib.check(n_forms > 0 and not leaks, "quarantined file carries no identifying value "
              "(%d forms; leaked: %s)" % (n_forms, sorted(set(leaks))))

    conf = ["-c", node.conf_path, "--data", node.data]
    r = node.cli("quarantine", "list", *conf)
    listed = sorted(ln.split()[0] for ln in r.stdout.splitlines() if ln.strip())
    lib.check(r.returncode == 0 and q_uid in listed and len(listed) == 2,
              "mitral quarantine list shows both STOW parts")
    r = node.cli("quarantine", "release", q_uid, *conf)
    lib.check(r.returncode == 0, "release: %s" % (r.stdout + r.stderr).strip())
    lib.check(node.stats().get("instances") == 2, "index: two instances after release")

    # reject mode: 409, FailureReason 0110, nothing kept
    rnode = web.WebNode(name="webrej", extra={"deid.profile": "cmr-registry",
                                              "deid.key_file": key})
    rnode.start()
    st, r = web.stow(rnode, "/projects/p1/dicomweb/studies", [burned], web.ALICE)
    failed = refs_of(r, "00081198")
    lib.check(st == 409 and len(failed) == 1 and failed[0]["00081197"]["Value"] == [0x0110],
              "reject: 409 with FailureReason 0110 (%s)" % st)
    lib.check(rnode.stop() == 0, "reject node: clean stop")
    lib.check(qfiles(rnode) == [] and rnode.stats().get("instances") == 0,
              "reject: nothing stored or quarantined")


lib.run_guarded(main)
