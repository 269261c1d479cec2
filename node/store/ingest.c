/*
 * ingest.c - durable ingest with group commit (ingest.h). The protocol and the crash argument
 * are in docs/internals/durability.md; this comment is the map of the code.
 *
 * Threads and who owns what:
 *   loop thread     the API (job_new / append / commit / cancel / close) and every callback
 *   libuv pool      job work: SPILL (write a full buffer to the job's temp file), FINAL (write
 *                   the rest, close the temp file), DISCARD (close + unlink the temp file)
 *   commit thread   one per ingest: takes every queued job (up to max_batch) as one batch
 *
 * Life of a job:
 *
 *   job_new ──append──> buf  ──(buf >= spill_chunk)──> SPILL work: out -> temp file
 *      │                 ▲  (double buffer: buf fills while out is written; append returns 1
 *      │                 │   "pause" only while a spill is running AND buf is full again;
 *      │                 │   drain_cb fires when the spill finishes)
 *      └──commit──> FINAL work (rest of buf -> temp, close) ──> commit queue (mutex + cond)
 *                                                               │
 *   commit thread, per batch:                                   ▼
 *     1. path of each job from its UIDs (store layout)
 *     2. BEGIN; mark rows of earlier (already synced) batches verified=1
 *     3. per job: duplicate check; publish (rename temp -> path) unless keep-first/reject;
 *        put() the index row with verified=0
 *     4. COMMIT (WAL, synchronous=NORMAL: no fsync here)
 *     5. store sync(): ONE syncfs(2) = file data + renames + WAL of the whole batch
 *     6. remove files replaced under another path; post completions (mutex list +
 *        uv_async_send) -> done_cb on the loop with 0 / MT_EDUPLICATE / failure + comment
 *   When idle with unverified rows, the thread marks them verified after IDLE_VERIFY_MS.
 *
 * A failure of one job (disk full, bad UID, cannot write) fails that job only, its temp file
 * removed; an index error fails the batch (transaction rolled back, new files removed).
 * Start-up (mt_ingest_open): delete every temp file, then check every row still verified=0:
 * the file must exist and parse completely with the same SOP Instance UID, else the row and
 * the file are removed.
 *
 * Close: refuse new jobs, wait for live jobs to finish (commit or cancel), then stop and join
 * the commit thread, close index and store, and call the close callback.
 */
#include "ingest.h"

#include <stdio.h>
#include <string.h>

#include "../index/rebuild.h"
#include "../util/alloc.h"
#include "../util/buf.h"
#include "../util/err.h"
#include "../util/log.h"
#include "store.h"

#define DEFAULT_MAX_BATCH 256
#define DEFAULT_SPILL_CHUNK (1u << 20)
#define IDLE_VERIFY_MS 100
/* bytes a job may hold beyond the pause point: one read of the caller (PDU + socket read) */
#define BUF_SLACK (64u << 20)

#define TAG_SOP_INSTANCE_UID MT_TAG(0x0008, 0x0018)
#define TAG_STUDY_INSTANCE_UID MT_TAG(0x0020, 0x000D)
#define TAG_SERIES_INSTANCE_UID MT_TAG(0x0020, 0x000E)

typedef enum { OP_SPILL, OP_FINAL, OP_DISCARD } job_op_t;

struct mt_ingest_job {
    mt_ingest_t *ing;
    mt_ingest_job_t *next; /* commit queue / completion list */
    /* loop thread */
    mt_buf_t buf;          /* bytes appended, not yet handed to a worker */
    bool working;          /* a pool worker owns out, tmp, work_status */
    bool commit_wanted, cancelled, want_drain;
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
    mt_index_rec_t *rec;
    char ts_uid[65], sop_class_uid[65];
    char rel_path[MT_STORE_PATH_MAX];
    char old_path[MT_STORE_PATH_MAX];
    bool published_new; /* commit thread: this batch created rel_path */
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
    bool stop, thread_done;

    uv_async_t async;
    /* loop thread */
    size_t n_jobs;
    bool closing, stop_sent;
    void (*close_cb)(void *);
    void *close_data;

    /* commit thread */
    bool unverified;
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

static void job_free(mt_ingest_job_t *job)
{
    mt_ingest_t *ing = job->ing;
    mt_buf_dispose(&job->buf);
    mt_buf_dispose(&job->out);
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
    job_free(job);
    maybe_stop(ing);
}

static void on_async_closed(uv_handle_t *h)
{
    mt_ingest_t *ing = h->data;
    void (*cb)(void *) = ing->close_cb;
    void *data = ing->close_data;
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
    while (list) {
        mt_ingest_job_t *next = list->next;
        complete(list);
        list = next;
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

/* ---- the commit thread ---- */

/* Fail one job inside a batch: its temp file goes, nothing is indexed. */
static void batch_fail(mt_ingest_t *ing, mt_ingest_job_t *job, int err, const char *comment)
{
    ing->store->ops->tmp_discard(ing->store, &job->tmp);
    job->status = err;
    job->comment = comment ? comment : comment_for(err);
}

static void commit_batch(mt_ingest_t *ing, mt_ingest_job_t *batch)
{
    mt_store_t *st = ing->store;
    mt_index_t *ix = ing->index;
    size_t n_ok = 0;

    for (mt_ingest_job_t *j = batch; j; j = j->next) {
        j->published_new = false;
        j->old_path[0] = '\0';
        if (j->status)
            continue;
        int err = mt_store_path(mt_index_rec_get(j->rec, TAG_STUDY_INSTANCE_UID),
                                mt_index_rec_get(j->rec, TAG_SERIES_INSTANCE_UID),
                                mt_index_rec_get(j->rec, TAG_SOP_INSTANCE_UID), j->rel_path,
                                sizeof j->rel_path);
        if (err) {
            batch_fail(ing, j, err, NULL);
            continue;
        }
        mt_index_rec_set_file(j->rec, j->rel_path, j->tmp.size, j->ts_uid, j->sop_class_uid);
        n_ok++;
    }
    if (!n_ok && !ing->unverified)
        goto done;

    int err = ix->ops->begin(ix);
    if (!err && ing->unverified)
        err = ix->ops->mark_verified(ix);
    bool inserted = false;
    for (mt_ingest_job_t *j = batch; j && !err; j = j->next) {
        if (j->status)
            continue;
        const char *sop = mt_index_rec_get(j->rec, TAG_SOP_INSTANCE_UID);
        bool exists = false;
        if ((err = ix->ops->exists(ix, sop, &exists)))
            break;
        bool keep_old = exists && ing->dup != MT_DUP_OVERWRITE;
        if (!keep_old) {
            int perr = st->ops->publish(st, &j->tmp, j->rel_path);
            if (perr) {
                batch_fail(ing, j, perr, NULL);
                continue;
            }
            j->published_new = !exists;
        }
        mt_index_put_result_t res;
        if ((err = ix->ops->put(ix, j->rec, ing->dup, &res, j->old_path, sizeof j->old_path)))
            break;
        switch (res) {
        case MT_INDEX_INSERTED:
        case MT_INDEX_REPLACED:
            inserted = true;
            break;
        case MT_INDEX_KEPT_EXISTING:
            st->ops->tmp_discard(st, &j->tmp);
            break;
        case MT_INDEX_REJECTED_DUPLICATE:
            batch_fail(ing, j, MT_EDUPLICATE, "duplicate SOP instance");
            break;
        }
    }
    if (!err)
        err = ix->ops->commit(ix);
    if (err) {
        ix->ops->rollback(ix);
        mt_log(MT_LOG_ERROR, NULL, "ingest: index transaction failed: %s", mt_strerror(err));
        for (mt_ingest_job_t *j = batch; j; j = j->next) {
            if (j->status)
                continue;
            if (j->published_new)
                st->ops->remove(st, j->rel_path);
            batch_fail(ing, j, err == MT_ENOSPC ? MT_ENOSPC : MT_EDB,
                       err == MT_ENOSPC ? NULL : "index error");
        }
        goto done;
    }
    ing->unverified = inserted;

    /* one flush for the whole batch: file data, renames and the WAL */
    err = st->ops->sync(st);
    if (err) {
        mt_log(MT_LOG_ERROR, NULL, "ingest: sync failed: %s", mt_strerror(err));
        for (mt_ingest_job_t *j = batch; j; j = j->next)
            if (!j->status) {
                j->status = MT_EIO;
                j->comment = "cannot sync storage";
            }
        goto done;
    }
    for (mt_ingest_job_t *j = batch; j; j = j->next)
        if (!j->status && j->old_path[0] && st->ops->remove(st, j->old_path) != 0)
            mt_log(MT_LOG_WARN, NULL, "ingest: cannot remove replaced file");
done:;
    mt_ingest_job_t *last = batch;
    while (last->next)
        last = last->next;
    post_done(ing, batch, last);
}

static void mark_verified_idle(mt_ingest_t *ing)
{
    mt_index_t *ix = ing->index;
    int err = ix->ops->begin(ix);
    if (!err)
        err = ix->ops->mark_verified(ix);
    if (!err)
        err = ix->ops->commit(ix);
    if (err)
        ix->ops->rollback(ix); /* harmless: start-up re-checks unverified rows */
    ing->unverified = false;
}

static void commit_thread(void *arg)
{
    mt_ingest_t *ing = arg;
    uv_mutex_lock(&ing->mu);
    for (;;) {
        if (!ing->q_head) {
            if (ing->stop)
                break;
            if (ing->unverified) {
                int rc = uv_cond_timedwait(&ing->cond, &ing->mu,
                                           (uint64_t)IDLE_VERIFY_MS * 1000000u);
                if (rc == UV_ETIMEDOUT && !ing->q_head) {
                    uv_mutex_unlock(&ing->mu);
                    mark_verified_idle(ing);
                    uv_mutex_lock(&ing->mu);
                }
            } else {
                uv_cond_wait(&ing->cond, &ing->mu);
            }
            continue;
        }
        mt_ingest_job_t *batch = ing->q_head, *last = batch;
        size_t n = 1;
        while (last->next && n < ing->max_batch) {
            last = last->next;
            n++;
        }
        ing->q_head = last->next;
        if (!ing->q_head)
            ing->q_tail = &ing->q_head;
        last->next = NULL;
        uv_mutex_unlock(&ing->mu);
        commit_batch(ing, batch);
        uv_mutex_lock(&ing->mu);
    }
    if (ing->unverified) {
        uv_mutex_unlock(&ing->mu);
        mark_verified_idle(ing);
        uv_mutex_lock(&ing->mu);
    }
    ing->thread_done = true;
    uv_mutex_unlock(&ing->mu);
    uv_async_send(&ing->async);
}

/* ---- job work on the libuv pool ---- */

static void work_cb(uv_work_t *w)
{
    mt_ingest_job_t *job = w->data;
    mt_store_t *st = job->ing->store;
    int err = 0;
    if (job->op == OP_DISCARD || job->work_status) {
        st->ops->tmp_discard(st, &job->tmp);
        return;
    }
    if (job->tmp.fd < 0 && !job->tmp.name[0])
        err = st->ops->tmp_create(st, &job->tmp);
    if (!err && job->out.len)
        err = st->ops->tmp_write(st, &job->tmp, job->out.data, job->out.len);
    mt_buf_reset(&job->out);
    if (!err && job->op == OP_FINAL)
        err = st->ops->tmp_close(st, &job->tmp);
    if (err) {
        st->ops->tmp_discard(st, &job->tmp);
        job->work_status = err;
        job->work_comment = comment_for(err);
    }
}

static void after_work_cb(uv_work_t *w, int status);

static void start_work(mt_ingest_job_t *job, job_op_t op)
{
    mt_buf_t t = job->out; /* empty: no worker holds it */
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

static void enqueue_commit(mt_ingest_job_t *job)
{
    mt_ingest_t *ing = job->ing;
    mt_buf_dispose(&job->buf);
    mt_buf_dispose(&job->out);
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
        if (job->status)
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
    mt_buf_init(&job->buf, ing->spill_chunk + BUF_SLACK);
    mt_buf_init(&job->out, ing->spill_chunk + BUF_SLACK);
    job->tmp.fd = -1;
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
    else
        start_work(job, OP_FINAL); /* also delivers an earlier failure, asynchronously */
}

void mt_ingest_job_cancel(mt_ingest_job_t *job)
{
    if (!job)
        return;
    job->cancelled = true;
    job->want_drain = false;
    mt_buf_dispose(&job->buf);
    if (!job->working)
        start_work(job, OP_DISCARD);
}

/* ---- open / close ---- */

typedef struct check_item {
    struct check_item *next;
    char *sop;
    char *path;
} check_item_t;

static int collect_unverified(void *u, const char *sop, const char *rel_path, uint64_t size)
{
    (void)size;
    check_item_t **list = u;
    check_item_t *c = mt_malloc(sizeof *c);
    c->sop = mt_strdup(sop);
    c->path = mt_strdup(rel_path);
    c->next = *list;
    *list = c;
    return 0;
}

/* Start-up: every row of a batch whose sync may not have completed is checked against its
 * file. Kept: the file parses completely and carries the same SOP Instance UID (its size is
 * recorded). Removed (row and file): anything else. */
static int check_unverified(mt_store_t *st, mt_index_t *ix)
{
    check_item_t *list = NULL;
    int err = ix->ops->unverified(ix, collect_unverified, &list);
    if (err || !list)
        return err;
    size_t kept = 0, removed = 0;
    err = ix->ops->begin(ix);
    for (check_item_t *c = list; c && !err; c = c->next) {
        char abs[1024];
        mt_meta_t meta;
        uint64_t size = 0;
        int rc = st->ops->abs_path(st, c->path, abs, sizeof abs);
        if (rc == 0)
            rc = mt_index_read_file(abs, &meta, NULL, &size);
        if (rc == 0 && strcmp(meta.sop_instance_uid, c->sop) != 0)
            rc = MT_EMALFORMED;
        if (rc == 0) {
            err = ix->ops->verify(ix, c->sop, size);
            kept++;
        } else {
            err = ix->ops->remove(ix, c->sop);
            if (rc != MT_ENOENT)
                st->ops->remove(st, c->path);
            removed++;
        }
    }
    if (!err)
        err = ix->ops->commit(ix);
    else
        ix->ops->rollback(ix);
    if (!err)
        err = st->ops->sync(st);
    while (list) {
        check_item_t *n = list->next;
        mt_free(list->sop);
        mt_free(list->path);
        mt_free(list);
        list = n;
    }
    mt_log(MT_LOG_INFO, NULL, "ingest: start-up check of unverified instances: %zu kept, %zu removed",
           kept, removed);
    return err;
}

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
    if ((err = check_unverified(ing->store, ing->index)))
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
        uv_close((uv_handle_t *)&ing->async, NULL); /* ing leaks until the loop runs: rare */
        ing->index->ops->close(ing->index);
        ing->store->ops->close(ing->store);
        uv_cond_destroy(&ing->cond);
        uv_mutex_destroy(&ing->mu);
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
