/* tests for node/negotiate.c: A-ASSOCIATE-RQs captured from dcmtk (tests/fixtures/pdu/) and
 * synthetic ones against the policy: every rejection of PS3.8 Table 9-21, every context result,
 * transfer syntax preference, role selection, asynchronous window, user identity, and the AC
 * bytes we would send. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dicom/sop.h"
#include "negotiate.h"
#include "util/err.h"

#ifndef MT_SOURCE_DIR
#define MT_SOURCE_DIR "."
#endif

#define IMPLICIT "1.2.840.10008.1.2"
#define EXPLICIT "1.2.840.10008.1.2.1"
#define JPEG_LOSSLESS "1.2.840.10008.1.2.4.70"
#define MR_STORAGE "1.2.840.10008.5.1.4.1.1.4"
#define STUDY_ROOT_GET "1.2.840.10008.5.1.4.1.2.2.3"

static const char *const prefs[] = {EXPLICIT, IMPLICIT};

static mt_nego_policy_t policy(void)
{
    mt_nego_policy_t p;
    memset(&p, 0, sizeof(p));
    p.ae_title = "STORESCP";
    p.ts_preference = prefs;
    p.n_ts_preference = 2;
    p.max_pdu = 262144;
    p.max_ops_invoked = 16;
    p.max_ops_performed = 1;
    p.max_associations = 64;
    return p;
}

static int decode_fixture(const char *name, mt_pdu_t *p)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/tests/fixtures/pdu/%s", MT_SOURCE_DIR, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    uint8_t *b = malloc(1 << 20);
    size_t n = fread(b, 1, 1 << 20, f);
    fclose(f);
    size_t used;
    mt_pdu_diag_t d;
    int rc = mt_pdu_decode(b, n, 0, p, &used, &d);
    free(b);
    assert_int_equal(rc, 0);
    return 0;
}

#define FIXTURE(p, name)                                                                           \
    mt_pdu_t p;                                                                                    \
    if (decode_fixture(name, &p) != 0) {                                                           \
        print_message("fixture %s missing, skipped\n", name);                                      \
        skip();                                                                                    \
    }

/* a small RQ: called MITRAL-like "STORESCP", calling "SCU" */
static void make_rq(mt_pdu_t *p)
{
    mt_pdu_init(p, MT_PDU_A_ASSOCIATE_RQ);
    strcpy(p->u.assoc.called_ae, "STORESCP");
    strcpy(p->u.assoc.calling_ae, "SCU");
    strcpy(p->u.assoc.app_context, MT_APP_CONTEXT_UID);
    p->u.assoc.has_user_info = true;
    p->u.assoc.ui.has_max_len = true;
    p->u.assoc.ui.max_len = 16384;
    strcpy(p->u.assoc.ui.impl_class_uid, "1.2.3");
    mt_pdu_pc_t *pc = mt_pdu_pc_add(&p->u.assoc, 1, "1.2.840.10008.1.1");
    mt_pdu_pc_add_ts(pc, IMPLICIT);
}

/* encode the reply and decode it again (what the peer will see) */
static void reencode(const mt_pdu_t *reply, mt_pdu_t *out)
{
    mt_buf_t b;
    mt_buf_init(&b, 1 << 20);
    assert_int_equal(mt_pdu_encode(reply, &b), 0);
    size_t used;
    mt_pdu_diag_t d;
    assert_int_equal(mt_pdu_decode(b.data, b.len, 0, out, &used, &d), 0);
    assert_int_equal(used, b.len);
    mt_buf_dispose(&b);
}

static void test_echoscu_accept(void **state)
{
    (void)state;
    FIXTURE(rq, "echoscu-assoc-rq.bin");
    mt_nego_policy_t pol = policy();
    mt_negotiated_t n;
    mt_pdu_t reply, ac;
    mt_pdu_diag_t d;
    assert_int_equal(mt_negotiate(&pol, &rq.u.assoc, &n, &reply, &d), 0);
    assert_int_equal(reply.type, MT_PDU_A_ASSOCIATE_AC);
    assert_string_equal(n.calling_ae, "ECHOSCU");
    assert_string_equal(n.called_ae, "STORESCP");
    assert_int_equal(n.n_pcs, 1);
    assert_int_equal(n.n_accepted, 1);
    assert_int_equal(n.peer_max_pdu, 16384);
    assert_int_equal(n.our_max_pdu, 262144);
    assert_string_equal(n.peer_impl_version_name, "OFFIS_DCMTK_367");
    const mt_nego_pc_t *pc = mt_negotiated_pc(&n, 1);
    assert_non_null(pc);
    assert_string_equal(pc->abstract_syntax, MT_UID_VERIFICATION);
    assert_string_equal(pc->transfer_syntax, IMPLICIT);
    assert_non_null(pc->ts);
    assert_true(pc->requestor_scu);
    assert_false(pc->requestor_scp);
    assert_null(mt_negotiated_pc(&n, 3));
    assert_int_equal(mt_negotiated_max_pdv(&n, 1 << 20), 16384 - 6);

    reencode(&reply, &ac);
    const mt_pdu_assoc_t *a = &ac.u.assoc;
    assert_string_equal(a->called_ae, "STORESCP");
    assert_string_equal(a->calling_ae, "ECHOSCU");
    assert_string_equal(a->app_context, MT_APP_CONTEXT_UID);
    assert_int_equal(a->n_pcs, 1);
    assert_int_equal(a->pcs[0].id, 1);
    assert_int_equal(a->pcs[0].result, 0);
    assert_string_equal(a->pcs[0].ts[0].s, IMPLICIT);
    assert_true(a->has_user_info);
    assert_int_equal(a->ui.max_len, 262144);
    assert_string_equal(a->ui.impl_class_uid, MT_IMPL_CLASS_UID);
    assert_string_equal(a->ui.impl_version_name, MT_IMPL_VERSION_NAME);
    assert_false(a->ui.has_async);
    assert_int_equal(a->ui.n_roles, 0);
    assert_false(a->ui.has_identity_ac);
    mt_pdu_dispose(&ac);
    mt_pdu_dispose(&reply);
    mt_pdu_dispose(&rq);
}

/* storescu proposes every storage class it knows, one context per transfer syntax */
static void test_storescu_all_classes(void **state)
{
    (void)state;
    FIXTURE(rq, "storescu-assoc-rq.bin");
    mt_nego_policy_t pol = policy();
    mt_negotiated_t n;
    mt_pdu_t reply;
    mt_pdu_diag_t d;
    assert_int_equal(mt_negotiate(&pol, &rq.u.assoc, &n, &reply, &d), 0);
    assert_int_equal(n.n_pcs, rq.u.assoc.n_pcs);
    assert_true(n.n_accepted > 100);
    size_t mr = 0;
    for (size_t i = 0; i < n.n_pcs; i++) {
        const mt_nego_pc_t *pc = &n.pcs[i];
        const mt_pdu_pc_t *q = &rq.u.assoc.pcs[i];
        assert_int_equal(pc->id, q->id);
        bool ours = strcmp(q->abstract_syntax, MT_UID_VERIFICATION) == 0 ||
                    mt_sop_is_storage(q->abstract_syntax);
        if (!ours) {
            assert_int_equal(pc->result, MT_PC_ABSTRACT_SYNTAX_NOT_SUPPORTED);
            continue;
        }
        assert_int_equal(pc->result, MT_PC_ACCEPTANCE);
        /* the preferred syntax when proposed, else the first proposed */
        const char *want = q->ts[0].s;
        for (size_t t = 0; t < q->n_ts; t++)
            if (strcmp(q->ts[t].s, IMPLICIT) == 0 && strcmp(want, EXPLICIT) != 0)
                want = IMPLICIT;
        for (size_t t = 0; t < q->n_ts; t++)
            if (strcmp(q->ts[t].s, EXPLICIT) == 0)
                want = EXPLICIT;
        assert_string_equal(pc->transfer_syntax, want);
        if (strcmp(q->abstract_syntax, MR_STORAGE) == 0)
            mr++;
    }
    assert_true(mr >= 1);
    mt_pdu_t ac;
    reencode(&reply, &ac);
    assert_int_equal(ac.u.assoc.n_pcs, n.n_pcs);
    mt_pdu_dispose(&ac);
    mt_pdu_dispose(&reply);
    mt_pdu_dispose(&rq);
}

/* Orthanc's C-STORE SCU proposes every storage class with several syntaxes per context */
static void test_orthanc_store(void **state)
{
    (void)state;
    FIXTURE(rq, "orthanc-store-assoc-rq.bin");
    mt_nego_policy_t pol = policy();
    mt_negotiated_t n;
    mt_pdu_t reply;
    mt_pdu_diag_t d;
    assert_int_equal(mt_negotiate(&pol, &rq.u.assoc, &n, &reply, &d), 0);
    assert_string_equal(n.calling_ae, "ORTHANC");
    assert_true(n.n_accepted > 50);
    for (size_t i = 0; i < n.n_pcs; i++)
        if (n.pcs[i].result == MT_PC_ACCEPTANCE)
            assert_non_null(n.pcs[i].ts);
    mt_pdu_dispose(&reply);
    mt_pdu_dispose(&rq);
    FIXTURE(echo, "orthanc-echo-assoc-rq.bin");
    assert_int_equal(mt_negotiate(&pol, &echo.u.assoc, &n, &reply, &d), 0);
    /* Verification, the FIND and MOVE models are accepted; worklist is not offered */
    assert_string_equal(mt_negotiated_pc(&n, 1)->transfer_syntax, EXPLICIT);
    for (size_t i = 0; i < n.n_pcs; i++) {
        const char *as = n.pcs[i].abstract_syntax;
        if (strcmp(as, "1.2.840.10008.5.1.4.1.2.2.2") == 0)
            assert_int_equal(n.pcs[i].result, MT_PC_ACCEPTANCE);
        if (strcmp(as, "1.2.840.10008.5.1.4.31") == 0)
            assert_int_equal(n.pcs[i].result, MT_PC_ABSTRACT_SYNTAX_NOT_SUPPORTED);
        if (strcmp(as, MT_UID_STUDY_ROOT_FIND) == 0)
            assert_int_equal(n.pcs[i].result, MT_PC_ACCEPTANCE);
    }
    mt_pdu_dispose(&reply);
    mt_pdu_dispose(&echo);
}

/* The node's AE title plus project AE titles, each with its own calling AE allow list. */
static void test_called_ae_list(void **state)
{
    (void)state;
    static const char *const main_allow[] = {"ADMIN"};
    static const char *const proj_allow[] = {"WS1", "WS2"};
    mt_nego_ae_t aes[] = {
        {"MITRAL", main_allow, 1},
        {"CMR_QR", proj_allow, 2},
        {"OPEN_QR", NULL, 0},
    };
    struct {
        const char *called, *calling;
        int rc, index;
        uint8_t reason;
    } cases[] = {
        {"MITRAL", "ADMIN", 0, 0, 0},
        {"MITRAL", "WS1", MT_EREJECTED, 0, MT_RJ_USER_CALLING_AE_NOT_RECOGNIZED},
        {"CMR_QR", "WS2", 0, 1, 0},
        {"CMR_QR", "ADMIN", MT_EREJECTED, 0, MT_RJ_USER_CALLING_AE_NOT_RECOGNIZED},
        {"OPEN_QR", "ANYONE", 0, 2, 0},
        {"NOPE", "ADMIN", MT_EREJECTED, 0, MT_RJ_USER_CALLED_AE_NOT_RECOGNIZED},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        mt_pdu_t rq;
        make_rq(&rq);
        snprintf(rq.u.assoc.called_ae, sizeof rq.u.assoc.called_ae, "%s", cases[c].called);
        snprintf(rq.u.assoc.calling_ae, sizeof rq.u.assoc.calling_ae, "%s", cases[c].calling);
        mt_pdu_pc_t *pc = mt_pdu_pc_add(&rq.u.assoc, 3, MT_UID_STUDY_ROOT_FIND);
        mt_pdu_pc_add_ts(pc, IMPLICIT);
        mt_nego_policy_t pol = policy();
        pol.called_aes = aes;
        pol.n_called_aes = 3;
        mt_negotiated_t n;
        mt_pdu_t reply;
        mt_pdu_diag_t d;
        assert_int_equal(mt_negotiate(&pol, &rq.u.assoc, &n, &reply, &d), cases[c].rc);
        if (cases[c].rc == 0) {
            assert_int_equal(n.called_index, cases[c].index);
            assert_non_null(mt_negotiated_pc(&n, 3)); /* Study Root FIND accepted */
        } else {
            assert_int_equal(n.rj_result, MT_RJ_PERMANENT);
            assert_int_equal(n.rj_source, MT_RJ_SOURCE_SERVICE_USER);
            assert_int_equal(n.rj_reason, cases[c].reason);
        }
        mt_pdu_dispose(&reply);
        mt_pdu_dispose(&rq);
    }
}

static void test_transfer_syntax_choice(void **state)
{
    (void)state;
    mt_pdu_t rq;
    make_rq(&rq);
    mt_pdu_pc_t *pc = mt_pdu_pc_add(&rq.u.assoc, 3, MR_STORAGE);
    mt_pdu_pc_add_ts(pc, IMPLICIT);
    mt_pdu_pc_add_ts(pc, JPEG_LOSSLESS);
    mt_pdu_pc_add_ts(pc, EXPLICIT);
    pc = mt_pdu_pc_add(&rq.u.assoc, 5, MR_STORAGE);
    mt_pdu_pc_add_ts(pc, "1.2.3.4.5.6");
    mt_pdu_pc_add_ts(pc, JPEG_LOSSLESS);
    pc = mt_pdu_pc_add(&rq.u.assoc, 7, MR_STORAGE);
    mt_pdu_pc_add_ts(pc, "1.2.3.4.5.6");
    pc = mt_pdu_pc_add(&rq.u.assoc, 9, "1.2.3.999");
    mt_pdu_pc_add_ts(pc, IMPLICIT);
    pc = mt_pdu_pc_add(&rq.u.assoc, 11, STUDY_ROOT_GET);
    mt_pdu_pc_add_ts(pc, IMPLICIT);
    pc = mt_pdu_pc_add(&rq.u.assoc, 13, MR_STORAGE); /* no transfer syntax at all */
    mt_nego_policy_t pol = policy();
    mt_negotiated_t n;
    mt_pdu_t reply;
    mt_pdu_diag_t d;
    assert_int_equal(mt_negotiate(&pol, &rq.u.assoc, &n, &reply, &d), 0);
    assert_int_equal(n.n_pcs, 7);
    assert_int_equal(n.n_accepted, 4); /* 1, 3, 5 and 11 (Study Root GET) */
    assert_string_equal(mt_negotiated_pc(&n, 3)->transfer_syntax, EXPLICIT);      /* preference */
    assert_string_equal(mt_negotiated_pc(&n, 5)->transfer_syntax, JPEG_LOSSLESS); /* as sent */
    assert_true(mt_negotiated_pc(&n, 5)->ts->encapsulated);
    assert_int_equal(n.pcs[3].result, MT_PC_TRANSFER_SYNTAXES_NOT_SUPPORTED);
    assert_string_equal(n.pcs[3].transfer_syntax, "");
    assert_null(n.pcs[3].ts);
    assert_int_equal(n.pcs[4].result, MT_PC_ABSTRACT_SYNTAX_NOT_SUPPORTED);
    assert_int_equal(n.pcs[5].result, MT_PC_ACCEPTANCE); /* Study Root GET */
    assert_int_equal(n.pcs[6].result, MT_PC_TRANSFER_SYNTAXES_NOT_SUPPORTED);
    /* on the wire: every context answered, rejected ones still carry a TS sub-item */
    mt_pdu_t ac;
    reencode(&reply, &ac);
    assert_int_equal(ac.u.assoc.n_pcs, 7);
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(ac.u.assoc.pcs[i].id, n.pcs[i].id);
        assert_int_equal(ac.u.assoc.pcs[i].result, n.pcs[i].result);
        assert_int_equal(ac.u.assoc.pcs[i].n_ts, 1);
    }
    assert_string_equal(ac.u.assoc.pcs[1].ts[0].s, EXPLICIT);
    mt_pdu_dispose(&ac);
    mt_pdu_dispose(&reply);

    /* no preference list: the first proposed known syntax */
    pol.n_ts_preference = 0;
    assert_int_equal(mt_negotiate(&pol, &rq.u.assoc, &n, &reply, &d), 0);
    assert_string_equal(mt_negotiated_pc(&n, 3)->transfer_syntax, IMPLICIT);
    mt_pdu_dispose(&reply);
    mt_pdu_dispose(&rq);
}

static void expect_rj(const mt_nego_policy_t *pol, const mt_pdu_t *rq, uint8_t result,
                      uint8_t source, uint8_t reason)
{
    mt_negotiated_t n;
    mt_pdu_t reply;
    mt_pdu_diag_t d;
    assert_int_equal(mt_negotiate(pol, &rq->u.assoc, &n, &reply, &d), MT_EREJECTED);
    assert_int_equal(reply.type, MT_PDU_A_ASSOCIATE_RJ);
    assert_int_equal(reply.u.rj.result, result);
    assert_int_equal(reply.u.rj.source, source);
    assert_int_equal(reply.u.rj.reason, reason);
    assert_int_equal(n.rj_result, result);
    assert_int_equal(n.rj_source, source);
    assert_int_equal(n.rj_reason, reason);
    assert_non_null(n.rj_why);
    mt_buf_t b;
    mt_buf_init(&b, 64);
    assert_int_equal(mt_pdu_encode(&reply, &b), 0);
    const uint8_t want[10] = {3, 0, 0, 0, 0, 4, 0, result, source, reason};
    assert_int_equal(b.len, 10);
    assert_memory_equal(b.data, want, 10);
    mt_buf_dispose(&b);
    mt_pdu_dispose(&reply);
}

static int refuse_all(void *user, const char *calling, const mt_pdu_user_info_t *ui,
                      const uint8_t **rsp, size_t *n)
{
    (void)user;
    (void)calling;
    (void)ui;
    (void)rsp;
    (void)n;
    return -1;
}

static void test_rejections(void **state)
{
    (void)state;
    mt_pdu_t rq;
    make_rq(&rq);
    mt_nego_policy_t pol = policy();

    strcpy(rq.u.assoc.called_ae, "OTHER");
    expect_rj(&pol, &rq, 1, 1, 7);
    strcpy(rq.u.assoc.called_ae, "STORESCP");

    const char *const allow[] = {"CT1", "MR1"};
    pol.calling_ae_allow = allow;
    pol.n_calling_ae_allow = 2;
    expect_rj(&pol, &rq, 1, 1, 3);
    strcpy(rq.u.assoc.calling_ae, "MR1");
    mt_negotiated_t n;
    mt_pdu_t reply;
    mt_pdu_diag_t d;
    assert_int_equal(mt_negotiate(&pol, &rq.u.assoc, &n, &reply, &d), 0);
    mt_pdu_dispose(&reply);

    strcpy(rq.u.assoc.app_context, "1.2.3");
    expect_rj(&pol, &rq, 1, 1, 2);
    rq.u.assoc.app_context[0] = 0; /* absent */
    expect_rj(&pol, &rq, 1, 1, 2);
    strcpy(rq.u.assoc.app_context, MT_APP_CONTEXT_UID);

    rq.u.assoc.protocol_version = 2;
    expect_rj(&pol, &rq, 1, 2, 2);
    rq.u.assoc.protocol_version = 3; /* bit 0 set: version 1 supported */
    assert_int_equal(mt_negotiate(&pol, &rq.u.assoc, &n, &reply, &d), 0);
    mt_pdu_dispose(&reply);
    rq.u.assoc.protocol_version = 1;

    pol.n_associations = 64;
    expect_rj(&pol, &rq, 2, 3, 2);
    pol.max_associations = 0; /* no limit */
    assert_int_equal(mt_negotiate(&pol, &rq.u.assoc, &n, &reply, &d), 0);
    mt_pdu_dispose(&reply);

    /* identity refused */
    mt_pdu_identity_set_rq(&rq.u.assoc.ui, MT_IDENTITY_USERNAME, false, (const uint8_t *)"eve", 3,
                           NULL, 0);
    pol.authorize = refuse_all;
    expect_rj(&pol, &rq, 1, 1, 1);
    /* the order of the checks: called AE before the association limit */
    pol.max_associations = 1;
    pol.n_associations = 5;
    strcpy(rq.u.assoc.called_ae, "OTHER");
    expect_rj(&pol, &rq, 1, 1, 7);
    mt_pdu_dispose(&rq);
}

/* several called AE titles (node + projects), each with its own calling allow list */
static void test_called_aes(void **state)
{
    (void)state;
    mt_pdu_t rq;
    make_rq(&rq);
    static const char *const proj_allow[] = {"CT1"};
    const mt_nego_ae_t aes[] = {{"STORESCP", NULL, 0}, {"PROJ1", proj_allow, 1}};
    mt_nego_policy_t pol = policy();
    pol.called_aes = aes;
    pol.n_called_aes = 2;
    mt_negotiated_t n;
    mt_pdu_t reply;
    mt_pdu_diag_t d;
    assert_int_equal(mt_negotiate(&pol, &rq.u.assoc, &n, &reply, &d), 0);
    assert_int_equal(n.called_index, 0);
    mt_pdu_dispose(&reply);
    strcpy(rq.u.assoc.called_ae, "PROJ1");
    expect_rj(&pol, &rq, 1, 1, 3); /* SCU is not in PROJ1's list */
    strcpy(rq.u.assoc.calling_ae, "CT1");
    assert_int_equal(mt_negotiate(&pol, &rq.u.assoc, &n, &reply, &d), 0);
    assert_int_equal(n.called_index, 1);
    mt_pdu_dispose(&reply);
    strcpy(rq.u.assoc.called_ae, "OTHER");
    expect_rj(&pol, &rq, 1, 1, 7);
    mt_pdu_dispose(&rq);
}

static void test_ae_padding(void **state)
{
    (void)state;
    mt_pdu_t rq;
    make_rq(&rq);
    mt_nego_policy_t pol = policy();
    pol.ae_title = "  STORESCP ";
    mt_negotiated_t n;
    mt_pdu_t reply;
    mt_pdu_diag_t d;
    assert_int_equal(mt_negotiate(&pol, &rq.u.assoc, &n, &reply, &d), 0);
    mt_pdu_dispose(&reply);
    strcpy(rq.u.assoc.called_ae, "storescp"); /* AE titles are case sensitive */
    expect_rj(&pol, &rq, 1, 1, 7);
    mt_pdu_dispose(&rq);
}

static void test_abort_cases(void **state)
{
    (void)state;
    mt_pdu_t rq;
    make_rq(&rq);
    mt_pdu_pc_t *pc = mt_pdu_pc_add(&rq.u.assoc, 4, MR_STORAGE); /* even id */
    mt_pdu_pc_add_ts(pc, IMPLICIT);
    mt_nego_policy_t pol = policy();
    mt_negotiated_t n;
    mt_pdu_t reply;
    mt_pdu_diag_t d = {0};
    assert_int_equal(mt_negotiate(&pol, &rq.u.assoc, &n, &reply, &d), MT_EMALFORMED);
    assert_int_equal(d.abort_source, 2);
    assert_int_equal(d.abort_reason, MT_ABORT_INVALID_PDU_PARAMETER_VALUE);
    assert_non_null(d.reason);
    mt_pdu_dispose(&reply);
    rq.u.assoc.pcs[1].id = 1; /* duplicate of the first */
    d.reason = NULL;
    assert_int_equal(mt_negotiate(&pol, &rq.u.assoc, &n, &reply, &d), MT_EMALFORMED);
    assert_non_null(d.reason);
    mt_pdu_dispose(&reply);
    mt_pdu_dispose(&rq);
}

static void test_roles(void **state)
{
    (void)state;
    /* getscu: asks to be SCP for every storage class, with a C-GET model context: the
     * storage contexts are accepted with the requestor as SCP (C-GET sub-operations), and the
     * role items are answered SCU=0 SCP=1 */
    FIXTURE(rq, "getscu-assoc-rq.bin");
    mt_nego_policy_t pol = policy();
    pol.ae_title = "STORESCP";
    mt_negotiated_t n;
    mt_pdu_t reply;
    mt_pdu_diag_t d;
    assert_int_equal(mt_negotiate(&pol, &rq.u.assoc, &n, &reply, &d), 0);
    size_t scp = 0;
    for (size_t i = 0; i < n.n_pcs; i++) {
        const char *as = n.pcs[i].abstract_syntax;
        if (mt_sop_is_storage(as) && n.pcs[i].result == MT_PC_ACCEPTANCE) {
            assert_true(n.pcs[i].requestor_scp);
            assert_false(n.pcs[i].requestor_scu);
            scp++;
        }
    }
    assert_true(scp > 10);
    assert_true(reply.u.assoc.ui.n_roles > 10);
    for (size_t i = 0; i < reply.u.assoc.ui.n_roles; i++) {
        assert_int_equal(reply.u.assoc.ui.roles[i].scu_role, 0);
        assert_int_equal(reply.u.assoc.ui.roles[i].scp_role, 1);
    }
    uint8_t id = mt_nego_find_pc(&n, MR_STORAGE, NULL, true);
    assert_true(id != 0);
    assert_int_equal(mt_nego_find_pc(&n, MR_STORAGE, NULL, false), 0);
    mt_pdu_dispose(&reply);
    mt_pdu_dispose(&rq);

    /* the same roles without a C-GET model context: SCP-only requestors are refused */
    FIXTURE(rq3, "getscu-assoc-rq.bin");
    for (size_t i = 0; i < rq3.u.assoc.n_pcs; i++)
        if (strstr(rq3.u.assoc.pcs[i].abstract_syntax, "1.2.840.10008.5.1.4.1.2.") ==
            rq3.u.assoc.pcs[i].abstract_syntax)
            snprintf(rq3.u.assoc.pcs[i].abstract_syntax, sizeof rq3.u.assoc.pcs[i].abstract_syntax,
                     "1.2.3.999");
    assert_int_equal(mt_negotiate(&pol, &rq3.u.assoc, &n, &reply, &d), 0);
    size_t refused = 0;
    for (size_t i = 0; i < n.n_pcs; i++)
        if (mt_sop_is_storage(n.pcs[i].abstract_syntax)) {
            assert_int_equal(n.pcs[i].result, MT_PC_USER_REJECTION);
            refused++;
        }
    assert_true(refused > 10);
    assert_int_equal(reply.u.assoc.ui.n_roles, 0); /* no answer for refused classes */
    mt_pdu_dispose(&reply);
    mt_pdu_dispose(&rq3);

    /* a storage SCU that proposes SCU+SCP roles: accepted, answered SCU=1 SCP=0 */
    mt_pdu_t r2;
    make_rq(&r2);
    mt_pdu_pc_t *pc = mt_pdu_pc_add(&r2.u.assoc, 3, MR_STORAGE);
    mt_pdu_pc_add_ts(pc, EXPLICIT);
    pc = mt_pdu_pc_add(&r2.u.assoc, 5, MR_STORAGE);
    mt_pdu_pc_add_ts(pc, IMPLICIT);
    mt_pdu_role_add(&r2.u.assoc.ui, MR_STORAGE, 1, 1);
    mt_pdu_role_add(&r2.u.assoc.ui, "1.2.3.999", 1, 0); /* not accepted: not answered */
    assert_int_equal(mt_negotiate(&pol, &r2.u.assoc, &n, &reply, &d), 0);
    assert_int_equal(n.n_accepted, 3);
    assert_true(mt_negotiated_pc(&n, 3)->requestor_scu);
    assert_false(mt_negotiated_pc(&n, 3)->requestor_scp);
    mt_pdu_t ac;
    reencode(&reply, &ac);
    assert_int_equal(ac.u.assoc.ui.n_roles, 1); /* once per SOP class, not per context */
    assert_string_equal(ac.u.assoc.ui.roles[0].sop_class_uid, MR_STORAGE);
    assert_int_equal(ac.u.assoc.ui.roles[0].scu_role, 1);
    assert_int_equal(ac.u.assoc.ui.roles[0].scp_role, 0);
    mt_pdu_dispose(&ac);
    mt_pdu_dispose(&reply);
    mt_pdu_dispose(&r2);
}

static void test_async_window(void **state)
{
    (void)state;
    mt_pdu_t rq;
    make_rq(&rq);
    mt_nego_policy_t pol = policy();
    mt_negotiated_t n;
    mt_pdu_t reply;
    mt_pdu_diag_t d;
    assert_int_equal(mt_negotiate(&pol, &rq.u.assoc, &n, &reply, &d), 0);
    assert_false(reply.u.assoc.ui.has_async); /* not proposed: not answered */
    assert_int_equal(n.max_ops_invoked, 1);
    assert_int_equal(n.max_ops_performed, 1);
    mt_pdu_dispose(&reply);

    rq.u.assoc.ui.has_async = true;
    rq.u.assoc.ui.max_ops_invoked = 5;
    rq.u.assoc.ui.max_ops_performed = 0; /* unlimited */
    assert_int_equal(mt_negotiate(&pol, &rq.u.assoc, &n, &reply, &d), 0);
    mt_pdu_t ac;
    reencode(&reply, &ac);
    assert_true(ac.u.assoc.ui.has_async);
    assert_int_equal(ac.u.assoc.ui.max_ops_invoked, 5);
    assert_int_equal(ac.u.assoc.ui.max_ops_performed, 1);
    assert_int_equal(n.max_ops_invoked, 5);
    assert_int_equal(n.max_ops_performed, 1);
    mt_pdu_dispose(&ac);
    mt_pdu_dispose(&reply);

    rq.u.assoc.ui.max_ops_invoked = 0;
    rq.u.assoc.ui.max_ops_performed = 3;
    assert_int_equal(mt_negotiate(&pol, &rq.u.assoc, &n, &reply, &d), 0);
    assert_int_equal(n.max_ops_invoked, 16);
    assert_int_equal(n.max_ops_performed, 1);
    mt_pdu_dispose(&reply);
    mt_pdu_dispose(&rq);
}

static const uint8_t token[] = "server-token";

static int accept_with_token(void *user, const char *calling, const mt_pdu_user_info_t *ui,
                             const uint8_t **rsp, size_t *n)
{
    int *calls = user;
    (*calls)++;
    assert_string_equal(calling, "SCU");
    assert_int_equal(ui->identity_type, MT_IDENTITY_JWT);
    *rsp = token;
    *n = sizeof(token) - 1;
    return 0;
}

static void test_user_identity(void **state)
{
    (void)state;
    /* the captured storescu -usr alice -pwd secret -rsp: accepted by default, empty positive
     * response (PS3.7 D.3.3.7.2: username types get a zero-length response) */
    FIXTURE(rq, "storescu-identity-assoc-rq.bin");
    mt_nego_policy_t pol = policy();
    mt_negotiated_t n;
    mt_pdu_t reply, ac;
    mt_pdu_diag_t d;
    assert_int_equal(mt_negotiate(&pol, &rq.u.assoc, &n, &reply, &d), 0);
    assert_true(n.has_identity);
    assert_int_equal(n.identity_type, MT_IDENTITY_USERNAME_PASSCODE);
    assert_string_equal(n.identity_user, "alice");
    reencode(&reply, &ac);
    assert_true(ac.u.assoc.ui.has_identity_ac);
    assert_int_equal(ac.u.assoc.ui.identity_server_response_len, 0);
    mt_pdu_dispose(&ac);
    mt_pdu_dispose(&reply);
    mt_pdu_dispose(&rq);

    /* a JWT with a server response from the hook */
    mt_pdu_t r2;
    make_rq(&r2);
    mt_pdu_identity_set_rq(&r2.u.assoc.ui, MT_IDENTITY_JWT, true, (const uint8_t *)"eyJ", 3, NULL,
                           0);
    int calls = 0;
    pol.authorize = accept_with_token;
    pol.user = &calls;
    assert_int_equal(mt_negotiate(&pol, &r2.u.assoc, &n, &reply, &d), 0);
    assert_int_equal(calls, 1);
    assert_string_equal(n.identity_user, ""); /* not a username type */
    reencode(&reply, &ac);
    assert_true(ac.u.assoc.ui.has_identity_ac);
    assert_int_equal(ac.u.assoc.ui.identity_server_response_len, sizeof(token) - 1);
    assert_memory_equal(ac.u.assoc.ui.identity_server_response, token, sizeof(token) - 1);
    mt_pdu_dispose(&ac);
    mt_pdu_dispose(&reply);
    /* no positive response requested: none sent */
    r2.u.assoc.ui.identity_positive_response_requested = false;
    assert_int_equal(mt_negotiate(&pol, &r2.u.assoc, &n, &reply, &d), 0);
    assert_false(reply.u.assoc.ui.has_identity_ac);
    mt_pdu_dispose(&reply);
    mt_pdu_dispose(&r2);
}

static bool only_verification(void *user, const char *uid)
{
    (void)user;
    return strcmp(uid, MT_UID_VERIFICATION) == 0;
}

static void test_hooks_and_limits(void **state)
{
    (void)state;
    mt_pdu_t rq;
    make_rq(&rq);
    mt_pdu_pc_t *pc = mt_pdu_pc_add(&rq.u.assoc, 3, MR_STORAGE);
    mt_pdu_pc_add_ts(pc, IMPLICIT);
    rq.u.assoc.ui.max_len = 0; /* unlimited */
    mt_nego_policy_t pol = policy();
    pol.abstract_supported = only_verification;
    mt_negotiated_t n;
    mt_pdu_t reply;
    mt_pdu_diag_t d;
    assert_int_equal(mt_negotiate(&pol, &rq.u.assoc, &n, &reply, &d), 0);
    assert_int_equal(n.n_accepted, 1);
    assert_int_equal(n.pcs[1].result, MT_PC_ABSTRACT_SYNTAX_NOT_SUPPORTED);
    assert_int_equal(n.peer_max_pdu, 0);
    assert_int_equal(mt_negotiated_max_pdv(&n, 4096), 4096);
    mt_pdu_dispose(&reply);
    /* no user information at all: tolerated, peer max unlimited */
    rq.u.assoc.has_user_info = false;
    assert_int_equal(mt_negotiate(&pol, &rq.u.assoc, &n, &reply, &d), 0);
    assert_int_equal(n.peer_max_pdu, 0);
    assert_true(reply.u.assoc.has_user_info);
    mt_pdu_dispose(&reply);
    mt_pdu_dispose(&rq);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echoscu_accept), cmocka_unit_test(test_storescu_all_classes),
        cmocka_unit_test(test_orthanc_store),  cmocka_unit_test(test_transfer_syntax_choice),
        cmocka_unit_test(test_rejections),     cmocka_unit_test(test_called_aes),
        cmocka_unit_test(test_ae_padding),     cmocka_unit_test(test_abort_cases),
        cmocka_unit_test(test_roles),          cmocka_unit_test(test_async_window),
        cmocka_unit_test(test_user_identity),  cmocka_unit_test(test_hooks_and_limits),
        cmocka_unit_test(test_called_ae_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
