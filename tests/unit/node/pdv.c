/* tests for node/pdv.c: a real storescu C-STORE stream (tests/fixtures/pdu/), command sets in
 * many fragments, data sets streamed without copies, and every ordering error of pdv.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dimse.h"
#include "pdu.h"
#include "pdv.h"
#include "util/err.h"

#ifndef MT_SOURCE_DIR
#define MT_SOURCE_DIR "."
#endif

typedef struct rec {
    int n_cmd, n_data;
    uint8_t cmd[4096];
    size_t cmd_len;
    uint8_t pcid;
    size_t data_total;
    bool saw_last;
    bool last_was_final;    /* no data event after the one with last */
    bool expect_data;       /* what to answer for commands (when !use_dimse) */
    bool use_dimse;         /* decode the command set to decide */
    const uint8_t *lo, *hi; /* data events must point into [lo, hi) */
    int fail_on_data;       /* return MT_ECANCELED on the n-th data event */
} rec_t;

static int on_event(void *user, mt_pdv_event_t *ev)
{
    rec_t *r = user;
    if (ev->type == MT_PDV_EV_COMMAND) {
        r->n_cmd++;
        r->pcid = ev->pcid;
        assert_true(ev->len <= sizeof(r->cmd));
        memcpy(r->cmd, ev->data, ev->len);
        r->cmd_len = ev->len;
        assert_true(ev->last);
        assert_false(ev->expect_data);
        if (r->use_dimse) {
            mt_dimse_cmd_t c;
            mt_diag_t d;
            assert_int_equal(mt_dimse_decode(ev->data, ev->len, &c, &d), 0);
            ev->expect_data = c.data_set_type != MT_DIMSE_NO_DATASET;
        } else {
            ev->expect_data = r->expect_data;
        }
        r->saw_last = false;
        return 0;
    }
    r->n_data++;
    if (r->fail_on_data && r->n_data == r->fail_on_data)
        return MT_ECANCELED;
    assert_false(r->saw_last);
    if (r->lo && ev->len)
        assert_true(ev->data >= r->lo && ev->data + ev->len <= r->hi);
    r->data_total += ev->len;
    if (ev->last)
        r->saw_last = true;
    return 0;
}

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

static void test_storescu_stream(void **state)
{
    (void)state;
    size_t n = 0;
    uint8_t *buf = load("storescu-c-store-stream.bin", &n);
    if (!buf)
        skip();
    rec_t r = {0};
    r.use_dimse = true;
    r.lo = buf;
    r.hi = buf + n;
    mt_pdv_asm_t a;
    mt_pdv_init(&a, 0, on_event, &r);
    assert_false(mt_pdv_is_allowed(&a, 1));
    size_t off = 0, expect_data = 0;
    uint8_t pcid = 0;
    while (off < n) {
        mt_pdu_t p;
        size_t used;
        mt_pdu_diag_t d;
        assert_int_equal(mt_pdu_decode(buf + off, n - off, 16384, &p, &used, &d), 0);
        assert_int_equal(p.type, MT_PDU_P_DATA_TF);
        mt_pdv_iter_t it;
        mt_pdv_t v;
        mt_pdv_iter_init(&it, &p);
        while (mt_pdv_next(&it, &v, &d) == 1) {
            pcid = v.pcid;
            if (!v.command)
                expect_data += v.len;
        }
        mt_pdv_allow(&a, pcid);
        assert_int_equal(mt_pdv_feed_pdu(&a, &p, &d), 0);
        off += used;
    }
    assert_int_equal(r.n_cmd, 1);
    assert_int_equal(r.pcid, pcid);
    assert_true(r.n_data >= 5);
    assert_int_equal(r.data_total, expect_data);
    assert_true(r.saw_last);
    assert_true(mt_pdv_idle(&a));
    mt_pdu_diag_t d;
    assert_int_equal(mt_pdv_finish(&a, &d), 0);
    mt_dimse_cmd_t c;
    mt_diag_t dd;
    assert_int_equal(mt_dimse_decode(r.cmd, r.cmd_len, &c, &dd), 0);
    assert_int_equal(c.command_field, MT_C_STORE_RQ);
    mt_pdv_dispose(&a);
    free(buf);
}

/* A message encoded with mt_pdu_encode_pdata_split for a tiny peer: the command arrives in
 * many fragments and is reassembled; then two data fragments, then a second message. */
static void test_fragmented_command(void **state)
{
    (void)state;
    uint8_t cmd[300], data[50];
    for (size_t i = 0; i < sizeof(cmd); i++)
        cmd[i] = (uint8_t)(i * 7);
    memset(data, 0x5A, sizeof(data));
    mt_buf_t b;
    mt_buf_init(&b, 1 << 20);
    assert_int_equal(mt_pdu_encode_pdata_split(&b, 3, true, cmd, sizeof(cmd), 32), 0);
    assert_int_equal(mt_pdu_encode_pdata_split(&b, 3, false, data, sizeof(data), 32), 0);
    assert_int_equal(mt_pdu_encode_pdata_split(&b, 3, true, cmd, 10, 32), 0);
    rec_t r = {0};
    r.expect_data = true;
    r.lo = b.data;
    r.hi = b.data + b.len;
    mt_pdv_asm_t a;
    mt_pdv_init(&a, 0, on_event, &r);
    mt_pdv_allow(&a, 3);
    size_t off = 0;
    int pdus = 0;
    while (off < b.len) {
        mt_pdu_t p;
        size_t used;
        mt_pdu_diag_t d;
        assert_int_equal(mt_pdu_decode(b.data + off, b.len - off, 32, &p, &used, &d), 0);
        assert_int_equal(mt_pdv_feed_pdu(&a, &p, &d), 0);
        off += used;
        pdus++;
        if (r.n_cmd == 1 && r.n_data == 0)
            assert_false(mt_pdv_idle(&a)); /* command done, data set expected */
    }
    assert_true(pdus > 12);
    assert_int_equal(r.n_cmd, 2);
    assert_int_equal(r.cmd_len, 10); /* the second command */
    assert_memory_equal(r.cmd, cmd, 10);
    assert_int_equal(r.data_total, sizeof(data));
    assert_false(mt_pdv_idle(&a)); /* second command expects data */
    mt_pdu_diag_t d;
    assert_int_equal(mt_pdv_finish(&a, &d), MT_EPROTO);
    assert_int_equal(d.abort_reason, MT_ABORT_UNEXPECTED_PDU);
    assert_true(mt_pdv_idle(&a));
    mt_pdv_dispose(&a);
    mt_buf_dispose(&b);
}

/* the reassembled command: check bytes, in a separate run with one message */
static void test_command_bytes(void **state)
{
    (void)state;
    uint8_t cmd[101];
    for (size_t i = 0; i < sizeof(cmd); i++)
        cmd[i] = (uint8_t)(255 - i);
    rec_t r = {0};
    mt_pdv_asm_t a;
    mt_pdv_init(&a, 0, on_event, &r);
    mt_pdv_allow(&a, 1);
    mt_pdu_diag_t d;
    for (size_t i = 0; i < sizeof(cmd); i += 20) {
        size_t k = sizeof(cmd) - i < 20 ? sizeof(cmd) - i : 20;
        mt_pdv_t v = {1, true, i + k == sizeof(cmd), cmd + i, k};
        assert_int_equal(mt_pdv_feed(&a, &v, &d), 0);
    }
    assert_int_equal(r.n_cmd, 1);
    assert_int_equal(r.cmd_len, sizeof(cmd));
    assert_memory_equal(r.cmd, cmd, sizeof(cmd));
    assert_true(mt_pdv_idle(&a));
    /* an empty last fragment is a (empty) command set */
    mt_pdv_t e = {1, true, true, NULL, 0};
    assert_int_equal(mt_pdv_feed(&a, &e, &d), 0);
    assert_int_equal(r.n_cmd, 2);
    assert_int_equal(r.cmd_len, 0);
    mt_pdv_dispose(&a);
}

static void expect_err(mt_pdv_asm_t *a, const mt_pdv_t *v, int err, uint8_t reason)
{
    mt_pdu_diag_t d = {0};
    assert_int_equal(mt_pdv_feed(a, v, &d), err);
    assert_non_null(d.reason);
    assert_int_equal(d.abort_source, MT_ABORT_SOURCE_SERVICE_PROVIDER);
    assert_int_equal(d.abort_reason, reason);
    assert_true(mt_pdv_idle(a));
}

static void test_errors(void **state)
{
    (void)state;
    static const uint8_t x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    rec_t r = {0};
    r.expect_data = true;
    mt_pdv_asm_t a;
    mt_pdv_init(&a, 16, on_event, &r);
    mt_pdv_allow(&a, 1);
    mt_pdv_allow(&a, 3);
    mt_pdu_diag_t d;
    mt_pdv_t cmd_last1 = {1, true, true, x, 8}, cmd_more1 = {1, true, false, x, 8};
    mt_pdv_t data1 = {1, false, false, x, 8}, data_last1 = {1, false, true, x, 8};
    mt_pdv_t cmd_last3 = {3, true, true, x, 8}, data3 = {3, false, false, x, 8};

    /* PDV on a context that was not accepted */
    mt_pdv_t unk = {5, true, true, x, 8};
    expect_err(&a, &unk, MT_EPROTO, MT_ABORT_INVALID_PDU_PARAMETER_VALUE);
    /* data before any command */
    expect_err(&a, &data1, MT_EPROTO, MT_ABORT_UNEXPECTED_PDU_PARAMETER);
    /* data fragment inside a command set */
    assert_int_equal(mt_pdv_feed(&a, &cmd_more1, &d), 0);
    expect_err(&a, &data1, MT_EPROTO, MT_ABORT_UNEXPECTED_PDU_PARAMETER);
    /* a command fragment on another context inside a command set */
    assert_int_equal(mt_pdv_feed(&a, &cmd_more1, &d), 0);
    expect_err(&a, &cmd_last3, MT_EPROTO, MT_ABORT_UNEXPECTED_PDU_PARAMETER);
    /* command set over the limit (16): 8 + 8 fits, 24 does not */
    assert_int_equal(mt_pdv_feed(&a, &cmd_more1, &d), 0);
    assert_int_equal(mt_pdv_feed(&a, &cmd_more1, &d), 0);
    expect_err(&a, &cmd_last1, MT_ETOOBIG, MT_ABORT_INVALID_PDU_PARAMETER_VALUE);
    /* command while a data set is in progress */
    assert_int_equal(mt_pdv_feed(&a, &cmd_last1, &d), 0);
    assert_int_equal(mt_pdv_feed(&a, &data1, &d), 0);
    expect_err(&a, &cmd_last1, MT_EPROTO, MT_ABORT_UNEXPECTED_PDU_PARAMETER);
    /* command on another context while a data set is expected */
    assert_int_equal(mt_pdv_feed(&a, &cmd_last1, &d), 0);
    expect_err(&a, &cmd_last3, MT_EPROTO, MT_ABORT_UNEXPECTED_PDU_PARAMETER);
    /* data on another context than its command */
    assert_int_equal(mt_pdv_feed(&a, &cmd_last1, &d), 0);
    expect_err(&a, &data3, MT_EPROTO, MT_ABORT_UNEXPECTED_PDU_PARAMETER);
    /* a command without a data set, then data */
    r.expect_data = false;
    assert_int_equal(mt_pdv_feed(&a, &cmd_last1, &d), 0);
    assert_true(mt_pdv_idle(&a));
    expect_err(&a, &data1, MT_EPROTO, MT_ABORT_UNEXPECTED_PDU_PARAMETER);
    /* but a message on context 3 after one on 1 is fine */
    r.expect_data = true;
    assert_int_equal(mt_pdv_feed(&a, &cmd_last1, &d), 0);
    assert_int_equal(mt_pdv_feed(&a, &data_last1, &d), 0);
    assert_int_equal(mt_pdv_feed(&a, &cmd_last3, &d), 0);
    mt_pdv_t data_last3 = {3, false, true, x, 8};
    assert_int_equal(mt_pdv_feed(&a, &data_last3, &d), 0);
    assert_true(mt_pdv_idle(&a));
    /* a callback's error stops the feed and is returned as is */
    r.fail_on_data = r.n_data + 2;
    assert_int_equal(mt_pdv_feed(&a, &cmd_last1, &d), 0);
    assert_int_equal(mt_pdv_feed(&a, &data1, &d), 0);
    assert_int_equal(mt_pdv_feed(&a, &data1, &d), MT_ECANCELED);
    assert_true(mt_pdv_idle(&a));
    mt_pdv_dispose(&a);
}

/* feed_pdu: one P-DATA-TF with the last command fragment and the first data fragment; errors
 * report the offset of the offending PDV inside the PDU. */
static void test_feed_pdu_mixed(void **state)
{
    (void)state;
    static const uint8_t x[4] = {9, 9, 9, 9};
    mt_pdv_t pdvs[3] = {{1, true, true, x, 4}, {1, false, false, x, 4}, {1, true, true, x, 2}};
    mt_buf_t b;
    mt_buf_init(&b, 4096);
    assert_int_equal(mt_pdu_encode_pdata(&b, pdvs, 3), 0);
    mt_pdu_t p;
    size_t used;
    mt_pdu_diag_t d;
    assert_int_equal(mt_pdu_decode(b.data, b.len, 0, &p, &used, &d), 0);
    rec_t r = {0};
    r.expect_data = true;
    mt_pdv_asm_t a;
    mt_pdv_init(&a, 0, on_event, &r);
    mt_pdv_allow(&a, 1);
    assert_int_equal(mt_pdv_feed_pdu(&a, &p, &d), MT_EPROTO);
    assert_int_equal(d.offset, 6 + 10 + 10); /* third PDV */
    assert_int_equal(r.n_cmd, 1);
    assert_int_equal(r.n_data, 1);
    /* callback error: returned without touching diag */
    r = (rec_t){0};
    r.expect_data = true;
    r.fail_on_data = 1;
    d.reason = "untouched";
    assert_int_equal(mt_pdv_feed_pdu(&a, &p, &d), MT_ECANCELED);
    assert_null(d.reason);
    mt_pdu_t notdata;
    mt_pdu_init(&notdata, MT_PDU_A_RELEASE_RQ);
    assert_int_equal(mt_pdv_feed_pdu(&a, &notdata, &d), MT_EINVAL);
    mt_pdv_dispose(&a);
    mt_buf_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_storescu_stream), cmocka_unit_test(test_fragmented_command),
        cmocka_unit_test(test_command_bytes),   cmocka_unit_test(test_errors),
        cmocka_unit_test(test_feed_pdu_mixed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
