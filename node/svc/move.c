/*
 * move.c - C-MOVE SCP (PS3.4 C.4.2), and the request handling it shares with C-GET (get.c):
 * Patient Root and Study Root information models.
 *
 * Per request:
 *   on_request  -> the model from the context's abstract syntax; buffer the identifier
 *   last data   -> parse (context's syntax) and plan (mt_query_from_ds, hierarchical: the unique
 *                  keys of the levels above); refused identifier: A900/C000 at once.
 *                  C-MOVE: the Move Destination must be in move_destinations (else A801)
 *   uv_queue_work: the verified instances the identifier selects (mt_qdb_instances), scoped to
 *                  the called AE's project, with their stored paths and syntaxes
 *   after_work  -> none: 0000 with zero counts. Else
 *                  C-MOVE: open an association to the destination (node/scu.c) proposing the
 *                  instances' SOP classes and syntaxes (mt_retrieve_proposals); when it cannot
 *                  be opened every sub-operation fails (A702, the Failed SOP Instance UID List);
 *                  C-GET: the sub-operations go on the requester's association (assoc link)
 *   sub-ops     -> retrieve.c; after a sub-operation a Pending response (FF00) with
 *                  remaining / completed / failed / warning (at most one per 10 ms); at the
 *                  end the final response:
 *                    0000 all completed | B000 some failed or warned | A702 none completed |
 *                    FE00 C-CANCEL-RQ honoured (counts; remaining = not started) |
 *                    C001 index error
 *                  with an identifier holding Failed SOP Instance UID List (0008,0058) when
 *                  some failed.
 * C-CANCEL: the engine stops after the sub-operation in progress. Requester's association
 * lost: the destination association is aborted at once (C-MOVE; C-GET loses its link with
 * the association); the request is released when the engine has stopped.
 * The destination association is released after the last sub-operation; the request's state
 * is freed once both the final response is sent and that association has closed.
 */
#include "svc.h"

#include <stdio.h>
#include <string.h>
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
#include "retrieve.h"

#define QR_MAX_IDENTIFIER (1u << 20)
#define STATUS_UNABLE_TO_PROCESS 0xC001
#define MAX_INSTANCES 1000000u

typedef struct qr_req {
    mt_dimse_req_t *req; /* NULL once the final response was sent or the req released */
    bool is_get;
    mt_qr_model_t model;
    const mt_ts_t *ts;
    mt_buf_t data;
    bool too_big;
    bool wrong_context; /* not a MOVE (GET) model's context: answered 0122 */
    mt_query_t *q;
    uint32_t offending; /* a refused identifier's Offending Element (0000,0901), or 0 */
    char *index_path, *storage_root;
    char project[65];
    bool has_project;
    char dest_ae[17], dest_host[256], our_ae[17], requester_ae[17];
    uint16_t dest_port;
    uint16_t msg_id;
    mt_log_ctx_t log;

    uv_work_t work;
    bool in_work, aborted, cancel;
    int err;
    mt_subop_inst_t *insts;
    size_t n_insts, cap_insts;
    bool too_many;

    mt_retrieve_t *r;
    mt_scu_t *scu;
    bool scu_open; /* an scu exists and has not reported closing */
    bool finished; /* final response sent / req released */
    uint64_t t_start;
    uint64_t last_pending; /* uv_hrtime of the last Pending response */
} qr_req_t;

static void qr_maybe_free(qr_req_t *m)
{
    if (!m->finished || m->scu_open || m->in_work)
        return;
    mt_buf_dispose(&m->data);
    mt_query_free(m->q);
    for (size_t i = 0; m->insts && i < m->n_insts; i++)
        mt_free(m->insts[i].path);
    mt_free(m->insts);
    mt_retrieve_free(m->r);
    mt_free(m->index_path);
    mt_free(m->storage_root);
    mt_free(m);
}

static uint16_t rsp_field(const qr_req_t *m)
{
    return m->is_get ? MT_C_GET_RSP : MT_C_MOVE_RSP;
}

/* Send a response; a final one releases the req and marks m finished. */
static void respond(qr_req_t *m, uint16_t status, const char *comment,
                    const mt_retrieve_counts_t *c, const char *failed_uids)
{
    mt_dimse_req_t *req = m->req;
    if (!req)
        return;
    bool final = status != MT_STATUS_PENDING && status != MT_STATUS_PENDING_WARN;
    if (m->aborted) {
        if (final) {
            m->req = NULL;
            m->finished = true;
            mt_log(MT_LOG_INFO, &m->log,
                   "%s msgid=%u%s%s abandoned (requester gone): instances=%zu completed=%u "
                   "failed=%u",
                   m->is_get ? "c-get" : "c-move", req->cmd.message_id,
                   m->is_get ? "" : " dest=", m->is_get ? "" : m->dest_ae, m->n_insts,
                   c ? c->completed : 0, c ? c->failed : 0);
            mt_dimse_req_release(req);
        }
        return;
    }
    mt_dimse_cmd_t rsp;
    mt_dimse_cmd_init(&rsp);
    rsp.command_field = rsp_field(m);
    rsp.message_id_responded_to = req->cmd.message_id;
    rsp.status = status;
    rsp.has_status = true;
    snprintf(rsp.affected_sop_class_uid, sizeof rsp.affected_sop_class_uid, "%s",
             req->cmd.affected_sop_class_uid);
    if (comment)
        snprintf(rsp.error_comment, sizeof rsp.error_comment, "%s", comment);
    if (final && m->offending) {
        rsp.offending_element[0] = m->offending;
        rsp.n_offending = 1;
    }
    if (c) {
        rsp.has_counts = true;
        rsp.n_remaining = (uint16_t)(c->remaining > 0xFFFF ? 0xFFFF : c->remaining);
        rsp.n_completed = (uint16_t)(c->completed > 0xFFFF ? 0xFFFF : c->completed);
        rsp.n_failed = (uint16_t)(c->failed > 0xFFFF ? 0xFFFF : c->failed);
        rsp.n_warning = (uint16_t)(c->warning > 0xFFFF ? 0xFFFF : c->warning);
    }
    mt_buf_t id;
    mt_buf_init(&id, SIZE_MAX);
    bool have_id = false;
    if (final && failed_uids && failed_uids[0] && m->ts) {
        mt_ds_t *ds = mt_ds_new();
        if (mt_ds_set(ds, 0x00080058, 0x5549 /* UI */, failed_uids,
                      (uint32_t)strlen(failed_uids)) == 0 &&
            mt_ds_encode(ds, m->ts, &id) == 0)
            have_id = true;
        mt_ds_free(ds);
    }
    if (final) {
        m->req = NULL;
        m->finished = true;
        mt_log(
            status == MT_STATUS_SUCCESS || status == MT_STATUS_CANCEL ? MT_LOG_INFO : MT_LOG_WARN,
            &m->log,
            "%s msgid=%u%s%s%s%s instances=%zu status=0x%04X completed=%u failed=%u "
            "warning=%u%s%s ms=%.1f",
            m->is_get ? "c-get" : "c-move", req->cmd.message_id,
            m->is_get ? "" : " dest=", m->is_get ? "" : m->dest_ae,
            m->has_project ? " project=" : "", m->has_project ? m->project : "", m->n_insts, status,
            c ? c->completed : 0, c ? c->failed : 0, c ? c->warning : 0, comment ? " comment=" : "",
            comment ? comment : "", (double)(uv_hrtime() - m->t_start) / 1e6);
    }
    mt_assoc_respond(req, &rsp, have_id ? id.data : NULL, have_id ? id.len : 0);
    mt_buf_dispose(&id);
}

static void send_final_simple(qr_req_t *m, uint16_t status, const char *comment)
{
    respond(m, status, comment, NULL, NULL);
    qr_maybe_free(m);
}

/* ---- sub-operations ---- */

/* A Pending response after a sub-operation, at most one per PENDING_MIN_NS (PS3.4 C.4.2.1.5
 * leaves their number to the SCP): a 2,500-instance move sends a few hundred, not 2,500. */
#define PENDING_MIN_NS (10u * 1000u * 1000u)

static void on_progress(mt_retrieve_t *r, void *user)
{
    qr_req_t *m = user;
    uint64_t now = uv_hrtime();
    if (m->last_pending && now - m->last_pending < PENDING_MIN_NS)
        return;
    m->last_pending = now;
    mt_retrieve_counts_t c = mt_retrieve_counts(r);
    respond(m, MT_STATUS_PENDING, NULL, &c, NULL);
}

static void on_done(mt_retrieve_t *r, void *user)
{
    qr_req_t *m = user;
    mt_retrieve_counts_t c = mt_retrieve_counts(r);
    bool cancelled = mt_retrieve_cancelled(r);
    uint16_t st = mt_retrieve_final_status(&c, cancelled);
    const char *comment = NULL;
    if (st == 0xA702)
        comment = m->is_get ? "no sub-operation completed"
                            : "no sub-operation completed (destination unreachable or refusing)";
    respond(m, st, comment, &c, mt_retrieve_failed_uids(r));
    if (m->scu)
        mt_scu_release(m->scu);
    qr_maybe_free(m);
}

static void on_scu_close(mt_scu_t *s, int status, void *user)
{
    qr_req_t *m = user;
    (void)s;
    (void)status;
    m->scu = NULL;
    /* the association is gone and the scu is freed when this returns: the engine must not
     * touch its link again. Sub-operations awaiting a response were failed by the scu's
     * pending table; the ones not sent yet (one may be on the pool being read) fail now as a
     * lost link, and on_done answers (nothing happens if the engine had finished already).
     * scu_open stays true until then, so that on_done cannot free m under us. */
    if (m->r)
        mt_retrieve_link_lost(m->r);
    m->scu_open = false;
    qr_maybe_free(m);
}

static void on_scu_open(mt_scu_t *s, int status, void *user)
{
    qr_req_t *m = user;
    if (status < 0) {
        m->scu = NULL;
        m->scu_open = false;
        mt_log(MT_LOG_WARN, &m->log, "c-move: cannot associate with %s at %s:%u: %s", m->dest_ae,
               m->dest_host, m->dest_port,
               status == MT_EREJECTED ? "association rejected" : mt_strerror(status));
        mt_retrieve_fail_all(m->r); /* on_done answers */
        return;
    }
    if (m->cancel || m->aborted) {
        mt_retrieve_cancel(m->r);
    }
    (void)s;
    mt_retrieve_start(m->r);
}

static void start_subops(qr_req_t *m)
{
    mt_dimse_req_t *req = m->req;
    mt_assoc_t *a = req->assoc;
    mt_retrieve_params_t rp = {
        .loop = mt_node_loop(mt_assoc_node(a)),
        .move_originator_ae = m->is_get ? NULL : m->requester_ae,
        .move_originator_msg_id = m->msg_id,
        .priority = req->cmd.priority,
        .log = &m->log,
        .on_progress = on_progress,
        .on_done = on_done,
        .user = m,
    };
    if (m->is_get) {
        rp.link = mt_assoc_link(a);
        m->r = mt_retrieve_new(&rp, m->insts, m->n_insts);
        m->insts = NULL;
        if (m->cancel)
            mt_retrieve_cancel(m->r);
        mt_retrieve_start(m->r);
        return;
    }
    mt_nego_proposal_t *pcs = mt_calloc(MT_NEGO_MAX_PCS, sizeof *pcs);
    bool truncated = false;
    size_t n_pcs = mt_retrieve_proposals(m->insts, m->n_insts, pcs, MT_NEGO_MAX_PCS, &truncated);
    if (truncated)
        mt_log(MT_LOG_WARN, &m->log,
               "c-move: more than %d presentation contexts needed: some instances will fail",
               MT_NEGO_MAX_PCS);
    const mt_conf_t *c = mt_assoc_conf(a);
    mt_scu_params_t sp = {
        .calling_ae = m->our_ae,
        .called_ae = m->dest_ae,
        .host = m->dest_host,
        .port = m->dest_port,
        .pcs = pcs,
        .n_pcs = n_pcs,
        .max_pdu = c->max_pdu,
        .connect_timeout_ms = c->artim_timeout_ms,
        .dimse_timeout_ms = c->idle_timeout_ms,
        .log_parent_id = m->log.assoc_id,
    };
    m->scu_open = true;
    int rc = mt_scu_open(rp.loop, &sp, on_scu_open, on_scu_close, m, &m->scu);
    mt_free(pcs); /* the RQ is built: the strings it pointed to may go */
    if (rc == 0)
        rp.link = mt_scu_link(m->scu);
    m->r = mt_retrieve_new(&rp, m->insts, m->n_insts);
    m->insts = NULL; /* the engine's now; n_insts stays for the log line */
    if (rc < 0) {
        m->scu_open = false;
        m->scu = NULL;
        mt_log(MT_LOG_WARN, &m->log, "c-move: cannot open an association to %s: %s", m->dest_ae,
               mt_strerror(rc));
        mt_retrieve_fail_all(m->r); /* on_done answers */
    }
}

/* ---- the query, off the loop ---- */

static int on_instance(void *user, const mt_qdb_instance_t *in)
{
    qr_req_t *m = user;
    if (m->cancel)
        return 1;
    if (m->n_insts >= MAX_INSTANCES) {
        m->too_many = true;
        return 1;
    }
    if (m->n_insts == m->cap_insts) {
        m->cap_insts = m->cap_insts ? 2 * m->cap_insts : 64;
        m->insts = mt_realloc(m->insts, m->cap_insts * sizeof *m->insts);
    }
    mt_subop_inst_t *s = &m->insts[m->n_insts++];
    memset(s, 0, sizeof *s);
    snprintf(s->sop_class, sizeof s->sop_class, "%s", in->sop_class_uid ? in->sop_class_uid : "");
    snprintf(s->sop_inst, sizeof s->sop_inst, "%s",
             in->sop_instance_uid ? in->sop_instance_uid : "");
    snprintf(s->ts, sizeof s->ts, "%s", in->transfer_syntax_uid ? in->transfer_syntax_uid : "");
    size_t n = strlen(m->storage_root) + 1 + strlen(in->path ? in->path : "") + 1;
    s->path = mt_malloc(n);
    snprintf(s->path, n, "%s/%s", m->storage_root, in->path ? in->path : "");
    return 0;
}

static void work_cb(uv_work_t *w)
{
    qr_req_t *m = w->data;
    mt_qdb_t *db = mt_qdb_take(m->index_path);
    if (!db) {
        m->err = MT_EDB;
        return;
    }
    mt_qscope_t scope = {.project = m->has_project ? m->project : NULL, .retrieve_ae = m->our_ae};
    int rc = mt_qdb_instances(db, m->q, &scope, on_instance, m);
    if (rc < 0)
        m->err = rc;
    mt_qdb_give(m->index_path, db);
}

static void after_work_cb(uv_work_t *w, int status)
{
    qr_req_t *m = w->data;
    m->in_work = false;
    if (m->aborted) {
        respond(m, MT_STATUS_CANCEL, NULL, NULL, NULL); /* releases only */
        qr_maybe_free(m);
        return;
    }
    if (status < 0)
        m->err = MT_ECANCELED;
    if (m->err) {
        send_final_simple(m, STATUS_UNABLE_TO_PROCESS, "index query failed");
        return;
    }
    if (m->too_many) {
        send_final_simple(m, 0xA701, "too many instances for one request: narrow it");
        return;
    }
    if (m->cancel) {
        mt_retrieve_counts_t c = {(unsigned)m->n_insts, 0, 0, 0};
        respond(m, MT_STATUS_CANCEL, NULL, &c, NULL);
        qr_maybe_free(m);
        return;
    }
    mt_log(MT_LOG_DEBUG, &m->log, "%s: %zu instance(s) to send", m->is_get ? "c-get" : "c-move",
           m->n_insts);
    if (m->n_insts == 0) {
        mt_retrieve_counts_t c = {0, 0, 0, 0};
        respond(m, MT_STATUS_SUCCESS, NULL, &c, NULL);
        qr_maybe_free(m);
        return;
    }
    start_subops(m);
}

static void start(qr_req_t *m)
{
    mt_dimse_req_t *req = m->req;
    mt_assoc_t *a = req->assoc;
    if (m->too_big) {
        send_final_simple(m, MT_STATUS_CANNOT_UNDERSTAND, "identifier too large");
        return;
    }
    const mt_conf_t *c = mt_assoc_conf(a);
    if (!m->is_get) {
        const mt_conf_dest_t *d = mt_conf_dest_by_ae(c, req->cmd.move_destination);
        snprintf(m->dest_ae, sizeof m->dest_ae, "%s", req->cmd.move_destination);
        if (!d) {
            send_final_simple(m, MT_STATUS_MOVE_DEST_UNKNOWN,
                              "move destination not in move_destinations");
            return;
        }
        snprintf(m->dest_host, sizeof m->dest_host, "%s", d->host);
        m->dest_port = d->port;
    }
    mt_ds_t *id = NULL;
    mt_diag_t diag = {0, NULL};
    if (mt_ds_parse(m->data.data, m->data.len, m->ts, &id, &diag) != 0) {
        char cm[65];
        snprintf(cm, sizeof cm, "malformed identifier at %llu: %s", (unsigned long long)diag.offset,
                 diag.reason ? diag.reason : "?");
        mt_ds_free(id);
        send_final_simple(m, MT_STATUS_CANNOT_UNDERSTAND, cm);
        return;
    }
    mt_buf_dispose(&m->data);
    mt_query_err_t qe;
    int rc = mt_query_from_ds(id, m->model, &m->q, &qe);
    mt_ds_free(id);
    if (rc == 0)
        rc = mt_query_check_retrieve(m->q, &qe);
    if (rc != 0) {
        m->offending = qe.tag;
        send_final_simple(m, qe.status ? qe.status : MT_STATUS_CANNOT_UNDERSTAND, qe.comment);
        return;
    }
    const mt_conf_project_t *p = mt_assoc_project(a);
    m->index_path = mt_strdup(c->index_path);
    m->storage_root = mt_strdup(c->storage_root);
    if (p) {
        m->has_project = true;
        snprintf(m->project, sizeof m->project, "%s", p->name);
    }
    snprintf(m->our_ae, sizeof m->our_ae, "%s", mt_assoc_called_ae(a));
    snprintf(m->requester_ae, sizeof m->requester_ae, "%s", mt_assoc_calling_ae(a));
    m->msg_id = req->cmd.message_id;
    m->work.data = m;
    m->in_work = true;
    rc = uv_queue_work(mt_node_loop(mt_assoc_node(a)), &m->work, work_cb, after_work_cb);
    if (rc < 0) {
        m->in_work = false;
        send_final_simple(m, STATUS_UNABLE_TO_PROCESS, "cannot start the query");
    }
}

/* ---- the service entry points (MOVE here, GET in get.c) ---- */

void mt__qr_on_request(mt_dimse_req_t *req, bool is_get)
{
    qr_req_t *m = mt_calloc(1, sizeof *m);
    m->req = req;
    m->is_get = is_get;
    req->svc = m;
    m->t_start = uv_hrtime();
    m->log = *mt_assoc_log(req->assoc);
    mt_buf_init(&m->data, QR_MAX_IDENTIFIER);
    const char *as = req->abstract_syntax;
    const char *patient_root = is_get ? MT_UID_PATIENT_ROOT_GET : MT_UID_PATIENT_ROOT_MOVE;
    const char *study_root = is_get ? MT_UID_STUDY_ROOT_GET : MT_UID_STUDY_ROOT_MOVE;
    m->model = strcmp(as, patient_root) == 0 ? MT_QR_PATIENT_ROOT : MT_QR_STUDY_ROOT;
    /* e.g. a C-GET-RQ on a FIND context (its Affected SOP Class being that context's) */
    m->wrong_context = strcmp(as, patient_root) != 0 && strcmp(as, study_root) != 0;
    m->ts = mt_ts_find(req->transfer_syntax);
}

int mt__qr_on_data(mt_dimse_req_t *req, const uint8_t *p, size_t n, bool last)
{
    qr_req_t *m = req->svc;
    if (!m->too_big && n && mt_buf_append(&m->data, p, n) != 0)
        m->too_big = true;
    if (last) {
        if (m->wrong_context) {
            send_final_simple(m, MT_STATUS_SOP_CLASS_NOT_SUPPORTED,
                              m->is_get ? "not a Query/Retrieve GET SOP class"
                                        : "not a Query/Retrieve MOVE SOP class");
            return 0;
        }
        if (!m->ts) {
            send_final_simple(m, MT_STATUS_CANNOT_UNDERSTAND, "unknown transfer syntax");
            return 0;
        }
        start(m);
    }
    return 0;
}

void mt__qr_on_cancel(mt_dimse_req_t *req)
{
    qr_req_t *m = req->svc;
    if (!m || m->finished)
        return;
    m->cancel = true;
    if (m->r)
        mt_retrieve_cancel(m->r);
}

void mt__qr_on_abort(mt_dimse_req_t *req)
{
    qr_req_t *m = req->svc;
    if (!m) {
        mt_dimse_req_release(req);
        return;
    }
    m->aborted = true;
    m->cancel = true;
    if (m->r) {
        mt_retrieve_cancel(m->r); /* on_done releases req */
        if (m->scu)
            mt_scu_abort(m->scu); /* nobody to report to: stop now (node shutdown too) */
        return;
    }
    if (m->in_work || m->scu_open)
        return; /* after_work_cb / the engine release it */
    respond(m, MT_STATUS_CANCEL, NULL, NULL, NULL);
    qr_maybe_free(m);
}

static void move_on_request(mt_dimse_req_t *req)
{
    mt__qr_on_request(req, false);
}

const mt_svc_ops_t mt_svc_move = {move_on_request, mt__qr_on_data, mt__qr_on_abort,
                                  mt__qr_on_cancel};
