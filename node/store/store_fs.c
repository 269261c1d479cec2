/*
 * store_fs.c - the POSIX file-system store (store.h).
 *
 *   <root>/.tmp/<pid>-<counter>-<random>.part   temp files (deleted at start-up: clean_tmp);
 *                                                .tmp itself is flock(2)ed while open
 *   <root>/<h1>/<h2>/<study>/<series>/<sop>.dcm  published instances (mt_store_path)
 *
 * Crash safety comes from the order the ingest uses (docs/internals/durability.md): write the
 * temp file, rename(2) it into place (atomic: a reader sees the old object or the new one, never
 * a partial one), and sync() once per batch: syncfs(2) flushes the data of every file, the
 * directory entries of the renames and the SQLite WAL in one call (Linux). Temp and final
 * names are on the same file system (both under root), so rename never copies. tmp_close
 * starts the write-back of the file's data (sync_file_range WRITE, no wait) so that the
 * batch's syncfs mostly waits for the device flush instead of writing the data first.
 *
 * Spare inode (tmp_prepare): an idle caller creates an O_TMPFILE inode in .tmp ahead of time;
 * the next tmp_create takes it (atomic exchange, any thread) and gives it its temp name with
 * linkat(2) through /proc/self/fd (~20 us instead of the ~0.1-0.7 ms an ext4 inode allocation
 * costs right after mass deletions). From then on it is an ordinary temp file. A crash while a
 * spare exists leaves an empty unnamed inode: the file system frees it (ext4 with a journal
 * and XFS at mount, from their orphan lists; ext4 without a journal at the next fsck). Where
 * O_TMPFILE or /proc is missing, tmp_prepare gives up for good and tmp_create works as before.
 *
 * Errors: errno is converted on the line of the system call; ENOSPC/EDQUOT -> MT_ENOSPC.
 */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../util/alloc.h"
#include "../util/err.h"
#include "../util/fnv.h"
#include "../util/log.h"

#define TMP_DIR ".tmp"
#define MAX_SYNC_FDS 4

typedef struct fs_store {
    mt_store_t base;
    char *root;
    int tmp_dirfd;              /* <root>/.tmp, flock(LOCK_EX)ed while the store is open */
    int sync_fds[MAX_SYNC_FDS]; /* one open fd per distinct file system to syncfs */
    dev_t sync_devs[MAX_SYNC_FDS];
    int n_sync;
    atomic_ulong counter;
    atomic_int spare_fd;      /* O_TMPFILE inode made by tmp_prepare, or -1 */
    atomic_bool no_spare;     /* O_TMPFILE / linkat unsupported here: stop trying */
} fs_store_t;

static atomic_long fail_countdown = -1, fail_sync_countdown = -1;
static atomic_int fail_err, fail_sync_err;

void mt_store_fs_fail_write_after(long n, int err)
{
    atomic_store(&fail_err, err);
    atomic_store(&fail_countdown, n);
}

void mt_store_fs_fail_sync_after(long n, int err)
{
    atomic_store(&fail_sync_err, err);
    atomic_store(&fail_sync_countdown, n);
}

static int err_from_errno(int e)
{
    if (e == ENOSPC || e == EDQUOT)
        return MT_ENOSPC;
    return -e;
}

/* ---- layout ---- */

/* PS3.5 §9.1: components of digits separated by single dots. Leading zeros in a component
 * (invalid but seen in the wild) are accepted: they cannot make a path escape the root. What
 * matters for the path: no '/', never "." or "..", never a leading '.' (hidden, skipped by
 * walk), at most 64 characters. */
bool mt_store_uid_ok(const char *uid)
{
    size_t n = 0;
    char prev = '.'; /* so a leading '.' is an empty component */
    for (; uid[n]; n++) {
        char c = uid[n];
        if (n >= 64)
            return false;
        if (c == '.') {
            if (prev == '.')
                return false; /* empty component */
        } else if (c < '0' || c > '9') {
            return false;
        }
        prev = c;
    }
    return n >= 1 && prev != '.';
}

int mt_store_path(const char *study_uid, const char *series_uid, const char *sop_uid, char *out,
                  size_t outsz)
{
    if (!study_uid || !series_uid || !sop_uid || !mt_store_uid_ok(study_uid) ||
        !mt_store_uid_ok(series_uid) || !mt_store_uid_ok(sop_uid))
        return MT_EMALFORMED;
    uint32_t h = mt_fnv1a32_str(study_uid);
    int n = snprintf(out, outsz, "%02x/%02x/%s/%s/%s.dcm", (unsigned)(h >> 24),
                     (unsigned)((h >> 16) & 0xFF), study_uid, series_uid, sop_uid);
    return n < 0 || (size_t)n >= outsz ? MT_ETOOBIG : 0;
}

/* ---- helpers ---- */

static int join(const fs_store_t *fs, const char *rel, char *out, size_t outsz)
{
    int n = snprintf(out, outsz, "%s/%s", fs->root, rel);
    return n < 0 || (size_t)n >= outsz ? MT_ETOOBIG : 0;
}

/* mkdir -p for the parent directories of path (absolute or relative), not path itself. */
static int mkdir_parents(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, 0755);
        int e = errno;
        *p = '/';
        if (rc != 0 && e != EEXIST)
            return err_from_errno(e);
    }
    return 0;
}

static int add_sync_fd(fs_store_t *fs, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return MT_ERR_FROM_ERRNO();
    for (int i = 0; i < fs->n_sync; i++)
        if (fs->sync_devs[i] == st.st_dev)
            return 0;
    if (fs->n_sync == MAX_SYNC_FDS)
        return MT_ETOOBIG;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        fd = open(path, O_RDONLY | O_CLOEXEC); /* a file: its file system is what counts */
    if (fd < 0)
        return MT_ERR_FROM_ERRNO();
    fs->sync_fds[fs->n_sync] = fd;
    fs->sync_devs[fs->n_sync] = st.st_dev;
    fs->n_sync++;
    return 0;
}

/* ---- ops ---- */

static int fs_tmp_prepare(mt_store_t *s)
{
    fs_store_t *fs = (fs_store_t *)s;
    if (atomic_load(&fs->no_spare))
        return MT_EUNSUPPORTED;
    if (atomic_load(&fs->spare_fd) >= 0)
        return 0;
    int fd = openat(fs->tmp_dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        if (e == EOPNOTSUPP || e == EISDIR || e == EINVAL)
            atomic_store(&fs->no_spare, true);
        return err_from_errno(e);
    }
    int none = -1;
    if (!atomic_compare_exchange_strong(&fs->spare_fd, &none, fd))
        close(fd); /* another thread made one meanwhile */
    return 0;
}

/* Give the spare inode (if any) the temp name t->name. 0 named: t->fd is it; else no spare. */
static int name_spare(fs_store_t *fs, mt_store_tmp_t *t)
{
    int fd = atomic_exchange(&fs->spare_fd, -1);
    if (fd < 0)
        return MT_ENOENT;
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (linkat(AT_FDCWD, proc, fs->tmp_dirfd, t->name, AT_SYMLINK_FOLLOW) != 0) {
        int e = errno;
        close(fd); /* nlink 0: freed */
        if (e != EEXIST)
            atomic_store(&fs->no_spare, true); /* no /proc, or not allowed: stop trying */
        return err_from_errno(e);
    }
    t->fd = fd;
    return 0;
}

static int fs_tmp_create(mt_store_t *s, mt_store_tmp_t *t)
{
    fs_store_t *fs = (fs_store_t *)s;
    t->fd = -1;
    t->size = 0;
    t->name[0] = '\0';
    for (int attempt = 0; attempt < 8; attempt++) {
        unsigned long c = atomic_fetch_add(&fs->counter, 1);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        snprintf(t->name, sizeof t->name, "%ld-%lu-%lx.part", (long)getpid(), c,
                 (unsigned long)(ts.tv_nsec ^ (ts.tv_sec << 20)) & 0xFFFFFF);
        if (name_spare(fs, t) == 0)
            return 0;
        int fd = openat(fs->tmp_dirfd, t->name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0) {
            t->fd = fd;
            return 0;
        }
        int e = errno;
        if (e != EEXIST) {
            t->name[0] = '\0';
            return err_from_errno(e);
        }
    }
    t->name[0] = '\0';
    return MT_EEXIST;
}

static int fs_tmp_write(mt_store_t *s, mt_store_tmp_t *t, const void *p, size_t n)
{
    (void)s;
    if (t->fd < 0)
        return MT_ESTATE;
    long c = atomic_load(&fail_countdown);
    if (c >= 0 && atomic_fetch_sub(&fail_countdown, 1) == 0)
        return atomic_load(&fail_err);
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(t->fd, b, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return err_from_errno(errno);
        }
        b += w;
        n -= (size_t)w;
        t->size += (uint64_t)w;
    }
    return 0;
}

static int fs_tmp_close(mt_store_t *s, mt_store_tmp_t *t)
{
    (void)s;
    if (t->fd < 0)
        return 0;
    /* Start the write-back of the data now (no wait, no durability promise): the batch's
     * syncfs then finds it written or under way and mostly waits for the device flush
     * (durability.md, "Write-behind"). Advisory: an error here is ignored, write-back errors
     * still reach the batch's syncfs (the file system's error counter, not this fd's). */
    (void)sync_file_range(t->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    int rc = close(t->fd);
    int e = errno;
    t->fd = -1;
    /* close can report a deferred write error (NFS, quota): the object is not safe */
    return rc == 0 || e == EINTR ? 0 : err_from_errno(e);
}

static int fs_publish(mt_store_t *s, mt_store_tmp_t *t, const char *rel_path)
{
    fs_store_t *fs = (fs_store_t *)s;
    char dst[1024], src[1024];
    int err;
    if (t->fd >= 0 && (err = fs_tmp_close(s, t)))
        return err;
    if ((err = join(fs, rel_path, dst, sizeof dst)))
        return err;
    int n = snprintf(src, sizeof src, "%s/" TMP_DIR "/%s", fs->root, t->name);
    if (n < 0 || (size_t)n >= sizeof src)
        return MT_ETOOBIG;
    if (rename(src, dst) != 0) {
        if (errno != ENOENT)
            return err_from_errno(errno);
        /* the parent directories do not exist yet */
        if ((err = mkdir_parents(dst)))
            return err;
        if (rename(src, dst) != 0)
            return err_from_errno(errno);
    }
    t->name[0] = '\0';
    return 0;
}

static void fs_tmp_discard(mt_store_t *s, mt_store_tmp_t *t)
{
    fs_store_t *fs = (fs_store_t *)s;
    if (t->fd >= 0) {
        close(t->fd);
        t->fd = -1;
    }
    if (t->name[0]) {
        if (unlinkat(fs->tmp_dirfd, t->name, 0) != 0 && errno != ENOENT)
            mt_log(MT_LOG_WARN, NULL, "store: cannot remove temp file %s: %s", t->name,
                   strerror(errno));
        t->name[0] = '\0';
    }
}

static int fs_remove(mt_store_t *s, const char *rel_path)
{
    fs_store_t *fs = (fs_store_t *)s;
    char p[1024];
    int err = join(fs, rel_path, p, sizeof p);
    if (err)
        return err;
    if (unlink(p) != 0)
        return err_from_errno(errno);
    return 0;
}

static int fs_clean_tmp(mt_store_t *s)
{
    fs_store_t *fs = (fs_store_t *)s;
    int dfd = dup(fs->tmp_dirfd);
    if (dfd < 0)
        return MT_ERR_FROM_ERRNO();
    DIR *d = fdopendir(dfd);
    if (!d) {
        int e = errno;
        close(dfd);
        return -e;
    }
    rewinddir(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (unlinkat(fs->tmp_dirfd, de->d_name, 0) == 0)
            n++;
        else
            mt_log(MT_LOG_WARN, NULL, "store: cannot remove temp file %s: %s", de->d_name,
                   strerror(errno));
    }
    closedir(d);
    return n;
}

/* Depth-first walk of dir (absolute path in buf, relative part starts at rel_off); only the
 * files of dir itself unless recurse. */
static int walk_dir(char *buf, size_t bufsz, size_t rel_off, unsigned depth, bool recurse,
                    mt_store_walk_cb cb, void *u)
{
    if (depth > 16)
        return 0;
    DIR *d = opendir(buf);
    if (!d)
        return errno == ENOENT ? 0 : MT_ERR_FROM_ERRNO();
    size_t len = strlen(buf);
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') /* ".", "..", ".tmp" and hidden files are not objects */
            continue;
        int n = snprintf(buf + len, bufsz - len, "/%s", de->d_name);
        if (n < 0 || (size_t)n >= bufsz - len)
            continue;
        struct stat st;
        if (lstat(buf, &st) == 0) {
            if (S_ISDIR(st.st_mode) && recurse)
                rc = walk_dir(buf, bufsz, rel_off, depth + 1, true, cb, u);
            else if (S_ISREG(st.st_mode))
                rc = cb(u, buf + rel_off, buf, (uint64_t)st.st_size);
        }
        buf[len] = '\0';
    }
    closedir(d);
    return rc;
}

static int fs_walk(mt_store_t *s, mt_store_walk_cb cb, void *u)
{
    fs_store_t *fs = (fs_store_t *)s;
    char buf[4096];
    int n = snprintf(buf, sizeof buf, "%s", fs->root);
    if (n < 0 || (size_t)n >= sizeof buf - 2)
        return MT_ETOOBIG;
    return walk_dir(buf, sizeof buf, (size_t)n + 1, 0, true, cb, u);
}

static int fs_list(mt_store_t *s, const char *rel_dir, mt_store_walk_cb cb, void *u)
{
    fs_store_t *fs = (fs_store_t *)s;
    char buf[4096];
    int n = snprintf(buf, sizeof buf, "%s/%s", fs->root, rel_dir);
    if (n < 0 || (size_t)n >= sizeof buf - 2)
        return MT_ETOOBIG;
    return walk_dir(buf, sizeof buf, strlen(fs->root) + 1, 0, false, cb, u);
}

static int fs_sync(mt_store_t *s)
{
    fs_store_t *fs = (fs_store_t *)s;
    long c = atomic_load(&fail_sync_countdown);
    if (c >= 0 && atomic_fetch_sub(&fail_sync_countdown, 1) == 0)
        return atomic_load(&fail_sync_err);
    for (int i = 0; i < fs->n_sync; i++)
        if (syncfs(fs->sync_fds[i]) != 0)
            return err_from_errno(errno);
    return 0;
}

static int fs_abs_path(mt_store_t *s, const char *rel_path, char *out, size_t outsz)
{
    return join((fs_store_t *)s, rel_path, out, outsz);
}

static void fs_close(mt_store_t *s)
{
    fs_store_t *fs = (fs_store_t *)s;
    if (!fs)
        return;
    int spare = atomic_exchange(&fs->spare_fd, -1);
    if (spare >= 0)
        close(spare); /* unnamed: freed */
    if (fs->tmp_dirfd >= 0)
        close(fs->tmp_dirfd);
    for (int i = 0; i < fs->n_sync; i++)
        close(fs->sync_fds[i]);
    mt_free(fs->root);
    mt_free(fs);
}

static const mt_store_ops_t fs_ops = {
    .name = "fs",
    .tmp_create = fs_tmp_create,
    .tmp_prepare = fs_tmp_prepare,
    .tmp_write = fs_tmp_write,
    .tmp_close = fs_tmp_close,
    .publish = fs_publish,
    .tmp_discard = fs_tmp_discard,
    .remove = fs_remove,
    .clean_tmp = fs_clean_tmp,
    .walk = fs_walk,
    .list = fs_list,
    .sync = fs_sync,
    .abs_path = fs_abs_path,
    .close = fs_close,
};

int mt_store_fs_add_sync_path(mt_store_t *s, const char *path)
{
    return add_sync_fd((fs_store_t *)s, path);
}

int mt_store_fs_open(const char *root, mt_store_t **out)
{
    *out = NULL;
    if (!root || !*root)
        return MT_EINVAL;
    fs_store_t *fs = mt_calloc(1, sizeof *fs);
    fs->base.ops = &fs_ops;
    fs->tmp_dirfd = -1;
    atomic_init(&fs->spare_fd, -1);
    atomic_init(&fs->no_spare, false);
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/')
        n--;
    fs->root = mt_strndup(root, n);
    char p[1024];
    int err = 0;
    if (snprintf(p, sizeof p, "%s/" TMP_DIR "/", fs->root) >= (int)sizeof p) {
        err = MT_ETOOBIG;
        goto fail;
    }
    if ((err = mkdir_parents(p))) /* creates root and root/.tmp */
        goto fail;
    fs->tmp_dirfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fs->tmp_dirfd < 0) {
        err = MT_ERR_FROM_ERRNO();
        goto fail;
    }
    if ((err = add_sync_fd(fs, fs->root)))
        goto fail;
    /* one owner at a time: clean_tmp would delete another process's temp files, and a rebuild
     * would clear the index under a running node. The lock is on the .tmp directory itself
     * (released when it is closed), so no lock file shows among the objects. */
    if (flock(fs->tmp_dirfd, LOCK_EX | LOCK_NB) != 0) {
        err = errno == EWOULDBLOCK ? MT_ESTATE : MT_ERR_FROM_ERRNO();
        mt_log(MT_LOG_ERROR, NULL, "store: %s is in use by another process", fs->root);
        goto fail;
    }
    *out = &fs->base;
    return 0;
fail:
    mt_log(MT_LOG_ERROR, NULL, "store: cannot open %s: %s", root, mt_strerror(err));
    fs_close(&fs->base);
    return err;
}
