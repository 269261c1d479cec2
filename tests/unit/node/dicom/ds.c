/* tests for node/dicom/ds.c: the data set tree (set/get/remove, ordering, padding, byte order of
 * the numeric getters and setters) and mt_ds_parse (nesting, UN sequences, fragments, errors,
 * every file of the shared test data). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dicom/ds.h"
#include "testutil.h"
#include "util/alloc.h"
#include "util/err.h"

static void test_set_get_remove(void **state)
{
    (void)state;
    long live = mt_alloc_live();
    mt_ds_t *ds = mt_ds_new();
    assert_int_equal(mt_ds_set_string(ds, MT_TAG(0x0010, 0x0020), MT_VR('L', 'O'), "ID1"), 0);
    assert_int_equal(mt_ds_set_string(ds, MT_TAG(0x0008, 0x0018), MT_VR('U', 'I'), "1.2.3"), 0);
    assert_int_equal(mt_ds_set_string(ds, MT_TAG(0x0010, 0x0010), MT_VR('P', 'N'), "Doe^J"), 0);
    assert_int_equal(mt_ds_set_u16(ds, MT_TAG(0x0028, 0x0010), 512), 0);
    assert_int_equal(mt_ds_set_u32(ds, MT_TAG(0x0008, 0x0000), 0x01020304), 0);
    assert_int_equal(mt_ds_count(ds), 5);
    /* sorted by tag */
    for (size_t i = 1; i < mt_ds_count(ds); i++)
        assert_true(mt_ds_at(ds, i - 1)->tag < mt_ds_at(ds, i)->tag);
    assert_null(mt_ds_at(ds, 5));
    /* padding: UI with NUL, others with a space, to an even length */
    mt_ds_elem_t *e = mt_ds_get(ds, MT_TAG(0x0008, 0x0018));
    assert_int_equal(e->len, 6);
    assert_memory_equal(e->value, "1.2.3\0", 6);
    e = mt_ds_get(ds, MT_TAG(0x0010, 0x0020));
    assert_int_equal(e->len, 4);
    assert_memory_equal(e->value, "ID1 ", 4);
    char s[65];
    assert_true(mt_ds_get_string(ds, MT_TAG(0x0008, 0x0018), s, sizeof s));
    assert_string_equal(s, "1.2.3");
    assert_true(mt_ds_get_string(ds, MT_TAG(0x0010, 0x0020), s, sizeof s));
    assert_string_equal(s, "ID1");
    assert_true(mt_ds_get_string(ds, MT_TAG(0x0010, 0x0010), s, 4)); /* truncated */
    assert_string_equal(s, "Doe");
    assert_false(mt_ds_get_string(ds, MT_TAG(0x0010, 0x0030), s, sizeof s));
    uint16_t u16;
    uint32_t u32;
    assert_true(mt_ds_get_u16(ds, MT_TAG(0x0028, 0x0010), &u16));
    assert_int_equal(u16, 512);
    assert_memory_equal(mt_ds_get(ds, MT_TAG(0x0028, 0x0010))->value, "\x00\x02", 2);
    assert_true(mt_ds_get_u32(ds, MT_TAG(0x0008, 0x0000), &u32));
    assert_int_equal(u32, 0x01020304);
    assert_false(mt_ds_get_u16(ds, MT_TAG(0x0028, 0x0011), &u16));
    /* replace keeps one element; a value may come from the element itself */
    e = mt_ds_get(ds, MT_TAG(0x0010, 0x0010));
    assert_int_equal(mt_ds_set(ds, e->tag, e->vr, e->value, 3), 0);
    assert_true(mt_ds_get_string(ds, MT_TAG(0x0010, 0x0010), s, sizeof s));
    assert_string_equal(s, "Doe");
    assert_int_equal(mt_ds_count(ds), 5);
    /* empty values */
    assert_int_equal(mt_ds_set(ds, MT_TAG(0x0010, 0x0010), MT_VR('P', 'N'), NULL, 0), 0);
    assert_null(mt_ds_get(ds, MT_TAG(0x0010, 0x0010))->value);
    assert_true(mt_ds_get_string(ds, MT_TAG(0x0010, 0x0010), s, sizeof s));
    assert_string_equal(s, "");
    /* a binary VR with an odd length: padded with NUL (not validated) */
    assert_int_equal(mt_ds_set(ds, MT_TAG(0x0028, 0x0011), MT_VR('U', 'S'), "\x01", 1), 0);
    assert_true(mt_ds_get_u16(ds, MT_TAG(0x0028, 0x0011), &u16));
    assert_int_equal(u16, 1);
    assert_true(mt_ds_remove(ds, MT_TAG(0x0028, 0x0011)));
    /* invalid: item tags, SQ with a value */
    assert_int_equal(mt_ds_set(ds, MT_TAG_ITEM, MT_VR('O', 'B'), "ab", 2), MT_EINVAL);
    assert_int_equal(mt_ds_set(ds, MT_TAG(0x0008, 0x1140), MT_VR('S', 'Q'), "ab", 2), MT_EINVAL);
    /* OB odd: padded with NUL */
    assert_int_equal(mt_ds_set(ds, MT_TAG(0x0009, 0x1001), MT_VR('O', 'B'), "abc", 3), 0);
    assert_memory_equal(mt_ds_get(ds, MT_TAG(0x0009, 0x1001))->value, "abc\0", 4);
    /* remove */
    assert_true(mt_ds_remove(ds, MT_TAG(0x0010, 0x0020)));
    assert_false(mt_ds_remove(ds, MT_TAG(0x0010, 0x0020)));
    assert_null(mt_ds_get(ds, MT_TAG(0x0010, 0x0020)));
    /* a sequence whose items the caller sets (as deid/engine.c does) */
    assert_int_equal(mt_ds_set(ds, MT_TAG(0x0012, 0x0064), MT_VR('S', 'Q'), NULL, 0), 0);
    e = mt_ds_get(ds, MT_TAG(0x0012, 0x0064));
    e->items = mt_calloc(2, sizeof *e->items);
    e->items[0] = mt_ds_new();
    e->items[1] = mt_ds_new();
    e->n_items = 2;
    assert_int_equal(mt_ds_set_string(e->items[1], MT_TAG(0x0008, 0x0100), MT_VR('S', 'H'), "x"),
                     0);
    /* replacing an SQ with a plain value frees its items */
    assert_int_equal(mt_ds_set_string(ds, MT_TAG(0x0012, 0x0064), MT_VR('L', 'O'), "no"), 0);
    assert_int_equal(mt_ds_get(ds, MT_TAG(0x0012, 0x0064))->n_items, 0);
    mt_ds_free(ds);
    mt_ds_free(NULL);
    assert_int_equal(mt_alloc_live(), live);
}

static void test_big_endian_getters(void **state)
{
    (void)state;
    const uint8_t be[] = {0x00, 0x28, 0x00, 0x10, 'U', 'S', 0x00, 0x02, 0x02, 0x00,
                          0x00, 0x28, 0x00, 0x11, 'U', 'S', 0x00, 0x02, 0x01, 0x00};
    mt_ds_t *ds;
    mt_diag_t d;
    assert_int_equal(mt_ds_parse(be, sizeof be, mt_ts_find("1.2.840.10008.1.2.2"), &ds, &d), 0);
    uint16_t v;
    assert_true(mt_ds_get_u16(ds, MT_TAG(0x0028, 0x0010), &v));
    assert_int_equal(v, 512);
    assert_int_equal(mt_ds_set_u16(ds, MT_TAG(0x0028, 0x0011), 300), 0);
    assert_memory_equal(mt_ds_get(ds, MT_TAG(0x0028, 0x0011))->value, "\x01\x2c", 2);
    assert_true(mt_ds_get_u16(ds, MT_TAG(0x0028, 0x0011), &v));
    assert_int_equal(v, 300);
    mt_ds_free(ds);
}

static void tree_bytes(tu_bytes_t *tp)
{
    tu_bytes_t t = {.n = 0};
    tu_ex(&t, 0x0010, 0x0010, "PN", 4); /* out of order on purpose */
    tu_raw(&t, "Doe^", 4);
    tu_ex(&t, 0x0008, 0x0016, "UI", 4);
    tu_raw(&t, "1.2\0", 4);
    tu_ex(&t, 0x0008, 0x1140, "SQ", MT_UNDEFINED_LENGTH);
    tu_im(&t, 0xFFFE, 0xE000, 10);
    tu_ex(&t, 0x0008, 0x1150, "UI", 2);
    tu_raw(&t, "12", 2);
    tu_im(&t, 0xFFFE, 0xE000, MT_UNDEFINED_LENGTH);
    tu_im(&t, 0xFFFE, 0xE00D, 0);
    tu_im(&t, 0xFFFE, 0xE0DD, 0);
    tu_ex(&t, 0x0009, 0x1001, "UN", MT_UNDEFINED_LENGTH);
    tu_im(&t, 0xFFFE, 0xE000, MT_UNDEFINED_LENGTH);
    tu_im(&t, 0x0028, 0x0010, 2);
    tu_u16(&t, 7);
    tu_im(&t, 0xFFFE, 0xE00D, 0);
    tu_im(&t, 0xFFFE, 0xE0DD, 0);
    tu_ex(&t, 0x7FE0, 0x0010, "OB", MT_UNDEFINED_LENGTH);
    tu_im(&t, 0xFFFE, 0xE000, 0);
    tu_im(&t, 0xFFFE, 0xE000, 4);
    tu_raw(&t, "\xff\xd8\xff\xd9", 4);
    tu_im(&t, 0xFFFE, 0xE0DD, 0);
    *tp = t;
}

static void test_parse_tree(void **state)
{
    (void)state;
    tu_bytes_t t;
    tree_bytes(&t);
    long live = mt_alloc_live();
    mt_ds_t *ds;
    mt_diag_t d;
    assert_int_equal(mt_ds_parse(t.b, t.n, mt_ts_explicit_le, &ds, &d), 0);
    assert_int_equal(mt_ds_count(ds), 5);
    assert_int_equal(mt_ds_at(ds, 0)->tag, MT_TAG(0x0008, 0x0016));
    mt_ds_elem_t *sq = mt_ds_get(ds, MT_TAG(0x0008, 0x1140));
    assert_int_equal(sq->vr, MT_VR('S', 'Q'));
    assert_int_equal(sq->len, MT_UNDEFINED_LENGTH);
    assert_false(sq->from_un);
    assert_int_equal(sq->n_items, 2);
    assert_int_equal(mt_ds_count(sq->items[0]), 1);
    assert_int_equal(mt_ds_count(sq->items[1]), 0);
    char s[16];
    assert_true(mt_ds_get_string(sq->items[0], MT_TAG(0x0008, 0x1150), s, sizeof s));
    assert_string_equal(s, "12");
    mt_ds_elem_t *un = mt_ds_get(ds, MT_TAG(0x0009, 0x1001));
    assert_int_equal(un->vr, MT_VR('S', 'Q'));
    assert_true(un->from_un);
    assert_int_equal(un->n_items, 1);
    uint16_t v;
    assert_true(mt_ds_get_u16(un->items[0], MT_TAG(0x0028, 0x0010), &v));
    assert_int_equal(v, 7);
    mt_ds_elem_t *px = mt_ds_get(ds, MT_TAG_PIXEL_DATA);
    assert_true(px->encapsulated);
    assert_null(px->value);
    assert_int_equal(px->n_frags, 2);
    assert_int_equal(px->frag_lens[0], 0);
    assert_int_equal(px->frag_lens[1], 4);
    assert_memory_equal(px->frags[1], "\xff\xd8\xff\xd9", 4);
    mt_ds_free(ds);
    assert_int_equal(mt_alloc_live(), live);
    /* errors: no tree, diag set, nothing leaked */
    mt_diag_t bad = {0, NULL};
    assert_int_equal(mt_ds_parse(t.b, t.n - 3, mt_ts_explicit_le, &ds, &bad), MT_EMALFORMED);
    assert_null(ds);
    assert_non_null(bad.reason);
    assert_int_equal(mt_alloc_live(), live);
}

typedef struct take_at {
    mt_ds_builder_t *b;
    mt_ds_t *taken; /* taken inside the sequence: must be NULL */
    bool tried;
} take_at_t;

static int to_builder(void *user, mt_ds_event_t ev, const mt_elem_t *e)
{
    take_at_t *t = user;
    if (ev == MT_DS_EV_ITEM_START && !t->tried) {
        t->tried = true;
        t->taken = mt_ds_builder_take(t->b);
    }
    return mt_ds_builder_event(t->b, ev, e);
}

/* mt_ds_builder: the events of a reader fed byte by byte build the tree mt_ds_parse builds
 * (same encoding); take refuses while a sequence is open; a chunked value is refused. */
static void test_builder(void **state)
{
    (void)state;
    tu_bytes_t t;
    tree_bytes(&t);
    long live = mt_alloc_live();
    mt_ds_t *want;
    mt_diag_t d;
    assert_int_equal(mt_ds_parse(t.b, t.n, mt_ts_explicit_le, &want, &d), 0);
    take_at_t ta = {mt_ds_builder_new(mt_ts_explicit_le), NULL, false};
    mt_ds_reader_opts_t o = {.ts = mt_ts_explicit_le, .cb = to_builder, .user = &ta};
    mt_ds_reader_t *r = mt_ds_reader_new(&o);
    for (size_t i = 0; i < t.n; i++)
        assert_int_equal(mt_ds_reader_feed(r, t.b + i, 1), 0);
    assert_int_equal(mt_ds_reader_finish(r), 0);
    mt_ds_reader_free(r);
    assert_true(ta.tried);
    assert_null(ta.taken);
    mt_ds_t *got = mt_ds_builder_take(ta.b);
    assert_non_null(got);
    assert_null(mt_ds_builder_take(ta.b)); /* once */
    mt_buf_t a, b;
    mt_buf_init(&a, 1 << 20);
    mt_buf_init(&b, 1 << 20);
    assert_int_equal(mt_ds_encode(want, mt_ts_explicit_le, &a), 0);
    assert_int_equal(mt_ds_encode(got, mt_ts_explicit_le, &b), 0);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    mt_buf_dispose(&a);
    mt_buf_dispose(&b);
    mt_ds_free(want);
    mt_ds_free(got);
    assert_int_equal(mt_ds_builder_event(ta.b, MT_DS_EV_ELEMENT, &(mt_elem_t){0}), MT_EINVAL);
    mt_ds_builder_free(ta.b);
    /* a value delivered in chunks cannot be built */
    mt_ds_builder_t *b2 = mt_ds_builder_new(mt_ts_explicit_le);
    mt_elem_t e = {.tag = MT_TAG(0x0008, 0x0016), .vr = MT_VR('U', 'I'), .len = 8};
    assert_int_equal(mt_ds_builder_event(b2, MT_DS_EV_ELEMENT, &e), MT_EINVAL);
    mt_ds_builder_free(b2);
    assert_null(mt_ds_builder_new(NULL));
    assert_int_equal(mt_alloc_live(), live);
}

static bool keep_some(void *user, uint32_t tag)
{
    (*(int *)user)++;
    return tag == MT_TAG(0x0008, 0x0016) || tag == MT_TAG(0x0008, 0x1140) ||
           tag == MT_TAG(0x0008, 0x1150) || tag == MT_TAG(0x0028, 0x0010);
}

/* mt_ds_new_borrowed: appended in ascending order only, values are the caller's (read
 * through the usual getters; the tree refuses changes; freeing it leaves them alone). */
static void test_borrowed_tree(void **state)
{
    (void)state;
    uint8_t values[] = "SIEMENS 1.2.3";
    mt_ds_t *ds = mt_ds_new_borrowed(false, 1);
    assert_int_equal(mt_ds_borrow_append(ds, MT_TAG(0x0008, 0x0070), MT_VR('L', 'O'), values, 8),
                     0);
    assert_int_equal(mt_ds_borrow_append(ds, MT_TAG(0x0020, 0x000E), MT_VR('U', 'I'),
                                         values + 8, 5),
                     0);
    assert_int_equal(mt_ds_borrow_append(ds, MT_TAG(0x0020, 0x000E), MT_VR('U', 'I'), values, 1),
                     MT_EINVAL); /* not above the last */
    assert_int_equal(mt_ds_borrow_append(ds, MT_TAG(0x0010, 0x0010), MT_VR('P', 'N'), values, 1),
                     MT_EINVAL);
    char out[16];
    assert_true(mt_ds_get_string(ds, MT_TAG(0x0008, 0x0070), out, sizeof out));
    assert_string_equal(out, "SIEMENS");
    assert_true(mt_ds_get_string(ds, MT_TAG(0x0020, 0x000E), out, sizeof out));
    assert_string_equal(out, "1.2.3");
    assert_ptr_equal(mt_ds_get(ds, MT_TAG(0x0020, 0x000E))->value, values + 8);
    assert_int_not_equal(mt_ds_set_string(ds, MT_TAG(0x0008, 0x0060), MT_VR('C', 'S'), "MR"), 0);
    mt_ds_free(ds); /* values is on the stack: freeing it would crash under ASan */
    mt_ds_t *own = mt_ds_new();
    assert_int_equal(mt_ds_borrow_append(own, MT_TAG(0x0008, 0x0070), MT_VR('L', 'O'), values, 8),
                     MT_EINVAL); /* not a borrowed tree */
    mt_ds_free(own);
}

/* Filtered: elements and sequences not kept are gone with their contents (the UN sequence
 * with the kept (0028,0010) inside, the encapsulated Pixel Data); values point into the input;
 * the tree is read-only; the same errors as the full parse. */
static void test_parse_filtered(void **state)
{
    (void)state;
    tu_bytes_t t;
    tree_bytes(&t);
    long live = mt_alloc_live();
    mt_ds_t *ds;
    mt_diag_t d;
    int asked = 0;
    assert_int_equal(mt_ds_parse_filtered(t.b, t.n, mt_ts_explicit_le, keep_some, &asked, &ds, &d),
                     0);
    assert_int_equal(asked, 6); /* 5 top-level + (0008,1150); nothing inside the dropped ones */
    assert_int_equal(mt_ds_count(ds), 2);
    assert_null(mt_ds_get(ds, MT_TAG(0x0010, 0x0010)));
    assert_null(mt_ds_get(ds, MT_TAG(0x0009, 0x1001)));
    assert_null(mt_ds_get(ds, MT_TAG(0x0028, 0x0010)));
    assert_null(mt_ds_get(ds, MT_TAG_PIXEL_DATA));
    mt_ds_elem_t *sq = mt_ds_get(ds, MT_TAG(0x0008, 0x1140));
    assert_int_equal(sq->n_items, 2);
    mt_ds_elem_t *ref = mt_ds_get(sq->items[0], MT_TAG(0x0008, 0x1150));
    assert_true(ref->value >= t.b && ref->value + 2 <= t.b + t.n); /* borrowed */
    char s[16];
    assert_true(mt_ds_get_string(ds, MT_TAG(0x0008, 0x0016), s, sizeof s));
    assert_string_equal(s, "1.2");
    assert_int_equal(mt_ds_set_string(ds, MT_TAG(0x0008, 0x0018), MT_VR('U', 'I'), "1"),
                     MT_EINVAL);
    assert_false(mt_ds_remove(sq->items[0], MT_TAG(0x0008, 0x1150)));
    mt_ds_free(ds);
    assert_int_equal(mt_alloc_live(), live);
    mt_diag_t bad = {0, NULL};
    assert_int_equal(
        mt_ds_parse_filtered(t.b, t.n - 3, mt_ts_explicit_le, keep_some, &asked, &ds, &bad),
        MT_EMALFORMED);
    assert_null(ds);
    assert_int_equal(mt_alloc_live(), live);
}

typedef struct walk {
    size_t n_parsed, n_failed;
} walk_t;

static void parse_one(const char *path, void *user)
{
    walk_t *w = user;
    size_t len, off;
    uint8_t *buf = tu_read(path, &len);
    mt_meta_t m;
    if (!buf || mt_part10_read_meta(buf, len, &m, &off, NULL) != 0) {
        free(buf);
        return;
    }
    const mt_ts_t *ts = mt_ts_find(m.transfer_syntax_uid);
    if (ts) {
        mt_ds_t *ds = NULL;
        mt_diag_t d = {0, NULL};
        int rc = mt_ds_parse(buf + off, len - off, ts, &ds, &d);
        if (rc) {
            w->n_failed++;
            assert_null(ds);
            assert_non_null(d.reason);
        } else {
            w->n_parsed++;
            assert_true(mt_ds_count(ds) > 0);
        }
        mt_ds_free(ds);
    }
    free(buf);
}

static void test_parse_testdata(void **state)
{
    (void)state;
    if (!tu_have_testdata())
        skip();
    walk_t w = {0};
    long live = mt_alloc_live();
    tu_walk(TESTDATA, parse_one, &w);
    print_message("# parsed %zu files, %zu failed (the malformed ones)\n", w.n_parsed, w.n_failed);
    assert_true(w.n_parsed > 300);
    assert_true(w.n_failed <= 8);
    assert_int_equal(mt_alloc_live(), live);
}

/* Out of memory while copying values (mt_try_malloc fails on the n-th call): MT_ENOMEM, no
 * tree, nothing leaked; also through zlib for a deflated file. */
static void test_parse_out_of_memory(void **state)
{
    (void)state;
    if (!tu_have_testdata())
        skip();
    static const char *files[] = {"pydicom/test_files/test-SR.dcm",
                                  "pydicom/test_files/image_dfl.dcm"};
    for (size_t f = 0; f < 2; f++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", TESTDATA, files[f]);
        size_t len, off;
        uint8_t *buf = tu_read(path, &len);
        assert_non_null(buf);
        mt_meta_t m;
        assert_int_equal(mt_part10_read_meta(buf, len, &m, &off, NULL), 0);
        const mt_ts_t *ts = mt_ts_find(m.transfer_syntax_uid);
        long live = mt_alloc_live();
        size_t n_fail = 0;
        for (long n = 0;; n++) {
            mt_ds_t *ds = NULL;
            mt_diag_t d = {0, NULL};
            mt_alloc_fail_after(n);
            int rc = mt_ds_parse(buf + off, len - off, ts, &ds, &d);
            mt_alloc_fail_after(-1);
            if (rc == 0) {
                mt_ds_free(ds);
                break;
            }
            assert_int_equal(rc, MT_ENOMEM);
            assert_null(ds);
            assert_int_equal(mt_alloc_live(), live);
            n_fail++;
        }
        assert_true(n_fail > 10);
        assert_int_equal(mt_alloc_live(), live);
        free(buf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_get_remove),      cmocka_unit_test(test_big_endian_getters),
        cmocka_unit_test(test_parse_tree),          cmocka_unit_test(test_parse_testdata),
        cmocka_unit_test(test_parse_out_of_memory), cmocka_unit_test(test_parse_filtered),
        cmocka_unit_test(test_borrowed_tree),       cmocka_unit_test(test_builder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
