/*
 * Sequence keys (issue 3): rec.c captures the PS3.4 Annex C sequence keys from reader events
 * (and from a parsed tree), the index keeps them per level (db/006 seq_keys), and C-FIND
 * responses return the stored items.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dicom/ds.h"
#include "index/index.h"
#include "index/query.h"
#include "util/alloc.h"
#include "util/err.h"

#define T_SOP_CLASS MT_TAG(0x0008, 0x0016)
#define T_SOP MT_TAG(0x0008, 0x0018)
#define T_QR_LEVEL MT_TAG(0x0008, 0x0052)
#define T_CODE_VALUE MT_TAG(0x0008, 0x0100)
#define T_SCHEME MT_TAG(0x0008, 0x0102)
#define T_MEANING MT_TAG(0x0008, 0x0104)
#define T_PROC_SEQ MT_TAG(0x0008, 0x1032)
#define T_REF_STUDY_SEQ MT_TAG(0x0008, 0x1110)
#define T_PID MT_TAG(0x0010, 0x0020)
#define T_OTHER_PIDS_SEQ MT_TAG(0x0010, 0x1002)
#define T_STUDY MT_TAG(0x0020, 0x000D)
#define T_SERIES MT_TAG(0x0020, 0x000E)
#define T_REQ_ATTR_SEQ MT_TAG(0x0040, 0x0275)
#define T_SCHED_PROTO_SEQ MT_TAG(0x0040, 0x0008)
#define T_REQ_PROC_ID MT_TAG(0x0040, 0x1001)
#define T_CONCEPT_SEQ MT_TAG(0x0040, 0xA043)
#define T_TEXT MT_TAG(0x0040, 0xA160)

static mt_ds_t *code_item(const char *value, const char *scheme, const char *meaning)
{
    mt_ds_t *it = mt_ds_new();
    mt_ds_set_string(it, T_CODE_VALUE, MT_VR('S', 'H'), value);
    mt_ds_set_string(it, T_SCHEME, MT_VR('S', 'H'), scheme);
    mt_ds_set_string(it, T_MEANING, MT_VR('L', 'O'), meaning);
    return it;
}

static void set_items(mt_ds_t *d, uint32_t tag, size_t n, ...)
{
    assert_int_equal(mt_ds_set(d, tag, MT_VR('S', 'Q'), NULL, 0), 0);
    mt_ds_elem_t *e = mt_ds_get(d, tag);
    e->items = mt_malloc((n ? n : 1) * sizeof *e->items);
    e->n_items = n;
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        e->items[i] = va_arg(ap, mt_ds_t *);
    va_end(ap);
}

static mt_ds_t *instance(const char *pid, const char *study, const char *series, const char *sop)
{
    mt_ds_t *d = mt_ds_new();
    mt_ds_set_string(d, T_SOP_CLASS, MT_VR('U', 'I'), "1.2.840.10008.5.1.4.1.1.4");
    mt_ds_set_string(d, T_SOP, MT_VR('U', 'I'), sop);
    mt_ds_set_string(d, T_PID, MT_VR('L', 'O'), pid);
    mt_ds_set_string(d, T_STUDY, MT_VR('U', 'I'), study);
    mt_ds_set_string(d, T_SERIES, MT_VR('U', 'I'), series);
    return d;
}

static mt_ds_t *rich_instance(void)
{
    mt_ds_t *d = instance("P1", "1.1", "1.1.1", "1.1.1.1");
    set_items(d, T_PROC_SEQ, 2, code_item("CMR1", "L", "Cardiac MR"),
              code_item("CMR2", "L", "Stress perfusion"));
    mt_ds_t *pid_item = mt_ds_new();
    mt_ds_set_string(pid_item, T_PID, MT_VR('L', 'O'), "ALT-7");
    set_items(d, T_OTHER_PIDS_SEQ, 1, pid_item);
    mt_ds_t *req = mt_ds_new();
    mt_ds_set_string(req, T_REQ_PROC_ID, MT_VR('S', 'H'), "RP42");
    set_items(req, T_SCHED_PROTO_SEQ, 1, code_item("P9", "99X", "Protocol nine"));
    set_items(d, T_REQ_ATTR_SEQ, 1, req);
    set_items(d, T_CONCEPT_SEQ, 1, code_item("121070", "DCM", "Findings"));
    return d;
}

typedef struct feed {
    mt_index_rec_t *rec;
} feed_t;

static int on_event(void *user, mt_ds_event_t ev, const mt_elem_t *e)
{
    feed_t *f = user;
    if (ev == MT_DS_EV_ELEMENT && e->depth == 0 && e->value)
        mt_index_rec_offer(f->rec, e->tag, e->vr, e->value, e->value_len, false);
    mt_index_rec_seq_event(f->rec, ev, e, false);
    return 0;
}

/* The record of d as the streaming paths (store, rebuild) build it, d encoded in ts and fed
 * in small pieces. */
static mt_index_rec_t *stream_rec_into(mt_index_rec_t *rec, const mt_ds_t *d, const mt_ts_t *ts)
{
    mt_buf_t b;
    mt_buf_init(&b, 1 << 20);
    assert_int_equal(mt_ds_encode(d, ts, &b), 0);
    feed_t f = {.rec = rec};
    mt_ds_reader_opts_t o = {.ts = ts, .cb = on_event, .user = &f};
    mt_ds_reader_t *r = mt_ds_reader_new(&o);
    for (size_t off = 0; off < b.len; off += 7)
        assert_int_equal(mt_ds_reader_feed(r, b.data + off, b.len - off < 7 ? b.len - off : 7),
                         0);
    assert_int_equal(mt_ds_reader_finish(r), 0);
    mt_ds_reader_free(r);
    mt_buf_dispose(&b);
    return f.rec;
}

static mt_index_rec_t *stream_rec(const mt_ds_t *d, const mt_ts_t *ts)
{
    return stream_rec_into(mt_index_rec_new(), d, ts);
}

static mt_ds_t *blob_ds(const mt_index_rec_t *r, int level)
{
    size_t n;
    const uint8_t *p = mt_index_rec_seq_blob(r, level, &n);
    if (!p)
        return NULL;
    mt_ds_t *d = NULL;
    mt_diag_t diag;
    assert_int_equal(mt_ds_parse(p, n, mt_ts_explicit_le, &d, &diag), 0);
    return d;
}

static void check_code(const mt_ds_t *d, uint32_t seq, size_t i, const char *value)
{
    const mt_ds_elem_t *e = mt_ds_get(d, seq);
    assert_non_null(e);
    assert_true(i < e->n_items);
    char buf[64];
    assert_true(mt_ds_get_string(e->items[i], T_CODE_VALUE, buf, sizeof buf));
    assert_string_equal(buf, value);
}

static void test_levels(void **state)
{
    (void)state;
    assert_int_equal(mt_index_seq_level(T_OTHER_PIDS_SEQ), MT_LEVEL_PATIENT);
    assert_int_equal(mt_index_seq_level(T_PROC_SEQ), MT_LEVEL_STUDY);
    assert_int_equal(mt_index_seq_level(T_REQ_ATTR_SEQ), MT_LEVEL_SERIES);
    assert_int_equal(mt_index_seq_level(T_CONCEPT_SEQ), MT_LEVEL_INSTANCE);
    assert_int_equal(mt_index_seq_level(T_SCHED_PROTO_SEQ), -1);
}

/* A record told to keep only the identity UIDs (svc/store.c's record of an original header
 * that is de-identified before indexing) ignores every other value and every sequence. */
static void test_keep_uids_only(void **state)
{
    (void)state;
    long live = mt_alloc_live();
    mt_ds_t *d = rich_instance();
    mt_index_rec_t *r = mt_index_rec_new();
    mt_index_rec_keep_uids_only(r);
    stream_rec_into(r, d, mt_ts_explicit_le);
    assert_string_equal(mt_index_rec_get(r, T_SOP_CLASS), "1.2.840.10008.5.1.4.1.1.4");
    assert_string_equal(mt_index_rec_get(r, T_SOP), "1.1.1.1");
    assert_string_equal(mt_index_rec_get(r, T_STUDY), "1.1");
    assert_string_equal(mt_index_rec_get(r, T_SERIES), "1.1.1");
    assert_null(mt_index_rec_get(r, T_PID));
    for (int level = 0; level < MT_LEVEL_COUNT; level++)
        assert_null(blob_ds(r, level));
    mt_index_rec_free(r);
    mt_ds_free(d);
    assert_int_equal(mt_alloc_live(), live);
}

static void test_capture_streaming(void **state)
{
    (void)state;
    long live = mt_alloc_live();
    const mt_ts_t *tss[] = {mt_ts_implicit_le, mt_ts_explicit_le};
    for (size_t t = 0; t < 2; t++) {
        mt_ds_t *d = rich_instance();
        mt_index_rec_t *r = stream_rec(d, tss[t]);
        assert_string_equal(mt_index_rec_get(r, T_STUDY), "1.1");
        mt_ds_t *p = blob_ds(r, MT_LEVEL_PATIENT), *s = blob_ds(r, MT_LEVEL_STUDY),
                *se = blob_ds(r, MT_LEVEL_SERIES), *i = blob_ds(r, MT_LEVEL_INSTANCE);
        assert_non_null(p);
        assert_non_null(s);
        assert_non_null(se);
        assert_non_null(i);
        char buf[64];
        assert_true(mt_ds_get_string(mt_ds_get(p, T_OTHER_PIDS_SEQ)->items[0], T_PID, buf,
                                     sizeof buf));
        assert_string_equal(buf, "ALT-7");
        assert_int_equal(mt_ds_count(s), 1);
        assert_int_equal(mt_ds_get(s, T_PROC_SEQ)->n_items, 2);
        check_code(s, T_PROC_SEQ, 0, "CMR1");
        check_code(s, T_PROC_SEQ, 1, "CMR2");
        const mt_ds_t *req = mt_ds_get(se, T_REQ_ATTR_SEQ)->items[0];
        assert_true(mt_ds_get_string(req, T_REQ_PROC_ID, buf, sizeof buf));
        assert_string_equal(buf, "RP42");
        check_code(req, T_SCHED_PROTO_SEQ, 0, "P9");
        check_code(i, T_CONCEPT_SEQ, 0, "121070");
        mt_ds_free(p);
        mt_ds_free(s);
        mt_ds_free(se);
        mt_ds_free(i);
        mt_index_rec_free(r);
        mt_ds_free(d);
    }
    assert_int_equal(mt_alloc_live(), live);
}

static void test_capture_tree_and_caps(void **state)
{
    (void)state;
    long live = mt_alloc_live();
    /* tree path (de-identified header) */
    mt_ds_t *d = rich_instance();
    mt_index_rec_t *r = mt_index_rec_new();
    for (size_t k = 0; k < mt_ds_count(d); k++)
        if (mt_ds_at(d, k)->vr == MT_VR('S', 'Q'))
            mt_index_rec_offer_seq(r, mt_ds_at(d, k), false);
    mt_ds_t *s = blob_ds(r, MT_LEVEL_STUDY);
    assert_non_null(s);
    check_code(s, T_PROC_SEQ, 1, "CMR2");
    mt_ds_free(s);
    mt_index_rec_free(r);
    mt_ds_free(d);

    /* a sequence over the cap is dropped whole; the others at its level are kept */
    d = instance("P1", "1.1", "1.1.1", "1.1.1.9");
    set_items(d, T_PROC_SEQ, 1, code_item("A", "L", "a"));
    mt_ds_t *big = mt_ds_new();
    char *text = malloc(MT_INDEX_SEQ_MAX + 2);
    memset(text, 'x', MT_INDEX_SEQ_MAX + 1);
    text[MT_INDEX_SEQ_MAX + 1] = 0;
    mt_ds_set_string(big, T_TEXT, MT_VR('U', 'T'), text);
    free(text);
    set_items(d, T_REF_STUDY_SEQ, 1, big);
    r = stream_rec(d, mt_ts_explicit_le);
    s = blob_ds(r, MT_LEVEL_STUDY);
    assert_non_null(s);
    check_code(s, T_PROC_SEQ, 0, "A");
    assert_null(mt_ds_get(s, T_REF_STUDY_SEQ));
    mt_ds_free(s);
    assert_null(blob_ds(r, MT_LEVEL_SERIES));
    mt_index_rec_free(r);
    /* big endian: not captured */
    feed_t f = {.rec = mt_index_rec_new()};
    mt_elem_t e = {.tag = T_PROC_SEQ, .vr = MT_VR('S', 'Q'), .len = MT_UNDEFINED_LENGTH};
    mt_index_rec_seq_event(f.rec, MT_DS_EV_SEQ_START, &e, true);
    mt_index_rec_seq_event(f.rec, MT_DS_EV_SEQ_END, &e, true);
    assert_null(blob_ds(f.rec, MT_LEVEL_STUDY));
    mt_index_rec_free(f.rec);
    mt_ds_free(d);
    assert_int_equal(mt_alloc_live(), live);
}

/* ---- through the index and C-FIND ---- */

typedef struct fx {
    char dir[64], path[128];
    mt_index_t *ix;
    mt_qdb_t *db;
} fx_t;

static void put(fx_t *f, const mt_ds_t *d, const char *sop)
{
    mt_index_rec_t *r = stream_rec(d, mt_ts_implicit_le);
    char path[128];
    snprintf(path, sizeof path, "x/%s.dcm", sop);
    mt_index_rec_set_file(r, path, 100, "1.2.840.10008.1.2", "1.2.840.10008.5.1.4.1.1.4");
    mt_index_put_result_t res;
    assert_int_equal(f->ix->ops->put(f->ix, r, MT_DUP_OVERWRITE, &res, NULL, 0), 0);
    mt_index_rec_free(r);
}

static int setup_db(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/mt-seq-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/index.sqlite", f->dir);
    assert_int_equal(mt_index_sqlite_open(f->path, &f->ix), 0);
    assert_int_equal(f->ix->ops->begin(f->ix), 0);
    mt_ds_t *d = rich_instance();
    put(f, d, "1.1.1.1");
    mt_ds_free(d);
    /* a second instance of the same study/series without sequences keeps the stored ones */
    d = instance("P1", "1.1", "1.1.1", "1.1.1.2");
    put(f, d, "1.1.1.2");
    mt_ds_free(d);
    /* another study without sequences */
    d = instance("P2", "2.1", "2.1.1", "2.1.1.1");
    put(f, d, "2.1.1.1");
    mt_ds_free(d);
    assert_int_equal(f->ix->ops->commit(f->ix), 0);
    assert_int_equal(f->ix->ops->mark_verified(f->ix), 0);
    assert_int_equal(mt_qdb_open(f->path, &f->db), 0);
    *state = f;
    return 0;
}

static int teardown_db(void **state)
{
    fx_t *f = *state;
    mt_qdb_close(f->db);
    f->ix->ops->close(f->ix);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

typedef struct results {
    mt_ds_t *r[8];
    size_t n;
} results_t;

static int collect(void *u, const mt_ds_t *r)
{
    results_t *res = u;
    assert_true(res->n < 8);
    mt_buf_t b; /* as find.c sends it: encoded (implicit VR here), then parsed back */
    mt_buf_init(&b, 1 << 20);
    assert_int_equal(mt_ds_encode(r, mt_ts_implicit_le, &b), 0);
    mt_diag_t diag;
    assert_int_equal(mt_ds_parse(b.data, b.len, mt_ts_implicit_le, &res->r[res->n++], &diag), 0);
    mt_buf_dispose(&b);
    return 0;
}

static void results_free(results_t *res)
{
    for (size_t i = 0; i < res->n; i++)
        mt_ds_free(res->r[i]);
    res->n = 0;
}

/* one C-FIND: level, match on uid_tag = uid (if uid), request the sequence key seq (empty, or
 * with one empty item when empty_item) */
static void find(fx_t *f, mt_qr_model_t model, const char *level, uint32_t uid_tag,
                 const char *uid, uint32_t seq, bool empty_item, results_t *res,
                 bool *unsupported)
{
    mt_ds_t *d = mt_ds_new();
    mt_ds_set_string(d, T_QR_LEVEL, MT_VR('C', 'S'), level);
    if (uid)
        mt_ds_set_string(d, uid_tag, MT_VR('U', 'I'), uid);
    if (model == MT_QR_STUDY_ROOT && strcmp(level, "SERIES") == 0)
        mt_ds_set_string(d, T_STUDY, MT_VR('U', 'I'), "1.1");
    if (empty_item)
        set_items(d, seq, 1, mt_ds_new());
    else
        mt_ds_set(d, seq, MT_VR('S', 'Q'), NULL, 0);
    mt_query_t *q = NULL;
    mt_query_err_t e;
    assert_int_equal(mt_query_from_ds(d, model, &q, &e), 0);
    if (unsupported)
        *unsupported = q->any_unsupported;
    mt_qscope_t scope = {.retrieve_ae = "MITRAL"};
    bool cap = false;
    results_free(res);
    assert_int_equal(mt_qdb_find(f->db, q, &scope, 0, collect, res, &cap), 0);
    mt_query_free(q);
    mt_ds_free(d);
}

static void test_find_returns_items(void **state)
{
    fx_t *f = *state;
    results_t res = {0};
    bool unsup;
    find(f, MT_QR_STUDY_ROOT, "STUDY", T_STUDY, "1.1", T_PROC_SEQ, false, &res, &unsup);
    assert_int_equal(res.n, 1);
    assert_false(unsup);
    assert_int_equal(mt_ds_get(res.r[0], T_PROC_SEQ)->n_items, 2);
    check_code(res.r[0], T_PROC_SEQ, 0, "CMR1");
    check_code(res.r[0], T_PROC_SEQ, 1, "CMR2");
    /* one empty item in the request: the same */
    find(f, MT_QR_STUDY_ROOT, "STUDY", T_STUDY, "1.1", T_PROC_SEQ, true, &res, &unsup);
    assert_int_equal(res.n, 1);
    check_code(res.r[0], T_PROC_SEQ, 1, "CMR2");
    /* a study without it, and a sequence key not stored: empty sequences */
    find(f, MT_QR_STUDY_ROOT, "STUDY", T_STUDY, "2.1", T_PROC_SEQ, false, &res, NULL);
    assert_int_equal(res.n, 1);
    assert_non_null(mt_ds_get(res.r[0], T_PROC_SEQ));
    assert_int_equal(mt_ds_get(res.r[0], T_PROC_SEQ)->n_items, 0);
    find(f, MT_QR_STUDY_ROOT, "STUDY", T_STUDY, "1.1", T_REF_STUDY_SEQ, false, &res, NULL);
    assert_int_equal(mt_ds_get(res.r[0], T_REF_STUDY_SEQ)->n_items, 0);
    /* every study: two responses, one with items */
    find(f, MT_QR_STUDY_ROOT, "STUDY", 0, NULL, T_PROC_SEQ, false, &res, NULL);
    assert_int_equal(res.n, 2);
    assert_int_equal(mt_ds_get(res.r[0], T_PROC_SEQ)->n_items +
                         mt_ds_get(res.r[1], T_PROC_SEQ)->n_items,
                     2);
    /* patient keys: at PATIENT level (patient root) and at STUDY level (study root) */
    find(f, MT_QR_PATIENT_ROOT, "PATIENT", T_PID, NULL, T_OTHER_PIDS_SEQ, false, &res, NULL);
    assert_int_equal(res.n, 2);
    find(f, MT_QR_STUDY_ROOT, "STUDY", T_STUDY, "1.1", T_OTHER_PIDS_SEQ, false, &res, NULL);
    assert_int_equal(res.n, 1);
    char buf[64];
    assert_true(mt_ds_get_string(mt_ds_get(res.r[0], T_OTHER_PIDS_SEQ)->items[0], T_PID, buf,
                                 sizeof buf));
    assert_string_equal(buf, "ALT-7");
    /* a study key asked at PATIENT level: below the level, empty */
    mt_ds_t *d = mt_ds_new();
    mt_ds_set_string(d, T_QR_LEVEL, MT_VR('C', 'S'), "PATIENT");
    mt_ds_set_string(d, T_PID, MT_VR('L', 'O'), "P1");
    mt_ds_set(d, T_PROC_SEQ, MT_VR('S', 'Q'), NULL, 0);
    mt_query_t *q = NULL;
    mt_query_err_t e;
    assert_int_equal(mt_query_from_ds(d, MT_QR_PATIENT_ROOT, &q, &e), 0);
    bool cap;
    results_free(&res);
    assert_int_equal(mt_qdb_find(f->db, q, NULL, 0, collect, &res, &cap), 0);
    assert_int_equal(res.n, 1);
    assert_int_equal(mt_ds_get(res.r[0], T_PROC_SEQ)->n_items, 0);
    mt_query_free(q);
    mt_ds_free(d);
    /* SERIES (nested sequence) and IMAGE levels */
    find(f, MT_QR_STUDY_ROOT, "SERIES", T_SERIES, "1.1.1", T_REQ_ATTR_SEQ, false, &res, NULL);
    assert_int_equal(res.n, 1);
    const mt_ds_t *req = mt_ds_get(res.r[0], T_REQ_ATTR_SEQ)->items[0];
    assert_true(mt_ds_get_string(req, T_REQ_PROC_ID, buf, sizeof buf));
    assert_string_equal(buf, "RP42");
    check_code(req, T_SCHED_PROTO_SEQ, 0, "P9");
    d = mt_ds_new();
    mt_ds_set_string(d, T_QR_LEVEL, MT_VR('C', 'S'), "IMAGE");
    mt_ds_set_string(d, T_STUDY, MT_VR('U', 'I'), "1.1");
    mt_ds_set_string(d, T_SERIES, MT_VR('U', 'I'), "1.1.1");
    mt_ds_set(d, T_CONCEPT_SEQ, MT_VR('S', 'Q'), NULL, 0);
    assert_int_equal(mt_query_from_ds(d, MT_QR_STUDY_ROOT, &q, &e), 0);
    results_free(&res);
    assert_int_equal(mt_qdb_find(f->db, q, NULL, 0, collect, &res, &cap), 0);
    assert_int_equal(res.n, 2);
    size_t with = 0;
    for (size_t i = 0; i < res.n; i++) {
        const mt_ds_elem_t *c = mt_ds_get(res.r[i], T_CONCEPT_SEQ);
        assert_non_null(c);
        if (c->n_items) {
            with++;
            check_code(res.r[i], T_CONCEPT_SEQ, 0, "121070");
        }
    }
    assert_int_equal(with, 1);
    mt_query_free(q);
    mt_ds_free(d);

    results_free(&res);
}

/* a STUDY C-FIND with ProcedureCodeSequence carrying one item (value, scheme) */
static size_t seq_find(fx_t *f, const char *value, const char *scheme, uint32_t max,
                       results_t *res, bool *unsupported, bool *capped)
{
    mt_ds_t *d = mt_ds_new();
    mt_ds_set_string(d, T_QR_LEVEL, MT_VR('C', 'S'), "STUDY");
    mt_ds_set(d, T_STUDY, MT_VR('U', 'I'), NULL, 0);
    set_items(d, T_PROC_SEQ, 1, code_item(value, scheme, ""));
    mt_query_t *q = NULL;
    mt_query_err_t e;
    assert_int_equal(mt_query_from_ds(d, MT_QR_STUDY_ROOT, &q, &e), 0);
    *unsupported = q->any_unsupported;
    results_free(res);
    bool cap = false;
    assert_int_equal(mt_qdb_find(f->db, q, NULL, max, collect, res, &cap), 0);
    if (capped)
        *capped = cap;
    mt_query_free(q);
    mt_ds_free(d);
    return res->n;
}

static void test_find_sequence_matching(void **state)
{
    fx_t *f = *state;
    results_t res = {0};
    bool unsup, cap;
    /* single value: the study with a matching item, and only the matching items */
    assert_int_equal(seq_find(f, "CMR2", "", 0, &res, &unsup, NULL), 1);
    assert_false(unsup);
    assert_int_equal(mt_ds_get(res.r[0], T_PROC_SEQ)->n_items, 1);
    check_code(res.r[0], T_PROC_SEQ, 0, "CMR2");
    char buf[64];
    assert_true(mt_ds_get_string(res.r[0], T_STUDY, buf, sizeof buf));
    assert_string_equal(buf, "1.1");
    /* two attributes of the item must both match */
    assert_int_equal(seq_find(f, "CMR1", "L", 0, &res, &unsup, NULL), 1);
    assert_int_equal(seq_find(f, "CMR1", "X", 0, &res, &unsup, NULL), 0);
    /* wildcard: both items */
    assert_int_equal(seq_find(f, "CMR*", "", 0, &res, &unsup, NULL), 1);
    assert_int_equal(mt_ds_get(res.r[0], T_PROC_SEQ)->n_items, 2);
    assert_int_equal(seq_find(f, "NOPE", "", 0, &res, &unsup, NULL), 0);
    /* the cap counts matches, not rows */
    assert_int_equal(seq_find(f, "CMR?", "", 1, &res, &unsup, &cap), 1);
    assert_false(cap);
    /* a list inside the item: not matched (FF01), the stored items are returned whole */
    assert_int_equal(seq_find(f, "CMR1\\CMR2", "", 0, &res, &unsup, NULL), 2);
    assert_true(unsup);
    results_free(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_capture_streaming),
        cmocka_unit_test(test_keep_uids_only),
        cmocka_unit_test(test_capture_tree_and_caps),
        cmocka_unit_test_setup_teardown(test_find_returns_items, setup_db, teardown_db),
        cmocka_unit_test_setup_teardown(test_find_sequence_matching, setup_db, teardown_db),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
