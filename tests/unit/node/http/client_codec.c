/* tests for node/http/client_codec.c and node/http/url.c: URLs (good and refused), the request
 * head, multipart framing whose computed length equals the bytes written and which our own
 * multipart decoder (node/http/multipart.c) reads back, and the response parser: Content-Length,
 * chunked (with extensions and trailers), until-close bodies, 100 Continue, keep-alive,
 * every fragmentation, limits, and malformed responses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/client_codec.h"
#include "http/multipart.h"
#include "util/alloc.h"
#include "util/err.h"

static void test_url(void **state)
{
    (void)state;
    mt_httpc_url_t u;
    const char *why = NULL;
    assert_int_equal(
        mt_httpc_url_parse("https://central.example:8443/projects/reg/dicomweb/studies", &u, &why),
        0);
    assert_true(u.tls);
    assert_string_equal(u.host, "central.example");
    assert_int_equal(u.port, 8443);
    assert_string_equal(u.path, "/projects/reg/dicomweb/studies");
    assert_int_equal(mt_httpc_url_parse("http://127.0.0.1/dicomweb/studies?x=1", &u, &why), 0);
    assert_false(u.tls);
    assert_int_equal(u.port, 80);
    assert_string_equal(u.path, "/dicomweb/studies?x=1");
    assert_int_equal(mt_httpc_url_parse("HTTPS://[::1]:9/", &u, &why), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 9);
    assert_int_equal(mt_httpc_url_parse("https://h", &u, &why), 0);
    assert_int_equal(u.port, 443);
    assert_string_equal(u.path, "/");
    static const char *const bad[] = {"ftp://h/",        "https://user:pw@h/", "http://h:0/",
                                      "http://h:65536/", "http://h:/",         "http:///x",
                                      "http://h/a b",    "http://h/#frag",     "http://[::1/",
                                      "http://[::1]x/",  "h/studies",          "http://h:8x/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        assert_int_equal(mt_httpc_url_parse(bad[i], &u, &why), MT_EMALFORMED);
        assert_non_null(why);
    }
}

static void test_head(void **state)
{
    (void)state;
    mt_httpc_url_t u;
    const char *why;
    assert_int_equal(
        mt_httpc_url_parse("http://b.example:8042/projects/p/dicomweb/studies", &u, &why), 0);
    mt_buf_t b;
    mt_buf_init(&b, 1 << 16);
    mt_httpc_head_t h = {.method = "POST",
                         .url = &u,
                         .content_type = "multipart/related",
                         .content_length = 1234,
                         .authorization = "Bearer t0k",
                         .accept = "application/dicom+json",
                         .user_agent = "mitral"};
    assert_int_equal(mt_httpc_head(&b, &h), 0);
    const char *want = "POST /projects/p/dicomweb/studies HTTP/1.1\r\n"
                       "Host: b.example:8042\r\n"
                       "User-Agent: mitral\r\n"
                       "Accept: application/dicom+json\r\n"
                       "Authorization: Bearer t0k\r\n"
                       "Content-Type: multipart/related\r\n"
                       "Content-Length: 1234\r\n\r\n";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    /* default port: no :port in Host; IPv6 in brackets; no body: no Content-Length */
    mt_buf_reset(&b);
    assert_int_equal(mt_httpc_url_parse("https://[::1]/x", &u, &why), 0);
    mt_httpc_head_t g = {.method = "GET", .url = &u, .content_length = -1};
    assert_int_equal(mt_httpc_head(&b, &g), 0);
    const char *want2 = "GET /x HTTP/1.1\r\nHost: [::1]\r\n\r\n";
    assert_int_equal(b.len, strlen(want2));
    assert_memory_equal(b.data, want2, b.len);
    /* header injection refused */
    mt_buf_reset(&b);
    h.authorization = "Bearer x\r\nX-Evil: 1";
    assert_int_equal(mt_httpc_head(&b, &h), MT_EINVAL);
    mt_buf_dispose(&b);
}

typedef struct parts {
    int n;
    char type[4][256];
    uint8_t data[4][64];
    size_t len[4];
} parts_t;

static int p_begin(void *u, const mt_mp_part_t *p)
{
    parts_t *r = u;
    strcpy(r->type[r->n], p->content_type);
    r->len[r->n++] = 0;
    return 0;
}

static int p_data(void *u, const uint8_t *p, size_t n)
{
    parts_t *r = u;
    memcpy(r->data[r->n - 1] + r->len[r->n - 1], p, n);
    r->len[r->n - 1] += n;
    return 0;
}

static int p_end(void *u)
{
    (void)u;
    return 0;
}

static void test_multipart_framing(void **state)
{
    (void)state;
    uint8_t rnd[16];
    for (int i = 0; i < 16; i++)
        rnd[i] = (uint8_t)(i * 17);
    char boundary[48];
    mt_httpc_mp_boundary(rnd, boundary);
    assert_string_equal(boundary, "mitral-00112233445566778899aabbccddeeff");
    const char *bodies[3] = {"first\r\n--not-a-boundary", "", "third part"};
    uint64_t sizes[3];
    mt_buf_t b;
    mt_buf_init(&b, 1 << 16);
    for (size_t i = 0; i < 3; i++) {
        sizes[i] = strlen(bodies[i]);
        assert_int_equal(mt_httpc_mp_part_head(&b, boundary, "application/dicom", i), 0);
        mt_buf_append(&b, bodies[i], sizes[i]);
    }
    assert_int_equal(mt_httpc_mp_close(&b, boundary), 0);
    assert_int_equal(mt_httpc_mp_length(boundary, "application/dicom", sizes, 3), b.len);
    assert_memory_equal(b.data, "--mitral-0011", 13);
    parts_t got;
    memset(&got, 0, sizeof got);
    mt_mp_cb_t cb = {p_begin, p_data, p_end};
    mt_mp_t *m = mt_mp_new(boundary, &cb, &got);
    assert_non_null(m);
    assert_int_equal(mt_mp_feed(m, b.data, b.len), 0);
    assert_int_equal(mt_mp_finish(m), 0);
    mt_mp_free(m);
    assert_int_equal(got.n, 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(got.type[i], "application/dicom");
        assert_int_equal(got.len[i], sizes[i]);
        assert_memory_equal(got.data[i], bodies[i], sizes[i]);
    }
    /* zero parts: only the close delimiter */
    assert_int_equal(mt_httpc_mp_length(boundary, "application/dicom", sizes, 0),
                     strlen("\r\n--") + strlen(boundary) + strlen("--\r\n"));
    mt_buf_dispose(&b);
}

/* Feed s in pieces of `step` bytes (0: all at once); returns the last feed's result. */
static int feed(mt_httpc_resp_t *r, const char *s, size_t len, size_t step)
{
    int rc = 0;
    size_t off = 0;
    if (!step)
        step = len ? len : 1;
    while (off < len && rc == 0) {
        size_t n = len - off < step ? len - off : step;
        rc = mt_httpc_resp_feed(r, (const uint8_t *)s + off, n);
        off += n;
    }
    return rc;
}

static const char *const CHUNKED = "HTTP/1.1 202 Accepted\r\n"
                                   "Content-Type: application/dicom+json\r\n"
                                   "Transfer-Encoding: chunked\r\n"
                                   "X-Split: a\r\n"
                                   "\r\n"
                                   "5;ext=1\r\n{\"a\":\r\n"
                                   "A\r\n[1,2,3,4]}\r\n"
                                   "0\r\n"
                                   "X-Trailer: t\r\n"
                                   "\r\n";

static void test_response_chunked_every_split(void **state)
{
    (void)state;
    size_t len = strlen(CHUNKED);
    for (size_t step = 0; step <= len; step++) {
        mt_httpc_resp_t *r = mt_httpc_resp_new(1024);
        assert_int_equal(feed(r, CHUNKED, len, step), 1);
        assert_int_equal(mt_httpc_resp_status(r), 202);
        assert_string_equal(mt_httpc_resp_header(r, "content-type"), "application/dicom+json");
        assert_string_equal(mt_httpc_resp_header(r, "X-SPLIT"), "a");
        assert_null(mt_httpc_resp_header(r, "content-length"));
        size_t n;
        const uint8_t *body = mt_httpc_resp_body(r, &n);
        assert_int_equal(n, 15);
        assert_memory_equal(body, "{\"a\":[1,2,3,4]}", 15);
        assert_true(mt_httpc_resp_keep_alive(r));
        mt_httpc_resp_free(r);
    }
}

static void test_response_framings(void **state)
{
    (void)state;
    /* Content-Length; what follows the response is not consumed */
    const char *cl = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\n";
    mt_httpc_resp_t *r = mt_httpc_resp_new(1024);
    assert_int_equal(feed(r, cl, strlen(cl), 0), 1);
    size_t n;
    mt_httpc_resp_body(r, &n);
    assert_int_equal(n, 2);
    assert_true(mt_httpc_resp_keep_alive(r));
    assert_int_equal(mt_httpc_resp_feed(r, (const uint8_t *)"x", 1), 1); /* stays complete */
    mt_httpc_resp_free(r);
    /* Connection: close */
    const char *close =
        "HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    r = mt_httpc_resp_new(1024);
    assert_int_equal(feed(r, close, strlen(close), 3), 1);
    assert_int_equal(mt_httpc_resp_status(r), 401);
    assert_false(mt_httpc_resp_keep_alive(r));
    mt_httpc_resp_free(r);
    /* HTTP/1.0 without length: the body runs to EOF */
    const char *eof = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello";
    r = mt_httpc_resp_new(1024);
    assert_int_equal(feed(r, eof, strlen(eof), 0), 0);
    assert_int_equal(mt_httpc_resp_feed(r, NULL, 0), 1);
    mt_httpc_resp_body(r, &n);
    assert_int_equal(n, 5);
    assert_false(mt_httpc_resp_keep_alive(r));
    mt_httpc_resp_free(r);
    /* 100 Continue first: skipped, its headers forgotten */
    const char *cont = "HTTP/1.1 100 Continue\r\nX-A: 1\r\n\r\n"
                       "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nZ";
    r = mt_httpc_resp_new(1024);
    assert_int_equal(feed(r, cont, strlen(cont), 1), 1);
    assert_int_equal(mt_httpc_resp_status(r), 200);
    assert_null(mt_httpc_resp_header(r, "x-a"));
    mt_httpc_resp_free(r);
}

static void test_response_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "GET / HTTP/1.1\r\n\r\n", /* a request, not a response */
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mt_httpc_resp_t *r = mt_httpc_resp_new(1024);
        int rc = feed(r, bad[i], strlen(bad[i]), 0);
        assert_int_equal(rc, MT_EMALFORMED);
        assert_non_null(mt_httpc_resp_error(r));
        /* once failed, stays failed */
        assert_int_equal(mt_httpc_resp_feed(r, (const uint8_t *)"x", 1), MT_EMALFORMED);
        mt_httpc_resp_free(r);
    }
    /* truncated: EOF in the head, in the body, before anything */
    const char *trunc[] = {"HTTP/1.1 200 OK\r\nContent-Le",
                           "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc",
                           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", ""};
    for (size_t i = 0; i < 4; i++) {
        mt_httpc_resp_t *r = mt_httpc_resp_new(1024);
        assert_int_equal(feed(r, trunc[i], strlen(trunc[i]), 0), 0);
        assert_int_equal(mt_httpc_resp_feed(r, NULL, 0), MT_EMALFORMED);
        assert_non_null(mt_httpc_resp_error(r));
        assert_false(mt_httpc_resp_keep_alive(r));
        mt_httpc_resp_free(r);
    }
    /* body over the limit */
    const char *big = "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n01234567890123456789";
    mt_httpc_resp_t *r = mt_httpc_resp_new(10);
    assert_int_equal(feed(r, big, strlen(big), 0), MT_ETOOBIG);
    mt_httpc_resp_free(r);
    /* headers over 16 KiB */
    mt_buf_t b;
    mt_buf_init(&b, 1 << 20);
    mt_buf_append(&b, "HTTP/1.1 200 OK\r\n", 17);
    for (int i = 0; i < 40; i++) {
        char line[1100];
        memset(line, 'v', sizeof line);
        memcpy(line, "X-Big: ", 7);
        memcpy(line + sizeof line - 2, "\r\n", 2);
        mt_buf_append(&b, line, sizeof line);
    }
    r = mt_httpc_resp_new(1024);
    assert_int_equal(mt_httpc_resp_feed(r, b.data, b.len), MT_ETOOBIG);
    mt_httpc_resp_free(r);
    mt_buf_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_multipart_framing),
        cmocka_unit_test(test_response_chunked_every_split),
        cmocka_unit_test(test_response_framings),
        cmocka_unit_test(test_response_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
