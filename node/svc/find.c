/*
 * find.c - C-FIND SCP (PS3.4 Annex C, Query/Retrieve Service Class): Patient Root, Study Root
 * and Patient/Study Only information models, every level; the matching rules are
 * node/index/query.h's.
 *
 * Per request:
 *   on_request  -> the model from the context's abstract syntax; buffer the identifier
 *   on_data     -> append (at most FIND_MAX_IDENTIFIER bytes)
 *   last        -> parse (mt_ds_parse in the context's transfer syntax) and plan
 *                  (mt_query_from_ds); a refused identifier is answered A900/C000 at once
 *   uv_queue_work: on a libuv worker thread, with a read-only SQLite connection from a small
 *                  pool (WAL: concurrent with the ingest writer), run the query
 *                  (mt_qdb_find) scoped to the called AE's project, encoding each match in
 *                  the context's transfer syntax (mt_ds_encode); at most query.max_matches
 *   after_work  -> on the loop, send the pending responses (FF00, or FF01 when an optional key
 *                  could not be matched) in slices of SLICE responses, pausing while the
 *                  association's write queue holds more than FIND_MAX_QUEUED bytes, so that a
 *                  C-CANCEL-RQ is read between slices; then the final response:
 *                    0000 success | FE00 cancelled (C-CANCEL-RQ) | A700 more matches than
 *                    query.max_matches (ErrorComment says so) | C001 index error
 * C-CANCEL: on_cancel sets a flag the worker polls between rows and the sender checks per
 * slice. Association lost (on_abort): the worker's results are dropped when it returns; the
 * request is released then.
 */
#include "svc.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>
#include <zlib.h>

#include "../conf/conf.h"
#include "../dicom/ds.h"
#include "../index/query.h"
#include "../negotiate.h"
#include "../node.h"
#include "../util/alloc.h"
#include "../util/err.h"
#include "../util/log.h"

#define FIND_MAX_IDENTIFIER (1u << 20)
#define FIND_MAX_QUEUED (256u * 1024u)
#define SLICE 64
#define STATUS_UNABLE_TO_PROCESS 0xC001

/* ---- per request ---- */

typedef struct find_req {
    mt_dimse_req_t *req;
    mt_qr_model_t model;
    const mt_ts_t *ts;
    mt_buf_t data;
    bool too_big;
    bool wrong_context;
    mt_query_t *q;
    char *index_path;
    char project[65];
    bool has_project;
    char retrieve_ae[17];
    uint32_t max;

    uv_work_t work;
    bool in_work;
    atomic_bool cancel;
    bool aborted;

    /* results: encoded identifiers */
    mt_buf_t *resp;
    size_t n_resp, cap_resp, next;
    bool capped;
    int err;
    uint64_t t_start;

    uv_timer_t timer;
    bool timer_open; /* initialised, not yet closed */
} find_req_t;

static void find_free(find_req_t *f)
{
    mt_buf_dispose(&f->data);
    mt_query_free(f->q);
    for (size_t i = 0; i < f->n_resp; i++)
        mt_buf_dispose(&f->resp[i]);
    mt_free(f->resp);
    mt_free(f->index_path);
    mt_free(f);
}

static void on_timer_closed(uv_handle_t *h)
{
    find_free(h->data);
}

/* Free f (after closing its timer when it has one). */
static void find_dispose(find_req_t *f)
{
    if (f->timer_open) {
        f->timer_open = false;
        uv_timer_stop(&f->timer);
        uv_close((uv_handle_t *)&f->timer, on_timer_closed);
        return;
    }
    find_free(f);
}

static void respond(find_req_t *f, uint16_t status, const char *comment, uint32_t offending,
                    const mt_buf_t *data)
{
    mt_dimse_req_t *req = f->req;
    mt_dimse_cmd_t rsp;
    mt_dimse_cmd_init(&rsp);
    rsp.command_field = MT_C_FIND_RSP;
    rsp.message_id_responded_to = req->cmd.message_id;
    rsp.status = status;
    rsp.has_status = true;
    snprintf(rsp.affected_sop_class_uid, sizeof rsp.affected_sop_class_uid, "%s",
             req->cmd.affected_sop_class_uid);
    if (comment)
        snprintf(rsp.error_comment, sizeof rsp.error_comment, "%s", comment);
    if (offending) {
        rsp.offending_element[0] = offending;
        rsp.n_offending = 1;
    }
    bool final = status != MT_STATUS_PENDING && status != MT_STATUS_PENDING_WARN;
    if (final)
        mt_log(status == MT_STATUS_SUCCESS || status == MT_STATUS_CANCEL ? MT_LOG_INFO
                                                                         : MT_LOG_WARN,
               mt_assoc_log(req->assoc),
               "c-find msgid=%u level=%s%s%s matches=%zu status=0x%04X%s%s ms=%.1f",
               req->cmd.message_id, f->q ? mt_query_level_name(f->q->level) : "-",
               f->has_project ? " project=" : "", f->has_project ? f->project : "", f->next,
               status, comment ? " comment=" : "", comment ? comment : "",
               (double)(uv_hrtime() - f->t_start) / 1e6);
    mt_assoc_respond(req, &rsp, data ? data->data : NULL, data ? data->len : 0);
}

static void send_final(find_req_t *f, uint16_t status, const char *comment)
{
    respond(f, status, comment, 0, NULL); /* releases req */
    f->req = NULL;
    find_dispose(f);
}

static void send_some(find_req_t *f);

static void on_timer(uv_timer_t *t)
{
    send_some(t->data);
}

static void send_some(find_req_t *f)
{
    mt_assoc_t *a = f->req->assoc;
    uint16_t pending = f->q->any_unsupported ? MT_STATUS_PENDING_WARN : MT_STATUS_PENDING;
    mt_assoc_cork(a); /* one write per slice */
    for (unsigned i = 0; i < SLICE && f->next < f->n_resp; i++) {
        if (atomic_load(&f->cancel))
            break;
        if (mt_assoc_write_queue_bytes(a) > FIND_MAX_QUEUED)
            break;
        respond(f, pending, NULL, 0, &f->resp[f->next]);
        mt_buf_dispose(&f->resp[f->next]);
        f->next++;
    }
    mt_assoc_uncork(a); /* before any final response, which may release the association */
    if (atomic_load(&f->cancel)) {
        send_final(f, MT_STATUS_CANCEL, NULL);
        return;
    }
    if (f->next < f->n_resp) {
        if (!f->timer_open) {
            uv_timer_init(mt_node_loop(mt_assoc_node(a)), &f->timer);
            f->timer.data = f;
            f->timer_open = true;
        }
        /* a full write queue: let the socket drain; else yield to the loop (reads first) */
        uint64_t ms = mt_assoc_write_queue_bytes(a) > FIND_MAX_QUEUED ? 2 : 0;
        uv_timer_start(&f->timer, on_timer, ms, 0);
        return;
    }
    if (f->err) {
        send_final(f, STATUS_UNABLE_TO_PROCESS, "index query failed");
    } else if (f->capped) {
        char c[65];
        snprintf(c, sizeof c, "more than %u matches: narrow the query", f->max);
        send_final(f, MT_STATUS_REFUSED_OUT_OF_RESOURCES, c);
    } else {
        send_final(f, MT_STATUS_SUCCESS, NULL);
    }
}

/* Deflated Explicit VR Little Endian (PS3.5 A.5): the explicit LE encoding, raw deflate. */
static int deflate_buf(const mt_buf_t *in, mt_buf_t *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return MT_ENOMEM;
    uLong bound = deflateBound(&z, (uLong)in->len);
    int rc = mt_buf_reserve(out, (size_t)bound + 2);
    if (rc == 0) {
        z.next_in = in->data;
        z.avail_in = (uInt)in->len;
        z.next_out = out->data + out->len;
        z.avail_out = (uInt)(out->cap - out->len);
        if (deflate(&z, Z_FINISH) != Z_STREAM_END)
            rc = MT_EINVAL;
        else
            out->len += z.total_out;
        if (rc == 0 && (out->len & 1)) /* PS3.5 A.5: padded to even length */
            out->data[out->len++] = 0;
    }
    deflateEnd(&z);
    return rc;
}

static int on_match(void *user, const mt_ds_t *r)
{
    find_req_t *f = user;
    if (atomic_load(&f->cancel))
        return 1;
    if (f->n_resp == f->cap_resp) {
        f->cap_resp = f->cap_resp ? 2 * f->cap_resp : 64;
        f->resp = mt_realloc(f->resp, f->cap_resp * sizeof *f->resp);
    }
    mt_buf_t *b = &f->resp[f->n_resp];
    mt_buf_init(b, FIND_MAX_IDENTIFIER);
    if (f->ts->deflated) {
        mt_buf_t plain;
        mt_buf_init(&plain, FIND_MAX_IDENTIFIER);
        int rc = mt_ds_encode(r, mt_ts_explicit_le, &plain);
        if (rc == 0)
            rc = deflate_buf(&plain, b);
        mt_buf_dispose(&plain);
        if (rc != 0) {
            mt_buf_dispose(b);
            return MT_EINVAL;
        }
    } else if (mt_ds_encode(r, f->ts, b) != 0) {
        mt_buf_dispose(b);
        return MT_EINVAL;
    }
    f->n_resp++;
    return 0;
}

static void work_cb(uv_work_t *w)
{
    find_req_t *f = w->data;
    mt_qdb_t *db = mt_qdb_take(f->index_path);
    if (!db) {
        f->err = MT_EDB;
        return;
    }
    mt_qscope_t scope = {.project = f->has_project ? f->project : NULL,
                         .retrieve_ae = f->retrieve_ae};
    int rc = mt_qdb_find(db, f->q, &scope, f->max, on_match, f, &f->capped);
    if (rc < 0)
        f->err = rc;
    mt_qdb_give(f->index_path, db);
}

static void after_work_cb(uv_work_t *w, int status)
{
    find_req_t *f = w->data;
    f->in_work = false;
    if (f->aborted) {
        mt_dimse_req_t *req = f->req;
        find_dispose(f);
        mt_dimse_req_release(req);
        return;
    }
    if (status < 0) /* UV_ECANCELED: loop shutting down */
        f->err = MT_ECANCELED;
    send_some(f);
}

static void start(find_req_t *f)
{
    mt_dimse_req_t *req = f->req;
    mt_assoc_t *a = req->assoc;
    if (f->too_big) {
        send_final(f, MT_STATUS_CANNOT_UNDERSTAND, "identifier too large");
        return;
    }
    mt_ds_t *id = NULL;
    mt_diag_t diag = {0, NULL};
    if (mt_ds_parse(f->data.data, f->data.len, f->ts, &id, &diag) != 0) {
        char c[65];
        snprintf(c, sizeof c, "malformed identifier at %llu: %s",
                 (unsigned long long)diag.offset, diag.reason ? diag.reason : "?");
        mt_ds_free(id);
        send_final(f, MT_STATUS_CANNOT_UNDERSTAND, c);
        return;
    }
    mt_buf_dispose(&f->data);
    mt_query_err_t qe;
    int rc = mt_query_from_ds(id, f->model, &f->q, &qe);
    mt_ds_free(id);
    if (rc != 0) {
        respond(f, qe.status ? qe.status : MT_STATUS_CANNOT_UNDERSTAND, qe.comment, qe.tag,
                NULL);
        f->req = NULL;
        find_dispose(f);
        return;
    }
    const mt_conf_t *c = mt_assoc_conf(a);
    const mt_conf_project_t *p = mt_assoc_project(a);
    f->index_path = mt_strdup(c->index_path);
    f->max = c->max_matches;
    if (p) {
        f->has_project = true;
        snprintf(f->project, sizeof f->project, "%s", p->name);
        snprintf(f->retrieve_ae, sizeof f->retrieve_ae, "%s", p->ae_title);
    } else {
        snprintf(f->retrieve_ae, sizeof f->retrieve_ae, "%s", c->ae_title);
    }
    mt_log(MT_LOG_DEBUG, mt_assoc_log(a), "c-find msgid=%u level=%s keys=%zu%s",
           req->cmd.message_id, mt_query_level_name(f->q->level), f->q->n_keys,
           f->q->any_unsupported ? " (some keys not matched)" : "");
    f->work.data = f;
    f->in_work = true;
    rc = uv_queue_work(mt_node_loop(mt_assoc_node(a)), &f->work, work_cb, after_work_cb);
    if (rc < 0) {
        f->in_work = false;
        send_final(f, STATUS_UNABLE_TO_PROCESS, "cannot start the query");
    }
}

static void find_on_request(mt_dimse_req_t *req)
{
    find_req_t *f = mt_calloc(1, sizeof *f);
    f->req = req;
    req->svc = f;
    f->t_start = uv_hrtime();
    atomic_init(&f->cancel, false);
    mt_buf_init(&f->data, FIND_MAX_IDENTIFIER);
    if (strcmp(req->abstract_syntax, MT_UID_PATIENT_ROOT_FIND) == 0)
        f->model = MT_QR_PATIENT_ROOT;
    else if (strcmp(req->abstract_syntax, MT_UID_STUDY_ROOT_FIND) == 0)
        f->model = MT_QR_STUDY_ROOT;
    else if (strcmp(req->abstract_syntax, MT_UID_PATIENT_STUDY_ONLY_FIND) == 0)
        f->model = MT_QR_PATIENT_STUDY_ONLY;
    else
        f->wrong_context = true; /* e.g. a storage SOP class context: answered 0122 */
    f->ts = mt_ts_find(req->transfer_syntax);
}

static int find_on_data(mt_dimse_req_t *req, const uint8_t *p, size_t n, bool last)
{
    find_req_t *f = req->svc;
    if (!f->too_big && n && mt_buf_append(&f->data, p, n) != 0)
        f->too_big = true;
    if (last) {
        if (f->wrong_context) {
            send_final(f, MT_STATUS_SOP_CLASS_NOT_SUPPORTED,
                       "not a Query/Retrieve FIND SOP class");
            return 0;
        }
        if (!f->ts) {
            send_final(f, MT_STATUS_CANNOT_UNDERSTAND, "unknown transfer syntax");
            return 0;
        }
        start(f);
    }
    return 0;
}

static void find_on_cancel(mt_dimse_req_t *req)
{
    find_req_t *f = req->svc;
    if (f)
        atomic_store(&f->cancel, true); /* the worker and the sender see it */
}

static void find_on_abort(mt_dimse_req_t *req)
{
    find_req_t *f = req->svc;
    if (f) {
        f->aborted = true;
        atomic_store(&f->cancel, true);
        if (f->in_work)
            return; /* after_work_cb releases req */
        find_dispose(f);
    }
    mt_dimse_req_release(req);
}

const mt_svc_ops_t mt_svc_find = {find_on_request, find_on_data, find_on_abort, find_on_cancel};
