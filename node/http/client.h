/*
 * client.h - an HTTP/1.1 client connection on the libuv loop (non-blocking: uv_getaddrinfo,
 * uv_tcp_connect, uv_read/uv_write; TLS through OpenSSL memory BIOs as in conn.c). One
 * exchange (request, response) at a time; the connection is kept open and reused for the
 * next exchange when the response allows it (keep-alive), and reopened transparently when
 * the server closed it meanwhile. The message codec is client_codec.h (pure).
 *
 * Exchange:  mt_httpc_begin -> on_ready(0) -> mt_httpc_write_take ... -> mt_httpc_end_request
 *            -> on_response(0, resp)     or, at any point after on_ready, on_response(<0, NULL)
 *  - on_ready(<0): no connection (resolve, connect, TLS handshake or certificate check
 *    failed, or connect_timeout); mt_httpc_why says why; no on_response follows.
 *  - on_response fires exactly once per exchange that got on_ready(0). A response that comes
 *    before the request body is complete (a 401 on the headers) is delivered at once and the
 *    connection is closed (the rest of the body is not sent); write callbacks after
 *    on_response do not fire.
 *  - io_timeout: no byte moved either way for that long while an exchange runs: on_response
 *    (MT_ECANCELED-like failure, "timed out").
 * Who frees: the client owns every buffer handed to mt_httpc_write_take (mt_malloc'd);
 * resp is borrowed during on_response only.
 */
#ifndef MT_HTTP_CLIENT_H
#define MT_HTTP_CLIENT_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <uv.h>

#include "../util/log.h"
#include "client_codec.h"

typedef struct mt_httpc mt_httpc_t;

typedef struct mt_httpc_opts {
    mt_httpc_url_t url;          /* host, port, tls */
    SSL_CTX *tls;                /* https: borrowed, outlives the client; NULL for http */
    bool verify_host;            /* check the certificate names url.host (https) */
    uint32_t connect_timeout_ms; /* resolve + connect + TLS handshake */
    uint32_t io_timeout_ms;      /* inactivity during an exchange */
    size_t body_limit;           /* largest response body kept */
} mt_httpc_opts_t;

typedef void (*mt_httpc_ready_cb)(void *user, int status, bool reused);
typedef void (*mt_httpc_response_cb)(void *user, int status, mt_httpc_resp_t *resp);
typedef void (*mt_httpc_written_cb)(void *user, int status);

mt_httpc_t *mt_httpc_new(uv_loop_t *loop, const mt_httpc_opts_t *o, mt_log_ctx_t *log);
/* Start an exchange (none may be running). on_ready may run before this returns when an
 * open connection is reused. */
void mt_httpc_begin(mt_httpc_t *c, mt_httpc_ready_cb on_ready, mt_httpc_response_cb on_response,
                    void *user);
/* Send n bytes of the request (p is mt_malloc'd; taken). cb when the kernel has them, with 0
 * or a negative code (then wait for on_response: the server may have answered). One write at
 * a time keeps memory bounded; the caller waits for cb before the next. */
void mt_httpc_write_take(mt_httpc_t *c, void *p, size_t n, mt_httpc_written_cb cb);
/* The whole request is written: the response completes the exchange. */
void mt_httpc_end_request(mt_httpc_t *c);
/* Why the last exchange or connection failed (static or in c; valid until the next call). */
const char *mt_httpc_why(const mt_httpc_t *c);
/* The last exchange failed on a reused keep-alive connection before any byte of a response
 * (the server had closed it while idle): sending the same request again on a fresh
 * connection is safe and expected. */
bool mt_httpc_retry_fresh(const mt_httpc_t *c);
/* Close the connection; a running exchange ends with on_response(MT_ECANCELED) (or its
 * on_ready(MT_ECANCELED)) before this returns. The client stays usable. */
void mt_httpc_abort(mt_httpc_t *c);
/* Abort and free once every handle is closed; cb(data) then (on the loop). */
void mt_httpc_free(mt_httpc_t *c, void (*cb)(void *), void *data);

#endif
