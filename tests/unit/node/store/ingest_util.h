/* ingest_util.h - helpers shared by the ingest and rebuild tests (static, header only): a temp
 * storage root + index on a real uv loop, instances built by hand or taken from
 * /work/shared/testdata, submitted in chunks the way svc/store.c does, and checks against the
 * index file through a separate SQLite connection. */
#ifndef MT_TEST_INGEST_UTIL_H
#define MT_TEST_INGEST_UTIL_H

#pragma GCC diagnostic ignored "-Wunused-function" /* each test uses a subset */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <uv.h>

#include "dicom/ds.h"
#include "index/index.h"
#include "index/rebuild.h"
#include "store/ingest.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/err.h"

#define TESTDATA MT_SOURCE_DIR "/../shared/testdata"

typedef struct t_env {
    char dir[64], root[128], index[128];
    uv_loop_t loop;
    mt_ingest_t *ing;
    bool closed;
} t_env_t;

static void t_env_init(t_env_t *e)
{
    memset(e, 0, sizeof *e);
    snprintf(e->dir, sizeof e->dir, "/tmp/mt-ingest-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    snprintf(e->root, sizeof e->root, "%s/storage", e->dir);
    snprintf(e->index, sizeof e->index, "%s/index.sqlite", e->dir);
    assert_int_equal(uv_loop_init(&e->loop), 0);
}

static int t_env_open(t_env_t *e, mt_dup_policy_t dup, size_t max_batch, size_t spill_chunk)
{
    mt_ingest_opts_t o = {
        .storage_root = e->root,
        .index_path = e->index,
        .dup_policy = dup,
        .max_batch = max_batch,
        .spill_chunk = spill_chunk,
    };
    e->closed = false;
    return mt_ingest_open(&e->loop, &o, &e->ing);
}

static void t_on_closed(void *data)
{
    ((t_env_t *)data)->closed = true;
}

static void t_env_close(t_env_t *e)
{
    if (!e->ing)
        return;
    mt_ingest_close(e->ing, t_on_closed, e);
    while (!e->closed)
        uv_run(&e->loop, UV_RUN_ONCE);
    e->ing = NULL;
}

static void t_env_dispose(t_env_t *e)
{
    t_env_close(e);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- instances ---- */

typedef struct t_inst {
    mt_meta_t meta;
    uint8_t *file; /* the whole source file (or a built one) */
    size_t file_len;
    size_t ds_off; /* data set offset in file */
    char study[65], series[65], sop[65];
} t_inst_t;

static void t_inst_dispose(t_inst_t *in)
{
    free(in->file);
    memset(in, 0, sizeof *in);
}

/* Explicit VR Little Endian element with a short (2-byte) length. */
static void put_el(mt_buf_t *b, uint16_t g, uint16_t el, const char *vr, const char *v)
{
    size_t n = strlen(v), padded = n + (n & 1);
    mt_buf_put_u16le(b, g);
    mt_buf_put_u16le(b, el);
    mt_buf_append(b, vr, 2);
    mt_buf_put_u16le(b, (uint16_t)padded);
    mt_buf_append(b, v, n);
    if (n & 1)
        mt_buf_put_u8(b, strcmp(vr, "UI") == 0 ? 0 : ' ');
}

/* A small MR instance in Explicit VR Little Endian with pixel_bytes of OW Pixel Data (filled
 * with fill), as a Part 10 file. */
static void t_inst_build(t_inst_t *in, const char *study, const char *series, const char *sop,
                         const char *pid, size_t pixel_bytes, uint8_t fill)
{
    memset(in, 0, sizeof *in);
    snprintf(in->study, sizeof in->study, "%s", study);
    snprintf(in->series, sizeof in->series, "%s", series);
    snprintf(in->sop, sizeof in->sop, "%s", sop);
    snprintf(in->meta.sop_class_uid, sizeof in->meta.sop_class_uid, "1.2.840.10008.5.1.4.1.1.4");
    snprintf(in->meta.sop_instance_uid, sizeof in->meta.sop_instance_uid, "%s", sop);
    snprintf(in->meta.transfer_syntax_uid, sizeof in->meta.transfer_syntax_uid,
             "1.2.840.10008.1.2.1");
    mt_buf_t b;
    mt_buf_init(&b, (size_t)1 << 30);
    assert_int_equal(mt_part10_write_meta(&in->meta, &b), 0);
    in->ds_off = b.len;
    put_el(&b, 0x0008, 0x0016, "UI", in->meta.sop_class_uid);
    put_el(&b, 0x0008, 0x0018, "UI", sop);
    put_el(&b, 0x0008, 0x0060, "CS", "MR");
    put_el(&b, 0x0008, 0x0070, "LO", "ACME");
    put_el(&b, 0x0010, 0x0010, "PN", "Test^Patient");
    put_el(&b, 0x0010, 0x0020, "LO", pid);
    put_el(&b, 0x0018, 0x0087, "DS", "1.5");
    put_el(&b, 0x0020, 0x000D, "UI", study);
    put_el(&b, 0x0020, 0x000E, "UI", series);
    put_el(&b, 0x0020, 0x0013, "IS", "1");
    size_t px = pixel_bytes + (pixel_bytes & 1);
    mt_buf_put_u16le(&b, 0x7FE0);
    mt_buf_put_u16le(&b, 0x0010);
    mt_buf_append(&b, "OW\0\0", 4);
    mt_buf_put_u32le(&b, (uint32_t)px);
    assert_int_equal(mt_buf_reserve(&b, px), 0);
    memset(b.data + b.len, fill, px);
    b.len += px;
    in->file = malloc(b.len);
    memcpy(in->file, b.data, b.len);
    in->file_len = b.len;
    mt_buf_dispose(&b);
}

/* Load a testdata file (relative to TESTDATA). MT_ENOENT when absent; another error when the
 * codec cannot read it (the caller skips it). */
static int t_inst_load(t_inst_t *in, const char *rel)
{
    memset(in, 0, sizeof *in);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", TESTDATA, rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        return MT_ENOENT;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    in->file = malloc((size_t)n);
    in->file_len = fread(in->file, 1, (size_t)n, f);
    fclose(f);
    mt_diag_t d;
    int rc = mt_part10_read_meta(in->file, in->file_len, &in->meta, &in->ds_off, &d);
    mt_index_rec_t *rec = mt_index_rec_new();
    mt_meta_t m2;
    if (rc == 0)
        rc = mt_index_read_file(path, &m2, rec, NULL);
    if (rc == 0) {
        const char *u;
        if ((u = mt_index_rec_get(rec, MT_TAG(0x0020, 0x000D))))
            snprintf(in->study, sizeof in->study, "%s", u);
        if ((u = mt_index_rec_get(rec, MT_TAG(0x0020, 0x000E))))
            snprintf(in->series, sizeof in->series, "%s", u);
        if ((u = mt_index_rec_get(rec, MT_TAG(0x0008, 0x0018))))
            snprintf(in->sop, sizeof in->sop, "%s", u);
        /* the store service builds the meta from the command, which must match the data set */
        size_t k = strnlen(in->sop, sizeof in->meta.sop_instance_uid - 1);
        memcpy(in->meta.sop_instance_uid, in->sop, k);
        in->meta.sop_instance_uid[k] = '\0';
        if ((u = mt_index_rec_get(rec, MT_TAG(0x0008, 0x0016))))
            snprintf(in->meta.sop_class_uid, sizeof in->meta.sop_class_uid, "%s", u);
    }
    mt_index_rec_free(rec);
    if (rc) {
        print_message("skipping %s: %s\n", rel, mt_strerror(rc));
        t_inst_dispose(in);
    }
    return rc;
}

/* The index record the store service would build: every top-level element of the data set. */
typedef struct t_recctx {
    mt_index_rec_t *rec;
    bool be;
} t_recctx_t;

static int t_on_el(void *u, mt_ds_event_t ev, const mt_elem_t *e)
{
    t_recctx_t *c = u;
    if (ev == MT_DS_EV_ELEMENT && e->depth == 0 && e->value)
        mt_index_rec_offer(c->rec, e->tag, e->vr, e->value, e->value_len, c->be);
    return 0;
}

static mt_index_rec_t *t_inst_rec(const t_inst_t *in)
{
    const mt_ts_t *ts = mt_ts_find(in->meta.transfer_syntax_uid);
    assert_non_null(ts);
    t_recctx_t c = {mt_index_rec_new(), ts->big_endian};
    mt_ds_reader_opts_t o = {.ts = ts, .cb = t_on_el, .user = &c};
    mt_ds_reader_t *r = mt_ds_reader_new(&o);
    int rc = mt_ds_reader_feed(r, in->file + in->ds_off, in->file_len - in->ds_off);
    if (rc == 0)
        rc = mt_ds_reader_finish(r);
    if (rc)
        fail_msg("%s: %s at %llu", mt_strerror(rc), mt_ds_reader_diag(r)->reason,
                 (unsigned long long)mt_ds_reader_diag(r)->offset);
    mt_ds_reader_free(r);
    return c.rec;
}

/* ---- jobs ---- */

typedef struct t_job {
    t_env_t *env;
    const t_inst_t *inst;
    mt_ingest_job_t *job;
    bool done, paused;
    int status;
    char comment[80];
    /* checked in the callback: */
    bool row_at_cb, file_at_cb;
    int verified_at_cb;
    uint64_t size_at_cb;
} t_job_t;

static void t_on_drain(void *data)
{
    ((t_job_t *)data)->paused = false;
}

static sqlite3 *t_db(const t_env_t *e)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(e->index, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

/* path/size/verified of the row of sop; false when there is none. */
static bool t_row(const t_env_t *e, const char *sop, char *path, size_t pathsz, uint64_t *size,
                  int *verified)
{
    sqlite3 *db = t_db(e);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT path, size, verified FROM instances WHERE "
                                        "sop_instance_uid=?",
                                        -1, &s, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(s, 1, sop, -1, SQLITE_STATIC);
    bool found = sqlite3_step(s) == SQLITE_ROW;
    if (found) {
        if (path)
            snprintf(path, pathsz, "%s", (const char *)sqlite3_column_text(s, 0));
        if (size)
            *size = (uint64_t)sqlite3_column_int64(s, 1);
        if (verified)
            *verified = sqlite3_column_int(s, 2);
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return found;
}

static void t_sql(const t_env_t *e, const char *sql)
{
    sqlite3 *db = t_db(e);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

/* Absolute path of instance in's file in the layout. */
static void t_layout(const t_env_t *e, const char *study, const char *series, const char *sop,
                     char *out, size_t outsz)
{
    char rel[MT_STORE_PATH_MAX];
    assert_int_equal(mt_store_path(study, series, sop, rel, sizeof rel), 0);
    snprintf(out, outsz, "%s/%s", e->root, rel);
}

static int64_t t_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static void t_on_done(void *data, int status, const char *comment)
{
    t_job_t *j = data;
    assert_false(j->done); /* exactly once */
    j->done = true;
    j->status = status;
    snprintf(j->comment, sizeof j->comment, "%s", comment ? comment : "");
    int verified = -1;
    j->row_at_cb = t_row(j->env, j->inst->sop, NULL, 0, &j->size_at_cb, &verified);
    j->verified_at_cb = verified;
    char rel[MT_STORE_PATH_MAX], p[512];
    if (mt_store_path(j->inst->study, j->inst->series, j->inst->sop, rel, sizeof rel) == 0) {
        snprintf(p, sizeof p, "%s/%s", j->env->root, rel);
        j->file_at_cb = t_file_size(p) >= 0;
    }
}

/* Submit an instance as svc/store.c does: job_new, append the data set in chunks (waiting for
 * drain when told to pause), commit. The callback fires later on the loop. */
static t_job_t *t_submit(t_env_t *e, const t_inst_t *in, size_t chunk)
{
    t_job_t *j = calloc(1, sizeof *j);
    j->env = e;
    j->inst = in;
    j->job = mt_ingest_job_new(e->ing, &in->meta);
    assert_non_null(j->job);
    size_t off = in->ds_off;
    while (off < in->file_len) {
        size_t n = in->file_len - off < chunk ? in->file_len - off : chunk;
        int rc = mt_ingest_job_append(j->job, in->file + off, n, t_on_drain, j);
        off += n;
        if (rc < 0)
            break; /* the failure is reported again by the commit callback */
        if (rc == 1) {
            j->paused = true;
            while (j->paused)
                uv_run(&e->loop, UV_RUN_ONCE);
        }
    }
    mt_ingest_job_commit(j->job, t_inst_rec(in), t_on_done, j);
    return j;
}

static void t_wait(t_env_t *e, t_job_t **jobs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        while (!jobs[i]->done)
            uv_run(&e->loop, UV_RUN_ONCE);
}

/* Submit one, wait, return its status (and free the job). */
static int t_store(t_env_t *e, const t_inst_t *in)
{
    t_job_t *j = t_submit(e, in, 16384);
    t_wait(e, &j, 1);
    int st = j->status;
    free(j);
    return st;
}

/* Files under dir, not counting dot entries. */
static int t_count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') /* ., .., .tmp (see t_n_tmp), .lock */
            continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            n += t_count_files(p);
        else
            n++;
    }
    closedir(d);
    return n;
}

static int t_n_tmp(const t_env_t *e)
{
    char p[256];
    snprintf(p, sizeof p, "%s/.tmp", e->root);
    return t_count_files(p);
}

static void t_stats(const t_env_t *e, mt_index_stats_t *s)
{
    mt_index_t *ix;
    assert_int_equal(mt_index_sqlite_open(e->index, &ix), 0);
    assert_int_equal(ix->ops->stats(ix, s), 0);
    ix->ops->close(ix);
}

#endif
