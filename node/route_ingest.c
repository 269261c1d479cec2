/*
 * route_ingest.c - the receiving services' shared steps for one instance (contract:
 * route_ingest.h).
 */
#include "route_ingest.h"

#include <stdio.h>
#include <string.h>

#include "forward.h"

void mt_route_ingest_event(mt_tag_capture_t *hdr, mt_index_rec_t *rec, mt_route_pending_t *route,
                           bool big_endian, mt_ds_event_t ev, const mt_elem_t *e)
{
    mt_tag_capture_event(hdr, ev, e);
    if (rec && ev == MT_DS_EV_ELEMENT && e->depth == 0 && e->value)
        mt_index_rec_offer(rec, e->tag, e->vr, e->value, e->value_len, big_endian);
    if (rec)
        mt_index_rec_seq_event(rec, ev, e, big_endian);
    mt_route_pending_event(route, ev, e, big_endian);
}

int mt_route_ingest_meta(mt_meta_t *meta, const char *sop_class_uid, const char *sop_instance_uid,
                         const char *ts_uid, const char *source_ae, const mt_deid_profile_t *dp,
                         const uint8_t *key, size_t key_len)
{
    memset(meta, 0, sizeof *meta);
    snprintf(meta->sop_class_uid, sizeof meta->sop_class_uid, "%s", sop_class_uid);
    snprintf(meta->sop_instance_uid, sizeof meta->sop_instance_uid, "%s", sop_instance_uid);
    snprintf(meta->transfer_syntax_uid, sizeof meta->transfer_syntax_uid, "%s", ts_uid);
    snprintf(meta->source_ae, sizeof meta->source_ae, "%s", source_ae);
    return dp ? mt_deid_stream_meta(dp, key, key_len, meta) : 0;
}

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
