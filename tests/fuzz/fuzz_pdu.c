/* fuzz_pdu.c - libFuzzer target for node/pdu.c. Any bytes either decode into a PDU, ask for more
 * (MT_EAGAIN), or fail with MT_EMALFORMED/MT_ETOOBIG carrying a reason, an offset inside the
 * input and an A-ABORT source 2. A decoded PDU re-encodes and decodes to the same structure; a
 * P-DATA-TF re-encodes to the same bytes and its PDV iterator never fails; one byte less than a
 * whole PDU is always MT_EAGAIN. An A-ASSOCIATE-RQ also goes through node/negotiate.c, whose
 * reply always encodes and answers every proposed context. Corpus: PDUs captured from dcmtk
 * (tests/fixtures/pdu/). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "negotiate.h"
#include "pdu.h"
#include "util/err.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static void same_assoc(const mt_pdu_t *p, const mt_pdu_t *q)
{
    const mt_pdu_assoc_t *a = &p->u.assoc, *b = &q->u.assoc;
    CHECK(p->type == q->type);
    CHECK(a->protocol_version == b->protocol_version);
    CHECK(strcmp(a->called_ae, b->called_ae) == 0);
    CHECK(strcmp(a->calling_ae, b->calling_ae) == 0);
    CHECK(!a->app_context[0] || strcmp(a->app_context, b->app_context) == 0);
    CHECK(a->n_pcs == b->n_pcs);
    for (size_t i = 0; i < a->n_pcs; i++) {
        CHECK(a->pcs[i].id == b->pcs[i].id);
        CHECK(a->pcs[i].result == b->pcs[i].result);
        CHECK(strcmp(a->pcs[i].abstract_syntax, b->pcs[i].abstract_syntax) == 0);
        if (p->type == MT_PDU_A_ASSOCIATE_RQ || a->pcs[i].n_ts)
            CHECK(a->pcs[i].n_ts == b->pcs[i].n_ts);
        for (size_t t = 0; t < a->pcs[i].n_ts; t++)
            CHECK(strcmp(a->pcs[i].ts[t].s, b->pcs[i].ts[t].s) == 0);
    }
    CHECK(a->has_user_info == b->has_user_info);
    CHECK(a->ui.max_len == b->ui.max_len);
    CHECK(strcmp(a->ui.impl_class_uid, b->ui.impl_class_uid) == 0);
    CHECK(a->ui.has_async == b->ui.has_async);
    CHECK(a->ui.n_roles == b->ui.n_roles);
    CHECK(a->ui.n_ext == b->ui.n_ext);
    for (size_t i = 0; i < a->ui.n_ext; i++)
        CHECK(a->ui.ext[i].len == b->ui.ext[i].len &&
              (a->ui.ext[i].len == 0 ||
               memcmp(a->ui.ext[i].value, b->ui.ext[i].value, a->ui.ext[i].len) == 0));
    CHECK(a->ui.has_identity_rq == b->ui.has_identity_rq);
    CHECK(a->ui.identity_primary_len == b->ui.identity_primary_len);
    CHECK(a->ui.identity_secondary_len == b->ui.identity_secondary_len);
    CHECK(a->ui.has_identity_ac == b->ui.has_identity_ac);
    CHECK(a->ui.identity_server_response_len == b->ui.identity_server_response_len);
}

static const char *const prefs[] = {"1.2.840.10008.1.2.1", "1.2.840.10008.1.2"};

static void negotiate(const mt_pdu_assoc_t *rq)
{
    mt_nego_policy_t pol = {0};
    pol.ae_title = "STORESCP";
    pol.ts_preference = prefs;
    pol.n_ts_preference = 2;
    pol.max_pdu = 16384;
    pol.max_ops_invoked = 16;
    pol.max_ops_performed = 1;
    static mt_negotiated_t n; /* large: keep it off the stack */
    mt_pdu_t reply, q;
    mt_pdu_diag_t d = {0};
    int rc = mt_negotiate(&pol, rq, &n, &reply, &d);
    if (rc == MT_EMALFORMED) {
        CHECK(d.reason && d.abort_source == 2);
        mt_pdu_dispose(&reply);
        return;
    }
    CHECK(rc == 0 || rc == MT_EREJECTED);
    mt_buf_t b;
    mt_buf_init(&b, 1u << 22);
    int erc = mt_pdu_encode(&reply, &b);
    CHECK(erc == 0 || erc == MT_ETOOBIG);
    size_t used;
    if (erc == 0) {
        CHECK(mt_pdu_decode(b.data, b.len, 0, &q, &used, &d) == 0);
        if (rc == 0) {
            CHECK(q.type == MT_PDU_A_ASSOCIATE_AC && q.u.assoc.n_pcs == rq->n_pcs);
            CHECK(n.n_accepted <= n.n_pcs);
            for (size_t i = 0; i < n.n_pcs; i++)
                if (n.pcs[i].result == MT_PC_ACCEPTANCE)
                    CHECK(n.pcs[i].ts && mt_negotiated_pc(&n, n.pcs[i].id) == &n.pcs[i]);
        } else {
            CHECK(q.type == MT_PDU_A_ASSOCIATE_RJ && q.u.rj.result == n.rj_result);
        }
        mt_pdu_dispose(&q);
    }
    mt_buf_dispose(&b);
    mt_pdu_dispose(&reply);
}

static void one(const uint8_t *data, size_t size, size_t max_pdata)
{
    mt_pdu_t p, q;
    size_t used = 0;
    mt_pdu_diag_t d = {0};
    int rc = mt_pdu_decode(data, size, max_pdata, &p, &used, &d);
    if (rc == MT_EAGAIN)
        return;
    if (rc) {
        CHECK(rc == MT_EMALFORMED || rc == MT_ETOOBIG);
        CHECK(d.reason && d.offset < size && d.abort_source == 2);
        return;
    }
    CHECK(used >= MT_PDU_HEADER_LEN && used <= size);
    uint8_t type;
    size_t total;
    CHECK(mt_pdu_peek(data, size, &type, &total) == 0 && total == used && type == p.type);
    mt_pdu_t r;
    CHECK(mt_pdu_decode(data, used - 1, max_pdata, &r, &total, &d) == MT_EAGAIN);

    mt_buf_t b;
    mt_buf_init(&b, 4u << 20);
    int erc = mt_pdu_encode(&p, &b);
    if (p.type == MT_PDU_P_DATA_TF) {
        /* byte identical but for the reserved header byte */
        CHECK(erc == 0 && b.len == used && memcmp(b.data + 2, data + 2, used - 2) == 0);
        mt_pdv_iter_t it;
        mt_pdv_t v;
        size_t n = 0;
        mt_pdv_iter_init(&it, &p);
        while ((rc = mt_pdv_next(&it, &v, &d)) == 1)
            n++;
        CHECK(rc == 0 && n == p.u.pdata.n_pdvs);
    } else if (p.type == MT_PDU_A_ASSOCIATE_RQ || p.type == MT_PDU_A_ASSOCIATE_AC) {
        CHECK(erc == 0 || erc == MT_ETOOBIG);
        if (p.type == MT_PDU_A_ASSOCIATE_RQ && max_pdata == 0)
            negotiate(&p.u.assoc);
        if (erc == 0) {
            CHECK(mt_pdu_decode(b.data, b.len, 0, &q, &total, &d) == 0 && total == b.len);
            same_assoc(&p, &q);
            mt_pdu_dispose(&q);
        }
    } else {
        CHECK(erc == 0 && b.len == 10);
        CHECK(mt_pdu_decode(b.data, b.len, 0, &q, &total, &d) == 0 && q.type == p.type);
    }
    mt_buf_dispose(&b);
    mt_pdu_dispose(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size, 0);
    one(data, size, 16384);
    return 0;
}
