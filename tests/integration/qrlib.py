"""qrlib.py - helpers of the retrieve tests (t_move_*, t_get_*, t_commit_*, t_send_*): a dcmtk
storescp destination started on a free port and stopped by PID, movescu/getscu runners and
parsers of their output. Not a test itself (no t_ prefix)."""
import os
import re
import subprocess

import dul
import lib


class StoreSCP:
    """dcmtk storescp as a C-MOVE destination (writes each received instance to a file)."""

    def __init__(self, aet, extra=(), name="dest"):
        self.aet = aet
        self.extra = list(extra)
        self.dir = lib.tmpdir("mt-%s-" % name)
        self.out = os.path.join(self.dir, "in")
        os.makedirs(self.out)
        self.port = lib.free_port()
        self.proc = None
        self.logpath = os.path.join(self.dir, "storescp.log")

    def start(self):
        lf = open(self.logpath, "wb")
        cmd = ["storescp", "-v", "-aet", self.aet, "-od", self.out, "-fe", ".dcm"] + \
            self.extra + [str(self.port)]
        self.proc = subprocess.Popen(cmd, stdout=lf, stderr=subprocess.STDOUT, env=lib.PEER_ENV)
        lf.close()
        lib.wait_for(lambda: lib.port_listening(self.port), "storescp listens", proc=self.proc)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def files(self):
        return sorted(os.path.join(self.out, f) for f in os.listdir(self.out)
                      if f.endswith(".dcm"))

    def by_sop(self):
        res = {}
        for p in self.files():
            m = lib.read_meta(p)
            if m:
                res[m["sop_instance_uid"]] = p
        return res

    def clear(self):
        for p in self.files():
            os.unlink(p)


def movescu(node, dest, keys, aec=None, study_root=True, extra=()):
    cmd = ["movescu", "-v", "-aet", "MOVESCU", "-aec", aec or node.aet, "-aem", dest] + \
        (["-S"] if study_root else ["-P"]) + list(extra)
    for k in keys:
        cmd += ["-k", k]
    cmd += ["127.0.0.1", str(node.port)]
    r = lib.run(cmd, timeout=240)
    r.stdout = (r.stdout or "") + (r.stderr or "")
    return r


def getscu(node, outdir, keys, aec=None, study_root=True, extra=()):
    cmd = ["getscu", "-v", "-aet", "GETSCU", "-aec", aec or node.aet, "-od", outdir] + \
        (["-S"] if study_root else ["-P"]) + list(extra)
    for k in keys:
        cmd += ["-k", k]
    cmd += ["127.0.0.1", str(node.port)]
    r = lib.run(cmd, timeout=240)
    r.stdout = (r.stdout or "") + (r.stderr or "")
    return r


def final_status(text):
    """The text inside 'Received Final Move Response (...)' / the C-GET final status."""
    m = re.findall(r"Received Final (?:Move|Get) Response \(([^)]*)\)", text)
    if m:
        return m[-1]
    m = re.findall(r"DIMSE Status\s*: (0x[0-9A-Fa-f]{4}: .*)", text)  # -d output
    if m:
        return m[-1].strip()
    m = re.findall(r"(?:Move|Get) response with error status \(([^)]*)\)", text)
    return m[-1] if m else None


def dest_yaml(dests):
    """[(ae, port)] -> move_destinations YAML."""
    out = ["move_destinations:"]
    for ae, port in dests:
        out += ["  - ae_title: %s" % ae, "    host: 127.0.0.1", "    port: %d" % port]
    return "\n".join(out) + "\n"


def study_uid(path):
    import pydicom
    return pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID


def check_identical(src_by_sop, got_by_sop, what):
    """Every instance of src arrived and its data set equals the stored one."""
    missing = sorted(set(src_by_sop) - set(got_by_sop))
    lib.check(not missing, "%s: %d instance(s) missing" % (what, len(missing)))
    for sop, p in sorted(got_by_sop.items()):
        if sop in src_by_sop:
            d = lib.compare_datasets(src_by_sop[sop], p)
            lib.check(d is None, "%s: %s differs: %s" % (what, sop, d))


def read_msg(a):
    """One DIMSE message from a dul.Assoc: -> (command dict, data set bytes or None)."""
    import struct
    import dul
    cmd, data = b"", b""
    while True:
        t, body = a.recv_pdu()
        if t != dul.PDU_PDATA:
            raise dul.Closed("PDU type %d instead of P-DATA-TF" % t)
        pos = 0
        while pos + 6 <= len(body):
            ln, pcid, hdr = struct.unpack(">IBB", body[pos:pos + 6])
            frag = body[pos + 6:pos + 4 + ln]
            pos += 4 + ln
            if hdr & 1:
                cmd += frag
                if hdr & 2:
                    c = dul.parse_command(cmd)
                    c["pcid"] = pcid
                    dst = c["raw"].get(0x0800, b"\x01\x01")
                    if struct.unpack("<H", dst[:2])[0] == 0x0101:
                        return c, None
            else:
                data += frag
                if hdr & 2:
                    c = dul.parse_command(cmd)
                    c["pcid"] = pcid
                    return c, data


def us(c, el):
    import struct
    v = c["raw"].get(el)
    return struct.unpack("<H", v[:2])[0] if v else None


# ---- storage commitment (t_commit_*): a small SCU of our own over dul.py ----

COMMIT = "1.2.840.10008.1.20.1"
COMMIT_INST = "1.2.840.10008.1.20.1.1"
N_ACTION_RQ, N_ACTION_RSP = 0x0130, 0x8130
N_EVENT_RQ, N_EVENT_RSP = 0x0100, 0x8100


def ds_bytes(ds):
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset
    b = DicomBytesIO()
    b.is_little_endian = True
    b.is_implicit_VR = True
    write_dataset(b, ds)
    return b.getvalue()


def ds_parse(b):
    from pydicom.filereader import read_dataset
    from io import BytesIO
    return read_dataset(BytesIO(b), is_implicit_VR=True, is_little_endian=True)


def action_info(txn, refs):
    from pydicom.dataset import Dataset
    ds = Dataset()
    if txn:
        ds.TransactionUID = txn
    items = []
    for cls, inst in refs:
        it = Dataset()
        it.ReferencedSOPClassUID = cls
        it.ReferencedSOPInstanceUID = inst
        items.append(it)
    ds.ReferencedSOPSequence = items
    return ds_bytes(ds)


def n_action_rq(msg_id):
    return dul.command([(0x0003, dul._uid(COMMIT)), (0x0100, dul._us(N_ACTION_RQ)),
                        (0x0110, dul._us(msg_id)), (0x0800, dul._us(0x0000)),
                        (0x1001, dul._uid(COMMIT_INST)), (0x1008, dul._us(1))])


def n_event_rsp(msg_id, event_type):
    return dul.command([(0x0002, dul._uid(COMMIT)), (0x0100, dul._us(N_EVENT_RSP)),
                        (0x0120, dul._us(msg_id)), (0x0800, dul._us(0x0101)),
                        (0x0900, dul._us(0)), (0x1000, dul._uid(COMMIT_INST)),
                        (0x1002, dul._us(event_type))])


def check_report(data, n_ok, failed):
    ds = ds_parse(data)
    ok = list(getattr(ds, "ReferencedSOPSequence", []))
    bad = list(getattr(ds, "FailedSOPSequence", []))
    lib.check(len(ok) == n_ok, "Referenced SOP Sequence has %d items, want %d" % (len(ok), n_ok))
    got_failed = {(it.ReferencedSOPInstanceUID, int(it.FailureReason)) for it in bad}
    lib.check(got_failed == set(failed), "Failed SOP Sequence %r, want %r" % (got_failed, failed))
    return ds


def study_identifier(study):
    """A STUDY-level Q/R identifier (Implicit VR LE) for a raw C-GET/C-MOVE-RQ."""
    from pydicom.dataset import Dataset
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study
    return ds_bytes(ds)


def c_store_rsp(c, status):
    """The C-STORE-RSP to mitral's C-STORE-RQ c (a C-GET sub-operation) with status."""
    return dul.command([(0x0002, c["raw"][0x0002]), (0x0100, dul._us(0x8001)),
                        (0x0120, dul._us(us(c, 0x0110))), (0x0800, dul._us(0x0101)),
                        (0x0900, dul._us(status)), (0x1000, c["raw"][0x1000])])
