/* Unit tests for node/tag/extract.c: features from parsed data sets. Hand-encoded Explicit VR
 * Little Endian data sets (classic MR, and Enhanced MR with shared and per-frame functional
 * groups, per-frame values overriding shared ones), and the real CMR files of
 * ../shared/testdata when present. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <sys/stat.h>

#include "dicom/ds.h"
#include "tag/capture.h"
#include "tag/tag.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/err.h"

/* ---- a tiny explicit VR LE encoder for test data sets ---- */
static void put_hdr(mt_buf_t *b, uint16_t g, uint16_t e, const char *vr, uint32_t len)
{
    mt_buf_put_u16le(b, g);
    mt_buf_put_u16le(b, e);
    mt_buf_append(b, vr, 2);
    if (!strcmp(vr, "SQ") || !strcmp(vr, "OB") || !strcmp(vr, "OW") || !strcmp(vr, "UN") ||
        !strcmp(vr, "UT")) {
        mt_buf_put_u16le(b, 0);
        mt_buf_put_u32le(b, len);
    } else {
        mt_buf_put_u16le(b, (uint16_t)len);
    }
}

static void str(mt_buf_t *b, uint16_t g, uint16_t e, const char *vr, const char *v)
{
    size_t n = strlen(v);
    put_hdr(b, g, e, vr, (uint32_t)(n + (n & 1)));
    mt_buf_append(b, v, n);
    if (n & 1)
        mt_buf_put_u8(b, !strcmp(vr, "UI") ? 0 : ' ');
}

static void fd(mt_buf_t *b, uint16_t g, uint16_t e, double v)
{
    put_hdr(b, g, e, "FD", 8);
    mt_buf_append(b, &v, 8); /* the test host is little endian */
}

static void ul(mt_buf_t *b, uint16_t g, uint16_t e, uint32_t v)
{
    put_hdr(b, g, e, "UL", 4);
    mt_buf_put_u32le(b, v);
}

static void us(mt_buf_t *b, uint16_t g, uint16_t e, uint16_t v)
{
    put_hdr(b, g, e, "US", 2);
    mt_buf_put_u16le(b, v);
}

static void seq_start(mt_buf_t *b, uint16_t g, uint16_t e)
{
    put_hdr(b, g, e, "SQ", 0xFFFFFFFFu);
}
static void item_start(mt_buf_t *b)
{
    mt_buf_put_u16le(b, 0xFFFE);
    mt_buf_put_u16le(b, 0xE000);
    mt_buf_put_u32le(b, 0xFFFFFFFFu);
}
static void item_end(mt_buf_t *b)
{
    mt_buf_put_u16le(b, 0xFFFE);
    mt_buf_put_u16le(b, 0xE00D);
    mt_buf_put_u32le(b, 0);
}
static void seq_end(mt_buf_t *b)
{
    mt_buf_put_u16le(b, 0xFFFE);
    mt_buf_put_u16le(b, 0xE0DD);
    mt_buf_put_u32le(b, 0);
}

static mt_ds_t *parse(mt_buf_t *b)
{
    mt_ds_t *ds = NULL;
    mt_diag_t diag = {0, NULL};
    int rc = mt_ds_parse(b->data, b->len, mt_ts_explicit_le, &ds, &diag);
    if (rc)
        print_message("parse: %d at %llu: %s\n", rc, (unsigned long long)diag.offset,
                      diag.reason ? diag.reason : "");
    assert_int_equal(rc, 0);
    return ds;
}

/* The node's path (node/tag/capture.c): the receiving service's reader, as svc/store.c sets it
 * up (values up to max_value whole, Pixel Data streamed), fed in chunks of `chunk` bytes, hands
 * its events and then each chunk to a capture; the features are extracted from what it kept.
 * A reader error is an instance the node refuses (nothing to tag): returned as is. */
static int on_capture_event(void *user, mt_ds_event_t ev, const mt_elem_t *e)
{
    mt_tag_capture_event(user, ev, e);
    return 0;
}

static size_t n_path[2]; /* extractions from the slots, from a reparse */
static int node_path(const uint8_t *buf, size_t len, const mt_ts_t *ts, size_t chunk,
                     size_t max_value, mt_tag_inst_t *out)
{
    mt_tag_capture_t c;
    mt_tag_capture_init(&c, ts, false);
    mt_ds_reader_opts_t o = {.ts = ts, .max_buffered_value = max_value, .cb = on_capture_event,
                             .user = &c, .stream_pixel_data = true};
    mt_ds_reader_t *r = mt_ds_reader_new(&o);
    int rc = 0;
    for (size_t at = 0; rc == 0 && at < len; at += chunk) {
        size_t n = len - at < chunk ? len - at : chunk;
        rc = mt_ds_reader_feed(r, buf + at, n);
        mt_tag_capture_feed(&c, buf + at, n); /* after the reader, as the services do */
    }
    if (rc == 0)
        rc = mt_ds_reader_finish(r);
    mt_ds_reader_free(r);
    if (rc == 0) {
        n_path[c.reparse]++;
        rc = mt_tag_capture_extract(&c, out);
    } else {
        mt_tag_inst_init(out);
        mt_tag_capture_dispose(&c);
    }
    return rc;
}

/* The node's path gives exactly the features of mt_tag_extract over the full tree. */
static bool same_inst(mt_tag_inst_t *a, mt_tag_inst_t *b)
{
    if (a->n_img != b->n_img || (a->n_img && memcmp(a->img, b->img, a->n_img * sizeof *a->img)))
        return false;
    mt_tag_img_t *ia = a->img, *ib = b->img;
    a->img = b->img = NULL;
    bool same = memcmp(a, b, sizeof *a) == 0; /* mt_tag_inst_init zeroes padding too */
    a->img = ia;
    b->img = ib;
    return same;
}

/* Whole (values of up to 64 KiB whole, as svc/store.c) and in 997-byte pieces with values
 * above 256 bytes in chunks: the same features as the full parse,
 * and an error exactly when the full parse fails (or, without SeriesInstanceUID, the same
 * MT_EINVAL). Returns the full path's result. */
static int full_vs_capture(const uint8_t *buf, size_t len, const mt_ts_t *ts)
{
    mt_tag_inst_t full;
    mt_ds_t *ds = NULL;
    mt_diag_t diag = {0, NULL};
    int rc = mt_ds_parse(buf, len, ts, &ds, &diag);
    if (rc == 0)
        rc = mt_tag_extract(ds, ts->big_endian, &full);
    else
        mt_tag_inst_init(&full);
    mt_ds_free(ds);
    static const size_t ways[][2] = {{SIZE_MAX, 64u << 10}, {997, 256}};
    for (size_t w = 0; w < 2; w++) {
        mt_tag_inst_t cap;
        int rc2 = node_path(buf, len, ts, ways[w][0], ways[w][1], &cap);
        if (rc == MT_EINVAL || rc == 0)
            assert_int_equal(rc, rc2);
        else
            assert_int_not_equal(rc2, 0);
        if (rc == 0)
            assert_true(same_inst(&full, &cap));
        mt_tag_inst_dispose(&cap);
    }
    mt_tag_inst_dispose(&full);
    return rc;
}

static void test_classic_siemens_flow(void **state)
{
    (void)state;
    mt_buf_t b;
    mt_buf_init(&b, 1 << 20);
    /* elements in ascending tag order */
    str(&b, 0x0008, 0x0008, "CS", "DERIVED\\PRIMARY\\P\\RETRO\\DIS2D");
    str(&b, 0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.4");
    str(&b, 0x0008, 0x0031, "TM", "101500");
    str(&b, 0x0008, 0x0032, "TM", "101512.25");
    str(&b, 0x0008, 0x0060, "CS", "MR");
    str(&b, 0x0008, 0x0070, "LO", "SIEMENS");
    str(&b, 0x0008, 0x1030, "LO", "Cardiac^Stress Perfusion");
    str(&b, 0x0008, 0x103E, "LO", "flow_250_tp_AoV_bh_ePAT@c_P");
    str(&b, 0x0018, 0x0020, "CS", "GR");
    str(&b, 0x0018, 0x0021, "CS", "SK\\SP\\OSP");
    str(&b, 0x0018, 0x0022, "CS", "CG");
    str(&b, 0x0018, 0x0023, "CS", "2D");
    str(&b, 0x0018, 0x0024, "SH", "*fl2d1_v250in");
    str(&b, 0x0018, 0x0050, "DS", "6");
    str(&b, 0x0018, 0x0080, "DS", "40.5");
    str(&b, 0x0018, 0x0081, "DS", "2.46");
    str(&b, 0x0018, 0x0087, "DS", "1.5");
    str(&b, 0x0018, 0x1030, "LO", "flow_250_tp_AoV_bh_ePAT@c");
    str(&b, 0x0018, 0x1060, "DS", "37.5");
    str(&b, 0x0018, 0x1062, "IS", "950");
    str(&b, 0x0018, 0x1090, "IS", "30");
    str(&b, 0x0020, 0x000D, "UI", "1.2.3.4");
    str(&b, 0x0020, 0x000E, "UI", "1.2.3.4.5");
    str(&b, 0x0020, 0x0011, "IS", "17");
    str(&b, 0x0020, 0x0032, "DS", "-10.5\\20\\30.25");
    str(&b, 0x0020, 0x0037, "DS", "0.8\\0.6\\0\\0\\0\\-1");
    str(&b, 0x0020, 0x0052, "UI", "1.2.3.9");
    us(&b, 0x0028, 0x0010, 192);
    str(&b, 0x0028, 0x0030, "DS", "1.8\\1.8");
    mt_ds_t *ds = parse(&b);
    mt_tag_inst_t in;
    assert_int_equal(mt_tag_extract(ds, false, &in), 0);
    assert_string_equal(in.series_uid, "1.2.3.4.5");
    assert_string_equal(in.study_uid, "1.2.3.4");
    assert_int_equal(in.series_number, 17);
    assert_int_equal(in.vendor, MT_VENDOR_SIEMENS);
    assert_true(in.seq_flags & MT_SQ_VENC);
    assert_true(fabsf(in.venc - 250) < 1e-3f);
    assert_true(in.itype & MT_IT_P);
    assert_true(in.itype & MT_IT_DERIVED);
    assert_int_equal(in.scan_seq, MT_SS_GR);
    assert_true(in.seq_var & MT_SV_SP);
    assert_true(in.scan_opt & MT_SO_CG);
    assert_int_equal(in.cardiac_n, 30);
    assert_true(fabsf(in.fov - 192 * 1.8f) < 1e-2f);
    assert_true(mt_tag_words_has(&in.desc, MT_W_FLOW));
    assert_true(mt_tag_words_has(&in.desc, MT_W_V_AOV));
    assert_true(mt_tag_words_has(&in.desc, MT_W_P_SINGLE));
    assert_true(mt_tag_words_has(&in.study_desc, MT_W_STRESS));
    assert_int_equal(in.n_img, 1);
    assert_true(fabsf(in.img[0].tt - 37.5f) < 1e-4f);
    assert_true(fabsf(in.img[0].acq - (10 * 3600 + 15 * 60 + 12.25f)) < 1e-2f);
    assert_true(fabsf(in.img[0].ipp[2] - 30.25f) < 1e-4f);
    assert_true(fabsf(in.img[0].iop[5] + 1) < 1e-6f);
    assert_true(in.protocol_hash != 0 && in.for_hash != 0);
    mt_tag_inst_dispose(&in);
    mt_ds_free(ds);
    assert_int_equal(full_vs_capture(b.data, b.len, mt_ts_explicit_le), 0);
    mt_buf_dispose(&b);
}

/* Enhanced MR: 2 stacks x 2 temporal positions; shared groups carry orientation, TR and a
 * trigger delay that the per-frame groups override. */
static void test_enhanced_per_frame_groups(void **state)
{
    (void)state;
    mt_buf_t b;
    mt_buf_init(&b, 1 << 20);
    str(&b, 0x0008, 0x0008, "CS", "ORIGINAL\\PRIMARY\\PERFUSION\\NONE");
    str(&b, 0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.4.1");
    str(&b, 0x0008, 0x0060, "CS", "MR");
    str(&b, 0x0008, 0x0070, "LO", "Philips Medical Systems");
    str(&b, 0x0008, 0x103E, "LO", "");
    str(&b, 0x0018, 0x0023, "CS", "2D");
    str(&b, 0x0018, 0x9005, "SH", "TFE");
    str(&b, 0x0018, 0x9008, "CS", "GRADIENT");
    str(&b, 0x0018, 0x9017, "CS", "NONE");
    str(&b, 0x0018, 0x9024, "CS", "YES");
    str(&b, 0x0020, 0x000D, "UI", "1.2.3.4");
    str(&b, 0x0020, 0x000E, "UI", "1.2.3.4.6");
    str(&b, 0x0028, 0x0008, "IS", "4");
    /* shared functional groups */
    seq_start(&b, 0x5200, 0x9229);
    item_start(&b);
    seq_start(&b, 0x0018, 0x9112); /* MR timing */
    item_start(&b);
    str(&b, 0x0018, 0x0080, "DS", "2.8");
    str(&b, 0x0018, 0x1314, "DS", "15");
    item_end(&b);
    seq_end(&b);
    seq_start(&b, 0x0018, 0x9118); /* cardiac sync: shared trigger delay 100 */
    item_start(&b);
    fd(&b, 0x0020, 0x9153, 100.0);
    item_end(&b);
    seq_end(&b);
    seq_start(&b, 0x0020, 0x9116); /* plane orientation */
    item_start(&b);
    str(&b, 0x0020, 0x0037, "DS", "0.7071\\0.7071\\0\\0\\0\\-1");
    item_end(&b);
    seq_end(&b);
    seq_start(&b, 0x0028, 0x9110); /* pixel measures */
    item_start(&b);
    str(&b, 0x0018, 0x0050, "DS", "8");
    str(&b, 0x0028, 0x0030, "DS", "2\\2");
    item_end(&b);
    seq_end(&b);
    item_end(&b);
    seq_end(&b);
    /* per-frame functional groups */
    seq_start(&b, 0x5200, 0x9230);
    for (int f = 0; f < 4; f++) {
        int stack = f / 2, tpos = f % 2 + 1;
        item_start(&b);
        seq_start(&b, 0x0018, 0x9114); /* MR echo */
        item_start(&b);
        fd(&b, 0x0018, 0x9082, 1.2 + f);
        item_end(&b);
        seq_end(&b);
        if (f == 3) { /* per-frame override of the shared trigger delay */
            seq_start(&b, 0x0018, 0x9118);
            item_start(&b);
            fd(&b, 0x0020, 0x9153, 250.0);
            item_end(&b);
            seq_end(&b);
        }
        seq_start(&b, 0x0018, 0x9115); /* MR modifier */
        item_start(&b);
        str(&b, 0x0018, 0x9009, "CS", f == 2 ? "YES" : "NO");
        if (f == 2)
            fd(&b, 0x0018, 0x9079, 280.0);
        item_end(&b);
        seq_end(&b);
        seq_start(&b, 0x0018, 0x9226); /* frame type */
        item_start(&b);
        str(&b, 0x0008, 0x9007, "CS", f == 1 ? "DERIVED\\PRIMARY\\T1_MAP\\NONE" : "ORIGINAL\\PRIMARY\\PERFUSION\\NONE");
        item_end(&b);
        seq_end(&b);
        seq_start(&b, 0x0020, 0x9111); /* frame content */
        item_start(&b);
        str(&b, 0x0018, 0x9074, "DT", f < 2 ? "20240101101500.5" : "20240101101501.4");
        ul(&b, 0x0020, 0x9128, (uint32_t)tpos);
        char sid[4];
        snprintf(sid, sizeof sid, "%d", stack + 1);
        str(&b, 0x0020, 0x9056, "SH", sid);
        item_end(&b);
        seq_end(&b);
        seq_start(&b, 0x0020, 0x9113); /* plane position */
        item_start(&b);
        str(&b, 0x0020, 0x0032, "DS", stack ? "0\\0\\10" : "0\\0\\0");
        item_end(&b);
        seq_end(&b);
        if (f == 0) { /* per-frame orientation override on the first frame */
            seq_start(&b, 0x0020, 0x9116);
            item_start(&b);
            str(&b, 0x0020, 0x0037, "DS", "1\\0\\0\\0\\1\\0");
            item_end(&b);
            seq_end(&b);
        }
        item_end(&b);
    }
    seq_end(&b);
    mt_ds_t *ds = parse(&b);
    mt_tag_inst_t in;
    assert_int_equal(mt_tag_extract(ds, false, &in), 0);
    assert_true(in.enhanced);
    assert_int_equal(in.vendor, MT_VENDOR_PHILIPS);
    assert_false(in.has_desc);
    assert_int_equal(in.n_img, 4);
    assert_true(fabsf(in.tr - 2.8f) < 1e-4f);
    assert_true(fabsf(in.flip - 15) < 1e-4f);
    assert_true(fabsf(in.slice_th - 8) < 1e-4f);
    assert_true(in.enh & MT_EN_SATREC);
    assert_true(in.enh & MT_EN_GRADIENT);
    assert_true(in.seq_var & MT_SV_MP); /* saturation recovery stands in for SequenceVariant */
    assert_true(in.scan_seq & MT_SS_GR);
    assert_true(in.seq_flags & MT_SQ_TFL);
    /* shared value, per-frame override */
    assert_true(fabsf(in.img[0].tt - 100) < 1e-4f);
    assert_true(fabsf(in.img[3].tt - 250) < 1e-4f);
    assert_true(fabsf(in.img[0].iop[4] - 1) < 1e-6f);      /* overridden */
    assert_true(fabsf(in.img[1].iop[0] - 0.7071f) < 1e-4f); /* shared */
    assert_true(fabsf(in.img[2].te - 3.2f) < 1e-4f);
    assert_true(fabsf(in.img[2].ti - 280) < 1e-4f);
    assert_true(isnan(in.img[1].ti));
    assert_int_equal(in.img[1].tpos, 2);
    assert_int_equal(in.img[3].stack, 2);
    assert_true(fabsf(in.img[3].ipp[2] - 10) < 1e-4f);
    assert_true(fabsf(in.img[2].acq - (10 * 3600 + 15 * 60 + 1.4f)) < 1e-2f);
    assert_true(in.img[1].itype & MT_IT_T1MAP);
    assert_false(in.img[0].itype & MT_IT_T1MAP);
    assert_true(in.itype & MT_IT_PERFUSION);
    assert_true(in.enh & MT_EN_IR); /* one frame's modifier says IR */
    /* the series statistics see per-frame planes */
    mt_tag_series_t s;
    mt_tag_series_init(&s);
    mt_tag_series_add(&s, &in);
    mt_tag_series_finish(&s);
    assert_int_equal(s.n_img, 4);
    assert_int_equal(s.norients, 2);
    mt_tag_series_dispose(&s);
    mt_tag_inst_dispose(&in);
    mt_ds_free(ds);
    assert_int_equal(full_vs_capture(b.data, b.len, mt_ts_explicit_le), 0);
    mt_buf_dispose(&b);
}

static void test_no_series_uid(void **state)
{
    (void)state;
    mt_buf_t b;
    mt_buf_init(&b, 1 << 16);
    str(&b, 0x0008, 0x0060, "CS", "MR");
    mt_ds_t *ds = parse(&b);
    mt_tag_inst_t in;
    assert_int_equal(mt_tag_extract(ds, false, &in), MT_EINVAL);
    mt_tag_inst_dispose(&in);
    mt_ds_free(ds);
    assert_int_equal(full_vs_capture(b.data, b.len, mt_ts_explicit_le), MT_EINVAL);
    mt_buf_dispose(&b);
}

/* ---- real files ---- */
static mt_ds_t *load(const char *rel, mt_meta_t *meta)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/../shared/testdata/%s", MT_SOURCE_DIR, rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    mt_buf_t b;
    mt_buf_init(&b, (size_t)1 << 28);
    uint8_t chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        mt_buf_append(&b, chunk, n);
    fclose(f);
    mt_ds_t *ds = NULL;
    mt_diag_t diag = {0, NULL};
    int rc = mt_part10_parse_file_buf(b.data, b.len, meta, &ds, &diag);
    mt_buf_dispose(&b);
    if (rc) {
        mt_ds_free(ds);
        return NULL;
    }
    return ds;
}

/* tag one file as a one-series exam */
static bool tag_files(const char *const *rel, size_t k, mt_tag_series_t *s)
{
    mt_tag_series_init(s);
    for (size_t i = 0; i < k; i++) {
        mt_meta_t meta;
        mt_ds_t *ds = load(rel[i], &meta);
        if (!ds) {
            print_message("skipped: %s not found (shared testdata absent)\n", rel[i]);
            mt_tag_series_dispose(s);
            return false;
        }
        mt_tag_inst_t in;
        assert_int_equal(mt_tag_extract(ds, false, &in), 0);
        mt_tag_series_add(s, &in);
        mt_tag_inst_dispose(&in);
        mt_ds_free(ds);
    }
    mt_tag_series_finish(s);
    mt_tag_series_t *arr[1] = {s};
    mt_tag_study_t st = {arr, 1, false, false, {0, 0, 0}, false, -1, 0};
    mt_tag_study_run(&st);
    print_message("%s -> %s view=%s conf=%.2f [%s]\n", rel[0], s->res.tag,
                  mt_tag_view_name(s->res.view), s->res.confidence, s->res.evidence);
    return true;
}

static void test_real_cmr_files(void **state)
{
    (void)state;
    mt_tag_series_t s;
    static const char *cap[] = {
        "cmr/CAPServer2.0/CAP_RCH-00051-01_MR_2-chamber_FIESTA_CINE__hrt_raw_20160712151833885_2.dcm"};
    if (!tag_files(cap, 1, &s))
        skip();
    assert_string_equal(s.res.tag, "cine.2ch");
    assert_int_equal(s.h.vendor, MT_VENDOR_GE);
    mt_tag_series_dispose(&s);

    static const char *spy[] = {"cmr/spydcmtk/IM-00041-00001.dcm", "cmr/spydcmtk/IM-00041-00002.dcm"};
    if (tag_files(spy, 2, &s)) {
        assert_string_equal(s.res.tag, "cine.other"); /* RV long axis */
        assert_int_equal(s.n_tt, 2);
        mt_tag_series_dispose(&s);
    }
    static const char *leeds[] = {
        "dbdicom/Leeds_iBEAt/4128015_1.MR.0010.0001.2019.08.06.10.54.57.970054.36996940.IMA"};
    if (tag_files(leeds, 1, &s)) {
        assert_string_equal(s.res.tag, "flow");
        assert_true(fabsf(s.h.venc - 120) < 1e-3f);
        mt_tag_series_dispose(&s);
    }
    static const char *molli[] = {"dbdicom/MOLLI_enhanced/IM_0001"};
    if (tag_files(molli, 1, &s)) {
        assert_string_equal(s.res.tag, "t1map.native");
        assert_true(s.h.enhanced);
        assert_int_equal(s.n_img, 10);
        mt_tag_series_dispose(&s);
    }
    static const char *t2s[] = {"orthanc-tests/Issue22-NoPixelData.dcm"};
    if (tag_files(t2s, 1, &s)) {
        assert_string_equal(s.res.tag, "t2star");
        assert_true(s.n_te_pos >= 6);
        mt_tag_series_dispose(&s);
    }
    static const char *loc[] = {"dbdicom/MULTIFRAME/IM_0010"};
    if (tag_files(loc, 1, &s)) {
        assert_string_equal(s.res.tag, "localizer");
        mt_tag_series_dispose(&s);
    }
    static const char *wg04[] = {"dicom-test-files/WG04/REF/MR1_UNC"};
    if (tag_files(wg04, 1, &s)) {
        assert_string_equal(s.res.tag, "blackblood"); /* spin echo; ImageType DERIVED\SECONDARY */
        mt_tag_series_dispose(&s);
    }
}

/* Private blocks where the filter keeps only the creators and the one element read, with a
 * long private value, a private sequence and an unrelated nested sequence around them. */
static void test_capture_private_and_skipped(void **state)
{
    (void)state;
    mt_buf_t b;
    mt_buf_init(&b, 1 << 20);
    str(&b, 0x0008, 0x0008, "CS", "ORIGINAL\\PRIMARY\\M\\ND");
    str(&b, 0x0008, 0x0070, "LO", "GE MEDICAL SYSTEMS");
    seq_start(&b, 0x0008, 0x1140); /* ReferencedImageSequence: not read */
    item_start(&b);
    str(&b, 0x0008, 0x1150, "UI", "1.2.840.10008.5.1.4.1.1.4");
    str(&b, 0x0020, 0x0037, "DS", "9\\9\\9\\9\\9\\9"); /* must not reach the top level */
    item_end(&b);
    seq_end(&b);
    str(&b, 0x0018, 0x0024, "SH", "");
    str(&b, 0x0019, 0x0010, "LO", "GEMS_ACQU_01");
    str(&b, 0x0019, 0x0011, "LO", "SOMETHING ELSE");
    str(&b, 0x0019, 0x109C, "LO", "fiestacine");
    char big[4000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    str(&b, 0x0019, 0x1120, "LT", big);
    seq_start(&b, 0x0019, 0x1130);
    item_start(&b);
    str(&b, 0x0019, 0x109C, "LO", "tse");
    item_end(&b);
    seq_end(&b);
    str(&b, 0x0020, 0x000D, "UI", "1.2.3");
    str(&b, 0x0020, 0x000E, "UI", "1.2.3.4");
    str(&b, 0x0020, 0x0037, "DS", "1\\0\\0\\0\\1\\0");
    str(&b, 0x2001, 0x0010, "LO", "Philips Imaging DD 001");
    str(&b, 0x2001, 0x1020, "LO", "TFE");
    mt_tag_inst_t in;
    assert_int_equal(node_path(b.data, b.len, mt_ts_explicit_le, SIZE_MAX, 64u << 10, &in), 0);
    assert_true(in.seq_flags & MT_SQ_TFI);
    assert_true(in.seq_flags & MT_SQ_TFL);
    assert_false(in.seq_flags & MT_SQ_TSE);
    assert_true(fabsf(in.img[0].iop[0] - 1) < 1e-6f);
    mt_tag_inst_dispose(&in);
    assert_int_equal(full_vs_capture(b.data, b.len, mt_ts_explicit_le), 0);
    /* truncated: the same error both ways */
    assert_int_not_equal(full_vs_capture(b.data, b.len - 3, mt_ts_explicit_le), 0);
    mt_buf_dispose(&b);
}

/* Every Part 10 file of ../shared/testdata (all modalities, syntaxes, private blocks, nesting,
 * malformed ones) re-read as the node does: the same features, the same errors. */
static size_t n_compared;
static void compare_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            compare_tree(path);
            continue;
        }
        if (!S_ISREG(st.st_mode) || st.st_size > (32 << 20))
            continue;
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        uint8_t *buf = mt_malloc((size_t)st.st_size + 1);
        size_t len = fread(buf, 1, (size_t)st.st_size, f);
        fclose(f);
        mt_meta_t meta;
        size_t off;
        mt_diag_t diag;
        const mt_ts_t *ts = NULL;
        if (mt_part10_read_meta(buf, len, &meta, &off, &diag) == 0)
            ts = mt_ts_find(meta.transfer_syntax_uid);
        if (ts && !ts->deflated) { /* not captured (capture.h) */
            full_vs_capture(buf + off, len - off, ts);
            n_compared++;
        }
        mt_free(buf);
    }
    closedir(d);
}

static void test_capture_real_files(void **state)
{
    (void)state;
    char root[1024];
    snprintf(root, sizeof root, "%s/../shared/testdata", MT_SOURCE_DIR);
    compare_tree(root);
    print_message("%zu files compared (node path: %zu from the slots, %zu reparsed)\n",
                  n_compared, n_path[0], n_path[1]);
    if (!n_compared)
        skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classic_siemens_flow),
        cmocka_unit_test(test_enhanced_per_frame_groups),
        cmocka_unit_test(test_no_series_uid),
        cmocka_unit_test(test_real_cmr_files),
        cmocka_unit_test(test_capture_private_and_skipped),
        cmocka_unit_test(test_capture_real_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
