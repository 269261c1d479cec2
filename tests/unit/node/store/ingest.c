/* tests for node/store/ingest.c on a real uv loop in a temp directory: instances appended in
 * chunks (spills, pauses) and committed in batches; every callback comes only after the row
 * exists (verified) and the file is at its place; cancel leaves nothing; the duplicate
 * policies; failures (bad UID, disk full) leave no file, row or temp file; a restart after a
 * simulated crash (leftover temp file, rows whose batch was cut short, a replaced file without
 * its row) reconciles. Real inputs from /work/shared/testdata (skipped when absent). */
#include "ingest_util.h"

#include <zlib.h>

#include "util/crc32c.h"

static const char *const real_files[] = {
    "pydicom/test_files/MR_small.dcm",     "pydicom/test_files/CT_small.dcm",
    "pydicom/test_files/image_dfl.dcm",    "pydicom/test_files/JPEG2000.dcm",
    "pydicom/test_files/rtplan.dcm",       "pydicom/test_files/SC_rgb_rle.dcm",
    "pydicom/test_files/rtdose.dcm",       "dicom-test-files/WG04/REF/MR1_UNC",
    "pydicom/test_files/liver_1frame.dcm", "pydicom/test_files/MR_small_bigendian.dcm",
};
#define N_REAL (sizeof real_files / sizeof real_files[0])

static void check_stored(const t_env_t *e, const t_inst_t *in)
{
    char p[512];
    t_layout(e, in->study, in->series, in->sop, p, sizeof p);
    /* the stored file is the Part 10 meta we write + the data set bytes as received */
    mt_meta_t meta;
    uint64_t size;
    mt_index_rec_t *rec = mt_index_rec_new();
    assert_int_equal(mt_index_read_file(p, &meta, rec, &size), 0);
    assert_string_equal(meta.sop_instance_uid, in->sop);
    assert_string_equal(meta.transfer_syntax_uid, in->meta.transfer_syntax_uid);
    assert_string_equal(mt_index_rec_get(rec, MT_TAG(0x0008, 0x0018)), in->sop);
    mt_index_rec_free(rec);
    size_t ds_len = in->file_len - in->ds_off;
    assert_true(size > ds_len);
    FILE *f = fopen(p, "rb");
    uint8_t *b = malloc(size);
    assert_int_equal(fread(b, 1, size, f), size);
    fclose(f);
    assert_memory_equal(b + size - ds_len, in->file + in->ds_off, ds_len);
    free(b);
    uint64_t rsize;
    int verified;
    char rel[MT_STORE_PATH_MAX];
    assert_true(t_row(e, in->sop, rel, sizeof rel, &rsize, &verified));
    assert_int_equal(rsize, size);
    assert_int_equal(verified, 1);
    assert_non_null(strstr(p, rel));
}

/* Many instances submitted before the loop runs: they commit in batches of max_batch; every
 * callback sees its row and file. Small spill chunks exercise spills and pauses. */
static void test_batches(void **state)
{
    (void)state;
    long live = mt_alloc_live();
    t_env_t e;
    t_env_init(&e);
    assert_int_equal(t_env_open(&e, MT_DUP_OVERWRITE, 4, 4096), 0);
    enum { N = 11 };
    t_inst_t in[N];
    t_job_t *j[N];
    for (int i = 0; i < N; i++) {
        char sop[32];
        snprintf(sop, sizeof sop, "1.2.3.4.%d", i + 1);
        /* two studies, sizes from tiny to several spill chunks */
        t_inst_build(&in[i], i % 2 ? "1.2.3" : "1.2.4", i % 2 ? "1.2.3.1" : "1.2.4.1", sop, "PID1",
                     (size_t)i * 3000, (uint8_t)i);
        j[i] = t_submit(&e, &in[i], 1000);
    }
    t_wait(&e, j, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(j[i]->status, 0);
        assert_true(j[i]->row_at_cb);
        assert_true(j[i]->file_at_cb);
        assert_int_equal(j[i]->verified_at_cb, 1);
        check_stored(&e, &in[i]);
    }
    assert_int_equal(t_n_tmp(&e), 0);
    t_env_close(&e);
    mt_index_stats_t s;
    t_stats(&e, &s);
    assert_int_equal(s.patients, 1);
    assert_int_equal(s.studies, 2);
    assert_int_equal(s.series, 2);
    assert_int_equal(s.instances, N);
    for (int i = 0; i < N; i++) {
        free(j[i]);
        t_inst_dispose(&in[i]);
    }
    t_env_dispose(&e);
    assert_int_equal(mt_alloc_live(), live);
}

static void test_real_files(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    assert_int_equal(t_env_open(&e, MT_DUP_OVERWRITE, 0, 0), 0);
    t_inst_t in[N_REAL];
    t_job_t *j[N_REAL];
    size_t n = 0;
    for (size_t i = 0; i < N_REAL; i++) {
        if (t_inst_load(&in[n], real_files[i]) != 0)
            continue;
        bool dup = false; /* several test files share an SOP Instance UID */
        for (size_t k = 0; k < n; k++)
            dup = dup || strcmp(in[k].sop, in[n].sop) == 0;
        if (dup) {
            t_inst_dispose(&in[n]);
            continue;
        }
        j[n] = t_submit(&e, &in[n], 4096);
        n++;
    }
    if (n == 0) {
        t_env_dispose(&e);
        skip();
    }
    t_wait(&e, j, n);
    print_message("%zu testdata files stored\n", n);
    for (size_t i = 0; i < n; i++) {
        if (j[i]->status)
            fail_msg("%s: %s (%s)", j[i]->inst->sop, mt_strerror(j[i]->status), j[i]->comment);
        assert_true(j[i]->row_at_cb && j[i]->file_at_cb);
        check_stored(&e, &in[i]);
    }
    t_env_close(&e);
    mt_index_stats_t s;
    t_stats(&e, &s);
    assert_int_equal(s.instances, n);
    for (size_t i = 0; i < n; i++) {
        free(j[i]);
        t_inst_dispose(&in[i]);
    }
    t_env_dispose(&e);
}

/* Cancel before any write, while a spill runs, and after several spills: nothing remains. */
static void test_cancel(void **state)
{
    (void)state;
    long live = mt_alloc_live();
    t_env_t e;
    t_env_init(&e);
    assert_int_equal(t_env_open(&e, MT_DUP_OVERWRITE, 0, 4096), 0);
    t_inst_t in;
    t_inst_build(&in, "1.2.3", "1.2.3.1", "1.2.3.1.1", "P", 50000, 7);

    mt_ingest_job_t *a = mt_ingest_job_new(e.ing, &in.meta);
    mt_ingest_job_cancel(a); /* nothing written yet */

    mt_ingest_job_t *b = mt_ingest_job_new(e.ing, &in.meta);
    assert_true(mt_ingest_job_append(b, in.file + in.ds_off, 8000, NULL, NULL) >= 0);
    mt_ingest_job_cancel(b); /* a spill is running */

    mt_ingest_job_t *c = mt_ingest_job_new(e.ing, &in.meta);
    for (size_t off = in.ds_off; off + 1000 <= in.file_len; off += 1000) {
        int rc = mt_ingest_job_append(c, in.file + off, 1000, NULL, NULL);
        assert_true(rc >= 0);
        uv_run(&e.loop, UV_RUN_NOWAIT);
    }
    mt_ingest_job_cancel(c);
    t_env_close(&e); /* waits for the cancelled jobs to finish */
    assert_int_equal(t_count_files(e.root), 0);
    mt_index_stats_t s;
    t_stats(&e, &s);
    assert_int_equal(s.instances, 0);
    t_inst_dispose(&in);
    t_env_dispose(&e);
    assert_int_equal(mt_alloc_live(), live);
}

/* mt_ingest_job_quarantine: the file lands whole in <root>/.quarantine/<sop>.dcm, durable
 * before the callback, with no index row, no file in the layout and no temp file left; a
 * spilled (large) job works the same; a bad UID fails and leaves nothing; the path helper. */
typedef struct q_done {
    bool done;
    int status;
    int64_t size_at_cb;
    char path[256];
} q_done_t;

static void q_on_done(void *data, int status, const char *comment)
{
    (void)comment;
    q_done_t *q = data;
    assert_false(q->done);
    q->done = true;
    q->status = status;
    q->size_at_cb = t_file_size(q->path);
}

static void test_quarantine(void **state)
{
    (void)state;
    long live = mt_alloc_live();
    char rel[MT_STORE_PATH_MAX];
    assert_true(mt_ingest_quarantine_path("1.2.3", rel, sizeof rel));
    assert_string_equal(rel, ".quarantine/1.2.3.dcm");
    assert_false(mt_ingest_quarantine_path("../x", rel, sizeof rel));
    assert_false(mt_ingest_quarantine_path("1.2.3", rel, 8));

    t_env_t e;
    t_env_init(&e);
    assert_int_equal(t_env_open(&e, MT_DUP_OVERWRITE, 0, 4096), 0);
    const size_t sizes[] = {100, 200000};
    for (size_t k = 0; k < 2; k++) {
        t_inst_t in;
        char sop[32];
        snprintf(sop, sizeof sop, "1.2.3.1.%zu", k + 1);
        t_inst_build(&in, "1.2.3", "1.2.3.1", sop, "P", sizes[k], 7);
        q_done_t q = {0};
        snprintf(q.path, sizeof q.path, "%s/.quarantine/%s.dcm", e.root, sop);
        mt_ingest_job_t *j = mt_ingest_job_new(e.ing, &in.meta);
        assert_non_null(j);
        for (size_t off = in.ds_off; off < in.file_len; off += 5000) {
            size_t n = in.file_len - off < 5000 ? in.file_len - off : 5000;
            int rc = mt_ingest_job_append(j, in.file + off, n, NULL, NULL);
            assert_true(rc >= 0);
            uv_run(&e.loop, UV_RUN_NOWAIT);
        }
        mt_ingest_job_quarantine(j, sop, q_on_done, &q);
        while (!q.done)
            uv_run(&e.loop, UV_RUN_ONCE);
        assert_int_equal(q.status, 0);
        assert_int_equal(q.size_at_cb, (int64_t)in.file_len);
        assert_false(t_row(&e, sop, NULL, 0, NULL, NULL));
        t_inst_dispose(&in);
    }
    /* a UID unusable in a path: failure, nothing written */
    t_inst_t bad;
    t_inst_build(&bad, "1.2.3", "1.2.3.1", "1.2.3.1.9", "P", 100, 7);
    q_done_t q = {0};
    snprintf(q.path, sizeof q.path, "%s/.quarantine/x", e.root);
    mt_ingest_job_t *j = mt_ingest_job_new(e.ing, &bad.meta);
    assert_true(mt_ingest_job_append(j, bad.file + bad.ds_off, bad.file_len - bad.ds_off, NULL,
                                     NULL) >= 0);
    mt_ingest_job_quarantine(j, "1..2", q_on_done, &q);
    while (!q.done)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(q.status, MT_EMALFORMED);
    t_inst_dispose(&bad);
    t_env_close(&e);
    assert_int_equal(t_count_files(e.root), 0); /* nothing in the layout (dot dirs skipped) */
    assert_int_equal(t_n_tmp(&e), 0);
    char qd[256];
    snprintf(qd, sizeof qd, "%s/.quarantine", e.root);
    assert_int_equal(t_count_files(qd), 2);
    mt_index_stats_t s;
    t_stats(&e, &s);
    assert_int_equal(s.instances, 0);
    t_env_dispose(&e);
    assert_int_equal(mt_alloc_live(), live);
}

static void test_duplicates(void **state)
{
    (void)state;
    t_inst_t v1, v2, moved;
    t_inst_build(&v1, "1.2.3", "1.2.3.1", "1.2.3.1.1", "P", 100, 1);
    t_inst_build(&v2, "1.2.3", "1.2.3.1", "1.2.3.1.1", "P", 200, 2);
    t_inst_build(&moved, "1.2.9", "1.2.9.1", "1.2.3.1.1", "Q", 300, 3); /* same SOP, new study */
    char p1[512], p9[512];
    static const mt_dup_policy_t pol[] = {MT_DUP_OVERWRITE, MT_DUP_KEEP_FIRST, MT_DUP_REJECT};
    for (int k = 0; k < 3; k++) {
        t_env_t e;
        t_env_init(&e);
        assert_int_equal(t_env_open(&e, pol[k], 0, 0), 0);
        t_layout(&e, "1.2.3", "1.2.3.1", "1.2.3.1.1", p1, sizeof p1);
        t_layout(&e, "1.2.9", "1.2.9.1", "1.2.3.1.1", p9, sizeof p9);
        assert_int_equal(t_store(&e, &v1), 0);
        struct stat st1, st2;
        assert_int_equal(stat(p1, &st1), 0);
        int rc = t_store(&e, &v2);
        assert_int_equal(stat(p1, &st2), 0);
        uint64_t size;
        assert_true(t_row(&e, v1.sop, NULL, 0, &size, NULL));
        switch (pol[k]) {
        case MT_DUP_OVERWRITE:
            assert_int_equal(rc, 0);
            assert_int_equal((uint64_t)st2.st_size, size);
            assert_true(st2.st_size > st1.st_size); /* v2 replaced v1 */
            check_stored(&e, &v2);
            /* the same SOP instance under another study: the old file goes */
            assert_int_equal(t_store(&e, &moved), 0);
            assert_int_equal(t_file_size(p1), -1);
            check_stored(&e, &moved);
            break;
        case MT_DUP_KEEP_FIRST:
            assert_int_equal(rc, 0);
            assert_int_equal(st2.st_ino, st1.st_ino); /* v1 untouched */
            assert_int_equal(st2.st_size, st1.st_size);
            check_stored(&e, &v1);
            break;
        default:
            assert_int_equal(rc, MT_EDUPLICATE);
            assert_int_equal(st2.st_ino, st1.st_ino);
            check_stored(&e, &v1);
            break;
        }
        assert_int_equal(t_n_tmp(&e), 0);
        t_env_close(&e);
        mt_index_stats_t s;
        t_stats(&e, &s);
        assert_int_equal(s.instances, 1);
        assert_int_equal(s.studies, 1);
        t_env_dispose(&e);
    }
    t_inst_dispose(&v1);
    t_inst_dispose(&v2);
    t_inst_dispose(&moved);
}

/* Two copies of one SOP instance in the same batch, and a keep-first duplicate of it. */
static void test_duplicates_in_one_batch(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    assert_int_equal(t_env_open(&e, MT_DUP_REJECT, 0, 0), 0);
    t_inst_t a, b;
    t_inst_build(&a, "1.2.3", "1.2.3.1", "1.2.3.1.1", "P", 10, 1);
    t_inst_build(&b, "1.2.3", "1.2.3.1", "1.2.3.1.1", "P", 20, 2);
    t_job_t *j[2] = {t_submit(&e, &a, 4096), t_submit(&e, &b, 4096)};
    t_wait(&e, j, 2);
    /* concurrent copies apply in the order their bytes finished writing: either may win */
    int won = j[0]->status == 0 ? 0 : 1;
    assert_int_equal(j[won]->status, 0);
    assert_int_equal(j[!won]->status, MT_EDUPLICATE);
    assert_string_equal(j[!won]->comment, "duplicate SOP instance");
    check_stored(&e, won == 0 ? &a : &b);
    free(j[0]);
    free(j[1]);
    t_inst_dispose(&a);
    t_inst_dispose(&b);
    t_env_dispose(&e);
}

/* A bad UID and a full disk fail their job only, leaving nothing behind. */
static void test_failures(void **state)
{
    (void)state;
    long live = mt_alloc_live();
    t_env_t e;
    t_env_init(&e);
    assert_int_equal(t_env_open(&e, MT_DUP_OVERWRITE, 0, 4096), 0);
    t_inst_t bad, full, good;
    t_inst_build(&bad, "1..2", "1.2.3.1", "1.2.3.1.1", "P", 10, 1);
    t_inst_build(&full, "1.2.3", "1.2.3.1", "1.2.3.1.2", "P", 20000, 2);
    t_inst_build(&good, "1.2.3", "1.2.3.1", "1.2.3.1.3", "P", 10, 3);
    /* one at a time: the write countdown is global to the process */
    t_job_t *jb = t_submit(&e, &bad, 4096);
    t_wait(&e, &jb, 1);
    mt_store_fs_fail_write_after(2, MT_ENOSPC); /* the third write of the next job fails */
    t_job_t *jf = t_submit(&e, &full, 4096);
    t_wait(&e, &jf, 1);
    mt_store_fs_fail_write_after(-1, 0);
    t_job_t *jg = t_submit(&e, &good, 4096);
    t_wait(&e, &jg, 1);
    assert_int_equal(jb->status, MT_EMALFORMED);
    assert_false(jb->row_at_cb);
    assert_int_equal(jf->status, MT_ENOSPC);
    assert_string_equal(jf->comment, "out of resources: disk full");
    assert_false(jf->row_at_cb);
    assert_false(jf->file_at_cb);
    assert_int_equal(jg->status, 0);
    check_stored(&e, &good);
    assert_int_equal(t_n_tmp(&e), 0);
    assert_int_equal(t_count_files(e.root), 1);
    free(jb);
    free(jf);
    free(jg);
    t_inst_dispose(&bad);
    t_inst_dispose(&full);
    t_inst_dispose(&good);
    t_env_dispose(&e);
    assert_int_equal(mt_alloc_live(), live);
}

/* A failed sync fails its batch and every later store until a restart, which reconciles:
 * failing sync #1 (nothing renamed: the row goes), then sync #2 (renamed and whole: kept). */
static void test_sync_failure(void **state)
{
    (void)state;
    static const long after[] = {0, 1};
    for (int k = 0; k < 2; k++) {
        t_env_t e;
        t_env_init(&e);
        assert_int_equal(t_env_open(&e, MT_DUP_OVERWRITE, 0, 0), 0);
        t_inst_t a, b;
        t_inst_build(&a, "1.2.3", "1.2.3.1", "1.2.3.1.1", "P", 100, 1);
        t_inst_build(&b, "1.2.3", "1.2.3.1", "1.2.3.1.2", "P", 100, 2);
        mt_store_fs_fail_sync_after(after[k], MT_EIO);
        t_job_t *j = t_submit(&e, &a, 4096);
        t_wait(&e, &j, 1);
        assert_int_equal(j->status, MT_EIO);
        assert_string_equal(j->comment, "cannot sync storage");
        free(j);
        mt_store_fs_fail_sync_after(-1, 0);
        j = t_submit(&e, &b, 4096);
        t_wait(&e, &j, 1);
        assert_int_equal(j->status, MT_EIO);
        assert_string_equal(j->comment, "storage failed earlier: restart needed");
        assert_false(j->row_at_cb);
        free(j);
        t_env_close(&e);
        assert_int_equal(t_env_open(&e, MT_DUP_OVERWRITE, 0, 0), 0); /* restart */
        assert_int_equal(t_n_tmp(&e), 0);
        if (after[k] == 0) {
            assert_false(t_row(&e, a.sop, NULL, 0, NULL, NULL));
            assert_int_equal(t_count_files(e.root), 0);
        } else {
            check_stored(&e, &a);
        }
        assert_int_equal(t_store(&e, &b), 0);
        check_stored(&e, &b);
        t_inst_dispose(&a);
        t_inst_dispose(&b);
        t_env_dispose(&e);
    }
}

static int count_marks(t_env_t *e)
{
    sqlite3 *db = t_db(e);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM dirty_dirs", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* A failed sync on the one-flush path: the clean close keeps the directory marks (the
 * batch's renames may not be durable), so start-up scans the directory. */
static void test_sync_failure_keeps_marks(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    assert_int_equal(t_env_open(&e, MT_DUP_OVERWRITE, 0, 0), 0);
    t_inst_t a, b;
    t_inst_build(&a, "1.2.3", "1.2.3.1", "1.2.3.1.1", "P", 100, 1);
    t_inst_build(&b, "1.2.3", "1.2.3.1", "1.2.3.1.2", "P", 100, 2);
    assert_int_equal(t_store(&e, &a), 0); /* marks the series directory */
    mt_store_fs_fail_sync_after(0, MT_EIO);
    t_job_t *j = t_submit(&e, &b, 4096); /* one-flush path into the marked directory */
    t_wait(&e, &j, 1);
    assert_int_equal(j->status, MT_EIO);
    free(j);
    mt_store_fs_fail_sync_after(-1, 0);
    t_env_close(&e);
    assert_true(count_marks(&e) > 0);
    assert_int_equal(t_env_open(&e, MT_DUP_OVERWRITE, 0, 0), 0); /* restart: scan, reconcile */
    check_stored(&e, &a);
    t_env_close(&e);
    assert_int_equal(count_marks(&e), 0);
    t_inst_dispose(&a);
    t_inst_dispose(&b);
    t_env_dispose(&e);
}

/* Crash states (docs/internals/durability.md), made by hand after a clean run, then a restart:
 *   a  temp file left in .tmp                                  -> deleted
 *   b  row of a cut-short batch, its file never renamed        -> row removed
 *   c  row of a cut-short batch, file whole                    -> kept, verified
 *   d  row of a cut-short batch, file truncated                -> row and file removed
 *   e  replacement row at a new path, whole, old file still
 *      there (a file without a row)                            -> old file deleted
 *   f  replacement row whose file never arrived, old file
 *      still there                                             -> old row restored
 */
static void test_crash_recovery(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    assert_int_equal(t_env_open(&e, MT_DUP_OVERWRITE, 0, 0), 0);
    t_inst_t b, c, d, e_old, e_new, f_old, f_new;
    t_inst_build(&b, "1.2.3", "1.2.3.1", "1.2.3.1.2", "P", 100, 2);
    t_inst_build(&c, "1.2.3", "1.2.3.1", "1.2.3.1.3", "P", 100, 3);
    t_inst_build(&d, "1.2.3", "1.2.3.1", "1.2.3.1.4", "P", 5000, 4);
    t_inst_build(&e_old, "1.2.3", "1.2.3.1", "1.2.3.1.5", "P", 100, 5);
    t_inst_build(&e_new, "1.2.7", "1.2.7.1", "1.2.3.1.5", "P", 100, 5);
    t_inst_build(&f_old, "1.2.3", "1.2.3.1", "1.2.3.1.6", "P", 100, 6);
    t_inst_build(&f_new, "1.2.8", "1.2.8.1", "1.2.3.1.6", "P", 100, 6);
    const t_inst_t *all[] = {&b, &c, &d, &e_old, &e_new, &f_old};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        assert_int_equal(t_store(&e, all[i]), 0);
    t_env_close(&e);

    char pb[512], pc[512], pd[512], pe_old[512], pe_new[512], pf_old[512], pf_new[512];
    t_layout(&e, b.study, b.series, b.sop, pb, sizeof pb);
    t_layout(&e, c.study, c.series, c.sop, pc, sizeof pc);
    t_layout(&e, d.study, d.series, d.sop, pd, sizeof pd);
    t_layout(&e, e_old.study, e_old.series, e_old.sop, pe_old, sizeof pe_old);
    t_layout(&e, e_new.study, e_new.series, e_new.sop, pe_new, sizeof pe_new);
    t_layout(&e, f_old.study, f_old.series, f_old.sop, pf_old, sizeof pf_old);
    t_layout(&e, f_new.study, f_new.series, f_new.sop, pf_new, sizeof pf_new);
    char tmp[512];
    /* a */
    snprintf(tmp, sizeof tmp, "%s/.tmp/123-4-abc.part", e.root);
    FILE *fp = fopen(tmp, "w");
    fputs("half an instance", fp);
    fclose(fp);
    /* b */
    assert_int_equal(unlink(pb), 0);
    /* d: the data never reached the disk */
    assert_int_equal(truncate(pd, 300), 0);
    /* e: the old file is back (its unlink was lost) */
    fp = fopen(pe_old, "wb");
    fwrite(e_old.file, 1, e_old.file_len, fp);
    fclose(fp);
    /* f: the row says the new path, no file there; the old file is still in place */
    fp = fopen(pf_old, "wb");
    fwrite(f_old.file, 1, f_old.file_len, fp);
    fclose(fp);
    char rel_e_old[MT_STORE_PATH_MAX], rel_f_old[MT_STORE_PATH_MAX], rel_f_new[MT_STORE_PATH_MAX];
    assert_int_equal(
        mt_store_path(e_old.study, e_old.series, e_old.sop, rel_e_old, sizeof rel_e_old), 0);
    assert_int_equal(
        mt_store_path(f_old.study, f_old.series, f_old.sop, rel_f_old, sizeof rel_f_old), 0);
    assert_int_equal(
        mt_store_path(f_new.study, f_new.series, f_new.sop, rel_f_new, sizeof rel_f_new), 0);
    char sql[2048];
    snprintf(sql, sizeof sql,
             "UPDATE instances SET verified=0 WHERE sop_instance_uid IN "
             "('%s','%s','%s');"
             "UPDATE instances SET verified=0, replaces_path='%s' WHERE sop_instance_uid='%s';"
             "UPDATE instances SET verified=0, path='%s', replaces_path='%s' "
             "WHERE sop_instance_uid='%s';",
             b.sop, c.sop, d.sop, rel_e_old, e_new.sop, rel_f_new, rel_f_old, f_old.sop);
    t_sql(&e, sql);

    /* restart */
    assert_int_equal(t_env_open(&e, MT_DUP_OVERWRITE, 0, 0), 0);
    assert_int_equal(t_n_tmp(&e), 0);                    /* a */
    assert_false(t_row(&e, b.sop, NULL, 0, NULL, NULL)); /* b */
    check_stored(&e, &c);                                /* c */
    assert_false(t_row(&e, d.sop, NULL, 0, NULL, NULL)); /* d */
    assert_int_equal(t_file_size(pd), -1);
    check_stored(&e, &e_new); /* e */
    assert_int_equal(t_file_size(pe_old), -1);
    char rel[MT_STORE_PATH_MAX];
    int verified;
    assert_true(t_row(&e, f_old.sop, rel, sizeof rel, NULL, &verified)); /* f */
    assert_string_equal(rel, rel_f_old);
    assert_int_equal(verified, 1);
    check_stored(&e, &f_old);
    assert_int_equal(t_file_size(pf_new), -1);

    /* the node works after the repair, and a second restart changes nothing */
    assert_int_equal(t_store(&e, &b), 0);
    check_stored(&e, &b);
    t_env_close(&e);
    mt_index_stats_t s1, s2;
    t_stats(&e, &s1);
    assert_int_equal(t_env_open(&e, MT_DUP_OVERWRITE, 0, 0), 0);
    t_env_close(&e);
    t_stats(&e, &s2);
    assert_memory_equal(&s1, &s2, sizeof s1);
    assert_int_equal(s1.instances, 4); /* b, c, e, f */
    assert_int_equal(t_count_files(e.root), 4);

    t_inst_t *free_list[] = {&b, &c, &d, &e_old, &e_new, &f_old, &f_new};
    for (size_t i = 0; i < sizeof free_list / sizeof free_list[0]; i++)
        t_inst_dispose(free_list[i]);
    t_env_dispose(&e);
}

/* The one-flush path: a batch renames into a directory marked before; a crash before its sync
 * can leave files there without rows, and rows (verified=2) whose data is torn. Start-up:
 *   g  a whole file without a row (its SCU got no answer)  -> deleted
 *   h  a partial file without a row                        -> deleted
 *   i  a stale copy of an instance indexed elsewhere       -> deleted
 *   j  an unsynced row whose file parses but holds zeroed
 *      blocks (checksum differs)                           -> row and file removed
 *   k  an unsynced row whose file is intact                -> kept, verified
 *   l  the same with the adler32 an older version recorded -> kept, verified
 * and a clean close leaves no mark behind; the checksum recorded is the file's CRC-32C. */
static void test_dirty_directories(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    assert_int_equal(t_env_open(&e, MT_DUP_OVERWRITE, 0, 0), 0);
    t_inst_t a, g, h, i_old, i_new, jj, kk, ll;
    t_inst_build(&a, "1.2.3", "1.2.3.1", "1.2.3.1.1", "P", 100, 1);
    t_inst_build(&jj, "1.2.3", "1.2.3.1", "1.2.3.1.10", "P", 20000, 10);
    t_inst_build(&kk, "1.2.3", "1.2.3.1", "1.2.3.1.11", "P", 20000, 11);
    t_inst_build(&ll, "1.2.3", "1.2.3.1", "1.2.3.1.12", "P", 20000, 12);
    t_inst_build(&g, "1.2.3", "1.2.3.1", "1.2.3.1.7", "P", 100, 7);
    t_inst_build(&h, "1.2.3", "1.2.3.1", "1.2.3.1.8", "P", 4000, 8);
    t_inst_build(&i_old, "1.2.3", "1.2.3.1", "1.2.3.1.9", "P", 100, 9);
    t_inst_build(&i_new, "1.2.5", "1.2.5.1", "1.2.3.1.9", "P", 100, 9);
    /* several instances into one series: the first marks the directory, the next go fast */
    assert_int_equal(t_store(&e, &a), 0);
    assert_int_equal(t_store(&e, &i_new), 0);
    assert_int_equal(t_store(&e, &jj), 0); /* one-flush path: same directory as a */
    assert_int_equal(t_store(&e, &kk), 0);
    assert_int_equal(t_store(&e, &ll), 0);
    t_env_close(&e);
    sqlite3 *db = t_db(&e);
    sqlite3_stmt *st;
    /* the row carries the CRC-32C of the file as stored */
    char pk_[512], pl[512];
    t_layout(&e, kk.study, kk.series, kk.sop, pk_, sizeof pk_);
    t_layout(&e, ll.study, ll.series, ll.sop, pl, sizeof pl);
    uint32_t crc_k = 0, crc_l = 0, adler_l = 0;
    {
        mt_meta_t m;
        uint64_t sz;
        assert_int_equal(mt_index_read_file_sum(pk_, &m, NULL, &sz, &crc_k, NULL), 0);
        assert_int_equal(mt_index_read_file_sum(pl, &m, NULL, &sz, &crc_l, &adler_l), 0);
        FILE *f = fopen(pl, "rb");
        static uint8_t whole[1 << 16];
        size_t n = fread(whole, 1, sizeof whole, f);
        fclose(f);
        assert_int_equal(n, (size_t)sz);
        assert_int_equal(mt_crc32c(0, whole, n), crc_l);
        assert_int_equal((uint32_t)adler32_z(adler32_z(0, NULL, 0), whole, n), adler_l);
    }
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT checksum FROM instances WHERE sop_instance_uid=?",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, kk.sop, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal((uint32_t)sqlite3_column_int64(st, 0), crc_k);
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_int_equal(count_marks(&e), 0); /* clean close: no marks */

    char pg[512], ph[512], pi[512], rel_dir[MT_STORE_PATH_MAX];
    t_layout(&e, g.study, g.series, g.sop, pg, sizeof pg);
    t_layout(&e, h.study, h.series, h.sop, ph, sizeof ph);
    t_layout(&e, i_old.study, i_old.series, i_old.sop, pi, sizeof pi);
    FILE *fp = fopen(pg, "wb");
    fwrite(g.file, 1, g.file_len, fp);
    fclose(fp);
    fp = fopen(ph, "wb");
    fwrite(h.file, 1, h.file_len / 2, fp);
    fclose(fp);
    fp = fopen(pi, "wb");
    fwrite(i_old.file, 1, i_old.file_len, fp);
    fclose(fp);
    assert_int_equal(mt_store_path(a.study, a.series, a.sop, rel_dir, sizeof rel_dir), 0);
    *strrchr(rel_dir, '/') = '\0';
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO dirty_dirs(path) VALUES('%s'), ('no/such/dir');"
             "UPDATE instances SET verified=2 WHERE sop_instance_uid IN ('%s', '%s');"
             "UPDATE instances SET verified=2, checksum=%lu WHERE sop_instance_uid='%s'",
             rel_dir, jj.sop, kk.sop, (unsigned long)adler_l, ll.sop);
    t_sql(&e, sql);
    /* j: blocks of its pixel data never reached the disk (read back as zeros) */
    char pj[512];
    t_layout(&e, jj.study, jj.series, jj.sop, pj, sizeof pj);
    fp = fopen(pj, "r+b");
    fseek(fp, -8192, SEEK_END);
    static const uint8_t zeros[4096];
    fwrite(zeros, 1, sizeof zeros, fp);
    fclose(fp);
    {
        mt_meta_t m;
        assert_int_equal(mt_index_read_file(pj, &m, NULL, NULL), 0); /* it still parses */
    }

    assert_int_equal(t_env_open(&e, MT_DUP_OVERWRITE, 0, 0), 0);
    check_stored(&e, &a);
    assert_int_equal(t_file_size(pg), -1); /* g */
    assert_false(t_row(&e, g.sop, NULL, 0, NULL, NULL));
    assert_int_equal(t_file_size(ph), -1); /* h */
    assert_false(t_row(&e, h.sop, NULL, 0, NULL, NULL));
    assert_int_equal(t_file_size(pi), -1); /* i */
    check_stored(&e, &i_new);
    assert_false(t_row(&e, jj.sop, NULL, 0, NULL, NULL)); /* j */
    assert_int_equal(t_file_size(pj), -1);
    check_stored(&e, &kk); /* k */
    check_stored(&e, &ll); /* l */
    t_env_close(&e);
    mt_index_stats_t s;
    t_stats(&e, &s);
    assert_int_equal(s.instances, 4);
    t_inst_t *list[] = {&a, &g, &h, &i_old, &i_new, &jj, &kk, &ll};
    for (size_t k = 0; k < 8; k++)
        t_inst_dispose(list[k]);
    t_env_dispose(&e);
}

/* A series stored one instance at a time (a synchronous SCU): after the first, batches take the
 * one-flush path; more series than MAX_MARKED exercise the eviction of marks. */
static void test_many_series(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    assert_int_equal(t_env_open(&e, MT_DUP_OVERWRITE, 0, 0), 0);
    enum { SERIES = 70, PER = 3 };
    t_inst_t in;
    for (int se = 0; se < SERIES; se++)
        for (int k = 0; k < PER; k++) {
            char series[32], sop[40];
            snprintf(series, sizeof series, "1.2.3.%d", se + 1);
            snprintf(sop, sizeof sop, "1.2.3.%d.%d", se + 1, k + 1);
            t_inst_build(&in, "1.2.3", series, sop, "P", 64, (uint8_t)k);
            t_job_t *j = t_submit(&e, &in, 4096);
            t_wait(&e, &j, 1);
            assert_int_equal(j->status, 0);
            assert_true(j->row_at_cb && j->file_at_cb);
            assert_int_equal(j->verified_at_cb, 1);
            free(j);
            t_inst_dispose(&in);
        }
    sqlite3 *db = t_db(&e);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM dirty_dirs", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_true(sqlite3_column_int(st, 0) <= 64); /* bounded: least recently used evicted */
    assert_true(sqlite3_column_int(st, 0) > 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    t_env_close(&e);
    mt_index_stats_t s;
    t_stats(&e, &s);
    assert_int_equal(s.instances, SERIES * PER);
    assert_int_equal(s.series, SERIES);
    t_env_dispose(&e);
}

/* Closing with jobs still queued commits them first; no job may start once closing. */
static void test_close_commits_in_flight(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    assert_int_equal(t_env_open(&e, MT_DUP_OVERWRITE, 2, 0), 0);
    t_inst_t in[5];
    t_job_t *j[5];
    for (int i = 0; i < 5; i++) {
        char sop[32];
        snprintf(sop, sizeof sop, "1.2.3.1.%d", i + 1);
        t_inst_build(&in[i], "1.2.3", "1.2.3.1", sop, "P", 64, 1);
        j[i] = t_submit(&e, &in[i], 4096);
    }
    mt_ingest_close(e.ing, t_on_closed, &e);
    assert_null(mt_ingest_job_new(e.ing, &in[0].meta));
    while (!e.closed)
        uv_run(&e.loop, UV_RUN_ONCE);
    e.ing = NULL;
    for (int i = 0; i < 5; i++) {
        assert_true(j[i]->done);
        assert_int_equal(j[i]->status, 0);
        assert_true(j[i]->row_at_cb && j[i]->file_at_cb);
        free(j[i]);
        t_inst_dispose(&in[i]);
    }
    t_env_dispose(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches),
        cmocka_unit_test(test_real_files),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_quarantine),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_duplicates_in_one_batch),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_sync_failure),
        cmocka_unit_test(test_sync_failure_keeps_marks),
        cmocka_unit_test(test_crash_recovery),
        cmocka_unit_test(test_dirty_directories),
        cmocka_unit_test(test_many_series),
        cmocka_unit_test(test_close_commits_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
