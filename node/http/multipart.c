/*
 * multipart.c - multipart/related decoder and media-type parameter parsing. Contract and
 * state diagram: multipart.h. PURE.
 */
#include "multipart.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../util/alloc.h"
#include "../util/err.h"

enum { PREAMBLE, AFTER_DELIM, AFTER_DELIM2, HEADERS, BODY, EPILOGUE };

struct mt_mp {
    mt_mp_cb_t cb;
    void *user;
    char delim[MT_MP_MAX_BOUNDARY + 5]; /* "\r\n--" boundary */
    size_t dlen;
    int state;
    size_t match;   /* delimiter bytes matched (held back) */
    char after[2];  /* the two bytes after a delimiter */
    size_t n_after;
    char hdr[MT_MP_MAX_HEADER];
    size_t hlen;
    uint64_t off;
    size_t n_parts;
    bool in_part;
    int hint;
    mt_diag_t diag;
};

static bool bchar(int c)
{
    return isalnum(c) || strchr("'()+_,-./:=? ", c) != NULL;
}

mt_mp_t *mt_mp_new(const char *boundary, const mt_mp_cb_t *cb, void *user)
{
    size_t n = boundary ? strlen(boundary) : 0;
    if (n == 0 || n > MT_MP_MAX_BOUNDARY || boundary[n - 1] == ' ')
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!bchar((unsigned char)boundary[i]))
            return NULL;
    mt_mp_t *m = mt_calloc(1, sizeof *m);
    m->cb = *cb;
    m->user = user;
    memcpy(m->delim, "\r\n--", 4);
    memcpy(m->delim + 4, boundary, n);
    m->dlen = n + 4;
    m->state = PREAMBLE;
    m->match = 2; /* the body may start with "--B" directly: pretend a CRLF came first */
    return m;
}

void mt_mp_free(mt_mp_t *m)
{
    mt_free(m);
}

const mt_diag_t *mt_mp_diag(const mt_mp_t *m)
{
    return &m->diag;
}

size_t mt_mp_parts(const mt_mp_t *m)
{
    return m->n_parts;
}

static int bad(mt_mp_t *m, uint64_t off, const char *why)
{
    m->diag.offset = off;
    m->diag.reason = why;
    return MT_EMALFORMED;
}

static void copy_value(char *dst, size_t dstsz, const char *v, size_t n)
{
    while (n && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n >= dstsz)
        n = dstsz - 1;
    memcpy(dst, v, n);
    dst[n] = 0;
}

/* The part's header block (without the final CRLFCRLF). */
static int headers_done(mt_mp_t *m)
{
    mt_mp_part_t part;
    memset(&part, 0, sizeof part);
    size_t i = 0;
    while (i < m->hlen) {
        size_t e = i;
        while (e + 1 < m->hlen && !(m->hdr[e] == '\r' && m->hdr[e + 1] == '\n'))
            e++;
        if (e + 1 >= m->hlen)
            e = m->hlen;
        const char *line = m->hdr + i;
        size_t ln = e - i;
        const char *colon = memchr(line, ':', ln);
        if (ln && !colon)
            return bad(m, m->off, "part header line without ':'");
        if (colon) {
            size_t kn = (size_t)(colon - line);
            const char *v = colon + 1;
            size_t vn = ln - kn - 1;
            if (kn == 12 && strncasecmp(line, "content-type", 12) == 0)
                copy_value(part.content_type, sizeof part.content_type, v, vn);
            else if (kn == 16 && strncasecmp(line, "content-location", 16) == 0)
                copy_value(part.content_location, sizeof part.content_location, v, vn);
        }
        i = e + 2;
    }
    m->n_parts++;
    m->in_part = true;
    return m->cb.part_begin ? m->cb.part_begin(m->user, &part) : 0;
}

/* Part bytes to the callback: a negative return stops the feed; a positive one is a hint
 * (e.g. "pause reading") returned by mt_mp_feed after the whole buffer is consumed. */
static int data(mt_mp_t *m, const uint8_t *p, size_t n)
{
    if (!n || m->state != BODY)
        return 0;
    int rc = m->cb.part_data ? m->cb.part_data(m->user, p, n) : 0;
    if (rc > 0) {
        m->hint = rc;
        rc = 0;
    }
    return rc;
}

int mt_mp_feed(mt_mp_t *m, const uint8_t *p, size_t n)
{
    m->hint = 0;
    size_t run = 0; /* start of body bytes not yet emitted in this buffer */
    for (size_t i = 0; i < n; i++, m->off++) {
        uint8_t ch = p[i];
        int rc;
        switch (m->state) {
        case PREAMBLE:
        case BODY:
            if (ch == (uint8_t)m->delim[m->match]) {
                if (m->match == 0 && m->state == BODY) {
                    rc = data(m, p + run, i - run); /* bytes before a possible delimiter */
                    if (rc)
                        return rc;
                }
                m->match++;
                if (m->match == m->dlen) {
                    if (m->state == BODY && m->in_part) {
                        m->in_part = false;
                        rc = m->cb.part_end ? m->cb.part_end(m->user) : 0;
                        if (rc)
                            return rc;
                    }
                    m->state = AFTER_DELIM;
                    m->n_after = 0;
                    m->match = 0;
                }
                run = i + 1;
                break;
            }
            if (m->match) { /* the held-back bytes were data after all */
                if (m->state == BODY) {
                    rc = data(m, (const uint8_t *)m->delim, m->match);
                    if (rc)
                        return rc;
                }
                m->match = 0;
                run = i;
                if (ch == (uint8_t)m->delim[0]) {
                    if (m->state == BODY)
                        run = i + 1;
                    m->match = 1;
                    break;
                }
            }
            if (m->state == PREAMBLE)
                run = i + 1;
            break;
        case AFTER_DELIM:
            m->after[m->n_after++] = (char)ch;
            if (m->n_after == 1 && (ch == ' ' || ch == '\t')) {
                m->n_after = 0; /* transport padding (RFC 2046 LWSP) */
                break;
            }
            if (m->n_after < 2)
                break;
            if (m->after[0] == '-' && m->after[1] == '-') {
                m->state = EPILOGUE;
            } else if (m->after[0] == '\r' && m->after[1] == '\n') {
                m->state = HEADERS;
                m->hlen = 0;
            } else {
                return bad(m, m->off, "delimiter not followed by CRLF or --");
            }
            run = i + 1;
            break;
        case HEADERS:
            if (m->hlen >= sizeof m->hdr) {
                m->diag.offset = m->off;
                m->diag.reason = "part headers too large";
                return MT_ETOOBIG;
            }
            m->hdr[m->hlen++] = (char)ch;
            if (m->hlen == 2 && m->hdr[0] == '\r' && m->hdr[1] == '\n') {
                m->hlen = 0; /* no headers at all */
                rc = headers_done(m);
                if (rc)
                    return rc;
                m->state = BODY;
                m->match = 0;
                run = i + 1;
            } else if (m->hlen >= 4 && memcmp(m->hdr + m->hlen - 4, "\r\n\r\n", 4) == 0) {
                m->hlen -= 4;
                rc = headers_done(m);
                if (rc)
                    return rc;
                m->state = BODY;
                m->match = 0;
                run = i + 1;
            }
            break;
        case EPILOGUE:
            run = i + 1;
            break;
        }
    }
    /* body bytes of this buffer not held back as a possible delimiter start */
    if (m->state == BODY && m->match == 0 && run < n) {
        int rc = data(m, p + run, n - run);
        if (rc)
            return rc;
    }
    return m->hint;
}

int mt_mp_finish(mt_mp_t *m)
{
    if (m->state != EPILOGUE)
        return bad(m, m->off, m->n_parts ? "body ends before the close delimiter"
                                         : "no multipart delimiter found");
    return 0;
}

int mt_mp_param(const char *ct, const char *name, char *type, size_t typesz, char *val,
                size_t valsz)
{
    if (typesz)
        type[0] = 0;
    if (valsz)
        val[0] = 0;
    if (!ct)
        return MT_ENOENT;
    const char *p = ct;
    while (*p == ' ')
        p++;
    size_t t = 0;
    while (*p && *p != ';' && *p != ' ') {
        if (t + 1 < typesz)
            type[t++] = (char)tolower((unsigned char)*p);
        p++;
    }
    if (typesz)
        type[t] = 0;
    size_t nn = strlen(name);
    while (*p) {
        while (*p == ';' || *p == ' ' || *p == '\t')
            p++;
        const char *k = p;
        while (*p && *p != '=' && *p != ';')
            p++;
        size_t kn = (size_t)(p - k);
        while (kn && k[kn - 1] == ' ')
            kn--;
        if (*p != '=')
            continue;
        p++;
        while (*p == ' ')
            p++;
        char v[512];
        size_t vn = 0;
        if (*p == '"') {
            p++;
            while (*p && *p != '"') {
                if (*p == '\\' && p[1])
                    p++;
                if (vn + 1 < sizeof v)
                    v[vn++] = *p;
                p++;
            }
            if (*p == '"')
                p++;
        } else {
            while (*p && *p != ';' && *p != ' ') {
                if (vn + 1 < sizeof v)
                    v[vn++] = *p;
                p++;
            }
        }
        v[vn] = 0;
        if (kn == nn && strncasecmp(k, name, nn) == 0) {
            snprintf(val, valsz, "%s", v);
            return 0;
        }
    }
    return MT_ENOENT;
}
