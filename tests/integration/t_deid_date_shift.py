#!/usr/bin/python3
"""t_deid_date_shift.py - every date the cmr-registry profile keeps is shifted by exactly the
patient's number of days (issue 4: modified dates, intervals kept), for many keys.

check_leaks.py proves that no original date survives; this test proves the value that replaces
it. For each of KEYS random keys, `mitral deid --profile cmr-registry` runs over the real files
of ../shared/testdata that carry dates, in every transfer syntax they come in (native little and
big endian, deflated, encapsulated JPEG / JPEG 2000 / RLE: the SC_rgb_* family is one image in
24 encodings), and the expected shift is computed here, independently of the C code, from the
derivation node/deid/pseudonym.h specifies: HMAC-SHA256(key, "mitral-deid-v1\\0shift\\0" +
patient), its first 8 bytes big-endian modulo the profile's range, added to min-days; the
patient is PatientID, else PatientName, else StudyInstanceUID.

Checked for every top-level DA value and the date part of every top-level DT value of the
output: it equals the input's value shifted by that many days, or it is empty / removed, never
the input's value. A key whose shift would be 0 cannot exist (the range excludes it)."""
import datetime
import hashlib
import hmac
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from lib import check, finish, log, skip, tmpdir  # noqa: E402

try:
    import pydicom  # noqa: E402
except ImportError:
    skip("pydicom not installed")

MITRAL = os.environ.get("MITRAL")
TESTDATA = os.path.join(ROOT, "..", "shared", "testdata")
KEYS = int(os.environ.get("MT_SHIFT_KEYS", "6"))
MIN_DAYS, MAX_DAYS = -1095, -365  # deid-profiles/cmr-registry.yaml date-shift


def expected_shift(key, patient):
    mac = hmac.new(key, b"mitral-deid-v1\x00shift\x00" + patient, hashlib.sha256).digest()
    v = int.from_bytes(mac[:8], "big")
    return MIN_DAYS + v % (MAX_DAYS - MIN_DAYS + 1)


def patient_of(ds):
    for kw in ("PatientID", "PatientName", "StudyInstanceUID"):
        el = ds.get(kw)
        if el is not None and str(el).strip():
            raw = ds[kw].value
            if isinstance(raw, bytes):
                return raw.rstrip(b" \x00")
            return str(raw).strip().encode("latin-1", "replace")
    return b""


def shifted(da, days):
    try:
        d = datetime.date(int(da[:4]), int(da[4:6]), int(da[6:8]))
    except ValueError:
        return None
    return (d + datetime.timedelta(days=days)).strftime("%Y%m%d")


def dated_inputs():
    out = []
    for d, _, fs in os.walk(TESTDATA):
        for f in sorted(fs):
            p = os.path.join(d, f)
            try:
                ds = pydicom.dcmread(p, stop_before_pixels=True)
            except Exception:
                continue
            dates = [el for el in ds if el.VR in ("DA", "DT") and str(el.value).strip()[:8]
                     .isdigit() and len(str(el.value).strip()) >= 8 and not el.tag.is_private]
            if dates and "SOPInstanceUID" in ds:
                out.append(p)
    return sorted(out)


def main():
    if not MITRAL:
        skip("MITRAL not set")
    if not os.path.isdir(TESTDATA):
        skip("../shared/testdata absent")
    inputs = dated_inputs()
    check(len(inputs) >= 20, "at least 20 dated real inputs (found %d)" % len(inputs))
    srcs = {p: pydicom.dcmread(p, force=True, stop_before_pixels=True) for p in inputs}
    # One CLI run per distinct SOP Instance UID group, as check_leaks does (outputs are named by
    # their mapped UID, so inputs sharing one would overwrite each other).
    groups = []
    for p in inputs:
        uid = str(srcs[p].SOPInstanceUID).strip()
        for g in groups:
            if uid not in g:
                g[uid] = p
                break
        else:
            groups.append({uid: p})
    tmp = tmpdir("mt-deid-shift-")
    n_dates = n_removed = 0
    for k in range(KEYS):
        key = os.urandom(32)
        kf = os.path.join(tmp, "key%d" % k)
        with open(kf, "wb") as f:
            f.write(key)
        os.chmod(kf, 0o600)
        for gi, g in enumerate(groups):
            out = os.path.join(tmp, "k%d-g%d" % (k, gi))
            r = subprocess.run([MITRAL, "deid", "--profile", "cmr-registry", "--key", kf,
                                "--profiles-dir", os.path.join(ROOT, "deid-profiles")] +
                               list(g.values()) + [out], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
            check(r.returncode == 0, "mitral deid ran (key %d, group %d): %s"
                  % (k, gi, r.stdout.decode("utf-8", "replace")[-300:]))
            written = {}
            for d, _, fs in os.walk(out):
                for f in fs:
                    written[f] = os.path.join(d, f)
            for uid, p in g.items():
                mac = hmac.new(key, b"mitral-deid-v1\x00uid\x00" + uid.encode(), hashlib.sha256)
                name = "2.25.%d.dcm" % int.from_bytes(mac.digest()[:16], "big")
                if name not in written:
                    continue  # burned-in annotation, unreadable: check_leaks covers those
                src, dst = srcs[p], pydicom.dcmread(written[name], stop_before_pixels=True)
                days = expected_shift(key, patient_of(src))
                check(MIN_DAYS <= days <= MAX_DAYS and days != 0, "shift in range")
                for el in src:
                    if el.VR not in ("DA", "DT") or el.tag.is_private:
                        continue
                    v = str(el.value).strip()
                    if len(v) < 8 or not v[:8].isdigit():
                        continue
                    got = str(dst[el.tag].value).strip() if el.tag in dst else ""
                    where = "%s %s (key %d)" % (os.path.relpath(p, TESTDATA), el.keyword, k)
                    if not got:
                        n_removed += 1
                        continue
                    want = shifted(v[:8], days)
                    check(got[:8] != v[:8], "%s: the original date %s survives" % (where, v))
                    check(got[:8] == want, "%s: %s shifted by %d days should be %s, is %s"
                          % (where, v[:8], days, want, got[:8]))
                    check(got[8:] == v[8:], "%s: the time part of a DT is kept" % where)
                    n_dates += 1
            shutil.rmtree(out, ignore_errors=True)
    check(n_dates > KEYS * 20, "dates compared (%d)" % n_dates)
    log("%d keys x %d inputs: %d dates shifted exactly, %d removed or emptied"
        % (KEYS, len(inputs), n_dates, n_removed))
    finish()


if __name__ == "__main__":
    main()
