/*
 * json.h - DICOM JSON Model (PS3.18 Annex F) encoder. PURE.
 *
 * Two ways in, one value formatter:
 *   mt_json_ds        an mt_ds_t tree (QIDO-RS responses from the query layer)
 *   mt_json_stream_*  the events of a streaming data set reader (WADO-RS /metadata: the file
 *                     is read up to Pixel Data only; large values become BulkDataURI)
 *
 * Values follow dcmtk's dcm2json for the same attributes: tags as 8 upper-case hex digits,
 * "vr", then "Value" (absent for an empty element): strings split at '\' with padding
 * removed (an empty value in a list is null), PN as {"Alphabetic","Ideographic","Phonetic"},
 * IS/DS and binary numbers as JSON numbers (DS normalised: no '+', no leading zeros,
 * "0.5" for ".5"), AT as "GGGGEEEE", SQ as a list of objects, OB/OW/OF/OD/OL/OV/UN as
 * "InlineBinary" (base64) up to bulk_threshold bytes, else "BulkDataURI" (when a URI prefix is
 * given; the element's tag is appended, after SSSSSSSS/N/ for each enclosing sequence and
 * 1-based item number in the stream encoder: .../bulkdata/00540016/1/00181072) or no value.
 * Group lengths (gggg,0000) are left out.
 * Text (SH, LO, ST, LT, UT, UC, PN) is converted to UTF-8 from the Specific Character Set of
 * its data set or item (dicom/charset.h: every single-byte set, ISO 2022 code extensions, GB18030,
 * GBK; a sequence item may declare its own); other bytes that are not valid UTF-8 are read as
 * Latin-1. A non-empty SpecificCharacterSet is therefore written as "ISO_IR 192" (as dcm2json
 * does).
 */
#ifndef MT_HTTP_JSON_H
#define MT_HTTP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../dicom/charset.h"
#include "../dicom/ds.h"
#include "../util/buf.h"

typedef struct mt_json_opts {
    size_t bulk_threshold;      /* larger binary values are not inlined; 0 = always inline */
    const char *bulk_uri;       /* "…/bulkdata/" prefix for BulkDataURI, NULL = omit */
    bool big_endian;            /* stream: values in the data set's byte order */
} mt_json_opts_t;

/* Append the JSON object {"00080020":{...},...} of a data set tree (little-endian values). */
int mt_json_ds(const mt_ds_t *ds, const mt_json_opts_t *o, mt_buf_t *out);

/* The value formatter: append `"vr":"XX"` and, when non-empty, `,"Value":[...]` (or
 * InlineBinary / BulkDataURI) for one non-sequence element. cs: the character set of its
 * text (NULL: UTF-8, non-UTF-8 bytes read as Latin-1). */
int mt_json_value(uint32_t tag, uint16_t vr, const uint8_t *v, size_t len,
                  const mt_charset_t *cs, const mt_json_opts_t *o, mt_buf_t *out);

typedef struct mt_json_stream mt_json_stream_t;
/* Writes an object for the data set; events from mt_ds_reader (see ds.h). */
mt_json_stream_t *mt_json_stream_new(const mt_json_opts_t *o, mt_buf_t *out);
int mt_json_stream_event(mt_json_stream_t *s, mt_ds_event_t ev, const mt_elem_t *e);
/* Close every open sequence/item and the object. */
int mt_json_stream_finish(mt_json_stream_t *s);
void mt_json_stream_free(mt_json_stream_t *s);

/* JSON string (with quotes) from UTF-8 bytes. */
int mt_json_str(mt_buf_t *out, const char *s, size_t n);

#endif
