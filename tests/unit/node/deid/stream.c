/*
 * tests/unit/node/deid/stream.c - node/deid/stream.c: the streamed output equals what the
 * whole-tree path gives (parse, de-identify, drop the tail, encode) for real files in every
 * kind of transfer syntax (explicit/implicit LE, big endian, encapsulated, deflated), fed in
 * chunks of 1 byte up to the whole data set; Pixel Data passes through byte for byte; Burned In
 * Annotation YES emits nothing; a header over the limit fails; the File Meta rewrite maps the
 * SOP Instance UID as the engine does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

#include <cmocka.h>

#include "deid/load.h"
#include "deid/stream.h"
#include "dicom/ds.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/err.h"

#ifndef MT_SOURCE_DIR
#define MT_SOURCE_DIR "."
#endif

static const uint8_t KEY[32] = "0123456789abcdef0123456789abcde";

static mt_deid_profile_t *profile(const char *name)
{
    char err[256], dir[512];
    snprintf(dir, sizeof(dir), "%s/deid-profiles", MT_SOURCE_DIR);
    mt_deid_profile_t *p = NULL;
    if (mt_deid_load_profile(name, dir, &p, err, sizeof(err)))
        fail_msg("%s", err);
    return p;
}

static int to_buf(void *user, const uint8_t *p, size_t n)
{
    return mt_buf_append(user, p, n) ? MT_ENOMEM : 0;
}

/* The reference: the whole-tree path. */
static void reference(const mt_deid_profile_t *p, const uint8_t *ds_bytes, size_t n,
                      const mt_ts_t *ts, mt_buf_t *out)
{
    mt_ds_t *ds = NULL;
    mt_diag_t diag;
    assert_int_equal(mt_ds_parse(ds_bytes, n, ts, &ds, &diag), 0);
    assert_int_equal(mt_deid_apply(p, KEY, sizeof(KEY), ds, NULL), 0);
    for (size_t i = mt_ds_count(ds); i-- > 0;)
        if (mt_ds_at(ds, i)->tag > MT_TAG_PIXEL_DATA && mt_ds_get(ds, MT_TAG_PIXEL_DATA))
            mt_ds_remove(ds, mt_ds_at(ds, i)->tag);
    assert_int_equal(mt_ds_encode(ds, mt_deid_stream_out_ts(ts), out), 0);
    mt_ds_free(ds);
}

static void check_file(const mt_deid_profile_t *p, const char *rel)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/../shared/testdata/%s", MT_SOURCE_DIR, rel);
    uint8_t *buf;
    size_t len;
    if (mt_deid_read_file(path, 64 << 20, &buf, &len)) {
        print_message("skipped: %s absent\n", path);
        return;
    }
    mt_meta_t meta;
    size_t off;
    mt_diag_t diag;
    assert_int_equal(mt_part10_read_meta(buf, len, &meta, &off, &diag), 0);
    const mt_ts_t *ts = mt_ts_find(meta.transfer_syntax_uid);
    assert_non_null(ts);
    mt_buf_t want;
    mt_buf_init(&want, 1 << 30);
    reference(p, buf + off, len - off, ts, &want);
    static const size_t chunks[] = {1, 7, 13, 4096, 65536, SIZE_MAX};
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        mt_buf_t got;
        mt_buf_init(&got, 1 << 30);
        mt_deid_stream_t *s = mt_deid_stream_new(p, KEY, sizeof(KEY), ts, 0, to_buf, &got);
        assert_non_null(s);
        for (size_t i = off; i < len;) {
            size_t k = len - i < chunks[c] ? len - i : chunks[c];
            assert_true(mt_deid_stream_feed(s, buf + i, k) >= 0);
            i += k;
        }
        assert_true(mt_deid_stream_finish(s) >= 0);
        assert_non_null(mt_deid_stream_header(s));
        if (!ts->deflated && mt_ds_get(mt_deid_stream_header(s), MT_TAG_PIXEL_DATA))
            fail_msg("%s, chunks of %zu: Pixel Data went through the header", rel, chunks[c]);
        if (got.len != want.len || memcmp(got.data, want.data, got.len) != 0)
            fail_msg("%s, chunks of %zu: streamed %zu bytes, whole-tree %zu", rel, chunks[c],
                     got.len, want.len);
        mt_deid_stream_free(s);
        mt_buf_dispose(&got);
    }
    mt_buf_dispose(&want);
    mt_free(buf);
}

static void test_matches_whole_tree(void **state)
{
    (void)state;
    mt_deid_profile_t *p = profile("cmr-registry");
    static const char *const files[] = {
        "pydicom/test_files/MR_small.dcm",           /* explicit LE, native */
        "pydicom/test_files/MR_small_implicit.dcm",  /* implicit LE */
        "pydicom/test_files/MR_small_bigendian.dcm", /* explicit BE */
        "pydicom/test_files/JPEG2000.dcm",           /* encapsulated */
        "pydicom/test_files/SC_rgb_jpeg_dcmtk.dcm",  /* encapsulated, JPEG */
        "pydicom/test_files/image_dfl.dcm",          /* deflated: buffered whole */
        "pydicom/test_files/CT_small.dcm",           /* GE private groups */
        "pydicom/test_files/test-SR.dcm",            /* no Pixel Data, nested sequences */
        "pydicom-data/MR-SIEMENS-DICOM-WithOverlays.dcm",
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        check_file(p, files[i]);
    mt_deid_profile_free(p);
}

/* A small instance with a native Pixel Data and a tail after it. */
static void make(mt_buf_t *b, const char *burned, size_t npix)
{
    mt_ds_t *ds = mt_ds_new();
    assert_int_equal(
        mt_ds_set_string(ds, MT_TAG(0x0008, 0x0016), MT_VR('U', 'I'), "1.2.840.10008.5.1.4.1.1.4"),
        0);
    assert_int_equal(mt_ds_set_string(ds, MT_TAG(0x0008, 0x0018), MT_VR('U', 'I'), "1.2.3.9"), 0);
    assert_int_equal(mt_ds_set_string(ds, MT_TAG(0x0010, 0x0010), MT_VR('P', 'N'), "Doe^Jane"), 0);
    assert_int_equal(mt_ds_set_string(ds, MT_TAG(0x0010, 0x0020), MT_VR('L', 'O'), "MRN-4711"), 0);
    if (burned)
        assert_int_equal(mt_ds_set_string(ds, MT_TAG(0x0028, 0x0301), MT_VR('C', 'S'), burned), 0);
    uint8_t *pix = mt_malloc(npix);
    for (size_t i = 0; i < npix; i++)
        pix[i] = (uint8_t)(i * 7);
    assert_int_equal(mt_ds_set(ds, MT_TAG_PIXEL_DATA, MT_VR('O', 'W'), pix, (uint32_t)npix), 0);
    mt_free(pix);
    assert_int_equal(mt_ds_set(ds, MT_TAG(0x7FE1, 0x0010), MT_VR('L', 'O'), "VENDOR", 6), 0);
    assert_int_equal(mt_ds_set(ds, MT_TAG(0x7FE1, 0x1001), MT_VR('L', 'O'), "Doe^Jane", 8), 0);
    assert_int_equal(mt_ds_set(ds, MT_TAG(0xFFFC, 0xFFFC), MT_VR('O', 'B'), "MRN-4711", 8), 0);
    assert_int_equal(mt_ds_encode(ds, mt_ts_explicit_le, b), 0);
    mt_ds_free(ds);
}

static void test_tail_dropped_pixels_kept(void **state)
{
    (void)state;
    mt_deid_profile_t *p = profile("basic");
    mt_buf_t in, got;
    mt_buf_init(&in, 1 << 24);
    mt_buf_init(&got, 1 << 24);
    make(&in, "NO", 300000);
    mt_deid_stream_t *s =
        mt_deid_stream_new(p, KEY, sizeof(KEY), mt_ts_explicit_le, 0, to_buf, &got);
    for (size_t i = 0; i < in.len; i += 1000)
        assert_true(mt_deid_stream_feed(s, in.data + i, in.len - i < 1000 ? in.len - i : 1000) >=
                    0);
    assert_true(mt_deid_stream_finish(s) >= 0);
    assert_null(memmem(got.data, got.len, "Doe", 3));
    assert_null(memmem(got.data, got.len, "MRN-4711", 8));
    assert_null(memmem(got.data, got.len, "VENDOR", 6));
    mt_ds_t *ds = NULL;
    mt_diag_t diag;
    assert_int_equal(mt_ds_parse(got.data, got.len, mt_ts_explicit_le, &ds, &diag), 0);
    mt_ds_elem_t *px = mt_ds_get(ds, MT_TAG_PIXEL_DATA);
    assert_non_null(px);
    assert_int_equal(px->len, 300000);
    for (size_t i = 0; i < 300000; i++)
        if (px->value[i] != (uint8_t)(i * 7))
            fail_msg("pixel %zu differs", i);
    assert_null(mt_ds_get(ds, MT_TAG(0xFFFC, 0xFFFC)));
    char v[80];
    assert_true(mt_ds_get_string(ds, MT_TAG(0x0012, 0x0062), v, sizeof(v)));
    mt_ds_free(ds);
    mt_deid_stream_free(s);

    /* Burned In Annotation YES: MT_EREJECTED, nothing emitted (the header never went out). */
    mt_buf_reset(&in);
    mt_buf_reset(&got);
    make(&in, "YES", 300000);
    s = mt_deid_stream_new(p, KEY, sizeof(KEY), mt_ts_explicit_le, 0, to_buf, &got);
    int rc = 0;
    for (size_t i = 0; i < in.len && rc >= 0; i += 4096)
        rc = mt_deid_stream_feed(s, in.data + i, in.len - i < 4096 ? in.len - i : 4096);
    assert_int_equal(rc, MT_EREJECTED);
    assert_int_equal(mt_deid_stream_finish(s), MT_EREJECTED);
    assert_int_equal(got.len, 0);
    assert_false(mt_deid_stream_quarantined(s));
    mt_deid_stream_free(s);

    /* The same with burned-in-annotation: quarantine: de-identified and emitted as usual,
     * flagged quarantined (the caller keeps it out of the store); no identifying value out. */
    p->burned_in = MT_DEID_BURNED_IN_QUARANTINE;
    s = mt_deid_stream_new(p, KEY, sizeof(KEY), mt_ts_explicit_le, 0, to_buf, &got);
    rc = 0;
    for (size_t i = 0; i < in.len && rc >= 0; i += 4096)
        rc = mt_deid_stream_feed(s, in.data + i, in.len - i < 4096 ? in.len - i : 4096);
    assert_true(rc >= 0);
    assert_true(mt_deid_stream_finish(s) >= 0);
    assert_true(mt_deid_stream_quarantined(s));
    assert_true(got.len > 300000);
    assert_null(memmem(got.data, got.len, "Doe^Jane", 8));
    assert_null(memmem(got.data, got.len, "MRN-4711", 8));
    assert_null(memmem(got.data, got.len, "1.2.3.9", 8)); /* the UID (with its NUL pad) */
    {
        char v[65];
        const mt_ds_t *h = mt_deid_stream_header(s);
        assert_non_null(h);
        assert_true(mt_ds_get_string(h, MT_TAG(0x0012, 0x0062), v, sizeof(v)));
        assert_string_equal(v, "YES");
        assert_true(mt_ds_get_string(h, MT_TAG(0x0028, 0x0301), v, sizeof(v)));
        assert_string_equal(v, "YES");
    }
    mt_deid_stream_free(s);
    /* and an instance without burned-in annotation is not flagged */
    mt_buf_reset(&in);
    mt_buf_reset(&got);
    make(&in, "NO", 1000);
    s = mt_deid_stream_new(p, KEY, sizeof(KEY), mt_ts_explicit_le, 0, to_buf, &got);
    assert_true(mt_deid_stream_feed(s, in.data, in.len) >= 0);
    assert_true(mt_deid_stream_finish(s) >= 0);
    assert_false(mt_deid_stream_quarantined(s));
    mt_deid_stream_free(s);
    p->burned_in = MT_DEID_BURNED_IN_REJECT;
    mt_buf_reset(&got);

    /* A header larger than the limit: MT_ETOOBIG, nothing emitted. */
    mt_buf_reset(&in);
    make(&in, NULL, 16);
    s = mt_deid_stream_new(p, KEY, sizeof(KEY), mt_ts_explicit_le, 64, to_buf, &got);
    rc = mt_deid_stream_feed(s, in.data, in.len);
    assert_int_equal(rc, MT_ETOOBIG);
    assert_int_equal(got.len, 0);
    mt_deid_stream_free(s);

    mt_buf_dispose(&in);
    mt_buf_dispose(&got);
    mt_deid_profile_free(p);
}

static void test_meta(void **state)
{
    (void)state;
    mt_deid_profile_t *p = profile("cmr-registry");
    mt_meta_t m;
    memset(&m, 0, sizeof(m));
    snprintf(m.sop_instance_uid, sizeof(m.sop_instance_uid), "1.2.3.9");
    snprintf(m.transfer_syntax_uid, sizeof(m.transfer_syntax_uid), "1.2.840.10008.1.2.1.99");
    snprintf(m.source_ae, sizeof(m.source_ae), "HOSPITAL_MR1");
    assert_int_equal(mt_deid_stream_meta(p, KEY, sizeof(KEY), &m), 0);
    char want[80];
    assert_true(mt_deid_map_uids(KEY, sizeof(KEY), "1.2.3.9", 7, want, sizeof(want)) > 0);
    assert_string_equal(m.sop_instance_uid, want);
    assert_string_equal(m.transfer_syntax_uid, "1.2.840.10008.1.2.1"); /* deflated -> explicit */
    assert_string_equal(m.source_ae, "");
    mt_deid_profile_free(p);

    /* Retain UIDs: the File Meta keeps the UID, as the engine keeps (0008,0018). */
    char tmpdir[] = "/tmp/mt-test-deid-meta-XXXXXX", path[600];
    assert_non_null(mkdtemp(tmpdir)); /* its own directory: `base: basic` is looked up beside */
    snprintf(path, sizeof(path), "%s/keep-uids.yaml", tmpdir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    static const char yaml[] = "name: keep-uids\nbase: basic\noptions: [retain-uids]\n";
    assert_int_equal(write(fd, yaml, sizeof(yaml) - 1), (ssize_t)(sizeof(yaml) - 1));
    close(fd);
    char err[256], dir[512];
    snprintf(dir, sizeof(dir), "%s/deid-profiles", MT_SOURCE_DIR);
    p = NULL;
    int rc = mt_deid_load_profile(path, dir, &p, err, sizeof(err));
    unlink(path);
    rmdir(tmpdir);
    if (rc)
        fail_msg("%s", err);
    snprintf(m.sop_instance_uid, sizeof(m.sop_instance_uid), "1.2.3.9");
    assert_int_equal(mt_deid_stream_meta(p, KEY, sizeof(KEY), &m), 0);
    assert_string_equal(m.sop_instance_uid, "1.2.3.9");
    mt_deid_profile_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_whole_tree),
        cmocka_unit_test(test_tail_dropped_pixels_kept),
        cmocka_unit_test(test_meta),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
