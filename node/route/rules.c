/*
 * rules.c - compile routing rules files (format and semantics: rules.h) into an mt_route_set.
 *
 * libyaml's document API loads the whole file (bounded by MT_ROUTE_MAX_FILE), then the tree is
 * walked: top-level mapping {rules: [...], default: {...}}; each rule a mapping of the keys
 * name, match, projects, deid, forward, reject, continue, stop. Every node carries its start
 * mark, so every error names the line of the offending key or value. The first error stops the
 * compile; the rules of a failing file are not added (all or nothing per file).
 *
 * PURE: text in, compiled structures out; names of destinations, projects and profiles are
 * checked through the caller's mt_route_check_t.
 */
#include "rules_int.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <yaml.h>

#include "../dicom/dict.h"
#include "../dicom/ds.h"
#include "../tag/tag.h"
#include "../util/alloc.h"
#include "../util/err.h"

typedef struct cc {
    yaml_document_t *doc;
    const char *name;
    char *err;
    size_t errsz;
    const mt_route_check_t *check;
    mt_route_set_t *set;
    uint32_t *tags; /* tags seen in this file */
    size_t n_tags;
} cc_t;

__attribute__((format(printf, 3, 4))) static int cfail(cc_t *c, const yaml_node_t *n,
                                                       const char *fmt, ...)
{
    if (!c->err || !c->errsz)
        return MT_ECONF;
    int w = snprintf(c->err, c->errsz, "%s:%zu: ", c->name, n ? n->start_mark.line + 1 : 1);
    if (w >= 0 && (size_t)w < c->errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + w, c->errsz - (size_t)w, fmt, ap);
        va_end(ap);
    }
    return MT_ECONF;
}

static yaml_node_t *node(cc_t *c, int i)
{
    return yaml_document_get_node(c->doc, i);
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static bool is_null(const yaml_node_t *n)
{
    const char *s = scalar(n);
    if (!s || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static bool safe_text(const yaml_node_t *n)
{
    const char *s = scalar(n);
    if (!s || strlen(s) != n->data.scalar.length || n->data.scalar.length > 1024)
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static int parse_bool(cc_t *c, const yaml_node_t *n, const char *what, bool *out)
{
    const char *s = scalar(n);
    if (s && (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "True"))) {
        *out = true;
        return 0;
    }
    if (s && (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "False"))) {
        *out = false;
        return 0;
    }
    return cfail(c, n, "%s: expected true or false", what);
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        mt_free(v[i]);
    mt_free(v);
}

/* A scalar or a list of scalars -> strings (max entries). */
static int string_list(cc_t *c, const yaml_node_t *n, const char *what, size_t max, char ***out,
                       size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (is_null(n))
        return 0;
    if (n->type == YAML_SCALAR_NODE) {
        if (!safe_text(n) || !n->data.scalar.length)
            return cfail(c, n, "%s: expected a value", what);
        *out = mt_calloc(1, sizeof **out);
        (*out)[0] = mt_strdup(scalar(n));
        *nout = 1;
        return 0;
    }
    if (n->type != YAML_SEQUENCE_NODE)
        return cfail(c, n, "%s: expected a list", what);
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (cnt > max)
        return cfail(c, n, "%s: more than %zu entries", what, max);
    *out = mt_calloc(cnt ? cnt : 1, sizeof **out);
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *e = node(c, *it);
        if (!e || e->type != YAML_SCALAR_NODE || !safe_text(e) || !e->data.scalar.length) {
            free_list(*out, *nout); /* nothing half-built for the caller to free */
            *out = NULL;
            *nout = 0;
            return cfail(c, e ? e : n, "%s: list entries must be plain values", what);
        }
        (*out)[(*nout)++] = mt_strdup(scalar(e));
    }
    return 0;
}

/* "(gggg,eeee)", "gggg,eeee" or "ggggeeee" (hex). */
static bool parse_tag(const char *s, uint32_t *tag)
{
    char hex[9];
    size_t j = 0;
    size_t n = strlen(s);
    size_t b = 0, e = n;
    if (n >= 2 && s[0] == '(' && s[n - 1] == ')') {
        b = 1;
        e = n - 1;
    }
    for (size_t i = b; i < e; i++) {
        char ch = s[i];
        if (ch == ',' && j == 4)
            continue;
        bool hx = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
        if (!hx || j >= 8)
            return false;
        hex[j++] = ch;
    }
    if (j != 8)
        return false;
    hex[8] = '\0';
    *tag = (uint32_t)strtoul(hex, NULL, 16);
    return true;
}

static bool parse_number(const char *s, double *out)
{
    char *end;
    if (!*s)
        return false;
    *out = strtod(s, &end);
    return *end == '\0' && !isnan(*out); /* NaN: no value would ever be in the range */
}

/* A calendar date (PS3.5 Table 6.2-1 DA): month 01-12, day within the month. */
static bool valid_date(const char d[9])
{
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y = (d[0] - '0') * 1000 + (d[1] - '0') * 100 + (d[2] - '0') * 10 + (d[3] - '0');
    int m = (d[4] - '0') * 10 + (d[5] - '0'), day = (d[6] - '0') * 10 + (d[7] - '0');
    if (m < 1 || m > 12 || day < 1 || day > mdays[m - 1])
        return false;
    return !(m == 2 && day == 29) || (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0));
}

/* YYYYMMDD or YYYY-MM-DD -> 8 digits, a real date. */
static bool parse_date(const char *s, char out[9])
{
    size_t j = 0;
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '-' && (j == 4 || j == 6))
            continue;
        if (s[i] < '0' || s[i] > '9' || j >= 8)
            return false;
        out[j++] = s[i];
    }
    out[j] = '\0';
    return j == 8 && valid_date(out);
}

static int parse_cidr(const char *s, mt__route_cidr_t *out)
{
    char buf[64];
    if (strlen(s) >= sizeof buf)
        return -1;
    strcpy(buf, s);
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = '\0';
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        out->prefix = 32;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        out->prefix = 128;
    } else {
        return -1;
    }
    if (slash) {
        char *end;
        long p = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || p < 0 || p > (long)out->prefix)
            return -1;
        out->prefix = (unsigned)p;
    }
    return 0;
}

static void op_dispose(mt__route_op_t *op)
{
    free_list(op->vals, op->n_vals);
    mt_free(op->nums);
    if (op->has_re)
        regfree(&op->re);
    mt_free(op->cidrs);
}

static mt__route_op_t *add_op(mt__route_cond_t *cd, enum mt__route_opkind k)
{
    cd->ops = mt_realloc(cd->ops, (cd->n_ops + 1) * sizeof *cd->ops);
    mt__route_op_t *op = &cd->ops[cd->n_ops++];
    memset(op, 0, sizeof *op);
    op->kind = k;
    return op;
}

/* range: [lo, hi] with ~ for an open end; date_range the same with dates. */
static int parse_range(cc_t *c, const yaml_node_t *v, const char *what, mt__route_op_t *op)
{
    if (v->type != YAML_SEQUENCE_NODE ||
        v->data.sequence.items.top - v->data.sequence.items.start != 2)
        return cfail(c, v, "%s: expected [low, high] (~ for an open end)", what);
    for (int i = 0; i < 2; i++) {
        yaml_node_t *e = node(c, v->data.sequence.items.start[i]);
        if (!e || e->type != YAML_SCALAR_NODE)
            return cfail(c, v, "%s: bounds must be plain values", what);
        if (is_null(e))
            continue;
        if (op->kind == MT__RO_RANGE) {
            double x;
            if (!parse_number(scalar(e), &x))
                return cfail(c, e, "%s: \"%.40s\" is not a number", what, scalar(e));
            if (i == 0) {
                op->lo = x;
                op->has_lo = true;
            } else {
                op->hi = x;
                op->has_hi = true;
            }
        } else if (!parse_date(scalar(e), i == 0 ? op->dlo : op->dhi)) {
            return cfail(c, e, "%s: \"%.40s\" is not a date (YYYYMMDD or YYYY-MM-DD)", what,
                         scalar(e));
        }
    }
    if (op->kind == MT__RO_RANGE && op->has_lo && op->has_hi && op->lo > op->hi)
        return cfail(c, v, "%s: low bound above high bound", what);
    if (op->kind == MT__RO_DATE_RANGE && op->dlo[0] && op->dhi[0] && strcmp(op->dlo, op->dhi) > 0)
        return cfail(c, v, "%s: first date after the second", what);
    return 0;
}

static int compile_regex(cc_t *c, const yaml_node_t *v, const char *what, mt__route_op_t *op)
{
    if (!safe_text(v))
        return cfail(c, v, "%s: regex: expected a pattern", what);
    int rc = regcomp(&op->re, scalar(v), REG_EXTENDED | REG_NOSUB);
    if (rc) {
        char msg[128];
        regerror(rc, &op->re, msg, sizeof msg);
        return cfail(c, v, "%s: bad regex \"%.60s\": %s", what, scalar(v), msg);
    }
    op->has_re = true;
    return 0;
}

static int add_cidrs(cc_t *c, const yaml_node_t *v, mt__route_op_t *op)
{
    char **vals;
    size_t n;
    int rc = string_list(c, v, "peer", 256, &vals, &n);
    if (rc)
        return rc;
    op->cidrs = mt_calloc(n ? n : 1, sizeof *op->cidrs);
    for (size_t i = 0; i < n; i++) {
        if (parse_cidr(vals[i], &op->cidrs[i])) {
            rc =
                cfail(c, v, "peer: \"%.60s\" is not an address or CIDR (10.0.0.0/8, ::1)", vals[i]);
            break;
        }
        op->n_cidrs++;
    }
    free_list(vals, n);
    return rc;
}

/* The VRs whose values are numbers: an equals / one_of on them compares numerically, so
 * SliceThickness: 5 matches "5.000000" and "5" (DS), "05" (IS) and 5 (US). */
static bool numeric_vr(uint16_t vr)
{
    return vr == MT_VR('D', 'S') || vr == MT_VR('I', 'S') || vr == MT_VR('U', 'S') ||
           vr == MT_VR('S', 'S') || vr == MT_VR('U', 'L') || vr == MT_VR('S', 'L') ||
           vr == MT_VR('F', 'L') || vr == MT_VR('F', 'D');
}

/* equals / one_of on an attribute whose dictionary VR is numeric: the values as numbers (a
 * value that is no number could never match: an error). */
static int numeric_values(cc_t *c, const yaml_node_t *v, const char *what, mt__route_cond_t *cd)
{
    const mt_dict_entry_t *de = mt_dict_by_tag(cd->tag);
    if (!de || !numeric_vr(de->vr))
        return 0;
    for (size_t i = 0; i < cd->n_ops; i++) {
        mt__route_op_t *op = &cd->ops[i];
        if (op->kind != MT__RO_EQUALS && op->kind != MT__RO_ONE_OF)
            continue;
        op->nums = mt_malloc((op->n_vals ? op->n_vals : 1) * sizeof *op->nums);
        for (size_t k = 0; k < op->n_vals; k++)
            if (!parse_number(op->vals[k], &op->nums[k]))
                return cfail(c, v, "%s: \"%.64s\" is not a number (a %c%c attribute is "
                             "compared as a number)", what, op->vals[k], de->vr >> 8,
                             de->vr & 0xFF);
    }
    return 0;
}

/* One condition's value: scalar (equals), list (one_of), or a mapping of operators. */
static int compile_cond(cc_t *c, const char *what, const yaml_node_t *v, mt__route_cond_t *cd)
{
    bool peer = cd->subject == MT__RS_PEER;
    if (v->type == YAML_SCALAR_NODE || v->type == YAML_SEQUENCE_NODE) {
        if (peer)
            return add_cidrs(c, v, add_op(cd, MT__RO_CIDR));
        if (is_null(v))
            return cfail(c, v, "%s: expected a value, a list, or {operator: ...}", what);
        mt__route_op_t *op =
            add_op(cd, v->type == YAML_SCALAR_NODE ? MT__RO_EQUALS : MT__RO_ONE_OF);
        return string_list(c, v, what, 4096, &op->vals, &op->n_vals);
    }
    if (v->type != YAML_MAPPING_NODE)
        return cfail(c, v, "%s: expected a value, a list, or {operator: ...}", what);
    if (v->data.mapping.pairs.top == v->data.mapping.pairs.start)
        return cfail(c, v, "%s: no operator", what);
    for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = node(c, pr->key), *val = node(c, pr->value);
        const char *ks = scalar(k);
        if (!ks || !val)
            return cfail(c, k ? k : v, "%s: operators must be plain words", what);
        static const struct {
            const char *name;
            enum mt__route_opkind kind;
        } ops[] = {{"equals", MT__RO_EQUALS},   {"one_of", MT__RO_ONE_OF},
                   {"glob", MT__RO_GLOB},       {"regex", MT__RO_REGEX},
                   {"range", MT__RO_RANGE},     {"date_range", MT__RO_DATE_RANGE},
                   {"present", MT__RO_PRESENT}, {"absent", MT__RO_ABSENT}};
        int kind = -1;
        for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
            if (!strcmp(ks, ops[i].name))
                kind = (int)ops[i].kind;
        if (kind < 0)
            return cfail(c, k,
                         "%s: unknown operator \"%.40s\" (equals, one_of, glob, regex, range, "
                         "date_range, present, absent)",
                         what, ks);
        if (peer && kind != MT__RO_EQUALS && kind != MT__RO_ONE_OF)
            return cfail(c, k, "peer: only addresses/CIDRs (a value or a list)");
        if (peer) {
            int rc = add_cidrs(c, val, add_op(cd, MT__RO_CIDR));
            if (rc)
                return rc;
            continue;
        }
        mt__route_op_t *op = add_op(cd, (enum mt__route_opkind)kind);
        int rc = 0;
        bool b;
        switch (op->kind) {
        case MT__RO_EQUALS:
        case MT__RO_GLOB:
            if (val->type != YAML_SCALAR_NODE || is_null(val))
                return cfail(c, val, "%s: %s: expected a value", what, ks);
            rc = string_list(c, val, what, 1, &op->vals, &op->n_vals);
            break;
        case MT__RO_ONE_OF:
            if (val->type != YAML_SEQUENCE_NODE)
                return cfail(c, val, "%s: one_of: expected a list", what);
            rc = string_list(c, val, what, 4096, &op->vals, &op->n_vals);
            break;
        case MT__RO_REGEX:
            rc = compile_regex(c, val, what, op);
            break;
        case MT__RO_RANGE:
        case MT__RO_DATE_RANGE:
            rc = parse_range(c, val, what, op);
            break;
        case MT__RO_PRESENT:
        case MT__RO_ABSENT:
            rc = parse_bool(c, val, ks, &b);
            if (!rc && !b) /* present: false == absent: true */
                op->kind = op->kind == MT__RO_PRESENT ? MT__RO_ABSENT : MT__RO_PRESENT;
            break;
        case MT__RO_CIDR:
            break;
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* cmr_series: equals / one_of values name a tag of the vocabulary (node/tag, spec section 2)
 * or a family ("lge" = every lge.* tag); the family part must be known. */
static int check_cmr_values(cc_t *c, const yaml_node_t *v, const mt__route_cond_t *cd)
{
    for (size_t i = 0; i < cd->n_ops; i++) {
        const mt__route_op_t *op = &cd->ops[i];
        if (op->kind != MT__RO_EQUALS && op->kind != MT__RO_ONE_OF)
            continue;
        for (size_t j = 0; j < op->n_vals; j++) {
            const char *val = op->vals[j];
            size_t n = strcspn(val, ".");
            bool known = false;
            for (int f = 0; f < MT_FAM_COUNT && !known; f++) {
                const char *fam = mt_tag_family_name(f);
                known = strlen(fam) == n && !strncmp(fam, val, n);
            }
            if (!known)
                return cfail(c, v,
                             "cmr_series: \"%.40s\" is not a CMR tag or family (cine, lge, "
                             "perfusion, t1map, t2map, t2star, flow, ... docs/tagging.md)",
                             val);
        }
    }
    return 0;
}

static void note_tag(cc_t *c, uint32_t tag)
{
    for (size_t i = 0; i < c->n_tags; i++)
        if (c->tags[i] == tag)
            return;
    c->tags = mt_realloc(c->tags, (c->n_tags + 1) * sizeof *c->tags);
    c->tags[c->n_tags++] = tag;
}

static int compile_match(cc_t *c, const yaml_node_t *m, mt_route_rule_t *r)
{
    if (is_null(m))
        return 0;
    if (m->type != YAML_MAPPING_NODE)
        return cfail(c, m, "match: expected a mapping of conditions (Modality: MR, ...)");
    size_t cnt = (size_t)(m->data.mapping.pairs.top - m->data.mapping.pairs.start);
    r->conds = mt_calloc(cnt ? cnt : 1, sizeof *r->conds);
    for (yaml_node_pair_t *pr = m->data.mapping.pairs.start; pr < m->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = node(c, pr->key), *v = node(c, pr->value);
        const char *ks = scalar(k);
        if (!ks || !v || !safe_text(k))
            return cfail(c, k ? k : m, "match: keys must be plain words");
        mt__route_cond_t *cd = &r->conds[r->n_conds++];
        if (!strcmp(ks, "calling_ae"))
            cd->subject = MT__RS_CALLING_AE;
        else if (!strcmp(ks, "called_ae"))
            cd->subject = MT__RS_CALLED_AE;
        else if (!strcmp(ks, "peer"))
            cd->subject = MT__RS_PEER;
        else if (!strcmp(ks, "user"))
            cd->subject = MT__RS_USER;
        else if (!strcmp(ks, "cmr_series")) {
            cd->subject = MT__RS_CMR_SERIES;
            r->after_tag = true;
        } else {
            cd->subject = MT__RS_ATTR;
            const mt_dict_entry_t *de = mt_dict_by_keyword(ks);
            if (de)
                cd->tag = de->tag;
            else if (!parse_tag(ks, &cd->tag))
                return cfail(c, k,
                             "match: unknown keyword \"%.64s\" (not calling_ae, called_ae, peer, "
                             "user, cmr_series, a dictionary keyword, or a tag (gggg,eeee))",
                             ks);
            if (MT_TAG_GROUP(cd->tag) == 0x0002 || MT_TAG_GROUP(cd->tag) == 0xFFFE ||
                cd->tag >= MT_TAG_PIXEL_DATA)
                return cfail(c, k,
                             "match: %.64s: only data set attributes before Pixel Data "
                             "can be matched",
                             ks);
            note_tag(c, cd->tag);
        }
        int rc = compile_cond(c, ks, v, cd);
        if (!rc && cd->subject == MT__RS_CMR_SERIES)
            rc = check_cmr_values(c, v, cd);
        if (!rc && cd->subject == MT__RS_ATTR)
            rc = numeric_values(c, v, ks, cd);
        if (rc)
            return rc;
    }
    return 0;
}

static void rule_dispose(mt_route_rule_t *r)
{
    mt_free(r->name);
    for (size_t i = 0; i < r->n_conds; i++) {
        for (size_t j = 0; j < r->conds[i].n_ops; j++)
            op_dispose(&r->conds[i].ops[j]);
        mt_free(r->conds[i].ops);
    }
    mt_free(r->conds);
    free_list(r->projects, r->n_projects);
    free_list(r->forward, r->n_forward);
    mt_free(r->deid);
    mt_free(r->reject);
    mt_free(r->where);
    memset(r, 0, sizeof *r);
}

static int check_names(cc_t *c, const yaml_node_t *at, const char *what, char **names, size_t n,
                       int (*fn)(void *, const char *, char *, size_t))
{
    char why[160];
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i; j++)
            if (!strcmp(names[i], names[j]))
                return cfail(c, at, "%s: %.64s named twice", what, names[i]);
        why[0] = '\0';
        if (fn && fn(c->check->user, names[i], why, sizeof why))
            return cfail(c, at, "%s: unknown %s \"%.64s\"%s%s", what,
                         what[0] == 'f' ? "destination" : "project", names[i], *why ? ": " : "",
                         why);
    }
    return 0;
}

/* A rule mapping (is_default: only actions). */
static int compile_rule(cc_t *c, const yaml_node_t *n, mt_route_rule_t *r, bool is_default)
{
    if (n->type != YAML_MAPPING_NODE)
        return cfail(c, n,
                     is_default ? "default: expected a mapping of actions"
                                : "rules: each rule is a mapping (match:, actions)");
    bool seen_stop = false, seen_cont = false, has_match = false;
    const yaml_node_t *deid_at = NULL, *reject_at = NULL; /* for the after-tag check */
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = node(c, pr->key), *v = node(c, pr->value);
        const char *ks = scalar(k);
        if (!ks || !v)
            return cfail(c, k ? k : n, "rule keys must be plain words");
        int rc = 0;
        if (!strcmp(ks, "name") && !is_default) {
            if (!safe_text(v) || is_null(v) || v->data.scalar.length > 64 || r->name)
                return cfail(c, v, "name: expected a short name (1-64 characters), once");
            r->name = mt_strdup(scalar(v));
        } else if (!strcmp(ks, "match") && !is_default) {
            if (has_match)
                return cfail(c, k, "duplicate key match");
            has_match = true;
            rc = compile_match(c, v, r);
        } else if (!strcmp(ks, "projects")) {
            if (r->projects)
                return cfail(c, k, "duplicate key projects");
            rc = string_list(c, v, "projects", MT_ROUTE_MAX_TARGETS, &r->projects, &r->n_projects);
            if (!rc)
                rc = check_names(c, v, "projects", r->projects, r->n_projects,
                                 c->check ? c->check->project : NULL);
        } else if (!strcmp(ks, "forward")) {
            if (r->forward)
                return cfail(c, k, "duplicate key forward");
            rc = string_list(c, v, "forward", MT_ROUTE_MAX_TARGETS, &r->forward, &r->n_forward);
            if (!rc)
                rc = check_names(c, v, "forward", r->forward, r->n_forward,
                                 c->check ? c->check->destination : NULL);
        } else if (!strcmp(ks, "deid")) {
            if (r->deid || !safe_text(v) || is_null(v))
                return cfail(c, v, "deid: expected a profile name (or none), once");
            r->deid = mt_strdup(scalar(v));
            deid_at = k;
            if (r->after_tag) /* before the profile is looked up: this error is the real one */
                break;
            char why[160] = "";
            if (strcmp(r->deid, "none") != 0 && c->check && c->check->profile &&
                c->check->profile(c->check->user, c->set, r->deid, why, sizeof why))
                return cfail(c, v, "deid: profile \"%.64s\": %s", r->deid,
                             *why ? why : "unknown profile");
        } else if (!strcmp(ks, "reject")) {
            if (r->reject || !safe_text(v) || is_null(v) || v->data.scalar.length > 64)
                return cfail(c, v, "reject: expected a reason (1-64 characters), once");
            /* PS3.7 C.4: Error Comment (0000,0902) is LO in a command set, which has no
             * Specific Character Set: the default repertoire, and no '\' (a delimiter) */
            for (const char *ch = scalar(v); *ch; ch++)
                if ((unsigned char)*ch >= 0x80 || *ch == '\\')
                    return cfail(c, v,
                                 "reject: the reason is the C-STORE Error Comment: ASCII "
                                 "characters only, no backslash");
            r->reject = mt_strdup(scalar(v));
            reject_at = k;
        } else if (!strcmp(ks, "continue") && !is_default) {
            if (seen_cont)
                return cfail(c, k, "duplicate key continue");
            seen_cont = true;
            bool b;
            rc = parse_bool(c, v, "continue", &b);
            if (!rc && b)
                r->cont = true;
        } else if (!strcmp(ks, "stop") && !is_default) {
            if (seen_stop)
                return cfail(c, k, "duplicate key stop");
            seen_stop = true;
            bool b;
            rc = parse_bool(c, v, "stop", &b);
            if (!rc && !b)
                r->cont = true;
        } else {
            return cfail(c, k,
                         is_default ? "default: unknown key \"%.40s\" (projects, deid, forward, "
                                      "reject)"
                                    : "unknown key \"%.40s\" in rule (name, match, projects, "
                                      "deid, forward, reject, continue, stop)",
                         ks);
        }
        if (rc)
            return rc;
    }
    if (seen_stop && seen_cont)
        return cfail(c, n, "a rule has stop or continue, not both");
    if (r->reject && r->cont)
        return cfail(c, n, "reject ends evaluation: continue makes no sense with it");
    if (r->reject && (r->n_projects || r->n_forward || r->deid))
        return cfail(c, n, "reject cannot be combined with projects, deid or forward");
    /* cmr_series is known only once the series is tagged, long after its instances were
     * stored (and de-identified): such a rule can still forward them, nothing else */
    if (r->after_tag && (deid_at || reject_at))
        return cfail(c, deid_at ? deid_at : reject_at,
                     "%s: a rule matching cmr_series applies after tagging, to instances already "
                     "stored: it may only forward and add projects",
                     deid_at ? "deid" : "reject");
    char at[128];
    snprintf(at, sizeof at, "%s:%zu", c->name, n->start_mark.line + 1);
    r->where = mt_strdup(at);
    if (!r->name) {
        char nm[128];
        snprintf(nm, sizeof nm, "%s%s:%zu", is_default ? "default@" : "", c->name,
                 n->start_mark.line + 1);
        r->name = mt_strdup(nm);
    }
    return 0;
}

mt_route_set_t *mt_route_set_new(void)
{
    return mt_calloc(1, sizeof(mt_route_set_t));
}

void mt_route_set_free(mt_route_set_t *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n_rules; i++)
        rule_dispose(&set->rules[i]);
    mt_free(set->rules);
    rule_dispose(&set->def);
    mt_free(set->tags);
    for (size_t i = 0; i < set->n_profiles; i++) {
        mt_free(set->profiles[i].name);
        mt_deid_profile_free(set->profiles[i].p);
    }
    mt_free(set->profiles);
    mt_free(set);
}

size_t mt_route_set_count(const mt_route_set_t *set)
{
    return set ? set->n_rules : 0;
}

void mt_route_set_adopt_profile(mt_route_set_t *set, const char *name, mt_deid_profile_t *p)
{
    if (mt_route_set_profile(set, name)) {
        mt_deid_profile_free(p);
        return;
    }
    set->profiles = mt_realloc(set->profiles, (set->n_profiles + 1) * sizeof *set->profiles);
    set->profiles[set->n_profiles].name = mt_strdup(name);
    set->profiles[set->n_profiles].p = p;
    set->n_profiles++;
}

const mt_deid_profile_t *mt_route_set_profile(const mt_route_set_t *set, const char *name)
{
    for (size_t i = 0; set && i < set->n_profiles; i++)
        if (!strcmp(set->profiles[i].name, name))
            return set->profiles[i].p;
    return NULL;
}

static int cmp_tag(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static bool says_none(const mt_route_rule_t *r)
{
    return r->deid && strcmp(r->deid, "none") == 0;
}

bool mt_route_set_always_deid(const mt_route_set_t *set, bool node_deid)
{
    if (!node_deid || !set)
        return node_deid;
    if (set->has_default && says_none(&set->def))
        return false;
    for (size_t i = 0; i < set->n_rules; i++)
        if (says_none(&set->rules[i]))
            return false;
    return true;
}

bool mt_route_set_wants(const mt_route_set_t *set, uint32_t tag)
{
    return set && set->n_tags && bsearch(&tag, set->tags, set->n_tags, sizeof tag, cmp_tag) != NULL;
}

/* An after-tag rule is armed by name in the index (db/007): its name must be unique among the
 * after-tag rules of the whole set. */
static int check_after_tag_name(cc_t *c, const yaml_node_t *at, const mt_route_rule_t *rules,
                                size_t i)
{
    const mt_route_rule_t *r = &rules[i];
    if (!r->after_tag)
        return 0;
    for (int pass = 0; pass < 2; pass++) {
        const mt_route_rule_t *v = pass ? c->set->rules : rules;
        size_t n = pass ? c->set->n_rules : i;
        for (size_t j = 0; j < n; j++)
            if (v[j].after_tag && !strcmp(v[j].name, r->name))
                return cfail(c, at,
                             "name: \"%.64s\" is already the name of the cmr_series rule "
                             "at %s (these rules need unique names)",
                             r->name, v[j].where);
    }
    return 0;
}

size_t mt_route_set_after_tag(const mt_route_set_t *set, const char **where)
{
    size_t n = 0;
    for (size_t i = 0; set && i < set->n_rules; i++)
        if (set->rules[i].after_tag && n++ == 0 && where)
            *where = set->rules[i].where;
    return n;
}

static int compile_doc(cc_t *c, mt_route_rule_t **rules, size_t *n_rules, mt_route_rule_t *def,
                       bool *has_def)
{
    yaml_node_t *root = yaml_document_get_root_node(c->doc);
    if (!root)
        return 0; /* empty file: no rules */
    if (root->type != YAML_MAPPING_NODE)
        return cfail(c, root, "the top level must be a mapping (rules:, default:)");
    bool seen_rules = false;
    for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *k = node(c, pr->key), *v = node(c, pr->value);
        const char *ks = scalar(k);
        if (ks && !strcmp(ks, "rules") && v) {
            if (seen_rules)
                return cfail(c, k, "duplicate key rules");
            seen_rules = true;
            if (is_null(v))
                continue;
            if (v->type != YAML_SEQUENCE_NODE)
                return cfail(c, v, "rules: expected a list of rules (- match: ...)");
            size_t cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
            if (cnt > MT_ROUTE_MAX_RULES)
                return cfail(c, v, "rules: more than %d rules", MT_ROUTE_MAX_RULES);
            *rules = mt_calloc(cnt ? cnt : 1, sizeof **rules);
            for (size_t i = 0; i < cnt; i++) {
                yaml_node_t *rn = node(c, v->data.sequence.items.start[i]);
                if (!rn)
                    return cfail(c, v, "rules: bad entry");
                int rc = compile_rule(c, rn, &(*rules)[(*n_rules)++], false);
                if (!rc)
                    rc = check_after_tag_name(c, rn, *rules, *n_rules - 1);
                if (rc)
                    return rc;
            }
        } else if (ks && !strcmp(ks, "default") && v) {
            if (*has_def || c->set->has_default)
                return cfail(c, k, "default: only one default rule (across all rules files)");
            *has_def = true;
            int rc = compile_rule(c, v, def, true);
            if (rc)
                return rc;
        } else {
            return cfail(c, k ? k : root, "unknown top-level key \"%.40s\" (rules, default)",
                         ks ? ks : "?");
        }
    }
    return 0;
}

int mt_route_set_add(mt_route_set_t *set, const char *yaml, size_t len, const char *name,
                     const mt_route_check_t *check, char *err, size_t errsz)
{
    cc_t c = {
        .name = name ? name : "<string>", .err = err, .errsz = errsz, .check = check, .set = set};
    if (err && errsz)
        err[0] = '\0';
    if (len > MT_ROUTE_MAX_FILE)
        return cfail(&c, NULL, "larger than %u bytes", MT_ROUTE_MAX_FILE);
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return cfail(&c, NULL, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, &doc)) {
        size_t line = parser.problem_mark.line + 1;
        int w = snprintf(err, errsz, "%s:%zu: YAML syntax error: %s", c.name, line,
                         parser.problem ? parser.problem : "cannot parse");
        (void)w;
        yaml_parser_delete(&parser);
        return MT_ECONF;
    }
    yaml_parser_delete(&parser);
    c.doc = &doc;
    mt_route_rule_t *rules = NULL, def;
    memset(&def, 0, sizeof def);
    size_t n_rules = 0;
    bool has_def = false;
    int rc = compile_doc(&c, &rules, &n_rules, &def, &has_def);
    yaml_document_delete(&doc);
    if (rc) {
        for (size_t i = 0; i < n_rules; i++)
            rule_dispose(&rules[i]);
        mt_free(rules);
        rule_dispose(&def);
        mt_free(c.tags);
        return rc;
    }
    if (set->n_rules + n_rules > MT_ROUTE_MAX_RULES) {
        for (size_t i = 0; i < n_rules; i++)
            rule_dispose(&rules[i]);
        mt_free(rules);
        rule_dispose(&def);
        mt_free(c.tags);
        return cfail(&c, NULL, "more than %d rules in all", MT_ROUTE_MAX_RULES);
    }
    set->rules = mt_realloc(set->rules, (set->n_rules + n_rules + 1) * sizeof *set->rules);
    memcpy(set->rules + set->n_rules, rules, n_rules * sizeof *rules);
    set->n_rules += n_rules;
    mt_free(rules);
    if (has_def) {
        set->def = def;
        set->has_default = true;
    }
    for (size_t i = 0; i < c.n_tags; i++)
        if (!mt_route_set_wants(set, c.tags[i])) {
            set->tags = mt_realloc(set->tags, (set->n_tags + 1) * sizeof *set->tags);
            set->tags[set->n_tags++] = c.tags[i];
            qsort(set->tags, set->n_tags, sizeof *set->tags, cmp_tag);
        }
    mt_free(c.tags);
    return 0;
}
