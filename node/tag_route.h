/*
 * tag_route.h - routing rules on the CMR series tag, fired when a series is tagged (issue 6 on
 * top of issue 5; rules: node/route/rules.h, rows: db/007_tag_routes.sql).
 *
 * Called by the tagger's pass job (node/tagger.c) inside the transaction that writes the
 * series' tag, so the tag, the queue rows and the fired flags commit together: an instance is
 * queued once per armed rule and stored copy, across tag revisions and restarts. Blocking
 * (index calls): pool thread only.
 */
#ifndef MT_TAG_ROUTE_H
#define MT_TAG_ROUTE_H

#include <stddef.h>

#include "index/index.h"
#include "route/rules.h"

/* Evaluate the rules armed for the instances of a series just tagged tag; queue and join what
 * fires. *n_queued (may be NULL) += the queue rows written. Returns 0 or an MT_E* code (the
 * caller rolls back its transaction). */
int mt_tag_route_series(mt_index_t *ix, const mt_route_set_t *set, const char *study_uid,
                        const char *series_uid, const char *tag, size_t *n_queued);

#endif
