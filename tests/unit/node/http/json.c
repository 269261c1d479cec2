/* tests for node/http/json.c: the value formatter (PN groups, IS/DS numbers, binary numbers,
 * AT, multi-values with empty entries, Latin-1 text, escaping, InlineBinary/BulkDataURI), the
 * tree walker with sequences, and the stream writer against the tree walker for real files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dicom/ds.h"
#include "http/json.h"
#include "util/err.h"

#ifndef MT_SOURCE_DIR
#define MT_SOURCE_DIR "."
#endif

static char *fmt(uint32_t tag, uint16_t vr, const void *v, size_t n, bool latin1,
                 const mt_json_opts_t *o)
{
    static char out[4096];
    mt_buf_t b;
    mt_buf_init(&b, 1 << 20);
    mt_json_opts_t def = {0};
    mt_charset_t cs;
    mt_charset_parse("ISO_IR 100", 10, &cs);
    assert_int_equal(mt_json_value(tag, vr, v, n, latin1 ? &cs : NULL, o ? o : &def, &b), 0);
    snprintf(out, sizeof out, "%.*s", (int)b.len, (char *)b.data);
    mt_buf_dispose(&b);
    return out;
}

static void test_strings(void **st)
{
    (void)st;
    assert_string_equal(fmt(0x00100010, MT_VR('P', 'N'), "Doe^John=D^J=do^jo ", 20, false, NULL),
                        "\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"Doe^John\",\"Ideographic\":"
                        "\"D^J\",\"Phonetic\":\"do^jo\"}]");
    assert_string_equal(fmt(0x00100010, MT_VR('P', 'N'), "==x^y", 5, false, NULL),
                        "\"vr\":\"PN\",\"Value\":[{\"Phonetic\":\"x^y\"}]");
    assert_string_equal(fmt(0x00080008, MT_VR('C', 'S'), "A\\\\B ", 6, false, NULL),
                        "\"vr\":\"CS\",\"Value\":[\"A\",null,\"B\"]");
    assert_string_equal(fmt(0x00080018, MT_VR('U', 'I'), "1.2.3\0", 6, false, NULL),
                        "\"vr\":\"UI\",\"Value\":[\"1.2.3\"]");
    assert_string_equal(fmt(0x00080080, MT_VR('L', 'O'), "M\xfcnchen", 7, true, NULL),
                        "\"vr\":\"LO\",\"Value\":[\"M\xc3\xbcnchen\"]");
    assert_string_equal(fmt(0x00204000, MT_VR('L', 'T'), "a\\b \"q\"\n", 9, false, NULL),
                        "\"vr\":\"LT\",\"Value\":[\"a\\\\b \\\"q\\\"\\u000a\"]");
    assert_string_equal(fmt(0x00100020, MT_VR('L', 'O'), "", 0, false, NULL), "\"vr\":\"LO\"");
    assert_string_equal(fmt(0x00080005, MT_VR('C', 'S'), "ISO_IR 100", 10, false, NULL),
                        "\"vr\":\"CS\",\"Value\":[\"ISO_IR 192\"]");
}

static void test_numbers(void **st)
{
    (void)st;
    assert_string_equal(fmt(0x00200013, MT_VR('I', 'S'), " +012\\-3", 8, false, NULL),
                        "\"vr\":\"IS\",\"Value\":[12,-3]");
    assert_string_equal(fmt(0x00180050, MT_VR('D', 'S'), ".5\\-0.25\\+1.0e3\\7.", 19, false, NULL),
                        "\"vr\":\"DS\",\"Value\":[0.5,-0.25,1.0e3,7.0]");
    uint8_t us[4] = {0x00, 0x02, 0xFF, 0xFF};
    assert_string_equal(fmt(0x00280010, MT_VR('U', 'S'), us, 4, false, NULL),
                        "\"vr\":\"US\",\"Value\":[512,65535]");
    assert_string_equal(fmt(0x00280106, MT_VR('S', 'S'), us + 2, 2, false, NULL),
                        "\"vr\":\"SS\",\"Value\":[-1]");
    float f = 1.5f;
    assert_string_equal(fmt(0x00189087, MT_VR('F', 'L'), &f, 4, false, NULL),
                        "\"vr\":\"FL\",\"Value\":[1.5]");
    uint8_t at[4] = {0x10, 0x00, 0x20, 0x00};
    assert_string_equal(fmt(0x00209165, MT_VR('A', 'T'), at, 4, false, NULL),
                        "\"vr\":\"AT\",\"Value\":[\"00100020\"]");
    mt_json_opts_t be = {.big_endian = true};
    uint8_t usbe[2] = {0x02, 0x00};
    assert_string_equal(fmt(0x00280010, MT_VR('U', 'S'), usbe, 2, false, &be),
                        "\"vr\":\"US\",\"Value\":[512]");
}

static void test_binary(void **st)
{
    (void)st;
    assert_string_equal(fmt(0x00091010, MT_VR('O', 'B'), "abcd", 4, false, NULL),
                        "\"vr\":\"OB\",\"InlineBinary\":\"YWJjZA==\"");
    mt_json_opts_t o = {.bulk_threshold = 2, .bulk_uri = "http://h/b/"};
    assert_string_equal(fmt(0x7FE00010, MT_VR('O', 'W'), "abcd", 4, false, &o),
                        "\"vr\":\"OW\",\"BulkDataURI\":\"http://h/b/7FE00010\"");
    mt_json_opts_t o2 = {.bulk_threshold = 2};
    assert_string_equal(fmt(0x7FE00010, MT_VR('O', 'W'), "abcd", 4, false, &o2), "\"vr\":\"OW\"");
}

static void test_tree_sequence(void **st)
{
    (void)st;
    mt_ds_t *ds = mt_ds_new();
    mt_ds_set_string(ds, 0x00100010, MT_VR('P', 'N'), "A^B");
    mt_ds_set(ds, 0x00081110, MT_VR('S', 'Q'), NULL, 0);
    mt_ds_elem_t *sq = mt_ds_get(ds, 0x00081110);
    sq->items = malloc(sizeof *sq->items);
    sq->items[0] = mt_ds_new();
    sq->n_items = 1;
    mt_ds_set_string(sq->items[0], 0x00081150, MT_VR('U', 'I'), "1.2");
    mt_ds_set(ds, 0x00081111, MT_VR('S', 'Q'), NULL, 0);
    mt_buf_t b;
    mt_buf_init(&b, 1 << 20);
    mt_json_opts_t o = {0};
    assert_int_equal(mt_json_ds(ds, &o, &b), 0);
    mt_buf_append(&b, "", 1);
    assert_string_equal((char *)b.data,
                        "{\"00081110\":{\"vr\":\"SQ\",\"Value\":[{\"00081150\":{\"vr\":\"UI\","
                        "\"Value\":[\"1.2\"]}}]},\"00081111\":{\"vr\":\"SQ\"},\"00100010\":{"
                        "\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"A^B\"}]}}");
    mt_buf_dispose(&b);
    mt_ds_free(ds);
}

/* The stream writer and the tree walker agree on a file with nested sequences. */
typedef struct sctx {
    mt_json_stream_t *js;
} sctx_t;

static int ev(void *u, mt_ds_event_t e, const mt_elem_t *el)
{
    return mt_json_stream_event(((sctx_t *)u)->js, e, el);
}

static void test_stream_equals_tree(void **st)
{
    (void)st;
    const char *files[] = {"pydicom/test_files/test-SR.dcm", "pydicom/test_files/CT_small.dcm",
                           "pydicom-data/emri_small.dcm"};
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/../shared/testdata/%s", MT_SOURCE_DIR, files[k]);
        FILE *f = fopen(path, "rb");
        if (!f) {
            print_message("skip: %s missing\n", path);
            continue;
        }
        static uint8_t buf[1 << 21];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        mt_meta_t meta;
        mt_ds_t *ds = NULL;
        mt_diag_t d;
        assert_int_equal(mt_part10_parse_file_buf(buf, n, &meta, &ds, &d), 0);
        size_t consumed;
        assert_int_equal(mt_part10_read_meta(buf, n, &meta, &consumed, &d), 0);
        mt_json_opts_t o = {.bulk_threshold = 0};
        mt_buf_t a, b;
        mt_buf_init(&a, 1 << 24);
        mt_buf_init(&b, 1 << 24);
        assert_int_equal(mt_json_ds(ds, &o, &a), 0);
        sctx_t s = {mt_json_stream_new(&o, &b)};
        mt_ds_reader_opts_t ro = {.ts = mt_ts_find(meta.transfer_syntax_uid),
                                  .max_buffered_value = 1 << 22, .cb = ev, .user = &s};
        mt_ds_reader_t *r = mt_ds_reader_new(&ro);
        assert_int_equal(mt_ds_reader_feed(r, buf + consumed, n - consumed), 0);
        assert_int_equal(mt_ds_reader_finish(r), 0);
        assert_int_equal(mt_json_stream_finish(s.js), 0);
        mt_json_stream_free(s.js);
        mt_ds_reader_free(r);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);
        mt_buf_dispose(&a);
        mt_buf_dispose(&b);
        mt_ds_free(ds);
    }
}

/* BulkDataURIs of large values nested in sequences: SSSSSSSS/N/ per enclosing sequence,
 * items counted from 1; small values stay inline; a value delivered in chunks gets a URI too. */
static void test_stream_nested_bulk(void **st)
{
    (void)st;
    static uint8_t big[2000], small[4] = {1, 2, 3, 4};
    mt_json_opts_t o = {.bulk_threshold = 1024, .bulk_uri = "http://h/b/"};
    mt_buf_t b;
    mt_buf_init(&b, 1 << 20);
    mt_json_stream_t *js = mt_json_stream_new(&o, &b);
    mt_elem_t sq = {.tag = 0x00091014, .vr = MT_VR('S', 'Q'), .len = MT_UNDEFINED_LENGTH};
    mt_elem_t item = {.tag = MT_TAG_ITEM, .len = MT_UNDEFINED_LENGTH, .depth = 1};
    mt_elem_t end_item = {.tag = MT_TAG_ITEM_DELIM, .depth = 1};
    mt_elem_t v_small = {.tag = 0x00091011, .vr = MT_VR('O', 'B'), .len = 4, .depth = 1,
                         .value = small, .value_len = 4};
    mt_elem_t v_big = {.tag = 0x00091011, .vr = MT_VR('O', 'B'), .len = 2000, .depth = 1,
                       .value = big, .value_len = 2000};
    mt_elem_t sq2 = {.tag = 0x00091013, .vr = MT_VR('S', 'Q'), .len = MT_UNDEFINED_LENGTH,
                     .depth = 1};
    mt_elem_t item2 = {.tag = MT_TAG_ITEM, .len = MT_UNDEFINED_LENGTH, .depth = 2};
    mt_elem_t end_item2 = {.tag = MT_TAG_ITEM_DELIM, .depth = 2};
    mt_elem_t v_chunked = {.tag = 0x00091012, .vr = MT_VR('O', 'W'), .len = 100000, .depth = 2};
    assert_int_equal(mt_json_stream_event(js, MT_DS_EV_SEQ_START, &sq), 0);
    assert_int_equal(mt_json_stream_event(js, MT_DS_EV_ITEM_START, &item), 0);
    assert_int_equal(mt_json_stream_event(js, MT_DS_EV_ELEMENT, &v_small), 0);
    assert_int_equal(mt_json_stream_event(js, MT_DS_EV_ITEM_END, &end_item), 0);
    assert_int_equal(mt_json_stream_event(js, MT_DS_EV_ITEM_START, &item), 0);
    assert_int_equal(mt_json_stream_event(js, MT_DS_EV_ELEMENT, &v_big), 0);
    assert_int_equal(mt_json_stream_event(js, MT_DS_EV_SEQ_START, &sq2), 0);
    assert_int_equal(mt_json_stream_event(js, MT_DS_EV_ITEM_START, &item2), 0);
    assert_int_equal(mt_json_stream_event(js, MT_DS_EV_ELEMENT, &v_chunked), 0);
    assert_int_equal(mt_json_stream_event(js, MT_DS_EV_ITEM_END, &end_item2), 0);
    assert_int_equal(mt_json_stream_event(js, MT_DS_EV_SEQ_END, &sq2), 0);
    assert_int_equal(mt_json_stream_event(js, MT_DS_EV_ITEM_END, &end_item), 0);
    assert_int_equal(mt_json_stream_event(js, MT_DS_EV_SEQ_END, &sq), 0);
    assert_int_equal(mt_json_stream_finish(js), 0);
    mt_json_stream_free(js);
    mt_buf_append(&b, "", 1);
    const char *j = (const char *)b.data;
    assert_non_null(strstr(j, "\"InlineBinary\":\"AQIDBA==\""));
    assert_non_null(strstr(j, "\"BulkDataURI\":\"http://h/b/00091014/2/00091011\""));
    assert_non_null(strstr(j, "\"BulkDataURI\":\"http://h/b/00091014/2/00091013/1/00091012\""));
    assert_null(strstr(j, "00091014/1/00091011"));
    mt_buf_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strings),       cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_binary),        cmocka_unit_test(test_tree_sequence),
        cmocka_unit_test(test_stream_equals_tree), cmocka_unit_test(test_stream_nested_bulk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
