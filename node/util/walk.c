/*
 * walk.c - see walk.h: a recursive, sorted directory walk with lstat/opendir/readdir.
 */
#include "walk.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"

#define MAX_DEPTH 64

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in directory path (without "." and "..", and without the other names starting
 * with '.' unless hidden), sorted; NULL on error. */
static char **sorted_names(const char *path, bool hidden, size_t *n_out)
{
    DIR *d = opendir(path);
    if (!d)
        return NULL;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            (e->d_name[0] == '.' && !hidden))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            names = mt_realloc(names, cap * sizeof *names);
        }
        names[n++] = mt_strdup(e->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_names);
    *n_out = n;
    return names ? names : mt_calloc(1, sizeof *names);
}

static void walk(const char *path, const mt_walk_cb_t *cb, unsigned depth)
{
    struct stat st;
    if (lstat(path, &st) < 0) {
        cb->error(cb->u, path, errno);
        return;
    }
    if (S_ISLNK(st.st_mode)) { /* followed at the top; below it, only to a file */
        if (stat(path, &st) < 0 || (depth > 0 && !S_ISREG(st.st_mode)))
            return;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (S_ISREG(st.st_mode))
            cb->file(cb->u, path);
        return;
    }
    if (depth > MAX_DEPTH)
        return;
    size_t n = 0;
    char **names = sorted_names(path, cb->hidden, &n);
    if (!names) {
        cb->error(cb->u, path, errno);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(path) + strlen(names[i]) + 2;
        char *p = mt_malloc(len);
        snprintf(p, len, "%s/%s", path, names[i]);
        walk(p, cb, depth + 1);
        mt_free(p);
        mt_free(names[i]);
    }
    mt_free(names);
}

void mt_walk_files(const char *path, const mt_walk_cb_t *cb)
{
    walk(path, cb, 0);
}
