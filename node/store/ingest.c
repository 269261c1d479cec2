/*
 * ingest.c - durable ingest with group commit (ingest.h). The protocol and the crash argument
 * are in docs/internals/durability.md; this comment is the map of the code.
 *
 * Threads and who owns what:
 *   loop thread     the API (job_new / append / commit / cancel / close) and every callback
 *   libuv pool      job work: SPILL (write a full buffer to the job's temp file), FINAL (write
 *                   the rest, close the temp file), DISCARD (close + unlink the temp file)
 *   commit thread   one per ingest: takes every queued job (up to max_batch) as one batch;
 *                   when it is idle and the loop has written the answers (answers_out) it
 *                   has the store prepare a spare temp inode (tmp_prepare), so the next
 *                   instance's tmp_create only names it
 *
 * Life of a job:
 *
 *   job_new ──append──> buf  ──(buf >= spill_chunk)──> SPILL work: out -> temp file
 *      │                 ▲  (double buffer: buf fills while out is written; append returns 1
 *      │                 │   "pause" only while a spill is running AND buf is full again;
 *      │                 │   drain_cb fires when the spill finishes)
 *      └──commit──> FINAL work (rest of buf -> temp, close) ──> commit queue (mutex + cond),
 *                   queued by the pool thread itself (no loop wake-up in between); its
 *                   after_work_cb only recycles the buffers (and frees the job if the commit
 *                   thread completed it first: free_deferred). When the commit thread is idle
 *                   and nothing is queued (a synchronous SCU), the job goes to it unwritten
 *                   ("raw", queue_raw) and it does the FINAL write itself: one thread hop
 *                   and one loop wake-up fewer.
 *                                                               │
 *   commit thread, per batch (batch_intent, then one of two paths):  ▼
 *     1. path of each job from its UIDs (store layout; a bad UID fails that job)
 *     2. BEGIN; put() each row (duplicate policy decides: insert, replace, keep the existing
 *        one, reject): a new row unsynced (verified=2: start-up checks its CRC-32C, the data
 *        may be torn), a replacement verified=0. Then the path of the batch:
 *     FAST (every file is new and goes to a directory already durably marked in dirty_dirs):
 *        3f. rename each temp file into place; COMMIT; ONE sync: data, renames, rows
 *     SLOW (anything else: a new series directory, an overwrite):
 *        3. mark the new directories (dir_mark); COMMIT: the rows are the batch's intent
 *           record; sync #1: the temp files' data and the rows are durable
 *        4. rename each temp file into place; sync #2: the renames are durable
 *     then, both paths:
 *     6. unlink the files of replaced instances that lived at another path
 *     7. BEGIN; verify() each published row (verified=1, replaces_path cleared); [sync #3,
 *        only when step 6 deleted something]; COMMIT (no flush needed: losing it only means
 *        start-up re-checks those rows)
 *     8. post completions (mutex list + uv_async_send) -> done_cb on the loop:
 *        0 / MT_EDUPLICATE / failure + comment.
 *   Right before each sync the index starts the write-back of what its commits appended
 *   (start_writeback: the SQLite WAL), so the sync finds it under way (a hint, no ordering).
 *   So a success is never sent before that instance's file and its row are durable.
 *   One sync per turn of the loop (commit_thread): a SLOW batch's sync #2 is the next batch's
 *   sync; a series arriving one instance at a time costs one flush per instance after its
 *   first. Marks are kept for the MAX_MARKED most recently used directories.
 *
 * Failures: a job failure before step 2 (bad UID, write error) fails that job only; an index
 * error in step 2 / 3 / 3f rolls the transaction back and fails the batch (temp files removed;
 * on the fast path the files already renamed are deleted). A failed rename fails its job; its
 * row is reconciled at once (slow path) or dropped before the commit (fast path). A failed sync
 * fails the batch(es) it covered and marks the ingest broken: after an fsync error the kernel
 * may have dropped the dirty pages, so nothing written since can be trusted; every later job
 * fails with MT_EIO until a restart, whose reconciliation repairs the index from the files
 * (PostgreSQL makes the same choice).
 *
 * Start-up (mt_ingest_open): delete every temp file, reconcile every row not verified (0 or 2)
 * with the files (reconcile(), below; the same function repairs a failed rename), then scan
 * the marked directories for files without rows (reconcile_dirs) and drop every mark.
 *
 * Close: refuse new jobs, wait for live jobs to finish (commit or cancel), then stop and join
 * the commit thread, close index and store, and call the close callback.
 */
#include "ingest.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../index/rebuild.h"
#include "../util/alloc.h"
#include "../util/buf.h"
#include "../util/crc32c.h"
#include "../util/err.h"
#include "../util/log.h"
#include "store.h"

#define DEFAULT_MAX_BATCH 256
#define DEFAULT_SPILL_CHUNK (1u << 20)
#define MAX_MARKED 64 /* dirty directories kept marked (series being received) */
/* bytes a job may hold beyond the pause point: one read of the caller (PDU + socket read) */
#define BUF_SLACK (64u << 20)
/* Job buffers are recycled (loop thread): a fresh buffer per instance grows by doubling from
 * 256 bytes (a dozen reallocs and copies for 130 KB) and, freed, goes back to the kernel
 * (heap trim / munmap), so the next instance page-faults it in again. The pool keeps up to
 * BUF_POOL_BYTES of released buffers (each at most BUF_POOL_ONE) for the next jobs. */
#define BUF_POOL_MAX 32
#define BUF_POOL_ONE (2u << 20)
#define BUF_POOL_BYTES (4u << 20)

#define TAG_SOP_INSTANCE_UID MT_TAG(0x0008, 0x0018)
#define TAG_STUDY_INSTANCE_UID MT_TAG(0x0020, 0x000D)
#define TAG_SERIES_INSTANCE_UID MT_TAG(0x0020, 0x000E)

typedef enum { OP_SPILL, OP_FINAL, OP_DISCARD } job_op_t;

/* What the commit thread decided for a job of the batch. */
typedef enum { ACT_NONE, ACT_PUBLISH, ACT_KEEP } job_act_t;

struct mt_ingest_job {
    mt_ingest_t *ing;
    mt_ingest_job_t *next; /* commit queue / completion list */
    /* loop thread */
    mt_buf_t buf; /* bytes appended, not yet handed to a worker */
    bool working; /* a pool worker owns out, tmp, work_status */
    bool commit_wanted, cancelled, want_drain;
    bool handed_over; /* commit/quarantine called: the ingest owns the job, no cancel */
    bool free_deferred; /* completed before after_work_cb ran: that frees it */
    int status;
    const char *comment;
    mt_ingest_drain_cb drain_cb;
    void *drain_data;
    mt_ingest_done_cb done_cb;
    void *done_data;
    /* worker while working; commit thread once queued */
    uv_work_t work;
    job_op_t op;
    mt_buf_t out;
    mt_store_tmp_t tmp;
    int work_status;
    const char *work_comment;
    bool direct; /* FINAL work queued it for the commit thread itself (no loop hop) */
    bool raw;     /* queued unwritten: the (idle) commit thread does its FINAL write */
    uint32_t crc; /* CRC-32C (util/crc32c.h) of the bytes written so far */
    mt_index_rec_t *rec;
    char ts_uid[65], sop_class_uid[65];
    /* commit thread */
    job_act_t act;
    bool repair;   /* its rename failed after its row was committed */
    bool replaced; /* put() replaced an existing row */
    char rel_path[MT_STORE_PATH_MAX];
    char old_path[MT_STORE_PATH_MAX]; /* replaced instance's file at another path, or "" */
    /* mt_ingest_job_quarantine: FINAL publishes here (no index row, no commit thread) */
    char quar_path[MT_STORE_PATH_MAX];
};

struct mt_ingest {
    uv_loop_t *loop;
    mt_store_t *store;
    mt_index_t *index;
    mt_dup_policy_t dup;
    size_t max_batch, spill_chunk;

    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cond;
    /* under mu */
    mt_ingest_job_t *q_head, **q_tail;
    mt_ingest_job_t *done_head, **done_tail;
    bool commit_idle; /* the commit thread waits for work, nothing in flight */
    bool answers_out; /* on_async delivered completions: the idle commit thread may prepare */
    bool stop, thread_done;

    uv_async_t async;
    /* loop thread */
    size_t n_jobs;
    mt_buf_t pool[BUF_POOL_MAX]; /* released job buffers, len 0 */
    size_t n_pool, pool_bytes;
    bool closing, stop_sent;
    void (*close_cb)(void *);
    void *close_data;

    /* commit thread */
    bool broken; /* a sync failed: fail everything until restart */
    /* directories durably marked in dirty_dirs (the one-flush path), least recently used
     * evicted; clock counts batches */
    char marked[MAX_MARKED][MT_STORE_PATH_MAX];
    uint64_t marked_use[MAX_MARKED];
    size_t n_marked;
    uint64_t clock;
};

static const char *comment_for(int err)
{
    switch (err) {
    case MT_ENOSPC:
        return "out of resources: disk full";
    case MT_EMALFORMED:
        return "invalid UID for the storage path";
    case MT_EDB:
        return "index error";
    case MT_ENOMEM:
    case MT_ETOOBIG:
        return "out of resources: memory";
    case MT_EIO:
        return "storage I/O error";
    default:
        return "cannot write file";
    }
}

/* ---- completions: commit thread -> loop ---- */

static void post_done(mt_ingest_t *ing, mt_ingest_job_t *first, mt_ingest_job_t *last)
{
    uv_mutex_lock(&ing->mu);
    *ing->done_tail = first;
    ing->done_tail = &last->next;
    last->next = NULL;
    uv_mutex_unlock(&ing->mu);
    uv_async_send(&ing->async);
}

/* A job buffer from the pool (or a new one). Loop thread. */
static void buf_take(mt_ingest_t *ing, mt_buf_t *b)
{
    mt_buf_init(b, ing->spill_chunk + BUF_SLACK);
    if (ing->n_pool) {
        mt_buf_t *p = &ing->pool[--ing->n_pool];
        ing->pool_bytes -= p->cap;
        b->data = p->data;
        b->cap = p->cap;
    }
}

/* Release a job buffer to the pool (or free it). Loop thread. */
static void buf_give(mt_ingest_t *ing, mt_buf_t *b)
{
    if (b->data && b->cap <= BUF_POOL_ONE && ing->n_pool < BUF_POOL_MAX &&
        ing->pool_bytes + b->cap <= BUF_POOL_BYTES && !ing->closing) {
        ing->pool[ing->n_pool++] = (mt_buf_t){.data = b->data, .cap = b->cap};
        ing->pool_bytes += b->cap;
        b->data = NULL;
        b->len = b->cap = 0;
        return;
    }
    mt_buf_dispose(b);
}

static void pool_free(mt_ingest_t *ing)
{
    while (ing->n_pool)
        mt_buf_dispose(&ing->pool[--ing->n_pool]);
    ing->pool_bytes = 0;
}

static void job_free(mt_ingest_job_t *job)
{
    mt_ingest_t *ing = job->ing;
    buf_give(ing, &job->buf);
    buf_give(ing, &job->out);
    mt_index_rec_free(job->rec);
    mt_free(job);
    ing->n_jobs--;
}

static void maybe_stop(mt_ingest_t *ing)
{
    if (!ing->closing || ing->n_jobs || ing->stop_sent)
        return;
    ing->stop_sent = true;
    uv_mutex_lock(&ing->mu);
    ing->stop = true;
    uv_cond_signal(&ing->cond);
    uv_mutex_unlock(&ing->mu);
}

static void complete(mt_ingest_job_t *job)
{
    if (job->done_cb)
        job->done_cb(job->done_data, job->status, job->status ? job->comment : NULL);
    mt_ingest_t *ing = job->ing;
    if (job->working) { /* direct FINAL: its after_work_cb has not run yet */
        job->done_cb = NULL;
        job->free_deferred = true;
        return;
    }
    job_free(job);
    maybe_stop(ing);
}

static void on_async_closed(uv_handle_t *h)
{
    mt_ingest_t *ing = h->data;
    void (*cb)(void *) = ing->close_cb;
    void *data = ing->close_data;
    pool_free(ing);
    mt_free(ing);
    if (cb)
        cb(data);
}

static void on_async(uv_async_t *a)
{
    mt_ingest_t *ing = a->data;
    uv_mutex_lock(&ing->mu);
    mt_ingest_job_t *list = ing->done_head;
    ing->done_head = NULL;
    ing->done_tail = &ing->done_head;
    bool finished = ing->thread_done;
    uv_mutex_unlock(&ing->mu);
    bool answered = list != NULL;
    while (list) {
        mt_ingest_job_t *next = list->next;
        complete(list);
        list = next;
    }
    if (answered) { /* the answers are written: now the commit thread may take a core */
        uv_mutex_lock(&ing->mu);
        ing->answers_out = true;
        if (ing->commit_idle)
            uv_cond_signal(&ing->cond);
        uv_mutex_unlock(&ing->mu);
    }
    if (finished && !uv_is_closing((uv_handle_t *)&ing->async)) {
        uv_thread_join(&ing->thread);
        ing->index->ops->close(ing->index);
        ing->store->ops->close(ing->store);
        uv_cond_destroy(&ing->cond);
        uv_mutex_destroy(&ing->mu);
        uv_close((uv_handle_t *)&ing->async, on_async_closed);
    }
}

/* ---- reconciliation: make an unverified row agree with the files ---- */

typedef struct reconcile_stats {
    size_t kept, removed, restored, unlinked;
} reconcile_stats_t;

/* Is err a verdict on the file's content (rather than an I/O or index failure)? */
static bool bad_file(int err)
{
    return err == MT_EMALFORMED || err == MT_EUNSUPPORTED || err == MT_ETOOBIG;
}

/* Index the file at rel_path if it is a whole Part 10 file of instance sop stored at its layout
 * path (and, when torn is given, of exactly that size and checksum: a file written on the
 * one-flush path can parse yet hold blocks that never reached the disk): put (overwrite) from
 * the file's own values and mark the row verified.
 * 0 indexed; MT_ENOENT no such file; bad_file() codes: not a whole file of sop at that path;
 * anything else: I/O or index failure. */
static int index_from_file(mt_store_t *st, mt_index_t *ix, const char *sop, const char *rel_path,
                           const mt_index_pending_t *torn)
{
    char abs[1024], want[MT_STORE_PATH_MAX];
    mt_meta_t meta;
    uint64_t size = 0;
    uint32_t sum = 0, adler = 0;
    int rc = st->ops->abs_path(st, rel_path, abs, sizeof abs);
    if (rc)
        return rc;
    mt_index_rec_t *rec = mt_index_rec_new();
    rc = mt_index_read_file_sum(abs, &meta, rec, &size, &sum, torn ? &adler : NULL);
    /* a row an older version left unsynced carries the adler32 it recorded then */
    if (rc == 0 && torn &&
        (!torn->has_checksum || (torn->checksum != sum && torn->checksum != adler) ||
         torn->size != size))
        rc = MT_EMALFORMED;
    if (rc == 0) {
        const char *ds_sop = mt_index_rec_get(rec, TAG_SOP_INSTANCE_UID);
        if (!ds_sop || strcmp(ds_sop, sop) != 0 || strcmp(meta.sop_instance_uid, sop) != 0 ||
            mt_store_path(mt_index_rec_get(rec, TAG_STUDY_INSTANCE_UID),
                          mt_index_rec_get(rec, TAG_SERIES_INSTANCE_UID), sop, want,
                          sizeof want) != 0 ||
            strcmp(want, rel_path) != 0)
            rc = MT_EMALFORMED;
    }
    if (rc == 0) {
        mt_index_put_result_t res;
        mt_index_rec_set_file(rec, rel_path, size, meta.transfer_syntax_uid, meta.sop_class_uid);
        mt_index_rec_set_checksum(rec, sum);
        rc = ix->ops->put(ix, rec, MT_DUP_OVERWRITE, &res, NULL, 0);
        if (rc == 0)
            rc = ix->ops->verify(ix, sop, size);
        if (bad_file(rc)) /* not a verdict on the file: an index failure */
            rc = MT_EDB;
    }
    mt_index_rec_free(rec);
    return rc;
}

static void unlink_file(mt_store_t *st, const char *rel_path, reconcile_stats_t *rs)
{
    int rc = st->ops->remove(st, rel_path);
    if (rc == 0)
        rs->unlinked++;
    else if (rc != 0 && rc != MT_ENOENT)
        mt_log(MT_LOG_WARN, NULL, "ingest: cannot remove a stored file: %s", mt_strerror(rc));
}

/* The row of instance sop says rel_path but may not be durable, nor its file (verified 0/2).
 * Call inside an index transaction. Outcome:
 *   the file at rel_path is whole  -> row re-indexed from it, verified; the file it replaced at
 *                                     another path (replaces, may be NULL) is deleted
 *   absent or not whole            -> that file deleted, the row removed; the replaced file, if
 *                                     still whole, indexed again (the replacement never happened)
 * The caller makes the deletions durable (store sync) BEFORE it commits, so a committed
 * verdict never outlives a file it deleted; a crash before the commit leaves the row unverified
 * and the next start-up decides again. Returns 0 or an I/O / index failure. */
static int reconcile(mt_store_t *st, mt_index_t *ix, const mt_index_pending_t *p,
                     reconcile_stats_t *rs)
{
    const char *sop = p->sop_instance_uid, *rel_path = p->rel_path, *replaces = p->replaces_path;
    if (replaces && (!*replaces || strcmp(replaces, rel_path) == 0))
        replaces = NULL;
    int rc = index_from_file(st, ix, sop, rel_path, p->unsynced ? p : NULL);
    if (rc == 0) {
        rs->kept++;
        if (replaces)
            unlink_file(st, replaces, rs);
        return 0;
    }
    if (rc != MT_ENOENT && !bad_file(rc))
        return rc;
    if (bad_file(rc))
        unlink_file(st, rel_path, rs);
    rc = ix->ops->remove(ix, sop);
    if (rc != 0 && rc != MT_ENOENT)
        return rc;
    rs->removed++;
    if (!replaces)
        return 0;
    rc = index_from_file(st, ix, sop, replaces, NULL);
    if (rc == 0) {
        rs->restored++;
        return 0;
    }
    if (bad_file(rc)) {
        unlink_file(st, replaces, rs);
        return 0;
    }
    return rc == MT_ENOENT ? 0 : rc;
}

typedef struct check_item {
    struct check_item *next;
    mt_index_pending_t p; /* strings owned */
} check_item_t;

static int collect_unverified(void *u, const mt_index_pending_t *p)
{
    check_item_t ***tail = u;
    check_item_t *c = mt_calloc(1, sizeof *c);
    c->p = *p;
    c->p.sop_instance_uid = mt_strdup(p->sop_instance_uid);
    c->p.rel_path = mt_strdup(p->rel_path);
    c->p.replaces_path = p->replaces_path ? mt_strdup(p->replaces_path) : NULL;
    **tail = c;
    *tail = &c->next;
    return 0;
}

/* Start-up: reconcile every row not verified (the batches a crash may have cut short),
 * in one transaction, then make the result durable. */
static int reconcile_unverified(mt_store_t *st, mt_index_t *ix)
{
    check_item_t *list = NULL, **tail = &list;
    int err = ix->ops->unverified(ix, collect_unverified, &tail);
    if (err || !list)
        goto out;
    reconcile_stats_t rs = {0};
    err = ix->ops->begin(ix);
    for (check_item_t *c = list; c && !err; c = c->next)
        err = reconcile(st, ix, &c->p, &rs);
    if (!err && rs.unlinked)
        err = st->ops->sync(st); /* deletions before the verdicts */
    if (!err)
        err = ix->ops->commit(ix);
    else
        ix->ops->rollback(ix);
    if (!err)
        err = st->ops->sync(st);
    mt_log(err ? MT_LOG_ERROR : MT_LOG_INFO, NULL,
           "ingest: start-up reconciliation of unverified instances: %zu kept, %zu removed, "
           "%zu restored, %zu files deleted%s%s",
           rs.kept, rs.removed, rs.restored, rs.unlinked, err ? ": " : "",
           err ? mt_strerror(err) : "");
out:
    while (list) {
        check_item_t *n = list->next;
        mt_free((char *)list->p.sop_instance_uid);
        mt_free((char *)list->p.rel_path);
        mt_free((char *)list->p.replaces_path);
        mt_free(list);
        list = n;
    }
    return err;
}

typedef struct dir_item {
    struct dir_item *next;
    char *path;
} dir_item_t;

static int collect_dir(void *u, const char *rel_dir)
{
    dir_item_t **list = u;
    dir_item_t *d = mt_calloc(1, sizeof *d);
    d->path = mt_strdup(rel_dir);
    d->next = *list;
    *list = d;
    return 0;
}

typedef struct scan_ctx {
    mt_store_t *st;
    mt_index_t *ix;
    reconcile_stats_t *rs;
} scan_ctx_t;

/* A file in a dirty directory: one whose row exists (at its path) is fine (the row was
 * reconciled before); one whose SOP instance is indexed elsewhere is a stale copy; one without
 * a row was renamed by a one-flush batch whose sync never completed: its SCU got no answer and
 * its data may be torn, so it is deleted too (the SCU sends it again). */
static int on_dirty_file(void *u, const char *rel_path, const char *abs_path, uint64_t size)
{
    (void)abs_path, (void)size;
    scan_ctx_t *c = u;
    const char *name = strrchr(rel_path, '/');
    name = name ? name + 1 : rel_path;
    size_t n = strlen(name);
    if (n <= 4 || n - 4 > 64 || strcmp(name + n - 4, ".dcm") != 0)
        return 0;
    char sop[65], at[MT_STORE_PATH_MAX];
    memcpy(sop, name, n - 4);
    sop[n - 4] = '\0';
    int rc = c->ix->ops->locate(c->ix, sop, at, sizeof at, NULL);
    if (rc == 0) {
        if (strcmp(at, rel_path) != 0)
            unlink_file(c->st, rel_path, c->rs);
        return 0;
    }
    if (rc != MT_ENOENT)
        return rc;
    unlink_file(c->st, rel_path, c->rs);
    return 0;
}

/* Start-up, after reconcile_unverified: the directories that may hold renames of a batch cut
 * short on the one-flush path. Then every mark goes (nothing is in flight). */
static int reconcile_dirs(mt_store_t *st, mt_index_t *ix)
{
    dir_item_t *list = NULL;
    reconcile_stats_t rs = {0};
    size_t n_dirs = 0;
    int err = ix->ops->dirs(ix, collect_dir, &list);
    if (err)
        goto out;
    scan_ctx_t c = {st, ix, &rs};
    err = ix->ops->begin(ix);
    for (dir_item_t *d = list; d && !err; d = d->next, n_dirs++)
        err = st->ops->list(st, d->path, on_dirty_file, &c);
    if (!err)
        err = ix->ops->dir_unmark(ix, NULL);
    if (!err && rs.unlinked)
        err = st->ops->sync(st); /* deletions before the verdicts */
    if (!err)
        err = ix->ops->commit(ix);
    else
        ix->ops->rollback(ix);
    if (!err && n_dirs)
        err = st->ops->sync(st);
    if (n_dirs || err)
        mt_log(err ? MT_LOG_ERROR : MT_LOG_INFO, NULL,
               "ingest: start-up scan of %zu directories: %zu files without a row deleted%s%s",
               n_dirs, rs.unlinked, err ? ": " : "", err ? mt_strerror(err) : "");
out:
    while (list) {
        dir_item_t *n = list->next;
        mt_free(list->path);
        mt_free(list);
        list = n;
    }
    return err;
}

/* ---- the commit thread ---- */

/* Fail one job of a batch: its temp file goes, it takes no further part. */
static void fail_job(mt_ingest_t *ing, mt_ingest_job_t *job, int err, const char *comment)
{
    ing->store->ops->tmp_discard(ing->store, &job->tmp);
    job->status = err;
    job->comment = comment ? comment : comment_for(err);
    job->act = ACT_NONE;
}

/* Fail every job of the batch still on its way to success. */
static void fail_rest(mt_ingest_t *ing, mt_ingest_job_t *batch, int err, const char *comment)
{
    for (mt_ingest_job_t *j = batch; j; j = j->next)
        if (!j->status)
            fail_job(ing, j, err, comment);
}

static void sync_failed(mt_ingest_t *ing, mt_ingest_job_t *batch, int err)
{
    mt_log(MT_LOG_ERROR, NULL,
           "ingest: storage sync failed (%s): refusing every store until a restart reconciles "
           "the index with the files",
           mt_strerror(err));
    ing->broken = true;
    fail_rest(ing, batch, MT_EIO, "cannot sync storage");
}

static const char *job_sop(const mt_ingest_job_t *j)
{
    return mt_index_rec_get(j->rec, TAG_SOP_INSTANCE_UID);
}

static void post_batch(mt_ingest_t *ing, mt_ingest_job_t *batch)
{
    mt_ingest_job_t *last = batch;
    while (last->next)
        last = last->next;
    post_done(ing, batch, last);
}

typedef enum {
    B_NONE, /* nothing left to make durable (every job failed) */
    B_SLOW, /* rows committed as intents: sync, rename, sync */
    B_FAST, /* transaction still open: rename, commit, sync */
} batch_mode_t;

/* Length of the directory part of a relative path. */
static size_t dir_len(const char *rel_path)
{
    const char *sl = strrchr(rel_path, '/');
    return sl ? (size_t)(sl - rel_path) : 0;
}

static int marked_find(const mt_ingest_t *ing, const char *rel_path)
{
    size_t n = dir_len(rel_path);
    for (size_t i = 0; i < ing->n_marked; i++)
        if (strncmp(ing->marked[i], rel_path, n) == 0 && ing->marked[i][n] == '\0')
            return (int)i;
    return -1;
}

/* Slow path: mark the batch's unmarked directories in the open transaction (durable with sync
 * #1, before any rename), evicting the least recently used marks not used by this batch. */
static int mark_dirs(mt_ingest_t *ing, mt_ingest_job_t *batch)
{
    mt_index_t *ix = ing->index;
    int err = 0;
    for (mt_ingest_job_t *j = batch; j && !err; j = j->next) {
        if (j->act != ACT_PUBLISH || j->status || marked_find(ing, j->rel_path) >= 0)
            continue;
        size_t slot = ing->n_marked;
        if (slot == MAX_MARKED) {
            slot = 0;
            for (size_t i = 1; i < MAX_MARKED; i++)
                if (ing->marked_use[i] < ing->marked_use[slot])
                    slot = i;
            if (ing->marked_use[slot] == ing->clock)
                continue; /* every mark is in use by this batch: stay on the slow path */
            if ((err = ix->ops->dir_unmark(ix, ing->marked[slot])))
                break;
        } else {
            ing->n_marked++;
        }
        size_t n = dir_len(j->rel_path);
        memcpy(ing->marked[slot], j->rel_path, n);
        ing->marked[slot][n] = '\0';
        ing->marked_use[slot] = ing->clock;
        err = ix->ops->dir_mark(ix, ing->marked[slot]);
    }
    return err;
}

static int write_out(mt_store_t *st, mt_ingest_job_t *job, bool final);

/* Steps 1-2 (numbered as in the file comment): paths, then the rows. Decides the path of the
 * batch: FAST when every file goes to a new path in a directory already durably marked (the
 * transaction stays open), else SLOW (rows committed as intents, new marks with them). */
static batch_mode_t batch_intent(mt_ingest_t *ing, mt_ingest_job_t *batch)
{
    mt_index_t *ix = ing->index;
    size_t n_ok = 0;
    for (mt_ingest_job_t *j = batch; j; j = j->next) {
        j->act = ACT_NONE;
        j->repair = false;
        j->replaced = false;
        j->old_path[0] = '\0';
        if (j->raw) {
            j->raw = false;
            int werr = write_out(ing->store, j, true);
            if (werr)
                fail_job(ing, j, werr, NULL);
        }
        if (j->status)
            continue;
        if (ing->broken) {
            fail_job(ing, j, MT_EIO, "storage failed earlier: restart needed");
            continue;
        }
        int perr = mt_store_path(mt_index_rec_get(j->rec, TAG_STUDY_INSTANCE_UID),
                                 mt_index_rec_get(j->rec, TAG_SERIES_INSTANCE_UID), job_sop(j),
                                 j->rel_path, sizeof j->rel_path);
        if (perr) {
            fail_job(ing, j, perr, NULL);
            continue;
        }
        mt_index_rec_set_file(j->rec, j->rel_path, j->tmp.size, j->ts_uid, j->sop_class_uid);
        mt_index_rec_set_checksum(j->rec, j->crc);
        /* a new row goes in as verified=2 (unsynced) at once: right for the FAST path, and
         * for a SLOW batch only a stricter start-up check (its data is durable before the
         * rename, so the file matches its checksum). A replacement is written verified=0. */
        mt_index_rec_set_unsynced(j->rec, true);
        n_ok++;
    }
    if (!n_ok)
        return B_NONE;

    ing->clock++;
    int err = ix->ops->begin(ix);
    for (mt_ingest_job_t *j = batch; j && !err; j = j->next) {
        if (j->status)
            continue;
        mt_index_put_result_t res;
        if ((err = ix->ops->put(ix, j->rec, ing->dup, &res, j->old_path, sizeof j->old_path)))
            break;
        switch (res) {
        case MT_INDEX_REPLACED:
            j->replaced = true;
            /* fall through */
        case MT_INDEX_INSERTED:
            j->act = ACT_PUBLISH;
            break;
        case MT_INDEX_KEPT_EXISTING:
            j->act = ACT_KEEP;
            break;
        case MT_INDEX_REJECTED_DUPLICATE:
            fail_job(ing, j, MT_EDUPLICATE, "duplicate SOP instance");
            break;
        }
    }
    bool live = false, fast = true, any_pub = false;
    for (mt_ingest_job_t *j = batch; j && !err; j = j->next) {
        if (j->status)
            continue;
        live = true;
        if (j->act != ACT_PUBLISH)
            continue;
        any_pub = true;
        int m = marked_find(ing, j->rel_path);
        if (m >= 0)
            ing->marked_use[m] = ing->clock;
        /* an overwrite must not rename data that is not durable over an acknowledged file */
        if (m < 0 || j->replaced)
            fast = false;
    }
    /* FAST: every published row is a new one, put() wrote it unsynced (verified=2: its data
     * may be torn until the sync, start-up will check the checksum) */
    if (!err && live && fast && any_pub)
        return B_FAST;
    if (!err && !fast)
        err = mark_dirs(ing, batch);
    if (!err)
        err = ix->ops->commit(ix);
    if (err) {
        ix->ops->rollback(ix);
        ing->n_marked = 0; /* the marks of this transaction are gone: forget them all */
        mt_log(MT_LOG_ERROR, NULL, "ingest: index transaction failed: %s", mt_strerror(err));
        fail_rest(ing, batch, err == MT_ENOSPC ? MT_ENOSPC : MT_EDB,
                  err == MT_ENOSPC ? NULL : "index error");
        return B_NONE;
    }
    return live ? B_SLOW : B_NONE;
}

/* Step 4, after the sync that made the batch's temp data and rows durable. Returns the number
 * of files renamed into place (their renames need the next sync). */
static size_t batch_publish(mt_ingest_t *ing, mt_ingest_job_t *batch)
{
    mt_store_t *st = ing->store;
    size_t n_pub = 0;
    bool repair = false;
    for (mt_ingest_job_t *j = batch; j; j = j->next) {
        if (j->act == ACT_KEEP) {
            st->ops->tmp_discard(st, &j->tmp);
            continue;
        }
        if (j->act != ACT_PUBLISH || j->status)
            continue;
        int perr = st->ops->publish(st, &j->tmp, j->rel_path);
        if (perr) {
            mt_log(MT_LOG_ERROR, NULL, "ingest: cannot rename a file into place: %s",
                   mt_strerror(perr));
            fail_job(ing, j, perr, NULL);
            j->repair = true; /* its row is reconciled in step 7 */
            repair = true;
            continue;
        }
        n_pub++;
    }
    if (repair) /* a keep-first duplicate of an instance whose rename failed has nothing kept */
        for (mt_ingest_job_t *j = batch; j; j = j->next)
            for (mt_ingest_job_t *k = batch; j->act == ACT_KEEP && !j->status && k; k = k->next)
                if (k->repair && strcmp(job_sop(j), job_sop(k)) == 0)
                    fail_job(ing, j, MT_EIO, "cannot write file");
    return n_pub;
}

/* Steps 6-8, after the sync that made the batch's renames durable. */
static void batch_finish(mt_ingest_t *ing, mt_ingest_job_t *batch)
{
    mt_store_t *st = ing->store;
    mt_index_t *ix = ing->index;
    reconcile_stats_t rs = {0};
    bool any = false;
    /* 6. files of replaced instances that lived at another path */
    for (mt_ingest_job_t *j = batch; j; j = j->next) {
        any = any || (j->act == ACT_PUBLISH && !j->status) || j->repair;
        if (j->act == ACT_PUBLISH && !j->status && j->old_path[0])
            unlink_file(st, j->old_path, &rs);
    }
    if (!any)
        goto done;
    /* 7. verified=1, and the rows of failed renames. A verified row with replaces_path cleared
     * must never be durable while its old file still is: deletions are synced first (rare:
     * only a replacement at another path or a repair deletes anything). The COMMIT itself
     * needs no flush: losing it only means start-up re-checks those rows. */
    int err = ix->ops->begin(ix);
    for (mt_ingest_job_t *j = batch; j && !err; j = j->next) {
        if (j->act == ACT_PUBLISH && !j->status)
            err = ix->ops->verify(ix, job_sop(j), j->tmp.size);
        else if (j->repair) {
            mt_index_pending_t p = {.sop_instance_uid = job_sop(j),
                                    .rel_path = j->rel_path,
                                    .replaces_path = j->old_path};
            err = reconcile(st, ix, &p, &rs);
        }
    }
    if (!err && rs.unlinked)
        err = st->ops->sync(st);
    if (!err)
        err = ix->ops->commit(ix);
    if (err) {
        ix->ops->rollback(ix); /* harmless: start-up reconciles rows left unverified */
        mt_log(MT_LOG_WARN, NULL, "ingest: cannot mark a batch verified: %s", mt_strerror(err));
    }
done:
    /* 8. */
    post_batch(ing, batch);
}

/* One-flush path, transaction still open: rename, drop the rows of failed renames, commit.
 * If the commit fails the renamed files have no rows: they go and the batch fails. */
static void batch_fast(mt_ingest_t *ing, mt_ingest_job_t *batch)
{
    mt_index_t *ix = ing->index;
    batch_publish(ing, batch);
    int err = 0;
    for (mt_ingest_job_t *j = batch; j && !err; j = j->next)
        if (j->repair) {
            j->repair = false; /* an inserted row: nothing to restore */
            err = ix->ops->remove(ix, job_sop(j));
        }
    if (!err)
        err = ix->ops->commit(ix);
    if (err) {
        ix->ops->rollback(ix);
        mt_log(MT_LOG_ERROR, NULL, "ingest: index transaction failed: %s", mt_strerror(err));
        reconcile_stats_t rs = {0};
        for (mt_ingest_job_t *j = batch; j; j = j->next)
            if (j->act == ACT_PUBLISH && !j->status)
                unlink_file(ing->store, j->rel_path, &rs);
        fail_rest(ing, batch, err == MT_ENOSPC ? MT_ENOSPC : MT_EDB,
                  err == MT_ENOSPC ? NULL : "index error");
    }
}

/* Take up to max_batch queued jobs (under mu), or NULL. */
static mt_ingest_job_t *take_batch(mt_ingest_t *ing)
{
    mt_ingest_job_t *batch = ing->q_head, *last = batch;
    if (!batch)
        return NULL;
    size_t n = 1;
    while (last->next && n < ing->max_batch) {
        last = last->next;
        n++;
    }
    ing->q_head = last->next;
    if (!ing->q_head)
        ing->q_tail = &ing->q_head;
    last->next = NULL;
    return batch;
}

/* One sync per turn of the loop. A SLOW batch is pipelined: the sync that makes its renames
 * durable (its sync #2) is the sync #1 of the next batch, so it waits in `pending`. A FAST
 * batch renames before the sync and is finished right after it. When the queue runs dry the
 * pending batch gets its own sync at once (no waiting for company). */
static void commit_thread(void *arg)
{
    mt_ingest_t *ing = arg;
    mt_ingest_job_t *pending = NULL; /* SLOW, renamed into place, renames not yet durable */
    uv_mutex_lock(&ing->mu);
    for (;;) {
        while (!ing->q_head && !pending && !ing->stop) {
            if (ing->answers_out) {
                /* Idle, and the loop has written the answers: make the next instance's temp
                 * inode now, while the SCU turns round. Not before: the loop thread, woken
                 * by our post, would wait for a core behind the inode allocation. */
                ing->answers_out = false;
                ing->commit_idle = false;
                uv_mutex_unlock(&ing->mu);
                (void)ing->store->ops->tmp_prepare(ing->store);
                uv_mutex_lock(&ing->mu);
                continue;
            }
            ing->commit_idle = true;
            uv_cond_wait(&ing->cond, &ing->mu);
        }
        ing->commit_idle = false;
        if (!ing->q_head && !pending)
            break; /* stop, and nothing in flight */
        mt_ingest_job_t *batch = take_batch(ing);
        uv_mutex_unlock(&ing->mu);

        batch_mode_t mode = batch ? batch_intent(ing, batch) : B_NONE;
        if (mode == B_FAST)
            batch_fast(ing, batch);
        if (mode != B_NONE || pending) {
            if (ing->index->ops->start_writeback) /* the WAL frames under way, then sync */
                ing->index->ops->start_writeback(ing->index);
            int err = ing->store->ops->sync(ing->store);
            if (err) {
                if (pending) {
                    sync_failed(ing, pending, err);
                    post_batch(ing, pending);
                }
                if (batch)
                    sync_failed(ing, batch, err);
                pending = NULL;
                mode = B_NONE;
            }
        }
        if (pending) {
            batch_finish(ing, pending);
            pending = NULL;
        }
        if (batch) {
            if (mode == B_SLOW && batch_publish(ing, batch) > 0)
                pending = batch;
            else
                batch_finish(ing, batch);
        }
        uv_mutex_lock(&ing->mu);
    }
    uv_mutex_unlock(&ing->mu);
    /* everything is durable: no directory holds renames in flight. Not after a failed sync:
     * a fast batch's renames may not be durable, and start-up must still scan their
     * directories for files without a row */
    if (ing->n_marked && !ing->broken && ing->index->ops->begin(ing->index) == 0) {
        if (ing->index->ops->dir_unmark(ing->index, NULL) == 0)
            ing->index->ops->commit(ing->index);
        else
            ing->index->ops->rollback(ing->index);
    }
    uv_mutex_lock(&ing->mu);
    ing->thread_done = true;
    uv_mutex_unlock(&ing->mu);
    uv_async_send(&ing->async);
}

/* ---- job work on the libuv pool ---- */

/* The job's pending bytes (out) to its temp file (created on first use), with the checksum;
 * final: then close it. On the pool, or on the commit thread for a raw job. */
static int write_out(mt_store_t *st, mt_ingest_job_t *job, bool final)
{
    int err = 0;
    if (job->tmp.fd < 0 && !job->tmp.name[0])
        err = st->ops->tmp_create(st, &job->tmp);
    if (!err && job->out.len) {
        err = st->ops->tmp_write(st, &job->tmp, job->out.data, job->out.len);
        job->crc = mt_crc32c(job->crc, job->out.data, job->out.len);
    }
    mt_buf_reset(&job->out);
    if (!err && final)
        err = st->ops->tmp_close(st, &job->tmp);
    return err;
}

static void work_cb(uv_work_t *w)
{
    mt_ingest_job_t *job = w->data;
    mt_store_t *st = job->ing->store;
    if (job->op == OP_DISCARD || job->work_status) {
        st->ops->tmp_discard(st, &job->tmp);
        return;
    }
    int err = write_out(st, job, job->op == OP_FINAL);
    if (!err && job->op == OP_FINAL && job->quar_path[0]) {
        /* Quarantine: data durable, then the rename, then the rename durable; a crash before
         * the rename leaves a temp file (removed at start-up), never a torn quarantined file. */
        err = st->ops->sync(st);
        if (!err)
            err = st->ops->publish(st, &job->tmp, job->quar_path);
        if (!err && (err = st->ops->sync(st)) != 0)
            (void)st->ops->remove(st, job->quar_path);
    }
    if (err) {
        st->ops->tmp_discard(st, &job->tmp);
        job->work_status = err;
        job->work_comment = comment_for(err);
        return;
    }
    if (job->op == OP_FINAL && !job->quar_path[0]) {
        /* complete and committed (no cancel after commit): straight to the commit queue, not
         * via a wake-up of the loop first. The job's buffers stay with the loop thread
         * (after_work_cb recycles them); the commit thread never touches them. */
        mt_ingest_t *ing = job->ing;
        job->direct = true;
        job->next = NULL;
        uv_mutex_lock(&ing->mu);
        *ing->q_tail = job;
        ing->q_tail = &job->next;
        uv_cond_signal(&ing->cond);
        uv_mutex_unlock(&ing->mu);
    }
}

static void after_work_cb(uv_work_t *w, int status);

static void start_work(mt_ingest_job_t *job, job_op_t op)
{
    if (op == OP_FINAL && job->status && !job->work_status)
        job->work_status = job->status; /* failed earlier: FINAL only removes the temp file */
    mt_buf_t t = job->out;              /* empty: no worker holds it */
    job->out = job->buf;
    job->buf = t;
    job->op = op;
    job->working = true;
    job->work.data = job;
    int rc = uv_queue_work(job->ing->loop, &job->work, work_cb, after_work_cb);
    if (rc != 0) { /* only fails for a NULL work_cb: an invariant */
        mt_log(MT_LOG_ERROR, NULL, "ingest: uv_queue_work: %s", uv_strerror(rc));
        abort();
    }
}

/* A synchronous SCU's instance finds the commit thread idle: hand it the job unwritten (it
 * does the FINAL write itself, write_out) rather than waking a pool thread that wakes the
 * commit thread and the loop again. Only when nothing else is queued: under load the writes
 * stay on the pool, in parallel with the commit thread's flush. Loop thread. */
static bool queue_raw(mt_ingest_job_t *job)
{
    mt_ingest_t *ing = job->ing;
    bool ok = false;
    uv_mutex_lock(&ing->mu);
    if (ing->commit_idle && !ing->q_head && !ing->stop) {
        mt_buf_t t = job->out; /* empty: no worker holds it */
        job->out = job->buf;
        job->buf = t;
        job->raw = true;
        job->next = NULL;
        *ing->q_tail = job;
        ing->q_tail = &job->next;
        ing->commit_idle = false;
        uv_cond_signal(&ing->cond);
        ok = true;
    }
    uv_mutex_unlock(&ing->mu);
    return ok;
}

static void enqueue_commit(mt_ingest_job_t *job)
{
    mt_ingest_t *ing = job->ing;
    buf_give(ing, &job->buf);
    buf_give(ing, &job->out);
    job->next = NULL;
    uv_mutex_lock(&ing->mu);
    *ing->q_tail = job;
    ing->q_tail = &job->next;
    uv_cond_signal(&ing->cond);
    uv_mutex_unlock(&ing->mu);
}

static void after_work_cb(uv_work_t *w, int status)
{
    (void)status;
    mt_ingest_job_t *job = w->data;
    job->working = false;
    if (job->direct) { /* the commit thread has it (work_cb); only the buffers are ours */
        mt_ingest_t *ing = job->ing;
        buf_give(ing, &job->buf);
        buf_give(ing, &job->out);
        if (job->free_deferred) {
            job_free(job);
            maybe_stop(ing);
        }
        return;
    }
    if (job->work_status && !job->status) {
        job->status = job->work_status;
        job->comment = job->work_comment;
    }
    if (job->cancelled) {
        if (job->op == OP_DISCARD || job->tmp.name[0] == '\0') {
            mt_ingest_t *ing = job->ing;
            job_free(job);
            maybe_stop(ing);
        } else {
            start_work(job, OP_DISCARD);
        }
        return;
    }
    if (job->op == OP_FINAL) {
        if (job->status || job->quar_path[0])
            complete(job);
        else
            enqueue_commit(job);
        return;
    }
    /* a spill finished */
    if (job->commit_wanted)
        start_work(job, OP_FINAL);
    else if (!job->status && job->buf.len >= job->ing->spill_chunk)
        start_work(job, OP_SPILL);
    if (job->want_drain) {
        job->want_drain = false;
        if (job->drain_cb)
            job->drain_cb(job->drain_data);
    }
}

/* ---- loop-thread API ---- */

mt_ingest_job_t *mt_ingest_job_new(mt_ingest_t *ing, const mt_meta_t *meta)
{
    if (!ing || ing->closing)
        return NULL;
    mt_ingest_job_t *job = mt_calloc(1, sizeof *job);
    job->ing = ing;
    buf_take(ing, &job->buf);
    buf_take(ing, &job->out);
    job->tmp.fd = -1;
    job->crc = 0;
    snprintf(job->ts_uid, sizeof job->ts_uid, "%s", meta->transfer_syntax_uid);
    snprintf(job->sop_class_uid, sizeof job->sop_class_uid, "%s", meta->sop_class_uid);
    ing->n_jobs++;
    if (mt_part10_write_meta(meta, &job->buf) != 0) {
        job_free(job);
        return NULL;
    }
    return job;
}

int mt_ingest_job_append(mt_ingest_job_t *job, const uint8_t *p, size_t n,
                         mt_ingest_drain_cb drain_cb, void *drain_data)
{
    if (job->status)
        return job->status;
    int err = mt_buf_append(&job->buf, p, n);
    if (err) {
        job->status = MT_ENOMEM;
        job->comment = comment_for(MT_ENOMEM);
        return job->status;
    }
    size_t chunk = job->ing->spill_chunk;
    if (job->buf.len >= chunk && !job->working)
        start_work(job, OP_SPILL);
    if (job->working && job->buf.len >= chunk) {
        job->want_drain = true;
        job->drain_cb = drain_cb;
        job->drain_data = drain_data;
        return 1;
    }
    return 0;
}

void mt_ingest_job_commit(mt_ingest_job_t *job, mt_index_rec_t *rec, mt_ingest_done_cb cb,
                          void *data)
{
    job->handed_over = true;
    job->rec = rec;
    job->done_cb = cb;
    job->done_data = data;
    job->want_drain = false;
    if (!rec && !job->status) {
        job->status = MT_EINVAL;
        job->comment = "index error";
    }
    if (job->working)
        job->commit_wanted = true;
    else if (!job->status && queue_raw(job))
        return;
    else
        start_work(job, OP_FINAL); /* also delivers an earlier failure, asynchronously */
}

void mt_ingest_job_quarantine(mt_ingest_job_t *job, const char *sop_uid, mt_ingest_done_cb cb,
                              void *data)
{
    job->handed_over = true;
    job->done_cb = cb;
    job->done_data = data;
    job->want_drain = false;
    if (!mt_ingest_quarantine_path(sop_uid, job->quar_path, sizeof job->quar_path) &&
        !job->status) {
        job->status = MT_EMALFORMED;
        job->comment = comment_for(MT_EMALFORMED);
    }
    if (job->working)
        job->commit_wanted = true;
    else
        start_work(job, OP_FINAL);
}

bool mt_ingest_quarantine_path(const char *sop_uid, char *out, size_t outsz)
{
    if (!sop_uid || !mt_store_uid_ok(sop_uid))
        return false;
    int n = snprintf(out, outsz, MT_INGEST_QUARANTINE_DIR "/%s.dcm", sop_uid);
    return n > 0 && (size_t)n < outsz;
}

void mt_ingest_job_cancel(mt_ingest_job_t *job)
{
    if (!job)
        return;
    if (job->handed_over) { /* a caller bug: its callback is due and will come */
        mt_log(MT_LOG_ERROR, NULL, "ingest: cancel of a job already committed: ignored");
        assert(!"mt_ingest_job_cancel after commit");
        return;
    }
    job->cancelled = true;
    job->want_drain = false;
    buf_give(job->ing, &job->buf);
    if (!job->working)
        start_work(job, OP_DISCARD);
}

/* ---- open / close ---- */

int mt_ingest_open(uv_loop_t *loop, const mt_ingest_opts_t *opts, mt_ingest_t **out)
{
    *out = NULL;
    mt_ingest_t *ing = mt_calloc(1, sizeof *ing);
    ing->loop = loop;
    ing->dup = opts->dup_policy;
    ing->max_batch = opts->max_batch ? opts->max_batch : DEFAULT_MAX_BATCH;
    ing->spill_chunk = opts->spill_chunk ? opts->spill_chunk : DEFAULT_SPILL_CHUNK;
    ing->q_tail = &ing->q_head;
    ing->done_tail = &ing->done_head;
    int err = mt_store_fs_open(opts->storage_root, &ing->store);
    if (err)
        goto fail;
    int n = ing->store->ops->clean_tmp(ing->store);
    if (n > 0)
        mt_log(MT_LOG_INFO, NULL, "ingest: removed %d temp files left by an earlier run", n);
    if ((err = mt_index_sqlite_open(opts->index_path, &ing->index)))
        goto fail;
    /* the WAL lives next to the index: sync its file system too when it is another one */
    if ((err = mt_store_fs_add_sync_path(ing->store, opts->index_path)))
        goto fail;
    if ((err = reconcile_unverified(ing->store, ing->index)) ||
        (err = reconcile_dirs(ing->store, ing->index)))
        goto fail;
    if ((err = uv_mutex_init(&ing->mu)))
        goto fail;
    if ((err = uv_cond_init(&ing->cond))) {
        uv_mutex_destroy(&ing->mu);
        goto fail;
    }
    if ((err = uv_async_init(loop, &ing->async, on_async)))
        goto fail_sync;
    ing->async.data = ing;
    if ((err = uv_thread_create(&ing->thread, commit_thread, ing))) {
        ing->index->ops->close(ing->index);
        ing->store->ops->close(ing->store);
        uv_cond_destroy(&ing->cond);
        uv_mutex_destroy(&ing->mu);
        uv_close((uv_handle_t *)&ing->async, on_async_closed); /* frees ing on the loop */
        return err;
    }
    *out = ing;
    return 0;
fail_sync:
    uv_cond_destroy(&ing->cond);
    uv_mutex_destroy(&ing->mu);
fail:
    if (ing->index)
        ing->index->ops->close(ing->index);
    if (ing->store)
        ing->store->ops->close(ing->store);
    mt_free(ing);
    return err;
}

void mt_ingest_close(mt_ingest_t *ing, void (*cb)(void *), void *data)
{
    if (!ing || ing->closing)
        return;
    ing->closing = true;
    ing->close_cb = cb;
    ing->close_data = data;
    maybe_stop(ing);
}
