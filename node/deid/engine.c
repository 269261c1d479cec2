/*
 * engine.c - the PS3.15 Annex E de-identification engine (design: engine.h). PURE.
 *
 * Layout: value helpers (dates, UIDs, dummies, text scrubbing) first, then the identifier
 * collection pass, then the walk (one function per data set, recursing into items), then
 * mt_deid_apply which adds the PS3.15 E.1.1 attributes.
 *
 * The walk goes over a data set from the last element to the first, so removing element i
 * never moves an element not yet visited, and a private block's creator (gggg,00xx) is still
 * there when its elements (gggg,xxyy) are judged. Creators are settled in a second loop.
 */
#include "engine.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../dicom/dict.h"
#include "../util/alloc.h"
#include "../util/err.h"

#define VALMAX 4096 /* longest string value the engine rewrites; longer text is removed */

#define TAG_PATIENT_NAME MT_TAG(0x0010, 0x0010)
#define TAG_PATIENT_ID MT_TAG(0x0010, 0x0020)
#define TAG_BURNED_IN MT_TAG(0x0028, 0x0301)
#define TAG_STUDY_UID MT_TAG(0x0020, 0x000D)

/* ---- VR classes ---- */
static bool vr_is(uint16_t vr, const char *list)
{
    for (; list[0] && list[1]; list += 2)
        if (vr == MT_VR(list[0], list[1]))
            return true;
    return false;
}
static bool vr_text(uint16_t vr)
{
    return vr_is(vr, "AELOSHPNSTLTUTUCCSURAS");
}
static bool vr_free_text(uint16_t vr)
{
    return vr_is(vr, "AELOSHPNSTLTUTUC");
}
#define VR_SQ MT_VR('S', 'Q')
#define VR_UI MT_VR('U', 'I')
#define VR_DA MT_VR('D', 'A')
#define VR_DT MT_VR('D', 'T')
#define VR_TM MT_VR('T', 'M')
#define VR_UN MT_VR('U', 'N')

/* ---- dates (proleptic Gregorian, H. Hinnant's days_from_civil) ---- */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static unsigned num(const char *s, size_t n)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (unsigned)(s[i] - '0');
    return v;
}

static unsigned month_days(int64_t y, unsigned m)
{
    static const unsigned md[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : md[m - 1];
}

/* Shift one date of n digits (8 = YYYYMMDD, 6 = YYYYMM, 4 = YYYY); writes n digits to out. */
static bool shift_one(const char *s, size_t n, int32_t days, char *out)
{
    if ((n != 8 && n != 6 && n != 4) || !all_digits(s, n))
        return false;
    int64_t y = num(s, 4);
    unsigned m = n >= 6 ? num(s + 4, 2) : 1, d = n == 8 ? num(s + 6, 2) : 1;
    if (m < 1 || m > 12 || d < 1 || d > month_days(y, m))
        return false;
    civil_from_days(days_from_civil(y, m, d) + days, &y, &m, &d);
    if (y < 0 || y > 9999)
        return false;
    char tmp[9];
    tmp[0] = (char)('0' + y / 1000), tmp[1] = (char)('0' + y / 100 % 10);
    tmp[2] = (char)('0' + y / 10 % 10), tmp[3] = (char)('0' + y % 10);
    tmp[4] = (char)('0' + m / 10), tmp[5] = (char)('0' + m % 10);
    tmp[6] = (char)('0' + d / 10), tmp[7] = (char)('0' + d % 10);
    memcpy(out, tmp, n);
    return true;
}

static size_t trim_len(const char *s, size_t n)
{
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\0'))
        n--;
    return n;
}

int mt_deid_shift_dates(const char *val, size_t len, int is_dt, int32_t days, char *out,
                        size_t outsz)
{
    size_t o = 0;
    len = trim_len(val, len);
    size_t i = 0;
    bool first = true;
    while (i <= len) {
        size_t j = i;
        while (j < len && val[j] != '\\')
            j++;
        const char *v = val + i;
        size_t n = j - i;
        while (n && *v == ' ')
            v++, n--;
        n = trim_len(v, n);
        /* DA: the date (a range "A-B" shifts both ends); DT: the date part, the rest kept. */
        char buf[64];
        size_t bn = 0;
        bool ok = n > 0 && n < sizeof(buf);
        if (ok && !is_dt) {
            size_t dash = n;
            for (size_t k = 0; k < n; k++)
                if (v[k] == '-')
                    dash = k;
            size_t a = dash < n ? dash : n;
            if (a && !shift_one(v, a, days, buf))
                ok = false;
            bn = a;
            if (ok && dash < n) {
                buf[bn++] = '-';
                if (n - dash - 1 && !shift_one(v + dash + 1, n - dash - 1, days, buf + bn))
                    ok = false;
                bn += n - dash - 1;
            }
        } else if (ok) {
            size_t dn = 0;
            while (dn < n && dn < 8 && v[dn] >= '0' && v[dn] <= '9')
                dn++;
            ok = shift_one(v, dn, days, buf);
            memcpy(buf + dn, v + dn, n - dn);
            bn = n;
        }
        if (ok) {
            if (o + bn + 2 > outsz)
                return MT_ETOOBIG;
            if (!first)
                out[o++] = '\\';
            memcpy(out + o, buf, bn);
            o += bn;
            first = false;
        }
        i = j + 1;
    }
    if (o + 1 > outsz)
        return MT_ETOOBIG;
    out[o] = '\0';
    return (int)o;
}

/* ---- UIDs ---- */
int mt_deid_uid_is_well_known(const char *uid, size_t len)
{
    static const char root[] = "1.2.840.10008.";
    return len >= sizeof(root) - 1 && memcmp(uid, root, sizeof(root) - 1) == 0;
}

/* Whether tag is in tags[0, n), sorted ascending (binary search: the walk asks for every
 * element). */
static bool tag_in(const uint32_t *tags, size_t n, uint32_t tag)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tags[mid] == tag)
            return true;
        if (tags[mid] < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* Attributes whose UI values name classes, syntaxes or schemes, never instances. Sorted
 * ascending (tag_in). */
static const uint32_t class_uid_tags[] = {
    MT_TAG(0x0002, 0x0002), MT_TAG(0x0002, 0x0010), MT_TAG(0x0002, 0x0012), MT_TAG(0x0004, 0x1510),
    MT_TAG(0x0004, 0x1512), MT_TAG(0x0008, 0x0016), MT_TAG(0x0008, 0x001A), MT_TAG(0x0008, 0x001B),
    MT_TAG(0x0008, 0x0062), MT_TAG(0x0008, 0x010C), MT_TAG(0x0008, 0x010D), MT_TAG(0x0008, 0x0117),
    MT_TAG(0x0008, 0x1150), MT_TAG(0x0008, 0x1162), MT_TAG(0x0008, 0x9123), MT_TAG(0x0040, 0xDB0C),
    MT_TAG(0x0040, 0xDB0D), MT_TAG(0x0400, 0x0010), MT_TAG(0x0400, 0x0510),
};

static bool is_class_uid_tag(uint32_t tag)
{
    return tag_in(class_uid_tags, sizeof(class_uid_tags) / sizeof(class_uid_tags[0]), tag);
}

int mt_deid_map_uids(const uint8_t *key, size_t key_len, const char *val, size_t len, char *out,
                     size_t outsz)
{
    size_t o = 0;
    len = trim_len(val, len);
    size_t i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && val[j] != '\\')
            j++;
        const char *v = val + i;
        size_t n = trim_len(v, j - i);
        while (n && *v == ' ')
            v++, n--;
        char m[MT_DEID_UID_MAX];
        const char *w = v;
        size_t wn = n;
        if (n && !mt_deid_uid_is_well_known(v, n)) {
            int rc = mt_deid_uid(key, key_len, v, n, m, sizeof(m));
            if (rc)
                return rc;
            w = m;
            wn = strlen(m);
        }
        if (o + wn + 2 > outsz)
            return MT_ETOOBIG;
        if (i)
            out[o++] = '\\';
        memcpy(out + o, w, wn);
        o += wn;
        i = j + 1;
    }
    out[o] = '\0';
    return (int)o;
}

/* ---- the walk's state ---- */
typedef struct ident {
    char *s; /* case-folded (fold()) */
    size_t n;
    bool word;   /* a name/ID token: matched on word boundaries; else anywhere */
    bool person; /* from a person's name or an ID, not from a place (institution, station) */
} ident_t;

typedef struct walk {
    const mt_deid_profile_t *p;
    const uint8_t *key;
    size_t key_len;
    int32_t shift;
    ident_t *ids;
    size_t n_ids, cap_ids;
    mt_deid_result_t *res;
} walk_t;

static mt_deid_action_t resolve(const walk_t *w, uint32_t tag, uint16_t vr, bool *from_default)
{
    mt_deid_action_t a = mt_deid_profile_lookup(w->p, tag);
    *from_default = a == MT_DEID_DEFAULT;
    if (a == MT_DEID_DEFAULT) /* not in the table: the keep list, else the default */
        a = mt_deid_profile_keep(w->p, tag);
    if (a == MT_DEID_DEFAULT)
        a = (mt_deid_action_t)(mt_dict_by_tag(tag) ? w->p->default_action : w->p->unknown_action);
    bool valid = w->p->composite == MT_DEID_COMPOSITE_VALID;
    switch (a) {
    case MT_DEID_ZD:
        return valid ? MT_DEID_D : MT_DEID_Z;
    case MT_DEID_XZ:
        /* A sequence with no items is invalid where it is Type 3 (VM 1-n) and only Type 2
         * needs it present: remove it. Other VRs: Z keeps a Type 2 attribute present. */
        return valid && vr != VR_SQ ? MT_DEID_Z : MT_DEID_X;
    case MT_DEID_XD:
    case MT_DEID_XZD:
        return valid ? MT_DEID_D : MT_DEID_X;
    case MT_DEID_XZU:
        return !valid ? MT_DEID_X : vr == VR_SQ || vr == VR_UI ? MT_DEID_U : MT_DEID_Z;
    default:
        return a;
    }
}

/* ---- identifier collection (for C on text) ---- */
/* Sorted ascending (tag_in). */
static const uint32_t ident_tags[] = {
    MT_TAG(0x0008, 0x0050), MT_TAG(0x0008, 0x0080), MT_TAG(0x0008, 0x0081), MT_TAG(0x0008, 0x0092),
    MT_TAG(0x0008, 0x0094), MT_TAG(0x0008, 0x1010), MT_TAG(0x0008, 0x1040), MT_TAG(0x0010, 0x0020),
    MT_TAG(0x0010, 0x0021), MT_TAG(0x0010, 0x1000), MT_TAG(0x0010, 0x1040), MT_TAG(0x0010, 0x1080),
    MT_TAG(0x0010, 0x1081), MT_TAG(0x0010, 0x1090), MT_TAG(0x0010, 0x2152), MT_TAG(0x0010, 0x2154),
    MT_TAG(0x0010, 0x2180), MT_TAG(0x0018, 0x1000), MT_TAG(0x0020, 0x0010), MT_TAG(0x0032, 0x1033),
    MT_TAG(0x0040, 0x0010), MT_TAG(0x0040, 0x0242), MT_TAG(0x0040, 0x0243), MT_TAG(0x0040, 0x1102),
    MT_TAG(0x0040, 0x1103), MT_TAG(0x0040, 0x2008), MT_TAG(0x0040, 0x2009), MT_TAG(0x0040, 0x2010),
};

static bool is_ident_tag(uint32_t tag)
{
    return tag_in(ident_tags, sizeof(ident_tags) / sizeof(ident_tags[0]), tag);
}

/* Identifiers that name a place, not a person: their words may be a kept vendor's
 * (InstitutionName "SIEMENS HOSPITAL", Manufacturer "SIEMENS"). */
static bool is_place_tag(uint32_t tag)
{
    return tag == MT_TAG(0x0008, 0x0080) || tag == MT_TAG(0x0008, 0x0081) ||
           tag == MT_TAG(0x0008, 0x1010) || tag == MT_TAG(0x0008, 0x1040) ||
           tag == MT_TAG(0x0018, 0x1000);
}

static char up(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
}

/* Upper-cased Latin-1 Supplement, Latin Extended-A, Greek and Cyrillic letter of a 2-byte
 * UTF-8 sequence, written back over the two bytes (the length never changes: the caller's
 * byte mask stays aligned). Pairs whose case the rule cannot tell fold to one form. */
static void fold_utf8_pair(uint8_t *b)
{
    unsigned cp = ((b[0] & 0x1Fu) << 6) | (b[1] & 0x3Fu);
    if ((cp >= 0xE0 && cp <= 0xFE && cp != 0xF7))
        cp -= 0x20;
    else if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E))
        cp = (cp + 1) & ~1u; /* Latin Extended-A pairs starting on an odd code point */
    else if (cp >= 0x100 && cp <= 0x17F && cp != 0x13F && cp != 0x140)
        cp &= ~1u;
    else if (cp >= 0x3B1 && cp <= 0x3CB && cp != 0x3C2)
        cp -= 0x20; /* Greek */
    else if (cp == 0x3C2)
        cp = 0x3A3; /* final sigma */
    else if (cp >= 0x430 && cp <= 0x44F)
        cp -= 0x20; /* Cyrillic */
    else if (cp >= 0x450 && cp <= 0x45F)
        cp -= 0x50;
    else
        return;
    b[0] = (uint8_t)(0xC0 | (cp >> 6));
    b[1] = (uint8_t)(0x80 | (cp & 0x3F));
}

/* Case-fold n bytes of text for the identifier comparisons (identifiers and the text they are
 * looked for in go through the same fold). ASCII letters; 2-byte UTF-8 letters; a byte of 0x80
 * or more that does not start a UTF-8 sequence taken as ISO 8859 (Latin-1 and most of its
 * sisters: a lower-case letter is its capital plus 0x20). 3- and 4-byte UTF-8 sequences (CJK)
 * and ISO 2022 escapes have no case and are copied. */
static void fold(const char *in, size_t n, char *out)
{
    const uint8_t *s = (const uint8_t *)in;
    uint8_t *o = (uint8_t *)out;
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        if (c < 0x80) {
            o[i++] = c >= 'a' && c <= 'z' ? (uint8_t)(c - 32) : c;
            continue;
        }
        size_t len = c >= 0xC2 && c <= 0xDF   ? 2
                     : c >= 0xE0 && c <= 0xEF ? 3
                     : c >= 0xF0 && c <= 0xF4 ? 4
                                              : 1;
        for (size_t k = 1; k < len; k++)
            if (i + k >= n || (s[i + k] & 0xC0) != 0x80)
                len = 1;
        memcpy(o + i, s + i, len);
        if (len == 2)
            fold_utf8_pair(o + i);
        else if (len == 1 && c >= 0xE0 && c <= 0xFE && c != 0xF7)
            o[i] = (uint8_t)(c - 0x20);
        i += len;
    }
}
static bool alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c >= 0x80;
}

/* Identifiers are kept upper-cased and once each (compared upper-cased, so "Smith" and "SMITH"
 * are one entry): scrub() tries every one of them on every cleaned value. */
static void ident_add(walk_t *w, const char *s, size_t n, bool word, bool person)
{
    if (n < (word ? 2u : 3u))
        return;
    char tmp[256];
    char *c = n < sizeof(tmp) ? tmp : mt_malloc(n + 1);
    fold(s, n, c);
    c[n] = '\0';
    for (size_t i = 0; i < w->n_ids; i++) {
        if (w->ids[i].n == n && w->ids[i].word == word && w->ids[i].s[0] == c[0] &&
            memcmp(w->ids[i].s, c, n) == 0) {
            w->ids[i].person |= person;
            if (c != tmp)
                mt_free(c);
            return;
        }
    }
    if (w->n_ids == w->cap_ids) {
        w->cap_ids = w->cap_ids ? w->cap_ids * 2 : 32;
        w->ids = mt_realloc(w->ids, w->cap_ids * sizeof(*w->ids));
    }
    if (c == tmp) {
        c = mt_malloc(n + 1);
        memcpy(c, tmp, n + 1);
    }
    w->ids[w->n_ids++] = (ident_t){c, n, word, person};
}

static void collect_value(walk_t *w, const char *v, size_t n, bool person)
{
    size_t i = 0;
    while (i < n) { /* each value of a multi-valued string */
        size_t j = i;
        while (j < n && v[j] != '\\')
            j++;
        size_t a = i, b = j;
        while (a < b && (v[a] == ' ' || v[a] == '^' || v[a] == '='))
            a++;
        while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\0' || v[b - 1] == '^' || v[b - 1] == '='))
            b--;
        ident_add(w, v + a, b - a, false, person);
        for (size_t k = a; k < b;) { /* tokens */
            while (k < b && !alnum((unsigned char)v[k]))
                k++;
            size_t t = k;
            while (k < b && alnum((unsigned char)v[k]))
                k++;
            ident_add(w, v + t, k - t, true, person);
        }
        i = j + 1;
    }
}

static uint16_t effective_vr(const mt_ds_elem_t *e);

static void collect(walk_t *w, const mt_ds_t *ds, unsigned depth)
{
    if (depth > 64)
        return;
    for (size_t i = 0; i < mt_ds_count(ds); i++) {
        const mt_ds_elem_t *e = mt_ds_at(ds, i);
        if (e->vr == VR_SQ) {
            for (size_t k = 0; k < e->n_items; k++)
                collect(w, e->items[k], depth + 1);
            continue;
        }
        if (!e->value || !e->len || (e->tag >> 16) & 1)
            continue;
        if (effective_vr(e) != MT_VR('P', 'N') && !is_ident_tag(e->tag))
            continue; /* a name that came as UN is still a name */
        bool def;
        if (resolve(w, e->tag, e->vr, &def) == MT_DEID_K)
            continue;
        collect_value(w, (const char *)e->value, e->len, !is_place_tag(e->tag));
    }
}

/* Scrub the known identifiers and any run of 6+ digits (with . / - : inside) from text of
 * n <= VALMAX bytes; names_only: only the identifiers of people and IDs (no digit-only word of
 * theirs), no digit runs (*hit:
 * whether anything matched). An identifier is looked for only where its first character is
 * (memchr): every identifier of the instance is tried against every cleaned value, so this is
 * the engine's inner loop. */
static size_t scrub(const walk_t *w, const char *in, size_t n, char *out, bool names_only,
                    bool *hit)
{
    char u[VALMAX];
    bool del[VALMAX];
    memset(del, 0, n);
    fold(in, n, u);
    for (size_t k = 0; k < w->n_ids; k++) {
        const ident_t *id = &w->ids[k];
        /* names_only: a digit group of an ID ("11" of "11-05-25-142825") is no name; the
         * whole ID is still looked for */
        if (names_only && (!id->person || (id->word && all_digits(id->s, id->n))))
            continue;
        for (size_t i = 0; i + id->n <= n; i++) {
            const char *c = memchr(u + i, id->s[0], n - id->n - i + 1);
            if (!c)
                break;
            i = (size_t)(c - u);
            if (memcmp(u + i + 1, id->s + 1, id->n - 1) != 0)
                continue;
            if (id->word && ((i > 0 && alnum((unsigned char)u[i - 1])) ||
                             (i + id->n < n && alnum((unsigned char)u[i + id->n]))))
                continue;
            memset(del + i, 1, id->n);
            *hit = true;
        }
    }
    for (size_t i = 0; i < n && !names_only;) {
        if (!(in[i] >= '0' && in[i] <= '9')) {
            i++;
            continue;
        }
        size_t j = i, digits = 0;
        while (j < n && ((in[j] >= '0' && in[j] <= '9') || in[j] == '.' || in[j] == '/' ||
                         in[j] == '-' || in[j] == ':')) {
            digits += in[j] >= '0' && in[j] <= '9';
            j++;
        }
        if (digits >= 6)
            memset(del + i, 1, j - i);
        i = j;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (del[i])
            continue;
        if (in[i] == ' ' && (o == 0 || out[o - 1] == ' ' || out[o - 1] == '\\'))
            continue;
        out[o++] = in[i];
    }
    while (o && out[o - 1] == ' ')
        o--;
    return o;
}

/* ---- element operations ---- */
static const char *dummy_string(uint16_t vr)
{
    switch (vr) {
    case MT_VR('D', 'A'):
        return "19000101";
    case MT_VR('D', 'T'):
        return "19000101000000";
    case MT_VR('T', 'M'):
        return "000000";
    case MT_VR('D', 'S'):
    case MT_VR('I', 'S'):
        return "0";
    case MT_VR('A', 'S'):
        return "000Y";
    case MT_VR('U', 'R'):
        return "urn:x-mitral:deidentified";
    default:
        return "DEIDENTIFIED";
    }
}

static size_t dummy_binary_len(uint16_t vr)
{
    switch (vr) {
    case MT_VR('F', 'D'):
    case MT_VR('S', 'V'):
    case MT_VR('U', 'V'):
    case MT_VR('O', 'D'):
    case MT_VR('O', 'V'):
        return 8;
    case MT_VR('F', 'L'):
    case MT_VR('S', 'L'):
    case MT_VR('U', 'L'):
    case MT_VR('A', 'T'):
    case MT_VR('O', 'F'):
    case MT_VR('O', 'L'):
        return 4;
    default:
        return 2;
    }
}

/* The VR whose rules apply: UN values take the dictionary's VR when it knows the tag. */
static uint16_t effective_vr(const mt_ds_elem_t *e)
{
    if (e->vr != VR_UN)
        return e->vr;
    const mt_dict_entry_t *d = mt_dict_by_tag(e->tag);
    return d && d->vr != VR_SQ ? d->vr : VR_UN;
}

/* A value the engine writes takes the dictionary's VR when the element came as UN: it is now
 * text we made, and PS3.5 padding (space for text, NUL for UI) follows the real VR. */
static int set_value(mt_ds_t *ds, const mt_ds_elem_t *e, const void *v, size_t n)
{
    if (n > 0xFFFFFFFEu)
        return MT_ETOOBIG;
    uint32_t tag = e->tag;
    int rc = mt_ds_set(ds, tag, effective_vr(e), v, (uint32_t)n);
    if (rc == MT_EINVAL) {
        /* The value does not fit the element's VR (a malformed input: a name encoded as US):
         * removing it is always safe. */
        mt_ds_remove(ds, tag);
        return 0;
    }
    return rc;
}

static int op_dummy(walk_t *w, mt_ds_t *ds, mt_ds_elem_t *e)
{
    uint16_t vr = effective_vr(e);
    w->res->n_replaced++;
    if (vr == VR_UI) {
        char out[MT_DEID_UID_MAX];
        char seed[16];
        int rc;
        if (e->value && trim_len((const char *)e->value, e->len))
            return -1; /* the caller maps the existing value instead */
        /* No value to map: a UID derived from the tag alone is still a valid dummy. */
        memcpy(seed, "dummy-uid", 9);
        seed[9] = (char)(e->tag >> 24), seed[10] = (char)(e->tag >> 16);
        seed[11] = (char)(e->tag >> 8), seed[12] = (char)e->tag;
        if ((rc = mt_deid_uid(w->key, w->key_len, seed, 13, out, sizeof(out))))
            return rc;
        return set_value(ds, e, out, strlen(out));
    }
    if (vr_text(vr) || vr_is(vr, "DADTTMDSIS")) {
        const char *s = dummy_string(vr);
        return set_value(ds, e, s, strlen(s));
    }
    static const uint8_t zeros[8];
    return set_value(ds, e, zeros, dummy_binary_len(vr));
}

static int op_map_uid(walk_t *w, mt_ds_t *ds, mt_ds_elem_t *e)
{
    if (!e->value || !e->len)
        return 0;
    char out[VALMAX];
    int n = mt_deid_map_uids(w->key, w->key_len, (const char *)e->value, e->len, out, sizeof(out));
    if (n < 0) {
        w->res->n_removed++;
        mt_ds_remove(ds, e->tag);
        return 0;
    }
    w->res->n_uids++;
    return set_value(ds, e, out, (size_t)n);
}

static int op_shift(walk_t *w, mt_ds_t *ds, mt_ds_elem_t *e, uint16_t vr)
{
    if (!e->value || !e->len)
        return 0;
    char out[VALMAX];
    int n = mt_deid_shift_dates((const char *)e->value, e->len, vr == VR_DT, w->shift, out,
                                sizeof(out));
    if (n < 0)
        return set_value(ds, e, NULL, 0);
    w->res->n_shifted++;
    return set_value(ds, e, out, (size_t)n);
}

static int op_clean_text(walk_t *w, mt_ds_t *ds, mt_ds_elem_t *e)
{
    if (!e->value || !e->len)
        return 0;
    if (e->len > VALMAX) {
        w->res->n_removed++;
        mt_ds_remove(ds, e->tag);
        return 0;
    }
    char out[VALMAX];
    bool hit = false;
    size_t n = scrub(w, (const char *)e->value, trim_len((const char *)e->value, e->len), out,
                     false, &hit);
    w->res->n_cleaned++;
    if (n == 0) { /* nothing left: a dummy keeps a Type 1 attribute valid */
        const char *d = dummy_string(effective_vr(e));
        return set_value(ds, e, d, strlen(d));
    }
    return set_value(ds, e, out, n);
}

/* The Code Sequence Macro's code values and scheme designators: codes, not text (SH/UC for
 * history's sake), left as they are ("TEST" is a scheme, whoever is called Test). */
static bool is_code_tag(uint32_t tag)
{
    return tag == MT_TAG(0x0008, 0x0100) || tag == MT_TAG(0x0008, 0x0102) ||
           tag == MT_TAG(0x0008, 0x0103) || tag == MT_TAG(0x0008, 0x0119) ||
           tag == MT_TAG(0x0008, 0x0120);
}

/* Free text kept from the keep list (a local scheme's Code Meaning, Sequence Name): the
 * names and IDs of the instance's people go; a value with none of them is left as it is. */
static int op_scrub_names(walk_t *w, mt_ds_t *ds, mt_ds_elem_t *e)
{
    if (!e->value || !e->len || e->len > VALMAX)
        return 0;
    char out[VALMAX];
    bool hit = false;
    size_t n =
        scrub(w, (const char *)e->value, trim_len((const char *)e->value, e->len), out, true, &hit);
    if (!hit)
        return 0;
    w->res->n_cleaned++;
    if (n == 0) {
        const char *d = dummy_string(effective_vr(e));
        return set_value(ds, e, d, strlen(d));
    }
    return set_value(ds, e, out, n);
}

/* Z on a sequence: no items. */
static int op_seq_reset(mt_ds_t *ds, mt_ds_elem_t *e)
{
    uint32_t tag = e->tag;
    mt_ds_remove(ds, tag);
    return mt_ds_set(ds, tag, VR_SQ, NULL, 0);
}

/* How attributes that the table does not name (default K) are treated inside an item:
 * as they are (a sequence kept or U), cleaned (a C sequence), or replaced by dummies (a D
 * sequence: the items stay, so Type 1 contents stay present, but no value of theirs does). */
enum { MODE_KEEP, MODE_CLEAN, MODE_DUMMY };

static int walk_ds(walk_t *w, mt_ds_t *ds, unsigned depth, int mode);

static int walk_items(walk_t *w, mt_ds_elem_t *e, unsigned depth, int mode)
{
    for (size_t k = 0; k < e->n_items; k++) {
        int rc = walk_ds(w, e->items[k], depth + 1, mode);
        if (rc)
            return rc;
    }
    return 0;
}

static bool is_overlay_group(uint16_t g)
{
    return g >= 0x6000 && g <= 0x601E && !(g & 1);
}

/* Private data element (gggg,xxyy), xx >= 0x10: returns the action to take. */
static mt_deid_action_t private_action(walk_t *w, const mt_ds_t *ds, const mt_ds_elem_t *e)
{
    mt_deid_action_t a = mt_deid_profile_lookup(w->p, e->tag);
    if (a != MT_DEID_C)
        return a == MT_DEID_DEFAULT ? MT_DEID_X : a;
    uint16_t g = MT_TAG_GROUP(e->tag), el = MT_TAG_ELEM(e->tag);
    char creator[65];
    if (!mt_ds_get_string(ds, MT_TAG(g, el >> 8), creator, sizeof(creator)))
        return MT_DEID_X;
    return mt_deid_profile_safe_private(w->p, g, (uint8_t)(el & 0xFF), creator) ? MT_DEID_K
                                                                                : MT_DEID_X;
}

static int apply_one(walk_t *w, mt_ds_t *ds, mt_ds_elem_t *e, mt_deid_action_t a, bool def,
                     unsigned depth, int mode)
{
    uint16_t vr = effective_vr(e);
    bool retain_uids = w->p->options & (1u << MT_DEID_OPT_RETAIN_UIDS);
    int rc;
    if (e->vr == VR_SQ) {
        switch (a) {
        case MT_DEID_X:
            w->res->n_removed++;
            mt_ds_remove(ds, e->tag);
            return 0;
        case MT_DEID_Z:
            w->res->n_replaced++;
            return op_seq_reset(ds, e);
        case MT_DEID_D:
            w->res->n_replaced++;
            /* No items: nothing to hide, and an added empty item would break the IOD. */
            return walk_items(w, e, depth, MODE_DUMMY);
        case MT_DEID_C:
            return walk_items(w, e, depth, mode == MODE_DUMMY ? MODE_DUMMY : MODE_CLEAN);
        default: /* K, U: keep the items and make them safe */
            return walk_items(w, e, depth, mode);
        }
    }
    if (mode == MODE_CLEAN && def && a == MT_DEID_K && vr_free_text(vr))
        a = MT_DEID_C;
    if (mode == MODE_DUMMY && def && (a == MT_DEID_K || a == MT_DEID_C) &&
        (vr_free_text(vr) || vr == VR_DA || vr == VR_DT || vr == VR_TM))
        a = MT_DEID_D;
    switch (a) {
    case MT_DEID_X:
        w->res->n_removed++;
        mt_ds_remove(ds, e->tag);
        return 0;
    case MT_DEID_Z:
        w->res->n_replaced++;
        return set_value(ds, e, NULL, 0);
    case MT_DEID_D:
        rc = op_dummy(w, ds, e);
        return rc == -1 ? op_map_uid(w, ds, e) : rc;
    case MT_DEID_U:
        if (vr == VR_UI)
            return op_map_uid(w, ds, e);
        rc = op_dummy(w, ds, e);
        return rc == -1 ? op_map_uid(w, ds, e) : rc;
    case MT_DEID_C:
        if (vr == VR_DA || vr == VR_DT)
            return op_shift(w, ds, e, vr);
        if (vr == VR_UI)
            return retain_uids ? 0 : op_map_uid(w, ds, e);
        if (vr_free_text(vr))
            return op_clean_text(w, ds, e);
        return 0; /* TM (whole-day shifts keep the time of day), numbers, codes, binary */
    case MT_DEID_K:
    default:
        if (!def)
            return 0;
        if (vr == VR_UI && !retain_uids && !is_class_uid_tag(e->tag))
            return op_map_uid(w, ds, e);
        if ((vr == VR_DA || vr == VR_DT) && w->p->shift_dates)
            return op_shift(w, ds, e, vr);
        if (vr_free_text(vr) && w->n_ids && !is_code_tag(e->tag))
            return op_scrub_names(w, ds, e);
        return 0;
    }
}

static int walk_ds(walk_t *w, mt_ds_t *ds, unsigned depth, int mode)
{
    if (depth > 64)
        return MT_EMALFORMED;
    for (size_t i = mt_ds_count(ds); i-- > 0;) {
        mt_ds_elem_t *e = mt_ds_at(ds, i);
        uint16_t g = MT_TAG_GROUP(e->tag), el = MT_TAG_ELEM(e->tag);
        int rc = 0;
        if (el == 0x0000 && g != 0x0002) { /* group lengths: retired and stale */
            mt_ds_remove(ds, e->tag);
            continue;
        }
        if (g & 1) {
            if (el < 0x0010) { /* (gggg,0001-000F) are not valid private tags */
                w->res->n_removed++;
                mt_ds_remove(ds, e->tag);
                continue;
            }
            if (el <= 0x00FF)
                continue; /* creators: settled below */
            mt_deid_action_t a = private_action(w, ds, e);
            rc = apply_one(w, ds, e, a, a == MT_DEID_K, depth, mode);
            if (rc)
                return rc;
            continue;
        }
        if (is_overlay_group(g) && el != 0x3000) {
            bool def;
            mt_deid_action_t data = resolve(w, MT_TAG(g, 0x3000), MT_VR('O', 'W'), &def);
            if (data == MT_DEID_X) {
                w->res->n_removed++;
                mt_ds_remove(ds, e->tag);
                continue;
            }
        }
        bool def;
        mt_deid_action_t a = resolve(w, e->tag, e->vr, &def);
        if ((e->tag == TAG_PATIENT_ID || e->tag == TAG_PATIENT_NAME) && a != MT_DEID_K &&
            a != MT_DEID_X) {
            mt_deid_ident_mode_t im =
                e->tag == TAG_PATIENT_ID ? w->p->patient_id : w->p->patient_name;
            const char *v = (const char *)e->value;
            size_t n = v ? trim_len(v, e->len) : 0;
            while (n && *v == ' ') /* leading spaces are padding too */
                v++, n--;
            char ps[MT_DEID_PSEUDONYM_MAX];
            w->res->n_replaced++;
            if (im == MT_DEID_EMPTY || n == 0) {
                rc = set_value(ds, e, NULL, 0);
            } else if (e->tag == TAG_PATIENT_NAME && w->res->pseudonym[0]) {
                rc = set_value(ds, e, w->res->pseudonym, strlen(w->res->pseudonym));
            } else if (!(rc = mt_deid_pseudonym(w->key, w->key_len, w->p->pseudonym_prefix, v, n,
                                                ps, sizeof(ps)))) {
                rc = set_value(ds, e, ps, strlen(ps));
            }
        } else {
            rc = apply_one(w, ds, e, a, def, depth, mode);
        }
        if (rc)
            return rc;
    }
    /* Private creators: kept only while an element of their block is. */
    for (size_t i = mt_ds_count(ds); i-- > 0;) {
        mt_ds_elem_t *e = mt_ds_at(ds, i);
        uint16_t g = MT_TAG_GROUP(e->tag), el = MT_TAG_ELEM(e->tag);
        if (!(g & 1) || el < 0x0010 || el > 0x00FF)
            continue;
        bool used = false;
        for (size_t k = 0; k < mt_ds_count(ds) && !used; k++) {
            uint32_t t = mt_ds_at(ds, k)->tag;
            used = MT_TAG_GROUP(t) == g && (MT_TAG_ELEM(t) >> 8) == el;
        }
        if (!used) {
            w->res->n_removed++;
            mt_ds_remove(ds, e->tag);
        }
    }
    return 0;
}

bool mt_deid_keeps_pixel_data(const mt_deid_profile_t *p)
{
    walk_t w;
    memset(&w, 0, sizeof(w));
    w.p = p;
    bool def;
    mt_deid_action_t a = resolve(&w, MT_TAG_PIXEL_DATA, MT_VR('O', 'W'), &def);
    return a == MT_DEID_K || a == MT_DEID_C; /* apply_one: binary values are kept by both */
}

/* ---- PS3.15 E.1.1: the attributes a de-identifier adds ---- */
static int add_method(walk_t *w, mt_ds_t *ds)
{
    const mt_deid_profile_t *p = w->p;
    int rc;
    if ((rc = mt_ds_set_string(ds, MT_TAG(0x0012, 0x0062), MT_VR('C', 'S'), "YES")))
        return rc;
    char method[128]; /* LO: at most 64 characters */
    snprintf(method, sizeof(method), "mitral %s (PS3.15 %s)", p->name,
             p->edition[0] ? p->edition : "Annex E");
    method[64] = '\0';
    if ((rc = mt_ds_set_string(ds, MT_TAG(0x0012, 0x0063), MT_VR('L', 'O'), method)))
        return rc;
    uint32_t sq = MT_TAG(0x0012, 0x0064);
    mt_ds_remove(ds, sq);
    if ((rc = mt_ds_set(ds, sq, VR_SQ, NULL, 0)))
        return rc;
    mt_ds_elem_t *s = mt_ds_get(ds, sq);
    if (!s)
        return MT_EINVAL;
    s->items = mt_calloc(p->n_codes ? p->n_codes : 1, sizeof(*s->items));
    for (size_t i = 0; i < p->n_codes; i++) {
        mt_ds_t *it = mt_ds_new();
        s->items[s->n_items++] = it;
        if ((rc = mt_ds_set_string(it, MT_TAG(0x0008, 0x0100), MT_VR('S', 'H'),
                                   p->codes[i].value)) ||
            (rc = mt_ds_set_string(it, MT_TAG(0x0008, 0x0102), MT_VR('S', 'H'), "DCM")) ||
            (rc = mt_ds_set_string(it, MT_TAG(0x0008, 0x0104), MT_VR('L', 'O'),
                                   p->codes[i].meaning)))
            return rc;
    }
    const char *ltim = "REMOVED";
    if (p->options & (1u << MT_DEID_OPT_RETAIN_LONG_MODIFIED_DATES))
        ltim = "MODIFIED";
    else if (p->options & (1u << MT_DEID_OPT_RETAIN_LONG_FULL_DATES))
        ltim = "UNMODIFIED";
    return mt_ds_set_string(ds, MT_TAG(0x0028, 0x0303), MT_VR('C', 'S'), ltim);
}

/* A sequence that arrived as UN with a defined length (PS3.5 §6.2.2: its value is the
 * sequence's items in implicit VR little endian) would be opaque bytes to the walk, names and
 * all. Decode it into a real SQ element so that its items are handled like any others; when it
 * does not decode, remove it: what cannot be read cannot be shown to be safe. */
static void normalize_un(mt_ds_t *ds, unsigned depth)
{
    if (depth > 64)
        return;
    for (size_t i = mt_ds_count(ds); i-- > 0;) {
        mt_ds_elem_t *e = mt_ds_at(ds, i);
        const mt_dict_entry_t *d;
        if (e->vr == VR_UN && e->value && e->len && e->len != MT_UNDEFINED_LENGTH &&
            (d = mt_dict_by_tag(e->tag)) && d->vr == VR_SQ) {
            size_t n = (size_t)e->len + 8;
            uint8_t *buf = mt_try_malloc(n);
            mt_ds_t *t = NULL;
            mt_diag_t diag;
            mt_ds_elem_t *sq = NULL;
            if (buf) {
                uint32_t tag = e->tag, len = e->len;
                uint8_t h[8] = {(uint8_t)(tag >> 16), (uint8_t)(tag >> 24), (uint8_t)tag,
                                (uint8_t)(tag >> 8),  (uint8_t)len,         (uint8_t)(len >> 8),
                                (uint8_t)(len >> 16), (uint8_t)(len >> 24)};
                memcpy(buf, h, 8);
                memcpy(buf + 8, e->value, e->len);
                if (mt_ds_parse(buf, n, mt_ts_implicit_le, &t, &diag) == 0)
                    sq = mt_ds_get(t, e->tag);
                mt_free(buf);
            }
            if (!sq || sq->vr != VR_SQ) {
                mt_ds_free(t);
                mt_ds_remove(ds, e->tag);
                continue;
            }
            mt_free(e->value);
            e->value = NULL;
            e->vr = VR_SQ;
            e->len = MT_UNDEFINED_LENGTH;
            e->items = sq->items;
            e->n_items = sq->n_items;
            sq->items = NULL;
            sq->n_items = 0;
            mt_ds_free(t);
        }
        if (e->vr == VR_SQ)
            for (size_t k = 0; k < e->n_items; k++)
                normalize_un(e->items[k], depth + 1);
    }
}

/* Burned In Annotation says YES: any of its values, in any case, spaces around it ignored (CS
 * padding is not significant; "yes" or a second value is invalid, but the pixels may still
 * carry text, and refusing is the safe reading). */
static bool burned_in(const mt_ds_t *ds)
{
    char v[65];
    if (!mt_ds_get_string(ds, TAG_BURNED_IN, v, sizeof(v)))
        return false;
    for (const char *t = v; *t;) {
        while (*t == ' ')
            t++;
        if (up(t[0]) == 'Y' && up(t[1]) == 'E' && up(t[2]) == 'S') {
            const char *e = t + 3;
            while (*e == ' ')
                e++;
            if (*e == '\\' || *e == '\0')
                return true;
        }
        t = strchr(t, '\\');
        if (!t)
            break;
        t++;
    }
    return false;
}

enum { APPLY_CHECK_BURNED_IN = 1, APPLY_ADD_METHOD = 2 };

static int apply(const mt_deid_profile_t *p, const uint8_t *key, size_t key_len, mt_ds_t *ds,
                 mt_deid_result_t *res, unsigned flags)
{
    bool check_burned_in = flags & APPLY_CHECK_BURNED_IN;
    mt_deid_result_t dummy;
    if (!res)
        res = &dummy;
    memset(res, 0, sizeof(*res));
    if (!p || !ds || !key || key_len < 16)
        return MT_EINVAL;
    if (check_burned_in && burned_in(ds))
        return MT_EREJECTED;

    walk_t w;
    memset(&w, 0, sizeof(w));
    w.p = p;
    w.key = key;
    w.key_len = key_len;
    w.res = res;

    /* The patient: PatientID, else PatientName, else the study (its intervals are kept). */
    char pid[VALMAX];
    static const uint32_t who[] = {TAG_PATIENT_ID, TAG_PATIENT_NAME, TAG_STUDY_UID};
    /* (leading spaces are padding in LO and PN, like trailing ones: " 123" is "123") */
    const char *who_v = pid;
    pid[0] = '\0';
    for (size_t i = 0; i < 3 && !who_v[0]; i++)
        if (mt_ds_get_string(ds, who[i], pid, sizeof(pid)))
            who_v = pid + strspn(pid, " ");
    w.shift = mt_deid_date_shift(key, key_len, who_v, strlen(who_v), p->shift_min_days,
                                 p->shift_max_days);
    res->shift_days = w.shift;
    if (p->patient_id == MT_DEID_PSEUDONYM &&
        mt_ds_get_string(ds, TAG_PATIENT_ID, pid, sizeof(pid))) {
        const char *v = pid + strspn(pid, " ");
        if (*v)
            mt_deid_pseudonym(key, key_len, p->pseudonym_prefix, v, strlen(v), res->pseudonym,
                              sizeof(res->pseudonym));
    }

    normalize_un(ds, 0);
    collect(&w, ds, 0);
    int rc = walk_ds(&w, ds, 0, MODE_KEEP);
    if (!rc && (flags & APPLY_ADD_METHOD))
        rc = add_method(&w, ds);
    for (size_t i = 0; i < w.n_ids; i++)
        mt_free(w.ids[i].s);
    mt_free(w.ids);
    return rc;
}

int mt_deid_apply(const mt_deid_profile_t *p, const uint8_t *key, size_t key_len, mt_ds_t *ds,
                  mt_deid_result_t *res)
{
    return apply(p, key, key_len, ds, res, APPLY_CHECK_BURNED_IN | APPLY_ADD_METHOD);
}

int mt_deid_apply_quarantined(const mt_deid_profile_t *p, const uint8_t *key, size_t key_len,
                              mt_ds_t *ds, mt_deid_result_t *res)
{
    return apply(p, key, key_len, ds, res, APPLY_ADD_METHOD);
}

int mt_deid_sop_instance_uid(const mt_deid_profile_t *p, const uint8_t *key, size_t key_len,
                             const char *uid, char *out, size_t outsz)
{
    /* The walk itself decides, on a one-element data set; the attributes add_method writes
     * are left out (they cannot change (0008,0018), and cost allocations per instance). */
    mt_ds_t *ds = mt_ds_new();
    int rc = mt_ds_set_string(ds, MT_TAG(0x0008, 0x0018), MT_VR('U', 'I'), uid);
    if (!rc)
        rc = apply(p, key, key_len, ds, NULL, 0);
    if (!rc && !mt_ds_get_string(ds, MT_TAG(0x0008, 0x0018), out, outsz))
        out[0] = '\0';
    mt_ds_free(ds);
    return rc;
}
