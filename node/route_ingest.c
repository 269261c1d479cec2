/*
 * route_ingest.c - a routing decision applied to the ingest of one instance (contract:
 * route_ingest.h).
 */
#include "route_ingest.h"

#include "forward.h"

void mt_route_ingest_rec(const mt_route_decision_t *d, mt_index_rec_t *rec)
{
    for (size_t i = 0; i < d->n_projects; i++)
        mt_index_rec_add_project(rec, d->projects[i]);
    for (size_t i = 0; i < d->n_forward; i++)
        mt_index_rec_add_forward(rec, d->forward[i]);
    for (size_t i = 0; i < d->n_armed; i++) /* rules on the series tag: fired once tagged */
        mt_index_rec_add_armed(rec, d->armed[i]);
}

void mt_route_ingest_committed(mt_node_t *node, size_t n_forward)
{
    if (n_forward) /* queued in the commit's transaction: send soon */
        mt_forward_kick(mt_node_forward(node));
}
