#!/usr/bin/python3
"""t_route_queue.py - per-rule de-identification, dead letters and `mitral queue` (issue 6).

Node A: deid.profile none node-wide, key_file set; rule "mr" de-identifies MR with the basic
profile, rule "rest" stores the others as received; both forward to `central`, which is down,
with forward.max_age 1s: the entries go dead (an association that cannot be opened is no
attempt: forward.max_attempts alone never kills them, t_route_dest_down.py). `mitral queue list` shows them (state dead,
last error), `queue list --dead` too; `queue purge ID` deletes one; B comes up; `queue retry`
revives the rest and they arrive; `queue purge --all` on an empty queue purges nothing.
`queue SUBCOMMAND --help` prints the usage (exit 0); an id that is not a number is refused.
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lib  # noqa: E402

try:
    import pydicom  # noqa: E402
    from pydicom.uid import generate_uid  # noqa: E402
except ImportError:
    lib.skip("pydicom not installed")
if not lib.IS_MITRAL:
    lib.skip("needs mitral")


def q(node, sql):
    return [tuple(r.values()) for r in node.query(sql)]


def make(path, modality, pid):
    meta = pydicom.dataset.FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4" if modality == "MR" else \
        "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds = pydicom.dataset.FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = modality
    ds.PatientID = pid
    ds.PatientName = "Queue^Patient"
    ds.Rows = ds.Columns = 2
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = b"\1" * 8
    ds.save_as(path, write_like_original=False)
    return str(ds.SOPInstanceUID)


def main():
    work = lib.tmpdir("mt-route-q-")
    key = os.path.join(work, "key")
    with open(key, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(key, 0o600)
    files, sops = [], {}
    for i, mod in enumerate(["MR", "MR", "CT", "CT"]):
        p = os.path.join(work, "%d.dcm" % i)
        sops[p] = make(p, mod, "QPID%d" % i)
        files.append(p)
    b = lib.Node("central", aet="CENTRAL")
    b.port = lib.free_port()
    rules = os.path.join(work, "rules.yaml")
    with open(rules, "w") as f:
        f.write("rules:\n"
                "  - name: mr\n    match: {Modality: MR}\n    deid: basic\n"
                "    forward: [central]\n"
                "  - name: rest\n    forward: [central]\n")
    a = lib.Node("site", aet="SITE",
                 conf={"deid.key_file": key, "routing.rules": rules,
                       "forward.retry_initial": "50ms", "forward.retry_max": "100ms",
                       "forward.max_age": "1s", "forward.connect_timeout": "1s"},
                 yaml_extra="destinations:\n  - name: central\n    ae_title: CENTRAL\n"
                            "    host: 127.0.0.1\n    port: %d\n    associations: 1\n" % b.port)
    a.start()
    r = lib.storescu(a, files, aet="PACS")
    ok = sum(1 for _, s in lib.store_results(r.stdout) if s == "Success")
    lib.check(ok == 4, "4 instances stored at A (%d)" % ok)
    # per-rule deid: MR de-identified, CT stored as received
    at_a = {r[0] for r in q(a, "SELECT sop_instance_uid FROM instances")}
    lib.check(sops[files[2]] in at_a and sops[files[3]] in at_a, "CT stored under its own UID")
    lib.check(sops[files[0]] not in at_a and sops[files[1]] not in at_a,
              "MR stored under a mapped UID (deid: basic by rule)")
    pids = {r[0] for r in q(a, "SELECT patient_id FROM patients")}
    lib.check("QPID2" in pids and "QPID0" not in pids, "MR patient pseudonymised, CT not")
    lib.wait_for(lambda: q(a, "SELECT count(*) FROM forward_queue WHERE state = 1")[0][0] == 4,
                 "entries dead after max_age", 120)
    r = lib.run([lib.MITRAL, "queue", "list", "--data", a.data])
    lib.check(r.returncode == 0 and r.stdout.count(" dead ") == 4 and "4 entries" in r.stdout,
              "queue list: 4 dead entries: %s" % r.stdout[-300:])
    lib.check("no association" in r.stdout or "refused" in r.stdout.lower() or
              "connection" in r.stdout.lower(), "queue list shows the last error")
    r = lib.run([lib.MITRAL, "queue", "list", "--dead", "--data", a.data])
    lib.check("4 entries" in r.stdout, "queue list --dead")
    first_id = q(a, "SELECT min(id) FROM forward_queue")[0][0]
    r = lib.run([lib.MITRAL, "queue", "purge", str(first_id), "--data", a.data])
    lib.check(r.returncode == 0 and "purged 1 entry" in r.stdout, "queue purge ID: %s" % r.stdout)
    r = lib.run([lib.MITRAL, "queue", "purge", str(first_id), "--data", a.data])
    lib.check(r.returncode == 1 and "no entry %d" % first_id in r.stderr,
              "queue purge of an id that names no entry: exit 1 and says so (%s %r)"
              % (r.returncode, r.stderr))
    r = lib.run([lib.MITRAL, "queue", "retry", "--dest", "central", str(first_id + 1),
                 "--data", a.data])
    lib.check(r.returncode == 2 and "no --dest or --all" in r.stderr,
              "queue retry with ids and --dest: refused (%s %r)" % (r.returncode, r.stderr))
    # a revived entry's age counts from the retry (max_age is 1s here: it died of age before)
    t_retry = int(time.time() * 1000) - 5
    r = lib.run([lib.MITRAL, "queue", "retry", str(first_id + 1), "--data", a.data])
    lib.check(r.returncode == 0 and "retrying 1 entry" in r.stdout, "queue retry ID: %s" % r.stdout)
    row = q(a, "SELECT state, attempts, queued_at FROM forward_queue WHERE id = %d" % (first_id + 1))
    lib.check(row and row[0][0] == 0 and row[0][1] == 0 and row[0][2] >= t_retry,
              "the retried entry is pending, attempts 0, queued_at reset: %r" % (row,))
    lib.wait_for(lambda: q(a, "SELECT state FROM forward_queue WHERE id = %d"
                           % (first_id + 1))[0][0] == 1,
                 "the retried entry dead again once max_age has passed since the retry", 60)
    b.start()
    r = lib.run([lib.MITRAL, "queue", "retry", "--data", a.data])
    lib.check(r.returncode == 0 and "retrying 3 entries" in r.stdout, "queue retry: %s" % r.stdout)
    lib.wait_for(lambda: q(a, "SELECT count(*) FROM forward_queue")[0][0] == 0,
                 "the revived entries drain", 120)
    at_b = {r[0] for r in q(b, "SELECT sop_instance_uid FROM instances")}
    lib.check(len(at_b) == 3 and at_b <= at_a, "the 3 revived instances arrived at B")
    r = lib.run([lib.MITRAL, "queue", "purge", "--all", "--data", a.data])
    lib.check(r.returncode == 0 and "purged 0 entries" in r.stdout, "purge --all: nothing left")
    for sub in ("list", "retry", "purge"):
        for h in ("--help", "-h"):
            r = lib.run([lib.MITRAL, "queue", sub, h])
            lib.check(r.returncode == 0 and "usage: mitral queue" in r.stdout and not r.stderr,
                      "queue %s %s: usage, exit 0 (%s %r)" % (sub, h, r.returncode, r.stderr))
    for bad in ("12abc", "1.5", "99999999999999999999999"):
        r = lib.run([lib.MITRAL, "queue", "retry", bad, "--data", a.data])
        lib.check(r.returncode == 2 and bad in r.stderr,
                  "queue retry %s: refused as a bad id (%s %r)" % (bad, r.returncode, r.stderr))
    a.stop()
    b.stop()


lib.run_guarded(main)
