/*
 * rec.c - mt_index_rec_t: the index values of one instance, and the key table from keys.def.
 *
 * The ingest path offers every top-level element it parses (mt_index_rec_offer); the record
 * keeps those whose tag is a row of keys.def, converted to text:
 *   - string VRs: split at '\' into values, each trimmed of padding (spaces, NULs) on both sides
 *     (PS3.5 §6.2: leading/trailing spaces are insignificant for these VRs), except LT/ST/UT/UR
 *     which are single-valued text and only lose trailing padding;
 *   - binary numbers (US, SS, UL, SL, FL, FD; in the data set's byte order, big_endian for
 *     Explicit VR Big Endian) become decimal text, values joined by '\'.
 * Values are capped at MT_REC_VALUE_MAX bytes (an index key is never bulk data). A tag listed at
 * several levels (SpecificCharacterSet) is one value in the record, written to each column.
 *
 * Character sets (PS3.5 §6.1): the values of the VRs the Specific Character Set applies to (SH,
 * LO, ST, LT, UC, UT, PN) are stored as UTF-8, whatever the instance's charset, so queries
 * compare one encoding (SpecificCharacterSet itself is kept as received). Conversion happens
 * before the split at '\' (a GB18030 or JIS X 0208 byte can be 0x5C). Single-valued terms:
 * ISO_IR 100..203 and 166 (iconv tables), ISO_IR 13 (JIS X 0201), ISO_IR 192, GB18030, GBK.
 * Code extensions (ISO 2022 ...): escape sequences switch G0 (ASCII, JIS X 0201 Romaji,
 * JIS X 0208, JIS X 0212) and G1 (the ISO 8859 parts, JIS X 0201 Katakana, KS X 1001,
 * GB 2312), PS3.3 C.12.1.1.2. A value that does not decode (or non-ASCII bytes without a
 * declared charset) is taken as ISO 8859-1, the common undeclared case, so every stored value
 * is valid UTF-8. Uses iconv(3) for the tables; no other I/O.
 */
#include "index.h"
#include "keys.h"

#include <iconv.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../dicom/ds.h"
#include "../util/alloc.h"
#include "../util/buf.h"

#define MT_REC_VALUE_MAX 1024
#define TAG_SPECIFIC_CHARSET MT_TAG(0x0008, 0x0005)

static const mt_index_key_t keys[] = {
#define MT_INDEX_KEY(level, g, e, kw, col, kind)                                                   \
    {MT_LEVEL_##level, MT_TAG(g, e), #kw, #col, MT_KIND_##kind},
#include "keys.def"
#undef MT_INDEX_KEY
};
#define N_KEYS (sizeof keys / sizeof keys[0])

/* distinct tags, sorted, each with the rows that list it */
typedef struct tag_slot {
    uint32_t tag;
    uint8_t n_rows;
    uint16_t rows[MT_LEVEL_COUNT];
} tag_slot_t;
static tag_slot_t slots[N_KEYS];
static size_t n_slots;
static pthread_once_t slots_once = PTHREAD_ONCE_INIT;

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void build_slots(void)
{
    uint32_t tags[N_KEYS];
    for (size_t i = 0; i < N_KEYS; i++)
        tags[i] = keys[i].tag;
    qsort(tags, N_KEYS, sizeof tags[0], cmp_u32);
    for (size_t i = 0; i < N_KEYS; i++) {
        if (n_slots && slots[n_slots - 1].tag == tags[i])
            continue;
        tag_slot_t *s = &slots[n_slots++];
        s->tag = tags[i];
        for (size_t k = 0; k < N_KEYS; k++)
            if (keys[k].tag == tags[i] && s->n_rows < MT_LEVEL_COUNT)
                s->rows[s->n_rows++] = (uint16_t)k;
    }
}

static const tag_slot_t *slot_find(uint32_t tag)
{
    pthread_once(&slots_once, build_slots);
    size_t lo = 0, hi = n_slots;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (slots[mid].tag < tag)
            lo = mid + 1;
        else if (slots[mid].tag > tag)
            hi = mid;
        else
            return &slots[mid];
    }
    return NULL;
}

const mt_index_key_t *mt_index_keys(size_t *n)
{
    *n = N_KEYS;
    return keys;
}

const char *mt_index_level_table(mt_index_level_t level)
{
    static const char *const names[MT_LEVEL_COUNT] = {"patients", "studies", "series", "instances"};
    return level < MT_LEVEL_COUNT ? names[level] : NULL;
}

const mt_index_key_t *mt_index_key_find(uint32_t tag, mt_index_level_t level)
{
    const tag_slot_t *s = slot_find(tag);
    if (!s)
        return NULL;
    for (unsigned i = 0; i < s->n_rows; i++)
        if (level == MT_LEVEL_COUNT || keys[s->rows[i]].level == level)
            return &keys[s->rows[i]];
    return NULL;
}

struct mt_index_rec {
    char *values[N_KEYS]; /* by row; rows of one tag share one string (owned by the first) */
    char *rel_path, *ts_uid, *sop_class_uid;
    uint64_t size;
    bool has_checksum;
    uint32_t checksum;
};

mt_index_rec_t *mt_index_rec_new(void)
{
    return mt_calloc(1, sizeof(mt_index_rec_t));
}

static void clear_slot(mt_index_rec_t *r, const tag_slot_t *s)
{
    mt_free(r->values[s->rows[0]]);
    for (unsigned i = 0; i < s->n_rows; i++)
        r->values[s->rows[i]] = NULL;
}

void mt_index_rec_free(mt_index_rec_t *r)
{
    if (!r)
        return;
    pthread_once(&slots_once, build_slots);
    for (size_t i = 0; i < n_slots; i++)
        clear_slot(r, &slots[i]);
    mt_free(r->rel_path);
    mt_free(r->ts_uid);
    mt_free(r->sop_class_uid);
    mt_free(r);
}

static bool is_pad(char c)
{
    return c == ' ' || c == '\0';
}

/* Append one component of a string value, trimmed as described in the header comment, cut
 * at the value cap. Returns false once the cap is reached (the caller stops there). */
static bool put_component(mt_buf_t *out, const char *p, size_t n, bool trim_leading)
{
    size_t a = 0;
    if (trim_leading)
        while (a < n && is_pad(p[a]))
            a++;
    while (n > a && is_pad(p[n - 1]))
        n--;
    for (size_t i = a; i < n; i++)
        if (p[i] == '\0') /* an embedded NUL would cut the C string: stop at it */
            n = i;
    size_t room = out->limit - out->len;
    bool fits = n - a <= room;
    if (!fits) /* never cut inside a UTF-8 sequence */
        while (room && ((uint8_t)p[a + room] & 0xC0) == 0x80)
            room--;
    if (mt_buf_append(out, p + a, fits ? n - a : room) != 0)
        return false;
    return fits;
}

/* ---- character sets -> UTF-8 ---- */

static bool charset_vr(uint16_t vr)
{
    switch (vr) {
    case MT_VR('S', 'H'):
    case MT_VR('L', 'O'):
    case MT_VR('S', 'T'):
    case MT_VR('L', 'T'):
    case MT_VR('U', 'C'):
    case MT_VR('U', 'T'):
    case MT_VR('P', 'N'):
        return true;
    default:
        return false;
    }
}

static bool is_ascii(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] >= 0x80 || p[i] == 0x1B)
            return false;
    return true;
}

static bool is_utf8(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t c = p[i];
        size_t k = c < 0x80             ? 0
                   : (c & 0xE0) == 0xC0 ? 1
                   : (c & 0xF0) == 0xE0 ? 2
                   : (c & 0xF8) == 0xF0 ? 3
                                        : 9;
        if (k == 9 || (k == 1 && c < 0xC2) || (k && i + k >= n))
            return false;
        for (size_t j = 1; j <= k; j++)
            if ((p[i + j] & 0xC0) != 0x80)
                return false;
        i += k + 1;
    }
    return true;
}

static void put_utf8(mt_buf_t *o, uint32_t cp)
{
    uint8_t b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (uint8_t)(0xC0 | cp >> 6);
        b[1] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 2;
    } else {
        b[0] = (uint8_t)(0xE0 | cp >> 12);
        b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 3;
    }
    mt_buf_append(o, b, n);
}

static void latin1_to_utf8(mt_buf_t *o, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put_utf8(o, p[i]);
}

/* Convert n bytes in charset `name` (iconv name) to UTF-8 onto o. */
static bool iconv_append(mt_buf_t *o, const char *name, const uint8_t *p, size_t n)
{
    iconv_t cd = iconv_open("UTF-8", name);
    if (cd == (iconv_t)-1)
        return false;
    bool ok = mt_buf_reserve(o, n * 4 + 8) == 0;
    char *in = (char *)p, *out = (char *)o->data + o->len;
    size_t in_left = n, out_left = o->cap - o->len;
    if (ok && iconv(cd, &in, &in_left, &out, &out_left) == (size_t)-1)
        ok = false;
    if (ok)
        o->len = (size_t)((uint8_t *)out - o->data);
    iconv_close(cd);
    return ok;
}

typedef enum {
    G_NONE,
    G_ASCII,    /* ISO-IR 6, and ISO-IR 14 (JIS X 0201 Romaji) read as ASCII */
    G_JIS0208,  /* two 7-bit bytes per character (G0) */
    G_JIS0212,  /* the same (G0) */
    G_SB,       /* a 96-character single-byte set in GR (sb_name) */
    G_KATAKANA, /* JIS X 0201 Katakana in GR */
    G_KSX1001,  /* two GR bytes, EUC-KR */
    G_GB2312,   /* two GR bytes, EUC-CN */
} g_set_t;

/* Single-byte charsets by ISO-IR number: the DICOM term's number -> iconv name. */
static const char *sb_by_ir(int ir)
{
    switch (ir) {
    case 100:
        return "ISO-8859-1";
    case 101:
        return "ISO-8859-2";
    case 109:
        return "ISO-8859-3";
    case 110:
        return "ISO-8859-4";
    case 144:
        return "ISO-8859-5";
    case 127:
        return "ISO-8859-6";
    case 126:
        return "ISO-8859-7";
    case 138:
        return "ISO-8859-8";
    case 148:
        return "ISO-8859-9";
    case 203:
        return "ISO-8859-15";
    case 166:
        return "TIS-620";
    default:
        return NULL;
    }
}

/* ISO 2022 designation at p[0] == ESC; returns its length, 0 when unknown. */
static size_t escape(const uint8_t *p, size_t n, g_set_t *g0, g_set_t *g1, const char **sb)
{
    static const struct {
        const char *seq;
        bool is_g1;
        g_set_t set;
        int ir;
    } esc[] = {
        {"\x1b(B", false, G_ASCII, 6},      {"\x1b(J", false, G_ASCII, 14},
        {"\x1b)I", true, G_KATAKANA, 13},   {"\x1b$B", false, G_JIS0208, 87},
        {"\x1b$(D", false, G_JIS0212, 159}, {"\x1b$)C", true, G_KSX1001, 149},
        {"\x1b$)A", true, G_GB2312, 58},    {"\x1b-A", true, G_SB, 100},
        {"\x1b-B", true, G_SB, 101},        {"\x1b-C", true, G_SB, 109},
        {"\x1b-D", true, G_SB, 110},        {"\x1b-L", true, G_SB, 144},
        {"\x1b-G", true, G_SB, 127},        {"\x1b-F", true, G_SB, 126},
        {"\x1b-H", true, G_SB, 138},        {"\x1b-M", true, G_SB, 148},
        {"\x1b-T", true, G_SB, 166},        {"\x1b-b", true, G_SB, 203},
    };
    for (size_t i = 0; i < sizeof esc / sizeof esc[0]; i++) {
        size_t k = strlen(esc[i].seq);
        if (k <= n && memcmp(p, esc[i].seq, k) == 0) {
            if (esc[i].is_g1) {
                *g1 = esc[i].set;
                if (esc[i].set == G_SB)
                    *sb = sb_by_ir(esc[i].ir);
            } else {
                *g0 = esc[i].set;
            }
            return k;
        }
    }
    return 0;
}

/* ISO 2022 code extension decoding; false when the value does not decode. */
static bool iso2022_to_utf8(mt_buf_t *o, const uint8_t *p, size_t n, g_set_t g1, const char *sb)
{
    g_set_t g0 = G_ASCII;
    size_t i = 0;
    while (i < n) {
        if (p[i] == 0x1B) {
            size_t k = escape(p + i, n - i, &g0, &g1, &sb);
            if (!k)
                return false;
            i += k;
            continue;
        }
        size_t j = i;
        while (j < n && p[j] != 0x1B)
            j++;
        if (g0 == G_JIS0208 || g0 == G_JIS0212) {
            /* EUC-JP: set the high bits; JIS X 0212 takes the 0x8F prefix */
            if ((j - i) % 2)
                return false;
            mt_buf_t e;
            mt_buf_init(&e, 4 * (j - i) + 8);
            for (size_t k = i; k < j; k += 2) {
                if (g0 == G_JIS0212)
                    mt_buf_put_u8(&e, 0x8F);
                mt_buf_put_u8(&e, p[k] | 0x80);
                mt_buf_put_u8(&e, p[k + 1] | 0x80);
            }
            bool ok = iconv_append(o, "EUC-JP", e.data, e.len);
            mt_buf_dispose(&e);
            if (!ok)
                return false;
        } else {
            for (size_t k = i; k < j;) {
                if (p[k] < 0x80) {
                    mt_buf_put_u8(o, p[k++]);
                    continue;
                }
                size_t r = k;
                while (r < j && p[r] >= 0x80)
                    r++;
                switch (g1) {
                case G_SB:
                    if (!sb || !iconv_append(o, sb, p + k, r - k))
                        return false;
                    break;
                case G_KATAKANA:
                    for (size_t q = k; q < r; q++) {
                        if (p[q] < 0xA1 || p[q] > 0xDF)
                            return false;
                        put_utf8(o, 0xFF61 + (uint32_t)(p[q] - 0xA1));
                    }
                    break;
                case G_KSX1001:
                    if (!iconv_append(o, "EUC-KR", p + k, r - k))
                        return false;
                    break;
                case G_GB2312:
                    if (!iconv_append(o, "GB2312", p + k, r - k))
                        return false;
                    break;
                default:
                    return false;
                }
                k = r;
            }
        }
        i = j;
    }
    return true;
}

/* The ISO-IR number of a term "ISO_IR nnn" / "ISO 2022 IR nnn", else -1. */
static int term_ir(const char *t, size_t n)
{
    const char *digits = NULL;
    if (n > 7 && memcmp(t, "ISO_IR ", 7) == 0)
        digits = t + 7;
    else if (n > 12 && memcmp(t, "ISO 2022 IR ", 12) == 0)
        digits = t + 12;
    if (!digits)
        return -1;
    int v = 0;
    for (const char *c = digits; c < t + n; c++) {
        if (*c < '0' || *c > '9' || v > 1000)
            return -1;
        v = v * 10 + (*c - '0');
    }
    return v;
}

/* The value p/n of an instance whose Specific Character Set is cs (as the record keeps it:
 * terms separated by '\', NULL when absent) as UTF-8 onto o. */
static void to_utf8(mt_buf_t *o, const char *cs, const uint8_t *p, size_t n)
{
    size_t start = o->len;
    if (is_ascii(p, n)) {
        mt_buf_append(o, p, n);
        return;
    }
    const char *t0 = cs ? cs : "";
    size_t n0 = strcspn(t0, "\\");
    bool ext = cs && strstr(cs, "ISO 2022") != NULL;
    bool ok = false;
    int ir = term_ir(t0, n0);
    if (ext) {
        g_set_t g1 = G_NONE;
        const char *sb = NULL;
        if (ir == 13)
            g1 = G_KATAKANA;
        else if ((sb = sb_by_ir(ir)) != NULL)
            g1 = G_SB;
        ok = iso2022_to_utf8(o, p, n, g1, sb);
    } else if (n0 == 10 && memcmp(t0, "ISO_IR 192", 10) == 0) {
        ok = is_utf8(p, n) && mt_buf_append(o, p, n) == 0;
    } else if (n0 == 7 && memcmp(t0, "GB18030", 7) == 0) {
        ok = iconv_append(o, "GB18030", p, n);
    } else if (n0 == 3 && memcmp(t0, "GBK", 3) == 0) {
        ok = iconv_append(o, "GBK", p, n);
    } else if (ir == 13) {
        ok = iso2022_to_utf8(o, p, n, G_KATAKANA, NULL);
    } else if (sb_by_ir(ir)) {
        ok = iconv_append(o, sb_by_ir(ir), p, n);
    } else if (is_utf8(p, n)) {
        ok = mt_buf_append(o, p, n) == 0; /* undeclared, but UTF-8 */
    }
    if (!ok) {
        o->len = start;
        latin1_to_utf8(o, p, n);
    }
}

static uint64_t load(const uint8_t *p, size_t n, bool be)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[be ? i : n - 1 - i] << (8 * (n - 1 - i));
    return v;
}

static void put_text(mt_buf_t *out, const char *s)
{
    mt_buf_append(out, s, strlen(s));
}

/* Binary numeric VRs to decimal text; returns false for other VRs. */
static bool put_binary(mt_buf_t *out, uint16_t vr, const uint8_t *v, size_t len, bool be)
{
    size_t w;
    switch (vr) {
    case MT_VR('U', 'S'):
    case MT_VR('S', 'S'):
        w = 2;
        break;
    case MT_VR('U', 'L'):
    case MT_VR('S', 'L'):
    case MT_VR('F', 'L'):
        w = 4;
        break;
    case MT_VR('F', 'D'):
    case MT_VR('U', 'V'):
    case MT_VR('S', 'V'):
        w = 8;
        break;
    default:
        return false;
    }
    char t[40];
    for (size_t off = 0; off + w <= len; off += w) {
        uint64_t raw = load(v + off, w, be);
        switch (vr) {
        case MT_VR('U', 'S'):
        case MT_VR('U', 'L'):
        case MT_VR('U', 'V'):
            snprintf(t, sizeof t, "%llu", (unsigned long long)raw);
            break;
        case MT_VR('S', 'S'):
            snprintf(t, sizeof t, "%d", (int)(int16_t)(uint16_t)raw);
            break;
        case MT_VR('S', 'L'):
            snprintf(t, sizeof t, "%ld", (long)(int32_t)(uint32_t)raw);
            break;
        case MT_VR('S', 'V'):
            snprintf(t, sizeof t, "%lld", (long long)(int64_t)raw);
            break;
        case MT_VR('F', 'L'): {
            uint32_t u = (uint32_t)raw;
            float f;
            memcpy(&f, &u, sizeof f);
            snprintf(t, sizeof t, "%.9g", (double)f);
            break;
        }
        default: {
            double d;
            memcpy(&d, &raw, sizeof d);
            snprintf(t, sizeof t, "%.17g", d);
            break;
        }
        }
        if (off)
            put_text(out, "\\");
        put_text(out, t);
    }
    return true;
}

void mt_index_rec_offer(mt_index_rec_t *r, uint32_t tag, uint16_t vr, const uint8_t *value,
                        size_t len, bool big_endian)
{
    const tag_slot_t *s = slot_find(tag);
    if (!s)
        return;
    if (!value)
        len = 0;
    mt_buf_t out, conv;
    mt_buf_init(&out, MT_REC_VALUE_MAX);
    mt_buf_init(&conv, 4 * (size_t)len + 16);
    if (charset_vr(vr) && value && !is_ascii(value, len)) {
        to_utf8(&conv, mt_index_rec_get(r, TAG_SPECIFIC_CHARSET), value, len);
        value = conv.data;
        len = conv.len;
    }
    if (!put_binary(&out, vr, value, len, big_endian)) {
        const char *p = (const char *)value;
        bool text = vr == MT_VR('L', 'T') || vr == MT_VR('S', 'T') || vr == MT_VR('U', 'T') ||
                    vr == MT_VR('U', 'R');
        if (text) {
            put_component(&out, p, len, false);
        } else {
            size_t start = 0;
            for (size_t i = 0; i <= len; i++) {
                if (i == len || p[i] == '\\') {
                    if (start && mt_buf_append(&out, "\\", 1) != 0)
                        break;
                    if (!put_component(&out, p + start, i - start, true))
                        break;
                    start = i + 1;
                }
            }
        }
    }
    clear_slot(r, s);
    char *v = mt_strndup(out.len ? (const char *)out.data : "", out.len);
    mt_buf_dispose(&out);
    mt_buf_dispose(&conv);
    for (unsigned i = 0; i < s->n_rows; i++)
        r->values[s->rows[i]] = v;
}

const char *mt_index_rec_get(const mt_index_rec_t *r, uint32_t tag)
{
    const tag_slot_t *s = slot_find(tag);
    return s ? r->values[s->rows[0]] : NULL;
}

static void set_str(char **dst, const char *s)
{
    mt_free(*dst);
    *dst = s ? mt_strdup(s) : NULL;
}

void mt_index_rec_set_file(mt_index_rec_t *r, const char *rel_path, uint64_t size,
                           const char *ts_uid, const char *sop_class_uid)
{
    set_str(&r->rel_path, rel_path);
    set_str(&r->ts_uid, ts_uid);
    set_str(&r->sop_class_uid, sop_class_uid);
    r->size = size;
}

void mt_index_rec_set_checksum(mt_index_rec_t *r, uint32_t adler32)
{
    r->has_checksum = true;
    r->checksum = adler32;
}

const char *mt__index_rec_value(const mt_index_rec_t *r, size_t i)
{
    return i < N_KEYS ? r->values[i] : NULL;
}

void mt__index_rec_file(const mt_index_rec_t *r, mt__index_file_t *out)
{
    out->rel_path = r->rel_path;
    out->ts_uid = r->ts_uid;
    out->sop_class_uid = r->sop_class_uid;
    out->size = r->size;
    out->has_checksum = r->has_checksum;
    out->checksum = r->checksum;
}
