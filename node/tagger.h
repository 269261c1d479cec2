/*
 * tagger.h - CMR series tagging inside the node (issue 5; rules in node/tag/, docs/tagging.md).
 *
 * Loop-thread API. The store service hands over what its own data set reader kept of each
 * stored instance (tag/capture.h); everything else happens off the event loop on the libuv
 * pool: feature extraction (in batches), then, when a series has been idle for
 * tagging.series_idle and again when its study has been idle for tagging.study_idle, the
 * exam-level pass over every series of the study and the index writes (series_tags, through a
 * connection of its own). A C-STORE response never waits for any of it.
 */
#ifndef MT_TAGGER_H
#define MT_TAGGER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dicom/ds.h"

typedef struct mt_tagger mt_tagger_t;

int mt_tagger_new(uv_loop_t *loop, const char *index_path, uint32_t series_idle_ms,
                  uint32_t study_idle_ms, mt_tagger_t **out);
/* Offer one stored instance: the capture its service's reader filled (tag/capture.h; the
 * elements as received, before de-identification). study_uid / series_uid are the UIDs the
 * instance was STORED under (de-identified when a profile is in force): the tags are keyed by
 * them, so no original identifier reaches the index. What c kept moves to the tagger (c is left
 * empty and off); call after the response has been sent. */
struct mt_tag_capture;
void mt_tagger_offer(mt_tagger_t *t, struct mt_tag_capture *c, const char *study_uid,
                     const char *series_uid);
/* Fire routing rules on the CMR series tag (node/tag_route.h) with the rules of node's config
 * snapshot in force when each pass starts. Without this call, tags are only written. */
struct mt_node;
void mt_tagger_route(mt_tagger_t *t, struct mt_node *node);
/* Tag everything still pending (ignoring idle times), then free; cb on the loop when done. */
void mt_tagger_close(mt_tagger_t *t, void (*cb)(void *), void *data);

#endif
