/*
 * scu.h - outgoing associations: mitral as association requestor (C-MOVE sub-operations,
 * `mitral send`, storage commitment N-EVENT-REPORT on a new association, forwarding later).
 *
 *   mt_scu_open(loop, params, on_open, on_close, user, &s)
 *       resolve host, connect (TCP_NODELAY), send the A-ASSOCIATE-RQ built by
 *       mt_nego_build_rq from params->pcs, wait for the answer (connect_timeout_ms for the
 *       whole set-up). on_open(s, status) is called exactly once:
 *         0              associated: mt_scu_negotiated(s) says which contexts were accepted;
 *                        use mt_scu_link(s) to send requests; on_close follows later
 *         MT_EREJECTED   A-ASSOCIATE-RJ (mt_scu_negotiated(s)->rj_result/source/reason)
 *         other < 0      could not resolve / connect / time-out / aborted during set-up
 *       After a failed on_open, s is freed when the callback returns (on_close is not called).
 *   mt_scu_link(s)      the link.h request channel on this association; its max_outstanding
 *                       is the negotiated window (1 when the peer did not accept one)
 *   mt_scu_ready(s)     associated and not ending (Sta6, nothing closing): requests may be sent
 *   mt_scu_release(s)   A-RELEASE (after the outstanding responses); on_close(s, 0) once the
 *                       A-RELEASE-RP came back and the connection closed
 *   mt_scu_abort(s)     A-ABORT now; outstanding response callbacks get MT_ECANCELED. Also
 *                       while resolving, connecting or waiting for the A-ASSOCIATE-AC: the set-up
 *                       stops (an A-ABORT is sent once connected) and on_open(MT_ECANCELED)
 *                       follows from the loop
 *   on_close(s, status) exactly once after a successful open: 0 released, < 0 aborted by either
 *                       side, connection lost or timed out. s is freed when it returns.
 *
 * Timeouts: connect_timeout_ms bounds resolve + connect + A-ASSOCIATE-AC; dimse_timeout_ms
 * bounds the wait for a response while one is outstanding (restarted by every byte received
 * and every write completed);
 * release waits at most connect_timeout_ms for the A-RELEASE-RP. A timeout aborts.
 * Writing: every PDU is encoded whole; a request's command set, or one chunk of its data set,
 * is one uv_write. Reading: PDUs up to params->max_pdu (our Maximum Length).
 * The state machine is ul.c's, requestor side (AE-1..AE-4, AR-1, AR-3, AA-*).
 */
#ifndef MT_SCU_H
#define MT_SCU_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "link.h"
#include "negotiate.h"
#include "util/log.h"

typedef struct mt_scu mt_scu_t;

typedef struct mt_scu_params {
    const char *calling_ae;
    const char *called_ae;
    const char *host; /* name or address literal */
    uint16_t port;
    const mt_nego_proposal_t *pcs; /* copied by mt_scu_open (strings must outlive the call) */
    size_t n_pcs;
    uint32_t max_pdu;            /* we receive; 0 = 262144 */
    uint32_t connect_timeout_ms; /* 0 = 30 s */
    uint32_t dimse_timeout_ms;   /* 0 = 300 s */
    uint64_t log_parent_id;      /* association id to mention in the log lines (0 = none) */
    uint16_t max_ops_invoked;    /* > 0: propose an asynchronous operations window of this many
                                  * outstanding requests (PS3.7 D.3.3.3); 0: one at a time */
} mt_scu_params_t;

typedef void (*mt_scu_open_cb)(mt_scu_t *s, int status, void *user);
typedef void (*mt_scu_close_cb)(mt_scu_t *s, int status, void *user);

int mt_scu_open(uv_loop_t *loop, const mt_scu_params_t *p, mt_scu_open_cb on_open,
                mt_scu_close_cb on_close, void *user, mt_scu_t **out);
mt_link_t mt_scu_link(mt_scu_t *s);
const mt_negotiated_t *mt_scu_negotiated(const mt_scu_t *s);
const mt_log_ctx_t *mt_scu_log(const mt_scu_t *s);
bool mt_scu_ready(const mt_scu_t *s);
void mt_scu_release(mt_scu_t *s);
void mt_scu_abort(mt_scu_t *s);

#endif
