/*
 * fnv.h - FNV-1a hashes of strings and byte runs, for the node's in-memory hash tables (the
 * tagger's series, the forwarder's scan groups, the pseudonym MAC cache, the tag report) and
 * the storage layout's study directories (store_fs.c: its values name directories on disk,
 * so the 32-bit form must never change). Not for anything an adversary chooses to collide.
 */
#ifndef MT_UTIL_FNV_H
#define MT_UTIL_FNV_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t mt_fnv1a32(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

static inline uint32_t mt_fnv1a32_str(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static inline uint64_t mt_fnv1a64_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

#endif
