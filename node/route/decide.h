/*
 * decide.h - routing one incoming instance while it streams in: the part of the routing
 * decision that C-STORE (node/svc/store.c) and STOW-RS (node/http/stow.c, both the
 * application/dicom parts and the instances built from dicom+json metadata) share. PURE: no
 * I/O; the caller feeds it the data set reader's events and the received bytes.
 *
 * The rules look only at top-level attributes before Pixel Data (rules.h), so the decision is
 * made before the bulk data is written: until then the caller holds the received data set
 * bytes here instead of writing them (mt_route_pending_hold; at most MT_ROUTE_MAX_HELD), and
 * offers every reader event (mt_route_pending_event). When the first top-level element at or
 * after Pixel Data starts, mt_route_pending_ready() turns true (also decide when the data set
 * ends without one); the caller then builds the input (who sent it: mt_route_input_t) and
 * calls mt_route_pending_decide, then starts its ingest job with the profile
 * mt_route_profile() picks, writes the held bytes (mt_route_pending_held) and streams the rest
 * as without rules.
 *
 *   init(set)  --hold/event-->  ready  --decide(in)-->  decided: dec is final
 *   init(NULL) ---------------------------------------> decided (empty decision: node-wide)
 *
 * The decision's projects, forward destinations and armed cmr_series rules travel in the
 * index record (node/route_ingest.h), so ingest joins, queues and arms them in the transaction
 * that indexes the instance. Strings in dec point into the rule set: the caller keeps the
 * config snapshot that owns it (an association's, a DICOMweb request's) until it is done, so a
 * SIGHUP in between changes nothing for an instance in flight.
 */
#ifndef MT_ROUTE_DECIDE_H
#define MT_ROUTE_DECIDE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../deid/profile.h"
#include "../deid/stream.h"
#include "../dicom/ds.h"
#include "../util/buf.h"
#include "rules.h"

/* Bytes held while undecided: a header (everything before Pixel Data) up to the size the
 * de-identification stream accepts. */
#define MT_ROUTE_MAX_HELD MT_DEID_STREAM_MAX_HEADER

typedef struct mt_route_pending {
    const mt_route_set_t *routes; /* NULL: no rules, decided at init */
    mt_route_attrs_t *attrs;      /* the values the rules look at, NULL once decided */
    mt_buf_t held;                /* received data set bytes not yet written */
    bool ready;                   /* the bulk data starts: decide before writing it */
    bool decided;
    mt_route_decision_t dec; /* final once decided (all zero without rules) */
} mt_route_pending_t;

/* On caller storage; routes may be NULL (no rules: decided, empty decision). */
void mt_route_pending_init(mt_route_pending_t *p, const mt_route_set_t *routes);
void mt_route_pending_dispose(mt_route_pending_t *p);
/* Hold received bytes while undecided. 0, or MT_ETOOBIG past MT_ROUTE_MAX_HELD. */
int mt_route_pending_hold(mt_route_pending_t *p, const uint8_t *b, size_t n);
/* An event of the data set reader: top-level attributes before Pixel Data are collected. */
void mt_route_pending_event(mt_route_pending_t *p, mt_ds_event_t ev, const mt_elem_t *e,
                            bool big_endian);
static inline bool mt_route_pending_ready(const mt_route_pending_t *p)
{
    return !p->decided && p->ready;
}
/* Decide (in->attrs is ignored: the collected values are used). Frees the collected values;
 * the held bytes stay until mt_route_pending_drop_held. */
void mt_route_pending_decide(mt_route_pending_t *p, const mt_route_input_t *in);
/* The held bytes (valid until the next call that changes p), and dropping them. */
const uint8_t *mt_route_pending_held(const mt_route_pending_t *p, size_t *len);
void mt_route_pending_drop_held(mt_route_pending_t *p);

/* The de-identification profile for a decided instance: *dp = the rule's profile, node_dp
 * (the node-wide deid.profile) when no rule named one, NULL for "none" (store as received).
 * Returns 0, or MT_ENOENT when the rule's profile is not loaded (never store the original). */
int mt_route_profile(const mt_route_decision_t *d, const mt_deid_profile_t *node_dp,
                     const mt_deid_profile_t **dp);
/* One line for the debug log: "reject default 1 rule(s), projects=1 forward=0 deid=basic
 * armed=0". No value from the data set. */
void mt_route_summary(const mt_route_decision_t *d, char *out, size_t outsz);
/* The numeric address of a peer's "addr:port" text ("1.2.3.4:5", "[::1]:5", "::1:5"). */
void mt_route_peer_addr(const char *peer, char *out, size_t outsz);

#endif
