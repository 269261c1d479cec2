/*
 * charset.c - DICOM Specific Character Set text to UTF-8 (see charset.h). PURE.
 *
 * One table of code elements (PS3.3 Tables C.12-2 to C.12-5): the defined terms that name
 * them, the escape sequence that designates them into G0 or G1 under ISO 2022, and how their
 * bytes reach iconv. The decoder walks the value once, gathering runs of characters of one
 * code element and converting each run with one iconv call.
 */
#include "charset.h"

#include <errno.h>
#include <iconv.h>
#include <string.h>

#include "../util/alloc.h"
#include "../util/err.h"

/* FEED_KATAKANA: JIS X 0201 0xA1-0xDF are U+FF61-U+FF9F, no iconv needed */
enum feed { FEED_ASCII, FEED_BYTES, FEED_SET_HIGH, FEED_JISX0212, FEED_KATAKANA };

typedef struct code_elem {
    const char *term;     /* defined term without code extensions, or NULL */
    const char *term_ext; /* with code extensions */
    const char *esc;      /* the escape sequence after ESC */
    uint8_t g;            /* 0: G0 (bytes 0x21-0x7E), 1: G1 (bytes 0xA0-0xFF) */
    uint8_t width;        /* bytes per character */
    uint8_t feed;         /* how the bytes are handed to iconv */
    const char *iconv;
} code_elem_t;

enum { CE_NONE, CE_ASCII, CE_KATAKANA = 13, CE_ROMAJI = 14 };

static const code_elem_t elems[] = {
    [CE_NONE] = {NULL, NULL, "", 0, 1, FEED_ASCII, NULL},
    [CE_ASCII] = {"ISO_IR 6", "ISO 2022 IR 6", "(B", 0, 1, FEED_ASCII, NULL},
    [2] = {"ISO_IR 100", "ISO 2022 IR 100", "-A", 1, 1, FEED_BYTES, "ISO-8859-1"},
    [3] = {"ISO_IR 101", "ISO 2022 IR 101", "-B", 1, 1, FEED_BYTES, "ISO-8859-2"},
    [4] = {"ISO_IR 109", "ISO 2022 IR 109", "-C", 1, 1, FEED_BYTES, "ISO-8859-3"},
    [5] = {"ISO_IR 110", "ISO 2022 IR 110", "-D", 1, 1, FEED_BYTES, "ISO-8859-4"},
    [6] = {"ISO_IR 144", "ISO 2022 IR 144", "-L", 1, 1, FEED_BYTES, "ISO-8859-5"},
    [7] = {"ISO_IR 127", "ISO 2022 IR 127", "-G", 1, 1, FEED_BYTES, "ISO-8859-6"},
    [8] = {"ISO_IR 126", "ISO 2022 IR 126", "-F", 1, 1, FEED_BYTES, "ISO-8859-7"},
    [9] = {"ISO_IR 138", "ISO 2022 IR 138", "-H", 1, 1, FEED_BYTES, "ISO-8859-8"},
    [10] = {"ISO_IR 148", "ISO 2022 IR 148", "-M", 1, 1, FEED_BYTES, "ISO-8859-9"},
    [11] = {"ISO_IR 203", "ISO 2022 IR 203", "-b", 1, 1, FEED_BYTES, "ISO-8859-15"},
    [12] = {"ISO_IR 166", "ISO 2022 IR 166", "-T", 1, 1, FEED_BYTES, "TIS-620"},
    [CE_KATAKANA] = {"ISO_IR 13", "ISO 2022 IR 13", ")I", 1, 1, FEED_KATAKANA, NULL},
    [CE_ROMAJI] = {NULL, NULL, "(J", 0, 1, FEED_ASCII, NULL}, /* read as ASCII (charset.h) */
    [15] = {NULL, "ISO 2022 IR 87", "$B", 0, 2, FEED_SET_HIGH, "EUC-JP"},
    [16] = {NULL, "ISO 2022 IR 159", "$(D", 0, 2, FEED_JISX0212, "EUC-JP"},
    [17] = {NULL, "ISO 2022 IR 149", "$)C", 1, 2, FEED_BYTES, "EUC-KR"},
    [18] = {NULL, "ISO 2022 IR 58", "$)A", 1, 2, FEED_BYTES, "GB2312"},
};
#define N_ELEMS (sizeof elems / sizeof elems[0])

void mt_charset_default(mt_charset_t *cs)
{
    memset(cs, 0, sizeof *cs);
    cs->g0 = CE_ASCII;
}

/* One defined term; first: it is value 1 and sets the initial code elements. */
static int apply_term(mt_charset_t *cs, const char *t, size_t n, bool first)
{
    if (n == 0)
        return 0; /* value 1 empty: the default repertoire */
    if (first && n == 10 && !memcmp(t, "ISO_IR 192", 10))
        return cs->utf8 = true, 0;
    if (first && n == 7 && !memcmp(t, "GB18030", 7))
        return cs->whole = "GB18030", 0;
    if (first && n == 3 && !memcmp(t, "GBK", 3))
        return cs->whole = "GBK", 0;
    for (size_t i = 1; i < N_ELEMS; i++) {
        const code_elem_t *e = &elems[i];
        bool hit = (e->term && strlen(e->term) == n && !memcmp(e->term, t, n)) ||
                   (e->term_ext && strlen(e->term_ext) == n && !memcmp(e->term_ext, t, n));
        if (!hit)
            continue;
        if (!first || (e->term_ext && strlen(e->term_ext) == n && !memcmp(e->term_ext, t, n)))
            cs->ext = true;
        if (first && e->g == 0)
            cs->g0 = (uint8_t)i;
        else if (first)
            cs->g1 = (uint8_t)i;
        if (first && i == CE_KATAKANA)
            cs->g0 = CE_ROMAJI; /* IR 13: JIS X 0201 in both halves */
        return 0;
    }
    return MT_EINVAL;
}

int mt_charset_parse(const char *value, size_t len, mt_charset_t *cs)
{
    mt_charset_default(cs);
    int rc = 0;
    size_t start = 0;
    for (unsigned k = 0; value && start <= len; k++) {
        size_t end = start;
        while (end < len && value[end] != '\\')
            end++;
        const char *t = value + start;
        size_t n = end - start;
        while (n && (*t == ' '))
            t++, n--;
        while (n && (t[n - 1] == ' ' || t[n - 1] == '\0'))
            n--;
        if (apply_term(cs, t, n, k == 0))
            rc = MT_EINVAL;
        start = end + 1;
    }
    return rc;
}

bool mt_charset_declared(const mt_charset_t *cs)
{
    return cs->g1 || cs->utf8 || cs->whole || cs->ext || cs->g0 != CE_ASCII;
}

bool mt_charset_plain(const mt_charset_t *cs, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    bool ascii = true;
    for (size_t i = 0; i < n && ascii; i++)
        ascii = p[i] < 0x80 && p[i] != 0x1B;
    if (ascii)
        return true;
    if (!cs->utf8)
        return false;
    for (size_t i = 0; i < n;) { /* well-formed UTF-8 (RFC 3629) */
        unsigned c = p[i];
        size_t k = c < 0x80 ? 0 : c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2
                 : c >= 0xF0 && c <= 0xF4 ? 3 : 9;
        if (k == 9 || (k && i + k >= n))
            return false;
        for (size_t j = 1; j <= k; j++)
            if ((p[i + j] & 0xC0) != 0x80)
                return false;
        i += k + 1;
    }
    return true;
}

/* ---- the decoder ---- */

typedef struct dec {
    char *out;
    size_t len, cap;
    unsigned char run[256]; /* bytes of one code element waiting for iconv */
    size_t run_len;
    uint8_t run_elem;
} dec_t;

static void put(dec_t *d, const void *p, size_t n)
{
    if (d->len + n + 1 > d->cap) {
        while (d->len + n + 1 > d->cap)
            d->cap *= 2;
        d->out = mt_realloc(d->out, d->cap);
    }
    memcpy(d->out + d->len, p, n);
    d->len += n;
}

static void put_cp(dec_t *d, unsigned cp)
{
    char u[4];
    if (cp < 0x80) {
        u[0] = (char)cp;
        put(d, u, 1);
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3F));
        put(d, u, 2);
    } else {
        u[0] = (char)(0xE0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        put(d, u, 3);
    }
}

static void convert(dec_t *d, const char *from, const unsigned char *in, size_t n, size_t width)
{
    iconv_t ic = iconv_open("UTF-8", from);
    if (ic == (iconv_t)-1) {
        for (size_t i = 0; i < n; i += width)
            put_cp(d, 0xFFFD);
        return;
    }
    char *ip = (char *)in;
    size_t left = n;
    while (left) {
        char buf[512];
        char *op = buf;
        size_t room = sizeof buf;
        size_t r = iconv(ic, &ip, &left, &op, &room);
        put(d, buf, (size_t)(op - buf));
        if (r == (size_t)-1 && errno != E2BIG) { /* EILSEQ / EINVAL: one character lost */
            size_t skip = left < width ? left : width;
            ip += skip;
            left -= skip;
            put_cp(d, 0xFFFD);
            iconv(ic, NULL, NULL, NULL, NULL);
        }
    }
    iconv_close(ic);
}

static void flush(dec_t *d)
{
    if (!d->run_len)
        return;
    const code_elem_t *e = &elems[d->run_elem];
    convert(d, e->iconv, d->run, d->run_len, e->feed == FEED_JISX0212 ? 3 : e->width);
    d->run_len = 0;
}

/* Queue the bytes of one character of code element `ce` for conversion. */
static void queue(dec_t *d, uint8_t ce, const unsigned char *c)
{
    const code_elem_t *e = &elems[ce];
    if (d->run_len && (d->run_elem != ce || d->run_len + 3 > sizeof d->run))
        flush(d);
    d->run_elem = ce;
    if (e->feed == FEED_JISX0212)
        d->run[d->run_len++] = 0x8F;
    for (unsigned i = 0; i < e->width; i++)
        d->run[d->run_len++] = e->feed == FEED_BYTES ? c[i] : (unsigned char)(c[i] | 0x80);
}

/* The code element designated by the escape sequence at s (after ESC), and its length. */
static uint8_t escape(const char *s, size_t n, size_t *len)
{
    for (size_t i = 1; i < N_ELEMS; i++) {
        size_t k = strlen(elems[i].esc);
        if (k <= n && !memcmp(s, elems[i].esc, k)) {
            *len = k;
            return (uint8_t)i;
        }
    }
    *len = 0;
    return CE_NONE;
}

static bool resets(unsigned char c, bool pn)
{
    return c == '\\' || c == '\r' || c == '\n' || c == '\f' || c == '\t' ||
           (pn && (c == '^' || c == '='));
}

static void ascii_byte(dec_t *d, unsigned char c)
{
    flush(d);
    put(d, &c, 1);
}

static void decode_2022(dec_t *d, const mt_charset_t *cs, const unsigned char *p, size_t n,
                        bool pn)
{
    uint8_t g0 = cs->g0 ? cs->g0 : CE_ASCII, g1 = cs->g1;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        const code_elem_t *e0 = &elems[g0];
        if (c == 0x1B) {
            size_t k;
            uint8_t ce = escape((const char *)p + i + 1, n - i - 1, &k);
            if (ce && elems[ce].g == 0)
                g0 = ce;
            else if (ce)
                g1 = ce;
            i += 1 + k;
        } else if (c < 0x80 && e0->width == 2 && c >= 0x21 && c <= 0x7E && i + 1 < n &&
                   p[i + 1] >= 0x21 && p[i + 1] <= 0x7E) {
            queue(d, g0, p + i);
            i += 2;
        } else if (c < 0x80) {
            if (resets(c, pn))
                g0 = cs->g0 ? cs->g0 : CE_ASCII, g1 = cs->g1;
            ascii_byte(d, c);
            i++;
        } else if (!g1) {
            flush(d);
            put_cp(d, c); /* nothing in G1: ISO 8859-1 */
            i++;
        } else if (elems[g1].width == 2) {
            if (i + 1 < n && p[i + 1] >= 0x80) {
                queue(d, g1, p + i);
                i += 2;
            } else {
                flush(d);
                put_cp(d, 0xFFFD);
                i++;
            }
        } else if (elems[g1].feed == FEED_KATAKANA) {
            flush(d);
            put_cp(d, c >= 0xA1 && c <= 0xDF ? 0xFF61u + (c - 0xA1u) : 0xFFFDu);
            i++;
        } else {
            queue(d, g1, p + i);
            i++;
        }
    }
    flush(d);
}

/* ISO_IR 192: well-formed sequences copied, any other byte read as ISO 8859-1. */
static void decode_utf8(dec_t *d, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = 1;
        while (i + k < n && k < 4 && (p[i + k] & 0xC0) == 0x80)
            k++;
        if (p[i] >= 0x80 && mt_charset_plain(&(mt_charset_t){.utf8 = true}, (const char *)p + i, k)) {
            put(d, p + i, k);
            i += k;
        } else if (p[i] < 0x80) {
            put(d, p + i, 1);
            i++;
        } else {
            put_cp(d, p[i]);
            i++;
        }
    }
}

char *mt_charset_to_utf8(const mt_charset_t *cs, const char *s, size_t n, bool pn)
{
    dec_t d = {.cap = 3 * n + 16};
    d.out = mt_malloc(d.cap);
    const unsigned char *p = (const unsigned char *)s;
    if (cs->utf8)
        decode_utf8(&d, p, n);
    else if (cs->whole)
        convert(&d, cs->whole, p, n, 1);
    else
        decode_2022(&d, cs, p, n, pn);
    d.out[d.len] = '\0';
    return d.out;
}
