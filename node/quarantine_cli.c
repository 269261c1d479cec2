/*
 * quarantine_cli.c - `mitral quarantine list|release|purge` (design: quarantine_cli.h,
 * semantics: docs/deid.md "Quarantine").
 *
 * list    reads <root>/.quarantine/ directly (no lock: safe while the node runs); one line
 *         per file: the (de-identified) SOP Instance UID and the size in bytes.
 * release takes the store (its flock: the node must be stopped, like `index rebuild`) and the
 *         index, and for each SOP UID: reads the quarantined file whole (a torn or foreign
 *         file is refused), refuses an instance already indexed, copies it to a store temp
 *         file, sync, index row put (verified=0: the intent record that start-up
 *         reconciliation repairs after a crash), publish to its layout path, sync, row
 *         verified, quarantined file removed, sync. The file is already de-identified (the
 *         node wrote it that way), so it goes in as it is.
 * purge   unlinks the named files (or every file, --all) and fsyncs the directory; no lock
 *         (removing a file nobody else reads).
 */
#include "quarantine_cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "index/index.h"
#include "index/rebuild.h"
#include "store/ingest.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/err.h"

#define TAG_SOP MT_TAG(0x0008, 0x0018)
#define TAG_STUDY MT_TAG(0x0020, 0x000D)
#define TAG_SERIES MT_TAG(0x0020, 0x000E)

static int qdir(const char *root, char *out, size_t outsz)
{
    int n = snprintf(out, outsz, "%s/" MT_INGEST_QUARANTINE_DIR, root);
    return n < 0 || (size_t)n >= outsz ? MT_ETOOBIG : 0;
}

/* Calls cb for each "<uid>.dcm" in the quarantine directory; 0 when it does not exist. */
static int each_file(const char *root, int (*cb)(void *u, const char *sop, uint64_t size),
                     void *u)
{
    char d[1024];
    int rc = qdir(root, d, sizeof d);
    if (rc)
        return rc;
    DIR *dir = opendir(d);
    if (!dir)
        return errno == ENOENT ? 0 : MT_EIO;
    struct dirent *de;
    rc = 0;
    while (!rc && (de = readdir(dir)) != NULL) {
        size_t n = strlen(de->d_name);
        if (de->d_name[0] == '.' || n < 5 || n > 68 || strcmp(de->d_name + n - 4, ".dcm") != 0)
            continue;
        char sop[65];
        memcpy(sop, de->d_name, n - 4);
        sop[n - 4] = '\0';
        if (!mt_store_uid_ok(sop))
            continue;
        char p[1400];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", d, de->d_name);
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        rc = cb(u, sop, (uint64_t)st.st_size);
    }
    closedir(dir);
    return rc;
}

static int print_one(void *u, const char *sop, uint64_t size)
{
    (*(size_t *)u)++;
    printf("%s %llu\n", sop, (unsigned long long)size);
    return 0;
}

static int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return errno == ENOENT ? 0 : MT_EIO;
    int rc = fsync(fd) == 0 ? 0 : MT_EIO;
    close(fd);
    return rc;
}

static int purge_one(const char *root, const char *sop)
{
    char rel[MT_STORE_PATH_MAX], p[1200];
    if (!mt_ingest_quarantine_path(sop, rel, sizeof rel))
        return MT_EMALFORMED;
    snprintf(p, sizeof p, "%s/%s", root, rel);
    if (unlink(p) != 0)
        return errno == ENOENT ? MT_ENOENT : MT_EIO;
    return 0;
}

typedef struct purge_all {
    const char *root;
    size_t n;
    int err;
} purge_all_t;

static int purge_cb(void *u, const char *sop, uint64_t size)
{
    (void)size;
    purge_all_t *pa = u;
    int rc = purge_one(pa->root, sop);
    if (rc && rc != MT_ENOENT)
        pa->err = rc;
    else if (!rc)
        pa->n++;
    return 0;
}

/* Copy abs (a whole file) into a new store temp file. */
static int copy_to_tmp(mt_store_t *st, const char *abs, mt_store_tmp_t *t)
{
    int fd = open(abs, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? MT_ENOENT : MT_EIO;
    int rc = st->ops->tmp_create(st, t);
    uint8_t buf[1 << 16];
    while (!rc) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = MT_EIO;
        if (n <= 0)
            break;
        rc = st->ops->tmp_write(st, t, buf, (size_t)n);
    }
    close(fd);
    if (!rc)
        rc = st->ops->tmp_close(st, t);
    if (rc)
        st->ops->tmp_discard(st, t);
    return rc;
}

static int release_one(mt_store_t *st, mt_index_t *ix, const char *sop, const char **why)
{
    char qrel[MT_STORE_PATH_MAX], abs[1200], rel[MT_STORE_PATH_MAX];
    mt_store_tmp_t t = {.fd = -1};
    *why = NULL;
    if (!mt_ingest_quarantine_path(sop, qrel, sizeof qrel))
        return MT_EMALFORMED;
    int rc = st->ops->abs_path(st, qrel, abs, sizeof abs);
    if (rc)
        return rc;
    mt_meta_t meta;
    uint64_t size = 0;
    uint32_t sum = 0;
    mt_index_rec_t *rec = mt_index_rec_new();
    rc = mt_index_read_file_sum(abs, &meta, rec, &size, &sum, NULL);
    if (rc) {
        *why = rc == MT_ENOENT ? "not in quarantine" : "not a whole DICOM file";
        goto out;
    }
    const char *ds_sop = mt_index_rec_get(rec, TAG_SOP);
    if (!ds_sop || strcmp(ds_sop, sop) != 0 || strcmp(meta.sop_instance_uid, sop) != 0 ||
        mt_store_path(mt_index_rec_get(rec, TAG_STUDY), mt_index_rec_get(rec, TAG_SERIES), sop,
                      rel, sizeof rel) != 0) {
        *why = "its UIDs do not match its name";
        rc = MT_EMALFORMED;
        goto out;
    }
    bool exists = false;
    if ((rc = ix->ops->exists(ix, sop, &exists)))
        goto out;
    if (exists) {
        *why = "already stored (purge it from the quarantine)";
        rc = MT_EDUPLICATE;
        goto out;
    }
    if ((rc = copy_to_tmp(st, abs, &t)) || (rc = st->ops->sync(st)))
        goto out_tmp;
    mt_index_rec_set_file(rec, rel, size, meta.transfer_syntax_uid, meta.sop_class_uid);
    mt_index_rec_set_checksum(rec, sum);
    mt_index_put_result_t res;
    if ((rc = ix->ops->begin(ix)))
        goto out_tmp;
    rc = ix->ops->put(ix, rec, MT_DUP_REJECT, &res, NULL, 0);
    if (rc) {
        ix->ops->rollback(ix);
        goto out_tmp;
    }
    if ((rc = ix->ops->commit(ix)))
        goto out_tmp;
    if ((rc = st->ops->publish(st, &t, rel)) || (rc = st->ops->sync(st))) {
        /* the row is unverified: the node's start-up reconciliation drops it */
        goto out_tmp;
    }
    if ((rc = ix->ops->begin(ix)))
        goto out;
    rc = ix->ops->verify(ix, sop, size);
    if (rc) {
        ix->ops->rollback(ix);
        goto out;
    }
    if ((rc = ix->ops->commit(ix)))
        goto out;
    rc = st->ops->remove(st, qrel);
    if (!rc)
        rc = st->ops->sync(st);
    goto out;
out_tmp:
    st->ops->tmp_discard(st, &t);
out:
    mt_index_rec_free(rec);
    return rc;
}

int mt_quarantine_cli(const char *storage_root, const char *index_path, const char *what,
                      int n_uids, char **uids, bool all)
{
    if (strcmp(what, "list") == 0) {
        size_t n = 0;
        int rc = each_file(storage_root, print_one, &n);
        if (rc) {
            fprintf(stderr, "mitral quarantine list: %s\n", mt_strerror(rc));
            return 1;
        }
        return 0;
    }
    if (strcmp(what, "purge") == 0) {
        char d[1024];
        int failed = 0, rc;
        if ((rc = qdir(storage_root, d, sizeof d)))
            return 1;
        if (all) {
            purge_all_t pa = {storage_root, 0, 0};
            rc = each_file(storage_root, purge_cb, &pa);
            if (!rc)
                rc = pa.err;
            if (rc) {
                fprintf(stderr, "mitral quarantine purge: %s\n", mt_strerror(rc));
                failed = 1;
            }
            printf("purged %zu\n", pa.n);
        } else {
            for (int i = 0; i < n_uids; i++) {
                rc = purge_one(storage_root, uids[i]);
                if (rc) {
                    fprintf(stderr, "mitral quarantine purge: %s: %s\n", uids[i],
                            rc == MT_ENOENT ? "not in quarantine" : mt_strerror(rc));
                    failed = 1;
                } else {
                    printf("purged %s\n", uids[i]);
                }
            }
        }
        if (fsync_dir(d) != 0) {
            fprintf(stderr, "mitral quarantine purge: fsync %s failed\n", d);
            failed = 1;
        }
        return failed;
    }
    if (strcmp(what, "release") == 0) {
        mt_store_t *st;
        int rc = mt_store_fs_open(storage_root, &st);
        if (rc) {
            fprintf(stderr, "mitral quarantine release: %s: %s\n", storage_root,
                    rc == MT_ESTATE ? "the store is in use (stop the node first)"
                                    : mt_strerror(rc));
            return 1;
        }
        mt_index_t *ix;
        if ((rc = mt_index_sqlite_open(index_path, &ix))) {
            fprintf(stderr, "mitral quarantine release: %s: %s\n", index_path, mt_strerror(rc));
            st->ops->close(st);
            return 1;
        }
        (void)mt_store_fs_add_sync_path(st, index_path);
        int failed = 0;
        for (int i = 0; i < n_uids; i++) {
            const char *why;
            rc = release_one(st, ix, uids[i], &why);
            if (rc) {
                fprintf(stderr, "mitral quarantine release: %s: %s\n", uids[i],
                        why ? why : mt_strerror(rc));
                failed = 1;
            } else {
                printf("released %s\n", uids[i]);
            }
        }
        ix->ops->close(ix);
        st->ops->close(st);
        return failed;
    }
    fprintf(stderr, "mitral quarantine: unknown subcommand '%s'\n", what);
    return 2;
}
