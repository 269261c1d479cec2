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
 * never reaches the disk or the index. Burned In Annotation YES: 0110, nothing stored.
 * The reader below still checks the received data set against the command.
 */
#include "svc.h"

#include <stdio.h>
#include <string.h>

#include "../deid/stream.h"
#include "../dicom/ds.h"
#include "../node.h"
#include "../tagger.h"
#include "../util/alloc.h"
#include "../util/err.h"
#include "../util/log.h"

#define TAG_SOP_CLASS_UID MT_TAG(0x0008, 0x0016)
#define TAG_SOP_INSTANCE_UID MT_TAG(0x0008, 0x0018)
#define TAG_STUDY_INSTANCE_UID MT_TAG(0x0020, 0x000D)
#define TAG_SERIES_INSTANCE_UID MT_TAG(0x0020, 0x000E)
#define MT_STORE_TAG_HDR_MAX (16u << 20)

typedef struct store_req {
    mt_dimse_req_t *req;
    mt_ingest_job_t *job; /* NULL once committed or cancelled */
    mt_ds_reader_t *reader;
    mt_index_rec_t *rec;
    mt_deid_stream_t *deid; /* NULL: store as received */
    const mt_ts_t *ts;
    bool paused;
    bool committed;
    /* the original header for the CMR tagger (node/tagger.c): data set bytes as received
     * (before de-identification) up to Pixel Data; dropped beyond MT_STORE_TAG_HDR_MAX */
    mt_buf_t hdr;
    uint64_t hdr_end; /* offset of Pixel Data, or UINT64_MAX while not seen */
    bool hdr_off;     /* not captured (too large, deflated, no tagger) */
    char stored_study[65], stored_series[65]; /* UIDs as stored (de-identified or not) */
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
    mt_buf_dispose(&s->hdr);
    mt_free(s);
}

/* Hand the captured original header to the tagger (after a successful store). */
static void offer_header(store_req_t *s)
{
    mt_tagger_t *t = mt_node_tagger(mt_assoc_node(s->req->assoc));
    if (!t || s->hdr_off || !s->hdr.len)
        return;
    size_t len = s->hdr_end < s->hdr.len ? (size_t)s->hdr_end : s->hdr.len;
    uint8_t *p = s->hdr.data;
    s->hdr.data = NULL;
    s->hdr.len = s->hdr.cap = 0;
    mt_tagger_offer(t, p, len, s->ts, s->stored_study, s->stored_series);
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
    if (ev == MT_DS_EV_ELEMENT && e->depth == 0 && e->value)
        mt_index_rec_offer(s->rec, e->tag, e->vr, e->value, e->value_len, s->ts->big_endian);
    if (ev == MT_DS_EV_ELEMENT && e->depth == 0 && e->tag == MT_TAG_PIXEL_DATA &&
        s->hdr_end == UINT64_MAX)
        s->hdr_end = e->offset;
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
    }
    return rec;
}

static void store_on_request(mt_dimse_req_t *req)
{
    store_req_t *s = mt_calloc(1, sizeof *s);
    s->req = req;
    req->svc = s;
    s->rec = mt_index_rec_new();
    s->ts = mt_ts_find(req->transfer_syntax);
    mt_buf_init(&s->hdr, MT_STORE_TAG_HDR_MAX);
    s->hdr_end = UINT64_MAX;
    s->hdr_off = !s->ts || s->ts->deflated || !mt_node_tagger(mt_assoc_node(req->assoc));
    if (!s->ts) {
        fail(s, MT_STATUS_CANNOT_UNDERSTAND, "unknown transfer syntax");
        return;
    }
    if (!req->cmd.affected_sop_instance_uid[0] || !req->cmd.affected_sop_class_uid[0]) {
        fail(s, MT_STATUS_CANNOT_UNDERSTAND, "missing Affected SOP Class/Instance UID");
        return;
    }
    mt_ds_reader_opts_t o = {.ts = s->ts, .cb = on_element, .user = s};
    s->reader = mt_ds_reader_new(&o);
    const uint8_t *key;
    size_t key_len;
    const mt_deid_profile_t *dp = mt_node_deid(mt_assoc_node(req->assoc), &key, &key_len);
    if (dp && !(s->deid = mt_deid_stream_new(dp, key, key_len, s->ts, 0, deid_emit, s))) {
        fail(s, MT_STATUS_REFUSED_OUT_OF_RESOURCES, "out of resources: de-identification");
        return; /* never fall back to storing the original */
    }

    mt_meta_t meta;
    memset(&meta, 0, sizeof meta);
    snprintf(meta.sop_class_uid, sizeof meta.sop_class_uid, "%s", req->cmd.affected_sop_class_uid);
    snprintf(meta.sop_instance_uid, sizeof meta.sop_instance_uid, "%s",
             req->cmd.affected_sop_instance_uid);
    snprintf(meta.transfer_syntax_uid, sizeof meta.transfer_syntax_uid, "%s", s->ts->uid);
    snprintf(meta.source_ae, sizeof meta.source_ae, "%s", mt_assoc_calling_ae(req->assoc));
    if (dp && mt_deid_stream_meta(dp, key, key_len, &meta) != 0) {
        fail(s, MT_STATUS_PROCESSING_FAILURE, "de-identification failed");
        return;
    }
    s->job = mt_ingest_job_new(mt_node_ingest(mt_assoc_node(req->assoc)), &meta);
    if (!s->job)
        fail(s, MT_STATUS_REFUSED_OUT_OF_RESOURCES, "cannot start storing");
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
        offer_header(s); /* O(1): queues the extraction on the pool */
        respond(req, MT_STATUS_SUCCESS, NULL);
    }
    else if (status == MT_EDUPLICATE)
        respond(req, MT_STATUS_DUPLICATE_SOP_INSTANCE, "duplicate SOP instance");
    else if (status == MT_ENOSPC || status == MT_ENOMEM || status == MT_EIO)
        respond(req, MT_STATUS_REFUSED_OUT_OF_RESOURCES, comment ? comment : mt_strerror(status));
    else
        respond(req, MT_STATUS_PROCESSING_FAILURE, comment ? comment : mt_strerror(status));
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
        if (!cls || strcmp(cls, req->cmd.affected_sop_class_uid) != 0)
            fail(s, MT_STATUS_DS_DOES_NOT_MATCH_SOP_CLASS, "SOPClassUID differs from command");
        else if (!ins || strcmp(ins, req->cmd.affected_sop_instance_uid) != 0)
            fail(s, MT_STATUS_DS_DOES_NOT_MATCH_SOP_CLASS, "SOPInstanceUID differs from command");
        else if (!mt_index_rec_get(s->rec, TAG_STUDY_INSTANCE_UID) ||
                 !mt_index_rec_get(s->rec, TAG_SERIES_INSTANCE_UID))
            fail(s, MT_STATUS_DS_DOES_NOT_MATCH_SOP_CLASS, "missing Study/Series Instance UID");
    }
    if (!s->fail_status && s->deid) {
        int rc = mt_deid_stream_finish(s->deid);
        if (rc < 0) {
            deid_fail(s, rc);
        } else {
            mt_index_rec_free(s->rec);
            s->rec = deid_rec(s);
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
    const char *stu = mt_index_rec_get(rec, TAG_STUDY_INSTANCE_UID);
    snprintf(s->stored_study, sizeof s->stored_study, "%s", stu ? stu : "");
    const char *ser = mt_index_rec_get(rec, TAG_SERIES_INSTANCE_UID);
    snprintf(s->stored_series, sizeof s->stored_series, "%s", ser ? ser : "");
    if (!s->stored_study[0] || !s->stored_series[0])
        s->hdr_off = true;
    s->committed = true;
    mt_ingest_job_commit(job, rec, on_committed, s);
}

static int store_on_data(mt_dimse_req_t *req, const uint8_t *p, size_t n, bool last)
{
    store_req_t *s = req->svc;
    if (!s->fail_status && n && s->deid) {
        int rc = mt_deid_stream_feed(s->deid, p, n);
        if (rc < 0) {
            deid_fail(s, rc);
        } else if (rc == 1 && !s->paused) {
            s->paused = true;
            mt_assoc_pause_reading(req->assoc);
        }
    } else if (!s->fail_status && n) {
        int rc = mt_ingest_job_append(s->job, p, n, on_drain, s);
        if (rc < 0) {
            fail(s, MT_STATUS_REFUSED_OUT_OF_RESOURCES,
                 rc == MT_ENOSPC ? "out of resources: disk full" : "out of resources: write");
        } else if (rc == 1 && !s->paused) {
            s->paused = true;
            mt_assoc_pause_reading(req->assoc);
        }
    }
    if (!s->fail_status && n && !s->hdr_off && s->hdr_end == UINT64_MAX &&
        mt_buf_append(&s->hdr, p, n) != 0) {
        s->hdr_off = true; /* header larger than the capture limit: not tagged */
        mt_buf_dispose(&s->hdr);
    }
    if (!s->fail_status && n && mt_ds_reader_feed(s->reader, p, n) != 0) {
        char c[65];
        const mt_diag_t *d = mt_ds_reader_diag(s->reader);
        snprintf(c, sizeof c, "malformed data set at %llu: %s", (unsigned long long)d->offset,
                 d->reason ? d->reason : "?");
        fail(s, MT_STATUS_CANNOT_UNDERSTAND, c);
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
