/*
 * capture.h - what the CMR tagger needs of an incoming instance, taken while the receiving
 * service's own data set reader goes over it. PURE.
 *
 * The C-STORE service (svc/store.c) and STOW-RS (http/stow.c) read every data set with a
 * streaming reader (node/dicom/ds.h) for the index record and routing. The capture gets
 *   - the data set bytes before Pixel Data, as received (before de-identification): one copy
 *     per chunk (mt_tag_capture_feed, after the reader has seen the chunk);
 *   - every event of that reader (mt_tag_capture_event): for each top-level element the
 *     extractor reads (mt_tag_wanted, node/tag/extract.c) its tag, VR, length and offset in
 *     those bytes, in a fixed table (a few dozen slots; no allocation).
 * Once the instance is stored, mt_tag_capture_extract makes a read-only tree of those slots,
 * the values pointing into the bytes, and runs mt_tag_extract on it (the function `mitral tag
 * FILES` runs on the full tree): no second parse of the header. A header the table cannot
 * describe exactly (a sequence the extractor reads: Enhanced MR's functional groups; a tag out
 * of order or repeated; more kept elements than slots; an encapsulated value) is parsed again
 * instead, keeping only what the extractor reads (mt_ds_parse_filtered), as before this table
 * existed. Either way the features are those of the full parse: tests/unit/node/tag/extract.c
 * compares them on hand-made data sets and every file of ../shared/testdata, fed in pieces.
 *
 * Deflated transfer syntaxes are not captured (the reader's offsets count inflated bytes).
 */
#ifndef MT_TAG_CAPTURE_H
#define MT_TAG_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../dicom/ds.h"
#include "../util/buf.h"
#include "tag.h"

#define MT_TAG_CAPTURE_MAX (16u << 20) /* a larger header is not tagged */
#define MT_TAG_CAPTURE_SLOTS 80        /* top-level elements located (mt_tag_wanted has 67) */

typedef struct mt_tag_slot {
    uint32_t tag;
    uint16_t vr;
    uint32_t len; /* value length */
    uint32_t off; /* offset of the element (its header) in the captured bytes */
} mt_tag_slot_t;

typedef struct mt_tag_capture {
    mt_buf_t buf;      /* the data set bytes before Pixel Data */
    uint64_t end;      /* offset of Pixel Data, or UINT64_MAX while not seen */
    const mt_ts_t *ts; /* of the data set */
    bool off;          /* not captured (too large, deflated, no tagger, not to be tagged) */
    bool reparse;      /* the slots do not describe the header: parse it at extraction */
    uint32_t want_prev; /* mt_tag_wanted_next's place: the last top-level tag seen ... */
    unsigned want_at;   /* ... and where it was in the extractor's sorted list */
    unsigned n_slot;
    mt_tag_slot_t slot[MT_TAG_CAPTURE_SLOTS];
} mt_tag_capture_t;

/* off: nothing will be tagged (no tagger); ts NULL or deflated is off too. */
void mt_tag_capture_init(mt_tag_capture_t *c, const mt_ts_t *ts, bool off);
/* Free what was kept; the capture is off from then on (nothing of this instance is tagged). */
void mt_tag_capture_dispose(mt_tag_capture_t *c);
/* The next event of the service's reader (any depth, in order). */
void mt_tag_capture_event(mt_tag_capture_t *c, mt_ds_event_t ev, const mt_elem_t *e);
/* The next chunk of the data set, fed AFTER the reader has seen it (the reader reports Pixel
 * Data's offset, so only the bytes before it are copied). */
void mt_tag_capture_feed(mt_tag_capture_t *c, const uint8_t *p, size_t n);
bool mt_tag_capture_on(const mt_tag_capture_t *c);
/* Move a capture to other storage (from is then off and empty). */
void mt_tag_capture_move(mt_tag_capture_t *to, mt_tag_capture_t *from);
/* The features of the captured instance; the capture is empty and off afterwards. Returns 0,
 * MT_ENOENT when there is nothing to tag (off, nothing captured), or the error of
 * mt_tag_extract / of the parse; *out is initialised in every case (caller disposes). */
int mt_tag_capture_extract(mt_tag_capture_t *c, mt_tag_inst_t *out);

#endif
