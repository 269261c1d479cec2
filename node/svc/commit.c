/*
 * commit.c - Storage Commitment Push Model SCP (PS3.4 Annex J, SOP class 1.2.840.10008.1.20.1,
 * well-known instance 1.2.840.10008.1.20.1.1).
 *
 *   N-ACTION-RQ (Action Type 1, Request Storage Commitment) with Transaction UID (0008,1195)
 *     and Referenced SOP Sequence (0008,1199) of (Referenced SOP Class UID, Referenced SOP
 *     Instance UID) items
 *   -> N-ACTION-RSP 0000 at once (the request is accepted; results follow), or
 *      0110/0115/0123 when the request cannot be accepted (malformed identifier, missing
 *      Transaction UID, action type not 1)
 *   -> on a worker: each referenced instance is looked up in the index (verified rows only:
 *      durably stored and indexed, mt_qdb_instances) and its stored file must exist; a row
 *      whose SOP class differs is a class/instance conflict (0119), a missing one is
 *      "no such object instance" (0112)
 *   -> N-EVENT-REPORT-RQ, Event Type 1 (all committed: Referenced SOP Sequence) or 2 (some
 *      failed: Failed SOP Sequence (0008,1198) with Failure Reason (0008,1197), and the
 *      committed ones in Referenced SOP Sequence), on the same association when it is still
 *      open; otherwise on a new association to the requester's address from move_destinations
 *      (its calling AE title), proposing the commitment SOP class with the SCP role for us
 *      (role selection SCU=0/SCP=1, PS3.4 J.3.3). No address configured: logged, dropped.
 * The association is held (mt_assoc_ref) until the report is answered or given up.
 */
#include "svc.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "../conf/conf.h"
#include "../dicom/ds.h"
#include "../index/query.h"
#include "../negotiate.h"
#include "../node.h"
#include "../scu.h"
#include "../util/alloc.h"
#include "../util/err.h"
#include "../util/log.h"

#define COMMIT_MAX_IDENTIFIER (16u << 20)
#define COMMIT_MAX_REFS 100000u
/* UIDs looked up per index query (a UID list: one SQL parameter each) */
#define UID_BATCH 60
#define TAG_TRANSACTION_UID 0x00081195
#define TAG_REF_SOP_SEQ 0x00081199
#define TAG_FAILED_SOP_SEQ 0x00081198
#define TAG_REF_SOP_CLASS 0x00081150
#define TAG_REF_SOP_INST 0x00081155
#define TAG_FAILURE_REASON 0x00081197
#define TAG_QR_LEVEL 0x00080052
#define TAG_SOP_INST 0x00080018
#define VR_UI 0x5549
#define VR_SQ 0x5351
#define VR_US 0x5553
#define VR_CS 0x4353

typedef struct ref {
    char cls[65], inst[65];
    uint16_t failure; /* 0 = committed */
} ref_t;

typedef struct commit_req {
    mt_dimse_req_t *req;
    mt_assoc_t *assoc; /* held with mt_assoc_ref until done */
    const mt_ts_t *ts;
    mt_buf_t data;
    bool too_big;
    char txn[65];
    ref_t *refs;
    size_t n_refs;
    char *index_path, *storage_root;
    char project[65];
    bool has_project;
    char calling[17], called[17];
    mt_log_ctx_t log;
    uv_work_t work;
    int err;
    mt_buf_t report; /* the encoded event report data set */
    uint16_t event_type;
    mt_scu_t *scu;
    uint8_t pcid;
    uint32_t max_pdu;
    uv_loop_t *loop;
} commit_req_t;

static void commit_free(commit_req_t *c)
{
    if (c->assoc)
        mt_assoc_unref(c->assoc);
    mt_buf_dispose(&c->data);
    mt_buf_dispose(&c->report);
    mt_free(c->refs);
    mt_free(c->index_path);
    mt_free(c->storage_root);
    mt_free(c);
}

static void respond(commit_req_t *c, uint16_t status, const char *comment)
{
    mt_dimse_req_t *req = c->req;
    mt_dimse_cmd_t rsp;
    mt_dimse_cmd_init(&rsp);
    rsp.command_field = MT_N_ACTION_RSP;
    rsp.message_id_responded_to = req->cmd.message_id;
    rsp.status = status;
    rsp.has_status = true;
    snprintf(rsp.affected_sop_class_uid, sizeof rsp.affected_sop_class_uid, "%s",
             req->cmd.requested_sop_class_uid);
    snprintf(rsp.affected_sop_instance_uid, sizeof rsp.affected_sop_instance_uid, "%s",
             req->cmd.requested_sop_instance_uid);
    if (status == MT_STATUS_SUCCESS)
        rsp.action_type_id = req->cmd.action_type_id;
    if (comment)
        snprintf(rsp.error_comment, sizeof rsp.error_comment, "%s", comment);
    c->req = NULL;
    mt_assoc_respond(req, &rsp, NULL, 0);
}

/* ---- the identifier ---- */

static int parse_request(commit_req_t *c, const char **why)
{
    mt_ds_t *ds = NULL;
    mt_diag_t d = {0, NULL};
    if (mt_ds_parse(c->data.data, c->data.len, c->ts, &ds, &d) != 0) {
        mt_ds_free(ds);
        *why = "malformed action information";
        return MT_EMALFORMED;
    }
    int rc = 0;
    if (!mt_ds_get_string(ds, TAG_TRANSACTION_UID, c->txn, sizeof c->txn) || !c->txn[0]) {
        *why = "Transaction UID missing";
        rc = MT_EINVAL;
        goto out;
    }
    mt_ds_elem_t *seq = mt_ds_get(ds, TAG_REF_SOP_SEQ);
    if (!seq || seq->vr != VR_SQ || seq->n_items == 0) {
        *why = "Referenced SOP Sequence missing or empty";
        rc = MT_EINVAL;
        goto out;
    }
    if (seq->n_items > COMMIT_MAX_REFS) {
        *why = "too many referenced instances";
        rc = MT_ETOOBIG;
        goto out;
    }
    c->refs = mt_calloc(seq->n_items, sizeof *c->refs);
    for (size_t i = 0; i < seq->n_items; i++) {
        ref_t *r = &c->refs[c->n_refs++];
        mt_ds_get_string(seq->items[i], TAG_REF_SOP_CLASS, r->cls, sizeof r->cls);
        mt_ds_get_string(seq->items[i], TAG_REF_SOP_INST, r->inst, sizeof r->inst);
        if (!r->cls[0] || !r->inst[0]) {
            *why = "an item lacks Referenced SOP Class/Instance UID";
            rc = MT_EINVAL;
            goto out;
        }
    }
out:
    mt_ds_free(ds);
    return rc;
}

/* ---- verification, off the loop ---- */

typedef struct found_ctx {
    commit_req_t *c;
    size_t lo, hi;
} found_ctx_t;

static int on_found(void *user, const mt_qdb_instance_t *in)
{
    found_ctx_t *f = user;
    commit_req_t *c = f->c;
    for (size_t i = f->lo; i < f->hi; i++) {
        ref_t *r = &c->refs[i];
        if (r->failure != 0x0112 || strcmp(r->inst, in->sop_instance_uid) != 0)
            continue;
        if (strcmp(r->cls, in->sop_class_uid) != 0) {
            r->failure = 0x0119; /* class / instance conflict */
            continue;
        }
        size_t n = strlen(c->storage_root) + strlen(in->path) + 2;
        char *p = mt_malloc(n);
        snprintf(p, n, "%s/%s", c->storage_root, in->path);
        struct stat st;
        r->failure = (stat(p, &st) == 0 && (uint64_t)st.st_size == in->size) ? 0 : 0x0110;
        mt_free(p);
    }
    return 0;
}

static pthread_mutex_t db_mu = PTHREAD_MUTEX_INITIALIZER;

static void work_cb(uv_work_t *w)
{
    commit_req_t *c = w->data;
    for (size_t i = 0; i < c->n_refs; i++)
        c->refs[i].failure = 0x0112;
    mt_qdb_t *db = NULL;
    pthread_mutex_lock(&db_mu); /* sqlite open is thread-safe; keep the count of handles low */
    int rc = mt_qdb_open(c->index_path, &db);
    pthread_mutex_unlock(&db_mu);
    if (rc != 0) {
        c->err = MT_EDB;
        for (size_t i = 0; i < c->n_refs; i++)
            c->refs[i].failure = 0x0110;
        return;
    }
    mt_qscope_t scope = {.project = c->has_project ? c->project : NULL, .retrieve_ae = c->called};
    for (size_t lo = 0; lo < c->n_refs; lo += UID_BATCH) {
        size_t hi = lo + UID_BATCH < c->n_refs ? lo + UID_BATCH : c->n_refs;
        /* an IMAGE-level identifier with the batch's UIDs as a list (the CLI's query text
         * cannot carry them: its terms are short) */
        mt_buf_t list;
        mt_buf_init(&list, SIZE_MAX);
        for (size_t i = lo; i < hi; i++) {
            if (i > lo)
                mt_buf_append(&list, "\\", 1);
            mt_buf_append(&list, c->refs[i].inst, strlen(c->refs[i].inst));
        }
        mt_buf_append(&list, "", 1);
        mt_ds_t *id = mt_ds_new();
        mt_ds_set_string(id, TAG_QR_LEVEL, VR_CS, "IMAGE");
        mt_ds_set_string(id, TAG_SOP_INST, VR_UI, (const char *)list.data);
        mt_query_t *q = NULL;
        mt_query_err_t qe;
        if (mt_query_from_ds(id, MT_QR_RELATIONAL, &q, &qe) == 0) {
            found_ctx_t f = {c, lo, hi};
            if (mt_qdb_instances(db, q, &scope, on_found, &f) < 0)
                for (size_t i = lo; i < hi; i++)
                    c->refs[i].failure = 0x0110;
        } else {
            for (size_t i = lo; i < hi; i++)
                c->refs[i].failure = 0x0110;
        }
        mt_query_free(q);
        mt_ds_free(id);
        mt_buf_dispose(&list);
    }
    mt_qdb_close(db);

    /* the event report */
    size_t n_ok = 0;
    for (size_t i = 0; i < c->n_refs; i++)
        n_ok += c->refs[i].failure == 0;
    size_t n_fail = c->n_refs - n_ok;
    mt_ds_t *ds = mt_ds_new();
    mt_ds_set_string(ds, TAG_TRANSACTION_UID, VR_UI, c->txn);
    for (int pass = 0; pass < 2; pass++) {
        size_t n = pass == 0 ? n_ok : n_fail;
        if (n == 0)
            continue;
        uint32_t tag = pass == 0 ? TAG_REF_SOP_SEQ : TAG_FAILED_SOP_SEQ;
        mt_ds_set(ds, tag, VR_SQ, NULL, 0);
        mt_ds_elem_t *e = mt_ds_get(ds, tag);
        e->items = mt_calloc(n, sizeof *e->items);
        for (size_t i = 0; i < c->n_refs; i++) {
            const ref_t *r = &c->refs[i];
            if ((pass == 0) != (r->failure == 0))
                continue;
            mt_ds_t *it = mt_ds_new();
            mt_ds_set_string(it, TAG_REF_SOP_CLASS, VR_UI, r->cls);
            mt_ds_set_string(it, TAG_REF_SOP_INST, VR_UI, r->inst);
            if (pass == 1)
                mt_ds_set_u16(it, TAG_FAILURE_REASON, r->failure);
            e->items[e->n_items++] = it;
        }
    }
    c->event_type = n_fail ? 2 : 1;
    mt_buf_init(&c->report, SIZE_MAX);
    if (mt_ds_encode(ds, c->ts ? c->ts : mt_ts_implicit_le, &c->report) < 0)
        c->err = MT_EINVAL;
    mt_ds_free(ds);
    mt_log(MT_LOG_INFO, &c->log, "storage commitment: %zu committed, %zu failed", n_ok, n_fail);
}

/* ---- sending the report ---- */

static void on_report_rsp(void *user, int err, const mt_dimse_cmd_t *rsp);

static int send_report(commit_req_t *c, mt_link_t link, const mt_ts_t *ts)
{
    if (!c->pcid)
        return MT_EUNSUPPORTED;
    /* the report was encoded in the N-ACTION's syntax; re-encode when the context differs */
    if (ts && c->ts && ts != c->ts) {
        mt_ds_t *ds = NULL;
        mt_diag_t d = {0, NULL};
        if (mt_ds_parse(c->report.data, c->report.len, c->ts, &ds, &d) == 0) {
            mt_buf_t b;
            mt_buf_init(&b, SIZE_MAX);
            if (mt_ds_encode(ds, ts, &b) == 0) {
                mt_buf_dispose(&c->report);
                c->report = b;
                c->ts = ts;
            } else {
                mt_buf_dispose(&b);
            }
        }
        mt_ds_free(ds);
    }
    mt_dimse_cmd_t rq;
    mt_dimse_cmd_init(&rq);
    rq.command_field = MT_N_EVENT_REPORT_RQ;
    rq.message_id = link.ops->next_message_id(link.impl);
    rq.data_set_type = 0x0001;
    rq.event_type_id = c->event_type;
    snprintf(rq.affected_sop_class_uid, sizeof rq.affected_sop_class_uid, "%s",
             MT_UID_STORAGE_COMMITMENT);
    snprintf(rq.affected_sop_instance_uid, sizeof rq.affected_sop_instance_uid, "%s",
             MT_UID_STORAGE_COMMITMENT_INSTANCE);
    int rc = link.ops->send_command(link.impl, c->pcid, &rq, on_report_rsp, c);
    if (rc < 0)
        return rc;
    rc = link.ops->send_data(link.impl, c->pcid, c->report.data, c->report.len, true, NULL, NULL);
    return rc; /* on failure the response callback reports the loss */
}

static void on_scu_close(mt_scu_t *s, int status, void *user)
{
    commit_req_t *c = user;
    (void)s;
    (void)status;
    commit_free(c);
}

static void on_report_rsp(void *user, int err, const mt_dimse_cmd_t *rsp)
{
    commit_req_t *c = user;
    if (err < 0)
        mt_log(MT_LOG_WARN, &c->log, "storage commitment: N-EVENT-REPORT not answered (%s)",
               c->scu ? "new association lost" : "association lost");
    else
        mt_log(MT_LOG_INFO, &c->log,
               "storage commitment: N-EVENT-REPORT (event %u) answered "
               "0x%04X%s",
               c->event_type, rsp->status, c->scu ? " on a new association" : "");
    if (c->scu) {
        mt_scu_release(c->scu); /* on_scu_close frees */
        return;
    }
    commit_free(c);
}

static void on_scu_open(mt_scu_t *s, int status, void *user)
{
    commit_req_t *c = user;
    if (status < 0) {
        mt_log(MT_LOG_WARN, &c->log, "storage commitment: cannot associate with %s: %s", c->calling,
               mt_strerror(status));
        c->scu = NULL;
        commit_free(c);
        return;
    }
    mt_link_t link = mt_scu_link(s);
    c->pcid = link.ops->find_pc(link.impl, MT_UID_STORAGE_COMMITMENT, NULL);
    const mt_negotiated_t *n = mt_scu_negotiated(s);
    const mt_nego_pc_t *pc = mt_negotiated_pc(n, c->pcid);
    if (send_report(c, link, pc ? pc->ts : NULL) < 0) {
        mt_log(MT_LOG_WARN, &c->log,
               "storage commitment: %s did not accept the commitment SOP class as SCU", c->calling);
        mt_scu_abort(s);
    }
}

static void after_work_cb(uv_work_t *w, int status)
{
    commit_req_t *c = w->data;
    if (status < 0 || c->err) {
        mt_log(MT_LOG_WARN, &c->log, "storage commitment: verification failed");
        commit_free(c);
        return;
    }
    /* the same association, when it is still open */
    if (mt_assoc_is_open(c->assoc)) {
        mt_link_t link = mt_assoc_link(c->assoc);
        c->pcid = link.ops->find_pc(link.impl, MT_UID_STORAGE_COMMITMENT, NULL);
        if (c->pcid && send_report(c, link, c->ts) == 0)
            return; /* on_report_rsp frees */
    }
    const mt_conf_t *conf = mt_assoc_conf(c->assoc);
    const mt_conf_dest_t *d = mt_conf_dest_by_ae(conf, c->calling);
    if (!d) {
        mt_log(MT_LOG_WARN, &c->log,
               "storage commitment: association closed and no address for %s in "
               "move_destinations: result not delivered",
               c->calling);
        commit_free(c);
        return;
    }
    static const mt_nego_proposal_t pcs[1] = {{MT_UID_STORAGE_COMMITMENT,
                                               {"1.2.840.10008.1.2.1", "1.2.840.10008.1.2"},
                                               2,
                                               true,
                                               false,
                                               true}};
    mt_scu_params_t sp = {.calling_ae = c->called,
                          .called_ae = d->ae_title,
                          .host = d->host,
                          .port = d->port,
                          .pcs = pcs,
                          .n_pcs = 1,
                          .max_pdu = conf->max_pdu,
                          .connect_timeout_ms = conf->artim_timeout_ms,
                          .dimse_timeout_ms = conf->idle_timeout_ms,
                          .log_parent_id = c->log.assoc_id};
    int rc = mt_scu_open(c->loop, &sp, on_scu_open, on_scu_close, c, &c->scu);
    mt_assoc_unref(c->assoc); /* after the copy of d's address: conf is the assoc's */
    c->assoc = NULL;
    if (rc < 0) {
        mt_log(MT_LOG_WARN, &c->log, "storage commitment: cannot open an association to %s",
               c->calling);
        commit_free(c);
    }
}

/* ---- service entry points ---- */

static void commit_on_request(mt_dimse_req_t *req)
{
    commit_req_t *c = mt_calloc(1, sizeof *c);
    c->req = req;
    req->svc = c;
    c->log = *mt_assoc_log(req->assoc);
    c->ts = mt_ts_find(req->transfer_syntax);
    mt_buf_init(&c->data, COMMIT_MAX_IDENTIFIER);
    mt_buf_init(&c->report, SIZE_MAX);
}

static int commit_on_data(mt_dimse_req_t *req, const uint8_t *p, size_t n, bool last)
{
    commit_req_t *c = req->svc;
    if (!c->too_big && n && mt_buf_append(&c->data, p, n) != 0)
        c->too_big = true;
    if (!last)
        return 0;
    const char *why = NULL;
    if (strcmp(req->cmd.requested_sop_instance_uid, MT_UID_STORAGE_COMMITMENT_INSTANCE) != 0) {
        respond(c, 0x0117, "Requested SOP Instance is not 1.2.840.10008.1.20.1.1");
        commit_free(c);
        return 0;
    }
    if (req->cmd.action_type_id != 1) {
        respond(c, 0x0123, "only action type 1 (request storage commitment)");
        commit_free(c);
        return 0;
    }
    if (c->too_big || !c->ts || parse_request(c, &why) != 0) {
        respond(c, MT_STATUS_PROCESSING_FAILURE,
                c->too_big ? "action information too large"
                : why      ? why
                           : "unreadable");
        commit_free(c);
        return 0;
    }
    mt_buf_dispose(&c->data);
    mt_assoc_t *a = req->assoc;
    const mt_conf_t *conf = mt_assoc_conf(a);
    const mt_conf_project_t *proj = mt_assoc_project(a);
    c->index_path = mt_strdup(conf->index_path);
    c->storage_root = mt_strdup(conf->storage_root);
    if (proj) {
        c->has_project = true;
        snprintf(c->project, sizeof c->project, "%s", proj->name);
    }
    snprintf(c->calling, sizeof c->calling, "%s", mt_assoc_calling_ae(a));
    snprintf(c->called, sizeof c->called, "%s", mt_assoc_called_ae(a));
    c->loop = mt_node_loop(mt_assoc_node(a));
    c->assoc = a;
    mt_assoc_ref(a);
    mt_log(MT_LOG_INFO, &c->log, "storage commitment requested: %zu instance(s)", c->n_refs);
    respond(c, MT_STATUS_SUCCESS, NULL); /* accepted; the results follow */
    c->work.data = c;
    if (uv_queue_work(c->loop, &c->work, work_cb, after_work_cb) < 0)
        commit_free(c);
    return 0;
}

static void commit_on_abort(mt_dimse_req_t *req)
{
    commit_req_t *c = req->svc;
    if (c) /* the data set was still arriving: nothing started */
        commit_free(c);
    mt_dimse_req_release(req);
}

const mt_svc_ops_t mt_svc_commit = {commit_on_request, commit_on_data, commit_on_abort, NULL};
