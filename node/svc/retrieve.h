/*
 * retrieve.h - C-STORE sub-operations over a link (link.h): the engine behind C-MOVE (our own
 * association to the destination, node/scu.c), C-GET (the requester's association, assoc.c)
 * and `mitral send`.
 *
 * For each instance, in order (several outstanding when the link has an asynchronous operations
 * window, PS3.7 D.3.3.3: see below):
 *   prepare (libuv worker)  open the stored file, read its first chunk (CHUNK bytes) and the
 *                           file meta (the transfer syntax on disk is the truth)
 *   pick the context        an accepted context for (SOP class, stored syntax): the bytes go
 *                           out as stored; else, when the pixel data is native (the syntax is
 *                           not encapsulated), one for Explicit or Implicit VR Little Endian:
 *                           the data set is parsed and re-encoded (ds.h) on a worker first;
 *                           else the sub-operation fails (no C-STORE is sent)
 *   send                    C-STORE-RQ (Move Originator AE / Message ID for C-MOVE), then the
 *                           data set in chunks of CHUNK bytes read off the loop, each written
 *                           as P-DATA-TF PDUs of the peer's Maximum Length with one write; the
 *                           next chunk is read when the previous write completed (memory per
 *                           sub-operation: about two chunks)
 *   response                0000 completed; Bxxx warning; anything else failed (its SOP
 *                           Instance UID joins the failed list). While the response is awaited
 *                           the next instance is prepared (its file opened, the first chunk
 *                           read), so reading overlaps the wait even without a window.
 * Window: with link max_outstanding w > 1 (scu.c: the window the peer accepted), the next
 * C-STORE-RQ goes out as soon as the previous data set is written, until w await their
 * responses; responses may come in any order. Data sets are never interleaved; the send order
 * is the instance order.
 * A file that cannot be read or parsed fails its sub-operation. The link lost (association
 * aborted or closed, a response timed out) fails every sub-operation without an answer:
 * those awaiting their response with sent = true, status MT_RETRIEVE_NO_RSP; the others with
 * sent = false, why = mt_retrieve_why_link_lost (they never went out). mt_retrieve_cancel sends
 * no new C-STORE, waits for the outstanding ones; the rest stays "remaining" (C-CANCEL: FE00).
 *
 * on_progress(r) after each sub-operation (not after the last one); on_done(r) once at the end;
 * the caller frees r (mt_retrieve_free) after on_done, or any time after on_done was called.
 */
#ifndef MT_SVC_RETRIEVE_H
#define MT_SVC_RETRIEVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "../link.h"
#include "../negotiate.h"
#include "../util/log.h"

typedef struct mt_subop_inst {
    char sop_class[65];
    char sop_inst[65];
    char ts[65]; /* the stored transfer syntax (index); the file's meta decides at send time */
    char *path;  /* absolute path, mt_malloc'd (freed with the retrieve) */
} mt_subop_inst_t;

typedef struct mt_retrieve mt_retrieve_t;

/* on_subop status of a C-STORE sent whose response never came (not a DIMSE status) */
#define MT_RETRIEVE_NO_RSP 0xFFFFu
/* on_subop why (this very pointer) of an instance not sent because the association was lost */
extern const char mt_retrieve_why_link_lost[];
typedef void (*mt_retrieve_cb)(mt_retrieve_t *r, void *user);

typedef struct mt_retrieve_params {
    uv_loop_t *loop;
    mt_link_t link;
    const char *move_originator_ae; /* C-MOVE: the requester's AE title; NULL otherwise */
    uint16_t move_originator_msg_id;
    uint16_t priority;
    const mt_log_ctx_t *log; /* copied */
    mt_retrieve_cb on_progress, on_done;
    /* optional: each sub-operation's outcome, in the order the outcomes are known. sent false:
     * no C-STORE went out (why says why); sent true: status is the C-STORE-RSP status (why
     * its Error Comment, printable ASCII, or NULL when it had none), or MT_RETRIEVE_NO_RSP
     * when the association ended first (why says so) */
    void (*on_subop)(void *user, const mt_subop_inst_t *inst, bool sent, uint16_t status,
                     const char *why);
    void *user;
} mt_retrieve_params_t;

/* Takes the instances (an mt_malloc'd array and their paths). */
mt_retrieve_t *mt_retrieve_new(const mt_retrieve_params_t *p, mt_subop_inst_t *insts, size_t n);
/* Start; the link must be ready (associated). Results come through the callbacks. */
void mt_retrieve_start(mt_retrieve_t *r);
/* Fail every sub-operation without sending anything (the destination could not be reached);
 * on_done is called before this returns. */
void mt_retrieve_fail_all(mt_retrieve_t *r);
/* The association under the link ended (its owner learnt it, e.g. while nothing was awaiting a
 * response): every sub-operation without an answer is reported as with a lost link and on_done
 * is called before this returns; the link is not used again. */
void mt_retrieve_link_lost(mt_retrieve_t *r);
void mt_retrieve_cancel(mt_retrieve_t *r);
bool mt_retrieve_cancelled(const mt_retrieve_t *r);
void mt_retrieve_free(mt_retrieve_t *r);

typedef struct mt_retrieve_counts {
    unsigned remaining, completed, failed, warning;
} mt_retrieve_counts_t;
mt_retrieve_counts_t mt_retrieve_counts(const mt_retrieve_t *r);
/* The SOP Instance UIDs of the failed sub-operations, '\'-separated (borrowed; "" when none). */
const char *mt_retrieve_failed_uids(const mt_retrieve_t *r);
/* Bytes of data set sent (for the log and the benchmark). */
uint64_t mt_retrieve_bytes(const mt_retrieve_t *r);

/* The presentation contexts to propose for sending these instances (PURE): per SOP class, one
 * context per distinct stored syntax, proposing only that syntax; when the syntax is native
 * (not encapsulated), Explicit and Implicit VR Little Endian are proposed too (the stored one
 * first when it is one of them; for other native syntaxes, one extra context with both).
 * Fills at most max entries (pointers into insts and static strings) and returns how many;
 * *truncated says some did not fit (their instances will fail). */
size_t mt_retrieve_proposals(const mt_subop_inst_t *insts, size_t n, mt_nego_proposal_t *out,
                             size_t max, bool *truncated);

/* The final C-MOVE/C-GET status for these counts (PS3.4 C.4.2.1.5, C.4.3.1.4): FE00 when
 * cancelled, 0000 all completed, A702 none completed and some failed, B000 otherwise when some
 * failed or had warnings. */
uint16_t mt_retrieve_final_status(const mt_retrieve_counts_t *c, bool cancelled);

#endif
