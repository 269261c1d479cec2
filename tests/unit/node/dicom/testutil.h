/* testutil.h - helpers shared by the node/dicom unit tests: read a file, walk the shared test
 * data (skipped with a message when /work/shared is absent), build small data sets by hand. */
#ifndef MT_TEST_DICOM_TESTUTIL_H
#define MT_TEST_DICOM_TESTUTIL_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TESTDATA MT_SOURCE_DIR "/../shared/testdata"

static inline uint8_t *tu_read(const char *path, size_t *len)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    if (n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static inline int tu_have_testdata(void)
{
    struct stat st;
    if (stat(TESTDATA, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("# skipped: %s not found\n", TESTDATA);
        return 0;
    }
    return 1;
}

static inline int tu_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Call fn(path, user) for every regular file under dir (sorted, recursive). */
static inline void tu_walk(const char *dir, void (*fn)(const char *path, void *user), void *user)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        names = realloc(names, (n + 1) * sizeof *names);
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, tu_cmp);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        int k = snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct stat st;
        if (k > 0 && (size_t)k < sizeof path && stat(path, &st) == 0) {
            if (S_ISDIR(st.st_mode))
                tu_walk(path, fn, user);
            else if (S_ISREG(st.st_mode))
                fn(path, user);
        }
        free(names[i]);
    }
    free(names);
}

/* Little-endian element builders for hand-made inputs. */
typedef struct tu_bytes {
    uint8_t b[8192];
    size_t n;
} tu_bytes_t;

static inline void tu_u16(tu_bytes_t *t, uint16_t v)
{
    t->b[t->n++] = (uint8_t)v;
    t->b[t->n++] = (uint8_t)(v >> 8);
}

static inline void tu_u32(tu_bytes_t *t, uint32_t v)
{
    tu_u16(t, (uint16_t)v);
    tu_u16(t, (uint16_t)(v >> 16));
}

static inline void tu_raw(tu_bytes_t *t, const void *p, size_t n)
{
    memcpy(t->b + t->n, p, n);
    t->n += n;
}

/* Explicit VR LE header (2- or 4-byte length by VR). */
static inline void tu_ex(tu_bytes_t *t, uint16_t g, uint16_t e, const char *vr, uint32_t len)
{
    tu_u16(t, g);
    tu_u16(t, e);
    tu_raw(t, vr, 2);
    static const char *longs[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ",
                                  "SV", "UC", "UN", "UR", "UT", "UV"};
    for (size_t i = 0; i < sizeof longs / sizeof longs[0]; i++)
        if (!memcmp(vr, longs[i], 2)) {
            tu_u16(t, 0);
            tu_u32(t, len);
            return;
        }
    tu_u16(t, (uint16_t)len);
}

/* Implicit VR LE header (also items and delimiters). */
static inline void tu_im(tu_bytes_t *t, uint16_t g, uint16_t e, uint32_t len)
{
    tu_u16(t, g);
    tu_u16(t, e);
    tu_u32(t, len);
}

#endif
