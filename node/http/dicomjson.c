/*
 * dicomjson.c - DICOM JSON Model (PS3.18 Annex F) -> data set tree. Contract and the VR
 * rules: dicomjson.h. PURE.
 *
 * One table row per VR says how its "Value" is read (the kind) and its limits; read_elem
 * dispatches on the kind. Values are collected in an mt_buf_t and set once per element.
 */
#include "dicomjson.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/alloc.h"
#include "../util/buf.h"
#include "../util/err.h"

#define TAG_CHARSET MT_TAG(0x0008, 0x0005)
#define TAG_SOP_CLASS MT_TAG(0x0008, 0x0016)
#define TAG_SOP_INSTANCE MT_TAG(0x0008, 0x0018)
#define MAX_VALUE (0xFFFFFFF0u)

enum kind { K_TEXT, K_PN, K_IS, K_DS, K_AT, K_INT, K_FLOAT, K_BINARY, K_SQ };

typedef struct vr_rule {
    char vr[3];
    enum kind kind;
    bool multi;    /* text: several values allowed (joined with '\') */
    unsigned max;  /* text: bytes per value (0 = no check); numbers: size in bytes */
    double lo, hi; /* integers: range */
} vr_rule_t;

/* PS3.5 Table 6.2-1; lengths are checked where a longer value would break readers (UI, IS,
 * DS, AS, DA, AT); other text is taken as sent. */
static const vr_rule_t rules[] = {
    {"AE", K_TEXT, true, 0, 0, 0},
    {"AS", K_TEXT, true, 4, 0, 0},
    {"AT", K_AT, true, 4, 0, 0},
    {"CS", K_TEXT, true, 0, 0, 0},
    {"DA", K_TEXT, true, 18, 0, 0},
    {"DS", K_DS, true, 16, 0, 0},
    {"DT", K_TEXT, true, 0, 0, 0},
    {"FD", K_FLOAT, true, 8, 0, 0},
    {"FL", K_FLOAT, true, 4, 0, 0},
    {"IS", K_IS, true, 12, -2147483648.0, 2147483647.0},
    {"LO", K_TEXT, true, 0, 0, 0},
    {"LT", K_TEXT, false, 0, 0, 0},
    {"OB", K_BINARY, false, 1, 0, 0},
    {"OD", K_BINARY, false, 8, 0, 0},
    {"OF", K_BINARY, false, 4, 0, 0},
    {"OL", K_BINARY, false, 4, 0, 0},
    {"OV", K_BINARY, false, 8, 0, 0},
    {"OW", K_BINARY, false, 2, 0, 0},
    {"PN", K_PN, true, 0, 0, 0},
    {"SH", K_TEXT, true, 0, 0, 0},
    {"SL", K_INT, true, 4, -2147483648.0, 2147483647.0},
    {"SQ", K_SQ, false, 0, 0, 0},
    {"SS", K_INT, true, 2, -32768.0, 32767.0},
    {"ST", K_TEXT, false, 0, 0, 0},
    {"SV", K_INT, true, 8, -9223372036854775808.0, 9223372036854775807.0},
    {"TM", K_TEXT, true, 0, 0, 0},
    {"UC", K_TEXT, true, 0, 0, 0},
    {"UI", K_TEXT, true, 64, 0, 0},
    {"UL", K_INT, true, 4, 0, 4294967295.0},
    {"UN", K_BINARY, false, 1, 0, 0},
    {"UR", K_TEXT, false, 0, 0, 0},
    {"US", K_INT, true, 2, 0, 65535.0},
    {"UT", K_TEXT, false, 0, 0, 0},
    {"UV", K_INT, true, 8, 0, 18446744073709551615.0},
};

typedef struct ctx {
    mt_dj_bulk_t *bulk;
    size_t n_bulk;
    mt_dj_err_t *err;
    bool non_ascii;
    const mt_ts_t *ts; /* encapsulated syntax of the top-level Pixel Data, else NULL */
} ctx_t;

static int fail(ctx_t *c, int code, uint32_t tag, const char *why)
{
    if (!c->err->reason) {
        c->err->reason = why;
        c->err->tag = tag;
    }
    return code;
}

static const vr_rule_t *rule_of(const char *vr)
{
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
        if (strcmp(rules[i].vr, vr) == 0)
            return &rules[i];
    return NULL;
}

static bool parse_tag(const char *s, uint32_t *tag)
{
    uint32_t t = 0;
    for (int i = 0; i < 8; i++) {
        char h = s[i];
        t <<= 4;
        if (h >= '0' && h <= '9')
            t |= (uint32_t)(h - '0');
        else if (h >= 'a' && h <= 'f')
            t |= (uint32_t)(h - 'a' + 10);
        else if (h >= 'A' && h <= 'F')
            t |= (uint32_t)(h - 'A' + 10);
        else
            return false;
    }
    *tag = t;
    return s[8] == 0;
}

static void put_le(mt_buf_t *b, uint64_t v, unsigned n)
{
    uint8_t x[8];
    for (unsigned i = 0; i < n; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    mt_buf_append(b, x, n);
}

/* ---- text ---- */

static void note_text(ctx_t *c, const char *s, size_t n)
{
    for (size_t i = 0; i < n && !c->non_ascii; i++)
        c->non_ascii = (unsigned char)s[i] >= 0x80;
}

static bool text_ok(const vr_rule_t *r, const char *s, size_t n)
{
    if (r->max && n > r->max)
        return false;
    if (r->multi && memchr(s, '\\', n))
        return false;
    if (strcmp(r->vr, "UI") == 0)
        for (size_t i = 0; i < n; i++)
            if (!(s[i] == '.' || (s[i] >= '0' && s[i] <= '9')))
                return false;
    return true;
}

/* PN: {"Alphabetic","Ideographic","Phonetic"} -> "A=I=P" without trailing empty groups. */
static int pn_value(ctx_t *c, uint32_t tag, const mt_jsonv_t *v, mt_buf_t *b)
{
    static const char *const groups[3] = {"Alphabetic", "Ideographic", "Phonetic"};
    if (v->type != MT_JSON_OBJECT)
        return fail(c, MT_EMALFORMED, tag, "PN value is not an object");
    for (size_t i = 0; i < v->n; i++) {
        bool known = false;
        for (int g = 0; g < 3; g++)
            known |= strcmp(v->keys[i], groups[g]) == 0;
        if (!known)
            return fail(c, MT_EMALFORMED, tag, "PN value has an unknown component group");
    }
    int last = -1;
    for (int g = 0; g < 3; g++) {
        const mt_jsonv_t *s = mt_jsonv_get(v, groups[g]);
        if (s && s->type != MT_JSON_STRING && s->type != MT_JSON_NULL)
            return fail(c, MT_EMALFORMED, tag, "PN component group is not a string");
        if (s && s->type == MT_JSON_STRING && s->len)
            last = g;
    }
    for (int g = 0; g <= last; g++) {
        const mt_jsonv_t *s = mt_jsonv_get(v, groups[g]);
        if (g)
            mt_buf_append(b, "=", 1);
        if (s && s->type == MT_JSON_STRING) {
            if (memchr(s->str, '\\', s->len) || memchr(s->str, '=', s->len))
                return fail(c, MT_EMALFORMED, tag, "PN component group holds '\\' or '='");
            note_text(c, s->str, s->len);
            mt_buf_append(b, s->str, s->len);
        }
    }
    return 0;
}

/* IS/DS: a number, or a string holding one (some encoders quote them). */
static int decimal_value(ctx_t *c, const vr_rule_t *r, uint32_t tag, const mt_jsonv_t *v,
                         mt_buf_t *b)
{
    const char *lit = v->str;
    size_t n = v->len;
    double d = v->num;
    if (v->type == MT_JSON_STRING) {
        char *end;
        while (n && lit[0] == ' ')
            lit++, n--;
        while (n && lit[n - 1] == ' ')
            n--;
        char tmp[64];
        if (n == 0 || n >= sizeof tmp)
            return fail(c, MT_EMALFORMED, tag, "IS/DS string is not a number");
        memcpy(tmp, lit, n);
        tmp[n] = 0;
        d = strtod(tmp, &end);
        if (*end || strspn(tmp, "+-0123456789.eE") != n)
            return fail(c, MT_EMALFORMED, tag, "IS/DS string is not a number");
    } else if (v->type != MT_JSON_NUMBER) {
        return fail(c, MT_EMALFORMED, tag, "IS/DS value is not a number");
    }
    if (!isfinite(d))
        return fail(c, MT_EMALFORMED, tag, "IS/DS value out of range");
    if (r->kind == K_IS) {
        if (d != floor(d) || d < r->lo || d > r->hi)
            return fail(c, MT_EMALFORMED, tag, "IS value is not an integer in range");
        bool plain = strspn(lit, "+-0123456789") == n && n <= r->max;
        if (plain) {
            mt_buf_append(b, lit, n);
        } else {
            char t[32];
            int k = snprintf(t, sizeof t, "%.0f", d);
            mt_buf_append(b, t, (size_t)k);
        }
        return 0;
    }
    if (n <= r->max) {
        mt_buf_append(b, lit, n);
        return 0;
    }
    for (int prec = 16; prec > 0; prec--) { /* too long: fewest digits lost that fit 16 */
        char t[40];
        int k = snprintf(t, sizeof t, "%.*g", prec, d);
        if (k > 0 && (unsigned)k <= r->max) {
            mt_buf_append(b, t, (size_t)k);
            return 0;
        }
    }
    return fail(c, MT_EMALFORMED, tag, "DS value cannot be written in 16 bytes");
}

static int at_value(ctx_t *c, uint32_t tag, const mt_jsonv_t *v, mt_buf_t *b)
{
    uint32_t t;
    if (v->type != MT_JSON_STRING || v->len != 8 || !parse_tag(v->str, &t))
        return fail(c, MT_EMALFORMED, tag, "AT value is not \"GGGGEEEE\"");
    put_le(b, MT_TAG_GROUP(t), 2);
    put_le(b, MT_TAG_ELEM(t), 2);
    return 0;
}

static int int_value(ctx_t *c, const vr_rule_t *r, uint32_t tag, const mt_jsonv_t *v, mt_buf_t *b)
{
    if (v->type != MT_JSON_NUMBER && !(v->type == MT_JSON_STRING && r->max == 8))
        return fail(c, MT_EMALFORMED, tag, "binary integer value is not a number");
    bool is_signed = r->lo < 0;
    const char *s = v->str;
    if (v->len && strspn(s, "-0123456789") == v->len) { /* exact, also beyond 2^53 */
        char *end;
        errno = 0;
        if (is_signed) {
            long long x = strtoll(s, &end, 10);
            if (errno || *end || x < r->lo || x > r->hi)
                return fail(c, MT_EMALFORMED, tag, "binary integer value out of range");
            put_le(b, (uint64_t)x, r->max);
        } else {
            unsigned long long x = strtoull(s, &end, 10);
            if (errno || *end || s[0] == '-' || (double)x > r->hi ||
                (r->max < 8 && x > (unsigned long long)r->hi))
                return fail(c, MT_EMALFORMED, tag, "binary integer value out of range");
            put_le(b, x, r->max);
        }
        return 0;
    }
    double d = v->num;
    if (v->type != MT_JSON_NUMBER || d != floor(d) || d < r->lo || d > r->hi)
        return fail(c, MT_EMALFORMED, tag, "binary integer value is not an integer in range");
    put_le(b, is_signed ? (uint64_t)(int64_t)d : (uint64_t)d, r->max);
    return 0;
}

static int float_value(ctx_t *c, const vr_rule_t *r, uint32_t tag, const mt_jsonv_t *v, mt_buf_t *b)
{
    if (v->type != MT_JSON_NUMBER)
        return fail(c, MT_EMALFORMED, tag, "FL/FD value is not a number");
    uint64_t bits;
    if (r->max == 4) {
        float f = (float)v->num;
        uint32_t u;
        memcpy(&u, &f, 4);
        bits = u;
    } else {
        memcpy(&bits, &v->num, 8);
    }
    put_le(b, bits, r->max);
    return 0;
}

/* ---- binary ---- */

static int b64_digit(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    return ch == '+' ? 62 : ch == '/' ? 63 : -1;
}

/* RFC 4648 §4 base64 with padding (what PS3.18 §F.2.7 InlineBinary uses). */
static bool base64_decode(const char *s, size_t n, mt_buf_t *b)
{
    if (n % 4)
        return false;
    for (size_t i = 0; i < n; i += 4) {
        int d[4];
        size_t pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char ch = (unsigned char)s[i + k];
            if (ch == '=' && i + 4 == n && k >= 2) {
                d[k] = 0;
                pad++;
                continue;
            }
            if (pad || (d[k] = b64_digit(ch)) < 0)
                return false;
        }
        uint32_t w =
            (uint32_t)d[0] << 18 | (uint32_t)d[1] << 12 | (uint32_t)d[2] << 6 | (uint32_t)d[3];
        uint8_t o[3] = {(uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w};
        mt_buf_append(b, o, 3 - pad);
    }
    return true;
}

static mt_dj_bulk_t *next_bulk(ctx_t *c, const char *uri, size_t *from)
{
    for (size_t i = *from; i < c->n_bulk; i++)
        if (strcmp(c->bulk[i].location, uri) == 0) {
            *from = i + 1;
            return &c->bulk[i];
        }
    return NULL;
}

/* Encapsulated Pixel Data from parts with a transfer-syntax parameter (one frame each). */
static int encapsulate(ctx_t *c, mt_ds_t *ds, uint32_t tag, const char *uri, const mt_ts_t *ts)
{
    size_t from = 0, n = 0;
    for (mt_dj_bulk_t *p; (p = next_bulk(c, uri, &from));) {
        if (strcmp(p->transfer_syntax, ts->uid) != 0)
            return fail(c, MT_EMALFORMED, tag, "Pixel Data parts name different syntaxes");
        if (p->len > MAX_VALUE)
            return fail(c, MT_EMALFORMED, tag, "Pixel Data frame too long");
        n++;
    }
    if (mt_ds_set(ds, tag, MT_VR('O', 'B'), NULL, 0))
        return fail(c, MT_EMALFORMED, tag, "cannot set Pixel Data");
    mt_ds_elem_t *e = mt_ds_get(ds, tag);
    e->encapsulated = true;
    e->len = MT_UNDEFINED_LENGTH;
    e->frags = mt_calloc(n + 1, sizeof *e->frags);
    e->frag_lens = mt_calloc(n + 1, sizeof *e->frag_lens);
    e->n_frags = 1; /* empty Basic Offset Table (PS3.5 §A.4) */
    from = 0;
    for (mt_dj_bulk_t *p; (p = next_bulk(c, uri, &from));) {
        p->used = true;
        size_t len = p->len + (p->len & 1); /* fragments have even length (PS3.5 §A.4) */
        e->frags[e->n_frags] = mt_calloc(1, len ? len : 1);
        memcpy(e->frags[e->n_frags], p->data, p->len);
        e->frag_lens[e->n_frags++] = (uint32_t)len;
    }
    c->ts = ts;
    return 0;
}

static int bulk_value(ctx_t *c, mt_ds_t *ds, uint32_t tag, unsigned depth, const char *uri,
                      mt_buf_t *b)
{
    size_t from = 0;
    mt_dj_bulk_t *p = next_bulk(c, uri, &from);
    if (!p)
        return fail(c, MT_ENOENT, tag, "BulkDataURI names no part of the request");
    if (p->transfer_syntax[0] && tag == MT_TAG_PIXEL_DATA && depth == 0) {
        const mt_ts_t *ts = mt_ts_find(p->transfer_syntax);
        if (!ts)
            return fail(c, MT_EUNSUPPORTED, tag, "unknown transfer-syntax parameter");
        if (ts->encapsulated)
            return encapsulate(c, ds, tag, uri, ts);
        if (ts->big_endian || ts->deflated)
            return fail(c, MT_EUNSUPPORTED, tag, "bulk data syntax must be little endian");
    }
    for (from = 0; (p = next_bulk(c, uri, &from));) { /* native: the parts' bytes in order */
        p->used = true;
        if (mt_buf_append(b, p->data, p->len))
            return fail(c, MT_EMALFORMED, tag, "bulk data too long");
    }
    return 1; /* value in b */
}

static int binary_value(ctx_t *c, const vr_rule_t *r, mt_ds_t *ds, uint32_t tag, unsigned depth,
                        const mt_jsonv_t *el, mt_buf_t *b)
{
    const mt_jsonv_t *inl = mt_jsonv_get(el, "InlineBinary");
    const mt_jsonv_t *uri = mt_jsonv_get(el, "BulkDataURI");
    if (mt_jsonv_get(el, "Value"))
        return fail(c, MT_EMALFORMED, tag, "binary VR with \"Value\"");
    if (inl && uri)
        return fail(c, MT_EMALFORMED, tag, "both InlineBinary and BulkDataURI");
    int rc = 1;
    if (inl) {
        if (inl->type != MT_JSON_STRING || !base64_decode(inl->str, inl->len, b))
            return fail(c, MT_EMALFORMED, tag, "InlineBinary is not base64");
    } else if (uri) {
        if (uri->type != MT_JSON_STRING || !uri->len)
            return fail(c, MT_EMALFORMED, tag, "BulkDataURI is not a string");
        rc = bulk_value(c, ds, tag, depth, uri->str, b);
        if (rc <= 0)
            return rc;
    }
    if (b->len % r->max)
        return fail(c, MT_EMALFORMED, tag, "binary value is not a whole number of values");
    return 1;
}

/* ---- elements ---- */

static int read_ds(ctx_t *c, const mt_jsonv_t *obj, unsigned depth, mt_ds_t *ds);

static int seq_value(ctx_t *c, uint32_t tag, unsigned depth, const mt_jsonv_t *vals, mt_ds_t *ds)
{
    mt_ds_set(ds, tag, MT_VR('S', 'Q'), NULL, 0);
    mt_ds_elem_t *e = mt_ds_get(ds, tag);
    size_t n = vals ? vals->n : 0;
    if (!n)
        return 0;
    e->items = mt_calloc(n, sizeof *e->items);
    for (size_t i = 0; i < n; i++) {
        e->items[i] = mt_ds_new();
        e->n_items++;
        if (vals->kids[i].type != MT_JSON_OBJECT)
            return fail(c, MT_EMALFORMED, tag, "sequence item is not an object");
        int rc = read_ds(c, &vals->kids[i], depth + 1, e->items[i]);
        if (rc)
            return rc;
    }
    return 0;
}

static int one_value(ctx_t *c, const vr_rule_t *r, uint32_t tag, const mt_jsonv_t *v, mt_buf_t *b)
{
    switch (r->kind) {
    case K_TEXT:
        if (v->type != MT_JSON_STRING)
            return fail(c, MT_EMALFORMED, tag, "text value is not a string");
        if (!text_ok(r, v->str, v->len))
            return fail(c, MT_EMALFORMED, tag, "text value not valid for its VR");
        note_text(c, v->str, v->len);
        return mt_buf_append(b, v->str, v->len) ? fail(c, MT_EMALFORMED, tag, "too long") : 0;
    case K_PN:
        return pn_value(c, tag, v, b);
    case K_IS:
    case K_DS:
        return decimal_value(c, r, tag, v, b);
    case K_AT:
        return at_value(c, tag, v, b);
    case K_INT:
        return int_value(c, r, tag, v, b);
    case K_FLOAT:
        return float_value(c, r, tag, v, b);
    default:
        return fail(c, MT_EMALFORMED, tag, "bad VR kind");
    }
}

static int values(ctx_t *c, const vr_rule_t *r, uint32_t tag, const mt_jsonv_t *vals, mt_buf_t *b)
{
    if (vals->type != MT_JSON_ARRAY)
        return fail(c, MT_EMALFORMED, tag, "\"Value\" is not an array");
    if (!r->multi && vals->n > 1)
        return fail(c, MT_EMALFORMED, tag, "several values for a single-valued VR");
    bool text = r->kind == K_TEXT || r->kind == K_PN || r->kind == K_IS || r->kind == K_DS;
    for (size_t i = 0; i < vals->n; i++) {
        if (text && i)
            mt_buf_append(b, "\\", 1);
        if (vals->kids[i].type == MT_JSON_NULL) {
            if (!text)
                return fail(c, MT_EMALFORMED, tag, "null binary value");
            continue;
        }
        int rc = one_value(c, r, tag, &vals->kids[i], b);
        if (rc)
            return rc;
    }
    return 0;
}

static int read_elem(ctx_t *c, uint32_t tag, const mt_jsonv_t *el, unsigned depth, mt_ds_t *ds)
{
    if (el->type != MT_JSON_OBJECT)
        return fail(c, MT_EMALFORMED, tag, "attribute is not an object");
    const mt_jsonv_t *vr = mt_jsonv_get(el, "vr");
    if (!vr || vr->type != MT_JSON_STRING)
        return fail(c, MT_EMALFORMED, tag, "attribute has no \"vr\"");
    const vr_rule_t *r = rule_of(vr->str);
    if (!r)
        return fail(c, MT_EMALFORMED, tag, "unknown VR");
    const mt_jsonv_t *vals = mt_jsonv_get(el, "Value");
    if (r->kind == K_SQ)
        return vals && vals->type != MT_JSON_ARRAY
                   ? fail(c, MT_EMALFORMED, tag, "sequence \"Value\" is not an array")
                   : seq_value(c, tag, depth, vals, ds);
    mt_buf_t b;
    mt_buf_init(&b, MAX_VALUE);
    int rc = 0;
    if (r->kind == K_BINARY) {
        rc = binary_value(c, r, ds, tag, depth, el, &b);
        rc = rc == 1 ? 0 : rc == 0 ? 2 : rc; /* 2: already set (encapsulated) */
    } else if (mt_jsonv_get(el, "InlineBinary") || mt_jsonv_get(el, "BulkDataURI")) {
        rc = fail(c, MT_EMALFORMED, tag, "InlineBinary/BulkDataURI on a non-binary VR");
    } else if (vals) {
        rc = values(c, r, tag, vals, &b);
    }
    if (rc == 0 && b.len > MAX_VALUE)
        rc = fail(c, MT_EMALFORMED, tag, "value too long");
    if (rc == 0 && mt_ds_set(ds, tag, MT_VR(r->vr[0], r->vr[1]), b.data, (uint32_t)b.len))
        rc = fail(c, MT_EMALFORMED, tag, "cannot set the value");
    mt_buf_dispose(&b);
    return rc == 2 ? 0 : rc;
}

static int read_ds(ctx_t *c, const mt_jsonv_t *obj, unsigned depth, mt_ds_t *ds)
{
    if (depth > MT_JSONP_MAX_DEPTH)
        return fail(c, MT_EMALFORMED, 0, "nested too deeply");
    for (size_t i = 0; i < obj->n; i++) {
        uint32_t tag;
        if (!parse_tag(obj->keys[i], &tag))
            return fail(c, MT_EMALFORMED, 0, "attribute name is not a tag (8 hex digits)");
        if (MT_TAG_GROUP(tag) == 0xFFFE)
            return fail(c, MT_EMALFORMED, tag, "item tag as an attribute");
        if (MT_TAG_GROUP(tag) == 0x0002 || MT_TAG_ELEM(tag) == 0)
            continue; /* file meta (built by the caller) and group lengths */
        if (mt_ds_get(ds, tag))
            return fail(c, MT_EMALFORMED, tag, "attribute repeated");
        int rc = read_elem(c, tag, &obj->kids[i], depth, ds);
        if (rc)
            return rc;
    }
    return 0;
}

static bool has_uid(const mt_ds_t *ds, uint32_t tag)
{
    char v[65];
    return mt_ds_get_string(ds, tag, v, sizeof v) && v[0];
}

int mt_dicomjson_instance(const mt_jsonv_t *obj, mt_dj_bulk_t *bulk, size_t n_bulk, mt_ds_t **ds,
                          const mt_ts_t **ts, mt_dj_err_t *err)
{
    ctx_t c = {.bulk = bulk, .n_bulk = n_bulk, .err = err};
    memset(err, 0, sizeof *err);
    *ds = NULL;
    *ts = NULL;
    if (!obj || obj->type != MT_JSON_OBJECT)
        return fail(&c, MT_EMALFORMED, 0, "instance is not a JSON object");
    mt_ds_t *d = mt_ds_new();
    int rc = read_ds(&c, obj, 0, d);
    if (!rc && !has_uid(d, TAG_SOP_CLASS))
        rc = fail(&c, MT_EMALFORMED, TAG_SOP_CLASS, "SOP Class UID missing");
    if (!rc && !has_uid(d, TAG_SOP_INSTANCE))
        rc = fail(&c, MT_EMALFORMED, TAG_SOP_INSTANCE, "SOP Instance UID missing");
    if (!rc && c.non_ascii)
        rc = mt_ds_set_string(d, TAG_CHARSET, MT_VR('C', 'S'), "ISO_IR 192")
                 ? fail(&c, MT_EMALFORMED, TAG_CHARSET, "cannot set the character set")
                 : 0;
    if (rc) {
        mt_ds_free(d);
        return rc;
    }
    *ds = d;
    *ts = c.ts ? c.ts : mt_ts_explicit_le;
    return 0;
}
