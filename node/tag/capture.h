/*
 * capture.h - what the CMR tagger needs of an incoming instance, taken from the data set
 * reader the receiving service already runs. PURE.
 *
 * The C-STORE service (svc/store.c) and STOW-RS (http/stow.c) read every data set with a
 * streaming reader (node/dicom/ds.h) for the index record and routing. Each event of that
 * reader is also handed here (mt_tag_capture_event): the elements the extractor reads
 * (mt_tag_wanted, node/tag/extract.c) are kept, values copied into chunks owned by the
 * capture, in a small tree (mt_ds_builder_*); everything else, and everything from Pixel Data
 * on, is passed over. So the header is read once, by the service's reader, as received
 * (before de-identification), and nothing but the kept values is copied: no header bytes, no
 * second parse. Once the instance is stored, mt_tag_capture_extract turns the tree into the
 * features (mt_tag_extract, the same function `mitral tag FILES` runs on the full tree: the
 * same features; tests/unit/node/tag/capture.c checks it on every file of ../shared/testdata).
 *
 * A capture that fails (kept values above MT_TAG_CAPTURE_MAX, an event the builder refuses)
 * turns itself off: that instance is not tagged, nothing else changes.
 */
#ifndef MT_TAG_CAPTURE_H
#define MT_TAG_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../dicom/ds.h"
#include "tag.h"

#define MT_TAG_CAPTURE_MAX (16u << 20) /* kept values above this: not tagged */

typedef struct mt_tag_capture_chunk mt_tag_capture_chunk_t;

typedef struct mt_tag_capture {
    mt_ds_builder_t *b;             /* the kept elements; NULL before the first event */
    mt_tag_capture_chunk_t *chunks; /* their values (newest chunk first) */
    size_t n_bytes;                 /* bytes of values kept */
    bool big_endian;                /* the transfer syntax's byte order */
    bool off;                       /* nothing to tag (off from the start, failed, stopped) */
    bool done;                      /* Pixel Data reached: later events are not looked at */
} mt_tag_capture_t;

/* off: nothing will be tagged (no tagger); ts NULL is off too. */
void mt_tag_capture_init(mt_tag_capture_t *c, const mt_ts_t *ts, bool off);
void mt_tag_capture_dispose(mt_tag_capture_t *c);
/* The next event of the service's reader (any depth, in order, from the data set's first
 * element). Never fails: a capture that cannot go on turns off. */
void mt_tag_capture_event(mt_tag_capture_t *c, mt_ds_event_t ev, const mt_elem_t *e);
/* This instance is not to be tagged (quarantined, no UIDs): what was kept is freed. */
void mt_tag_capture_stop(mt_tag_capture_t *c);
bool mt_tag_capture_on(const mt_tag_capture_t *c);
/* Move a capture to other storage (from is then off and empty). */
void mt_tag_capture_move(mt_tag_capture_t *to, mt_tag_capture_t *from);
/* The features of the captured instance (mt_tag_extract over the kept elements); the capture
 * is empty and off afterwards. Returns 0, MT_ENOENT when there is nothing to tag (off), or
 * mt_tag_extract's error; *out is initialised in every case (caller disposes). */
int mt_tag_capture_extract(mt_tag_capture_t *c, mt_tag_inst_t *out);

#endif
