/*
 * conn.c - HTTP/1.1 connections on libuv (the only file doing HTTP socket I/O). Contract and
 * lifetimes: http.h.
 *
 * Per connection:
 *
 *   accept -> READING (timer: header_timeout until the headers are complete, then idle)
 *     headers complete -> dispatch (web.c)   [Expect: 100-continue answered when the handler
 *                                             did not respond at once]
 *     body bytes       -> handler->on_body   (1: uv_read_stop until mt_http_resume_body)
 *     message complete -> parser paused; handler->on_end
 *   response ended + message complete -> the request is freed; keep-alive: parse what is left
 *     in the read buffer (a pipelined request), else close after the writes drain
 *
 * The parser (libhttp-parser) is fed from conn->in (a bounded buffer); pausing it in a
 * callback makes http_parser_execute return early, the unconsumed bytes stay in conn->in.
 * A response that ends before its request body was read marks the connection for closing
 * (the rest of the body is not read). Errors before dispatch answer 400/408/413/431 and close.
 *
 * HTTPS (opts.tls_port): a second listener whose connections run TLS; and/or on the main port
 * (opts.tls_main): ONLY, every connection runs TLS; BOTH, the first byte received decides: 0x16
 * (a TLS record of type handshake, RFC 8446 §5.1: a ClientHello starts every TLS session)
 * starts TLS, anything else (an HTTP method's first letter) stays clear HTTP. TLS (OpenSSL,
 * 1.2 or later) runs over memory BIOs: socket bytes go into rbio and SSL_read's plaintext into conn->in; every
 * write is SSL_write'n and what wbio holds is queued to the socket (tls_flush). Everything
 * above the bytes (parser, limits, handlers) is the same for both.
 */
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <http_parser.h>
#include <poll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

#include "../util/alloc.h"
#include "../util/buf.h"
#include "../util/err.h"
#include "../util/log.h"

#define WRITE_LOW (1024u * 1024u)
#define READ_CHUNK 65536
#define IN_MAX (256u * 1024u) /* unparsed bytes held (pipelined requests, paused body) */

typedef struct mt__http_conn conn_t;

struct mt_http_server {
    uv_loop_t *loop;
    uv_tcp_t tcp;
    uv_tcp_t tls_tcp;   /* HTTPS listener (opts.tls_port), when configured */
    SSL_CTX *tls;
    int n_listeners;    /* listening handles not yet closed */
    mt_http_opts_t o;
    conn_t *conns; /* doubly linked */
    uint32_t n_conns;
    uint64_t next_id;
    bool stopping, listening, closed;
    void (*idle_cb)(void *);
    void *idle_data;
};

struct mt__http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    int open_handles;
    mt_http_server_t *srv;
    conn_t *prev, *next;
    http_parser parser;
    mt_buf_t in;
    mt_http_req_t *req;
    /* header accumulation */
    mt_buf_t url, hname, hval;
    bool in_value;
    size_t header_bytes;
    uint64_t body_bytes;
    bool headers_done, message_done, paused_read, body_paused, reading;
    bool no_body; /* the request has no body: its message ends with its headers */
    bool closing, close_after, want_continue;
    int pre_error; /* status to answer before dispatch (400, 413, 431) */
    size_t queued;  /* bytes handed to uv_write, not yet written */
    void (*drain_cb)(void *);
    void *drain_data;
    uint64_t id, n_req;
    uint64_t header_deadline;
    char peer[64];
    bool loopback;
    bool in_parse; /* inside parse_more */
    SSL *ssl;      /* HTTPS: TLS over memory BIOs (rbio: bytes from the socket, wbio: to it) */
    bool sniff;    /* tls_main BOTH: the first byte read decides between TLS and clear HTTP */
    struct sendfile_req *sf; /* a file being sent straight to the socket (worker thread) */
    bool sf_running;         /* the worker owns the socket's write side: no uv_close yet */
    BIO *rbio, *wbio;
    int in_cb;     /* inside a callback into a handler that may end the request */
};

static void conn_close(conn_t *c);
static void parse_more(conn_t *c);
static void update_reading(conn_t *c);
static void dispatch(conn_t *c);
static void arm_timer(conn_t *c);
static int tls_attach(conn_t *c);

const char *mt_http_reason(int s)
{
    switch (s) {
    case 100: return "Continue";
    case 200: return "OK";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

/* ---- writes ---- */

typedef struct wreq {
    uv_write_t w;
    conn_t *c;
    size_t n;
    void *own[3];
} wreq_t;

static void maybe_free_conn(conn_t *c);
static void on_handle_closed(uv_handle_t *h);
static void sf_start(conn_t *c);

static void on_written(uv_write_t *w, int status)
{
    wreq_t *wr = (wreq_t *)w;
    conn_t *c = wr->c;
    for (int i = 0; i < 3; i++)
        mt_free(wr->own[i]);
    c->queued -= wr->n;
    mt_free(wr);
    if (status < 0 && !c->closing) {
        conn_close(c);
        return;
    }
    if (!c->closing)
        arm_timer(c);
    if (c->sf && !c->sf_running && c->queued == 0 && !c->closing) {
        sf_start(c);
        return;
    }
    if (c->drain_cb && c->queued < WRITE_LOW) {
        void (*cb)(void *) = c->drain_cb;
        c->drain_cb = NULL;
        c->in_cb++; /* the writer may end its request: c must outlive this callback */
        cb(c->drain_data);
        c->in_cb--;
    }
    if (c->closing)
        maybe_free_conn(c);
    else if (c->close_after && c->queued == 0 && (!c->req || c->req->ended))
        conn_close(c);
}

/* Queue up to three buffers for the socket as they are; owned ones are mt_free'd after the
 * write. */
static void raw_queue(conn_t *c, uv_buf_t *b, int nb, void **own)
{
    wreq_t *wr = mt_calloc(1, sizeof *wr);
    wr->c = c;
    for (int i = 0; i < nb; i++) {
        wr->n += b[i].len;
        wr->own[i] = own ? own[i] : NULL;
    }
    if (c->closing) {
        for (int i = 0; i < nb; i++)
            mt_free(wr->own[i]);
        mt_free(wr);
        return;
    }
    c->queued += wr->n;
    int rc = uv_write(&wr->w, (uv_stream_t *)&c->tcp, b, (unsigned)nb, on_written);
    if (rc < 0) {
        c->queued -= wr->n;
        for (int i = 0; i < nb; i++)
            mt_free(wr->own[i]);
        mt_free(wr);
        conn_close(c);
    }
}

/* What TLS has to send (handshake records, encrypted data) goes to the socket. */
static void tls_flush(conn_t *c)
{
    size_t n;
    while (!c->closing && (n = BIO_ctrl_pending(c->wbio)) > 0) {
        char *m = mt_malloc(n);
        int k = BIO_read(c->wbio, m, (int)n);
        if (k <= 0) {
            mt_free(m);
            break;
        }
        uv_buf_t b = uv_buf_init(m, (unsigned)k);
        void *own[1] = {m};
        raw_queue(c, &b, 1, own);
    }
}

/* Queue up to three buffers (owned ones are mt_free'd once written, or encrypted). */
static void queue(conn_t *c, uv_buf_t *b, int nb, void **own)
{
    if (!c->ssl) {
        raw_queue(c, b, nb, own);
        return;
    }
    for (int i = 0; i < nb && !c->closing; i++)
        if (b[i].len && SSL_write(c->ssl, b[i].base, (int)b[i].len) <= 0) {
            conn_close(c);
            break;
        }
    for (int i = 0; i < nb; i++)
        if (own)
            mt_free(own[i]);
    tls_flush(c);
}

/* ---- sendfile: file bytes from the page cache straight to the socket ----
 * The worker owns the socket's write side while it runs: it starts only once the write queue
 * is empty (so bytes stay in order), the loop queues nothing meanwhile (the only writer is the
 * waiting handler), and a close waits for it (conn_close defers uv_close). The socket is
 * non-blocking: when it stays full for SF_YIELD_MS the worker gives its pool thread back and
 * keeps its position; the loop waits for POLLOUT (uv_poll on a dup of the socket, so the
 * uv_tcp_t's own registration is untouched) and queues the rest. A client that reads nothing
 * for idle_timeout is closed by the connection's timer. */
#define SF_YIELD_MS 20

typedef struct sendfile_req {
    uv_work_t work;
    conn_t *c;
    int sock, file;
    int64_t off;
    size_t len;
    const mt_http_file_t *files; /* mt_http_sendfiles: the list (file, off, len unused) */
    size_t n_files;
    const char *tail;
    size_t tail_len;
    /* position of a files send: piece 2i = head i, 2i+1 = file i, 2n = tail */
    size_t piece, piece_off;
    int cur_fd, next_fd;
    bool moved;          /* the last run moved bytes */
    bool waiting;        /* on the loop, polling for POLLOUT */
    bool has_poll;       /* poll (and poll_fd) to be closed before f is freed */
    uv_poll_t poll;
    int poll_fd;
    uint64_t last_move;  /* loop time of the last progress */
    int err;
    void (*cb)(void *, int);
    void *data;
} sendfile_req_t;

/* Wait until the (non-blocking) socket can take more: 0, MT_EAGAIN when it stayed full for
 * timeout ms, or an error. */
static int sock_wait(int sock, int timeout)
{
    struct pollfd p = {.fd = sock, .events = POLLOUT};
    int r = poll(&p, 1, timeout);
    if (r == 0)
        return MT_EAGAIN;
    if (r < 0)
        return errno == EINTR ? 0 : MT_ERR_FROM_ERRNO();
    return p.revents & (POLLERR | POLLHUP) ? MT_EIO : 0;
}

/* *left bytes of file from *off to the socket; both advance with what was sent. */
static int sock_sendfile(int sock, int file, off_t *off, size_t *left, int timeout, bool *moved)
{
    while (*left) {
        ssize_t n = sendfile(sock, file, off, *left > (1u << 30) ? (1u << 30) : *left);
        if (n > 0) {
            *left -= (size_t)n;
            *moved = true;
            continue;
        }
        if (n == 0)
            return MT_EIO; /* the file is shorter than the index says */
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return MT_ERR_FROM_ERRNO();
        int rc = sock_wait(sock, timeout);
        if (rc)
            return rc;
    }
    return 0;
}

/* n bytes from p + *done to the socket (*done advances); more: MSG_MORE (the kernel may hold
 * a partial segment for what follows, as TCP_CORK would). */
static int sock_send(int sock, const char *p, size_t n, size_t *done, bool more, int timeout,
                     bool *moved)
{
    while (*done < n) {
        ssize_t k = send(sock, p + *done, n - *done, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
        if (k > 0) {
            *done += (size_t)k;
            *moved = true;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno != EAGAIN)
            return MT_ERR_FROM_ERRNO();
        int rc = sock_wait(sock, timeout);
        if (rc)
            return rc;
    }
    return 0;
}

static int open_ahead(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0)
        posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED); /* read ahead while the previous goes */
    return fd;
}

/* One piece of mt_http_sendfiles from the kept position. */
static int sf_piece(sendfile_req_t *f, int timeout)
{
    size_t p = f->piece, i = p / 2;
    if (p == 2 * f->n_files)
        return sock_send(f->sock, f->tail, f->tail_len, &f->piece_off, false, timeout, &f->moved);
    const mt_http_file_t *x = &f->files[i];
    if (p % 2 == 0) {
        if (f->cur_fd < 0 && f->piece_off == 0) {
            f->cur_fd = f->next_fd >= 0 ? f->next_fd : open_ahead(x->path);
            f->next_fd = i + 1 < f->n_files ? open_ahead(f->files[i + 1].path) : -1;
        }
        if (f->cur_fd < 0)
            return MT_ENOENT;
        return sock_send(f->sock, x->head, x->head_len, &f->piece_off, true, timeout, &f->moved);
    }
    off_t off = (off_t)f->piece_off;
    size_t left = (size_t)x->size - f->piece_off;
    int rc = sock_sendfile(f->sock, f->cur_fd, &off, &left, timeout, &f->moved);
    f->piece_off = (size_t)off;
    if (!rc) {
        close(f->cur_fd);
        f->cur_fd = -1;
    }
    return rc;
}

/* mt_http_sendfiles on the worker: the pieces from where the last run stopped. */
static int sf_files(sendfile_req_t *f, int timeout)
{
    for (; f->piece <= 2 * f->n_files; f->piece++, f->piece_off = 0) {
        int rc = sf_piece(f, timeout);
        if (rc)
            return rc;
    }
    return 0;
}

static void sf_work(uv_work_t *w)
{
    sendfile_req_t *f = w->data;
    f->moved = false;
    if (f->files) {
        f->err = sf_files(f, SF_YIELD_MS);
    } else {
        off_t off = (off_t)f->off;
        f->err = sock_sendfile(f->sock, f->file, &off, &f->len, SF_YIELD_MS, &f->moved);
        f->off = (int64_t)off;
    }
}

/* The send is over (f->err): the connection goes on or closes, the caller learns. */
static void sf_done(sendfile_req_t *f)
{
    conn_t *c = f->c;
    c->sf_running = false;
    c->sf = NULL;
    int err = f->err;
    void (*cb)(void *, int) = f->cb;
    void *data = f->data;
    if (f->cur_fd >= 0)
        close(f->cur_fd);
    if (f->next_fd >= 0)
        close(f->next_fd);
    mt_free(f);
    if (c->closing) {
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed); /* deferred by conn_close */
    } else if (err) {
        conn_close(c);
    } else {
        arm_timer(c);
        if (c->req && c->req->resp_chunked) { /* the CRLF that ends the file's chunk */
            uv_buf_t b = uv_buf_init("\r\n", 2);
            raw_queue(c, &b, 1, NULL);
        }
    }
    c->in_cb++;
    cb(data, err ? err : (c->closing ? MT_ECANCELED : 0));
    c->in_cb--;
    maybe_free_conn(c);
}

static void on_sf_poll_closed(uv_handle_t *h)
{
    sendfile_req_t *f = h->data;
    close(f->poll_fd);
    sf_done(f);
}

static void sf_finish(sendfile_req_t *f)
{
    if (f->has_poll)
        uv_close((uv_handle_t *)&f->poll, on_sf_poll_closed);
    else
        sf_done(f);
}

static void sf_after(uv_work_t *w, int status);

static void on_sf_writable(uv_poll_t *h, int status, int events)
{
    sendfile_req_t *f = h->data;
    (void)events;
    uv_poll_stop(h);
    f->waiting = false;
    if (status < 0 || f->c->closing) {
        f->err = status < 0 ? MT_EIO : MT_ECANCELED;
        sf_finish(f);
        return;
    }
    uv_queue_work(f->c->srv->loop, &f->work, sf_work, sf_after);
}

/* The socket stayed full: give the pool thread back and wait for POLLOUT on the loop. */
static int sf_wait(sendfile_req_t *f)
{
    conn_t *c = f->c;
    if (!f->has_poll) {
        f->poll_fd = dup(f->sock);
        if (f->poll_fd < 0)
            return MT_ERR_FROM_ERRNO();
        if (uv_poll_init(c->srv->loop, &f->poll, f->poll_fd) != 0) {
            close(f->poll_fd);
            return MT_EIO;
        }
        f->poll.data = f;
        f->has_poll = true;
    }
    f->waiting = true;
    return uv_poll_start(&f->poll, UV_WRITABLE, on_sf_writable) ? MT_EIO : 0;
}

static void sf_after(uv_work_t *w, int status)
{
    sendfile_req_t *f = w->data;
    conn_t *c = f->c;
    (void)status;
    if (f->moved)
        f->last_move = uv_now(c->srv->loop);
    if (f->err == MT_EAGAIN && !c->closing) {
        f->err = sf_wait(f);
        if (!f->err)
            return; /* on_sf_writable, or the idle timer (on_timer), goes on */
    }
    if (f->err == MT_EAGAIN)
        f->err = MT_ECANCELED;
    sf_finish(f);
}

static void sf_start(conn_t *c)
{
    sendfile_req_t *f = c->sf;
    uv_os_fd_t fd;
    f->last_move = uv_now(c->srv->loop);
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0) {
        f->err = MT_EIO;
        c->sf_running = true;
        sf_done(f);
        return;
    }
    f->sock = fd;
    c->sf_running = true;
    uv_queue_work(c->srv->loop, &f->work, sf_work, sf_after);
}

bool mt_http_can_sendfile(const mt_http_req_t *r)
{
    return !r->conn->ssl && r->method != HTTP_HEAD;
}

bool mt_http_is_tls(const mt_http_req_t *r)
{
    return r->conn->ssl != NULL;
}

void mt_http_sendfile(mt_http_req_t *r, int file, int64_t off, size_t len,
                      void (*cb)(void *data, int status), void *data)
{
    conn_t *c = r->conn;
    if (r->aborted || c->closing || c->sf || !r->started || r->ended || c->ssl) {
        cb(data, MT_ECANCELED);
        return;
    }
    if (r->resp_chunked) { /* the chunk's size line now, its CRLF when the file is sent */
        char h[24];
        int n = snprintf(h, sizeof h, "%zx\r\n", len);
        char *m = mt_malloc((size_t)n);
        memcpy(m, h, (size_t)n);
        uv_buf_t b = uv_buf_init(m, (unsigned)n);
        void *own[1] = {m};
        raw_queue(c, &b, 1, own);
    }
    sendfile_req_t *f = mt_calloc(1, sizeof *f);
    f->work.data = f;
    f->c = c;
    f->cur_fd = f->next_fd = -1;
    f->file = file;
    f->off = off;
    f->len = len;
    f->cb = cb;
    f->data = data;
    c->sf = f;
    if (c->queued == 0)
        sf_start(c);
    /* else on_written starts it when the queue is empty */
}

void mt_http_sendfiles(mt_http_req_t *r, const mt_http_file_t *files, size_t n,
                       const char *tail, size_t tail_len, void (*cb)(void *data, int status),
                       void *data)
{
    conn_t *c = r->conn;
    if (r->aborted || c->closing || c->sf || !r->started || r->ended || c->ssl ||
        r->resp_chunked) {
        cb(data, MT_ECANCELED);
        return;
    }
    sendfile_req_t *f = mt_calloc(1, sizeof *f);
    f->work.data = f;
    f->c = c;
    f->cur_fd = f->next_fd = -1;
    f->file = -1;
    f->files = files;
    f->n_files = n;
    f->tail = tail;
    f->tail_len = tail_len;
    f->cb = cb;
    f->data = data;
    c->sf = f;
    if (c->queued == 0)
        sf_start(c);
}

/* ---- the request ---- */

static mt_http_req_t *req_new(conn_t *c)
{
    mt_http_req_t *r = mt_calloc(1, sizeof *r);
    r->conn = c;
    r->content_length = -1;
    r->peer_loopback = c->loopback;
    r->tls = c->ssl != NULL;
    snprintf(r->peer, sizeof r->peer, "%s", c->peer);
    r->id = c->id * 1000 + (++c->n_req % 1000);
    return r;
}

static void req_free(mt_http_req_t *r)
{
    mt_free(r->path);
    mt_free(r->query);
    for (size_t i = 0; i < r->n_headers; i++) {
        mt_free(r->headers[i].name);
        mt_free(r->headers[i].value);
    }
    mt_free(r);
}

const char *mt_http_header(const mt_http_req_t *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

/* The response has ended: free the request once its message has been read, and go on with
 * the next one (keep-alive), or close. */
static void req_finish(conn_t *c)
{
    mt_http_req_t *r = c->req;
    if (!r || !r->ended)
        return;
    if (c->closing) {
        c->req = NULL;
        req_free(r);
        maybe_free_conn(c);
        return;
    }
    if (!c->message_done && c->no_body)
        return; /* answered inside on_headers_complete: parse_more goes on once it ends */
    if (!c->message_done) { /* answered before the body was read: close when written */
        c->close_after = true;
        if (c->queued == 0)
            conn_close(c);
        return;
    }
    c->req = NULL;
    req_free(r);
    if (c->close_after || c->srv->stopping) {
        c->close_after = true;
        if (c->queued == 0)
            conn_close(c);
        return;
    }
    /* next request */
    c->headers_done = c->message_done = c->no_body = false;
    c->header_bytes = 0;
    c->body_bytes = 0;
    c->pre_error = 0;
    c->want_continue = false;
    c->body_paused = false;
    c->header_deadline = uv_now(c->srv->loop) + c->srv->o.header_timeout_ms;
    http_parser_pause(&c->parser, 0);
    arm_timer(c);
    parse_more(c); /* a pipelined request may wait in the buffer (no-op when re-entered) */
}

static void send_head(mt_http_req_t *r, int status, const char *ctype, const char *extra,
                      int64_t len)
{
    conn_t *c = r->conn;
    r->started = true;
    r->status = status;
    if (!c->message_done && !c->no_body)
        c->close_after = true; /* the rest of the body will not be read */
    char h[1024];
    int n = snprintf(h, sizeof h, "HTTP/1.1 %d %s\r\nServer: mitral\r\n", status,
                     mt_http_reason(status));
    if (ctype)
        n += snprintf(h + n, sizeof h - (size_t)n, "Content-Type: %s\r\n", ctype);
    if (status == 204 || status == 304)
        ; /* RFC 9110 §8.6: no Content-Length (and no body) */
    else if (len >= 0)
        n += snprintf(h + n, sizeof h - (size_t)n, "Content-Length: %lld\r\n", (long long)len);
    else /* HEAD too: what GET would send (RFC 9110 §9.3.2); HEAD's answer has no chunks */
        n += snprintf(h + n, sizeof h - (size_t)n, "Transfer-Encoding: chunked\r\n");
    if (c->close_after || c->srv->stopping)
        n += snprintf(h + n, sizeof h - (size_t)n, "Connection: close\r\n");
    if ((size_t)n >= sizeof h)
        n = (int)sizeof h - 1;
    size_t el = extra ? strlen(extra) : 0;
    char *m = mt_malloc((size_t)n + el + 2);
    memcpy(m, h, (size_t)n);
    if (el)
        memcpy(m + n, extra, el);
    memcpy(m + n + el, "\r\n", 2);
    uv_buf_t b = uv_buf_init(m, (unsigned)((size_t)n + el + 2));
    void *own[1] = {m};
    queue(c, &b, 1, own);
}

void mt_http_begin(mt_http_req_t *r, int status, const char *ctype, const char *extra,
                   int64_t content_length)
{
    if (r->started || r->ended)
        return;
    if (r->aborted) {
        r->started = true;
        return;
    }
    send_head(r, status, ctype, extra, content_length);
    r->resp_chunked = content_length < 0 && r->method != HTTP_HEAD;
}

static int write_body(mt_http_req_t *r, void *p, size_t n, bool take)
{
    conn_t *c = r->conn;
    if (!r->started || r->ended || r->aborted || c->closing || n == 0 ||
        r->method == HTTP_HEAD || r->status == 204 || r->status == 304) { /* no body */
        if (take)
            mt_free(p);
        return 0;
    }
    void *m = p;
    if (!take) {
        m = mt_malloc(n);
        memcpy(m, p, n);
    }
    if (r->resp_chunked) {
        char *hdr = mt_malloc(24);
        int hn = snprintf(hdr, 24, "%zx\r\n", n);
        uv_buf_t b[3] = {uv_buf_init(hdr, (unsigned)hn), uv_buf_init(m, (unsigned)n),
                         uv_buf_init("\r\n", 2)};
        void *own[3] = {hdr, m, NULL};
        queue(c, b, 3, own);
    } else {
        uv_buf_t b = uv_buf_init(m, (unsigned)n);
        void *own[1] = {m};
        queue(c, &b, 1, own);
    }
    return c->queued >= MT_HTTP_WRITE_HIGH ? 1 : 0;
}

int mt_http_write(mt_http_req_t *r, const void *p, size_t n)
{
    return write_body(r, (void *)p, n, false);
}

int mt_http_write_take(mt_http_req_t *r, void *p, size_t n)
{
    return write_body(r, p, n, true);
}

void mt_http_on_drain(mt_http_req_t *r, void (*cb)(void *), void *data)
{
    conn_t *c = r->conn;
    if (r->aborted || c->closing || c->queued < WRITE_LOW) {
        cb(data); /* nothing to wait for */
        return;
    }
    c->drain_cb = cb;
    c->drain_data = data;
}

void mt_http_end(mt_http_req_t *r)
{
    conn_t *c = r->conn;
    if (r->ended)
        return;
    if (!r->started)
        mt_http_begin(r, 500, NULL, NULL, 0);
    r->ended = true;
    if (!r->aborted && !c->closing && r->resp_chunked) {
        uv_buf_t b = uv_buf_init("0\r\n\r\n", 5);
        queue(c, &b, 1, NULL);
    }
    mt_log(MT_LOG_DEBUG, NULL, "http %llu: %d", (unsigned long long)r->id, r->status);
    req_finish(c);
}

void mt_http_respond(mt_http_req_t *r, int status, const char *ctype, const char *extra,
                     const void *body, size_t len)
{
    if (r->started || r->ended)
        return;
    mt_http_begin(r, status, ctype, extra, (int64_t)len);
    if (len)
        mt_http_write(r, body, len);
    mt_http_end(r);
}

void mt_http_resume_body(mt_http_req_t *r)
{
    conn_t *c = r->conn;
    if (!c->body_paused || c->closing)
        return;
    c->body_paused = false;
    update_reading(c);
}

/* An error before (or instead of) dispatch: answer and close. */
static void pre_respond(conn_t *c, int status, const char *msg)
{
    if (!c->req)
        c->req = req_new(c);
    c->close_after = true;
    char body[256];
    int n = snprintf(body, sizeof body, "%s\n", msg);
    mt_http_respond(c->req, status, "text/plain", NULL, body, (size_t)n);
}

/* ---- parser callbacks ---- */

static conn_t *P(http_parser *p)
{
    return p->data;
}

static int count_header(conn_t *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes > c->srv->o.max_header) {
        c->pre_error = 431;
        return -1;
    }
    return 0;
}

static int on_message_begin(http_parser *p)
{
    conn_t *c = P(p);
    mt_buf_reset(&c->url);
    mt_buf_reset(&c->hname);
    mt_buf_reset(&c->hval);
    c->in_value = false;
    if (!c->req)
        c->req = req_new(c);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    conn_t *c = P(p);
    if (count_header(c, n) || mt_buf_append(&c->url, at, n))
        return (c->pre_error = 431), -1;
    return 0;
}

static char *dup_buf(const mt_buf_t *b)
{
    char *s = mt_malloc(b->len + 1);
    memcpy(s, b->data, b->len);
    s[b->len] = 0;
    return s;
}

static int flush_header(conn_t *c)
{
    mt_http_req_t *r = c->req;
    if (!c->hname.len)
        return 0;
    if (r->n_headers >= MT_HTTP_MAX_HEADERS) {
        c->pre_error = 431;
        return -1;
    }
    char *name = dup_buf(&c->hname);
    for (char *q = name; *q; q++)
        if (*q >= 'A' && *q <= 'Z')
            *q = (char)(*q + 32);
    char *v = dup_buf(&c->hval);
    size_t vn = strlen(v);
    while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
        v[--vn] = 0;
    r->headers[r->n_headers].name = name;
    r->headers[r->n_headers].value = v;
    r->n_headers++;
    mt_buf_reset(&c->hname);
    mt_buf_reset(&c->hval);
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    conn_t *c = P(p);
    if (count_header(c, n))
        return -1;
    if (c->in_value) {
        if (flush_header(c))
            return -1;
        c->in_value = false;
    }
    return mt_buf_append(&c->hname, at, n) ? ((c->pre_error = 431), -1) : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    conn_t *c = P(p);
    if (count_header(c, n))
        return -1;
    c->in_value = true;
    return mt_buf_append(&c->hval, at, n) ? ((c->pre_error = 431), -1) : 0;
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

/* Percent-decode the path; NULL when it has a bad escape or decodes to a NUL. */
static char *decode_path(const char *s, size_t n)
{
    char *o = mt_malloc(n + 1);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            o[j++] = s[i];
            continue;
        }
        int h = i + 2 < n ? hexval(s[i + 1]) : -1, l = i + 2 < n ? hexval(s[i + 2]) : -1;
        if (h < 0 || l < 0 || (h == 0 && l == 0)) {
            mt_free(o);
            return NULL;
        }
        o[j++] = (char)(h * 16 + l);
        i += 2;
    }
    o[j] = 0;
    return o;
}

static int on_headers_complete(http_parser *p)
{
    conn_t *c = P(p);
    mt_http_req_t *r = c->req;
    if (c->in_value && flush_header(c))
        return -1;
    c->headers_done = true;
    r->method = p->method;
    if (!http_should_keep_alive(p))
        c->close_after = true;
    const char *u = (const char *)c->url.data;
    size_t un = c->url.len;
    struct http_parser_url pu;
    http_parser_url_init(&pu);
    if (un == 0 || http_parser_parse_url(u, un, 0, &pu) != 0 ||
        !(pu.field_set & (1 << UF_PATH))) {
        c->pre_error = 400;
        return -1;
    }
    r->path = decode_path(u + pu.field_data[UF_PATH].off, pu.field_data[UF_PATH].len);
    if (!r->path) {
        c->pre_error = 400;
        return -1;
    }
    if (pu.field_set & (1 << UF_QUERY))
        r->query = mt_strndup(u + pu.field_data[UF_QUERY].off, pu.field_data[UF_QUERY].len);
    else
        r->query = mt_strdup("");
    if (p->flags & F_CONTENTLENGTH || mt_http_header(r, "content-length")) {
        r->content_length = (int64_t)p->content_length;
        if (p->content_length > c->srv->o.max_body) {
            c->pre_error = 413;
            return -1;
        }
    }
    /* RFC 9112 §6.3: a request has a body only with Transfer-Encoding or Content-Length */
    c->no_body = !(p->flags & F_CHUNKED) && (!(p->flags & F_CONTENTLENGTH) ||
                                             p->content_length == 0);
    const char *ex = mt_http_header(r, "expect");
    c->want_continue = ex && strcasecmp(ex, "100-continue") == 0;
    arm_timer(c);
    dispatch(c); /* now, so the handler sees the body bytes that follow in this buffer */
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    conn_t *c = P(p);
    mt_http_req_t *r = c->req;
    if (c->closing || !r)
        return 0;
    c->body_bytes += n;
    if (c->body_bytes > c->srv->o.max_body) {
        c->pre_error = 413;
        return -1;
    }
    if (r->ended || !r->handler || !r->handler->on_body)
        return 0; /* answered already, or a body nobody wants: discard */
    int rc = r->handler->on_body(r, (const uint8_t *)at, n);
    if (rc < 0) {
        c->close_after = true;
        r->handler = NULL;
        return 0;
    }
    if (rc == 1)
        c->body_paused = true; /* stop reading the socket; the bytes at hand still come */
    return 0;
}

static int on_message_complete(http_parser *p)
{
    conn_t *c = P(p);
    if (c->closing)
        return 0;
    c->message_done = true;
    http_parser_pause(p, 1); /* one request at a time */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void dispatch(conn_t *c)
{
    mt_http_req_t *r = c->req;
    c->srv->o.dispatch(c->srv->o.user, r);
    if (c->closing)
        return;
    if (c->want_continue && !r->started && !c->message_done) {
        uv_buf_t b = uv_buf_init("HTTP/1.1 100 Continue\r\n\r\n", 25);
        queue(c, &b, 1, NULL);
    }
}

/* Feed conn->in to the parser until a message is complete (then wait for its response), the
 * bytes run out, or the input is malformed. Not re-entrant: a response that ends inside a
 * callback lets the loop go on with the next request. */
static void parse_more(conn_t *c)
{
    if (c->in_parse)
        return;
    c->in_parse = true;
    while (!c->closing && !c->message_done && c->in.len) {
        size_t n = http_parser_execute(&c->parser, &settings, (const char *)c->in.data,
                                       c->in.len);
        if (c->closing)
            break;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e != HPE_OK && e != HPE_PAUSED) {
            /* the parser's own limit (set to max_header) can trip before our callbacks have
             * counted the bytes: a long header value or request line still in the buffer */
            int st = c->pre_error            ? c->pre_error
                     : e == HPE_HEADER_OVERFLOW ? 431
                                              : 400;
            const char *why = st == 431   ? "request header too large"
                              : st == 413 ? "request body too large"
                                          : http_errno_description(e);
            mt_buf_consume(&c->in, c->in.len);
            mt_log(MT_LOG_INFO, NULL, "http %s: %d %s", c->peer, st, why);
            mt_http_req_t *r = c->req;
            c->message_done = true;
            c->close_after = true;
            if (r && r->handler && !r->ended) {
                /* The handler owns the request: we answer on the socket ourselves, and tell
                 * it; whatever it answers later is dropped (aborted) and its mt_http_end
                 * lets the connection close. */
                bool answered = r->started;
                r->aborted = true;
                if (!answered) {
                    char raw[512];
                    int bn = snprintf(raw, sizeof raw,
                                      "HTTP/1.1 %d %s\r\nServer: mitral\r\nContent-Type: "
                                      "text/plain\r\nContent-Length: %zu\r\nConnection: "
                                      "close\r\n\r\n%s\n",
                                      st, mt_http_reason(st), strlen(why) + 1, why);
                    char *m = mt_malloc((size_t)bn);
                    memcpy(m, raw, (size_t)bn);
                    uv_buf_t b = uv_buf_init(m, (unsigned)bn);
                    void *own[1] = {m};
                    queue(c, &b, 1, own);
                }
                const mt_http_handler_t *h = r->handler;
                if (h->on_abort)
                    h->on_abort(r); /* may end (and free) the request */
                if (answered && !c->closing && c->req == r)
                    conn_close(c); /* a response is half sent: nothing else can follow */
            } else if (!r || !r->started) {
                pre_respond(c, st, why);
            } else if (!r->ended) {
                conn_close(c);
            }
            break;
        }
        mt_buf_consume(&c->in, n);
        if (c->closing)
            break;
        if (c->message_done && c->req) {
            mt_http_req_t *r = c->req;
            if (!r->ended && r->handler && r->handler->on_end)
                r->handler->on_end(r); /* may end the response: req_finish resets the state */
            else if (!r->ended && !r->handler)
                mt_http_respond(r, 500, NULL, NULL, NULL, 0);
            else if (r->ended)
                req_finish(c);
            continue;
        }
        if (n == 0)
            break;
    }
    c->in_parse = false;
    update_reading(c);
}

/* ---- socket ---- */

static void on_alloc(uv_handle_t *h, size_t sugg, uv_buf_t *b)
{
    (void)h;
    (void)sugg;
    static char slab[READ_CHUNK]; /* loop thread only; consumed before the next alloc */
    *b = uv_buf_init(slab, sizeof slab);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    conn_t *c = s->data;
    if (nread < 0) {
        conn_close(c); /* tells the handler (on_abort) */
        return;
    }
    if (nread == 0)
        return;
    if (c->sniff) {
        c->sniff = false;
        if ((uint8_t)b->base[0] == 0x16 && tls_attach(c) != 0) {
            conn_close(c);
            return;
        }
    }
    if (c->ssl) {
        if (BIO_write(c->rbio, b->base, (int)nread) != (int)nread) {
            conn_close(c);
            return;
        }
        char plain[16384];
        for (;;) {
            int k = SSL_read(c->ssl, plain, sizeof plain);
            if (k > 0) {
                if (mt_buf_append(&c->in, plain, (size_t)k)) {
                    pre_respond(c, 431, "too much unparsed input");
                    return;
                }
                continue;
            }
            int e = SSL_get_error(c->ssl, k);
            tls_flush(c); /* handshake records */
            if (e == SSL_ERROR_WANT_READ)
                break;
            if (e != SSL_ERROR_ZERO_RETURN)
                mt_log(MT_LOG_INFO, NULL, "http %s: TLS: %s", c->peer,
                       ERR_reason_error_string(ERR_peek_last_error()) ?: "connection failed");
            ERR_clear_error();
            conn_close(c);
            return;
        }
        if (c->closing)
            return;
    } else if (mt_buf_append(&c->in, b->base, (size_t)nread)) {
        pre_respond(c, 431, "too much unparsed input");
        return;
    }
    arm_timer(c);
    parse_more(c);
}

static void update_reading(conn_t *c)
{
    if (c->closing)
        return;
    bool want = c->in.len < IN_MAX && !c->body_paused && !c->message_done;
    if (want && !c->reading) {
        c->reading = true;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    } else if (!want && c->reading) {
        c->reading = false;
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    c->open_handles--;
    if (c->open_handles == 0 && c->sf && !c->sf_running) {
        /* a sendfile that was waiting for the write queue will never start */
        sendfile_req_t *f = c->sf;
        c->sf = NULL;
        c->in_cb++;
        f->cb(f->data, MT_ECANCELED);
        c->in_cb--;
        mt_free(f);
    }
    if (c->open_handles == 0 && c->drain_cb) {
        /* a writer waiting for the drain learns of the close now (its request is aborted) */
        void (*cb)(void *) = c->drain_cb;
        c->drain_cb = NULL;
        c->in_cb++;
        cb(c->drain_data);
        c->in_cb--;
    }
    maybe_free_conn(c);
}

static void maybe_free_conn(conn_t *c)
{
    if (c->open_handles || c->queued || c->req || c->in_cb || c->sf)
        return;
    mt_http_server_t *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_conns--;
    if (c->ssl)
        SSL_free(c->ssl); /* and its BIOs */
    mt_buf_dispose(&c->in);
    mt_buf_dispose(&c->url);
    mt_buf_dispose(&c->hname);
    mt_buf_dispose(&c->hval);
    mt_free(c);
    if (s->stopping && s->n_conns == 0 && s->closed && s->idle_cb) {
        void (*cb)(void *) = s->idle_cb;
        s->idle_cb = NULL;
        cb(s->idle_data);
    }
}

static void conn_close(conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    mt_http_req_t *r = c->req;
    if (r && !r->ended && !r->aborted) {
        r->aborted = true;
        if (r->handler && r->handler->on_abort)
            r->handler->on_abort(r); /* may end (and so free) the request */
    }
    r = c->req;
    if (r && !r->ended && !r->handler)
        r->ended = true; /* nobody owns it */
    if (r && r->ended) {
        c->req = NULL;
        req_free(r);
    }
    if (c->sf && c->sf->waiting) { /* not on a worker: end it now (sf_done closes tcp) */
        sendfile_req_t *f = c->sf;
        uv_poll_stop(&f->poll);
        f->waiting = false;
        f->err = MT_ECANCELED;
        sf_finish(f);
    } else if (!c->sf_running) { /* else after the worker is done with the socket */
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    }
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void on_timer(uv_timer_t *t)
{
    conn_t *c = t->data;
    if (c->closing)
        return;
    if (c->sf_running) { /* a file send: closed only when it moved nothing for idle_timeout */
        uint64_t idle = uv_now(c->srv->loop) - c->sf->last_move;
        if (!c->sf->waiting || idle < c->srv->o.idle_timeout_ms) {
            arm_timer(c);
            return;
        }
        mt_log(MT_LOG_INFO, NULL, "http %s: client read nothing for %llu ms, closing", c->peer,
               (unsigned long long)idle);
        conn_close(c);
        return;
    }
    if (!c->headers_done && c->header_bytes + c->in.len > 0 && !(c->req && c->req->started)) {
        mt_log(MT_LOG_INFO, NULL, "http %s: request header not complete in time", c->peer);
        c->message_done = true;
        pre_respond(c, 408, "request header not complete in time");
        /* do not wait for the peer to read it: close when written (or at idle timeout) */
        return;
    }
    mt_log(MT_LOG_DEBUG, NULL, "http %s: idle, closing", c->peer);
    conn_close(c);
}

static void arm_timer(conn_t *c)
{
    if (c->closing)
        return;
    uint64_t now = uv_now(c->srv->loop);
    uint64_t ms = c->srv->o.idle_timeout_ms;
    if (!c->headers_done) {
        uint64_t left = c->header_deadline > now ? c->header_deadline - now : 0;
        if (left < ms)
            ms = left;
    }
    uv_timer_start(&c->timer, on_timer, ms ? ms : 1, 0);
}

/* Make c a TLS connection (server side, memory BIOs). */
static int tls_attach(conn_t *c)
{
    c->ssl = SSL_new(c->srv->tls);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (!c->ssl || !c->rbio || !c->wbio) {
        SSL_free(c->ssl);
        c->ssl = NULL;
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        return MT_ENOMEM;
    }
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_accept_state(c->ssl);
    return 0;
}

/* tls: MT_HTTP_TLS_OFF (clear HTTP), _ONLY (TLS) or _BOTH (sniff the first byte). */
static void accept_conn(uv_stream_t *server, int status, int tls)
{
    mt_http_server_t *s = server->data;
    if (status < 0)
        return;
    conn_t *c = mt_calloc(1, sizeof *c);
    c->srv = s;
    c->id = ++s->next_id;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    mt_buf_init(&c->in, IN_MAX + READ_CHUNK);
    mt_buf_init(&c->url, s->o.max_header);
    mt_buf_init(&c->hname, s->o.max_header);
    mt_buf_init(&c->hval, s->o.max_header);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (tls == MT_HTTP_TLS_ONLY && tls_attach(c) != 0) {
        conn_close(c);
        return;
    }
    c->sniff = tls == MT_HTTP_TLS_BOTH;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    snprintf(c->peer, sizeof c->peer, "?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        char ip[48] = "?";
        int port = 0;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            uv_ip4_name(a, ip, sizeof ip);
            port = ntohs(a->sin_port);
            c->loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, ip, sizeof ip);
            port = ntohs(a->sin6_port);
            static const uint8_t lo6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
            c->loopback = memcmp(&a->sin6_addr, lo6, 16) == 0 ||
                          strncmp(ip, "::ffff:127.", 11) == 0;
        }
        snprintf(c->peer, sizeof c->peer, "%s:%d", ip, port);
    }
    c->header_deadline = uv_now(s->loop) + s->o.header_timeout_ms;
    if (s->n_conns > s->o.max_conns || s->stopping) {
        mt_log(MT_LOG_WARN, NULL, "http %s: too many connections (%u), refused", c->peer,
               s->n_conns - 1);
        c->message_done = true;
        pre_respond(c, 503, "too many connections");
        return;
    }
    arm_timer(c);
    update_reading(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    mt_http_server_t *s = server->data;
    accept_conn(server, status, s->o.tls_main);
}

static void on_connection_tls(uv_stream_t *server, int status)
{
    accept_conn(server, status, MT_HTTP_TLS_ONLY);
}

static void on_server_closed(uv_handle_t *h)
{
    mt_http_server_t *s = h->data;
    if (--s->n_listeners > 0)
        return;
    s->closed = true;
    if (s->n_conns == 0 && s->idle_cb) {
        void (*cb)(void *) = s->idle_cb;
        s->idle_cb = NULL;
        cb(s->idle_data);
    }
}

/* The TLS 1.2+ context with the configured certificate chain and key. */
static int tls_context(mt_http_server_t *s, const mt_http_opts_t *o)
{
    s->tls = SSL_CTX_new(TLS_server_method());
    if (!s->tls)
        return MT_ENOMEM;
    SSL_CTX_set_min_proto_version(s->tls, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(s->tls, o->tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(s->tls, o->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(s->tls) != 1) {
        mt_log(MT_LOG_ERROR, NULL, "http.tls_cert/tls_key: %s",
               ERR_reason_error_string(ERR_peek_last_error()) ?: "cannot load");
        ERR_clear_error();
        return MT_ECONF;
    }
    return 0;
}

/* The second listener (http.tls_port): every connection runs TLS. */
static int tls_start(mt_http_server_t *s, const mt_http_opts_t *o)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    int rc = uv_ip4_addr(o->bind, o->tls_port, (struct sockaddr_in *)&ss);
    if (rc < 0)
        rc = uv_ip6_addr(o->bind, o->tls_port, (struct sockaddr_in6 *)&ss);
    if (rc < 0)
        return MT_EINVAL;
    uv_tcp_init(s->loop, &s->tls_tcp);
    s->tls_tcp.data = s;
    s->n_listeners++;
    rc = uv_tcp_bind(&s->tls_tcp, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->tls_tcp, 128, on_connection_tls);
    if (rc < 0)
        uv_close((uv_handle_t *)&s->tls_tcp, on_server_closed);
    return rc;
}

int mt_http_start(uv_loop_t *loop, const mt_http_opts_t *o, mt_http_server_t **out)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    int rc = uv_ip4_addr(o->bind, o->port, (struct sockaddr_in *)&ss);
    if (rc < 0)
        rc = uv_ip6_addr(o->bind, o->port, (struct sockaddr_in6 *)&ss);
    if (rc < 0)
        return MT_EINVAL;
    mt_http_server_t *s = mt_calloc(1, sizeof *s);
    s->loop = loop;
    s->o = *o;
    http_parser_set_max_header_size(o->max_header);
    if ((o->tls_port || o->tls_main) && (rc = tls_context(s, o)) != 0) {
        SSL_CTX_free(s->tls);
        mt_free(s);
        return rc;
    }
    uv_tcp_init(loop, &s->tcp);
    s->tcp.data = s;
    s->n_listeners = 1;
    rc = uv_tcp_bind(&s->tcp, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->tcp, 128, on_connection);
    if (rc == 0 && o->tls_port)
        rc = tls_start(s, o);
    if (rc < 0) {
        s->stopping = true;
        uv_close((uv_handle_t *)&s->tcp, on_server_closed);
        if (s->tls)
            SSL_CTX_free(s->tls);
        s->tls = NULL;
        return rc; /* s stays allocated: start-up failure ends the process */
    }
    s->listening = true;
    *out = s;
    return 0;
}

void mt_http_stop(mt_http_server_t *s)
{
    if (!s || s->stopping)
        return;
    s->stopping = true;
    if (s->listening) {
        s->listening = false;
        uv_close((uv_handle_t *)&s->tcp, on_server_closed);
        if (s->o.tls_port)
            uv_close((uv_handle_t *)&s->tls_tcp, on_server_closed);
    }
    for (conn_t *c = s->conns, *n; c; c = n) {
        n = c->next;
        if (!c->req)
            conn_close(c);
        else
            c->close_after = true;
    }
}

void mt_http_abort_all(mt_http_server_t *s)
{
    if (!s)
        return;
    for (conn_t *c = s->conns, *n; c; c = n) {
        n = c->next;
        conn_close(c);
    }
}

uint32_t mt_http_busy(const mt_http_server_t *s)
{
    return s ? s->n_conns : 0;
}

void mt_http_on_idle(mt_http_server_t *s, void (*cb)(void *), void *data)
{
    if (s->closed && s->n_conns == 0) {
        cb(data);
        return;
    }
    s->idle_cb = cb;
    s->idle_data = data;
}

void mt_http_free(mt_http_server_t *s)
{
    if (s && s->tls)
        SSL_CTX_free(s->tls);
    mt_free(s);
}
