/*
 * web.c - DICOMweb front door: base URLs, authentication, scope, routing (PS3.18 §6-§10).
 *
 *   /dicomweb/...                    every study      admin users (or, with no users
 *                                                     configured, loopback clients)
 *   /projects/NAME/dicomweb/...      NAME's studies   users holding NAME, and admins
 *
 * Under a base:
 *   GET  studies | series | instances                          QIDO-RS (qido.c)
 *   GET  studies/S/series | studies/S/instances |
 *        studies/S/series/R/instances                           QIDO-RS
 *   GET  studies/S[/series/R[/instances/I]]                     WADO-RS instances (wado.c)
 *   GET  .../metadata                                            WADO-RS metadata
 *   GET  studies/S/series/R/instances/I/frames/1,2,3             WADO-RS frames
 *   GET  .../instances/I/bulkdata/TAG                            WADO-RS bulk data
 *   GET  .../instances/I/bulkdata/SEQ/ITEM/.../TAG               nested in sequences (1-based)
 *   GET  .../rendered | .../thumbnail (instance, frames/N/rendered)  rendered (JPEG/PNG)
 *   GET  wado?requestType=WADO&studyUID=&seriesUID=&objectUID=   WADO-URI
 *   POST studies | studies/S                                     STOW-RS (stow.c)
 * (The WADO-URI path is also served at /wado for the node-wide scope.)
 *
 * Authentication (auth.h): "Authorization: Basic" or "Bearer". No header -> 401 with
 * WWW-Authenticate (Basic and Bearer challenges); wrong credentials -> 401; a user outside
 * the base's scope -> 403; an unknown project -> 404. With no users configured at all, only
 * loopback clients are served, as admins; anyone else gets 401 (safe default: a node bound
 * to a public address does not serve images to the network until users exist).
 * Verified Basic credentials are remembered per config snapshot (SHA-256 of the header
 * value), so PBKDF2 costs once per user and snapshot, not once per request.
 */
#include "web.h"

#include <ctype.h>
#include <http_parser.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "../dicom/dict.h"
#include "../util/alloc.h"
#include "../util/err.h"
#include "../util/log.h"
#include "auth.h"

#define TAG_QR_LEVEL MT_TAG(0x0008, 0x0052)
#define TAG_CHARSET MT_TAG(0x0008, 0x0005)
#define CACHE_N 32

struct mt_web {
    mt_node_t *node;
    mt_http_server_t *srv;
    struct {
        const mt_conf_t *conf;
        unsigned char key[32];
        size_t user;
        bool used;
    } cache[CACHE_N];
    unsigned cache_next;
};

/* ---- requests ---- */

void mt__web_req_free(mt_web_req_t *wr)
{
    if (!wr)
        return;
    for (size_t i = 0; i < wr->n_segs; i++)
        mt_free(wr->segs[i]);
    for (size_t i = 0; i < wr->n_params; i++) {
        mt_free(wr->params[i].key);
        mt_free(wr->params[i].value);
    }
    if (wr->conf)
        mt_node_conf_unref(wr->node, wr->conf);
    mt_free(wr);
}

void mt__web_fail(mt_web_req_t *wr, int status, const char *msg)
{
    char body[512];
    int n = snprintf(body, sizeof body, "%s\n", msg);
    mt_http_respond(wr->r, status, "text/plain", NULL, body, (size_t)n);
    mt__web_req_free(wr);
}

const char *mt__web_param(const mt_web_req_t *wr, const char *key)
{
    for (size_t i = 0; i < wr->n_params; i++)
        if (strcmp(wr->params[i].key, key) == 0)
            return wr->params[i].value;
    return NULL;
}

const char *mt__web_accept_of(mt_web_req_t *wr)
{
    for (size_t i = 0; i < wr->n_params; i++) {
        if (strcmp(wr->params[i].key, "accept") != 0)
            continue;
        /* an unencoded '+' (application/dicom+json) was decoded as a space: between two
         * token characters a space cannot be the list's whitespace (around ',', ';', '=') */
        char *v = wr->params[i].value;
        for (size_t j = 1; v[0] && v[j] && v[j + 1]; j++)
            if (v[j] == ' ' && isalnum((unsigned char)v[j - 1]) &&
                isalnum((unsigned char)v[j + 1]))
                v[j] = '+';
        return v;
    }
    return mt_http_header(wr->r, "accept");
}

bool mt__web_accepts_json(mt_web_req_t *wr)
{
    mt_web_accept_t acc[16];
    size_t na = mt__web_accept(mt__web_accept_of(wr), acc, 16);
    for (size_t i = 0; i < na; i++)
        if (acc[i].q > 0 && (mt__web_type_ok(acc[i].type, "application/dicom+json") ||
                             strcmp(acc[i].type, "application/json") == 0))
            return true;
    return false;
}

static int hexv(int c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Query component decoding ('+' is a space); NULL on a bad escape or a NUL. */
static char *qdecode(const char *s, size_t n)
{
    char *o = mt_malloc(n + 1);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            o[j++] = ' ';
        } else if (s[i] == '%') {
            if (i + 2 >= n) {
                mt_free(o);
                return NULL;
            }
            int a = hexv((unsigned char)s[i + 1]), b = hexv((unsigned char)s[i + 2]);
            if (a < 0 || b < 0 || (a | b) == 0) {
                mt_free(o);
                return NULL;
            }
            o[j++] = (char)(a * 16 + b);
            i += 2;
        } else {
            o[j++] = s[i];
        }
    }
    o[j] = 0;
    return o;
}

static int parse_query(mt_web_req_t *wr, const char *q)
{
    const char *p = q;
    while (*p) {
        const char *e = strchr(p, '&');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n) {
            if (wr->n_params >= MT_WEB_MAX_PARAMS)
                return MT_ETOOBIG;
            const char *eq = memchr(p, '=', n);
            size_t kn = eq ? (size_t)(eq - p) : n;
            char *k = qdecode(p, kn);
            char *v = eq ? qdecode(eq + 1, n - kn - 1) : mt_strdup("");
            if (!k || !v) {
                mt_free(k);
                mt_free(v);
                return MT_EMALFORMED;
            }
            wr->params[wr->n_params].key = k;
            wr->params[wr->n_params].value = v;
            wr->n_params++;
        }
        p += n;
        if (*p == '&')
            p++;
    }
    return 0;
}

static int split_path(const char *path, char **segs, size_t max, size_t *n)
{
    *n = 0;
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (*n >= max)
            return MT_ETOOBIG;
        segs[(*n)++] = mt_strndup(p, len);
        p += len;
    }
    return 0;
}

/* ---- Accept ---- */

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s + 32);
}

static void param_of(const char *range, const char *name, char *out, size_t outsz)
{
    out[0] = 0;
    const char *p = range;
    size_t nn = strlen(name);
    while ((p = strchr(p, ';'))) {
        p++;
        while (*p == ' ')
            p++;
        if (strncasecmp(p, name, nn) == 0 && p[nn] == '=') {
            p += nn + 1;
            size_t o = 0;
            bool quoted = *p == '"';
            if (quoted)
                p++;
            while (*p && (quoted ? *p != '"' : (*p != ';' && *p != ' ')) && o + 1 < outsz)
                out[o++] = *p++;
            out[o] = 0;
            return;
        }
    }
}

size_t mt__web_accept(const char *accept, mt_web_accept_t *out, size_t max)
{
    if (!accept || !*accept)
        accept = "*/*";
    size_t n = 0;
    const char *p = accept;
    while (*p && n < max) {
        /* split at commas that are not inside quotes */
        const char *s = p;
        bool q = false;
        while (*p && (q || *p != ',')) {
            if (*p == '"')
                q = !q;
            p++;
        }
        size_t len = (size_t)(p - s);
        if (*p == ',')
            p++;
        char range[512];
        if (len >= sizeof range)
            len = sizeof range - 1;
        memcpy(range, s, len);
        range[len] = 0;
        char *r = range;
        while (*r == ' ')
            r++;
        if (!*r)
            continue;
        mt_web_accept_t *a = &out[n];
        memset(a, 0, sizeof *a);
        size_t t = 0;
        while (r[t] && r[t] != ';' && r[t] != ' ' && t + 1 < sizeof a->type) {
            a->type[t] = r[t];
            t++;
        }
        a->type[t] = 0;
        lower(a->type);
        param_of(r, "type", a->part_type, sizeof a->part_type);
        lower(a->part_type);
        param_of(r, "transfer-syntax", a->ts, sizeof a->ts);
        char qs[16];
        param_of(r, "q", qs, sizeof qs);
        a->q = qs[0] ? (float)atof(qs) : 1.0f;
        n++;
    }
    /* stable sort by q, highest first */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && out[j].q > out[j - 1].q; j--) {
            mt_web_accept_t tmp = out[j];
            out[j] = out[j - 1];
            out[j - 1] = tmp;
        }
    return n;
}

bool mt__web_type_ok(const char *range, const char *t)
{
    if (strcmp(range, "*/*") == 0 || strcmp(range, "*") == 0)
        return true;
    size_t rn = strlen(range);
    if (rn > 2 && strcmp(range + rn - 2, "/*") == 0)
        return strncmp(range, t, rn - 1) == 0;
    return strcmp(range, t) == 0;
}

/* ---- identifiers ---- */

mt_ds_t *mt__web_identifier(mt_index_level_t level, const char *study, const char *series,
                            const char *instance)
{
    mt_ds_t *id = mt_ds_new();
    mt_ds_set_string(id, TAG_QR_LEVEL, MT_VR('C', 'S'), mt_query_level_name(level));
    mt_ds_set_string(id, TAG_CHARSET, MT_VR('C', 'S'), "ISO_IR 192");
    if (study)
        mt_ds_set_string(id, MT_TAG(0x0020, 0x000D), MT_VR('U', 'I'), study);
    if (series)
        mt_ds_set_string(id, MT_TAG(0x0020, 0x000E), MT_VR('U', 'I'), series);
    if (instance)
        mt_ds_set_string(id, MT_TAG(0x0008, 0x0018), MT_VR('U', 'I'), instance);
    return id;
}

/* ---- authentication ---- */

static const mt_conf_user_t *authenticate(mt_web_t *w, const mt_conf_t *c, const char *hdr,
                                          mt_auth_result_t *res)
{
    if (!hdr) {
        *res = MT_AUTH_NONE;
        return NULL;
    }
    unsigned char key[32];
    SHA256((const unsigned char *)hdr, strlen(hdr), key);
    for (unsigned i = 0; i < CACHE_N; i++)
        if (w->cache[i].used && w->cache[i].conf == c &&
            CRYPTO_memcmp(w->cache[i].key, key, 32) == 0 && w->cache[i].user < c->n_users) {
            *res = MT_AUTH_OK;
            return &c->users[w->cache[i].user];
        }
    const mt_conf_user_t *u = mt_auth_check(c, hdr, res);
    if (u && *res == MT_AUTH_OK && strncasecmp(hdr, "Basic ", 6) == 0) {
        unsigned i = w->cache_next++ % CACHE_N;
        w->cache[i].used = true;
        w->cache[i].conf = c;
        memcpy(w->cache[i].key, key, 32);
        w->cache[i].user = (size_t)(u - c->users);
    }
    return u;
}

static const char challenge[] =
    "WWW-Authenticate: Basic realm=\"mitral\", charset=\"UTF-8\"\r\n"
    "WWW-Authenticate: Bearer realm=\"mitral\"\r\n";

static bool is_uid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
            return false;
    return true;
}

/* ---- routing ---- */

static void route(mt_web_req_t *wr)
{
    mt_http_req_t *r = wr->r;
    char **s = wr->segs;
    size_t n = wr->n_segs;
    bool get = r->method == HTTP_GET || r->method == HTTP_HEAD;
    bool post = r->method == HTTP_POST;
    for (size_t i = 0; i < n; i++) {
        /* a UID position must hold a UID; keep messages free of the values (PHI-safe) */
        if (i % 2 == 1 && i <= 5 && (strcmp(s[i - 1], "studies") == 0 ||
                                     strcmp(s[i - 1], "series") == 0 ||
                                     strcmp(s[i - 1], "instances") == 0)) {
            if (!is_uid(s[i])) {
                mt__web_fail(wr, 400, "malformed UID in the path");
                return;
            }
        }
    }
    if (n == 1 && strcmp(s[0], "wado") == 0 && get) {
        mt__wado_uri(wr);
        return;
    }
    if (n == 0) {
        mt__web_fail(wr, 404, "DICOMweb base: use studies, series, instances");
        return;
    }
    if (n == 1) {
        if (strcmp(s[0], "studies") == 0 && post) {
            mt__stow(wr, NULL);
            return;
        }
        if (!get)
            goto method;
        if (strcmp(s[0], "studies") == 0)
            mt__qido(wr, MT_LEVEL_STUDY, NULL, NULL);
        else if (strcmp(s[0], "series") == 0)
            mt__qido(wr, MT_LEVEL_SERIES, NULL, NULL);
        else if (strcmp(s[0], "instances") == 0)
            mt__qido(wr, MT_LEVEL_INSTANCE, NULL, NULL);
        else
            mt__web_fail(wr, 404, "no such resource");
        return;
    }
    if (strcmp(s[0], "studies") != 0) {
        mt__web_fail(wr, 404, "no such resource");
        return;
    }
    const char *study = s[1], *series = NULL, *inst = NULL;
    size_t i = 2;
    if (n == 2 && post) {
        mt__stow(wr, study);
        return;
    }
    if (!get)
        goto method;
    if (i < n && strcmp(s[i], "series") == 0) {
        if (i + 1 == n) {
            mt__qido(wr, MT_LEVEL_SERIES, study, NULL);
            return;
        }
        series = s[i + 1];
        i += 2;
    }
    if (i < n && strcmp(s[i], "instances") == 0) {
        if (i + 1 == n) {
            mt__qido(wr, MT_LEVEL_INSTANCE, study, series);
            return;
        }
        if (!series) {
            mt__web_fail(wr, 404, "instances of a study: use studies/S/series/R/instances/I");
            return;
        }
        inst = s[i + 1];
        i += 2;
    }
    if (i == n) {
        mt__wado(wr, study, series, inst, "", NULL);
        return;
    }
    const char *what = s[i];
    if (i + 1 == n && (strcmp(what, "metadata") == 0 || strcmp(what, "rendered") == 0 ||
                       strcmp(what, "thumbnail") == 0)) {
        mt__wado(wr, study, series, inst, what, NULL);
        return;
    }
    if (inst && i + 2 == n && strcmp(what, "frames") == 0) {
        mt__wado(wr, study, series, inst, what, s[i + 1]);
        return;
    }
    if (inst && i + 2 <= n && (n - i) % 2 == 0 && strcmp(what, "bulkdata") == 0) {
        char a[512]; /* TAG, or SEQ/ITEM/.../TAG for a value nested in sequences */
        size_t k = 0;
        for (size_t j = i + 1; j < n && k < sizeof a; j++)
            k += (size_t)snprintf(a + k, sizeof a - k, "%s%s", j > i + 1 ? "/" : "", s[j]);
        if (k >= sizeof a) {
            mt__web_fail(wr, 404, "bulk data path too long");
            return;
        }
        mt__wado(wr, study, series, inst, what, a);
        return;
    }
    if (inst && i + 3 == n && strcmp(what, "frames") == 0 &&
        (strcmp(s[i + 2], "rendered") == 0 || strcmp(s[i + 2], "thumbnail") == 0)) {
        char a[64];
        snprintf(a, sizeof a, "%s", s[i + 1]);
        mt__wado(wr, study, series, inst, s[i + 2], a);
        return;
    }
    mt__web_fail(wr, 404, "no such resource");
    return;
method:
    mt_http_respond(r, 405, "text/plain", post ? "Allow: GET, HEAD\r\n" : "Allow: GET, POST\r\n",
                    "method not allowed\n", 19);
    mt__web_req_free(wr);
}

/* A request a service answers later (off the loop): the connection must not answer for it. */
static const mt_http_handler_t owned = {NULL, NULL, NULL};

static void on_dispatch(void *user, mt_http_req_t *r)
{
    mt_web_t *w = user;
    r->handler = &owned;
    mt_web_req_t *wr = mt_calloc(1, sizeof *wr);
    wr->web = w;
    wr->node = w->node;
    wr->r = r;
    wr->conf = mt_node_conf_ref(w->node);
    const mt_conf_t *c = wr->conf;
    char *segs[MT_WEB_MAX_SEGS + 3];
    size_t n = 0;
    if (split_path(r->path, segs, MT_WEB_MAX_SEGS + 3, &n) != 0) {
        for (size_t i = 0; i < n; i++)
            mt_free(segs[i]);
        mt__web_fail(wr, 404, "path too long");
        return;
    }
    size_t skip = 0;
    if (n >= 1 && strcmp(segs[0], "dicomweb") == 0) {
        skip = 1;
    } else if (n >= 3 && strcmp(segs[0], "projects") == 0 && strcmp(segs[2], "dicomweb") == 0) {
        skip = 3;
        snprintf(wr->project_buf, sizeof wr->project_buf, "%s", segs[1]);
        wr->project = wr->project_buf;
    } else if (n == 1 && strcmp(segs[0], "wado") == 0) {
        skip = 0; /* WADO-URI at the root: node-wide scope */
    } else {
        for (size_t i = 0; i < n; i++)
            mt_free(segs[i]);
        mt__web_fail(wr, 404, "not a DICOMweb URL: /dicomweb/... or /projects/NAME/dicomweb/...");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (i < skip)
            mt_free(segs[i]);
        else
            wr->segs[wr->n_segs++] = segs[i];
    }
    /* who is asking */
    const mt_conf_user_t *u = NULL;
    if (c->n_users == 0) {
        if (!r->peer_loopback) {
            mt_http_respond(r, 401, "text/plain", challenge,
                            "no DICOMweb users configured: loopback clients only\n", 52);
            mt__web_req_free(wr);
            return;
        }
    } else {
        mt_auth_result_t res;
        u = authenticate(w, c, mt_http_header(r, "authorization"), &res);
        if (!u) {
            const char *m = res == MT_AUTH_NONE ? "authentication required\n"
                                                : "wrong credentials\n";
            mt_http_respond(r, 401, "text/plain", challenge, m, strlen(m));
            mt_log(MT_LOG_INFO, NULL, "http %s: 401 %s", r->peer,
                   res == MT_AUTH_NONE ? "no credentials" : "wrong credentials");
            mt__web_req_free(wr);
            return;
        }
    }
    wr->user = u ? u->name : NULL;
    if (wr->project && !mt_conf_project_by_name(c, wr->project)) {
        mt__web_fail(wr, u && !u->admin ? 403 : 404, "no such project");
        return;
    }
    if (!mt_auth_allows(u, wr->project)) {
        mt_log(MT_LOG_INFO, NULL, "http %s: 403 user %s outside its projects", r->peer, u->name);
        mt__web_fail(wr, 403, wr->project ? "this user may not use this project"
                                          : "/dicomweb is for admin users: use "
                                            "/projects/NAME/dicomweb");
        return;
    }
    if (parse_query(wr, r->query) != 0) {
        mt__web_fail(wr, 400, "malformed query string");
        return;
    }
    const char *host = mt_http_header(r, "host");
    const char *proto = mt_http_header(r, "x-forwarded-proto");
    char hostbuf[256];
    snprintf(hostbuf, sizeof hostbuf, "%s", host ? host : "localhost");
    for (char *q = hostbuf; *q; q++)
        if (*q == '"' || *q == '\\' || *q == '/' || (unsigned char)*q < 0x20)
            *q = '_';
    const char *scheme = r->tls || (proto && strcmp(proto, "https") == 0) ? "https" : "http";
    if (wr->project)
        snprintf(wr->base, sizeof wr->base, "%s://%s/projects/%s/dicomweb", scheme, hostbuf,
                 wr->project);
    else
        snprintf(wr->base, sizeof wr->base, "%s://%s/dicomweb", scheme, hostbuf);
    route(wr);
}

int mt_web_start(mt_node_t *node, const mt_conf_t *c, mt_web_t **out)
{
    mt_web_t *w = mt_calloc(1, sizeof *w);
    w->node = node;
    mt_http_opts_t o = {
        .bind = c->http_bind,
        .port = c->http_port,
        .max_conns = c->http_max_conns,
        .max_header = c->http_max_header,
        .max_body = (uint64_t)c->http_max_body_mb << 20,
        .header_timeout_ms = c->http_header_timeout_ms,
        .idle_timeout_ms = c->http_idle_timeout_ms,
        .tls_port = (uint16_t)c->http_tls_port,
        .tls_main = c->http_tls,
        .tls_cert = c->http_tls_cert,
        .tls_key = c->http_tls_key,
        .dispatch = on_dispatch,
        .user = w,
    };
    if ((c->http_tls_port || c->http_tls) && (strcmp(c->http_tls_cert, "none") == 0 ||
                                              strcmp(c->http_tls_key, "none") == 0)) {
        mt_log(MT_LOG_ERROR, NULL, "http.tls_port or http.tls is set: http.tls_cert and "
               "http.tls_key are required");
        mt_free(w);
        return MT_ECONF;
    }
    int rc = mt_http_start(mt_node_loop(node), &o, &w->srv);
    if (rc) {
        mt_free(w);
        return rc;
    }
    if (c->n_users == 0)
        mt_log(MT_LOG_WARN, NULL, "DICOMweb: no users configured: only loopback clients are "
               "served (as admin)");
    *out = w;
    return 0;
}

void mt_web_stop(mt_web_t *w)
{
    if (w)
        mt_http_stop(w->srv);
}

void mt_web_abort_all(mt_web_t *w)
{
    if (w)
        mt_http_abort_all(w->srv);
}

void mt_web_on_idle(mt_web_t *w, void (*cb)(void *), void *data)
{
    mt_http_on_idle(w->srv, cb, data);
}

void mt_web_free(mt_web_t *w)
{
    if (!w)
        return;
    mt_http_free(w->srv);
    mt_free(w);
}
