#!/usr/bin/python3
"""t_deid_store.py - de-identification on the C-STORE path (issue 4).

storescu (dcmsend for compressed files) -> a node with deid.profile cmr-registry: every stored file, the index database and
the node's log are scanned byte by byte for every identifying value of every input (raw,
upper-cased, dates in DA/ISO/European form; tests/deid/check_leaks.py's rules), for generated
CMR instances full of identifiers and real files (native, encapsulated, big endian, Siemens
overlays); the stored files are named by mapped 2.25 UIDs and dcmdump reads them; Pixel Data is
stored byte for byte; Burned In Annotation YES is refused (0110) and nothing is stored; the same
instance sent twice is stored under the same mapped UID (determinism).
findscu sees only pseudonyms: no original Patient ID or name matches anything.
A node with deid.profile none stores exactly the bytes it received.
A node refuses to start with a world-readable key, with no key, or with a broken profile
(the message names file:line)."""
import os
import shutil
import stat
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "deid"))
from ul_peer import (EXPLICIT_LE, Node, Peer, check, command_set, dcmtk, pdata,  # noqa: E402
                     release_rq, skip)

try:
    import pydicom  # noqa: E402
    import check_leaks  # noqa: E402
except ImportError:
    skip("pydicom not installed")

TESTDATA = os.path.join(ROOT, "..", "shared", "testdata")
REAL = ["pydicom/test_files/MR_small.dcm", "pydicom/test_files/MR_small_bigendian.dcm",
        "pydicom/test_files/JPEG2000.dcm", "pydicom/test_files/CT_small.dcm",
        "pydicom-data/MR-SIEMENS-DICOM-WithOverlays.dcm",
        "pydicom/charset_files/chrH31.dcm", "pydicom/charset_files/chrX1.dcm"]

work = tempfile.mkdtemp(prefix="mt_deid_store_")
key = os.path.join(work, "key")
with open(key, "wb") as f:
    f.write(os.urandom(32))
os.chmod(key, 0o600)
gen = os.path.join(work, "gen")
os.mkdir(gen)
inputs = check_leaks.make_cmr_study(gen)
inputs += [os.path.join(TESTDATA, r) for r in REAL if os.path.exists(os.path.join(TESTDATA, r))]
# Burned In Annotation YES: refused
burned = os.path.join(work, "burned.dcm")
d = pydicom.dcmread(inputs[0])
d.BurnedInAnnotation = "YES"
d.SOPInstanceUID = d.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
d.save_as(burned)


NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}


def store(node, path):
    """storescu for native syntaxes; dcmsend (which proposes the file's own syntax) for the
    compressed ones, so they are stored as sent."""
    ts = str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
    if ts in NATIVE:
        return dcmtk("storescu", "-v", "-aec", "MITRAL", "127.0.0.1", str(node.port), path)
    rc, out = dcmtk("dcmsend", "-v", "-aec", "MITRAL", "127.0.0.1", str(node.port), path)
    return rc, out.replace("C-STORE Response (Success)", "Store Response (Success)")


def files_under(d):
    return sorted(os.path.join(a, f) for a, _, fs in os.walk(d) for f in fs)


node = Node(conf_extra="deid:\n  profile: cmr-registry\n  key_file: %s\n" % key)
try:
    check("profile cmr-registry" in node.read_log(), "node logs the profile in force")
    for p in inputs:
        rc, out = store(node, p)
        check(rc == 0 and "(Success)" in out, "stored: %s" % os.path.basename(p))
    rc, out = store(node, inputs[0])  # the same instance again: same mapped UID (overwrite)
    check(rc == 0 and "(Success)" in out, "stored again: %s" % os.path.basename(inputs[0]))
    rc, out = store(node, burned)
    check("(Success)" not in out and ("Processing Failure" in out or "0x110" in out.lower()),
          "Burned In Annotation YES: refused with 0110")
    # C-FIND sees only pseudonyms; the original Patient IDs and names find nothing
    xdir = os.path.join(work, "x")

    def find(*keys):
        shutil.rmtree(xdir, ignore_errors=True)
        os.mkdir(xdir)
        args = ["-P", "-X", "-od", xdir, "-aec", "MITRAL", "-k", "QueryRetrieveLevel=PATIENT"]
        for k in keys:
            args += ["-k", k]
        rc, out = dcmtk("findscu", *(args + ["127.0.0.1", str(node.port)]))
        return rc, [pydicom.dcmread(os.path.join(xdir, f), force=True)
                    for f in sorted(os.listdir(xdir))]

    rc, rs = find("PatientID", "PatientName")
    ids = sorted(str(r.PatientID) for r in rs)
    check(rc == 0 and rs and all(i.startswith("CMR") and len(i) == 19 for i in ids),
          "C-FIND: %d patients, every Patient ID a CMR pseudonym" % len(rs))
    check(all(str(r.PatientName) == str(r.PatientID) for r in rs),
          "C-FIND: Patient's Name is the pseudonym")
    originals = {str(pydicom.dcmread(p, stop_before_pixels=True).get("PatientID", ""))
                 for p in inputs}
    originals.discard("")
    hits = 0
    for pid in sorted(originals):
        rc, rs = find("PatientID=%s" % pid)
        hits += len(rs)
    check(hits == 0, "C-FIND: none of the %d original Patient IDs matches" % len(originals))
    rc, rs = find("PatientName=M*LLER*")
    check(rc == 0 and not rs, "C-FIND: an original name matches nothing")
finally:
    node.stop()

storage = os.path.join(node.dir, "data", "storage")
stored = [f for f in files_under(storage) if f.endswith(".dcm")]
n_uids = len({str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in inputs})
check(len(stored) == n_uids, "%d files stored for %d distinct instances (none for the refused "
      "one; one for an instance sent twice or in two encodings)" % (len(stored), n_uids))
blob = b"".join(open(f, "rb").read() for f in files_under(os.path.join(node.dir, "data")))
blob += open(node.log_path, "rb").read()
n_forms = 0
leaks = []
KEPT_PROFILE = "cmr-registry"
check_leaks.KEPT = check_leaks.kept_tags(KEPT_PROFILE)
for i, p in enumerate(inputs + [burned]):
    src = pydicom.dcmread(p, force=True)
    found, priv, shared = [], [], ([], set())
    check_leaks.collect(src, found, priv, shared)
    cs = src.get("SpecificCharacterSet", "ISO_IR 6")
    cs = [cs] if isinstance(cs, str) else (list(cs) or ["ISO_IR 6"])
    generated = p.startswith(gen) or p == burned
    excused = b"\n".join(shared[0] + sorted(shared[1])) if not generated else b""
    for kw, s in found + (priv if generated else []):
        for v in check_leaks.variants(kw, s, cs):
            if v.upper() in excused or v.upper() in check_leaks.OURS:
                continue
            n_forms += 1
            if v in blob:
                leaks.append((i, kw))
                if os.environ.get("MT_DEID_DEBUG"):  # synthetic values only: never in CI logs
                    k = blob.find(v)
                    print("DEBUG", p, kw, v, blob[max(0, k - 60):k + 40])
for i, kw in sorted(set(leaks)):
    print("LEAK: input #%d: a value of %s is in the storage, the index or the log" % (i, kw))
check(not leaks, "no identifying value in storage, index or log (%d value forms)" % n_forms)
for f in stored:
    check(os.path.basename(f).startswith("2.25."), "stored under a mapped UID: ..%s"
          % os.path.basename(f)[-12:])
    r = subprocess.run(["dcmdump", "-q", f], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    check(r.returncode == 0 and b"E: " not in r.stderr, "dcmdump reads it")
# Pixel Data stored as received (one real file, native)
mr = os.path.join(TESTDATA, REAL[0])
if os.path.exists(mr):
    src = pydicom.dcmread(mr)
    outs = [pydicom.dcmread(f) for f in stored]
    same = [o for o in outs if o.get("Rows") == src.Rows and o.get("PixelData") == src.PixelData]
    check(len(same) >= 1, "MR_small: Pixel Data stored byte for byte")
    o = same[0]
    check(o.PatientIdentityRemoved == "YES" and o.LongitudinalTemporalInformationModified ==
          "MODIFIED", "PatientIdentityRemoved YES, LongitudinalTemporalInformationModified")
    check(o.SOPInstanceUID == o.file_meta.MediaStorageSOPInstanceUID != src.SOPInstanceUID,
          "meta and data set carry the same mapped SOP Instance UID")
node.cleanup()

# deid.profile none: the stored bytes are the received bytes. A raw peer sends the file's own
# data set bytes (storescu would re-encode them), so "received" is known exactly.
def dataset_bytes(path):
    b = open(path, "rb").read()
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    meta_len = 132 + 12 + ds.file_meta.FileMetaInformationGroupLength
    return b[meta_len:]


def raw_store(node, path):
    src = pydicom.dcmread(path, stop_before_pixels=True)
    data = dataset_bytes(path)
    p = Peer(node.port)
    t, _ = p.associate(contexts=((1, str(src.SOPClassUID), (EXPLICIT_LE,)),))
    check(t == 0x02, "raw peer: associated")
    p.send(pdata(1, True, True, command_set(0x0001, 1, str(src.SOPClassUID),
                                            str(src.SOPInstanceUID), has_data=True)))
    for i in range(0, len(data), 16000):
        p.send(pdata(1, False, i + 16000 >= len(data), data[i:i + 16000]))
    _, rsp = p.recv_command()
    p.send(release_rq())
    p.recv_pdu()
    p.close()
    return rsp.get(0x0900)


node = Node(conf_extra="deid:\n  profile: none\n")
try:
    status = raw_store(node, mr)
    check(status == 0, "profile none: stored (status %r)" % (status,))
finally:
    node.stop()
stored = [f for f in files_under(os.path.join(node.dir, "data", "storage")) if f.endswith(".dcm")]
check(len(stored) == 1, "profile none: one file")
check(dataset_bytes(stored[0]) == dataset_bytes(mr), "profile none: data set bytes unchanged")
node.cleanup()

# start-up refusals
mitral = os.environ["MITRAL"]
bad_profile = os.path.join(work, "bad.yaml")
with open(bad_profile, "w") as f:
    f.write("name: bad\nbase: basic\nattributes:\n  PatientName: Q\n")


def start_fails(conf_extra, what, needle):
    conf = os.path.join(work, "c.yaml")
    with open(conf, "w") as f:
        f.write("node:\n  bind: 127.0.0.1\n  port: 1\n  data_dir: %s\n" % os.path.join(work, "d"))
        f.write(conf_extra)
    r = subprocess.run([mitral, "serve", "-c", conf], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode("utf-8", "replace")
    check(r.returncode != 0 and needle in out, "refuses to start: %s" % what)


os.chmod(key, 0o644)
start_fails("deid:\n  profile: basic\n  key_file: %s\n" % key, "world-readable key",
            "accessible by group or others")
os.chmod(key, 0o600)
start_fails("deid:\n  profile: basic\n", "profile without key_file", "deid.key_file")
start_fails("deid:\n  profile: %s\n  key_file: %s\n" % (bad_profile, key),
            "unknown action (file:line)", "bad.yaml:4:")
start_fails("deid:\n  profile: nosuch\n  key_file: %s\n" % key, "unknown profile", "nosuch")
subprocess.run(["rm", "-rf", work])
print("t_deid_store: ok")
