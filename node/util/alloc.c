/* alloc.c - malloc wrappers with abort-on-OOM, a live-block counter and fault injection. */
#include "alloc.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_long live_blocks;
static atomic_long fail_countdown = -1;

static void die_oom(size_t n)
{
    fprintf(stderr, "mitral: out of memory allocating %zu bytes\n", n);
    abort();
}

void *mt_try_malloc(size_t n)
{
    long c = atomic_load(&fail_countdown);
    if (c >= 0 && atomic_fetch_sub(&fail_countdown, 1) == 0)
        return NULL;
    void *p = malloc(n ? n : 1);
    if (p)
        atomic_fetch_add(&live_blocks, 1);
    return p;
}

void *mt_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die_oom(n);
    atomic_fetch_add(&live_blocks, 1);
    return p;
}

void *mt_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        die_oom(count * size);
    atomic_fetch_add(&live_blocks, 1);
    return p;
}

void *mt_realloc(void *p, size_t n)
{
    if (!p)
        return mt_malloc(n);
    void *q = realloc(p, n ? n : 1);
    if (!q)
        die_oom(n);
    return q;
}

char *mt_strndup(const char *s, size_t n)
{
    char *d = mt_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *mt_strdup(const char *s)
{
    return mt_strndup(s, strlen(s));
}

void mt_free(void *p)
{
    if (!p)
        return;
    atomic_fetch_sub(&live_blocks, 1);
    free(p);
}

void mt_alloc_fail_after(long n)
{
    atomic_store(&fail_countdown, n);
}

long mt_alloc_live(void)
{
    return atomic_load(&live_blocks);
}
