/*
 * client_codec.h - the HTTP/1.1 client's message codec (RFC 9112), PURE: no sockets, no clock.
 *
 *   mt_httpc_head           request line + headers (Host, Content-Length, ...) into a buffer
 *   mt_httpc_mp_*           multipart/related framing (RFC 2387 / RFC 2046 §5.1) of a body
 *                           whose parts are streamed by the caller: the delimiter before each
 *                           part and the close delimiter, and the exact body length for
 *                           Content-Length computed from the part sizes before any byte is sent
 *   mt_httpc_resp_*         the response parser: Debian's libhttp-parser (the server's parser,
 *                           node/http/conn.c) in HTTP_RESPONSE mode, push-fed in any
 *                           fragmentation; Content-Length, chunked and read-until-close
 *                           bodies; the body kept up to a limit (larger: MT_ETOOBIG)
 *
 * Body layout (what mt_httpc_mp_length counts):
 *   for each part i:  (i ? "\r\n" : "") "--" B "\r\n" "Content-Type: " T "\r\n\r\n" <bytes>
 *   then:             "\r\n--" B "--\r\n"
 * The caller (node/forward_web.c) writes the part heads and the file bytes in between.
 */
#ifndef MT_HTTP_CLIENT_CODEC_H
#define MT_HTTP_CLIENT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../util/buf.h"
#include "url.h"

typedef struct mt_httpc_head {
    const char *method; /* "POST" */
    const mt_httpc_url_t *url;
    const char *content_type;  /* NULL: none */
    int64_t content_length;    /* < 0: no body */
    const char *authorization; /* whole value ("Bearer x", "Basic y"), NULL: none */
    const char *accept;        /* NULL: none */
    const char *user_agent;    /* NULL: none */
} mt_httpc_head_t;

/* Append the request head (ends with the empty line). MT_EINVAL when a value holds CR/LF. */
int mt_httpc_head(mt_buf_t *out, const mt_httpc_head_t *h);

/* A boundary from 16 random bytes: "mitral-" + 32 hex digits (RFC 2046 bchars). */
void mt_httpc_mp_boundary(const uint8_t rnd[16], char out[48]);
/* Append the delimiter and part headers that go before part i (0-based). */
int mt_httpc_mp_part_head(mt_buf_t *out, const char *boundary, const char *ctype, size_t i);
/* Append the close delimiter. */
int mt_httpc_mp_close(mt_buf_t *out, const char *boundary);
/* The body length of n parts of the given sizes. */
uint64_t mt_httpc_mp_length(const char *boundary, const char *ctype, const uint64_t *sizes,
                            size_t n);

/* ---- response parser ---- */
typedef struct mt_httpc_resp mt_httpc_resp_t;

mt_httpc_resp_t *mt_httpc_resp_new(size_t body_limit);
void mt_httpc_resp_free(mt_httpc_resp_t *r);
/* Feed bytes; len 0 = the connection closed (EOF). Returns 1 when the response is complete
 * (later bytes are not consumed), 0 when more is needed, MT_EMALFORMED (with
 * mt_httpc_resp_error) or MT_ETOOBIG (body over the limit, headers over 16 KiB). */
int mt_httpc_resp_feed(mt_httpc_resp_t *r, const uint8_t *p, size_t len);
/* Any byte of a response seen. */
bool mt_httpc_resp_started(const mt_httpc_resp_t *r);
int mt_httpc_resp_status(const mt_httpc_resp_t *r);
/* The connection may carry another request after this response (HTTP/1.1 keep-alive, no
 * Connection: close, body delimited by length or chunking). */
bool mt_httpc_resp_keep_alive(const mt_httpc_resp_t *r);
/* The value of a header (name case-insensitive; the last one), or NULL. */
const char *mt_httpc_resp_header(const mt_httpc_resp_t *r, const char *name);
const uint8_t *mt_httpc_resp_body(const mt_httpc_resp_t *r, size_t *len);
const char *mt_httpc_resp_error(const mt_httpc_resp_t *r);

#endif
