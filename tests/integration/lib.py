"""
lib.py - shared helpers of the integration tests (tests/integration/t_*.py).

Each test is a small script run by ctest with, in its environment,
  MITRAL=<built binary>  MT_SOURCE_DIR=<source dir>  TCP_NODELAY=1
It starts its own node(s) on a free 127.0.0.1 port, in a temp directory given with --data,
drives real dcmtk peers (echoscu, storescu, dcmsend) and/or the raw client in dul.py against it,
and checks the files in <data>/storage and the rows in <data>/index.sqlite.

  node = lib.Node(conf={...})      # optional YAML config overlay (dict of dotted keys)
  node.start()                     # waits until the port listens (or the process died)
  ...
  node.stop()                      # SIGTERM, wait, SIGKILL if it does not exit; returns rc

Checks go through lib.check(cond, msg): a failure is recorded and reported at the end, with
the tail of every node's log. lib.finish() exits 0 (all passed), 1 (some failed) or 77
(skipped: ctest's SKIP_RETURN_CODE).

No timed assertions: waits have generous deadlines only so that a hung node fails the test
instead of hanging it (ctest's own timeout is 300 s).

Harness self-check: MT_TARGET=storescp runs the same tests against dcmtk's storescp (+B, so it
writes the bytes it received) instead of mitral; checks that need mitral's index or AE title
checks are skipped then (lib.IS_MITRAL is False).
"""
import glob
import hashlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")  # pydicom's complaints about the hostile test files

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("MT_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
MITRAL = os.environ.get("MITRAL", os.path.join(SRC, "build-asan", "mitral"))
TARGET = os.environ.get("MT_TARGET", "mitral")
IS_MITRAL = TARGET == "mitral"
TESTDATA = os.path.join(SRC, "..", "shared", "testdata")
PEER_ENV = dict(os.environ, TCP_NODELAY="1")
# ASan: a leak report at exit must not turn a graceful stop into a failure we cannot read.
PEER_ENV.setdefault("ASAN_OPTIONS", "detect_leaks=1")

_failures = []
_nodes = []
_tmpdirs = []
_checks = 0


def log(msg):
    print(msg, flush=True)


def check(cond, msg):
    """Record one check; returns cond so callers can branch on it."""
    global _checks
    _checks += 1
    if cond:
        return True
    _failures.append(msg)
    log("FAIL: " + msg)
    return False


def skip(msg):
    log("SKIP: " + msg)
    _cleanup(keep=False)
    sys.exit(77)


def _cleanup(keep):
    for n in _nodes:
        if n.proc and n.proc.poll() is None:
            n.stop()
    if keep:
        return
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


KEEP_LIMIT = 256 << 20  # a failed run keeps its temp dirs up to this size (MT_KEEP_TMP=1: always)


def _tree_bytes(d):
    total = 0
    for root, _dirs, files in os.walk(d):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def _keep_failed_tmpdirs():
    """A failed test keeps its temp dirs for a post-mortem, unless they are big (a failed bench
    or soak once left ~40 GB): then they go, the logs above being what is left to read."""
    size = sum(_tree_bytes(d) for d in _tmpdirs)
    if os.environ.get("MT_KEEP_TMP") == "1" or size <= KEEP_LIMIT:
        log("temp directories kept: " + " ".join(_tmpdirs))
        return True
    log("temp directories removed (%d MB; MT_KEEP_TMP=1 keeps them): %s"
        % (size >> 20, " ".join(_tmpdirs)))
    return False


def finish():
    """Report and exit. On failure, every node's log tail is printed and temp dirs are kept (up to
    KEEP_LIMIT, see _keep_failed_tmpdirs)."""
    if _failures:
        for n in _nodes:
            n.dump_log()
        log("%d of %d checks failed:" % (len(_failures), _checks))
        for f in _failures:
            log("  - " + f)
        _cleanup(keep=_keep_failed_tmpdirs())
        sys.exit(1)
    log("all %d checks passed" % _checks)
    _cleanup(keep=False)
    sys.exit(0)


def run_guarded(fn):
    """Run a test body; an exception is a failure (with the logs), never a hang or a crash."""
    try:
        fn()
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001 - report anything
        import traceback
        traceback.print_exc()
        check(False, "exception: %r" % (e,))
    finish()


def tmpdir(prefix="mt-integ-"):
    d = tempfile.mkdtemp(prefix=prefix)
    _tmpdirs.append(d)
    return d


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_listening(port):
    """Is some socket in LISTEN state on 127.0.0.1/0.0.0.0:port (from /proc/net/tcp)."""
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    local, state = parts[1], parts[3]
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        return True
        except OSError:
            pass
    return False


def wait_for(pred, what, deadline_s=60.0, interval=0.05, proc=None):
    """Poll pred() until true. Fails (returns False) if the deadline passes or proc exits."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if pred():
            return True
        if proc is not None and proc.poll() is not None:
            check(False, "%s: process exited with %s while waiting" % (what, proc.returncode))
            return False
        time.sleep(interval)
    check(False, "%s: still not true after %.0f s" % (what, deadline_s))
    return False


def _yaml_value(v):
    if isinstance(v, list):
        return "[" + ", ".join(str(x) for x in v) + "]"
    return str(v)


def yaml_from_dict(d):
    """{'storage.duplicates': 'reject', 'log.level': 'debug'} -> YAML text (two levels)."""
    sections = {}
    for key, val in d.items():
        sec, k = key.split(".", 1)
        sections.setdefault(sec, []).append((k, val))
    out = []
    for sec, items in sections.items():
        out.append(sec + ":")
        for k, v in items:
            out.append("  %s: %s" % (k, _yaml_value(v)))
    return "\n".join(out) + "\n"


class Node:
    """A mitral node (or, with MT_TARGET=storescp, dcmtk's storescp) in its own temp dir."""

    def __init__(self, name="node", conf=None, aet="MITRAL", data=None, port=None, yaml_extra=""):
        self.name = name
        self.conf = conf or {}
        self.yaml_extra = yaml_extra  # raw YAML appended (lists of mappings: projects, ...)
        self.aet = aet
        self.dir = data or tmpdir("mt-%s-" % name)
        self.data = self.dir
        self.storage = os.path.join(self.data, "storage")
        self.index = os.path.join(self.data, "index.sqlite")
        self.port = port
        self.proc = None
        self.logs = []  # one log file per start
        self.conf_path = None
        _nodes.append(self)

    # -- process --
    def cmdline(self):
        if IS_MITRAL:
            cmd = [MITRAL, "serve", "--bind", "127.0.0.1", "--port", str(self.port),
                   "--aet", self.aet, "--data", self.data]
            if self.conf or self.yaml_extra:
                self.conf_path = os.path.join(self.dir, "mitral.yaml")
                with open(self.conf_path, "w") as f:
                    f.write(yaml_from_dict(self.conf) + self.yaml_extra)
                cmd[2:2] = ["-c", self.conf_path]
            return cmd
        os.makedirs(self.storage, exist_ok=True)
        return ["storescp", "--fork", "+B", "+xa", "-aet", self.aet, "-od", self.storage,
                "-fe", ".dcm", str(self.port)]

    def start(self, wait=True):
        picked = self.port is None
        for attempt in range(5):
            if picked:
                self.port = free_port()
            self._spawn()
            if not wait:
                return self
            if self.wait_listening_quietly():
                self.wait_listening()  # subclasses wait for more (WebNode: the HTTP port)
                return self
            # free_port() closes its socket before the node binds: a test running in parallel
            # may have taken the port in between. Only then (a port we picked), pick another.
            if not (picked and self.proc.poll() is not None and
                    b"Address already in use" in open(self.logs[-1], "rb").read()):
                break
            log("%s: port %d was taken meanwhile, picking another" % (self.name, self.port))
        self.wait_listening()
        return self

    def _spawn(self):
        logpath = os.path.join(self.dir, "%s.%d.log" % (self.name, len(self.logs) + 1))
        self.logs.append(logpath)
        lf = open(logpath, "wb")
        env = dict(PEER_ENV)
        self.proc = subprocess.Popen(self.cmdline(), stdout=lf, stderr=subprocess.STDOUT,
                                     env=env, cwd=self.dir)
        lf.close()

    def wait_listening_quietly(self):
        """wait_listening without recording a failure (start() decides what a failure is)."""
        deadline = time.monotonic() + 60
        mine = ("listening on 127.0.0.1:%d " % self.port).encode()
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            # mitral says so once it listens (someone else may listen on a taken port)
            if (mine in open(self.logs[-1], "rb").read() if IS_MITRAL
                    else port_listening(self.port)):
                return True
            time.sleep(0.05)
        return False

    def wait_listening(self):
        return wait_for(lambda: port_listening(self.port), "%s listens on %d" % (self.name, self.port),
                        proc=self.proc)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, deadline_s=60.0):
        """SIGTERM, wait for exit; SIGKILL after the deadline. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(deadline_s)
            except subprocess.TimeoutExpired:
                check(False, "%s did not stop within %.0f s of SIGTERM" % (self.name, deadline_s))
                self.proc.kill()
                self.proc.wait()
        if not IS_MITRAL:
            # storescp --fork: children may still be running; they exit with their association.
            subprocess.run(["pkill", "-TERM", "-P", str(self.proc.pid)], check=False)
            return 0 if self.proc.returncode == -signal.SIGTERM else self.proc.returncode
        return self.proc.returncode

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def log_text(self, which=-1):
        try:
            with open(self.logs[which], "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, IndexError):
            return ""

    def all_logs(self):
        return "".join(self.log_text(i) for i in range(len(self.logs)))

    def dump_log(self, lines=80):
        for i, p in enumerate(self.logs):
            txt = self.log_text(i).splitlines()
            log("---- %s log %s (last %d of %d lines) ----" % (self.name, p, min(lines, len(txt)), len(txt)))
            for l in txt[-lines:]:
                log("    " + l)

    # -- what is on disk --
    def tmp_files(self):
        d = os.path.join(self.storage, ".tmp")
        if not os.path.isdir(d):
            return []
        return sorted(os.listdir(d))

    def stored_paths(self):
        """Every published file under the storage root (not .tmp)."""
        out = []
        for root, dirs, files in os.walk(self.storage):
            top = os.path.abspath(root) == os.path.abspath(self.storage)
            if top:
                dirs[:] = [x for x in dirs if x != ".tmp"]
            for f in files:
                if top and f.startswith("."):
                    continue  # the store's own files (.lock)
                if not IS_MITRAL and not f.endswith(".dcm"):
                    continue  # storescp's temp/partial names
                out.append(os.path.join(root, f))
        return sorted(out)

    def stored_by_sop(self):
        """SOP Instance UID (from each file's meta) -> path."""
        res = {}
        for p in self.stored_paths():
            m = read_meta(p)
            if m:
                res[m["sop_instance_uid"]] = p
        return res

    # -- the index --
    def db(self):
        con = sqlite3.connect("file:%s?mode=ro" % self.index, uri=True, timeout=30)
        con.row_factory = sqlite3.Row
        con.text_factory = lambda b: b.decode("utf-8", "replace")  # raw charset bytes possible
        return con

    def query(self, sql, args=()):
        con = self.db()
        try:
            return [dict(r) for r in con.execute(sql, args)]
        finally:
            con.close()

    def index_instances(self):
        """SOP Instance UID -> joined row (instance + series + study + patient keys)."""
        rows = self.query(
            "SELECT i.sop_instance_uid, i.sop_class_uid, i.path, i.size, i.transfer_syntax_uid,"
            " i.instance_number, i.n_rows, i.n_columns, i.verified,"
            " se.series_instance_uid, se.modality, se.series_number,"
            " st.study_instance_uid, p.patient_id, p.patient_name"
            " FROM instances i JOIN series se ON i.series_pk = se.pk"
            " JOIN studies st ON se.study_pk = st.pk JOIN patients p ON st.patient_pk = p.pk")
        return {r["sop_instance_uid"]: r for r in rows}

    def cli(self, *args, **kw):
        """Run `mitral <args>` with this node's --data; returns CompletedProcess (text)."""
        return run([MITRAL] + list(args), **kw)

    def stats(self):
        """`mitral index stats --data DIR` parsed into a dict of ints."""
        r = self.cli("index", "stats", "--data", self.data)
        check(r.returncode == 0, "index stats exit %s: %s" % (r.returncode, r.stderr.strip()))
        return parse_stats(r.stdout)


def parse_stats(text):
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


def run(cmd, timeout=240, input=None, env=None):
    """Run a command, capture text output. Never raises on a non-zero exit."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                              timeout=timeout, input=input, env=env or PEER_ENV)
    except subprocess.TimeoutExpired as e:
        check(False, "%s timed out after %s s" % (" ".join(cmd[:3]), timeout))
        dec = lambda b: b.decode("utf-8", "replace") if isinstance(b, bytes) else (b or "")
        return subprocess.CompletedProcess(cmd, -9, dec(e.stdout), dec(e.stderr))


def storescu(node, files, extra=(), aet="STORESCU", aec=None, timeout=240):
    """storescu -v -nh ... 127.0.0.1 port files. Returns CompletedProcess (stdout+stderr in stdout)."""
    cmd = ["storescu", "-v", "-nh", "-td", "120", "-aet", aet, "-aec", aec or node.aet] + \
        list(extra) + ["127.0.0.1", str(node.port)] + list(files)
    r = run(cmd, timeout=timeout)
    r.stdout = (r.stdout or "") + (r.stderr or "")
    return r


def storescu_popen(node, files, logpath, extra=(), aet="STORESCU"):
    cmd = ["storescu", "-v", "-nh", "-aet", aet, "-aec", node.aet] + list(extra) + \
        ["127.0.0.1", str(node.port)] + list(files)
    lf = open(logpath, "wb")
    p = subprocess.Popen(cmd, stdout=lf, stderr=subprocess.STDOUT, env=PEER_ENV)
    lf.close()
    return p


def store_results(text):
    """storescu -v output -> [(file, response)] in order; response is the text inside
    'Received Store Response (...)', or None when the file got no response."""
    res = []
    cur = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("I: Sending file: "):
            if cur is not None:
                res.append((cur, None))
            cur = line[len("I: Sending file: "):]
        elif line.startswith("I: Received Store Response") and cur is not None:
            s = line[len("I: Received Store Response"):].strip()
            if s.startswith("(") and s.endswith(")"):
                s = s[1:-1]
            res.append((cur, s))
            cur = None
    if cur is not None:
        res.append((cur, None))
    return res


def echoscu(node, aec=None, aet="ECHOSCU", extra=()):
    cmd = ["echoscu", "-v", "-aet", aet, "-aec", aec or node.aet] + list(extra) + \
        ["127.0.0.1", str(node.port)]
    r = run(cmd, timeout=120)
    r.stdout = (r.stdout or "") + (r.stderr or "")
    return r


# ---- Part 10 files (no pydicom needed) ----

def read_meta(path):
    """Parse the File Meta Information of a Part 10 file. Returns dict with sop_class_uid,
    sop_instance_uid, transfer_syntax_uid, impl_class_uid, source_ae, data_offset; None if the
    file is not Part 10."""
    try:
        with open(path, "rb") as f:
            head = f.read(132)
            if len(head) < 132 or head[128:132] != b"DICM":
                return None
            buf = f.read(64 * 1024)
    except OSError:
        return None
    return parse_meta(buf, 132)


def parse_meta(buf, base=0):
    names = {0x0002: "sop_class_uid", 0x0003: "sop_instance_uid", 0x0010: "transfer_syntax_uid",
             0x0012: "impl_class_uid", 0x0013: "impl_version_name", 0x0016: "source_ae"}
    out = {}
    pos = 0
    while pos + 8 <= len(buf):
        group = int.from_bytes(buf[pos:pos + 2], "little")
        if group != 0x0002:
            break
        elem = int.from_bytes(buf[pos + 2:pos + 4], "little")
        vr = buf[pos + 4:pos + 6]
        if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT", b"OF", b"UC", b"UR"):
            ln = int.from_bytes(buf[pos + 8:pos + 12], "little")
            hdr = 12
        else:
            ln = int.from_bytes(buf[pos + 6:pos + 8], "little")
            hdr = 8
        val = buf[pos + hdr:pos + hdr + ln]
        if elem in names:
            out[names[elem]] = val.rstrip(b"\0 ").decode("ascii", "replace")
        pos += hdr + ln
    out["data_offset"] = base + pos
    return out


def dataset_bytes(path):
    """The data set of a Part 10 file: the bytes after the meta group."""
    m = read_meta(path)
    with open(path, "rb") as f:
        data = f.read()
    return data[m["data_offset"]:] if m else data


def sha1(b):
    return hashlib.sha1(b).hexdigest()


# ---- semantic comparison with pydicom (independent reader) ----

def _norm_elem(e):
    v = e.value
    if e.VR == "SQ":
        return ("SQ", [normalize(item) for item in v])
    if isinstance(v, bytes):
        vr = "OB" if e.tag == 0x7FE00010 else e.VR  # dcmtk re-labels encapsulated OW as OB
        return (vr, sha1(v))
    if hasattr(v, "is_undefined_length") and hasattr(v, "__iter__") and not isinstance(v, str):
        pass
    try:
        return (e.VR, str(v))
    except Exception:  # noqa: BLE001
        return (e.VR, repr(v))


def normalize(ds):
    """A comparable form of a pydicom Dataset (group 0002 excluded, group lengths excluded)."""
    out = []
    for e in ds:
        if e.tag.group == 0x0002 or e.tag.element == 0x0000 or e.tag == 0xFFFCFFFC:
            continue  # meta, group lengths, trailing padding (dcmtk's senders drop it)
        out.append((int(e.tag), _norm_elem(e)))
    return out


def compare_datasets(a_path, b_path):
    """None if the data sets (without the meta group) are equal, else a short difference.
    Bytes first (mitral keeps the bytes it received); when they differ, element by element."""
    if dataset_bytes(a_path) == dataset_bytes(b_path):
        return None
    import pydicom
    try:
        a = pydicom.dcmread(a_path)
        b = pydicom.dcmread(b_path)
        na, nb = normalize(a), normalize(b)
    except Exception as e:  # noqa: BLE001
        return "cannot parse for comparison: %r" % (e,)
    if na == nb:
        return None
    ta = dict(na)
    tb = dict(nb)
    for t in sorted(set(ta) | set(tb)):
        if ta.get(t) != tb.get(t):
            return "first difference at (%04X,%04X): %r vs %r" % (
                t >> 16, t & 0xFFFF, str(ta.get(t))[:80], str(tb.get(t))[:80])
    return "element order differs"


# ---- test data selection ----

UNCOMPRESSED = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2")
DEFLATED = "1.2.840.10008.1.2.1.99"
_UID_RE = None


def uid_ok(u):
    """What mitral accepts as a UID in a path: 1-64 of [0-9.] with a digit (PS3.5 §9.1)."""
    global _UID_RE
    import re
    if _UID_RE is None:
        _UID_RE = re.compile(r"^[0-9.]{1,64}$")
    return isinstance(u, str) and bool(_UID_RE.match(u)) and any(c.isdigit() for c in u)


def storage_sop_classes():
    """Storage SOP class UIDs: node/dicom/storage-sop-classes.tsv when present, else pydicom's
    UID dictionary (names ending in 'Storage', without the DICOMDIR class)."""
    tsv = os.path.join(SRC, "node", "dicom", "storage-sop-classes.tsv")
    out = set()
    if os.path.exists(tsv):
        with open(tsv) as f:
            for line in f:
                if line.strip() and not line.startswith("#"):
                    out.add(line.split("\t")[0].strip())
        return out
    from pydicom._uid_dict import UID_dictionary
    for u, v in UID_dictionary.items():
        if v[1] == "SOP Class" and v[0].endswith("Storage") and u != "1.2.840.10008.1.3.10":
            out.add(u)
    return out


def _touch_all(ds):
    for e in ds:
        if e.VR == "SQ":
            for item in e.value:
                _touch_all(item)
        else:
            _ = e.value


def valid_instances(root):
    """Every file under root that is a valid Part 10 instance of a storage SOP class we can
    check: preamble + DICM, meta with a known transfer syntax, meta SOP class/instance equal to
    the data set's, Study/Series/SOP Instance UIDs valid, the whole data set parseable by
    pydicom and by dcmdump. -> list of dicts (path, ts, sop_class, sop_uid, study_uid,
    series_uid, patient_id, issuer), sorted by path."""
    import pydicom
    from pydicom.uid import UID
    classes = storage_sop_classes()
    out = []
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for fn in sorted(files):
            p = os.path.join(dirpath, fn)
            if fn.endswith((".md", ".txt", ".gz", ".zst", ".json", ".py", ".xml", ".png", ".jpg")) \
                    or fn.startswith(("LICENSE", "README")):
                continue
            m = read_meta(p)
            if not m or not m.get("transfer_syntax_uid"):
                continue
            ts = m["transfer_syntax_uid"]
            if not UID(ts).is_transfer_syntax and not ts.startswith("1.2.840.10008.1.2."):
                continue  # (syntaxes newer than pydicom, e.g. HTJ2K, are explicit VR LE)
            try:
                import warnings
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    ds = pydicom.dcmread(p)
                    _touch_all(ds)
                if any("End of file" in str(w.message) or "truncat" in str(w.message).lower()
                       for w in caught):
                    continue
                sop_class = str(ds.SOPClassUID)
                sop_uid = str(ds.SOPInstanceUID)
                study, series = str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)
            except Exception:  # noqa: BLE001 - not valid, not selected
                continue
            if any(e.tag.group == 0x0002 for e in ds):
                continue  # meta elements inside the data set: not valid
            if sop_class not in classes or sop_class != m.get("sop_class_uid") or \
                    sop_uid != m.get("sop_instance_uid"):
                continue
            if not all(uid_ok(u) for u in (sop_class, sop_uid, study, series)):
                continue
            r = subprocess.run(["dcmdump", "-q", "+E", p], capture_output=True)
            if r.returncode != 0:
                continue
            out.append({"path": p, "ts": ts, "sop_class": sop_class, "sop_uid": sop_uid,
                        "study_uid": study, "series_uid": series,
                        "patient_id": str(ds.get("PatientID", "") or ""),
                        "issuer": str(ds.get("IssuerOfPatientID", "") or "")})
    return out


def layers(instances):
    """Split into lists with unique SOP Instance UIDs each (the first file per UID in layer 0,
    the second in layer 1 ...)."""
    res = []
    seen = {}
    for inst in instances:
        k = seen.get(inst["sop_uid"], 0)
        seen[inst["sop_uid"]] = k + 1
        while len(res) <= k:
            res.append([])
        res[k].append(inst)
    return res


def deid_key_file(directory):
    """A fresh 32-byte de-identification key (deid.key_file) in directory, mode 0600."""
    key = os.path.join(directory, "key")
    with open(key, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(key, 0o600)
    return key
