#!/usr/bin/python3
"""t_echo: C-ECHO with dcmtk's echoscu; wrong called AE title and a calling AE title not in
associations.allowed_calling_aes are rejected (A-ASSOCIATE-RJ with the reasons of
docs/conformance.md); the node keeps serving afterwards."""
import lib
import dul


def body():
    node = lib.Node("echo").start()

    r = lib.echoscu(node)
    lib.check(r.returncode == 0, "echoscu exit %s:\n%s" % (r.returncode, r.stdout))
    lib.check("Received Echo Response (Success)" in r.stdout, "no success response:\n" + r.stdout)

    r = lib.echoscu(node, extra=["--repeat", "5"])
    lib.check(r.returncode == 0 and r.stdout.count("Received Echo Response (Success)") == 5,
              "echoscu --repeat 5:\n" + r.stdout)

    if lib.IS_MITRAL:
        r = lib.echoscu(node, aec="NOT_MITRAL")
        lib.check(r.returncode != 0, "wrong called AE: echoscu exit 0:\n" + r.stdout)
        lib.check("Association Rejected" in r.stdout, "wrong called AE: not rejected:\n" + r.stdout)
        lib.check("Called AE Title Not Recognized" in r.stdout,
                  "wrong called AE: reason:\n" + r.stdout)

        a = dul.Assoc("127.0.0.1", node.port, called="WRONG_AE")
        lib.check(not a.associate(), "raw client: wrong called AE accepted")
        lib.check(a.reject == (1, 1, 7),
                  "wrong called AE: A-ASSOCIATE-RJ (result, source, reason) = %r, want (1, 1, 7)"
                  % (a.reject,))
        a.close()

        # Called AE titles compare exactly (trailing spaces are padding, case is not).
        a = dul.Assoc("127.0.0.1", node.port, called="mitral")
        lib.check(not a.associate(), "lower-case called AE title accepted")
        a.close()

    # the node still serves, after the rejections
    r = lib.echoscu(node)
    lib.check(r.returncode == 0, "echoscu after rejections, exit %s:\n%s" % (r.returncode, r.stdout))

    a = dul.Assoc("127.0.0.1", node.port, contexts=[(dul.VERIFICATION, [dul.EXPLICIT_LE, dul.IMPLICIT_LE])])
    lib.check(a.associate(), "raw client: association rejected %r" % (a.reject,))
    lib.check(a.accepted.get(1) in (dul.EXPLICIT_LE, dul.IMPLICIT_LE), "verification context not accepted")
    lib.check(a.echo() == 0, "raw client: C-ECHO status not 0")
    lib.check(a.echo() == 0, "raw client: second C-ECHO status not 0")
    lib.check(a.release(), "raw client: no A-RELEASE-RP")

    if lib.IS_MITRAL:
        # an unknown abstract syntax is refused per context, the association still accepted
        a = dul.Assoc("127.0.0.1", node.port,
                      contexts=[("1.2.3.4.5.6.7", [dul.IMPLICIT_LE]), (dul.VERIFICATION, [dul.IMPLICIT_LE])])
        lib.check(a.associate(), "unknown abstract syntax: whole association rejected")
        lib.check(a.results.get(1) == 3, "unknown abstract syntax: result %r, want 3" % (a.results.get(1),))
        lib.check(a.results.get(3) == 0, "verification next to it not accepted")
        lib.check(a.echo() == 0, "C-ECHO on the accepted context")
        a.release()

        # calling AE allow-list
        n2 = lib.Node("allow", conf={"associations.allowed_calling_aes": ["PACS1", "MR_SCANNER"]}).start()
        r = lib.echoscu(n2, aet="PACS1")
        lib.check(r.returncode == 0, "allowed calling AE PACS1 refused:\n" + r.stdout)
        r = lib.echoscu(n2, aet="INTRUDER")
        lib.check(r.returncode != 0 and "Calling AE Title Not Recognized" in r.stdout,
                  "calling AE not in the list: not rejected with the right reason:\n" + r.stdout)
        a = dul.Assoc("127.0.0.1", n2.port, calling="INTRUDER")
        lib.check(not a.associate() and a.reject == (1, 1, 3),
                  "calling AE not allowed: A-ASSOCIATE-RJ %r, want (1, 1, 3)" % (a.reject,))
        a.close()
        r = lib.echoscu(n2, aet="MR_SCANNER")
        lib.check(r.returncode == 0, "allowed calling AE MR_SCANNER refused after a rejection")
        lib.check(n2.stop() == 0, "allow-list node: exit code not 0 after SIGTERM")

    rc = node.stop()
    lib.check(rc == 0, "node exit code %s after SIGTERM, want 0" % rc)


lib.run_guarded(body)
