/*
 * bytes.h - fixed-width integers read from and written to byte buffers in a given byte order:
 * little endian for DICOM data sets and command sets (PS3.5 §7.3), big endian for the upper
 * layer's PDUs (PS3.8 §9.3) and Explicit VR Big Endian. Callers check the bounds first.
 */
#ifndef MT_UTIL_BYTES_H
#define MT_UTIL_BYTES_H

#include <stdbool.h>
#include <stdint.h>

static inline uint16_t mt_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t mt_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint16_t mt_be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t mt_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* big: Explicit VR Big Endian, else little endian */
static inline uint16_t mt_rd16(const uint8_t *p, bool big)
{
    return big ? mt_be16(p) : mt_le16(p);
}

static inline uint32_t mt_rd32(const uint8_t *p, bool big)
{
    return big ? mt_be32(p) : mt_le32(p);
}

static inline void mt_put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void mt_put_le32(uint8_t *p, uint32_t v)
{
    mt_put_le16(p, (uint16_t)v);
    mt_put_le16(p + 2, (uint16_t)(v >> 16));
}

static inline void mt_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void mt_put_be32(uint8_t *p, uint32_t v)
{
    mt_put_be16(p, (uint16_t)(v >> 16));
    mt_put_be16(p + 2, (uint16_t)v);
}

#endif
