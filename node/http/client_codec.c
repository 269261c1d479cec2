/*
 * client_codec.c - request framing and response parsing of the HTTP/1.1 client. PURE.
 * See client_codec.h for the layouts. The response parser wraps libhttp-parser (RFC 9112
 * message framing: status line, headers, Content-Length / chunked / until-close bodies) and
 * keeps the header fields and the body in bounded buffers.
 */
#include "client_codec.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../util/alloc.h"
#include "../util/err.h"

#define MAX_HEAD (16u << 10)
#define MAX_FIELDS 64

/* ---- request head ---- */

static bool header_safe(const char *v)
{
    return !v || strpbrk(v, "\r\n") == NULL;
}

static int put(mt_buf_t *b, const char *s)
{
    return mt_buf_append(b, s, strlen(s));
}

int mt_httpc_head(mt_buf_t *out, const mt_httpc_head_t *h)
{
    if (!header_safe(h->method) || !header_safe(h->content_type) ||
        !header_safe(h->authorization) || !header_safe(h->accept) || !header_safe(h->user_agent))
        return MT_EINVAL;
    char line[1400];
    const mt_httpc_url_t *u = h->url;
    bool v6 = strchr(u->host, ':') != NULL;
    bool dflt = u->port == (u->tls ? 443 : 80);
    int rc = 0;
    snprintf(line, sizeof line, "%s %s HTTP/1.1\r\nHost: %s%s%s", h->method, u->path, v6 ? "[" : "",
             u->host, v6 ? "]" : "");
    rc |= put(out, line);
    if (!dflt) {
        snprintf(line, sizeof line, ":%u", u->port);
        rc |= put(out, line);
    }
    rc |= put(out, "\r\n");
    if (h->user_agent) {
        snprintf(line, sizeof line, "User-Agent: %s\r\n", h->user_agent);
        rc |= put(out, line);
    }
    if (h->accept) {
        snprintf(line, sizeof line, "Accept: %s\r\n", h->accept);
        rc |= put(out, line);
    }
    if (h->authorization) {
        rc |= put(out, "Authorization: ");
        rc |= put(out, h->authorization);
        rc |= put(out, "\r\n");
    }
    if (h->content_type) {
        snprintf(line, sizeof line, "Content-Type: %s\r\n", h->content_type);
        rc |= put(out, line);
    }
    if (h->content_length >= 0) {
        snprintf(line, sizeof line, "Content-Length: %lld\r\n", (long long)h->content_length);
        rc |= put(out, line);
    }
    rc |= put(out, "\r\n");
    return rc ? MT_ETOOBIG : 0;
}

/* ---- multipart framing ---- */

void mt_httpc_mp_boundary(const uint8_t rnd[16], char out[48])
{
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "mitral-", 7);
    for (int i = 0; i < 16; i++) {
        out[7 + 2 * i] = hex[rnd[i] >> 4];
        out[8 + 2 * i] = hex[rnd[i] & 15];
    }
    out[39] = '\0';
}

static size_t part_head_len(const char *boundary, const char *ctype, size_t i)
{
    /* (CRLF) "--" B CRLF "Content-Type: " T CRLF CRLF */
    return (i ? 2 : 0) + 2 + strlen(boundary) + 2 + 14 + strlen(ctype) + 4;
}

int mt_httpc_mp_part_head(mt_buf_t *out, const char *boundary, const char *ctype, size_t i)
{
    int rc = put(out, i ? "\r\n--" : "--");
    rc |= put(out, boundary);
    rc |= put(out, "\r\nContent-Type: ");
    rc |= put(out, ctype);
    rc |= put(out, "\r\n\r\n");
    return rc ? MT_ETOOBIG : 0;
}

int mt_httpc_mp_close(mt_buf_t *out, const char *boundary)
{
    int rc = put(out, "\r\n--");
    rc |= put(out, boundary);
    rc |= put(out, "--\r\n");
    return rc ? MT_ETOOBIG : 0;
}

uint64_t mt_httpc_mp_length(const char *boundary, const char *ctype, const uint64_t *sizes,
                            size_t n)
{
    uint64_t len = 4 + strlen(boundary) + 4; /* close delimiter */
    for (size_t i = 0; i < n; i++)
        len += part_head_len(boundary, ctype, i) + sizes[i];
    return len;
}

/* ---- response parser ---- */

typedef struct field {
    size_t name, name_len, value, value_len; /* offsets into head */
} field_t;

struct mt_httpc_resp {
    http_parser p;
    mt_buf_t head; /* header names and values, back to back */
    field_t fields[MAX_FIELDS];
    size_t n_fields;
    bool in_value; /* the last callback was on_header_value */
    mt_buf_t body;
    bool started, headers_done, complete, keep_alive, too_big;
    const char *error;
    char tmp[256]; /* mt_httpc_resp_header's NUL-terminated copy */
};

static mt_httpc_resp_t *of(http_parser *p)
{
    return p->data;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    mt_httpc_resp_t *r = of(p);
    if (r->in_value || r->n_fields == 0) {
        if (r->n_fields >= MAX_FIELDS) {
            r->too_big = true;
            return -1;
        }
        field_t *f = &r->fields[r->n_fields++];
        memset(f, 0, sizeof *f);
        f->name = r->head.len;
        r->in_value = false;
    }
    if (mt_buf_append(&r->head, at, n)) {
        r->too_big = true;
        return -1;
    }
    r->fields[r->n_fields - 1].name_len += n;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    mt_httpc_resp_t *r = of(p);
    field_t *f = &r->fields[r->n_fields - 1];
    if (!r->in_value) {
        r->in_value = true;
        f->value = r->head.len;
    }
    if (mt_buf_append(&r->head, at, n)) {
        r->too_big = true;
        return -1;
    }
    f->value_len += n;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    of(p)->headers_done = true;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    mt_httpc_resp_t *r = of(p);
    if (mt_buf_append(&r->body, at, n)) {
        r->too_big = true;
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    mt_httpc_resp_t *r = of(p);
    if (p->status_code >= 100 && p->status_code < 200) { /* interim (100 Continue): skip */
        r->n_fields = 0;
        r->in_value = false;
        r->headers_done = false;
        mt_buf_reset(&r->head);
        return 0;
    }
    r->complete = true;
    r->keep_alive = http_should_keep_alive(p) != 0;
    http_parser_pause(p, 1); /* the bytes after this response are not ours */
    return 0;
}

static const http_parser_settings settings = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

mt_httpc_resp_t *mt_httpc_resp_new(size_t body_limit)
{
    mt_httpc_resp_t *r = mt_calloc(1, sizeof *r);
    http_parser_init(&r->p, HTTP_RESPONSE);
    r->p.data = r;
    mt_buf_init(&r->head, MAX_HEAD);
    mt_buf_init(&r->body, body_limit);
    return r;
}

void mt_httpc_resp_free(mt_httpc_resp_t *r)
{
    if (!r)
        return;
    mt_buf_dispose(&r->head);
    mt_buf_dispose(&r->body);
    mt_free(r);
}

int mt_httpc_resp_feed(mt_httpc_resp_t *r, const uint8_t *p, size_t len)
{
    if (r->complete)
        return 1;
    if (r->error)
        return r->too_big ? MT_ETOOBIG : MT_EMALFORMED;
    if (len)
        r->started = true;
    if (len == 0 && !r->started) {
        r->error = "connection closed before a response";
        return MT_EMALFORMED;
    }
    http_parser_execute(&r->p, &settings, (const char *)p, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&r->p);
    if (r->complete)
        return 1;
    if (e != HPE_OK) {
        r->error = r->too_big ? "response larger than the limit" : http_errno_description(e);
        return r->too_big ? MT_ETOOBIG : MT_EMALFORMED;
    }
    if (len == 0) { /* EOF that did not complete the message */
        r->error = r->headers_done ? "connection closed in the response body"
                                   : "connection closed in the response head";
        return MT_EMALFORMED;
    }
    return 0;
}

bool mt_httpc_resp_started(const mt_httpc_resp_t *r)
{
    return r->started;
}

int mt_httpc_resp_status(const mt_httpc_resp_t *r)
{
    return r->headers_done ? (int)r->p.status_code : 0;
}

bool mt_httpc_resp_keep_alive(const mt_httpc_resp_t *r)
{
    return r->complete && r->keep_alive;
}

const char *mt_httpc_resp_header(const mt_httpc_resp_t *r, const char *name)
{
    size_t n = strlen(name);
    const char *hit = NULL;
    size_t hit_len = 0;
    for (size_t i = 0; i < r->n_fields; i++) {
        const field_t *f = &r->fields[i];
        if (f->name_len == n && strncasecmp((const char *)r->head.data + f->name, name, n) == 0) {
            hit = (const char *)r->head.data + f->value;
            hit_len = f->value_len;
        }
    }
    if (!hit)
        return NULL;
    while (hit_len && (*hit == ' ' || *hit == '\t'))
        hit++, hit_len--;
    while (hit_len && (hit[hit_len - 1] == ' ' || hit[hit_len - 1] == '\t'))
        hit_len--;
    mt_httpc_resp_t *w = (mt_httpc_resp_t *)r;
    if (hit_len >= sizeof w->tmp)
        hit_len = sizeof w->tmp - 1;
    memcpy(w->tmp, hit, hit_len);
    w->tmp[hit_len] = '\0';
    return w->tmp;
}

const uint8_t *mt_httpc_resp_body(const mt_httpc_resp_t *r, size_t *len)
{
    *len = r->body.len;
    return r->body.data;
}

const char *mt_httpc_resp_error(const mt_httpc_resp_t *r)
{
    return r->error;
}
