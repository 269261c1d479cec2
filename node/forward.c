/*
 * forward.c - the forwarder: outbound queue (index table forward_queue) -> C-STORE SCU.
 *
 * Per destination (destinations: in the config) up to `associations` workers. Each worker
 * takes a batch of due queue rows (at most BATCH) and sends the stored files with the
 * sub-operation engine (node/svc/retrieve.c: the file as stored, streamed in chunks; up to the
 * window the destination accepted outstanding at once, 1 when it accepts none, e.g. dcmtk's
 * storescp) over its association (node/scu.c), proposing an asynchronous operations window of
 * forward.max_async_operations (PS3.7 D.3.3.3). Then the outcomes are written back in one
 * transaction:
 *
 *   success (0000, or a Bxxx warning)  the row is deleted: only now is the instance delivered
 *   0111 duplicate SOP instance        delivered too: the destination holds that UID (usually
 *                                      from a send of ours whose response was lost)
 *   failure (A7xx, 0110, 0213, not     attempts+1, next_at = now + backoff, last_error; dead
 *     sent, no response before the     (state 1) after forward.max_attempts or forward.max_age
 *     association ended)
 *   refused (any other status: A9xx,   dead at once (dead_now), last_error: the same bytes
 *     Cxxx, 0122, 0124 ...)            would be refused again (as STOW-RS FailureReasons)
 *   no association (DICOMweb: no       next_at, last_error, no attempt counted: the instance
 *     connection): not reached         was not tried (the destination's own backoff applies);
 *                                      dead only after forward.max_age, so a destination down
 *                                      for hours gets everything once it is back
 *   not sent because the association   left as it is (due again, no attempt counted): only
 *     ended while others were pending  what was outstanding counts as tried
 *   row of an instance gone from the index: deleted (nothing to send)
 * A row whose outcome waits for that transaction is busy (id_busy), so no scan that ran
 * before it can hand the row out again: an acknowledged instance is never sent again as a new
 * entry, and an unacknowledged one is never dropped. The outcomes of finished batches are held
 * (f->held) and written together HOLD_MS after the first of them (at the next kick or poll), at
 * HOLD_MAX, or at stop: every write transaction of ours is one that the ingest's commit may
 * wait for, and that makes the ingest's upsert cache (index_sqlite.c) start again, so one per
 * batch of a stream cost the relaying node's ingest time on the path its SCU waits for
 * (bench/README.md, "the relay's CPU per instance"). A scan skips the held rows without
 * counting them (dbjob skip); a crash before the write sends them again after restart, the
 * same SOP Instance UIDs, as for a crash between a response and its delete.
 *
 * Backoff: retry_initial * 2^attempts, at most retry_max, plus 0-25% random jitter. A
 * destination whose association could not be opened is not tried again before its own backoff
 * (kicks are ignored meanwhile; the poll timer looks again).
 *
 * Order (forward.order): rows are taken oldest first (queue id = arrival order), and a series
 * (series, the default) or a study (study) with rows in flight on one worker is not given to
 * another, so its instances go out in arrival order over one association at a time (with a
 * window > 1 several are outstanding, still sent in that order; a Storage SCP may complete
 * them in any order). Different series (studies) go in parallel: a scan skips the groups in
 * flight and takes at most BATCH rows of a group, so a long series does not hide the ones
 * queued behind it. A backlog of a single series therefore uses one association (its window
 * is the parallelism); `none` gives up ordering and spreads every instance over all workers.
 * DICOMweb destinations always go a study at a time. A group with a row not delivered whose
 * outcome is still held is in flight too (snapshot_busy), and rows that found no association
 * are due again at once (the destination's down_until decides when it is tried), so a
 * destination that was down gets each series from its oldest row; a row refused with a
 * retryable status backs off on its own, and its series goes on without it.
 *
 * DICOMweb destinations (stow_url, node/forward_web.c): the same workers, each with one
 * keep-alive HTTP connection instead of an association; a batch goes out as STOW-RS requests
 * and each instance's outcome is read from the response body. A permanent refusal (HTTP 4xx,
 * FailureReason other than out-of-resources / processing failure: node/http/stow_client.h) is
 * dead-lettered at once (dead_now); everything else backs off as for C-STORE.
 *
 * Exactly once, as far as the destination can tell: a row disappears only after the
 * destination's success response, so a crash (kill -9) between the response and the delete
 * re-sends that instance after restart: the same SOP Instance UID again, which a Storage SCP
 * treats as a duplicate (mitral: overwrite/keep-first, both idempotent). Nothing is lost: a
 * row is written in the transaction that indexes the instance.
 *
 * Scans: KICK_DELAY_MS after a kick (the store path committed an instance with destinations)
 * or after a worker finished a short batch, at once after a full batch (a backlog), and every
 * POLL_MS (retries that came due). The delay turns a stream of instances arriving one by one
 * into batches of several: a scan, a batch and its outcome transaction per instance cost a
 * relaying node as much CPU as its own ingest, and each outcome transaction is a write that
 * the ingest's commit may have to wait for (SQLite's busy handler sleeps >= 1 ms); measured in
 * bench/README.md ("Where the relay's time goes"). Index work runs on the libuv pool,
 * serialised on the forwarder's own SQLite connection (WAL: its scans never block the ingest;
 * its outcome transactions are writes, kept few by the delay above).
 * A kick scan reads only the rows after the last one the previous scan settled (scan_after,
 * queue_list with after_id: a rowid range): the rows before it were taken, are in flight, or have
 * their outcome held, and the rows of the stream that follows have higher ids (index_sqlite.c
 * queue_row: above every id given before, db/008_queue_ids.sql;
 * committed in id order). Without that bound every scan of a stream read the held outcomes of
 * the last HOLD_MS and the rows in flight (~76 rows at ~600 instances/s) to take ~6. A row a
 * scan reads but leaves pending (its group in flight or full, or not handed to a worker)
 * keeps or puts the bound before it; the poll scan (POLL_MS) reads every row, which is how a
 * retry that came due, or an instance verified after a later one, is found.
 * mt_forward_stop aborts every busy association, also those still connecting, and releases the
 * idle ones (A-ABORT after STOP_GRACE_MS without the A-RELEASE-RP).
 *
 * Associations kept open: a worker keeps its association after a batch; the next batch goes
 * over it when the association's contexts were proposed for every (SOP class, stored syntax)
 * of the batch (covers), else it is released and a new one opened proposing the batch's pairs
 * plus the previous association's (open_assoc: mt_retrieve_proposals, restricted to the
 * destination's transfer_syntaxes). A worker with an open association is preferred for a new
 * group, so a stream fed while it drains stays on one association. An association with nothing
 * to send for forward.idle_release is released (on_idle); one that the destination ends while
 * idle is dropped (nothing was outstanding), one that ends during a batch fails that batch's
 * unanswered rows as a lost link (mt_retrieve_link_lost), as before.
 */
#include "forward.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index/index.h"
#include "forward_web.h"
#include "scu.h"
#include "svc/retrieve.h"
#include "util/alloc.h"
#include "util/err.h"
#include "util/fnv.h"
#include "util/log.h"

#define BATCH 64       /* rows per batch (and at most per group in one scan) */
#define SCAN_WALK 4096 /* queue rows a scan reads at most */
#define SCAN_SLOTS 16  /* a scan's group table to start with (a power of two; it grows) */
#define POLL_MS 500
#define KICK_DELAY_MS 10 /* kicks and short batches coalesced into one scan (file comment) */
#define HOLD_MS 250      /* outcomes of finished batches written together (file comment) */
#define HOLD_MAX 512     /* ... or once this many wait */
#define MAX_WORKERS 64
#define STOP_GRACE_MS 2000 /* stopping: an idle association's A-RELEASE-RP awaited at most */

typedef struct mt_forward fwd_t;
typedef struct dest dest_t;

typedef struct row {
    int64_t id;
    char sop[65], study[65], sop_class[65], ts[65];
    char group[65]; /* the ordering unit: series or study UID (forward.order) */
    char *path;     /* absolute; NULL: the instance is no longer indexed */
    uint32_t attempts;
    int64_t queued_at;
} row_t;

typedef struct outcome {
    int64_t id;
    bool ok, drop; /* drop: delete without counting (instance gone) */
    bool count;    /* a failure that counts as an attempt */
    bool dead_now; /* a permanent refusal (STOW-RS 4xx, forward_web.c): dead-letter at once */
    bool unreached; /* no association / connection: not an attempt, dead by max_age only */
    const struct dest *d; /* for a scan of d: the group of a row not delivered stays blocked */
    char group[65];       /* ... while this outcome waits to be written (order, file comment) */
    uint32_t attempts;
    int64_t queued_at;
    char why[160];
} outcome_t;

/* A (SOP class, stored transfer syntax) an association's contexts were proposed for. */
typedef struct pair {
    char sop_class[65], ts[65];
} pair_t;

typedef struct worker {
    dest_t *d;
    bool busy, opened, retrieve_done;
    mt_scu_t *scu;    /* the association (connecting, open, or ending), kept between batches */
    bool ready;       /* scu is associated (on_scu_open(0) came) */
    bool reopen;      /* busy: waiting for scu to end, then a new association for the batch */
    uv_timer_t idle;  /* releases an association left idle; the stop grace, when stopping */
    char open_why[128];  /* why the last association could not be opened ("" = it was) */
    pair_t pairs[BATCH]; /* what scu's contexts were proposed for */
    size_t n_pairs;
    mt_retrieve_t *r;
    mt_fwd_web_t *web;     /* DICOMweb destinations: the worker's keep-alive connection */
    size_t web_row[BATCH]; /* web item index -> rows[] index */
    row_t rows[BATCH];
    size_t n_rows;
    bool answered[BATCH]; /* outs[i] holds the outcome of rows[i] */
    outcome_t outs[BATCH];
    mt_log_ctx_t log;
} worker_t;

struct dest {
    fwd_t *f;
    mt_conf_destination_t cfg; /* copy; cfg.ts points into ts_store */
    char *ts_store[MT_CONF_MAX_LIST];
    mt_fwd_web_dest_t *web; /* DICOMweb (STOW-RS) destination, else NULL */
    unsigned n_workers;
    worker_t w[MAX_WORKERS];
    bool scan_queued, rescan;
    /* kick scans read rows with id > scan_after (the file comment, "Scans"); want_full: the
     * next scan reads every row (the poll); lowered: the lowest bound asked for (lower())
     * while a scan was running, which its result must not raise */
    int64_t scan_after, lowered;
    bool want_full;
    uint64_t down_until; /* uv_now: no new association before */
    unsigned open_failures;
};

/* A unit of index work, run one at a time on the pool. */
typedef struct dbjob {
    uv_work_t w;
    fwd_t *f;
    dest_t *d; /* SCAN */
    bool scan;
    int64_t now_ms;
    row_t *rows; /* SCAN result */
    size_t n_rows;
    char (*busy)[65]; /* SCAN: the groups on busy workers when it started (loop's snapshot) */
    size_t n_busy;
    unsigned n_idle;
    outcome_t *out; /* FLUSH */
    size_t n_out, cap_out;
    int64_t *skip; /* SCAN: ids held (f->held) or on a busy worker, sorted: not taken, not counted */
    size_t n_skip;
    int64_t after;   /* SCAN: rows with id > after are read */
    int64_t reached; /* SCAN: what the next kick scan may start after (scan_work) */
    int err;
    struct dbjob *next;
} dbjob_t;

struct mt_forward {
    uv_loop_t *loop;
    mt_index_t *ix;
    char *root;
    char calling_ae[17];
    dest_t *dests;
    size_t n_dests;
    uint32_t max_attempts, max_age_ms, retry_initial_ms, retry_max_ms, connect_timeout_ms;
    uint32_t response_timeout_ms;
    uint16_t max_async_ops; /* window proposed to each destination (forward.max_async_operations) */
    uint32_t idle_release_ms; /* an idle association is released after this (forward.idle_release) */
    enum { ORDER_SERIES, ORDER_STUDY, ORDER_NONE } order; /* forward.order */
    uv_timer_t poll;
    uv_timer_t kick; /* the coalesced scan after kicks and short batches (KICK_DELAY_MS) */
    dbjob_t *db_head, *db_tail;
    dbjob_t *db_current; /* on the pool */
    dbjob_t *held;       /* FLUSH being filled: outcomes not yet pushed (HOLD_MS) */
    uint64_t held_since; /* uv_now of its first outcome */
    bool db_running;
    bool stopping;
    unsigned n_active; /* busy workers */
    unsigned n_scu;    /* associations alive (connecting, open or ending) */
    unsigned n_handles; /* open handles (poll timer, workers' idle timers), closing at the end */
    unsigned n_web_open; /* DICOMweb worker connections not yet freed (stop) */
    bool web_freeing;
    void (*stop_cb)(void *);
    void *stop_data;
    mt_log_ctx_t log;
};

static void db_next(fwd_t *f);
static void scan(dest_t *d);
static void maybe_stopped(fwd_t *f);
static void assign(dest_t *d, row_t *rows, size_t n);

static int64_t wall_ms(void)
{
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ---- index work ---- */

/* The groups a scan has met: open addressing on the UID, a power-of-two number of slots. */
typedef struct scan_group {
    char uid[65];
    bool used, busy; /* busy: on a worker when the scan was queued (its rows are skipped) */
    unsigned n;      /* rows taken */
} scan_group_t;

typedef struct scan_ctx {
    dbjob_t *j;
    const char *root;
    scan_group_t *g;
    size_t mask;
    size_t n_used; /* slots in use: the table doubles before it is half full */
    size_t cap;    /* rows wanted: BATCH per idle worker */
    int64_t last;  /* id of the last row read */
    int64_t left;  /* id of the first row read and left pending (its group busy or full); 0 none */
} scan_ctx_t;

static scan_group_t *probe(scan_group_t *g, size_t mask, const char *uid)
{
    uint32_t h = mt_fnv1a32_str(uid);
    for (size_t i = h & mask;; i = (i + 1) & mask)
        if (!g[i].used || !strcmp(g[i].uid, uid))
            return &g[i];
}

/* The slot of a group, claimed (used) if new. The table starts small and doubles: a scan of
 * a streaming queue meets one or two groups, and zeroing a table sized for SCAN_WALK groups
 * (over 1 MB) on every scan was 8% of a relaying node's CPU (perf, bench/README.md). */
static scan_group_t *group_slot(scan_ctx_t *c, const char *uid)
{
    scan_group_t *g = probe(c->g, c->mask, uid);
    if (g->used)
        return g;
    if (2 * (c->n_used + 1) > c->mask + 1) {
        size_t mask = 2 * (c->mask + 1) - 1;
        scan_group_t *t = mt_calloc(mask + 1, sizeof *t);
        for (size_t i = 0; i <= c->mask; i++)
            if (c->g[i].used)
                *probe(t, mask, c->g[i].uid) = c->g[i];
        mt_free(c->g);
        c->g = t;
        c->mask = mask;
        g = probe(t, mask, uid);
    }
    g->used = true;
    snprintf(g->uid, sizeof g->uid, "%s", uid);
    c->n_used++;
    return g;
}

/* The ordering unit of a row. DICOMweb destinations: a study at a time (a STOW-RS origin
 * server may scope a study to the project of the URL only once the request that created it
 * has completed). */
static const char *group_of(const dbjob_t *j, const mt_index_queue_entry_t *e)
{
    const fwd_t *f = j->f;
    if (j->d->web || f->order == ORDER_STUDY || !e->series_uid)
        return e->study_uid;
    return f->order == ORDER_NONE ? e->sop_instance_uid : e->series_uid;
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Take a due row unless its group is busy or has BATCH rows already; stop (1) once there are
 * enough rows for every idle worker. */
static int scan_row(void *u, const mt_index_queue_entry_t *e)
{
    scan_ctx_t *c = u;
    dbjob_t *j = c->j;
    c->last = e->id;
    if (j->n_skip && bsearch(&e->id, j->skip, j->n_skip, sizeof *j->skip, cmp_id))
        return 0; /* in flight, or sent and its outcome held: neither taken nor counted */
    const char *group = group_of(j, e);
    scan_group_t *g = group_slot(c, group);
    if (g->busy || g->n >= BATCH) {
        if (!c->left)
            c->left = e->id; /* still to send: the next kick scan starts before it */
        return 0;
    }
    g->n++;
    row_t *r = &j->rows[j->n_rows++];
    memset(r, 0, sizeof *r);
    r->id = e->id;
    snprintf(r->sop, sizeof r->sop, "%s", e->sop_instance_uid);
    snprintf(r->study, sizeof r->study, "%s", e->study_uid);
    snprintf(r->group, sizeof r->group, "%s", group);
    r->attempts = e->attempts;
    r->queued_at = e->queued_at_ms;
    if (e->rel_path && e->sop_class_uid && e->ts_uid) {
        snprintf(r->sop_class, sizeof r->sop_class, "%s", e->sop_class_uid);
        snprintf(r->ts, sizeof r->ts, "%s", e->ts_uid);
        size_t n = strlen(c->root) + 1 + strlen(e->rel_path) + 1;
        r->path = mt_malloc(n);
        snprintf(r->path, n, "%s/%s", c->root, e->rel_path);
    }
    return j->n_rows == c->cap ? 1 : 0;
}

/* The scan of a destination: the oldest due rows, skipping the groups in flight (so that
 * order within a group holds) and taking at most BATCH rows of a group, so that a backlog of
 * one long series does not hide the series behind it from the idle workers; it reads at most
 * SCAN_WALK rows. */
static void scan_work(dbjob_t *j)
{
    fwd_t *f = j->f;
    scan_ctx_t c = {j, f->root, NULL, 0, 0, (size_t)j->n_idle * BATCH, j->after, 0};
    j->reached = j->after;
    if (c.cap == 0)
        return;
    c.g = mt_calloc(SCAN_SLOTS, sizeof *c.g);
    c.mask = SCAN_SLOTS - 1;
    for (size_t i = 0; i < j->n_busy; i++)
        group_slot(&c, j->busy[i])->busy = true;
    j->rows = mt_malloc(c.cap * sizeof *j->rows); /* scan_row clears each row it fills */
    int rc = f->ix->ops->queue_list(f->ix, j->d->cfg.name, 0, j->now_ms, j->after,
                                          SCAN_WALK, scan_row, &c);
    j->err = rc == 1 ? 0 : rc;
    /* every row read up to here is taken, in flight, held, or (c.left) left pending */
    j->reached = c.left ? c.left - 1 : c.last;
    mt_free(c.g);
}

static int64_t backoff_ms(const fwd_t *f, uint32_t attempts)
{
    uint64_t b = f->retry_initial_ms;
    for (uint32_t i = 0; i < attempts && b < f->retry_max_ms; i++)
        b *= 2;
    if (b > f->retry_max_ms)
        b = f->retry_max_ms;
    return (int64_t)(b + (uint64_t)((double)b * 0.25 * ((double)rand() / RAND_MAX)));
}

static void db_work(uv_work_t *w)
{
    dbjob_t *j = w->data;
    fwd_t *f = j->f;
    mt_index_t *ix = f->ix;
    if (j->scan) {
        scan_work(j);
        return;
    }
    if ((j->err = ix->ops->begin(ix)) != 0)
        return;
    for (size_t i = 0; i < j->n_out && !j->err; i++) {
        outcome_t *o = &j->out[i];
        if (o->ok || o->drop) {
            int rc = ix->ops->queue_done(ix, o->id);
            j->err = rc == MT_ENOENT ? 0 : rc;
        } else if (o->count) {
            bool dead = o->dead_now || (!o->unreached && o->attempts + 1 >= f->max_attempts) ||
                        j->now_ms - o->queued_at > (int64_t)f->max_age_ms;
            /* not reached: due again at once, the destination's backoff (down_until) decides
             * when it is tried, and then its oldest rows go first (order) */
            int64_t next = o->unreached ? j->now_ms : j->now_ms + backoff_ms(f, o->attempts);
            j->err = ix->ops->queue_failed(ix, o->id, next, dead, !o->unreached, o->why);
        }
    }
    if (j->err)
        ix->ops->rollback(ix);
    else
        j->err = ix->ops->commit(ix);
}

static void db_after(uv_work_t *w, int status)
{
    dbjob_t *j = w->data;
    fwd_t *f = j->f;
    (void)status;
    f->db_running = false;
    f->db_current = NULL;
    if (j->err)
        mt_log(MT_LOG_ERROR, &f->log, "forward: index: %s", mt_strerror(j->err));
    if (!j->scan && j->err) /* outcomes not written: their rows are due as they were */
        for (size_t i = 0; i < f->n_dests; i++)
            f->dests[i].want_full = true;
    if (j->scan) {
        dest_t *d = j->d;
        d->scan_queued = false;
        if (!j->err)
            d->scan_after = j->reached < d->lowered ? j->reached : d->lowered;
        if (!f->stopping && !j->err) {
            assign(d, j->rows, j->n_rows);
        } else {
            for (size_t i = 0; i < j->n_rows; i++)
                mt_free(j->rows[i].path);
        }
        mt_free(j->rows);
        mt_free(j->busy);
        mt_free(j->skip);
        if (d->rescan && !f->stopping) {
            d->rescan = false;
            scan(d);
        }
    }
    mt_free(j->out);
    mt_free(j);
    db_next(f);
    maybe_stopped(f);
}

/* For a scan about to run: the groups in flight on d's workers, and how many are idle. */
static void snapshot_busy(dbjob_t *j)
{
    dest_t *d = j->d;
    const dbjob_t *h = d->f->held;
    size_t n_held = h ? h->n_out : 0;
    size_t n = 0;
    for (unsigned i = 0; i < d->n_workers; i++)
        n += d->w[i].busy ? d->w[i].n_rows : 0;
    j->busy = mt_calloc(n + n_held ? n + n_held : 1, sizeof *j->busy);
    j->n_busy = 0;
    j->n_idle = 0;
    for (unsigned i = 0; i < d->n_workers; i++) {
        const worker_t *wk = &d->w[i];
        if (!wk->busy)
            j->n_idle++;
        for (size_t k = 0; wk->busy && k < wk->n_rows; k++)
            memcpy(j->busy[j->n_busy++], wk->rows[k].group, sizeof j->busy[0]);
    }
    /* a row not delivered whose outcome is held: its younger rows wait for it (order) */
    for (size_t i = 0; i < n_held; i++)
        if (h->out[i].d == d && !h->out[i].ok && !h->out[i].drop && !h->out[i].dead_now)
            memcpy(j->busy[j->n_busy++], h->out[i].group, sizeof j->busy[0]);
    j->skip = n + n_held ? mt_malloc((n + n_held) * sizeof *j->skip) : NULL;
    j->n_skip = 0;
    for (size_t i = 0; i < n_held; i++)
        j->skip[j->n_skip++] = h->out[i].id;
    for (unsigned i = 0; i < d->n_workers; i++)
        for (size_t k = 0; d->w[i].busy && k < d->w[i].n_rows; k++)
            j->skip[j->n_skip++] = d->w[i].rows[k].id;
    if (j->n_skip)
        qsort(j->skip, j->n_skip, sizeof *j->skip, cmp_id);
    j->after = d->want_full ? 0 : d->scan_after;
    d->want_full = false;
    d->lowered = INT64_MAX;
}

/* A row read by a scan is pending again without a new id (not handed to a worker): the next
 * kick scan must read it. Lowering is always safe: it only costs reading more rows. */
static void lower(dest_t *d, int64_t id)
{
    if (id - 1 < d->scan_after)
        d->scan_after = id - 1;
    if (id - 1 < d->lowered)
        d->lowered = id - 1;
}

static void db_next(fwd_t *f)
{
    if (f->db_running || !f->db_head)
        return;
    dbjob_t *j = f->db_head;
    f->db_head = j->next;
    if (!f->db_head)
        f->db_tail = NULL;
    f->db_running = true;
    f->db_current = j;
    j->now_ms = wall_ms();
    if (j->scan)
        snapshot_busy(j);
    j->w.data = j;
    uv_queue_work(f->loop, &j->w, db_work, db_after);
}

static void db_push(fwd_t *f, dbjob_t *j)
{
    j->f = f;
    if (f->db_tail)
        f->db_tail->next = j;
    else
        f->db_head = j;
    f->db_tail = j;
    db_next(f);
}

/* ---- scanning ---- */

static bool any_idle(const dest_t *d)
{
    for (unsigned i = 0; i < d->n_workers; i++)
        if (!d->w[i].busy)
            return true;
    return false;
}

static void scan(dest_t *d)
{
    fwd_t *f = d->f;
    if (f->stopping)
        return;
    if (d->scan_queued) {
        d->rescan = true;
        return;
    }
    if (!any_idle(d) || uv_now(f->loop) < d->down_until)
        return;
    dbjob_t *j = mt_calloc(1, sizeof *j);
    j->d = d;
    j->scan = true;
    d->scan_queued = true;
    db_push(f, j);
}

/* Write the held outcomes now (one transaction, queued like any index work). */
static void push_held(fwd_t *f)
{
    dbjob_t *j = f->held;
    f->held = NULL;
    if (j && j->n_out) {
        db_push(f, j);
    } else if (j) {
        mt_free(j->out);
        mt_free(j);
    }
}

static void on_poll(uv_timer_t *t)
{
    fwd_t *f = t->data;
    if (f->held && uv_now(f->loop) - f->held_since >= HOLD_MS)
        push_held(f);
    for (size_t i = 0; i < f->n_dests; i++) {
        if (t == &f->poll) /* retries come due, instances verified late: read every row */
            f->dests[i].want_full = true;
        scan(&f->dests[i]);
    }
}

/* Scan soon, not now: kicks within KICK_DELAY_MS become one scan (see the file comment). */
static void kick_soon(fwd_t *f)
{
    if (!f->stopping && !uv_is_active((uv_handle_t *)&f->kick))
        uv_timer_start(&f->kick, on_poll, KICK_DELAY_MS, 0);
}

void mt_forward_kick(mt_forward_t *f)
{
    if (f)
        kick_soon(f);
}

/* ---- workers ---- */

static void idle_start(worker_t *wk);

/* The batch is over (every row answered, or the association failed): write the outcomes back,
 * keep the association for the next batch (idle release timer), look for more work. */
static void worker_finish(worker_t *wk)
{
    dest_t *d = wk->d;
    fwd_t *f = d->f;
    if (!f->held) {
        f->held = mt_calloc(1, sizeof *f->held);
        f->held_since = uv_now(f->loop);
    }
    dbjob_t *j = f->held;
    if (j->n_out + wk->n_rows > j->cap_out) {
        j->cap_out = 2 * (j->n_out + wk->n_rows);
        j->out = mt_realloc(j->out, j->cap_out * sizeof *j->out);
    }
    for (size_t i = 0; i < wk->n_rows; i++) {
        row_t *r = &wk->rows[i];
        outcome_t *o = &j->out[j->n_out];
        if (wk->answered[i]) { /* filled by on_subop */
            *o = wk->outs[i];
            j->n_out++;
            continue;
        }
        memset(o, 0, sizeof *o);
        o->id = r->id;
        o->d = d;
        memcpy(o->group, r->group, sizeof o->group);
        if (!r->path) {
            o->drop = true;
        } else if (f->stopping) {
            continue; /* not answered because we stop: stays queued as it was */
        } else {
            o->count = true;
            o->unreached = !wk->opened; /* the destination's backoff (down_until) applies */
            o->attempts = r->attempts;
            o->queued_at = r->queued_at;
            snprintf(o->why, sizeof o->why, "%s",
                     wk->opened ? "not sent" : wk->open_why[0] ? wk->open_why : "no association");
        }
        j->n_out++;
    }
    size_t n_rows = wk->n_rows;
    for (size_t i = 0; i < wk->n_rows; i++)
        mt_free(wk->rows[i].path); /* (paths handed to retrieve were copied) */
    wk->n_rows = 0;
    wk->busy = false;
    wk->reopen = false;
    f->n_active--;
    if (f->stopping || j->n_out >= HOLD_MAX)
        push_held(f);
    bool full = n_rows == BATCH;
    if (wk->scu && wk->ready && !f->stopping && mt_scu_ready(wk->scu))
        idle_start(wk);
    if (full)
        scan(d); /* a backlog: the next batch at once */
    else
        kick_soon(f);
    maybe_stopped(f);
}

static size_t row_of(worker_t *wk, const char *sop)
{
    for (size_t i = 0; i < wk->n_rows; i++)
        if (!wk->answered[i] && !strcmp(wk->rows[i].sop, sop))
            return i;
    return SIZE_MAX;
}

/* A C-STORE failure status that may go away by itself (PS3.4 B.2.3 A7xx Refused: Out of
 * Resources, PS3.7 C.4 0110 Processing Failure, C.5.10 0213 Resource Limitation): retried.
 * Every other (A9xx, Cxxx, 0122 SOP Class not supported, 0124 Not Authorized, ...) means the
 * destination refuses these bytes, and would again. */
static bool status_transient(uint16_t status)
{
    return (status & 0xFF00) == 0xA700 || status == 0x0110 || status == 0x0213;
}

static void on_subop(void *user, const mt_subop_inst_t *in, bool sent, uint16_t status,
                     const char *why)
{
    worker_t *wk = user;
    size_t i = row_of(wk, in->sop_inst);
    if (i == SIZE_MAX)
        return;
    row_t *r = &wk->rows[i];
    bool ok = sent && (status == 0 || (status & 0xF000) == 0xB000);
    /* 0111 Duplicate SOP Instance (a destination that refuses duplicates): it already holds
     * this SOP Instance UID, in the usual case from an earlier send of ours whose response was
     * lost (our node killed, the association cut) and that no row records: delivered. Resending
     * could never change the answer. */
    if (sent && status == MT_STATUS_DUPLICATE_SOP_INSTANCE) {
        ok = true;
        mt_log(MT_LOG_WARN, &wk->log, "forward to %s: the destination already holds this SOP "
               "Instance UID (0111, not replaced): counted as delivered", wk->d->cfg.name);
    }
    if (!ok && wk->d->f->stopping)
        return; /* aborted by our own shutdown: leave the row as it is */
    outcome_t o;
    memset(&o, 0, sizeof o);
    o.id = r->id;
    o.d = wk->d;
    memcpy(o.group, r->group, sizeof o.group);
    o.ok = ok;
    /* never sent because the association ended (the peer went away while earlier instances
     * were outstanding): due again as it is, no attempt counted */
    o.count = !ok && why != mt_retrieve_why_link_lost;

    o.attempts = r->attempts;
    o.queued_at = r->queued_at;
    /* a refusal the same bytes would get again: dead at once (as STOW-RS, stow_client.h) */
    o.dead_now = !ok && sent && status != MT_RETRIEVE_NO_RSP && !status_transient(status);
    if (!sent || status == MT_RETRIEVE_NO_RSP)
        snprintf(o.why, sizeof o.why, "%s", why ? why : "not sent");
    else if (!ok)
        snprintf(o.why, sizeof o.why, "status 0x%04X%s%s%s", status,
                 o.dead_now ? " (refused: not retried)" : "", why ? ": " : "", why ? why : "");
    if (o.count)
        mt_log(MT_LOG_WARN, &wk->log, "forward to %s: instance not delivered (%s)", wk->d->cfg.name,
               o.why);
    wk->outs[i] = o;
    wk->answered[i] = true;
}

static void on_retrieve_done(mt_retrieve_t *r, void *user)
{
    worker_t *wk = user;
    wk->retrieve_done = true;
    mt_retrieve_counts_t k = mt_retrieve_counts(r);
    mt_log(MT_LOG_DEBUG, &wk->log, "forward to %s: batch done: %u sent, %u failed", wk->d->cfg.name,
           k.completed + k.warning, k.failed);
    worker_finish(wk); /* (r is freed when the next batch starts) */
}

static void open_assoc(worker_t *wk);

static void on_scu_close(mt_scu_t *s, int status, void *user)
{
    worker_t *wk = user;
    dest_t *d = wk->d;
    fwd_t *f = d->f;
    (void)s;
    wk->scu = NULL;
    wk->ready = false;
    f->n_scu--;
    uv_timer_stop(&wk->idle);
    if (!wk->busy) { /* idle: released by us (idle time, stop) or ended by the destination */
        mt_log(status < 0 && !f->stopping ? MT_LOG_INFO : MT_LOG_DEBUG, &wk->log,
               "forward to %s: idle association %s", d->cfg.name,
               status < 0 ? "ended by the destination" : "released");
        scan(d);
        maybe_stopped(f);
        return;
    }
    if (wk->r && !wk->retrieve_done) {
        mt_retrieve_link_lost(wk->r); /* unanswered rows: lost link; on_retrieve_done follows */
        return;
    }
    if (wk->reopen && !f->stopping) { /* ended for (or before) this batch: a new one */
        wk->reopen = false;
        open_assoc(wk);
        return;
    }
    worker_finish(wk); /* stopping, or aborted before the batch started */
}

/* Send the worker's batch over its open association. */
static void run_batch(worker_t *wk)
{
    fwd_t *f = wk->d->f;
    wk->opened = true;
    mt_subop_inst_t *insts = mt_calloc(wk->n_rows, sizeof *insts);
    size_t n = 0;
    for (size_t i = 0; i < wk->n_rows; i++) {
        row_t *r = &wk->rows[i];
        if (!r->path)
            continue;
        mt_subop_inst_t *in = &insts[n++];
        snprintf(in->sop_class, sizeof in->sop_class, "%s", r->sop_class);
        snprintf(in->sop_inst, sizeof in->sop_inst, "%s", r->sop);
        snprintf(in->ts, sizeof in->ts, "%s", r->ts);
        in->path = mt_strdup(r->path);
    }
    mt_retrieve_params_t rp = {.loop = f->loop,
                               .link = mt_scu_link(wk->scu),
                               .log = &wk->log,
                               .on_done = on_retrieve_done,
                               .on_subop = on_subop,
                               .user = wk};
    wk->r = mt_retrieve_new(&rp, insts, n);
    mt_retrieve_start(wk->r);
}

/* PS3.8 Table 9-21, for the admin reading `mitral queue list`: who rejected, and why. */
static void rejection_text(const mt_negotiated_t *n, char *out, size_t outsz)
{
    static const char *const user[8] = {
        NULL, "no reason given", "application context name not supported",
        "calling AE title not recognised", NULL, NULL, NULL, "called AE title not recognised"};
    static const char *const acse[3] = {NULL, "no reason given", "protocol version not supported"};
    static const char *const pres[3] = {NULL, "temporary congestion", "local limit exceeded"};
    const char *why = NULL;
    if (n->rj_source == 1 && n->rj_reason < 8)
        why = user[n->rj_reason];
    else if (n->rj_source == 2 && n->rj_reason < 3)
        why = acse[n->rj_reason];
    else if (n->rj_source == 3 && n->rj_reason < 3)
        why = pres[n->rj_reason];
    snprintf(out, outsz, "no association: rejected by the destination (%s, %s: %s)",
             n->rj_result == 2 ? "transient" : "permanent",
             n->rj_source == 1 ? "service user" : "service provider", why ? why : "reason unknown");
}

static void on_scu_open(mt_scu_t *s, int status, void *user)
{
    worker_t *wk = user;
    dest_t *d = wk->d;
    fwd_t *f = d->f;
    if (status < 0) {
        wk->scu = NULL; /* freed when we return */
        f->n_scu--;
    }
    if (status < 0 && f->stopping) {
        /* aborted by mt_forward_stop while connecting: rows stay as they are */
        mt_log(MT_LOG_INFO, &f->log, "forward to %s: association set-up stopped", d->cfg.name);
        wk->retrieve_done = true;
        worker_finish(wk);
        return;
    }
    if (status < 0) {
        d->open_failures++;
        uint64_t b = (uint64_t)backoff_ms(f, d->open_failures - 1);
        d->down_until = uv_now(f->loop) + b;
        if (status == MT_EREJECTED)
            rejection_text(mt_scu_negotiated(s), wk->open_why, sizeof wk->open_why);
        else
            snprintf(wk->open_why, sizeof wk->open_why, "no association: %s", mt_strerror(status));
        mt_log(MT_LOG_WARN, &f->log, "forward to %s (%s@%s:%u): %s; next try in %llu ms",
               d->cfg.name, d->cfg.ae_title, d->cfg.host, d->cfg.port, wk->open_why,
               (unsigned long long)b);
        wk->retrieve_done = true;
        worker_finish(wk);
        return;
    }
    d->open_failures = 0;
    wk->open_why[0] = '\0';
    wk->ready = true;
    if (f->stopping) {
        wk->opened = wk->retrieve_done = true;
        mt_scu_abort(s); /* on_scu_close finishes the batch */
        return;
    }
    run_batch(wk);
}

/* Keep only the transfer syntaxes the destination lists (when it lists any). Then split every
 * context proposing several syntaxes into one for the first (the stored syntax: sent as is)
 * and one for the rest (the re-encoding fallback), so that an acceptor which prefers another
 * syntax cannot make us re-encode a file it could take as stored. */
static size_t restrict_ts(const dest_t *d, mt_nego_proposal_t *pcs, size_t n)
{
    size_t o = d->cfg.n_ts ? 0 : n;
    for (size_t i = 0; d->cfg.n_ts && i < n; i++) {
        mt_nego_proposal_t p = pcs[i];
        size_t k = 0;
        for (size_t t = 0; t < p.n_ts; t++)
            for (size_t j = 0; j < d->cfg.n_ts; j++)
                if (!strcmp(p.ts[t], d->cfg.ts[j])) {
                    p.ts[k++] = p.ts[t];
                    break;
                }
        p.n_ts = k;
        if (k)
            pcs[o++] = p;
    }
    size_t m = o;
    for (size_t i = 0; i < o && m < MT_NEGO_MAX_PCS; i++) {
        if (pcs[i].n_ts < 2)
            continue;
        mt_nego_proposal_t rest = pcs[i];
        memmove(rest.ts, rest.ts + 1, (rest.n_ts - 1) * sizeof rest.ts[0]);
        rest.n_ts--;
        pcs[i].n_ts = 1;
        pcs[m++] = rest;
    }
    return m;
}

/* ---- DICOMweb destinations (node/forward_web.c) ---- */

static void on_web_result(void *user, size_t i, mt_stowc_verdict_t v, const char *why)
{
    worker_t *wk = user;
    size_t k = wk->web_row[i];
    row_t *r = &wk->rows[k];
    outcome_t o;
    memset(&o, 0, sizeof o);
    o.id = r->id;
    o.d = wk->d;
    memcpy(o.group, r->group, sizeof o.group);
    o.ok = v == MT_STOWC_DELIVERED;
    o.count = !o.ok;
    o.dead_now = v == MT_STOWC_REFUSED;
    o.attempts = r->attempts;
    o.queued_at = r->queued_at;
    if (!o.ok)
        snprintf(o.why, sizeof o.why, "%s", why);
    wk->outs[k] = o;
    wk->answered[k] = true;
}

static void on_web_done(void *user, bool connected)
{
    worker_t *wk = user;
    dest_t *d = wk->d;
    fwd_t *f = d->f;
    wk->opened = connected;
    if (!connected && !f->stopping) {
        d->open_failures++;
        uint64_t b = (uint64_t)backoff_ms(f, d->open_failures - 1);
        d->down_until = uv_now(f->loop) + b;
        const char *why = "";
        for (size_t i = 0; i < wk->n_rows && !why[0]; i++)
            if (wk->answered[i])
                why = wk->outs[i].why;
        mt_log(MT_LOG_WARN, &f->log, "forward to %s (%s): %s; next try in %llu ms", d->cfg.name,
               d->cfg.stow_url, why[0] ? why : "not reachable", (unsigned long long)b);
        for (size_t i = 0; i < wk->n_rows; i++) /* not reached: no attempt (file comment) */
            wk->outs[i].unreached = wk->answered[i] && !wk->outs[i].dead_now;
    } else if (connected) {
        d->open_failures = 0;
    }
    wk->retrieve_done = true;
    worker_finish(wk);
}

static void web_start(worker_t *wk)
{
    mt_fwd_web_item_t items[BATCH];
    size_t n = 0;
    for (size_t i = 0; i < wk->n_rows; i++) {
        if (!wk->rows[i].path)
            continue;
        items[n].path = wk->rows[i].path;
        items[n].sop = wk->rows[i].sop;
        wk->web_row[n++] = i;
    }
    if (n == 0) { /* only rows of instances that are gone */
        wk->retrieve_done = true;
        worker_finish(wk);
        return;
    }
    mt_fwd_web_send(wk->web, items, n, on_web_result, on_web_done, wk);
}

/* ---- associations kept open between batches ---- */

static bool has_pair(const pair_t *p, size_t n, const char *sop_class, const char *ts)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(p[i].sop_class, sop_class) && !strcmp(p[i].ts, ts))
            return true;
    return false;
}

/* The distinct (SOP class, stored syntax) pairs of the batch, added to out[n..]. */
static size_t batch_pairs(const worker_t *wk, pair_t *out, size_t n, size_t max)
{
    for (size_t i = 0; i < wk->n_rows && n < max; i++) {
        const row_t *r = &wk->rows[i];
        if (r->path && !has_pair(out, n, r->sop_class, r->ts)) {
            snprintf(out[n].sop_class, sizeof out[n].sop_class, "%s", r->sop_class);
            snprintf(out[n].ts, sizeof out[n].ts, "%s", r->ts);
            n++;
        }
    }
    return n;
}

/* The open association's contexts were proposed for everything in the batch (what the
 * destination rejected then it would reject again: no point in a new association). */
static bool covers(const worker_t *wk)
{
    for (size_t i = 0; i < wk->n_rows; i++) {
        const row_t *r = &wk->rows[i];
        if (r->path && !has_pair(wk->pairs, wk->n_pairs, r->sop_class, r->ts))
            return false;
    }
    return true;
}

/* The proposals for pairs[0..n) (*truncated: they did not all fit). */
static size_t pair_proposals(const dest_t *d, const pair_t *pairs, size_t n,
                             mt_nego_proposal_t *pcs, mt_subop_inst_t *tmp, bool *truncated)
{
    for (size_t i = 0; i < n; i++) {
        memcpy(tmp[i].sop_class, pairs[i].sop_class, sizeof tmp[i].sop_class);
        memcpy(tmp[i].ts, pairs[i].ts, sizeof tmp[i].ts);
    }
    *truncated = false;
    size_t n_pcs = mt_retrieve_proposals(tmp, n, pcs, MT_NEGO_MAX_PCS, truncated);
    return restrict_ts(d, pcs, n_pcs);
}

/* A new association for the batch: contexts for what it holds plus what the previous
 * association of this worker carried (when they fit), so that a stream alternating between a
 * few SOP classes does not re-open for each. */
static void open_assoc(worker_t *wk)
{
    dest_t *d = wk->d;
    fwd_t *f = d->f;
    pair_t *pairs = mt_calloc(BATCH, sizeof *pairs);
    size_t n = batch_pairs(wk, pairs, 0, BATCH);
    size_t n_batch = n;
    for (size_t i = 0; i < wk->n_pairs && n < BATCH; i++)
        if (!has_pair(pairs, n, wk->pairs[i].sop_class, wk->pairs[i].ts))
            pairs[n++] = wk->pairs[i];
    mt_subop_inst_t *tmp = mt_calloc(BATCH, sizeof *tmp);
    mt_nego_proposal_t *pcs = mt_calloc(MT_NEGO_MAX_PCS, sizeof *pcs);
    bool truncated;
    size_t n_pcs = pair_proposals(d, pairs, n, pcs, tmp, &truncated);
    if (truncated && n > n_batch) {
        n = n_batch;
        n_pcs = pair_proposals(d, pairs, n, pcs, tmp, &truncated);
    }
    memcpy(wk->pairs, pairs, n * sizeof *pairs);
    wk->n_pairs = n;
    wk->ready = false;
    mt_scu_params_t sp = {.calling_ae = d->cfg.calling_ae[0] ? d->cfg.calling_ae : f->calling_ae,
                          .called_ae = d->cfg.ae_title,
                          .host = d->cfg.host,
                          .port = d->cfg.port,
                          .pcs = pcs,
                          .n_pcs = n_pcs,
                          .connect_timeout_ms = f->connect_timeout_ms,
                          .dimse_timeout_ms = f->response_timeout_ms,
                          .max_ops_invoked = f->max_async_ops > 1 ? f->max_async_ops : 0};
    int rc = mt_scu_open(f->loop, &sp, on_scu_open, on_scu_close, wk, &wk->scu);
    mt_free(pcs);
    mt_free(tmp);
    mt_free(pairs);
    if (rc < 0) {
        wk->scu = NULL;
        mt_log(MT_LOG_WARN, &f->log, "forward to %s: cannot connect: %s", d->cfg.name,
               mt_strerror(rc));
        d->open_failures++;
        d->down_until = uv_now(f->loop) + (uint64_t)backoff_ms(f, d->open_failures - 1);
        wk->retrieve_done = true;
        worker_finish(wk);
        return;
    }
    f->n_scu++;
}

static void on_idle(uv_timer_t *t)
{
    worker_t *wk = t->data;
    if (wk->busy || !wk->scu)
        return;
    if (wk->d->f->stopping) {
        mt_log(MT_LOG_WARN, &wk->log, "forward to %s: release not answered: A-ABORT",
               wk->d->cfg.name);
        mt_scu_abort(wk->scu);
        return;
    }
    mt_log(MT_LOG_DEBUG, &wk->log, "forward to %s: idle %u ms: releasing the association",
           wk->d->cfg.name, wk->d->f->idle_release_ms);
    mt_scu_release(wk->scu);
}

static void idle_start(worker_t *wk)
{
    uv_timer_start(&wk->idle, on_idle, wk->d->f->idle_release_ms, 0);
}

static void worker_start(worker_t *wk)
{
    dest_t *d = wk->d;
    fwd_t *f = d->f;
    wk->busy = true;
    wk->opened = wk->retrieve_done = wk->reopen = false;
    wk->open_why[0] = '\0';
    f->n_active++;
    mt_retrieve_free(wk->r); /* the previous batch's (done; not freed from its own callback) */
    wk->r = NULL;
    if (d->web) {
        web_start(wk);
        return;
    }
    bool any = false;
    for (size_t i = 0; i < wk->n_rows && !any; i++)
        any = wk->rows[i].path != NULL;
    if (!any) { /* only rows of instances that are gone */
        wk->retrieve_done = true;
        worker_finish(wk);
        return;
    }
    uv_timer_stop(&wk->idle);
    if (!wk->scu) {
        open_assoc(wk);
        return;
    }
    wk->reopen = true; /* unless the open association can take the batch: */
    if (wk->ready && mt_scu_ready(wk->scu)) {
        if (covers(wk)) {
            wk->reopen = false;
            run_batch(wk);
            return;
        }
        mt_log(MT_LOG_INFO, &wk->log,
               "forward to %s: a SOP class or transfer syntax not proposed on the open "
               "association: releasing it for one that proposes it",
               d->cfg.name);
        mt_scu_release(wk->scu);
    } /* else it is ending already (idle release, or the destination went away) */
}

static bool group_busy(const dest_t *d, const char *group)
{
    for (unsigned i = 0; i < d->n_workers; i++) {
        const worker_t *wk = &d->w[i];
        if (!wk->busy)
            continue;
        for (size_t k = 0; k < wk->n_rows; k++)
            if (!strcmp(wk->rows[k].group, group))
                return true;
    }
    return false;
}

static bool job_has(const dbjob_t *j, int64_t id)
{
    for (size_t k = 0; j && k < j->n_out; k++)
        if (j->out[k].id == id)
            return true;
    return false;
}

/* In a busy worker, or answered and waiting for its outcome to be written (a scan that ran
 * before that write still lists the row: sending it again would duplicate it). */
static bool id_busy(const dest_t *d, int64_t id)
{
    for (unsigned i = 0; i < d->n_workers; i++)
        for (size_t k = 0; d->w[i].busy && k < d->w[i].n_rows; k++)
            if (d->w[i].rows[k].id == id)
                return true;
    const fwd_t *f = d->f;
    if (job_has(f->db_current, id) || job_has(f->held, id))
        return true;
    for (const dbjob_t *j = f->db_head; j; j = j->next)
        if (job_has(j, id))
            return true;
    return false;
}

static bool kept_open(const worker_t *wk)
{
    return wk->scu && wk->ready && mt_scu_ready(wk->scu);
}

/* Distribute scanned rows (oldest first) over idle workers; a group (series or study) stays on
 * one worker: the one that already has it in this round, else the idle worker with the fewest
 * rows, preferring one that kept its association open (no new set-up). */
static void assign(dest_t *d, row_t *rows, size_t n)
{
    worker_t *fill[MAX_WORKERS];
    unsigned n_fill = 0;
    for (unsigned i = 0; i < d->n_workers; i++)
        if (!d->w[i].busy) {
            d->w[i].n_rows = 0;
            memset(d->w[i].answered, 0, sizeof d->w[i].answered);
            fill[n_fill++] = &d->w[i];
        }
    for (size_t i = 0; i < n; i++) {
        row_t *r = &rows[i];
        worker_t *to = NULL;
        if (n_fill && !id_busy(d, r->id) && !group_busy(d, r->group)) {
            for (unsigned k = 0; k < n_fill && !to; k++)
                for (size_t q = 0; q < fill[k]->n_rows; q++)
                    if (!strcmp(fill[k]->rows[q].group, r->group)) {
                        to = fill[k];
                        break;
                    }
            if (!to) { /* fewest rows; of those, one whose association is open */
                to = fill[0];
                for (unsigned k = 1; k < n_fill; k++)
                    if (fill[k]->n_rows < to->n_rows ||
                        (fill[k]->n_rows == to->n_rows && kept_open(fill[k]) && !kept_open(to)))
                        to = fill[k];
            }
        }
        if (to && to->n_rows < BATCH) {
            to->rows[to->n_rows++] = *r;
        } else {
            if (!id_busy(d, r->id))
                lower(d, r->id);
            mt_free(r->path);
        }
    }
    for (unsigned k = 0; k < n_fill; k++)
        if (fill[k]->n_rows)
            worker_start(fill[k]);
}

/* ---- start / stop ---- */

static void copy_dest(dest_t *d, const mt_conf_destination_t *c, unsigned dflt)
{
    d->cfg = *c;
    for (size_t i = 0; i < c->n_ts; i++)
        d->cfg.ts[i] = d->ts_store[i] = mt_strdup(c->ts[i]);
    d->n_workers = c->associations ? c->associations : dflt;
    if (d->n_workers > MAX_WORKERS)
        d->n_workers = MAX_WORKERS;
    for (unsigned i = 0; i < d->n_workers; i++)
        d->w[i].d = d;
}

static void free_all(fwd_t *f);

/* The DICOMweb destinations: credentials, TLS context, one client per worker. */
static int start_web(fwd_t *f)
{
    char err[512];
    for (size_t i = 0; i < f->n_dests; i++) {
        dest_t *d = &f->dests[i];
        if (!MT_CONF_DEST_IS_WEB(&d->cfg))
            continue;
        if (mt_fwd_web_dest_new(&d->cfg, f->connect_timeout_ms, &d->web, err, sizeof err)) {
            mt_log(MT_LOG_ERROR, NULL, "%s", err);
            return MT_ECONF;
        }
    }
    for (size_t i = 0; i < f->n_dests; i++) /* only now: nothing to close on failure */
        for (unsigned k = 0; f->dests[i].web && k < f->dests[i].n_workers; k++) {
            f->dests[i].w[k].web = mt_fwd_web_new(f->loop, f->dests[i].web, &f->dests[i].w[k].log);
            f->n_web_open++;
        }
    return 0;
}

int mt_forward_start(uv_loop_t *loop, const mt_conf_t *c, mt_forward_t **out)
{
    *out = NULL;
    if (!c->n_destinations)
        return 0;
    fwd_t *f = mt_calloc(1, sizeof *f);
    f->loop = loop;
    int rc = mt_index_sqlite_open(c->index_path, &f->ix);
    if (rc) {
        mt_free(f);
        return rc;
    }
    f->root = mt_strdup(c->storage_root);
    snprintf(f->calling_ae, sizeof f->calling_ae, "%s", c->ae_title);
    f->max_attempts = c->fwd_max_attempts;
    f->max_age_ms = c->fwd_max_age_ms;
    f->retry_initial_ms = c->fwd_retry_initial_ms;
    f->retry_max_ms = c->fwd_retry_max_ms;
    f->connect_timeout_ms = c->fwd_connect_timeout_ms;
    f->response_timeout_ms = c->fwd_response_timeout_ms;
    f->max_async_ops = (uint16_t)(c->fwd_max_async_ops ? c->fwd_max_async_ops : 1);
    f->idle_release_ms = c->fwd_idle_release_ms;
    f->order = c->fwd_order == 1 ? ORDER_STUDY : c->fwd_order == 2 ? ORDER_NONE : ORDER_SERIES;
    f->n_dests = c->n_destinations;
    f->dests = mt_calloc(f->n_dests, sizeof *f->dests);
    for (size_t i = 0; i < f->n_dests; i++) {
        dest_t *d = &f->dests[i];
        d->f = f;
        copy_dest(d, &c->destinations[i], c->fwd_associations);
        for (unsigned k = 0; k < d->n_workers; k++)
            snprintf(d->w[k].log.called, sizeof d->w[k].log.called, "%.16s",
                     MT_CONF_DEST_IS_WEB(&d->cfg) ? d->cfg.name : c->destinations[i].ae_title);
    }
    if ((rc = start_web(f)) != 0) {
        free_all(f);
        return rc;
    }
    srand((unsigned)uv_hrtime());
    uv_timer_init(loop, &f->poll);
    f->poll.data = f;
    uv_timer_init(loop, &f->kick);
    f->kick.data = f;
    f->n_handles = 2;
    for (size_t i = 0; i < f->n_dests; i++)
        for (unsigned k = 0; k < f->dests[i].n_workers; k++) {
            uv_timer_init(loop, &f->dests[i].w[k].idle);
            f->dests[i].w[k].idle.data = &f->dests[i].w[k];
            f->n_handles++;
        }
    uv_timer_start(&f->poll, on_poll, 0, POLL_MS);
    mt_log(MT_LOG_INFO, NULL, "forwarding to %zu destination(s)", f->n_dests);
    *out = f;
    return 0;
}

/* Everything but the timers (closed by then, or never started). */
static void free_all(fwd_t *f)
{
    f->ix->ops->close(f->ix);
    for (size_t i = 0; i < f->n_dests; i++) {
        for (size_t k = 0; k < f->dests[i].cfg.n_ts; k++)
            mt_free(f->dests[i].ts_store[k]);
        for (unsigned k = 0; k < f->dests[i].n_workers; k++)
            mt_retrieve_free(f->dests[i].w[k].r);
        mt_fwd_web_dest_free(f->dests[i].web);
    }
    if (f->held) /* pushed at stop: only after a failed start */
        mt_free(f->held->out);
    mt_free(f->held);
    mt_free(f->dests);
    mt_free(f->root);
    mt_free(f);
}

static void timer_closed(fwd_t *f)
{
    if (--f->n_handles)
        return;
    void (*cb)(void *) = f->stop_cb;
    void *data = f->stop_data;
    free_all(f);
    if (cb)
        cb(data);
}

static void on_poll_closed(uv_handle_t *h)
{
    timer_closed(h->data);
}

static void on_idle_closed(uv_handle_t *h)
{
    timer_closed(((worker_t *)h->data)->d->f);
}

static void on_web_freed(void *data)
{
    fwd_t *f = data;
    f->n_web_open--;
    maybe_stopped(f);
}

static void maybe_stopped(fwd_t *f)
{
    if (!f->stopping || f->n_active || f->n_scu || f->db_running || f->db_head)
        return;
    if (!f->web_freeing) { /* the workers' connections go first (async close) */
        f->web_freeing = true;
        for (size_t i = 0; i < f->n_dests; i++)
            for (unsigned k = 0; f->dests[i].web && k < f->dests[i].n_workers; k++)
                mt_fwd_web_free(f->dests[i].w[k].web, on_web_freed, f);
    }
    if (f->n_web_open)
        return;
    if (uv_is_closing((uv_handle_t *)&f->poll))
        return;
    uv_close((uv_handle_t *)&f->poll, on_poll_closed);
    uv_close((uv_handle_t *)&f->kick, on_poll_closed);
    for (size_t i = 0; i < f->n_dests; i++)
        for (unsigned k = 0; k < f->dests[i].n_workers; k++)
            uv_close((uv_handle_t *)&f->dests[i].w[k].idle, on_idle_closed);
}

void mt_forward_stop(mt_forward_t *f, void (*cb)(void *), void *data)
{
    f->stopping = true;
    f->stop_cb = cb;
    f->stop_data = data;
    uv_timer_stop(&f->poll);
    uv_timer_stop(&f->kick);
    push_held(f); /* the outcomes of finished batches are written before we stop */
    for (size_t i = 0; i < f->n_dests; i++)
        for (unsigned k = 0; k < f->dests[i].n_workers; k++) {
            worker_t *wk = &f->dests[i].w[k];
            if (wk->busy && wk->scu)
                mt_scu_abort(wk->scu); /* also while connecting: on_open(error) follows */
            if (!wk->busy && wk->scu) { /* idle (or ending): released at once, */
                if (mt_scu_ready(wk->scu))
                    mt_scu_release(wk->scu);
                uv_timer_start(&wk->idle, on_idle, STOP_GRACE_MS, 0); /* aborted if stuck */
            }
            if (wk->busy && wk->web)
                mt_fwd_web_abort(wk->web);
        }
    maybe_stopped(f);
}
