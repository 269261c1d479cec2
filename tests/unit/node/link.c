/* tests for node/link.c (chunked P-DATA-TF encoding with the last-fragment bit only on the
 * final chunk; the table of requests awaiting responses) and for the requestor side of
 * node/negotiate.c (build an A-ASSOCIATE-RQ, read the peer's AC, roles, find_pc). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "link.h"
#include "negotiate.h"
#include "pdu.h"
#include "util/err.h"

#define MR "1.2.840.10008.5.1.4.1.1.4"
#define ELE "1.2.840.10008.1.2.1"
#define ILE "1.2.840.10008.1.2"
#define JPEG "1.2.840.10008.1.2.4.50"

static void test_encode_chunks(void **state)
{
    (void)state;
    uint8_t data[100];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)i;
    mt_buf_t b;
    mt_buf_init(&b, SIZE_MAX);
    /* peer max 38: 32 value bytes per PDV -> 4 PDUs, none marked last */
    assert_int_equal(mt_link_encode_pdata(&b, 3, false, data, 100, false, 38), 0);
    size_t pos = 0, n_pdu = 0, got = 0;
    while (pos < b.len) {
        mt_pdu_t p;
        size_t used;
        mt_pdu_diag_t d;
        assert_int_equal(mt_pdu_decode(b.data + pos, b.len - pos, 0, &p, &used, &d), 0);
        assert_true(used <= 6 + 38);
        mt_pdv_iter_t it;
        mt_pdv_iter_init(&it, &p);
        mt_pdv_t v;
        while (mt_pdv_next(&it, &v, &d) == 1) {
            assert_int_equal(v.pcid, 3);
            assert_false(v.command);
            assert_false(v.last);
            assert_memory_equal(v.data, data + got, v.len);
            got += v.len;
        }
        mt_pdu_dispose(&p);
        pos += used;
        n_pdu++;
    }
    assert_int_equal(got, 100);
    assert_int_equal(n_pdu, 4);
    /* the final chunk: only its last PDV has the bit */
    mt_buf_reset(&b);
    assert_int_equal(mt_link_encode_pdata(&b, 5, true, data, 40, true, 38), 0);
    mt_pdu_t p;
    size_t used;
    mt_pdu_diag_t d;
    assert_int_equal(mt_pdu_decode(b.data, b.len, 0, &p, &used, &d), 0);
    mt_pdv_iter_t it;
    mt_pdv_iter_init(&it, &p);
    mt_pdv_t v;
    assert_int_equal(mt_pdv_next(&it, &v, &d), 1);
    assert_true(v.command);
    assert_false(v.last);
    mt_pdu_dispose(&p);
    assert_int_equal(mt_pdu_decode(b.data + used, b.len - used, 0, &p, &used, &d), 0);
    mt_pdv_iter_init(&it, &p);
    assert_int_equal(mt_pdv_next(&it, &v, &d), 1);
    assert_true(v.last);
    assert_int_equal(v.len, 8);
    mt_pdu_dispose(&p);
    mt_buf_dispose(&b);
}

static int n_called, last_err;
static void *last_user;
static void rsp_cb(void *user, int err, const mt_dimse_cmd_t *rsp)
{
    (void)rsp;
    n_called++;
    last_err = err;
    last_user = user;
}

static void test_pending(void **state)
{
    (void)state;
    mt_link_pending_t t;
    memset(&t, 0, sizeof t);
    uint16_t a = mt_link_pending_next_id(&t), b;
    assert_true(a != 0);
    assert_int_equal(mt_link_pending_add(&t, a, rsp_cb, &t), 0);
    assert_int_equal(mt_link_pending_add(&t, a, rsp_cb, &t), MT_EEXIST);
    b = mt_link_pending_next_id(&t);
    assert_true(b != a && b != 0);
    assert_int_equal(mt_link_pending_add(&t, b, rsp_cb, NULL), 0);
    mt_link_rsp_cb cb;
    void *u;
    assert_false(mt_link_pending_take(&t, 999, &cb, &u));
    assert_true(mt_link_pending_take(&t, a, &cb, &u));
    assert_ptr_equal(u, &t);
    assert_int_equal(t.n, 1);
    n_called = 0;
    mt_link_pending_fail(&t, MT_ECANCELED);
    assert_int_equal(n_called, 1);
    assert_int_equal(last_err, MT_ECANCELED);
    assert_int_equal(t.n, 0);
    for (int i = 0; i < MT_LINK_MAX_PENDING; i++)
        assert_int_equal(mt_link_pending_add(&t, mt_link_pending_next_id(&t), rsp_cb, NULL), 0);
    assert_int_equal(mt_link_pending_add(&t, 60000, rsp_cb, NULL), MT_ETOOBIG);
    t.last_id = 0xFFFF; /* wraps, never 0 */
    memset(&t, 0, sizeof t);
    t.last_id = 0xFFFF;
    assert_int_equal(mt_link_pending_next_id(&t), 1);
}

static void test_requestor_roundtrip(void **state)
{
    (void)state;
    mt_nego_proposal_t pcs[3] = {
        {MR, {JPEG}, 1, false, false, false},
        {MR, {ELE, ILE}, 2, false, false, false},
        {MT_UID_STORAGE_COMMITMENT, {ELE}, 1, true, false, true},
    };
    mt_nego_rq_params_t p = {"MITRAL", "DEST", pcs, 3, 65536, 0};
    mt_pdu_t rq;
    assert_int_equal(mt_nego_build_rq(&p, &rq), 0);
    /* through the wire and back */
    mt_buf_t b;
    mt_buf_init(&b, SIZE_MAX);
    assert_int_equal(mt_pdu_encode(&rq, &b), 0);
    mt_pdu_t rq2;
    size_t used;
    mt_pdu_diag_t d;
    assert_int_equal(mt_pdu_decode(b.data, b.len, 0, &rq2, &used, &d), 0);
    assert_int_equal(rq2.u.assoc.n_pcs, 3);
    assert_int_equal(rq2.u.assoc.pcs[1].id, 3);
    assert_int_equal(rq2.u.assoc.ui.n_roles, 1);
    assert_int_equal(rq2.u.assoc.ui.roles[0].scp_role, 1);
    /* a peer acceptor (our own policy): JPEG context accepted, MR fallback accepted with
     * Explicit, commitment with the requested SCP role */
    mt_nego_policy_t pol = {.ae_title = "DEST", .max_pdu = 32768};
    mt_negotiated_t acc, req;
    mt_pdu_t ac;
    assert_int_equal(mt_negotiate(&pol, &rq2.u.assoc, &acc, &ac, &d), 0);
    assert_int_equal(mt_nego_read_ac(&rq.u.assoc, &ac.u.assoc, &req), 0);
    assert_int_equal(req.peer_max_pdu, 32768);
    assert_int_equal(req.n_accepted, 2); /* our acceptor refuses an SCP-only commitment SCU */
    assert_int_equal(mt_nego_find_pc(&req, MR, JPEG, false), 1);
    assert_int_equal(mt_nego_find_pc(&req, MR, ELE, false), 3);
    assert_int_equal(mt_nego_find_pc(&req, MR, ILE, false), 0);
    assert_int_equal(mt_nego_find_pc(&req, MR, NULL, true), 0);
    assert_int_equal(req.pcs[2].result, MT_PC_USER_REJECTION);
    assert_int_equal(mt_nego_find_pc(&req, MT_UID_STORAGE_COMMITMENT, NULL, true), 0);
    /* a peer that grants the SCP role (as the report listener of t_commit_basic does) */
    ac.u.assoc.pcs[2].result = MT_PC_ACCEPTANCE;
    assert_true(ac.u.assoc.pcs[2].n_ts >= 1); /* rejected contexts echo a syntax */
    snprintf(ac.u.assoc.pcs[2].ts[0].s, sizeof ac.u.assoc.pcs[2].ts[0].s, "%s", ELE);
    mt_pdu_role_add(&ac.u.assoc.ui, MT_UID_STORAGE_COMMITMENT, 0, 1);
    assert_int_equal(mt_nego_read_ac(&rq.u.assoc, &ac.u.assoc, &req), 0);
    assert_int_equal(mt_nego_find_pc(&req, MT_UID_STORAGE_COMMITMENT, NULL, true), 5);
    assert_int_equal(mt_nego_find_pc(&req, MT_UID_STORAGE_COMMITMENT, NULL, false), 0);
    /* an AC naming a context we did not propose is a protocol error */
    ac.u.assoc.pcs[0].id = 99;
    assert_int_equal(mt_nego_read_ac(&rq.u.assoc, &ac.u.assoc, &req), MT_EPROTO);
    mt_pdu_dispose(&ac);
    mt_pdu_dispose(&rq2);
    mt_pdu_dispose(&rq);
    mt_buf_dispose(&b);
    /* bad parameters */
    mt_nego_rq_params_t bad = {"MITRAL", "A_CALLED_AE_TITLE_TOO_LONG", pcs, 3, 0, 0};
    assert_int_equal(mt_nego_build_rq(&bad, &rq), MT_EINVAL);
    mt_pdu_dispose(&rq);
    bad.called_ae = "X";
    bad.n_pcs = 0;
    assert_int_equal(mt_nego_build_rq(&bad, &rq), MT_EINVAL);
    mt_pdu_dispose(&rq);
}

/* PS3.7 D.3.3.3 from the requestor's side: the window proposed, and what read_ac makes of the
 * acceptor's answer (our own acceptor, then hand-made answers). */
static void test_requestor_async_window(void **state)
{
    (void)state;
    mt_nego_proposal_t pcs[1] = {{MR, {ELE}, 1, false, false, false}};
    mt_nego_rq_params_t p = {"MITRAL", "DEST", pcs, 1, 65536, 16};
    mt_pdu_t rq, rq2, ac;
    assert_int_equal(mt_nego_build_rq(&p, &rq), 0);
    mt_buf_t b;
    mt_buf_init(&b, SIZE_MAX);
    assert_int_equal(mt_pdu_encode(&rq, &b), 0);
    size_t used;
    mt_pdu_diag_t d;
    assert_int_equal(mt_pdu_decode(b.data, b.len, 0, &rq2, &used, &d), 0);
    assert_true(rq2.u.assoc.ui.has_async);
    assert_int_equal(rq2.u.assoc.ui.max_ops_invoked, 16);
    assert_int_equal(rq2.u.assoc.ui.max_ops_performed, 1);
    /* our acceptor with a smaller window (associations.max_async_operations 8) */
    mt_nego_policy_t pol = {.ae_title = "DEST", .max_ops_invoked = 8, .max_ops_performed = 1};
    mt_negotiated_t acc, req;
    assert_int_equal(mt_negotiate(&pol, &rq2.u.assoc, &acc, &ac, &d), 0);
    assert_int_equal(mt_nego_read_ac(&rq.u.assoc, &ac.u.assoc, &req), 0);
    assert_int_equal(req.max_ops_invoked, 8);
    /* 0 (unlimited) or more than proposed: what we proposed */
    ac.u.assoc.ui.max_ops_invoked = 0;
    assert_int_equal(mt_nego_read_ac(&rq.u.assoc, &ac.u.assoc, &req), 0);
    assert_int_equal(req.max_ops_invoked, 16);
    ac.u.assoc.ui.max_ops_invoked = 200;
    assert_int_equal(mt_nego_read_ac(&rq.u.assoc, &ac.u.assoc, &req), 0);
    assert_int_equal(req.max_ops_invoked, 16);
    /* no answer item (storescp): the default 1 */
    ac.u.assoc.ui.has_async = false;
    assert_int_equal(mt_nego_read_ac(&rq.u.assoc, &ac.u.assoc, &req), 0);
    assert_int_equal(req.max_ops_invoked, 1);
    /* an answer to a window we never proposed is ignored */
    ac.u.assoc.ui.has_async = true;
    ac.u.assoc.ui.max_ops_invoked = 4;
    rq.u.assoc.ui.has_async = false;
    assert_int_equal(mt_nego_read_ac(&rq.u.assoc, &ac.u.assoc, &req), 0);
    assert_int_equal(req.max_ops_invoked, 1);
    mt_pdu_dispose(&ac);
    mt_pdu_dispose(&rq2);
    mt_pdu_dispose(&rq);
    mt_buf_dispose(&b);
    /* window 0: no item at all */
    p.max_ops_invoked = 0;
    assert_int_equal(mt_nego_build_rq(&p, &rq), 0);
    assert_false(rq.u.assoc.ui.has_async);
    mt_pdu_dispose(&rq);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_chunks),
        cmocka_unit_test(test_pending),
        cmocka_unit_test(test_requestor_roundtrip),
        cmocka_unit_test(test_requestor_async_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
