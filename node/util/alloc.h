/*
 * alloc.h - mitral's allocator wrappers (Redis zmalloc / libuv uv_replace_allocator pattern).
 *
 * mt_malloc/mt_calloc/mt_realloc/mt_strdup abort with a message when memory runs out: use them
 * for small internal allocations. Any size controlled by a peer must be checked against a limit
 * BEFORE allocating (return MT_ETOOBIG). For tests, mt_alloc_fail_after(n) makes the n-th next
 * call of mt_try_malloc return NULL (fault injection), and mt_alloc_live() counts live blocks.
 */
#ifndef MT_UTIL_ALLOC_H
#define MT_UTIL_ALLOC_H

#include <stddef.h>

void *mt_malloc(size_t n);
void *mt_calloc(size_t count, size_t size);
void *mt_realloc(void *p, size_t n);
char *mt_strdup(const char *s);
char *mt_strndup(const char *s, size_t n);
void mt_free(void *p);

/* Like mt_malloc but returns NULL instead of aborting (for large, peer-sized buffers). */
void *mt_try_malloc(size_t n);

void mt_alloc_fail_after(long n); /* test hook: -1 disables */
long mt_alloc_live(void);

#endif
