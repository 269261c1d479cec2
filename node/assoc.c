/*
 * assoc.c - one DICOM association on one TCP connection: the ONLY file that does I/O for the
 * upper layer (STYLE.md §1). It owns the uv_tcp_t, one uv_timer_t (ARTIM, idle timeout and the
 * close-after-flush guard), a uv_idle_t (input buffered while paused is handled from the loop,
 * never from inside a service's callback), the read buffer, and carries out what the pure
 * modules decide:
 *
 *   bytes --(PDU framing: mt_pdu_peek/mt_pdu_decode)--> PDU --(event)--> ul.c (Table 9-10)
 *     effects: SEND_PDU / START_ARTIM / STOP_ARTIM / CLOSE_TRANSPORT   -> done here
 *     indications: A-ASSOCIATE -> negotiate.c (policy) -> A-ASSOCIATE response (Evt7/Evt8)
 *                  P-DATA      -> pdv.c (reassembly) -> command set -> dimse.c -> generic
 *                                 checks (dispatch, below) -> node/svc/ service
 *                  A-RELEASE   -> wait for outstanding requests -> A-RELEASE response (Evt14)
 *                  A-(P-)ABORT -> on_abort for every outstanding request
 *
 * Dispatch (the generic checks, made once here, STYLE.md §5), for each command set received:
 *   malformed command set / a response we never asked for  -> A-ABORT (user source)
 *   C-CANCEL-RQ                                            -> logged, nothing to cancel
 *   command field not in node/dimse_cmds.def               -> 0x0211 Unrecognized Operation
 *   data set present but the command takes none, or absent
 *   but required                                           -> 0x0212 Mistyped Argument
 *   Affected SOP Class UID != the context's abstract syntax  -> 0x0122 SOP Class Not Supported
 *   message ID of a request still outstanding              -> 0x0210 Duplicate Invocation
 *   more outstanding requests than the negotiated window    -> A-ABORT (user source)
 *   no service for the command (NULL in the table)         -> 0x0211 Unrecognized Operation
 * A refused request's data set, if any, is read and dropped. Accepted ones become an
 * mt_dimse_req_t handed to the service (assoc.h describes that contract).
 *
 * Writing: every PDU is encoded whole (header + body) and sent with one uv_write; a DIMSE
 * message (command + data set) is encoded as P-DATA-TF PDUs of at most the peer's Maximum
 * Length and written in one uv_write.
 *
 * Reading: the read buffer is bounded by 6 + max(our Maximum Length, MT_PDU_MAX_CONTROL_LEN);
 * mt_pdu_decode refuses an oversized PDU from its header, before it is buffered. Flow control:
 * mt_assoc_pause_reading/resume_reading nest (a count); while paused no PDU is processed and
 * the socket is not read.
 *
 * Lifetime: refs counts the outstanding requests (each holds one); n_handles the embedded
 * handles still open. The association is freed when both reach zero, in a close callback or in
 * the last mt_dimse_req_release: never inside one of its own handle callbacks that still uses
 * it. Closing: close_transport() aborts outstanding requests (on_abort), stops reading, waits
 * for queued writes to flush (bounded by the ARTIM timeout), then closes both handles.
 */
#include "assoc.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "link.h"
#include "listen.h"
#include "negotiate.h"
#include "node.h"
#include "pdu.h"
#include "pdv.h"
#include "svc/svc.h"
#include "ul.h"
#include "util/alloc.h"
#include "util/err.h"
#include "util/log.h"

#define READ_CHUNK (64u * 1024u)
/* A peer that sends requests but does not read the responses: stop reading from it while more
 * than this is queued for writing, resume below the low mark. */
#define WRITE_HIGH_WATER (4u * 1024u * 1024u)
#define WRITE_LOW_WATER (1u * 1024u * 1024u)
#define STATUS_DUPLICATE_INVOCATION 0x0210 /* PS3.7 C.5.4 */
#define DATASET_PRESENT 0x0001             /* any value but 0x0101 (PS3.7 E.1-1) */

typedef enum { TM_NONE, TM_ARTIM, TM_IDLE, TM_FLUSH } timer_mode_t;

typedef struct req_impl {
    mt_dimse_req_t pub;
    const mt_svc_ops_t *ops;
} req_impl_t;

struct mt_assoc {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_idle_t deferred; /* runs process_input() for PDUs buffered while paused */
    unsigned n_handles; /* embedded handles not yet closed */
    unsigned refs;      /* outstanding requests (each holds one) */
    mt_node_t *node;
    mt__listener_t *listener;
    mt__assoc_link_t link;
    const mt_conf_t *conf; /* snapshot held for the association's life */
    const mt_conf_project_t *project; /* called project AE, NULL = the node's AE */
    mt_log_ctx_t log;
    mt_ul_t ul;
    timer_mode_t timer_mode;

    mt_negotiated_t nego;
    mt_pdu_t reply; /* A-ASSOCIATE-AC/RJ built by mt_negotiate, sent by AE-7/AE-8/AE-6 */
    bool have_reply;
    mt_pdv_asm_t pdv;

    mt_buf_t rbuf;
    size_t rpos;        /* bytes of rbuf already consumed */
    bool in_process;    /* process_input() is on the stack */
    bool discard_input; /* stream no longer framed (invalid PDU): read only to see EOF */
    unsigned pause_count;
    bool reading;

    mt_buf_t *tx;      /* P-DATA-TF PDUs to send for the DT-1/AR-7 being carried out */
    mt_buf_t cork;     /* P-DATA-TF PDUs held while corked (mt_assoc_cork) */
    unsigned cork_depth;
    mt_link_sent_cb tx_cb; /* completion of that write (link send_data), taken by write_buf */
    void *tx_user;
    unsigned n_writes; /* uv_write requests in flight */
    bool write_paused; /* reading paused by WRITE_HIGH_WATER (holds one pause_count) */

    mt_dimse_req_t *reqs; /* outstanding requests */
    unsigned n_outstanding;
    mt_link_pending_t sent; /* requests WE sent on this association (C-GET sub-operations):
                               message id -> response callback (link.h) */
    mt_dimse_req_t *cur; /* request whose data set is arriving */
    bool discard_data;   /* the data set arriving belongs to a refused request */

    bool release_pending; /* A-RELEASE-RQ received, waiting for outstanding requests */
    bool closing;         /* close_transport() done: no more reads or sends */
    bool handles_closing;

    /* counts for the log lines */
    uint64_t bytes_in;
    unsigned n_requests, n_ok, n_failed, n_refused, n_stored;
};

static void close_transport(mt_assoc_t *a);
static void process_input(mt_assoc_t *a);
static unsigned ul_event(mt_assoc_t *a, mt_ul_event_t ev, const mt_ul_input_t *in);

#define IND(kind) (1u << (kind))

/* ---- small helpers ---- */

static void maybe_free(mt_assoc_t *a)
{
    if (a->n_handles || a->refs)
        return;
    mt_node_t *node = a->node;
    if (a->listener)
        mt__listen_unlink(a->listener, &a->link);
    mt_pdv_dispose(&a->pdv);
    if (a->have_reply)
        mt_pdu_dispose(&a->reply);
    mt_buf_dispose(&a->rbuf);
    mt_buf_dispose(&a->cork);
    mt_log(MT_LOG_DEBUG, &a->log, "association freed");
    mt_node_conf_unref(node, a->conf);
    mt_free(a);
    mt_node_assoc_closed(node); /* last: the node may finish its shutdown now */
}

static void start_timer(mt_assoc_t *a, timer_mode_t mode, uint64_t ms);
static void close_handles(mt_assoc_t *a);

static void on_timer(uv_timer_t *t)
{
    mt_assoc_t *a = t->data;
    timer_mode_t mode = a->timer_mode;
    a->timer_mode = TM_NONE;
    switch (mode) {
    case TM_ARTIM:
        mt_log(MT_LOG_INFO, &a->log, "ARTIM timer expired in %s", mt_ul_state_name(a->ul.state));
        ul_event(a, MT_UL_EV_ARTIM_EXPIRED, NULL);
        break;
    case TM_IDLE:
        /* Not idle when the wait is ours: a service paused reading, or a request is complete
         * and being worked on. A pause because the peer does not read our responses does not
         * count, and neither does a peer silent in the middle of a message (a data set or a
         * PDU cut short): otherwise a stalled sender would hold its association forever. */
        if (a->pause_count > (a->write_paused ? 1u : 0u) ||
            (a->n_outstanding && mt_pdv_idle(&a->pdv) && a->rbuf.len == 0)) {
            start_timer(a, TM_IDLE, a->conf->idle_timeout_ms);
            break;
        }
        mt_log(MT_LOG_WARN, &a->log, "idle for %u ms: A-ABORT", a->conf->idle_timeout_ms);
        ul_event(a, MT_UL_EV_A_ABORT_RQ, NULL);
        break;
    case TM_FLUSH:
        mt_log(MT_LOG_DEBUG, &a->log, "writes not flushed in time: closing");
        close_handles(a); /* uv_close cancels the queued writes */
        break;
    case TM_NONE:
        break;
    }
}

/* ARTIM / idle; once closing, the timer belongs to the flush guard. */
static void start_timer(mt_assoc_t *a, timer_mode_t mode, uint64_t ms)
{
    if (a->closing)
        return;
    a->timer_mode = mode;
    uv_timer_start(&a->timer, on_timer, ms, 0);
}

static void stop_timer(mt_assoc_t *a)
{
    if (a->closing)
        return;
    a->timer_mode = TM_NONE;
    uv_timer_stop(&a->timer);
}

/* ---- writing ---- */

typedef struct wreq {
    uv_write_t w;
    mt_assoc_t *a;
    uint8_t *data;
    mt_link_sent_cb cb; /* link.h send_data completion, or NULL */
    void *user;
} wreq_t;

static void on_write(uv_write_t *w, int status)
{
    wreq_t *wr = (wreq_t *)w;
    mt_assoc_t *a = wr->a;
    mt_link_sent_cb cb = wr->cb;
    void *user = wr->user;
    mt_free(wr->data);
    mt_free(wr);
    if (a->n_writes)
        a->n_writes--;
    if (a->write_paused && !a->closing &&
        uv_stream_get_write_queue_size((uv_stream_t *)&a->tcp) < WRITE_LOW_WATER) {
        a->write_paused = false;
        mt_assoc_resume_reading(a);
    }
    if (cb)
        cb(user, status < 0 ? MT_ECANCELED : 0);
    if (status < 0 && status != UV_ECANCELED && !a->closing) {
        mt_log(MT_LOG_INFO, &a->log, "write failed: %s", uv_strerror(status));
        ul_event(a, MT_UL_EV_TRANSPORT_CLOSED, NULL);
        return;
    }
    if (a->closing && a->n_writes == 0)
        close_handles(a);
}

/* Send the bytes of b (whole PDUs) with one uv_write; b's storage is taken. */
static int write_buf(mt_assoc_t *a, mt_buf_t *b)
{
    if (a->closing || a->handles_closing) {
        mt_buf_dispose(b);
        return MT_ECANCELED;
    }
    wreq_t *wr = mt_calloc(1, sizeof *wr);
    wr->a = a;
    wr->data = b->data;
    wr->cb = a->tx_cb;
    wr->user = a->tx_user;
    a->tx_cb = NULL;
    uv_buf_t ub = uv_buf_init((char *)b->data, (unsigned)b->len);
    b->data = NULL;
    b->len = b->cap = 0;
    int rc = uv_write(&wr->w, (uv_stream_t *)&a->tcp, &ub, 1, on_write);
    if (rc < 0) {
        mt_free(wr->data);
        mt_free(wr);
        mt_log(MT_LOG_INFO, &a->log, "write failed: %s", uv_strerror(rc));
        return rc;
    }
    a->n_writes++;
    if (!a->write_paused &&
        uv_stream_get_write_queue_size((uv_stream_t *)&a->tcp) > WRITE_HIGH_WATER) {
        mt_log(MT_LOG_DEBUG, &a->log, "peer is not reading: pausing until writes drain");
        a->write_paused = true;
        mt_assoc_pause_reading(a);
    }
    return 0;
}

static void flush_cork(mt_assoc_t *a)
{
    if (a->cork.len == 0)
        return;
    mt_buf_t b = a->cork;
    mt_buf_init(&a->cork, SIZE_MAX);
    write_buf(a, &b);
}

void mt_assoc_cork(mt_assoc_t *a)
{
    a->cork_depth++;
}

void mt_assoc_uncork(mt_assoc_t *a)
{
    if (a->cork_depth && --a->cork_depth == 0)
        flush_cork(a);
}

/* SEND_PDU effect. */
static void send_pdu(mt_assoc_t *a, const mt_ul_fx_t *f)
{
    if (f->pdu_type != MT_UL_PDU_P_DATA_TF)
        flush_cork(a); /* keep the order on the wire */
    mt_buf_t b;
    mt_buf_init(&b, SIZE_MAX);
    int rc = 0;
    switch (f->pdu_type) {
    case MT_UL_PDU_A_ASSOCIATE_AC:
    case MT_UL_PDU_A_ASSOCIATE_RJ:
        if (a->have_reply && a->reply.type == (mt_pdu_type_t)f->pdu_type)
            rc = mt_pdu_encode(&a->reply, &b);
        else if (f->pdu_type == MT_UL_PDU_A_ASSOCIATE_RJ) /* no reply built: reject, no reason */
            rc = mt_pdu_encode_rj(&b, MT_RJ_PERMANENT, MT_RJ_SOURCE_SERVICE_USER,
                                  MT_RJ_USER_NO_REASON);
        else
            rc = MT_ESTATE;
        break;
    case MT_UL_PDU_P_DATA_TF:
        if (!a->tx) {
            rc = MT_ESTATE;
            break;
        }
        mt_buf_dispose(&b);
        b = *a->tx;
        mt_buf_init(a->tx, SIZE_MAX); /* taken */
        break;
    case MT_UL_PDU_A_RELEASE_RP:
        rc = mt_pdu_encode_release_rp(&b);
        break;
    case MT_UL_PDU_A_RELEASE_RQ:
        rc = mt_pdu_encode_release_rq(&b);
        break;
    case MT_UL_PDU_A_ABORT:
        rc = mt_pdu_encode_abort(&b, f->abort_source, f->abort_reason);
        break;
    default:
        rc = MT_ESTATE;
        break;
    }
    if (rc < 0) {
        mt_log(MT_LOG_ERROR, &a->log, "cannot encode %s: %s", mt_pdu_type_name(f->pdu_type),
               mt_strerror(rc));
        mt_buf_dispose(&b);
        return;
    }
    mt_log(MT_LOG_TRACE, &a->log, "send %s len=%zu", mt_pdu_type_name(f->pdu_type), b.len);
    /* A write whose completion a link caller waits for (tx_cb) is never held in the cork. */
    if (f->pdu_type == MT_UL_PDU_P_DATA_TF && a->cork_depth && !a->tx_cb) {
        if (mt_buf_append(&a->cork, b.data, b.len) != 0)
            flush_cork(a), write_buf(a, &b);
        else
            mt_buf_dispose(&b);
        return;
    }
    flush_cork(a); /* keep the order on the wire */
    write_buf(a, &b);
}

/* ---- requests ---- */

static bool status_is_pending(uint16_t s)
{
    return s == MT_STATUS_PENDING || s == MT_STATUS_PENDING_WARN;
}

static bool status_is_ok(uint16_t s)
{
    return s == MT_STATUS_SUCCESS || s == 0x0001 || (s & 0xF000) == 0xB000;
}

static void abort_requests(mt_assoc_t *a)
{
    a->cur = NULL;
    a->discard_data = false;
    mt_dimse_req_t *list = a->reqs;
    a->reqs = NULL;
    if (!list) {
        mt_link_pending_fail(&a->sent, MT_ECANCELED);
        return;
    }
    mt_log(MT_LOG_INFO, &a->log, "%u outstanding request(s) abandoned", a->n_outstanding);
    a->n_outstanding = 0;
    for (mt_dimse_req_t *r = list; r; r = r->next)
        r->aborted = true;
    for (mt_dimse_req_t *r = list, *next; r; r = next) {
        next = r->next;
        r->next = NULL;
        ((req_impl_t *)r)->ops->on_abort(r);
    }
    /* after on_abort: the services know; now their sub-operations learn the link is gone */
    mt_link_pending_fail(&a->sent, MT_ECANCELED);
}

static void maybe_finish_release(mt_assoc_t *a)
{
    if (!a->release_pending || a->n_outstanding || a->ul.state != MT_STA8)
        return;
    a->release_pending = false;
    mt_log(MT_LOG_INFO, &a->log,
           "association released: requests=%u ok=%u failed=%u refused=%u stored=%u bytes_in=%llu",
           a->n_requests, a->n_ok, a->n_failed, a->n_refused, a->n_stored,
           (unsigned long long)a->bytes_in);
    ul_event(a, MT_UL_EV_A_RELEASE_RSP, NULL);
}

/* Remove req from the outstanding list (if still there), free it, drop its reference. */
static void req_release(mt_dimse_req_t *req)
{
    mt_assoc_t *a = req->assoc;
    bool was_listed = false;
    for (mt_dimse_req_t **pp = &a->reqs; *pp; pp = &(*pp)->next)
        if (*pp == req) {
            *pp = req->next;
            was_listed = true;
            break;
        }
    if (was_listed)
        a->n_outstanding--;
    if (a->cur == req) {
        a->cur = NULL;
        a->discard_data = true; /* answered before its data set ended: drop the rest */
    }
    mt_free(req);
    if (was_listed)
        maybe_finish_release(a);
    a->refs--;
    maybe_free(a);
}

void mt_dimse_req_release(mt_dimse_req_t *req)
{
    req_release(req);
}

static bool can_send_pdata(const mt_assoc_t *a)
{
    return !a->closing && (a->ul.state == MT_STA6 || a->ul.state == MT_STA8);
}

/* Encode a DIMSE message (command + optional data set) as P-DATA-TF PDUs and send it (P-DATA
 * request primitive, Evt9). */
static int send_message(mt_assoc_t *a, uint8_t pcid, const mt_dimse_cmd_t *rsp, const uint8_t *data,
                        size_t n)
{
    mt_dimse_cmd_t c = *rsp;
    c.data_set_type = data ? DATASET_PRESENT : MT_DIMSE_NO_DATASET;
    mt_buf_t cmd, out;
    mt_buf_init(&cmd, MT_PDV_DEFAULT_MAX_COMMAND);
    mt_buf_init(&out, SIZE_MAX);
    int rc = mt_dimse_encode(&c, &cmd);
    if (rc == 0)
        rc = mt_pdu_encode_pdata_split(&out, pcid, true, cmd.data, cmd.len, a->nego.peer_max_pdu);
    if (rc == 0 && data)
        rc = mt_pdu_encode_pdata_split(&out, pcid, false, data, n, a->nego.peer_max_pdu);
    mt_buf_dispose(&cmd);
    if (rc < 0) {
        mt_log(MT_LOG_ERROR, &a->log, "cannot encode %s: %s",
               mt_dimse_command_name(c.command_field), mt_strerror(rc));
        mt_buf_dispose(&out);
        return rc;
    }
    mt_log(MT_LOG_DEBUG, &a->log, "send %s msgid=%u status=0x%04X pcid=%u",
           mt_dimse_command_name(c.command_field), c.message_id_responded_to, c.status, pcid);
    a->tx = &out;
    ul_event(a, MT_UL_EV_P_DATA_RQ, NULL);
    a->tx = NULL;
    mt_buf_dispose(&out);
    return 0;
}

int mt_assoc_respond(mt_dimse_req_t *req, const mt_dimse_cmd_t *rsp, const uint8_t *data, size_t n)
{
    mt_assoc_t *a = req->assoc;
    bool final = !status_is_pending(rsp->status);
    int rc;
    if (req->aborted || !can_send_pdata(a))
        rc = MT_ECANCELED;
    else
        rc = send_message(a, req->pcid, rsp, data, n);
    if (final) {
        if (!req->aborted) {
            if (status_is_ok(rsp->status)) {
                a->n_ok++;
                if (rsp->command_field == MT_C_STORE_RSP)
                    a->n_stored++;
            } else {
                a->n_failed++;
            }
        }
        req_release(req);
    }
    return rc;
}

/* Answer a request refused by the generic checks (no mt_dimse_req_t was made). */
static void refuse(mt_assoc_t *a, uint8_t pcid, const mt_dimse_cmd_t *rq, uint16_t status,
                   const char *comment)
{
    mt_dimse_cmd_t rsp;
    mt_dimse_cmd_init(&rsp);
    rsp.command_field = (uint16_t)(rq->command_field | 0x8000);
    rsp.message_id_responded_to = rq->message_id;
    rsp.status = status;
    rsp.has_status = true;
    memcpy(rsp.affected_sop_class_uid, rq->affected_sop_class_uid,
           sizeof rsp.affected_sop_class_uid);
    memcpy(rsp.affected_sop_instance_uid, rq->affected_sop_instance_uid,
           sizeof rsp.affected_sop_instance_uid);
    snprintf(rsp.error_comment, sizeof rsp.error_comment, "%s", comment);
    a->n_refused++;
    mt_log(MT_LOG_WARN, &a->log, "%s msgid=%u refused: status=0x%04X %s",
           mt_dimse_command_name(rq->command_field), rq->message_id, status, comment);
    if (send_message(a, pcid, &rsp, NULL, 0) < 0) /* a command we cannot even answer */
        ul_event(a, MT_UL_EV_A_ABORT_RQ, NULL);
}

/* ---- P-DATA: the DIMSE message dispatcher ---- */

static bool msg_id_in_use(const mt_assoc_t *a, uint16_t id)
{
    for (const mt_dimse_req_t *r = a->reqs; r; r = r->next)
        if (r->cmd.message_id == id)
            return true;
    return false;
}

/* A DIMSE protocol violation: A-ABORT from the service user (Evt15); stop the PDV feed. */
static int dimse_abort(mt_assoc_t *a, const char *why)
{
    mt_log(MT_LOG_WARN, &a->log, "DIMSE protocol violation: %s", why);
    ul_event(a, MT_UL_EV_A_ABORT_RQ, NULL);
    return MT_ECANCELED;
}

static int on_command(mt_assoc_t *a, mt_pdv_event_t *ev)
{
    mt_dimse_cmd_t cmd;
    mt_diag_t d = {0, NULL};
    if (mt_dimse_decode(ev->data, ev->len, &cmd, &d) < 0) {
        char why[128];
        snprintf(why, sizeof why, "malformed command set at %llu: %s", (unsigned long long)d.offset,
                 d.reason ? d.reason : "?");
        return dimse_abort(a, why);
    }
    bool has_ds = mt_dimse_has_dataset(&cmd);
    ev->expect_data = has_ds;
    if (cmd.command_field & 0x8000) {
        /* a response to a request we sent (C-GET sub-operation) */
        mt_link_rsp_cb cb;
        void *cu;
        if (!mt_link_pending_take(&a->sent, cmd.message_id_responded_to, &cb, &cu))
            return dimse_abort(a, "response received to a request mitral did not send");
        mt_log(MT_LOG_DEBUG, &a->log, "recv %s msgid=%u status=0x%04X",
               mt_dimse_command_name(cmd.command_field), cmd.message_id_responded_to, cmd.status);
        a->discard_data = has_ds; /* response data sets are not used */
        cb(cu, 0, &cmd);
        return 0;
    }
    mt_log(MT_LOG_DEBUG, &a->log, "recv %s msgid=%u pcid=%u%s",
           mt_dimse_command_name(cmd.command_field), cmd.message_id, ev->pcid,
           has_ds ? " +dataset" : "");
    const mt_nego_pc_t *pc = mt_negotiated_pc(&a->nego, ev->pcid);
    if (!pc) /* pdv.c refuses contexts that were not accepted */
        return dimse_abort(a, "PDV on a context that was not accepted");

    if (cmd.command_field == MT_C_CANCEL_RQ) {
        /* PS3.7 9.3.2.3: route it to the outstanding request it names */
        a->discard_data = has_ds;
        mt_dimse_req_t *target = NULL;
        for (mt_dimse_req_t *r = a->reqs; r && !target; r = r->next)
            if (r->cmd.message_id == cmd.message_id_responded_to &&
                (mt_dimse_cmd_flags(r->cmd.command_field) & MT_CMD_CANCEL))
                target = r;
        if (!target) {
            mt_log(MT_LOG_INFO, &a->log, "C-CANCEL-RQ for msgid=%u: nothing cancellable",
                   cmd.message_id_responded_to);
            return 0;
        }
        mt_log(MT_LOG_INFO, &a->log, "C-CANCEL-RQ for %s msgid=%u",
               mt_dimse_command_name(target->cmd.command_field), cmd.message_id_responded_to);
        if (!target->cancel_requested) {
            target->cancel_requested = true;
            const mt_svc_ops_t *tops = ((req_impl_t *)target)->ops;
            if (tops->on_cancel)
                tops->on_cancel(target);
        }
        return 0;
    }
    a->n_requests++;
    int flags = mt_dimse_cmd_flags(cmd.command_field);
    const mt_svc_ops_t *ops = NULL;
    uint16_t status = 0;
    const char *comment = "";
    if (!flags) {
        status = MT_STATUS_UNRECOGNIZED_OPERATION;
        comment = "unknown command";
    } else if (((flags & MT_CMD_DATASET) && !has_ds) || ((flags & MT_CMD_NO_DATASET) && has_ds)) {
        status = MT_STATUS_MISTYPED_ARGUMENT;
        comment =
            has_ds ? "data set not allowed with this command" : "data set missing for this command";
    } else if (strcmp(cmd.command_field == MT_N_ACTION_RQ ? cmd.requested_sop_class_uid
                                                          : cmd.affected_sop_class_uid,
                      pc->abstract_syntax) != 0) {
        status = MT_STATUS_SOP_CLASS_NOT_SUPPORTED;
        comment = "Affected SOP Class differs from the presentation context";
    } else if (msg_id_in_use(a, cmd.message_id)) {
        status = STATUS_DUPLICATE_INVOCATION;
        comment = "message ID already in use";
    } else if (a->nego.max_ops_invoked && a->n_outstanding >= a->nego.max_ops_invoked) {
        char why[96];
        snprintf(why, sizeof why, "more than %u outstanding operations (negotiated window)",
                 a->nego.max_ops_invoked);
        return dimse_abort(a, why);
    } else if (!(ops = mt_svc_lookup(cmd.command_field))) {
        status = MT_STATUS_UNRECOGNIZED_OPERATION;
        comment = "service not performed by mitral";
    }
    if (status) {
        refuse(a, ev->pcid, &cmd, status, comment);
        a->discard_data = has_ds;
        return 0;
    }

    req_impl_t *ri = mt_calloc(1, sizeof *ri);
    mt_dimse_req_t *req = &ri->pub;
    ri->ops = ops;
    req->assoc = a;
    req->pcid = ev->pcid;
    req->abstract_syntax = pc->abstract_syntax;
    req->transfer_syntax = pc->transfer_syntax;
    req->cmd = cmd;
    req->next = a->reqs;
    a->reqs = req;
    a->n_outstanding++;
    a->refs++;
    a->cur = has_ds ? req : NULL;
    ops->on_request(req); /* may answer (and release req) before returning */
    return 0;
}

static int on_data_fragment(mt_assoc_t *a, mt_pdv_event_t *ev)
{
    if (a->discard_data) {
        if (ev->last)
            a->discard_data = false;
        return 0;
    }
    mt_dimse_req_t *req = a->cur;
    if (!req)
        return 0; /* the request was abandoned */
    if (ev->last)
        a->cur = NULL;
    int rc = ((req_impl_t *)req)->ops->on_data(req, ev->data, ev->len, ev->last);
    if (rc < 0) {
        char why[96];
        snprintf(why, sizeof why, "service refused the data set: %s", mt_strerror(rc));
        return dimse_abort(a, why);
    }
    return 0;
}

static int on_pdv(void *user, mt_pdv_event_t *ev)
{
    mt_assoc_t *a = user;
    if (a->ul.state != MT_STA6)
        return MT_ECANCELED; /* aborted by an earlier PDV of this PDU */
    return ev->type == MT_PDV_EV_COMMAND ? on_command(a, ev) : on_data_fragment(a, ev);
}

/* ---- the state machine's effects ---- */

static void log_abort(mt_assoc_t *a, const mt_ul_effects_t *fx, mt_ul_event_t ev)
{
    for (unsigned i = 0; i < fx->n; i++)
        if (fx->fx[i].kind == MT_UL_FX_SEND_PDU && fx->fx[i].pdu_type == MT_UL_PDU_A_ABORT)
            mt_log(MT_LOG_WARN, &a->log,
                   "association aborted: A-ABORT sent (source=%u reason=%u) on %s in %s [%s]; "
                   "requests=%u ok=%u failed=%u outstanding=%u stored=%u",
                   fx->fx[i].abort_source, fx->fx[i].abort_reason, mt_ul_event_desc(ev),
                   mt_ul_state_name(fx->from), mt_ul_action_name(fx->action), a->n_requests,
                   a->n_ok, a->n_failed, a->n_outstanding, a->n_stored);
}

/* Feed ev to ul.c and carry out the I/O effects in order. Returns the indications (IND bits)
 * for the caller, which acts as the service user. */
static unsigned ul_event(mt_assoc_t *a, mt_ul_event_t ev, const mt_ul_input_t *in)
{
    if (a->handles_closing)
        return 0;
    mt_ul_effects_t fx;
    if (mt_ul_step(&a->ul, ev, in, &fx) < 0) {
        mt_log(MT_LOG_ERROR, &a->log, "upper layer: %s not allowed in %s (bug)",
               mt_ul_event_desc(ev), mt_ul_state_name(a->ul.state));
        return 0;
    }
    log_abort(a, &fx, ev);
    unsigned ind = 0;
    for (unsigned i = 0; i < fx.n; i++) {
        const mt_ul_fx_t *f = &fx.fx[i];
        switch (f->kind) {
        case MT_UL_FX_SEND_PDU:
            send_pdu(a, f);
            break;
        case MT_UL_FX_START_ARTIM:
            start_timer(a, TM_ARTIM, a->conf->artim_timeout_ms);
            break;
        case MT_UL_FX_STOP_ARTIM:
            if (a->timer_mode == TM_ARTIM)
                stop_timer(a);
            break;
        case MT_UL_FX_CLOSE_TRANSPORT:
            close_transport(a);
            break;
        case MT_UL_FX_TRANSPORT_ACCEPT: /* libuv accepted already */
            break;
        case MT_UL_FX_TRANSPORT_CONNECT: /* requestor side: node/scu.c */
            mt_log(MT_LOG_ERROR, &a->log, "TRANSPORT_CONNECT on an accepted association");
            break;
        case MT_UL_FX_INDICATE_ABORT:
        case MT_UL_FX_INDICATE_P_ABORT:
            abort_requests(a);
            ind |= IND(f->kind);
            break;
        default:
            ind |= IND(f->kind);
            break;
        }
    }
    mt_ul_state_t st = a->ul.state;
    if (st == MT_STA6 && a->timer_mode == TM_NONE)
        start_timer(a, TM_IDLE, a->conf->idle_timeout_ms);
    if (st == MT_STA13 || st == MT_STA1) {
        if (a->timer_mode == TM_IDLE)
            stop_timer(a);
        abort_requests(a); /* no association any more */
    }
    if (st == MT_STA1)
        close_transport(a); /* the connection is over (closed by the peer, or by an action) */
    return ind;
}

/* ---- closing ---- */

static void on_handle_closed(uv_handle_t *h)
{
    mt_assoc_t *a = h->data;
    a->n_handles--;
    maybe_free(a);
}

static void close_handles(mt_assoc_t *a)
{
    if (a->handles_closing)
        return;
    a->handles_closing = true;
    uv_timer_stop(&a->timer);
    uv_idle_stop(&a->deferred);
    uv_close((uv_handle_t *)&a->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&a->timer, on_handle_closed);
    uv_close((uv_handle_t *)&a->deferred, on_handle_closed);
}

/* Stop reading, abandon outstanding requests, close once queued writes have gone out (the
 * A-ABORT / A-ASSOCIATE-RJ just sent), or after the ARTIM timeout at the latest. */
static void close_transport(mt_assoc_t *a)
{
    if (a->closing)
        return;
    a->closing = true;
    abort_requests(a);
    if (a->reading) {
        uv_read_stop((uv_stream_t *)&a->tcp);
        a->reading = false;
    }
    mt_log(MT_LOG_DEBUG, &a->log, "closing connection (%s)", mt_ul_state_name(a->ul.state));
    if (a->n_writes == 0) {
        close_handles(a);
        return;
    }
    a->timer_mode = TM_FLUSH;
    uv_timer_start(&a->timer, on_timer, a->conf->artim_timeout_ms, 0);
}

/* ---- reading ---- */

static void update_reading(mt_assoc_t *a);

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    mt_assoc_t *a = h->data;
    (void)suggested;
    if (a->discard_input) {
        a->rbuf.len = 0;
        a->rpos = 0;
    }
    size_t room = a->rbuf.limit - a->rbuf.len;
    size_t want = room < READ_CHUNK ? room : READ_CHUNK;
    if (want == 0 || mt_buf_reserve(&a->rbuf, want) < 0) {
        *buf = uv_buf_init(NULL, 0); /* UV_ENOBUFS */
        return;
    }
    *buf = uv_buf_init((char *)a->rbuf.data + a->rbuf.len, (unsigned)(a->rbuf.cap - a->rbuf.len));
}

static void transport_closed(mt_assoc_t *a, ssize_t why)
{
    if (a->reading) {
        uv_read_stop((uv_stream_t *)&a->tcp);
        a->reading = false;
    }
    if (a->closing)
        return;
    mt_ul_state_t st = a->ul.state;
    if (st == MT_STA2)
        mt_log(MT_LOG_INFO, &a->log, "connection closed before A-ASSOCIATE-RQ");
    else if (st != MT_STA13)
        mt_log(MT_LOG_WARN, &a->log,
               "association aborted: connection %s in %s (A-P-ABORT); requests=%u ok=%u "
               "failed=%u outstanding=%u stored=%u",
               why == UV_EOF ? "closed by the peer" : uv_strerror((int)why), mt_ul_state_name(st),
               a->n_requests, a->n_ok, a->n_failed, a->n_outstanding, a->n_stored);
    ul_event(a, MT_UL_EV_TRANSPORT_CLOSED, NULL);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    mt_assoc_t *a = s->data;
    (void)buf;
    if (nread < 0) {
        transport_closed(a, nread);
        return;
    }
    if (nread == 0 || a->closing)
        return;
    a->bytes_in += (uint64_t)nread;
    if (a->discard_input)
        return; /* not framed any more: waiting for the peer to close, or ARTIM */
    a->rbuf.len += (size_t)nread;
    if (a->timer_mode == TM_IDLE)
        start_timer(a, TM_IDLE, a->conf->idle_timeout_ms);
    process_input(a);
}

static void update_reading(mt_assoc_t *a)
{
    bool want = !a->closing && a->pause_count == 0;
    if (want == a->reading)
        return;
    if (want) {
        if (uv_read_start((uv_stream_t *)&a->tcp, on_alloc, on_read) == 0)
            a->reading = true;
    } else {
        uv_read_stop((uv_stream_t *)&a->tcp);
        a->reading = false;
    }
}

void mt_assoc_pause_reading(mt_assoc_t *a)
{
    a->pause_count++;
    update_reading(a);
}

static void on_deferred(uv_idle_t *h)
{
    mt_assoc_t *a = h->data;
    uv_idle_stop(h);
    process_input(a);
}

/* Resuming never processes input on the caller's stack (a service's callback): PDUs buffered
 * while paused are handled from the loop, in order, on the next iteration. */
void mt_assoc_resume_reading(mt_assoc_t *a)
{
    if (a->pause_count)
        a->pause_count--;
    if (a->pause_count || a->closing)
        return;
    update_reading(a);
    if (a->rbuf.len > a->rpos && !a->handles_closing)
        uv_idle_start(&a->deferred, on_deferred);
}

/* ---- PDUs received ---- */

static void on_associate_rq(mt_assoc_t *a, const mt_pdu_t *pdu)
{
    const mt_pdu_assoc_t *rq = &pdu->u.assoc;
    snprintf(a->log.calling, sizeof a->log.calling, "%s", rq->calling_ae);
    snprintf(a->log.called, sizeof a->log.called, "%s", rq->called_ae);
    const mt_conf_t *c = a->conf;
    uint32_t n_assoc = mt_node_assoc_count(a->node);
    /* the called AE titles: the node's own (entry 0), then one per project */
    size_t n_aes = 1 + c->n_projects;
    mt_nego_ae_t *aes = mt_calloc(n_aes, sizeof *aes);
    aes[0].ae_title = c->ae_title;
    aes[0].calling_ae_allow = (const char *const *)c->calling_ae_allow;
    aes[0].n_calling_ae_allow = c->n_calling_ae_allow;
    for (size_t i = 0; i < c->n_projects; i++) {
        aes[i + 1].ae_title = c->projects[i].ae_title;
        aes[i + 1].calling_ae_allow = (const char *const *)c->projects[i].calling_ae_allow;
        aes[i + 1].n_calling_ae_allow = c->projects[i].n_calling_ae_allow;
    }
    mt_nego_policy_t pol = {
        .ae_title = c->ae_title,
        .calling_ae_allow = (const char *const *)c->calling_ae_allow,
        .n_calling_ae_allow = c->n_calling_ae_allow,
        .ts_preference = (const char *const *)c->ts_preference,
        .n_ts_preference = c->n_ts_preference,
        .max_pdu = c->max_pdu,
        .max_ops_invoked = (uint16_t)(c->max_async_ops > 0xFFFF ? 0xFFFF : c->max_async_ops),
        .max_ops_performed = 1,
        .n_associations = n_assoc ? n_assoc - 1 : 0, /* not counting this one */
        .max_associations = c->max_associations,
        .called_aes = aes,
        .n_called_aes = n_aes,
    };
    if (a->have_reply)
        mt_pdu_dispose(&a->reply);
    mt_pdu_diag_t diag = {0, NULL, 0, 0};
    int rc = mt_negotiate(&pol, rq, &a->nego, &a->reply, &diag);
    mt_free(aes);
    a->have_reply = true;
    a->project = (rc == 0 && a->nego.called_index > 0)
                     ? &c->projects[a->nego.called_index - 1]
                     : NULL;
    if (rc != 0 && rc != MT_EREJECTED) {
        mt_log(MT_LOG_WARN, &a->log, "A-ASSOCIATE-RQ not acceptable: %s",
               diag.reason ? diag.reason : mt_strerror(rc));
        mt_ul_input_t in = {.abort_reason = diag.abort_reason};
        ul_event(a, MT_UL_EV_INVALID_PDU, &in);
        return;
    }
    /* AE-6: a rejection from the provider (ACSE: protocol version) is the provider's "not
     * acceptable"; the others are the service user's answer to the indication (AE-8). */
    mt_ul_input_t in = {.rq_unacceptable =
                            rc == MT_EREJECTED && a->nego.rj_source == MT_RJ_SOURCE_PROVIDER_ACSE};
    if (rc == MT_EREJECTED)
        mt_log(MT_LOG_INFO, &a->log,
               "association rejected: %s (result=%u source=%u reason=%u) associations=%u",
               a->nego.rj_why ? a->nego.rj_why : "?", a->nego.rj_result, a->nego.rj_source,
               a->nego.rj_reason, n_assoc);
    unsigned ind = ul_event(a, MT_UL_EV_A_ASSOCIATE_RQ_PDU, &in);
    if (!(ind & IND(MT_UL_FX_INDICATE_ASSOCIATE)))
        return; /* rejected by AE-6 */
    if (rc == MT_EREJECTED) {
        ul_event(a, MT_UL_EV_A_ASSOCIATE_RSP_RJ, NULL);
        return;
    }
    for (size_t i = 0; i < a->nego.n_pcs; i++)
        if (a->nego.pcs[i].result == MT_PC_ACCEPTANCE)
            mt_pdv_allow(&a->pdv, a->nego.pcs[i].id);
    mt_log(MT_LOG_INFO, &a->log,
           "association accepted: contexts=%zu/%zu max_pdu=%u peer_max_pdu=%u async=%u/%u "
           "impl=%s%s%s associations=%u",
           a->nego.n_accepted, a->nego.n_pcs, a->nego.our_max_pdu, a->nego.peer_max_pdu,
           a->nego.max_ops_invoked, a->nego.max_ops_performed, a->nego.peer_impl_class_uid,
           a->nego.peer_impl_version_name[0] ? "/" : "", a->nego.peer_impl_version_name, n_assoc);
    for (size_t i = 0; i < a->nego.n_pcs; i++)
        mt_log(MT_LOG_DEBUG, &a->log, "  pc %u %s result=%u ts=%s", a->nego.pcs[i].id,
               a->nego.pcs[i].abstract_syntax, a->nego.pcs[i].result,
               a->nego.pcs[i].transfer_syntax);
    ul_event(a, MT_UL_EV_A_ASSOCIATE_RSP_AC, NULL);
}

static void on_pdata(mt_assoc_t *a, const mt_pdu_t *pdu)
{
    unsigned ind = ul_event(a, MT_UL_EV_P_DATA_TF_PDU, NULL);
    if (!(ind & IND(MT_UL_FX_INDICATE_P_DATA)))
        return;
    mt_pdu_diag_t diag = {0, NULL, 0, 0};
    int rc = mt_pdv_feed_pdu(&a->pdv, pdu, &diag);
    if (rc < 0 && rc != MT_ECANCELED && a->ul.state == MT_STA6) {
        mt_log(MT_LOG_WARN, &a->log, "invalid P-DATA-TF at %zu: %s", diag.offset,
               diag.reason ? diag.reason : mt_strerror(rc));
        mt_ul_input_t in = {.abort_reason = diag.abort_reason};
        ul_event(a, MT_UL_EV_INVALID_PDU, &in);
    }
}

static void on_release_rq(mt_assoc_t *a)
{
    if (a->ul.state == MT_STA6 && !mt_pdv_idle(&a->pdv)) {
        /* PS3.7 §9.2: a DIMSE message was cut short by the release request */
        mt_log(MT_LOG_WARN, &a->log, "A-RELEASE-RQ in the middle of a DIMSE message");
        mt_ul_input_t in = {.abort_reason = MT_ABORT_UNEXPECTED_PDU};
        ul_event(a, MT_UL_EV_INVALID_PDU, &in);
        return;
    }
    unsigned ind = ul_event(a, MT_UL_EV_A_RELEASE_RQ_PDU, NULL);
    if (!(ind & IND(MT_UL_FX_INDICATE_RELEASE)))
        return;
    a->release_pending = true;
    if (a->n_outstanding)
        mt_log(MT_LOG_DEBUG, &a->log, "A-RELEASE-RQ: waiting for %u outstanding request(s)",
               a->n_outstanding);
    maybe_finish_release(a);
}

static void handle_pdu(mt_assoc_t *a, const mt_pdu_t *pdu)
{
    switch (pdu->type) {
    case MT_PDU_A_ASSOCIATE_RQ:
        if (a->ul.state == MT_STA2)
            on_associate_rq(a, pdu);
        else
            ul_event(a, MT_UL_EV_A_ASSOCIATE_RQ_PDU, NULL);
        break;
    case MT_PDU_A_ASSOCIATE_AC:
        ul_event(a, MT_UL_EV_A_ASSOCIATE_AC_PDU, NULL);
        break;
    case MT_PDU_A_ASSOCIATE_RJ:
        ul_event(a, MT_UL_EV_A_ASSOCIATE_RJ_PDU, NULL);
        break;
    case MT_PDU_P_DATA_TF:
        on_pdata(a, pdu);
        break;
    case MT_PDU_A_RELEASE_RQ:
        on_release_rq(a);
        break;
    case MT_PDU_A_RELEASE_RP:
        ul_event(a, MT_UL_EV_A_RELEASE_RP_PDU, NULL);
        break;
    case MT_PDU_A_ABORT: {
        if (a->ul.state != MT_STA13)
            mt_log(MT_LOG_WARN, &a->log,
                   "association aborted by the peer: A-ABORT source=%u reason=%u in %s; "
                   "requests=%u ok=%u failed=%u outstanding=%u stored=%u",
                   pdu->u.abort.source, pdu->u.abort.reason, mt_ul_state_name(a->ul.state),
                   a->n_requests, a->n_ok, a->n_failed, a->n_outstanding, a->n_stored);
        mt_ul_input_t in = {.abort_source = pdu->u.abort.source};
        ul_event(a, MT_UL_EV_A_ABORT_PDU, &in);
        break;
    }
    }
}

/* Frame and handle every complete PDU in the read buffer, unless paused or closing. */
static void process_input(mt_assoc_t *a)
{
    if (a->in_process)
        return;
    a->in_process = true;
    while (!a->closing && !a->discard_input && a->pause_count == 0) {
        const uint8_t *p = a->rbuf.data + a->rpos;
        size_t n = a->rbuf.len - a->rpos;
        if (n < MT_PDU_HEADER_LEN)
            break;
        mt_pdu_t pdu;
        size_t used = 0;
        mt_pdu_diag_t diag = {0, NULL, 0, 0};
        int rc = mt_pdu_decode(p, n, a->conf->max_pdu, &pdu, &used, &diag);
        if (rc == MT_EAGAIN)
            break;
        if (rc < 0) {
            uint8_t type = p[0];
            mt_log(MT_LOG_WARN, &a->log, "invalid PDU (type 0x%02X) at offset %zu: %s", type,
                   diag.offset, diag.reason ? diag.reason : mt_strerror(rc));
            a->discard_input = true; /* the stream cannot be framed any more */
            mt_ul_input_t in = {.abort_reason = diag.abort_reason};
            ul_event(a, MT_UL_EV_INVALID_PDU, &in);
            break;
        }
        mt_log(MT_LOG_TRACE, &a->log, "recv %s len=%zu in %s", mt_pdu_type_name((uint8_t)pdu.type),
               used, mt_ul_state_name(a->ul.state));
        handle_pdu(a, &pdu);
        mt_pdu_dispose(&pdu);
        a->rpos += used;
    }
    if (a->discard_input) {
        a->rbuf.len = 0;
        a->rpos = 0;
    } else if (a->rpos) {
        mt_buf_consume(&a->rbuf, a->rpos);
        a->rpos = 0;
    }
    a->in_process = false;
}

/* ---- accept / abort (listen.c) ---- */

static void peer_name(mt_assoc_t *a)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char ip[64] = "?";
    unsigned port = 0;
    if (uv_tcp_getpeername(&a->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
            uv_ip4_name(s4, ip, sizeof ip);
            port = ntohs(s4->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
            uv_ip6_name(s6, ip, sizeof ip);
            port = ntohs(s6->sin6_port);
        }
    }
    snprintf(a->log.peer, sizeof a->log.peer, ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip,
             port);
}

int mt__assoc_accept(mt_node_t *node, mt__listener_t *l, void *server_stream)
{
    mt_assoc_t *a = mt_calloc(1, sizeof *a);
    uv_loop_t *loop = mt_node_loop(node);
    a->node = node;
    uv_tcp_init(loop, &a->tcp);
    uv_timer_init(loop, &a->timer);
    uv_idle_init(loop, &a->deferred);
    a->tcp.data = a->timer.data = a->deferred.data = a;
    a->n_handles = 3;
    a->conf = mt_node_conf_ref(node);
    mt_node_assoc_opened(node);
    a->link.prev = a->link.next = &a->link;
    a->log.assoc_id = mt_node_next_assoc_id(node);
    snprintf(a->log.calling, sizeof a->log.calling, "-");
    snprintf(a->log.called, sizeof a->log.called, "-");
    mt_ul_init(&a->ul, false, &a->log);
    mt_buf_init(&a->cork, SIZE_MAX);
    mt_pdv_init(&a->pdv, 0, on_pdv, a);
    size_t pdata_max = a->conf->max_pdu ? a->conf->max_pdu : MT_PDU_MAX_CONTROL_LEN;
    size_t ctl_max = MT_PDU_MAX_CONTROL_LEN;
    mt_buf_init(&a->rbuf, MT_PDU_HEADER_LEN + (pdata_max > ctl_max ? pdata_max : ctl_max));

    int rc = uv_accept((uv_stream_t *)server_stream, (uv_stream_t *)&a->tcp);
    if (rc < 0) {
        a->closing = true;
        close_handles(a);
        return rc;
    }
    a->listener = l;
    mt__listen_link(l, &a->link);
    uv_tcp_nodelay(&a->tcp, 1);
    peer_name(a);
    mt_log(MT_LOG_DEBUG, &a->log, "connection accepted");
    ul_event(a, MT_UL_EV_TRANSPORT_INDICATION, NULL); /* AE-5: Sta2, ARTIM started */
    update_reading(a);
    return 0;
}

void mt__assoc_abort(mt_assoc_t *a)
{
    if (a->closing)
        return;
    mt_ul_state_t st = a->ul.state;
    if (st >= MT_STA3 && st <= MT_STA12) {
        mt_log(MT_LOG_WARN, &a->log, "node shutting down: A-ABORT");
        ul_event(a, MT_UL_EV_A_ABORT_RQ, NULL);
    }
    close_transport(a); /* after the A-ABORT has been written */
}

mt_assoc_t *mt__assoc_of_link(mt__assoc_link_t *link)
{
    return (mt_assoc_t *)((char *)link - offsetof(mt_assoc_t, link));
}

/* ---- accessors ---- */

const mt_log_ctx_t *mt_assoc_log(const mt_assoc_t *a)
{
    return &a->log;
}

mt_node_t *mt_assoc_node(const mt_assoc_t *a)
{
    return a->node;
}

const char *mt_assoc_calling_ae(const mt_assoc_t *a)
{
    return a->nego.calling_ae;
}

const char *mt_assoc_called_ae(const mt_assoc_t *a)
{
    return a->nego.called_ae;
}

const mt_conf_t *mt_assoc_conf(const mt_assoc_t *a)
{
    return a->conf;
}

const mt_conf_project_t *mt_assoc_project(const mt_assoc_t *a)
{
    return a->project;
}

size_t mt_assoc_write_queue_bytes(const mt_assoc_t *a)
{
    if (a->closing || a->handles_closing)
        return 0;
    return uv_stream_get_write_queue_size((const uv_stream_t *)&a->tcp);
}

/* ---- the link (link.h): requests mitral sends on the peer's association (C-GET) ---- */

static uint8_t link_find_pc(void *impl, const char *as, const char *ts)
{
    mt_assoc_t *a = impl;
    /* C-GET: contexts where the requestor took the SCP role; storage commitment's
     * N-EVENT-REPORT goes on its own (SCU-role) context */
    uint8_t id = mt_nego_find_pc(&a->nego, as, ts, true);
    if (!id && strcmp(as, MT_UID_STORAGE_COMMITMENT) == 0)
        id = mt_nego_find_pc(&a->nego, as, ts, false);
    return id;
}

static uint32_t link_peer_max(void *impl)
{
    return ((mt_assoc_t *)impl)->nego.peer_max_pdu;
}

static uint16_t link_next_id(void *impl)
{
    return mt_link_pending_next_id(&((mt_assoc_t *)impl)->sent);
}

static int link_write(mt_assoc_t *a, mt_buf_t *out, mt_link_sent_cb cb, void *user)
{
    if (!can_send_pdata(a)) {
        mt_buf_dispose(out);
        return MT_ECANCELED;
    }
    a->tx = out;
    a->tx_cb = cb;
    a->tx_user = user;
    ul_event(a, MT_UL_EV_P_DATA_RQ, NULL);
    bool unsent = a->tx_cb != NULL;
    a->tx = NULL;
    a->tx_cb = NULL;
    mt_buf_dispose(out);
    return unsent ? MT_ECANCELED : 0;
}

static int link_send_command(void *impl, uint8_t pcid, const mt_dimse_cmd_t *rq,
                             mt_link_rsp_cb on_rsp, void *user)
{
    mt_assoc_t *a = impl;
    if (!can_send_pdata(a))
        return MT_ECANCELED;
    mt_buf_t cmd, out;
    mt_buf_init(&cmd, MT_PDV_DEFAULT_MAX_COMMAND);
    mt_buf_init(&out, SIZE_MAX);
    int rc = mt_dimse_encode(rq, &cmd);
    if (rc == 0)
        rc = mt_link_encode_pdata(&out, pcid, true, cmd.data, cmd.len, true, a->nego.peer_max_pdu);
    mt_buf_dispose(&cmd);
    if (rc == 0)
        rc = mt_link_pending_add(&a->sent, rq->message_id, on_rsp, user);
    if (rc < 0) {
        mt_buf_dispose(&out);
        return rc;
    }
    mt_log(MT_LOG_DEBUG, &a->log, "send %s msgid=%u pcid=%u",
           mt_dimse_command_name(rq->command_field), rq->message_id, pcid);
    if (!(rc = link_write(a, &out, NULL, NULL)))
        return 0;
    mt_link_rsp_cb cb;
    void *u;
    mt_link_pending_take(&a->sent, rq->message_id, &cb, &u);
    return rc;
}

static int link_send_data(void *impl, uint8_t pcid, const uint8_t *p, size_t n, bool last,
                          mt_link_sent_cb on_sent, void *user)
{
    mt_assoc_t *a = impl;
    if (!can_send_pdata(a))
        return MT_ECANCELED;
    mt_buf_t out;
    mt_buf_init(&out, SIZE_MAX);
    int rc = mt_link_encode_pdata(&out, pcid, false, p, n, last, a->nego.peer_max_pdu);
    if (rc < 0) {
        mt_buf_dispose(&out);
        return rc;
    }
    return link_write(a, &out, on_sent, user);
}

/* max_outstanding NULL: one C-GET sub-operation at a time (our AC offers performed = 1);
 * send_data_buf, send_data_file NULL: the data is copied (send_data) */
static const mt_link_ops_t assoc_link_ops = {link_find_pc,      link_peer_max,  link_next_id,
                                             link_send_command, link_send_data, NULL,
                                             NULL,              NULL};

mt_link_t mt_assoc_link(mt_assoc_t *a)
{
    mt_link_t l = {&assoc_link_ops, a};
    return l;
}

void mt_assoc_ref(mt_assoc_t *a)
{
    a->refs++;
}

void mt_assoc_unref(mt_assoc_t *a)
{
    a->refs--;
    maybe_free(a);
}

bool mt_assoc_is_open(const mt_assoc_t *a)
{
    return can_send_pdata(a) && !a->handles_closing;
}
