/* Unit tests for node/tag/capture.c: the elements kept from the service's reader stop at
 * Pixel Data, values in chunks are gathered, the kept values' limit turns the capture off,
 * an off or moved-from capture gives nothing. (The features against the full parse, on
 * hand-made and on every testdata file: tests/unit/node/tag/extract.c.) */
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

static void put_str(mt_buf_t *b, uint16_t g, uint16_t e, const char *vr, const char *v)
{
    size_t n = strlen(v), len = n + (n & 1);
    mt_buf_put_u16le(b, g);
    mt_buf_put_u16le(b, e);
    mt_buf_append(b, vr, 2);
    if (!strcmp(vr, "UT") || !strcmp(vr, "OB")) {
        mt_buf_put_u16le(b, 0);
        mt_buf_put_u32le(b, (uint32_t)len);
    } else {
        mt_buf_put_u16le(b, (uint16_t)len);
    }
    mt_buf_append(b, v, n);
    if (n & 1)
        mt_buf_put_u8(b, !strcmp(vr, "UI") ? 0 : ' ');
}

static int on_event(void *user, mt_ds_event_t ev, const mt_elem_t *e)
{
    mt_tag_capture_event(user, ev, e);
    return 0;
}

/* Feed buf to a reader set up like svc/store.c's (max_value whole) in chunk-byte pieces. */
static void run(mt_tag_capture_t *c, const mt_buf_t *b, size_t chunk, size_t max_value)
{
    mt_ds_reader_opts_t o = {.ts = mt_ts_explicit_le, .max_buffered_value = max_value,
                             .cb = on_event, .user = c, .stream_pixel_data = true};
    mt_ds_reader_t *r = mt_ds_reader_new(&o);
    for (size_t at = 0; at < b->len; at += chunk)
        assert_int_equal(mt_ds_reader_feed(r, b->data + at,
                                           b->len - at < chunk ? b->len - at : chunk), 0);
    assert_int_equal(mt_ds_reader_finish(r), 0);
    mt_ds_reader_free(r);
}

/* A series description longer than the reader's whole-value limit comes in chunks and is kept
 * whole; an element after Pixel Data with a tag the extractor reads is not looked at. */
static void test_chunks_gathered_stops_at_pixel_data(void **st)
{
    (void)st;
    mt_buf_t b;
    mt_buf_init(&b, 1 << 20);
    char desc[3001];
    memset(desc, 'x', sizeof desc - 1);
    memcpy(desc + sizeof desc - 1 - 4, "cine", 4);
    desc[sizeof desc - 1] = '\0';
    put_str(&b, 0x0008, 0x103E, "UT", desc); /* UT: the 16-bit LO length would not hold it */
    put_str(&b, 0x0020, 0x000E, "UI", "1.2.3.4");
    put_str(&b, 0x7FE0, 0x0010, "OB", "0123456789");
    put_str(&b, 0xFFFA, 0xFFFA, "UI", "1.2"); /* after Pixel Data: not seen */
    for (size_t chunk = 1; chunk <= 64; chunk += 7) {
        mt_tag_capture_t c;
        mt_tag_capture_init(&c, mt_ts_explicit_le, false);
        run(&c, &b, chunk, 256);
        assert_true(c.done);
        assert_true(c.n_bytes >= sizeof desc - 1);
        mt_tag_inst_t in;
        assert_int_equal(mt_tag_capture_extract(&c, &in), 0);
        assert_string_equal(in.series_uid, "1.2.3.4");
        assert_true(in.has_desc);
        assert_false(mt_tag_capture_on(&c)); /* extracted once */
        mt_tag_inst_dispose(&in);
        mt_tag_capture_dispose(&c);
    }
    mt_buf_dispose(&b);
}

static void test_off_moved_stopped_give_nothing(void **st)
{
    (void)st;
    mt_buf_t b;
    mt_buf_init(&b, 1 << 16);
    put_str(&b, 0x0020, 0x000E, "UI", "1.2.3.4");
    mt_tag_capture_t c, d;
    mt_tag_inst_t in;
    mt_tag_capture_init(&c, mt_ts_explicit_le, true); /* off: no tagger */
    run(&c, &b, b.len, 1 << 16);
    assert_null(c.b);
    assert_int_equal(mt_tag_capture_extract(&c, &in), MT_ENOENT);
    mt_tag_inst_dispose(&in);
    mt_tag_capture_init(&c, NULL, false); /* unknown transfer syntax */
    assert_false(mt_tag_capture_on(&c));
    mt_tag_capture_init(&c, mt_ts_explicit_le, false);
    run(&c, &b, b.len, 1 << 16);
    mt_tag_capture_move(&d, &c);
    assert_int_equal(mt_tag_capture_extract(&c, &in), MT_ENOENT); /* moved from */
    mt_tag_inst_dispose(&in);
    mt_tag_capture_dispose(&c);
    assert_int_equal(mt_tag_capture_extract(&d, &in), 0); /* moved to */
    assert_string_equal(in.series_uid, "1.2.3.4");
    mt_tag_inst_dispose(&in);
    mt_tag_capture_init(&c, mt_ts_explicit_le, false);
    run(&c, &b, b.len, 1 << 16);
    mt_tag_capture_stop(&c); /* quarantined */
    assert_int_equal(mt_tag_capture_extract(&c, &in), MT_ENOENT);
    mt_tag_inst_dispose(&in);
    mt_tag_capture_dispose(&c);
    mt_buf_dispose(&b);
}

/* Kept values above MT_TAG_CAPTURE_MAX: not tagged (and nothing kept). */
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
    run(&c, &b, 1 << 16, 1 << 16);
    assert_false(mt_tag_capture_on(&c));
    assert_null(c.chunks);
    mt_tag_inst_t in;
    assert_int_equal(mt_tag_capture_extract(&c, &in), MT_ENOENT);
    mt_tag_inst_dispose(&in);
    mt_tag_capture_dispose(&c);
    mt_buf_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunks_gathered_stops_at_pixel_data),
        cmocka_unit_test(test_off_moved_stopped_give_nothing),
        cmocka_unit_test(test_limit_turns_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
