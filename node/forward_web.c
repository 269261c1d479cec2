/*
 * forward_web.c - queued instances -> STOW-RS requests (see forward_web.h).
 *
 * One batch, as a sequence of requests ("groups"):
 *
 *   OPEN files of the group (uv_fs_open + uv_fs_fstat; the fd pins the stored file, so a
 *     newer copy renamed over it meanwhile does not change what this request sends)
 *   -> BEGIN (mt_httpc_begin: reuse the keep-alive connection or connect)
 *   -> HEAD (request line, headers, Content-Length = mt_httpc_mp_length of the file sizes,
 *     first part head) -> for each part: 256 KiB reads (uv_fs_read at an offset) each written
 *     before the next is read -> next part head ... -> close delimiter -> end_request
 *   -> RESPONSE: mt_stowc_outcomes gives each instance its verdict -> next group
 *
 * A transport failure (no connection, reset, timeout, malformed response) makes every item of
 * the group and of the rest of the batch RETRY with the client's reason, except once per group
 * when a reused keep-alive connection turned out closed before any answer: then the group is
 * sent again on a fresh connection (the server had closed it while idle; nothing was stored).
 * A stored file shorter than its fstat size (it cannot be: files are immutable once renamed)
 * aborts the request. Nothing here touches the queue: forward.c writes the verdicts back.
 */
#include "forward_web.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "http/client.h"
#include "util/alloc.h"
#include "util/err.h"

#define CHUNK (256u << 10)
#define MAX_GROUP 1000
#define MAX_SECRET 4096
#define RESP_LIMIT (8u << 20)
#define PART_TYPE "application/dicom"

struct mt_fwd_web_dest {
    char name[65];
    mt_httpc_opts_t http;
    SSL_CTX *tls;
    char *authorization; /* NULL: none */
    uint32_t max_instances;
    uint64_t max_bytes;
};

typedef struct item {
    char *path, *sop;
} item_t;

struct mt_fwd_web {
    uv_loop_t *loop;
    mt_fwd_web_dest_t *d;
    mt_log_ctx_t *log;
    mt_httpc_t *http;
    /* the batch */
    item_t *items;
    size_t n, next; /* next: first item not yet in a group */
    bool running, aborting, connected, retried;
    mt_fwd_web_result_cb on_result;
    mt_fwd_web_done_cb on_done;
    void *user;
    /* the group being sent */
    size_t grp[MAX_GROUP];
    uv_file fd[MAX_GROUP];
    uint64_t size[MAX_GROUP], bytes;
    size_t n_grp, part;
    uint64_t off;
    bool closed_written, read_failed;
    bool group_full; /* the next file would pass max_request_mb */
    char boundary[48];
    uv_fs_t fs, rfs;                                      /* open/fstat; read */
    bool fs_busy;                                         /* fs in flight */
    bool read_busy;                                       /* rfs in flight */
    uv_file opening_fd;                                   /* between open and fstat */
    uint8_t *chunk;                                       /* the read in flight */
    enum { AFTER_NONE, AFTER_NEXT, AFTER_DONE } deferred; /* to do once the read is back */
    /* lifetime */
    bool freeing, http_freed;
    void (*free_cb)(void *);
    void *free_data;
};

/* ---- per destination ---- */

/* Read a secret file: mode 0600 (no group/other bits), 1-4096 bytes, trailing white space
 * removed, no CR/LF/NUL inside. */
static int read_secret(const char *dest, const char *key, const char *path, char **out, char *err,
                       size_t errsz)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errsz, "destination %s: %s %s: %s", dest, key, path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return MT_ECONF;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, errsz,
                 "destination %s: %s %s is accessible by group or others; refusing to use it "
                 "(chmod 600 %s)",
                 dest, key, path, path);
        close(fd);
        return MT_ECONF;
    }
    char *buf = mt_malloc(MAX_SECRET + 1);
    ssize_t n = read(fd, buf, MAX_SECRET + 1);
    close(fd);
    while (n > 0 &&
           (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        n--;
    if (n <= 0 || n > MAX_SECRET || memchr(buf, '\n', (size_t)n) || memchr(buf, '\r', (size_t)n) ||
        memchr(buf, '\0', (size_t)n)) {
        snprintf(err, errsz, "destination %s: %s %s: %s", dest, key, path,
                 n > MAX_SECRET ? "larger than 4096 bytes"
                 : n <= 0       ? "empty"
                                : "holds more than one line");
        OPENSSL_cleanse(buf, MAX_SECRET + 1);
        mt_free(buf);
        return MT_ECONF;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        mt_free(s);
    }
}

static int make_auth(const mt_conf_destination_t *cfg, char **out, char *err, size_t errsz)
{
    char *secret = NULL;
    *out = NULL;
    if (cfg->token_file[0]) {
        if (read_secret(cfg->name, "token_file", cfg->token_file, &secret, err, errsz))
            return MT_ECONF;
        size_t n = strlen(secret) + 8;
        *out = mt_malloc(n);
        snprintf(*out, n, "Bearer %s", secret);
    } else if (cfg->password_file[0]) {
        if (read_secret(cfg->name, "password_file", cfg->password_file, &secret, err, errsz))
            return MT_ECONF;
        size_t n = strlen(cfg->auth_user) + 1 + strlen(secret);
        char *plain = mt_malloc(n + 1);
        snprintf(plain, n + 1, "%s:%s", cfg->auth_user, secret);
        size_t b64 = 4 * ((n + 2) / 3) + 1;
        *out = mt_malloc(6 + b64);
        memcpy(*out, "Basic ", 6);
        EVP_EncodeBlock((unsigned char *)*out + 6, (const unsigned char *)plain, (int)n);
        free_secret(plain);
    }
    free_secret(secret);
    return 0;
}

static int make_tls(const mt_conf_destination_t *cfg, SSL_CTX **out, char *err, size_t errsz)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(err, errsz, "destination %s: cannot create a TLS context", cfg->name);
        return MT_ECONF;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (cfg->tls_insecure_skip_verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        int ok = cfg->ca_file[0] ? SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL)
                                 : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            const char *e = ERR_reason_error_string(ERR_peek_last_error());
            ERR_clear_error();
            snprintf(err, errsz, "destination %s: ca_file %s: %s", cfg->name,
                     cfg->ca_file[0] ? cfg->ca_file : "(system store)", e ? e : "cannot load");
            SSL_CTX_free(ctx);
            return MT_ECONF;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    *out = ctx;
    return 0;
}

int mt_fwd_web_dest_new(const mt_conf_destination_t *cfg, uint32_t connect_timeout_ms,
                        mt_fwd_web_dest_t **out, char *err, size_t errsz)
{
    *out = NULL;
    mt_fwd_web_dest_t *d = mt_calloc(1, sizeof *d);
    const char *why = NULL;
    snprintf(d->name, sizeof d->name, "%s", cfg->name);
    if (mt_httpc_url_parse(cfg->stow_url, &d->http.url, &why)) { /* conf.c checked it */
        snprintf(err, errsz, "destination %s: stow_url: %s", cfg->name, why);
        mt_free(d);
        return MT_ECONF;
    }
    if (make_auth(cfg, &d->authorization, err, errsz)) {
        mt_free(d);
        return MT_ECONF;
    }
    if (d->http.url.tls && make_tls(cfg, &d->tls, err, errsz)) {
        free_secret(d->authorization);
        mt_free(d);
        return MT_ECONF;
    }
    if (d->tls && cfg->tls_insecure_skip_verify)
        mt_log(MT_LOG_WARN, NULL,
               "destination %s: tls_insecure_skip_verify: the server certificate is NOT "
               "verified; anyone on the path can read and alter what is forwarded",
               cfg->name);
    if (d->authorization && !d->http.url.tls)
        mt_log(MT_LOG_WARN, NULL, "destination %s: credentials are sent over plain http://",
               cfg->name);
    d->http.tls = d->tls;
    d->http.verify_host = !cfg->tls_insecure_skip_verify;
    d->http.connect_timeout_ms = connect_timeout_ms;
    d->http.io_timeout_ms = cfg->request_timeout_ms ? cfg->request_timeout_ms : 120000;
    d->http.body_limit = RESP_LIMIT;
    d->max_instances = cfg->max_instances ? cfg->max_instances : 16;
    if (d->max_instances > MAX_GROUP)
        d->max_instances = MAX_GROUP;
    d->max_bytes = (uint64_t)(cfg->max_request_mb ? cfg->max_request_mb : 64) << 20;
    *out = d;
    return 0;
}

void mt_fwd_web_dest_free(mt_fwd_web_dest_t *d)
{
    if (!d)
        return;
    free_secret(d->authorization);
    if (d->tls)
        SSL_CTX_free(d->tls);
    mt_free(d);
}

/* ---- per worker ---- */

static void next_group(mt_fwd_web_t *w);
static void open_next(mt_fwd_web_t *w);
static void stream(mt_fwd_web_t *w);

mt_fwd_web_t *mt_fwd_web_new(uv_loop_t *loop, mt_fwd_web_dest_t *d, mt_log_ctx_t *log)
{
    mt_fwd_web_t *w = mt_calloc(1, sizeof *w);
    w->loop = loop;
    w->d = d;
    w->log = log;
    w->http = mt_httpc_new(loop, &d->http, log);
    return w;
}

static void maybe_free(mt_fwd_web_t *w)
{
    if (w->freeing && w->http_freed && !w->fs_busy && !w->read_busy && !w->running) {
        void (*cb)(void *) = w->free_cb;
        void *data = w->free_data;
        mt_free(w);
        if (cb)
            cb(data);
    }
}

static void result(mt_fwd_web_t *w, size_t i, mt_stowc_verdict_t v, const char *why)
{
    if (!w->aborting)
        w->on_result(w->user, i, v, why);
}

static void close_group(mt_fwd_web_t *w)
{
    for (size_t k = 0; k < w->n_grp; k++) {
        uv_fs_t req;
        uv_fs_close(w->loop, &req, w->fd[k], NULL); /* close(2) of a read-only fd: no I/O wait */
        uv_fs_req_cleanup(&req);
    }
    w->n_grp = 0;
    w->bytes = 0;
    w->group_full = false;
}

static void batch_done(mt_fwd_web_t *w)
{
    close_group(w);
    for (size_t i = 0; i < w->n; i++) {
        mt_free(w->items[i].path);
        mt_free(w->items[i].sop);
    }
    mt_free(w->items);
    w->items = NULL;
    w->n = 0;
    w->running = false;
    bool connected = w->connected;
    w->on_done(w->user, connected);
    maybe_free(w);
}

/* Transport failure: the group and the rest of the batch are not delivered. */
static void report_rest(mt_fwd_web_t *w, const char *why)
{
    for (size_t k = 0; k < w->n_grp; k++)
        result(w, w->grp[k], MT_STOWC_RETRY, why);
    for (size_t i = w->next; i < w->n; i++)
        result(w, i, MT_STOWC_RETRY, why);
    w->next = w->n;
}

void mt_fwd_web_send(mt_fwd_web_t *w, const mt_fwd_web_item_t *items, size_t n,
                     mt_fwd_web_result_cb on_result, mt_fwd_web_done_cb on_done, void *user)
{
    w->items = mt_calloc(n ? n : 1, sizeof *w->items);
    for (size_t i = 0; i < n; i++) {
        w->items[i].path = mt_strdup(items[i].path);
        w->items[i].sop = mt_strdup(items[i].sop);
    }
    w->n = n;
    w->next = 0;
    w->on_result = on_result;
    w->on_done = on_done;
    w->user = user;
    w->running = true;
    w->aborting = w->connected = false;
    next_group(w);
}

/* ---- opening the files of a group ---- */

static void on_fstat(uv_fs_t *req)
{
    mt_fwd_web_t *w = req->data;
    w->fs_busy = false;
    size_t i = w->next;
    uv_file fd = w->opening_fd;
    int rc = (int)req->result;
    uint64_t size = rc == 0 ? (uint64_t)req->statbuf.st_size : 0;
    uv_fs_req_cleanup(req);
    if (w->aborting || w->freeing) {
        uv_fs_t c;
        uv_fs_close(w->loop, &c, fd, NULL);
        uv_fs_req_cleanup(&c);
        close_group(w);
        batch_done(w);
        return;
    }
    if (rc == 0 && w->n_grp && w->bytes + size > w->d->max_bytes) {
        uv_fs_t c; /* does not fit: it opens the next request */
        uv_fs_close(w->loop, &c, fd, NULL);
        uv_fs_req_cleanup(&c);
        w->group_full = true;
        open_next(w);
        return;
    }
    w->next++;
    if (rc < 0) {
        uv_fs_t c;
        uv_fs_close(w->loop, &c, fd, NULL);
        uv_fs_req_cleanup(&c);
        result(w, i, MT_STOWC_RETRY, "cannot stat the stored file");
    } else {
        w->grp[w->n_grp] = i;
        w->fd[w->n_grp] = fd;
        w->size[w->n_grp] = size;
        w->n_grp++;
        w->bytes += size;
    }
    open_next(w);
}

static void on_open(uv_fs_t *req)
{
    mt_fwd_web_t *w = req->data;
    int fd = (int)req->result;
    uv_fs_req_cleanup(req);
    if (fd >= 0 && !w->aborting && !w->freeing) {
        w->opening_fd = fd;
        w->fs.data = w;
        uv_fs_fstat(w->loop, &w->fs, fd, on_fstat);
        return;
    }
    w->fs_busy = false;
    if (fd >= 0) {
        uv_fs_t c;
        uv_fs_close(w->loop, &c, fd, NULL);
        uv_fs_req_cleanup(&c);
    }
    if (w->aborting || w->freeing) {
        batch_done(w);
        return;
    }
    char why[96];
    snprintf(why, sizeof why, "cannot open the stored file: %s", uv_strerror(fd));
    result(w, w->next++, MT_STOWC_RETRY, why);
    open_next(w);
}

static void on_ready(void *user, int status, bool reused);
static void on_response(void *user, int status, mt_httpc_resp_t *resp);

static void open_next(mt_fwd_web_t *w)
{
    bool full = w->n_grp >= w->d->max_instances || w->group_full;
    if (w->next >= w->n || full) {
        if (w->n_grp == 0) {
            batch_done(w);
            return;
        }
        w->retried = false;
        mt_httpc_begin(w->http, on_ready, on_response, w);
        return;
    }
    w->fs_busy = true;
    w->fs.data = w;
    int rc = uv_fs_open(w->loop, &w->fs, w->items[w->next].path, O_RDONLY | O_CLOEXEC, 0, on_open);
    if (rc < 0) {
        w->fs_busy = false;
        result(w, w->next++, MT_STOWC_RETRY, "cannot open the stored file");
        open_next(w);
    }
}

static void next_group(mt_fwd_web_t *w)
{
    close_group(w);
    if (w->aborting || w->freeing) {
        batch_done(w);
        return;
    }
    open_next(w);
}

/* ---- sending the request ---- */

static void on_written(void *user, int status)
{
    mt_fwd_web_t *w = user;
    if (status < 0)
        return; /* on_response follows (the server may have answered, e.g. 401) */
    stream(w);
}

static void write_buf(mt_fwd_web_t *w, mt_buf_t *b)
{
    void *p = b->data;
    size_t n = b->len;
    b->data = NULL; /* taken by the client */
    b->len = b->cap = 0;
    mt_httpc_write_take(w->http, p, n, on_written);
}

static void run_after(mt_fwd_web_t *w, int what)
{
    if (w->read_busy) { /* the read's callback runs it */
        w->deferred = what;
        return;
    }
    if (what == AFTER_NEXT)
        next_group(w);
    else
        batch_done(w);
}

static void on_read_chunk(uv_fs_t *req)
{
    mt_fwd_web_t *w = req->data;
    w->read_busy = false;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    uint8_t *chunk = w->chunk;
    w->chunk = NULL;
    if (w->deferred != AFTER_NONE) { /* the exchange ended while we read */
        int what = w->deferred;
        w->deferred = AFTER_NONE;
        mt_free(chunk);
        run_after(w, what);
        return;
    }
    if (n <= 0 || w->aborting) {
        mt_free(chunk);
        w->read_failed = !w->aborting;
        mt_httpc_abort(w->http); /* -> on_response(ECANCELED) */
        return;
    }
    w->off += (uint64_t)n;
    mt_httpc_write_take(w->http, chunk, (size_t)n, on_written);
}

/* Write what comes next: file bytes of the current part, the next part head, or the close
 * delimiter; after that, wait for the response. */
static void stream(mt_fwd_web_t *w)
{
    if (w->closed_written) {
        mt_httpc_end_request(w->http);
        return;
    }
    if (w->off < w->size[w->part]) {
        uint64_t left = w->size[w->part] - w->off;
        size_t len = left < CHUNK ? (size_t)left : CHUNK;
        w->chunk = mt_malloc(len);
        w->rfs.data = w;
        w->read_busy = true;
        uv_buf_t b = uv_buf_init((char *)w->chunk, (unsigned)len);
        int rc =
            uv_fs_read(w->loop, &w->rfs, w->fd[w->part], &b, 1, (int64_t)w->off, on_read_chunk);
        if (rc < 0) {
            w->read_busy = false;
            mt_free(w->chunk);
            w->chunk = NULL;
            w->read_failed = true;
            mt_httpc_abort(w->http);
        }
        return;
    }
    mt_buf_t b;
    mt_buf_init(&b, 4096);
    w->part++;
    w->off = 0;
    if (w->part < w->n_grp) {
        mt_httpc_mp_part_head(&b, w->boundary, PART_TYPE, w->part);
    } else {
        mt_httpc_mp_close(&b, w->boundary);
        w->closed_written = true;
    }
    write_buf(w, &b);
}

static void on_ready(void *user, int status, bool reused)
{
    mt_fwd_web_t *w = user;
    (void)reused;
    if (status < 0) {
        if (w->aborting || w->freeing) {
            batch_done(w);
            return;
        }
        char why[200];
        snprintf(why, sizeof why, "%s", mt_httpc_why(w->http));
        report_rest(w, why);
        batch_done(w);
        return;
    }
    w->connected = true;
    uint8_t rnd[16];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        for (size_t i = 0; i < sizeof rnd; i++) /* the boundary need not be secret */
            rnd[i] = (uint8_t)(uv_hrtime() >> (i % 8));
    mt_httpc_mp_boundary(rnd, w->boundary);
    char ctype[160];
    snprintf(ctype, sizeof ctype, "multipart/related; type=\"%s\"; boundary=%s", PART_TYPE,
             w->boundary);
    mt_httpc_head_t h = {.method = "POST",
                         .url = &w->d->http.url,
                         .content_type = ctype,
                         .content_length =
                             (int64_t)mt_httpc_mp_length(w->boundary, PART_TYPE, w->size, w->n_grp),
                         .authorization = w->d->authorization,
                         .accept = "application/dicom+json",
                         .user_agent = "mitral"};
    mt_buf_t b;
    mt_buf_init(&b, 8192);
    mt_httpc_head(&b, &h);
    mt_httpc_mp_part_head(&b, w->boundary, PART_TYPE, 0);
    w->part = 0;
    w->off = 0;
    w->closed_written = w->read_failed = false;
    mt_log(MT_LOG_DEBUG, w->log, "stow to %s: %zu instance(s), %llu bytes", w->d->name, w->n_grp,
           (unsigned long long)h.content_length);
    write_buf(w, &b);
}

static void on_response(void *user, int status, mt_httpc_resp_t *resp)
{
    mt_fwd_web_t *w = user;
    if (w->aborting || w->freeing) {
        run_after(w, AFTER_DONE);
        return;
    }
    if (status < 0) {
        if (!w->read_failed && !w->retried && mt_httpc_retry_fresh(w->http)) {
            w->retried = true;
            mt_log(MT_LOG_DEBUG, w->log,
                   "stow to %s: kept-alive connection was closed; "
                   "sending again on a new one",
                   w->d->name);
            mt_httpc_begin(w->http, on_ready, on_response, w);
            return;
        }
        char why[200];
        snprintf(why, sizeof why, "%s",
                 w->read_failed ? "cannot read the stored file" : mt_httpc_why(w->http));
        mt_log(MT_LOG_WARN, w->log, "stow to %s: %s", w->d->name, why);
        report_rest(w, why);
        run_after(w, AFTER_DONE);
        return;
    }
    mt_stowc_item_t *it = mt_calloc(w->n_grp, sizeof *it);
    for (size_t k = 0; k < w->n_grp; k++)
        it[k].sop_uid = w->items[w->grp[k]].sop;
    size_t len;
    const uint8_t *body = mt_httpc_resp_body(resp, &len);
    int code = mt_httpc_resp_status(resp);
    mt_stowc_outcomes(code, mt_httpc_resp_header(resp, "content-type"), body, len, it, w->n_grp);
    size_t ok = 0;
    for (size_t k = 0; k < w->n_grp; k++) {
        if (it[k].verdict == MT_STOWC_DELIVERED)
            ok++;
        else
            mt_log(MT_LOG_WARN, w->log, "stow to %s: instance not delivered (%s%s)", w->d->name,
                   it[k].why, it[k].verdict == MT_STOWC_REFUSED ? "; refused, not retried" : "");
        result(w, w->grp[k], it[k].verdict, it[k].why);
    }
    mt_log(MT_LOG_DEBUG, w->log, "stow to %s: HTTP %d, %zu of %zu delivered", w->d->name, code, ok,
           w->n_grp);
    mt_free(it);
    run_after(w, AFTER_NEXT);
}

void mt_fwd_web_abort(mt_fwd_web_t *w)
{
    if (!w->running || w->aborting)
        return;
    w->aborting = true;
    /* A running exchange ends now in on_ready/on_response (after a read in flight); while
     * files are being opened, the open/fstat callback ends the batch. */
    mt_httpc_abort(w->http);
}

static void on_http_freed(void *data)
{
    mt_fwd_web_t *w = data;
    w->http_freed = true;
    maybe_free(w);
}

void mt_fwd_web_free(mt_fwd_web_t *w, void (*cb)(void *), void *data)
{
    mt_fwd_web_abort(w);
    w->freeing = true;
    w->free_cb = cb;
    w->free_data = data;
    mt_httpc_free(w->http, on_http_freed, w);
}
