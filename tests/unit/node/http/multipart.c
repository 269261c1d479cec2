/* tests for node/http/multipart.c: parts in every fragmentation (byte by byte and every split
 * point), delimiter look-alikes inside bodies, preamble/epilogue, part headers, malformed bodies
 * with their reasons, the pause hint, and media-type parameter parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/multipart.h"
#include "util/err.h"

typedef struct rec {
    int n_parts, n_ends;
    char types[8][256];
    char locs[8][512];
    unsigned char data[8][4096];
    size_t lens[8];
    int pause_every; /* return 1 from part_data */
} rec_t;

static int on_begin(void *u, const mt_mp_part_t *p)
{
    rec_t *r = u;
    if (r->n_parts >= 8)
        return MT_ETOOBIG;
    strcpy(r->types[r->n_parts], p->content_type);
    strcpy(r->locs[r->n_parts], p->content_location);
    r->lens[r->n_parts] = 0;
    r->n_parts++;
    return 0;
}

static int on_data(void *u, const uint8_t *p, size_t n)
{
    rec_t *r = u;
    int i = r->n_parts - 1;
    assert_true(i >= 0);
    assert_true(r->lens[i] + n <= sizeof r->data[i]);
    memcpy(r->data[i] + r->lens[i], p, n);
    r->lens[i] += n;
    return r->pause_every ? 1 : 0;
}

static int on_end(void *u)
{
    rec_t *r = u;
    r->n_ends++;
    return 0;
}

static const mt_mp_cb_t cb = {on_begin, on_data, on_end};

static const char body1[] = "preamble text\r\n"
                            "--BOUND\r\n"
                            "Content-Type: application/dicom\r\n"
                            "Content-Location: a/b\r\n"
                            "\r\n"
                            "first\r\n--BOUNx not yet\r\n--BOUN\r\r\n-"
                            "\r\n--BOUND\r\n"
                            "Content-Type: application/dicom\r\n"
                            "\r\n"
                            "\r\n--BOUND  \r\n"
                            "\r\n"
                            "third\r\n"
                            "\r\n--BOUND--\r\n"
                            "epilogue --BOUND\r\n";

static void check_body1(const rec_t *r)
{
    assert_int_equal(r->n_parts, 3);
    assert_int_equal(r->n_ends, 3);
    assert_string_equal(r->types[0], "application/dicom");
    assert_string_equal(r->locs[0], "a/b");
    static const char want0[] = "first\r\n--BOUNx not yet\r\n--BOUN\r\r\n-";
    assert_int_equal(r->lens[0], sizeof want0 - 1);
    assert_memory_equal(r->data[0], want0, sizeof want0 - 1);
    assert_int_equal(r->lens[1], 0);
    assert_string_equal(r->types[2], "");
    assert_int_equal(r->lens[2], 7);
    assert_memory_equal(r->data[2], "third\r\n", 7);
}

static void test_whole(void **st)
{
    (void)st;
    rec_t r = {0};
    mt_mp_t *m = mt_mp_new("BOUND", &cb, &r);
    assert_non_null(m);
    assert_int_equal(mt_mp_feed(m, (const uint8_t *)body1, sizeof body1 - 1), 0);
    assert_int_equal(mt_mp_finish(m), 0);
    assert_int_equal(mt_mp_parts(m), 3);
    check_body1(&r);
    mt_mp_free(m);
}

static void test_every_split(void **st)
{
    (void)st;
    size_t n = sizeof body1 - 1;
    for (size_t cut = 0; cut <= n; cut++) {
        rec_t r = {0};
        mt_mp_t *m = mt_mp_new("BOUND", &cb, &r);
        assert_int_equal(mt_mp_feed(m, (const uint8_t *)body1, cut), 0);
        assert_int_equal(mt_mp_feed(m, (const uint8_t *)body1 + cut, n - cut), 0);
        assert_int_equal(mt_mp_finish(m), 0);
        check_body1(&r);
        mt_mp_free(m);
    }
}

static void test_byte_by_byte(void **st)
{
    (void)st;
    rec_t r = {0};
    mt_mp_t *m = mt_mp_new("BOUND", &cb, &r);
    for (size_t i = 0; i < sizeof body1 - 1; i++)
        assert_int_equal(mt_mp_feed(m, (const uint8_t *)body1 + i, 1), 0);
    assert_int_equal(mt_mp_finish(m), 0);
    check_body1(&r);
    mt_mp_free(m);
}

static void test_no_preamble_and_pause_hint(void **st)
{
    (void)st;
    static const char b[] = "--x\r\n\r\nabc\r\n--x--";
    rec_t r = {0};
    r.pause_every = 1;
    mt_mp_t *m = mt_mp_new("x", &cb, &r);
    assert_int_equal(mt_mp_feed(m, (const uint8_t *)b, sizeof b - 1), 1); /* hint passed back */
    assert_int_equal(mt_mp_finish(m), 0);
    assert_int_equal(r.n_parts, 1);
    assert_int_equal(r.lens[0], 3);
    mt_mp_free(m);
}

static void test_malformed(void **st)
{
    (void)st;
    static const char *bad[] = {
        "no delimiter at all",
        "--B\r\n\r\nbody never closed",
        "--Bxx\r\n\r\n\r\n--B--",      /* delimiter followed by junk */
        "--B\r\nNoColonHere\r\n\r\n\r\n--B--",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rec_t r = {0};
        mt_mp_t *m = mt_mp_new("B", &cb, &r);
        int rc = mt_mp_feed(m, (const uint8_t *)bad[i], strlen(bad[i]));
        if (rc == 0)
            rc = mt_mp_finish(m);
        assert_int_equal(rc, MT_EMALFORMED);
        assert_non_null(mt_mp_diag(m)->reason);
        mt_mp_free(m);
    }
    /* part headers over the limit */
    rec_t r = {0};
    mt_mp_t *m = mt_mp_new("B", &cb, &r);
    char *big = malloc(MT_MP_MAX_HEADER + 64);
    memcpy(big, "--B\r\nX: ", 8);
    memset(big + 8, 'a', MT_MP_MAX_HEADER + 50);
    assert_int_equal(mt_mp_feed(m, (const uint8_t *)big, MT_MP_MAX_HEADER + 58), MT_ETOOBIG);
    free(big);
    mt_mp_free(m);
}

static void test_bad_boundaries(void **st)
{
    (void)st;
    rec_t r;
    assert_null(mt_mp_new("", &cb, &r));
    assert_null(mt_mp_new("a\r\nb", &cb, &r));
    assert_null(mt_mp_new("trailing ", &cb, &r));
    char b[80];
    memset(b, 'a', 71);
    b[71] = 0;
    assert_null(mt_mp_new(b, &cb, &r));
    b[70] = 0;
    mt_mp_t *m = mt_mp_new(b, &cb, &r);
    assert_non_null(m);
    mt_mp_free(m);
}

static void test_param(void **st)
{
    (void)st;
    char t[64], v[128];
    assert_int_equal(mt_mp_param("Multipart/Related; type=\"application/dicom\"; boundary=abc",
                                 "boundary", t, sizeof t, v, sizeof v), 0);
    assert_string_equal(t, "multipart/related");
    assert_string_equal(v, "abc");
    assert_int_equal(mt_mp_param("multipart/related;boundary=\"a b;c\";type=x", "boundary", t,
                                 sizeof t, v, sizeof v), 0);
    assert_string_equal(v, "a b;c");
    assert_int_equal(mt_mp_param("multipart/related; type=x", "boundary", t, sizeof t, v,
                                 sizeof v), MT_ENOENT);
    assert_int_equal(mt_mp_param(NULL, "boundary", t, sizeof t, v, sizeof v), MT_ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole),         cmocka_unit_test(test_every_split),
        cmocka_unit_test(test_byte_by_byte),  cmocka_unit_test(test_no_preamble_and_pause_hint),
        cmocka_unit_test(test_malformed),     cmocka_unit_test(test_bad_boundaries),
        cmocka_unit_test(test_param),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
