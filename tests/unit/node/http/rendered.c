/* Unit tests for node/http/rendered.c: rendering query parameters (PS3.18 §8.3.5.1; what is a
 * 400), the pixel description read from a data set (palette descriptors, signed values,
 * rescale), and mt__render's output size and media type for grey and colour. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/web.h"

static mt_web_req_t wr;

static void params(const char *k1, const char *v1, const char *k2, const char *v2)
{
    memset(&wr, 0, sizeof wr);
    static char keys[2][32], vals[2][64];
    const char *k[2] = {k1, k2}, *v[2] = {v1, v2};
    for (int i = 0; i < 2 && k[i]; i++) {
        snprintf(keys[i], sizeof keys[i], "%s", k[i]);
        snprintf(vals[i], sizeof vals[i], "%s", v[i]);
        wr.params[wr.n_params].key = keys[i];
        wr.params[wr.n_params++].value = vals[i];
    }
}

static int opts(bool uri, mt_render_opts_t *o)
{
    char msg[160];
    return mt__render_opts(&wr, false, uri, o, msg, sizeof msg);
}

static void test_params_valid(void **state)
{
    (void)state;
    mt_render_opts_t o;
    params("window", "40,400", "quality", "75");
    assert_int_equal(opts(false, &o), 0);
    assert_true(o.win.set);
    assert_true(o.win.center == 40 && o.win.width == 400 && o.win.fn == MT_VOI_LINEAR);
    assert_int_equal(o.quality, 75);
    params("window", "-5.5,0.5,sigmoid", "viewport", "256,128,10,20,-30,40");
    assert_int_equal(opts(false, &o), 0);
    assert_int_equal(o.win.fn, MT_VOI_SIGMOID);
    assert_true(o.region && o.vw == 256 && o.vh == 128 && o.sx == 10 && o.sw == -30);
    params("viewport", ",64", "annotation", "patient");
    assert_int_equal(opts(false, &o), 0);
    assert_true(o.vw == 0 && o.vh == 64 && o.annotation_ignored);
    params(NULL, NULL, NULL, NULL);
    assert_int_equal(opts(false, &o), 0);
    assert_false(o.win.set);
    assert_int_equal(o.quality, 90);
    params("windowCenter", "100", "windowWidth", "50");
    assert_int_equal(opts(true, &o), 0);
    assert_true(o.win.set && o.uri);
    params("region", "0.25,0,1,0.5", "rows", "100");
    assert_int_equal(opts(true, &o), 0);
    assert_true(o.frac_region && o.vh == 100);
}

static void test_params_bad(void **state)
{
    (void)state;
    mt_render_opts_t o;
    const char *bad[][2] = {
        {"window", "1"},
        {"window", "1,0"},
        {"window", "1,0.5,linear"},
        {"window", "a,b"},
        {"window", "1,2,spline"},
        {"window", "1,2,3,4"},
        {"quality", "0"},
        {"quality", "101"},
        {"quality", "9x"},
        {"viewport", "0,10"},
        {"viewport", "10"},
        {"viewport", "1,2,3"},
        {"viewport", "1,1,0,0,0,5"},
        {"viewport", "9000,10"},
        {"viewport", "1,1,-1,0,5,5"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        params(bad[i][0], bad[i][1], NULL, NULL);
        assert_int_equal(opts(false, &o), 400);
    }
    params("windowCenter", "100", NULL, NULL); /* width missing */
    assert_int_equal(opts(true, &o), 400);
    params("region", "0.5,0,0.4,1", NULL, NULL);
    assert_int_equal(opts(true, &o), 400);
    params("imageQuality", "0", NULL, NULL);
    assert_int_equal(opts(true, &o), 400);
}

static mt_ds_t *image(const char *pi, int rows, int cols, int spp, int bits)
{
    mt_ds_t *ds = mt_ds_new();
    mt_ds_set_string(ds, MT_TAG(0x0028, 0x0004), MT_VR('C', 'S'), pi);
    mt_ds_set_u16(ds, MT_TAG(0x0028, 0x0010), (uint16_t)rows);
    mt_ds_set_u16(ds, MT_TAG(0x0028, 0x0011), (uint16_t)cols);
    mt_ds_set_u16(ds, MT_TAG(0x0028, 0x0002), (uint16_t)spp);
    mt_ds_set_u16(ds, MT_TAG(0x0028, 0x0100), (uint16_t)bits);
    mt_ds_set_u16(ds, MT_TAG(0x0028, 0x0101), (uint16_t)bits);
    return ds;
}

static void test_desc(void **state)
{
    (void)state;
    mt_ds_t *ds = image("PALETTE COLOR", 2, 2, 1, 8);
    uint8_t desc[6] = {0x00, 0x01, 0x10, 0x00, 0x10, 0x00}; /* 256 entries, first 16, 16 bits */
    uint8_t lut[512] = {0};
    for (uint32_t t = 0x00281101; t <= 0x00281103; t++)
        mt_ds_set(ds, t, MT_VR('U', 'S'), desc, 6);
    for (uint32_t t = 0x00281201; t <= 0x00281203; t++)
        mt_ds_set(ds, t, MT_VR('O', 'W'), lut, sizeof lut);
    mt_ds_set_string(ds, MT_TAG(0x0028, 0x1053), MT_VR('D', 'S'), "2.5");
    mt_pixel_desc_t d;
    mt__render_desc(ds, false, &d);
    assert_int_equal(d.pi, MT_PI_PALETTE_COLOR);
    assert_int_equal(d.palette.n, 256);
    assert_int_equal(d.palette.first, 16);
    assert_int_equal(d.palette.bits, 16);
    assert_int_equal(d.palette.len[2], 512);
    assert_true(d.slope == 2.5 && d.intercept == 0);
    mt_ds_free(ds);
}

static void test_render_sizes(void **state)
{
    (void)state;
    char msg[160];
    mt_render_opts_t o;
    params("viewport", "32,32", NULL, NULL);
    assert_int_equal(opts(false, &o), 0);
    o.png = true;
    uint8_t px[64 * 32 * 3];
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)i;
    mt_ds_t *ds = image("RGB", 32, 64, 3, 8);
    mt_pixel_desc_t d;
    mt__render_desc(ds, false, &d);
    mt_buf_t out;
    mt_buf_init(&out, 1 << 20);
    assert_int_equal(mt__render(ds, &d, px, sizeof px, &o, &out, msg, sizeof msg), 0);
    /* PNG IHDR: width 32, height 16, colour type 2 (RGB) */
    assert_memory_equal(out.data, "\x89PNG", 4);
    assert_int_equal(out.data[19], 32);
    assert_int_equal(out.data[23], 16);
    assert_int_equal(out.data[25], 2);
    mt_buf_dispose(&out);
    mt_ds_free(ds);
    /* a layout pixel.c refuses: 406 with the reason */
    ds = image("YBR_PARTIAL_420", 32, 64, 3, 8);
    mt__render_desc(ds, false, &d);
    mt_buf_init(&out, 1 << 20);
    assert_int_equal(mt__render(ds, &d, px, sizeof px, &o, &out, msg, sizeof msg), 406);
    assert_non_null(strstr(msg, "Photometric"));
    mt_buf_dispose(&out);
    mt_ds_free(ds);
    /* JPEG of a grey image, region outside: 400 */
    params("viewport", "8,8,100,100,4,4", NULL, NULL);
    assert_int_equal(opts(false, &o), 0);
    ds = image("MONOCHROME2", 32, 64, 1, 8);
    mt__render_desc(ds, false, &d);
    mt_buf_init(&out, 1 << 20);
    assert_int_equal(mt__render(ds, &d, px, 64 * 32, &o, &out, msg, sizeof msg), 400);
    mt_buf_dispose(&out);
    mt_ds_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_valid),
        cmocka_unit_test(test_params_bad),
        cmocka_unit_test(test_desc),
        cmocka_unit_test(test_render_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
