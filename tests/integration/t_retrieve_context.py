#!/usr/bin/python3
"""t_retrieve_context.py - a C-GET-RQ or C-MOVE-RQ sent on a presentation context whose abstract
syntax is not a GET (MOVE) information model - here the Study Root FIND context, with Affected
SOP Class UID = that context's (so the generic check of assoc.c passes) - is answered 0122
SOP Class Not Supported and nothing is retrieved (PS3.7 9.1.3 / 9.1.4: the operation is
performed under the SOP class of the context; the FIND model has no C-GET or C-MOVE), as a
C-FIND-RQ on a storage context is. The same request on the GET context works. Raw peer
(dul.py) with a storage context proposed with the SCP role, so a wrongly performed C-GET
would send C-STORE-RQs."""
import os

import dul
import gen_mr
import lib
import qrlib

FIND = "1.2.840.10008.5.1.4.1.2.2.1"
GET = "1.2.840.10008.5.1.4.1.2.2.3"


def request(a, pcid, sop_class, field, msg_id, study, dest=None):
    """Send a C-GET/C-MOVE-RQ on pcid; answer mitral's C-STORE-RQs; -> (final status, stores)."""
    fields = [(0x0002, dul._uid(sop_class)), (0x0100, dul._us(field)), (0x0110, dul._us(msg_id)),
              (0x0700, dul._us(0)), (0x0800, dul._us(0))]
    if dest:
        fields.append((0x0600, dest.encode().ljust(16)))
    a.send_message(pcid, dul.command(sorted(fields)), True)
    a.send_message(pcid, qrlib.study_identifier(study), False)
    stores = 0
    while True:
        c, _ = qrlib.read_msg(a)
        if c.get("field") == 0x0001:  # C-STORE-RQ from mitral
            stores += 1
            a.send_message(c["pcid"], qrlib.c_store_rsp(c, 0), True)
            continue
        if c.get("status") not in (0xFF00, 0xFF01):
            return c.get("status"), stores


def body():
    if not lib.IS_MITRAL:
        lib.skip("C-GET is mitral's")
    gen = lib.tmpdir("mt-rctx-gen-")
    files = gen_mr.generate(os.path.join(gen, "a"), count=2, series=1, phases=2, seed="rctx")
    study = qrlib.study_uid(files[0])
    dest = qrlib.StoreSCP("DEST").start()
    node = lib.Node("rctx", yaml_extra=qrlib.dest_yaml([("DEST", dest.port)])).start()
    try:
        r = lib.storescu(node, files)
        lib.check(r.returncode == 0, "storescu exit %s" % r.returncode)
        a = dul.Assoc("127.0.0.1", node.port, calling="GETC",
                      contexts=[(FIND, [dul.IMPLICIT_LE]), (GET, [dul.IMPLICIT_LE]),
                                (dul.MR_STORAGE, [dul.IMPLICIT_LE])])
        lib.check(a.associate(roles=[(dul.MR_STORAGE, 0, 1)]), "associated")
        find_pc, get_pc = a.pcid_for(FIND), a.pcid_for(GET)
        st, n = request(a, find_pc, FIND, 0x0010, 1, study)
        lib.check(st == 0x0122, "C-GET-RQ on the FIND context: 0122, got %r" % st)
        lib.check(n == 0, "C-GET-RQ on the FIND context: no C-STORE, got %d" % n)
        st, n = request(a, find_pc, FIND, 0x0021, 2, study, dest="DEST")
        lib.check(st == 0x0122, "C-MOVE-RQ on the FIND context: 0122, got %r" % st)
        lib.check(not dest.files(), "C-MOVE-RQ on the FIND context: nothing sent")
        st, n = request(a, get_pc, GET, 0x0021, 3, study, dest="DEST")
        lib.check(st == 0x0122, "C-MOVE-RQ on the GET context: 0122, got %r" % st)
        st, n = request(a, get_pc, GET, 0x0010, 4, study)
        lib.check(st == 0 and n == 2, "C-GET on the GET context: 0000 and 2 C-STOREs, got %r, %d"
                  % (st, n))
        lib.check(a.release(), "release")
        lib.check(node.alive(), "node alive")
    finally:
        dest.stop()
        node.stop()


lib.run_guarded(body)
lib.finish()
