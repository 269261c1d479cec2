/*
 * retrieve.c - C-STORE sub-operations over a link: see retrieve.h for the sequence.
 *
 * From the page cache: when the link can send from a file (send_data_file: scu.c) and the
 * file is at most one CHUNK and wholly in the page cache (cachestat(2), a relay sending what
 * it has just stored), PREPARE reads only the head (HEAD bytes, for the File Meta) and the
 * data set goes from the file to the socket by sendfile(2): not read into a buffer here nor
 * copied from it into the socket (bench/README.md, "sendfile"). Otherwise, or when the head
 * does not hold the whole File Meta, the file is read as below; a file not in the cache is
 * never read on the loop thread (scu.c checks the cache again right before its sendfile, and
 * reads on the pool whatever it cannot send straight from the cache). Such a file is also
 * prepared on the loop (prepare_on_loop: opened and its head read only if neither can wait
 * for the disk), not by a pool job.
 *
 * Jobs: each instance has at most one job object (struct job) holding its open file and the
 * chunk being sent; a job runs on a libuv worker for PREPARE (open + first chunk + meta), READ
 * (next chunk) and REENCODE (whole file -> data set in the fallback syntax), and its after-work
 * callback continues on the loop. At most two jobs exist: the instance being sent (r->job) and
 * the next one, prepared while the current one is written or responses are awaited (r->pre).
 *
 * Slots: a C-STORE whose request went out holds a slot until both its last data fragment was
 * written and its response came (in any order: responses are matched by Message ID Being
 * Responded To in the link's pending table, whose user pointer is the slot). At most `window`
 * slots are in use (the negotiated asynchronous operations window, 1 without one): pump()
 * starts the next C-STORE when nothing is being written and a slot is free. Data sets are never
 * interleaved: one instance is written at a time, in instance order.
 *
 *   pump: [window has room, no job] take r->pre (ready) or PREPARE r->next
 *         -> begin_send (context; maybe REENCODE) -> send_store: slot, command, chunks
 *         -> on_sent(last) frees the job -> pump       on_rsp -> slot done when data_done
 *
 * mt_retrieve_free while a job is on a worker, a link callback is due or the pump is running
 * only marks the engine; the last of them frees it.
 */
#include "retrieve.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../dicom/ds.h"
#include "../util/alloc.h"
#include "../util/buf.h"
#include "../util/cachestat.h"
#include "../util/err.h"
#include "../util/nowait_io.h"

#define CHUNK (1024u * 1024u)
#define HEAD (16u * 1024u) /* read for the File Meta of a file sent from the page cache */
#define MAX_REENCODE ((uint64_t)1 << 31) /* files re-encoded in memory: at most 2 GiB */
#define TS_ILE "1.2.840.10008.1.2"
#define TS_ELE "1.2.840.10008.1.2.1"

enum job_kind { JOB_PREPARE, JOB_READ, JOB_REENCODE };

typedef struct slot slot_t;

typedef struct job {
    mt_retrieve_t *r;
    size_t idx;
    uv_work_t w;
    enum job_kind kind;
    bool in_work, ready;
    bool orphan; /* dropped by the engine while on a worker: after_work_cb frees it */
    int fd;
    uint64_t size, pos; /* file size; next file offset to read */
    mt_buf_t buf;       /* bytes read (or the re-encoded data set) */
    size_t buf_off;     /* data set bytes start here in buf */
    bool eof;           /* buf holds the end of the data set */
    bool from_file;     /* the data set [buf_off, size) goes from the file (send_data_file) */
    char meta_ts[65];
    const mt_ts_t *target; /* REENCODE: the syntax to encode in */
    int err;
    const char *why; /* static, for the log */
    uint8_t pcid;
    slot_t *slot; /* its C-STORE-RQ went out: the operation awaiting the response */
} job_t;

/* One C-STORE whose request went out and whose outcome is not known yet. */
struct slot {
    mt_retrieve_t *r;
    size_t idx;
    bool used, data_done, rsp_in;
    uint16_t status;
    char comment[65]; /* the response's Error Comment, printable ASCII only ("" = none) */
};

struct mt_retrieve {
    mt_retrieve_params_t p;
    mt_log_ctx_t log;
    char originator[17];
    mt_subop_inst_t *insts;
    size_t n;
    size_t next;   /* the next instance to take into a job */
    size_t n_done; /* instances with an outcome */
    mt_retrieve_counts_t c;
    mt_buf_t failed;
    uint64_t bytes;
    job_t *job, *pre; /* the instance being prepared or sent; the next one, prepared ahead */
    slot_t slots[MT_LINK_MAX_PENDING];
    unsigned window; /* operations we may have outstanding (link max_outstanding) */
    unsigned n_out;  /* slots in use */
    unsigned n_work; /* jobs on a worker */
    unsigned n_cb;   /* link callbacks still to come (responses, write completions) */
    bool link_lost, progress_due, in_pump;
    bool cancel, done, freed;
};

static void pump(mt_retrieve_t *r);
static void begin_send(mt_retrieve_t *r, job_t *j);

/* ---- bookkeeping ---- */

static void add_failed_uid(mt_retrieve_t *r, const char *uid)
{
    if (r->failed.len)
        mt_buf_append(&r->failed, "\\", 1);
    mt_buf_append(&r->failed, uid, strlen(uid));
}

static void job_free(job_t *j)
{
    if (!j)
        return;
    if (j->fd >= 0)
        close(j->fd);
    mt_buf_dispose(&j->buf);
    mt_free(j);
}

static void engine_free(mt_retrieve_t *r)
{
    /* n_work is 0: neither job is on a worker */
    job_free(r->job);
    job_free(r->pre);
    for (size_t i = 0; i < r->n; i++)
        mt_free(r->insts[i].path);
    mt_free(r->insts);
    mt_buf_dispose(&r->failed);
    mt_free(r);
}

/* ---- workers ---- */

static int read_upto(job_t *j, size_t max)
{
    size_t want = j->size - j->pos < max ? (size_t)(j->size - j->pos) : max;
    mt_buf_reset(&j->buf);
    if (mt_buf_reserve(&j->buf, want) < 0)
        return MT_ENOMEM;
    size_t got = 0;
    while (got < want) {
        ssize_t k = pread(j->fd, j->buf.data + got, want - got, (off_t)(j->pos + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return MT_EIO;
        got += (size_t)k;
    }
    j->buf.len = got;
    j->pos += got;
    j->eof = j->pos >= j->size;
    return 0;
}

static int read_chunk(job_t *j)
{
    return read_upto(j, CHUNK);
}

/* The job's first read: only the head when the data set can go from the page cache. */
static int read_first(job_t *j)
{
    j->from_file = j->r->p.link.ops->send_data_file && j->size <= CHUNK && j->size > HEAD &&
                   mt_in_page_cache(j->fd, 0, j->size);
    return read_upto(j, j->from_file ? HEAD : CHUNK);
}

/* The File Meta of the head j->buf holds: the stored syntax, where the data set starts. */
static int parse_meta(job_t *j)
{
    mt_meta_t meta;
    size_t consumed = 0;
    mt_diag_t d = {0, NULL};
    int rc = mt_part10_read_meta(j->buf.data, j->buf.len, &meta, &consumed, &d);
    if (rc < 0 || !meta.transfer_syntax_uid[0])
        return rc < 0 ? rc : MT_EMALFORMED;
    snprintf(j->meta_ts, sizeof j->meta_ts, "%s", meta.transfer_syntax_uid);
    j->buf_off = consumed;
    return 0;
}

/* PREPARE on the loop thread, where it cannot wait for the disk: the path resolves from the
 * kernel's lookup cache, the whole file is in the page cache, the head reads without blocking
 * and holds the File Meta (a relay sending what it has just stored). That saves the pool's
 * round trip per instance (a worker woken, its completion sent back to the loop: bench/
 * README.md "A's queue and forwarder, session 8"). False, with j as new: anything else,
 * errors included, is for the pool job (work_prepare), which starts afresh. */
static bool prepare_on_loop(job_t *j)
{
    if (!j->r->p.link.ops->send_data_file || !mt_page_cache_checkable())
        return false; /* (a kernel before 6.5: nothing is sent from the page cache) */
    struct stat st;
    j->fd = mt_open_cached(j->r->insts[j->idx].path);
    bool ok = j->fd >= 0 && fstat(j->fd, &st) == 0 && st.st_size > HEAD &&
              (uint64_t)st.st_size <= CHUNK && mt_in_page_cache(j->fd, 0, (uint64_t)st.st_size) &&
              mt_buf_reserve(&j->buf, HEAD) == 0 &&
              mt_pread_nowait(j->fd, j->buf.data, HEAD, 0) == (ssize_t)HEAD;
    if (ok) {
        j->kind = JOB_PREPARE;
        j->size = (uint64_t)st.st_size;
        j->buf.len = HEAD;
        j->pos = HEAD;
        j->eof = false; /* size > HEAD */
        j->from_file = true;
        ok = parse_meta(j) == 0;
    }
    if (!ok) {
        if (j->fd >= 0)
            close(j->fd);
        j->fd = -1;
        j->size = j->pos = 0;
        j->buf_off = 0;
        j->from_file = false;
        mt_buf_reset(&j->buf);
    }
    return ok;
}

static void work_prepare(job_t *j)
{
    const mt_subop_inst_t *in = &j->r->insts[j->idx];
    j->fd = open(in->path, O_RDONLY | O_CLOEXEC);
    if (j->fd < 0) {
        j->err = MT_ENOENT;
        j->why = "cannot open the stored file";
        return;
    }
    struct stat st;
    if (fstat(j->fd, &st) < 0 || st.st_size <= 0) {
        j->err = MT_EIO;
        j->why = "cannot stat the stored file";
        return;
    }
    j->size = (uint64_t)st.st_size;
    if ((j->err = read_first(j)) < 0) {
        j->why = "cannot read the stored file";
        return;
    }
    int rc = parse_meta(j);
    if (rc < 0 && j->from_file) { /* a File Meta longer than HEAD: read as without the cache */
        j->from_file = false;
        j->pos = 0;
        if ((j->err = read_chunk(j)) < 0) {
            j->why = "cannot read the stored file";
            return;
        }
        rc = parse_meta(j);
    }
    if (rc < 0) {
        j->err = MT_EMALFORMED;
        j->why = "stored file has no readable file meta";
    }
}

static void work_reencode(job_t *j)
{
    if (j->size > MAX_REENCODE) {
        j->err = MT_ETOOBIG;
        j->why = "file too large to re-encode";
        return;
    }
    mt_buf_t whole;
    mt_buf_init(&whole, (size_t)j->size);
    if (mt_buf_reserve(&whole, (size_t)j->size) < 0) {
        mt_buf_dispose(&whole);
        j->err = MT_ENOMEM;
        j->why = "out of memory";
        return;
    }
    size_t got = 0;
    while (got < j->size) {
        ssize_t k = pread(j->fd, whole.data + got, (size_t)j->size - got, (off_t)got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    whole.len = got;
    j->from_file = false;
    mt_meta_t meta;
    mt_ds_t *ds = NULL;
    mt_diag_t d = {0, NULL};
    int rc =
        got == j->size ? mt_part10_parse_file_buf(whole.data, whole.len, &meta, &ds, &d) : MT_EIO;
    mt_buf_dispose(&whole);
    mt_buf_dispose(&j->buf);
    mt_buf_init(&j->buf, SIZE_MAX);
    if (rc == 0)
        rc = mt_ds_encode(ds, j->target, &j->buf);
    mt_ds_free(ds);
    if (rc < 0) {
        j->err = rc;
        j->why = "cannot re-encode the data set";
        return;
    }
    j->buf_off = 0;
    j->eof = true;
}

static void work_cb(uv_work_t *w)
{
    job_t *j = w->data;
    switch (j->kind) {
    case JOB_PREPARE:
        work_prepare(j);
        break;
    case JOB_READ:
        if ((j->err = read_chunk(j)) < 0)
            j->why = "cannot read the stored file";
        j->buf_off = 0;
        break;
    case JOB_REENCODE:
        work_reencode(j);
        break;
    }
}

static void after_work_cb(uv_work_t *w, int status);

static int launch(mt_retrieve_t *r, job_t *j, enum job_kind kind)
{
    j->kind = kind;
    j->in_work = true;
    j->ready = false;
    j->w.data = j;
    int rc = uv_queue_work(r->p.loop, &j->w, work_cb, after_work_cb);
    if (rc < 0) {
        j->in_work = false;
        j->err = MT_ECANCELED;
        j->why = "cannot queue file work";
        return rc;
    }
    r->n_work++;
    return 0;
}

static job_t *job_new(mt_retrieve_t *r, size_t idx)
{
    job_t *j = mt_calloc(1, sizeof *j);
    j->r = r;
    j->idx = idx;
    j->fd = -1;
    mt_buf_init(&j->buf, SIZE_MAX);
    return j;
}

/* ---- sub-operations ---- */

const char mt_retrieve_why_link_lost[] = "association lost";

/* Free j now, or when its worker returns. */
static void drop_job(job_t *j)
{
    if (j && j->in_work)
        j->orphan = true;
    else
        job_free(j);
}

/* The outcome of instance idx: counted, reported, logged. */
static void report(mt_retrieve_t *r, size_t idx, bool sent, uint16_t status, const char *why)
{
    const mt_subop_inst_t *in = &r->insts[idx];
    r->n_done++;
    r->progress_due = true;
    if (r->p.on_subop)
        r->p.on_subop(r->p.user, in, sent, status, why);
    if (!sent || (status != MT_STATUS_SUCCESS && (status & 0xF000) != 0xB000)) {
        r->c.failed++;
        add_failed_uid(r, in->sop_inst);
        if (sent && status != MT_RETRIEVE_NO_RSP)
            mt_log(MT_LOG_INFO, &r->log, "sub-operation %zu/%zu failed: C-STORE status 0x%04X%s%s",
                   idx + 1, r->n, status, why ? ": " : "", why ? why : "");
        else
            mt_log(MT_LOG_INFO, &r->log, "sub-operation %zu/%zu failed: %s", idx + 1, r->n,
                   why ? why : "?");
        mt_log(MT_LOG_DEBUG, &r->log, "failed sub-operation: class=%s instance=%s", in->sop_class,
               in->sop_inst);
    } else if (status == MT_STATUS_SUCCESS) {
        r->c.completed++;
    } else {
        r->c.warning++;
    }
}

static void finish(mt_retrieve_t *r)
{
    if (r->done)
        return;
    r->done = true;
    drop_job(r->job);
    drop_job(r->pre);
    r->job = r->pre = NULL;
    r->c.remaining = (unsigned)(r->n - r->n_done);
    mt_log(MT_LOG_INFO, &r->log,
           "sub-operations %s: completed=%u failed=%u warning=%u remaining=%u bytes=%llu",
           r->cancel ? "cancelled" : "done", r->c.completed, r->c.failed, r->c.warning,
           r->c.remaining, (unsigned long long)r->bytes);
    if (r->p.on_done)
        r->p.on_done(r, r->p.user);
}

/* The job's sub-operation failed before its C-STORE-RQ went out. */
static void job_failed(mt_retrieve_t *r, job_t *j, const char *why)
{
    report(r, j->idx, false, 0, why);
    if (r->job == j)
        r->job = NULL;
    drop_job(j);
    pump(r);
}

static void slot_complete(mt_retrieve_t *r, slot_t *s)
{
    s->used = false;
    r->n_out--;
    report(r, s->idx, true, s->status, s->comment[0] ? s->comment : NULL);
}

/* The association is gone: what awaited its response failed without one (status
 * MT_RETRIEVE_NO_RSP), everything not sent failed as mt_retrieve_why_link_lost; a slot whose
 * response came in (its last write completion still due) keeps that response's outcome. */
static void lose_link(mt_retrieve_t *r)
{
    if (r->link_lost || r->done)
        return;
    r->link_lost = true;
    mt_log(MT_LOG_WARN, &r->log,
           "association lost: %u sub-operation(s) awaiting a response, %zu not sent", r->n_out,
           r->n - r->n_done - r->n_out);
    for (unsigned k = 0; k < MT_LINK_MAX_PENDING; k++) {
        slot_t *s = &r->slots[k];
        if (!s->used)
            continue;
        s->used = false;
        /* a response already in counts: the peer had the whole data set (our write completion
         * was simply not delivered yet); an acknowledged instance must never be retried */
        if (s->rsp_in)
            report(r, s->idx, true, s->status, s->comment[0] ? s->comment : NULL);
        else
            report(r, s->idx, true, MT_RETRIEVE_NO_RSP, "association lost before the response");
    }
    r->n_out = 0;
    if (r->job && !r->job->slot)
        report(r, r->job->idx, false, 0, mt_retrieve_why_link_lost);
    if (r->pre)
        report(r, r->pre->idx, false, 0, mt_retrieve_why_link_lost);
    for (size_t i = r->next; i < r->n; i++)
        report(r, i, false, 0, mt_retrieve_why_link_lost);
    r->next = r->n;
    finish(r);
}

static void prefetch(mt_retrieve_t *r)
{
    if (r->pre || r->cancel || r->link_lost || r->done || r->next >= r->n)
        return;
    r->pre = job_new(r, r->next++);
    if (prepare_on_loop(r->pre))
        r->pre->ready = true;
    else if (launch(r, r->pre, JOB_PREPARE) < 0)
        r->pre->ready = true; /* its error is reported when its turn comes */
}

static bool release_cb(mt_retrieve_t *r)
{
    r->n_cb--;
    if (r->freed) {
        if (r->n_work == 0 && r->n_cb == 0 && !r->in_pump)
            engine_free(r);
        return true;
    }
    return false;
}

static void on_rsp(void *user, int err, const mt_dimse_cmd_t *rsp)
{
    slot_t *s = user;
    mt_retrieve_t *r = s->r;
    if (release_cb(r) || r->done)
        return;
    if (err < 0 || !rsp) {
        lose_link(r);
        return;
    }
    s->rsp_in = true;
    s->status = rsp->status;
    size_t k = 0; /* kept for the log and the queue's last_error: nothing but printable ASCII */
    for (const char *c = rsp->error_comment; *c && k + 1 < sizeof s->comment; c++)
        s->comment[k++] = *c >= 0x20 && *c < 0x7f ? *c : '?';
    s->comment[k] = '\0';
    if (s->data_done) {
        slot_complete(r, s);
        pump(r);
    }
}

static void send_chunk(mt_retrieve_t *r, job_t *j);

static void on_sent(void *user, int err)
{
    mt_retrieve_t *r = user;
    if (release_cb(r) || r->done || !r->job || !r->job->slot)
        return;
    job_t *j = r->job;
    if (err < 0) {
        lose_link(r);
        return;
    }
    if (!j->eof) {
        if (launch(r, j, JOB_READ) < 0)
            lose_link(r); /* a half-sent data set cannot be finished: give up */
        return;
    }
    slot_t *s = j->slot;
    s->data_done = true;
    r->job = NULL;
    job_free(j); /* not on a worker: its last chunk was just written */
    if (s->rsp_in)
        slot_complete(r, s);
    pump(r);
}

static void send_chunk(mt_retrieve_t *r, job_t *j)
{
    const uint8_t *p = j->buf.data + j->buf_off;
    size_t n = j->buf.len - j->buf_off;
    const mt_link_ops_t *ops = r->p.link.ops;
    if (j->from_file) { /* the whole data set, from the page cache (file comment) */
        n = (size_t)(j->size - j->buf_off);
        j->eof = true;
    }
    r->bytes += n;
    /* the chunk's buffer handed to the link when it can write it as is (no copy); the next
     * READ allocates a new one */
    int rc = j->from_file ? ops->send_data_file(r->p.link.impl, j->pcid, j->fd, j->buf_off, n,
                                                on_sent, r)
             : ops->send_data_buf ? ops->send_data_buf(r->p.link.impl, j->pcid, &j->buf,
                                                     j->buf_off, j->eof, on_sent, r)
                                : ops->send_data(r->p.link.impl, j->pcid, p, n, j->eof, on_sent, r);
    if (rc < 0)
        lose_link(r);
    else
        r->n_cb++;
}

static slot_t *free_slot(mt_retrieve_t *r)
{
    for (unsigned k = 0; k < MT_LINK_MAX_PENDING; k++)
        if (!r->slots[k].used)
            return &r->slots[k];
    return NULL;
}

static void send_store(mt_retrieve_t *r, job_t *j)
{
    const mt_subop_inst_t *in = &r->insts[j->idx];
    mt_dimse_cmd_t rq;
    mt_dimse_cmd_init(&rq);
    rq.command_field = MT_C_STORE_RQ;
    rq.message_id = r->p.link.ops->next_message_id(r->p.link.impl);
    rq.priority = r->p.priority;
    rq.data_set_type = 0x0001;
    snprintf(rq.affected_sop_class_uid, sizeof rq.affected_sop_class_uid, "%s", in->sop_class);
    snprintf(rq.affected_sop_instance_uid, sizeof rq.affected_sop_instance_uid, "%s", in->sop_inst);
    if (r->originator[0]) {
        rq.has_move_originator = true;
        snprintf(rq.move_originator_ae, sizeof rq.move_originator_ae, "%s", r->originator);
        rq.move_originator_message_id = r->p.move_originator_msg_id;
    }
    slot_t *s = free_slot(r);
    assert(s); /* n_out < window <= MT_LINK_MAX_PENDING */
    *s = (slot_t){.r = r, .idx = j->idx, .used = true};
    int rc = r->p.link.ops->send_command(r->p.link.impl, j->pcid, &rq, on_rsp, s);
    if (rc < 0) {
        s->used = false;
        lose_link(r);
        return;
    }
    r->n_out++;
    r->n_cb++;
    j->slot = s;
    send_chunk(r, j);
}

/* The context for j's instance, maybe with a re-encoding to a fallback syntax. */
static void begin_send(mt_retrieve_t *r, job_t *j)
{
    r->job = j;
    if (j->err) {
        job_failed(r, j, j->why);
        return;
    }
    const mt_subop_inst_t *in = &r->insts[j->idx];
    const mt_link_ops_t *ops = r->p.link.ops;
    if (j->kind == JOB_PREPARE) {
        j->pcid = ops->find_pc(r->p.link.impl, in->sop_class, j->meta_ts);
        if (j->pcid) {
            send_store(r, j);
            return;
        }
        const mt_ts_t *ts = mt_ts_find(j->meta_ts);
        if (ts && !ts->encapsulated) {
            const char *fb[2] = {TS_ELE, TS_ILE};
            for (int k = 0; k < 2 && !j->pcid; k++) {
                j->pcid = ops->find_pc(r->p.link.impl, in->sop_class, fb[k]);
                j->target = mt_ts_find(fb[k]);
            }
        }
        if (!j->pcid) {
            job_failed(r, j, "no accepted presentation context for the SOP class and syntax");
            return;
        }
        mt_log(MT_LOG_DEBUG, &r->log, "re-encoding %s -> %s for the destination", j->meta_ts,
               j->target->uid);
        if (launch(r, j, JOB_REENCODE) < 0)
            job_failed(r, j, j->why);
        return;
    }
    send_store(r, j); /* re-encoded */
}

static void after_work_cb(uv_work_t *w, int status)
{
    job_t *j = w->data;
    mt_retrieve_t *r = j->r;
    j->in_work = false;
    r->n_work--;
    if (j->orphan) {
        job_free(j);
        if (r->freed && r->n_work == 0 && r->n_cb == 0)
            engine_free(r);
        return;
    }
    if (r->freed) {
        if (r->n_work == 0 && r->n_cb == 0)
            engine_free(r);
        return;
    }
    if (status < 0 && !j->err) {
        j->err = MT_ECANCELED;
        j->why = "node shutting down";
    }
    if (r->done)
        return; /* finished meanwhile: the job is freed with the engine */
    if (j == r->pre) {
        j->ready = true;
        pump(r);
        return;
    }
    if (j != r->job)
        return;
    switch (j->kind) {
    case JOB_PREPARE:
    case JOB_REENCODE:
        if (j->err) {
            job_failed(r, j, j->why);
            return;
        }
        begin_send(r, j);
        break;
    case JOB_READ:
        if (j->err) {
            lose_link(r);
            return;
        }
        send_chunk(r, j);
        break;
    }
}

/* Start the next C-STORE when nothing is being sent and the window has room; keep the next
 * file prepared; finish when nothing is left (or cancelled and nothing outstanding). */
static void pump(mt_retrieve_t *r)
{
    if (r->done || r->freed || r->link_lost || r->in_pump)
        return;
    r->in_pump = true;
    for (;;) {
        if (r->progress_due && !r->cancel && r->n_done < r->n && r->p.on_progress) {
            r->progress_due = false;
            r->p.on_progress(r, r->p.user);
            if (r->done || r->freed || r->link_lost)
                break;
        }
        r->progress_due = false;
        size_t done_before = r->n_done;
        if (!r->job && !r->cancel && r->n_out < r->window) {
            if (r->pre && r->pre->ready) {
                job_t *j = r->pre;
                r->pre = NULL;
                begin_send(r, j);
            } else if (!r->pre && r->next < r->n) {
                job_t *j = job_new(r, r->next++);
                r->job = j;
                if (prepare_on_loop(j)) {
                    begin_send(r, j);
                } else if (launch(r, j, JOB_PREPARE) < 0) {
                    report(r, j->idx, false, 0, j->why);
                    r->job = NULL;
                    drop_job(j);
                }
            }
        }
        if (r->done || r->freed || r->link_lost)
            break;
        prefetch(r);
        if (!r->job && r->n_out == 0 && (r->cancel || (r->next >= r->n && !r->pre))) {
            finish(r);
            break;
        }
        if (r->n_done == done_before && !r->progress_due)
            break; /* nothing changed synchronously: callbacks continue */
    }
    r->in_pump = false;
    if (r->freed && r->n_work == 0 && r->n_cb == 0)
        engine_free(r); /* freed from a callback the pump made */
}

/* ---- API ---- */

mt_retrieve_t *mt_retrieve_new(const mt_retrieve_params_t *p, mt_subop_inst_t *insts, size_t n)
{
    mt_retrieve_t *r = mt_calloc(1, sizeof *r);
    r->p = *p;
    if (p->log)
        r->log = *p->log;
    r->p.log = &r->log;
    if (p->move_originator_ae)
        snprintf(r->originator, sizeof r->originator, "%s", p->move_originator_ae);
    r->insts = insts;
    r->n = n;
    r->c.remaining = (unsigned)n;
    mt_buf_init(&r->failed, SIZE_MAX);
    return r;
}

void mt_retrieve_start(mt_retrieve_t *r)
{
    const mt_link_ops_t *ops = r->p.link.ops;
    unsigned w = ops && ops->max_outstanding ? ops->max_outstanding(r->p.link.impl) : 1;
    r->window = w < 1 ? 1 : w > MT_LINK_MAX_PENDING ? MT_LINK_MAX_PENDING : w;
    if (r->window > 1)
        mt_log(MT_LOG_DEBUG, &r->log, "up to %u C-STORE operations outstanding", r->window);
    pump(r);
}

void mt_retrieve_fail_all(mt_retrieve_t *r)
{
    for (size_t i = r->next; i < r->n; i++)
        report(r, i, false, 0, "no association");
    r->next = r->n;
    r->link_lost = true;
    finish(r);
}

void mt_retrieve_link_lost(mt_retrieve_t *r)
{
    lose_link(r);
}

void mt_retrieve_cancel(mt_retrieve_t *r)
{
    r->cancel = true;
}

bool mt_retrieve_cancelled(const mt_retrieve_t *r)
{
    return r->cancel && r->n_done < r->n;
}

void mt_retrieve_free(mt_retrieve_t *r)
{
    if (!r)
        return;
    r->freed = true;
    if (r->n_work == 0 && r->n_cb == 0 && !r->in_pump)
        engine_free(r); /* else the last callback (or the pump on its way out) frees it */
}

mt_retrieve_counts_t mt_retrieve_counts(const mt_retrieve_t *r)
{
    mt_retrieve_counts_t c = r->c;
    c.remaining = (unsigned)(r->n - c.completed - c.failed - c.warning);
    return c;
}

const char *mt_retrieve_failed_uids(const mt_retrieve_t *r)
{
    if (!r->failed.len)
        return "";
    mt_buf_t *b = (mt_buf_t *)&r->failed;
    if (mt_buf_reserve(b, 1) < 0)
        return "";
    b->data[b->len] = 0;
    return (const char *)b->data;
}

uint64_t mt_retrieve_bytes(const mt_retrieve_t *r)
{
    return r->bytes;
}

/* ---- pure helpers ---- */

static bool same_proposal(const mt_nego_proposal_t *p, const char *as, const char *ts0)
{
    return strcmp(p->abstract_syntax, as) == 0 && strcmp(p->ts[0], ts0) == 0;
}

size_t mt_retrieve_proposals(const mt_subop_inst_t *insts, size_t n, mt_nego_proposal_t *out,
                             size_t max, bool *truncated)
{
    size_t k = 0;
    *truncated = false;
    for (size_t i = 0; i < n; i++) {
        const mt_ts_t *ts = mt_ts_find(insts[i].ts);
        const char *as = insts[i].sop_class;
        /* the stored syntax first; Explicit/Implicit LE after it when native */
        mt_nego_proposal_t want[2];
        size_t n_want = 0;
        memset(want, 0, sizeof want);
        if (!ts) {
            want[0].abstract_syntax = as;
            want[0].ts[0] = TS_ELE; /* unknown syntax: only a re-encoded copy could go */
            want[0].ts[1] = TS_ILE;
            want[0].n_ts = 2;
            n_want = 1;
        } else if (strcmp(ts->uid, TS_ELE) == 0 || strcmp(ts->uid, TS_ILE) == 0) {
            want[0].abstract_syntax = as;
            want[0].ts[0] = ts->uid;
            want[0].ts[1] = strcmp(ts->uid, TS_ELE) == 0 ? TS_ILE : TS_ELE;
            want[0].n_ts = 2;
            n_want = 1;
        } else {
            want[0].abstract_syntax = as;
            want[0].ts[0] = ts->uid;
            want[0].n_ts = 1;
            n_want = 1;
            if (!ts->encapsulated) {
                want[1].abstract_syntax = as;
                want[1].ts[0] = TS_ELE;
                want[1].ts[1] = TS_ILE;
                want[1].n_ts = 2;
                n_want = 2;
            }
        }
        for (size_t w = 0; w < n_want; w++) {
            bool dup = false;
            for (size_t q = 0; q < k && !dup; q++)
                dup = same_proposal(&out[q], want[w].abstract_syntax, want[w].ts[0]);
            if (dup)
                continue;
            if (k == max) {
                *truncated = true;
                continue;
            }
            out[k++] = want[w];
        }
    }
    return k;
}

uint16_t mt_retrieve_final_status(const mt_retrieve_counts_t *c, bool cancelled)
{
    if (cancelled)
        return MT_STATUS_CANCEL;
    if (c->failed == 0 && c->warning == 0)
        return MT_STATUS_SUCCESS;
    if (c->completed == 0 && c->warning == 0)
        return 0xA702;
    return MT_STATUS_WARN_COERCION; /* B000: sub-operations complete, one or more failures */
}
