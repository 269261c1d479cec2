/*
 * query_exec.c - runs the SQL of query_sql.c on a read-only SQLite connection and turns rows
 * into response identifiers (C-FIND), instance lists (C-MOVE / C-GET) or study UIDs (CLI).
 *
 * The connection is opened SQLITE_OPEN_READONLY on the node's index file: in WAL mode readers
 * never block the ingest writer and see the last committed state. It registers mt_match(flags,
 * pattern, value) = mt_query_match (query.c), deterministic, so the exact matching semantics are
 * those of the pure, unit-tested function. Called off the event loop (a uv_queue_work worker:
 * node/svc/find.c), one mt_qdb_t per thread at a time.
 *
 * Response values are the stored text, re-encoded for the attribute's VR: binary VRs (US, SS,
 * UL, SL, FL, FD) from their decimal text; sequences as empty sequences; anything without a
 * column zero length. QueryRetrieveLevel, RetrieveAETitle (the called AE title) and the stored
 * SpecificCharacterSet are always set.
 */
#include "query.h"

#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../dicom/charset.h"
#include "../util/alloc.h"
#include "../util/err.h"
#include "../util/log.h"

#define TAG_CHARSET MT_TAG(0x0008, 0x0005)
#define TAG_QR_LEVEL MT_TAG(0x0008, 0x0052)

struct mt_qdb {
    sqlite3 *db;
};

static void sql_match(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    unsigned flags = (unsigned)sqlite3_value_int(argv[0]);
    const char *pattern = (const char *)sqlite3_value_text(argv[1]);
    const char *value = (const char *)sqlite3_value_text(argv[2]);
    const char *charset = argc > 3 ? (const char *)sqlite3_value_text(argv[3]) : NULL;
    sqlite3_result_int(ctx, value && mt_query_match_cs(flags, pattern, value, charset));
}

int mt_qdb_open(const char *index_path, mt_qdb_t **out)
{
    *out = NULL;
    mt_qdb_t *q = mt_calloc(1, sizeof *q);
    int rc = sqlite3_open_v2(index_path, &q->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        mt_log(MT_LOG_ERROR, NULL, "query: cannot open %s: %s", index_path,
               q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
        sqlite3_close(q->db);
        mt_free(q);
        return rc == SQLITE_CANTOPEN ? MT_ENOENT : MT_EDB;
    }
    sqlite3_busy_timeout(q->db, 5000);
    sqlite3_exec(q->db, "PRAGMA query_only=ON; PRAGMA cache_size=-16384;", NULL, NULL, NULL);
    rc = sqlite3_create_function(q->db, "mt_match", 4, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                 sql_match, NULL, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_close(q->db);
        mt_free(q);
        return MT_EDB;
    }
    *out = q;
    return 0;
}

void mt_qdb_close(mt_qdb_t *db)
{
    if (!db)
        return;
    sqlite3_close(db->db);
    mt_free(db);
}

static int prepare(mt_qdb_t *db, const mt_qsql_t *s, const char *prefix, sqlite3_stmt **st)
{
    mt_buf_t b;
    mt_buf_init(&b, 1u << 21);
    mt_buf_append(&b, prefix, strlen(prefix));
    mt_buf_append(&b, s->sql.data, s->sql.len);
    mt_buf_append(&b, "", 1);
    int rc = sqlite3_prepare_v2(db->db, (const char *)b.data, -1, st, NULL);
    if (rc != SQLITE_OK) {
        mt_log(MT_LOG_ERROR, NULL, "query: %s in: %s", sqlite3_errmsg(db->db),
               (const char *)b.data);
        mt_buf_dispose(&b);
        return MT_EDB;
    }
    mt_buf_dispose(&b);
    for (size_t i = 0; i < s->n_params; i++)
        sqlite3_bind_text(*st, (int)i + 1, s->params[i], -1, SQLITE_STATIC);
    return 0;
}

/* ---- response values ---- */

static void put_numbers(mt_ds_t *ds, uint32_t tag, uint16_t vr, const char *text)
{
    uint8_t buf[256];
    size_t n = 0, w = (vr == MT_VR('U', 'S') || vr == MT_VR('S', 'S')) ? 2
                      : (vr == MT_VR('F', 'D'))                        ? 8
                                                                       : 4;
    const char *p = text;
    while (*p && n + w <= sizeof buf) {
        char *end;
        uint64_t raw = 0;
        if (vr == MT_VR('F', 'L')) {
            float f = strtof(p, &end);
            uint32_t u;
            memcpy(&u, &f, 4);
            raw = u;
        } else if (vr == MT_VR('F', 'D')) {
            double d = strtod(p, &end);
            memcpy(&raw, &d, 8);
        } else {
            long long v = strtoll(p, &end, 10);
            raw = (uint64_t)v;
        }
        if (end == p)
            break;
        for (size_t i = 0; i < w; i++)
            buf[n++] = (uint8_t)(raw >> (8 * i));
        p = end;
        if (*p == '\\')
            p++;
    }
    mt_ds_set(ds, tag, vr, n ? buf : NULL, (uint32_t)n);
}

/* A sequence key from its level's seq_keys blob (Explicit VR Little Endian, db/006): the
 * stored items, or an empty sequence when none were stored (or the blob does not parse). */
static void put_sequence(mt_ds_t *ds, uint32_t tag, const void *blob, int n)
{
    mt_ds_set(ds, tag, MT_VR('S', 'Q'), NULL, 0);
    if (!blob || n <= 0)
        return;
    mt_ds_t *stored = NULL;
    mt_diag_t diag;
    memset(&diag, 0, sizeof diag);
    if (mt_ds_parse(blob, (size_t)n, mt_ts_explicit_le, &stored, &diag) != 0) {
        mt_log(MT_LOG_WARN, NULL, "query: seq_keys blob does not parse: %s",
               diag.reason ? diag.reason : "?");
        return;
    }
    mt_ds_elem_t *from = mt_ds_get(stored, tag), *to = mt_ds_get(ds, tag);
    if (from && to && from->items) {
        to->items = from->items; /* moved */
        to->n_items = from->n_items;
        from->items = NULL;
        from->n_items = 0;
    }
    mt_ds_free(stored);
}

static void put_value(mt_ds_t *ds, uint32_t tag, uint16_t vr, const char *text)
{
    switch (vr) {
    case MT_VR('S', 'Q'):
        mt_ds_set(ds, tag, vr, NULL, 0);
        return;
    case MT_VR('U', 'S'):
    case MT_VR('S', 'S'):
    case MT_VR('U', 'L'):
    case MT_VR('S', 'L'):
    case MT_VR('F', 'L'):
    case MT_VR('F', 'D'):
        put_numbers(ds, tag, vr, text ? text : "");
        return;
    case MT_VR('O', 'B'): case MT_VR('O', 'W'): case MT_VR('O', 'F'): case MT_VR('O', 'D'):
    case MT_VR('O', 'L'): case MT_VR('O', 'V'): case MT_VR('A', 'T'): case MT_VR('U', 'N'):
        mt_ds_set(ds, tag, vr, NULL, 0);
        return;
    default:
        break;
    }
    size_t n = text ? strlen(text) : 0;
    if (mt_ds_set(ds, tag, vr, text, (uint32_t)n) != 0)
        mt_ds_set(ds, tag, vr, NULL, 0);
}

/* ---- running a query ---- */

/* What a row visitor returns to end the rows early without an error. */
#define ROWS_ENOUGH INT_MIN

typedef int (*row_fn)(void *ctx, sqlite3_stmt *st, const mt_qsql_t *s);

/* The SQL of sel for q (prefix before it, limit as mt_query_sql takes it), prepared and
 * stepped: each row goes to row, whose nonzero return ends the rows and is returned
 * (ROWS_ENOUGH as 0); a failed step is MT_EDB, logged. */
static int for_each_row(mt_qdb_t *db, const mt_query_t *q, const mt_qscope_t *scope,
                        mt_qsel_t sel, uint32_t limit, const char *prefix, row_fn row, void *ctx)
{
    mt_qsql_t s;
    int err = mt_query_sql(q, scope, sel, limit, &s);
    if (err)
        return err;
    sqlite3_stmt *st;
    if ((err = prepare(db, &s, prefix, &st))) {
        mt_qsql_dispose(&s);
        return err;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && (err = row(ctx, st, &s)) == 0)
        ;
    if (err == ROWS_ENOUGH) {
        err = 0;
    } else if (!err && rc != SQLITE_DONE) {
        mt_log(MT_LOG_ERROR, NULL, "query: %s", sqlite3_errmsg(db->db));
        err = MT_EDB;
    }
    sqlite3_finalize(st);
    mt_qsql_dispose(&s);
    return err;
}

typedef struct find_ctx {
    const mt_query_t *q;
    const char *retrieve_ae;
    uint32_t max, n;
    bool filtered, *capped;
    mt_qdb_match_cb cb;
    void *user;
} find_ctx_t;

static const char *computed_value(const find_ctx_t *f, const mt_qkey_t *k)
{
    switch (k->computed) {
    case MT_QC_RETRIEVE_AE:
        return f->retrieve_ae;
    case MT_QC_AVAILABILITY:
        return "ONLINE";
    case MT_QC_CMR_CREATOR:
        return MT_CMR_CREATOR;
    case MT_QC_PRIVATE_CREATOR:
        return k->value;
    default:
        return NULL;
    }
}

static bool is_charset_text_vr(uint16_t vr)
{
    return vr == MT_VR('L', 'O') || vr == MT_VR('L', 'T') || vr == MT_VR('P', 'N') ||
           vr == MT_VR('S', 'H') || vr == MT_VR('S', 'T') || vr == MT_VR('U', 'C') ||
           vr == MT_VR('U', 'T');
}

static bool is_patient_text(const mt_qkey_t *k)
{
    return k->col && k->col->level == MT_LEVEL_PATIENT && is_charset_text_vr(k->vr);
}

/* The patient row's text is in the patient's character set (pcs), the rest of a row in its
 * study's (instance's) (cs). When they differ and a returned patient value is not ASCII, the
 * response is answered in ISO_IR 192 with every text value converted (PS3.5 6.1.2.5: one
 * Specific Character Set for the data set). */
static bool needs_utf8(const mt_query_t *q, sqlite3_stmt *st, const mt_qsql_t *s, const char *cs,
                       const char *pcs)
{
    if (!pcs || !*pcs || strcmp(pcs, cs ? cs : "") == 0)
        return false;
    for (size_t i = 0; i < q->n_keys; i++) {
        int col = s->col_of_key[i];
        if (col < 0 || !q->keys[i].returned || !is_patient_text(&q->keys[i]))
            continue;
        const unsigned char *v = sqlite3_column_text(st, col);
        for (; v && *v; v++)
            if (*v >= 0x80)
                return true;
    }
    return false;
}

/* text (in the character set charset) as UTF-8, mt_malloc'd; NULL when it already is. */
static char *text_utf8(const char *charset, const char *text, uint16_t vr)
{
    mt_charset_t c;
    size_t n = strlen(text);
    mt_charset_parse(charset ? charset : "", charset ? strlen(charset) : 0, &c);
    if (mt_charset_plain(&c, text, n))
        return NULL;
    return mt_charset_to_utf8(&c, text, n, vr == MT_VR('P', 'N'));
}

/* One row's response identifier, or NULL when a sequence match rejects it. */
static mt_ds_t *find_identifier(const find_ctx_t *f, sqlite3_stmt *st, const mt_qsql_t *s)
{
    const mt_query_t *q = f->q;
    mt_ds_t *r = mt_ds_new();
    put_value(r, TAG_QR_LEVEL, MT_VR('C', 'S'), mt_query_level_name(q->level));
    const char *cs = (const char *)sqlite3_column_text(st, s->col_charset);
    const char *pcs = s->col_patient_charset >= 0
                          ? (const char *)sqlite3_column_text(st, s->col_patient_charset)
                          : NULL;
    bool utf8 = needs_utf8(q, st, s, cs, pcs);
    if (utf8)
        put_value(r, TAG_CHARSET, MT_VR('C', 'S'), "ISO_IR 192");
    else if ((cs && *cs) || q->has_charset_key)
        put_value(r, TAG_CHARSET, MT_VR('C', 'S'), cs ? cs : "");
    for (size_t i = 0; i < q->n_keys; i++) {
        const mt_qkey_t *k = &q->keys[i];
        int col = s->col_of_key[i];
        if (!k->returned)
            continue;
        if (k->vr == MT_VR('S', 'Q') && col >= 0) {
            put_sequence(r, k->tag, sqlite3_column_blob(st, col), sqlite3_column_bytes(st, col));
            continue;
        }
        const char *text = col >= 0 ? (const char *)sqlite3_column_text(st, col)
                                    : computed_value(f, k);
        char *conv = NULL;
        if (utf8 && col >= 0 && text && k->col && is_charset_text_vr(k->vr))
            conv = text_utf8(is_patient_text(k) ? pcs : cs, text, k->vr);
        put_value(r, k->tag, k->vr, conv ? conv : text);
        mt_free(conv);
    }
    if (!mt_ds_get(r, MT_TAG(0x0008, 0x0054)))
        put_value(r, MT_TAG(0x0008, 0x0054), MT_VR('A', 'E'), f->retrieve_ae);
    for (size_t i = 0; i < q->n_keys; i++) {
        const mt_qkey_t *k = &q->keys[i];
        if (k->seq_match && !mt_query_seq_filter(k, mt_ds_get(r, k->tag))) {
            mt_ds_free(r);
            return NULL;
        }
    }
    return r;
}

static int find_row(void *ctx, sqlite3_stmt *st, const mt_qsql_t *s)
{
    find_ctx_t *f = ctx;
    if (f->max && f->n >= f->max && !f->filtered) { /* the SQL asked for max + 1 rows */
        *f->capped = true;
        return ROWS_ENOUGH;
    }
    mt_ds_t *r = find_identifier(f, st, s);
    if (!r)
        return 0;
    if (f->max && f->n >= f->max) {
        *f->capped = true;
        mt_ds_free(r);
        return ROWS_ENOUGH;
    }
    f->n++;
    int stop = f->cb(f->user, r);
    mt_ds_free(r);
    return stop;
}

int mt_qdb_find(mt_qdb_t *db, const mt_query_t *q, const mt_qscope_t *scope, uint32_t max,
                mt_qdb_match_cb cb, void *user, bool *capped)
{
    *capped = false;
    find_ctx_t f = {q, scope && scope->retrieve_ae ? scope->retrieve_ae : "", max, 0, false,
                    capped, cb, user};
    for (size_t i = 0; i < q->n_keys; i++) /* sequence matching is applied here, after the SQL */
        f.filtered = f.filtered || q->keys[i].seq_match;
    return for_each_row(db, q, scope, MT_QSEL_FIND, max && !f.filtered ? max + 1 : 0, "",
                        find_row, &f);
}

typedef struct instances_ctx {
    int (*cb)(void *user, const mt_qdb_instance_t *inst);
    void *user;
} instances_ctx_t;

static int instance_row(void *ctx, sqlite3_stmt *st, const mt_qsql_t *s)
{
    (void)s;
    const instances_ctx_t *c = ctx;
    mt_qdb_instance_t in = {
        .study_uid = (const char *)sqlite3_column_text(st, 0),
        .series_uid = (const char *)sqlite3_column_text(st, 1),
        .sop_instance_uid = (const char *)sqlite3_column_text(st, 2),
        .sop_class_uid = (const char *)sqlite3_column_text(st, 3),
        .transfer_syntax_uid = (const char *)sqlite3_column_text(st, 4),
        .path = (const char *)sqlite3_column_text(st, 5),
        .size = (uint64_t)sqlite3_column_int64(st, 6),
    };
    return c->cb(c->user, &in);
}

int mt_qdb_instances(mt_qdb_t *db, const mt_query_t *q, const mt_qscope_t *scope,
                     int (*cb)(void *user, const mt_qdb_instance_t *inst), void *user)
{
    instances_ctx_t c = {cb, user};
    return for_each_row(db, q, scope, MT_QSEL_INSTANCES, 0, "", instance_row, &c);
}

typedef struct uids_ctx {
    int (*cb)(void *user, const char *study_uid);
    void *user;
} uids_ctx_t;

static int study_uid_row(void *ctx, sqlite3_stmt *st, const mt_qsql_t *s)
{
    (void)s;
    const uids_ctx_t *c = ctx;
    return c->cb(c->user, (const char *)sqlite3_column_text(st, 0));
}

int mt_qdb_study_uids(mt_qdb_t *db, const mt_query_t *q, const mt_qscope_t *scope,
                      int (*cb)(void *user, const char *study_uid), void *user)
{
    uids_ctx_t c = {cb, user};
    return for_each_row(db, q, scope, MT_QSEL_STUDY_UIDS, 0, "", study_uid_row, &c);
}

static int plan_row(void *ctx, sqlite3_stmt *st, const mt_qsql_t *s)
{
    (void)s;
    const char *d = (const char *)sqlite3_column_text(st, 3);
    if (d) {
        mt_buf_append(ctx, d, strlen(d));
        mt_buf_append(ctx, "\n", 1);
    }
    return 0;
}

int mt_qdb_explain(mt_qdb_t *db, const mt_query_t *q, const mt_qscope_t *scope, mt_qsel_t sel,
                   mt_buf_t *out)
{
    return for_each_row(db, q, scope, sel, 0, "EXPLAIN QUERY PLAN ", plan_row, out);
}
