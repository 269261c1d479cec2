/* tests for node/index/rebuild.c: files from /work/shared/testdata (and built ones, one larger
 * than the read chunk) stored through the ingest, the index deleted, rebuilt: the same
 * statistics and the same rows; unreadable, misplaced, duplicate and temp files are skipped
 * and counted; mt_index_read_file on whole, truncated, zero-filled and missing files. */
#include "../store/ingest_util.h"

static const char *const real_files[] = {
    "pydicom/test_files/MR_small.dcm",      "pydicom/test_files/CT_small.dcm",
    "pydicom/test_files/image_dfl.dcm",     "pydicom/test_files/JPEG2000.dcm",
    "pydicom/test_files/rtplan.dcm",        "pydicom/test_files/SC_rgb_rle.dcm",
    "pydicom/test_files/rtdose.dcm",        "pydicom/test_files/liver_1frame.dcm",
    "pydicom/test_files/ExplVR_BigEnd.dcm", "orthanc-tests/Issue22-NoPixelData.dcm",
};
#define N_REAL (sizeof real_files / sizeof real_files[0])

/* Every instance row as text, in SOP UID order (the rebuild must give the same). */
static char *dump_rows(const t_env_t *e)
{
    sqlite3 *db = t_db(e);
    sqlite3_stmt *s;
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "SELECT i.sop_instance_uid, i.path, i.size, i.transfer_syntax_uid, "
                           "i.sop_class_uid, i.n_rows, i.verified, se.series_instance_uid, "
                           "se.modality, st.study_instance_uid, st.study_date, p.patient_id, "
                           "p.patient_name FROM instances i JOIN series se ON i.series_pk=se.pk "
                           "JOIN studies st ON se.study_pk=st.pk JOIN patients p ON "
                           "st.patient_pk=p.pk ORDER BY 1",
                           -1, &s, NULL),
        SQLITE_OK);
    mt_buf_t b;
    mt_buf_init(&b, 1 << 24);
    while (sqlite3_step(s) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(s); c++) {
            const char *v = (const char *)sqlite3_column_text(s, c);
            mt_buf_append(&b, v ? v : "NULL", strlen(v ? v : "NULL"));
            mt_buf_append(&b, "|", 1);
        }
        mt_buf_append(&b, "\n", 1);
    }
    mt_buf_put_u8(&b, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    char *out = strdup((const char *)b.data);
    mt_buf_dispose(&b);
    return out;
}

static void write_file(const char *path, const void *p, size_t n)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s", path);
    char cmd[600];
    *strrchr(dir, '/') = '\0';
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    assert_int_equal(system(cmd), 0);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static void remove_index(const t_env_t *e)
{
    char p[256];
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", e->index, suffix[i]);
        unlink(p);
    }
}

static void test_rebuild_same_stats(void **state)
{
    (void)state;
    long live = mt_alloc_live();
    t_env_t e;
    t_env_init(&e);
    assert_int_equal(t_env_open(&e, MT_DUP_OVERWRITE, 0, 0), 0);
    t_inst_t in[N_REAL + 2];
    size_t n = 0;
    for (size_t i = 0; i < N_REAL; i++) {
        if (t_inst_load(&in[n], real_files[i]) != 0)
            continue;
        bool dup = false;
        for (size_t k = 0; k < n; k++)
            dup = dup || strcmp(in[k].sop, in[n].sop) == 0;
        if (dup) {
            t_inst_dispose(&in[n]);
            continue;
        }
        if (t_store(&e, &in[n]) != 0)
            fail_msg("%s not stored", real_files[i]);
        n++;
    }
    print_message("%zu testdata files stored\n", n);
    /* and two built ones, one spanning several read chunks */
    t_inst_build(&in[n++], "1.2.3", "1.2.3.1", "1.2.3.1.1", "P", 3u << 20, 9);
    t_inst_build(&in[n++], "1.2.3", "1.2.3.1", "1.2.3.1.2", "P", 10, 9);
    assert_int_equal(t_store(&e, &in[n - 2]), 0);
    assert_int_equal(t_store(&e, &in[n - 1]), 0);
    t_env_close(&e);
    mt_index_stats_t before, after;
    t_stats(&e, &before);
    assert_int_equal(before.instances, n);
    char *rows_before = dump_rows(&e);

    /* files the rebuild must skip */
    char p[512], rel[MT_STORE_PATH_MAX];
    assert_int_equal(mt_store_path("1.9", "1.9.1", "1.9.1.1", rel, sizeof rel), 0);
    snprintf(p, sizeof p, "%s/%s", e.root, rel);
    write_file(p, "not a DICOM file at all", 23); /* unreadable */
    snprintf(p, sizeof p, "%s/00/00/1.2/1.2.3/1.2.3.1.2.dcm", e.root);
    write_file(p, in[n - 1].file, in[n - 1].file_len); /* misplaced */
    snprintf(p, sizeof p, "%s/notes.txt", e.root);
    write_file(p, "x", 1); /* misplaced: not a *.dcm name */
    snprintf(p, sizeof p, "%s/.tmp/1-2-3.part", e.root);
    write_file(p, in[0].file, in[0].file_len); /* a temp file: never looked at */

    remove_index(&e);
    mt_index_rebuild_report_t rep;
    char err[256];
    assert_int_equal(mt_index_rebuild_report(e.root, e.index, &after, &rep, err, sizeof err), 0);
    assert_memory_equal(&before, &after, sizeof before);
    assert_int_equal(rep.indexed, n);
    assert_int_equal(rep.unreadable, 1);
    assert_int_equal(rep.misplaced, 2);
    assert_int_equal(rep.duplicates, 0);
    char *rows_after = dump_rows(&e);
    assert_string_equal(rows_before, rows_after);
    free(rows_after);

    /* rebuilding over an existing index clears it first */
    assert_int_equal(mt_index_rebuild(e.root, e.index, &after, err, sizeof err), 0);
    assert_memory_equal(&before, &after, sizeof before);
    rows_after = dump_rows(&e);
    assert_string_equal(rows_before, rows_after);
    free(rows_after);
    free(rows_before);

    /* the ingest opens the rebuilt index with nothing to reconcile */
    assert_int_equal(t_env_open(&e, MT_DUP_OVERWRITE, 0, 0), 0);
    t_env_close(&e);
    t_stats(&e, &after);
    assert_memory_equal(&before, &after, sizeof before);

    for (size_t i = 0; i < n; i++)
        t_inst_dispose(&in[i]);
    t_env_dispose(&e);
    assert_int_equal(mt_alloc_live(), live);
}

/* Two files of one SOP instance at their layout paths (different studies): one row. */
static void test_rebuild_duplicates(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_inst_t a, b;
    t_inst_build(&a, "1.2.3", "1.2.3.1", "1.2.3.1.1", "P", 10, 1);
    t_inst_build(&b, "1.2.4", "1.2.4.1", "1.2.3.1.1", "P", 10, 2);
    char p[512];
    t_layout(&e, a.study, a.series, a.sop, p, sizeof p);
    write_file(p, a.file, a.file_len);
    t_layout(&e, b.study, b.series, b.sop, p, sizeof p);
    write_file(p, b.file, b.file_len);
    mt_index_stats_t st;
    mt_index_rebuild_report_t rep;
    assert_int_equal(mt_index_rebuild_report(e.root, e.index, &st, &rep, NULL, 0), 0);
    assert_int_equal(st.instances, 1);
    assert_int_equal(rep.indexed, 1);
    assert_int_equal(rep.duplicates, 1);
    t_inst_dispose(&a);
    t_inst_dispose(&b);
    t_env_dispose(&e);
}

static void test_rebuild_empty_and_errors(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    mt_index_stats_t st;
    char err[256];
    /* no storage yet: created, nothing indexed */
    assert_int_equal(mt_index_rebuild(e.root, e.index, &st, err, sizeof err), 0);
    assert_int_equal(st.instances, 0);
    char bad[256];
    snprintf(bad, sizeof bad, "%s/no/such/dir/index.sqlite", e.dir);
    assert_true(mt_index_rebuild(e.root, bad, &st, err, sizeof err) < 0);
    assert_non_null(strstr(err, "cannot open index"));
    /* not under a running node */
    assert_int_equal(t_env_open(&e, MT_DUP_OVERWRITE, 0, 0), 0);
    assert_int_equal(mt_index_rebuild(e.root, e.index, &st, err, sizeof err), MT_ESTATE);
    assert_non_null(strstr(err, "stop the node first"));
    t_env_close(&e);
    t_env_dispose(&e);
}

static void test_read_file(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_inst_t in;
    t_inst_build(&in, "1.2.3", "1.2.3.1", "1.2.3.1.1", "PID7", 600000, 3);
    char p[512];
    snprintf(p, sizeof p, "%s/whole.dcm", e.dir);
    write_file(p, in.file, in.file_len);
    mt_meta_t meta;
    uint64_t size = 0;
    mt_index_rec_t *rec = mt_index_rec_new();
    assert_int_equal(mt_index_read_file(p, &meta, rec, &size), 0);
    assert_int_equal(size, in.file_len);
    assert_string_equal(meta.sop_instance_uid, "1.2.3.1.1");
    assert_string_equal(meta.transfer_syntax_uid, "1.2.840.10008.1.2.1");
    assert_string_equal(mt_index_rec_get(rec, MT_TAG(0x0010, 0x0020)), "PID7");
    assert_string_equal(mt_index_rec_get(rec, MT_TAG(0x0008, 0x0070)), "ACME");
    assert_string_equal(mt_index_rec_get(rec, MT_TAG(0x0018, 0x0087)), "1.5");
    assert_string_equal(mt_index_rec_get(rec, MT_TAG(0x0020, 0x000D)), "1.2.3");
    mt_index_rec_free(rec);
    /* rec may be NULL */
    assert_int_equal(mt_index_read_file(p, &meta, NULL, NULL), 0);

    /* truncated: inside the pixel data, inside the meta */
    write_file(p, in.file, in.file_len - 1000);
    assert_int_equal(mt_index_read_file(p, &meta, NULL, &size), MT_EMALFORMED);
    write_file(p, in.file, 100);
    assert_int_equal(mt_index_read_file(p, &meta, NULL, &size), MT_EMALFORMED);
    /* zero-filled (data that never reached the disk) */
    uint8_t *z = calloc(1, in.file_len);
    write_file(p, z, in.file_len);
    free(z);
    assert_int_equal(mt_index_read_file(p, &meta, NULL, &size), MT_EMALFORMED);
    /* not Part 10, empty, a directory, absent */
    write_file(p, in.file + in.ds_off, in.file_len - in.ds_off);
    assert_int_equal(mt_index_read_file(p, &meta, NULL, &size), MT_EMALFORMED);
    write_file(p, "", 0);
    assert_int_equal(mt_index_read_file(p, &meta, NULL, &size), MT_EMALFORMED);
    assert_int_equal(mt_index_read_file(e.dir, &meta, NULL, &size), MT_EMALFORMED);
    snprintf(p, sizeof p, "%s/absent.dcm", e.dir);
    assert_int_equal(mt_index_read_file(p, &meta, NULL, &size), MT_ENOENT);

    /* real files: the SOP instance comes out of the data set */
    static const char *const real[] = {"pydicom/test_files/MR_small_bigendian.dcm",
                                       "pydicom/test_files/image_dfl.dcm",
                                       "pydicom/test_files/MR_truncated.dcm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", TESTDATA, real[i]);
        if (access(p, R_OK) != 0) {
            print_message("skipping %s: absent\n", real[i]);
            continue;
        }
        rec = mt_index_rec_new();
        int rc = mt_index_read_file(p, &meta, rec, &size);
        if (strstr(real[i], "truncated")) {
            assert_int_equal(rc, MT_EMALFORMED);
        } else {
            assert_int_equal(rc, 0);
            assert_non_null(mt_index_rec_get(rec, MT_TAG(0x0008, 0x0018)));
            assert_non_null(mt_index_rec_get(rec, MT_TAG(0x0020, 0x000D)));
        }
        mt_index_rec_free(rec);
    }
    if (access(p, R_OK) == 0) {
        snprintf(p, sizeof p, "%s/pydicom/test_files/MR_small_bigendian.dcm", TESTDATA);
        rec = mt_index_rec_new();
        assert_int_equal(mt_index_read_file(p, &meta, rec, &size), 0);
        /* US in a big endian data set: Rows 64 */
        assert_string_equal(mt_index_rec_get(rec, MT_TAG(0x0028, 0x0010)), "64");
        mt_index_rec_free(rec);
    }
    t_inst_dispose(&in);
    t_env_dispose(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rebuild_same_stats),
        cmocka_unit_test(test_rebuild_duplicates),
        cmocka_unit_test(test_rebuild_empty_and_errors),
        cmocka_unit_test(test_read_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
