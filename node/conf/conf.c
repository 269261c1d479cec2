/*
 * conf.c - YAML (libyaml events) -> an immutable struct mt_conf, driven by the key table
 * keys.def (nginx's ngx_command_t: name, type, offset, default, validator).
 *
 * Shape of the file (two levels: section, key; conf/mitral.yaml is the reference):
 *
 *   node:
 *     ae_title: MITRAL
 *   associations:
 *     allowed_calling_aes: [CT1, MR2]
 *     artim_timeout: 30s
 *
 * The loader walks the event stream once. Each mapping key is joined to its parent's path
 * ("associations.artim_timeout") and looked up in the table: a row is a leaf whose value is
 * parsed by its type; a prefix of some row is a section (a nested mapping); anything else is an
 * unknown key. The FIRST problem stops the load and is reported as "name:line: what is wrong",
 * line 1-based from libyaml's marks: YAML syntax errors, unknown keys, duplicate keys or
 * sections, wrong shape (list/mapping/scalar), bad values, out of range.
 *
 * Defaults are text in the table, parsed by the same code as values from a file, so a default
 * can never be invalid. storage.root and index.path default to NULL = derived from
 * node.data_dir (<data_dir>/storage, <data_dir>/index.sqlite); an explicit value in the file
 * (a null value, `root:` or `root: ~`, means "derive") sets *_explicit so that
 * mt_conf_set_data_dir leaves it alone.
 *
 * Value syntax by type:
 *   STRING    1..sizeof(field)-1 bytes, no control characters (+ the row's check)
 *   AE        PS3.5 AE VR: 1-16 characters, no backslash or control characters, not all spaces;
 *             leading/trailing spaces are not significant and are removed
 *   PORT      1-65535        UINT   decimal, [min, max]
 *   DURATION  <n>ms | <n>s | <n>m | <n>h | <n> (seconds); stored in ms, [min, max] ms
 *   ENUM      one of the row's names, stored as the index
 *   PATH      non-empty, < 4096 bytes, no control characters (heap string)
 *   LOGLEVEL  error | warn | info | debug | trace
 *   LIST_AE   a YAML sequence of AE titles; null = empty list
 *   LIST_UID  a YAML sequence of UIDs (PS3.5 §9.1: digits and dots, 1-64 chars, no empty
 *             component, no leading zero); null = empty list
 *
 * PURE apart from mt_conf_load reading the file; mt_conf_load_string is what tests and the fuzz
 * target (tests/fuzz/fuzz_conf.c) drive.
 */
#include "conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "../dicom/ds.h"
#include "../http/url.h"
#include "../route/rules.h"
#include "../util/alloc.h"
#include "../util/log.h"

#define CONF_MAX_FILE (1u << 20)
#define CONF_MAX_PATH 4096
#define CONF_MAX_KEYPATH 128

enum conf_type {
    CT_STRING,
    CT_AE,
    CT_PORT,
    CT_UINT,
    CT_DURATION,
    CT_ENUM,
    CT_PATH,
    CT_LOGLEVEL,
    CT_LIST_AE,
    CT_LIST_UID,
};

typedef int (*conf_check_fn)(const char *v, char *why, size_t whysz);

struct conf_key {
    const char *path;
    enum conf_type type;
    size_t off;
    size_t size;  /* sizeof the field */
    size_t off_n; /* lists: offset of the count */
    const char *def;
    uint32_t min, max;
    const char *const *names;
    conf_check_fn check;
};

static const char *const dup_names[] = {"overwrite", "keep-first", "reject", NULL};
static const char *const bool_names[] = {"false", "true", NULL};
static const char *const tls_names[] = {"off", "both", "only", NULL}; /* http.tls: main port */
static const char *const order_names[] = {"series", "study", "none", NULL};
static const char *const level_names[] = {"error", "warn", "info", "debug", "trace", NULL};

static int check_ip(const char *v, char *why, size_t whysz)
{
    unsigned char addr[16];
    if (inet_pton(AF_INET, v, addr) == 1 || inet_pton(AF_INET6, v, addr) == 1)
        return 0;
    snprintf(why, whysz, "is not an IPv4 or IPv6 address");
    return -1;
}

/* associations.transfer_syntax_preference: a UID that names no syntax we know never applies */
static int check_ts(const char *v, char *why, size_t whysz)
{
    if (mt_ts_find(v))
        return 0;
    snprintf(why, whysz, "is not a transfer syntax mitral knows (docs/conformance.md 2.3)");
    return -1;
}

#define FIELD_SIZE(f) sizeof(((mt_conf_t *)0)->f)
static const struct conf_key conf_keys[] = {
#define MT_CONF_KEY(p, t, f, d, lo, hi, aux, chk)                                                  \
    {p, CT_##t, offsetof(mt_conf_t, f), FIELD_SIZE(f), 0, d, lo, hi, aux, chk},
#define MT_CONF_LIST(p, t, f, d, lo, hi, aux, chk)                                                 \
    {p, CT_##t, offsetof(mt_conf_t, f), FIELD_SIZE(f), offsetof(mt_conf_t, n_##f), d, lo, hi,     \
     aux, chk},
#include "keys.def"
#undef MT_CONF_KEY
#undef MT_CONF_LIST
};
#define N_KEYS (sizeof conf_keys / sizeof conf_keys[0])

_Static_assert(sizeof(mt_dup_policy_t) == sizeof(int), "enums are stored as int");

static bool is_list(const struct conf_key *k)
{
    return k->type == CT_LIST_AE || k->type == CT_LIST_UID;
}

static const char *type_desc(const struct conf_key *k)
{
    switch (k->type) {
    case CT_STRING: return "a string";
    case CT_AE: return "an AE title";
    case CT_PORT: return "a port number";
    case CT_UINT: return "a number";
    case CT_DURATION: return "a duration";
    case CT_ENUM: return "a name";
    case CT_PATH: return "a path";
    case CT_LOGLEVEL: return "a log level";
    case CT_LIST_AE:
    case CT_LIST_UID: return "a list";
    }
    return "a value";
}

/* A printable, bounded copy of an input value for messages. */
static const char *show(const char *v, size_t n, char *out, size_t outsz)
{
    size_t j = 0, max = outsz > 4 ? outsz - 4 : 0;
    for (size_t i = 0; i < n && j < max; i++, j++)
        out[j] = ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) ? '?' : v[i];
    if (j < n && outsz >= 4) {
        memcpy(out + j, "...", 3);
        j += 3;
    }
    if (outsz)
        out[j < outsz ? j : outsz - 1] = '\0';
    return out;
}

static bool has_ctl(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return true;
    return false;
}

static void *field(mt_conf_t *c, const struct conf_key *k)
{
    return (char *)c + k->off;
}

static void store_uint(mt_conf_t *c, const struct conf_key *k, uint32_t v)
{
    void *p = field(c, k);
    switch (k->size) {
    case 1: *(uint8_t *)p = (uint8_t)v; break;
    case 2: *(uint16_t *)p = (uint16_t)v; break;
    case 4: *(uint32_t *)p = v; break; /* also int and enum fields (static assert above) */
    default: abort(); /* a keys.def row names a field of a size we do not store */
    }
}

static void fmt_ms(uint32_t ms, char *out, size_t outsz)
{
    if (ms && ms % 3600000 == 0)
        snprintf(out, outsz, "%uh", ms / 3600000);
    else if (ms && ms % 60000 == 0)
        snprintf(out, outsz, "%um", ms / 60000);
    else if (ms % 1000 == 0)
        snprintf(out, outsz, "%us", ms / 1000);
    else
        snprintf(out, outsz, "%ums", ms);
}

/* Decimal digits only; *out saturates at UINT64_MAX/10-ish (anything that large is out of any
 * range we use). */
static bool parse_digits(const char *v, size_t n, uint64_t *out)
{
    if (n == 0)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        if (x < UINT64_C(1) << 50)
            x = x * 10 + (uint64_t)(v[i] - '0');
    }
    *out = x;
    return true;
}

/* PS3.5 AE VR. Trims leading/trailing spaces into out[17]. */
static int parse_ae(const char *v, size_t n, char out[17], char *why, size_t whysz)
{
    char s[48];
    size_t b = 0, e = n;
    while (b < e && v[b] == ' ')
        b++;
    while (e > b && v[e - 1] == ' ')
        e--;
    if (n == 0 || n > 16 || b == e || has_ctl(v, n) || memchr(v, '\\', n)) {
        snprintf(why, whysz,
                 "\"%s\" is not an AE title (1-16 characters, no backslash or control "
                 "characters, not all spaces)",
                 show(v, n, s, sizeof s));
        return -1;
    }
    memcpy(out, v + b, e - b);
    out[e - b] = '\0';
    return 0;
}

int mt_conf_parse_ae(const char *v, char out[17], char *why, size_t whysz)
{
    return parse_ae(v, strlen(v), out, why, whysz);
}

int mt_conf_check_bind(const char *v, char *why, size_t whysz)
{
    char msg[96], s[48];
    if (check_ip(v, msg, sizeof msg) == 0)
        return 0;
    snprintf(why, whysz, "\"%s\" %s", show(v, strlen(v), s, sizeof s), msg);
    return -1;
}

/* PS3.5 §9.1 UID: components of digits separated by '.', no leading zero, at most 64 chars. */
static int parse_uid(const char *v, size_t n, char *why, size_t whysz)
{
    char s[48];
    bool ok = n > 0 && n <= 64;
    size_t comp = 0; /* length of the current component */
    for (size_t i = 0; ok && i < n; i++) {
        if (v[i] == '.') {
            ok = comp > 0;
            comp = 0;
        } else if (v[i] >= '0' && v[i] <= '9') {
            ok = !(comp == 1 && v[i - 1] == '0');
            comp++;
        } else {
            ok = false;
        }
    }
    if (!ok || comp == 0) {
        snprintf(why, whysz, "\"%s\" is not a UID (digits and dots, at most 64 characters)",
                 show(v, n, s, sizeof s));
        return -1;
    }
    return 0;
}

static void list_clear(mt_conf_t *c, const struct conf_key *k)
{
    char **a = field(c, k);
    size_t *np = (size_t *)((char *)c + k->off_n);
    for (size_t i = 0; i < *np; i++) {
        mt_free(a[i]);
        a[i] = NULL;
    }
    *np = 0;
}

static int list_add(mt_conf_t *c, const struct conf_key *k, const char *v, size_t n, char *why,
                    size_t whysz)
{
    char **a = field(c, k);
    size_t *np = (size_t *)((char *)c + k->off_n);
    char ae[17];
    if (*np >= k->max || *np >= MT_CONF_MAX_LIST) {
        snprintf(why, whysz, "more than %u entries", k->max);
        return -1;
    }
    switch (k->type) {
    case CT_LIST_AE:
        if (parse_ae(v, n, ae, why, whysz))
            return -1;
        a[(*np)++] = mt_strdup(ae);
        return 0;
    case CT_LIST_UID: {
        if (parse_uid(v, n, why, whysz))
            return -1;
        char *uid = mt_strndup(v, n), msg[96], s[48];
        if (k->check && k->check(uid, msg, sizeof msg) != 0) {
            snprintf(why, whysz, "\"%s\" %s", show(v, n, s, sizeof s), msg);
            mt_free(uid);
            return -1;
        }
        a[(*np)++] = uid;
        return 0;
    }
    default:
        abort(); /* keys.def: MT_CONF_LIST rows are LIST_* */
    }
}

/* Parse one scalar value (v[n], no embedded NUL) into the field of k. Lists take elements
 * through list_add. Returns 0, or -1 with why = "<what is wrong>" (the caller adds the key). */
static int set_scalar(mt_conf_t *c, const struct conf_key *k, const char *v, size_t n, char *why,
                      size_t whysz)
{
    char s[48], r1[16], r2[16];
    uint64_t x = 0;
    switch (k->type) {
    case CT_STRING: {
        if (n == 0 || n >= k->size || has_ctl(v, n)) {
            snprintf(why, whysz, "\"%s\" is not valid (1-%zu characters, no control characters)",
                     show(v, n, s, sizeof s), k->size - 1);
            return -1;
        }
        char tmp[256];
        if (k->size > sizeof tmp)
            abort(); /* keys.def: STRING fields are small fixed arrays */
        memcpy(tmp, v, n);
        tmp[n] = '\0';
        char msg[96];
        if (k->check && k->check(tmp, msg, sizeof msg) != 0) {
            snprintf(why, whysz, "\"%s\" %s", show(v, n, s, sizeof s), msg);
            return -1;
        }
        memcpy(field(c, k), tmp, n + 1);
        return 0;
    }
    case CT_AE:
        return parse_ae(v, n, field(c, k), why, whysz);
    case CT_PORT:
    case CT_UINT: {
        bool digits = parse_digits(v, n, &x);
        if (!digits || x < k->min || x > k->max) {
            if (k->type == CT_PORT)
                snprintf(why, whysz, "\"%s\" is not a port number (%u-%u)",
                         show(v, n, s, sizeof s), k->min, k->max);
            else if (digits)
                snprintf(why, whysz, "%s is out of range (%u-%u)", show(v, n, s, sizeof s),
                         k->min, k->max);
            else
                snprintf(why, whysz, "\"%s\" is not a whole number", show(v, n, s, sizeof s));
            return -1;
        }
        store_uint(c, k, (uint32_t)x);
        return 0;
    }
    case CT_DURATION: {
        size_t d = 0;
        while (d < n && v[d] >= '0' && v[d] <= '9')
            d++;
        uint64_t mul;
        const char *u = v + d;
        size_t un = n - d;
        if (un == 0 || (un == 1 && *u == 's'))
            mul = 1000;
        else if (un == 2 && memcmp(u, "ms", 2) == 0)
            mul = 1;
        else if (un == 1 && *u == 'm')
            mul = 60000;
        else if (un == 1 && *u == 'h')
            mul = 3600000;
        else
            mul = 0;
        if (mul == 0 || !parse_digits(v, d, &x)) {
            snprintf(why, whysz, "\"%s\" is not a duration (e.g. 30s, 5m, 250ms, 1h)",
                     show(v, n, s, sizeof s));
            return -1;
        }
        x = x > UINT32_MAX ? UINT64_MAX : x * mul; /* < 2^54 when multiplied */
        if (x < k->min || x > k->max) {
            fmt_ms(k->min, r1, sizeof r1);
            fmt_ms(k->max, r2, sizeof r2);
            snprintf(why, whysz, "%s is out of range (%s-%s)", show(v, n, s, sizeof s), r1, r2);
            return -1;
        }
        store_uint(c, k, (uint32_t)x);
        return 0;
    }
    case CT_ENUM:
    case CT_LOGLEVEL: {
        const char *const *names = k->type == CT_ENUM ? k->names : level_names;
        for (uint32_t i = 0; names[i]; i++)
            if (strlen(names[i]) == n && memcmp(names[i], v, n) == 0) {
                store_uint(c, k, i);
                return 0;
            }
        int w = snprintf(why, whysz, "\"%s\" is not one of", show(v, n, s, sizeof s));
        for (size_t i = 0; names[i] && w >= 0 && (size_t)w < whysz; i++)
            w += snprintf(why + w, whysz - (size_t)w, "%s %s", i ? "," : "", names[i]);
        return -1;
    }
    case CT_PATH: {
        if (n == 0 || n >= CONF_MAX_PATH || has_ctl(v, n)) {
            snprintf(why, whysz,
                     "\"%s\" is not a valid path (1-%d characters, no control characters)",
                     show(v, n, s, sizeof s), CONF_MAX_PATH - 1);
            return -1;
        }
        char **p = field(c, k);
        mt_free(*p);
        *p = mt_strndup(v, n);
        return 0;
    }
    case CT_LIST_AE:
    case CT_LIST_UID:
        break;
    }
    snprintf(why, whysz, "expected a list");
    return -1;
}

static bool is_derived_path(const struct conf_key *k)
{
    return k->type == CT_PATH && k->def == NULL;
}

static void mark_explicit(mt_conf_t *c, const struct conf_key *k, bool on)
{
    if (k->off == offsetof(mt_conf_t, storage_root))
        c->storage_root_explicit = on;
    else if (k->off == offsetof(mt_conf_t, index_path))
        c->index_path_explicit = on;
}

static char *join(const char *dir, const char *leaf)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    size_t m = strlen(leaf);
    char *p = mt_malloc(n + 1 + m + 1);
    memcpy(p, dir, n);
    p[n] = '/';
    memcpy(p + n + 1, leaf, m + 1);
    return p;
}

static void derive_paths(mt_conf_t *c)
{
    if (!c->storage_root_explicit) {
        mt_free(c->storage_root);
        c->storage_root = join(c->data_dir, "storage");
    }
    if (!c->index_path_explicit) {
        mt_free(c->index_path);
        c->index_path = join(c->data_dir, "index.sqlite");
    }
}

static void apply_defaults(mt_conf_t *c)
{
    char why[256];
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct conf_key *k = &conf_keys[i];
        if (!k->def)
            continue;
        int rc = 0;
        if (is_list(k)) {
            const char *p = k->def;
            while (*p && rc == 0) {
                const char *e = strchr(p, ',');
                size_t n = e ? (size_t)(e - p) : strlen(p);
                rc = list_add(c, k, p, n, why, sizeof why);
                p += n + (e ? 1 : 0);
            }
        } else {
            rc = set_scalar(c, k, k->def, strlen(k->def), why, sizeof why);
        }
        if (rc) { /* our own table is wrong: a bug, not an input error */
            fprintf(stderr, "mitral: keys.def default for %s: %s\n", k->path, why);
            abort();
        }
    }
}

mt_conf_t *mt_conf_new_default(void)
{
    mt_conf_t *c = mt_calloc(1, sizeof *c);
    apply_defaults(c);
    derive_paths(c);
    return c;
}

void mt_conf_set_data_dir(mt_conf_t *c, const char *dir)
{
    char *d = mt_strdup(dir);
    mt_free(c->data_dir);
    c->data_dir = d;
    derive_paths(c);
}

void mt_conf_use_data_dir(mt_conf_t *c, const char *dir)
{
    c->storage_root_explicit = false;
    c->index_path_explicit = false;
    mt_conf_set_data_dir(c, dir);
}

mt_conf_t *mt_conf_for_command(const char *file, const char *data_dir)
{
    char err[512];
    mt_conf_t *c = file ? mt_conf_load(file, err, sizeof err) : mt_conf_new_default();
    if (!c) {
        fprintf(stderr, "%s\n", err);
        return NULL;
    }
    if (data_dir)
        mt_conf_use_data_dir(c, data_dir);
    return c;
}

static void projects_free(mt_conf_t *c)
{
    for (size_t i = 0; i < c->n_projects; i++) {
        mt_conf_project_t *p = &c->projects[i];
        mt_free(p->description);
        for (size_t k = 0; k < p->n_calling_ae_allow; k++)
            mt_free(p->calling_ae_allow[k]);
    }
    mt_free(c->projects);
    c->projects = NULL;
    c->n_projects = 0;
}

static void users_free(mt_conf_t *c)
{
    for (size_t i = 0; i < c->n_users; i++) {
        mt_conf_user_t *u = &c->users[i];
        mt_free(u->password_hash);
        mt_free(u->token_hash);
        for (size_t k = 0; k < u->n_projects; k++)
            mt_free(u->projects[k]);
    }
    mt_free(c->users);
    c->users = NULL;
    c->n_users = 0;
}

const mt_conf_user_t *mt_conf_user_by_name(const mt_conf_t *c, const char *name)
{
    for (size_t i = 0; c && name && i < c->n_users; i++)
        if (strcmp(c->users[i].name, name) == 0)
            return &c->users[i];
    return NULL;
}

static void destinations_free(mt_conf_t *c)
{
    for (size_t i = 0; i < c->n_destinations; i++)
        for (size_t k = 0; k < c->destinations[i].n_ts; k++)
            mt_free(c->destinations[i].ts[k]);
    mt_free(c->destinations);
    c->destinations = NULL;
    c->n_destinations = 0;
}

void mt_conf_copy_destinations(mt_conf_t *dst, const mt_conf_t *src)
{
    destinations_free(dst);
    dst->destinations = mt_calloc(src->n_destinations ? src->n_destinations : 1,
                                  sizeof *dst->destinations);
    for (size_t i = 0; i < src->n_destinations; i++) {
        dst->destinations[i] = src->destinations[i];
        for (size_t k = 0; k < src->destinations[i].n_ts; k++)
            dst->destinations[i].ts[k] = mt_strdup(src->destinations[i].ts[k]);
    }
    dst->n_destinations = src->n_destinations;
}

static bool ae_same(const char *a, const char *b)
{
    while (*a == ' ')
        a++;
    while (*b == ' ')
        b++;
    size_t na = strlen(a), nb = strlen(b);
    while (na && a[na - 1] == ' ')
        na--;
    while (nb && b[nb - 1] == ' ')
        nb--;
    return na == nb && memcmp(a, b, na) == 0;
}

const mt_conf_project_t *mt_conf_project_by_ae(const mt_conf_t *c, const char *ae)
{
    for (size_t i = 0; c && ae && i < c->n_projects; i++)
        if (ae_same(c->projects[i].ae_title, ae))
            return &c->projects[i];
    return NULL;
}

const mt_conf_dest_t *mt_conf_dest_by_ae(const mt_conf_t *c, const char *ae)
{
    for (size_t i = 0; c && ae && i < c->n_dests; i++)
        if (ae_same(c->dests[i].ae_title, ae))
            return &c->dests[i];
    return NULL;
}

const mt_conf_destination_t *mt_conf_destination_by_name(const mt_conf_t *c, const char *name)
{
    for (size_t i = 0; i < c->n_destinations; i++)
        if (strcmp(c->destinations[i].name, name) == 0)
            return &c->destinations[i];
    return NULL;
}

const mt_conf_project_t *mt_conf_project_by_name(const mt_conf_t *c, const char *name)
{
    for (size_t i = 0; c && name && i < c->n_projects; i++)
        if (strcmp(c->projects[i].name, name) == 0)
            return &c->projects[i];
    return NULL;
}

void mt_conf_free(mt_conf_t *c)
{
    if (!c)
        return;
    projects_free(c);
    mt_free(c->dests);
    users_free(c);
    destinations_free(c);
    mt_route_set_free(c->routes);
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct conf_key *k = &conf_keys[i];
        if (is_list(k))
            list_clear(c, k);
        else if (k->type == CT_PATH)
            mt_free(*(char **)field(c, k));
    }
    mt_free(c);
}

/* ---- the loader ---- */

struct loader {
    yaml_parser_t parser;
    yaml_event_t ev;
    bool have_ev;
    const char *name;
    char *err;
    size_t errsz;
    bool failed;
    mt_conf_t *c;
    bool seen[N_KEYS];
    char sections[N_KEYS * 2][CONF_MAX_KEYPATH];
    size_t n_sections;
    bool seen_projects;
    size_t projects_line;
    bool seen_dests;
    bool seen_users;
    bool seen_destinations;
};

static size_t ev_line(const struct loader *L)
{
    return L->ev.start_mark.line + 1;
}

__attribute__((format(printf, 3, 4))) static int fail(struct loader *L, size_t line,
                                                      const char *fmt, ...)
{
    if (L->failed)
        return -1;
    L->failed = true;
    if (!L->err || !L->errsz)
        return -1;
    int w = snprintf(L->err, L->errsz, "%s:%zu: ", L->name, line);
    if (w >= 0 && (size_t)w < L->errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(L->err + w, L->errsz - (size_t)w, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int next(struct loader *L)
{
    if (L->have_ev) {
        yaml_event_delete(&L->ev);
        L->have_ev = false;
    }
    if (yaml_parser_parse(&L->parser, &L->ev)) {
        L->have_ev = true;
        return 0;
    }
    const yaml_parser_t *p = &L->parser;
    size_t line = (p->error == YAML_READER_ERROR ? p->mark.line : p->problem_mark.line) + 1;
    const char *problem = p->problem ? p->problem : "cannot parse";
    if (p->error == YAML_MEMORY_ERROR)
        return fail(L, line, "out of memory parsing YAML");
    if (p->context)
        return fail(L, line, "YAML syntax error: %s (%s)", problem, p->context);
    return fail(L, line, "YAML syntax error: %s", problem);
}

static bool ev_is_null(const yaml_event_t *ev)
{
    if (ev->type != YAML_SCALAR_EVENT || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    return n == 0 || (n == 1 && v[0] == '~') ||
           (n == 4 && (!memcmp(v, "null", 4) || !memcmp(v, "Null", 4) || !memcmp(v, "NULL", 4)));
}

static const struct conf_key *find_key(const char *path)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(conf_keys[i].path, path) == 0)
            return &conf_keys[i];
    return NULL;
}

static bool is_section(const char *path)
{
    size_t n = strlen(path);
    for (size_t i = 0; i < N_KEYS; i++)
        if (strncmp(conf_keys[i].path, path, n) == 0 && conf_keys[i].path[n] == '.')
            return true;
    return false;
}

/* Scalar text of the current event, refusing embedded NULs (possible with "\0" escapes). */
static int ev_text(struct loader *L, const char *what, const char **v, size_t *n)
{
    *v = (const char *)L->ev.data.scalar.value;
    *n = L->ev.data.scalar.length;
    if (strlen(*v) != *n)
        return fail(L, ev_line(L), "%s: contains a NUL character", what);
    return 0;
}

static int walk_list(struct loader *L, const struct conf_key *k)
{
    char why[256];
    list_clear(L->c, k);
    for (;;) {
        if (next(L))
            return -1;
        if (L->ev.type == YAML_SEQUENCE_END_EVENT)
            break;
        if (L->ev.type != YAML_SCALAR_EVENT)
            return fail(L, ev_line(L), "%s: list entries must be plain values", k->path);
        const char *v;
        size_t n;
        if (ev_text(L, k->path, &v, &n))
            return -1;
        if (list_add(L->c, k, v, n, why, sizeof why))
            return fail(L, ev_line(L), "%s: %s", k->path, why);
    }
    size_t n = *(size_t *)((char *)L->c + k->off_n);
    if (n < k->min)
        return fail(L, ev_line(L), "%s: needs at least %u entries", k->path, k->min);
    return 0;
}

static int walk_leaf(struct loader *L, const struct conf_key *k)
{
    char why[256];
    size_t line = ev_line(L);
    switch (L->ev.type) {
    case YAML_ALIAS_EVENT:
        return fail(L, line, "%s: YAML aliases are not supported", k->path);
    case YAML_MAPPING_START_EVENT:
        return fail(L, line, "%s: expected %s, got a mapping", k->path, type_desc(k));
    case YAML_SEQUENCE_START_EVENT:
        if (is_list(k))
            return walk_list(L, k);
        return fail(L, line, "%s: expected %s, got a list", k->path, type_desc(k));
    case YAML_SCALAR_EVENT:
        break;
    default:
        return fail(L, line, "%s: unexpected YAML event", k->path);
    }
    if (ev_is_null(&L->ev)) {
        if (is_list(k)) {
            list_clear(L->c, k);
            if (k->min > 0)
                return fail(L, line, "%s: needs at least %u entries", k->path, k->min);
            return 0;
        }
        if (is_derived_path(k)) {
            mark_explicit(L->c, k, false);
            return 0;
        }
        return fail(L, line, "%s: missing value (expected %s)", k->path, type_desc(k));
    }
    if (is_list(k))
        return fail(L, line, "%s: expected a list, e.g. [A, B]", k->path);
    const char *v;
    size_t n;
    if (ev_text(L, k->path, &v, &n))
        return -1;
    if (set_scalar(L->c, k, v, n, why, sizeof why))
        return fail(L, line, "%s: %s", k->path, why);
    if (is_derived_path(k))
        mark_explicit(L->c, k, true);
    return 0;
}

/* ---- projects: a list of mappings (name, ae_title, description, allowed_calling_aes) ---- */

static bool valid_project_name(const char *v, size_t n)
{
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = v[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.'))
            return false;
    }
    return true;
}

/* The current event is the scalar value of key `what` of project entry `ctx`. */
static int project_scalar(struct loader *L, const char *ctx, const char *what, const char **v,
                          size_t *n)
{
    if (L->ev.type != YAML_SCALAR_EVENT || ev_is_null(&L->ev))
        return fail(L, ev_line(L), "%s.%s: expected a value", ctx, what);
    return ev_text(L, what, v, n);
}

/* ---- the items of the list sections: one mapping's keys, lists of plain values ---- */

/* Reads the next key of the item mapping `ctx`, one of keys[] (NULL-terminated; seen[] has
 * one flag per key). Returns 1 at the mapping's end; 0 with *which the key's index and the
 * current event its value; -1 when the key is not a plain word, is not one of keys[] (the
 * error ends with hint) or came before. */
static int next_item_key(struct loader *L, const char *ctx, const char *const *keys,
                         const char *hint, bool *seen, int *which)
{
    char s[48];
    if (next(L))
        return -1;
    if (L->ev.type == YAML_MAPPING_END_EVENT)
        return 1;
    size_t kline = ev_line(L);
    if (L->ev.type != YAML_SCALAR_EVENT)
        return fail(L, kline, "%s: keys must be plain words", ctx);
    const char *kv = NULL;
    size_t kn = 0;
    if (ev_text(L, "key", &kv, &kn))
        return -1;
    int ki = -1;
    for (int i = 0; keys[i] && ki < 0; i++)
        if (strlen(keys[i]) == kn && memcmp(keys[i], kv, kn) == 0)
            ki = i;
    if (ki < 0)
        return fail(L, kline, "unknown key \"%s\" in %s%s", show(kv, kn, s, sizeof s), ctx,
                    hint);
    if (seen[ki])
        return fail(L, kline, "duplicate key %s.%s", ctx, keys[ki]);
    seen[ki] = true;
    *which = ki;
    return next(L);
}

/* One list entry as a heap string (*out), or why it cannot be one. */
typedef int (*entry_parse_fn)(const char *v, size_t n, char **out, char *why, size_t whysz);

/* A list key of an item: how its errors read and how an entry is taken. */
struct value_list {
    const char *key;
    const char *list_hint;  /* after "CTX.KEY: expected a list" */
    const char *entry_rule; /* after "CTX.KEY: ", for an entry that is not a plain value */
    entry_parse_fn parse;
};

/* The current event is the value of list key CTX.KEY: null (an empty list) or a sequence of
 * plain values, each parsed onto the end of list[] (at most MT_CONF_MAX_LIST). */
static int walk_value_list(struct loader *L, const char *ctx, const struct value_list *vl,
                           char **list, size_t *count)
{
    char why[256];
    if (ev_is_null(&L->ev))
        return 0;
    if (L->ev.type != YAML_SEQUENCE_START_EVENT)
        return fail(L, ev_line(L), "%s.%s: expected a list%s", ctx, vl->key, vl->list_hint);
    for (;;) {
        const char *v = "";
        size_t n = 0;
        if (next(L))
            return -1;
        if (L->ev.type == YAML_SEQUENCE_END_EVENT)
            return 0;
        if (L->ev.type != YAML_SCALAR_EVENT)
            return fail(L, ev_line(L), "%s.%s: %s", ctx, vl->key, vl->entry_rule);
        if (ev_text(L, vl->key, &v, &n))
            return -1;
        if (*count >= MT_CONF_MAX_LIST)
            return fail(L, ev_line(L), "%s.%s: more than %d entries", ctx, vl->key,
                        MT_CONF_MAX_LIST);
        if (vl->parse(v, n, &list[*count], why, sizeof why))
            return fail(L, ev_line(L), "%s.%s: %s", ctx, vl->key, why);
        (*count)++;
    }
}

static int ae_entry(const char *v, size_t n, char **out, char *why, size_t whysz)
{
    char ae[17];
    if (parse_ae(v, n, ae, why, whysz))
        return -1;
    *out = mt_strdup(ae);
    return 0;
}

static int project_entry(const char *v, size_t n, char **out, char *why, size_t whysz)
{
    char s[48];
    if (!valid_project_name(v, n)) {
        snprintf(why, whysz, "\"%s\" is not a project name", show(v, n, s, sizeof s));
        return -1;
    }
    *out = mt_strndup(v, n);
    return 0;
}

static int uid_entry(const char *v, size_t n, char **out, char *why, size_t whysz)
{
    if (parse_uid(v, n, why, whysz))
        return -1;
    *out = mt_strndup(v, n);
    return 0;
}

static int walk_project(struct loader *L, mt_conf_project_t *p, size_t idx)
{
    static const char *const keys[] = {"name", "ae_title", "description",
                                       "allowed_calling_aes", NULL};
    static const struct value_list allow = {"allowed_calling_aes", ", e.g. [A, B]",
                                            "list entries must be plain values", ae_entry};
    char ctx[32], why[256], s[48];
    snprintf(ctx, sizeof ctx, "projects[%zu]", idx);
    size_t start_line = ev_line(L);
    bool seen[4] = {false};
    int ki, rc;
    while ((rc = next_item_key(L, ctx, keys, "", seen, &ki)) == 0) {
        const char *v = "";
        size_t n = 0;
        if (ki == 3) {
            if (walk_value_list(L, ctx, &allow, p->calling_ae_allow, &p->n_calling_ae_allow))
                return -1;
            continue;
        }
        if (project_scalar(L, ctx, keys[ki], &v, &n))
            return -1;
        if (ki == 0) {
            if (!valid_project_name(v, n))
                return fail(L, ev_line(L), "%s.name: \"%s\" is not a project name (1-64 "
                            "characters: letters, digits, '_', '-', '.')", ctx,
                            show(v, n, s, sizeof s));
            memcpy(p->name, v, n);
            p->name[n] = '\0';
        } else if (ki == 1) {
            if (parse_ae(v, n, p->ae_title, why, sizeof why))
                return fail(L, ev_line(L), "%s.ae_title: %s", ctx, why);
        } else {
            if (n > 1024 || has_ctl(v, n))
                return fail(L, ev_line(L), "%s.description: at most 1024 characters, no "
                            "control characters", ctx);
            p->description = mt_strndup(v, n);
        }
    }
    if (rc < 0)
        return -1;
    if (!seen[0])
        return fail(L, start_line, "%s: name is required", ctx);
    if (!seen[1])
        return fail(L, start_line, "%s: ae_title is required", ctx);
    return 0;
}

/* How one list section (a YAML list of mappings) reads in its errors, and how long it may be. */
struct list_shape {
    const char *name;      /* the section */
    const char *list_hint; /* after "NAME: expected a list" */
    const char *item_hint; /* after "NAME[i]: expected a mapping" */
    const char *max_noun;  /* after "NAME: more than MAX" */
    size_t max;
};

/* After the key of a list section: the current event is its value. null is an empty list;
 * otherwise each item must be a mapping, which item() reads (its index and first line). */
static int walk_items(struct loader *L, const struct list_shape *sh,
                      int (*item)(struct loader *L, size_t idx, size_t line))
{
    if (ev_is_null(&L->ev))
        return 0;
    if (L->ev.type != YAML_SEQUENCE_START_EVENT)
        return fail(L, ev_line(L), "%s: expected a list%s", sh->name, sh->list_hint);
    for (size_t idx = 0;; idx++) {
        if (next(L))
            return -1;
        if (L->ev.type == YAML_SEQUENCE_END_EVENT)
            return 0;
        size_t line = ev_line(L);
        if (L->ev.type != YAML_MAPPING_START_EVENT)
            return fail(L, line, "%s[%zu]: expected a mapping%s", sh->name, idx, sh->item_hint);
        if (idx >= sh->max)
            return fail(L, line, "%s: more than %zu%s", sh->name, sh->max, sh->max_noun);
        if (item(L, idx, line))
            return -1;
    }
}

static int project_item(struct loader *L, size_t idx, size_t line)
{
    mt_conf_t *c = L->c;
    c->projects = mt_realloc(c->projects, (c->n_projects + 1) * sizeof *c->projects);
    mt_conf_project_t *p = &c->projects[c->n_projects++];
    memset(p, 0, sizeof *p);
    if (walk_project(L, p, idx))
        return -1;
    for (size_t i = 0; i < idx; i++) {
        if (strcmp(c->projects[i].name, p->name) == 0)
            return fail(L, line, "projects[%zu]: duplicate project name %s", idx, p->name);
        if (ae_same(c->projects[i].ae_title, p->ae_title))
            return fail(L, line, "projects[%zu]: AE title %s already used by project %s", idx,
                        p->ae_title, c->projects[i].name);
    }
    L->projects_line = line;
    return 0;
}

static int walk_projects(struct loader *L)
{
    static const struct list_shape shape = {"projects", " of projects (- name: ...)",
                                            " (name:, ae_title:, ...)", " projects",
                                            MT_CONF_MAX_PROJECTS};
    projects_free(L->c);
    return walk_items(L, &shape, project_item);
}

/* ---- move_destinations: a list of mappings (ae_title, host, port) ---- */

static int walk_dest(struct loader *L, mt_conf_dest_t *d, size_t idx)
{
    static const char *const keys[] = {"ae_title", "host", "port", NULL};
    char ctx[40], why[256];
    snprintf(ctx, sizeof ctx, "move_destinations[%zu]", idx);
    size_t start_line = ev_line(L);
    bool seen[3] = {false};
    int ki, rc;
    uint64_t port;
    while ((rc = next_item_key(L, ctx, keys, " (ae_title, host, port)", seen, &ki)) == 0) {
        const char *v = "";
        size_t n = 0;
        if (project_scalar(L, ctx, keys[ki], &v, &n))
            return -1;
        if (ki == 0) {
            if (parse_ae(v, n, d->ae_title, why, sizeof why))
                return fail(L, ev_line(L), "%s.ae_title: %s", ctx, why);
        } else if (ki == 1) {
            if (n == 0 || n >= sizeof d->host || has_ctl(v, n) || memchr(v, ' ', n))
                return fail(L, ev_line(L), "%s.host: expected a host name or address", ctx);
            memcpy(d->host, v, n);
            d->host[n] = '\0';
        } else {
            if (!parse_digits(v, n, &port) || port < 1 || port > 65535)
                return fail(L, ev_line(L), "%s.port: expected 1-65535", ctx);
            d->port = (uint16_t)port;
        }
    }
    if (rc < 0)
        return -1;
    if (!seen[0] || !seen[1] || !seen[2])
        return fail(L, start_line, "%s: ae_title, host and port are required", ctx);
    return 0;
}

static int dest_item(struct loader *L, size_t idx, size_t line)
{
    mt_conf_t *c = L->c;
    c->dests = mt_realloc(c->dests, (c->n_dests + 1) * sizeof *c->dests);
    mt_conf_dest_t *d = &c->dests[c->n_dests++];
    memset(d, 0, sizeof *d);
    if (walk_dest(L, d, idx))
        return -1;
    for (size_t i = 0; i < idx; i++)
        if (ae_same(c->dests[i].ae_title, d->ae_title))
            return fail(L, line, "move_destinations[%zu]: duplicate AE title %s", idx,
                        d->ae_title);
    return 0;
}

static int walk_dests(struct loader *L)
{
    static const struct list_shape shape = {"move_destinations",
                                            " (- ae_title: ..., host: ..., port: ...)", "",
                                            " entries", MT_CONF_MAX_DESTS};
    mt_free(L->c->dests);
    L->c->dests = NULL;
    L->c->n_dests = 0;
    return walk_items(L, &shape, dest_item);
}

/* ---- users: a list of mappings (name, password, token, admin, projects) ---- */

static bool valid_secret_hash(const char *v, size_t n)
{
    if (n > 512 || has_ctl(v, n))
        return false;
    return (n > 7 && memcmp(v, "sha256$", 7) == 0) ||
           (n > 14 && memcmp(v, "pbkdf2-sha256$", 14) == 0);
}

static int walk_user(struct loader *L, mt_conf_user_t *u, size_t idx)
{
    static const char *const keys[] = {"name", "password", "token", "admin", "projects", NULL};
    static const struct value_list projects = {"projects", ", e.g. [a, b]",
                                               "entries must be project names", project_entry};
    char ctx[32], s[48];
    snprintf(ctx, sizeof ctx, "users[%zu]", idx);
    size_t start_line = ev_line(L);
    bool seen[5] = {false};
    int ki, rc;
    while ((rc = next_item_key(L, ctx, keys, "", seen, &ki)) == 0) {
        const char *v = "";
        size_t n = 0;
        if (ki == 4) {
            if (walk_value_list(L, ctx, &projects, u->projects, &u->n_projects))
                return -1;
            continue;
        }
        if (project_scalar(L, ctx, keys[ki], &v, &n))
            return -1;
        if (ki == 0) {
            if (!valid_project_name(v, n))
                return fail(L, ev_line(L), "%s.name: \"%s\" is not a user name (1-64 "
                            "characters: letters, digits, '_', '-', '.')", ctx,
                            show(v, n, s, sizeof s));
            memcpy(u->name, v, n);
            u->name[n] = '\0';
        } else if (ki == 1 || ki == 2) {
            if (!valid_secret_hash(v, n))
                return fail(L, ev_line(L), "%s.%s: expected a hash \"sha256$HEX\" or "
                            "\"pbkdf2-sha256$ITER$SALT$HASH\" (mitral passwd prints one), never "
                            "the secret itself", ctx, keys[ki]);
            *(ki == 1 ? &u->password_hash : &u->token_hash) = mt_strndup(v, n);
        } else {
            if (n == 4 && memcmp(v, "true", 4) == 0)
                u->admin = true;
            else if (n == 5 && memcmp(v, "false", 5) == 0)
                u->admin = false;
            else
                return fail(L, ev_line(L), "%s.admin: expected true or false", ctx);
        }
    }
    if (rc < 0)
        return -1;
    if (!seen[0])
        return fail(L, start_line, "%s: name is required", ctx);
    if (!seen[1] && !seen[2])
        return fail(L, start_line, "%s: password or token is required", ctx);
    return 0;
}

static int user_item(struct loader *L, size_t idx, size_t line)
{
    mt_conf_t *c = L->c;
    c->users = mt_realloc(c->users, (c->n_users + 1) * sizeof *c->users);
    mt_conf_user_t *u = &c->users[c->n_users++];
    memset(u, 0, sizeof *u);
    if (walk_user(L, u, idx))
        return -1;
    for (size_t i = 0; i < idx; i++)
        if (strcmp(c->users[i].name, u->name) == 0)
            return fail(L, line, "users[%zu]: duplicate user name %s", idx, u->name);
    return 0;
}

static int walk_users(struct loader *L)
{
    static const struct list_shape shape = {"users", " of users (- name: ...)",
                                            " (name:, password:, ...)", " users",
                                            MT_CONF_MAX_USERS};
    users_free(L->c);
    return walk_items(L, &shape, user_item);
}

/* ---- destinations: a list of mappings. DICOM: name, ae_title, host, port,
 * transfer_syntaxes, associations, calling_ae. DICOMweb (STOW-RS): name, stow_url and the
 * DEST_WEB_KEYS (indexes 7-16 of walk_destination's table, in this order). ---- */

#define DEST_WEB_KEYS                                                                              \
    "stow_url", "user", "password_file", "token_file", "ca_file", "tls_insecure_skip_verify",      \
        "connections", "request_timeout", "max_instances_per_request", "max_request_mb"

/* <n>ms | <n>s | <n>m | <n>h | <n> (seconds), 1 s - 1 h. */
static bool dest_duration(const char *v, size_t n, uint32_t *ms)
{
    size_t d = 0;
    uint64_t x;
    while (d < n && v[d] >= '0' && v[d] <= '9')
        d++;
    const char *u = v + d;
    size_t un = n - d;
    uint64_t mul = un == 0 || (un == 1 && *u == 's')    ? 1000
                   : un == 2 && memcmp(u, "ms", 2) == 0 ? 1
                   : un == 1 && *u == 'm'               ? 60000
                   : un == 1 && *u == 'h'               ? 3600000
                                                        : 0;
    if (!mul || !parse_digits(v, d, &x) || x > 3600000 || x * mul < 1000 || x * mul > 3600000)
        return false;
    *ms = (uint32_t)(x * mul);
    return true;
}

static int dest_file(struct loader *L, char *out, size_t outsz, const char *ctx, const char *key,
                     const char *v, size_t n)
{
    char s[48];
    if (n == 0 || n >= outsz || has_ctl(v, n))
        return fail(L, ev_line(L), "%s.%s: \"%s\" is not a file name", ctx, key,
                    show(v, n, s, sizeof s));
    memcpy(out, v, n);
    out[n] = '\0';
    return 0;
}

/* The value of DICOMweb key ki (7-16 but 13) of destination d. */
static int dest_web_value(struct loader *L, mt_conf_destination_t *d, const char *ctx,
                          const char *key, int ki, const char *v, size_t n)
{
    char s[48];
    uint64_t x;
    const char *why = NULL;
    mt_httpc_url_t u;
    switch (ki) {
    case 7:
        if (n >= sizeof d->stow_url)
            return fail(L, ev_line(L), "%s.stow_url: longer than %zu characters", ctx,
                        sizeof d->stow_url - 1);
        memcpy(d->stow_url, v, n);
        d->stow_url[n] = '\0';
        if (mt_httpc_url_parse(d->stow_url, &u, &why))
            return fail(L, ev_line(L), "%s.stow_url: \"%s\": %s", ctx, show(v, n, s, sizeof s),
                        why);
        return 0;
    case 8:
        if (n == 0 || n >= sizeof d->auth_user || has_ctl(v, n) || memchr(v, ':', n))
            return fail(L, ev_line(L),
                        "%s.user: \"%s\" is not a user name (1-64 characters, "
                        "no ':')",
                        ctx, show(v, n, s, sizeof s));
        memcpy(d->auth_user, v, n);
        d->auth_user[n] = '\0';
        return 0;
    case 9:
        return dest_file(L, d->password_file, sizeof d->password_file, ctx, key, v, n);
    case 10:
        return dest_file(L, d->token_file, sizeof d->token_file, ctx, key, v, n);
    case 11:
        return dest_file(L, d->ca_file, sizeof d->ca_file, ctx, key, v, n);
    case 12:
        if (n == 4 && memcmp(v, "true", 4) == 0)
            d->tls_insecure_skip_verify = true;
        else if (!(n == 5 && memcmp(v, "false", 5) == 0))
            return fail(L, ev_line(L), "%s.%s: expected true or false", ctx, key);
        return 0;
    case 14:
        if (!dest_duration(v, n, &d->request_timeout_ms))
            return fail(L, ev_line(L),
                        "%s.request_timeout: \"%s\" is not a duration of 1s-1h "
                        "(e.g. 120s, 5m)",
                        ctx, show(v, n, s, sizeof s));
        return 0;
    case 15:
    case 16:
        if (!parse_digits(v, n, &x) || x < 1 || x > (ki == 15 ? 1000 : 4096))
            return fail(L, ev_line(L), "%s.%s: \"%s\" is out of range (1-%d)", ctx, key,
                        show(v, n, s, sizeof s), ki == 15 ? 1000 : 4096);
        if (ki == 15)
            d->max_instances = (uint32_t)x;
        else
            d->max_request_mb = (uint32_t)x;
        return 0;
    }
    return 0;
}

/* A DICOMweb destination: no DICOM keys, one way to authenticate, TLS keys only for https. */
static int dest_web_check(struct loader *L, mt_conf_destination_t *d, const char *ctx, size_t line,
                          const bool *seen)
{
    static const char *const dicom_keys[] = {
        "", "ae_title", "host", "port", "transfer_syntaxes", "associations", "calling_ae"};
    for (int i = 1; i < 7; i++)
        if (seen[i])
            return fail(L, line, "%s.%s: a DICOMweb destination (stow_url) has no %s%s", ctx,
                        dicom_keys[i], dicom_keys[i], i == 5 ? " (use connections)" : "");
    if (d->token_file[0] && (d->auth_user[0] || d->password_file[0]))
        return fail(L, line,
                    "%s: token_file (Bearer) and user/password_file (Basic) are two "
                    "ways to authenticate: give one",
                    ctx);
    if (!d->auth_user[0] != !d->password_file[0])
        return fail(L, line, "%s: HTTP Basic needs both user and password_file", ctx);
    mt_httpc_url_t u;
    const char *why;
    mt_httpc_url_parse(d->stow_url, &u, &why);
    if (!u.tls && (d->ca_file[0] || d->tls_insecure_skip_verify))
        return fail(L, line,
                    "%s: ca_file and tls_insecure_skip_verify need an https:// "
                    "stow_url",
                    ctx);
    if (d->ca_file[0] && d->tls_insecure_skip_verify)
        return fail(L, line,
                    "%s: ca_file with tls_insecure_skip_verify: true (nothing would be "
                    "verified)",
                    ctx);
    if (!d->request_timeout_ms)
        d->request_timeout_ms = 120000;
    if (!d->max_instances)
        d->max_instances = 16;
    if (!d->max_request_mb)
        d->max_request_mb = 64;
    return 0;
}

static int walk_destination(struct loader *L, mt_conf_destination_t *d, size_t idx)
{
    static const char *const keys[] = {"name",       "ae_title",          "host",
                                       "port",       "transfer_syntaxes", "associations",
                                       "calling_ae", DEST_WEB_KEYS,       NULL};
    static const struct value_list syntaxes = {"transfer_syntaxes", " of UIDs",
                                               "entries must be UIDs", uid_entry};
    char ctx[40], why[256], s[48];
    snprintf(ctx, sizeof ctx, "destinations[%zu]", idx);
    size_t start_line = ev_line(L);
    bool seen[sizeof keys / sizeof keys[0]] = {false};
    uint64_t x;
    int ki, rc;
    while ((rc = next_item_key(L, ctx, keys, "", seen, &ki)) == 0) {
        const char *v = "";
        size_t n = 0;
        if (ki == 4) {
            if (walk_value_list(L, ctx, &syntaxes, d->ts, &d->n_ts))
                return -1;
            continue;
        }
        if (project_scalar(L, ctx, keys[ki], &v, &n))
            return -1;
        switch (ki) {
        case 0:
            if (!valid_project_name(v, n))
                return fail(L, ev_line(L), "%s.name: \"%s\" is not a destination name (1-64 "
                            "characters: letters, digits, '_', '-', '.')", ctx,
                            show(v, n, s, sizeof s));
            memcpy(d->name, v, n);
            d->name[n] = '\0';
            break;
        case 1:
            if (parse_ae(v, n, d->ae_title, why, sizeof why))
                return fail(L, ev_line(L), "%s.ae_title: %s", ctx, why);
            break;
        case 6:
            if (parse_ae(v, n, d->calling_ae, why, sizeof why))
                return fail(L, ev_line(L), "%s.calling_ae: %s", ctx, why);
            break;
        case 2:
            if (n == 0 || n >= sizeof d->host || has_ctl(v, n) || memchr(v, ' ', n))
                return fail(L, ev_line(L), "%s.host: \"%s\" is not a host name or address", ctx,
                            show(v, n, s, sizeof s));
            memcpy(d->host, v, n);
            d->host[n] = '\0';
            break;
        case 3:
            if (!parse_digits(v, n, &x) || x < 1 || x > 65535)
                return fail(L, ev_line(L), "%s.port: \"%s\" is not a port number (1-65535)", ctx,
                            show(v, n, s, sizeof s));
            d->port = (uint16_t)x;
            break;
        case 5:
        case 13: /* connections */
            if (!parse_digits(v, n, &x) || x < 1 || x > 64)
                return fail(L, ev_line(L), "%s.%s: \"%s\" is out of range (1-64)", ctx, keys[ki],
                            show(v, n, s, sizeof s));
            d->associations = (uint32_t)x;
            break;
        default:
            if (dest_web_value(L, d, ctx, keys[ki], ki, v, n))
                return -1;
        }
    }
    if (rc < 0)
        return -1;
    if (!seen[0])
        return fail(L, start_line, "%s: name is required", ctx);
    if (seen[7])
        return dest_web_check(L, d, ctx, start_line, seen);
    for (int i = 8; i < 17; i++)
        if (seen[i])
            return fail(L, start_line, "%s.%s: only for a DICOMweb destination (stow_url)", ctx,
                        keys[i]);
    if (!seen[1] || !seen[2] || !seen[3])
        return fail(L, start_line,
                    "%s: ae_title, host and port (a DICOM destination) or stow_url (DICOMweb) "
                    "are required",
                    ctx);
    return 0;
}

static int destination_item(struct loader *L, size_t idx, size_t line)
{
    mt_conf_t *c = L->c;
    c->destinations =
        mt_realloc(c->destinations, (c->n_destinations + 1) * sizeof *c->destinations);
    mt_conf_destination_t *d = &c->destinations[c->n_destinations++];
    memset(d, 0, sizeof *d);
    if (walk_destination(L, d, idx))
        return -1;
    for (size_t i = 0; i < idx; i++)
        if (strcmp(c->destinations[i].name, d->name) == 0)
            return fail(L, line, "destinations[%zu]: duplicate destination name %s", idx,
                        d->name);
    return 0;
}

static int walk_destinations(struct loader *L)
{
    static const struct list_shape shape = {"destinations", " (- name: ...)",
                                            " (name:, ae_title:, ...)", "",
                                            MT_CONF_MAX_DESTINATIONS};
    destinations_free(L->c);
    return walk_items(L, &shape, destination_item);
}

/* Top-level sections that hold a list of mappings, each parsed by its own walker (not in
 * keys.def). */
struct list_section {
    const char *name;
    size_t seen_offset; /* of the struct loader flag that catches a duplicate section */
    int (*walk)(struct loader *L);
};

static const struct list_section list_sections[] = {
    {"projects", offsetof(struct loader, seen_projects), walk_projects},
    {"move_destinations", offsetof(struct loader, seen_dests), walk_dests},
    {"users", offsetof(struct loader, seen_users), walk_users},
    {"destinations", offsetof(struct loader, seen_destinations), walk_destinations},
};

static const struct list_section *find_list_section(const char *kv, size_t kn)
{
    for (size_t i = 0; i < sizeof list_sections / sizeof list_sections[0]; i++)
        if (strlen(list_sections[i].name) == kn && memcmp(list_sections[i].name, kv, kn) == 0)
            return &list_sections[i];
    return NULL;
}

/* Called after the MAPPING-START of the section `prefix` ("" for the top level). */
static int walk_mapping(struct loader *L, const char *prefix)
{
    for (;;) {
        if (next(L))
            return -1;
        if (L->ev.type == YAML_MAPPING_END_EVENT)
            return 0;
        size_t kline = ev_line(L);
        if (L->ev.type != YAML_SCALAR_EVENT)
            return fail(L, kline, "%s: keys must be plain words", *prefix ? prefix : "top level");
        const char *kv = NULL;
        size_t kn = 0;
        if (ev_text(L, "key", &kv, &kn))
            return -1;
        char path[CONF_MAX_KEYPATH], s[48];
        const struct list_section *ls = *prefix ? NULL : find_list_section(kv, kn);
        if (ls) {
            bool *seen = (bool *)((char *)L + ls->seen_offset);
            if (*seen)
                return fail(L, kline, "duplicate section %s", ls->name);
            *seen = true;
            if (next(L) || ls->walk(L))
                return -1;
            continue;
        }
        int w = snprintf(path, sizeof path, "%s%s%.*s", prefix, *prefix ? "." : "", (int)kn, kv);
        const struct conf_key *k = NULL;
        bool section = false;
        if (w > 0 && (size_t)w < sizeof path && !has_ctl(kv, kn)) {
            k = find_key(path);
            section = !k && is_section(path);
        }
        if (!k && !section) {
            if (*prefix)
                return fail(L, kline, "unknown key \"%s\" in section %s", show(kv, kn, s, sizeof s),
                            prefix);
            return fail(L, kline, "unknown section \"%s\"", show(kv, kn, s, sizeof s));
        }
        if (k) {
            size_t i = (size_t)(k - conf_keys);
            if (L->seen[i])
                return fail(L, kline, "duplicate key %s", path);
            L->seen[i] = true;
        } else {
            for (size_t i = 0; i < L->n_sections; i++)
                if (strcmp(L->sections[i], path) == 0)
                    return fail(L, kline, "duplicate section %s", path);
            if (L->n_sections < sizeof L->sections / sizeof L->sections[0])
                memcpy(L->sections[L->n_sections++], path, (size_t)w + 1);
        }
        if (next(L))
            return -1;
        if (k) {
            if (walk_leaf(L, k))
                return -1;
            continue;
        }
        if (L->ev.type == YAML_MAPPING_START_EVENT) {
            if (walk_mapping(L, path))
                return -1;
        } else if (!ev_is_null(&L->ev)) { /* "log:" with nothing under it is an empty section */
            return fail(L, ev_line(L), "%s: expected a mapping of keys (section)", path);
        }
    }
}

static int walk_stream(struct loader *L)
{
    if (next(L)) /* STREAM-START */
        return -1;
    if (next(L))
        return -1;
    if (L->ev.type == YAML_STREAM_END_EVENT) /* empty file: all defaults */
        return 0;
    if (next(L)) /* the root node */
        return -1;
    if (L->ev.type == YAML_MAPPING_START_EVENT) {
        if (walk_mapping(L, ""))
            return -1;
    } else if (!ev_is_null(&L->ev)) {
        return fail(L, ev_line(L), "the top level must be a mapping of sections (node:, ...)");
    }
    if (next(L)) /* DOCUMENT-END */
        return -1;
    if (next(L))
        return -1;
    if (L->ev.type != YAML_STREAM_END_EVENT)
        return fail(L, ev_line(L), "only one YAML document is allowed");
    return 0;
}

mt_conf_t *mt_conf_load_string(const char *yaml, size_t len, const char *name, char *err,
                               size_t errsz)
{
    struct loader *L = mt_calloc(1, sizeof *L);
    L->name = name ? name : "<string>";
    L->err = err;
    L->errsz = errsz;
    if (err && errsz)
        err[0] = '\0';
    L->c = mt_calloc(1, sizeof *L->c);
    apply_defaults(L->c);
    if (!yaml_parser_initialize(&L->parser)) {
        fail(L, 0, "out of memory");
        goto fail;
    }
    yaml_parser_set_input_string(&L->parser, (const unsigned char *)yaml, len);
    int rc = walk_stream(L);
    if (L->have_ev)
        yaml_event_delete(&L->ev);
    yaml_parser_delete(&L->parser);
    if (rc)
        goto fail;
    if (mt_conf_project_by_ae(L->c, L->c->ae_title)) {
        const mt_conf_project_t *p = mt_conf_project_by_ae(L->c, L->c->ae_title);
        fail(L, L->projects_line, "project %s: AE title %s is node.ae_title", p->name,
             p->ae_title);
        goto fail;
    }
    for (size_t i = 0; i < L->c->n_users; i++)
        for (size_t k = 0; k < L->c->users[i].n_projects; k++)
            if (!mt_conf_project_by_name(L->c, L->c->users[i].projects[k])) {
                fail(L, 0, "users[%zu] (%s): no project named %s", i, L->c->users[i].name,
                     L->c->users[i].projects[k]);
                goto fail;
            }
    derive_paths(L->c);
    mt_conf_t *c = L->c;
    mt_free(L);
    return c;

fail:
    mt_conf_free(L->c);
    mt_free(L);
    return NULL;
}

mt_conf_t *mt_conf_load(const char *path, char *err, size_t errsz)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errsz, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = mt_malloc(CONF_MAX_FILE + 1);
    size_t n = fread(buf, 1, CONF_MAX_FILE + 1, f);
    int rerr = ferror(f) ? errno : 0;
    fclose(f);
    mt_conf_t *c = NULL;
    if (rerr)
        snprintf(err, errsz, "%s: cannot read: %s", path, strerror(rerr));
    else if (n > CONF_MAX_FILE)
        snprintf(err, errsz, "%s: larger than %u bytes", path, CONF_MAX_FILE);
    else
        c = mt_conf_load_string(buf, n, path, err, errsz);
    mt_free(buf);
    return c;
}
