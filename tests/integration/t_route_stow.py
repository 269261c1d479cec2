#!/usr/bin/python3
"""t_route_stow.py - forwarding to DICOMweb STOW-RS destinations (issue 6).

Node A (site) forwards everything it stores to three destinations:
  central-web  B's project endpoint http://.../projects/p2/dicomweb/studies, Bearer token
               from a 0600 file (user bob);
  bad-web      the same endpoint with a wrong token: B answers 401, the entries are dead-
               lettered at once with the reason in `mitral queue list`;
  tls-web      node C over HTTPS (http.tls_port, a self-signed certificate made here with
               openssl, verified through ca_file), HTTP Basic (alice, password from a file),
               one instance per request (max_instances_per_request: 1) to exercise keep-alive.
storescu sends studies to A in two batches; B is stopped after the first reached it and
restarted after the second was stored at A. Then: A's queue is empty but for bad-web's dead
entries; B and C hold exactly A's instances, once each; every stored file at B and C is A's
stored file byte for byte; the studies are in B's project p2. A world-readable token file
stops A at start-up with a clear message; a config without a CA that knows C's certificate
leaves the entries queued with the certificate reason, while tls_insecure_skip_verify
delivers to the same server with a loud warning.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests", "deid"))
import lib  # noqa: E402
import web  # noqa: E402

try:
    import pydicom  # noqa: E402,F401
    import check_leaks  # noqa: E402
except ImportError:
    lib.skip("pydicom not installed")
if not lib.IS_MITRAL:
    lib.skip("needs mitral on both sides")

REAL = ["pydicom/test_files/MR_small.dcm", "pydicom/test_files/CT_small.dcm",
        "pydicom-data/MR-SIEMENS-DICOM-WithOverlays.dcm", "pydicom/charset_files/chrH31.dcm",
        "pydicom/charset_files/chrX1.dcm", "pydicom/test_files/rtplan.dcm"]


def q(node, sql):
    return [tuple(r.values()) for r in node.query(sql)]


def sop_paths(node):
    return dict(q(node, "SELECT sop_instance_uid, path FROM instances"))


def secret(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, mode)
    return path


def dest_yaml(name, url, extra):
    return "  - name: %s\n    stow_url: %s\n" % (name, url) + "".join(
        "    %s: %s\n" % kv for kv in extra)


def main():
    work = lib.tmpdir("mt-route-stow-")
    cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], capture_output=True)
    if r.returncode != 0:
        lib.skip("openssl req failed: " + r.stderr.decode()[-200:])
    other_cert = os.path.join(work, "other.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    os.path.join(work, "other.key"), "-out", other_cert, "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   capture_output=True, check=True)
    gen = os.path.join(work, "gen")
    os.mkdir(gen)
    files = check_leaks.make_cmr_study(gen) + [
        os.path.join(lib.TESTDATA, p) for p in REAL if os.path.exists(os.path.join(lib.TESTDATA, p))]

    b = web.WebNode(name="central", aet="CENTRAL")
    c_tls = lib.free_port()
    c = web.WebNode(name="tlsnode", aet="TLSNODE",
                    extra={"http.tls_port": c_tls, "http.tls_cert": cert, "http.tls_key": key})
    tok = secret(os.path.join(work, "bob.token"), web.TOKEN_BOB)
    wrong = secret(os.path.join(work, "wrong.token"), "not-the-token-0000")
    pw = secret(os.path.join(work, "alice.pw"), web.PW_ALICE)
    rules = os.path.join(work, "rules.yaml")
    with open(rules, "w") as f:
        f.write("rules:\n  - name: all\n    forward: [central-web, bad-web, tls-web]\n")
    dests = ("destinations:\n" +
             dest_yaml("central-web", "http://127.0.0.1:%d/projects/p2/dicomweb/studies"
                       % b.http_port, [("token_file", tok), ("connections", 2),
                                       ("max_instances_per_request", 4)]) +
             dest_yaml("bad-web", "http://127.0.0.1:%d/projects/p2/dicomweb/studies"
                       % b.http_port, [("token_file", wrong)]) +
             dest_yaml("tls-web", "https://127.0.0.1:%d/projects/p1/dicomweb/studies" % c_tls,
                       [("user", "alice"), ("password_file", pw), ("ca_file", cert),
                        ("connections", 1), ("max_instances_per_request", 1)]))
    aconf = {"routing.rules": rules, "forward.retry_initial": "100ms",
             "forward.retry_max": "1s", "forward.max_attempts": "100000",
             "forward.connect_timeout": "2s", "log.level": "debug"}
    a = lib.Node("site", aet="SITE", conf=aconf, yaml_extra=dests)

    # a world-readable token file stops the node before it listens
    loose = secret(os.path.join(work, "loose.token"), web.TOKEN_BOB, 0o644)
    bad_a = lib.Node("loose", aet="SITE", conf=aconf, yaml_extra=dests.replace(tok, loose))
    bad_a.port = lib.free_port()
    r = lib.run(bad_a.cmdline(), timeout=60)
    lib.check(r.returncode != 0 and "accessible by group or others" in r.stderr + r.stdout,
              "a world-readable token_file is refused at start-up (exit %s): %s"
              % (r.returncode, (r.stderr + r.stdout)[-300:]))

    b.start()
    c.start()
    lib.wait_for(lambda: lib.port_listening(c_tls), "C listens for https")
    a.start()
    half = len(files) // 2
    res = lib.storescu(a, files[:half], aet="PACS")
    n1 = sum(1 for _, s in lib.store_results(res.stdout) if s == "Success")
    lib.check(n1 == half, "batch 1 stored at A (%d/%d)" % (n1, half))
    lib.wait_for(lambda: len(sop_paths(b)) >= 1, "B receives by STOW-RS", 120)
    b.stop()
    res = lib.storescu(a, files[half:], aet="PACS")
    n2 = sum(1 for _, s in lib.store_results(res.stdout) if s == "Success")
    lib.check(n2 == len(files) - half, "batch 2 stored at A while B is down")
    lib.wait_for(lambda: q(a, "SELECT count(*) FROM forward_queue WHERE destination = "
                              "'central-web' AND last_error IS NOT NULL")[0][0] > 0,
                 "central-web entries fail while B is down", 60)
    r = lib.run([lib.MITRAL, "queue", "list", "--dest", "central-web", "--data", a.data])
    lib.check("central-web" in r.stdout and "connect" in r.stdout,
              "queue list: central-web entries with the connection error: %s" % r.stdout[-300:])
    b.start()
    lib.wait_for(lambda: q(a, "SELECT count(*) FROM forward_queue WHERE destination <> "
                              "'bad-web' OR state = 0")[0][0] == 0,
                 "A's queue drains to B and C, bad-web's entries all dead", 240)
    at_a = sop_paths(a)
    lib.check(len(at_a) == len(files), "A stored every file (%d/%d)" % (len(at_a), len(files)))
    for node, name in ((b, "B"), (c, "C")):
        got = sop_paths(node)
        lib.check(set(got) == set(at_a), "%s holds exactly A's instances (A %d, %s %d)"
                  % (name, len(at_a), name, len(got)))
        same = 0
        for sop in set(got) & set(at_a):
            fa = open(os.path.join(a.storage, at_a[sop]), "rb").read()
            fb = open(os.path.join(node.storage, got[sop]), "rb").read()
            same += fa == fb
        lib.check(same == len(at_a), "%s's files are A's stored files byte for byte (%d/%d)"
                  % (name, same, len(at_a)))
    stored_msgs = sum(int(l.split("stow ")[1].split(" stored")[0])
                      for l in b.all_logs().splitlines() if "stow " in l and " stored" in l)
    lib.check(stored_msgs == len(at_a), "B stored each instance once (%d stores for %d)"
              % (stored_msgs, len(at_a)))
    peers = [l.split("http ")[1].split(":")[1] for l in c.all_logs().splitlines()
             if ": stow " in l]
    lib.check(len(peers) == len(at_a) and len(set(peers)) < len(peers),
              "C: one request per instance, kept-alive connections reused (%d requests, %d "
              "connections)" % (len(peers), len(set(peers))))
    studies_b = {r[0] for r in q(b, "SELECT study_instance_uid FROM studies")}
    in_p2 = {r[0] for r in q(b, "SELECT study_uid FROM project_studies WHERE project = 'p2'")}
    lib.check(studies_b and studies_b == in_p2, "B's studies are in project p2")
    # bad-web: every entry dead at once (attempts 1), the 401 in queue list
    dead = q(a, "SELECT state, attempts, last_error FROM forward_queue WHERE destination = "
                "'bad-web'")
    # (entries queued while B was down failed to connect first: those attempts count too)
    lib.check(len(dead) == len(files) and all(s == 1 and "HTTP 401" in e for s, _, e in dead)
              and min(n for _, n, _ in dead) == 1,
              "wrong token: every bad-web entry dead at its first answer (%s)" % dead[:2])
    r = lib.run([lib.MITRAL, "queue", "list", "--dead", "--data", a.data])
    lib.check("bad-web" in r.stdout and "HTTP 401" in r.stdout,
              "queue list --dead shows the 401: %s" % r.stdout[-300:])
    stopped = {"A": a.stop()}
    # a CA that does not know C's certificate: nothing delivered, the reason is queued
    # (and tls_insecure_skip_verify delivers to it all the same, with a loud warning)
    a2 = lib.Node("site2", aet="SITE2", conf=aconf, yaml_extra="destinations:\n" + dest_yaml(
        "tls-web", "https://127.0.0.1:%d/projects/p1/dicomweb/studies" % c_tls,
        [("user", "alice"), ("password_file", pw), ("ca_file", other_cert)]) + dest_yaml(
        "tls-insecure", "https://127.0.0.1:%d/projects/p1/dicomweb/studies" % c_tls,
        [("user", "alice"), ("password_file", pw), ("tls_insecure_skip_verify", "true")]))
    with open(rules + "2", "w") as f:
        f.write("rules:\n  - name: all\n    forward: [tls-web, tls-insecure]\n")
    a2.conf["routing.rules"] = rules + "2"
    a2.start()
    res = lib.storescu(a2, files[:1], aet="PACS")
    lib.wait_for(lambda: q(a2, "SELECT count(*) FROM forward_queue WHERE last_error "
                                        "IS NOT NULL")[0][0] > 0,
                 "the untrusted server's entry fails", 60)
    lib.wait_for(lambda: not q(a2, "SELECT 1 FROM forward_queue WHERE destination = "
                                   "'tls-insecure'"), "tls_insecure_skip_verify delivers", 60)
    lib.check("NOT verified" in a2.log_text(), "tls_insecure_skip_verify is logged loudly")
    r = lib.run([lib.MITRAL, "queue", "list", "--data", a2.data])
    lib.check("certificate" in r.stdout, "queue list names the certificate problem: %s"
              % r.stdout[-300:])
    stopped.update({"A2": a2.stop(), "B": b.stop(), "C": c.stop()})
    for (name, rc), node in zip(stopped.items(), (a, a2, b, c)):
        text = node.all_logs()
        lib.check(rc == 0 and "Sanitizer" not in text and "runtime error" not in text,
                  "%s stopped cleanly (exit %s, no sanitizer report)" % (name, rc))


lib.run_guarded(main)
