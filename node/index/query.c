/*
 * query.c - identifier -> mt_query_t, the CLI's query text -> mt_query_t, and the matching
 * semantics (mt_query_match). The rules are in query.h. PURE: no I/O.
 */
#include "query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../dicom/charset.h"
#include "../dicom/dict.h"
#include "../util/alloc.h"
#include "../util/err.h"

#define TAG_CHARSET MT_TAG(0x0008, 0x0005)
#define TAG_QR_LEVEL MT_TAG(0x0008, 0x0052)
#define TAG_RETRIEVE_AE MT_TAG(0x0008, 0x0054)
#define TAG_AVAILABILITY MT_TAG(0x0008, 0x0056)
#define TAG_MODALITIES MT_TAG(0x0008, 0x0061)
#define TAG_SOP_CLASSES MT_TAG(0x0008, 0x0062)
#define TAG_AVAILABLE_TS MT_TAG(0x0008, 0x3002)
#define MT_STATUS_IDENTIFIER_MISMATCH 0xA900 /* PS3.4 C.4.1.1.4 */
#define MT_STATUS_CANNOT_UNDERSTAND_FIND 0xC000
#define QUERY_MAX_KEYS 1024
#define QUERY_MAX_VALUE 4096
#define QUERY_MAX_TERM (QUERY_MAX_VALUE + 80) /* query text: KEYWORD, operator, value */

static const uint32_t unique_key[MT_LEVEL_COUNT] = {
    MT_TAG(0x0010, 0x0020), /* PatientID */
    MT_TAG(0x0020, 0x000D), /* StudyInstanceUID */
    MT_TAG(0x0020, 0x000E), /* SeriesInstanceUID */
    MT_TAG(0x0008, 0x0018), /* SOPInstanceUID */
};

static const struct {
    uint32_t tag;
    mt_qcomputed_t c;
    int level; /* -1: any level */
    uint16_t vr;
} computed[] = {
    {MT_TAG(0x0020, 0x1200), MT_QC_PATIENT_STUDIES, MT_LEVEL_PATIENT, MT_VR('I', 'S')},
    {MT_TAG(0x0020, 0x1202), MT_QC_PATIENT_SERIES, MT_LEVEL_PATIENT, MT_VR('I', 'S')},
    {MT_TAG(0x0020, 0x1204), MT_QC_PATIENT_INSTANCES, MT_LEVEL_PATIENT, MT_VR('I', 'S')},
    {MT_TAG(0x0020, 0x1206), MT_QC_STUDY_SERIES, MT_LEVEL_STUDY, MT_VR('I', 'S')},
    {MT_TAG(0x0020, 0x1208), MT_QC_STUDY_INSTANCES, MT_LEVEL_STUDY, MT_VR('I', 'S')},
    {MT_TAG(0x0020, 0x1209), MT_QC_SERIES_INSTANCES, MT_LEVEL_SERIES, MT_VR('I', 'S')},
    {TAG_MODALITIES, MT_QC_MODALITIES, MT_LEVEL_STUDY, MT_VR('C', 'S')},
    {TAG_SOP_CLASSES, MT_QC_SOP_CLASSES, MT_LEVEL_STUDY, MT_VR('U', 'I')},
    {TAG_RETRIEVE_AE, MT_QC_RETRIEVE_AE, -1, MT_VR('A', 'E')},
    {TAG_AVAILABILITY, MT_QC_AVAILABILITY, -1, MT_VR('C', 'S')},
    {TAG_AVAILABLE_TS, MT_QC_TS, MT_LEVEL_INSTANCE, MT_VR('U', 'I')},
    {MT_TAG(MT_CMR_GROUP, 0x0010), MT_QC_CMR_CREATOR, MT_LEVEL_SERIES, MT_VR('L', 'O')},
    {MT_TAG(MT_CMR_GROUP, 0x1010), MT_QC_CMR_TAG, MT_LEVEL_SERIES, MT_VR('L', 'O')},
    {MT_TAG(MT_CMR_GROUP, 0x1011), MT_QC_CMR_VIEW, MT_LEVEL_SERIES, MT_VR('C', 'S')},
    {MT_TAG(MT_CMR_GROUP, 0x1012), MT_QC_CMR_CONFIDENCE, MT_LEVEL_SERIES, MT_VR('D', 'S')},
    {MT_TAG(MT_CMR_GROUP, 0x1013), MT_QC_CMR_VERSION, MT_LEVEL_SERIES, MT_VR('L', 'O')},
};

/* ---- levels ---- */

int mt_query_level_parse(const char *s)
{
    static const char *const names[] = {"PATIENT", "STUDY", "SERIES", "IMAGE"};
    for (int i = 0; i < MT_LEVEL_COUNT; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    if (strcmp(s, "INSTANCE") == 0)
        return MT_LEVEL_INSTANCE;
    return -1;
}

const char *mt_query_level_name(mt_index_level_t level)
{
    static const char *const names[] = {"PATIENT", "STUDY", "SERIES", "IMAGE"};
    return level < MT_LEVEL_COUNT ? names[level] : "?";
}

/* ---- character sets ---- */

bool mt_query_is_utf8(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t k;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            k = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
        } else {
            return false;
        }
        for (size_t j = 1; j <= k; j++)
            if (i + j >= n || (p[i + j] & 0xC0) != 0x80)
                return false;
        i += k + 1;
    }
    return true;
}

char *mt_query_latin1_to_utf8(const char *s, size_t n)
{
    char *out = mt_malloc(2 * n + 1);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            out[j++] = (char)c;
        } else {
            out[j++] = (char)(0xC0 | (c >> 6));
            out[j++] = (char)(0x80 | (c & 0x3F));
        }
    }
    out[j] = 0;
    return out;
}

char *mt_query_utf8_to_latin1(const char *s)
{
    size_t n = strlen(s);
    char *out = mt_malloc(n + 1);
    size_t j = 0;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < 0x80) {
            out[j++] = (char)p[i];
        } else if ((p[i] == 0xC2 || p[i] == 0xC3) && i + 1 < n && (p[i + 1] & 0xC0) == 0x80) {
            out[j++] = (char)(((p[i] & 0x03) << 6) | (p[i + 1] & 0x3F));
            i++;
        } else {
            mt_free(out);
            return NULL;
        }
    }
    out[j] = 0;
    return out;
}

/* ---- matching ---- */

/* Next code point of a UTF-8 string (an invalid byte is taken as itself). */
static uint32_t next_cp(const char **sp)
{
    const unsigned char *p = (const unsigned char *)*sp;
    uint32_t c = p[0];
    size_t k = 0;
    if (c >= 0xC2 && c <= 0xDF)
        k = 1, c &= 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        k = 2, c &= 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        k = 3, c &= 0x07;
    for (size_t j = 1; j <= k; j++) {
        if ((p[j] & 0xC0) != 0x80) {
            *sp += 1;
            return p[0];
        }
        c = (c << 6) | (p[j] & 0x3F);
    }
    *sp += k + 1;
    return c;
}

static uint32_t fold(uint32_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c + 32;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
        return c + 32;
    return c;
}

/* Glob match of s[0..sn) against p[0..pn) ('*', '?'), by code point. */
static bool wild(const char *p, const char *pe, const char *s, const char *se, bool icase)
{
    const char *star_p = NULL, *star_s = NULL;
    while (s < se) {
        if (p < pe && *p == '*') {
            while (p < pe && *p == '*')
                p++;
            if (p == pe)
                return true;
            star_p = p;
            star_s = s;
            continue;
        }
        if (p < pe) {
            const char *p2 = p, *s2 = s;
            uint32_t pc = next_cp(&p2), sc = next_cp(&s2);
            if (pc == '?' || (icase ? fold(pc) == fold(sc) : pc == sc)) {
                p = p2;
                s = s2;
                continue;
            }
        }
        if (!star_p)
            return false;
        next_cp(&star_s); /* the star takes one more character */
        p = star_p;
        s = star_s;
    }
    while (p < pe && *p == '*')
        p++;
    return p == pe;
}

/* The [b, e) of component group g of a PN value (groups separated by '='). */
static void pn_group(const char *v, const char *ve, int g, const char **b, const char **e)
{
    const char *s = v;
    for (int i = 0; i < g; i++) {
        const char *eq = memchr(s, '=', (size_t)(ve - s));
        if (!eq) {
            *b = *e = ve;
            return;
        }
        s = eq + 1;
    }
    const char *eq = memchr(s, '=', (size_t)(ve - s));
    *b = s;
    *e = eq ? eq : ve;
}

static bool match_one(unsigned flags, const char *p, const char *pe, const char *v,
                      const char *ve)
{
    if (flags & MT_QF_EXACT)
        return (size_t)(pe - p) == (size_t)(ve - v) && memcmp(p, v, (size_t)(ve - v)) == 0;
    if (!(flags & MT_QF_PN))
        return wild(p, pe, v, ve, (flags & MT_QF_ICASE) != 0);
    for (int g = 0; g < 3; g++) {
        const char *pb, *pge, *vb, *vge;
        pn_group(p, pe, g, &pb, &pge);
        if (pb == pge || (pge - pb == 1 && *pb == '*'))
            continue; /* no condition on this group */
        pn_group(v, ve, g, &vb, &vge);
        if (!wild(pb, pge, vb, vge, true))
            return false;
    }
    return true;
}

bool mt_query_match(unsigned flags, const char *pattern, const char *value)
{
    return mt_query_match_cs(flags, pattern, value, NULL);
}

bool mt_query_match_cs(unsigned flags, const char *pattern, const char *value,
                       const char *charset)
{
    if (!pattern || !*pattern)
        return true;
    if (!value)
        return false;
    size_t n = strlen(value);
    char *conv = NULL;
    mt_charset_t cs;
    if (charset && *charset && !mt_charset_parse(charset, strlen(charset), &cs) &&
        mt_charset_declared(&cs) && !mt_charset_plain(&cs, value, n))
        value = conv = mt_charset_to_utf8(&cs, value, n, flags & MT_QF_PN);
    else if (!mt_query_is_utf8(value, n))
        value = conv = mt_query_latin1_to_utf8(value, n);
    const char *pe = pattern + strlen(pattern);
    const char *v = value, *ve = value + strlen(value);
    bool ok = false;
    if (flags & MT_QF_MULTI) {
        const char *s = v;
        for (;;) {
            const char *bs = memchr(s, '\\', (size_t)(ve - s));
            const char *e = bs ? bs : ve;
            if (match_one(flags, pattern, pe, s, e)) {
                ok = true;
                break;
            }
            if (!bs)
                break;
            s = bs + 1;
        }
    } else {
        ok = match_one(flags, pattern, pe, v, ve);
    }
    mt_free(conv);
    return ok;
}

/* ---- building a query ---- */

void mt_query_free(mt_query_t *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->n_keys; i++) {
        mt_qkey_t *k = &q->keys[i];
        mt_free(k->value);
        mt_free(k->lo);
        mt_free(k->hi);
        for (size_t j = 0; j < k->n_list; j++)
            mt_free(k->list[j]);
        mt_free(k->list);
        for (size_t j = 0; j < k->n_items; j++)
            mt_free(k->items[j].value);
        mt_free(k->items);
    }
    mt_free(q->keys);
    mt_free(q);
}

static mt_qkey_t *add_key(mt_query_t *q, uint32_t tag)
{
    for (size_t i = 0; i < q->n_keys; i++)
        if (q->keys[i].tag == tag)
            return &q->keys[i];
    q->keys = mt_realloc(q->keys, (q->n_keys + 1) * sizeof *q->keys);
    mt_qkey_t *k = &q->keys[q->n_keys++];
    memset(k, 0, sizeof *k);
    k->tag = tag;
    k->returned = true;
    return k;
}

static bool is_text_vr(uint16_t vr)
{
    switch (vr) {
    case MT_VR('A', 'E'): case MT_VR('A', 'S'): case MT_VR('C', 'S'): case MT_VR('D', 'A'):
    case MT_VR('D', 'S'): case MT_VR('D', 'T'): case MT_VR('I', 'S'): case MT_VR('L', 'O'):
    case MT_VR('L', 'T'): case MT_VR('P', 'N'): case MT_VR('S', 'H'): case MT_VR('S', 'T'):
    case MT_VR('T', 'M'): case MT_VR('U', 'C'): case MT_VR('U', 'I'): case MT_VR('U', 'R'):
    case MT_VR('U', 'T'):
        return true;
    default:
        return false;
    }
}

static bool is_charset_vr(uint16_t vr)
{
    switch (vr) {
    case MT_VR('L', 'O'): case MT_VR('L', 'T'): case MT_VR('P', 'N'): case MT_VR('S', 'H'):
    case MT_VR('S', 'T'): case MT_VR('U', 'C'): case MT_VR('U', 'T'):
        return true;
    default:
        return false;
    }
}

/* Text of a binary numeric value (first value only), "" for other VRs. */
static void binary_text(uint16_t vr, const uint8_t *v, size_t n, char *out, size_t outsz)
{
    out[0] = 0;
    if (!v)
        return;
    if ((vr == MT_VR('U', 'S') || vr == MT_VR('S', 'S')) && n >= 2) {
        unsigned x = (unsigned)v[0] | ((unsigned)v[1] << 8);
        snprintf(out, outsz, "%d", vr == MT_VR('S', 'S') ? (int)(int16_t)x : (int)x);
    } else if ((vr == MT_VR('U', 'L') || vr == MT_VR('S', 'L')) && n >= 4) {
        uint32_t x = (uint32_t)v[0] | ((uint32_t)v[1] << 8) | ((uint32_t)v[2] << 16) |
                     ((uint32_t)v[3] << 24);
        if (vr == MT_VR('S', 'L'))
            snprintf(out, outsz, "%ld", (long)(int32_t)x);
        else
            snprintf(out, outsz, "%lu", (unsigned long)x);
    }
}

static bool has_wildcard(const char *s)
{
    return strchr(s, '*') || strchr(s, '?');
}

static char **split_list(const char *s, size_t *n)
{
    size_t cnt = 1;
    for (const char *p = s; *p; p++)
        cnt += *p == '\\';
    char **list = mt_calloc(cnt, sizeof *list);
    size_t i = 0;
    const char *b = s;
    for (;;) {
        const char *e = strchr(b, '\\');
        size_t len = e ? (size_t)(e - b) : strlen(b);
        while (len && b[len - 1] == ' ')
            len--;
        while (len && *b == ' ')
            b++, len--;
        if (len)
            list[i++] = mt_strndup(b, len);
        if (!e)
            break;
        b = e + 1;
    }
    *n = i;
    return list;
}

/* Classify a value (UTF-8, trimmed) for a key of VR vr. */
static void classify(mt_qkey_t *k, const char *v)
{
    uint16_t vr = k->vr;
    bool dtm = vr == MT_VR('D', 'A') || vr == MT_VR('T', 'M') || vr == MT_VR('D', 'T');
    if (!*v || strcmp(v, "*") == 0) {
        k->match = MT_QM_UNIVERSAL;
        return;
    }
    if (vr == MT_VR('U', 'I') || (k->computed == MT_QC_MODALITIES && strchr(v, '\\'))) {
        if (strchr(v, '\\')) {
            k->match = MT_QM_LIST;
            k->list = split_list(v, &k->n_list);
            if (k->n_list == 0)
                k->match = MT_QM_UNIVERSAL;
            return;
        }
        k->match = MT_QM_SINGLE;
        k->value = mt_strdup(v);
        return;
    }
    const char *dash = dtm ? strchr(v, '-') : NULL;
    if (dash) {
        k->match = MT_QM_RANGE;
        if (dash > v)
            k->lo = mt_strndup(v, (size_t)(dash - v));
        if (dash[1])
            k->hi = mt_strdup(dash + 1);
        if (!k->lo && !k->hi)
            k->match = MT_QM_UNIVERSAL;
        return;
    }
    k->value = mt_strdup(v);
    k->match = (!dtm && has_wildcard(v)) ? MT_QM_WILDCARD : MT_QM_SINGLE;
}

/* Find the column for tag at the deepest level <= level (or any level when relational). */
static const mt_index_key_t *find_col(uint32_t tag, mt_index_level_t level, bool any)
{
    for (int l = (int)level; l >= 0; l--) {
        const mt_index_key_t *c = mt_index_key_find(tag, (mt_index_level_t)l);
        if (c)
            return c;
    }
    return any ? mt_index_key_find(tag, MT_LEVEL_COUNT) : NULL;
}

/* Decide whether k can be matched, from its column / computed kind. */
static void decide(mt_query_t *q, mt_qkey_t *k)
{
    k->matching = false;
    if (k->computed == MT_QC_CMR_CREATOR) {
        k->match = MT_QM_UNIVERSAL; /* the creator's value is ours: nothing to match */
        return;
    }
    if ((k->computed == MT_QC_CMR_TAG || k->computed == MT_QC_CMR_VIEW) && k->below_level) {
        /* a series tag at STUDY / PATIENT level: the entities having at least one such
         * series (C-FIND, QIDO-RS /studies); C-MOVE / C-GET select the instances of those
         * series only (issue 5: "only the series with these tags of a study") */
        if (k->match == MT_QM_SINGLE || k->match == MT_QM_WILDCARD)
            k->matching = true;
        else if (k->match != MT_QM_UNIVERSAL)
            k->unsupported = true;
        if (k->unsupported)
            q->any_unsupported = true;
        return;
    }
    if (k->below_level) {
        /* a value on a key of a level below (Modality=CT at STUDY level) is not matched:
         * the pending responses say so (FF01) */
        if (k->match != MT_QM_UNIVERSAL && k->match != MT_QM_SEQUENCE)
            k->unsupported = q->any_unsupported = true;
        return;
    }
    if (k->match == MT_QM_UNIVERSAL)
        return;
    if (k->match == MT_QM_SEQUENCE)
        return; /* unsupported flag set by the caller when items carried values */
    bool ok = false;
    if (k->computed == MT_QC_MODALITIES) {
        ok = k->match == MT_QM_SINGLE || k->match == MT_QM_LIST || k->match == MT_QM_WILDCARD;
    } else if (k->computed == MT_QC_CMR_TAG || k->computed == MT_QC_CMR_VIEW) {
        ok = k->match == MT_QM_SINGLE || k->match == MT_QM_WILDCARD;
    } else if (k->col) {
        switch (k->col->kind) {
        case MT_KIND_STR:
        case MT_KIND_PN:
        case MT_KIND_MULTI:
            ok = k->match == MT_QM_SINGLE || k->match == MT_QM_WILDCARD;
            break;
        case MT_KIND_UID:
            ok = k->match == MT_QM_SINGLE || k->match == MT_QM_LIST;
            break;
        case MT_KIND_DATE:
        case MT_KIND_TIME:
        case MT_KIND_DT:
            ok = k->match == MT_QM_SINGLE || k->match == MT_QM_RANGE;
            break;
        case MT_KIND_INT:
        case MT_KIND_FLOAT:
            ok = k->match == MT_QM_SINGLE;
            break;
        }
    }
    if (ok)
        k->matching = true;
    else
        k->unsupported = true;
    if (k->unsupported)
        q->any_unsupported = true;
}

/* Attach column / computed kind and level to a key. */
static void resolve(mt_query_t *q, mt_qkey_t *k, bool relational)
{
    for (size_t i = 0; i < sizeof computed / sizeof computed[0]; i++)
        if (computed[i].tag == k->tag) {
            k->computed = computed[i].c;
            k->level = computed[i].level < 0 ? q->level : (mt_index_level_t)computed[i].level;
            if (!k->vr || k->vr == MT_VR('U', 'N'))
                k->vr = computed[i].vr;
            if (k->level > q->level)
                k->below_level = true;
            return;
        }
    int sl = mt_index_seq_level(k->tag);
    if (sl >= 0) { /* a stored sequence key (issue 3): its level's seq_keys blob */
        k->level = (mt_index_level_t)sl;
        if (k->level > q->level)
            k->below_level = true;
        k->vr = MT_VR('S', 'Q');
        return;
    }
    k->col = find_col(k->tag, q->level, relational);
    if (k->col) {
        k->level = k->col->level;
    } else {
        k->level = q->level;
        /* a non-indexed key of a level below? we cannot tell: returned empty */
        const mt_index_key_t *any = mt_index_key_find(k->tag, MT_LEVEL_COUNT);
        if (any && any->level > q->level) {
            k->level = any->level;
            k->below_level = true;
        }
    }
    if (!k->vr || k->vr == MT_VR('U', 'N')) {
        const mt_dict_entry_t *d = mt_dict_by_tag(k->tag);
        k->vr = d ? d->vr : MT_VR('U', 'N');
    }
}

/* Sequence matching on a stored sequence key of the query level or above: one item whose
 * valued attributes are strings (single value or wildcard; no ranges, lists, nested items
 * with values). Fills k->items and sets seq_match; false when the item cannot be matched. */
static bool seq_keys_from_item(mt_qkey_t *k, const mt_ds_elem_t *e, mt_index_level_t level)
{
    if (mt_index_seq_level(k->tag) < 0 || k->below_level || k->level > level ||
        e->n_items != 1)
        return false;
    const mt_ds_t *item = e->items[0];
    size_t n = mt_ds_count(item);
    k->items = mt_calloc(n ? n : 1, sizeof *k->items);
    for (size_t j = 0; j < n; j++) {
        const mt_ds_elem_t *a = mt_ds_at(item, j);
        if (a->vr == MT_VR('S', 'Q') || a->n_items) {
            for (size_t i = 0; i < a->n_items; i++)
                if (mt_ds_count(a->items[i]))
                    return false; /* nested matching: not supported */
            continue;
        }
        if (!a->len)
            continue; /* universal: returned */
        if (!is_text_vr(a->vr) || a->len > QUERY_MAX_VALUE)
            return false;
        size_t len = a->len;
        const char *v = (const char *)a->value;
        while (len && (v[len - 1] == ' ' || v[len - 1] == '\0'))
            len--;
        size_t lead = 0;
        if (a->vr != MT_VR('L', 'T') && a->vr != MT_VR('S', 'T') && a->vr != MT_VR('U', 'T'))
            while (lead < len && v[lead] == ' ')
                lead++;
        bool range = a->vr == MT_VR('D', 'A') || a->vr == MT_VR('T', 'M') ||
                     a->vr == MT_VR('D', 'T');
        if (memchr(v + lead, '\\', len - lead) || (range && memchr(v + lead, '-', len - lead)))
            return false; /* lists and ranges inside items: not supported */
        if (len == lead || (len - lead == 1 && v[lead] == '*'))
            continue;
        mt_qitem_t *qi = &k->items[k->n_items++];
        qi->tag = a->tag;
        qi->vr = a->vr;
        qi->value = mt_strndup(v + lead, len - lead);
    }
    if (!k->n_items)
        return true; /* only universal attributes: a plain return key */
    k->seq_match = true;
    return true;
}

static bool item_matches(const mt_qkey_t *k, const mt_ds_t *item)
{
    for (size_t i = 0; i < k->n_items; i++) {
        const mt_qitem_t *qi = &k->items[i];
        char stored[QUERY_MAX_VALUE + 1];
        if (!mt_ds_get_string(item, qi->tag, stored, sizeof stored))
            return false;
        const char *sv = stored;
        while (*sv == ' ')
            sv++;
        unsigned flags = MT_QF_MULTI;
        if (qi->vr == MT_VR('P', 'N'))
            flags |= MT_QF_PN;
        bool literal = qi->vr == MT_VR('U', 'I') || qi->vr == MT_VR('D', 'A') ||
                       qi->vr == MT_VR('T', 'M') || qi->vr == MT_VR('D', 'T');
        if (literal ? strcmp(qi->value, sv) != 0 : !mt_query_match(flags, qi->value, sv))
            return false;
    }
    return true;
}

bool mt_query_seq_filter(const mt_qkey_t *k, mt_ds_elem_t *sq)
{
    if (!k->seq_match)
        return true;
    if (!sq)
        return false;
    size_t kept = 0;
    for (size_t i = 0; i < sq->n_items; i++) {
        if (item_matches(k, sq->items[i]))
            sq->items[kept++] = sq->items[i];
        else
            mt_ds_free(sq->items[i]);
    }
    sq->n_items = kept;
    return kept > 0;
}

static void set_err(mt_query_err_t *err, uint16_t status, uint32_t tag, const char *fmt,
                    const char *arg)
{
    if (!err)
        return;
    err->status = status;
    err->tag = tag;
    snprintf(err->comment, sizeof err->comment, fmt, arg);
}

static bool model_has_level(mt_qr_model_t m, mt_index_level_t l)
{
    switch (m) {
    case MT_QR_PATIENT_ROOT:
    case MT_QR_RELATIONAL:
        return true;
    case MT_QR_STUDY_ROOT:
        return l != MT_LEVEL_PATIENT;
    case MT_QR_PATIENT_STUDY_ONLY:
        return l == MT_LEVEL_PATIENT || l == MT_LEVEL_STUDY;
    }
    return false;
}

/* A private creator (gggg,00xx) other than ours: returned as sent, not matched. */
static void add_private_creator(mt_query_t *q, const mt_ds_elem_t *e)
{
    size_t n = e->value && e->len < 64 ? e->len : 0;
    while (n && (e->value[n - 1] == ' ' || e->value[n - 1] == 0))
        n--;
    mt_qkey_t *k = add_key(q, e->tag);
    k->vr = MT_VR('L', 'O');
    k->level = q->level;
    k->computed = MT_QC_PRIVATE_CREATOR;
    k->match = MT_QM_UNIVERSAL;
    mt_free(k->value);
    k->value = mt_strndup(n ? (const char *)e->value : "", n);
}

static void ensure_unique_key(mt_query_t *q)
{
    mt_qkey_t *k = add_key(q, unique_key[q->level]);
    if (!k->col && !k->computed) {
        k->vr = q->level == MT_LEVEL_PATIENT ? MT_VR('L', 'O') : MT_VR('U', 'I');
        resolve(q, k, q->model == MT_QR_RELATIONAL);
    }
}

int mt_query_from_ds(const mt_ds_t *id, mt_qr_model_t model, mt_query_t **out,
                     mt_query_err_t *err)
{
    *out = NULL;
    if (err)
        memset(err, 0, sizeof *err);
    char lv[32];
    if (!mt_ds_get_string(id, TAG_QR_LEVEL, lv, sizeof lv)) {
        set_err(err, MT_STATUS_CANNOT_UNDERSTAND_FIND, TAG_QR_LEVEL, "%s",
                "QueryRetrieveLevel (0008,0052) missing");
        return MT_EINVAL;
    }
    char *lvp = lv;
    while (*lvp == ' ')
        lvp++;
    int level = mt_query_level_parse(lvp);
    if (level < 0 || !model_has_level(model, (mt_index_level_t)level)) {
        set_err(err, MT_STATUS_IDENTIFIER_MISMATCH, TAG_QR_LEVEL,
                "QueryRetrieveLevel %.16s not in this model", lvp);
        return MT_EINVAL;
    }
    mt_query_t *q = mt_calloc(1, sizeof *q);
    q->model = model;
    q->level = (mt_index_level_t)level;
    mt_ds_elem_t *cs = mt_ds_get(id, TAG_CHARSET);
    if (cs) {
        q->has_charset_key = true;
        size_t n = cs->len < sizeof q->charset - 1 ? cs->len : sizeof q->charset - 1;
        if (cs->value)
            memcpy(q->charset, cs->value, n);
        q->charset[n] = 0;
        while (n && (q->charset[n - 1] == ' ' || q->charset[n - 1] == 0))
            q->charset[--n] = 0;
    }
    mt_charset_t qcs; /* the identifier's: an unknown term reads it as the default repertoire */
    mt_charset_parse(q->charset, strlen(q->charset), &qcs);

    size_t n_el = mt_ds_count(id);
    if (n_el > QUERY_MAX_KEYS) {
        set_err(err, MT_STATUS_CANNOT_UNDERSTAND_FIND, 0, "%s", "too many keys");
        mt_query_free(q);
        return MT_EINVAL;
    }
    for (size_t i = 0; i < n_el; i++) {
        const mt_ds_elem_t *e = mt_ds_at(id, i);
        uint16_t g = MT_TAG_GROUP(e->tag);
        if (g == 0x0000 || g == 0x0002 || e->tag == TAG_QR_LEVEL || e->tag == TAG_CHARSET)
            continue;
        if ((MT_TAG_ELEM(e->tag) & 0xFF00) == 0 && (g & 1) &&
            e->tag != MT_TAG(MT_CMR_GROUP, 0x0010)) {
            add_private_creator(q, e); /* not a key: echoed (ours is one of our keys) */
            continue;
        }
        mt_qkey_t *k = add_key(q, e->tag);
        k->vr = e->vr;
        resolve(q, k, false);
        if (e->vr == MT_VR('S', 'Q') || e->items) {
            k->vr = MT_VR('S', 'Q');
            k->match = MT_QM_SEQUENCE;
            bool valued = false;
            for (size_t it = 0; it < e->n_items; it++) {
                const mt_ds_t *item = e->items[it];
                for (size_t j = 0; j < mt_ds_count(item); j++)
                    if (mt_ds_at(item, j)->len || mt_ds_at(item, j)->n_items)
                        valued = true;
            }
            if (valued && !seq_keys_from_item(k, e, q->level))
                k->unsupported = true;
            if (k->unsupported)
                q->any_unsupported = true;
            continue;
        }
        char nb[48];
        const char *src = (const char *)e->value;
        size_t n = e->value ? e->len : 0;
        if (!is_text_vr(k->vr)) {
            binary_text(k->vr, e->value, n, nb, sizeof nb);
            src = nb;
            n = strlen(nb);
        }
        /* a list of UIDs is kept whole (an IMAGE-level retrieve of hundreds of instances);
         * other values are read up to QUERY_MAX_VALUE */
        if (n > QUERY_MAX_VALUE && k->vr != MT_VR('U', 'I'))
            n = QUERY_MAX_VALUE;
        char *text = mt_malloc(n + 1);
        memcpy(text, src ? src : "", n);
        text[n] = 0;
        for (size_t j = 0; j < n; j++)
            if (text[j] == 0) {
                n = j;
                break;
            }
        while (n && (text[n - 1] == ' ' || text[n - 1] == 0))
            text[--n] = 0;
        size_t b = 0;
        if (k->vr != MT_VR('L', 'T') && k->vr != MT_VR('S', 'T') && k->vr != MT_VR('U', 'T'))
            while (text[b] == ' ')
                b++;
        char *conv = NULL;
        const char *v = text + b;
        if (is_charset_vr(k->vr) && mt_charset_declared(&qcs) && !mt_charset_plain(&qcs, v, strlen(v)))
            v = conv = mt_charset_to_utf8(&qcs, v, strlen(v), k->vr == MT_VR('P', 'N'));
        classify(k, v);
        mt_free(conv);
        mt_free(text);
        decide(q, k);
    }
    /* hierarchical: unique keys of every level above, within the model */
    if (model != MT_QR_RELATIONAL) {
        for (int l = (int)q->level - 1; l >= 0; l--) {
            if (!model_has_level(model, (mt_index_level_t)l))
                continue;
            const mt_qkey_t *uk = NULL;
            for (size_t i = 0; i < q->n_keys; i++)
                if (q->keys[i].tag == unique_key[l])
                    uk = &q->keys[i];
            if (!uk || (uk->match != MT_QM_SINGLE && uk->match != MT_QM_LIST)) {
                const mt_dict_entry_t *d = mt_dict_by_tag(unique_key[l]);
                set_err(err, MT_STATUS_IDENTIFIER_MISMATCH, unique_key[l],
                        "unique key %.24s required above this level", d ? d->keyword : "?");
                mt_query_free(q);
                return MT_EINVAL;
            }
        }
    }
    ensure_unique_key(q);
    *out = q;
    return 0;
}

int mt_query_check_retrieve(const mt_query_t *q, mt_query_err_t *err)
{
    if (err)
        memset(err, 0, sizeof *err);
    if (q->model == MT_QR_RELATIONAL)
        return 0;
    uint32_t tag = unique_key[q->level];
    for (size_t i = 0; i < q->n_keys; i++)
        if (q->keys[i].tag == tag &&
            (q->keys[i].match == MT_QM_SINGLE || q->keys[i].match == MT_QM_LIST))
            return 0;
    const mt_dict_entry_t *d = mt_dict_by_tag(tag);
    set_err(err, MT_STATUS_IDENTIFIER_MISMATCH, tag, "retrieve needs a value of %.24s",
            d ? d->keyword : "the level's unique key");
    return MT_EINVAL;
}

int mt_query_from_text(const char *text, mt_index_level_t level, mt_query_t **out, char *err,
                       size_t errsz)
{
    *out = NULL;
    mt_query_t *q = mt_calloc(1, sizeof *q);
    q->model = MT_QR_RELATIONAL;
    q->level = level;
    snprintf(q->charset, sizeof q->charset, "ISO_IR 192");
    /* first pass: tokens */
    typedef struct term {
        char kw[65];
        char op; /* '=', '>', '<' */
        char val[QUERY_MAX_TERM]; /* as long as a term: never cut short */
        const mt_dict_entry_t *d;
    } term_t;
    term_t *terms = NULL;
    size_t n_terms = 0;
    const char *p = text;
    int rc = 0;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        if (!*p)
            break;
        const char *e = p;
        while (*e && *e != ' ' && *e != '\t' && *e != '\n')
            e++;
        size_t n = (size_t)(e - p);
        char tok[QUERY_MAX_TERM];
        if (n >= sizeof tok) {
            snprintf(err, errsz, "term too long: %.40s...", p);
            rc = MT_EINVAL;
            goto done;
        }
        memcpy(tok, p, n);
        tok[n] = 0;
        p = e;
        char *op = strpbrk(tok, "=<>");
        if (!op || op == tok) {
            snprintf(err, errsz, "'%s': expected KEYWORD=VALUE, KEYWORD>=VALUE or KEYWORD<=VALUE",
                     tok);
            rc = MT_EINVAL;
            goto done;
        }
        term_t t;
        memset(&t, 0, sizeof t);
        size_t kn = (size_t)(op - tok);
        if (kn >= sizeof t.kw) {
            snprintf(err, errsz, "'%s': keyword too long", tok);
            rc = MT_EINVAL;
            goto done;
        }
        memcpy(t.kw, tok, kn);
        const char *val;
        if (op[0] == '=') {
            t.op = '=';
            val = op + 1;
        } else if ((op[0] == '>' || op[0] == '<') && op[1] == '=') {
            t.op = op[0];
            val = op + 2;
        } else {
            snprintf(err, errsz, "'%s': operators are =, >= and <=", tok);
            rc = MT_EINVAL;
            goto done;
        }
        snprintf(t.val, sizeof t.val, "%s", val);
        t.d = mt_dict_by_keyword(t.kw);
        if (!t.d) {
            snprintf(err, errsz, "'%s': not a DICOM keyword", t.kw);
            rc = MT_EINVAL;
            goto done;
        }
        const mt_index_key_t *c = mt_index_key_find(t.d->tag, MT_LEVEL_COUNT);
        bool comp = false;
        for (size_t i = 0; i < sizeof computed / sizeof computed[0]; i++)
            comp |= computed[i].tag == t.d->tag && computed[i].c == MT_QC_MODALITIES;
        if (!c && !comp) {
            snprintf(err, errsz, "'%s': not an indexed attribute", t.kw);
            rc = MT_EINVAL;
            goto done;
        }
        if (c && c->level > q->level)
            q->level = c->level;
        if (t.op != '=' && t.d->vr != MT_VR('D', 'A') && t.d->vr != MT_VR('T', 'M') &&
            t.d->vr != MT_VR('D', 'T')) {
            snprintf(err, errsz, "'%s': >= and <= apply to dates and times only", t.kw);
            rc = MT_EINVAL;
            goto done;
        }
        terms = mt_realloc(terms, (n_terms + 1) * sizeof *terms);
        terms[n_terms++] = t;
    }
    for (size_t i = 0; i < n_terms; i++) {
        term_t *t = &terms[i];
        bool existed = false;
        for (size_t j = 0; j < q->n_keys; j++)
            existed |= q->keys[j].tag == t->d->tag;
        mt_qkey_t *k = add_key(q, t->d->tag);
        if (!existed) {
            k->vr = t->d->vr;
            resolve(q, k, true);
        }
        if (t->op == '=') {
            if (existed) {
                snprintf(err, errsz, "%s given twice", t->kw);
                rc = MT_EINVAL;
                goto done;
            }
            classify(k, t->val);
        } else {
            if (existed && k->match != MT_QM_RANGE) {
                snprintf(err, errsz, "%s given twice", t->kw);
                rc = MT_EINVAL;
                goto done;
            }
            k->match = MT_QM_RANGE;
            char **slot = t->op == '>' ? &k->lo : &k->hi;
            mt_free(*slot);
            *slot = mt_strdup(t->val);
        }
    }
    for (size_t i = 0; i < q->n_keys; i++) {
        decide(q, &q->keys[i]);
        if (q->keys[i].unsupported) {
            const mt_dict_entry_t *d = mt_dict_by_tag(q->keys[i].tag);
            snprintf(err, errsz, "%s: this kind of matching is not supported for it",
                     d ? d->keyword : "?");
            rc = MT_EINVAL;
            goto done;
        }
    }
    ensure_unique_key(q);
done:
    mt_free(terms);
    if (rc) {
        mt_query_free(q);
        return rc;
    }
    *out = q;
    return 0;
}
