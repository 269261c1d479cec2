/* tests for node/pdu.c: decode of PDUs captured from dcmtk 3.6.7 (echoscu, storescu, getscu,
 * dcmsend talking to storescp through a recording proxy; tests/fixtures/pdu/), round trips of
 * every PDU type and sub-item, every malformed case (lengths past their enclosing item,
 * oversized, truncated, unknown types, duplicated singletons), and P-DATA-TF split/iterate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pdu.h"
#include "util/alloc.h"
#include "util/err.h"

#ifndef MT_SOURCE_DIR
#define MT_SOURCE_DIR "."
#endif

static uint8_t *load(const char *name, size_t *n)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/tests/fixtures/pdu/%s", MT_SOURCE_DIR, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)sz + 1);
    *n = fread(b, 1, (size_t)sz, f);
    fclose(f);
    return b;
}

#define LOAD(var, n, name)                                                                         \
    size_t n = 0;                                                                                  \
    uint8_t *var = load(name, &n);                                                                 \
    if (!var) {                                                                                    \
        print_message("fixture %s missing, skipped\n", name);                                      \
        skip();                                                                                    \
    }

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* decode all of buf as one PDU, expecting success */
static void decode_ok(const uint8_t *buf, size_t n, mt_pdu_t *p)
{
    size_t used = 0;
    mt_pdu_diag_t d = {0};
    int rc = mt_pdu_decode(buf, n, 0, p, &used, &d);
    if (rc)
        print_message("decode: %s at %zu (%s)\n", mt_err_name(rc), d.offset,
                      d.reason ? d.reason : "");
    assert_int_equal(rc, 0);
    assert_int_equal(used, n);
}

static void expect_malformed(const uint8_t *buf, size_t n, uint8_t reason, size_t offset)
{
    mt_pdu_t p;
    size_t used = 0;
    mt_pdu_diag_t d = {0};
    int rc = mt_pdu_decode(buf, n, 0, &p, &used, &d);
    assert_int_equal(rc, MT_EMALFORMED);
    assert_non_null(d.reason);
    assert_int_equal(d.abort_source, MT_ABORT_SOURCE_SERVICE_PROVIDER);
    assert_int_equal(d.abort_reason, reason);
    if (offset != (size_t)-1)
        assert_int_equal(d.offset, offset);
    assert_true(d.offset < n);
    mt_pdu_dispose(&p);
}

static void assoc_equal(const mt_pdu_assoc_t *a, const mt_pdu_assoc_t *b)
{
    assert_int_equal(a->protocol_version, b->protocol_version);
    assert_string_equal(a->called_ae, b->called_ae);
    assert_string_equal(a->calling_ae, b->calling_ae);
    assert_string_equal(a->app_context, b->app_context);
    assert_int_equal(a->n_pcs, b->n_pcs);
    for (size_t i = 0; i < a->n_pcs; i++) {
        assert_int_equal(a->pcs[i].id, b->pcs[i].id);
        assert_int_equal(a->pcs[i].result, b->pcs[i].result);
        assert_string_equal(a->pcs[i].abstract_syntax, b->pcs[i].abstract_syntax);
        assert_int_equal(a->pcs[i].n_ts, b->pcs[i].n_ts);
        for (size_t t = 0; t < a->pcs[i].n_ts; t++)
            assert_string_equal(a->pcs[i].ts[t].s, b->pcs[i].ts[t].s);
    }
    assert_int_equal(a->has_user_info, b->has_user_info);
    const mt_pdu_user_info_t *x = &a->ui, *y = &b->ui;
    assert_int_equal(x->max_len, y->max_len);
    assert_string_equal(x->impl_class_uid, y->impl_class_uid);
    assert_string_equal(x->impl_version_name, y->impl_version_name);
    assert_int_equal(x->has_async, y->has_async);
    assert_int_equal(x->max_ops_invoked, y->max_ops_invoked);
    assert_int_equal(x->max_ops_performed, y->max_ops_performed);
    assert_int_equal(x->n_roles, y->n_roles);
    for (size_t i = 0; i < x->n_roles; i++) {
        assert_string_equal(x->roles[i].sop_class_uid, y->roles[i].sop_class_uid);
        assert_int_equal(x->roles[i].scu_role, y->roles[i].scu_role);
        assert_int_equal(x->roles[i].scp_role, y->roles[i].scp_role);
    }
    assert_int_equal(x->n_ext, y->n_ext);
    for (size_t i = 0; i < x->n_ext; i++) {
        assert_int_equal(x->ext[i].type, y->ext[i].type);
        assert_int_equal(x->ext[i].len, y->ext[i].len);
        assert_memory_equal(x->ext[i].value, y->ext[i].value, x->ext[i].len);
        assert_string_equal(x->ext[i].sop_class_uid, y->ext[i].sop_class_uid);
    }
    assert_int_equal(x->has_identity_rq, y->has_identity_rq);
    assert_int_equal(x->identity_type, y->identity_type);
    assert_int_equal(x->identity_positive_response_requested,
                     y->identity_positive_response_requested);
    assert_int_equal(x->identity_primary_len, y->identity_primary_len);
    if (x->identity_primary_len)
        assert_memory_equal(x->identity_primary, y->identity_primary, x->identity_primary_len);
    assert_int_equal(x->identity_secondary_len, y->identity_secondary_len);
    if (x->identity_secondary_len)
        assert_memory_equal(x->identity_secondary, y->identity_secondary,
                            x->identity_secondary_len);
    assert_int_equal(x->has_identity_ac, y->has_identity_ac);
    assert_int_equal(x->identity_server_response_len, y->identity_server_response_len);
    if (x->identity_server_response_len)
        assert_memory_equal(x->identity_server_response, y->identity_server_response,
                            x->identity_server_response_len);
}

/* decode -> encode -> decode gives the same struct and the same length */
static void roundtrip_fixture(const char *name)
{
    LOAD(buf, n, name);
    mt_pdu_t p, q;
    decode_ok(buf, n, &p);
    mt_buf_t b;
    mt_buf_init(&b, 1 << 20);
    assert_int_equal(mt_pdu_encode(&p, &b), 0);
    assert_int_equal(b.len, n);
    decode_ok(b.data, b.len, &q);
    assert_int_equal(p.type, q.type);
    if (p.type == MT_PDU_A_ASSOCIATE_RQ || p.type == MT_PDU_A_ASSOCIATE_AC)
        assoc_equal(&p.u.assoc, &q.u.assoc);
    else
        assert_memory_equal(b.data, buf, n); /* fixed PDUs and P-DATA: byte identical */
    mt_buf_dispose(&b);
    mt_pdu_dispose(&p);
    mt_pdu_dispose(&q);
    free(buf);
}

/* ---- captured PDUs ---- */

static void test_echoscu_rq(void **state)
{
    (void)state;
    LOAD(buf, n, "echoscu-assoc-rq.bin");
    mt_pdu_t p;
    decode_ok(buf, n, &p);
    assert_int_equal(p.type, MT_PDU_A_ASSOCIATE_RQ);
    const mt_pdu_assoc_t *a = &p.u.assoc;
    assert_int_equal(a->protocol_version, 1);
    assert_string_equal(a->called_ae, "STORESCP");
    assert_string_equal(a->calling_ae, "ECHOSCU");
    assert_string_equal(a->app_context, MT_APP_CONTEXT_UID);
    assert_int_equal(a->n_pcs, 1);
    assert_int_equal(a->pcs[0].id, 1);
    assert_string_equal(a->pcs[0].abstract_syntax, "1.2.840.10008.1.1");
    assert_int_equal(a->pcs[0].n_ts, 1);
    assert_string_equal(a->pcs[0].ts[0].s, "1.2.840.10008.1.2");
    assert_true(a->has_user_info);
    assert_true(a->ui.has_max_len);
    assert_int_equal(a->ui.max_len, 16384);
    assert_string_equal(a->ui.impl_class_uid, "1.2.276.0.7230010.3.0.3.6.7");
    assert_string_equal(a->ui.impl_version_name, "OFFIS_DCMTK_367");
    assert_false(a->ui.has_async);
    assert_int_equal(a->ui.n_roles, 0);
    assert_false(a->ui.has_identity_rq);
    mt_pdu_dispose(&p);
    free(buf);
}

static void test_storescu_rq(void **state)
{
    (void)state;
    LOAD(buf, n, "storescu-assoc-rq.bin");
    mt_pdu_t p;
    decode_ok(buf, n, &p);
    const mt_pdu_assoc_t *a = &p.u.assoc;
    assert_string_equal(a->calling_ae, "STORESCU");
    assert_true(a->n_pcs > 100);
    for (size_t i = 0; i < a->n_pcs; i++) {
        assert_int_equal(a->pcs[i].id, 2 * i + 1);
        assert_true(strlen(a->pcs[i].abstract_syntax) > 10);
        assert_true(a->pcs[i].n_ts >= 1);
    }
    mt_pdu_dispose(&p);
    free(buf);
}

static void test_identity_rq(void **state)
{
    (void)state;
    LOAD(buf, n, "storescu-identity-assoc-rq.bin");
    mt_pdu_t p;
    decode_ok(buf, n, &p);
    const mt_pdu_user_info_t *ui = &p.u.assoc.ui;
    assert_true(ui->has_identity_rq);
    assert_int_equal(ui->identity_type, MT_IDENTITY_USERNAME_PASSCODE);
    assert_true(ui->identity_positive_response_requested);
    assert_int_equal(ui->identity_primary_len, 5);
    assert_memory_equal(ui->identity_primary, "alice", 5);
    assert_int_equal(ui->identity_secondary_len, 6);
    assert_memory_equal(ui->identity_secondary, "secret", 6);
    /* +C: one context with several transfer syntaxes (JPEG lossless first) */
    assert_true(p.u.assoc.pcs[0].n_ts >= 2);
    mt_pdu_dispose(&p);
    free(buf);
}

static void test_getscu_roles(void **state)
{
    (void)state;
    LOAD(buf, n, "getscu-assoc-rq.bin");
    mt_pdu_t p;
    decode_ok(buf, n, &p);
    const mt_pdu_user_info_t *ui = &p.u.assoc.ui;
    assert_true(ui->n_roles > 10);
    for (size_t i = 0; i < ui->n_roles; i++) {
        assert_true(strlen(ui->roles[i].sop_class_uid) > 10);
        assert_int_equal(ui->roles[i].scp_role, 1);
    }
    mt_pdu_dispose(&p);
    free(buf);

    LOAD(ac, m, "storescp-assoc-ac-roles.bin");
    decode_ok(ac, m, &p);
    assert_int_equal(p.type, MT_PDU_A_ASSOCIATE_AC);
    assert_true(p.u.assoc.n_pcs > 0);
    assert_int_equal(p.u.assoc.ui.n_roles, 0); /* storescp leaves role selection unanswered */
    mt_pdu_dispose(&p);
    free(ac);
}

static void test_storescp_ac(void **state)
{
    (void)state;
    LOAD(buf, n, "storescp-assoc-ac-echo.bin");
    mt_pdu_t p;
    decode_ok(buf, n, &p);
    assert_int_equal(p.type, MT_PDU_A_ASSOCIATE_AC);
    const mt_pdu_assoc_t *a = &p.u.assoc;
    assert_int_equal(a->n_pcs, 1);
    assert_int_equal(a->pcs[0].id, 1);
    assert_int_equal(a->pcs[0].result, MT_PC_ACCEPTANCE);
    assert_int_equal(a->pcs[0].n_ts, 1);
    assert_string_equal(a->pcs[0].ts[0].s, "1.2.840.10008.1.2");
    assert_string_equal(a->pcs[0].abstract_syntax, "");
    mt_pdu_dispose(&p);
    free(buf);
}

static void test_fixed_pdus(void **state)
{
    (void)state;
    LOAD(rj, n, "storescp-assoc-rj.bin");
    mt_pdu_t p;
    decode_ok(rj, n, &p);
    assert_int_equal(p.type, MT_PDU_A_ASSOCIATE_RJ);
    assert_int_equal(p.u.rj.result, 1);
    assert_int_equal(p.u.rj.source, 1);
    assert_int_equal(p.u.rj.reason, 1);
    free(rj);
    LOAD(rq, m, "dcmtk-release-rq.bin");
    decode_ok(rq, m, &p);
    assert_int_equal(p.type, MT_PDU_A_RELEASE_RQ);
    free(rq);
    LOAD(rp, k, "storescp-release-rp.bin");
    decode_ok(rp, k, &p);
    assert_int_equal(p.type, MT_PDU_A_RELEASE_RP);
    free(rp);
}

static void test_pdata_fixtures(void **state)
{
    (void)state;
    LOAD(buf, n, "echoscu-c-echo-rq-pdata.bin");
    mt_pdu_t p;
    decode_ok(buf, n, &p);
    assert_int_equal(p.type, MT_PDU_P_DATA_TF);
    assert_int_equal(p.u.pdata.n_pdvs, 1);
    mt_pdv_iter_t it;
    mt_pdv_t v;
    mt_pdu_diag_t d;
    mt_pdv_iter_init(&it, &p);
    assert_int_equal(mt_pdv_next(&it, &v, &d), 1);
    assert_int_equal(v.pcid, 1);
    assert_true(v.command);
    assert_true(v.last);
    assert_int_equal(v.len, n - 12);
    assert_ptr_equal(v.data, buf + 12); /* no copy */
    assert_int_equal(mt_pdv_next(&it, &v, &d), 0);
    free(buf);

    LOAD(mid, m, "storescu-c-store-data-pdata-mid.bin");
    decode_ok(mid, m, &p);
    mt_pdv_iter_init(&it, &p);
    assert_int_equal(mt_pdv_next(&it, &v, &d), 1);
    assert_false(v.command);
    assert_false(v.last);
    assert_int_equal(m, 16384); /* storescu fills PDUs to our advertised 16384 */
    free(mid);
}

static void test_fixture_roundtrips(void **state)
{
    (void)state;
    static const char *names[] = {
        "echoscu-assoc-rq.bin",
        "storescu-assoc-rq.bin",
        "storescu-identity-assoc-rq.bin",
        "getscu-assoc-rq.bin",
        "dcmsend-assoc-rq.bin",
        "storescp-assoc-ac-echo.bin",
        "storescp-assoc-ac-store.bin",
        "storescp-assoc-ac-roles.bin",
        "storescp-assoc-ac-dcmsend.bin",
        "storescp-assoc-rj.bin",
        "dcmtk-release-rq.bin",
        "storescp-release-rp.bin",
        "echoscu-c-echo-rq-pdata.bin",
        "storescp-c-echo-rsp-pdata.bin",
        "storescu-c-store-rq-pdata-first.bin",
        "storescu-c-store-data-pdata-last.bin",
        "orthanc-echo-assoc-rq.bin",
        "orthanc-store-assoc-rq.bin",
        "orthanc-assoc-ac.bin",
        "orthanc-c-store-rq-pdata.bin",
        "orthanc-c-store-rsp-pdata.bin",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        roundtrip_fixture(names[i]);
}

/* Orthanc 1.x (REST /modalities/scp/echo and /store to storescp; storescu to Orthanc) */
static void test_orthanc(void **state)
{
    (void)state;
    LOAD(buf, n, "orthanc-echo-assoc-rq.bin");
    mt_pdu_t p;
    decode_ok(buf, n, &p);
    const mt_pdu_assoc_t *a = &p.u.assoc;
    assert_string_equal(a->called_ae, "STORESCP");
    assert_string_equal(a->calling_ae, "ORTHANC");
    assert_int_equal(a->n_pcs, 5); /* Verification and the query/retrieve models */
    assert_string_equal(a->pcs[0].abstract_syntax, "1.2.840.10008.1.1");
    assert_true(a->pcs[0].n_ts >= 2);
    mt_pdu_dispose(&p);
    free(buf);
    LOAD(ac, m, "orthanc-assoc-ac.bin");
    decode_ok(ac, m, &p);
    assert_int_equal(p.type, MT_PDU_A_ASSOCIATE_AC);
    assert_true(p.u.assoc.n_pcs >= 1);
    size_t accepted = 0;
    for (size_t i = 0; i < p.u.assoc.n_pcs; i++)
        accepted += p.u.assoc.pcs[i].result == MT_PC_ACCEPTANCE;
    assert_true(accepted >= 1);
    mt_pdu_dispose(&p);
    free(ac);
}

/* A rejected context in an AC may carry any transfer syntax: not significant */
static void test_rejected_ac_ts_tolerated(void **state)
{
    (void)state;
    mt_pdu_t p, q;
    mt_pdu_init(&p, MT_PDU_A_ASSOCIATE_AC);
    strcpy(p.u.assoc.called_ae, "A");
    strcpy(p.u.assoc.calling_ae, "B");
    mt_pdu_pc_t *pc = mt_pdu_pc_add(&p.u.assoc, 1, NULL);
    pc->result = MT_PC_ABSTRACT_SYNTAX_NOT_SUPPORTED;
    mt_pdu_pc_add_ts(pc, "1.2.840.10008.1.2");
    mt_buf_t b;
    mt_buf_init(&b, 4096);
    assert_int_equal(mt_pdu_encode(&p, &b), 0);
    mt_pdu_dispose(&p);
    /* grow the TS sub-item to 70 bytes of garbage */
    size_t ts = 0;
    for (size_t i = 74; i + 3 < b.len; i++)
        if (b.data[i] == 0x40 && b.data[i + 3] == 17)
            ts = i;
    assert_true(ts);
    uint8_t *c = malloc(b.len + 53);
    memcpy(c, b.data, ts + 4);
    memset(c + ts + 4, 'x', 70);
    memcpy(c + ts + 4 + 70, b.data + ts + 4 + 17, b.len - ts - 4 - 17);
    size_t m = b.len + 53;
    put32(c + 2, (uint32_t)(m - 6));
    put16(c + ts - 6, (uint16_t)(4 + 4 + 70)); /* the context item */
    put16(c + ts + 2, 70);
    decode_ok(c, m, &q);
    assert_int_equal(q.u.assoc.pcs[0].n_ts, 1);
    assert_string_equal(q.u.assoc.pcs[0].ts[0].s, "");
    mt_pdu_dispose(&q);
    /* in an accepted context it is an error */
    c[ts - 2] = MT_PC_ACCEPTANCE;
    expect_malformed(c, m, MT_ABORT_INVALID_PDU_PARAMETER_VALUE, ts + 4);
    free(c);
    mt_buf_dispose(&b);
}

/* Every prefix of a PDU is MT_EAGAIN; a stream of two PDUs decodes one at a time. */
static void test_incremental(void **state)
{
    (void)state;
    LOAD(buf, n, "storescu-identity-assoc-rq.bin");
    mt_pdu_t p;
    size_t used;
    mt_pdu_diag_t d;
    for (size_t k = 0; k < n; k++)
        assert_int_equal(mt_pdu_decode(buf, k, 0, &p, &used, &d), MT_EAGAIN);
    uint8_t type;
    size_t total;
    assert_int_equal(mt_pdu_peek(buf, 5, &type, &total), MT_EAGAIN);
    assert_int_equal(mt_pdu_peek(buf, 6, &type, &total), 0);
    assert_int_equal(type, MT_PDU_A_ASSOCIATE_RQ);
    assert_int_equal(total, n);
    uint8_t *two = malloc(n + 10);
    memcpy(two, buf, n);
    memcpy(two + n, (const uint8_t[]){5, 0, 0, 0, 0, 4, 0, 0, 0, 0}, 10);
    assert_int_equal(mt_pdu_decode(two, n + 10, 0, &p, &used, &d), 0);
    assert_int_equal(used, n);
    mt_pdu_dispose(&p);
    assert_int_equal(mt_pdu_decode(two + used, 10, 0, &p, &used, &d), 0);
    assert_int_equal(p.type, MT_PDU_A_RELEASE_RQ);
    free(two);
    free(buf);
}

/* ---- synthetic round trips of every type and sub-item ---- */

static void test_roundtrip_rq_all_items(void **state)
{
    (void)state;
    mt_pdu_t p, q;
    mt_pdu_init(&p, MT_PDU_A_ASSOCIATE_RQ);
    mt_pdu_assoc_t *a = &p.u.assoc;
    strcpy(a->called_ae, "MITRAL");
    strcpy(a->calling_ae, "MODALITY_16CHARS");
    mt_pdu_pc_t *pc = mt_pdu_pc_add(a, 1, "1.2.840.10008.1.1");
    assert_non_null(pc);
    assert_int_equal(mt_pdu_pc_add_ts(pc, "1.2.840.10008.1.2"), 0);
    pc = mt_pdu_pc_add(a, 3, "1.2.840.10008.5.1.4.1.1.4");
    assert_int_equal(mt_pdu_pc_add_ts(pc, "1.2.840.10008.1.2.1"), 0);
    assert_int_equal(mt_pdu_pc_add_ts(pc, "1.2.840.10008.1.2.4.70"), 0);
    assert_int_equal(mt_pdu_pc_add_ts(pc, "1.2.840.10008.1.2"), 0);
    a->has_user_info = true;
    mt_pdu_user_info_t *ui = &a->ui;
    ui->has_max_len = true;
    ui->max_len = 262144;
    strcpy(ui->impl_class_uid, "1.2.3.4.5");
    strcpy(ui->impl_version_name, "TEST_1");
    ui->has_async = true;
    ui->max_ops_invoked = 5;
    ui->max_ops_performed = 0;
    assert_int_equal(mt_pdu_role_add(ui, "1.2.840.10008.5.1.4.1.1.4", 1, 0), 0);
    assert_int_equal(mt_pdu_role_add(ui, "1.2.840.10008.1.1", 1, 1), 0);
    /* SOP class extended negotiation: uid length, uid, app info */
    static const uint8_t ext56[] = {0, 5, '1', '.', '2', '.', '3', 1, 0, 1};
    /* common extended: uid, service class uid, related (empty) */
    static const uint8_t ext57[] = {0, 3, '1', '.', '2', 0, 3, '4', '.', '5', 0, 0};
    ui->ext = mt_malloc(2 * sizeof(*ui->ext));
    memset(ui->ext, 0, 2 * sizeof(*ui->ext));
    ui->ext[0].type = 0x56;
    ui->ext[0].value = mt_malloc(sizeof(ext56));
    memcpy(ui->ext[0].value, ext56, sizeof(ext56));
    ui->ext[0].len = sizeof(ext56);
    strcpy(ui->ext[0].sop_class_uid, "1.2.3");
    ui->ext[1].type = 0x57;
    ui->ext[1].value = mt_malloc(sizeof(ext57));
    memcpy(ui->ext[1].value, ext57, sizeof(ext57));
    ui->ext[1].len = sizeof(ext57);
    strcpy(ui->ext[1].sop_class_uid, "1.2");
    ui->n_ext = 2;
    assert_int_equal(mt_pdu_identity_set_rq(ui, MT_IDENTITY_USERNAME_PASSCODE, true,
                                            (const uint8_t *)"bob", 3, (const uint8_t *)"pw", 2),
                     0);
    mt_buf_t b;
    mt_buf_init(&b, 1 << 16);
    assert_int_equal(mt_pdu_encode(&p, &b), 0);
    decode_ok(b.data, b.len, &q);
    strcpy(a->app_context, MT_APP_CONTEXT_UID); /* the encoder's default */
    assoc_equal(a, &q.u.assoc);
    mt_pdu_dispose(&q);

    /* the same as an AC: result codes and an identity response */
    mt_pdu_t ac, r;
    mt_pdu_init(&ac, MT_PDU_A_ASSOCIATE_AC);
    strcpy(ac.u.assoc.called_ae, "MITRAL");
    strcpy(ac.u.assoc.calling_ae, "X");
    pc = mt_pdu_pc_add(&ac.u.assoc, 1, NULL);
    pc->result = MT_PC_ACCEPTANCE;
    mt_pdu_pc_add_ts(pc, "1.2.840.10008.1.2");
    pc = mt_pdu_pc_add(&ac.u.assoc, 3, NULL);
    pc->result = MT_PC_ABSTRACT_SYNTAX_NOT_SUPPORTED; /* no ts: an empty sub-item is written */
    ac.u.assoc.has_user_info = true;
    ac.u.assoc.ui.max_len = 0;
    assert_int_equal(mt_pdu_identity_set_ac(&ac.u.assoc.ui, (const uint8_t *)"ticket", 6), 0);
    mt_buf_reset(&b);
    assert_int_equal(mt_pdu_encode(&ac, &b), 0);
    decode_ok(b.data, b.len, &r);
    assert_int_equal(r.type, MT_PDU_A_ASSOCIATE_AC);
    assert_int_equal(r.u.assoc.n_pcs, 2);
    assert_int_equal(r.u.assoc.pcs[1].result, 3);
    assert_int_equal(r.u.assoc.pcs[1].n_ts, 1);
    assert_string_equal(r.u.assoc.pcs[1].ts[0].s, "");
    assert_true(r.u.assoc.ui.has_identity_ac);
    assert_int_equal(r.u.assoc.ui.identity_server_response_len, 6);
    assert_memory_equal(r.u.assoc.ui.identity_server_response, "ticket", 6);
    mt_pdu_dispose(&r);
    mt_pdu_dispose(&ac);
    mt_buf_dispose(&b);
    mt_pdu_dispose(&p);
}

static void test_roundtrip_fixed(void **state)
{
    (void)state;
    mt_buf_t b;
    mt_buf_init(&b, 1024);
    mt_pdu_t p;
    assert_int_equal(mt_pdu_encode_abort(&b, 2, 6), 0);
    decode_ok(b.data, b.len, &p);
    assert_int_equal(p.type, MT_PDU_A_ABORT);
    assert_int_equal(p.u.abort.source, 2);
    assert_int_equal(p.u.abort.reason, 6);
    mt_buf_reset(&b);
    assert_int_equal(mt_pdu_encode_rj(&b, 2, 3, 2), 0);
    decode_ok(b.data, b.len, &p);
    assert_int_equal(p.type, MT_PDU_A_ASSOCIATE_RJ);
    assert_int_equal(p.u.rj.result, 2);
    assert_int_equal(p.u.rj.source, 3);
    assert_int_equal(p.u.rj.reason, 2);
    mt_buf_reset(&b);
    assert_int_equal(mt_pdu_encode_release_rq(&b), 0);
    decode_ok(b.data, b.len, &p);
    assert_int_equal(p.type, MT_PDU_A_RELEASE_RQ);
    mt_buf_reset(&b);
    assert_int_equal(mt_pdu_encode_release_rp(&b), 0);
    decode_ok(b.data, b.len, &p);
    assert_int_equal(p.type, MT_PDU_A_RELEASE_RP);
    /* the struct encoder gives the same bytes as the builders */
    mt_buf_t c;
    mt_buf_init(&c, 1024);
    mt_pdu_init(&p, MT_PDU_A_ABORT);
    p.u.abort.source = 0;
    p.u.abort.reason = 0;
    assert_int_equal(mt_pdu_encode(&p, &c), 0);
    mt_buf_reset(&b);
    mt_pdu_encode_abort(&b, 0, 0);
    assert_int_equal(b.len, c.len);
    assert_memory_equal(b.data, c.data, b.len);
    mt_buf_dispose(&b);
    mt_buf_dispose(&c);
}

static void test_pdata_encode_and_split(void **state)
{
    (void)state;
    uint8_t cmd[10], data[25];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)i;
    memset(cmd, 0xAA, sizeof(cmd));
    mt_pdv_t pdvs[2] = {{1, true, true, cmd, sizeof(cmd)}, {1, false, false, data, 4}};
    mt_buf_t b;
    mt_buf_init(&b, 1 << 20);
    assert_int_equal(mt_pdu_encode_pdata(&b, pdvs, 2), 0);
    assert_int_equal(b.len, 6 + 6 + 10 + 6 + 4);
    mt_pdu_t p;
    decode_ok(b.data, b.len, &p);
    assert_int_equal(p.u.pdata.n_pdvs, 2);
    mt_pdv_iter_t it;
    mt_pdv_t v;
    mt_pdu_diag_t d;
    mt_pdv_iter_init(&it, &p);
    assert_int_equal(mt_pdv_next(&it, &v, &d), 1);
    assert_true(v.command && v.last);
    assert_memory_equal(v.data, cmd, 10);
    assert_int_equal(mt_pdv_next(&it, &v, &d), 1);
    assert_true(!v.command && !v.last);
    assert_int_equal(v.len, 4);
    assert_int_equal(mt_pdv_next(&it, &v, &d), 0);

    /* split 25 bytes for a peer that takes PDUs of 16: fragments of 10 (even), 3 PDUs */
    mt_buf_reset(&b);
    assert_int_equal(mt_pdu_encode_pdata_split(&b, 5, false, data, sizeof(data), 16), 0);
    size_t off = 0, got = 0, npdu = 0;
    uint8_t back[25];
    while (off < b.len) {
        size_t used;
        assert_int_equal(mt_pdu_decode(b.data + off, b.len - off, 16, &p, &used, &d), 0);
        assert_true(used - 6 <= 16);
        mt_pdv_iter_init(&it, &p);
        assert_int_equal(mt_pdv_next(&it, &v, &d), 1);
        assert_int_equal(v.pcid, 5);
        assert_false(v.command);
        memcpy(back + got, v.data, v.len);
        got += v.len;
        off += used;
        npdu++;
        assert_int_equal(v.last, off == b.len);
    }
    assert_int_equal(got, sizeof(data));
    assert_memory_equal(back, data, sizeof(data));
    assert_int_equal(npdu, 3);

    /* empty message: one empty last PDV */
    mt_buf_reset(&b);
    assert_int_equal(mt_pdu_encode_pdata_split(&b, 1, true, NULL, 0, 16384), 0);
    decode_ok(b.data, b.len, &p);
    mt_pdv_iter_init(&it, &p);
    assert_int_equal(mt_pdv_next(&it, &v, &d), 1);
    assert_true(v.last && v.command && v.len == 0);
    /* unlimited peer: one PDU */
    mt_buf_reset(&b);
    assert_int_equal(mt_pdu_encode_pdata_split(&b, 1, false, data, sizeof(data), 0), 0);
    assert_int_equal(b.len, 12 + sizeof(data));
    mt_buf_dispose(&b);
}

static void test_encode_errors(void **state)
{
    (void)state;
    mt_pdu_t p;
    mt_pdu_init(&p, MT_PDU_A_ASSOCIATE_RQ);
    strcpy(p.u.assoc.called_ae, "MITRAL");
    strcpy(p.u.assoc.calling_ae, "SCU");
    mt_pdu_pc_t *pc = mt_pdu_pc_add(&p.u.assoc, 1, "1.2.840.10008.1.1");
    mt_pdu_pc_add_ts(pc, "1.2.840.10008.1.2");
    mt_buf_t b;
    mt_buf_init(&b, 40); /* too small */
    assert_int_equal(mt_buf_append(&b, "xy", 2), 0);
    assert_int_equal(mt_pdu_encode(&p, &b), MT_ETOOBIG);
    assert_int_equal(b.len, 2); /* restored */
    mt_buf_dispose(&b);
    char uid[80];
    memset(uid, '1', sizeof(uid) - 1);
    uid[79] = 0;
    assert_null(mt_pdu_pc_add(&p.u.assoc, 3, uid));
    assert_int_equal(mt_pdu_pc_add_ts(pc, uid), MT_EINVAL);
    assert_int_equal(mt_pdu_role_add(&p.u.assoc.ui, uid, 1, 0), MT_EINVAL);
    mt_pdu_dispose(&p);
    assert_string_equal(mt_pdu_type_name(MT_PDU_P_DATA_TF), "P-DATA-TF");
    assert_string_equal(mt_pdu_type_name(9), "unknown");
}

/* ---- malformed ---- */

static void test_unknown_type(void **state)
{
    (void)state;
    uint8_t b[10] = {0x08, 0, 0, 0, 0, 4, 0, 0, 0, 0};
    expect_malformed(b, 10, MT_ABORT_UNRECOGNIZED_PDU, 0);
    b[0] = 0;
    expect_malformed(b, 10, MT_ABORT_UNRECOGNIZED_PDU, 0);
    b[0] = 0xFF;
    expect_malformed(b, 6, MT_ABORT_UNRECOGNIZED_PDU, 0); /* refused from the header alone */
}

static void test_oversized(void **state)
{
    (void)state;
    uint8_t b[6] = {0x04, 0, 0, 0, 0, 0};
    put32(b + 2, 16385);
    mt_pdu_t p;
    size_t used;
    mt_pdu_diag_t d = {0};
    assert_int_equal(mt_pdu_decode(b, 6, 16384, &p, &used, &d), MT_ETOOBIG);
    assert_int_equal(d.offset, 2);
    assert_int_equal(d.abort_source, 2);
    assert_non_null(d.reason);
    put32(b + 2, 16384);
    assert_int_equal(mt_pdu_decode(b, 6, 16384, &p, &used, &d), MT_EAGAIN);
    b[0] = 0x01;
    put32(b + 2, MT_PDU_MAX_CONTROL_LEN + 1);
    assert_int_equal(mt_pdu_decode(b, 6, 16384, &p, &used, &d), MT_ETOOBIG);
    put32(b + 2, 0xFFFFFFFFu);
    assert_int_equal(mt_pdu_decode(b, 6, 0, &p, &used, &d), MT_ETOOBIG);
    b[0] = 0x04;
    assert_int_equal(mt_pdu_decode(b, 6, 0, &p, &used, &d), MT_ETOOBIG);
}

static void test_fixed_lengths(void **state)
{
    (void)state;
    for (uint8_t t = 3; t <= 7; t++) {
        if (t == 4)
            continue;
        uint8_t b[11] = {t, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0};
        expect_malformed(b, 11, MT_ABORT_INVALID_PDU_PARAMETER_VALUE, 2);
        b[5] = 3;
        expect_malformed(b, 9, MT_ABORT_INVALID_PDU_PARAMETER_VALUE, 2);
    }
    uint8_t a[6 + 60] = {1, 0, 0, 0, 0, 60};
    expect_malformed(a, sizeof(a), MT_ABORT_INVALID_PDU_PARAMETER_VALUE, 2);
    uint8_t e[6] = {4, 0, 0, 0, 0, 0}; /* P-DATA-TF without a PDV */
    expect_malformed(e, 6, MT_ABORT_INVALID_PDU_PARAMETER_VALUE, (size_t)-1);
}

/* Offsets in echoscu-assoc-rq.bin (211 bytes):
 *   74 app context item (len at 76, 21)   99 PC item (len at 101, 46)  103 pc id
 *   107 abstract syntax sub-item (len at 109, 17)   128 TS sub-item (len at 130, 17)
 *   149 user info (len at 151, 58)   153 max length sub-item (len at 155, 4) */
static uint8_t *echo_rq(size_t *n)
{
    uint8_t *b = load("echoscu-assoc-rq.bin", n);
    if (b) {
        assert_int_equal(b[74], 0x10);
        assert_int_equal(b[99], 0x20);
        assert_int_equal(b[107], 0x30);
        assert_int_equal(b[128], 0x40);
        assert_int_equal(b[149], 0x50);
        assert_int_equal(b[153], 0x51);
    }
    return b;
}

#define ECHO_RQ(var, n)                                                                            \
    size_t n;                                                                                      \
    uint8_t *var = echo_rq(&n);                                                                    \
    if (!var)                                                                                      \
        skip();

static void test_item_past_end(void **state)
{
    (void)state;
    ECHO_RQ(b, n);
    put16(b + 151, 59); /* user info one byte past the PDU */
    expect_malformed(b, n, MT_ABORT_INVALID_PDU_PARAMETER_VALUE, 151);
    put16(b + 151, 58);
    put16(b + 109, 46); /* abstract syntax past its PC item, but inside the PDU */
    expect_malformed(b, n, MT_ABORT_INVALID_PDU_PARAMETER_VALUE, 109);
    put16(b + 109, 17);
    put16(b + 101, 200); /* PC item past the PDU */
    expect_malformed(b, n, MT_ABORT_INVALID_PDU_PARAMETER_VALUE, 101);
    put16(b + 101, 46);
    put16(b + 155, 5); /* max length sub-item of length 5 (past its item too) */
    expect_malformed(b, n, MT_ABORT_INVALID_PDU_PARAMETER_VALUE, (size_t)-1);
    put16(b + 155, 4);
    /* a PDU length that cuts the last item short */
    put32(b + 2, (uint32_t)(n - 6 - 1));
    expect_malformed(b, n - 1, MT_ABORT_INVALID_PDU_PARAMETER_VALUE, 151);
    free(b);
}

/* Any PDU length shorter than the real body is refused (or parses a valid shorter PDU):
 * never an out-of-bounds read (ASan). */
static void test_every_short_length(void **state)
{
    (void)state;
    static const char *names[] = {"storescu-identity-assoc-rq.bin", "getscu-assoc-rq.bin",
                                  "storescp-assoc-ac-roles.bin",
                                  "storescu-c-store-rq-pdata-first.bin"};
    for (size_t f = 0; f < 4; f++) {
        LOAD(buf, n, names[f]);
        for (size_t k = 0; k + 6 <= n; k++) {
            /* big fixtures: every length near both ends, a sample in the middle */
            if (n > 2000 && k > 1000 && k + 1000 < n && k % 31)
                continue;
            uint8_t *c = malloc(6 + k);
            memcpy(c, buf, 6 + k);
            put32(c + 2, (uint32_t)k);
            mt_pdu_t p;
            size_t used;
            mt_pdu_diag_t d = {0};
            int rc = mt_pdu_decode(c, 6 + k, 0, &p, &used, &d);
            assert_true(rc == 0 || rc == MT_EMALFORMED);
            if (rc == 0)
                mt_pdu_dispose(&p);
            else
                assert_true(d.offset < 6 + k && d.reason);
            free(c);
        }
        free(buf);
    }
}

static void test_uid_checks(void **state)
{
    (void)state;
    ECHO_RQ(b, n);
    /* abstract syntax of 65 characters: build a new PDU with a longer sub-item */
    size_t m = n + 48;
    uint8_t *c = malloc(m);
    memcpy(c, b, 111);
    memset(c + 111, '1', 65);
    memcpy(c + 111 + 65, b + 128, n - 128);
    put32(c + 2, (uint32_t)(m - 6));
    put16(c + 101, 46 + 48);
    put16(c + 109, 65);
    expect_malformed(c, m, MT_ABORT_INVALID_PDU_PARAMETER_VALUE, 111);
    /* 64 characters + trailing NUL + space padding are fine */
    c[111 + 64] = 0;
    mt_pdu_t p;
    decode_ok(c, m, &p);
    assert_int_equal(strlen(p.u.assoc.pcs[0].abstract_syntax), 64);
    mt_pdu_dispose(&p);
    free(c);

    /* an embedded NUL ends the UID (it then re-encodes to the same string) */
    memcpy(b + 111, "1.2.840\0 0008.1.1", 17);
    decode_ok(b, n, &p);
    assert_string_equal(p.u.assoc.pcs[0].abstract_syntax, "1.2.840");
    mt_pdu_dispose(&p);
    /* AE titles: leading spaces are not significant, a NUL ends them */
    memcpy(b + 26, "ECHO \0SCU       ", 16);
    decode_ok(b, n, &p);
    assert_string_equal(p.u.assoc.calling_ae, "ECHO");
    mt_pdu_dispose(&p);
    memcpy(b + 10, "  MITRAL        ", 16);
    decode_ok(b, n, &p);
    assert_string_equal(p.u.assoc.called_ae, "MITRAL");
    mt_pdu_dispose(&p);
    free(b);
}

static void test_duplicates_and_misplaced(void **state)
{
    (void)state;
    ECHO_RQ(b, n);
    /* second application context item appended at the end */
    size_t m = n + 25;
    uint8_t *c = malloc(m);
    memcpy(c, b, n);
    memcpy(c + n, b + 74, 25);
    put32(c + 2, (uint32_t)(m - 6));
    expect_malformed(c, m, MT_ABORT_UNEXPECTED_PDU_PARAMETER, n);
    /* an RQ presentation context in an AC */
    memcpy(c, b, n);
    c[0] = 0x02;
    put32(c + 2, (uint32_t)(n - 6));
    expect_malformed(c, n, MT_ABORT_UNEXPECTED_PDU_PARAMETER, 99);
    /* an AC presentation context in an RQ */
    c[0] = 0x01;
    c[99] = 0x21;
    expect_malformed(c, n, MT_ABORT_UNEXPECTED_PDU_PARAMETER, 99);
    /* a second abstract syntax inside the context: turn the TS sub-item into one */
    memcpy(c, b, n);
    c[128] = 0x30;
    expect_malformed(c, n, MT_ABORT_UNEXPECTED_PDU_PARAMETER, 128);
    /* second user information item */
    m = n + 62;
    c = realloc(c, m);
    memcpy(c, b, n);
    memcpy(c + n, b + 149, 62);
    put32(c + 2, (uint32_t)(m - 6));
    expect_malformed(c, m, MT_ABORT_UNEXPECTED_PDU_PARAMETER, n);
    /* second max length sub-item: the impl class sub-item (161) retyped to 0x51 with len 4
     * would change the layout, so retype impl version name instead: len 15, not 4 */
    memcpy(c, b, n);
    put32(c + 2, (uint32_t)(n - 6));
    c[161] = 0x51;
    expect_malformed(c, n, MT_ABORT_UNEXPECTED_PDU_PARAMETER, 161);
    free(c);
    free(b);
}

static void test_unknown_items_skipped(void **state)
{
    (void)state;
    ECHO_RQ(b, n);
    /* append an unknown top-level item (0x99) and turn the impl version name (0x55) into an
     * unknown sub-item (0x5F): both are skipped */
    size_t m = n + 7;
    uint8_t *c = malloc(m);
    memcpy(c, b, n);
    memcpy(c + n, (const uint8_t[]){0x99, 0, 0, 3, 'a', 'b', 'c'}, 7);
    put32(c + 2, (uint32_t)(m - 6));
    size_t ver = 0;
    for (size_t i = 153; i + 3 < n; i++)
        if (c[i] == 0x55 && c[i + 3] == 15)
            ver = i;
    assert_true(ver > 0);
    c[ver] = 0x5F;
    mt_pdu_t p;
    decode_ok(c, m, &p);
    assert_string_equal(p.u.assoc.ui.impl_version_name, "");
    assert_string_equal(p.u.assoc.ui.impl_class_uid, "1.2.276.0.7230010.3.0.3.6.7");
    mt_pdu_dispose(&p);
    /* unknown sub-item inside a presentation context: skipped too */
    memcpy(c, b, n);
    put32(c + 2, (uint32_t)(n - 6));
    c[128] = 0x41; /* the TS sub-item becomes unknown: context has 0 ts */
    decode_ok(c, n, &p);
    assert_int_equal(p.u.assoc.pcs[0].n_ts, 0);
    mt_pdu_dispose(&p);
    free(c);
    free(b);
}

static void test_subitem_bounds(void **state)
{
    (void)state;
    mt_pdu_t p;
    mt_pdu_init(&p, MT_PDU_A_ASSOCIATE_RQ);
    strcpy(p.u.assoc.called_ae, "A");
    strcpy(p.u.assoc.calling_ae, "B");
    p.u.assoc.has_user_info = true;
    assert_int_equal(mt_pdu_role_add(&p.u.assoc.ui, "1.2.3", 1, 0), 0);
    assert_int_equal(
        mt_pdu_identity_set_rq(&p.u.assoc.ui, 1, false, (const uint8_t *)"u", 1, NULL, 0), 0);
    mt_buf_t b;
    mt_buf_init(&b, 4096);
    assert_int_equal(mt_pdu_encode(&p, &b), 0);
    mt_pdu_dispose(&p);
    /* find the role sub-item and the identity sub-item */
    size_t role = 0, ident = 0;
    for (size_t i = 74; i + 4 < b.len; i++) {
        if (b.data[i] == 0x54 && b.data[i + 3] == 9 && !role)
            role = i;
        if (b.data[i] == 0x58 && b.data[i + 3] == 7)
            ident = i;
    }
    assert_true(role && ident);
    uint8_t *c = malloc(b.len);
    memcpy(c, b.data, b.len);
    put16(c + role + 4, 6); /* UID length leaves no room for the two role bytes */
    expect_malformed(c, b.len, MT_ABORT_INVALID_PDU_PARAMETER_VALUE, role + 4);
    memcpy(c, b.data, b.len);
    put16(c + ident + 6, 2); /* primary field longer than the sub-item */
    expect_malformed(c, b.len, MT_ABORT_INVALID_PDU_PARAMETER_VALUE, ident + 6);
    memcpy(c, b.data, b.len);
    put16(c + ident + 9, 1); /* secondary field past the sub-item */
    expect_malformed(c, b.len, MT_ABORT_INVALID_PDU_PARAMETER_VALUE, ident + 9);
    memcpy(c, b.data, b.len);
    c[ident] = 0x59; /* an AC identity sub-item in an RQ */
    expect_malformed(c, b.len, MT_ABORT_UNEXPECTED_PDU_PARAMETER, ident);
    free(c);
    mt_buf_dispose(&b);
}

/* the MT_PDU_MAX_* bounds: a 129th context is malformed, syntaxes past 64 are ignored */
static void test_bounds(void **state)
{
    (void)state;
    mt_pdu_t p, q;
    mt_pdu_init(&p, MT_PDU_A_ASSOCIATE_RQ);
    strcpy(p.u.assoc.called_ae, "A");
    strcpy(p.u.assoc.calling_ae, "B");
    for (int i = 0; i < MT_PDU_MAX_PCS; i++) {
        mt_pdu_pc_t *pc = mt_pdu_pc_add(&p.u.assoc, (uint8_t)(2 * i + 1), "1.2.840.10008.1.1");
        assert_non_null(pc);
        assert_int_equal(mt_pdu_pc_add_ts(pc, "1.2.840.10008.1.2"), 0);
    }
    assert_null(mt_pdu_pc_add(&p.u.assoc, 1, "1.2"));
    for (int i = 1; i < MT_PDU_MAX_TS; i++)
        assert_int_equal(mt_pdu_pc_add_ts(&p.u.assoc.pcs[0], "1.2"), 0);
    assert_int_equal(mt_pdu_pc_add_ts(&p.u.assoc.pcs[0], "1.2"), MT_ETOOBIG);
    mt_buf_t b;
    mt_buf_init(&b, 1 << 20);
    assert_int_equal(mt_pdu_encode(&p, &b), 0);
    decode_ok(b.data, b.len, &q);
    assert_int_equal(q.u.assoc.n_pcs, MT_PDU_MAX_PCS);
    assert_int_equal(q.u.assoc.pcs[0].n_ts, MT_PDU_MAX_TS);
    mt_pdu_dispose(&q);
    /* the first context item starts after the application context item (74 + 4 + 21) */
    size_t pc0 = 99, pc0_len = 4 + ((size_t)b.data[pc0 + 2] << 8 | b.data[pc0 + 3]);
    assert_int_equal(b.data[pc0], 0x20);
    /* append a copy of it: 129 contexts */
    size_t n = b.len;
    assert_int_equal(mt_buf_append(&b, b.data + pc0, pc0_len), 0);
    put32(b.data + 2, (uint32_t)(b.len - 6));
    expect_malformed(b.data, b.len, MT_ABORT_INVALID_PDU_PARAMETER_VALUE, n);
    /* instead, grow the first context by 10 more syntaxes: ignored */
    b.len = n;
    uint8_t extra[7 * 10];
    for (int i = 0; i < 10; i++)
        memcpy(extra + 7 * i, (const uint8_t[]){0x40, 0, 0, 3, '9', '.', '9'}, 7);
    uint8_t *c = malloc(n + sizeof(extra));
    memcpy(c, b.data, pc0 + pc0_len);
    memcpy(c + pc0 + pc0_len, extra, sizeof(extra));
    memcpy(c + pc0 + pc0_len + sizeof(extra), b.data + pc0 + pc0_len, n - pc0 - pc0_len);
    put32(c + 2, (uint32_t)(n + sizeof(extra) - 6));
    put16(c + pc0 + 2, (uint16_t)(pc0_len - 4 + sizeof(extra)));
    decode_ok(c, n + sizeof(extra), &q);
    assert_int_equal(q.u.assoc.pcs[0].n_ts, MT_PDU_MAX_TS);
    assert_string_equal(q.u.assoc.pcs[0].ts[MT_PDU_MAX_TS - 1].s, "1.2");
    mt_pdu_dispose(&q);
    free(c);
    mt_buf_dispose(&b);
    mt_pdu_dispose(&p);
}

static void test_pdv_malformed(void **state)
{
    (void)state;
    /* item length 1 (< 2) */
    uint8_t a[6 + 6] = {4, 0, 0, 0, 0, 6, 0, 0, 0, 1, 1, 3};
    expect_malformed(a, sizeof(a), MT_ABORT_INVALID_PDU_PARAMETER_VALUE, 6);
    /* item length past the PDU */
    uint8_t b[6 + 7] = {4, 0, 0, 0, 0, 7, 0, 0, 0, 4, 1, 3, 0};
    expect_malformed(b, sizeof(b), MT_ABORT_INVALID_PDU_PARAMETER_VALUE, 6);
    /* second PDV truncated header */
    uint8_t c[6 + 9] = {4, 0, 0, 0, 0, 9, 0, 0, 0, 3, 1, 3, 0xAB, 0, 0};
    expect_malformed(c, sizeof(c), MT_ABORT_INVALID_PDU_PARAMETER_VALUE, 13);
    /* the iterator on a raw (unvalidated) list reports the same */
    mt_pdu_t p;
    mt_pdu_init(&p, MT_PDU_P_DATA_TF);
    p.u.pdata.items = c + 6;
    p.u.pdata.len = 9;
    mt_pdv_iter_t it;
    mt_pdv_t v;
    mt_pdu_diag_t d;
    mt_pdv_iter_init(&it, &p);
    assert_int_equal(mt_pdv_next(&it, &v, &d), 1);
    assert_int_equal(v.len, 1);
    assert_int_equal(mt_pdv_next(&it, &v, &d), MT_EMALFORMED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echoscu_rq),
        cmocka_unit_test(test_storescu_rq),
        cmocka_unit_test(test_identity_rq),
        cmocka_unit_test(test_getscu_roles),
        cmocka_unit_test(test_storescp_ac),
        cmocka_unit_test(test_fixed_pdus),
        cmocka_unit_test(test_pdata_fixtures),
        cmocka_unit_test(test_fixture_roundtrips),
        cmocka_unit_test(test_orthanc),
        cmocka_unit_test(test_rejected_ac_ts_tolerated),
        cmocka_unit_test(test_incremental),
        cmocka_unit_test(test_roundtrip_rq_all_items),
        cmocka_unit_test(test_roundtrip_fixed),
        cmocka_unit_test(test_pdata_encode_and_split),
        cmocka_unit_test(test_encode_errors),
        cmocka_unit_test(test_unknown_type),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_fixed_lengths),
        cmocka_unit_test(test_item_past_end),
        cmocka_unit_test(test_every_short_length),
        cmocka_unit_test(test_uid_checks),
        cmocka_unit_test(test_duplicates_and_misplaced),
        cmocka_unit_test(test_unknown_items_skipped),
        cmocka_unit_test(test_subitem_bounds),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_pdv_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
