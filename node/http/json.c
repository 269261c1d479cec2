/*
 * json.c - DICOM JSON Model (PS3.18 Annex F) encoder. Contract: json.h. PURE.
 *
 * mt_json_value is the one place that turns a value into JSON; the tree walker (mt_json_ds)
 * and the stream writer (mt_json_stream_*) only handle structure: commas, sequences, items.
 */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../dicom/charset.h"
#include "../index/query.h"
#include "../util/alloc.h"
#include "../util/err.h"

#define VR(a, b) MT_VR(a, b)

static int put(mt_buf_t *o, const char *s)
{
    return mt_buf_append(o, s, strlen(s));
}

/* A string literal, without strlen (the metadata path writes millions of these). */
#define PUTL(o, lit) mt_buf_append((o), (lit), sizeof(lit) - 1)

static const char hexd[] = "0123456789ABCDEF";

static void hex8(char *p, uint32_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 4)
        p[i] = hexd[v & 15];
}

/* ,"GGGGEEEE":{   (comma optional) */
static int put_key(mt_buf_t *o, uint32_t tag, bool comma)
{
    char t[16];
    size_t n = 0;
    if (comma)
        t[n++] = ',';
    t[n++] = '"';
    hex8(t + n, tag);
    n += 8;
    t[n++] = '"';
    t[n++] = ':';
    t[n++] = '{';
    return mt_buf_append(o, t, n);
}

static int put_i64(mt_buf_t *o, long long v)
{
    char t[24];
    size_t n = sizeof t;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        t[--n] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        t[--n] = '-';
    return mt_buf_append(o, t + n, sizeof t - n);
}

static int put_u64(mt_buf_t *o, unsigned long long u)
{
    char t[24];
    size_t n = sizeof t;
    do {
        t[--n] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    return mt_buf_append(o, t + n, sizeof t - n);
}

int mt_json_str(mt_buf_t *out, const char *s, size_t n)
{
    int rc = mt_buf_append(out, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        rc = mt_buf_append(out, s + run, i - run);
        char esc[8];
        if (ch == '"' || ch == '\\')
            snprintf(esc, sizeof esc, "\\%c", ch);
        else
            snprintf(esc, sizeof esc, "\\u%04x", ch);
        if (!rc)
            rc = put(out, esc);
        run = i + 1;
    }
    if (!rc)
        rc = mt_buf_append(out, s + run, n - run);
    return rc ? rc : mt_buf_append(out, "\"", 1);
}

/* Text as UTF-8 JSON string (bytes that are not UTF-8 read as Latin-1). */
static int text(mt_buf_t *o, const char *s, size_t n)
{
    if (mt_query_is_utf8(s, n))
        return mt_json_str(o, s, n);
    char *u = mt_query_latin1_to_utf8(s, n);
    int rc = mt_json_str(o, u, strlen(u));
    mt_free(u);
    return rc;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\0';
}

static void trim(const char **s, size_t *n, bool leading)
{
    while (*n && is_space((*s)[*n - 1]))
        (*n)--;
    if (leading)
        while (*n && **s == ' ')
            (*s)++, (*n)--;
}

static bool is_binary_bulk(uint16_t vr)
{
    return vr == VR('O', 'B') || vr == VR('O', 'W') || vr == VR('O', 'F') || vr == VR('O', 'D') ||
           vr == VR('O', 'L') || vr == VR('O', 'V') || vr == VR('U', 'N');
}

/* DS text -> a JSON number, or false when it is not a decimal. */
static bool ds_number(const char *s, size_t n, char *out, size_t outsz)
{
    char tmp[64];
    if (n == 0 || n >= sizeof tmp)
        return false;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    char *end;
    double d = strtod(tmp, &end);
    if (*end || end == tmp)
        return false;
    /* keep the text when it is already a JSON number (what dcm2json prints) */
    const char *p = tmp;
    size_t o = 0;
    if (*p == '+')
        p++;
    else if (*p == '-')
        out[o++] = *p++;
    while (p[0] == '0' && p[1] >= '0' && p[1] <= '9')
        p++;
    if (*p == '.')
        out[o++] = '0';
    bool ok = o + strlen(p) + 2 < outsz;
    if (ok) {
        strcpy(out + o, p);
        size_t L = strlen(out);
        if (L && out[L - 1] == '.')
            strcpy(out + L, "0");
        for (const char *q = out; *q; q++)
            if (!((*q >= '0' && *q <= '9') || *q == '.' || *q == '-' || *q == 'e' || *q == 'E' ||
                  *q == '+'))
                ok = false;
    }
    if (!ok)
        snprintf(out, outsz, "%.17g", d);
    return true;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int base64(mt_buf_t *o, const uint8_t *v, size_t n)
{
    int rc = mt_buf_reserve(o, (n + 2) / 3 * 4 + 2);
    if (rc)
        return rc;
    mt_buf_append(o, "\"", 1);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t x = (uint32_t)v[i] << 16;
        if (i + 1 < n)
            x |= (uint32_t)v[i + 1] << 8;
        if (i + 2 < n)
            x |= v[i + 2];
        char q[4] = {b64[(x >> 18) & 63], b64[(x >> 12) & 63],
                     i + 1 < n ? b64[(x >> 6) & 63] : '=', i + 2 < n ? b64[x & 63] : '='};
        mt_buf_append(o, q, 4);
    }
    return mt_buf_append(o, "\"", 1);
}

static uint64_t rd(const uint8_t *p, size_t n, bool be)
{
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x |= (uint64_t)p[be ? n - 1 - i : i] << (8 * i);
    return x;
}

static int pn_value(mt_buf_t *o, const char *s, size_t n)
{
    static const char *const groups[] = {"Alphabetic", "Ideographic", "Phonetic"};
    int rc = PUTL(o, "{");
    bool first = true;
    size_t start = 0;
    for (int g = 0; g < 3 && start <= n; g++) {
        size_t e = start;
        while (e < n && s[e] != '=')
            e++;
        const char *gs = s + start;
        size_t gn = e - start;
        trim(&gs, &gn, false);
        if (gn) {
            char k[32];
            snprintf(k, sizeof k, "%s\"%s\":", first ? "" : ",", groups[g]);
            rc = rc ? rc : put(o, k);
            rc = rc ? rc : text(o, gs, gn);
            first = false;
        }
        start = e + 1;
    }
    return rc ? rc : PUTL(o, "}");
}

int mt_json_value(uint32_t tag, uint16_t vr, const uint8_t *v, size_t len,
                  const mt_charset_t *cs, const mt_json_opts_t *o, mt_buf_t *out)
{
    char vrs[10] = {'"', 'v', 'r', '"', ':', '"', (char)(vr >> 8), (char)(vr & 0xFF), '"'};
    int rc = mt_buf_append(out, vrs, 9);
    if (rc || len == 0 || !v) {
        if (!rc && is_binary_bulk(vr) && len && !v && o && o->bulk_uri) {
            char t[16];
            snprintf(t, sizeof t, "%08X\"", tag);
            rc = PUTL(out, ",\"BulkDataURI\":\"");
            rc = rc ? rc : put(out, o->bulk_uri);
            rc = rc ? rc : put(out, t);
        }
        return rc;
    }
    bool be = o && o->big_endian;
    if (tag == MT_TAG(0x0008, 0x0005)) /* the JSON text is UTF-8, whatever the file used */
        return PUTL(out, ",\"Value\":[\"ISO_IR 192\"]");
    if (is_binary_bulk(vr)) {
        if (o && o->bulk_threshold && len > o->bulk_threshold) {
            if (!o->bulk_uri)
                return 0;
            char t[16];
            snprintf(t, sizeof t, "%08X\"", tag);
            rc = PUTL(out, ",\"BulkDataURI\":\"");
            rc = rc ? rc : put(out, o->bulk_uri);
            return rc ? rc : put(out, t);
        }
        rc = PUTL(out, ",\"InlineBinary\":");
        return rc ? rc : base64(out, v, len);
    }
    rc = PUTL(out, ",\"Value\":[");
    size_t w = 0;
    char num[64];
    if (vr == VR('U', 'S') || vr == VR('S', 'S') || vr == VR('U', 'L') || vr == VR('S', 'L') ||
        vr == VR('F', 'L') || vr == VR('F', 'D') || vr == VR('U', 'V') || vr == VR('S', 'V') ||
        vr == VR('A', 'T')) {
        w = (vr == VR('U', 'S') || vr == VR('S', 'S')) ? 2
            : (vr == VR('F', 'D') || vr == VR('U', 'V') || vr == VR('S', 'V')) ? 8
            : 4;
        for (size_t i = 0; i + w <= len && !rc; i += w) {
            uint64_t x = rd(v + i, w, be);
            if (i)
                rc = PUTL(out, ",");
            if (rc)
                break;
            if (vr == VR('U', 'S') || vr == VR('U', 'L') || vr == VR('U', 'V')) {
                rc = put_u64(out, x);
                continue;
            } else if (vr == VR('S', 'S')) {
                rc = put_i64(out, (int16_t)x);
                continue;
            } else if (vr == VR('S', 'L')) {
                rc = put_i64(out, (int32_t)x);
                continue;
            } else if (vr == VR('S', 'V')) {
                rc = put_i64(out, (long long)(int64_t)x);
                continue;
            } else if (vr == VR('F', 'L')) {
                float f;
                uint32_t u = (uint32_t)x;
                memcpy(&f, &u, 4);
                snprintf(num, sizeof num, "%.9g", (double)f);
            } else if (vr == VR('F', 'D')) {
                double d;
                memcpy(&d, &x, 8);
                snprintf(num, sizeof num, "%.17g", d);
            } else { /* AT: group then element */
                uint16_t g = (uint16_t)rd(v + i, 2, be), e = (uint16_t)rd(v + i + 2, 2, be);
                snprintf(num, sizeof num, "\"%04X%04X\"", g, e);
            }
            if (strstr(num, "nan") || strstr(num, "inf"))
                snprintf(num, sizeof num, "null");
            rc = put(out, num);
        }
        return rc ? rc : PUTL(out, "]");
    }
    /* strings: converted to UTF-8 whole before they are split (a two-byte set in G0 uses the
     * delimiters' bytes) */
    const char *s = (const char *)v;
    bool single = vr == VR('L', 'T') || vr == VR('S', 'T') || vr == VR('U', 'T') ||
                  vr == VR('U', 'R');
    bool charset_vr = vr == VR('S', 'H') || vr == VR('L', 'O') || vr == VR('S', 'T') ||
                      vr == VR('L', 'T') || vr == VR('U', 'T') || vr == VR('P', 'N') ||
                      vr == VR('U', 'C');
    char *utf8 = NULL;
    if (charset_vr && cs && !mt_charset_plain(cs, s, len)) {
        utf8 = mt_charset_to_utf8(cs, s, len, vr == VR('P', 'N'));
        s = utf8;
        len = strlen(utf8);
    }
    size_t start = 0;
    bool firstv = true;
    while (start <= len && !rc) {
        size_t e = start;
        if (!single)
            while (e < len && s[e] != '\\')
                e++;
        else
            e = len;
        const char *vs = s + start;
        size_t vn = e - start;
        trim(&vs, &vn, !single || vr == VR('U', 'R'));
        rc = put(out, firstv ? "" : ",");
        firstv = false;
        if (rc)
            break;
        if (vn == 0) {
            rc = PUTL(out, "null");
        } else if (vr == VR('P', 'N')) {
            rc = pn_value(out, vs, vn);
        } else if (vr == VR('I', 'S')) {
            char t[32];
            char *end;
            snprintf(t, sizeof t, "%.*s", (int)(vn < 31 ? vn : 31), vs);
            long long x = strtoll(t, &end, 10);
            if (*end == 0 && end != t) {
                rc = put_i64(out, x);
            } else {
                rc = text(out, vs, vn);
            }
        } else if (vr == VR('D', 'S')) {
            if (ds_number(vs, vn, num, sizeof num))
                rc = put(out, num);
            else
                rc = text(out, vs, vn);
        } else {
            rc = text(out, vs, vn);
        }
        start = e + 1;
    }
    mt_free(utf8);
    return rc ? rc : PUTL(out, "]");
}

/* The character set an element (0008,0005) declares for its data set. */
static void charset_of(const mt_charset_t *outer, const uint8_t *v, size_t n, mt_charset_t *cs)
{
    if (!v) {
        *cs = *outer;
        return;
    }
    mt_charset_parse((const char *)v, n, cs); /* an unknown term: the default repertoire */
}

static int tree(const mt_ds_t *ds, const mt_json_opts_t *o, const mt_charset_t *outer,
                unsigned depth, mt_buf_t *out)
{
    if (depth > 64)
        return MT_ETOOBIG;
    int rc = PUTL(out, "{");
    bool first = true;
    mt_ds_elem_t *cse = mt_ds_get(ds, MT_TAG(0x0008, 0x0005));
    mt_charset_t charset = *outer, *cs = &charset;
    if (cse)
        charset_of(outer, cse->value, cse->len, cs);
    for (size_t i = 0; i < mt_ds_count(ds) && !rc; i++) {
        const mt_ds_elem_t *e = mt_ds_at(ds, i);
        if (MT_TAG_ELEM(e->tag) == 0 || MT_TAG_GROUP(e->tag) == 0x0002)
            continue;
        rc = put_key(out, e->tag, !first);
        first = false;
        if (rc)
            break;
        if (e->vr == VR('S', 'Q') || e->items) {
            rc = PUTL(out, "\"vr\":\"SQ\"");
            if (!rc && e->n_items) {
                rc = PUTL(out, ",\"Value\":[");
                for (size_t k = 0; k < e->n_items && !rc; k++) {
                    rc = put(out, k ? "," : "");
                    rc = rc ? rc : tree(e->items[k], o, cs, depth + 1, out);
                }
                rc = rc ? rc : PUTL(out, "]");
            }
        } else if (e->encapsulated) {
            rc = mt_json_value(e->tag, e->vr, NULL, 1, cs, o, out);
        } else {
            rc = mt_json_value(e->tag, e->vr, e->value, e->value ? e->len : 0, cs, o, out);
        }
        rc = rc ? rc : PUTL(out, "}");
    }
    return rc ? rc : PUTL(out, "}");
}

int mt_json_ds(const mt_ds_t *ds, const mt_json_opts_t *o, mt_buf_t *out)
{
    mt_charset_t cs;
    mt_charset_default(&cs);
    return tree(ds, o, &cs, 0, out);
}

/* ---- stream writer ---- */

#define JS_MAX_DEPTH 66

struct mt_json_stream {
    mt_json_opts_t o;
    mt_buf_t *out;
    unsigned sp;
    struct {
        mt_charset_t cs; /* of the data set (item) open at this level */
        bool need_comma; /* in this object */
        bool seq_items;  /* the sequence opened at this level has items */
        uint32_t seq_tag; /* a sequence level: its tag and items so far (nested BulkDataURI) */
        uint32_t n_items;
        bool pixel;      /* an encapsulated Pixel Data at this level is open */
        unsigned skip;   /* events to skip: inside a skipped sequence */
    } st[JS_MAX_DEPTH];
    unsigned skip_depth; /* > 0: inside a sequence we do not write (too deep) */
};

mt_json_stream_t *mt_json_stream_new(const mt_json_opts_t *o, mt_buf_t *out)
{
    mt_json_stream_t *s = mt_calloc(1, sizeof *s);
    s->o = *o;
    s->out = out;
    mt_charset_default(&s->st[0].cs);
    PUTL(out, "{");
    return s;
}

void mt_json_stream_free(mt_json_stream_t *s)
{
    mt_free(s);
}

/* One level deeper (a sequence or an item): it inherits the character set. */
static void push(mt_json_stream_t *s)
{
    s->sp++;
    memset(&s->st[s->sp], 0, sizeof s->st[s->sp]);
    s->st[s->sp].cs = s->st[s->sp - 1].cs;
}

static int key(mt_json_stream_t *s, uint32_t tag)
{
    bool comma = s->st[s->sp].need_comma;
    s->st[s->sp].need_comma = true;
    return put_key(s->out, tag, comma);
}

/* The BulkDataURI prefix of an element inside an item: bulk_uri, then SSSSSSSS/N/ for each
 * enclosing sequence (its tag, the 1-based item number) from the top level down; the
 * element's tag is appended by the value formatter. NULL (no URI) when it does not fit. */
static const char *nested_uri(const mt_json_stream_t *s, char *buf, size_t sz)
{
    int n = snprintf(buf, sz, "%s", s->o.bulk_uri);
    for (unsigned i = 1; i <= s->sp && n > 0 && (size_t)n < sz; i += 2) /* sequence levels */
        n += snprintf(buf + n, sz - (size_t)n, "%08X/%u/", s->st[i].seq_tag, s->st[i].n_items);
    return n > 0 && (size_t)n < sz ? buf : NULL;
}

int mt_json_stream_event(mt_json_stream_t *s, mt_ds_event_t ev, const mt_elem_t *e)
{
    int rc = 0;
    mt_json_opts_t nested = s->o;
    char uri[2048];
    if (s->sp > 0 && s->o.bulk_uri)
        nested.bulk_uri = nested_uri(s, uri, sizeof uri);
    switch (ev) {
    case MT_DS_EV_ELEMENT:
        if (MT_TAG_ELEM(e->tag) == 0 || MT_TAG_GROUP(e->tag) == 0x0002)
            return 0;
        if (e->tag == MT_TAG(0x0008, 0x0005) && e->value)
            charset_of(&s->st[s->sp].cs, e->value, e->value_len, &s->st[s->sp].cs);
        rc = key(s, e->tag);
        if (rc)
            return rc;
        if (e->len == MT_UNDEFINED_LENGTH) { /* encapsulated Pixel Data */
            rc = mt_json_value(e->tag, e->vr, NULL, 1, &s->st[s->sp].cs, &nested, s->out);
            if (s->sp + 1 >= JS_MAX_DEPTH)
                return MT_ETOOBIG;
            push(s);
            s->st[s->sp].pixel = true;
            return rc ? rc : PUTL(s->out, "}");
        }
        if (!e->value) { /* delivered in chunks: too large to inline */
            rc = mt_json_value(e->tag, e->vr, NULL, e->len, &s->st[s->sp].cs, &nested, s->out);
        } else {
            rc = mt_json_value(e->tag, e->vr, e->value, e->value_len, &s->st[s->sp].cs, &nested,
                               s->out);
        }
        return rc ? rc : PUTL(s->out, "}");
    case MT_DS_EV_VALUE_CHUNK:
    case MT_DS_EV_FRAGMENT:
        return 0;
    case MT_DS_EV_SEQ_START:
        rc = key(s, e->tag);
        rc = rc ? rc : PUTL(s->out, "\"vr\":\"SQ\"");
        if (s->sp + 1 >= JS_MAX_DEPTH)
            return MT_ETOOBIG;
        push(s);
        s->st[s->sp].seq_tag = e->tag;
        return rc;
    case MT_DS_EV_ITEM_START:
        rc = put(s->out, s->st[s->sp].seq_items ? ",{" : ",\"Value\":[{");
        s->st[s->sp].seq_items = true;
        s->st[s->sp].n_items++;
        if (s->sp + 1 >= JS_MAX_DEPTH)
            return MT_ETOOBIG;
        push(s);
        return rc;
    case MT_DS_EV_ITEM_END:
        if (s->sp == 0)
            return MT_EMALFORMED;
        s->sp--;
        return PUTL(s->out, "}");
    case MT_DS_EV_SEQ_END:
        if (s->sp == 0)
            return MT_EMALFORMED;
        if (s->st[s->sp].pixel) {
            s->sp--;
            return 0;
        }
        rc = put(s->out, s->st[s->sp].seq_items ? "]}" : "}");
        s->sp--;
        return rc;
    }
    return 0;
}

int mt_json_stream_finish(mt_json_stream_t *s)
{
    int rc = 0;
    while (s->sp > 0 && !rc) { /* a stream stopped early (at Pixel Data): close what is open */
        if (s->st[s->sp].pixel)
            ;
        else
            rc = put(s->out, s->st[s->sp].seq_items ? "}]}" : "}");
        s->sp--;
    }
    return rc ? rc : PUTL(s->out, "}");
}
