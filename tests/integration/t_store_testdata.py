#!/usr/bin/python3
"""t_store_testdata: every valid storage instance of ../shared/testdata (selected here, by
lib.valid_instances: Part 10, known transfer syntax, storage SOP class, parseable by pydicom
and dcmdump) is sent to a fresh node in several rounds, one node per round:

  raw      dul.py, the file's own transfer syntax, data set bytes as in the file; every copy of a
           SOP Instance UID in turn (overwrite policy): stored data set byte-identical
  implicit storescu -xi -R, files converted by dcmconv +ti          -> stored as Implicit VR LE
  explicit storescu -xe -R, files converted by dcmconv +te          -> Explicit VR LE
  big      storescu -xb -R, files converted by dcmconv +tb          -> Explicit VR BE
  deflated storescu -xd -R, files converted by dcmconv +td          -> Deflated Explicit VR LE
  asis     storescu -R, compressed files as they are                -> their own syntax
  dcmsend  dcmsend -dn, compressed and explicit LE files as they are -> their own syntax

After each round: every instance has its file (meta: transfer syntax, SOP class/instance,
source AE) with the same data set as the reference (bytes, else element by element with
pydicom), an index row with the right keys, `mitral index stats` counts, no temp file left.
"""
import collections
import concurrent.futures
import os
import shutil
import subprocess

import dul
import lib

# storescu option that proposes each compressed syntax (plus the uncompressed ones)
STORESCU_TS_OPT = {"1.2.840.10008.1.2.4.50": "-xy", "1.2.840.10008.1.2.4.51": "-xx",
                   "1.2.840.10008.1.2.4.70": "-xs", "1.2.840.10008.1.2.4.80": "-xt",
                   "1.2.840.10008.1.2.4.81": "-xu", "1.2.840.10008.1.2.4.90": "-xv",
                   "1.2.840.10008.1.2.4.91": "-xw", "1.2.840.10008.1.2.5": "-xr"}


def group_by_ts(insts):
    out = collections.defaultdict(list)
    for i in insts:
        out[i["ts"]].append(i)
    return out


def dcmtk_clean(path):
    """dcmdump reads the file without a single warning (dcmtk's deflater is not reliable on
    files it warns about: a private OB of undefined length hangs its sender)."""
    r = subprocess.run(["dcmdump", "-M", path], capture_output=True, text=True, errors="replace")
    return r.returncode == 0 and "W: " not in r.stderr and "W: " not in r.stdout and \
        "(0008,0016) UI" in r.stdout and "(0008,0018) UI" in r.stdout and \
        "(0002,0010) UI =" in r.stdout  # storescu needs both UIDs, and to know the syntax


def expected_counts(insts):
    pats = set((i["patient_id"], i["issuer"]) for i in insts)
    return {"patients": len(pats), "studies": len(set(i["study_uid"] for i in insts)),
            "series": len(set(i["series_uid"] for i in insts)), "instances": len(insts)}


def verify(node, round_name, expect, calling):
    """expect: sop_uid -> (inst, reference path, wanted ts, byte_exact)"""
    lib.wait_for(lambda: not node.tmp_files(), "%s: temp files gone" % round_name, deadline_s=60)
    stored = node.stored_by_sop()
    missing = sorted(set(expect) - set(stored))
    extra = sorted(set(stored) - set(expect))
    lib.check(not missing, "%s: %d instances not stored, e.g. %s" % (
        round_name, len(missing), [os.path.basename(expect[u][1]) for u in missing[:5]]))
    lib.check(not extra, "%s: %d unexpected files stored" % (round_name, len(extra)))
    rows = node.index_instances() if lib.IS_MITRAL else {}
    bad_content, bad_meta, bad_index = [], [], []
    for u, (inst, ref, want_ts, exact) in sorted(expect.items()):
        p = stored.get(u)
        if not p:
            continue
        m = lib.read_meta(p)
        if m.get("transfer_syntax_uid") != want_ts or m.get("sop_class_uid") != inst["sop_class"]:
            bad_meta.append("%s: ts %s (want %s) class %s" % (os.path.basename(ref),
                            m.get("transfer_syntax_uid"), want_ts, m.get("sop_class_uid")))
        elif lib.IS_MITRAL and m.get("source_ae") != calling:
            bad_meta.append("%s: source AE %r, want %r" % (os.path.basename(ref), m.get("source_ae"), calling))
        if exact:
            want = lib.dataset_bytes(ref)
            if len(want) % 2:
                want += b"\0"  # deflated stream padded to even length on the wire
            if want != lib.dataset_bytes(p):
                bad_content.append("%s: data set bytes differ" % ref)
        else:
            d = lib.compare_datasets(ref, p)
            if d:
                bad_content.append("%s: %s" % (ref, d))
        if lib.IS_MITRAL:
            r = rows.get(u)
            if not r:
                bad_index.append("%s: no index row" % os.path.basename(ref))
                continue
            want = {"study_instance_uid": inst["study_uid"], "series_instance_uid": inst["series_uid"],
                    "sop_class_uid": inst["sop_class"], "patient_id": inst["patient_id"],
                    "transfer_syntax_uid": want_ts, "verified": 1,
                    "path": os.path.relpath(p, node.storage), "size": os.path.getsize(p)}
            diff = {k: (r.get(k), v) for k, v in want.items() if r.get(k) != v}
            if diff:
                bad_index.append("%s: %r" % (os.path.basename(ref), diff))
    for what, lst in (("content", bad_content), ("meta", bad_meta), ("index", bad_index)):
        lib.check(not lst, "%s: %d instances with wrong %s:\n      %s" % (
            round_name, len(lst), what, "\n      ".join(lst[:8])))
    if lib.IS_MITRAL:
        insts = [e[0] for e in expect.values()]
        st = node.stats()
        want = expected_counts(insts)
        want["bytes"] = sum(os.path.getsize(p) for p in stored.values())
        lib.check(all(st.get(k) == v for k, v in want.items()),
                  "%s: index stats %r, want %r" % (round_name, st, want))
        lib.check(len(rows) == len(expect), "%s: %d index rows for %d instances" % (
            round_name, len(rows), len(expect)))
    lib.check(not node.tmp_files(), "%s: temp files left: %r" % (round_name, node.tmp_files()[:5]))


def check_responses(round_name, out, files):
    res = lib.store_results(out)
    ok = [f for f, s in res if s == "Success"]
    notok = [(f, s) for f, s in res if s != "Success"]
    lib.check(not notok, "%s: %d non-success responses, e.g. %r" % (round_name, len(notok), notok[:5]))
    lib.check(len(ok) == len(files), "%s: %d success responses for %d files" % (round_name, len(ok), len(files)))


def chunks(insts, max_classes=30):
    """Split so that one storescu association proposes few presentation contexts."""
    out, cur, keys = [], [], set()
    for i in insts:
        k = (i["sop_class"], i["ts"])
        if k not in keys and len(keys) >= max_classes:
            out.append(cur)
            cur, keys = [], set()
        keys.add(k)
        cur.append(i)
    if cur:
        out.append(cur)
    return out


def round_raw(all_layers):
    node = lib.Node("raw").start()
    calling = "DULTEST"
    expect = {}
    for li, layer in enumerate(all_layers):
        for part in chunks(layer, max_classes=100):
            ctx_keys = sorted(set((i["sop_class"], i["ts"]) for i in part))
            a = dul.Assoc("127.0.0.1", node.port, called=node.aet, calling=calling,
                          contexts=[(c, [t]) for c, t in ctx_keys])
            if not lib.check(a.associate(), "raw: association rejected %r" % (a.reject,)):
                continue
            fails = []
            for i in part:
                pcid = 2 * ctx_keys.index((i["sop_class"], i["ts"])) + 1
                if pcid not in a.accepted and not lib.IS_MITRAL and a.results.get(pcid) == 4:
                    continue  # storescp (harness self-check) lacks a few syntaxes, e.g. 4.57
                if pcid not in a.accepted:
                    fails.append("%s: context %s/%s not accepted (result %s)" % (
                        i["path"], i["sop_class"], i["ts"], a.results.get(pcid)))
                    continue
                cls, sop, ts, data = dul.split_part10(i["path"])
                try:
                    status, rsp = a.store(pcid, cls, sop, data)
                except (dul.Closed, OSError) as e:
                    fails.append("%s: no response (%r); the rest of this association skipped" % (i["path"], e))
                    break
                if status != 0:
                    fails.append("%s: status %s %s" % (i["path"], status, rsp.get("comment", "")))
                else:
                    expect[sop] = (i, i["path"], i["ts"], True)
            try:
                a.release()
            except (dul.Closed, OSError):
                a.close()
            lib.check(not fails, "raw layer %d: %d failures:\n      %s" % (li, len(fails), "\n      ".join(fails[:10])))
        verify(node, "raw layer %d" % li, dict(expect), calling)
    lib.check(node.stop() == 0, "raw: exit code after SIGTERM")


def convert(insts, flag, outdir):
    """dcmconv each file; -> list of (inst, converted path) (files dcmconv refuses are skipped)."""
    os.makedirs(outdir, exist_ok=True)
    out = []
    for n, i in enumerate(insts):
        dst = os.path.join(outdir, "%04d.dcm" % n)
        r = subprocess.run(["dcmconv", flag, i["path"], dst], capture_output=True)
        if r.returncode == 0 and lib.read_meta(dst):
            out.append((i, dst))
    return out


def round_storescu(name, pairs, opts, want_ts, calling="STORESCU"):
    """pairs: [(inst, file to send)]; want_ts None = the file's own syntax."""
    node = lib.Node(name).start()
    expect = {}
    groups = chunks([dict(i, _send=p, ts=lib.read_meta(p)["transfer_syntax_uid"]) for i, p in pairs])
    for g in groups:
        files = [i["_send"] for i in g]
        r = lib.storescu(node, files, extra=opts, aet=calling)
        check_responses(name, r.stdout, files)
        for i in g:
            expect[i["sop_uid"]] = (i, i["_send"], want_ts or i["ts"], False)
    verify(node, name, expect, calling)
    lib.check(node.stop() == 0, "%s: exit code after SIGTERM" % name)
    return len(pairs)


def round_dcmsend(insts):
    node = lib.Node("dcmsend").start()
    files = [i["path"] for i in insts]
    r = lib.run(["dcmsend", "-v", "-dn", "-nh", "-nuc", "-aet", "DCMSEND", "-aec", node.aet,
                 "127.0.0.1", str(node.port)] + files)
    out = r.stdout + r.stderr
    lib.check(r.returncode == 0, "dcmsend exit %s:\n%s" % (r.returncode, out[-3000:]))
    lib.check("with status SUCCESS" in out or "Status Summary" in out, "dcmsend summary missing:\n" + out[-2000:])
    expect = {i["sop_uid"]: (i, i["path"], i["ts"], False) for i in insts}
    verify(node, "dcmsend", expect, "DCMSEND")
    lib.check(node.stop() == 0, "dcmsend: exit code after SIGTERM")


def body():
    if not os.path.isdir(lib.TESTDATA):
        lib.skip("%s absent: no shared test data" % lib.TESTDATA)
    insts = lib.valid_instances(lib.TESTDATA)
    # A study UID that two files give to different patients is inconsistent data: the index
    # keeps the first patient; leave those out of the count checks.
    pats = collections.defaultdict(set)
    for i in insts:
        pats[i["study_uid"]].add((i["patient_id"], i["issuer"]))
    dropped = [i for i in insts if len(pats[i["study_uid"]]) > 1]
    insts = [i for i in insts if len(pats[i["study_uid"]]) == 1]
    by_ts = collections.Counter(i["ts"] for i in insts)
    lib.log("%d valid instances (%d left out: one study UID, several patients); by syntax: %s" % (
        len(insts), len(dropped), dict(by_ts)))
    lib.check(len(insts) >= 50, "only %d valid instances found in %s" % (len(insts), lib.TESTDATA))
    all_layers = lib.layers(insts)
    first = all_layers[0]

    round_raw(all_layers)

    # The dcmtk rounds take the files dcmtk reads without a warning: on the others its senders
    # fail by themselves (a VR UN everywhere, a private OB of undefined length hangs its
    # deflater ...). The raw round above sends every valid file.
    clean = [i for i in first if dcmtk_clean(i["path"])]
    lib.log("%d of %d files are clean for dcmtk's senders" % (len(clean), len(first)))
    first = clean
    work = lib.tmpdir("mt-conv-")
    native = [i for i in first if i["ts"] in lib.UNCOMPRESSED or i["ts"] == lib.DEFLATED]
    compressed = [i for i in first if i not in native]
    # The rounds wait mostly on the node's durable commits: run them two at a time, each with
    # its own node (the machine has 2 cores; ctest may run another test beside this one).
    def conv_round(args):
        name, flag, opts, ts = args
        pairs = convert(native, flag, os.path.join(work, name))
        lib.check(len(pairs) >= len(native) * 0.8, "%s: dcmconv converted only %d of %d" % (
            name, len(pairs), len(native)))
        n = round_storescu(name, pairs, opts, ts)
        lib.log("%s: %d instances stored and checked" % (name, n))
        shutil.rmtree(os.path.join(work, name), ignore_errors=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
        for f in [ex.submit(conv_round, a) for a in (
                ("implicit", "+ti", ["-xi", "-R"], "1.2.840.10008.1.2"),
                ("explicit", "+te", ["-xe", "-R"], "1.2.840.10008.1.2.1"),
                ("big", "+tb", ["-xb", "-R"], "1.2.840.10008.1.2.2"),
                ("deflated", "+td", ["-xd", "-R"], lib.DEFLATED))]:
            f.result()

    # storescu proposes a compressed syntax only when told which one (-x? per syntax); the
    # syntaxes it has no option for go with dcmsend, which proposes the file's own syntax.
    n = 0
    left = []
    for ts, insts_ts in sorted(group_by_ts(compressed).items()):
        opt = STORESCU_TS_OPT.get(ts)
        if not opt:
            left += insts_ts
            continue
        n += round_storescu("asis-" + ts, [(i, i["path"]) for i in insts_ts], [opt, "-R"], None)
    lib.log("asis: %d compressed instances stored and checked with storescu" % n)

    charsets = [i for i in first if "/charset" in i["path"] and i["ts"] == "1.2.840.10008.1.2.1"]
    round_dcmsend(left + charsets + [i for i in compressed if i not in left][::4])
    lib.log("dcmsend: done")


lib.run_guarded(body)
