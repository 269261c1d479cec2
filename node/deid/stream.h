/*
 * stream.h - de-identification of a data set that arrives as a stream (C-STORE), in bounded
 * memory. PURE: bytes in, bytes out through a callback; no I/O of its own.
 *
 * The C-STORE path (node/svc/store.c) feeds the received data set bytes here instead of
 * writing them; what comes out of the emit callback is what gets written, so the original data
 * set never reaches the disk:
 *
 *   received:  [ header elements ........ ][ (7FE0,0010) Pixel Data ........ ][ tail ]
 *   buffered:  [ header, up to max_header ]
 *   emitted:   [ encode(deid(parse(header))) ][ Pixel Data, passed through as received ]
 *
 * - The header is every top-level element before Pixel Data (7FE0,0010) (Float/Double Pixel
 *   Data and every other element included). It is buffered until the Pixel Data element
 *   starts (or the data set ends), then parsed, de-identified with mt_deid_apply and encoded in
 *   the same transfer syntax. Then Pixel Data streams through untouched, native or
 *   encapsulated, chunk by chunk.
 * - The tail (top-level elements after Pixel Data: Digital Signatures (FFFA,FFFA), Data Set
 *   Trailing Padding (FFFC,FFFC), private groups above 7FE0) is dropped: every profile removes
 *   those attributes (Table E.1-1 X, no safe private element lives above 7FE0).
 * - Deflated transfer syntaxes cannot be split on raw bytes: the whole data set is buffered (up
 *   to max_header), and written as Explicit VR Little Endian (mt_deid_stream_out_ts).
 * - Burned In Annotation YES: with burned-in-annotation: reject, feed/finish return
 *   MT_EREJECTED and nothing more is emitted; with quarantine, the header is de-identified
 *   all the same (mt_deid_apply_quarantined), emitted as usual, and mt_deid_stream_quarantined
 *   turns true: the caller must keep the result out of the store (docs/deid.md, Quarantine).
 *
 * Feed and finish return a negative MT_E* code (MT_EREJECTED, MT_ETOOBIG: header larger than
 * max_header, MT_EMALFORMED, or the emit callback's error), else the largest value the emit
 * callback returned (C-STORE: 1 = "pause reading until the writer drains").
 */
#ifndef MT_DEID_STREAM_H
#define MT_DEID_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../dicom/ds.h"
#include "engine.h"
#include "profile.h"

typedef struct mt_deid_stream mt_deid_stream_t;

/* Returns < 0 to stop with that error, else 0 or a positive hint passed back to the feeder. */
typedef int (*mt_deid_emit_cb)(void *user, const uint8_t *p, size_t n);

#define MT_DEID_STREAM_MAX_HEADER ((size_t)64 << 20)

/* p and key must outlive the stream. max_header 0 = MT_DEID_STREAM_MAX_HEADER. */
mt_deid_stream_t *mt_deid_stream_new(const mt_deid_profile_t *p, const uint8_t *key, size_t key_len,
                                     const mt_ts_t *ts, size_t max_header, mt_deid_emit_cb emit,
                                     void *user);
void mt_deid_stream_free(mt_deid_stream_t *s);
int mt_deid_stream_feed(mt_deid_stream_t *s, const uint8_t *p, size_t n);
/* The data set has ended. */
int mt_deid_stream_finish(mt_deid_stream_t *s);
/* The de-identified header (top-level elements before Pixel Data; Pixel Data itself absent,
 * except for a deflated syntax, where the header is the whole data set), once it has been
 * emitted; NULL before. Borrowed: valid until mt_deid_stream_free. */
const mt_ds_t *mt_deid_stream_header(const mt_deid_stream_t *s);
/* Burned In Annotation was YES and the profile quarantines: the emitted bytes are
 * de-identified (header) but must go to the quarantine, not the store. Known once the header
 * has been emitted (false before). */
bool mt_deid_stream_quarantined(const mt_deid_stream_t *s);
/* Counts and the pseudonym of the instance (for the caller's statistics; never log values). */
const mt_deid_result_t *mt_deid_stream_result(const mt_deid_stream_t *s);

/* Where top-level Pixel Data (7FE0,0010) lies in a data set: [start, end) are offsets of its
 * element (header included) in the data set bytes; vr as encoded; encapsulated: undefined
 * length (fragments, then the sequence delimiter). found false: the data set has none. */
typedef struct mt_deid_bulk {
    bool found, end_known, encapsulated;
    uint16_t vr;
    uint64_t start, end;
} mt_deid_bulk_t;

/* Locate top-level Pixel Data in a whole, non-deflated data set buf[0, len) with the same
 * reader the stream uses (values are not copied: Pixel Data is skipped over). The whole input
 * is read and checked. Returns 0, MT_EINVAL (deflated ts), or the reader's MT_EMALFORMED. Used
 * by `mitral deid` (cli.c) to de-identify the header alone and write Pixel Data as read. */
int mt_deid_bulk_span(const uint8_t *buf, size_t len, const mt_ts_t *ts, mt_deid_bulk_t *out);

/* The transfer syntax the emitted bytes are in: ts, or Explicit VR Little Endian for a
 * deflated ts. */
const mt_ts_t *mt_deid_stream_out_ts(const mt_ts_t *ts);
/* Rewrite the File Meta Information that goes in front of the emitted bytes: Media Storage SOP
 * Instance UID mapped exactly as the engine maps SOP Instance UID (PS3.15 Table E.1-1 gives
 * (0002,0003) the same action), transfer syntax = mt_deid_stream_out_ts, Source AE Title
 * cleared (it names the sending device). */
int mt_deid_stream_meta(const mt_deid_profile_t *p, const uint8_t *key, size_t key_len,
                        mt_meta_t *meta);

#endif
