/*
 * stowjson.h - the metadata-and-bulk-data form of a STOW-RS request (PS3.18 §10.5,
 * `multipart/related; type="application/dicom+json"`): collects the parts of one request
 * and, once the body has ended, turns each instance of the metadata into the data set bytes
 * of a Part 10 instance. PURE (no I/O); node/http/stow.c feeds it from the multipart decoder
 * and ingests each instance exactly as an application/dicom part.
 *
 * Parts: every application/dicom+json part is metadata: a DICOM JSON array of instances
 * (PS3.18 Annex F; a lone object is taken as one instance). Every other part is bulk data,
 * found by its Content-Location (exact match with a BulkDataURI; several parts with the same
 * location are the frames of compressed Pixel Data, in order). A `transfer-syntax` parameter
 * of a part's media type names the syntax of compressed Pixel Data (node/http/dicomjson.h);
 * without one, a compressed media type means its default syntax (PS3.18 Table 8.7.3-5:
 * image/jpeg JPEG Lossless SV1 .4.70, image/dicom-rle RLE .5, image/jls JPEG-LS lossless
 * .4.80, image/jp2 JPEG 2000 lossless .4.90, image/jpx .4.92).
 * A BulkDataURI always needs its part, so the parts are held until the body ends: at most
 * max_bytes in all (MT_ETOOBIG beyond; the request is then refused whole, 413).
 *
 * After the body: mt_stowjson_finish parses every metadata part first: malformed JSON, or no
 * metadata part at all, fails the whole request (MT_EMALFORMED and a reason: 400) before any
 * instance is stored; so does metadata over MT_STOWJSON_MAX_VALUES JSON values (the parsed
 * tree stays within about 56 bytes a value, a few hundred MiB) or MT_STOWJSON_MAX_INSTANCES
 * instances (MT_ETOOBIG: 413). Then each instance is built on its own; one that cannot be built
 * (dicomjson.h errors) is reported through the callback with its error and stores nothing,
 * and the others are unaffected.
 */
#ifndef MT_HTTP_STOWJSON_H
#define MT_HTTP_STOWJSON_H

#include <stddef.h>
#include <stdint.h>

#include "../dicom/ds.h"
#include "multipart.h"

#define MT_STOWJSON_MAX_VALUES ((size_t)1 << 22) /* per request: ~1,500 values an instance */
#define MT_STOWJSON_MAX_INSTANCES 100000         /* per request */

typedef struct mt_stowjson mt_stowjson_t;

typedef struct mt_stowjson_inst {
    int status;             /* 0, or an mt_dicomjson_instance error */
    const char *why;        /* static, when status != 0 */
    uint32_t tag;           /* where it failed, 0 = the instance */
    char cls[65], inst[65]; /* SOP Class/Instance UID as far as known ("" if not) */
    const mt_ts_t *ts;      /* status 0: the syntax of ds */
    const uint8_t *ds;      /* status 0: the data set bytes (no File Meta), valid in the call */
    size_t len;
} mt_stowjson_inst_t;

typedef void (*mt_stowjson_cb)(void *user, const mt_stowjson_inst_t *inst);

mt_stowjson_t *mt_stowjson_new(size_t max_bytes);
void mt_stowjson_free(mt_stowjson_t *j);
/* A part begins / its bytes / (the part ends with the next begin or finish). 0 or MT_ETOOBIG. */
int mt_stowjson_part(mt_stowjson_t *j, const mt_mp_part_t *part);
int mt_stowjson_data(mt_stowjson_t *j, const uint8_t *p, size_t n);
/* The body has ended: build the instances, in order, calling cb for each. Returns 0, or
 * MT_EMALFORMED / MT_ETOOBIG with *why (static) when the request as a whole is refused (no
 * instance reported). */
int mt_stowjson_finish(mt_stowjson_t *j, mt_stowjson_cb cb, void *user, const char **why);
/* Bulk parts no instance referenced (after finish). */
size_t mt_stowjson_unused(const mt_stowjson_t *j);

#endif
