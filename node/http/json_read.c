/*
 * json_read.c - recursive-descent JSON reader (RFC 8259 grammar) into mt_jsonv_t trees.
 * See json_read.h. A cursor {p, end} is checked before every byte read; depth is bounded.
 */
#include "json_read.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../util/alloc.h"
#include "../util/buf.h"
#include "../util/err.h"

typedef struct cur {
    const char *base, *p, *end;
    const char *why;
} cur_t;

static int bad(cur_t *c, const char *why)
{
    if (!c->why)
        c->why = why;
    return MT_EMALFORMED;
}

static void skip_ws(cur_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int hex4(cur_t *c, uint32_t *out)
{
    if (c->end - c->p < 4)
        return bad(c, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char h = *c->p++;
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

static void put_utf8(mt_buf_t *b, uint32_t cp)
{
    uint8_t u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (uint8_t)(0xC0 | (cp >> 6));
        u[1] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (uint8_t)(0xE0 | (cp >> 12));
        u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (uint8_t)(0xF0 | (cp >> 18));
        u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 4;
    }
    mt_buf_append(b, u, n);
}

static int escape(cur_t *c, mt_buf_t *b)
{
    if (c->p >= c->end)
        return bad(c, "truncated escape");
    char e = *c->p++;
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *k = strchr(from, e);
    if (k && e) {
        mt_buf_append(b, &to[k - from], 1);
        return 0;
    }
    if (e != 'u')
        return bad(c, "unknown escape");
    uint32_t cp;
    if (hex4(c, &cp))
        return MT_EMALFORMED;
    if (cp >= 0xD800 && cp <= 0xDBFF) { /* RFC 8259 §7: a surrogate pair */
        uint32_t lo;
        if (c->end - c->p < 2 || c->p[0] != '\\' || c->p[1] != 'u')
            return bad(c, "lone high surrogate");
        c->p += 2;
        if (hex4(c, &lo))
            return MT_EMALFORMED;
        if (lo < 0xDC00 || lo > 0xDFFF)
            return bad(c, "bad low surrogate");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        return bad(c, "lone low surrogate");
    }
    if (cp == 0)
        return bad(c, "NUL in a string");
    put_utf8(b, cp);
    return 0;
}

/* After the opening quote; *out is a NUL-terminated heap string. */
static int string(cur_t *c, char **out)
{
    mt_buf_t b;
    mt_buf_init(&b, (size_t)(c->end - c->base) + 1);
    for (;;) {
        if (c->p >= c->end) {
            mt_buf_dispose(&b);
            return bad(c, "unterminated string");
        }
        unsigned char ch = (unsigned char)*c->p++;
        if (ch == '"')
            break;
        if (ch < 0x20) {
            mt_buf_dispose(&b);
            return bad(c, "control character in a string");
        }
        if (ch == '\\') {
            if (escape(c, &b)) {
                mt_buf_dispose(&b);
                return MT_EMALFORMED;
            }
            continue;
        }
        mt_buf_append(&b, &ch, 1);
    }
    char *s = mt_malloc(b.len + 1);
    if (b.len)
        memcpy(s, b.data, b.len);
    s[b.len] = '\0';
    mt_buf_dispose(&b);
    *out = s;
    return 0;
}

static int number(cur_t *c, mt_jsonv_t *v)
{
    const char *s = c->p;
    if (c->p < c->end && *c->p == '-')
        c->p++;
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
        return bad(c, "bad number");
    if (*c->p == '0')
        c->p++;
    else
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
            c->p++;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return bad(c, "bad fraction");
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
            c->p++;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return bad(c, "bad exponent");
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
            c->p++;
    }
    v->type = MT_JSON_NUMBER;
    v->str = mt_strndup(s, (size_t)(c->p - s));
    v->num = strtod(v->str, NULL);
    return 0;
}

static int literal(cur_t *c, const char *word, mt_json_type_t t, mt_jsonv_t *v)
{
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return bad(c, "unexpected character");
    c->p += n;
    v->type = t;
    return 0;
}

static int value(cur_t *c, mt_jsonv_t *v, unsigned depth);

/* After '[' or '{'. */
static int container(cur_t *c, mt_jsonv_t *v, bool obj, unsigned depth)
{
    v->type = obj ? MT_JSON_OBJECT : MT_JSON_ARRAY;
    char close = obj ? '}' : ']';
    mt_jsonv_t **tail = &v->child;
    skip_ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return 0;
    }
    for (;;) {
        mt_jsonv_t *e = mt_calloc(1, sizeof *e);
        *tail = e;
        tail = &e->next;
        v->n++;
        skip_ws(c);
        if (obj) {
            if (c->p >= c->end || *c->p != '"')
                return bad(c, "expected a member name");
            c->p++;
            if (string(c, &e->key))
                return MT_EMALFORMED;
            skip_ws(c);
            if (c->p >= c->end || *c->p != ':')
                return bad(c, "expected ':'");
            c->p++;
        }
        if (value(c, e, depth + 1))
            return MT_EMALFORMED;
        skip_ws(c);
        if (c->p >= c->end)
            return bad(c, obj ? "unterminated object" : "unterminated array");
        char ch = *c->p++;
        if (ch == close)
            return 0;
        if (ch != ',')
            return bad(c, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int value(cur_t *c, mt_jsonv_t *v, unsigned depth)
{
    if (depth > MT_JSONR_MAX_DEPTH)
        return bad(c, "nested too deeply");
    skip_ws(c);
    if (c->p >= c->end)
        return bad(c, "expected a value");
    switch (*c->p) {
    case '{':
    case '[':
        return container(c, v, *c->p++ == '{', depth);
    case '"':
        c->p++;
        v->type = MT_JSON_STRING;
        return string(c, &v->str);
    case 't':
        return literal(c, "true", MT_JSON_TRUE, v);
    case 'f':
        return literal(c, "false", MT_JSON_FALSE, v);
    case 'n':
        return literal(c, "null", MT_JSON_NULL, v);
    default:
        return number(c, v);
    }
}

int mt_jsonr_parse(const char *text, size_t len, mt_jsonv_t **out, size_t *at, const char **why)
{
    cur_t c = {text, text, text + len, NULL};
    mt_jsonv_t *v = mt_calloc(1, sizeof *v);
    int rc = value(&c, v, 0);
    if (rc == 0) {
        skip_ws(&c);
        if (c.p != c.end)
            rc = bad(&c, "text after the value");
    }
    if (rc) {
        mt_jsonr_free(v);
        *out = NULL;
        if (at)
            *at = (size_t)(c.p - text);
        if (why)
            *why = c.why;
        return MT_EMALFORMED;
    }
    *out = v;
    return 0;
}

void mt_jsonr_free(mt_jsonv_t *v)
{
    while (v) {
        mt_jsonv_t *next = v->next;
        mt_jsonr_free(v->child);
        mt_free(v->key);
        mt_free(v->str);
        mt_free(v);
        v = next;
    }
}

const mt_jsonv_t *mt_jsonr_get(const mt_jsonv_t *obj, const char *key)
{
    if (!obj || obj->type != MT_JSON_OBJECT)
        return NULL;
    for (const mt_jsonv_t *e = obj->child; e; e = e->next)
        if (e->key && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}
