/*
 * route_ingest.h - a routing decision (route/decide.h) applied to the ingest of one instance,
 * shared by C-STORE (svc/store.c) and STOW-RS (http/stow.c).
 *
 * The decision's projects, forward destinations and armed cmr_series rules go into the
 * instance's index record: put() joins the projects, writes the forward_queue rows and the
 * armed rules (db/007_tag_routes.sql) in the transaction that indexes the instance, so they
 * are durable exactly when the instance is. Once committed, the forwarder is woken when
 * something was queued. Loop thread.
 */
#ifndef MT_ROUTE_INGEST_H
#define MT_ROUTE_INGEST_H

#include "index/index.h"
#include "node.h"
#include "route/rules.h"

/* Add d's projects, destinations and armed rules to rec (names are copied). */
void mt_route_ingest_rec(const mt_route_decision_t *d, mt_index_rec_t *rec);
/* An instance is durable with n_forward queue rows (its decision's n_forward): wake the
 * forwarder when there are any. */
void mt_route_ingest_committed(mt_node_t *node, size_t n_forward);

#endif
