/*
 * http.h - HTTP/1.1 server on the node's libuv loop (conn.c), the seam between the transport
 * and the DICOMweb services (web.c, qido.c, wado.c, stow.c).
 *
 * conn.c owns the listening socket, every connection (uv_tcp_t + one uv_timer_t), the read
 * buffer and the request parser (Debian's libhttp-parser, a maintained parser: we do not hand-
 * write HTTP). It is the only file that does socket I/O for HTTP.
 *
 * One request at a time per connection (pipelining-safe): when a request's headers are
 * complete, the dispatch callback runs (web.c routes and authenticates); parsing then pauses
 * at the end of the message until the response has ended, and the bytes of a pipelined next
 * request wait in the read buffer. Bodies stream through handler->on_body in the pieces they
 * arrive in; a handler returns 1 to stop reading (back-pressure) and calls
 * mt_http_resume_body() to go on. Responses either carry a whole body (mt_http_respond) or
 * stream it (mt_http_begin, mt_http_write*, mt_http_end): with a known length, or chunked.
 * A writer that sees mt_http_write* return 1 waits for the drain callback before writing more,
 * so memory per connection is bounded by MT_HTTP_WRITE_HIGH plus one piece.
 *
 * Limits: http.max_connections (503 and close beyond), http.max_header_size (431),
 * http.max_body_mb (413), http.header_timeout (the request line and headers must arrive in
 * time: 408, slowloris), http.idle_timeout (no byte moved either way: closed).
 *
 * Request lifetime: the request lives until (a) the response has ended (mt_http_end /
 * mt_http_respond) and (b) the message has been read to its end or the connection is closed.
 * A handler calls mt_http_end (or mt_http_respond) exactly once, also after on_abort (its
 * writes are then dropped): that is when it lets go of the request.
 */
#ifndef MT_HTTP_H
#define MT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define MT_HTTP_WRITE_HIGH (4u << 20) /* bytes queued before writers must wait */
#define MT_HTTP_MAX_HEADERS 64

typedef struct mt_http_server mt_http_server_t;
typedef struct mt_http_req mt_http_req_t;

typedef struct mt_http_handler {
    /* Body bytes. Return 0 to go on, 1 to stop reading until mt_http_resume_body(), negative
     * to give up on the body (the connection closes after the response). May be NULL. */
    int (*on_body)(mt_http_req_t *r, const uint8_t *p, size_t n);
    /* The whole request has been read. May be NULL. */
    void (*on_end)(mt_http_req_t *r);
    /* The connection is gone: stop work; still call mt_http_end once. May be NULL. */
    void (*on_abort)(mt_http_req_t *r);
} mt_http_handler_t;

typedef struct mt_http_header {
    char *name; /* lower-cased */
    char *value;
} mt_http_header_t;

struct mt_http_req {
    int method;      /* http_parser's enum http_method: HTTP_GET, HTTP_POST ... */
    char *path;      /* percent-decoded path, without the query */
    char *query;     /* raw query string after '?', "" when none */
    mt_http_header_t headers[MT_HTTP_MAX_HEADERS];
    size_t n_headers;
    int64_t content_length; /* -1 when absent (chunked or none) */
    bool peer_loopback;     /* the client connected from 127.0.0.0/8 or ::1 */
    bool tls;               /* came in on the HTTPS listener */
    char peer[64];          /* "addr:port" for logs */
    uint64_t id;            /* connection id . request number, for logs */
    /* set by the dispatch callback */
    const mt_http_handler_t *handler;
    void *h;
    /* response state (read-only for handlers) */
    bool started, ended, aborted, resp_chunked;
    int status;
    struct mt__http_conn *conn;
};

/* dispatch: called when a request's headers are complete. It sets r->handler/r->h and/or
 * responds at once. */
typedef void (*mt_http_dispatch_cb)(void *user, mt_http_req_t *r);

enum { MT_HTTP_TLS_OFF, MT_HTTP_TLS_BOTH, MT_HTTP_TLS_ONLY }; /* = http.tls's names */

typedef struct mt_http_opts {
    const char *bind;
    uint16_t port;
    uint32_t max_conns, max_header;
    uint64_t max_body;
    uint32_t header_timeout_ms, idle_timeout_ms;
    uint16_t tls_port;              /* 0: no HTTPS listener */
    int tls_main;                   /* TLS on port: MT_HTTP_TLS_OFF, _BOTH (sniffed), _ONLY */
    const char *tls_cert, *tls_key; /* PEM files (chain, key) when tls_port/tls_main is set */
    mt_http_dispatch_cb dispatch;
    void *user;
} mt_http_opts_t;

int mt_http_start(uv_loop_t *loop, const mt_http_opts_t *o, mt_http_server_t **out);
/* Stop accepting; idle connections close now, busy ones after their response. */
void mt_http_stop(mt_http_server_t *s);
/* Close every connection now (shutdown drain expired). Handlers get on_abort. */
void mt_http_abort_all(mt_http_server_t *s);
/* Busy connections (a request in flight) + open ones; the server is freed when it has stopped
 * and no connection is left. */
uint32_t mt_http_busy(const mt_http_server_t *s);
/* Called when the server has stopped and its last connection closed (once). */
void mt_http_on_idle(mt_http_server_t *s, void (*cb)(void *), void *data);

/* Free the server object once mt_http_on_idle's callback has run (or start failed). */
void mt_http_free(mt_http_server_t *s);

/* The value of header name (lower case), or NULL. */
const char *mt_http_header(const mt_http_req_t *r, const char *name);

/* A whole response: status, Content-Type (NULL = none), extra header lines (each ending in
 * "\r\n", or NULL), body copied. Ends the response. */
void mt_http_respond(mt_http_req_t *r, int status, const char *ctype, const char *extra,
                     const void *body, size_t len);
/* A streamed response. content_length < 0: chunked. */
void mt_http_begin(mt_http_req_t *r, int status, const char *ctype, const char *extra,
                   int64_t content_length);
/* Write body bytes (copied / ownership of p, an mt_malloc'd block, taken). Returns 1 when the
 * caller should wait for the drain callback before writing more, 0 otherwise. */
int mt_http_write(mt_http_req_t *r, const void *p, size_t n);
int mt_http_write_take(mt_http_req_t *r, void *p, size_t n);
/* cb fires once (on the loop) when the queued bytes fall below the low-water mark. */
void mt_http_on_drain(mt_http_req_t *r, void (*cb)(void *), void *data);
void mt_http_end(mt_http_req_t *r);
/* Zero-copy: len bytes of file from off straight to the socket (sendfile(2) on a worker,
 * after what is queued). cb(data, 0 | negative) once, on the loop; file stays the caller's.
 * Only when mt_http_can_sendfile (plain HTTP, not HEAD). In a chunked response the bytes are
 * one chunk (size line and final CRLF written here). */
bool mt_http_can_sendfile(const mt_http_req_t *r);
/* Is the request on a TLS connection? */
bool mt_http_is_tls(const mt_http_req_t *r);
void mt_http_sendfile(mt_http_req_t *r, int file, int64_t off, size_t len,
                      void (*cb)(void *data, int status), void *data);
/* Zero-copy, many files in one go: for each file, its head bytes (e.g. a multipart part
 * header), then size bytes of the file at path; then tail. All of it runs on one worker
 * (send(MSG_MORE) for the heads, sendfile(2) for the files, the next file opened and read
 * ahead with POSIX_FADV_WILLNEED while the current one is sent), so a series costs one
 * thread-pool round trip, not several per instance. The response must have a known
 * Content-Length (not chunked). files and their strings stay the caller's until cb(data,
 * 0 | negative), once, on the loop. A file shorter than its size fails (the connection closes:
 * the client sees a short body). */
typedef struct mt_http_file {
    const char *head;
    size_t head_len;
    const char *path;
    uint64_t size;
} mt_http_file_t;
void mt_http_sendfiles(mt_http_req_t *r, const mt_http_file_t *files, size_t n,
                       const char *tail, size_t tail_len, void (*cb)(void *data, int status),
                       void *data);
/* After an on_body that returned 1. */
void mt_http_resume_body(mt_http_req_t *r);

const char *mt_http_reason(int status);

#endif
