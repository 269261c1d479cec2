/*
 * assoc.h - the seam between the network (upper layer on libuv) and the DIMSE services.
 *
 * assoc.c owns the socket, timers and the PS3.8 state machine; it reassembles P-DATA PDVs into
 * DIMSE messages and calls the service table (node/dimse_cmds.def) from the loop thread:
 *
 *   ops->on_request(req)                  command set complete; req->cmd parsed, generic checks
 *                                         done (known command, accepted presentation context,
 *                                         SOP class matches the context's abstract syntax)
 *   ops->on_data(req, p, n, last)         data set bytes as they arrive (only if it has one)
 *   ...service works, possibly off the loop...
 *   mt_assoc_respond(req, &rsp, data)     send the response command (+ optional data set bytes,
 *                                         already encoded in the context's transfer syntax);
 *                                         for a final response this releases req
 *   ops->on_cancel(req)                   (optional, may be NULL) a C-CANCEL-RQ arrived for
 *                                         req (its message ID, a command flagged MT_CMD_CANCEL
 *                                         in dimse_cmds.def); req->cancel_requested is set
 *                                         first. The service answers Cancel (FE00) as its
 *                                         final response when it stops early.
 *   ops->on_abort(req)                    association lost before the final response: the
 *                                         service drops its work; req stays valid until the
 *                                         service calls mt_assoc_respond (which is then a no-op
 *                                         besides releasing) or mt_dimse_req_release(req).
 *
 * Every req holds a reference on its association, so a completion that arrives from a worker
 * thread (via the loop) after the peer vanished is safe. Flow control: a service that buffers
 * too much calls mt_assoc_pause_reading(); mt_assoc_resume_reading() starts reading again.
 */
#ifndef MT_ASSOC_H
#define MT_ASSOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dimse.h"
#include "link.h"
#include "util/log.h"

typedef struct mt_assoc mt_assoc_t;
typedef struct mt_node mt_node_t;
typedef struct mt_dimse_req mt_dimse_req_t;

struct mt_dimse_req {
    mt_assoc_t *assoc;
    uint8_t pcid;
    const char *abstract_syntax; /* negotiated for pcid */
    const char *transfer_syntax;
    mt_dimse_cmd_t cmd;
    bool aborted;     /* set before on_abort is called */
    bool cancel_requested; /* a C-CANCEL-RQ named this request (set before on_cancel) */
    void *svc;        /* the service's per-request state */
    mt_dimse_req_t *next; /* assoc's list of outstanding requests */
};

typedef struct mt_svc_ops {
    void (*on_request)(mt_dimse_req_t *req);
    /* Return 0, or a negative code to abort the association (A-ABORT). */
    int (*on_data)(mt_dimse_req_t *req, const uint8_t *p, size_t n, bool last);
    void (*on_abort)(mt_dimse_req_t *req);
    void (*on_cancel)(mt_dimse_req_t *req); /* optional */
} mt_svc_ops_t;

/* Send a response for req. data may be NULL; rsp->data_set_type is set by this function.
 * A response whose status is not Pending is final and releases req (after this call req is
 * invalid). Returns 0 or an error (association gone: the response is dropped, req released). */
int mt_assoc_respond(mt_dimse_req_t *req, const mt_dimse_cmd_t *rsp, const uint8_t *data,
                     size_t n);
/* Release req without responding (only after on_abort). */
void mt_dimse_req_release(mt_dimse_req_t *req);

void mt_assoc_pause_reading(mt_assoc_t *a);
void mt_assoc_resume_reading(mt_assoc_t *a);

const mt_log_ctx_t *mt_assoc_log(const mt_assoc_t *a);
mt_node_t *mt_assoc_node(const mt_assoc_t *a);
const char *mt_assoc_calling_ae(const mt_assoc_t *a);
const char *mt_assoc_called_ae(const mt_assoc_t *a);
/* The config snapshot the association holds (valid for its whole life). */
const struct mt_conf *mt_assoc_conf(const mt_assoc_t *a);
/* The project whose AE title was called, or NULL when the node's own AE title was called (it
 * sees every study). Points into mt_assoc_conf(a). */
const struct mt_conf_project *mt_assoc_project(const mt_assoc_t *a);
/* The link (link.h) for requests mitral sends on this association: C-GET sub-operations
 * (C-STORE-RQ on contexts where the requestor took the SCP role), storage commitment
 * N-EVENT-REPORT-RQ. Their responses are routed back by message id; when the association
 * ends, outstanding response callbacks get MT_ECANCELED (after the services' on_abort). */
mt_link_t mt_assoc_link(mt_assoc_t *a);
/* Hold the association beyond its requests (a service that sends later on it, e.g. the
 * storage commitment report); every ref needs one unref. */
void mt_assoc_ref(mt_assoc_t *a);
void mt_assoc_unref(mt_assoc_t *a);
/* The association is established and may carry P-DATA (Sta6, or Sta8 while a release waits). */
bool mt_assoc_is_open(const mt_assoc_t *a);
/* Bytes queued for writing and not yet handed to the kernel (a service producing many
 * responses waits while this is large). */
size_t mt_assoc_write_queue_bytes(const mt_assoc_t *a);
/* Cork: the P-DATA-TF PDUs of the responses sent until mt_assoc_uncork are collected and
 * written with one uv_write (a C-FIND answering many matches). Any other PDU flushes them
 * first, so the order on the wire is kept. Nests. */
void mt_assoc_cork(mt_assoc_t *a);
void mt_assoc_uncork(mt_assoc_t *a);

#endif
