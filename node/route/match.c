/*
 * match.c - the routing decision for one instance (semantics: rules.h), and the attribute
 * collector the store path fills from the top-level elements it parses before Pixel Data.
 *
 * Values are kept as text: string VRs with trailing padding removed, those that the Specific
 * Character Set applies to (SH, LO, ST, LT, PN, UC, UT; PS3.5 6.1.2.3) converted to UTF-8 as
 * the rules are written (YAML is UTF-8; dicom/charset.h, from (0008,0005), which comes first
 * in a data set; ASCII values are kept as they are), numeric binary VRs converted to decimal
 * ("\"-separated when multi-valued); equals / one_of on an attribute whose dictionary VR is
 * numeric (DS, IS and the binary ones) compare as numbers. Each operator is applied to every
 * value of a multi-valued attribute (split on '\', each trimmed of spaces) and holds when one of
 * them satisfies it; present/absent look at the attribute as a whole. Rules on cmr_series are
 * only armed by mt_route_decide (their other conditions held) and decided on the tag alone by
 * mt_route_after_tag (rules.h, "Rules on the CMR series tag"); equals / one_of on the tag
 * compare by family ("lge" matches "lge.sax"). PURE.
 */
#include <arpa/inet.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../dicom/charset.h"
#include "../dicom/ds.h"
#include "../util/alloc.h"
#include "rules_int.h"

#define ATTR_MAX_TEXT 4096 /* longer values are cut: rules look at short header values */

typedef struct attr {
    uint32_t tag;
    char *text;
} attr_t;

struct mt_route_attrs {
    const mt_route_set_t *wants;
    mt_charset_t cs; /* of the data set: Specific Character Set, once offered */
    attr_t *v;
    size_t n, cap;
};

mt_route_attrs_t *mt_route_attrs_new(const mt_route_set_t *wants)
{
    mt_route_attrs_t *a = mt_calloc(1, sizeof *a);
    a->wants = wants;
    mt_charset_default(&a->cs);
    return a;
}

void mt_route_attrs_free(mt_route_attrs_t *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++)
        mt_free(a->v[i].text);
    mt_free(a->v);
    mt_free(a);
}

static uint64_t rd(const uint8_t *p, size_t n, bool big)
{
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x |= (uint64_t)p[big ? n - 1 - i : i] << (8 * i);
    return x;
}

static char *numeric_text(uint16_t vr, const uint8_t *v, size_t len, bool big)
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
        w = 8;
        break;
    default:
        return NULL;
    }
    size_t cnt = len / w;
    if (cnt > 64)
        cnt = 64;
    char *out = mt_malloc(cnt * 32 + 1);
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < cnt; i++) {
        uint64_t x = rd(v + i * w, w, big);
        char one[40];
        switch (vr) {
        case MT_VR('U', 'S'):
            snprintf(one, sizeof one, "%u", (unsigned)(uint16_t)x);
            break;
        case MT_VR('S', 'S'):
            snprintf(one, sizeof one, "%d", (int)(int16_t)(uint16_t)x);
            break;
        case MT_VR('U', 'L'):
            snprintf(one, sizeof one, "%u", (unsigned)(uint32_t)x);
            break;
        case MT_VR('S', 'L'):
            snprintf(one, sizeof one, "%d", (int)(int32_t)(uint32_t)x);
            break;
        case MT_VR('F', 'L'): {
            uint32_t u = (uint32_t)x;
            float f;
            memcpy(&f, &u, 4);
            snprintf(one, sizeof one, "%.9g", (double)f);
            break;
        }
        default: {
            double d;
            memcpy(&d, &x, 8);
            snprintf(one, sizeof one, "%.17g", d);
        }
        }
        o += (size_t)snprintf(out + o, 32 + 1, "%s%s", i ? "\\" : "", one);
    }
    return out;
}

/* PS3.5 6.1.2.3: the VRs whose values the Specific Character Set applies to */
static bool is_charset_vr(uint16_t vr)
{
    return vr == MT_VR('S', 'H') || vr == MT_VR('L', 'O') || vr == MT_VR('S', 'T') ||
           vr == MT_VR('L', 'T') || vr == MT_VR('P', 'N') || vr == MT_VR('U', 'C') ||
           vr == MT_VR('U', 'T');
}

static bool is_text_vr(uint16_t vr)
{
    switch (vr) {
    case MT_VR('A', 'E'):
    case MT_VR('A', 'S'):
    case MT_VR('C', 'S'):
    case MT_VR('D', 'A'):
    case MT_VR('D', 'S'):
    case MT_VR('D', 'T'):
    case MT_VR('I', 'S'):
    case MT_VR('L', 'O'):
    case MT_VR('L', 'T'):
    case MT_VR('P', 'N'):
    case MT_VR('S', 'H'):
    case MT_VR('S', 'T'):
    case MT_VR('T', 'M'):
    case MT_VR('U', 'C'):
    case MT_VR('U', 'I'):
    case MT_VR('U', 'R'):
    case MT_VR('U', 'T'):
        return true;
    default:
        return false;
    }
}

void mt_route_attrs_offer(mt_route_attrs_t *a, uint32_t tag, uint16_t vr, const uint8_t *value,
                          size_t len, bool big_endian)
{
    if (tag == MT_TAG(0x0008, 0x0005) && value) /* an unknown term: the default repertoire */
        (void)mt_charset_parse((const char *)value, len, &a->cs);
    if (a->wants && !mt_route_set_wants(a->wants, tag))
        return;
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i].tag == tag)
            return; /* first occurrence wins (a well-formed data set has one) */
    char *text = NULL;
    if (value && is_text_vr(vr)) {
        size_t n = len < ATTR_MAX_TEXT ? len : ATTR_MAX_TEXT;
        while (n && (value[n - 1] == ' ' || value[n - 1] == '\0'))
            n--;
        if (is_charset_vr(vr) && !mt_charset_plain(&a->cs, (const char *)value, n)) {
            text = mt_charset_to_utf8(&a->cs, (const char *)value, n, vr == MT_VR('P', 'N'));
        } else {
            text = mt_strndup((const char *)value, n);
            for (size_t i = 0; i < n; i++) /* embedded NULs would cut matching short: '?' */
                if (!text[i])
                    text[i] = '?';
        }
    } else if (value) {
        text = numeric_text(vr, value, len, big_endian);
    }
    if (!text)
        text = mt_strdup("");
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->v = mt_realloc(a->v, a->cap * sizeof *a->v);
    }
    a->v[a->n].tag = tag;
    a->v[a->n].text = text;
    a->n++;
}

const char *mt_route_attrs_get(const mt_route_attrs_t *a, uint32_t tag)
{
    for (size_t i = 0; a && i < a->n; i++)
        if (a->v[i].tag == tag)
            return a->v[i].text;
    return NULL;
}

static bool date8(const char *v, char out[9])
{
    size_t j = 0;
    for (size_t i = 0; v[i] && j < 8; i++) {
        if (v[i] >= '0' && v[i] <= '9')
            out[j++] = v[i];
        else if (!(v[i] == '-' || v[i] == '.') || j == 0)
            return false;
    }
    out[j] = '\0';
    return j == 8;
}

/* v is one of op's numbers: equal to 1 part in 10^7 (an FL value's decimal text, from
 * numeric_text, keeps 9 digits of a 24-bit mantissa). Not a number: no match. */
static bool num_equal_any(const mt__route_op_t *op, const char *v)
{
    char *end;
    if (!*v)
        return false;
    double x = strtod(v, &end);
    if (*end || !isfinite(x))
        return false;
    for (size_t i = 0; i < op->n_vals; i++) {
        double y = op->nums[i], scale = fmax(1.0, fmax(fabs(x), fabs(y)));
        if (fabs(x - y) <= 1e-7 * scale)
            return true;
    }
    return false;
}

/* One value (already trimmed) against one operator. */
static bool op_value(const mt__route_op_t *op, const char *v)
{
    switch (op->kind) {
    case MT__RO_EQUALS:
    case MT__RO_ONE_OF:
        if (op->nums) /* a numeric attribute (rules.c numeric_values) */
            return num_equal_any(op, v);
        for (size_t i = 0; i < op->n_vals; i++)
            if (!strcmp(op->vals[i], v))
                return true;
        return false;
    case MT__RO_GLOB:
        return fnmatch(op->vals[0], v, 0) == 0;
    case MT__RO_REGEX:
        return regexec(&op->re, v, 0, NULL, 0) == 0;
    case MT__RO_RANGE: {
        char *end;
        if (!*v)
            return false;
        double x = strtod(v, &end);
        if (*end)
            return false;
        return (!op->has_lo || x >= op->lo) && (!op->has_hi || x <= op->hi);
    }
    case MT__RO_DATE_RANGE: {
        char d[9];
        if (!date8(v, d))
            return false;
        return (!op->dlo[0] || strcmp(d, op->dlo) >= 0) && (!op->dhi[0] || strcmp(d, op->dhi) <= 0);
    }
    default:
        return false;
    }
}

/* Any of the '\'-separated values (each trimmed) satisfies op. */
static bool op_text(const mt__route_op_t *op, const char *text)
{
    char buf[ATTR_MAX_TEXT + 1];
    const char *p = text;
    for (;;) {
        const char *e = strchr(p, '\\');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *b = p;
        while (n && *b == ' ') {
            b++;
            n--;
        }
        while (n && b[n - 1] == ' ')
            n--;
        if (n > ATTR_MAX_TEXT)
            n = ATTR_MAX_TEXT;
        memcpy(buf, b, n);
        buf[n] = '\0';
        if (op_value(op, buf))
            return true;
        if (!e)
            return false;
        p = e + 1;
    }
}

static bool in_cidr(const mt__route_cidr_t *c, const char *peer)
{
    uint8_t a[16];
    int fam = AF_INET;
    if (inet_pton(AF_INET, peer, a) != 1) {
        if (inet_pton(AF_INET6, peer, a) != 1)
            return false;
        fam = AF_INET6;
        /* an IPv4-mapped IPv6 peer (::ffff:a.b.c.d) matches IPv4 networks */
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (c->family == AF_INET && !memcmp(a, mapped, 12)) {
            memmove(a, a + 12, 4);
            fam = AF_INET;
        }
    }
    if (fam != c->family)
        return false;
    unsigned full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(a, c->addr, full))
        return false;
    if (rest) {
        uint8_t m = (uint8_t)(0xFF << (8 - rest));
        if ((a[full] & m) != (c->addr[full] & m))
            return false;
    }
    return true;
}

/* cmr_series equals / one_of: "lge" names the family (lge, lge.sax, ...), "lge.sax" a tag. */
static bool cmr_family_match(const mt__route_op_t *op, const char *tag)
{
    for (size_t i = 0; i < op->n_vals; i++) {
        size_t n = strlen(op->vals[i]);
        if (!strncmp(tag, op->vals[i], n) && (tag[n] == '\0' || tag[n] == '.'))
            return true;
    }
    return false;
}

static bool cond_holds(const mt__route_cond_t *cd, const mt_route_input_t *in)
{
    const char *text = NULL;
    switch (cd->subject) {
    case MT__RS_ATTR:
        text = mt_route_attrs_get(in->attrs, cd->tag);
        break;
    case MT__RS_CALLING_AE:
        text = in->calling_ae;
        break;
    case MT__RS_CALLED_AE:
        text = in->called_ae;
        break;
    case MT__RS_PEER:
        text = in->peer;
        break;
    case MT__RS_CMR_SERIES:
        text = in->cmr_series;
        break;
    case MT__RS_USER:
        text = in->user;
        break;
    }
    for (size_t i = 0; i < cd->n_ops; i++) {
        const mt__route_op_t *op = &cd->ops[i];
        bool ok;
        if (op->kind == MT__RO_PRESENT)
            ok = text != NULL;
        else if (op->kind == MT__RO_ABSENT)
            ok = text == NULL;
        else if (!text)
            ok = false;
        else if (cd->subject == MT__RS_CMR_SERIES &&
                 (op->kind == MT__RO_EQUALS || op->kind == MT__RO_ONE_OF))
            ok = cmr_family_match(op, text);
        else if (op->kind == MT__RO_CIDR) {
            ok = false;
            for (size_t j = 0; j < op->n_cidrs && !ok; j++)
                ok = in_cidr(&op->cidrs[j], text);
        } else
            ok = op_text(op, text);
        if (!ok)
            return false;
    }
    return true;
}

static void add_unique(const char **arr, size_t *n, const char *s)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(arr[i], s))
            return;
    if (*n < MT_ROUTE_MAX_TARGETS)
        arr[(*n)++] = s;
}

/* Apply a matching rule's actions; true when evaluation ends here. */
static bool apply(const mt_route_set_t *set, const mt_route_rule_t *r, mt_route_decision_t *d)
{
    if (d->n_rules < MT_ROUTE_MAX_TARGETS)
        d->rules[d->n_rules++] = r->name;
    if (r->reject) {
        d->reject = true;
        d->reject_reason = r->reject;
        return true;
    }
    for (size_t i = 0; i < r->n_projects; i++)
        add_unique(d->projects, &d->n_projects, r->projects[i]);
    for (size_t i = 0; i < r->n_forward; i++)
        add_unique(d->forward, &d->n_forward, r->forward[i]);
    if (r->deid && !d->deid) {
        d->deid = r->deid;
        d->deid_profile = mt_route_set_profile(set, r->deid);
    }
    return !r->cont;
}

void mt_route_decide(const mt_route_set_t *set, const mt_route_input_t *in, mt_route_decision_t *d)
{
    memset(d, 0, sizeof *d);
    if (!set)
        return;
    for (size_t i = 0; i < set->n_rules; i++) {
        const mt_route_rule_t *r = &set->rules[i];
        bool all = true;
        for (size_t j = 0; j < r->n_conds && all; j++)
            all = r->conds[j].subject == MT__RS_CMR_SERIES || cond_holds(&r->conds[j], in);
        if (!all)
            continue;
        if (r->after_tag) { /* the rest waits for the tag */
            if (d->n_armed < MT_ROUTE_MAX_TARGETS)
                d->armed[d->n_armed++] = r->name;
            continue;
        }
        d->matched_any = true;
        if (apply(set, r, d))
            return;
    }
    if (!d->matched_any && set->has_default) {
        d->used_default = true;
        apply(set, &set->def, d);
    }
}

void mt_route_after_tag(const mt_route_set_t *set, const char *tag, const char *const *armed,
                        size_t n_armed, mt_route_decision_t *d)
{
    memset(d, 0, sizeof *d);
    mt_route_input_t in = {.cmr_series = tag};
    for (size_t i = 0; set && tag && i < set->n_rules; i++) {
        const mt_route_rule_t *r = &set->rules[i];
        if (!r->after_tag)
            continue;
        bool is_armed = false;
        for (size_t k = 0; k < n_armed && !is_armed; k++)
            is_armed = !strcmp(armed[k], r->name);
        bool all = is_armed;
        for (size_t j = 0; j < r->n_conds && all; j++)
            all = r->conds[j].subject != MT__RS_CMR_SERIES || cond_holds(&r->conds[j], &in);
        if (!all)
            continue;
        d->matched_any = true;
        if (apply(set, r, d))
            return;
    }
}
