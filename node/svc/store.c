/*
 * store.c - C-STORE SCP (PS3.4 Annex B, Storage Service Class).
 *
 * Per request:  on_request  -> start an ingest job (Part 10 meta from the command and the
 *                              context's transfer syntax) and a streaming data set reader
 *               on_data     -> append the bytes to the job (pause reading while the job holds
 *                              more than its budget) and feed them to the reader, whose
 *                              top-level elements fill the index record
 *               last        -> the data set must be complete and match the command; then commit
 *               committed   -> respond (the ingest callback fires only once the file and its
 *                              index row are durable: PS3.4 B.2.3 success means "stored")
 * Failures answer with the matching status and an ErrorComment and leave no file:
 *   A700 out of resources (disk), A900 data set does not match SOP class, C000 cannot
 *   understand (malformed data set), 0111 duplicate SOP instance (reject policy).
 * Without de-identification (deid.profile none) the bytes written are the bytes received:
 * the stored file keeps the transfer syntax. With a profile (mt_node_deid), the received bytes
 * go to a node/deid/stream.c adapter instead, and what it emits is written: the de-identified
 * header elements, then Pixel Data as received; the File Meta carries the mapped SOP Instance
 * UID and the index record is made from the de-identified header, so the original data set
 * never reaches the disk or the index. Burned In Annotation YES: 0110, nothing stored
 * (burned-in-annotation: reject), or (quarantine) the de-identified instance goes to
 * mt_ingest_job_quarantine instead of the commit: <root>/.quarantine/<sop>.dcm, no index row,
 * no projects, no forwarding, no tagging; answered B000 with a "quarantined" ErrorComment.
 * The reader below still checks the received data set against the command.
 *
 * Routing (routing.rules, node/route/; the steps shared with STOW-RS: route/decide.h and
 * route_ingest.h): when the association's config snapshot has rules, the job is not started
 * at on_request. The received bytes are held (up to MT_ROUTE_MAX_HELD) while the reader
 * collects the attributes the rules look at; when the first top-level element at or after
 * Pixel Data starts (or the data set ends), the rules decide: reject -> the failure status
 * 0124 with the rule's reason as ErrorComment, nothing written; else the job starts with the
 * rule's deid profile (or the node-wide one), the held bytes go through it, then the chunk
 * the decision was made in (from the receive buffer: a data set that comes as one PDV is never
 * copied into the held bytes), and the rest streams as without rules. The decision's projects and
 * destinations travel in the index record, so ingest joins and queues them in the transaction
 * that indexes the instance. Rules on the CMR series tag (cmr_series) are only armed here
 * (their other conditions held): the record carries their names, put() records them, and the
 * tagger fires them once the series is tagged (node/tagger.c, db/007_tag_routes.sql).
 */
#include "svc.h"

#include <stdio.h>
#include <string.h>

#include "../deid/stream.h"
#include "../dicom/ds.h"
#include "../conf/conf.h"
#include "../node.h"
#include "../route/decide.h"
#include "../route_ingest.h"
#include "../tag/capture.h"
#include "../tagger.h"
#include "../util/alloc.h"
#include "../util/err.h"
#include "../util/log.h"

#define TAG_SOP_CLASS_UID MT_TAG(0x0008, 0x0016)
#define TAG_SOP_INSTANCE_UID MT_TAG(0x0008, 0x0018)
#define TAG_STUDY_INSTANCE_UID MT_TAG(0x0020, 0x000D)
#define TAG_SERIES_INSTANCE_UID MT_TAG(0x0020, 0x000E)
/* Values up to this size reach on_element whole (every index, routing and sequence key is far
 * smaller); larger ones (Pixel Data) stream past as chunks, so the reader never copies the
 * bulk of an instance that arrives in several reads into a buffer of its own. */
#define MT_STORE_READER_MAX_VALUE (64u << 10)

typedef struct store_req {
    mt_dimse_req_t *req;
    mt_ingest_job_t *job; /* NULL once committed or cancelled */
    mt_ds_reader_t *reader;
    mt_index_rec_t *rec;
    mt_deid_stream_t *deid; /* NULL: store as received */
    /* de-identification is certain before the rules decide: rec keeps of the original header
     * only the UIDs finish() checks (mt_index_rec_keep_uids_only) */
    bool rec_checks_only;
    const mt_ts_t *ts;
    bool paused;
    bool committed;
    /* routing: rules of the association's snapshot; bytes held until decided */
    mt_route_pending_t route;
    mt_tag_capture_t hdr; /* the original header for the CMR tagger (tag/capture.h) */
    char stored_study[65], stored_series[65]; /* UIDs as stored (de-identified or not) */
    char stored_sop[65];                      /* quarantined: its de-identified SOP UID */
    uint16_t fail_status; /* nonzero: answer this once the data set has ended */
    char fail_comment[65];
} store_req_t;

static void store_req_free(store_req_t *s)
{
    if (s->job)
        mt_ingest_job_cancel(s->job);
    mt_ds_reader_free(s->reader);
    mt_deid_stream_free(s->deid);
    mt_index_rec_free(s->rec);
    mt_route_pending_dispose(&s->route);
    mt_tag_capture_dispose(&s->hdr);
    mt_free(s);
}

/* Hand the captured original header to the tagger (after a successful store). */
static void offer_header(store_req_t *s, mt_node_t *node)
{
    mt_tagger_t *t = mt_node_tagger(node);
    if (t)
        mt_tagger_offer(t, &s->hdr, s->stored_study, s->stored_series);
}

static void respond(mt_dimse_req_t *req, uint16_t status, const char *comment)
{
    mt_dimse_cmd_t rsp;
    mt_dimse_cmd_init(&rsp);
    rsp.command_field = MT_C_STORE_RSP;
    rsp.message_id_responded_to = req->cmd.message_id;
    rsp.status = status;
    rsp.has_status = true;
    strcpy(rsp.affected_sop_class_uid, req->cmd.affected_sop_class_uid);
    strcpy(rsp.affected_sop_instance_uid, req->cmd.affected_sop_instance_uid);
    if (comment)
        snprintf(rsp.error_comment, sizeof rsp.error_comment, "%s", comment);
    mt_log(status == MT_STATUS_SUCCESS ? MT_LOG_DEBUG : MT_LOG_WARN, mt_assoc_log(req->assoc),
           "c-store msgid=%u status=0x%04X%s%s", req->cmd.message_id, status,
           comment ? " comment=" : "", comment ? comment : "");
    mt_assoc_respond(req, &rsp, NULL, 0);
}

/* Remember the first failure; the response is sent when the data set has ended. */
static void fail(store_req_t *s, uint16_t status, const char *comment)
{
    if (s->fail_status)
        return;
    s->fail_status = status;
    snprintf(s->fail_comment, sizeof s->fail_comment, "%s", comment);
    if (s->job) {
        mt_ingest_job_cancel(s->job);
        s->job = NULL;
    }
    if (s->paused) {
        s->paused = false;
        mt_assoc_resume_reading(s->req->assoc);
    }
}

static int on_element(void *user, mt_ds_event_t ev, const mt_elem_t *e)
{
    store_req_t *s = user;
    mt_route_ingest_event(&s->hdr, s->rec, &s->route, s->ts->big_endian, ev, e);
    return 0;
}

static void on_drain(void *data)
{
    store_req_t *s = data;
    if (s->paused) {
        s->paused = false;
        mt_assoc_resume_reading(s->req->assoc);
    }
}

/* De-identified bytes from the stream adapter: they go where received bytes go without it. */
static int deid_emit(void *user, const uint8_t *p, size_t n)
{
    store_req_t *s = user;
    return s->job ? mt_ingest_job_append(s->job, p, n, on_drain, s) : MT_ECANCELED;
}

/* A stream adapter error as the status the peer is told. */
static void deid_fail(store_req_t *s, int rc)
{
    if (rc == MT_EREJECTED)
        fail(s, MT_STATUS_PROCESSING_FAILURE, "refused: Burned In Annotation is YES");
    else if (rc == MT_ENOSPC)
        fail(s, MT_STATUS_REFUSED_OUT_OF_RESOURCES, "out of resources: disk full");
    else if (rc == MT_ETOOBIG || rc == MT_ENOMEM || rc == MT_EIO)
        fail(s, MT_STATUS_REFUSED_OUT_OF_RESOURCES, "out of resources: de-identification");
    else if (rc == MT_EMALFORMED)
        fail(s, MT_STATUS_CANNOT_UNDERSTAND, "malformed data set (de-identification)");
    else
        fail(s, MT_STATUS_PROCESSING_FAILURE, "de-identification failed");
}

/* The index record of what was stored: the de-identified header's top-level elements. */
static mt_index_rec_t *deid_rec(store_req_t *s)
{
    const mt_ds_t *h = mt_deid_stream_header(s->deid);
    mt_index_rec_t *rec = mt_index_rec_new();
    bool big = mt_deid_stream_out_ts(s->ts)->big_endian;
    for (size_t i = 0; h && i < mt_ds_count(h); i++) {
        const mt_ds_elem_t *e = mt_ds_at(h, i);
        if (e->value && e->vr != MT_VR('S', 'Q'))
            mt_index_rec_offer(rec, e->tag, e->vr, e->value, e->len, big);
        else if (e->vr == MT_VR('S', 'Q'))
            mt_index_rec_offer_seq(rec, e, big);
    }
    return rec;
}

/* Start the ingest job (and the de-identification stream when dp is not NULL). */
static void start_job(store_req_t *s, const mt_deid_profile_t *dp)
{
    mt_dimse_req_t *req = s->req;
    const uint8_t *key;
    size_t key_len;
    (void)mt_node_deid(mt_assoc_node(req->assoc), &key, &key_len);
    if (dp && !(s->deid = mt_deid_stream_new(dp, key, key_len, s->ts, 0, deid_emit, s))) {
        fail(s, MT_STATUS_REFUSED_OUT_OF_RESOURCES, "out of resources: de-identification");
        return; /* never fall back to storing the original */
    }

    mt_meta_t meta;
    if (mt_route_ingest_meta(&meta, req->cmd.affected_sop_class_uid,
                             req->cmd.affected_sop_instance_uid, s->ts->uid,
                             mt_assoc_calling_ae(req->assoc), dp, key, key_len) != 0) {
        fail(s, MT_STATUS_PROCESSING_FAILURE, "de-identification failed");
        return;
    }
    s->job = mt_ingest_job_new(mt_node_ingest(mt_assoc_node(req->assoc)), &meta);
    if (!s->job)
        fail(s, MT_STATUS_REFUSED_OUT_OF_RESOURCES, "cannot start storing");
}

/* Received bytes to the job: through the deid stream when there is one. */
static void write_bytes(store_req_t *s, const uint8_t *p, size_t n)
{
    if (s->fail_status || !n)
        return;
    int rc;
    if (s->deid) {
        rc = mt_deid_stream_feed(s->deid, p, n);
        if (rc < 0) {
            deid_fail(s, rc);
            return;
        }
    } else {
        rc = mt_ingest_job_append(s->job, p, n, on_drain, s);
        if (rc < 0) {
            fail(s, MT_STATUS_REFUSED_OUT_OF_RESOURCES,
                 rc == MT_ENOSPC ? "out of resources: disk full" : "out of resources: write");
            return;
        }
    }
    if (rc == 1 && !s->paused) {
        s->paused = true;
        mt_assoc_pause_reading(s->req->assoc);
    }
}

/* The rules decide (attributes before Pixel Data are known); then the held bytes are written,
 * and after them p[0, n): the chunk in which the reader found Pixel Data, written from the
 * receive buffer instead of being copied into the held bytes first. */
static void route_decide(store_req_t *s, const uint8_t *p, size_t n_p)
{
    mt_dimse_req_t *req = s->req;
    char peer[64], sum[160];
    mt_route_peer_addr(mt_assoc_log(req->assoc)->peer, peer, sizeof peer);
    mt_route_input_t in = {
        .calling_ae = mt_assoc_calling_ae(req->assoc),
        .called_ae = mt_assoc_called_ae(req->assoc),
        .peer = peer[0] ? peer : NULL,
        .cmr_series = NULL, /* not known yet: rules on it are armed (d.armed), node/tagger.c */
    };
    mt_route_pending_decide(&s->route, &in);
    const mt_route_decision_t *d = &s->route.dec;
    if (MT_LOG_DEBUG <= mt_log_level) { /* the summary only for a line that is written */
        mt_route_summary(d, sum, sizeof sum);
        mt_log(MT_LOG_DEBUG, mt_assoc_log(req->assoc), "c-store msgid=%u route: %s",
               req->cmd.message_id, sum);
    }
    if (d->reject) {
        fail(s, MT_STATUS_NOT_AUTHORIZED, d->reject_reason);
        mt_route_pending_drop_held(&s->route);
        return;
    }
    const mt_deid_profile_t *dp;
    if (mt_route_profile(d, mt_node_deid(mt_assoc_node(req->assoc), NULL, NULL), &dp) != 0) {
        fail(s, MT_STATUS_PROCESSING_FAILURE, "routing: de-identification profile not loaded");
        return;
    }
    start_job(s, dp);
    size_t n;
    const uint8_t *held = mt_route_pending_held(&s->route, &n);
    if (!s->fail_status)
        write_bytes(s, held, n);
    if (!s->fail_status)
        write_bytes(s, p, n_p);
    mt_route_pending_drop_held(&s->route);
}

static void store_on_request(mt_dimse_req_t *req)
{
    store_req_t *s = mt_calloc(1, sizeof *s);
    s->req = req;
    req->svc = s;
    s->rec = mt_index_rec_new();
    const mt_conf_t *conf = mt_assoc_conf(req->assoc);
    mt_route_pending_init(&s->route, conf ? conf->routes : NULL);
    s->rec_checks_only = mt_route_set_always_deid(
        conf ? conf->routes : NULL, mt_node_deid(mt_assoc_node(req->assoc), NULL, NULL) != NULL);
    if (s->rec_checks_only)
        mt_index_rec_keep_uids_only(s->rec);
    s->ts = mt_ts_find(req->transfer_syntax);
    mt_tag_capture_init(&s->hdr, s->ts, !mt_node_tagger(mt_assoc_node(req->assoc)));
    if (!s->ts) {
        fail(s, MT_STATUS_CANNOT_UNDERSTAND, "unknown transfer syntax");
        return;
    }
    if (!req->cmd.affected_sop_instance_uid[0] || !req->cmd.affected_sop_class_uid[0]) {
        fail(s, MT_STATUS_CANNOT_UNDERSTAND, "missing Affected SOP Class/Instance UID");
        return;
    }
    /* Pixel Data streamed: its ELEMENT event comes at its start (not once a value of up to
     * 1 MiB has been buffered), so the rules decide and the header capture stops there; other
     * values above MT_STORE_READER_MAX_VALUE stream past in chunks too (no copy) */
    mt_ds_reader_opts_t o = {.ts = s->ts,
                             .max_buffered_value = MT_STORE_READER_MAX_VALUE,
                             .cb = on_element,
                             .user = s,
                             .stream_pixel_data = true};
    s->reader = mt_ds_reader_new(&o);
    if (!s->route.decided)
        return; /* the job starts once the rules have decided */
    start_job(s, mt_node_deid(mt_assoc_node(req->assoc), NULL, NULL));
}

static void on_committed(void *data, int status, const char *comment)
{
    store_req_t *s = data;
    mt_dimse_req_t *req = s->req;
    s->job = NULL; /* the ingest pipeline has released it */
    if (s->paused) { /* no drain callback comes after the commit */
        s->paused = false;
        mt_assoc_resume_reading(req->assoc);
    }
    if (status == 0) {
        /* the answer first (it releases req): the tagger's and forwarder's wake-ups of other
         * threads are not on the way of the SCU's next request */
        mt_node_t *node = mt_assoc_node(req->assoc);
        respond(req, MT_STATUS_SUCCESS, NULL);
        offer_header(s, node); /* O(1): queues the extraction on the pool */
        mt_route_ingest_committed(node, s->route.dec.n_forward);
    }
    else if (status == MT_EDUPLICATE)
        respond(req, MT_STATUS_DUPLICATE_SOP_INSTANCE, "duplicate SOP instance");
    else if (status == MT_EMALFORMED) /* a Study/Series/SOP Instance UID that is no UID */
        respond(req, MT_STATUS_DS_DOES_NOT_MATCH_SOP_CLASS, comment ? comment : "invalid UID");
    else if (status == MT_ENOSPC || status == MT_ENOMEM || status == MT_EIO)
        respond(req, MT_STATUS_REFUSED_OUT_OF_RESOURCES, comment ? comment : mt_strerror(status));
    else
        respond(req, MT_STATUS_PROCESSING_FAILURE, comment ? comment : mt_strerror(status));
    store_req_free(s);
}

/* The quarantined instance is durable in <root>/.quarantine/ (or failed). Warning B000
 * (Coercion of Data Elements): the header was de-identified and the instance is safe with us,
 * so the sender must not retry; the ErrorComment says it is held back (docs/conformance.md). */
static void on_quarantined(void *data, int status, const char *comment)
{
    store_req_t *s = data;
    mt_dimse_req_t *req = s->req;
    s->job = NULL;
    if (s->paused) {
        s->paused = false;
        mt_assoc_resume_reading(req->assoc);
    }
    if (status == 0) {
        /* the de-identified SOP Instance UID only: a pseudonymous value, no PHI */
        mt_log(MT_LOG_WARN, mt_assoc_log(req->assoc),
               "c-store msgid=%u quarantined (Burned In Annotation YES): sop=%s",
               req->cmd.message_id, s->stored_sop);
        respond(req, MT_STATUS_WARN_COERCION, "quarantined: Burned In Annotation YES, held for review");
    } else if (status == MT_ENOSPC || status == MT_ENOMEM || status == MT_EIO) {
        respond(req, MT_STATUS_REFUSED_OUT_OF_RESOURCES, comment ? comment : mt_strerror(status));
    } else {
        respond(req, MT_STATUS_PROCESSING_FAILURE, comment ? comment : mt_strerror(status));
    }
    store_req_free(s);
}

/* The data set has ended: check it and commit, or answer the recorded failure. */
static void finish(store_req_t *s)
{
    mt_dimse_req_t *req = s->req;
    if (!s->fail_status) {
        if (mt_ds_reader_finish(s->reader) != 0) {
            char c[65];
            const mt_diag_t *d = mt_ds_reader_diag(s->reader);
            snprintf(c, sizeof c, "malformed data set at %llu: %s",
                     (unsigned long long)d->offset, d->reason ? d->reason : "?");
            fail(s, MT_STATUS_CANNOT_UNDERSTAND, c);
        }
    }
    if (!s->fail_status) {
        const char *cls = mt_index_rec_get(s->rec, TAG_SOP_CLASS_UID);
        const char *ins = mt_index_rec_get(s->rec, TAG_SOP_INSTANCE_UID);
        if (!cls)
            fail(s, MT_STATUS_DS_DOES_NOT_MATCH_SOP_CLASS, "SOPClassUID missing");
        else if (strcmp(cls, req->cmd.affected_sop_class_uid) != 0)
            fail(s, MT_STATUS_DS_DOES_NOT_MATCH_SOP_CLASS, "SOPClassUID differs from command");
        else if (!ins)
            fail(s, MT_STATUS_DS_DOES_NOT_MATCH_SOP_CLASS, "SOPInstanceUID missing");
        else if (strcmp(ins, req->cmd.affected_sop_instance_uid) != 0)
            fail(s, MT_STATUS_DS_DOES_NOT_MATCH_SOP_CLASS, "SOPInstanceUID differs from command");
        else if (!mt_index_rec_get(s->rec, TAG_STUDY_INSTANCE_UID) ||
                 !mt_index_rec_get(s->rec, TAG_SERIES_INSTANCE_UID))
            fail(s, MT_STATUS_DS_DOES_NOT_MATCH_SOP_CLASS, "missing Study/Series Instance UID");
    }
    if (!s->fail_status && !s->route.decided)
        route_decide(s, NULL, 0); /* a data set without Pixel Data */
    if (!s->fail_status && s->rec_checks_only && !s->deid) /* never indexed half-recorded */
        fail(s, MT_STATUS_PROCESSING_FAILURE, "de-identification was not started");
    if (!s->fail_status)
        mt_route_ingest_rec(&s->route.dec, s->rec);
    if (!s->fail_status && s->deid) {
        int rc = mt_deid_stream_finish(s->deid);
        if (rc < 0) {
            deid_fail(s, rc);
        } else {
            mt_index_rec_free(s->rec);
            s->rec = deid_rec(s);
            mt_route_ingest_rec(&s->route.dec, s->rec);
        }
    }
    if (s->fail_status) {
        respond(req, s->fail_status, s->fail_comment);
        store_req_free(s);
        return;
    }
    /* The data set is complete: reading was maybe paused by its last append (the rest of the
     * message was already buffered); the commit cancels the drain callback, so resume here or
     * the association never reads its next message. */
    if (s->paused) {
        s->paused = false;
        mt_assoc_resume_reading(req->assoc);
    }
    mt_ingest_job_t *job = s->job;
    mt_index_rec_t *rec = s->rec;
    s->rec = NULL;
    if (s->deid && mt_deid_stream_quarantined(s->deid)) {
        /* not indexed, not forwarded, not tagged: held in <root>/.quarantine/ */
        const char *sop = mt_index_rec_get(rec, TAG_SOP_INSTANCE_UID);
        snprintf(s->stored_sop, sizeof s->stored_sop, "%s", sop ? sop : "");
        mt_index_rec_free(rec);
        mt_tag_capture_dispose(&s->hdr); /* quarantined: not tagged */
        s->committed = true;
        mt_ingest_job_quarantine(job, s->stored_sop, on_quarantined, s);
        return;
    }
    const char *stu = mt_index_rec_get(rec, TAG_STUDY_INSTANCE_UID);
    snprintf(s->stored_study, sizeof s->stored_study, "%s", stu ? stu : "");
    const char *ser = mt_index_rec_get(rec, TAG_SERIES_INSTANCE_UID);
    snprintf(s->stored_series, sizeof s->stored_series, "%s", ser ? ser : "");
    s->committed = true;
    mt_ingest_job_commit(job, rec, on_committed, s);
}

static int store_on_data(mt_dimse_req_t *req, const uint8_t *p, size_t n, bool last)
{
    store_req_t *s = req->svc;
    bool holding = !s->route.decided && !s->fail_status;
    if (!holding)
        write_bytes(s, p, n);
    /* the reader first: it finds Pixel Data in this chunk, so the header capture below copies
     * only the bytes before it, not the whole instance when it comes as one PDV */
    if (!s->fail_status && n && mt_ds_reader_feed(s->reader, p, n) != 0) {
        char c[65];
        const mt_diag_t *d = mt_ds_reader_diag(s->reader);
        snprintf(c, sizeof c, "malformed data set at %llu: %s", (unsigned long long)d->offset,
                 d->reason ? d->reason : "?");
        fail(s, MT_STATUS_CANNOT_UNDERSTAND, c);
    }
    if (!s->fail_status)
        mt_tag_capture_feed(&s->hdr, p, n);
    /* undecided: the reader has seen this chunk; if Pixel Data starts in it (the whole data
     * set often comes as one PDV), the rules decide now and the chunk is written where it
     * lies, else it is held until they can */
    if (holding && !s->fail_status) {
        if (mt_route_pending_ready(&s->route))
            route_decide(s, p, n);
        else if (mt_route_pending_hold(&s->route, p, n) != 0)
            fail(s, MT_STATUS_REFUSED_OUT_OF_RESOURCES, "out of resources: header too large");
    }
    if (last)
        finish(s);
    return 0;
}

static void store_on_abort(mt_dimse_req_t *req)
{
    store_req_t *s = req->svc;
    if (s && s->committed)
        return; /* on_committed will answer into the void and release req */
    if (s)
        store_req_free(s);
    mt_dimse_req_release(req);
}

const mt_svc_ops_t mt_svc_store = {store_on_request, store_on_data, store_on_abort, NULL};
