/* Unit tests for node/tag/capture.c: the header bytes stop at Pixel Data whatever the
 * chunking; the slots locate the elements the extractor reads (a classic header needs no
 * second parse, a sequence the extractor reads or a repeated tag makes it reparse); an off,
 * moved-from or stopped capture, and a header above the limit, give nothing; the cursor lookup
 * of the wanted tags answers as the search. (The features against the full parse,
 * on hand-made data sets and every testdata file: tests/unit/node/tag/extract.c.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tag/capture.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/err.h"

static void put_hdr(mt_buf_t *b, uint16_t g, uint16_t e, const char *vr, uint32_t len)
{
    mt_buf_put_u16le(b, g);
    mt_buf_put_u16le(b, e);
    mt_buf_append(b, vr, 2);
    if (!strcmp(vr, "UT") || !strcmp(vr, "OB") || !strcmp(vr, "SQ")) {
        mt_buf_put_u16le(b, 0);
        mt_buf_put_u32le(b, len);
    } else {
        mt_buf_put_u16le(b, (uint16_t)len);
    }
}

static void put_str(mt_buf_t *b, uint16_t g, uint16_t e, const char *vr, const char *v)
{
    size_t n = strlen(v);
    put_hdr(b, g, e, vr, (uint32_t)(n + (n & 1)));
    mt_buf_append(b, v, n);
    if (n & 1)
        mt_buf_put_u8(b, !strcmp(vr, "UI") ? 0 : ' ');
}

static int on_event(void *user, mt_ds_event_t ev, const mt_elem_t *e)
{
    mt_tag_capture_event(user, ev, e);
    return 0;
}

/* Feed b to a reader set up like svc/store.c's, in chunk-byte pieces, each then to c. */
static void run(mt_tag_capture_t *c, const mt_buf_t *b, size_t chunk)
{
    mt_ds_reader_opts_t o = {.ts = mt_ts_explicit_le, .max_buffered_value = 64u << 10,
                             .cb = on_event, .user = c, .stream_pixel_data = true};
    mt_ds_reader_t *r = mt_ds_reader_new(&o);
    for (size_t at = 0; at < b->len; at += chunk) {
        size_t n = b->len - at < chunk ? b->len - at : chunk;
        assert_int_equal(mt_ds_reader_feed(r, b->data + at, n), 0);
        mt_tag_capture_feed(c, b->data + at, n);
    }
    int rc = mt_ds_reader_finish(r);
    if (rc)
        print_message("reader: %s at %llu\n", mt_ds_reader_diag(r)->reason,
                      (unsigned long long)mt_ds_reader_diag(r)->offset);
    assert_int_equal(rc, 0);
    mt_ds_reader_free(r);
}

static void classic(mt_buf_t *b)
{
    put_str(b, 0x0008, 0x0070, "LO", "SIEMENS");
    put_str(b, 0x0008, 0x103E, "LO", "cine sax");
    put_str(b, 0x0010, 0x0010, "PN", "Doe^John"); /* not read: not located */
    put_str(b, 0x0018, 0x0024, "SH", "*tfi2d1");
    put_str(b, 0x0020, 0x000E, "UI", "1.2.3.4");
}

static void test_slots_stop_at_pixel_data(void **st)
{
    (void)st;
    mt_buf_t b;
    mt_buf_init(&b, 1 << 16);
    classic(&b);
    size_t header = b.len;
    put_str(&b, 0x7FE0, 0x0010, "OB", "0123456789");
    put_str(&b, 0xFFFA, 0xFFFA, "UI", "1.2"); /* after Pixel Data */
    for (size_t chunk = 1; chunk <= b.len; chunk += 5) {
        mt_tag_capture_t c;
        mt_tag_capture_init(&c, mt_ts_explicit_le, false);
        run(&c, &b, chunk);
        assert_int_equal(c.end, header);
        /* nothing from Pixel Data on but the start of its element header, when a piece ended
         * inside it (the reader reports the element once its header is whole) */
        assert_in_range(c.buf.len, header, header + 11);
        assert_false(c.reparse);
        assert_int_equal(c.n_slot, 4); /* 0008,0070 0008,103E 0018,0024 0020,000E */
        mt_tag_inst_t in;
        assert_int_equal(mt_tag_capture_extract(&c, &in), 0);
        assert_string_equal(in.series_uid, "1.2.3.4");
        assert_int_equal(in.vendor, MT_VENDOR_SIEMENS);
        assert_true(in.has_desc);
        assert_true(in.seq_flags & MT_SQ_TFI);
        assert_false(mt_tag_capture_on(&c)); /* extracted once */
        mt_tag_inst_dispose(&in);
        mt_tag_capture_dispose(&c);
    }
    mt_buf_dispose(&b);
}

/* A sequence the extractor reads (Shared Functional Groups) and a repeated tag: the slots
 * cannot say what the full parse would keep, so the header is parsed again. */
static void test_reparse(void **st)
{
    (void)st;
    for (int k = 0; k < 2; k++) {
        mt_buf_t b;
        mt_buf_init(&b, 1 << 16);
        put_str(&b, 0x0020, 0x000E, "UI", "1.2.3.4");
        if (k == 0) {
            put_hdr(&b, 0x5200, 0x9229, "SQ", MT_UNDEFINED_LENGTH);
            mt_buf_put_u16le(&b, 0xFFFE);
            mt_buf_put_u16le(&b, 0xE000);
            mt_buf_put_u32le(&b, MT_UNDEFINED_LENGTH);
            mt_buf_put_u16le(&b, 0xFFFE);
            mt_buf_put_u16le(&b, 0xE00D);
            mt_buf_put_u32le(&b, 0);
            mt_buf_put_u16le(&b, 0xFFFE);
            mt_buf_put_u16le(&b, 0xE0DD);
            mt_buf_put_u32le(&b, 0);
        } else {
            put_str(&b, 0x0020, 0x000E, "UI", "1.2.3.5"); /* the full parse keeps this one */
        }
        mt_tag_capture_t c;
        mt_tag_capture_init(&c, mt_ts_explicit_le, false);
        run(&c, &b, 7);
        assert_true(c.reparse);
        mt_tag_inst_t in;
        assert_int_equal(mt_tag_capture_extract(&c, &in), 0);
        assert_string_equal(in.series_uid, k == 0 ? "1.2.3.4" : "1.2.3.5");
        mt_tag_inst_dispose(&in);
        mt_tag_capture_dispose(&c);
        mt_buf_dispose(&b);
    }
}

static void test_off_moved_stopped_give_nothing(void **st)
{
    (void)st;
    mt_buf_t b;
    mt_buf_init(&b, 1 << 16);
    classic(&b);
    mt_tag_capture_t c, d;
    mt_tag_inst_t in;
    mt_tag_capture_init(&c, mt_ts_explicit_le, true); /* off: no tagger */
    run(&c, &b, b.len);
    assert_int_equal(c.buf.len, 0);
    assert_int_equal(mt_tag_capture_extract(&c, &in), MT_ENOENT);
    mt_tag_inst_dispose(&in);
    mt_tag_capture_init(&c, NULL, false); /* unknown transfer syntax */
    assert_false(mt_tag_capture_on(&c));
    mt_tag_capture_init(&c, mt_ts_explicit_le, false); /* nothing fed */
    assert_int_equal(mt_tag_capture_extract(&c, &in), MT_ENOENT);
    mt_tag_inst_dispose(&in);
    mt_tag_capture_init(&c, mt_ts_explicit_le, false);
    run(&c, &b, b.len);
    mt_tag_capture_move(&d, &c);
    assert_int_equal(mt_tag_capture_extract(&c, &in), MT_ENOENT); /* moved from */
    mt_tag_inst_dispose(&in);
    mt_tag_capture_dispose(&c);
    assert_int_equal(mt_tag_capture_extract(&d, &in), 0); /* moved to */
    assert_string_equal(in.series_uid, "1.2.3.4");
    mt_tag_inst_dispose(&in);
    mt_tag_capture_init(&c, mt_ts_explicit_le, false);
    run(&c, &b, b.len);
    mt_tag_capture_dispose(&c); /* quarantined */
    assert_int_equal(mt_tag_capture_extract(&c, &in), MT_ENOENT);
    mt_tag_inst_dispose(&in);
    mt_tag_capture_dispose(&c);
    mt_buf_dispose(&b);
}

/* A header above MT_TAG_CAPTURE_MAX: not tagged (and not kept). */
static void test_limit_turns_off(void **st)
{
    (void)st;
    mt_buf_t b;
    mt_buf_init(&b, MT_TAG_CAPTURE_MAX + (1 << 20));
    size_t n = MT_TAG_CAPTURE_MAX + 2;
    char *big = malloc(n + 1);
    memset(big, 'a', n);
    big[n] = '\0';
    put_str(&b, 0x0008, 0x103E, "UT", big);
    free(big);
    put_str(&b, 0x0020, 0x000E, "UI", "1.2.3.4");
    mt_tag_capture_t c;
    mt_tag_capture_init(&c, mt_ts_explicit_le, false);
    run(&c, &b, 1 << 16);
    assert_false(mt_tag_capture_on(&c));
    assert_null(c.buf.data);
    mt_tag_inst_t in;
    assert_int_equal(mt_tag_capture_extract(&c, &in), MT_ENOENT);
    mt_tag_inst_dispose(&in);
    mt_tag_capture_dispose(&c);
    mt_buf_dispose(&b);
}

/* mt_tag_wanted_next (the capture's cursor over the sorted list) answers as mt_tag_wanted for
 * every tag of ascending runs through all groups the extractor reads, private blocks included,
 * and after a tag out of order (the fallback to the search). */
static void test_wanted_next_is_wanted(void **st)
{
    (void)st;
    static const uint16_t groups[] = {0x0002, 0x0008, 0x0018, 0x0019, 0x0020,
                                      0x0028, 0x2001, 0x2005, 0x5200, 0x7FE0};
    uint32_t prev = 0;
    unsigned at = 0;
    unsigned n_wanted = 0;
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
        for (uint32_t e = 0; e <= 0xFFFF; e++) {
            uint32_t tag = MT_TAG(groups[g], e);
            bool want = mt_tag_wanted(NULL, tag);
            assert_int_equal(mt_tag_wanted_next(tag, &prev, &at), want);
            n_wanted += want;
        }
    assert_true(n_wanted > 67); /* the list and the private blocks */
    /* out of order: a tag below the last one is still answered right */
    assert_true(mt_tag_wanted_next(MT_TAG(0x0008, 0x0060), &prev, &at));
    assert_false(mt_tag_wanted_next(MT_TAG(0x0008, 0x0061), &prev, &at));
    assert_true(mt_tag_wanted_next(MT_TAG(0x0020, 0x000E), &prev, &at));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slots_stop_at_pixel_data),
        cmocka_unit_test(test_reparse),
        cmocka_unit_test(test_off_moved_stopped_give_nothing),
        cmocka_unit_test(test_limit_turns_off),
        cmocka_unit_test(test_wanted_next_is_wanted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
