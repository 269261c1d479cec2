/*
 * capture.h - the original header of an incoming instance, kept for the CMR tagger. PURE.
 *
 * The C-STORE service (svc/store.c) and STOW-RS (http/stow.c) both copy the data set bytes
 * before Pixel Data, as received (before de-identification), and hand them to the tagger
 * (tagger.h) once the instance is stored. Feed every data set chunk AFTER the data set reader
 * has seen it (the reader reports Pixel Data's offset, so only the bytes before it are copied,
 * not the whole instance when it comes in one chunk).
 */
#ifndef MT_TAG_CAPTURE_H
#define MT_TAG_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../util/buf.h"

#define MT_TAG_CAPTURE_MAX (16u << 20) /* a larger header is not tagged */

typedef struct mt_tag_capture {
    mt_buf_t buf;
    uint64_t end; /* offset of Pixel Data, or UINT64_MAX while not seen */
    bool off;     /* not captured (too large, deflated, no tagger, not to be tagged) */
} mt_tag_capture_t;

void mt_tag_capture_init(mt_tag_capture_t *c, bool off);
void mt_tag_capture_dispose(mt_tag_capture_t *c);
/* The data set reader met Pixel Data at this offset (the first report counts). */
void mt_tag_capture_pixel_at(mt_tag_capture_t *c, uint64_t offset);
/* The next chunk of the data set. */
void mt_tag_capture_feed(mt_tag_capture_t *c, const uint8_t *p, size_t n);
/* The captured header (mt_malloc'd, the caller owns it) and its length, or NULL when nothing
 * is to be tagged; the capture is then empty. */
uint8_t *mt_tag_capture_take(mt_tag_capture_t *c, size_t *len);

#endif
