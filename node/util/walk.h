/*
 * walk.h - the files named on a command line, directories walked: what `mitral send`,
 * `mitral route test` and `mitral deid` take (FILES|DIRS...), in a reproducible order.
 */
#ifndef MT_UTIL_WALK_H
#define MT_UTIL_WALK_H

#include <stdbool.h>

typedef struct {
    /* a regular file (path as given, or DIR/name below a directory given) */
    void (*file)(void *u, const char *path);
    /* path cannot be read (lstat or opendir failed: errnum) */
    void (*error)(void *u, const char *path, int errnum);
    void *u;
    bool hidden; /* also names starting with '.' (always skipped: "." and "..") */
} mt_walk_cb_t;

/* path itself when it is a regular file (or a symlink to one); below a directory every regular
 * file, recursively (at most 64 levels), names sorted. A symlink given on the command line is
 * followed; below it, symlinks to files are followed and symlinked directories are not (no
 * cycles). Other kinds of file (sockets, devices) are passed over silently. */
void mt_walk_files(const char *path, const mt_walk_cb_t *cb);

#endif
