/*
 * rebuild.c - the index from the files: `mitral index rebuild`, and reading one stored file
 * back (rebuild.h). Used by the CLI and by the ingest's reconciliation (ingest.c).
 *
 * mt_index_read_file streams the file through the codec's push-fed reader (node/dicom/ds.h) in
 * READ_CHUNK pieces, so a 2 GB instance is read in bounded memory: the Part 10 meta is parsed
 * from the first bytes (growing the head buffer up to MAX_META while the meta group is
 * incomplete), then every byte of the data set goes through mt_ds_reader_feed and the reader
 * must finish cleanly (a truncated or zero-filled file fails). Top-level elements whose value
 * the reader delivers whole are offered to the record; keys are never bulk data.
 * mt_index_read_file_sum also returns the CRC-32C of every byte read (the ingest's checksum
 * of a stored file, to detect torn data that still parses; the adler32 of older versions on
 * request).
 *
 * mt_index_rebuild: clear the index, then walk the store (temp files under .tmp are never
 * visited) and index every file that
 *   - is named *.dcm and reads completely (mt_index_read_file), else "unreadable";
 *   - sits at the layout path of its own UIDs (mt_store_path), else "misplaced" (a file copied
 *     in by hand, or a UID that cannot name a path);
 * A second file with the same SOP Instance UID (possible only by copying files around, see
 * docs/internals/durability.md) replaces the first and is counted as a duplicate. Rows go in
 * with verified=1 and their checksum, COMMIT_EVERY per transaction; at the end one store sync
 * (covering the index's file system) makes the result durable. The store's lock makes it
 * refuse a root a running node holds.
 */
#include "rebuild.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../store/store.h"
#include "../util/alloc.h"
#include "../util/crc32c.h"
#include "../util/err.h"
#include "../util/log.h"

#define READ_CHUNK (256u << 10)
#define MAX_META (1u << 20) /* a meta group longer than this is not a file we wrote */
#define COMMIT_EVERY 512

#define TAG_SOP_INSTANCE_UID MT_TAG(0x0008, 0x0018)
#define TAG_STUDY_INSTANCE_UID MT_TAG(0x0020, 0x000D)
#define TAG_SERIES_INSTANCE_UID MT_TAG(0x0020, 0x000E)

typedef struct read_ctx {
    mt_index_rec_t *rec;
    bool big_endian;
} read_ctx_t;

static int on_event(void *user, mt_ds_event_t ev, const mt_elem_t *e)
{
    read_ctx_t *c = user;
    if (ev == MT_DS_EV_ELEMENT && e->depth == 0 && e->value && c->rec)
        mt_index_rec_offer(c->rec, e->tag, e->vr, e->value, e->value_len, c->big_endian);
    if (c->rec)
        mt_index_rec_seq_event(c->rec, ev, e, c->big_endian);
    return 0;
}

/* read(2) until n bytes or end of file; returns the count or a negative error. */
static ssize_t read_full(int fd, uint8_t *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return MT_ERR_FROM_ERRNO();
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int mt_index_read_file(const char *abs_path, mt_meta_t *meta, mt_index_rec_t *rec, uint64_t *size)
{
    return mt_index_read_file_sum(abs_path, meta, rec, size, NULL, NULL);
}

int mt_index_read_file_sum(const char *abs_path, mt_meta_t *meta, mt_index_rec_t *rec,
                           uint64_t *size, uint32_t *crc32c, uint32_t *adler32)
{
    uint32_t crc = 0;
    uLong sum = adler32_z(0, NULL, 0);
    int fd = open(abs_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? MT_ENOENT : MT_ERR_FROM_ERRNO();
    struct stat stt;
    if (fstat(fd, &stt) != 0) {
        int err = MT_ERR_FROM_ERRNO();
        close(fd);
        return err;
    }
    if (!S_ISREG(stt.st_mode)) {
        close(fd);
        return MT_EMALFORMED;
    }
    if (size)
        *size = (uint64_t)stt.st_size;
    memset(meta, 0, sizeof *meta);

    uint8_t *buf = mt_malloc(READ_CHUNK);
    size_t cap = READ_CHUNK, len = 0, consumed = 0;
    mt_ds_reader_t *r = NULL;
    mt_diag_t diag = {0};
    int err;
    bool eof = false;
    /* the meta group: read until it is complete */
    for (;;) {
        if (len == cap && !eof) {
            if (cap >= MAX_META) {
                err = MT_EMALFORMED;
                goto out;
            }
            cap *= 2;
            buf = mt_realloc(buf, cap);
        }
        if (!eof) {
            ssize_t n = read_full(fd, buf + len, cap - len);
            if (n < 0) {
                err = (int)n;
                goto out;
            }
            eof = (size_t)n < cap - len;
            if (crc32c)
                crc = mt_crc32c(crc, buf + len, (size_t)n);
            if (adler32)
                sum = adler32_z(sum, buf + len, (size_t)n);
            len += (size_t)n;
        }
        err = mt_part10_read_meta(buf, len, meta, &consumed, &diag);
        if (err != MT_EAGAIN)
            break;
        if (eof) {
            err = MT_EMALFORMED; /* ends inside the meta group */
            goto out;
        }
    }
    if (err == MT_EUNSUPPORTED) /* no preamble/DICM: not a Part 10 file */
        err = MT_EMALFORMED;
    if (err)
        goto out;
    const mt_ts_t *ts = mt_ts_find(meta->transfer_syntax_uid);
    if (!ts) {
        err = MT_EUNSUPPORTED;
        goto out;
    }
    read_ctx_t ctx = {rec, ts->big_endian};
    mt_ds_reader_opts_t o = {.ts = ts, .cb = on_event, .user = &ctx};
    r = mt_ds_reader_new(&o);
    if (!r) {
        err = MT_ENOMEM;
        goto out;
    }
    /* the data set: what is left of the head, then the rest in READ_CHUNK pieces */
    if ((err = mt_ds_reader_feed(r, buf + consumed, len - consumed)))
        goto out;
    while (!eof) {
        ssize_t n = read_full(fd, buf, READ_CHUNK);
        if (n < 0) {
            err = (int)n;
            goto out;
        }
        eof = (size_t)n < READ_CHUNK;
        if (crc32c)
            crc = mt_crc32c(crc, buf, (size_t)n);
        if (adler32)
            sum = adler32_z(sum, buf, (size_t)n);
        if (n > 0 && (err = mt_ds_reader_feed(r, buf, (size_t)n)))
            goto out;
    }
    err = mt_ds_reader_finish(r);
    if (crc32c)
        *crc32c = crc;
    if (adler32)
        *adler32 = (uint32_t)sum;
out:
    if (err && r && mt_ds_reader_diag(r)->reason)
        mt_log(MT_LOG_DEBUG, NULL, "read %s: %s at %llu", abs_path, mt_ds_reader_diag(r)->reason,
               (unsigned long long)mt_ds_reader_diag(r)->offset);
    mt_ds_reader_free(r);
    mt_free(buf);
    close(fd);
    return err;
}

/* ---- rebuild ---- */

typedef struct rebuild_ctx {
    mt_index_t *ix;
    size_t indexed, unreadable, misplaced, duplicates, in_txn;
    int err; /* an index failure stops the walk */
} rebuild_ctx_t;

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int on_file(void *u, const char *rel_path, const char *abs_path, uint64_t size)
{
    (void)size;
    rebuild_ctx_t *c = u;
    mt_index_t *ix = c->ix;
    if (!ends_with(rel_path, ".dcm")) {
        c->misplaced++;
        mt_log(MT_LOG_DEBUG, NULL, "rebuild: %s: not a stored instance name", rel_path);
        return 0;
    }
    mt_meta_t meta;
    uint64_t fsize = 0;
    uint32_t sum = 0;
    mt_index_rec_t *rec = mt_index_rec_new();
    int rc = mt_index_read_file_sum(abs_path, &meta, rec, &fsize, &sum, NULL);
    if (rc) {
        c->unreadable++;
        mt_log(MT_LOG_DEBUG, NULL, "rebuild: %s: %s", rel_path, mt_strerror(rc));
        goto out;
    }
    char want[MT_STORE_PATH_MAX];
    const char *sop = mt_index_rec_get(rec, TAG_SOP_INSTANCE_UID);
    if (!sop || strcmp(sop, meta.sop_instance_uid) != 0 ||
        mt_store_path(mt_index_rec_get(rec, TAG_STUDY_INSTANCE_UID),
                      mt_index_rec_get(rec, TAG_SERIES_INSTANCE_UID), sop, want,
                      sizeof want) != 0 ||
        strcmp(want, rel_path) != 0) {
        c->misplaced++;
        mt_log(MT_LOG_DEBUG, NULL, "rebuild: %s: not at the path of its UIDs", rel_path);
        goto out;
    }
    mt_index_rec_set_file(rec, rel_path, fsize, meta.transfer_syntax_uid, meta.sop_class_uid);
    mt_index_rec_set_checksum(rec, sum);
    if (c->in_txn == 0 && (c->err = ix->ops->begin(ix)))
        goto out;
    mt_index_put_result_t res;
    if ((c->err = ix->ops->put(ix, rec, MT_DUP_OVERWRITE, &res, NULL, 0)))
        goto out;
    if (res == MT_INDEX_REPLACED) {
        c->duplicates++;
        mt_log(MT_LOG_WARN, NULL, "rebuild: a second file of one SOP instance (path at debug)");
        mt_log(MT_LOG_DEBUG, NULL, "rebuild: %s: a second file of one SOP instance", rel_path);
    } else {
        c->indexed++;
    }
    if (++c->in_txn == COMMIT_EVERY) {
        c->in_txn = 0;
        if ((c->err = ix->ops->mark_verified(ix)) == 0)
            c->err = ix->ops->commit(ix);
    }
out:
    mt_index_rec_free(rec);
    return c->err;
}

int mt_index_rebuild(const char *storage_root, const char *index_path, mt_index_stats_t *out,
                     char *err, size_t errsz)
{
    return mt_index_rebuild_report(storage_root, index_path, out, NULL, err, errsz);
}

int mt_index_rebuild_report(const char *storage_root, const char *index_path, mt_index_stats_t *out,
                            mt_index_rebuild_report_t *rep, char *err, size_t errsz)
{
    char dummy[1];
    if (!err || !errsz) {
        err = dummy;
        errsz = sizeof dummy;
    }
    mt_store_t *st = NULL;
    mt_index_t *ix = NULL;
    rebuild_ctx_t c = {0};
    int rc;
    err[0] = '\0';
    memset(out, 0, sizeof *out);
    if ((rc = mt_store_fs_open(storage_root, &st))) {
        if (rc == MT_ESTATE)
            snprintf(err, errsz, "storage %s is in use: stop the node first", storage_root);
        else
            snprintf(err, errsz, "cannot open storage %s: %s", storage_root, mt_strerror(rc));
        goto out;
    }
    if ((rc = mt_index_sqlite_open(index_path, &ix))) {
        snprintf(err, errsz, "cannot open index %s: %s", index_path, mt_strerror(rc));
        goto out;
    }
    if ((rc = mt_store_fs_add_sync_path(st, index_path))) {
        snprintf(err, errsz, "%s: %s", index_path, mt_strerror(rc));
        goto out;
    }
    if ((rc = ix->ops->clear(ix))) {
        snprintf(err, errsz, "cannot clear the index: %s", mt_strerror(rc));
        goto out;
    }
    c.ix = ix;
    rc = st->ops->walk(st, on_file, &c);
    if (rc == 0 && c.in_txn) {
        if ((rc = ix->ops->mark_verified(ix)) == 0)
            rc = ix->ops->commit(ix);
        c.in_txn = 0;
    }
    if (rc) {
        if (c.in_txn)
            ix->ops->rollback(ix);
        snprintf(err, errsz, "%s: %s", c.err ? "index error" : "cannot walk the storage",
                 mt_strerror(rc));
        goto out;
    }
    if ((rc = st->ops->sync(st))) {
        snprintf(err, errsz, "cannot sync: %s", mt_strerror(rc));
        goto out;
    }
    if ((rc = ix->ops->stats(ix, out))) {
        snprintf(err, errsz, "cannot read the index statistics: %s", mt_strerror(rc));
        goto out;
    }
    mt_log(MT_LOG_INFO, NULL,
           "rebuild: %zu instances indexed; skipped %zu unreadable, %zu misplaced, %zu "
           "duplicates",
           c.indexed, c.unreadable, c.misplaced, c.duplicates);
out:
    if (rep) {
        rep->indexed = c.indexed;
        rep->unreadable = c.unreadable;
        rep->misplaced = c.misplaced;
        rep->duplicates = c.duplicates;
    }
    if (ix)
        ix->ops->close(ix);
    if (st)
        st->ops->close(st);
    return rc;
}
