/*
 * forward.h - reliable forwarding (issue 6): drains the outbound queue of the index
 * (db/005_queue.sql, filled in the transaction that indexes an instance) to the configured
 * destinations with C-STORE SCU associations (node/scu.c + the sub-operation engine
 * node/svc/retrieve.c, which streams the stored file: what is forwarded is what was stored).
 *
 * Loop-thread API; the index is used from the libuv pool through the forwarder's own
 * connection, one statement batch at a time.
 */
#ifndef MT_FORWARD_H
#define MT_FORWARD_H

#include <uv.h>

#include "conf/conf.h"

typedef struct mt_forward mt_forward_t;

/* Open the forwarder's index connection and start draining (an immediate scan: what a
 * previous run left in the queue goes first). Copies what it needs from c (destinations,
 * forward.*); the node's AE title is the default calling AE. NULL *out (and 0) when c has no
 * destinations. Blocking (start-up only). */
int mt_forward_start(uv_loop_t *loop, const mt_conf_t *c, mt_forward_t **out);
/* New entries were committed: scan soon (cheap; coalesced). f may be NULL. */
void mt_forward_kick(mt_forward_t *f);
/* Stop: no new sends; associations in flight are aborted (their instances stay queued), idle
 * ones released;
 * cb on the loop once every handle and pool job is done (f freed). */
void mt_forward_stop(mt_forward_t *f, void (*cb)(void *), void *data);

#endif
