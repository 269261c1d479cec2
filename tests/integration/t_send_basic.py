#!/usr/bin/python3
"""t_send_basic.py - `mitral send` (C-STORE SCU CLI, issue 3) to dcmtk's storescp: a directory
is walked, every Part 10 file arrives identical over one association with one OK line each;
to a destination accepting only uncompressed syntaxes the native files arrive (re-encoded when
stored deflated) and the compressed ones are reported FAIL (exit 1); an unreachable
destination exits 3; usage errors exit 2; --help exits 0. Then a mitral -> mitral send."""
import os
import shutil

import gen_mr
import lib
import qrlib

TS_DIR = os.path.join(lib.TESTDATA, "orthanc-tests", "TransferSyntaxes")


def body():
    if not lib.IS_MITRAL:
        lib.skip("mitral send is mitral's")
    gen = lib.tmpdir("mt-send-gen-")
    files = gen_mr.generate(os.path.join(gen, "s"), count=8, series=2, phases=4, seed="send")
    with open(os.path.join(gen, "s", "not-dicom.txt"), "w") as f:
        f.write("hello\n")
    dest = qrlib.StoreSCP("SENDDEST", extra=["+xa"]).start()
    plain = qrlib.StoreSCP("PLAIN", name="plain").start()
    try:
        r = lib.run([lib.MITRAL, "send", "--help"])
        lib.check(r.returncode == 0 and "--to AE@HOST:PORT" in r.stdout, "send --help")
        r = lib.run([lib.MITRAL, "send", gen])
        lib.check(r.returncode == 2, "send without --to: exit 2 (got %s)" % r.returncode)

        r = lib.run([lib.MITRAL, "send", "--to", "SENDDEST@127.0.0.1:%d" % dest.port,
                     "--aet", "ADMIN", gen])
        lib.check(r.returncode == 0, "send exit %s\n%s%s" % (r.returncode, r.stdout, r.stderr))
        lib.check(r.stdout.count("\nOK ") + r.stdout.startswith("OK ") == 8,
                  "8 OK lines\n" + r.stdout)
        lib.check("SKIP" in r.stderr and "not-dicom.txt" in r.stderr, "non-DICOM file skipped")
        src = {lib.read_meta(p)["sop_instance_uid"]: p for p in files}
        qrlib.check_identical(src, dest.by_sop(), "mitral send")
        lib.check(open(dest.logpath).read().count("Association Received") == 1,
                  "one association for all files")

        # files larger than the 1 MiB read chunk: streamed in several chunks, identical
        big = [os.path.join(lib.TESTDATA, "pydicom-data", "MR2_UNCI.dcm"),
               os.path.join(lib.TESTDATA, "dbdicom", "MULTIFRAME", "IM_0010")]
        big = [p for p in big if os.path.exists(p) and lib.read_meta(p)]
        if big:
            dest.clear()
            r = lib.run([lib.MITRAL, "send", "--to", "SENDDEST@127.0.0.1:%d" % dest.port] + big)
            lib.check(r.returncode == 0, "send of multi-chunk files: exit %s\n%s%s"
                      % (r.returncode, r.stdout, r.stderr))
            src = {lib.read_meta(p)["sop_instance_uid"]: p for p in big}
            qrlib.check_identical(src, dest.by_sop(), "multi-chunk send")
        else:
            lib.log("note: no test file larger than 1 MiB: multi-chunk check skipped")

        if os.path.isdir(TS_DIR):
            r = lib.run([lib.MITRAL, "send", "--to", "PLAIN@127.0.0.1:%d" % plain.port, TS_DIR])
            lib.check(r.returncode == 1, "compressed files to an uncompressed-only SCP: exit 1")
            for line in r.stdout.splitlines():
                if ".4." in os.path.basename(line) or "1.2.5.dcm" in line:  # JPEG*, RLE
                    lib.check(line.startswith("FAIL"), "compressed reported FAIL: " + line)
            defl = os.path.join(TS_DIR, "1.2.840.10008.1.2.1.99.dcm")
            got = plain.by_sop()
            sop = lib.read_meta(defl)["sop_instance_uid"]
            lib.check(sop in got, "deflated file arrives re-encoded")
            if sop in got:
                lib.check(lib.read_meta(got[sop])["transfer_syntax_uid"] in lib.UNCOMPRESSED,
                          "re-encoded to an uncompressed syntax")
                d = lib.compare_datasets(defl, got[sop])
                lib.check(d is None, "re-encoded data set equals the original: %s" % d)

        r = lib.run([lib.MITRAL, "send", "--to", "X@127.0.0.1:%d" % lib.free_port(), gen])
        lib.check(r.returncode == 3, "unreachable destination: exit 3 (got %s)" % r.returncode)

        # mitral -> mitral
        node = lib.Node("sendnode").start()
        r = lib.run([lib.MITRAL, "send", "--to", "MITRAL@127.0.0.1:%d" % node.port, gen])
        lib.check(r.returncode == 0, "send to mitral: exit %s\n%s" % (r.returncode, r.stdout))
        lib.check(len(node.stored_by_sop()) == 8, "8 instances stored by the receiving mitral")
        lib.check(node.stop() == 0, "receiving node exit 0")
    finally:
        dest.stop()
        plain.stop()


lib.run_guarded(body)
lib.finish()
