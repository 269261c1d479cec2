/* tests for node/dicom/ds_read.c: the push-fed reader. Hand-made streams for every structure
 * (nested sequences and items with defined and undefined lengths, UN sequences, encapsulated
 * pixel data, big endian), fragmentation equivalence (1-byte feeds and random splits give the
 * same events as one feed, on hand-made streams and on the shared test data), bounded memory
 * for a 2 GiB value, malformed input (each with its offset and reason), every truncation of a
 * real file, and deflate.
 *
 * ds_read.c is included so that the memory test can look at the reader's value buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "../../../../node/dicom/ds_read.c"

#include <cmocka.h>
#include <zlib.h>
#include "testutil.h"
#include "util/err.h"

/* ---- an event log: one line per event, chunks merged (their split depends on the feeds) ---- */
typedef struct log {
    char *s;
    size_t n, cap;
    uint64_t chunk_hash, chunk_len;
    size_t n_events;
    int stop_at; /* return MT_ECANCELED at this event (0: never) */
} log_t;

static void log_add(log_t *l, const char *line)
{
    size_t k = strlen(line);
    if (l->n + k + 1 > l->cap) {
        l->cap = (l->n + k + 1) * 2;
        l->s = realloc(l->s, l->cap);
    }
    memcpy(l->s + l->n, line, k + 1);
    l->n += k;
}

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static int on_ev(void *user, mt_ds_event_t ev, const mt_elem_t *e)
{
    log_t *l = user;
    char line[200];
    l->n_events++;
    if (l->stop_at && (int)l->n_events == l->stop_at)
        return MT_ECANCELED;
    if (ev == MT_DS_EV_VALUE_CHUNK) {
        if (!l->chunk_len)
            l->chunk_hash = 1469598103934665603ull;
        l->chunk_hash = fnv(l->chunk_hash, e->value, e->value_len);
        l->chunk_len += e->value_len;
        if (e->last_chunk) {
            snprintf(line, sizeof line, "  chunks %zu %016llx\n", (size_t)l->chunk_len,
                     (unsigned long long)l->chunk_hash);
            log_add(l, line);
            l->chunk_len = 0;
        }
        return 0;
    }
    uint64_t h = e->value ? fnv(1469598103934665603ull, e->value, e->value_len) : 0;
    snprintf(line, sizeof line, "%d %08x %c%c %u d%u @%llu %s%zu %016llx\n", (int)ev, e->tag,
             e->vr ? (char)(e->vr >> 8) : '-', e->vr ? (char)e->vr : '-', e->len, e->depth,
             (unsigned long long)e->offset, e->value ? "v" : "n", e->value_len,
             (unsigned long long)h);
    log_add(l, line);
    return 0;
}

static const mt_ts_t *ts_be(void)
{
    return mt_ts_find("1.2.840.10008.1.2.2");
}

/* Read buf with feeds of the given sizes (cycled; 0 = one feed). Returns rc; log in *l. */
static int run(const mt_ts_t *ts, const uint8_t *buf, size_t len, size_t step, unsigned seed,
               size_t max_buf, log_t *l, mt_diag_t *diag)
{
    memset(l, 0, sizeof *l);
    log_add(l, "");
    mt_ds_reader_opts_t o = {.ts = ts, .cb = on_ev, .user = l, .max_buffered_value = max_buf};
    mt_ds_reader_t *r = mt_ds_reader_new(&o);
    assert_non_null(r);
    int rc = 0;
    size_t pos = 0;
    while (pos < len && !rc) {
        size_t k = len - pos;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            size_t m = 1 + (seed >> 16) % (step ? step : 64);
            k = k < m ? k : m;
        } else if (step && k > step) {
            k = step;
        }
        rc = mt_ds_reader_feed(r, buf + pos, k);
        pos += k;
    }
    if (!rc)
        rc = mt_ds_reader_finish(r);
    if (diag)
        *diag = *mt_ds_reader_diag(r);
    if (!rc && !ts->deflated)
        assert_int_equal(mt_ds_reader_offset(r), len);
    mt_ds_reader_free(r);
    return rc;
}

static void check_fragmentation(const mt_ts_t *ts, const uint8_t *buf, size_t len, size_t max_buf,
                                bool bytewise)
{
    log_t a, b;
    mt_diag_t da, db;
    int ra = run(ts, buf, len, 0, 0, max_buf, &a, &da);
    if (bytewise) {
        int rb = run(ts, buf, len, 1, 0, max_buf, &b, &db);
        assert_int_equal(ra, rb);
        assert_string_equal(a.s, b.s);
        if (ra)
            assert_int_equal(da.offset, db.offset);
        free(b.s);
    }
    for (unsigned seed = 1; seed < 4; seed++) {
        int rb = run(ts, buf, len, seed == 3 ? 4096 : 97, seed, max_buf, &b, &db);
        assert_int_equal(ra, rb);
        assert_string_equal(a.s, b.s);
        if (ra) {
            assert_int_equal(da.offset, db.offset);
            assert_string_equal(da.reason, db.reason);
        }
        free(b.s);
    }
    free(a.s);
}

/* ---- hand-made streams ---- */

/* Explicit VR LE: a string, a defined-length SQ holding an undefined-length item holding an
 * undefined-length SQ with a defined-length item, an UN sequence of undefined length (implicit
 * inside), OB, encapsulated Pixel Data with two fragments. */
static void make_nested(tu_bytes_t *t)
{
    t->n = 0;
    tu_ex(t, 0x0008, 0x0016, "UI", 4);
    tu_raw(t, "1.2\0", 4);
    size_t sq_len_at = t->n + 8;
    tu_ex(t, 0x0008, 0x1140, "SQ", 0); /* patched */
    size_t sq_start = t->n;
    tu_im(t, 0xFFFE, 0xE000, MT_UNDEFINED_LENGTH);
    tu_ex(t, 0x0008, 0x1150, "UI", 2);
    tu_raw(t, "12", 2);
    tu_ex(t, 0x0040, 0xA730, "SQ", MT_UNDEFINED_LENGTH);
    tu_im(t, 0xFFFE, 0xE000, 10);
    tu_ex(t, 0x0028, 0x0010, "US", 2);
    tu_u16(t, 512);
    tu_im(t, 0xFFFE, 0xE0DD, 0);
    tu_im(t, 0xFFFE, 0xE00D, 0);
    uint32_t sq_len = (uint32_t)(t->n - sq_start);
    memcpy(t->b + sq_len_at, &sq_len, 4);
    tu_ex(t, 0x0009, 0x0010, "LO", 4);
    tu_raw(t, "ACME", 4);
    tu_ex(t, 0x0009, 0x1001, "UN", MT_UNDEFINED_LENGTH);
    tu_im(t, 0xFFFE, 0xE000, MT_UNDEFINED_LENGTH);
    tu_im(t, 0x0010, 0x0010, 4); /* implicit inside UN */
    tu_raw(t, "Doe^", 4);
    tu_im(t, 0xFFFE, 0xE00D, 0);
    tu_im(t, 0xFFFE, 0xE0DD, 0);
    tu_ex(t, 0x0028, 0x0100, "US", 2);
    tu_u16(t, 16);
    tu_ex(t, 0x7FE0, 0x0010, "OB", MT_UNDEFINED_LENGTH);
    tu_im(t, 0xFFFE, 0xE000, 0); /* empty basic offset table */
    tu_im(t, 0xFFFE, 0xE000, 6);
    tu_raw(t, "\xff\xd8\x01\x02\xff\xd9", 6);
    tu_im(t, 0xFFFE, 0xE0DD, 0);
    tu_ex(t, 0xFFFC, 0xFFFC, "OB", 2);
    tu_raw(t, "\0\0", 2);
}

static void test_nested_events(void **state)
{
    (void)state;
    tu_bytes_t t;
    make_nested(&t);
    log_t l;
    mt_diag_t d;
    assert_int_equal(run(mt_ts_explicit_le, t.b, t.n, 0, 0, 0, &l, &d), 0);
    /* the event skeleton: kind, tag, vr, depth */
    const char *want[] = {
        "0 00080016 UI d0", "2 00081140 SQ d0", "3 fffee000 -- d1", "0 00081150 UI d1",
        "2 0040a730 SQ d1", "3 fffee000 -- d2", "0 00280010 US d2", "4 fffee00d -- d2",
        "5 0040a730 SQ d1", "4 fffee00d -- d1", "5 00081140 SQ d0", "0 00090010 LO d0",
        "2 00091001 UN d0", "3 fffee000 -- d1", "0 00100010 PN d1", "4 fffee00d -- d1",
        "5 00091001 UN d0", "0 00280100 US d0", "0 7fe00010 OB d0", "6 fffee000 OB d0",
        "6 fffee000 OB d0", "5 7fe00010 OB d0", "0 fffcfffc OB d0",
    };
    char *p = l.s;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_non_null(p);
        char got[32];
        /* "kind tag vr len dN": drop the len field */
        int kind;
        unsigned tag, len, depth;
        char vr[3];
        assert_int_equal(sscanf(p, "%d %x %2s %u d%u", &kind, &tag, vr, &len, &depth), 5);
        snprintf(got, sizeof got, "%d %08x %s d%u", kind, tag, vr, depth);
        assert_string_equal(got, want[i]);
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    assert_true(p && *p == '\0');
    free(l.s);
    check_fragmentation(mt_ts_explicit_le, t.b, t.n, 0, true);
    check_fragmentation(mt_ts_explicit_le, t.b, t.n, 3, true); /* values chunked */
}

static void test_big_endian(void **state)
{
    (void)state;
    const uint8_t be[] = {
        0x00, 0x28, 0x00, 0x10, 'U',  'S',  0x00, 0x02, 0x02, 0x00,             /* Rows 512 */
        0x00, 0x40, 0xA7, 0x30, 'S',  'Q',  0,    0,    0xFF, 0xFF, 0xFF, 0xFF, /* SQ u/l */
        0xFF, 0xFE, 0xE0, 0x00, 0x00, 0x00, 0x00, 0x0A,                         /* item 10 */
        0x00, 0x28, 0x00, 0x11, 'U',  'S',  0x00, 0x02, 0x01, 0x00,             /* Columns */
        0xFF, 0xFE, 0xE0, 0xDD, 0x00, 0x00, 0x00, 0x00,                         /* seq delim */
    };
    log_t l;
    assert_int_equal(run(ts_be(), be, sizeof be, 0, 0, 0, &l, NULL), 0);
    assert_non_null(strstr(l.s, "0 00280010 US 2 d0 @0 v2"));
    assert_non_null(strstr(l.s, "3 fffee000 -- 10 d1 @22"));
    assert_non_null(strstr(l.s, "5 0040a730 SQ 0 d0 @40"));
    free(l.s);
    check_fragmentation(ts_be(), be, sizeof be, 0, true);
}

static void test_implicit_vr_from_dictionary(void **state)
{
    (void)state;
    tu_bytes_t t = {.n = 0};
    tu_im(&t, 0x0008, 0x0000, 4);
    tu_u32(&t, 20);
    tu_im(&t, 0x0010, 0x0010, 4);
    tu_raw(&t, "Doe^", 4);
    tu_im(&t, 0x0028, 0x0010, 2);
    tu_u16(&t, 64);
    tu_im(&t, 0x0028, 0x0011, 3); /* US with odd length: the dictionary's VR does not fit: UN */
    tu_raw(&t, "abc", 3);
    tu_im(&t, 0x0029, 0x1010, 2); /* private: UN */
    tu_raw(&t, "xy", 2);
    tu_im(&t, 0x0040, 0xA730, MT_UNDEFINED_LENGTH); /* SQ from the dictionary */
    tu_im(&t, 0xFFFE, 0xE0DD, 0);
    tu_im(&t, 0x0041, 0x1010, MT_UNDEFINED_LENGTH); /* unknown, undefined length: UN sequence */
    tu_im(&t, 0xFFFE, 0xE000, 0);
    tu_im(&t, 0xFFFE, 0xE0DD, 0);
    log_t l;
    assert_int_equal(run(mt_ts_implicit_le, t.b, t.n, 0, 0, 0, &l, NULL), 0);
    assert_non_null(strstr(l.s, "0 00080000 UL 4"));
    assert_non_null(strstr(l.s, "0 00100010 PN 4"));
    assert_non_null(strstr(l.s, "0 00280010 US 2"));
    assert_non_null(strstr(l.s, "0 00280011 UN 3"));
    assert_non_null(strstr(l.s, "0 00291010 UN 2"));
    assert_non_null(strstr(l.s, "2 0040a730 SQ"));
    assert_non_null(strstr(l.s, "2 00411010 UN"));
    free(l.s);
    check_fragmentation(mt_ts_implicit_le, t.b, t.n, 0, true);
}

/* Unknown upper-case VRs have the UN layout (4-byte length); printable non-letters a 2-byte one. */
static void test_unknown_vr(void **state)
{
    (void)state;
    tu_bytes_t t = {.n = 0};
    tu_u16(&t, 0x0011), tu_u16(&t, 0x1001), tu_raw(&t, "XY", 2), tu_u16(&t, 0), tu_u32(&t, 2);
    tu_raw(&t, "ab", 2);
    tu_u16(&t, 0x0028), tu_u16(&t, 0x0120), tu_raw(&t, "  ", 2), tu_u16(&t, 2), tu_u16(&t, 0);
    log_t l;
    assert_int_equal(run(mt_ts_explicit_le, t.b, t.n, 0, 0, 0, &l, NULL), 0);
    assert_non_null(strstr(l.s, "0 00111001 XY 2 d0 @0"));
    assert_non_null(strstr(l.s, "0 00280120 UN 2 d0 @14"));
    free(l.s);
}

/* A callback error stops the reader, and sticks. */
static void test_callback_stops(void **state)
{
    (void)state;
    tu_bytes_t t;
    make_nested(&t);
    log_t l;
    memset(&l, 0, sizeof l);
    l.stop_at = 3;
    mt_ds_reader_opts_t o = {.ts = mt_ts_explicit_le, .cb = on_ev, .user = &l};
    mt_ds_reader_t *r = mt_ds_reader_new(&o);
    assert_int_equal(mt_ds_reader_feed(r, t.b, t.n), MT_ECANCELED);
    assert_int_equal(l.n_events, 3);
    assert_int_equal(mt_ds_reader_feed(r, t.b, 1), MT_ECANCELED);
    assert_int_equal(mt_ds_reader_finish(r), MT_ECANCELED);
    assert_int_equal(l.n_events, 3);
    mt_ds_reader_free(r);
    free(l.s);
}

/* ---- bounded memory: a 2 GiB Pixel Data value fed in 1 MiB pieces ---- */
typedef struct big {
    mt_ds_reader_t *r;
    uint64_t chunk_bytes;
    size_t n_chunks;
    bool saw_last, saw_after;
} big_t;

static int on_big(void *user, mt_ds_event_t ev, const mt_elem_t *e)
{
    big_t *b = user;
    assert_true(b->r->val.cap <= 4096); /* nothing buffered beyond max_buffered_value */
    if (ev == MT_DS_EV_VALUE_CHUNK) {
        assert_int_equal(e->tag, MT_TAG_PIXEL_DATA);
        b->chunk_bytes += e->value_len;
        b->n_chunks++;
        b->saw_last = e->last_chunk;
    } else if (ev == MT_DS_EV_ELEMENT && e->tag == MT_TAG_PIXEL_DATA) {
        assert_null(e->value);
        assert_int_equal(e->len, 0x80000000u);
    } else if (ev == MT_DS_EV_ELEMENT && e->tag == MT_TAG(0xFFFC, 0xFFFC)) {
        b->saw_after = b->saw_last;
    }
    return 0;
}

static void test_large_value_streams(void **state)
{
    (void)state;
    static uint8_t piece[1 << 20];
    tu_bytes_t t = {.n = 0};
    tu_ex(&t, 0x0028, 0x0010, "US", 2);
    tu_u16(&t, 1);
    tu_ex(&t, 0x7FE0, 0x0010, "OW", 0x80000000u);
    big_t b = {0};
    mt_ds_reader_opts_t o = {
        .ts = mt_ts_explicit_le, .cb = on_big, .user = &b, .max_buffered_value = 4096};
    b.r = mt_ds_reader_new(&o);
    assert_int_equal(mt_ds_reader_feed(b.r, t.b, t.n), 0);
    for (int i = 0; i < 2048; i++)
        assert_int_equal(mt_ds_reader_feed(b.r, piece, sizeof piece), 0);
    t.n = 0;
    tu_ex(&t, 0xFFFC, 0xFFFC, "OB", 2);
    tu_raw(&t, "\0\0", 2);
    assert_int_equal(mt_ds_reader_feed(b.r, t.b, t.n), 0);
    assert_int_equal(mt_ds_reader_finish(b.r), 0);
    assert_int_equal(mt_ds_reader_offset(b.r), 10 + 12 + 0x80000000ull + 14);
    mt_ds_reader_free(b.r);
    assert_int_equal(b.chunk_bytes, 0x80000000ull);
    assert_true(b.saw_last);
    assert_true(b.saw_after);
    assert_int_equal(b.n_chunks, 2048);
}

/* ---- malformed input: error, offset, reason; never a crash ---- */
typedef struct bad_case {
    const char *name;
    int ts; /* 0 explicit LE, 1 implicit LE */
    void (*make)(tu_bytes_t *t);
    int rc;
    uint64_t offset;
} bad_case_t;

static void mk_value_past_item(tu_bytes_t *t)
{
    tu_ex(t, 0x0008, 0x1140, "SQ", MT_UNDEFINED_LENGTH);
    tu_im(t, 0xFFFE, 0xE000, 10);      /* item of 10 */
    tu_ex(t, 0x0008, 0x1150, "UI", 4); /* 8 + 4 > 10 */
    tu_raw(t, "1.2\0", 4);
    tu_im(t, 0xFFFE, 0xE0DD, 0);
}
static void mk_item_past_seq(tu_bytes_t *t)
{
    tu_ex(t, 0x0008, 0x1140, "SQ", 8);
    tu_im(t, 0xFFFE, 0xE000, 4);
    tu_raw(t, "abcd", 4);
}
static void mk_bad_item_tag(tu_bytes_t *t)
{
    tu_ex(t, 0x0008, 0x1140, "SQ", MT_UNDEFINED_LENGTH);
    tu_ex(t, 0x0008, 0x1150, "UI", 2);
    tu_raw(t, "12", 2);
}
static void mk_odd_us(tu_bytes_t *t)
{
    tu_ex(t, 0x0008, 0x0016, "UI", 2);
    tu_raw(t, "12", 2);
    tu_ex(t, 0x0028, 0x0010, "US", 3);
    tu_raw(t, "abc", 3);
}
static void mk_bad_vr(tu_bytes_t *t)
{
    tu_ex(t, 0x0008, 0x0016, "UI", 2);
    tu_raw(t, "12", 2);
    tu_u16(t, 0x0008), tu_u16(t, 0x0018), tu_raw(t, "\x01\x02", 2), tu_u16(t, 2);
}
static void mk_item_delim_top(tu_bytes_t *t)
{
    tu_im(t, 0xFFFE, 0xE00D, 0);
}
static void mk_seq_delim_top(tu_bytes_t *t)
{
    tu_im(t, 0xFFFE, 0xE0DD, 0);
}
static void mk_seq_delim_defined(tu_bytes_t *t)
{
    tu_ex(t, 0x0008, 0x1140, "SQ", 8);
    tu_im(t, 0xFFFE, 0xE0DD, 0);
}
static void mk_undefined_lo(tu_bytes_t *t)
{
    tu_ex(t, 0x0010, 0x0010, "UT", MT_UNDEFINED_LENGTH);
}
static void mk_undefined_fragment(tu_bytes_t *t)
{
    tu_ex(t, 0x7FE0, 0x0010, "OB", MT_UNDEFINED_LENGTH);
    tu_im(t, 0xFFFE, 0xE000, MT_UNDEFINED_LENGTH);
}
static void mk_deep(tu_bytes_t *t)
{
    for (int i = 0; i < 70; i++) {
        tu_ex(t, 0x0040, 0xA730, "SQ", MT_UNDEFINED_LENGTH);
        tu_im(t, 0xFFFE, 0xE000, MT_UNDEFINED_LENGTH);
    }
}
static void mk_truncated_header(tu_bytes_t *t)
{
    tu_ex(t, 0x0008, 0x0016, "UI", 2);
    tu_raw(t, "12", 2);
    tu_raw(t, "\x08\x00\x18", 3);
}
static void mk_truncated_value(tu_bytes_t *t)
{
    tu_ex(t, 0x0008, 0x0016, "UI", 8);
    tu_raw(t, "12", 2);
}
static void mk_unclosed_seq(tu_bytes_t *t)
{
    tu_ex(t, 0x0008, 0x1140, "SQ", MT_UNDEFINED_LENGTH);
    tu_im(t, 0xFFFE, 0xE000, MT_UNDEFINED_LENGTH);
    tu_ex(t, 0x0008, 0x1150, "UI", 2);
    tu_raw(t, "12", 2);
}
static void mk_open_in_defined(tu_bytes_t *t)
{
    tu_ex(t, 0x0008, 0x1140, "SQ", 8); /* defined 8: holds only an undefined-length item head */
    tu_im(t, 0xFFFE, 0xE000, MT_UNDEFINED_LENGTH);
    tu_ex(t, 0x0008, 0x1150, "UI", 2);
    tu_raw(t, "12", 2);
}
static void mk_implicit_value_too_long(tu_bytes_t *t)
{
    tu_im(t, 0x0010, 0x0010, 0xFFFFFFF0u);
    tu_raw(t, "Doe^", 4);
}

static const bad_case_t bad_cases[] = {
    {"value past item", 0, mk_value_past_item, MT_EMALFORMED, 20},
    {"item past seq", 0, mk_item_past_seq, MT_EMALFORMED, 12},
    {"bad item tag", 0, mk_bad_item_tag, MT_EMALFORMED, 12},
    {"odd US", 0, mk_odd_us, MT_EMALFORMED, 10},
    {"bad VR", 0, mk_bad_vr, MT_EMALFORMED, 10},
    {"item delim at top", 0, mk_item_delim_top, MT_EMALFORMED, 0},
    {"seq delim at top", 0, mk_seq_delim_top, MT_EMALFORMED, 0},
    {"seq delim in defined", 0, mk_seq_delim_defined, MT_EMALFORMED, 12},
    {"undefined UT", 0, mk_undefined_lo, MT_EMALFORMED, 0},
    {"undefined fragment", 0, mk_undefined_fragment, MT_EMALFORMED, 12},
    {"too deep", 0, mk_deep, MT_ETOOBIG, 64 * 20},
    {"truncated header", 0, mk_truncated_header, MT_EMALFORMED, 10},
    {"truncated value", 0, mk_truncated_value, MT_EMALFORMED, 0},
    {"unclosed sequence", 0, mk_unclosed_seq, MT_EMALFORMED, 30},
    {"undefined item in defined seq", 0, mk_open_in_defined, MT_EMALFORMED, 20},
    {"implicit truncated value", 1, mk_implicit_value_too_long, MT_EMALFORMED, 0},
};

static void test_malformed(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case_t *c = &bad_cases[i];
        tu_bytes_t t = {.n = 0};
        c->make(&t);
        log_t l;
        mt_diag_t d = {0, NULL};
        const mt_ts_t *ts = c->ts ? mt_ts_implicit_le : mt_ts_explicit_le;
        int rc = run(ts, t.b, t.n, 0, 0, 0, &l, &d);
        if (rc != c->rc || d.offset != c->offset)
            print_error("case '%s': rc %d offset %llu (%s)\n", c->name, rc,
                        (unsigned long long)d.offset, d.reason ? d.reason : "-");
        assert_int_equal(rc, c->rc);
        assert_int_equal(d.offset, c->offset);
        assert_non_null(d.reason);
        free(l.s);
        check_fragmentation(ts, t.b, t.n, 0, true);
    }
}

/* ---- shared test data ---- */
typedef struct walk {
    size_t n_files, n_ok;
} walk_t;

static const mt_ts_t *file_ts(const uint8_t *buf, size_t len, size_t *off)
{
    mt_meta_t m;
    if (mt_part10_read_meta(buf, len, &m, off, NULL) != 0)
        return NULL;
    return mt_ts_find(m.transfer_syntax_uid);
}

static void frag_one(const char *path, void *user)
{
    walk_t *w = user;
    size_t len, off;
    uint8_t *buf = tu_read(path, &len);
    const mt_ts_t *ts = buf ? file_ts(buf, len, &off) : NULL;
    if (ts && len < 400000) {
        w->n_files++;
        check_fragmentation(ts, buf + off, len - off, 0, len < 40000);
        check_fragmentation(ts, buf + off, len - off, 256, false); /* chunked values */
    }
    free(buf);
}

static void test_testdata_fragmentation(void **state)
{
    (void)state;
    if (!tu_have_testdata())
        skip();
    walk_t w = {0};
    tu_walk(TESTDATA, frag_one, &w);
    print_message("# fragmentation equivalence on %zu files\n", w.n_files);
    assert_true(w.n_files > 100);
}

/* Malformed files from the test data fail cleanly: an error with a reason, no crash. */
static void test_testdata_malformed(void **state)
{
    (void)state;
    if (!tu_have_testdata())
        skip();
    static const char *bad[] = {
        "pydicom/test_files/MR_truncated.dcm",
        "pydicom/test_files/rtplan_truncated.dcm",
        "pydicom-data/emri_small_jpeg_2k_lossless_too_short.dcm",
        "pydicom/test_files/SC_rgb_jpeg.dcm",
        "pydicom/test_files/dicomdirtests/DICOMDIR-nooffset",
        "orthanc-tests/2026-05-06-Deeply-Nested-Sequence.dcm",
        "fo-dicom/GH179B.dcm",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", TESTDATA, bad[i]);
        size_t len, off;
        uint8_t *buf = tu_read(path, &len);
        assert_non_null(buf);
        const mt_ts_t *ts = file_ts(buf, len, &off);
        assert_non_null(ts);
        log_t l;
        mt_diag_t d = {0, NULL};
        int rc = run(ts, buf + off, len - off, 0, 0, 0, &l, &d);
        print_message("# %s: %s at %llu: %s\n", bad[i], mt_err_name(rc),
                      (unsigned long long)d.offset, d.reason ? d.reason : "");
        assert_true(rc == MT_EMALFORMED || rc == MT_ETOOBIG);
        assert_non_null(d.reason);
        free(l.s);
        free(buf);
    }
}

/* Every prefix of a real file: either a complete data set (the cut falls between top-level
 * elements) or MT_EMALFORMED, never anything else. */
static void test_every_truncation(void **state)
{
    (void)state;
    if (!tu_have_testdata())
        skip();
    size_t len, off;
    uint8_t *buf = tu_read(TESTDATA "/pydicom/test_files/test-SR.dcm", &len);
    assert_non_null(buf);
    const mt_ts_t *ts = file_ts(buf, len, &off);
    assert_non_null(ts);
    size_t n_ok = 0;
    for (size_t cut = 0; cut < len - off; cut++) {
        log_t l;
        mt_diag_t d;
        int rc = run(ts, buf + off, cut, 0, 0, 0, &l, &d);
        assert_true(rc == 0 || rc == MT_EMALFORMED);
        n_ok += rc == 0;
        free(l.s);
    }
    assert_true(n_ok > 0 && n_ok < 200);
    free(buf);
}

/* ---- deflate: the reader's events equal those of the zlib-inflated stream ---- */
static void test_deflate(void **state)
{
    (void)state;
    if (!tu_have_testdata())
        skip();
    static const char *files[] = {"pydicom/test_files/image_dfl.dcm",
                                  "dicomParser/deflate/report_dfl", "fo-dicom/GH227.dcm",
                                  "fo-dicom/Issue1097_FailToOpenDeflatedFileWithSQ.dcm"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", TESTDATA, files[i]);
        size_t len, off;
        uint8_t *buf = tu_read(path, &len);
        assert_non_null(buf);
        const mt_ts_t *ts = file_ts(buf, len, &off);
        assert_non_null(ts);
        assert_true(ts->deflated);
        /* inflate it ourselves */
        size_t cap = 64 << 20;
        uint8_t *plain = malloc(cap);
        z_stream z;
        memset(&z, 0, sizeof z);
        assert_int_equal(inflateInit2(&z, -MAX_WBITS), Z_OK);
        z.next_in = buf + off;
        z.avail_in = (uInt)(len - off);
        z.next_out = plain;
        z.avail_out = (uInt)cap;
        assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
        size_t plen = z.total_out;
        inflateEnd(&z);
        log_t a, b;
        assert_int_equal(run(mt_ts_explicit_le, plain, plen, 0, 0, 0, &a, NULL), 0);
        assert_int_equal(run(ts, buf + off, len - off, 0, 0, 0, &b, NULL), 0);
        assert_string_equal(a.s, b.s);
        free(b.s);
        assert_int_equal(run(ts, buf + off, len - off, 1, 0, 0, &b, NULL), 0);
        assert_string_equal(a.s, b.s);
        free(b.s);
        free(a.s);
        /* a cut deflate stream is reported by finish */
        mt_diag_t d;
        assert_int_equal(run(ts, buf + off, (len - off) / 2, 0, 0, 0, &b, &d), MT_EMALFORMED);
        assert_non_null(d.reason);
        free(b.s);
        /* garbage instead of deflate data */
        memset(buf + off, 0xFF, len - off);
        assert_int_equal(run(ts, buf + off, len - off, 0, 0, 0, &b, &d), MT_EMALFORMED);
        free(b.s);
        free(plain);
        free(buf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested_events),
        cmocka_unit_test(test_big_endian),
        cmocka_unit_test(test_implicit_vr_from_dictionary),
        cmocka_unit_test(test_unknown_vr),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_large_value_streams),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_testdata_fragmentation),
        cmocka_unit_test(test_testdata_malformed),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_deflate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
