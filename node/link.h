/*
 * link.h - a channel for DIMSE requests that mitral sends as SCU, and the responses it gets
 * back. Two implementations: node/scu.c (an association mitral opened: C-MOVE sub-operations,
 * `mitral send`, forwarding) and node/assoc.c (the peer's association: C-GET sub-operations,
 * N-EVENT-REPORT of storage commitment on the same association). The sub-operation engine
 * (node/svc/retrieve.c) drives either through this table, so it never knows which socket it
 * writes to.
 *
 *   find_pc(impl, abstract, ts)    an accepted presentation context for that abstract syntax
 *                                  and transfer syntax on which we may act as SCU (C-GET: the
 *                                  peer took the SCP role), or 0
 *   peer_max_pdu(impl)             the peer's Maximum Length (0 = no limit)
 *   next_message_id(impl)
 *   send_command(impl, pcid, rq, on_rsp, user)
 *                                  send a request's command set (rq->data_set_type says whether
 *                                  a data set follows); on_rsp is called once, from the loop,
 *                                  with the response command (err 0), or with err < 0 and
 *                                  rsp NULL when the association is lost first
 *   send_data(impl, pcid, p, n, last, on_sent, user)
 *                                  send n bytes of the data set as P-DATA-TF PDUs of at most the
 *                                  peer's Maximum Length, written with one uv_write; `last`
 *                                  marks the final fragment. on_sent (may be NULL) is called
 *                                  when the write completed (err 0) or failed. The bytes are
 *                                  copied: p may be reused at once.
 *   send_data_buf(impl, pcid, b, off, last, on_sent, user)
 *                                  (may be NULL: use send_data) the same for b->data[off,
 *                                  b->len), without copying: the link takes b's storage (b is
 *                                  left empty, in every case) and frees it once written; the
 *                                  P-DATA-TF and PDV headers go out with the bytes in one
 *                                  vectored uv_write
 *   send_data_file(impl, pcid, fd, off, n, on_sent, user)
 *                                  (may be NULL: read the file and use send_data_buf) the
 *                                  same for the bytes [off, off + n) of the open file fd, as
 *                                  the data set's last fragment: written straight from the
 *                                  page cache (sendfile(2)) while the socket takes them
 *                                  without waiting, the rest read (pread) and queued; fd is
 *                                  not used after the call returns
 *   max_outstanding(impl)          (may be NULL: 1) how many requests may await their
 *                                  responses at once (the negotiated asynchronous operations
 *                                  window, PS3.7 D.3.3.3), at least 1
 * Every function returns 0 or a negative MT_E* code (association gone: MT_ECANCELED); after an
 * error return the callback is not called.
 */
#ifndef MT_LINK_H
#define MT_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dimse.h"
#include "util/buf.h"

typedef void (*mt_link_rsp_cb)(void *user, int err, const mt_dimse_cmd_t *rsp);
typedef void (*mt_link_sent_cb)(void *user, int err);

typedef struct mt_link_ops {
    uint8_t (*find_pc)(void *impl, const char *abstract_syntax, const char *ts_uid);
    uint32_t (*peer_max_pdu)(void *impl);
    uint16_t (*next_message_id)(void *impl);
    int (*send_command)(void *impl, uint8_t pcid, const mt_dimse_cmd_t *rq, mt_link_rsp_cb on_rsp,
                        void *user);
    int (*send_data)(void *impl, uint8_t pcid, const uint8_t *p, size_t n, bool last,
                     mt_link_sent_cb on_sent, void *user);
    unsigned (*max_outstanding)(void *impl);
    int (*send_data_buf)(void *impl, uint8_t pcid, mt_buf_t *b, size_t off, bool last,
                         mt_link_sent_cb on_sent, void *user);
    int (*send_data_file)(void *impl, uint8_t pcid, int fd, uint64_t off, size_t n,
                          mt_link_sent_cb on_sent, void *user);
} mt_link_ops_t;

typedef struct mt_link {
    const mt_link_ops_t *ops;
    void *impl;
} mt_link_t;

/* PURE helper for both implementations: append the P-DATA-TF PDUs carrying n bytes of a
 * command set (command) or data set on pcid, one PDV per PDU, each PDU at most peer_max bytes
 * (0 = no limit: 1 MiB fragments); the last PDV has the last-fragment bit only when `last`. */
int mt_link_encode_pdata(mt_buf_t *out, uint8_t pcid, bool command, const uint8_t *p, size_t n,
                         bool last, uint32_t peer_max);

/* Outstanding requests we sent, waiting for their responses (message id -> callback): a small
 * table both implementations embed. */
#define MT_LINK_MAX_PENDING 64
typedef struct mt_link_pending {
    struct {
        uint16_t message_id;
        bool used;
        mt_link_rsp_cb cb;
        void *user;
    } e[MT_LINK_MAX_PENDING];
    unsigned n;
    uint16_t last_id;
} mt_link_pending_t;

int mt_link_pending_add(mt_link_pending_t *t, uint16_t message_id, mt_link_rsp_cb cb, void *user);
/* Remove the entry answering message_id; false when none (a response nobody asked for). */
bool mt_link_pending_take(mt_link_pending_t *t, uint16_t message_id, mt_link_rsp_cb *cb,
                          void **user);
/* A fresh message id, never 0, not in use in t. */
uint16_t mt_link_pending_next_id(mt_link_pending_t *t);
/* Call every pending callback with err (association lost); empties t. */
void mt_link_pending_fail(mt_link_pending_t *t, int err);

#endif
