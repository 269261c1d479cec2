/*
 * walk.h - the files named on a command line, directories walked: what `mitral send` and
 * `mitral route test` take (FILES|DIRS...), in a reproducible order.
 */
#ifndef MT_UTIL_WALK_H
#define MT_UTIL_WALK_H

typedef struct {
    /* a regular file (path as given, or DIR/name below a directory given) */
    void (*file)(void *u, const char *path);
    /* path cannot be read (stat or opendir failed: errnum) */
    void (*error)(void *u, const char *path, int errnum);
    void *u;
} mt_walk_cb_t;

/* path itself when it is a regular file; below a directory every regular file, recursively
 * (at most 64 levels), names sorted, names starting with '.' skipped. Other kinds of file
 * (sockets, devices) are passed over silently. */
void mt_walk_files(const char *path, const mt_walk_cb_t *cb);

#endif
