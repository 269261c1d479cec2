/*
 * buf.h - a growable byte buffer with a hard size limit (curl's dynbuf with its `toobig`).
 *
 * mt_buf_init(b, limit) on caller storage; mt_buf_dispose(b) frees the bytes. Appending past the
 * limit returns MT_ETOOBIG and leaves the buffer unchanged.
 */
#ifndef MT_UTIL_BUF_H
#define MT_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct mt_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t limit;
} mt_buf_t;

void mt_buf_init(mt_buf_t *b, size_t limit);
void mt_buf_dispose(mt_buf_t *b);
void mt_buf_reset(mt_buf_t *b); /* len = 0, keeps capacity */
int mt_buf_append(mt_buf_t *b, const void *p, size_t n);
int mt_buf_reserve(mt_buf_t *b, size_t extra);
/* Remove the first n bytes (n <= len). */
void mt_buf_consume(mt_buf_t *b, size_t n);

/* Little/big endian stores appended to the buffer. */
int mt_buf_put_u8(mt_buf_t *b, uint8_t v);
int mt_buf_put_u16le(mt_buf_t *b, uint16_t v);
int mt_buf_put_u32le(mt_buf_t *b, uint32_t v);
int mt_buf_put_u16be(mt_buf_t *b, uint16_t v);
int mt_buf_put_u32be(mt_buf_t *b, uint32_t v);

#endif
