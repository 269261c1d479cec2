/* Unit tests for node/tag/capture.c: the header kept for the tagger stops at Pixel Data
 * whatever the chunking, a capture that is off or too large gives nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tag/capture.h"
#include "util/alloc.h"

static void test_stops_at_pixel_data(void **st)
{
    (void)st;
    uint8_t data[100];
    for (int i = 0; i < 100; i++)
        data[i] = (uint8_t)i;
    for (size_t chunk = 1; chunk <= 100; chunk++) {
        mt_tag_capture_t c;
        mt_tag_capture_init(&c, false);
        for (size_t at = 0; at < 100; at += chunk) {
            size_t n = at + chunk > 100 ? 100 - at : chunk;
            if (at + n > 60) /* the reader sees Pixel Data at 60 in this chunk */
                mt_tag_capture_pixel_at(&c, 60);
            mt_tag_capture_feed(&c, data + at, n);
        }
        size_t len = 0;
        uint8_t *h = mt_tag_capture_take(&c, &len);
        assert_non_null(h);
        assert_int_equal(len, 60);
        assert_memory_equal(h, data, 60);
        mt_free(h);
        assert_null(mt_tag_capture_take(&c, &len)); /* taken once */
        mt_tag_capture_dispose(&c);
    }
}

static void test_off_gives_nothing(void **st)
{
    (void)st;
    mt_tag_capture_t c;
    mt_tag_capture_init(&c, true);
    mt_tag_capture_feed(&c, (const uint8_t *)"abc", 3);
    size_t len;
    assert_null(mt_tag_capture_take(&c, &len));
    mt_tag_capture_dispose(&c);
    mt_tag_capture_init(&c, false); /* nothing fed */
    assert_null(mt_tag_capture_take(&c, &len));
    mt_tag_capture_dispose(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stops_at_pixel_data),
        cmocka_unit_test(test_off_gives_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
