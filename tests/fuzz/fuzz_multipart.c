/* fuzz_multipart.c - libFuzzer target for node/http/multipart.c. The first input line is the
 * boundary (as a Content-Type value: `multipart/related; boundary=...`), the rest the body,
 * fed in pieces whose sizes come from the input itself. Invariants: part callbacks come in
 * order (begin, data*, end), data only inside a part, every part that began and ended is
 * counted, bytes delivered never exceed bytes fed, an error always has a reason, and feeding
 * the same body whole gives the same parts and bytes. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/multipart.h"
#include "util/err.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

typedef struct st {
    bool in_part;
    size_t parts, ended;
    uint64_t bytes;
    uint32_t hash;
} st_t;

static int on_begin(void *u, const mt_mp_part_t *p)
{
    st_t *s = u;
    CHECK(!s->in_part);
    CHECK(strlen(p->content_type) < sizeof p->content_type);
    s->in_part = true;
    s->parts++;
    return 0;
}

static int on_data(void *u, const uint8_t *p, size_t n)
{
    st_t *s = u;
    CHECK(s->in_part && n > 0);
    s->bytes += n;
    for (size_t i = 0; i < n; i++)
        s->hash = s->hash * 31 + p[i];
    return (n & 1) ? 1 : 0; /* exercise the pause hint */
}

static int on_end(void *u)
{
    st_t *s = u;
    CHECK(s->in_part);
    s->in_part = false;
    s->ended++;
    return 0;
}

static const mt_mp_cb_t cb = {on_begin, on_data, on_end};

static int run(const char *boundary, const uint8_t *p, size_t n, const uint8_t *cuts, size_t ncuts,
               st_t *s)
{
    mt_mp_t *m = mt_mp_new(boundary, &cb, s);
    if (!m)
        return 1;
    size_t off = 0, k = 0;
    int rc = 0;
    while (off < n && rc >= 0) {
        size_t len = ncuts ? (size_t)cuts[k++ % ncuts] + 1 : n - off;
        if (len > n - off)
            len = n - off;
        rc = mt_mp_feed(m, p + off, len);
        off += len;
    }
    if (rc >= 0)
        rc = mt_mp_finish(m);
    if (rc < 0)
        CHECK(mt_mp_diag(m)->reason != NULL);
    CHECK(mt_mp_parts(m) == s->parts);
    mt_mp_free(m);
    return rc < 0 ? rc : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size < 256 ? size : 256);
    if (!nl)
        return 0;
    char ct[257];
    size_t ctn = (size_t)(nl - data);
    memcpy(ct, data, ctn);
    ct[ctn] = 0;
    char type[64], boundary[128];
    if (mt_mp_param(ct, "boundary", type, sizeof type, boundary, sizeof boundary) != 0)
        return 0;
    const uint8_t *body = nl + 1;
    size_t n = size - ctn - 1;
    /* the last 8 bytes also choose the piece sizes */
    const uint8_t *cuts = n >= 8 ? body + n - 8 : body;
    st_t a = {0}, b = {0};
    int ra = run(boundary, body, n, cuts, n >= 8 ? 8 : 0, &a);
    int rb = run(boundary, body, n, NULL, 0, &b);
    CHECK((ra == 0) == (rb == 0));
    CHECK(a.bytes <= n && b.bytes <= n);
    if (ra == 0) {
        CHECK(a.parts == b.parts && a.bytes == b.bytes && a.hash == b.hash && a.ended == b.ended);
        CHECK(!a.in_part && a.ended == a.parts);
    }
    return 0;
}
