#!/usr/bin/python3
"""t_deid_quarantine.py - burned-in-annotation: quarantine (issue 4; docs/deid.md Quarantine).

A node whose profile file (cmr-registry's settings, copied to a temp file) sets
burned-in-annotation: quarantine receives by storescu an instance with Burned In Annotation YES
and one without. The first is answered with warning B000 and an ErrorComment saying it was
quarantined; it lands in <storage>/.quarantine/<mapped SOP UID>.dcm, de-identified (byte scan for
every identifying value of the input, tests/deid/check_leaks.py's rules), and is invisible to
findscu and to `mitral index stats`; the second is stored as usual. `mitral quarantine list`
shows the first; `release` (node stopped) stores and indexes it, after which findscu finds it;
a second quarantined instance is purged by `purge SOP` and the directory is empty after
`purge --all`. A node with burned-in-annotation: reject still answers 0110 and stores nothing."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "deid"))
from ul_peer import Node, check, dcmtk, skip  # noqa: E402

try:
    import pydicom  # noqa: E402
    import check_leaks  # noqa: E402
except ImportError:
    skip("pydicom not installed")

mitral = os.environ.get("MITRAL")
if not mitral:
    skip("MITRAL not set")
work = tempfile.mkdtemp(prefix="mt_deid_quar_")
key = os.path.join(work, "key")
with open(key, "wb") as f:
    f.write(os.urandom(32))
os.chmod(key, 0o600)
gen = os.path.join(work, "gen")
os.mkdir(gen)
inputs = check_leaks.make_cmr_study(gen)
clean = inputs[1]


def burned_copy(name):
    d = pydicom.dcmread(inputs[0])
    d.BurnedInAnnotation = "YES"
    d.SOPInstanceUID = d.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    p = os.path.join(work, name)
    d.save_as(p)
    return p


burned, burned2 = burned_copy("burned.dcm"), burned_copy("burned2.dcm")

# cmr-registry's settings in a temp profile file, with quarantine (its base: in the build's dir)
src = open(os.path.join(ROOT, "deid-profiles", "cmr-registry.yaml")).read()
check("burned-in-annotation: reject" in src, "cmr-registry.yaml has the burned-in key")
prof_dir = os.path.join(work, "profiles")
os.mkdir(prof_dir)
prof = os.path.join(prof_dir, "cmr-quarantine.yaml")
with open(prof, "w") as f:
    f.write(src.replace("name: cmr-registry", "name: cmr-quarantine")
            .replace("burned-in-annotation: reject", "burned-in-annotation: quarantine"))
conf_extra = "deid:\n  profile: %s\n  key_file: %s\n" % (prof, key)


def store(port, path):
    return dcmtk("storescu", "-v", "-aec", "MITRAL", "127.0.0.1", str(port), path)


def cfind(port, level, keys):
    xdir = os.path.join(work, "x")
    shutil.rmtree(xdir, ignore_errors=True)
    os.mkdir(xdir)
    args = ["-S", "-X", "-od", xdir, "-aec", "MITRAL", "-k", "QueryRetrieveLevel=" + level]
    for k in keys:
        args += ["-k", k]
    rc, out = dcmtk("findscu", *(args + ["127.0.0.1", str(port)]))
    return [pydicom.dcmread(os.path.join(xdir, f), force=True) for f in sorted(os.listdir(xdir))]


def find_images(port):
    """Every SOP Instance UID C-FIND reports, walking study -> series -> image."""
    sops = set()
    for st in cfind(port, "STUDY", ["StudyInstanceUID"]):
        stu = str(st.StudyInstanceUID)
        for se in cfind(port, "SERIES", ["StudyInstanceUID=" + stu, "SeriesInstanceUID"]):
            ser = str(se.SeriesInstanceUID)
            for im in cfind(port, "IMAGE", ["StudyInstanceUID=" + stu,
                                            "SeriesInstanceUID=" + ser, "SOPInstanceUID"]):
                sops.add(str(im.SOPInstanceUID))
    return sops


def cli(node_dir, *args):
    p = subprocess.run([mitral, "quarantine"] + list(args) +
                       ["-c", os.path.join(node_dir, "mitral.yaml")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def stats(node_dir):
    p = subprocess.run([mitral, "index", "stats", "-c", os.path.join(node_dir, "mitral.yaml")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    m = re.search(r"instances (\d+)", p.stdout.decode())
    return int(m.group(1)) if m else -1


def qfiles(node_dir):
    q = os.path.join(node_dir, "data", "storage", ".quarantine")
    return sorted(os.listdir(q)) if os.path.isdir(q) else []


node = Node(conf_extra=conf_extra)
try:
    rc, out = store(node.port, burned)
    check("Warning" in out or "0xb000" in out.lower(), "Burned In Annotation YES: warning status")
    check("(Success)" not in out, "... not plain success")
    rc, out = store(node.port, clean)
    check(rc == 0 and "(Success)" in out, "the clean instance is stored")
    found = find_images(node.port)
    check(len(found) == 1, "findscu: only the clean instance (%d found)" % len(found))
    rc, out = store(node.port, burned2)
    check("Warning" in out or "0xb000" in out.lower(), "second burned-in instance: warning")
finally:
    node.stop()

logtext = node.read_log()
check("quarantined" in logtext, "the node logs the quarantine")
check("quarantined: Burned In Annotation YES" in logtext, "ErrorComment says quarantined")
qf = qfiles(node.dir)
check(len(qf) == 2 and all(f.startswith("2.25.") and f.endswith(".dcm") for f in qf),
      "two files in .quarantine, named by mapped UIDs: %s" % qf)
check(stats(node.dir) == 1, "index stats: one instance (the quarantined ones are not indexed)")

# de-identified: no identifying value of the inputs in the quarantined files
blob = b"".join(open(os.path.join(node.dir, "data", "storage", ".quarantine", f), "rb").read()
                for f in qf)
check_leaks.KEPT = check_leaks.kept_tags("cmr-registry")
leaks, n_forms = [], 0
for p in (burned, burned2):
    s = pydicom.dcmread(p, force=True)
    found_v, priv, shared = [], [], ([], set())
    check_leaks.collect(s, found_v, priv, shared)
    cs = s.get("SpecificCharacterSet", "ISO_IR 6")
    cs = [cs] if isinstance(cs, str) else (list(cs) or ["ISO_IR 6"])
    for kw, v0 in found_v + priv:
        for v in check_leaks.variants(kw, v0, cs):
            if v.upper() in check_leaks.OURS:
                continue
            n_forms += 1
            if v in blob:
                leaks.append(kw)
check(n_forms > 0 and not leaks, "quarantined files carry no identifying value (%d forms; "
      "leaked: %s)" % (n_forms, sorted(set(leaks))))
qd = pydicom.dcmread(os.path.join(node.dir, "data", "storage", ".quarantine", qf[0]))
check(str(qd.get("PatientIdentityRemoved", "")) == "YES" and
      str(qd.get("BurnedInAnnotation", "")) == "YES",
      "quarantined file: PatientIdentityRemoved YES, Burned In Annotation YES kept")

rc, out = cli(node.dir, "list")
listed = [ln.split()[0] for ln in out.splitlines() if ln.strip()]
check(rc == 0 and sorted(u + ".dcm" for u in listed) == qf, "quarantine list shows both")
first = listed[0]
second = listed[1]
rc, out = cli(node.dir, "release", first)
check(rc == 0 and "released" in out, "release " + out.strip())
check(stats(node.dir) == 2, "index stats: two instances after release")
check(qfiles(node.dir) == [second + ".dcm"], "released file left the quarantine")
rc, out = cli(node.dir, "release", first)
check(rc != 0, "releasing it again fails: " + out.strip())
rc, out = cli(node.dir, "purge", second)
check(rc == 0 and qfiles(node.dir) == [], "purge SOP removes it")
rc, out = cli(node.dir, "purge", second)
check(rc != 0, "purging an absent one fails")
rc, out = cli(node.dir, "purge", "--all")
check(rc == 0 and "purged 0" in out, "purge --all on an empty quarantine")
rc, out = cli(node.dir, "list", "1.2.3")
check(rc == 2, "list takes no UID")

# restart the same node: the released instance is findable
conf = os.path.join(node.dir, "mitral.yaml")
logf = open(os.path.join(work, "log2"), "w")
proc = subprocess.Popen([mitral, "serve", "-c", conf], stdout=logf, stderr=subprocess.STDOUT)
try:
    for _ in range(400):
        if proc.poll() is not None:
            raise SystemExit("FAIL: restarted node exited")
        try:
            socket.create_connection(("127.0.0.1", node.port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    found = find_images(node.port)
    check(first in found and len(found) == 2, "after release, findscu finds it")
    rc, out = store(node.port, burned2)
    check("Warning" in out or "0xb000" in out.lower(), "quarantine again after restart")
finally:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    logf.close()
rc, out = cli(node.dir, "purge", "--all")
check(rc == 0 and "purged 1" in out and qfiles(node.dir) == [], "purge --all empties it")
node.cleanup()

# offline `mitral deid` with the same profile: the burned-in input goes to OUT/quarantine/
out_dir = os.path.join(work, "offline")
pr = subprocess.run([mitral, "deid", "--profile", prof, "--key", key, burned, clean, out_dir],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
msg = pr.stdout.decode("utf-8", "replace")
qo = os.path.join(out_dir, "quarantine")
qlist = sorted(os.listdir(qo)) if os.path.isdir(qo) else []
others = [f for a, _, fs in os.walk(out_dir) if a != qo for f in fs if f.endswith(".dcm")]
check(pr.returncode == 0 and "1 quarantined" in msg and len(qlist) == 1 and len(others) == 1,
      "mitral deid: 1 written, 1 in OUT_DIR/quarantine/ (%s)" % msg.strip().splitlines()[-1])
check(qlist[0][:-4] in (first, second), "offline quarantine: same mapped SOP UID as the node's")
qd = pydicom.dcmread(os.path.join(qo, qlist[0]))
check(str(qd.get("PatientIdentityRemoved", "")) == "YES", "offline quarantine: de-identified")

# reject mode unchanged
rnode = Node(conf_extra="deid:\n  profile: cmr-registry\n  key_file: %s\n" % key)
try:
    rc, out = store(rnode.port, burned)
    check("(Success)" not in out and "Warning" not in out and
          ("Processing Failure" in out or "0x110" in out.lower()), "reject: 0110")
finally:
    rnode.stop()
check(qfiles(rnode.dir) == [] and stats(rnode.dir) == 0, "reject: nothing stored or quarantined")
storage = os.path.join(rnode.dir, "data", "storage")
check(not [f for a, _, fs in os.walk(storage) for f in fs if f.endswith(".dcm")],
      "reject: no file at all")
rnode.cleanup()
shutil.rmtree(work, ignore_errors=True)
print("PASS")
