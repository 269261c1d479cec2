/*
 * sop.c - lookups in the generated storage SOP class table (see sop.h). PURE.
 */
#include "sop.h"

#include <string.h>

extern const size_t mt__sop_n_storage;
extern const mt_sop_class_t mt__sop_storage[];

const mt_sop_class_t *mt_sop_storage_find(const char *uid)
{
    if (!uid)
        return NULL;
    char key[65];
    size_t n = strnlen(uid, sizeof key - 1);
    while (n && (uid[n - 1] == ' ' || uid[n - 1] == '\0'))
        n--;
    memcpy(key, uid, n);
    key[n] = '\0';
    size_t lo = 0, hi = mt__sop_n_storage;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(mt__sop_storage[mid].uid, key);
        if (c == 0)
            return &mt__sop_storage[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const mt_sop_class_t *mt_sop_storage_all(size_t *n)
{
    *n = mt__sop_n_storage;
    return mt__sop_storage;
}
