#!/usr/bin/python3
"""t_web_retrieve_batch.py - WADO-RS series retrieval as stored over plain HTTP, where the files
go out in 8 MiB batches on a worker (mt_http_sendfiles): a 90-instance series (~12 MB, so
several batches) retrieved with curl is byte-identical to the stored files, in instance order,
framed by a Content-Length (not chunked); the same series with no transfer syntax named
(native files re-encoded one at a time, chunked) gives the same instances; two concurrent
retrievals and a client that disconnects mid-body leave the node answering; a stored file that
vanished gives a short body (the connection closes), never a wrong one."""
import hashlib
import os
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_mr  # noqa: E402
import lib  # noqa: E402
import web  # noqa: E402

import pydicom  # noqa: E402

ACC = 'Accept: multipart/related; type="application/dicom"; transfer-syntax=*'


def curl(url, accept, out, extra=()):
    r = subprocess.run(["curl", "-s", "-S", "--max-time", "120", "-D", out + ".h", "-o", out,
                        "-H", accept, *extra, url], capture_output=True)
    return r.returncode


def parts_of(hpath, bpath):
    with open(hpath, "rb") as f:
        heads = f.read().decode("latin-1")
    ct = [line.split(":", 1)[1].strip() for line in heads.splitlines()
          if line.lower().startswith("content-type:")][-1]
    with open(bpath, "rb") as f:
        return heads, web.multipart_decode(ct, f.read())


def main():
    d = lib.tmpdir("mt-web-batch-")
    files = gen_mr.generate(os.path.join(d, "in"), count=90, series=1, phases=30, seed="batch")
    node = web.WebNode(name="batch", users=False)
    node.start()
    rc = lib.storescu(node, files).returncode
    lib.check(rc == 0, "storescu 90 instances (%s)" % rc)
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    order = []
    for f in files:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        stored = web.stored_file(node, str(ds.SOPInstanceUID))
        with open(stored, "rb") as fh:
            order.append((int(ds.InstanceNumber), hashlib.sha256(fh.read()).hexdigest()))
    want = [h for _, h in sorted(order)]  # the stored bytes, in instance number order
    url = "http://127.0.0.1:%d/dicomweb/studies/%s/series/%s" % (
        node.http_port, first.StudyInstanceUID, first.SeriesInstanceUID)
    out = os.path.join(d, "series.bin")
    lib.check(curl(url, ACC, out) == 0, "curl retrieves the series")
    heads, parts = parts_of(out + ".h", out)
    got = [hashlib.sha256(p[1]).hexdigest() for p in parts]
    lib.check(got == want, "90 parts, byte-identical to the stored files, in instance order "
              "(%d parts, %d equal as a set)" % (len(parts), len(set(got) & set(want))))
    lib.check("content-length:" in heads.lower() and "chunked" not in heads.lower(),
              "framed by Content-Length, not chunked")
    lib.check(os.path.getsize(out) > 10 * 2**20, "more than one 8 MiB batch (%d bytes)"
              % os.path.getsize(out))
    # no syntax named: native files re-encoded (explicit LE already: the same bytes), chunked
    out2 = os.path.join(d, "series2.bin")
    curl(url, 'Accept: multipart/related; type="application/dicom"', out2)
    heads2, parts2 = parts_of(out2 + ".h", out2)
    lib.check(len(parts2) == 90, "no transfer syntax named: 90 parts (%d)" % len(parts2))
    # two at once
    res = []

    def one(k):
        o = os.path.join(d, "c%d.bin" % k)
        curl(url, ACC, o)
        res.append([hashlib.sha256(p[1]).hexdigest() for p in parts_of(o + ".h", o)[1]] == want)
    ts = [threading.Thread(target=one, args=(k,)) for k in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    lib.check(res == [True, True], "two concurrent retrievals both complete and identical")
    # a client that stops after 1 MB
    p = subprocess.Popen(["curl", "-s", "-N", "-H", ACC, url], stdout=subprocess.PIPE)
    p.stdout.read(1 << 20)
    p.kill()
    p.wait()
    st, _, _ = web.request(node, "GET", "/dicomweb/studies")
    lib.check(st == 200, "node answers after a client left mid-body (%s)" % st)
    # a stored file vanishes: the body ends short, the node lives
    root = os.path.join(node.dir, "storage")
    victims = []
    for dp, _, fs in os.walk(root):
        victims += [os.path.join(dp, f) for f in fs if f.endswith(".dcm")]
    if victims:
        os.unlink(sorted(victims)[len(victims) // 2])
        out3 = os.path.join(d, "series3.bin")
        curl(url, ACC, out3)
        lib.check(os.path.getsize(out3) < os.path.getsize(out), "a missing file: a short body")
    st, _, _ = web.request(node, "GET", "/dicomweb/studies")
    lib.check(st == 200, "node still answers")
    lib.check(node.stop() == 0, "clean stop")


lib.run_guarded(main)
