/*
 * jsonp.c - JSON reader: recursive descent over a cursor {pos, end}, one function per
 * RFC 8259 production (value, object, array, string, number). Contract: jsonp.h. PURE.
 */
#include "jsonp.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../util/alloc.h"
#include "../util/err.h"

typedef struct cur {
    const char *start, *pos, *end;
    mt_diag_t *diag;
    const char *why;
    size_t *budget; /* values still allowed */
    bool toobig;
} cur_t;

static int bad(cur_t *c, const char *why)
{
    if (!c->why) {
        c->why = why;
        if (c->diag) {
            c->diag->offset = (uint64_t)(c->pos - c->start);
            c->diag->reason = why;
        }
    }
    return MT_EMALFORMED;
}

static void skip_ws(cur_t *c)
{
    while (c->pos < c->end &&
           (*c->pos == ' ' || *c->pos == '\t' || *c->pos == '\n' || *c->pos == '\r'))
        c->pos++;
}

static bool eat(cur_t *c, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(c->end - c->pos) < n || memcmp(c->pos, lit, n) != 0)
        return false;
    c->pos += n;
    return true;
}

static int hex4(cur_t *c, uint32_t *out)
{
    if (c->end - c->pos < 4)
        return bad(c, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char h = *c->pos++;
        v <<= 4;
        if (h >= '0' && h <= '9')
            v |= (uint32_t)(h - '0');
        else if (h >= 'a' && h <= 'f')
            v |= (uint32_t)(h - 'a' + 10);
        else if (h >= 'A' && h <= 'F')
            v |= (uint32_t)(h - 'A' + 10);
        else
            return bad(c, "bad hex digit in \\u escape");
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, no surrogates, at most
 * U+10FFFF), 0 when invalid. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    size_t n = (size_t)(end - p);
    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF)
        return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if ((p[0] == 0xE0 && p[1] < 0xA0) || (p[0] == 0xED && p[1] >= 0xA0))
            return 0;
        return 3;
    }
    if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if ((p[0] == 0xF0 && p[1] < 0x90) || (p[0] == 0xF4 && p[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

static int escape(cur_t *c, char *o, size_t *olen)
{
    if (c->pos >= c->end)
        return bad(c, "truncated escape");
    char e = *c->pos++;
    const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
    const char *hit = e ? strchr(from, e) : NULL;
    if (hit) {
        o[(*olen)++] = to[hit - from];
        return 0;
    }
    if (e != 'u')
        return bad(c, "unknown escape");
    uint32_t cp;
    if (hex4(c, &cp))
        return MT_EMALFORMED;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        uint32_t lo;
        if (!eat(c, "\\u") || hex4(c, &lo) || lo < 0xDC00 || lo > 0xDFFF)
            return bad(c, "lone high surrogate in \\u escape");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        return bad(c, "lone low surrogate in \\u escape");
    } else if (cp == 0) {
        return bad(c, "\\u0000 in a string");
    }
    *olen += put_utf8(o + *olen, cp);
    return 0;
}

/* A string (cursor on the opening quote) into a new NUL-terminated buffer. The decoded text
 * is never longer than the encoded one, so one allocation of the encoded size suffices. */
static int string(cur_t *c, char **out, size_t *outlen)
{
    c->pos++;
    const char *q = c->pos;
    while (q < c->end && *q != '"')
        q += *q == '\\' && q + 1 < c->end ? 2 : 1;
    if (q >= c->end)
        return bad(c, "unterminated string");
    char *o = mt_malloc((size_t)(q - c->pos) + 1);
    size_t n = 0;
    while (c->pos < q) {
        unsigned char ch = (unsigned char)*c->pos;
        if (ch == '\\') {
            c->pos++;
            if (escape(c, o, &n))
                goto fail;
        } else if (ch < 0x20) {
            bad(c, "control character in a string");
            goto fail;
        } else {
            size_t k = utf8_len((const unsigned char *)c->pos, (const unsigned char *)q);
            if (!k) {
                bad(c, "invalid UTF-8 in a string");
                goto fail;
            }
            memcpy(o + n, c->pos, k);
            n += k;
            c->pos += k;
        }
    }
    if (c->pos != q) { /* an escape ran past the closing quote */
        bad(c, "malformed escape at end of string");
        goto fail;
    }
    c->pos++;
    o[n] = 0;
    *out = o;
    *outlen = n;
    return 0;
fail:
    mt_free(o);
    return MT_EMALFORMED;
}

static bool digit(const cur_t *c)
{
    return c->pos < c->end && *c->pos >= '0' && *c->pos <= '9';
}

static int number(cur_t *c, mt_jsonv_t *v)
{
    const char *s = c->pos;
    if (c->pos < c->end && *c->pos == '-')
        c->pos++;
    if (!digit(c))
        return bad(c, "bad number");
    if (*c->pos == '0')
        c->pos++;
    else
        while (digit(c))
            c->pos++;
    if (c->pos < c->end && *c->pos == '.') {
        c->pos++;
        if (!digit(c))
            return bad(c, "no digits after the decimal point");
        while (digit(c))
            c->pos++;
    }
    if (c->pos < c->end && (*c->pos == 'e' || *c->pos == 'E')) {
        c->pos++;
        if (c->pos < c->end && (*c->pos == '+' || *c->pos == '-'))
            c->pos++;
        if (!digit(c))
            return bad(c, "no digits in the exponent");
        while (digit(c))
            c->pos++;
    }
    v->type = MT_JSON_NUMBER;
    v->len = (size_t)(c->pos - s);
    v->str = mt_malloc(v->len + 1);
    memcpy(v->str, s, v->len);
    v->str[v->len] = 0;
    v->num = strtod(v->str, NULL); /* the grammar above is a subset of strtod's in any locale
                                    * whose decimal point is '.', which is C's: we never
                                    * call setlocale */
    return 0;
}

static int value(cur_t *c, mt_jsonv_t *v, unsigned depth);

static void push(mt_jsonv_t *v, size_t *cap)
{
    if (v->n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        v->kids = mt_realloc(v->kids, *cap * sizeof *v->kids);
        if (v->type == MT_JSON_OBJECT)
            v->keys = mt_realloc(v->keys, *cap * sizeof *v->keys);
    }
    memset(&v->kids[v->n], 0, sizeof v->kids[v->n]);
    if (v->type == MT_JSON_OBJECT)
        v->keys[v->n] = NULL;
    v->n++;
}

/* Array or object (cursor on '[' or '{'). Members are added before they are parsed, so a
 * failure part-way leaves a tree mt_jsonv_free can release. */
static int container(cur_t *c, mt_jsonv_t *v, unsigned depth)
{
    bool obj = *c->pos == '{';
    char close = obj ? '}' : ']';
    v->type = obj ? MT_JSON_OBJECT : MT_JSON_ARRAY;
    if (depth >= MT_JSONP_MAX_DEPTH)
        return bad(c, "nested too deeply");
    c->pos++;
    skip_ws(c);
    if (c->pos < c->end && *c->pos == close) {
        c->pos++;
        return 0;
    }
    size_t cap = 0;
    for (;;) {
        skip_ws(c);
        push(v, &cap);
        if (obj) {
            size_t klen;
            if (c->pos >= c->end || *c->pos != '"')
                return bad(c, "object member name expected");
            if (string(c, &v->keys[v->n - 1], &klen))
                return MT_EMALFORMED;
            skip_ws(c);
            if (!eat(c, ":"))
                return bad(c, "':' expected");
        }
        if (value(c, &v->kids[v->n - 1], depth + 1))
            return MT_EMALFORMED;
        skip_ws(c);
        if (eat(c, ","))
            continue;
        if (c->pos < c->end && *c->pos == close) {
            c->pos++;
            return 0;
        }
        return bad(c, obj ? "',' or '}' expected" : "',' or ']' expected");
    }
}

static int value(cur_t *c, mt_jsonv_t *v, unsigned depth)
{
    if (*c->budget == 0) {
        c->toobig = true;
        return bad(c, "more values than allowed");
    }
    --*c->budget;
    skip_ws(c);
    if (c->pos >= c->end)
        return bad(c, "value expected");
    switch (*c->pos) {
    case '{':
    case '[':
        return container(c, v, depth);
    case '"':
        v->type = MT_JSON_STRING;
        return string(c, &v->str, &v->len);
    case 't':
        v->type = MT_JSON_TRUE;
        return eat(c, "true") ? 0 : bad(c, "bad literal");
    case 'f':
        v->type = MT_JSON_FALSE;
        return eat(c, "false") ? 0 : bad(c, "bad literal");
    case 'n':
        v->type = MT_JSON_NULL;
        return eat(c, "null") ? 0 : bad(c, "bad literal");
    default:
        if (*c->pos == '-' || (*c->pos >= '0' && *c->pos <= '9'))
            return number(c, v);
        return bad(c, "value expected");
    }
}

static void dispose(mt_jsonv_t *v)
{
    for (size_t i = 0; i < v->n; i++) {
        dispose(&v->kids[i]);
        if (v->keys)
            mt_free(v->keys[i]);
    }
    mt_free(v->kids);
    mt_free(v->keys);
    mt_free(v->str);
}

void mt_jsonv_free(mt_jsonv_t *v)
{
    if (!v)
        return;
    dispose(v);
    mt_free(v);
}

int mt_jsonp_parse(const char *text, size_t len, mt_jsonv_t **out, mt_diag_t *diag)
{
    size_t unlimited = SIZE_MAX;
    return mt_jsonp_parse_n(text, len, &unlimited, out, diag);
}

int mt_jsonp_parse_n(const char *text, size_t len, size_t *budget, mt_jsonv_t **out,
                     mt_diag_t *diag)
{
    cur_t c = {.start = text, .pos = text, .end = text + len, .diag = diag, .budget = budget};
    mt_jsonv_t *v = mt_calloc(1, sizeof *v);
    *out = NULL;
    if (value(&c, v, 0) == 0) {
        skip_ws(&c);
        if (c.pos == c.end) {
            *out = v;
            return 0;
        }
        bad(&c, "text after the value");
    }
    mt_jsonv_free(v);
    return c.toobig ? MT_ETOOBIG : MT_EMALFORMED;
}

const mt_jsonv_t *mt_jsonv_get(const mt_jsonv_t *v, const char *key)
{
    if (!v || v->type != MT_JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < v->n; i++)
        if (v->keys[i] && strcmp(v->keys[i], key) == 0)
            return &v->kids[i];
    return NULL;
}
