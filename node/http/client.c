/*
 * client.c - HTTP/1.1 client connection on libuv (see client.h for the exchange contract).
 *
 * Connection states:   CLOSED --begin--> CONNECTING --tcp up--> HANDSHAKE (https) --> OPEN
 *                      OPEN --response, keep-alive--> OPEN (idle, reused by the next begin)
 *                      any --error, timeout, early response, server EOF, abort--> CLOSED
 * A closed uv_tcp_t is re-initialised only after its close callback (libuv handle rules):
 * a begin that comes while the old handle (or a stale getaddrinfo) is still closing waits
 * for it (pending_begin). Stale callbacks (connect, write, resolve of an older connection)
 * are recognised by the connection generation `gen`.
 *
 * TLS: OpenSSL over memory BIOs (the model of conn.c): socket bytes -> rbio; SSL_read gives
 * the plaintext to the response parser; SSL_write puts records into wbio, which goes to the
 * socket. The server's certificate is verified by the SSL_CTX (the forwarder builds it: CA
 * file or system store) and, with verify_host, against url.host (SSL_set1_host, or the IP
 * address for a literal), with SNI for names. A failed check names the X.509 reason.
 * A host name's addresses (up to MAX_ADDRS from uv_getaddrinfo) are tried in turn until one
 * accepts the connection, all within connect_timeout.
 * Timers: one uv_timer_t: connect_timeout while connecting, io_timeout (re-armed on every
 * read and write) during an exchange, stopped while idle.
 */
#include "client.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../util/alloc.h"
#include "../util/err.h"

enum conn_state { C_CLOSED, C_CONNECTING, C_HANDSHAKE, C_OPEN };

#define MAX_ADDRS 8

struct mt_httpc {
    uv_loop_t *loop;
    mt_httpc_opts_t o;
    mt_log_ctx_t *log;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    uv_connect_t creq;
    SSL *ssl;
    BIO *rbio, *wbio;
    enum conn_state conn;
    bool tcp_live, tcp_closing, resolving, pending_begin;
    struct sockaddr_storage addrs[MAX_ADDRS]; /* resolved, tried in order */
    size_t n_addrs, i_addr;
    bool next_addr; /* the failed address's handle is closing: then try addrs[i_addr] */
    uint64_t gen;
    /* the exchange */
    bool in_exchange, ready_given, request_done, write_pending, reused;
    bool stale_reuse; /* the last exchange failed on a reused connection before any answer */
    mt_httpc_ready_cb on_ready;
    mt_httpc_response_cb on_response;
    mt_httpc_written_cb wcb;
    void *user;
    mt_httpc_resp_t *resp;
    /* lifetime */
    unsigned n_handles;
    bool freeing;
    void (*free_cb)(void *);
    void *free_data;
    char why[200];
};

typedef struct wreq {
    uv_write_t req;
    mt_httpc_t *c;
    void *own;
    bool user;
    uint64_t gen;
} wreq_t;

static void start_connect(mt_httpc_t *c);
static void tcp_connect(mt_httpc_t *c, const struct sockaddr *sa);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

static void maybe_free(mt_httpc_t *c)
{
    if (!c->freeing || c->n_handles || c->resolving)
        return;
    mt_httpc_resp_free(c->resp);
    void (*cb)(void *) = c->free_cb;
    void *data = c->free_data;
    mt_free(c);
    if (cb)
        cb(data);
}

static void on_tcp_closed(uv_handle_t *h)
{
    mt_httpc_t *c = h->data;
    c->n_handles--;
    c->tcp_closing = false;
    if (c->freeing) {
        maybe_free(c);
        return;
    }
    if (c->next_addr) {
        c->next_addr = false;
        if (c->conn == C_CONNECTING && c->in_exchange) {
            tcp_connect(c, (struct sockaddr *)&c->addrs[c->i_addr]);
            return;
        }
    }
    if (c->pending_begin && !c->resolving) {
        c->pending_begin = false;
        start_connect(c);
    }
}

static void conn_close(mt_httpc_t *c)
{
    c->gen++;
    c->next_addr = false;
    uv_timer_stop(&c->timer);
    if (c->ssl) {
        SSL_free(c->ssl); /* and its BIOs */
        c->ssl = NULL;
        c->rbio = c->wbio = NULL;
    }
    c->conn = C_CLOSED;
    if (c->tcp_live) {
        c->tcp_live = false;
        c->tcp_closing = true;
        uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
    }
}

/* End the running exchange with an error: on_ready or on_response, once. */
__attribute__((format(printf, 3, 4))) static void fail(mt_httpc_t *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
    c->stale_reuse = c->in_exchange && c->ready_given && c->reused && rc != UV_ETIMEDOUT &&
                     rc != UV_ECANCELED && !(c->resp && mt_httpc_resp_started(c->resp));
    conn_close(c);
    if (!c->in_exchange)
        return;
    c->in_exchange = false;
    c->pending_begin = false;
    if (!c->ready_given)
        c->on_ready(c->user, rc, false);
    else
        c->on_response(c->user, rc, NULL);
}

static void arm(mt_httpc_t *c, uint32_t ms);

static void on_timer(uv_timer_t *t)
{
    mt_httpc_t *c = t->data;
    if (c->conn == C_CONNECTING || c->conn == C_HANDSHAKE)
        fail(c, UV_ETIMEDOUT, "connect to %s:%u timed out after %u ms", c->o.url.host,
             c->o.url.port, c->o.connect_timeout_ms);
    else if (c->in_exchange)
        fail(c, UV_ETIMEDOUT, "request timed out: nothing moved for %u ms", c->o.io_timeout_ms);
}

static void arm(mt_httpc_t *c, uint32_t ms)
{
    if (ms)
        uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void ready(mt_httpc_t *c, bool reused)
{
    c->conn = C_OPEN;
    c->ready_given = true;
    c->reused = reused;
    arm(c, c->o.io_timeout_ms);
    c->on_ready(c->user, 0, reused);
}

/* ---- writing ---- */

static void on_written(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    mt_httpc_t *c = w->c;
    mt_free(w->own);
    bool user = w->user, stale = w->gen != c->gen;
    mt_free(w);
    if (!user || stale || !c->in_exchange || !c->write_pending)
        return;
    c->write_pending = false;
    if (status < 0)
        snprintf(c->why, sizeof c->why, "write: %s", uv_strerror(status));
    else
        arm(c, c->o.io_timeout_ms);
    c->wcb(c->user, status < 0 ? status : 0);
}

/* Queue p (taken) to the socket. Returns 0 or the uv_write error (p freed). */
static int raw_write(mt_httpc_t *c, void *p, size_t n, bool user)
{
    wreq_t *w = mt_calloc(1, sizeof *w);
    w->c = c;
    w->own = p;
    w->user = user;
    w->gen = c->gen;
    uv_buf_t b = uv_buf_init(p, (unsigned)n);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written);
    if (rc < 0) {
        mt_free(p);
        mt_free(w);
    }
    return rc;
}

/* What TLS has to send goes to the socket; the last piece carries the user's callback. */
static int tls_flush(mt_httpc_t *c, bool user)
{
    size_t n;
    int rc = 0;
    bool sent_user = false;
    while (c->ssl && (n = BIO_ctrl_pending(c->wbio)) > 0) {
        char *m = mt_malloc(n);
        int k = BIO_read(c->wbio, m, (int)n);
        if (k <= 0) {
            mt_free(m);
            break;
        }
        bool last = BIO_ctrl_pending(c->wbio) == 0;
        rc = raw_write(c, m, (size_t)k, user && last);
        sent_user = sent_user || (user && last && rc == 0);
        if (rc < 0)
            break;
    }
    if (user && !sent_user && rc == 0)
        rc = MT_EIO; /* nothing to carry the callback: should not happen for n > 0 */
    return rc;
}

void mt_httpc_write_take(mt_httpc_t *c, void *p, size_t n, mt_httpc_written_cb cb)
{
    if (!c->in_exchange || c->conn != C_OPEN) {
        mt_free(p);
        return; /* the exchange is over (on_response has fired) */
    }
    c->wcb = cb;
    c->write_pending = true;
    arm(c, c->o.io_timeout_ms);
    int rc;
    if (c->ssl) {
        rc = SSL_write(c->ssl, p, (int)n) > 0 ? 0 : MT_EIO;
        mt_free(p);
        if (rc == 0)
            rc = tls_flush(c, true);
    } else {
        rc = raw_write(c, p, n, true);
    }
    if (rc < 0) {
        c->write_pending = false;
        snprintf(c->why, sizeof c->why, "write: %s", mt_strerror(rc));
        cb(c->user, rc);
    }
}

void mt_httpc_end_request(mt_httpc_t *c)
{
    if (!c->in_exchange)
        return;
    c->request_done = true;
    arm(c, c->o.io_timeout_ms);
}

/* ---- reading ---- */

static void deliver(mt_httpc_t *c)
{
    mt_httpc_resp_t *r = c->resp;
    c->resp = NULL;
    c->in_exchange = false;
    uv_timer_stop(&c->timer);
    bool keep = c->request_done && !c->write_pending && mt_httpc_resp_keep_alive(r);
    if (!keep)
        conn_close(c);
    c->on_response(c->user, 0, r);
    mt_httpc_resp_free(r);
}

/* Plaintext from the server (len 0: EOF). */
static void feed(mt_httpc_t *c, const uint8_t *p, size_t len)
{
    if (!c->in_exchange || !c->ready_given) {
        conn_close(c); /* bytes or EOF on an idle connection: it is not reusable */
        return;
    }
    arm(c, c->o.io_timeout_ms);
    int rc = mt_httpc_resp_feed(c->resp, p, len);
    if (rc == 1)
        deliver(c);
    else if (rc < 0)
        fail(c, rc, "bad response: %s", mt_httpc_resp_error(c->resp));
}

static void tls_fail(mt_httpc_t *c, const char *stage)
{
    long v = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;
    const char *e = ERR_reason_error_string(ERR_peek_last_error());
    ERR_clear_error();
    if (v != X509_V_OK)
        fail(c, MT_EPROTO, "TLS: server certificate not accepted: %s",
             X509_verify_cert_error_string(v));
    else
        fail(c, MT_EPROTO, "TLS %s failed: %s", stage, e ? e : "connection closed");
}

static void tls_step(mt_httpc_t *c)
{
    if (c->conn == C_HANDSHAKE) {
        int k = SSL_do_handshake(c->ssl);
        tls_flush(c, false);
        if (k != 1) {
            int e = SSL_get_error(c->ssl, k);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                tls_fail(c, "handshake");
            return;
        }
        uint64_t gen = c->gen;
        ready(c, false);
        if (gen != c->gen || !c->ssl)
            return;
    }
    uint8_t plain[16384];
    for (;;) {
        int k = SSL_read(c->ssl, plain, sizeof plain);
        if (k > 0) {
            uint64_t gen = c->gen;
            feed(c, plain, (size_t)k);
            if (gen != c->gen || !c->ssl)
                return; /* the exchange ended and closed the connection */
            continue;
        }
        int e = SSL_get_error(c->ssl, k);
        tls_flush(c, false);
        if (e == SSL_ERROR_WANT_READ)
            return;
        if (e == SSL_ERROR_ZERO_RETURN) {
            ERR_clear_error();
            feed(c, NULL, 0);
            return;
        }
        if (!c->in_exchange) {
            ERR_clear_error();
            conn_close(c);
            return;
        }
        tls_fail(c, "read");
        return;
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)h;
    (void)hint;
    b->base = mt_malloc(65536);
    b->len = 65536;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    mt_httpc_t *c = s->data;
    if (nread < 0) {
        mt_free(b->base);
        if (nread != UV_EOF && c->in_exchange) {
            bool was = c->ready_given && c->resp && mt_httpc_resp_started(c->resp);
            fail(c, (int)nread, was ? "read: %s" : "connection lost before a response: %s",
                 uv_strerror((int)nread));
            return;
        }
        if (c->conn == C_HANDSHAKE) {
            tls_fail(c, "handshake");
            return;
        }
        feed(c, NULL, 0); /* (over TLS without close_notify too: a length-delimited response
                           * is complete or not either way) */
        return;
    }
    if (nread == 0) {
        mt_free(b->base);
        return;
    }
    if (c->ssl) {
        int k = BIO_write(c->rbio, b->base, (int)nread);
        mt_free(b->base);
        if (k != (int)nread) {
            fail(c, MT_ENOMEM, "TLS: %s", "cannot buffer input");
            return;
        }
        tls_step(c);
        return;
    }
    feed(c, (const uint8_t *)b->base, (size_t)nread);
    mt_free(b->base);
}

/* ---- connecting ---- */

static bool is_ip(const char *host)
{
    unsigned char a[16];
    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

static int tls_setup(mt_httpc_t *c)
{
    c->ssl = SSL_new(c->o.tls);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (!c->ssl || !c->rbio || !c->wbio)
        return MT_ENOMEM;
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    const char *host = c->o.url.host;
    if (!is_ip(host))
        SSL_set_tlsext_host_name(c->ssl, host);
    if (c->o.verify_host) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
        int ok = is_ip(host) ? X509_VERIFY_PARAM_set1_ip_asc(vp, host)
                             : X509_VERIFY_PARAM_set1_host(vp, host, 0);
        if (ok != 1)
            return MT_EINVAL;
    }
    SSL_set_connect_state(c->ssl);
    return 0;
}

/* This address refused (or could not be tried): the host's next address, else fail. */
static void connect_failed(mt_httpc_t *c, int status)
{
    if (c->i_addr + 1 < c->n_addrs) {
        c->i_addr++;
        c->next_addr = true; /* on_tcp_closed connects */
        c->tcp_live = false;
        c->tcp_closing = true;
        uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
        return;
    }
    fail(c, status, "connect to %s:%u: %s", c->o.url.host, c->o.url.port, uv_strerror(status));
}

static void on_connect(uv_connect_t *req, int status)
{
    mt_httpc_t *c = req->data;
    if (status == UV_ECANCELED || c->conn != C_CONNECTING)
        return; /* closed meanwhile */
    if (status < 0) {
        connect_failed(c, status);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (!c->o.url.tls) {
        ready(c, false);
        return;
    }
    c->conn = C_HANDSHAKE;
    if (tls_setup(c) < 0) {
        fail(c, MT_ENOMEM, "%s", "TLS: cannot set up the connection");
        return;
    }
    tls_step(c);
}

static void tcp_connect(mt_httpc_t *c, const struct sockaddr *sa)
{
    uv_tcp_init(c->loop, &c->tcp);
    c->tcp.data = c;
    c->n_handles++;
    c->tcp_live = true;
    uv_tcp_nodelay(&c->tcp, 1);
    c->creq.data = c;
    int rc = uv_tcp_connect(&c->creq, &c->tcp, sa, on_connect);
    if (rc < 0)
        connect_failed(c, rc);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    mt_httpc_t *c = req->data;
    c->resolving = false;
    if (c->freeing || c->conn != C_CONNECTING || !c->in_exchange) {
        if (res)
            uv_freeaddrinfo(res);
        if (c->freeing)
            maybe_free(c);
        else if (c->pending_begin && !c->tcp_closing) {
            c->pending_begin = false;
            start_connect(c);
        }
        return;
    }
    if (status < 0 || !res) {
        if (res)
            uv_freeaddrinfo(res);
        fail(c, status < 0 ? status : MT_ENOENT, "cannot resolve %s: %s", c->o.url.host,
             uv_strerror(status));
        return;
    }
    c->n_addrs = 0;
    c->i_addr = 0;
    for (struct addrinfo *ai = res; ai && c->n_addrs < MAX_ADDRS; ai = ai->ai_next)
        if (ai->ai_addrlen <= sizeof c->addrs[0])
            memcpy(&c->addrs[c->n_addrs++], ai->ai_addr, ai->ai_addrlen);
    uv_freeaddrinfo(res);
    if (c->n_addrs == 0) {
        fail(c, MT_ENOENT, "cannot resolve %s: no usable address", c->o.url.host);
        return;
    }
    tcp_connect(c, (struct sockaddr *)&c->addrs[0]);
}

static void start_connect(mt_httpc_t *c)
{
    c->conn = C_CONNECTING;
    arm(c, c->o.connect_timeout_ms);
    const char *h = c->o.url.host;
    struct sockaddr_storage *ss = &c->addrs[0];
    c->n_addrs = 1;
    c->i_addr = 0;
    memset(ss, 0, sizeof *ss);
    if (uv_ip4_addr(h, c->o.url.port, (struct sockaddr_in *)ss) == 0 ||
        uv_ip6_addr(h, c->o.url.port, (struct sockaddr_in6 *)ss) == 0) {
        tcp_connect(c, (struct sockaddr *)ss);
        return;
    }
    char port[8];
    snprintf(port, sizeof port, "%u", c->o.url.port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    c->gai.data = c;
    c->resolving = true;
    int rc = uv_getaddrinfo(c->loop, &c->gai, on_resolved, h, port, &hints);
    if (rc < 0) {
        c->resolving = false;
        fail(c, rc, "cannot resolve %s: %s", h, uv_strerror(rc));
    }
}

/* ---- API ---- */

mt_httpc_t *mt_httpc_new(uv_loop_t *loop, const mt_httpc_opts_t *o, mt_log_ctx_t *log)
{
    mt_httpc_t *c = mt_calloc(1, sizeof *c);
    c->loop = loop;
    c->o = *o;
    c->log = log;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->n_handles = 1;
    return c;
}

void mt_httpc_begin(mt_httpc_t *c, mt_httpc_ready_cb on_ready, mt_httpc_response_cb on_response,
                    void *user)
{
    c->on_ready = on_ready;
    c->on_response = on_response;
    c->user = user;
    c->in_exchange = true;
    c->ready_given = c->request_done = c->write_pending = c->reused = c->stale_reuse = false;
    c->why[0] = '\0';
    mt_httpc_resp_free(c->resp);
    c->resp = mt_httpc_resp_new(c->o.body_limit);
    if (c->conn == C_OPEN) {
        ready(c, true);
        return;
    }
    if (c->resolving || c->tcp_closing) {
        c->pending_begin = true;
        return;
    }
    start_connect(c);
}

bool mt_httpc_retry_fresh(const mt_httpc_t *c)
{
    return c->stale_reuse;
}

const char *mt_httpc_why(const mt_httpc_t *c)
{
    return c->why[0] ? c->why : "unknown error";
}

void mt_httpc_abort(mt_httpc_t *c)
{
    c->pending_begin = false;
    if (c->in_exchange)
        fail(c, UV_ECANCELED, "%s", "aborted");
    else
        conn_close(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    mt_httpc_t *c = h->data;
    c->n_handles--;
    maybe_free(c);
}

void mt_httpc_free(mt_httpc_t *c, void (*cb)(void *), void *data)
{
    mt_httpc_abort(c);
    c->freeing = true;
    c->free_cb = cb;
    c->free_data = data;
    if (c->resolving)
        uv_cancel((uv_req_t *)&c->gai);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}
