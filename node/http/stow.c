/*
 * stow.c - STOW-RS (PS3.18 §10.5): POST multipart/related; type="application/dicom" to
 * {base}/studies or {base}/studies/{StudyInstanceUID}.
 *
 * Each part is a Part 10 file that streams through the path a C-STORE takes (node/svc/
 * store.c): its File Meta gives SOP class/instance and transfer syntax; the data set bytes go
 * to an ingest job (node/store/ingest.h: temp file, group commit, completion only when the
 * file and its index row are durable) or, when deid.profile is set, through the streaming
 * de-identifier first (node/deid/stream.h), so the original never reaches the disk; a
 * streaming reader checks the data set and fills the index record. Reading the request body
 * pauses while a job holds more than its buffer budget (back-pressure down to TCP).
 * A part POSTed to a project base URL joins that project (index project_add, on a worker
 * once every commit has completed).
 * Routing (routing.rules of the request's config snapshot, route/decide.h as in svc/store.c):
 * the part's data set bytes are held until its attributes before Pixel Data are known; then
 * the rules decide (route_decide: no calling AE, called AE = the URL project's AE title or
 * node.ae_title, peer = the client's address, user = the authenticated user): reject -> 0124,
 * nothing written, the reason in a Warning header field of the response; otherwise the job
 * starts with the rule's profile and the decision's projects, destinations and armed tag rules
 * go into the index record (route_ingest.h), written in the instance's transaction.
 *
 * Response (application/dicom+json): RetrieveURL of the study (when one), ReferencedSOP-
 * Sequence (0008,1199) with RetrieveURL per stored instance, FailedSOPSequence (0008,1198)
 * with FailureReason (0008,1197):
 *   0xA700 out of resources · 0xA900 data set does not match (SOP class/instance of meta
 *   and data set differ, or StudyInstanceUID is not the one in the URL) · 0xC000 cannot
 *   understand (no Part 10 header, malformed, unknown syntax, not application/dicom) ·
 *   0x0111 duplicate (storage.duplicates reject) · 0x0110 processing failure ·
 *   0x0124 not authorized: through a project base URL, the part's study (or SOP instance)
 *   exists outside that project (joining it would expose the other project's data); or a
 *   routing rule refused it.
 * Quarantine (deid burned-in-annotation: quarantine, Burned In Annotation YES): the part is
 * de-identified as usual and held in <root>/.quarantine/ like a C-STORE (ingest.h), not
 * indexed; it is listed in ReferencedSOPSequence with WarningReason (0008,1196) B000
 * (Coercion of Data Elements, PS3.18 Annex I Table I.1-1 and I.2.1: "accepted with
 * warnings") and an empty RetrieveURL (Type 2: nothing can be retrieved before release).
 *   0xC122 (metadata requests) a transfer-syntax parameter naming no syntax we know.
 * Status: 200 all stored; 202 some stored, some failed or accepted with a warning
 * (PS3.18 Table 10.5.3-1); 409 none stored; 400 malformed multipart (or malformed metadata
 * JSON, or no metadata part); 413 metadata + bulk data over http.stow_hold_mb (or over the
 * metadata limits of stowjson.h); 415 not multipart/related with type application/dicom or
 * application/dicom+json (application/dicom+xml, PS3.19, is refused with its own message).
 *
 * type="application/dicom+json" (metadata and bulk data, PS3.18 §10.5.1): the parts are held
 * by stowjson.c until the body ends; it builds each instance's data set bytes (Explicit VR
 * Little Endian, or the encapsulated syntax of compressed Pixel Data parts) and
 * on_json_instance feeds them to a part exactly as if they had come in an application/dicom
 * part: same de-identification, checks, scope, ingest and response entries.
 *
 * Lifetime: a part lives from its first byte until commit() hands its job to the ingest; the
 * completion callback gets a small ticket (request, result index), never the part.
 */
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "../deid/stream.h"
#include "../dicom/ds.h"
#include "../index/index.h"
#include "../route/decide.h"
#include "../route_ingest.h"
#include "../tag/capture.h"
#include "../tagger.h"
#include "../util/alloc.h"
#include "../util/err.h"
#include "../util/log.h"
#include "json.h"
#include "multipart.h"
#include "stowjson.h"
#include "web.h"

#define TAG_SOP_CLASS_UID MT_TAG(0x0008, 0x0016)
#define TAG_SOP_INSTANCE_UID MT_TAG(0x0008, 0x0018)
#define TAG_STUDY_UID MT_TAG(0x0020, 0x000D)
#define TAG_SERIES_UID MT_TAG(0x0020, 0x000E)
#define HEAD_MAX (1u << 20)
/* Undecided (routing), data set bytes are taken in slices of at most this: a dicom+json
 * instance comes whole, and only its header (plus one slice) is to be held. */
#define ROUTE_SLICE ((size_t)256 << 10)

#define R_OUT_OF_RESOURCES 0xA700
#define R_MISMATCH 0xA900
#define R_CANNOT_UNDERSTAND 0xC000
#define R_DUPLICATE 0x0111
#define R_FAILURE 0x0110
#define R_NOT_AUTHORIZED 0x0124 /* PS3.7 Annex C: Refused: Not authorized */
#define W_COERCION 0xB000       /* PS3.18 I.2.1 Warning Reason: Coercion of Data Elements */
#define R_TS_NOT_SUPPORTED 0xC122 /* PS3.18 §10.5: Referenced Transfer Syntax not supported */

typedef struct stow stow_t;

typedef struct result {
    char cls[65], inst[65], study[65], series[65];
    uint16_t reason;  /* 0 = stored */
    uint16_t warning; /* stored with a warning: quarantined (W_COERCION) */
    const char *why;  /* refused by a routing rule: its reason (in the request's snapshot) */
} result_t;

typedef struct part {
    stow_t *s;
    size_t idx; /* into results */
    mt_buf_t head;
    bool meta_done;
    mt_meta_t meta;
    const mt_ts_t *ts;
    mt_ingest_job_t *job;
    mt_ds_reader_t *reader;
    mt_index_rec_t *rec;
    mt_deid_stream_t *deid;
    uint16_t fail;
    uv_work_t work;      /* scope check (project base URLs) */
    bool study_outside, inst_outside, out_of_scope;
    bool quarantined; /* Burned In Annotation YES, profile says quarantine */
    char study_uid[65], sop_uid[65];
    mt_tag_capture_t hdr; /* the original header for the CMR tagger, as for a C-STORE */
    mt_route_pending_t route; /* routing.rules of the request's snapshot (route/decide.h) */
} part_t;

struct stow {
    mt_web_req_t *wr;
    char study[65];
    bool has_study;
    mt_mp_t *mp;
    mt_stowjson_t *json; /* type="application/dicom+json": metadata and bulk data parts */
    bool too_big, json_too_big;
    const char *json_error; /* the whole request refused: 400 (413 when json_too_big) */
    part_t *cur;
    result_t *res;
    size_t n_res, cap_res;
    size_t pending;
    bool body_done, malformed, paused, aborted, responded;
    char project[65];
    char called[17]; /* the AE title the rules see as called_ae: the project's or the node's */
    char (*cleared)[65]; /* studies whose parts passed the scope check in this request */
    size_t n_cleared;
    uv_work_t work;
    int join_err;
};

static void respond(stow_t *s);

static result_t *new_result(stow_t *s)
{
    if (s->n_res == s->cap_res) {
        s->cap_res = s->cap_res ? s->cap_res * 2 : 8;
        s->res = mt_realloc(s->res, s->cap_res * sizeof *s->res);
    }
    result_t *r = &s->res[s->n_res++];
    memset(r, 0, sizeof *r);
    return r;
}

static void part_free(part_t *p)
{
    if (!p)
        return;
    if (p->job)
        mt_ingest_job_cancel(p->job);
    mt_ds_reader_free(p->reader);
    mt_deid_stream_free(p->deid);
    mt_index_rec_free(p->rec);
    mt_buf_dispose(&p->head);
    mt_tag_capture_dispose(&p->hdr);
    mt_route_pending_dispose(&p->route);
    mt_free(p);
}

static void part_fail(part_t *p, uint16_t reason)
{
    if (p->fail)
        return;
    p->fail = reason;
    p->s->res[p->idx].reason = reason;
    if (p->job) {
        mt_ingest_job_cancel(p->job);
        p->job = NULL;
    }
}

static void on_drain(void *data)
{
    stow_t *s = data;
    if (s->paused) {
        s->paused = false;
        if (!s->aborted)
            mt_http_resume_body(s->wr->r);
    }
}

static int deid_emit(void *user, const uint8_t *b, size_t n)
{
    part_t *p = user;
    return p->job ? mt_ingest_job_append(p->job, b, n, on_drain, p->s) : MT_ECANCELED;
}

static int on_element(void *user, mt_ds_event_t ev, const mt_elem_t *e)
{
    part_t *p = user;
    mt_route_ingest_event(&p->hdr, p->rec, &p->route, p->ts->big_endian, ev, e);
    return 0;
}

/* Bytes for the job: through the deid stream when there is one. Returns 1 to pause reading. */
static int write_bytes(part_t *p, const uint8_t *b, size_t n)
{
    if (p->fail || !n)
        return 0;
    int rc;
    if (p->deid) {
        rc = mt_deid_stream_feed(p->deid, b, n);
        if (rc < 0)
            part_fail(p, rc == MT_ENOSPC || rc == MT_ETOOBIG || rc == MT_ENOMEM
                             ? R_OUT_OF_RESOURCES
                         : rc == MT_EMALFORMED ? R_CANNOT_UNDERSTAND
                                               : R_FAILURE);
    } else {
        rc = mt_ingest_job_append(p->job, b, n, on_drain, p->s);
        if (rc < 0)
            part_fail(p, R_OUT_OF_RESOURCES);
    }
    return rc == 1;
}

/* Start the ingest job (and the de-identification stream when dp is not NULL). */
static void start_job(part_t *p, const mt_deid_profile_t *dp)
{
    stow_t *s = p->s;
    const uint8_t *key;
    size_t key_len;
    (void)mt_node_deid(s->wr->node, &key, &key_len);
    if (dp && !(p->deid = mt_deid_stream_new(dp, key, key_len, p->ts, 0, deid_emit, p))) {
        part_fail(p, R_OUT_OF_RESOURCES);
        return; /* never fall back to storing the original */
    }
    mt_meta_t meta;
    if (mt_route_ingest_meta(&meta, p->meta.sop_class_uid, p->meta.sop_instance_uid, p->ts->uid,
                             p->meta.source_ae, dp, key, key_len) != 0) {
        part_fail(p, R_FAILURE);
        return;
    }
    p->job = mt_ingest_job_new(mt_node_ingest(s->wr->node), &meta);
    if (!p->job)
        part_fail(p, R_OUT_OF_RESOURCES);
}

/* The rules decide for the part (its attributes before Pixel Data are known), as for a
 * C-STORE (svc/store.c); then the job starts and the held bytes are written. Returns 1 to
 * pause reading. Who sent it, for the rules: no calling AE, called AE s->called, peer the
 * HTTP client's address, user the authenticated user (rules.h mt_route_input_t). */
static int route_decide(part_t *p)
{
    stow_t *s = p->s;
    mt_web_req_t *wr = s->wr;
    char peer[64], sum[160];
    mt_route_peer_addr(wr->r->peer, peer, sizeof peer);
    mt_route_input_t in = {
        .calling_ae = NULL, /* HTTP has none: a rule that needs one does not match */
        .called_ae = s->called,
        .peer = peer[0] && strcmp(peer, "?") != 0 ? peer : NULL,
        .cmr_series = NULL, /* not known yet: rules on it are armed (node/tagger.c) */
        .user = wr->user,
    };
    mt_route_pending_decide(&p->route, &in);
    const mt_route_decision_t *d = &p->route.dec;
    mt_route_summary(d, sum, sizeof sum);
    mt_log(MT_LOG_DEBUG, NULL, "http %s: stow part %zu route: %s", wr->r->peer, p->idx + 1, sum);
    if (d->reject) { /* nothing was written: the job does not exist yet */
        mt_log(MT_LOG_INFO, NULL, "http %s: stow part %zu refused by routing.rules (0124): %s",
               wr->r->peer, p->idx + 1, d->reject_reason);
        part_fail(p, R_NOT_AUTHORIZED);
        s->res[p->idx].why = d->reject_reason;
        mt_route_pending_drop_held(&p->route);
        return 0;
    }
    const mt_deid_profile_t *dp;
    if (mt_route_profile(d, mt_node_deid(wr->node, NULL, NULL), &dp) != 0) {
        part_fail(p, R_FAILURE); /* the rule's profile is not loaded: never the original */
        return 0;
    }
    start_job(p, dp);
    size_t n;
    const uint8_t *held = mt_route_pending_held(&p->route, &n);
    int pause = write_bytes(p, held, n);
    mt_route_pending_drop_held(&p->route);
    return p->fail ? 0 : pause;
}

/* Data set bytes of the current part. Returns 1 to pause reading. Until the rules have
 * decided, the bytes are held (in slices, so that only the header is) and the job waits. */
static int dataset_bytes(part_t *p, const uint8_t *b, size_t n)
{
    int pause = 0;
    while (n && !p->fail) {
        bool holding = !p->route.decided;
        size_t k = holding && n > ROUTE_SLICE ? ROUTE_SLICE : n;
        if (holding && mt_route_pending_hold(&p->route, b, k) != 0)
            part_fail(p, R_OUT_OF_RESOURCES); /* a header over MT_ROUTE_MAX_HELD */
        else if (!holding)
            pause |= write_bytes(p, b, k);
        /* the reader first: it finds Pixel Data in this chunk, so the capture copies only the
         * bytes before it */
        if (!p->fail && mt_ds_reader_feed(p->reader, b, k) != 0)
            part_fail(p, R_CANNOT_UNDERSTAND);
        if (!p->fail)
            mt_tag_capture_feed(&p->hdr, b, k);
        if (holding && !p->fail && mt_route_pending_ready(&p->route))
            pause |= route_decide(p);
        b += k;
        n -= k;
    }
    return p->fail ? 0 : pause;
}

/* The part's File Meta is known: its syntax, reader and index record; the job starts now, or
 * once the routing rules have decided. */
static void part_begin(part_t *p)
{
    stow_t *s = p->s;
    result_t *r = &s->res[p->idx];
    snprintf(r->cls, sizeof r->cls, "%s", p->meta.sop_class_uid);
    snprintf(r->inst, sizeof r->inst, "%s", p->meta.sop_instance_uid);
    p->ts = mt_ts_find(p->meta.transfer_syntax_uid);
    if (!p->ts || !p->meta.sop_class_uid[0] || !p->meta.sop_instance_uid[0]) {
        part_fail(p, R_CANNOT_UNDERSTAND);
        return;
    }
    p->rec = mt_index_rec_new();
    mt_tag_capture_init(&p->hdr, p->ts, !mt_node_tagger(s->wr->node));
    /* Pixel Data streamed: its ELEMENT event comes at its start, so the capture stops and the
     * rules decide there */
    mt_ds_reader_opts_t o = {.ts = p->ts, .cb = on_element, .user = p, .stream_pixel_data = true};
    p->reader = mt_ds_reader_new(&o);
    if (p->route.decided) /* no rules */
        start_job(p, mt_node_deid(s->wr->node, NULL, NULL));
}

static part_t *part_new(stow_t *s)
{
    part_t *p = mt_calloc(1, sizeof *p);
    p->s = s;
    p->idx = s->n_res;
    new_result(s);
    mt_buf_init(&p->head, HEAD_MAX);
    mt_route_pending_init(&p->route, s->wr->conf->routes);
    return p;
}

static int mp_begin(void *user, const mt_mp_part_t *mp)
{
    stow_t *s = user;
    if (s->json)
        return mt_stowjson_part(s->json, mp);
    part_t *p = part_new(s);
    s->cur = p;
    char type[96], v[8];
    mt_mp_param(mp->content_type, "x", type, sizeof type, v, sizeof v);
    if (type[0] && strcmp(type, "application/dicom") != 0)
        part_fail(p, R_CANNOT_UNDERSTAND);
    return 0;
}

static int mp_data(void *user, const uint8_t *b, size_t n)
{
    stow_t *s = user;
    if (s->json) {
        if (mt_stowjson_data(s->json, b, n) == 0)
            return 0;
        s->too_big = true;
        return MT_ETOOBIG;
    }
    part_t *p = s->cur;
    if (!p || p->fail)
        return 0;
    if (p->meta_done)
        return dataset_bytes(p, b, n);
    if (mt_buf_append(&p->head, b, n)) {
        part_fail(p, R_CANNOT_UNDERSTAND);
        return 0;
    }
    if (p->head.len < 132)
        return 0; /* the preamble and "DICM" are not all here yet (a part split by the reads) */
    size_t consumed = 0;
    mt_diag_t d;
    int rc = mt_part10_read_meta(p->head.data, p->head.len, &p->meta, &consumed, &d);
    if (rc == MT_EAGAIN)
        return 0;
    if (rc) {
        part_fail(p, R_CANNOT_UNDERSTAND); /* STOW-RS needs Part 10 files (PS3.18 §10.5) */
        return 0;
    }
    p->meta_done = true;
    part_begin(p);
    if (p->fail)
        return 0;
    int pause = dataset_bytes(p, p->head.data + consumed, p->head.len - consumed);
    mt_buf_dispose(&p->head);
    return pause;
}

/* A pending part has its answer (committed, failed, refused): the request may go on. */
static void pending_done(stow_t *s)
{
    s->pending--;
    if (s->paused) { /* no drain callback comes after a commit */
        s->paused = false;
        if (!s->aborted)
            mt_http_resume_body(s->wr->r);
    }
    if (s->body_done && s->pending == 0)
        respond(s);
}

/* What the ingest calls back with. The part itself is gone by then (commit). */
typedef struct ticket {
    stow_t *s;
    size_t idx;
    mt_tag_capture_t hdr; /* the part's original header for the tagger */
    size_t n_forward; /* queue rows the routing rules added (woken once durable) */
} ticket_t;

static void on_committed(void *data, int status, const char *comment)
{
    ticket_t *t = data;
    stow_t *s = t->s;
    size_t idx = t->idx;
    (void)comment;
    mt_tagger_t *tagger = mt_node_tagger(s->wr->node);
    if (status == 0 && tagger && !s->res[idx].warning) /* stored, not quarantined */
        mt_tagger_offer(tagger, &t->hdr, s->res[idx].study, s->res[idx].series);
    mt_tag_capture_dispose(&t->hdr);
    if (status == 0 && !s->res[idx].warning)
        mt_route_ingest_committed(s->wr->node, t->n_forward);
    mt_free(t);
    if (status == MT_EDUPLICATE)
        s->res[idx].reason = R_DUPLICATE;
    else if (status == MT_ENOSPC || status == MT_ENOMEM || status == MT_EIO)
        s->res[idx].reason = R_OUT_OF_RESOURCES;
    else if (status)
        s->res[idx].reason = R_FAILURE;
    pending_done(s);
}

/* The quarantined part is durable in <root>/.quarantine/ (or failed): stored, with a warning. */
static void on_quarantined(void *data, int status, const char *comment)
{
    ticket_t *t = data;
    if (status == 0) {
        t->s->res[t->idx].warning = W_COERCION;
        mt_log(MT_LOG_WARN, NULL, "http %s: stow: quarantined (Burned In Annotation YES): sop=%s",
               t->s->wr->r->peer, t->s->res[t->idx].inst); /* the mapped UID: no PHI */
    }
    on_committed(data, status, comment);
}

/* Hand the job to the ingest and free the part. From mt_ingest_job_commit on, the ingest owns
 * the job (its callback fires exactly once), so the part must forget it first: part_free
 * cancels any job the part still holds, and a part that kept its job pointer after commit
 * would cancel a committed instance (the defect this ordering fixes; t_web_stow_commit.py). */
static void commit(part_t *p)
{
    mt_ingest_job_t *job = p->job;
    mt_index_rec_t *rec = p->rec;
    ticket_t *t = mt_calloc(1, sizeof *t);
    t->s = p->s;
    t->idx = p->idx;
    t->n_forward = p->route.dec.n_forward;
    mt_tag_capture_init(&t->hdr, NULL, true);
    if (!p->quarantined) /* handed over to the ticket */
        mt_tag_capture_move(&t->hdr, &p->hdr);
    p->job = NULL;
    p->rec = NULL;
    if (p->quarantined) { /* not indexed: held for review, as for C-STORE */
        mt_index_rec_free(rec);
        mt_ingest_job_quarantine(job, p->s->res[p->idx].inst, on_quarantined, t);
        part_free(p);
        return;
    }
    mt_ingest_job_commit(job, rec, on_committed, t);
    part_free(p);
}

static int count_cb(void *user, const mt_qdb_instance_t *i)
{
    (void)i;
    ++*(size_t *)user;
    return 1; /* one is enough */
}

static size_t count_instances(mt_qdb_t *db, mt_index_level_t level, const char *study,
                              const char *sop, const char *project)
{
    mt_ds_t *id = mt__web_identifier(level, study, NULL, sop);
    mt_query_t *q = NULL;
    mt_query_err_t qe;
    size_t n = 0;
    if (mt_query_from_ds(id, MT_QR_RELATIONAL, &q, &qe) == 0) {
        mt_qscope_t scope = {.project = project, .retrieve_ae = ""};
        mt_qdb_instances(db, q, &scope, count_cb, &n);
        mt_query_free(q);
    }
    mt_ds_free(id);
    return n;
}

/* Worker: a part stored through /projects/NAME/dicomweb may add to a study of NAME or create
 * a new study, but not write into a study (or replace an instance) that exists outside NAME:
 * once its study joined NAME, the caller could read what another project holds. */
static void scope_work(uv_work_t *w)
{
    part_t *p = w->data;
    const char *path = p->s->wr->conf->index_path;
    mt_qdb_t *db = mt_qdb_take(path);
    if (!db) {
        p->inst_outside = true; /* cannot tell: refuse */
        return;
    }
    const char *proj = p->s->project;
    size_t all = count_instances(db, MT_LEVEL_STUDY, p->study_uid, NULL, NULL);
    if (all && !count_instances(db, MT_LEVEL_STUDY, p->study_uid, NULL, proj))
        p->study_outside = true;
    if (count_instances(db, MT_LEVEL_INSTANCE, NULL, p->sop_uid, NULL) &&
        !count_instances(db, MT_LEVEL_INSTANCE, NULL, p->sop_uid, proj))
        p->inst_outside = true;
    mt_qdb_give(path, db);
}

/* Loop thread. The study joins the project only when the whole request has been answered,
 * so a study this request created is, for its later parts, a study "outside the project"
 * in the index: a part whose study an earlier part of this request cleared is in scope. */
static bool study_cleared(stow_t *s, const char *study, bool add)
{
    for (size_t i = 0; i < s->n_cleared; i++)
        if (strcmp(s->cleared[i], study) == 0)
            return true;
    if (add) {
        s->cleared = mt_realloc(s->cleared, (s->n_cleared + 1) * sizeof *s->cleared);
        snprintf(s->cleared[s->n_cleared++], sizeof *s->cleared, "%s", study);
    }
    return false;
}

static void scope_after(uv_work_t *w, int status)
{
    part_t *p = w->data;
    stow_t *s = p->s;
    (void)status;
    p->out_of_scope =
        p->inst_outside || (p->study_outside && !study_cleared(s, p->study_uid, false));
    if (!p->out_of_scope)
        study_cleared(s, p->study_uid, true);
    if (!p->out_of_scope && !s->aborted) {
        commit(p);
        return;
    }
    s->res[p->idx].reason = p->out_of_scope ? R_NOT_AUTHORIZED : R_FAILURE;
    if (p->out_of_scope)
        mt_log(MT_LOG_WARN, NULL, "http %s: stow: a part names a study or instance outside "
               "project %s: refused", s->wr->r->peer, s->project);
    part_free(p); /* cancels the job: nothing stored */
    pending_done(s);
}

/* The part's bytes are all in: check it, then commit (or check its project scope first). */
static void part_finish(stow_t *s, part_t *p)
{
    result_t *r = &s->res[p->idx];
    if (!p->meta_done && !p->fail)
        part_fail(p, R_CANNOT_UNDERSTAND);
    if (!p->fail && mt_ds_reader_finish(p->reader) != 0)
        part_fail(p, R_CANNOT_UNDERSTAND);
    if (!p->fail) {
        const char *cls = mt_index_rec_get(p->rec, TAG_SOP_CLASS_UID);
        const char *ins = mt_index_rec_get(p->rec, TAG_SOP_INSTANCE_UID);
        const char *st = mt_index_rec_get(p->rec, TAG_STUDY_UID);
        const char *se = mt_index_rec_get(p->rec, TAG_SERIES_UID);
        if (!cls || strcmp(cls, p->meta.sop_class_uid) != 0 || !ins ||
            strcmp(ins, p->meta.sop_instance_uid) != 0 || !st || !se)
            part_fail(p, R_MISMATCH);
        else if (s->has_study && strcmp(st, s->study) != 0)
            part_fail(p, R_MISMATCH);
    }
    if (!p->fail && !p->route.decided)
        route_decide(p); /* a data set without Pixel Data; the part has ended: no pause */
    if (!p->fail && p->deid) {
        int rc = mt_deid_stream_finish(p->deid);
        if (rc < 0) {
            part_fail(p, rc == MT_EMALFORMED ? R_CANNOT_UNDERSTAND : R_FAILURE);
        } else {
            p->quarantined = mt_deid_stream_quarantined(p->deid);
            const mt_ds_t *h = mt_deid_stream_header(p->deid);
            mt_index_rec_t *rec = mt_index_rec_new();
            bool big = mt_deid_stream_out_ts(p->ts)->big_endian;
            for (size_t i = 0; h && i < mt_ds_count(h); i++) {
                const mt_ds_elem_t *e = mt_ds_at(h, i);
                if (e->value && e->vr != MT_VR('S', 'Q'))
                    mt_index_rec_offer(rec, e->tag, e->vr, e->value, e->len, big);
                else if (e->vr == MT_VR('S', 'Q'))
                    mt_index_rec_offer_seq(rec, e, big);
            }
            mt_index_rec_free(p->rec);
            p->rec = rec;
            const char *ins = mt_index_rec_get(rec, TAG_SOP_INSTANCE_UID);
            if (ins)
                snprintf(r->inst, sizeof r->inst, "%s", ins);
        }
    }
    if (p->fail) {
        part_free(p);
        return;
    }
    /* the rules' projects, destinations and armed tag rules: in the instance's transaction */
    mt_route_ingest_rec(&p->route.dec, p->rec);
    const char *st = mt_index_rec_get(p->rec, TAG_STUDY_UID);
    const char *se = mt_index_rec_get(p->rec, TAG_SERIES_UID);
    snprintf(r->study, sizeof r->study, "%s", st ? st : "");
    snprintf(r->series, sizeof r->series, "%s", se ? se : "");
    s->pending++;
    if (s->project[0] && !p->quarantined) { /* may this part touch what it names? */
        snprintf(p->study_uid, sizeof p->study_uid, "%s", r->study);
        snprintf(p->sop_uid, sizeof p->sop_uid, "%s", r->inst);
        p->work.data = p;
        uv_queue_work(mt_node_loop(s->wr->node), &p->work, scope_work, scope_after);
        return;
    }
    commit(p);
}

static int mp_end(void *user)
{
    stow_t *s = user;
    part_t *p = s->cur;
    s->cur = NULL;
    if (p)
        part_finish(s, p);
    return 0;
}

/* One instance of a metadata + bulk data request (stowjson.h), through the same path as an
 * application/dicom part from here on. */
static void on_json_instance(void *user, const mt_stowjson_inst_t *in)
{
    stow_t *s = user;
    part_t *p = part_new(s);
    result_t *r = &s->res[p->idx];
    if (in->status) {
        snprintf(r->cls, sizeof r->cls, "%s", in->cls);
        snprintf(r->inst, sizeof r->inst, "%s", in->inst);
        mt_log(MT_LOG_WARN, NULL, "http %s: stow: metadata instance %zu not stored: %s "
               "(tag %04X,%04X)", s->wr->r->peer, p->idx + 1, in->why ? in->why : "?",
               MT_TAG_GROUP(in->tag), MT_TAG_ELEM(in->tag));
        part_fail(p, in->status == MT_EUNSUPPORTED ? R_TS_NOT_SUPPORTED
                     : in->status == MT_ETOOBIG    ? R_OUT_OF_RESOURCES
                                                   : R_CANNOT_UNDERSTAND);
        part_free(p);
        return;
    }
    snprintf(p->meta.sop_class_uid, sizeof p->meta.sop_class_uid, "%s", in->cls);
    snprintf(p->meta.sop_instance_uid, sizeof p->meta.sop_instance_uid, "%s", in->inst);
    snprintf(p->meta.transfer_syntax_uid, sizeof p->meta.transfer_syntax_uid, "%s",
             in->ts->uid);
    p->meta_done = true;
    part_begin(p);
    if (!p->fail)
        dataset_bytes(p, in->ds, in->len); /* held in memory already: no pause */
    part_finish(s, p);
}

static const mt_mp_cb_t mp_cb = {mp_begin, mp_data, mp_end};

/* ---- the HTTP side ---- */

static void stow_free(stow_t *s)
{
    part_free(s->cur);
    mt_stowjson_free(s->json);
    mt_free(s->cleared);
    mt_mp_free(s->mp);
    mt_free(s->res);
    mt_free(s);
}

static int on_body(mt_http_req_t *r, const uint8_t *b, size_t n)
{
    stow_t *s = r->h;
    if (s->malformed)
        return 0;
    int rc = mt_mp_feed(s->mp, b, n);
    if (rc < 0) {
        s->malformed = true;
        if (s->cur) {
            part_t *p = s->cur;
            s->cur = NULL;
            s->n_res--; /* the broken part is not reported as an instance */
            part_free(p);
        }
        return 0;
    }
    if (rc > 0) { /* an ingest job holds more than its budget: stop reading until drained */
        s->paused = true;
        return 1;
    }
    return 0;
}

static void on_end(mt_http_req_t *r)
{
    stow_t *s = r->h;
    if (!s->malformed && mt_mp_finish(s->mp) != 0)
        s->malformed = true;
    if (s->malformed && s->cur) {
        part_t *p = s->cur;
        s->cur = NULL;
        s->n_res--;
        part_free(p);
    }
    if (s->json && !s->malformed) {
        int rc = mt_stowjson_finish(s->json, on_json_instance, s, &s->json_error);
        s->json_too_big = rc == MT_ETOOBIG;
        if (rc == 0 && mt_stowjson_unused(s->json))
            mt_log(MT_LOG_DEBUG, NULL, "http %s: stow: %zu bulk data parts not referenced",
                   r->peer, mt_stowjson_unused(s->json));
        mt_stowjson_free(s->json); /* the parts: every instance has its bytes in its job */
        s->json = NULL;
    }
    s->body_done = true;
    if (s->pending == 0)
        respond(s);
}

static void on_abort(mt_http_req_t *r)
{
    stow_t *s = r->h;
    s->aborted = true;
    s->malformed = true;
    if (s->cur) {
        part_t *p = s->cur;
        s->cur = NULL;
        part_free(p);
    }
    s->body_done = true;
    if (s->pending == 0)
        respond(s);
}

static const mt_http_handler_t handler = {on_body, on_end, on_abort};

static void put(mt_buf_t *b, const char *s)
{
    mt_buf_append(b, s, strlen(s));
}

static void uid_elem(mt_buf_t *b, const char *tag, const char *vr, const char *v, bool comma)
{
    char t[64];
    if (!*v) { /* PS3.18 F.2.5: an empty value has no "Value" (a part that is not DICOM) */
        snprintf(t, sizeof t, "%s\"%s\":{\"vr\":\"%s\"}", comma ? "," : "", tag, vr);
        put(b, t);
        return;
    }
    snprintf(t, sizeof t, "%s\"%s\":{\"vr\":\"%s\",\"Value\":[", comma ? "," : "", tag, vr);
    put(b, t);
    mt_json_str(b, v, strlen(v));
    put(b, "]}");
}

/* One Warning header field (RFC 7234 §5.5; PS3.18 §8.4: a DICOM status code and a
 * descriptive reason) per routing rule reason that refused parts, so the uploader learns why:
 *   Warning: 299 mitral "0124 refused by routing.rules: <reason> (2 instances)"
 * The reason comes from the rules file (1-64 characters, no control characters), never
 * from a data set; quotes and backslashes are escaped, bytes outside ASCII become '?'. */
static void reject_warnings(const stow_t *s, mt_buf_t *out)
{
    size_t n_fields = 0;
    for (size_t i = 0; i < s->n_res && n_fields < 16; i++) {
        const char *why = s->res[i].why;
        bool seen = false;
        for (size_t j = 0; j < i && !seen && why; j++)
            seen = s->res[j].why && strcmp(s->res[j].why, why) == 0;
        if (!why || seen)
            continue;
        size_t count = 0;
        for (size_t j = i; j < s->n_res; j++)
            count += s->res[j].why && strcmp(s->res[j].why, why) == 0;
        char t[96];
        snprintf(t, sizeof t, "Warning: 299 mitral \"%04X refused by routing.rules: ",
                 R_NOT_AUTHORIZED);
        put(out, t);
        for (const char *c = why; *c; c++) {
            char ch = (unsigned char)*c >= 0x80 || (unsigned char)*c < 0x20 ? '?' : *c;
            if (ch == '"' || ch == '\\')
                mt_buf_append(out, "\\", 1);
            mt_buf_append(out, &ch, 1);
        }
        snprintf(t, sizeof t, " (%zu instance%s)\"\r\n", count, count == 1 ? "" : "s");
        put(out, t);
        n_fields++;
    }
}

static void send_response(stow_t *s)
{
    mt_web_req_t *wr = s->wr;
    if (s->too_big || s->json_error) {
        char msg[256];
        if (s->too_big)
            snprintf(msg, sizeof msg, "STOW-RS: metadata and bulk data parts over the %u MiB "
                     "this node holds per request (http.stow_hold_mb)",
                     (unsigned)wr->conf->http_stow_hold_mb);
        else
            snprintf(msg, sizeof msg, "STOW-RS metadata: %s", s->json_error);
        mt__web_fail(wr, s->too_big || s->json_too_big ? 413 : 400, msg);
        stow_free(s);
        return;
    }
    if (s->n_res == 0) {
        mt__web_fail(wr, 400, s->malformed ? "malformed multipart/related body"
                                           : "no part in the multipart/related body");
        stow_free(s);
        return;
    }
    size_t ok = 0, bad = 0, warned = 0;
    for (size_t i = 0; i < s->n_res; i++)
        s->res[i].reason ? bad++ : ok++;
    mt_buf_t b;
    mt_buf_init(&b, 1u << 30);
    put(&b, "{");
    bool comma = false;
    const char *study = s->has_study ? s->study : NULL;
    if (!study)
        for (size_t i = 0; i < s->n_res && !study; i++)
            if (!s->res[i].reason && !s->res[i].warning)
                study = s->res[i].study;
    char url[1024];
    if (study && study[0]) {
        snprintf(url, sizeof url, "%s/studies/%s", wr->base, study);
        uid_elem(&b, "00081190", "UR", url, false);
        comma = true;
    }
    if (bad) {
        put(&b, comma ? ",\"00081198\":{\"vr\":\"SQ\",\"Value\":[" :
                        "\"00081198\":{\"vr\":\"SQ\",\"Value\":[");
        comma = true;
        bool first = true;
        for (size_t i = 0; i < s->n_res; i++) {
            result_t *r = &s->res[i];
            if (!r->reason)
                continue;
            put(&b, first ? "{" : ",{");
            first = false;
            uid_elem(&b, "00081150", "UI", r->cls, false);
            uid_elem(&b, "00081155", "UI", r->inst, true);
            char t[64];
            snprintf(t, sizeof t, ",\"00081197\":{\"vr\":\"US\",\"Value\":[%u]}}", r->reason);
            put(&b, t);
        }
        put(&b, "]}");
    }
    if (ok) {
        put(&b, comma ? ",\"00081199\":{\"vr\":\"SQ\",\"Value\":[" :
                        "\"00081199\":{\"vr\":\"SQ\",\"Value\":[");
        bool first = true;
        for (size_t i = 0; i < s->n_res; i++) {
            result_t *r = &s->res[i];
            if (r->reason)
                continue;
            put(&b, first ? "{" : ",{");
            first = false;
            uid_elem(&b, "00081150", "UI", r->cls, false);
            uid_elem(&b, "00081155", "UI", r->inst, true);
            if (r->warning) { /* quarantined: no RetrieveURL yet (Type 2: empty) */
                char t[80];
                snprintf(t, sizeof t, ",\"00081190\":{\"vr\":\"UR\"},"
                         "\"00081196\":{\"vr\":\"US\",\"Value\":[%u]}}", r->warning);
                put(&b, t);
                warned++;
                continue;
            }
            snprintf(url, sizeof url, "%s/studies/%s/series/%s/instances/%s", wr->base,
                     r->study, r->series, r->inst);
            uid_elem(&b, "00081190", "UR", url, true);
            put(&b, "}");
        }
        put(&b, "]}");
    }
    put(&b, "}");
    int status = bad == 0 && ok > 0 ? 200 : ok > 0 ? 202 : s->n_res == 0 ? 400 : 409;
    if ((s->malformed || warned) && ok)
        status = 202; /* PS3.18 Table 10.5.3-1: warnings exist */
    mt_log(MT_LOG_INFO, NULL, "http %s: stow %zu stored, %zu failed, %zu quarantined%s%s",
           wr->r->peer, ok - warned, bad, warned, s->project[0] ? " project=" : "", s->project);
    mt_buf_t warn;
    mt_buf_init(&warn, 1u << 16);
    reject_warnings(s, &warn);
    mt_buf_append(&warn, "", 1); /* NUL-terminated: the extra header lines */
    const char *extra = warn.len > 1 ? (const char *)warn.data : NULL;
    mt_http_respond(wr->r, status, "application/dicom+json", extra, b.data, b.len);
    mt_buf_dispose(&warn);
    mt_buf_dispose(&b);
    mt__web_req_free(wr);
    stow_free(s);
}

/* Worker: put the stored studies into the project. */
static void join_work(uv_work_t *w)
{
    stow_t *s = w->data;
    mt_index_t *ix = NULL;
    int rc = mt_index_sqlite_open(s->wr->conf->index_path, &ix);
    if (rc) {
        s->join_err = rc;
        return;
    }
    for (size_t i = 0; i < s->n_res && !rc; i++) {
        if (s->res[i].reason || s->res[i].warning || !s->res[i].study[0])
            continue;
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = !s->res[j].reason && !s->res[j].warning &&
                  strcmp(s->res[j].study, s->res[i].study) == 0;
        if (dup)
            continue;
        bool added;
        rc = ix->ops->project_add(ix, s->project, s->res[i].study, &added);
    }
    ix->ops->close(ix);
    s->join_err = rc;
}

static void after_join(uv_work_t *w, int status)
{
    stow_t *s = w->data;
    (void)status;
    if (s->join_err) {
        mt_log(MT_LOG_ERROR, NULL, "http %s: stow: cannot add studies to project %s: %s",
               s->wr->r->peer, s->project, mt_strerror(s->join_err));
        for (size_t i = 0; i < s->n_res; i++)
            if (!s->res[i].reason && !s->res[i].warning)
                s->res[i].reason = R_FAILURE; /* stored, but not visible in the project */
    }
    send_response(s);
}

static void respond(stow_t *s)
{
    if (s->responded)
        return;
    s->responded = true;
    bool any = false;
    for (size_t i = 0; i < s->n_res; i++)
        any |= !s->res[i].reason && !s->res[i].warning;
    if (s->project[0] && any) {
        s->work.data = s;
        uv_queue_work(mt_node_loop(s->wr->node), &s->work, join_work, after_join);
        return;
    }
    send_response(s);
}

void mt__stow(mt_web_req_t *wr, const char *study)
{
    /* the response is DICOM JSON only (no PS3.19 XML): refused before a byte of the body
     * is read, so nothing is stored for a client that could not read the answer (PS3.18
     * §8.7.3: 406 when no acceptable media type can be produced) */
    if (!mt__web_accepts_json(wr)) {
        mt__web_fail(wr, 406, "STOW-RS answers application/dicom+json only (PS3.19 XML is not "
                     "supported); nothing was stored");
        return;
    }
    const char *ct = mt_http_header(wr->r, "content-type");
    char type[96], boundary[MT_MP_MAX_BOUNDARY + 8], part[96], tmp[96];
    if (mt_mp_param(ct, "boundary", type, sizeof type, boundary, sizeof boundary) != 0 ||
        strcmp(type, "multipart/related") != 0) {
        mt__web_fail(wr, 415, "STOW-RS takes multipart/related; type=\"application/dicom\"");
        return;
    }
    mt_mp_param(ct, "type", tmp, sizeof tmp, part, sizeof part);
    for (char *c = part; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c + 32);
    bool json = strcmp(part, "application/dicom+json") == 0;
    if (strcmp(part, "application/dicom+xml") == 0) {
        mt__web_fail(wr, 415, "STOW-RS: type=\"application/dicom+xml\" (PS3.19 Native DICOM "
                     "Model) is not supported: send type=\"application/dicom\" or "
                     "\"application/dicom+json\" (docs/conformance.md)");
        return;
    }
    if (part[0] && strcmp(part, "application/dicom") != 0 && !json) {
        mt__web_fail(wr, 415, "STOW-RS takes multipart/related with type=\"application/dicom\" "
                     "or type=\"application/dicom+json\"");
        return;
    }
    stow_t *s = mt_calloc(1, sizeof *s);
    s->wr = wr;
    if (study) {
        s->has_study = true;
        snprintf(s->study, sizeof s->study, "%s", study);
    }
    if (wr->project)
        snprintf(s->project, sizeof s->project, "%s", wr->project);
    /* called_ae for routing.rules: the AE title a DIMSE peer would call for the same scope */
    const mt_conf_project_t *pj = wr->project ? mt_conf_project_by_name(wr->conf, wr->project)
                                              : NULL;
    snprintf(s->called, sizeof s->called, "%s", pj ? pj->ae_title : wr->conf->ae_title);
    s->mp = mt_mp_new(boundary, &mp_cb, s);
    if (json)
        s->json = mt_stowjson_new((size_t)wr->conf->http_stow_hold_mb << 20);
    if (!s->mp) {
        mt_stowjson_free(s->json);
        mt_free(s);
        mt__web_fail(wr, 400, "multipart boundary missing or malformed");
        return;
    }
    wr->r->h = s;
    wr->r->handler = &handler;
}
