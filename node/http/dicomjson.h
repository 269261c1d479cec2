/*
 * dicomjson.h - DICOM JSON Model reader (PS3.18 Annex F): one instance object of a STOW-RS
 * metadata part plus its bulk data parts -> a data set tree (node/dicom/ds.h) ready to be
 * encoded as a Part 10 instance. PURE. The JSON text is parsed by node/http/jsonp.c; the
 * encoder of the same model is node/http/json.c.
 *
 * Per element (PS3.18 §F.2): the key is the tag as 8 hex digits; "vr" is required; then one of
 * "Value", "InlineBinary" (base64), "BulkDataURI", or none (an empty element). The value must
 * fit the VR (Table F.2.3-1):
 *   AE AS CS DA DT LO SH TM UC UI, LT ST UT UR  strings (or null = an empty value), joined
 *       with '\'; a string holding '\' where the VR allows several values is refused; LT ST
 *       UT UR take one value; UI must be [0-9.], at most 64 bytes
 *   PN    objects {"Alphabetic","Ideographic","Phonetic"} -> "A=I=P" (trailing empty groups
 *         dropped) or null
 *   IS DS numbers (or strings holding one): the literal is kept when it is a valid IS (12
 *         bytes) / DS (16 bytes); a DS literal longer than 16 bytes is rewritten with fewer
 *         significant digits; IS must be integral
 *   AT    strings "GGGGEEEE"
 *   US SS UL SL UV SV FL FD  numbers (UV/SV also as decimal strings, for values beyond 2^53),
 *         range checked, integral for the integer VRs, written little endian
 *   OB OD OF OL OV OW UN     InlineBinary or BulkDataURI (a whole number of the VR's units)
 *   SQ    "Value": a list of objects, each an item, read the same way at any depth
 * Group 0002 (the File Meta Information is built by the caller) and group lengths are
 * skipped. A tag repeated in one data set is refused.
 *
 * BulkDataURI: resolved against the bulk parts by exact match of the part's Content-Location.
 * Pixel Data (7FE0,0010) of the top-level data set whose parts carry a `transfer-syntax`
 * media-type parameter naming an encapsulated syntax (PS3.18 §8.7.3.3.2: compressed bulk data
 * is the compressed octet stream, one frame per part, without fragment delimiters) becomes
 * encapsulated Pixel Data: an empty Basic Offset Table, then one fragment per part in order;
 * the instance then uses that syntax. Every other value is the bytes of its part(s), and the
 * instance is Explicit VR Little Endian.
 * Text: JSON is UTF-8; when any text value holds a non-ASCII byte, SpecificCharacterSet
 * (0008,0005) is set to "ISO_IR 192".
 * Errors (the instance is not built; *ds stays NULL): MT_EMALFORMED (bad structure, value not
 * valid for its VR, SOP Class/Instance UID missing), MT_ENOENT (a BulkDataURI no part
 * provides), MT_EUNSUPPORTED (a transfer-syntax parameter that is not a syntax we know), each
 * with a static reason and the tag where it happened.
 */
#ifndef MT_HTTP_DICOMJSON_H
#define MT_HTTP_DICOMJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../dicom/ds.h"
#include "jsonp.h"

typedef struct mt_dj_bulk {
    const char *location;        /* the part's Content-Location */
    const char *transfer_syntax; /* its media type's transfer-syntax parameter, "" if none */
    const uint8_t *data;
    size_t len;
    bool used; /* set when an element referenced it */
} mt_dj_bulk_t;

typedef struct mt_dj_err {
    const char *reason; /* static */
    uint32_t tag;       /* the element (innermost) where it happened; 0 for the instance */
} mt_dj_err_t;

/* One instance: obj is a JSON object of the DICOM JSON Model. On success *ds is the tree
 * (caller frees with mt_ds_free) and *ts the transfer syntax to encode it in. */
int mt_dicomjson_instance(const mt_jsonv_t *obj, mt_dj_bulk_t *bulk, size_t n_bulk, mt_ds_t **ds,
                          const mt_ts_t **ts, mt_dj_err_t *err);

#endif
