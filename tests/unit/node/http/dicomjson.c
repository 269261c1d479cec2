/* tests for node/http/dicomjson.c: DICOM JSON -> data set for every VR (text, PN with
 * alphabetic/ideographic/phonetic groups, AT, IS/DS literals, binary numbers with their
 * ranges, InlineBinary), nested sequences with bulk data at depth 2, compressed Pixel Data
 * parts encapsulated, the character set, every error with its reason and tag, and the round
 * trip tree -> JSON (node/http/json.c) -> tree -> JSON for real files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dicom/ds.h"
#include "http/dicomjson.h"
#include "http/json.h"
#include "util/err.h"

#include "../dicom/testutil.h"

#ifndef MT_SOURCE_DIR
#define MT_SOURCE_DIR "."
#endif

#define UIDS                                                                                       \
    "\"00080016\":{\"vr\":\"UI\",\"Value\":[\"1.2.840.10008.5.1.4.1.1.4\"]},"                      \
    "\"00080018\":{\"vr\":\"UI\",\"Value\":[\"2.25.1\"]}"

static mt_ds_t *convert(const char *attrs, mt_dj_bulk_t *bulk, size_t n_bulk, int want,
                        const char *why, const mt_ts_t **ts_out)
{
    char text[8192];
    snprintf(text, sizeof text, "{" UIDS "%s%s}", attrs[0] ? "," : "", attrs);
    mt_jsonv_t *v = NULL;
    mt_diag_t d = {0};
    if (mt_jsonp_parse(text, strlen(text), &v, &d) != 0)
        fail_msg("test JSON malformed: %s: %s", d.reason, text);
    mt_ds_t *ds = NULL;
    const mt_ts_t *ts = NULL;
    mt_dj_err_t err;
    int rc = mt_dicomjson_instance(v, bulk, n_bulk, &ds, &ts, &err);
    mt_jsonv_free(v);
    if (rc != want)
        fail_msg("%s: rc %d (%s), expected %d", attrs, rc, err.reason ? err.reason : "-", want);
    if (want) {
        assert_null(ds);
        if (why && strcmp(err.reason, why) != 0)
            fail_msg("%s: '%s', expected '%s'", attrs, err.reason, why);
        return NULL;
    }
    assert_non_null(ds);
    if (ts_out)
        *ts_out = ts;
    else
        assert_ptr_equal(ts, mt_ts_explicit_le);
    return ds;
}

static void expect(const mt_ds_t *ds, uint32_t tag, uint16_t vr, const void *v, size_t n)
{
    mt_ds_elem_t *e = mt_ds_get(ds, tag);
    if (!e)
        fail_msg("%08X missing", tag);
    assert_int_equal(e->vr, vr);
    if (e->len != n || (n && memcmp(e->value, v, n) != 0))
        fail_msg("%08X: %u bytes '%.*s', expected %zu '%.*s'", tag, e->len, (int)e->len,
                 e->value ? (const char *)e->value : "", n, (int)n, (const char *)v);
}

#define EXPECT_STR(ds, tag, vr, s) expect(ds, tag, MT_VR(vr[0], vr[1]), s, sizeof s - 1)

static void test_text(void **st)
{
    (void)st;
    mt_ds_t *ds = convert("\"00080008\":{\"vr\":\"CS\",\"Value\":[\"ORIGINAL\",null,\"M\"]},"
                          "\"00080020\":{\"vr\":\"DA\",\"Value\":[\"20261201\"]},"
                          "\"00080030\":{\"vr\":\"TM\",\"Value\":[\"1011\"]},"
                          "\"0008002A\":{\"vr\":\"DT\",\"Value\":[\"20261201101112\"]},"
                          "\"00081010\":{\"vr\":\"SH\",\"Value\":[\"MR1\"]},"
                          "\"00101010\":{\"vr\":\"AS\",\"Value\":[\"042Y\"]},"
                          "\"00081030\":{\"vr\":\"LO\",\"Value\":[\"a\",\"b\"]},"
                          "\"00204000\":{\"vr\":\"LT\",\"Value\":[\"x\\\\y\\r\\nz\"]},"
                          "\"00081190\":{\"vr\":\"UR\",\"Value\":[\"http://e/x\"]},"
                          "\"00189005\":{\"vr\":\"UT\",\"Value\":[\"ut\"]},"
                          "\"00400254\":{\"vr\":\"UC\",\"Value\":[\"uc\",\"v\"]},"
                          "\"00020010\":{\"vr\":\"UI\",\"Value\":[\"1.2.840.10008.1.2\"]},"
                          "\"00080000\":{\"vr\":\"UL\",\"Value\":[5]},"
                          "\"00080054\":{\"vr\":\"AE\",\"Value\":[\"AE1\",\"AE2\"]},"
                          "\"00081155\":{\"vr\":\"UI\",\"Value\":[\"1.2.3\"]},"
                          "\"00100020\":{\"vr\":\"LO\"},"
                          "\"00100030\":{\"vr\":\"DA\",\"Value\":[]}",
                          NULL, 0, 0, NULL, NULL);
    EXPECT_STR(ds, 0x00080008, "CS", "ORIGINAL\\\\M ");
    EXPECT_STR(ds, 0x00080020, "DA", "20261201");
    EXPECT_STR(ds, 0x00080030, "TM", "1011");
    EXPECT_STR(ds, 0x0008002A, "DT", "20261201101112");
    EXPECT_STR(ds, 0x00081010, "SH", "MR1 ");
    EXPECT_STR(ds, 0x00101010, "AS", "042Y");
    EXPECT_STR(ds, 0x00081030, "LO", "a\\b ");
    EXPECT_STR(ds, 0x00204000, "LT", "x\\y\r\nz");
    EXPECT_STR(ds, 0x00081190, "UR", "http://e/x");
    EXPECT_STR(ds, 0x00189005, "UT", "ut");
    EXPECT_STR(ds, 0x00400254, "UC", "uc\\v");
    EXPECT_STR(ds, 0x00080054, "AE", "AE1\\AE2 ");
    expect(ds, 0x00081155, MT_VR('U', 'I'), "1.2.3\0", 6); /* UI padded with NUL */
    EXPECT_STR(ds, 0x00100020, "LO", "");
    EXPECT_STR(ds, 0x00100030, "DA", "");
    assert_null(mt_ds_get(ds, 0x00020010)); /* file meta: the caller builds it */
    assert_null(mt_ds_get(ds, 0x00080000)); /* group length */
    assert_null(mt_ds_get(ds, 0x00080005)); /* all ASCII: no character set added */
    mt_ds_free(ds);
}

static void test_pn_charset(void **st)
{
    (void)st;
    mt_ds_t *ds = convert("\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"Yamada^Tarou\","
                          "\"Ideographic\":\"\xe5\xb1\xb1\xe7\x94\xb0^\xe5\xa4\xaa\xe9\x83\x8e\","
                          "\"Phonetic\":\"\\u3084\\u307e\\u3060^\\u305f\\u308d\\u3046\"}]},"
                          "\"00081050\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"A^B\"},null,"
                          "{\"Ideographic\":\"I\"},{\"Phonetic\":\"P\"},{}]}",
                          NULL, 0, 0, NULL, NULL);
    EXPECT_STR(ds, 0x00100010, "PN",
               "Yamada^Tarou=\xe5\xb1\xb1\xe7\x94\xb0^\xe5\xa4\xaa\xe9\x83\x8e="
               "\xe3\x82\x84\xe3\x81\xbe\xe3\x81\xa0^\xe3\x81\x9f\xe3\x82\x8d\xe3\x81\x86");
    EXPECT_STR(ds, 0x00081050, "PN", "A^B\\\\=I\\==P\\");
    EXPECT_STR(ds, 0x00080005, "CS", "ISO_IR 192"); /* non-ASCII text: UTF-8 */
    mt_ds_free(ds);
}

static void test_numbers(void **st)
{
    (void)st;
    mt_ds_t *ds = convert(
        "\"00200013\":{\"vr\":\"IS\",\"Value\":[17,\"-3\",1e1,null]},"
        "\"00180050\":{\"vr\":\"DS\",\"Value\":[8.0,-1.5e-3,\" 2.5 \",0.30000000000000004]},"
        "\"00280010\":{\"vr\":\"US\",\"Value\":[0,65535]},"
        "\"00091001\":{\"vr\":\"SS\",\"Value\":[-32768,32767]},"
        "\"00091002\":{\"vr\":\"SL\",\"Value\":[-2147483648]},"
        "\"00091003\":{\"vr\":\"UL\",\"Value\":[4294967295]},"
        "\"00091004\":{\"vr\":\"FL\",\"Value\":[1.5]},"
        "\"00091005\":{\"vr\":\"FD\",\"Value\":[-0.25]},"
        "\"00091006\":{\"vr\":\"UV\",\"Value\":[18446744073709551615]},"
        "\"00091007\":{\"vr\":\"SV\",\"Value\":[\"-9223372036854775808\",1]},"
        "\"00091008\":{\"vr\":\"AT\",\"Value\":[\"00100010\",\"7fe00010\"]}",
        NULL, 0, 0, NULL, NULL);
    EXPECT_STR(ds, 0x00200013, "IS", "17\\-3\\10\\ ");
    EXPECT_STR(ds, 0x00180050, "DS", "8.0\\-1.5e-3\\2.5\\0.3 ");
    EXPECT_STR(ds, 0x00280010, "US", "\x00\x00\xff\xff");
    EXPECT_STR(ds, 0x00091001, "SS", "\x00\x80\xff\x7f");
    EXPECT_STR(ds, 0x00091002, "SL", "\x00\x00\x00\x80");
    EXPECT_STR(ds, 0x00091003, "UL", "\xff\xff\xff\xff");
    EXPECT_STR(ds, 0x00091004, "FL", "\x00\x00\xc0\x3f");
    EXPECT_STR(ds, 0x00091005, "FD", "\x00\x00\x00\x00\x00\x00\xd0\xbf");
    EXPECT_STR(ds, 0x00091006, "UV", "\xff\xff\xff\xff\xff\xff\xff\xff");
    EXPECT_STR(ds, 0x00091007, "SV",
               "\x00\x00\x00\x00\x00\x00\x00\x80\x01\x00\x00\x00\x00\x00\x00\x00");
    EXPECT_STR(ds, 0x00091008, "AT", "\x10\x00\x10\x00\xe0\x7f\x10\x00");
    mt_ds_free(ds);
}

static void test_binary_and_sequences(void **st)
{
    (void)st;
    static const uint8_t px[6] = {1, 2, 3, 4, 5, 6}, deep[3] = {7, 8, 9};
    mt_dj_bulk_t bulk[] = {
        {"http://c/px", "", px, sizeof px, false},
        {"http://c/deep", "", deep, sizeof deep, false},
        {"http://c/unused", "", deep, 1, false},
    };
    mt_ds_t *ds = convert(
        "\"7FE00010\":{\"vr\":\"OW\",\"BulkDataURI\":\"http://c/px\"},"
        "\"00091010\":{\"vr\":\"OB\",\"InlineBinary\":\"AAEC/w==\"},"
        "\"00091011\":{\"vr\":\"OF\",\"InlineBinary\":\"AACAPw==\"},"
        "\"00091012\":{\"vr\":\"OD\",\"InlineBinary\":\"AAAAAAAA8D8=\"},"
        "\"00091013\":{\"vr\":\"OL\",\"InlineBinary\":\"AQIDBA==\"},"
        "\"00091014\":{\"vr\":\"OV\",\"InlineBinary\":\"AQIDBAUGBwg=\"},"
        "\"00091015\":{\"vr\":\"UN\",\"InlineBinary\":\"3q2+7w==\"},"
        "\"00091016\":{\"vr\":\"OB\"},"
        "\"00081115\":{\"vr\":\"SQ\",\"Value\":[{\"00081150\":{\"vr\":\"UI\",\"Value\":[\"1.2\"]},"
        "\"00081199\":{\"vr\":\"SQ\",\"Value\":[{\"00091020\":{\"vr\":\"OB\","
        "\"BulkDataURI\":\"http://c/deep\"}}]}},{}]},"
        "\"00081140\":{\"vr\":\"SQ\",\"Value\":[]},"
        "\"00081141\":{\"vr\":\"SQ\"}",
        bulk, 3, 0, NULL, NULL);
    EXPECT_STR(ds, 0x7FE00010, "OW", "\x01\x02\x03\x04\x05\x06");
    EXPECT_STR(ds, 0x00091010, "OB", "\x00\x01\x02\xff");
    EXPECT_STR(ds, 0x00091011, "OF", "\x00\x00\x80\x3f");
    EXPECT_STR(ds, 0x00091012, "OD", "\x00\x00\x00\x00\x00\x00\xf0\x3f");
    EXPECT_STR(ds, 0x00091013, "OL", "\x01\x02\x03\x04");
    EXPECT_STR(ds, 0x00091014, "OV", "\x01\x02\x03\x04\x05\x06\x07\x08");
    EXPECT_STR(ds, 0x00091015, "UN", "\xde\xad\xbe\xef");
    EXPECT_STR(ds, 0x00091016, "OB", "");
    mt_ds_elem_t *sq = mt_ds_get(ds, 0x00081115);
    assert_int_equal(sq->vr, MT_VR('S', 'Q'));
    assert_int_equal(sq->n_items, 2);
    assert_int_equal(mt_ds_count(sq->items[1]), 0);
    mt_ds_elem_t *inner = mt_ds_get(sq->items[0], 0x00081199);
    assert_int_equal(inner->n_items, 1);
    expect(inner->items[0], 0x00091020, MT_VR('O', 'B'), "\x07\x08\x09\x00", 4); /* padded */
    assert_int_equal(mt_ds_get(ds, 0x00081140)->n_items, 0);
    assert_int_equal(mt_ds_get(ds, 0x00081141)->n_items, 0);
    assert_true(bulk[0].used && bulk[1].used && !bulk[2].used);
    mt_ds_free(ds);
}

static void test_encapsulated(void **st)
{
    (void)st;
    static const uint8_t f1[5] = {0xff, 0xd8, 1, 0xff, 0xd9}, f2[4] = {0xff, 0xd8, 0xff, 0xd9};
    const char *rle = "1.2.840.10008.1.2.5";
    mt_dj_bulk_t bulk[] = {
        {"u/px", rle, f1, sizeof f1, false},
        {"u/other", "", f2, sizeof f2, false},
        {"u/px", rle, f2, sizeof f2, false},
    };
    const mt_ts_t *ts = NULL;
    mt_ds_t *ds =
        convert("\"7FE00010\":{\"vr\":\"OW\",\"BulkDataURI\":\"u/px\"}", bulk, 3, 0, NULL, &ts);
    assert_string_equal(ts->uid, rle);
    mt_ds_elem_t *e = mt_ds_get(ds, MT_TAG_PIXEL_DATA);
    assert_true(e->encapsulated);
    assert_int_equal(e->vr, MT_VR('O', 'B'));
    assert_int_equal(e->n_frags, 3);
    assert_int_equal(e->frag_lens[0], 0); /* empty Basic Offset Table */
    assert_int_equal(e->frag_lens[1], 6); /* even length */
    assert_memory_equal(e->frags[1], f1, sizeof f1);
    assert_int_equal(e->frags[1][5], 0);
    assert_int_equal(e->frag_lens[2], 4);
    assert_memory_equal(e->frags[2], f2, sizeof f2);
    mt_buf_t b;
    mt_buf_init(&b, 1 << 20);
    assert_int_equal(mt_ds_encode(ds, ts, &b), 0); /* and it parses back in that syntax */
    mt_ds_t *back = NULL;
    mt_diag_t d;
    assert_int_equal(mt_ds_parse(b.data, b.len, ts, &back, &d), 0);
    assert_int_equal(mt_ds_get(back, MT_TAG_PIXEL_DATA)->n_frags, 3);
    mt_ds_free(back);
    mt_buf_dispose(&b);
    mt_ds_free(ds);
    /* a native syntax parameter: plain bytes */
    mt_dj_bulk_t native[] = {{"u/px", "1.2.840.10008.1.2.1", f2, sizeof f2, false}};
    ds = convert("\"7FE00010\":{\"vr\":\"OB\",\"BulkDataURI\":\"u/px\"}", native, 1, 0, NULL, &ts);
    assert_ptr_equal(ts, mt_ts_explicit_le);
    EXPECT_STR(ds, 0x7FE00010, "OB", "\xff\xd8\xff\xd9");
    mt_ds_free(ds);
}

static void test_errors(void **st)
{
    (void)st;
    static const uint8_t x[3] = {1, 2, 3};
    mt_dj_bulk_t bulk[] = {{"u/x", "", x, 3, false},
                           {"u/px", "1.2.3.999", x, 3, false},
                           {"u/be", "1.2.840.10008.1.2.2", x, 2, false},
                           {"u/mix", "1.2.840.10008.1.2.5", x, 2, false},
                           {"u/mix", "1.2.840.10008.1.2.4.50", x, 2, false}};
    static const struct {
        const char *attrs;
        int rc;
        const char *why;
    } cases[] = {
        {"\"00280010\":{\"vr\":\"US\",\"Value\":[\"two\"]}", MT_EMALFORMED,
         "binary integer value is not a number"},
        {"\"00280010\":{\"vr\":\"US\",\"Value\":[65536]}", MT_EMALFORMED,
         "binary integer value out of range"},
        {"\"00280010\":{\"vr\":\"US\",\"Value\":[1.5]}", MT_EMALFORMED,
         "binary integer value is not an integer in range"},
        {"\"00091001\":{\"vr\":\"SS\",\"Value\":[-32769]}", MT_EMALFORMED,
         "binary integer value out of range"},
        {"\"00091006\":{\"vr\":\"UV\",\"Value\":[-1]}", MT_EMALFORMED,
         "binary integer value out of range"},
        {"\"00091006\":{\"vr\":\"UV\",\"Value\":[18446744073709551616]}", MT_EMALFORMED,
         "binary integer value out of range"},
        {"\"00200013\":{\"vr\":\"IS\",\"Value\":[1.5]}", MT_EMALFORMED,
         "IS value is not an integer in range"},
        {"\"00200013\":{\"vr\":\"IS\",\"Value\":[\"x\"]}", MT_EMALFORMED,
         "IS/DS string is not a number"},
        {"\"00180050\":{\"vr\":\"DS\",\"Value\":[true]}", MT_EMALFORMED,
         "IS/DS value is not a number"},
        {"\"00100020\":{\"vr\":\"LO\",\"Value\":[3]}", MT_EMALFORMED, "text value is not a string"},
        {"\"00080060\":{\"vr\":\"CS\",\"Value\":[\"A\\\\B\"]}", MT_EMALFORMED,
         "text value not valid for its VR"},
        {"\"00081155\":{\"vr\":\"UI\",\"Value\":[\"1.2.x\"]}", MT_EMALFORMED,
         "text value not valid for its VR"},
        {"\"00204000\":{\"vr\":\"LT\",\"Value\":[\"a\",\"b\"]}", MT_EMALFORMED,
         "several values for a single-valued VR"},
        {"\"00100010\":{\"vr\":\"PN\",\"Value\":[\"Doe^John\"]}", MT_EMALFORMED,
         "PN value is not an object"},
        {"\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"Alphabet\":\"x\"}]}", MT_EMALFORMED,
         "PN value has an unknown component group"},
        {"\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"a=b\"}]}", MT_EMALFORMED,
         "PN component group holds '\\' or '='"},
        {"\"00091008\":{\"vr\":\"AT\",\"Value\":[\"0010001\"]}", MT_EMALFORMED,
         "AT value is not \"GGGGEEEE\""},
        {"\"00091008\":{\"vr\":\"AT\",\"Value\":[268435472]}", MT_EMALFORMED,
         "AT value is not \"GGGGEEEE\""},
        {"\"00091010\":{\"vr\":\"OB\",\"InlineBinary\":\"AAE\"}", MT_EMALFORMED,
         "InlineBinary is not base64"},
        {"\"00091010\":{\"vr\":\"OB\",\"InlineBinary\":\"A=AA\"}", MT_EMALFORMED,
         "InlineBinary is not base64"},
        {"\"00091010\":{\"vr\":\"OB\",\"Value\":[1]}", MT_EMALFORMED, "binary VR with \"Value\""},
        {"\"00091010\":{\"vr\":\"OB\",\"InlineBinary\":\"AA==\",\"BulkDataURI\":\"u/x\"}",
         MT_EMALFORMED, "both InlineBinary and BulkDataURI"},
        {"\"00091011\":{\"vr\":\"OW\",\"BulkDataURI\":\"u/x\"}", MT_EMALFORMED,
         "binary value is not a whole number of values"},
        {"\"00100020\":{\"vr\":\"LO\",\"InlineBinary\":\"AA==\"}", MT_EMALFORMED,
         "InlineBinary/BulkDataURI on a non-binary VR"},
        {"\"00091010\":{\"vr\":\"OB\",\"BulkDataURI\":\"u/none\"}", MT_ENOENT,
         "BulkDataURI names no part of the request"},
        {"\"00081115\":{\"vr\":\"SQ\",\"Value\":[{\"00081199\":{\"vr\":\"SQ\",\"Value\":[{"
         "\"00091020\":{\"vr\":\"OB\",\"BulkDataURI\":\"u/none\"}}]}}]}",
         MT_ENOENT, "BulkDataURI names no part of the request"},
        {"\"7FE00010\":{\"vr\":\"OB\",\"BulkDataURI\":\"u/px\"}", MT_EUNSUPPORTED,
         "unknown transfer-syntax parameter"},
        {"\"7FE00010\":{\"vr\":\"OB\",\"BulkDataURI\":\"u/be\"}", MT_EUNSUPPORTED,
         "bulk data syntax must be little endian"},
        {"\"7FE00010\":{\"vr\":\"OB\",\"BulkDataURI\":\"u/mix\"}", MT_EMALFORMED,
         "Pixel Data parts name different syntaxes"},
        {"\"00081115\":{\"vr\":\"SQ\",\"Value\":[1]}", MT_EMALFORMED,
         "sequence item is not an object"},
        {"\"00081115\":{\"vr\":\"SQ\",\"Value\":{}}", MT_EMALFORMED,
         "sequence \"Value\" is not an array"},
        {"\"00100020\":{\"vr\":\"LO\",\"Value\":\"x\"}", MT_EMALFORMED,
         "\"Value\" is not an array"},
        {"\"00100020\":{\"Value\":[\"x\"]}", MT_EMALFORMED, "attribute has no \"vr\""},
        {"\"00100020\":{\"vr\":\"XX\"}", MT_EMALFORMED, "unknown VR"},
        {"\"00100020\":[]", MT_EMALFORMED, "attribute is not an object"},
        {"\"PatientID\":{\"vr\":\"LO\"}", MT_EMALFORMED,
         "attribute name is not a tag (8 hex digits)"},
        {"\"FFFEE000\":{\"vr\":\"OB\"}", MT_EMALFORMED, "item tag as an attribute"},
        {"\"0010001a\":{\"vr\":\"LO\"},\"0010001A\":{\"vr\":\"LO\"}", MT_EMALFORMED,
         "attribute repeated"},
        {"\"00080016\":{\"vr\":\"UI\"}", MT_EMALFORMED, "attribute repeated"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        convert(cases[i].attrs, bulk, sizeof bulk / sizeof bulk[0], cases[i].rc, cases[i].why,
                NULL);
    /* the SOP UIDs are required */
    const char *no_inst = "{\"00080016\":{\"vr\":\"UI\",\"Value\":[\"1.2\"]}}";
    const char *no_cls = "{\"00080018\":{\"vr\":\"UI\",\"Value\":[\"1.2\"]}}";
    const char *texts[2] = {no_inst, no_cls},
               *whys[2] = {"SOP Instance UID missing", "SOP Class UID missing"};
    for (int k = 0; k < 2; k++) {
        mt_jsonv_t *v;
        mt_diag_t d;
        assert_int_equal(mt_jsonp_parse(texts[k], strlen(texts[k]), &v, &d), 0);
        mt_ds_t *ds = (mt_ds_t *)1;
        const mt_ts_t *ts;
        mt_dj_err_t err;
        assert_int_equal(mt_dicomjson_instance(v, NULL, 0, &ds, &ts, &err), MT_EMALFORMED);
        assert_null(ds);
        assert_string_equal(err.reason, whys[k]);
        mt_jsonv_free(v);
    }
}

/* tree -> JSON -> tree -> JSON gives the same JSON: what the writer says, the reader reads */
static void test_round_trip_files(void **st)
{
    (void)st;
    const char *files[] = {"pydicom/test_files/MR_small.dcm", "pydicom/test_files/CT_small.dcm",
                           "pydicom/test_files/test-SR.dcm", "pydicom/test_files/rtplan.dcm",
                           "pydicom/test_files/rtstruct.dcm"};
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", TESTDATA, files[k]);
        size_t n;
        uint8_t *buf = tu_read(path, &n);
        if (!buf) {
            print_message("skip: %s missing\n", path);
            continue;
        }
        mt_meta_t meta;
        mt_ds_t *ds = NULL;
        mt_diag_t d;
        assert_int_equal(mt_part10_parse_file_buf(buf, n, &meta, &ds, &d), 0);
        mt_json_opts_t o = {.bulk_threshold = 0};
        mt_buf_t a, b;
        mt_buf_init(&a, 1 << 24);
        mt_buf_init(&b, 1 << 24);
        assert_int_equal(mt_json_ds(ds, &o, &a), 0);
        mt_jsonv_t *v;
        if (mt_jsonp_parse((const char *)a.data, a.len, &v, &d) != 0)
            fail_msg("%s: writer output unreadable: %s at %llu", files[k], d.reason,
                     (unsigned long long)d.offset);
        mt_ds_t *back = NULL;
        const mt_ts_t *ts;
        mt_dj_err_t err;
        if (mt_dicomjson_instance(v, NULL, 0, &back, &ts, &err) != 0)
            fail_msg("%s: %s at %08X", files[k], err.reason, err.tag);
        assert_int_equal(mt_json_ds(back, &o, &b), 0);
        if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
            fail_msg("%s: JSON differs after the round trip:\n%.*s\n%.*s", files[k],
                     (int)(a.len < 2000 ? a.len : 2000), (char *)a.data,
                     (int)(b.len < 2000 ? b.len : 2000), (char *)b.data);
        mt_jsonv_free(v);
        mt_ds_free(back);
        mt_ds_free(ds);
        mt_buf_dispose(&a);
        mt_buf_dispose(&b);
        free(buf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_pn_charset),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_binary_and_sequences),
        cmocka_unit_test(test_encapsulated),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_round_trip_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
