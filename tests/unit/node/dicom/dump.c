/* tests for node/dicom/dump.c: the text of each kind of line (strings, numbers in either byte
 * order, bytes, sequences and items with defined and undefined lengths, UN sequences,
 * encapsulated pixel data), truncation of long values, and a dump of every test data file
 * (one line per element, item and delimiter; no crash). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dicom/ds.h"
#include "testutil.h"
#include "util/err.h"

static char *dump(const mt_ds_t *ds)
{
    mt_buf_t out;
    mt_buf_init(&out, 1 << 26);
    assert_int_equal(mt_ds_dump(ds, &out), 0);
    assert_int_equal(mt_buf_put_u8(&out, 0), 0);
    char *s = strdup((char *)out.data);
    mt_buf_dispose(&out);
    return s;
}

/* The line for tag (at its indentation) must start with prefix and contain "# tail". */
static void has_line(const char *text, const char *prefix, const char *tail)
{
    const char *p = strstr(text, prefix);
    if (!p || (p != text && p[-1] != '\n'))
        fail_msg("no line starting with '%s' in:\n%s", prefix, text);
    const char *eol = strchr(p, '\n');
    assert_non_null(eol);
    const char *h = strstr(p, "# ");
    if (!h || h > eol || strncmp(h + 2, tail, strlen(tail)) != 0)
        fail_msg("line '%.*s' lacks '# %s'", (int)(eol - p), p, tail);
}

static void test_lines(void **state)
{
    (void)state;
    tu_bytes_t *t = calloc(1, sizeof *t);
    tu_ex(t, 0x0008, 0x0008, "CS", 16);
    tu_raw(t, "ORIGINAL\\PRIMARY", 16);
    tu_ex(t, 0x0008, 0x1140, "SQ", MT_UNDEFINED_LENGTH);
    tu_im(t, 0xFFFE, 0xE000, 10);
    tu_ex(t, 0x0028, 0x0010, "US", 2);
    tu_u16(t, 512);
    tu_im(t, 0xFFFE, 0xE0DD, 0);
    tu_ex(t, 0x0010, 0x0010, "PN", 0);
    tu_ex(t, 0x0018, 0x0050, "DS", 4);
    tu_raw(t, "1.5 ", 4);
    tu_ex(t, 0x0018, 0x1310, "US", 8);
    tu_u16(t, 0), tu_u16(t, 256), tu_u16(t, 192), tu_u16(t, 0);
    tu_ex(t, 0x0018, 0x9087, "FD", 8);
    double b = 1000.0;
    tu_raw(t, &b, 8);
    tu_ex(t, 0x0020, 0x9165, "AT", 4);
    tu_u16(t, 0x0020), tu_u16(t, 0x9056);
    tu_ex(t, 0x0028, 0x1052, "DS", 2);
    tu_raw(t, "-1", 2);
    tu_ex(t, 0x0029, 0x0010, "LO", 4);
    tu_raw(t, "ACME", 4);
    tu_ex(t, 0x0029, 0x1001, "UN", MT_UNDEFINED_LENGTH);
    tu_im(t, 0xFFFE, 0xE000, MT_UNDEFINED_LENGTH);
    tu_im(t, 0xFFFE, 0xE00D, 0);
    tu_im(t, 0xFFFE, 0xE0DD, 0);
    tu_ex(t, 0x0029, 0x1002, "OB", 40);
    for (int i = 0; i < 40; i++)
        t->b[t->n++] = (uint8_t)i;
    tu_ex(t, 0x0020, 0x4000, "LT", 80);
    for (int i = 0; i < 80; i++)
        t->b[t->n++] = i == 3 ? '\n' : 'x';
    tu_ex(t, 0x7FE0, 0x0010, "OB", MT_UNDEFINED_LENGTH);
    tu_im(t, 0xFFFE, 0xE000, 0);
    tu_im(t, 0xFFFE, 0xE000, 4);
    tu_raw(t, "\xff\xd8\xff\xd9", 4);
    tu_im(t, 0xFFFE, 0xE0DD, 0);
    mt_ds_t *ds;
    mt_diag_t d;
    assert_int_equal(mt_ds_parse(t->b, t->n, mt_ts_explicit_le, &ds, &d), 0);
    char *s = dump(ds);
    has_line(s, "(0008,0008) CS [ORIGINAL\\PRIMARY]", " 16, 2 ImageType");
    has_line(s, "(0008,1140) SQ (Sequence with undefined length #=1)", "u/l, 1 ReferencedImage");
    has_line(s, "  (fffe,e000) na (Item with defined length #=1)", "u/l, 1 Item");
    has_line(s, "    (0028,0010) US 512", "  2, 1 Rows");
    has_line(s, "(fffe,e0dd) na (SequenceDelimitationItem)", "  0, 0 Sequence");
    has_line(s, "(0010,0010) PN (no value available)", "  0, 0 PatientName");
    has_line(s, "(0018,0050) DS [1.5]", "  4, 1 SliceThickness");
    has_line(s, "(0018,1310) US 0\\256\\192\\0", "  8, 4 AcquisitionMatrix");
    has_line(s, "(0018,9087) FD 1000", "  8, 1 DiffusionBValue");
    has_line(s, "(0020,9165) AT (0020,9056)", "  4, 1 DimensionIndexPointer");
    has_line(s, "(0028,1052) DS [-1]", "  2, 1 RescaleIntercept");
    has_line(s, "(0029,0010) LO [ACME]", "  4, 1 PrivateCreator");
    has_line(s, "(0029,1001) UN (Sequence with undefined length #=1)", "u/l, 1 PrivateTag");
    has_line(s, "  (fffe,e000) na (Item with undefined length #=0)", "u/l, 1 Item");
    has_line(s, "  (fffe,e00d) na (ItemDelimitationItem)", "  0, 0 ItemDelimitation");
    has_line(s, "(0029,1002) OB 00\\01\\02", " 40, 1 PrivateTag");
    assert_non_null(strstr(s, "\\1e\\1f...")); /* 32 bytes shown */
    has_line(s, "(0020,4000) LT [xxx.xxxxx", " 80, 1 ImageComments");
    assert_non_null(strstr(s, "xxxx]...")); /* 64 characters shown */
    has_line(s, "(7fe0,0010) OB (PixelSequence #=2)", "u/l, 1 PixelData");
    has_line(s, "  (fffe,e000) pi (no value available)", "  0, 1 Item");
    has_line(s, "  (fffe,e000) pi ff\\d8\\ff\\d9", "  4, 1 Item");
    free(s);
    mt_ds_free(ds);

    /* big endian numbers */
    const uint8_t be[] = {0x00, 0x28, 0x00, 0x10, 'U', 'S', 0x00, 0x02, 0x02, 0x00,
                          0x00, 0x28, 0x01, 0x06, 'S', 'S', 0x00, 0x02, 0xFF, 0xFE};
    assert_int_equal(mt_ds_parse(be, sizeof be, mt_ts_find("1.2.840.10008.1.2.2"), &ds, &d), 0);
    s = dump(ds);
    has_line(s, "(0028,0010) US 512", "  2, 1 Rows");
    has_line(s, "(0028,0106) SS -2", "  2, 1 SmallestImagePixelValue");
    free(s);
    mt_ds_free(ds);
    free(t);
    mt_buf_t out;
    mt_buf_init(&out, 16);
    assert_int_equal(mt_ds_dump(NULL, &out), MT_EINVAL);
}

typedef struct walk {
    size_t n;
} walk_t;

/* Lines expected, delimiter lines excepted: one per element, item and fragment. */
static size_t count_lines(const mt_ds_t *ds)
{
    size_t n = 0;
    for (size_t i = 0; i < mt_ds_count(ds); i++) {
        const mt_ds_elem_t *e = mt_ds_at(ds, i);
        n++;
        if (e->vr == MT_VR('S', 'Q')) {
            for (size_t k = 0; k < e->n_items; k++)
                n += 1 + count_lines(e->items[k]);
        } else if (e->encapsulated) {
            n += e->n_frags; /* (its delimiter line is not counted) */
        }
    }
    return n;
}

static void dump_one(const char *path, void *user)
{
    walk_t *w = user;
    size_t len;
    uint8_t *buf = tu_read(path, &len);
    mt_meta_t m;
    mt_ds_t *ds = NULL;
    if (buf && mt_part10_parse_file_buf(buf, len, &m, &ds, NULL) == 0) {
        char *s = dump(ds);
        size_t lines = 0, delims = 0;
        for (const char *p = s; *p; p++)
            lines += *p == '\n';
        for (const char *p = s; (p = strstr(p, "Delimitation")) != NULL; p += 12)
            delims++; /* "(...DelimitationItem)" and the keyword: 2 per line */
        assert_int_equal(lines - delims / 2, count_lines(ds));
        free(s);
        w->n++;
    }
    mt_ds_free(ds);
    free(buf);
}

static void test_dump_testdata(void **state)
{
    (void)state;
    if (!tu_have_testdata())
        skip();
    walk_t w = {0};
    tu_walk(TESTDATA, dump_one, &w);
    print_message("# dumped %zu files\n", w.n);
    assert_true(w.n > 300);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_dump_testdata),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
