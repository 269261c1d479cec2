/*
 * tagger.c - the node's CMR tagger: features in, tags out, never on the event loop's time.
 *
 *   store.c / stow.c: a capture (tag/capture.h) gets the header bytes and, from the events of
 *       the service's own data set reader, where the elements the extractor reads lie in them
 *   store.c (committed, status 0) --mt_tagger_offer(capture)--> pending list; one extract
 *       job (pool) at a time takes every capture pending: mt_tag_capture_extract each (a tree
 *       of those elements over the bytes, no second parse); the captures are freed there
 *   after_extract (loop): the features join their study / series (copied planes); a study
 *       with a pass in flight parks them on its pending list
 *   tick (uv_timer, every 50 ms .. 1 s): a study whose rows a pass deferred (WRITE_GAP_MS),
 *       else the first study that has a series idle for
 *       series_idle with new instances, or that has been idle for study_idle, gets a pass
 *   open job (pool, at start-up): the index connection, opened once per node, before any pass
 *   pass job (pool, one at a time: it owns the index connection): finish the dirty series,
 *       re-classify them, mt_tag_study_run over all series of the study (later series revise
 *       earlier tags), write the series whose row would change (tag_put: the index keeps
 *       the revision), at most one commit per WRITE_GAP_MS outside study passes
 *   after_pass (loop): merge pending features; a study-idle pass drops the study's features
 *
 * Memory: features of a study stay until its study-idle pass. A series that arrives after
 * that starts a fresh study record: its exam-level context is only what arrives with it
 * (documented limitation; `mitral tag --reindex` will re-tag from the stored files). Such a
 * record of a series decided before on more instances writes nothing (dropped_t).
 * Routing on the tag (mt_tagger_route): a study pass (study_idle, or closing) takes a reference
 * to the node's config snapshot when it starts; when its rules include some on cmr_series,
 * every series with instances the rules have not seen gets mt_tag_route_series in the same
 * transaction as its tag, and the forwarder is kicked once the pass has committed queue rows.
 * Series passes do not fire them: their tags can still be revised, a queued instance cannot
 * be unsent.
 * Closing: the timer stops, every study still held gets its study pass regardless of idle
 * times (one with nothing new or changed writes nothing), then the index connection closes
 * and the callback fires.
 */
#include "tagger.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "conf/conf.h"
#include "forward.h"
#include "index/index.h"
#include "node.h"
#include "tag/capture.h"
#include "tag/tag.h"
#include "tag_route.h"
#include "util/alloc.h"
#include "util/err.h"
#include "util/fnv.h"
#include "util/log.h"

typedef struct t_series {
    mt_tag_series_t s;
    uint64_t last_add;
    bool dirty;
    /* what the index holds for it (pass jobs only): a pass writes a series only when its row
     * would change (needs_write), not every series of the study every time */
    bool written;
    mt_tag_result_t w;
    uint8_t w_vendor;
    /* instances joined since the rules on the tag last ran for it (they run in study passes
     * only: see needs_write) */
    bool route_due;
    /* instances the index's row was decided on, when this study's features were dropped
     * before (see dropped_t); a record with fewer is a late fragment: it writes nothing */
    uint32_t prior_n;
} t_series_t;

/* Series of studies whose features a study-idle pass dropped: (hash of the Series Instance
 * UID, instances its last decision saw). Instances of such a series that arrive later start a
 * fresh record holding only them (a re-sent instance, the rest of a paused series); its tag
 * must not replace the one decided on more of the series (a re-sent perfusion instance made
 * the series `unknown`). A fixed table, overwritten on collision: a lost entry only loses that
 * protection. */
typedef struct {
    uint64_t h;
    uint32_t n;
} dropped_t;
#define DROPPED_SLOTS 65536u

typedef struct t_study {
    char uid[65];
    t_series_t **ser;
    size_t n_ser, cap_ser;
    uint64_t last_add;
    bool busy, final_pass;
    bool write_due;     /* a pass left rows unwritten (deferred, WRITE_GAP_MS): write them soon */
    uint64_t due_since; /* uv_now of the first such pass (the oldest is written first) */
    mt_tag_inst_t *pending;
    size_t n_pending, cap_pending;
    struct t_study *next;
} t_study_t;

struct mt_tagger {
    uv_loop_t *loop;
    uv_timer_t timer;
    char *index_path;
    mt_index_t *ix; /* opened by the open job at start-up; then pass jobs only, one at a time */
    uint64_t series_idle, study_idle;
    t_study_t *studies;
    unsigned extract_in_flight;            /* batches on the pool: 0 or 1 */
    struct extract_job *pend, **pend_tail; /* offered, waiting for the next batch */
    size_t n_pend;
    uv_timer_t batch_timer; /* a batch leaves BATCH_DELAY_MS after its first instance */
    unsigned n_open_handles;
    bool pass_in_flight;
    bool closing;
    void (*close_cb)(void *);
    void *close_data;
    /* CPU (CLOCK_THREAD_CPUTIME_ID) of the extraction batches and the passes on the pool, and
     * of the features joining their series on the loop: logged at close
     * (bench/tagging/ingest.py). Not in it: the capture on the loop (tag/capture.c, ~0.5 us
     * per instance, docs/tagging.md) */
    uint64_t n_extract, n_pass, n_pass_series, extract_ns, pass_ns, absorb_ns;
    uint64_t n_rows, n_txn; /* tag rows written, write transactions committed */
    uint64_t n_deferred;    /* passes whose rows waited for WRITE_GAP_MS */
    uint64_t last_commit;   /* uv_now of the last pass that committed rows; 0: none yet */
    mt_node_t *node; /* routing on the tag (mt_tagger_route); NULL: none */
    dropped_t *dropped; /* DROPPED_SLOTS entries, allocated at the first drop */
};

/* Captures are handed to the pool in batches of up to BATCH_MAX, or BATCH_DELAY_MS after the
 * first one: a pool thread that extracts one or two instances per wake-up runs them with cold
 * caches (the loop thread's file system work in between), ~4x the CPU of the same work in a row
 * (docs/tagging.md, "Cost in the ingest"). The delay only moves when the features join their
 * series (tagging waits for series_idle anyway); no C-STORE response waits for it. */
#define BATCH_MAX 256
#define BATCH_DELAY_MS 50

/* A series pass commits its rows at most once per WRITE_GAP_MS; one that comes sooner leaves
 * them for a pass WRITE_GAP_MS after the last commit (tick). Every commit of the tagger's
 * connection makes the ingest's connection, at its next transaction, find the database changed
 * by another connection: it drops its upsert cache (the next instance re-runs the patient,
 * study and series upserts and writes their pages to the WAL again) and its page cache
 * (index_sqlite.c). With a commit per pass that cost the ingest's commit thread ~7,000
 * instructions per instance on a study of small series (bench/tagging/icount.py,
 * docs/tagging.md "Cost in the ingest"). The rules still run at series_idle; the rows reach
 * the index about WRITE_GAP_MS later: the next pass that commits (the tick starts one for the
 * longest-waiting study once WRITE_GAP_MS has passed) writes every study's deferred rows in
 * its transaction. Study passes, closing and passes with rules on the tag (their routing
 * needs the instances new since the last pass) always write. */
#define WRITE_GAP_MS 1000

typedef struct extract_job { /* one offered instance */
    struct extract_job *next;
    mt_tag_capture_t cap;
    char study_uid[65], series_uid[65]; /* as stored */
    mt_tag_inst_t in;
    int rc;
} extract_job_t;

typedef struct extract_batch {
    uv_work_t w;
    mt_tagger_t *t;
    extract_job_t *items;
    uint64_t cpu_ns;
} extract_batch_t;

typedef struct pass_job {
    uv_work_t w;
    mt_tagger_t *t;
    t_study_t *st;
    int rc;
    uint64_t cpu_ns;
    const mt_conf_t *conf; /* a reference (node's snapshot at the pass's start), or NULL */
    bool may_defer;        /* leave the rows for a later pass (WRITE_GAP_MS) */
    bool deferred;         /* it did */
    bool wrote;            /* a transaction committed */
    t_study_t **also;      /* other studies whose deferred rows this pass writes (busy) */
    size_t n_also;
    size_t n_queued;       /* forward_queue rows written by rules on the tag */
    size_t n_rows;         /* tag rows written (committed if rc == 0) */
} pass_job_t;

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void tick(mt_tagger_t *t);

static t_study_t *study_get(mt_tagger_t *t, const char *uid)
{
    for (t_study_t *s = t->studies; s; s = s->next)
        if (strcmp(s->uid, uid) == 0)
            return s;
    t_study_t *s = mt_calloc(1, sizeof *s);
    snprintf(s->uid, sizeof s->uid, "%s", uid);
    s->next = t->studies;
    t->studies = s;
    return s;
}

static uint64_t uid_hash(const char *uid) /* never 0 (0 = empty slot) */
{
    uint64_t h = mt_fnv1a64_str(uid);
    return h ? h : 1;
}

static dropped_t *dropped_slot(mt_tagger_t *t, const char *series_uid, uint64_t *h)
{
    *h = uid_hash(series_uid);
    return t->dropped ? &t->dropped[*h & (DROPPED_SLOTS - 1)] : NULL;
}

static void remember_dropped(mt_tagger_t *t, const t_series_t *se)
{
    if (!t->dropped)
        t->dropped = mt_calloc(DROPPED_SLOTS, sizeof *t->dropped);
    uint64_t h;
    dropped_t *d = dropped_slot(t, se->s.h.series_uid, &h);
    size_t n = se->s.n_inst > se->prior_n ? se->s.n_inst : se->prior_n;
    *d = (dropped_t){h, n > UINT32_MAX ? UINT32_MAX : (uint32_t)n};
}

static uint32_t dropped_count(mt_tagger_t *t, const char *series_uid)
{
    uint64_t h;
    const dropped_t *d = dropped_slot(t, series_uid, &h);
    return d && d->h == h ? d->n : 0;
}

/* a late fragment of a series decided before on more instances (dropped_t) */
static bool fragment(const t_series_t *se)
{
    return se->s.n_inst < se->prior_n;
}

static void study_free(mt_tagger_t *t, t_study_t *st)
{
    for (t_study_t **p = &t->studies; *p; p = &(*p)->next)
        if (*p == st) {
            *p = st->next;
            break;
        }
    for (size_t i = 0; i < st->n_ser; i++) {
        if (!t->closing && (st->ser[i]->written || st->ser[i]->prior_n))
            remember_dropped(t, st->ser[i]);
        mt_tag_series_dispose(&st->ser[i]->s);
        mt_free(st->ser[i]);
    }
    for (size_t i = 0; i < st->n_pending; i++)
        mt_tag_inst_dispose(&st->pending[i]);
    mt_free(st->pending);
    mt_free(st->ser);
    mt_free(st);
}

static void study_add(mt_tagger_t *t, t_study_t *st, const mt_tag_inst_t *in)
{
    t_series_t *se = NULL;
    for (size_t i = 0; i < st->n_ser; i++)
        if (strcmp(st->ser[i]->s.h.series_uid, in->series_uid) == 0) {
            se = st->ser[i];
            break;
        }
    if (!se) {
        if (st->n_ser == st->cap_ser) {
            st->cap_ser = st->cap_ser ? st->cap_ser * 2 : 16;
            st->ser = mt_realloc(st->ser, st->cap_ser * sizeof *st->ser);
        }
        se = mt_calloc(1, sizeof *se);
        mt_tag_series_init(&se->s);
        se->prior_n = dropped_count(t, in->series_uid);
        st->ser[st->n_ser++] = se;
    }
    mt_tag_series_add(&se->s, in);
    se->dirty = true;
    se->route_due = true;
    se->last_add = st->last_add = uv_now(t->loop);
    st->final_pass = false;
}

/* ---- extraction ---- */
static void extract_one(extract_job_t *j)
{
    j->rc = mt_tag_capture_extract(&j->cap, &j->in); /* frees what was kept */
    /* identity as stored: never the original UIDs */
    memcpy(j->in.study_uid, j->study_uid, sizeof j->in.study_uid);
    memcpy(j->in.series_uid, j->series_uid, sizeof j->in.series_uid);
}

static void extract_work(uv_work_t *w)
{
    extract_batch_t *b = w->data;
    uint64_t t0 = thread_cpu_ns();
    for (extract_job_t *j = b->items; j; j = j->next)
        extract_one(j);
    b->cpu_ns = thread_cpu_ns() - t0;
}

/* One instance's features join its study (loop thread). */
static void absorb_one(mt_tagger_t *t, extract_job_t *j, int status)
{
    t->n_extract++;
    if (status == 0 && j->rc == 0) {
        t_study_t *st = study_get(t, j->in.study_uid);
        if (st->busy) { /* a pass owns the series: park the features */
            if (st->n_pending == st->cap_pending) {
                st->cap_pending = st->cap_pending ? st->cap_pending * 2 : 16;
                st->pending = mt_realloc(st->pending, st->cap_pending * sizeof *st->pending);
            }
            st->pending[st->n_pending++] = j->in; /* moved */
            j->in.img = NULL;
            st->last_add = uv_now(t->loop);
        } else {
            study_add(t, st, &j->in);
        }
    } else {
        mt_log(MT_LOG_DEBUG, NULL, "tagger: header not tagged: %s",
               mt_strerror(status ? status : j->rc));
    }
    mt_tag_inst_dispose(&j->in);
    mt_tag_capture_dispose(&j->cap);
    mt_free(j);
}

static void submit_batch(mt_tagger_t *t);

static void after_extract(uv_work_t *w, int status)
{
    extract_batch_t *b = w->data;
    mt_tagger_t *t = b->t;
    uint64_t b_cpu = b->cpu_ns;
    t->extract_in_flight--;
    uint64_t t0 = thread_cpu_ns(); /* the features joining their series count too */
    for (extract_job_t *j = b->items, *next; j; j = next) {
        next = j->next;
        absorb_one(t, j, status);
    }
    mt_free(b);
    t->extract_ns += b_cpu;
    t->absorb_ns += thread_cpu_ns() - t0;
    submit_batch(t);
    if (t->closing)
        tick(t);
}

/* The instances offered since the last batch go to the pool as one job (one at a time): one
 * wake-up of a pool thread per batch instead of one per instance. Before BATCH_DELAY_MS has
 * passed since the first of them, only a full batch (or closing) sends them. */
static void submit_batch(mt_tagger_t *t)
{
    if (t->extract_in_flight || !t->pend)
        return;
    if (t->n_pend < BATCH_MAX && !t->closing && uv_is_active((uv_handle_t *)&t->batch_timer))
        return;
    uv_timer_stop(&t->batch_timer);
    extract_batch_t *b = mt_calloc(1, sizeof *b);
    b->t = t;
    b->items = t->pend;
    b->w.data = b;
    t->pend = NULL;
    t->pend_tail = &t->pend;
    t->n_pend = 0;
    t->extract_in_flight++;
    if (uv_queue_work(t->loop, &b->w, extract_work, after_extract) != 0) {
        t->extract_in_flight--;
        for (extract_job_t *j = b->items, *next; j; j = next) {
            next = j->next;
            mt_tag_capture_dispose(&j->cap);
            mt_free(j);
        }
        mt_free(b);
    }
}

static void on_batch_due(uv_timer_t *h)
{
    mt_tagger_t *t = h->data;
    uv_timer_stop(h);
    submit_batch(t); /* or, while a batch is on the pool, after_extract sends it */
}

/* A UID into a 65-byte field (at most 64 characters kept): snprintf's "%s" cost ~600
 * instructions a call here, twice per instance on the loop (icount.py). */
static void copy_uid(char dst[65], const char *src)
{
    size_t n = strnlen(src, 64);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void mt_tagger_offer(mt_tagger_t *t, mt_tag_capture_t *c, const char *study_uid,
                     const char *series_uid)
{
    if (t->closing || !mt_tag_capture_on(c) || !study_uid || !series_uid || !study_uid[0] ||
        !series_uid[0]) {
        mt_tag_capture_dispose(c);
        return;
    }
    extract_job_t *j = mt_calloc(1, sizeof *j);
    mt_tag_capture_move(&j->cap, c);
    copy_uid(j->study_uid, study_uid);
    copy_uid(j->series_uid, series_uid);
    *t->pend_tail = j;
    t->pend_tail = &j->next;
    if (t->n_pend++ == 0)
        uv_timer_start(&t->batch_timer, on_batch_due, BATCH_DELAY_MS, 0);
    submit_batch(t);
}

/* ---- exam-level pass ---- */
static bool same_result(const mt_tag_result_t *a, const mt_tag_result_t *b)
{
    return !strcmp(a->tag, b->tag) && a->view == b->view &&
           round((double)a->confidence * 100.0) == round((double)b->confidence * 100.0) &&
           !strcmp(a->evidence, b->evidence);
}

/* A series' row is written when it would change: never written, another result or
 * manufacturer family. When the pass fires the rules on the tag (fire: a study pass with such
 * rules), also when it has instances the rules have not seen: rules armed for them fire in
 * the tag's transaction (tag_route.h). They fire in study passes only, on the exam-level
 * tag: a series pass may see part of a series (a sender that paused for series_idle) or of
 * the exam, and a tag it gives can be revised, but what a rule queued cannot be unsent
 * (docs/tagging.md, "Routing on the tag"). A series that got instances and kept its result is
 * not rewritten otherwise (before, it was: a third of a study's passes wrote rows equal but
 * for tagged_at, and every tagger commit makes the ingest's connection drop its upsert cache
 * and page cache: docs/tagging.md, "Cost in the ingest"). */
static bool needs_write(const t_series_t *se, bool fire)
{
    if (fragment(se)) /* the index keeps the decision made on more of the series */
        return false;
    return !se->written || !same_result(&se->w, &se->s.res) || se->w_vendor != se->s.h.vendor ||
           (fire && se->route_due);
}
/* The rows of st's series that would change, in the open transaction (pass jobs only); fire:
 * the rules on the tag run for them too (needs_write). */
static int write_rows(mt_tagger_t *t, pass_job_t *j, t_study_t *st, bool fire)
{
    int rc = 0;
    for (size_t i = 0; i < st->n_ser && rc == 0; i++) {
        const mt_tag_series_t *s = &st->ser[i]->s;
        if (!needs_write(st->ser[i], fire))
            continue;
        mt_index_tag_t row = {
            .study_uid = st->uid,
            .series_uid = s->h.series_uid,
            .tag = s->res.tag,
            .view = mt_tag_view_name(s->res.view),
            .evidence = s->res.evidence,
            .version = MT_TAG_VERSION,
            .confidence = round((double)s->res.confidence * 100.0) / 100.0,
            .manufacturer = s->h.vendor,
        };
        rc = t->ix->ops->tag_put(t->ix, &row, NULL);
        j->n_rows++;
        /* rules on the tag fire in the tag's transaction (node/tag_route.h) */
        if (rc == 0 && fire)
            rc = mt_tag_route_series(t->ix, j->conf->routes, st->uid, s->h.series_uid,
                                     s->res.tag, &j->n_queued);
    }
    return rc;
}

static void remember_written(t_study_t *st, bool fired) /* committed */
{
    for (size_t i = 0; i < st->n_ser; i++) {
        if (fragment(st->ser[i]))
            continue; /* not written (needs_write) */
        st->ser[i]->w = st->ser[i]->s.res;
        st->ser[i]->w_vendor = st->ser[i]->s.h.vendor;
        st->ser[i]->written = true;
        if (fired)
            st->ser[i]->route_due = false;
    }
}

static size_t count_writes(const t_study_t *st, bool fire)
{
    size_t n = 0;
    for (size_t i = 0; i < st->n_ser; i++)
        n += needs_write(st->ser[i], fire);
    return n;
}

static void pass_work(uv_work_t *w)
{
    pass_job_t *j = w->data;
    uint64_t t0 = thread_cpu_ns();
    mt_tagger_t *t = j->t;
    t_study_t *st = j->st;
    mt_tag_series_t **arr = mt_malloc((st->n_ser ? st->n_ser : 1) * sizeof *arr);
    for (size_t i = 0; i < st->n_ser; i++) {
        t_series_t *se = st->ser[i];
        if (se->dirty) {
            mt_tag_series_finish(&se->s);
            se->s.fam = -1; /* re-classify on the new statistics */
        }
        arr[i] = &se->s;
    }
    mt_tag_study_t study = {arr, st->n_ser, false, false, {0, 0, 0}, false, -1, NAN};
    mt_tag_study_run(&study);
    mt_free(arr);
    j->rc = 0;
    bool fire = st->final_pass && j->conf && j->conf->routes;
    /* nothing new or changed (a study pass after the series passes): no transaction at all
     * (~300 us each, docs/tagging.md) */
    size_t n_write = count_writes(st, fire);
    if (n_write && j->may_defer) {
        j->deferred = true; /* a pass after WRITE_GAP_MS writes them (tick) */
        n_write = 0;
    }
    for (size_t k = 0; k < j->n_also; k++) /* other studies' deferred rows (never deferred) */
        n_write += count_writes(j->also[k], false);
    if (n_write && !t->ix)
        j->rc = mt_index_sqlite_open(t->index_path, &t->ix);
    if (n_write && j->rc == 0 && (j->rc = t->ix->ops->begin(t->ix)) == 0) {
        j->rc = j->deferred ? 0 : write_rows(t, j, st, fire);
        for (size_t k = 0; k < j->n_also && j->rc == 0; k++)
            j->rc = write_rows(t, j, j->also[k], false);
        if (j->rc == 0)
            j->rc = t->ix->ops->commit(t->ix);
        else
            t->ix->ops->rollback(t->ix);
        if (j->rc == 0) {
            if (!j->deferred)
                remember_written(st, fire);
            for (size_t k = 0; k < j->n_also; k++)
                remember_written(j->also[k], false);
            j->wrote = true;
        }
    }
    j->cpu_ns = thread_cpu_ns() - t0;
}

/* A study that rode along in another study's pass (its deferred rows written there): what
 * arrived meanwhile joins it; it is not re-classified here, its dirty series keep their pass. */
static void after_ride(mt_tagger_t *t, t_study_t *st, bool wrote)
{
    st->busy = false;
    if (wrote)
        st->write_due = false;
    for (size_t i = 0; i < st->n_pending; i++) {
        study_add(t, st, &st->pending[i]);
        mt_tag_inst_dispose(&st->pending[i]);
    }
    st->n_pending = 0;
}

static void after_pass(uv_work_t *w, int status)
{
    pass_job_t *j = w->data;
    mt_tagger_t *t = j->t;
    t_study_t *st = j->st;
    t->pass_in_flight = false;
    st->busy = false;
    t->n_pass++;
    t->n_pass_series += st->n_ser;
    bool wrote = status == 0 && j->rc == 0 && j->wrote;
    if (wrote) {
        t->n_rows += j->n_rows;
        t->n_txn++;
        t->last_commit = uv_now(t->loop);
    }
    for (size_t k = 0; k < j->n_also; k++)
        after_ride(t, j->also[k], wrote);
    mt_free(j->also);
    if (j->deferred && !st->write_due)
        st->due_since = uv_now(t->loop);
    st->write_due = j->deferred;
    t->n_deferred += j->deferred;
    t->pass_ns += j->cpu_ns;
    if (j->conf)
        mt_node_conf_unref(t->node, j->conf);
    if (j->rc == 0 && j->n_queued)
        mt_log(MT_LOG_DEBUG, NULL, "tagger: %zu instance(s) queued by rules on the tag",
               j->n_queued);
    if (j->rc == 0 && j->n_queued && t->node && mt_node_forward(t->node))
        mt_forward_kick(mt_node_forward(t->node)); /* committed: send soon */
    if (status != 0 || j->rc != 0)
        mt_log(MT_LOG_WARN, NULL, "tagger: tags of a study not written: %s",
               mt_strerror(status ? status : j->rc));
    else
        mt_log(MT_LOG_DEBUG, NULL, "tagger: %zu series tagged (%s pass)", st->n_ser,
               st->final_pass ? "study" : "series");
    for (size_t i = 0; i < st->n_ser; i++)
        st->ser[i]->dirty = false;
    for (size_t i = 0; i < st->n_pending; i++) {
        study_add(t, st, &st->pending[i]);
        mt_tag_inst_dispose(&st->pending[i]);
    }
    st->n_pending = 0;
    bool drop = st->final_pass;
    for (size_t i = 0; i < st->n_ser; i++)
        drop &= !st->ser[i]->dirty;
    if (drop)
        study_free(t, st);
    mt_free(j);
    tick(t);
}

static void start_pass(mt_tagger_t *t, t_study_t *st, bool final)
{
    pass_job_t *j = mt_calloc(1, sizeof *j);
    j->t = t;
    j->st = st;
    j->w.data = j;
    st->busy = true;
    st->final_pass = final;
    t->pass_in_flight = true;
    if (t->node && final) { /* rules on the tag fire in study passes only (needs_write) */
        j->conf = mt_node_conf_ref(t->node); /* the rules in force now, kept for the pass */
        if (!j->conf->routes || !mt_route_set_after_tag(j->conf->routes, NULL)) {
            mt_node_conf_unref(t->node, j->conf);
            j->conf = NULL;
        }
    }
    j->may_defer = !final && !t->closing && t->last_commit &&
                   uv_now(t->loop) - t->last_commit < WRITE_GAP_MS;
    if (!j->may_defer) /* this pass commits: the rows other passes deferred go with it */
        for (t_study_t *o = t->studies; o; o = o->next)
            if (o != st && o->write_due) {
                j->also = mt_realloc(j->also, (j->n_also + 1) * sizeof *j->also);
                j->also[j->n_also++] = o;
                o->busy = true; /* its features wait on its pending list meanwhile */
            }
    if (uv_queue_work(t->loop, &j->w, pass_work, after_pass) != 0) {
        st->busy = false;
        t->pass_in_flight = false;
        for (size_t k = 0; k < j->n_also; k++)
            after_ride(t, j->also[k], false);
        mt_free(j->also);
        if (j->conf)
            mt_node_conf_unref(t->node, j->conf);
        mt_free(j);
    }
}

static void on_closed(uv_handle_t *h)
{
    mt_tagger_t *t = h->data;
    if (--t->n_open_handles)
        return;
    mt_log(MT_LOG_INFO, NULL,
           "tagger: %llu headers extracted (%.1f ms CPU), %llu passes over %llu series "
           "(%.1f ms CPU); the features joined their series in %.1f ms CPU (loop); "
           "%llu tag rows written in %llu transactions (%llu passes deferred their rows)",
           (unsigned long long)t->n_extract, (double)t->extract_ns / 1e6,
           (unsigned long long)t->n_pass, (unsigned long long)t->n_pass_series,
           (double)t->pass_ns / 1e6, (double)t->absorb_ns / 1e6,
           (unsigned long long)t->n_rows, (unsigned long long)t->n_txn,
           (unsigned long long)t->n_deferred);
    if (t->ix)
        t->ix->ops->close(t->ix);
    mt_free(t->dropped);
    t->dropped = NULL;
    t->closing = true; /* study_free: nothing to remember */
    while (t->studies)
        study_free(t, t->studies);
    void (*cb)(void *) = t->close_cb;
    void *data = t->close_data;
    mt_free(t->index_path);
    mt_free(t);
    if (cb)
        cb(data);
}

/* The study whose rows have waited longest for WRITE_GAP_MS, once it has passed; NULL if none
 * (its pass takes every other study's deferred rows along: start_pass). */
static t_study_t *write_due_study(mt_tagger_t *t, uint64_t now)
{
    t_study_t *due = NULL;
    if (t->closing || now - t->last_commit < WRITE_GAP_MS)
        return NULL;
    for (t_study_t *st = t->studies; st; st = st->next)
        if (st->write_due && (!due || st->due_since < due->due_since))
            due = st;
    return due;
}

static void tick(mt_tagger_t *t)
{
    if (t->pass_in_flight)
        return;
    uint64_t now = uv_now(t->loop);
    t_study_t *due = write_due_study(t, now);
    if (due) {
        start_pass(t, due, false); /* writes (the gap has passed): nothing new is needed */
        return;
    }
    for (t_study_t *st = t->studies; st; st = st->next) {
        bool series_ready = false;
        for (size_t i = 0; i < st->n_ser; i++)
            if (st->ser[i]->dirty)
                series_ready |= now - st->ser[i]->last_add >= t->series_idle;
        bool study_ready = now - st->last_add >= t->study_idle;
        if (t->closing) { /* every study gets its study pass: it also fires the rules on the
                           * tag for what the series passes tagged (needs_write) */
            start_pass(t, st, true);
            return;
        }
        if (study_ready) {
            start_pass(t, st, true); /* final pass (also drops a study with nothing new) */
            return;
        }
        if (series_ready) {
            start_pass(t, st, false);
            return;
        }
    }
    if (t->closing && t->extract_in_flight == 0 && !t->pend &&
        !uv_is_closing((uv_handle_t *)&t->timer)) {
        uv_close((uv_handle_t *)&t->batch_timer, on_closed);
        uv_close((uv_handle_t *)&t->timer, on_closed);
    }
}

static void on_tick(uv_timer_t *h)
{
    tick(h->data);
}

/* ---- the index connection, opened once per node at start-up ----
 * Opening it (the migration check and ~26 prepared statements, index_sqlite.c: ~7 M
 * instructions) is a once-per-node cost; in the first pass it landed inside the first ingest
 * (bench/tagging/icount.py: ~13,000 instructions per instance over 535 instances). The open
 * job holds the connection like a pass (pass_in_flight) so no pass starts before it ends; if
 * it fails, the first pass that writes tries again (pass_work). */
typedef struct open_job {
    uv_work_t w;
    mt_tagger_t *t;
    int rc;
} open_job_t;

static void open_work(uv_work_t *w)
{
    open_job_t *j = w->data;
    j->rc = mt_index_sqlite_open(j->t->index_path, &j->t->ix);
}

static void after_open(uv_work_t *w, int status)
{
    open_job_t *j = w->data;
    mt_tagger_t *t = j->t;
    if (status != 0 || j->rc != 0)
        mt_log(MT_LOG_WARN, NULL, "tagger: index connection not opened at start-up: %s",
               mt_strerror(status ? status : j->rc));
    mt_free(j);
    t->pass_in_flight = false;
    tick(t);
}

static void open_index_soon(mt_tagger_t *t)
{
    open_job_t *j = mt_calloc(1, sizeof *j);
    j->t = t;
    j->w.data = j;
    t->pass_in_flight = true;
    if (uv_queue_work(t->loop, &j->w, open_work, after_open) != 0) {
        t->pass_in_flight = false; /* the first pass that writes opens it */
        mt_free(j);
    }
}

int mt_tagger_new(uv_loop_t *loop, const char *index_path, uint32_t series_idle_ms,
                  uint32_t study_idle_ms, mt_tagger_t **out)
{
    mt_tagger_t *t = mt_calloc(1, sizeof *t);
    t->loop = loop;
    t->index_path = mt_strdup(index_path);
    t->pend_tail = &t->pend;
    t->series_idle = series_idle_ms;
    t->study_idle = study_idle_ms < series_idle_ms ? series_idle_ms : study_idle_ms;
    uv_timer_init(loop, &t->timer);
    t->timer.data = t;
    uint64_t period = series_idle_ms / 4;
    period = period < 50 ? 50 : period > 1000 ? 1000 : period;
    uv_timer_start(&t->timer, on_tick, period, period);
    uv_unref((uv_handle_t *)&t->timer);
    uv_timer_init(loop, &t->batch_timer);
    t->batch_timer.data = t;
    uv_unref((uv_handle_t *)&t->batch_timer);
    t->n_open_handles = 2;
    open_index_soon(t);
    *out = t;
    return 0;
}

void mt_tagger_route(mt_tagger_t *t, mt_node_t *node)
{
    t->node = node;
}

void mt_tagger_close(mt_tagger_t *t, void (*cb)(void *), void *data)
{
    t->closing = true;
    t->close_cb = cb;
    t->close_data = data;
    uv_timer_stop(&t->timer);
    uv_ref((uv_handle_t *)&t->timer);
    submit_batch(t); /* what waits for the batch delay goes now */
    tick(t);
}
