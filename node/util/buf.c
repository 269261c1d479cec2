/* buf.c - bounded growable byte buffer (see buf.h). */
#include "buf.h"

#include "alloc.h"
#include "err.h"

#include <string.h>

void mt_buf_init(mt_buf_t *b, size_t limit)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->limit = limit;
}

void mt_buf_dispose(mt_buf_t *b)
{
    mt_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void mt_buf_reset(mt_buf_t *b)
{
    b->len = 0;
}

int mt_buf_reserve(mt_buf_t *b, size_t extra)
{
    if (extra > b->limit || b->len > b->limit - extra)
        return MT_ETOOBIG;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > b->limit)
        cap = b->limit;
    b->data = mt_realloc(b->data, cap);
    b->cap = cap;
    return 0;
}

int mt_buf_append(mt_buf_t *b, const void *p, size_t n)
{
    int rc = mt_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void mt_buf_consume(mt_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

int mt_buf_put_u8(mt_buf_t *b, uint8_t v)
{
    return mt_buf_append(b, &v, 1);
}

int mt_buf_put_u16le(mt_buf_t *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    return mt_buf_append(b, x, 2);
}

int mt_buf_put_u32le(mt_buf_t *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return mt_buf_append(b, x, 4);
}

int mt_buf_put_u16be(mt_buf_t *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    return mt_buf_append(b, x, 2);
}

int mt_buf_put_u32be(mt_buf_t *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return mt_buf_append(b, x, 4);
}
