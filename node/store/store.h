/*
 * store.h - durable object storage behind one vtable (STYLE §7); store_fs.c is the POSIX
 * file-system backend. Calls block: use them from the ingest commit thread, the libuv thread
 * pool or a CLI, never on the event loop.
 *
 * An object is one Part 10 file. Writing one:
 *   tmp_create  -> a new uniquely named temp file (under <root>/.tmp/ for the fs backend);
 *                  takes the spare inode tmp_prepare made, if there is one
 *   tmp_write*  -> append bytes
 *   tmp_close   -> close it (no fsync: durability is the batch's sync(), see below)
 *   publish     -> atomically rename it to its place (rel_path), creating parent directories;
 *                  an object already there is replaced
 *   tmp_discard -> or abandon it (closed if open, removed); no partial object is ever visible
 * sync() makes every publish and every byte written so far durable: the fs backend calls
 * syncfs(2) once on the file system of the root (and of extra paths added with
 * mt_store_fs_add_sync_path, e.g. the index when it is on another file system).
 *
 * Layout (path()): <h1>/<h2>/<study>/<series>/<sop>.dcm where h1/h2 are the two high bytes of
 * FNV-1a-32(study UID) in hex, so no directory holds more than a few studies' worth of entries
 * per 65,536 buckets. UIDs must be 1-64 characters: components of digits separated by single
 * dots, no leading or trailing dot (PS3.5 §9.1; leading zeros tolerated); anything else is
 * MT_EMALFORMED, so no UID can name a path outside the root, a hidden file or "..".
 * Example: study 1.2.3, series 1.2.3.4, instance 1.2.3.4.5 -> "ab/cd/1.2.3/1.2.3.4/1.2.3.4.5.dcm".
 */
#ifndef MT_STORE_STORE_H
#define MT_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MT_STORE_PATH_MAX 256 /* relative paths from path() always fit */

typedef struct mt_store mt_store_t;

/* A temp object, caller storage. fd < 0 once closed. */
typedef struct mt_store_tmp {
    int fd;
    uint64_t size; /* bytes written */
    char name[48]; /* temp file name (backend-specific); "" when none */
} mt_store_tmp_t;

/* walk callback: rel_path relative to the root, abs_path usable with open(2).
 * Return nonzero to stop the walk (returned by walk). */
typedef int (*mt_store_walk_cb)(void *u, const char *rel_path, const char *abs_path,
                                uint64_t size);

typedef struct mt_store_ops {
    const char *name; /* "fs" */
    int (*tmp_create)(mt_store_t *s, mt_store_tmp_t *t);
    /* Make the next tmp_create cheap: create a spare file ahead of time (the fs backend: an
     * unnamed O_TMPFILE inode, so inode allocation, up to ~0.6 ms on ext4 after mass deletes,
     * happens while the caller is idle, not on an instance's critical path; tmp_create then
     * only names it, linkat(2)). No-op when a spare exists. Any thread; 0 when a spare is
     * ready, else an error (the next tmp_create creates a file as usual). */
    int (*tmp_prepare)(mt_store_t *s);
    int (*tmp_write)(mt_store_t *s, mt_store_tmp_t *t, const void *p, size_t n);
    int (*tmp_close)(mt_store_t *s, mt_store_tmp_t *t);
    int (*publish)(mt_store_t *s, mt_store_tmp_t *t, const char *rel_path);
    void (*tmp_discard)(mt_store_t *s, mt_store_tmp_t *t);
    /* Remove a published object (MT_ENOENT if absent); empty parent directories stay. */
    int (*remove)(mt_store_t *s, const char *rel_path);
    /* Delete every temp file (start-up: what a crash left). Returns the count removed. */
    int (*clean_tmp)(mt_store_t *s);
    /* Every published object (never temp files), in no particular order. */
    int (*walk)(mt_store_t *s, mt_store_walk_cb cb, void *u);
    /* The objects directly in directory rel_dir (not below it); 0 when it does not exist. */
    int (*list)(mt_store_t *s, const char *rel_dir, mt_store_walk_cb cb, void *u);
    int (*sync)(mt_store_t *s);
    /* Absolute path of a published object into out (for readers: C-MOVE, verification). */
    int (*abs_path)(mt_store_t *s, const char *rel_path, char *out, size_t outsz);
    void (*close)(mt_store_t *s);
} mt_store_ops_t;

struct mt_store {
    const mt_store_ops_t *ops;
};

/* Layout of an instance (pure; same for every backend). MT_EMALFORMED for a bad UID,
 * MT_ETOOBIG when outsz is too small. */
int mt_store_path(const char *study_uid, const char *series_uid, const char *sop_uid, char *out,
                  size_t outsz);
/* Is uid usable in a path (see the layout above). */
bool mt_store_uid_ok(const char *uid);

/* Open (creating root and root/.tmp as needed) the file-system store. One store per root at
 * a time: the open holds flock(<root>/.tmp); MT_ESTATE when another open store (a running
 * node, a rebuild) holds it. */
int mt_store_fs_open(const char *root, mt_store_t **out);
/* Also syncfs the file system holding path on sync(), when it differs from the root's. */
int mt_store_fs_add_sync_path(mt_store_t *s, const char *path);
/* Test hook (SQLite faultsim style): after n more successful tmp_write calls (of any fs
 * store), the next one fails with err (a negative MT_E* code, e.g. MT_ENOSPC) writing nothing;
 * one shot. n = 0: the very next write fails. n < 0 disables. */
void mt_store_fs_fail_write_after(long n, int err);
/* The same for sync(): after n more successful syncs, the next one fails with err. */
void mt_store_fs_fail_sync_after(long n, int err);

#endif
