#!/usr/bin/python3
"""t_generated: realistic cine MR instances from gen_mr.py (runs without ../shared): one study of
3 series sent over 3 parallel storescu associations, plus small studies in Implicit VR LE and
Explicit VR BE. Every file stored with the same data set, every index key right (patient,
study, series, instance attributes), `mitral index stats` exact."""
import os

import gen_mr
import lib


def body():
    src = lib.tmpdir("mt-gen-")
    main = gen_mr.generate(os.path.join(src, "main"), count=60, series=3, phases=20, seed="t_generated")
    impl = gen_mr.generate(os.path.join(src, "impl"), count=6, series=1, phases=6, seed="t_gen_impl",
                           ts="implicit", patient_id="MT-0002")
    big = gen_mr.generate(os.path.join(src, "big"), count=6, series=2, phases=3, seed="t_gen_big",
                          ts="big", patient_id="MT-0003")
    node = lib.Node("gen").start()

    procs = []
    for s in sorted(os.listdir(os.path.join(src, "main"))):
        d = os.path.join(src, "main", s)
        files = sorted(os.path.join(d, f) for f in os.listdir(d))
        logp = os.path.join(node.dir, "storescu-%s.log" % s)
        procs.append((lib.storescu_popen(node, files, logp), logp, files))
    for p, logp, files in procs:
        p.wait(240)
        out = open(logp, errors="replace").read()
        res = lib.store_results(out)
        lib.check(p.returncode == 0, "storescu %s exit %s" % (logp, p.returncode))
        lib.check([s for _, s in res] == ["Success"] * len(files),
                  "%s: responses %r" % (logp, sorted(set(s for _, s in res))))
    r = lib.storescu(node, impl, extra=["-xi", "-R"])
    lib.check(r.returncode == 0 and [s for _, s in lib.store_results(r.stdout)] == ["Success"] * 6,
              "implicit: storescu failed:\n" + r.stdout[-2000:])
    r = lib.storescu(node, big, extra=["-xb", "-R"])
    lib.check(r.returncode == 0 and [s for _, s in lib.store_results(r.stdout)] == ["Success"] * 6,
              "big endian: storescu failed:\n" + r.stdout[-2000:])

    import pydicom
    lib.wait_for(lambda: not node.tmp_files(), "temp files gone")
    stored = node.stored_by_sop()
    rows = node.index_instances() if lib.IS_MITRAL else {}
    want_ts = {}
    for p in main:
        want_ts[p] = "1.2.840.10008.1.2.1"
    for p in impl:
        want_ts[p] = "1.2.840.10008.1.2"
    for p in big:
        want_ts[p] = "1.2.840.10008.1.2.2"
    bad = []
    for p, ts in sorted(want_ts.items()):
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        u = ds.SOPInstanceUID
        sp = stored.get(u)
        if not sp:
            bad.append("%s: not stored" % p)
            continue
        m = lib.read_meta(sp)
        if m["transfer_syntax_uid"] != ts:
            bad.append("%s: stored as %s, want %s" % (p, m["transfer_syntax_uid"], ts))
        d = lib.compare_datasets(p, sp)
        if d:
            bad.append("%s: %s" % (p, d))
        if not lib.IS_MITRAL:
            continue
        r = rows.get(u)
        if not r:
            bad.append("%s: no index row" % p)
            continue
        want = {"study_instance_uid": ds.StudyInstanceUID, "series_instance_uid": ds.SeriesInstanceUID,
                "patient_id": ds.PatientID, "patient_name": str(ds.PatientName),
                "sop_class_uid": ds.SOPClassUID, "modality": "MR", "series_number": int(ds.SeriesNumber),
                "instance_number": int(ds.InstanceNumber), "n_rows": 256, "n_columns": 256,
                "transfer_syntax_uid": ts, "verified": 1, "size": os.path.getsize(sp),
                "path": os.path.relpath(sp, node.storage)}
        diff = {k: (r.get(k), v) for k, v in want.items() if r.get(k) != v}
        if diff:
            bad.append("%s: index %r" % (os.path.basename(p), diff))
    lib.check(not bad, "%d problems:\n      %s" % (len(bad), "\n      ".join(bad[:10])))
    lib.check(len(stored) == 72, "%d files stored, want 72" % len(stored))

    if lib.IS_MITRAL:
        st = node.stats()
        want = {"patients": 3, "studies": 3, "series": 6, "instances": 72,
                "bytes": sum(os.path.getsize(p) for p in stored.values())}
        lib.check(st == want, "index stats %r, want %r" % (st, want))
        # the cine attributes reach their columns
        ds = pydicom.dcmread(main[5], stop_before_pixels=True)
        r = node.query("SELECT trigger_time, cardiac_number_of_images, echo_time, repetition_time,"
                       " flip_angle, slice_location, image_position_patient, pixel_spacing"
                       " FROM instances WHERE sop_instance_uid = ?", (ds.SOPInstanceUID,))
        lib.check(len(r) == 1, "instance row for %s" % ds.SOPInstanceUID)
        if r:
            r = r[0]
            lib.check(abs(float(r["trigger_time"]) - float(ds.TriggerTime)) < 1e-6, "trigger_time %r" % r["trigger_time"])
            lib.check(int(r["cardiac_number_of_images"]) == 20, "cardiac_number_of_images %r" % r["cardiac_number_of_images"])
            lib.check(abs(float(r["flip_angle"]) - 60) < 1e-6, "flip_angle %r" % r["flip_angle"])
            lib.check(str(r["image_position_patient"]).strip() == "-180.0\\-160.0\\-40.0",
                      "image_position_patient %r" % r["image_position_patient"])
        ser = node.query("SELECT se.series_instance_uid, se.series_description, count(i.pk) AS n"
                         " FROM series se JOIN instances i ON i.series_pk = se.pk"
                         " JOIN studies st ON se.study_pk = st.pk WHERE st.study_instance_uid = ?"
                         " GROUP BY se.pk ORDER BY se.series_number", (ds.StudyInstanceUID,))
        lib.check([x["n"] for x in ser] == [20, 20, 20], "instances per series %r" % ser)
        lib.check([x["series_description"] for x in ser] == ["SAX cine SSFP 1", "SAX cine SSFP 2", "SAX cine SSFP 3"],
                  "series descriptions %r" % [x["series_description"] for x in ser])
    lib.check(not node.tmp_files(), "temp files left")
    lib.check(node.stop() == 0, "exit code after SIGTERM")


lib.run_guarded(body)
