/*
 * profile.c - compile deid-profiles/NAME.yaml into an mt_deid_profile_t (see profile.h for the
 * format and the order in which base, options and overrides apply). PURE: the YAML text comes
 * from the caller's resolver.
 *
 * libyaml's events are first built into a small node tree (scalar / sequence / mapping, each
 * with its line), then the tree is walked key by key. Unknown keys, unknown actions, bad tags
 * and unknown options are errors, reported as "file:line: message" (STYLE §8).
 *
 * Rules are collected in one growable array keyed by (tag, mask); setting a rule twice replaces
 * it, which is how options and overrides take effect. mt_deid_profile_load then splits the array
 * into the sorted exact table and the short masked list.
 */
#include "profile.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "../dicom/dict.h"
#include "../util/alloc.h"
#include "../util/err.h"

#define MAX_BASE_DEPTH 4
#define MAX_YAML_DEPTH 16

static const char *const action_names[MT_DEID_ACTION_COUNT] = {
    [MT_DEID_DEFAULT] = "default",
    [MT_DEID_D] = "D",
    [MT_DEID_Z] = "Z",
    [MT_DEID_X] = "X",
    [MT_DEID_K] = "K",
    [MT_DEID_C] = "C",
    [MT_DEID_U] = "U",
    [MT_DEID_ZD] = "Z/D",
    [MT_DEID_XZ] = "X/Z",
    [MT_DEID_XD] = "X/D",
    [MT_DEID_XZD] = "X/Z/D",
    [MT_DEID_XZU] = "X/Z/U*",
};

static const char *const option_names[MT_DEID_OPT_COUNT] = {
    [MT_DEID_OPT_RETAIN_SAFE_PRIVATE] = "retain-safe-private",
    [MT_DEID_OPT_RETAIN_UIDS] = "retain-uids",
    [MT_DEID_OPT_RETAIN_DEVICE_IDENTITY] = "retain-device-identity",
    [MT_DEID_OPT_RETAIN_INSTITUTION_IDENTITY] = "retain-institution-identity",
    [MT_DEID_OPT_RETAIN_PATIENT_CHARACTERISTICS] = "retain-patient-characteristics",
    [MT_DEID_OPT_RETAIN_LONG_FULL_DATES] = "retain-long-full-dates",
    [MT_DEID_OPT_RETAIN_LONG_MODIFIED_DATES] = "retain-long-modified-dates",
    [MT_DEID_OPT_CLEAN_DESCRIPTORS] = "clean-descriptors",
    [MT_DEID_OPT_CLEAN_STRUCTURED_CONTENT] = "clean-structured-content",
    [MT_DEID_OPT_CLEAN_GRAPHICS] = "clean-graphics",
};

const char *mt_deid_action_name(mt_deid_action_t a)
{
    return (unsigned)a < MT_DEID_ACTION_COUNT ? action_names[a] : "?";
}

const char *mt_deid_option_name(mt_deid_option_t o)
{
    return (unsigned)o < MT_DEID_OPT_COUNT ? option_names[o] : "?";
}

/* ---- YAML node tree ---- */
enum { N_SCALAR, N_SEQ, N_MAP };
typedef struct ynode {
    int type;
    unsigned line;       /* 1-based */
    char *str;           /* N_SCALAR */
    struct ynode **kids; /* N_SEQ: items; N_MAP: key, value, key, value ... */
    size_t n;
} ynode_t;

static void ynode_free(ynode_t *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++)
        ynode_free(n->kids[i]);
    mt_free(n->kids);
    mt_free(n->str);
    mt_free(n);
}

typedef struct ctx {
    const char *file;
    char *err;
    size_t errsz;
} ctx_t;

static int fail(ctx_t *c, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(ctx_t *c, unsigned line, const char *fmt, ...)
{
    if (c->err && c->errsz) {
        int k = snprintf(c->err, c->errsz, "%s:%u: ", c->file, line);
        if (k >= 0 && (size_t)k < c->errsz) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(c->err + k, c->errsz - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return MT_ECONF;
}

static void kid_add(ynode_t *p, ynode_t *k)
{
    p->kids = mt_realloc(p->kids, (p->n + 1) * sizeof(*p->kids));
    p->kids[p->n++] = k;
}

/* Build the node for the event just read (and, for collections, everything inside it). */
static int build(ctx_t *c, yaml_parser_t *ps, yaml_event_t *ev, unsigned depth, ynode_t **out)
{
    *out = NULL;
    if (depth > MAX_YAML_DEPTH)
        return fail(c, (unsigned)ev->start_mark.line + 1, "nesting too deep");
    ynode_t *n = mt_calloc(1, sizeof(*n));
    n->line = (unsigned)ev->start_mark.line + 1;
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        n->type = N_SCALAR;
        n->str = mt_strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
        *out = n;
        return 0;
    case YAML_ALIAS_EVENT:
        ynode_free(n);
        return fail(c, (unsigned)ev->start_mark.line + 1, "aliases are not allowed");
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        n->type = ev->type == YAML_SEQUENCE_START_EVENT ? N_SEQ : N_MAP;
        yaml_event_type_t end = n->type == N_SEQ ? YAML_SEQUENCE_END_EVENT : YAML_MAPPING_END_EVENT;
        for (;;) {
            yaml_event_t e;
            if (!yaml_parser_parse(ps, &e)) {
                ynode_free(n);
                return fail(c, (unsigned)ps->problem_mark.line + 1, "YAML: %s",
                            ps->problem ? ps->problem : "syntax error");
            }
            if (e.type == end) {
                yaml_event_delete(&e);
                break;
            }
            ynode_t *k;
            int rc = build(c, ps, &e, depth + 1, &k);
            yaml_event_delete(&e);
            if (rc) {
                ynode_free(n);
                return rc;
            }
            kid_add(n, k);
        }
        *out = n;
        return 0;
    }
    default:
        ynode_free(n);
        return fail(c, (unsigned)ev->start_mark.line + 1, "unexpected YAML event");
    }
}

static int parse_yaml(ctx_t *c, const char *text, size_t len, ynode_t **root)
{
    yaml_parser_t ps;
    *root = NULL;
    if (!yaml_parser_initialize(&ps))
        return MT_ENOMEM;
    yaml_parser_set_input_string(&ps, (const unsigned char *)text, len);
    int rc = 0;
    for (;;) {
        yaml_event_t e;
        if (!yaml_parser_parse(&ps, &e)) {
            rc = fail(c, (unsigned)ps.problem_mark.line + 1, "YAML: %s",
                      ps.problem ? ps.problem : "syntax error");
            break;
        }
        yaml_event_type_t t = e.type;
        if (t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT ||
            t == YAML_SCALAR_EVENT || t == YAML_ALIAS_EVENT) {
            if (*root) {
                yaml_event_delete(&e);
                rc = fail(c, (unsigned)e.start_mark.line + 1, "more than one document");
                break;
            }
            rc = build(c, &ps, &e, 0, root);
        }
        yaml_event_delete(&e);
        if (rc || t == YAML_STREAM_END_EVENT)
            break;
    }
    yaml_parser_delete(&ps);
    if (!rc && (!*root || (*root)->type != N_MAP))
        rc = fail(c, *root ? (*root)->line : 1, "a profile must be a YAML mapping");
    if (rc) {
        ynode_free(*root);
        *root = NULL;
    }
    return rc;
}

/* ---- rule set under construction ---- */
/* Rules in the order they were first set (masked rows are tried in that order), with an
 * open-addressing index (tag, mask) -> position + 1, so that setting the ~3000 rows of the
 * table and the keep list stays linear (a scan per row made loading a profile quadratic). */
typedef struct rules {
    mt_deid_rule_t *r;
    size_t n, cap;
    uint32_t *idx; /* idx_cap slots, 0 = empty */
    size_t idx_cap;
} rules_t;

static size_t rules_slot(const rules_t *rs, uint32_t tag, uint32_t mask)
{
    size_t h = (size_t)((tag * 0x9E3779B1u) ^ (mask * 0x85EBCA77u)) & (rs->idx_cap - 1);
    while (rs->idx[h]) {
        const mt_deid_rule_t *r = &rs->r[rs->idx[h] - 1];
        if (r->tag == tag && r->mask == mask)
            break;
        h = (h + 1) & (rs->idx_cap - 1);
    }
    return h;
}

static void rules_reindex(rules_t *rs)
{
    mt_free(rs->idx);
    rs->idx_cap = rs->idx_cap ? rs->idx_cap * 2 : 512;
    rs->idx = mt_calloc(rs->idx_cap, sizeof(*rs->idx));
    for (size_t i = 0; i < rs->n; i++)
        rs->idx[rules_slot(rs, rs->r[i].tag, rs->r[i].mask)] = (uint32_t)(i + 1);
}

static const mt_deid_rule_t *rules_find(const rules_t *rs, uint32_t tag, uint32_t mask)
{
    if (!rs->idx_cap)
        return NULL;
    size_t h = rules_slot(rs, tag, mask);
    return rs->idx[h] ? &rs->r[rs->idx[h] - 1] : NULL;
}

static void rules_set(rules_t *rs, uint32_t tag, uint32_t mask, uint8_t action)
{
    if ((rs->n + 1) * 2 > rs->idx_cap)
        rules_reindex(rs);
    size_t h = rules_slot(rs, tag, mask);
    if (rs->idx[h]) {
        rs->r[rs->idx[h] - 1].action = action;
        return;
    }
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 256;
        rs->r = mt_realloc(rs->r, rs->cap * sizeof(*rs->r));
    }
    rs->r[rs->n++] = (mt_deid_rule_t){tag, mask, action};
    rs->idx[h] = (uint32_t)rs->n;
}

static void rules_dispose(rules_t *rs)
{
    mt_free(rs->r);
    mt_free(rs->idx);
    memset(rs, 0, sizeof(*rs));
}

/* A special pseudo-tag for the "private" row. */
#define TAG_PRIVATE 0xFFFFFFFEu

/* One option of the catalogue: its rules and (for retain-safe-private) the safe list. */
typedef struct option_def {
    bool defined;
    mt_deid_code_t code;
    rules_t rules;
} option_def_t;

typedef struct build_state {
    rules_t rules;
    option_def_t opts[MT_DEID_OPT_COUNT];
    mt_deid_safe_private_t *safe;
    size_t n_safe;
    mt_deid_profile_t *p;
    bool have_profile_code;
    char *keep_name; /* keep-list: the last one along the base chain; NULL: none */
    char *keep_from; /* the file and line that named it, for errors */
    unsigned keep_line;
} build_state_t;

static int parse_action(const char *s, uint8_t *out)
{
    for (int i = 1; i < MT_DEID_ACTION_COUNT; i++) {
        if (strcmp(s, action_names[i]) == 0) {
            *out = (uint8_t)i;
            return 0;
        }
    }
    if (strcmp(s, "X/Z/U") == 0) {
        *out = MT_DEID_XZU;
        return 0;
    }
    return -1;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* "(gggg,eeee)" with x wildcards, "gggg,eeee", "ggggeeee", a dictionary keyword, or "private". */
static int parse_tag(const char *s, uint32_t *tag, uint32_t *mask)
{
    if (strcmp(s, "private") == 0) {
        *tag = TAG_PRIVATE;
        *mask = 0xFFFFFFFFu;
        return 0;
    }
    char hex[9];
    size_t nh = 0;
    const char *q = s;
    if (*q == '(' || (hexval(*q) >= 0 || *q == 'x' || *q == 'X')) {
        bool paren = *q == '(';
        if (paren)
            q++;
        for (; *q && nh < 8; q++) {
            if (*q == ',' && nh == 4)
                continue;
            if (hexval(*q) < 0 && *q != 'x' && *q != 'X')
                break;
            hex[nh++] = *q;
        }
        if (paren && *q == ')')
            q++;
        if (nh == 8 && *q == '\0') {
            uint32_t t = 0, m = 0;
            for (size_t i = 0; i < 8; i++) {
                int v = hexval(hex[i]);
                t <<= 4;
                m <<= 4;
                if (v >= 0 && !(hex[i] == 'x' || hex[i] == 'X')) {
                    t |= (uint32_t)v;
                    m |= 0xF;
                }
            }
            *tag = t;
            *mask = m;
            return 0;
        }
    }
    const mt_dict_entry_t *d = mt_dict_by_keyword(s);
    if (d) {
        *tag = d->tag;
        *mask = d->mask;
        return 0;
    }
    return -1;
}

static const ynode_t *map_get(const ynode_t *m, const char *key)
{
    for (size_t i = 0; i + 1 < m->n; i += 2)
        if (m->kids[i]->type == N_SCALAR && strcmp(m->kids[i]->str, key) == 0)
            return m->kids[i + 1];
    return NULL;
}

static int want_scalar(ctx_t *c, const ynode_t *v, const char *what)
{
    if (v->type != N_SCALAR)
        return fail(c, v->line, "%s: expected a scalar", what);
    return 0;
}

/* One tag: action row; seen holds the tags of this mapping so far. */
static int parse_attribute(ctx_t *c, const ynode_t *k, const ynode_t *a, rules_t *rs, rules_t *seen)
{
    if (k->type != N_SCALAR)
        return fail(c, k->line, "attributes: a key must be a tag");
    uint32_t tag, mask;
    if (parse_tag(k->str, &tag, &mask))
        return fail(c, k->line, "bad tag '%s'", k->str);
    if (rules_find(seen, tag, mask))
        return fail(c, k->line, "%s is named twice", k->str);
    rules_set(seen, tag, mask, 0);
    if (a->type != N_SCALAR)
        return fail(c, a->line, "%s: expected an action", k->str);
    uint8_t act;
    if (parse_action(a->str, &act))
        return fail(c, a->line,
                    "unknown action '%s' (D, Z, X, K, C, U, Z/D, X/Z, X/D, X/Z/D, X/Z/U*)", a->str);
    rules_set(rs, tag, mask, act);
    return 0;
}

static int parse_attributes(ctx_t *c, const ynode_t *v, rules_t *rs)
{
    if (v->type != N_MAP)
        return fail(c, v->line, "attributes: expected a mapping of tag: action");
    rules_t seen = {0}; /* this mapping's tags: one named twice is an error */
    int rc = 0;
    for (size_t i = 0; !rc && i + 1 < v->n; i += 2)
        rc = parse_attribute(c, v->kids[i], v->kids[i + 1], rs, &seen);
    rules_dispose(&seen);
    return rc;
}

static int parse_code(ctx_t *c, const ynode_t *v, mt_deid_code_t *code)
{
    const ynode_t *cv, *cm;
    if (v->type != N_MAP || !(cv = map_get(v, "value")) || !(cm = map_get(v, "meaning")) ||
        cv->type != N_SCALAR || cm->type != N_SCALAR)
        return fail(c, v->line, "code: expected {value: ..., meaning: ...}");
    if (strlen(cv->str) >= sizeof(code->value) || strlen(cm->str) >= sizeof(code->meaning))
        return fail(c, v->line, "code: value or meaning too long");
    snprintf(code->value, sizeof(code->value), "%s", cv->str);
    snprintf(code->meaning, sizeof(code->meaning), "%s", cm->str);
    return 0;
}

static int parse_safe_private(ctx_t *c, const ynode_t *v, build_state_t *bs)
{
    if (v->type != N_SEQ)
        return fail(c, v->line, "safe-private: expected a sequence");
    for (size_t i = 0; i < v->n; i++) {
        const ynode_t *it = v->kids[i], *cr, *g, *e;
        if (it->type != N_MAP || !(cr = map_get(it, "creator")) || !(g = map_get(it, "group")) ||
            !(e = map_get(it, "element")) || cr->type != N_SCALAR || g->type != N_SCALAR ||
            e->type != N_SCALAR)
            return fail(c, it->line, "safe-private: expected {creator, group, element}");
        char *end;
        unsigned long gv = strtoul(g->str, &end, 16);
        if (*end || !*g->str || gv > 0xFFFF || !(gv & 1))
            return fail(c, g->line, "safe-private: bad group '%s' (odd, hex)", g->str);
        unsigned long ev = strtoul(e->str, &end, 16);
        if (*end || !*e->str || ev > 0xFF)
            return fail(c, e->line, "safe-private: bad element '%s' (hex, 00-FF)", e->str);
        bs->safe = mt_realloc(bs->safe, (bs->n_safe + 1) * sizeof(*bs->safe));
        bs->safe[bs->n_safe++] =
            (mt_deid_safe_private_t){(uint16_t)gv, (uint8_t)ev, mt_strdup(cr->str)};
    }
    return 0;
}

static int find_option(const char *s)
{
    for (int i = 0; i < MT_DEID_OPT_COUNT; i++)
        if (strcmp(s, option_names[i]) == 0)
            return i;
    return -1;
}

static int parse_catalogue(ctx_t *c, const ynode_t *v, build_state_t *bs)
{
    for (size_t i = 0; i + 1 < v->n; i += 2) {
        const ynode_t *k = v->kids[i], *d = v->kids[i + 1];
        int o;
        if (k->type != N_SCALAR || (o = find_option(k->str)) < 0)
            return fail(c, k->line, "unknown option '%s'", k->type == N_SCALAR ? k->str : "?");
        if (d->type != N_MAP)
            return fail(c, d->line, "option %s: expected a mapping", k->str);
        option_def_t *od = &bs->opts[o];
        od->defined = true;
        for (size_t j = 0; j + 1 < d->n; j += 2) {
            const ynode_t *kk = d->kids[j], *vv = d->kids[j + 1];
            int rc;
            if (kk->type != N_SCALAR)
                return fail(c, kk->line, "option %s: bad key", k->str);
            if (strcmp(kk->str, "code") == 0)
                rc = parse_code(c, vv, &od->code);
            else if (strcmp(kk->str, "attributes") == 0)
                rc = parse_attributes(c, vv, &od->rules);
            else if (strcmp(kk->str, "safe-private") == 0)
                rc = parse_safe_private(c, vv, bs);
            else
                rc = fail(c, kk->line, "option %s: unknown key '%s'", k->str, kk->str);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* Apply the selected options: C beats K where two options act on one attribute. */
static int apply_selection(ctx_t *c, const ynode_t *v, build_state_t *bs)
{
    if (v->type != N_SEQ)
        return fail(c, v->line, "options: expected a list of option names");
    rules_t merged = {0};
    for (size_t i = 0; i < v->n; i++) {
        const ynode_t *k = v->kids[i];
        int o;
        if (k->type != N_SCALAR || (o = find_option(k->str)) < 0) {
            rules_dispose(&merged);
            return fail(c, k->line, "unknown option '%s'", k->type == N_SCALAR ? k->str : "?");
        }
        if (!bs->opts[o].defined) {
            rules_dispose(&merged);
            return fail(c, k->line, "option '%s' is not defined by the base profile", k->str);
        }
        bs->p->options |= 1u << o;
        const rules_t * or = &bs->opts[o].rules;
        for (size_t j = 0; j < or->n; j++) {
            mt_deid_rule_t r = or->r[j];
            const mt_deid_rule_t *had = rules_find(&merged, r.tag, r.mask);
            if (!had || !(had->action == MT_DEID_C && r.action == MT_DEID_K))
                rules_set(&merged, r.tag, r.mask, r.action);
        }
    }
    for (size_t j = 0; j < merged.n; j++)
        rules_set(&bs->rules, merged.r[j].tag, merged.r[j].mask, merged.r[j].action);
    rules_dispose(&merged);
    return 0;
}

static int parse_ident_mode(ctx_t *c, const ynode_t *v, const char *key, mt_deid_ident_mode_t *m)
{
    if (want_scalar(c, v, key))
        return MT_ECONF;
    if (strcmp(v->str, "pseudonym") == 0)
        *m = MT_DEID_PSEUDONYM;
    else if (strcmp(v->str, "empty") == 0)
        *m = MT_DEID_EMPTY;
    else
        return fail(c, v->line, "%s: expected pseudonym or empty", key);
    return 0;
}

static int parse_days(ctx_t *c, const ynode_t *v, const char *key, int32_t *out)
{
    char *end;
    if (want_scalar(c, v, key))
        return MT_ECONF;
    long d = strtol(v->str, &end, 10);
    if (*end || !*v->str || d < -36500 || d > 36500)
        return fail(c, v->line, "%s: expected a whole number of days in [-36500, 36500]", key);
    *out = (int32_t)d;
    return 0;
}

static int load_rec(const char *name, mt_deid_resolve_cb resolve, void *user, unsigned depth,
                    build_state_t *bs, char *err, size_t errsz, const char *from_file,
                    unsigned from_line);

/* Walk one profile document (its base has already been loaded into bs, if any). */
static int apply_doc(ctx_t *c, const ynode_t *root, build_state_t *bs)
{
    mt_deid_profile_t *p = bs->p;
    const ynode_t *sel = NULL, *attrs = NULL;
    for (size_t i = 0; i + 1 < root->n; i += 2) {
        const ynode_t *k = root->kids[i], *v = root->kids[i + 1];
        int rc = 0;
        if (k->type != N_SCALAR)
            return fail(c, k->line, "keys must be scalars");
        const char *key = k->str;
        for (size_t j = 0; j < i; j += 2)
            if (root->kids[j]->type == N_SCALAR && strcmp(root->kids[j]->str, key) == 0)
                return fail(c, k->line, "'%s' is given twice", key);
        if (strcmp(key, "base") == 0) {
            /* handled by load_rec */
        } else if (strcmp(key, "name") == 0 || strcmp(key, "edition") == 0) {
            if (!(rc = want_scalar(c, v, key))) {
                char *dst = key[0] == 'n' ? p->name : p->edition;
                size_t dsz = key[0] == 'n' ? sizeof(p->name) : sizeof(p->edition);
                if (strlen(v->str) >= dsz)
                    rc = fail(c, v->line, "%s: too long", key);
                else
                    snprintf(dst, dsz, "%s", v->str);
            }
        } else if (strcmp(key, "code") == 0) {
            if (!(rc = parse_code(c, v, &p->codes[0])))
                bs->have_profile_code = true;
        } else if (strcmp(key, "default") == 0 || strcmp(key, "unknown") == 0) {
            uint8_t a;
            if (!(rc = want_scalar(c, v, key))) {
                if (parse_action(v->str, &a))
                    rc = fail(c, v->line, "unknown action '%s'", v->str);
                else if (key[0] == 'd')
                    p->default_action = a;
                else
                    p->unknown_action = a;
            }
        } else if (strcmp(key, "keep-list") == 0) {
            if (!(rc = want_scalar(c, v, key))) {
                mt_free(bs->keep_name);
                mt_free(bs->keep_from);
                bool none = strcmp(v->str, "none") == 0;
                bs->keep_name = none ? NULL : mt_strdup(v->str);
                bs->keep_from = none ? NULL : mt_strdup(c->file);
                bs->keep_line = v->line;
            }
        } else if (strcmp(key, "attributes") == 0) {
            attrs = v;
        } else if (strcmp(key, "options") == 0) {
            if (v->type == N_MAP)
                rc = parse_catalogue(c, v, bs);
            else
                sel = v;
        } else if (strcmp(key, "patient-id") == 0) {
            rc = parse_ident_mode(c, v, key, &p->patient_id);
        } else if (strcmp(key, "patient-name") == 0) {
            rc = parse_ident_mode(c, v, key, &p->patient_name);
        } else if (strcmp(key, "pseudonym-prefix") == 0) {
            if (!(rc = want_scalar(c, v, key))) {
                const char *s = v->str;
                if (strlen(s) > 16)
                    rc = fail(c, v->line, "pseudonym-prefix: at most 16 characters");
                for (; !rc && *s; s++)
                    if (!((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
                          *s == '_'))
                        rc = fail(c, v->line, "pseudonym-prefix: use A-Z, 0-9, '-' and '_'");
                if (!rc)
                    snprintf(p->pseudonym_prefix, sizeof(p->pseudonym_prefix), "%s", v->str);
            }
        } else if (strcmp(key, "date-shift") == 0) {
            const ynode_t *lo, *hi;
            if (v->type != N_MAP || !(lo = map_get(v, "min-days")) ||
                !(hi = map_get(v, "max-days")))
                rc = fail(c, v->line, "date-shift: expected {min-days: N, max-days: M}");
            else if (!(rc = parse_days(c, lo, "min-days", &p->shift_min_days)) &&
                     !(rc = parse_days(c, hi, "max-days", &p->shift_max_days)) &&
                     p->shift_min_days > p->shift_max_days)
                rc = fail(c, v->line, "date-shift: min-days > max-days");
            else if (!rc && p->shift_min_days == 0 && p->shift_max_days == 0)
                rc = fail(c, v->line, "date-shift: a shift of 0 days keeps the real dates");
        } else if (strcmp(key, "composite") == 0) {
            if (!(rc = want_scalar(c, v, key))) {
                if (strcmp(v->str, "valid") == 0)
                    p->composite = MT_DEID_COMPOSITE_VALID;
                else if (strcmp(v->str, "minimal") == 0)
                    p->composite = MT_DEID_COMPOSITE_MINIMAL;
                else
                    rc = fail(c, v->line, "composite: expected valid or minimal");
            }
        } else if (strcmp(key, "burned-in-annotation") == 0) {
            if (!(rc = want_scalar(c, v, key))) {
                if (strcmp(v->str, "reject") == 0)
                    p->burned_in = MT_DEID_BURNED_IN_REJECT;
                else if (strcmp(v->str, "quarantine") == 0)
                    p->burned_in = MT_DEID_BURNED_IN_QUARANTINE;
                else
                    rc = fail(c, v->line, "burned-in-annotation: expected reject or quarantine");
            }
        } else {
            rc = fail(c, k->line, "unknown key '%s'", key);
        }
        if (rc)
            return rc;
    }
    int rc = 0;
    if (sel)
        rc = apply_selection(c, sel, bs);
    if (!rc && attrs)
        rc = parse_attributes(c, attrs, &bs->rules);
    return rc;
}

static int load_rec(const char *name, mt_deid_resolve_cb resolve, void *user, unsigned depth,
                    build_state_t *bs, char *err, size_t errsz, const char *from_file,
                    unsigned from_line)
{
    ctx_t c0 = {from_file ? from_file : name, err, errsz};
    if (depth > MAX_BASE_DEPTH)
        return fail(&c0, from_line, "base profiles nested more than %d deep", MAX_BASE_DEPTH);
    mt_deid_source_t src = {NULL, 0, NULL};
    int rc = resolve(user, name, &src);
    if (rc || !src.text) {
        if (from_file)
            return fail(&c0, from_line, "cannot load profile '%s': %s", name,
                        mt_strerror(rc ? rc : MT_ENOENT));
        if (err && errsz)
            snprintf(err, errsz, "%s: cannot load profile: %s", name,
                     mt_strerror(rc ? rc : MT_ENOENT));
        return rc ? rc : MT_ENOENT;
    }
    ctx_t c = {src.filename ? src.filename : name, err, errsz};
    ynode_t *root;
    if ((rc = parse_yaml(&c, src.text, src.len, &root)))
        return rc;
    const ynode_t *base = map_get(root, "base");
    if (base) {
        if (base->type != N_SCALAR)
            rc = fail(&c, base->line, "base: expected a profile name");
        else
            rc = load_rec(base->str, resolve, user, depth + 1, bs, err, errsz, c.file, base->line);
        /* A derived profile starts from the base's options but names its own code. */
    }
    if (!rc)
        rc = apply_doc(&c, root, bs);
    ynode_free(root);
    return rc;
}

/* The keep list document: {name, edition, keep: {tag: K|Z}}; its rules go to keep. */
static int load_keep(build_state_t *bs, mt_deid_resolve_cb resolve, void *user, rules_t *keep,
                     char *err, size_t errsz)
{
    ctx_t c0 = {bs->keep_from, err, errsz};
    mt_deid_source_t src = {NULL, 0, NULL};
    int rc = resolve(user, bs->keep_name, &src);
    if (rc || !src.text)
        return fail(&c0, bs->keep_line, "cannot load keep list '%s': %s", bs->keep_name,
                    mt_strerror(rc ? rc : MT_ENOENT));
    ctx_t c = {src.filename ? src.filename : bs->keep_name, err, errsz};
    ynode_t *root;
    if ((rc = parse_yaml(&c, src.text, src.len, &root)))
        return rc;
    const ynode_t *list = NULL;
    for (size_t i = 0; !rc && i + 1 < root->n; i += 2) {
        const ynode_t *k = root->kids[i];
        if (k->type == N_SCALAR && strcmp(k->str, "keep") == 0)
            list = root->kids[i + 1];
        else if (k->type != N_SCALAR ||
                 (strcmp(k->str, "name") != 0 && strcmp(k->str, "edition") != 0))
            rc = fail(&c, k->line, "keep list: unknown key '%s' (name, edition, keep)",
                      k->type == N_SCALAR ? k->str : "?");
    }
    if (!rc && !list)
        rc = fail(&c, root->line, "keep list: no 'keep' mapping");
    if (!rc)
        rc = parse_attributes(&c, list, keep);
    for (size_t i = 0; !rc && i < keep->n; i++) {
        uint8_t a = keep->r[i].action;
        if ((a != MT_DEID_K && a != MT_DEID_Z && a != MT_DEID_C) || keep->r[i].tag == TAG_PRIVATE)
            rc = fail(&c, list->line, "keep list: only public tags with K, Z or C");
    }
    ynode_free(root);
    return rc;
}

static int cmp_rule(const void *a, const void *b)
{
    uint32_t x = ((const mt_deid_rule_t *)a)->tag, y = ((const mt_deid_rule_t *)b)->tag;
    return x < y ? -1 : x > y;
}

int mt_deid_profile_load(const char *name, mt_deid_resolve_cb resolve, void *user,
                         mt_deid_profile_t **out, char *err, size_t errsz)
{
    *out = NULL;
    if (err && errsz)
        err[0] = '\0';
    build_state_t bs;
    memset(&bs, 0, sizeof(bs));
    mt_deid_profile_t *p = mt_calloc(1, sizeof(*p));
    bs.p = p;
    p->default_action = MT_DEID_K;
    p->unknown_action = MT_DEID_X;
    p->private_action = MT_DEID_X;
    p->patient_id = MT_DEID_PSEUDONYM;
    p->patient_name = MT_DEID_EMPTY;
    p->shift_min_days = -365;
    p->shift_max_days = -1;
    p->composite = MT_DEID_COMPOSITE_VALID;
    p->burned_in = MT_DEID_BURNED_IN_REJECT;

    int rc = load_rec(name, resolve, user, 0, &bs, err, errsz, NULL, 0);
    if (rc)
        goto done;
    if (!bs.have_profile_code)
        snprintf(p->codes[0].value, sizeof(p->codes[0].value), "113100"),
            snprintf(p->codes[0].meaning, sizeof(p->codes[0].meaning),
                     "Basic Application Confidentiality Profile");
    p->n_codes = 1;
    for (int o = 0; o < MT_DEID_OPT_COUNT; o++)
        if ((p->options & (1u << o)) && bs.opts[o].code.value[0])
            p->codes[p->n_codes++] = bs.opts[o].code;
    p->shift_dates = (p->options & (1u << MT_DEID_OPT_RETAIN_LONG_MODIFIED_DATES)) != 0;
    if (!p->name[0])
        snprintf(p->name, sizeof(p->name), "%s", name);

    size_t ne = 0, nm = 0;
    for (size_t i = 0; i < bs.rules.n; i++) {
        if (bs.rules.r[i].tag == TAG_PRIVATE)
            p->private_action = bs.rules.r[i].action;
        else if (bs.rules.r[i].mask == 0xFFFFFFFFu)
            ne++;
        else
            nm++;
    }
    p->exact = mt_calloc(ne ? ne : 1, sizeof(*p->exact));
    p->masked = mt_calloc(nm ? nm : 1, sizeof(*p->masked));
    for (size_t i = 0; i < bs.rules.n; i++) {
        const mt_deid_rule_t *r = &bs.rules.r[i];
        if (r->tag == TAG_PRIVATE)
            continue;
        if (r->mask == 0xFFFFFFFFu)
            p->exact[p->n_exact++] = *r;
        else
            p->masked[p->n_masked++] = *r;
    }
    qsort(p->exact, p->n_exact, sizeof(*p->exact), cmp_rule);
    if (bs.keep_name) {
        rules_t keep = {0};
        rc = load_keep(&bs, resolve, user, &keep, err, errsz);
        size_t nk = 0;
        for (size_t i = 0; i < keep.n; i++)
            nk += keep.r[i].mask == 0xFFFFFFFFu;
        p->keep = mt_calloc(nk ? nk : 1, sizeof(*p->keep));
        p->keep_masked = mt_calloc(keep.n - nk ? keep.n - nk : 1, sizeof(*p->keep_masked));
        for (size_t i = 0; !rc && i < keep.n; i++) {
            if (keep.r[i].mask == 0xFFFFFFFFu)
                p->keep[p->n_keep++] = keep.r[i];
            else
                p->keep_masked[p->n_keep_masked++] = keep.r[i];
        }
        qsort(p->keep, p->n_keep, sizeof(*p->keep), cmp_rule);
        rules_dispose(&keep);
        if (rc)
            goto done;
    }
    if (p->options & (1u << MT_DEID_OPT_RETAIN_SAFE_PRIVATE)) {
        p->safe = bs.safe;
        p->n_safe = bs.n_safe;
        bs.safe = NULL;
        bs.n_safe = 0;
    }
done:
    mt_free(bs.keep_name);
    mt_free(bs.keep_from);
    rules_dispose(&bs.rules);
    for (int o = 0; o < MT_DEID_OPT_COUNT; o++)
        rules_dispose(&bs.opts[o].rules);
    for (size_t i = 0; i < bs.n_safe; i++)
        mt_free(bs.safe[i].creator);
    mt_free(bs.safe);
    if (rc)
        mt_deid_profile_free(p);
    else
        *out = p;
    return rc;
}

void mt_deid_profile_free(mt_deid_profile_t *p)
{
    if (!p)
        return;
    mt_free(p->exact);
    mt_free(p->masked);
    mt_free(p->keep);
    mt_free(p->keep_masked);
    for (size_t i = 0; i < p->n_safe; i++)
        mt_free(p->safe[i].creator);
    mt_free(p->safe);
    mt_free(p);
}

/* Binary search of the sorted exact rules, then the masked ones in order. */
static mt_deid_action_t rules_lookup(const mt_deid_rule_t *exact, size_t n_exact,
                                     const mt_deid_rule_t *masked, size_t n_masked, uint32_t tag)
{
    size_t lo = 0, hi = n_exact;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (exact[mid].tag < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < n_exact && exact[lo].tag == tag)
        return (mt_deid_action_t)exact[lo].action;
    /* Repeating-group rows (50xx, 60xx) name even groups only: (6001,3000) is private. */
    for (size_t i = 0; i < n_masked && !((tag >> 16) & 1u); i++)
        if ((tag & masked[i].mask) == masked[i].tag)
            return (mt_deid_action_t)masked[i].action;
    return MT_DEID_DEFAULT;
}

mt_deid_action_t mt_deid_profile_keep(const mt_deid_profile_t *p, uint32_t tag)
{
    return rules_lookup(p->keep, p->n_keep, p->keep_masked, p->n_keep_masked, tag);
}

mt_deid_action_t mt_deid_profile_lookup(const mt_deid_profile_t *p, uint32_t tag)
{
    mt_deid_action_t a = rules_lookup(p->exact, p->n_exact, p->masked, p->n_masked, tag);
    if (a != MT_DEID_DEFAULT)
        return a;
    if ((tag >> 16) & 1u)
        return (mt_deid_action_t)p->private_action;
    return MT_DEID_DEFAULT;
}

bool mt_deid_profile_safe_private(const mt_deid_profile_t *p, uint16_t group, uint8_t element,
                                  const char *creator)
{
    for (size_t i = 0; i < p->n_safe; i++)
        if (p->safe[i].group == group && p->safe[i].element == element &&
            strcmp(p->safe[i].creator, creator) == 0)
            return true;
    return false;
}
