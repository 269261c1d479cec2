/* tests for node/dicom/part10.c: reading the File Meta Information (every file of the shared
 * test data, wrong group lengths, implicit VR meta, truncation), writing it (exact bytes, read
 * back), and mt_part10_parse_file_buf (files with meta, without meta in the three encodings,
 * meta without a transfer syntax, deflated). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dicom/ds.h"
#include "testutil.h"
#include "util/alloc.h"
#include "util/err.h"

static void make_meta(tu_bytes_t *t, bool group_length, uint32_t gl_delta)
{
    t->n = 0;
    memset(t->b, 0, 128);
    t->n = 128;
    tu_raw(t, "DICM", 4);
    size_t gl_at = t->n + 8;
    if (group_length) {
        tu_ex(t, 0x0002, 0x0000, "UL", 4);
        tu_u32(t, 0);
    }
    size_t start = t->n;
    tu_ex(t, 0x0002, 0x0001, "OB", 2);
    tu_raw(t, "\0\1", 2);
    tu_ex(t, 0x0002, 0x0002, "UI", 26);
    tu_raw(t, "1.2.840.10008.5.1.4.1.1.4\0", 26);
    tu_ex(t, 0x0002, 0x0003, "UI", 6);
    tu_raw(t, "1.2.3\0", 6);
    tu_ex(t, 0x0002, 0x0010, "UI", 20);
    tu_raw(t, "1.2.840.10008.1.2.1\0", 20);
    tu_ex(t, 0x0002, 0x0016, "AE", 6);
    tu_raw(t, " STORE", 6);
    if (group_length) {
        uint32_t gl = (uint32_t)(t->n - start) + gl_delta;
        memcpy(t->b + gl_at, &gl, 4);
    }
    tu_ex(t, 0x0008, 0x0016, "UI", 26);
    tu_raw(t, "1.2.840.10008.5.1.4.1.1.4\0", 26);
}

static void test_read_meta(void **state)
{
    (void)state;
    tu_bytes_t t;
    mt_meta_t m;
    size_t off;
    mt_diag_t d = {0, NULL};
    for (int variant = 0; variant < 4; variant++) {
        /* with a group length; without; one too small (tolerated); one too large (ignored) */
        make_meta(&t, variant != 1, variant == 2 ? (uint32_t)-6 : variant == 3 ? 12 : 0);
        assert_int_equal(mt_part10_read_meta(t.b, t.n, &m, &off, &d), 0);
        assert_int_equal(off, t.n - 34);
        assert_string_equal(m.sop_class_uid, "1.2.840.10008.5.1.4.1.1.4");
        assert_string_equal(m.sop_instance_uid, "1.2.3");
        assert_string_equal(m.transfer_syntax_uid, "1.2.840.10008.1.2.1");
        assert_string_equal(m.source_ae, "STORE");
        assert_string_equal(m.impl_class_uid, "");
        /* every cut inside the meta needs more bytes */
        for (size_t cut = 132; cut < off; cut++)
            assert_int_equal(mt_part10_read_meta(t.b, cut, &m, &off, &d), MT_EAGAIN);
    }
    /* no DICM: not a Part 10 file */
    make_meta(&t, true, 0);
    assert_int_equal(mt_part10_read_meta(t.b, 100, &m, &off, &d), MT_EUNSUPPORTED);
    t.b[128] = 'X';
    assert_int_equal(mt_part10_read_meta(t.b, t.n, &m, &off, &d), MT_EUNSUPPORTED);
    /* DICM then no group 0002 */
    t.n = 128;
    tu_raw(&t, "DICM", 4);
    tu_ex(&t, 0x0008, 0x0016, "UI", 2);
    tu_raw(&t, "12", 2);
    assert_int_equal(mt_part10_read_meta(t.b, t.n, &m, &off, &d), MT_EMALFORMED);
    assert_non_null(d.reason);
    /* an impossible element length */
    make_meta(&t, false, 0);
    t.b[132 + 8] = 0xFF, t.b[132 + 9] = 0xFF, t.b[132 + 10] = 0xFF, t.b[132 + 11] = 0xFF;
    assert_int_equal(mt_part10_read_meta(t.b, t.n, &m, &off, &d), MT_EMALFORMED);
}

typedef struct walk {
    size_t n;
} walk_t;

static void meta_one(const char *path, void *user)
{
    walk_t *w = user;
    size_t len, off;
    uint8_t *buf = tu_read(path, &len);
    mt_meta_t m;
    if (buf && len >= 132 && memcmp(buf + 128, "DICM", 4) == 0) {
        int rc = mt_part10_read_meta(buf, len, &m, &off, NULL);
        if (rc)
            fail_msg("%s: %s", path, mt_err_name(rc));
        assert_true(off > 132 && off <= len);
        w->n++;
        /* rewrite it: our meta reads back with the same values */
        mt_buf_t out;
        mt_buf_init(&out, 1 << 20);
        if (m.transfer_syntax_uid[0]) {
            mt_meta_t m2;
            size_t off2;
            assert_int_equal(mt_part10_write_meta(&m, &out), 0);
            assert_int_equal(mt_part10_read_meta(out.data, out.len, &m2, &off2, NULL), 0);
            assert_int_equal(off2, out.len);
            assert_string_equal(m2.sop_class_uid, m.sop_class_uid);
            assert_string_equal(m2.sop_instance_uid, m.sop_instance_uid);
            assert_string_equal(m2.transfer_syntax_uid, m.transfer_syntax_uid);
            assert_string_equal(m2.source_ae, m.source_ae);
            assert_string_equal(m2.impl_class_uid, MT_IMPL_CLASS_UID);
            assert_string_equal(m2.impl_version_name, MT_IMPL_VERSION_NAME);
        }
        mt_buf_dispose(&out);
    }
    free(buf);
}

static void test_read_meta_testdata(void **state)
{
    (void)state;
    if (!tu_have_testdata())
        skip();
    walk_t w = {0};
    tu_walk(TESTDATA, meta_one, &w);
    print_message("# meta read and rewritten for %zu files\n", w.n);
    assert_true(w.n > 300);
}

static void test_write_meta_bytes(void **state)
{
    (void)state;
    mt_meta_t m;
    memset(&m, 0, sizeof m);
    strcpy(m.sop_class_uid, "1.2.840.10008.5.1.4.1.1.4");
    strcpy(m.sop_instance_uid, "1.2.3");
    strcpy(m.transfer_syntax_uid, "1.2.840.10008.1.2");
    strcpy(m.impl_class_uid, "9.9.9"); /* ignored: we write our own */
    strcpy(m.source_ae, "MODALITY1");
    mt_buf_t out;
    mt_buf_init(&out, 4096);
    assert_int_equal(mt_part10_write_meta(&m, &out), 0);
    tu_bytes_t t;
    memset(t.b, 0, 128);
    t.n = 128;
    tu_raw(&t, "DICM", 4);
    tu_ex(&t, 0x0002, 0x0000, "UL", 4);
    size_t gl_at = t.n;
    tu_u32(&t, 0);
    size_t start = t.n;
    tu_ex(&t, 0x0002, 0x0001, "OB", 2);
    tu_raw(&t, "\0\1", 2);
    tu_ex(&t, 0x0002, 0x0002, "UI", 26);
    tu_raw(&t, "1.2.840.10008.5.1.4.1.1.4\0", 26);
    tu_ex(&t, 0x0002, 0x0003, "UI", 6);
    tu_raw(&t, "1.2.3\0", 6);
    tu_ex(&t, 0x0002, 0x0010, "UI", 18);
    tu_raw(&t, "1.2.840.10008.1.2\0", 18);
    size_t n = strlen(MT_IMPL_CLASS_UID);
    tu_ex(&t, 0x0002, 0x0012, "UI", (uint32_t)(n + (n & 1)));
    tu_raw(&t, MT_IMPL_CLASS_UID "\0", n + (n & 1));
    n = strlen(MT_IMPL_VERSION_NAME);
    tu_ex(&t, 0x0002, 0x0013, "SH", (uint32_t)(n + (n & 1)));
    tu_raw(&t, MT_IMPL_VERSION_NAME " ", n + (n & 1));
    tu_ex(&t, 0x0002, 0x0016, "AE", 10);
    tu_raw(&t, "MODALITY1 ", 10);
    uint32_t gl = (uint32_t)(t.n - start);
    memcpy(t.b + gl_at, &gl, 4);
    assert_int_equal(out.len, t.n);
    assert_memory_equal(out.data, t.b, t.n);
    /* no source AE: no (0002,0016); appended after what the buffer held */
    m.source_ae[0] = '\0';
    assert_int_equal(mt_part10_write_meta(&m, &out), 0);
    assert_int_equal(out.len, t.n + t.n - 18);
    /* no transfer syntax: refused */
    m.transfer_syntax_uid[0] = '\0';
    assert_int_equal(mt_part10_write_meta(&m, &out), MT_EINVAL);
    mt_buf_dispose(&out);
}

static void parse_file(const char *rel, int want_rc, size_t want_min_elems, const char *ts_uid)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", TESTDATA, rel);
    size_t len;
    uint8_t *buf = tu_read(path, &len);
    assert_non_null(buf);
    mt_meta_t m;
    mt_ds_t *ds = NULL;
    mt_diag_t d = {0, NULL};
    int rc = mt_part10_parse_file_buf(buf, len, &m, &ds, &d);
    if (rc != want_rc)
        fail_msg("%s: %s at %llu: %s", rel, mt_err_name(rc), (unsigned long long)d.offset,
                 d.reason ? d.reason : "");
    if (!rc) {
        if (mt_ds_count(ds) < want_min_elems)
            fail_msg("%s: %zu elements", rel, mt_ds_count(ds));
        assert_string_equal(m.transfer_syntax_uid, ts_uid);
        char s[65];
        assert_true(want_min_elems < 20 ||
                    mt_ds_get_string(ds, MT_TAG(0x0008, 0x0016), s, sizeof s) ||
                    mt_ds_get_string(ds, MT_TAG(0x0004, 0x1130), s, sizeof s) ||
                    mt_ds_get(ds, MT_TAG(0x0008, 0x0005)));
    } else {
        assert_null(ds);
        assert_non_null(d.reason);
    }
    mt_ds_free(ds);
    free(buf);
}

static void test_parse_file_buf(void **state)
{
    (void)state;
    if (!tu_have_testdata())
        skip();
    long live = mt_alloc_live();
    parse_file("pydicom/test_files/MR_small.dcm", 0, 40, "1.2.840.10008.1.2.1");
    parse_file("pydicom/test_files/MR_small_bigendian.dcm", 0, 40, "1.2.840.10008.1.2.2");
    parse_file("pydicom/test_files/image_dfl.dcm", 0, 20, "1.2.840.10008.1.2.1.99");
    /* no preamble/meta: the syntax is guessed, meta left empty */
    parse_file("pydicom/test_files/ExplVR_BigEndNoMeta.dcm", 0, 20, "");
    parse_file("pydicom/test_files/ExplVR_LitEndNoMeta.dcm", 0, 20, "");
    parse_file("orthanc-tests/TransferSyntaxes/1.2.840.10008.1.2.dcm", 0, 20, "");
    parse_file("pydicom/test_files/rtstruct.dcm", 0, 20, "");
    /* meta without (0002,0010) */
    parse_file("pydicom/test_files/meta_missing_tsyntax.dcm", 0, 2, "");
    /* a wrong group length */
    parse_file("orthanc-tests/TransferSyntaxes/1.2.840.10008.1.2.4.50.dcm", 0, 20,
               "1.2.840.10008.1.2.4.50");
    /* malformed */
    parse_file("pydicom/test_files/MR_truncated.dcm", MT_EMALFORMED, 0, "");
    parse_file("pydicom/test_files/no_meta.dcm", MT_EMALFORMED, 0, "");
    parse_file("MANIFEST.md", MT_EMALFORMED, 0, "");
    assert_int_equal(mt_alloc_live(), live);
    /* the big endian guess is right: values read back */
    size_t len;
    uint8_t *buf = tu_read(TESTDATA "/pydicom/test_files/ExplVR_BigEndNoMeta.dcm", &len);
    mt_meta_t m;
    mt_ds_t *ds;
    mt_diag_t d;
    assert_int_equal(mt_part10_parse_file_buf(buf, len, &m, &ds, &d), 0);
    char s[65];
    assert_true(mt_ds_get_string(ds, MT_TAG(0x0008, 0x0060), s, sizeof s));
    assert_string_equal(s, "RTPLAN");
    assert_true(mt_ds_get_string(ds, MT_TAG(0x0008, 0x0005), s, sizeof s));
    assert_string_equal(s, "ISO_IR 100");
    mt_ds_free(ds);
    free(buf);
}

static void test_parse_file_buf_unknown_ts(void **state)
{
    (void)state;
    tu_bytes_t t;
    make_meta(&t, true, 0);
    memcpy(t.b + 132 + 12 + 14 + 34 + 14 + 8, "9.9.9.9.9.9.9.9.9.9", 19);
    mt_meta_t m;
    mt_ds_t *ds;
    mt_diag_t d = {0, NULL};
    assert_int_equal(mt_part10_parse_file_buf(t.b, t.n, &m, &ds, &d), MT_EUNSUPPORTED);
    assert_null(ds);
    assert_string_equal(m.transfer_syntax_uid, "9.9.9.9.9.9.9.9.9.9");
    /* truncated meta */
    make_meta(&t, true, 0);
    assert_int_equal(mt_part10_parse_file_buf(t.b, 150, &m, &ds, &d), MT_EMALFORMED);
    /* the offset of a data set error is a file offset */
    make_meta(&t, true, 0);
    t.n -= 3;
    assert_int_equal(mt_part10_parse_file_buf(t.b, t.n, &m, &ds, &d), MT_EMALFORMED);
    assert_int_equal(d.offset, t.n + 3 - 34);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_meta),
        cmocka_unit_test(test_read_meta_testdata),
        cmocka_unit_test(test_write_meta_bytes),
        cmocka_unit_test(test_parse_file_buf),
        cmocka_unit_test(test_parse_file_buf_unknown_ts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
