#!/usr/bin/python3
"""bench/find.py - C-FIND latency of mitral (and Orthanc on the same data where feasible).

  bench/find.py [--mitral build/mitral] [--sizes 100000,1000000] [--orthanc 50000]
                [--queries 200] [--findscu 30] [--keep DIR]

For each size N, an index of N synthetic instances is loaded directly into SQLite (the schema
comes from `mitral index stats`, so it is the node's own, migrations and indexes included):
100 instances per study (10 series x 10 instances), 2 studies per patient, names drawn from
family x given name lists, study dates over 2010-2024, 90 % MR / 5 % CT / 5 % SR series. Then
`mitral serve` on it, and four kinds of query, each --queries times with random values:

  study/PatientID     STUDY level, PatientID=<an existing id>
  study/StudyDate     STUDY level, StudyDate=<a 10-day range>
  study/PatientName   STUDY level, PatientName=<3-letter family prefix>*
  series/in-study     SERIES level, StudyInstanceUID=<an existing study>

Study-level queries return PatientName, PatientID, PatientBirthDate, StudyDate, StudyTime,
StudyDescription, AccessionNumber, StudyInstanceUID, ModalitiesInStudy,
NumberOfStudyRelatedInstances; series-level ones SeriesInstanceUID, Modality, SeriesNumber,
SeriesDescription, NumberOfSeriesRelatedInstances.

Latency = C-FIND-RQ sent -> final C-FIND-RSP received, on one association kept open (a raw
DIMSE client, so the client's own start-up is not measured); p50 / p95 / max printed per
kind. --findscu K also times K runs of dcmtk's findscu per kind (process start + association
+ query + release: what a user waits for).

--orthanc M: the same synthetic distribution, M instances, generated as files (pydicom, no
pixel data) and sent with storescu to Orthanc (/usr/sbin/Orthanc, a generated JSON config in a
temporary directory) AND to a fresh mitral (storescu too, so both indexed what they received),
then the same queries against both. 0 skips it.
"""
import argparse
import json
import os
import random
import shutil
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from ul_peer import IMPLICIT_LE, associate_rq, command_set, parse_command, pdata, release_rq  # noqa

import pydicom  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.filebase import DicomBytesIO  # noqa: E402
from pydicom.filewriter import write_dataset  # noqa: E402

STUDY_ROOT = "1.2.840.10008.5.1.4.1.2.2.1"
MR = "1.2.840.10008.5.1.4.1.1.4"
CT = "1.2.840.10008.5.1.4.1.1.2"
SR = "1.2.840.10008.5.1.4.1.1.88.22"
FAMILY = ["SMITH", "JONES", "TAYLOR", "BROWN", "WILLIAMS", "WILSON", "JOHNSON", "DAVIES",
          "ROBINSON", "WRIGHT", "THOMPSON", "EVANS", "WALKER", "WHITE", "ROBERTS", "GREEN",
          "HALL", "WOOD", "JACKSON", "CLARKE", "MUELLER", "SCHMIDT", "SCHNEIDER", "FISCHER",
          "WEBER", "MEYER", "WAGNER", "BECKER", "SCHULZ", "HOFFMANN", "MARTIN", "BERNARD",
          "DUBOIS", "THOMAS", "ROBERT", "RICHARD", "PETIT", "DURAND", "LEROY", "MOREAU",
          "ROSSI", "RUSSO", "FERRARI", "ESPOSITO", "BIANCHI", "ROMANO", "COLOMBO", "RICCI",
          "GARCIA", "FERNANDEZ", "LOPEZ", "MARTINEZ", "SANCHEZ", "PEREZ", "GOMEZ", "DIAZ",
          "NOVAK", "KOWALSKI", "NOWAK", "HORVATH", "NAGY", "KOVACS", "SZABO", "TOTH",
          "YAMADA", "TANAKA", "SUZUKI", "SATO", "KIM", "LEE", "PARK", "CHEN", "WANG", "LI",
          "ZHANG", "LIU", "NGUYEN", "TRAN", "PHAM", "SINGH", "KUMAR", "SHARMA", "PATEL"]
GIVEN = ["JOHN", "MARY", "PETER", "ANNA", "PAUL", "LAURA", "MARK", "SARAH", "DAVID", "EMMA",
         "JAMES", "SOPHIE", "MICHAEL", "JULIA", "THOMAS", "CLARA", "ANDREW", "EVA", "LUKAS",
         "MARIA"]
STUDY_KEYS = ["PatientName", "PatientID", "PatientBirthDate", "StudyDate", "StudyTime",
              "StudyDescription", "AccessionNumber", "StudyInstanceUID", "ModalitiesInStudy",
              "NumberOfStudyRelatedInstances"]
SERIES_KEYS = ["SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
               "NumberOfSeriesRelatedInstances"]
SERIES_PER_STUDY = 10
INST_PER_SERIES = 10
STUDIES_PER_PATIENT = 2


# ---- the synthetic data set ----

def layout(n_instances, seed=1):
    """Yield (patient, study, series) descriptions for n_instances."""
    rng = random.Random(seed)
    n_studies = max(1, n_instances // (SERIES_PER_STUDY * INST_PER_SERIES))
    patients = []
    studies = []
    for s in range(n_studies):
        p = s // STUDIES_PER_PATIENT
        if p == len(patients):
            patients.append({
                "pk": p + 1, "id": "P%07d" % (p + 1),
                "name": "%s^%s" % (rng.choice(FAMILY), rng.choice(GIVEN)),
                "birth": "%04d%02d%02d" % (rng.randint(1930, 2005), rng.randint(1, 12),
                                           rng.randint(1, 28)),
                "sex": rng.choice("MF")})
        y, m, d = rng.randint(2010, 2024), rng.randint(1, 12), rng.randint(1, 28)
        studies.append({
            "pk": s + 1, "patient": p + 1, "uid": "2.25.%d" % (10**12 + s),
            "date": "%04d%02d%02d" % (y, m, d),
            "time": "%02d%02d%02d" % (rng.randint(7, 19), rng.randint(0, 59), rng.randint(0, 59)),
            "acc": "A%08d" % (s + 1), "desc": rng.choice(["CMR STRESS", "CMR VIABILITY",
                                                          "CMR FUNCTION", "CARDIAC CT"])})
    return patients, studies, rng


def series_modality(rng):
    r = rng.random()
    return ("MR", MR) if r < 0.9 else (("CT", CT) if r < 0.95 else ("SR", SR))


def load_direct(mitral, data_dir, n_instances):
    """The node's schema, then rows inserted with executemany."""
    os.makedirs(os.path.join(data_dir, "storage"), exist_ok=True)
    subprocess.run([mitral, "index", "rebuild", "--data", data_dir], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = sqlite3.connect(os.path.join(data_dir, "index.sqlite"))
    db.execute("PRAGMA synchronous=OFF")
    patients, studies, rng = layout(n_instances)
    db.executemany("INSERT INTO patients(pk, patient_id, issuer_of_patient_id, patient_name, "
                   "patient_birth_date, patient_sex) VALUES (?,?,'',?,?,?)",
                   [(p["pk"], p["id"], p["name"], p["birth"], p["sex"]) for p in patients])
    db.executemany("INSERT INTO studies(pk, patient_pk, study_instance_uid, study_date, "
                   "study_time, accession_number, study_description) VALUES (?,?,?,?,?,?,?)",
                   [(s["pk"], s["patient"], s["uid"], s["date"], s["time"], s["acc"], s["desc"])
                    for s in studies])
    se_rows, in_rows = [], []
    se_pk = in_pk = 0
    for s in studies:
        for k in range(SERIES_PER_STUDY):
            se_pk += 1
            mod, cls = series_modality(rng)
            se_rows.append((se_pk, s["pk"], "%s.%d" % (s["uid"], k + 1), mod, k + 1,
                            "series %d" % (k + 1), s["date"]))
            for i in range(INST_PER_SERIES):
                in_pk += 1
                in_rows.append((in_pk, se_pk, "%s.%d.%d" % (s["uid"], k + 1, i + 1), cls, i + 1,
                                "x/%d.dcm" % in_pk, 150000, "1.2.840.10008.1.2.1"))
        if len(in_rows) >= 200000:
            flush(db, se_rows, in_rows)
    flush(db, se_rows, in_rows)
    db.commit()
    db.close()
    return patients, studies


def flush(db, se_rows, in_rows):
    db.executemany("INSERT INTO series(pk, study_pk, series_instance_uid, modality, "
                   "series_number, series_description, series_date) VALUES (?,?,?,?,?,?,?)",
                   se_rows)
    db.executemany("INSERT INTO instances(pk, series_pk, sop_instance_uid, sop_class_uid, "
                   "instance_number, path, size, transfer_syntax_uid, verified) "
                   "VALUES (?,?,?,?,?,?,?,?,1)", in_rows)
    se_rows.clear()
    in_rows.clear()


def write_files(out_dir, n_instances):
    patients, studies, rng = layout(n_instances)
    pmap = {p["pk"]: p for p in patients}
    n = 0
    for s in studies:
        p = pmap[s["patient"]]
        for k in range(SERIES_PER_STUDY):
            mod, cls = series_modality(rng)
            for i in range(INST_PER_SERIES):
                ds = Dataset()
                ds.SOPClassUID = cls
                ds.SOPInstanceUID = "%s.%d.%d" % (s["uid"], k + 1, i + 1)
                ds.PatientID = p["id"]
                ds.PatientName = p["name"]
                ds.PatientBirthDate = p["birth"]
                ds.PatientSex = p["sex"]
                ds.StudyInstanceUID = s["uid"]
                ds.StudyDate = s["date"]
                ds.StudyTime = s["time"]
                ds.AccessionNumber = s["acc"]
                ds.StudyDescription = s["desc"]
                ds.SeriesInstanceUID = "%s.%d" % (s["uid"], k + 1)
                ds.Modality = mod
                ds.SeriesNumber = k + 1
                ds.SeriesDescription = "series %d" % (k + 1)
                ds.InstanceNumber = i + 1
                meta = FileMetaDataset()
                meta.MediaStorageSOPClassUID = cls
                meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
                meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
                ds.file_meta = meta
                n += 1
                path = os.path.join(out_dir, "%02d" % (n % 100), "%07d.dcm" % n)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                try:
                    ds.save_as(path, enforce_file_format=True)
                except TypeError:
                    ds.is_little_endian, ds.is_implicit_VR = True, False
                    ds.save_as(path, write_like_original=False)
    return patients, studies


# ---- a raw DIMSE C-FIND client ----

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def encode(ds):
    b = DicomBytesIO()
    b.is_little_endian = True
    b.is_implicit_VR = True
    write_dataset(b, ds)
    return b.getvalue()


class Client:
    def __init__(self, port, aec):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.s.sendall(associate_rq(called=aec, calling="BENCH",
                                    contexts=((1, STUDY_ROOT, (IMPLICIT_LE,)),), max_len=65536))
        t, _ = self.pdu()
        if t != 0x02:
            raise SystemExit("association to %s refused (PDU %r)" % (aec, t))
        self.msg_id = 0

    def recv(self, n):
        while len(self.buf) < n:
            c = self.s.recv(1 << 20)
            if not c:
                raise EOFError
            self.buf += c
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def pdu(self):
        t, _, n = struct.unpack(">BBI", self.recv(6))
        return t, self.recv(n)

    def find(self, ident):
        """Returns (number of pending responses, final status)."""
        self.msg_id += 1
        data = encode(ident)
        self.s.sendall(pdata(1, True, True, command_set(0x0020, self.msg_id, STUDY_ROOT, has_data=True)) +
                       pdata(1, False, True, data))
        cmd, n = b"", 0
        while True:
            t, body = self.pdu()
            pos = 0
            while pos < len(body):
                ln, _, mch = struct.unpack_from(">IBB", body, pos)
                frag = body[pos + 6:pos + 4 + ln]
                pos += 4 + ln
                if mch & 1:
                    cmd += frag
                    if mch & 2:
                        c = parse_command(cmd)
                        cmd = b""
                        st = c.get(0x0900)
                        if st in (0xFF00, 0xFF01):
                            n += 1
                        else:
                            return n, st

    def close(self):
        try:
            self.s.sendall(release_rq())
            self.pdu()
        except Exception:
            pass
        self.s.close()


def identifiers(kind, patients, studies, rng):
    ds = Dataset()
    if kind == "series/in-study":
        ds.QueryRetrieveLevel = "SERIES"
        ds.StudyInstanceUID = rng.choice(studies)["uid"]
        for k in SERIES_KEYS:
            setattr(ds, k, "")
        return ds
    ds.QueryRetrieveLevel = "STUDY"
    for k in STUDY_KEYS:
        setattr(ds, k, "")
    if kind == "study/PatientID":
        ds.PatientID = rng.choice(patients)["id"]
    elif kind == "study/StudyDate":
        y, m, d = rng.randint(2010, 2024), rng.randint(1, 12), rng.randint(1, 18)
        ds.StudyDate = "%04d%02d%02d-%04d%02d%02d" % (y, m, d, y, m, d + 9)
    elif kind == "study/PatientName":
        ds.PatientName = rng.choice(FAMILY)[:3] + "*"
    return ds


KINDS = ["study/PatientID", "study/StudyDate", "study/PatientName", "series/in-study"]


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def measure(port, aec, patients, studies, n_queries, n_findscu, label):
    results = {}
    for kind in KINDS:
        rng = random.Random(kind)
        cl = Client(port, aec)
        for _ in range(5):  # warm-up
            cl.find(identifiers(kind, patients, studies, rng))
        lat, matches = [], []
        for _ in range(n_queries):
            ident = identifiers(kind, patients, studies, rng)
            t0 = time.perf_counter()
            n, st = cl.find(ident)
            lat.append((time.perf_counter() - t0) * 1000)
            matches.append(n)
            if st != 0:
                raise SystemExit("%s %s: status 0x%04X" % (label, kind, st))
        cl.close()
        fs = []
        for _ in range(n_findscu):
            ident = identifiers(kind, patients, studies, rng)
            args = ["findscu", "-S", "-aec", aec, "-aet", "BENCH"]
            for e in ident:
                args += ["-k", "%s=%s" % (e.keyword, e.value if e.value is not None else "")]
            args += ["127.0.0.1", str(port)]
            t0 = time.perf_counter()
            subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=dict(os.environ, TCP_NODELAY="1"))
            fs.append((time.perf_counter() - t0) * 1000)
        results[kind] = (lat, matches, fs)
        line = "%-10s %-20s p50 %7.2f ms  p95 %7.2f ms  max %7.2f ms  matches/query %6.1f" % (
            label, kind, pct(lat, 50), pct(lat, 95), max(lat), statistics.mean(matches))
        if fs:
            line += "  | findscu p50 %6.1f p95 %6.1f ms" % (pct(fs, 50), pct(fs, 95))
        print(line, flush=True)
    return results


def start_mitral(mitral, data_dir):
    port = free_port()
    log = open(os.path.join(data_dir, "..", "mitral-%d.log" % port), "w")
    conf = os.path.join(data_dir, "..", "bench-%d.yaml" % port)
    with open(conf, "w") as f:
        f.write("node:\n  ae_title: MITRAL\n  bind: 127.0.0.1\n  port: %d\n  data_dir: %s\n"
                "log:\n  level: warn\nquery:\n  max_matches: 100000\n" % (port, data_dir))
    p = subprocess.Popen([mitral, "serve", "-c", conf], stdout=log, stderr=subprocess.STDOUT)
    wait_port(port, p)
    return p, port


def wait_port(port, proc, tries=600):
    for _ in range(tries):
        if proc.poll() is not None:
            raise SystemExit("server exited at start-up")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server does not listen on %d" % port)


def stop(p):
    p.terminate()
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def start_orthanc(work):
    dport, hport = free_port(), free_port()
    cfg = {
        "Name": "bench", "StorageDirectory": os.path.join(work, "orthanc-db"),
        "IndexDirectory": os.path.join(work, "orthanc-db"), "DicomAet": "ORTHANC",
        "DicomPort": dport, "HttpPort": hport, "HttpServerEnabled": True,
        "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
        "DicomCheckCalledAet": False, "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True, "DicomAlwaysAllowFind": True,
        "UnknownSopClassAccepted": True, "StorageCompression": False,
        "LimitFindResults": 0, "LimitFindInstances": 0, "Plugins": [],
        "SaveJobs": False, "StableAge": 3600, "OverwriteInstances": True,
    }
    path = os.path.join(work, "orthanc.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    log = open(os.path.join(work, "orthanc.log"), "w")
    p = subprocess.Popen(["/usr/sbin/Orthanc", path], stdout=log, stderr=subprocess.STDOUT)
    wait_port(dport, p)
    return p, dport


def storescu(port, aec, files_dir):
    t0 = time.perf_counter()
    r = subprocess.run(["storescu", "+sd", "+r", "-aec", aec, "127.0.0.1", str(port), files_dir],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=dict(os.environ, TCP_NODELAY="1"))
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        print(r.stdout.decode(errors="replace")[-2000:])
        raise SystemExit("storescu to %s failed" % aec)
    return dt


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mitral", default=os.path.join(ROOT, "build", "mitral"))
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--orthanc", type=int, default=50000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--findscu", type=int, default=30)
    ap.add_argument("--keep", default=None, help="work directory to keep (default: temporary)")
    a = ap.parse_args()
    if not os.path.exists(a.mitral):
        raise SystemExit("no mitral binary at %s (--mitral)" % a.mitral)
    work = a.keep or tempfile.mkdtemp(prefix="mt_bench_find_")
    os.makedirs(work, exist_ok=True)
    print("# bench/find: %d queries per kind (one association), %d findscu runs per kind"
          % (a.queries, a.findscu), flush=True)
    try:
        for size in [int(x) for x in a.sizes.split(",") if x]:
            d = os.path.join(work, "direct-%d" % size, "data")
            os.makedirs(d, exist_ok=True)
            t0 = time.perf_counter()
            patients, studies = load_direct(a.mitral, d, size)
            print("# mitral, %d instances (%d studies, %d patients) loaded directly in %.1f s"
                  % (size, len(studies), len(patients), time.perf_counter() - t0), flush=True)
            p, port = start_mitral(a.mitral, d)
            try:
                measure(port, "MITRAL", patients, studies, a.queries, a.findscu,
                        "mitral-%dk" % (size // 1000))
            finally:
                stop(p)
        if a.orthanc:
            if not os.path.exists("/usr/sbin/Orthanc"):
                print("# /usr/sbin/Orthanc absent: comparison skipped")
                return
            files = os.path.join(work, "files-%d" % a.orthanc)
            t0 = time.perf_counter()
            if not os.path.isdir(files):
                os.makedirs(files)
                patients, studies = write_files(files, a.orthanc)
            else:
                patients, studies, _ = layout(a.orthanc)
            print("# %d files generated in %.1f s" % (a.orthanc, time.perf_counter() - t0),
                  flush=True)
            od, oport = start_orthanc(work)
            d = os.path.join(work, "stored-%d" % a.orthanc, "data")
            os.makedirs(d, exist_ok=True)
            mp, mport = start_mitral(a.mitral, d)
            try:
                dt = storescu(oport, "ORTHANC", files)
                print("# Orthanc: stored %d instances with storescu in %.1f s (%.0f/s)"
                      % (a.orthanc, dt, a.orthanc / dt), flush=True)
                dt = storescu(mport, "MITRAL", files)
                print("# mitral: stored %d instances with storescu in %.1f s (%.0f/s)"
                      % (a.orthanc, dt, a.orthanc / dt), flush=True)
                r_o = measure(oport, "ORTHANC", patients, studies, a.queries, a.findscu,
                              "orthanc-%dk" % (a.orthanc // 1000))
                r_m = measure(mport, "MITRAL", patients, studies, a.queries, a.findscu,
                              "mitral-%dk" % (a.orthanc // 1000))
                for kind in KINDS:
                    print("%-20s p50 speed-up %.1fx, p95 speed-up %.1fx" % (
                        kind, pct(r_o[kind][0], 50) / pct(r_m[kind][0], 50),
                        pct(r_o[kind][0], 95) / pct(r_m[kind][0], 95)))
            finally:
                stop(mp)
                stop(od)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
