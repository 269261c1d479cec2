/* tests for node/dicom/ds_write.c: the encoder.
 *  - the key test: for every file of the shared test data with a meta header (not deflated),
 *    parse + encode in the same transfer syntax reproduces the data set bytes exactly;
 *  - conversions: explicit LE -> explicit BE -> explicit LE and implicit -> explicit ->
 *    implicit are identities; MR_small's explicit LE tree encodes to exactly the data sets of
 *    MR_small_implicit.dcm and MR_small_bigendian.dcm (same content, other syntaxes);
 *  - built trees: defined lengths recomputed, undefined ones delimited, a UN sequence written
 *    as UN with implicit LE contents, long values for 2-byte-length VRs written as UN. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dicom/ds.h"
#include "testutil.h"
#include "util/alloc.h"
#include "util/err.h"

#define BIG ((size_t)1 << 31)

static const mt_ts_t *ts_be(void)
{
    return mt_ts_find("1.2.840.10008.1.2.2");
}

/* Files that parse but legitimately do not reproduce byte for byte. */
static const char *const differ[] = {
    /* (0028,0120) has VR bytes "  " (20 20): read as UN with a 2-byte length, written as a
     * proper UN (4-byte length), so the output is 4 bytes longer. */
    "fo-dicom/GH179A.dcm",
};

/* Files with a meta header that do not parse: the malformed ones (ds_read.c tests why). */
static const char *const unparsable[] = {
    "fo-dicom/GH179B.dcm",                                 /* garbage VR bytes */
    "orthanc-tests/2026-05-06-Deeply-Nested-Sequence.dcm", /* nesting > max_depth */
    "pydicom/test_files/MR_truncated.dcm",
    "pydicom/test_files/SC_rgb_jpeg.dcm",                 /* implicit data in explicit TS */
    "pydicom/test_files/dicomdirtests/DICOMDIR-nooffset", /* item longer than the file */
    "pydicom/test_files/rtplan_truncated.dcm",
    "pydicom-data/emri_small_jpeg_2k_lossless_too_short.dcm",
};

static bool listed(const char *path, const char *const *list, size_t n)
{
    size_t k = strlen(TESTDATA) + 1;
    for (size_t i = 0; i < n; i++)
        if (strlen(path) > k && strcmp(path + k, list[i]) == 0)
            return true;
    return false;
}

typedef struct walk {
    size_t n_same, n_differ, n_unparsable, n_skipped;
} walk_t;

static void roundtrip_one(const char *path, void *user)
{
    walk_t *w = user;
    size_t len, off;
    uint8_t *buf = tu_read(path, &len);
    mt_meta_t m;
    if (!buf || mt_part10_read_meta(buf, len, &m, &off, NULL) != 0) {
        free(buf);
        return;
    }
    const mt_ts_t *ts = mt_ts_find(m.transfer_syntax_uid);
    if (!ts || ts->deflated) {
        w->n_skipped++;
        free(buf);
        return;
    }
    mt_ds_t *ds;
    mt_diag_t d;
    int rc = mt_ds_parse(buf + off, len - off, ts, &ds, &d);
    if (rc) {
        if (!listed(path, unparsable, sizeof unparsable / sizeof unparsable[0]))
            fail_msg("%s does not parse: %s at %llu", path, d.reason, (unsigned long long)d.offset);
        w->n_unparsable++;
        free(buf);
        return;
    }
    mt_buf_t out;
    mt_buf_init(&out, BIG);
    assert_int_equal(mt_ds_encode(ds, ts, &out), 0);
    bool same = out.len == len - off && memcmp(out.data, buf + off, out.len) == 0;
    if (!same) {
        size_t i = 0;
        while (i < out.len && i < len - off && out.data[i] == buf[off + i])
            i++;
        if (!listed(path, differ, sizeof differ / sizeof differ[0]))
            fail_msg("%s: encoded %zu bytes vs %zu, first difference at data set offset %zu", path,
                     out.len, len - off, i);
        w->n_differ++;
    } else {
        w->n_same++;
    }
    mt_buf_dispose(&out);
    mt_ds_free(ds);
    free(buf);
}

static void test_roundtrip_testdata(void **state)
{
    (void)state;
    if (!tu_have_testdata())
        skip();
    walk_t w = {0};
    tu_walk(TESTDATA, roundtrip_one, &w);
    print_message("# round trip: %zu identical, %zu known to differ, %zu malformed, %zu deflated "
                  "or unknown syntax skipped\n",
                  w.n_same, w.n_differ, w.n_unparsable, w.n_skipped);
    assert_true(w.n_same > 300);
}

/* Parse a file of the test data: its tree (and its transfer syntax). */
static mt_ds_t *load(const char *rel, const mt_ts_t **ts, uint8_t **buf, size_t *len, size_t *off)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", TESTDATA, rel);
    *buf = tu_read(path, len);
    assert_non_null(*buf);
    mt_meta_t m;
    assert_int_equal(mt_part10_read_meta(*buf, *len, &m, off, NULL), 0);
    *ts = mt_ts_find(m.transfer_syntax_uid);
    assert_non_null(*ts);
    mt_ds_t *ds;
    mt_diag_t d;
    assert_int_equal(mt_ds_parse(*buf + *off, *len - *off, *ts, &ds, &d), 0);
    return ds;
}

/* a -> encode(to) -> parse -> encode(back) must give encode(a, back). */
static void check_via(const mt_ds_t *ds, const mt_ts_t *to, const mt_ts_t *back)
{
    mt_buf_t direct, mid, again;
    mt_buf_init(&direct, BIG);
    mt_buf_init(&mid, BIG);
    mt_buf_init(&again, BIG);
    assert_int_equal(mt_ds_encode(ds, back, &direct), 0);
    assert_int_equal(mt_ds_encode(ds, to, &mid), 0);
    mt_ds_t *t;
    mt_diag_t d;
    assert_int_equal(mt_ds_parse(mid.data, mid.len, to, &t, &d), 0);
    assert_int_equal(mt_ds_encode(t, back, &again), 0);
    assert_int_equal(direct.len, again.len);
    assert_memory_equal(direct.data, again.data, direct.len);
    mt_ds_free(t);
    mt_buf_dispose(&direct);
    mt_buf_dispose(&mid);
    mt_buf_dispose(&again);
}

typedef struct conv {
    size_t n;
} conv_t;

static void conv_one(const char *path, void *user)
{
    conv_t *c = user;
    size_t len, off;
    uint8_t *buf = tu_read(path, &len);
    mt_meta_t m;
    if (!buf || len > 2000000 || mt_part10_read_meta(buf, len, &m, &off, NULL) != 0) {
        free(buf);
        return;
    }
    const mt_ts_t *ts = mt_ts_find(m.transfer_syntax_uid);
    mt_ds_t *ds = NULL;
    if (ts && !ts->deflated && !ts->encapsulated &&
        mt_ds_parse(buf + off, len - off, ts, &ds, NULL) == 0) {
        if (ts->explicit_vr)
            check_via(ds, ts->big_endian ? mt_ts_explicit_le : ts_be(), ts);
        else
            check_via(ds, mt_ts_explicit_le, mt_ts_implicit_le);
        c->n++;
    }
    mt_ds_free(ds);
    free(buf);
}

static void test_conversions_testdata(void **state)
{
    (void)state;
    if (!tu_have_testdata())
        skip();
    conv_t c = {0};
    tu_walk(TESTDATA, conv_one, &c);
    print_message("# LE<->BE and implicit<->explicit identities on %zu files\n", c.n);
    assert_true(c.n > 100);
}

/* The same instance in three syntaxes: our encodings of one tree match the other two files. */
static void test_mr_small_three_syntaxes(void **state)
{
    (void)state;
    if (!tu_have_testdata())
        skip();
    const mt_ts_t *ts, *ts_i, *ts_b;
    uint8_t *buf, *buf_i, *buf_b;
    size_t len, off, len_i, off_i, len_b, off_b;
    mt_ds_t *ds = load("pydicom/test_files/MR_small.dcm", &ts, &buf, &len, &off);
    mt_ds_t *di = load("pydicom/test_files/MR_small_implicit.dcm", &ts_i, &buf_i, &len_i, &off_i);
    mt_ds_t *db = load("pydicom/test_files/MR_small_bigendian.dcm", &ts_b, &buf_b, &len_b, &off_b);
    assert_true(ts->explicit_vr && !ts->big_endian);
    assert_false(ts_i->explicit_vr);
    assert_true(ts_b->big_endian);
    /* MR_small.dcm alone ends with Data Set Trailing Padding */
    assert_true(mt_ds_remove(ds, MT_TAG(0xFFFC, 0xFFFC)));
    mt_buf_t out, le;
    mt_buf_init(&out, BIG);
    mt_buf_init(&le, BIG);
    assert_int_equal(mt_ds_encode(ds, ts, &le), 0);
    assert_int_equal(mt_ds_encode(ds, ts_i, &out), 0);
    assert_int_equal(out.len, len_i - off_i);
    assert_memory_equal(out.data, buf_i + off_i, out.len);
    mt_buf_reset(&out);
    assert_int_equal(mt_ds_encode(ds, ts_b, &out), 0);
    assert_int_equal(out.len, len_b - off_b);
    assert_memory_equal(out.data, buf_b + off_b, out.len);
    mt_buf_reset(&out);
    assert_int_equal(mt_ds_encode(db, ts, &out), 0); /* BE tree to LE */
    assert_int_equal(out.len, le.len);
    assert_memory_equal(out.data, le.data, out.len);
    /* (the implicit tree to explicit LE differs: "US or SS" elements such as (0028,0106) get
     * the dictionary's US, where the explicit file says SS) */
    mt_buf_dispose(&out);
    mt_buf_dispose(&le);
    mt_ds_free(ds);
    mt_ds_free(di);
    mt_ds_free(db);
    free(buf);
    free(buf_i);
    free(buf_b);
}

static void test_built_tree(void **state)
{
    (void)state;
    mt_ds_t *ds = mt_ds_new();
    assert_int_equal(mt_ds_set_string(ds, MT_TAG(0x0008, 0x0016), MT_VR('U', 'I'), "1.2"), 0);
    assert_int_equal(mt_ds_set(ds, MT_TAG(0x0008, 0x1140), MT_VR('S', 'Q'), NULL, 0), 0);
    mt_ds_elem_t *sq = mt_ds_get(ds, MT_TAG(0x0008, 0x1140));
    sq->items = mt_calloc(1, sizeof *sq->items);
    sq->items[0] = mt_ds_new();
    sq->n_items = 1;
    assert_int_equal(mt_ds_set_u16(sq->items[0], MT_TAG(0x0028, 0x0010), 512), 0);
    /* a 70000-byte LO: too long for a 2-byte length */
    char *lo = mt_malloc(70000);
    memset(lo, 'a', 70000);
    assert_int_equal(mt_ds_set(ds, MT_TAG(0x0010, 0x4000), MT_VR('L', 'T'), lo, 70000), 0);
    mt_free(lo);
    mt_buf_t out;
    mt_buf_init(&out, BIG);
    assert_int_equal(mt_ds_encode(ds, mt_ts_explicit_le, &out), 0);
    tu_bytes_t *t = calloc(1, sizeof *t);
    tu_ex(t, 0x0008, 0x0016, "UI", 4);
    tu_raw(t, "1.2\0", 4);
    tu_ex(t, 0x0008, 0x1140, "SQ", 8 + 10); /* defined: recomputed */
    tu_im(t, 0xFFFE, 0xE000, 10);
    tu_ex(t, 0x0028, 0x0010, "US", 2);
    tu_u16(t, 512);
    tu_ex(t, 0x0010, 0x4000, "UN", 70000);
    assert_true(out.len == t->n + 70000);
    assert_memory_equal(out.data, t->b, t->n);
    /* the same with undefined lengths */
    sq->len = MT_UNDEFINED_LENGTH;
    mt_ds_remove(ds, MT_TAG(0x0010, 0x4000));
    mt_buf_reset(&out);
    assert_int_equal(mt_ds_encode(ds, mt_ts_explicit_le, &out), 0);
    /* (item still defined: its own flag) */
    t->n = 0;
    tu_ex(t, 0x0008, 0x0016, "UI", 4);
    tu_raw(t, "1.2\0", 4);
    tu_ex(t, 0x0008, 0x1140, "SQ", MT_UNDEFINED_LENGTH);
    tu_im(t, 0xFFFE, 0xE000, 10);
    tu_ex(t, 0x0028, 0x0010, "US", 2);
    tu_u16(t, 512);
    tu_im(t, 0xFFFE, 0xE0DD, 0);
    assert_int_equal(out.len, t->n);
    assert_memory_equal(out.data, t->b, t->n);
    /* implicit VR */
    mt_buf_reset(&out);
    assert_int_equal(mt_ds_encode(ds, mt_ts_implicit_le, &out), 0);
    t->n = 0;
    tu_im(t, 0x0008, 0x0016, 4);
    tu_raw(t, "1.2\0", 4);
    tu_im(t, 0x0008, 0x1140, MT_UNDEFINED_LENGTH);
    tu_im(t, 0xFFFE, 0xE000, 10);
    tu_im(t, 0x0028, 0x0010, 2);
    tu_u16(t, 512);
    tu_im(t, 0xFFFE, 0xE0DD, 0);
    assert_int_equal(out.len, t->n);
    assert_memory_equal(out.data, t->b, t->n);
    /* deflated: the caller's job */
    assert_int_equal(mt_ds_encode(ds, mt_ts_find("1.2.840.10008.1.2.1.99"), &out), MT_EINVAL);
    /* a limit too small: error, output unchanged */
    mt_buf_t small;
    mt_buf_init(&small, 16);
    assert_int_equal(mt_ds_encode(ds, mt_ts_explicit_le, &small), MT_ETOOBIG);
    assert_int_equal(small.len, 0);
    mt_buf_dispose(&small);
    free(t);
    mt_buf_dispose(&out);
    mt_ds_free(ds);
}

/* A UN sequence parsed from big endian keeps implicit LE contents when written back. */
static void test_un_sequence_big_endian(void **state)
{
    (void)state;
    const uint8_t be[] = {
        0x00, 0x09, 0x10, 0x01, 'U',  'N',  0,    0,    0xFF, 0xFF, 0xFF, 0xFF, 0xFE,
        0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF,                   /* LE item, u/l */
        0x28, 0x00, 0x10, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, /* (0028,0010) 512 LE */
        0xFE, 0xFF, 0x0D, 0xE0, 0,    0,    0,    0,    0xFE, 0xFF, 0xDD, 0xE0, 0,
        0,    0,    0,    0x00, 0x28, 0x00, 0x11, 'U',  'S',  0x00, 0x02, 0x01, 0x00,
    };
    mt_ds_t *ds;
    mt_diag_t d;
    assert_int_equal(mt_ds_parse(be, sizeof be, ts_be(), &ds, &d), 0);
    mt_ds_elem_t *un = mt_ds_get(ds, MT_TAG(0x0009, 0x1001));
    assert_true(un->from_un);
    uint16_t v;
    assert_true(mt_ds_get_u16(un->items[0], MT_TAG(0x0028, 0x0010), &v));
    assert_int_equal(v, 512);
    mt_buf_t out;
    mt_buf_init(&out, BIG);
    assert_int_equal(mt_ds_encode(ds, ts_be(), &out), 0);
    assert_int_equal(out.len, sizeof be);
    assert_memory_equal(out.data, be, sizeof be);
    mt_buf_dispose(&out);
    mt_ds_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_testdata),      cmocka_unit_test(test_conversions_testdata),
        cmocka_unit_test(test_mr_small_three_syntaxes), cmocka_unit_test(test_built_tree),
        cmocka_unit_test(test_un_sequence_big_endian),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
