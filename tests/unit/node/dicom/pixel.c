/* Unit tests for node/dicom/pixel.c: native pixels to 8-bit grey/RGB, crop and scale. The
 * expected values are worked out by hand from the PS3.3 equations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dicom/pixel.h"
#include "util/err.h"

static mt_pixel_desc_t desc(mt_pi_t pi, int rows, int cols, int spp, int bits)
{
    mt_pixel_desc_t d = {.rows = rows,
                         .cols = cols,
                         .spp = spp,
                         .bits_allocated = bits,
                         .bits_stored = bits,
                         .pi = pi,
                         .slope = 1};
    return d;
}

static void test_pi_names(void **state)
{
    (void)state;
    assert_int_equal(mt_pixel_pi("MONOCHROME2 "), MT_PI_MONOCHROME2);
    assert_int_equal(mt_pixel_pi("PALETTE COLOR"), MT_PI_PALETTE_COLOR);
    assert_int_equal(mt_pixel_pi("YBR_FULL_422"), MT_PI_YBR_FULL_422);
    assert_int_equal(mt_pixel_pi("YBR_FULL"), MT_PI_YBR_FULL);
    assert_int_equal(mt_pixel_pi("YBR_PARTIAL_420"), MT_PI_UNSUPPORTED);
    assert_int_equal(mt_pixel_pi(""), MT_PI_UNSUPPORTED);
}

static void test_frame_bytes(void **state)
{
    (void)state;
    const char *why;
    mt_pixel_desc_t d = desc(MT_PI_RGB, 4, 6, 3, 8);
    assert_int_equal(mt_pixel_frame_bytes(&d, &why), 72);
    d = desc(MT_PI_YBR_FULL_422, 4, 6, 3, 8);
    assert_int_equal(mt_pixel_frame_bytes(&d, &why), 48); /* 2 samples per pixel */
    d = desc(MT_PI_YBR_FULL_422, 4, 5, 3, 8);
    assert_int_equal(mt_pixel_frame_bytes(&d, &why), 0); /* odd columns */
    assert_non_null(why);
    d = desc(MT_PI_MONOCHROME2, 4, 6, 1, 16);
    assert_int_equal(mt_pixel_frame_bytes(&d, &why), 48);
    d = desc(MT_PI_RGB, 4, 6, 1, 8); /* wrong spp */
    assert_int_equal(mt_pixel_frame_bytes(&d, &why), 0);
    d = desc(MT_PI_MONOCHROME2, 4, 6, 1, 12);
    assert_int_equal(mt_pixel_frame_bytes(&d, &why), 0);
}

static void test_grey_window(void **state)
{
    (void)state;
    /* 16-bit signed, 12 stored: -2048 (0x800 as 12 bits), 0, 100, 2047; rescale 2x + 10 */
    uint16_t raw[4] = {0x0800, 0x0000, 0x0064, 0x07FF};
    uint8_t f[8];
    for (int i = 0; i < 4; i++) {
        f[2 * i] = (uint8_t)(raw[i] & 0xFF);
        f[2 * i + 1] = (uint8_t)(raw[i] >> 8) | 0xF0; /* high bits above Bits Stored ignored */
    }
    mt_pixel_desc_t d = desc(MT_PI_MONOCHROME2, 2, 2, 1, 16);
    d.bits_stored = 12;
    d.is_signed = true;
    d.slope = 2;
    d.intercept = 10;
    /* values: -4086, 10, 210, 4104. LINEAR window c=210 w=401: lower edge 9.5 .. upper 409.5 */
    mt_window_t w = {.set = true, .center = 210, .width = 401, .fn = MT_VOI_LINEAR};
    uint8_t out[12];
    int ch = 0;
    const char *why;
    assert_int_equal(mt_pixel_render(&d, f, sizeof f, &w, out, &ch, &why), 0);
    assert_int_equal(ch, 1);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 0);   /* (10 - 209.5)/400 + 0.5 = 0.00125 -> 0 */
    assert_int_equal(out[2], 128); /* (210 - 209.5)/400 + 0.5 = 0.50125 -> 127.8 -> 128 */
    assert_int_equal(out[3], 255);
    /* MONOCHROME1 inverts */
    d.pi = MT_PI_MONOCHROME1;
    assert_int_equal(mt_pixel_render(&d, f, sizeof f, &w, out, &ch, &why), 0);
    assert_int_equal(out[0], 255);
    assert_int_equal(out[3], 0);
    /* no window: the range -4086..4104 */
    d.pi = MT_PI_MONOCHROME2;
    mt_window_t none = {0};
    assert_int_equal(mt_pixel_render(&d, f, sizeof f, &none, out, &ch, &why), 0);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[3], 255);
    /* SIGMOID at the centre: half */
    w.fn = MT_VOI_SIGMOID;
    assert_int_equal(mt_pixel_render(&d, f, sizeof f, &w, out, &ch, &why), 0);
    assert_int_equal(out[2], 128);
    assert_true(out[1] > 0 && out[1] < 128);
    /* a short frame */
    assert_int_equal(mt_pixel_render(&d, f, 7, &w, out, &ch, &why), MT_EINVAL);
}

static void test_rgb_planar(void **state)
{
    (void)state;
    /* 1x2 image: pixel 0 = (10,20,30), pixel 1 = (40,50,60) */
    uint8_t inter[6] = {10, 20, 30, 40, 50, 60}, planar[6] = {10, 40, 20, 50, 30, 60};
    uint8_t out[6];
    int ch;
    const char *why;
    mt_window_t w = {0};
    mt_pixel_desc_t d = desc(MT_PI_RGB, 1, 2, 3, 8);
    assert_int_equal(mt_pixel_render(&d, inter, 6, &w, out, &ch, &why), 0);
    assert_int_equal(ch, 3);
    assert_memory_equal(out, inter, 6);
    d.planar = 1;
    memset(out, 0, sizeof out);
    assert_int_equal(mt_pixel_render(&d, planar, 6, &w, out, &ch, &why), 0);
    assert_memory_equal(out, inter, 6);
    /* 16-bit RGB, 16 stored: the high byte */
    uint8_t f16[12] = {0x34, 0x12, 0xFF, 0xFF, 0x00, 0x80, 0, 0, 0, 1, 0, 2};
    d = desc(MT_PI_RGB, 1, 2, 3, 16);
    assert_int_equal(mt_pixel_render(&d, f16, 12, &w, out, &ch, &why), 0);
    uint8_t want16[6] = {0x12, 0xFF, 0x80, 0, 1, 2};
    assert_memory_equal(out, want16, 6);
}

static void test_ybr(void **state)
{
    (void)state;
    uint8_t out[12];
    int ch;
    const char *why;
    mt_window_t w = {0};
    /* YBR_FULL: grey (Y, 128, 128) stays grey; pure red is Y=76 Cb=85 Cr=255 (BT.601) */
    uint8_t ybr[6] = {100, 128, 128, 76, 85, 255};
    mt_pixel_desc_t d = desc(MT_PI_YBR_FULL, 1, 2, 3, 8);
    assert_int_equal(mt_pixel_render(&d, ybr, 6, &w, out, &ch, &why), 0);
    assert_int_equal(out[0], 100);
    assert_int_equal(out[1], 100);
    assert_int_equal(out[2], 100);
    assert_true(out[3] >= 252 && out[4] <= 3 && out[5] <= 3);
    /* YBR_FULL_422: Y1 Y2 Cb Cr shared by the pair */
    uint8_t y422[8] = {50, 200, 128, 128, 76, 76, 85, 255};
    d = desc(MT_PI_YBR_FULL_422, 1, 4, 3, 8);
    assert_int_equal(mt_pixel_render(&d, y422, 8, &w, out, &ch, &why), 0);
    assert_int_equal(out[0], 50);
    assert_int_equal(out[3], 200);
    assert_int_equal(out[5], 200);
    assert_true(out[6] >= 252 && out[7] <= 3 && out[11] <= 3);
}

static void test_palette(void **state)
{
    (void)state;
    /* 4-entry palette starting at 10; 16-bit entries (high byte used) and 8-bit entries */
    uint8_t r16[8] = {0, 0x00, 0, 0x40, 0, 0x80, 0, 0xFF},
            g16[8] = {0, 0xFF, 0, 0x80, 0, 0x40, 0, 0},
            b16[8] = {0, 0x11, 0, 0x22, 0, 0x33, 0, 0x44};
    uint8_t px[4] = {9, 10, 12, 200}; /* below first, first, 3rd, past the end */
    mt_pixel_desc_t d = desc(MT_PI_PALETTE_COLOR, 2, 2, 1, 8);
    d.palette =
        (mt_palette_t){.data = {r16, g16, b16}, .len = {8, 8, 8}, .n = 4, .first = 10, .bits = 16};
    uint8_t out[12];
    int ch;
    const char *why;
    mt_window_t w = {0};
    assert_int_equal(mt_pixel_render(&d, px, 4, &w, out, &ch, &why), 0);
    assert_int_equal(ch, 3);
    uint8_t want[12] = {0x00, 0xFF, 0x11, 0x00, 0xFF, 0x11, 0x80, 0x40, 0x33, 0xFF, 0x00, 0x44};
    assert_memory_equal(out, want, 12);
    uint8_t r8[4] = {1, 2, 3, 4}, g8[4] = {5, 6, 7, 8}, b8[4] = {9, 10, 11, 12};
    d.palette =
        (mt_palette_t){.data = {r8, g8, b8}, .len = {4, 4, 4}, .n = 4, .first = 10, .bits = 8};
    assert_int_equal(mt_pixel_render(&d, px, 4, &w, out, &ch, &why), 0);
    uint8_t want8[12] = {1, 5, 9, 1, 5, 9, 3, 7, 11, 4, 8, 12};
    assert_memory_equal(out, want8, 12);
    /* LUT data shorter than the descriptor (e.g. a segmented palette): refused with a reason */
    d.palette.len[1] = 2;
    assert_int_equal(mt_pixel_render(&d, px, 4, &w, out, &ch, &why), MT_EUNSUPPORTED);
    assert_non_null(why);
}

static void test_region(void **state)
{
    (void)state;
    /* 4x2 grey: row 0 = 0 10 20 30, row 1 = 40 50 60 70 */
    uint8_t src[8] = {0, 10, 20, 30, 40, 50, 60, 70}, dst[8];
    assert_int_equal(mt_pixel_region(src, 4, 2, 1, 0, 0, 4, 2, dst, 2, 1), 0);
    assert_int_equal(dst[0], 25); /* mean of 0 10 40 50 */
    assert_int_equal(dst[1], 45);
    /* crop the right half, flipped horizontally (negative sw: the region ends at sx) */
    assert_int_equal(mt_pixel_region(src, 4, 2, 1, 4, 0, -2, 2, dst, 2, 2), 0);
    uint8_t want[4] = {30, 20, 70, 60};
    assert_memory_equal(dst, want, 4);
    /* upscale by 2: nearest neighbour */
    assert_int_equal(mt_pixel_region(src, 4, 2, 1, 0, 0, 1, 1, dst, 2, 2), 0);
    assert_int_equal(dst[3], 0);
    /* outside the image: refused */
    assert_int_equal(mt_pixel_region(src, 4, 2, 1, 10, 10, 2, 2, dst, 1, 1), MT_EINVAL);
    int ow, oh;
    mt_pixel_fit(256, 128, 128, 128, &ow, &oh);
    assert_int_equal(ow, 128);
    assert_int_equal(oh, 64);
    mt_pixel_fit(100, 50, 0, 0, &ow, &oh);
    assert_int_equal(ow, 100);
    assert_int_equal(oh, 50);
    mt_pixel_fit(100, 50, 0, 200, &ow, &oh);
    assert_int_equal(ow, 400);
    assert_int_equal(oh, 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pi_names),    cmocka_unit_test(test_frame_bytes),
        cmocka_unit_test(test_grey_window), cmocka_unit_test(test_rgb_planar),
        cmocka_unit_test(test_ybr),         cmocka_unit_test(test_palette),
        cmocka_unit_test(test_region),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
