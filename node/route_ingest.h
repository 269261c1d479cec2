/*
 * route_ingest.h - what C-STORE (svc/store.c) and STOW-RS (http/stow.c) share about receiving
 * one instance: its reader's events fanned out, its File Meta, and the routing decision
 * (route/decide.h) applied to its ingest.
 *
 * The decision's projects, forward destinations and armed cmr_series rules go into the
 * instance's index record: put() joins the projects, writes the forward_queue rows and the
 * armed rules (db/007_tag_routes.sql) in the transaction that indexes the instance, so they
 * are durable exactly when the instance is. Once committed, the forwarder is woken when
 * something was queued. Loop thread.
 */
#ifndef MT_ROUTE_INGEST_H
#define MT_ROUTE_INGEST_H

#include "deid/stream.h"
#include "index/index.h"
#include "node.h"
#include "route/decide.h"
#include "route/rules.h"
#include "tag/capture.h"

/* One event of the service's data set reader to what follows it: the tagger's capture, the
 * index record (top-level values and sequence keys; none when rec is NULL) and the routing
 * rules' pending decision. */
void mt_route_ingest_event(mt_tag_capture_t *hdr, mt_index_rec_t *rec, mt_route_pending_t *route,
                           bool big_endian, mt_ds_event_t ev, const mt_elem_t *e);
/* The File Meta of an instance to store (source_ae may be ""); with a de-identification
 * profile dp its SOP Instance UID mapped and its Source AE cleared (mt_deid_stream_meta). */
int mt_route_ingest_meta(mt_meta_t *meta, const char *sop_class_uid, const char *sop_instance_uid,
                         const char *ts_uid, const char *source_ae, const mt_deid_profile_t *dp,
                         const uint8_t *key, size_t key_len);

/* Add d's projects, destinations and armed rules to rec (names are copied). */
void mt_route_ingest_rec(const mt_route_decision_t *d, mt_index_rec_t *rec);
/* An instance is durable with n_forward queue rows (its decision's n_forward): wake the
 * forwarder when there are any. */
void mt_route_ingest_committed(mt_node_t *node, size_t n_forward);

#endif
