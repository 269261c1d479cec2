/*
 * ds.h - the DICOM data set codec: transfer syntaxes, a push-fed (incremental) reader, an
 * in-memory data set tree, and its encoder. PURE: no I/O, no clock (links into libmitral_core).
 *
 * Two ways to read:
 *  1. Streaming (mt_ds_reader_*): feed bytes in any fragmentation (PDV-sized chunks); the reader
 *     calls back once per element / sequence / item event as soon as it is complete. Values up
 *     to opts.max_buffered_value bytes are delivered whole; larger values (Pixel Data, big OB/OW)
 *     are delivered as MT_DS_EV_VALUE_CHUNK pieces and never held whole, so a 2 GB instance
 *     streams in bounded memory. Everything before Pixel Data is therefore available before the
 *     bulk data ends. Deflated syntaxes are inflated inside the reader (zlib).
 *  2. Whole (mt_ds_parse): builds an mt_ds_t tree (sequences nested) from a complete buffer.
 *
 * Every length is bounds checked: malformed input returns MT_EMALFORMED with mt_diag_t filled
 * (offset into the (inflated) data set stream and a static reason string); never crashes, loops
 * or reads out of bounds.
 *
 * Tags are uint32_t (group << 16 | element). VRs are two ASCII chars packed: MT_VR('P','N').
 */
#ifndef MT_DICOM_DS_H
#define MT_DICOM_DS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../util/buf.h"

#define MT_TAG(g, e) ((uint32_t)(((uint32_t)(g) << 16) | (uint32_t)(e)))
#define MT_TAG_GROUP(t) ((uint16_t)((t) >> 16))
#define MT_TAG_ELEM(t) ((uint16_t)((t)&0xFFFF))
#define MT_VR(a, b) ((uint16_t)(((uint16_t)(a) << 8) | (uint16_t)(b)))
#define MT_UNDEFINED_LENGTH 0xFFFFFFFFu

#define MT_TAG_ITEM MT_TAG(0xFFFE, 0xE000)
#define MT_TAG_ITEM_DELIM MT_TAG(0xFFFE, 0xE00D)
#define MT_TAG_SEQ_DELIM MT_TAG(0xFFFE, 0xE0DD)
#define MT_TAG_PIXEL_DATA MT_TAG(0x7FE0, 0x0010)

/* Diagnostic for malformed input (STYLE §3). reason is a static string. */
typedef struct mt_diag {
    uint64_t offset;
    const char *reason;
} mt_diag_t;

/* ---- transfer syntaxes ---- */
typedef struct mt_ts {
    const char *uid;
    const char *name;
    bool explicit_vr;
    bool big_endian;
    bool deflated;
    bool encapsulated; /* pixel data in fragments */
    bool retired;
} mt_ts_t;

/* Known transfer syntax by UID (trailing NUL/space padding tolerated); NULL when unknown. */
const mt_ts_t *mt_ts_find(const char *uid);
/* All known transfer syntaxes, NULL-terminated-by-count: *n set to the count. */
const mt_ts_t *mt_ts_all(size_t *n);
extern const mt_ts_t *const mt_ts_implicit_le; /* 1.2.840.10008.1.2 */
extern const mt_ts_t *const mt_ts_explicit_le; /* 1.2.840.10008.1.2.1 */

/* ---- streaming reader ---- */
typedef enum mt_ds_event {
    MT_DS_EV_ELEMENT,     /* a non-sequence element; value whole if len <= max_buffered_value */
    MT_DS_EV_VALUE_CHUNK, /* a piece of a large value (value/value_len), after its ELEMENT event */
    MT_DS_EV_SEQ_START,   /* SQ (or UN/undefined length decoded as SQ) begins */
    MT_DS_EV_ITEM_START,
    MT_DS_EV_ITEM_END,
    MT_DS_EV_SEQ_END,
    MT_DS_EV_FRAGMENT, /* an item of encapsulated Pixel Data (value whole or chunked like above) */
} mt_ds_event_t;
/* Event order: an element is ELEMENT, then (if len > max_buffered_value) VALUE_CHUNK pieces,
 * the last with last_chunk set; piece sizes depend on how the bytes were fed. A sequence is
 * SEQ_START, then per item ITEM_START, its elements, ITEM_END, and finally SEQ_END.
 * Encapsulated Pixel Data (undefined length, not SQ) is ELEMENT (len MT_UNDEFINED_LENGTH, value
 * NULL), one FRAGMENT per item (the first is the Basic Offset Table), then SEQ_END.
 * depth: the nesting of the data set an event belongs to: top-level elements, SEQ_START/END of
 * a top-level sequence and the FRAGMENTs of top-level Pixel Data are depth 0; ITEM_START/END and
 * the elements of an item of a top-level sequence are depth 1, and so on.
 * ITEM_END's tag is always MT_TAG_ITEM_DELIM and SEQ_END's the sequence's (or Pixel Data's) tag,
 * whether the length was defined or delimited; len in ITEM_START/SEQ_START tells which.
 * SEQ_START's vr is SQ, or UN when the sequence was decoded from UN/an unknown implicit tag with
 * undefined length (its contents are then implicit VR little endian, PS3.5 §6.2.2). */

typedef struct mt_elem {
    uint32_t tag;
    uint16_t vr;          /* from the stream (explicit) or the dictionary (implicit); UN if unknown */
    uint32_t len;         /* as encoded; MT_UNDEFINED_LENGTH for undefined */
    unsigned depth;       /* 0 = top-level data set */
    uint64_t offset;      /* offset of the element header in the data set stream */
    const uint8_t *value; /* NULL when the value is delivered in chunks */
    size_t value_len;     /* bytes at value (for VALUE_CHUNK: this piece) */
    bool last_chunk;      /* VALUE_CHUNK: the final piece */
} mt_elem_t;

/* Return 0 to go on; a negative code stops the reader and is returned by mt_ds_reader_feed. */
typedef int (*mt_ds_event_cb)(void *user, mt_ds_event_t ev, const mt_elem_t *e);

typedef struct mt_ds_reader_opts {
    const mt_ts_t *ts;
    size_t max_buffered_value; /* default 1 MiB when 0 */
    /* top-level elements from Pixel Data (7FE0,0010) on always come as VALUE_CHUNKs, so their
     * ELEMENT event marks where the bulk data starts (store.c: routing, header capture) */
    bool stream_pixel_data;
    unsigned max_depth;        /* default 64 when 0 */
    mt_ds_event_cb cb;
    void *user;
} mt_ds_reader_opts_t;

typedef struct mt_ds_reader mt_ds_reader_t;

mt_ds_reader_t *mt_ds_reader_new(const mt_ds_reader_opts_t *opts);
void mt_ds_reader_free(mt_ds_reader_t *r);
/* Feed the next bytes. Returns 0, a callback's error, or MT_EMALFORMED / MT_ETOOBIG (diag set). */
int mt_ds_reader_feed(mt_ds_reader_t *r, const uint8_t *buf, size_t len);
/* End of stream: MT_EMALFORMED if it ends inside an element, item or defined-length sequence. */
int mt_ds_reader_finish(mt_ds_reader_t *r);
const mt_diag_t *mt_ds_reader_diag(const mt_ds_reader_t *r);
/* Bytes consumed so far (of the raw, possibly deflated, input). */
uint64_t mt_ds_reader_offset(const mt_ds_reader_t *r);

/* ---- in-memory tree ---- */
typedef struct mt_ds mt_ds_t;
typedef struct mt_ds_elem mt_ds_elem_t;

struct mt_ds_elem {
    uint32_t tag;
    uint16_t vr;
    uint32_t len;   /* value length (for SQ: MT_UNDEFINED_LENGTH if so encoded) */
    uint8_t *value; /* owned; NULL for SQ and for zero length */
    mt_ds_t **items;  /* SQ only: items, each a data set */
    size_t n_items;
    uint8_t **frags;  /* encapsulated Pixel Data: fragment values (first = basic offset table) */
    uint32_t *frag_lens;
    size_t n_frags;
    bool encapsulated;
    /* SQ only: decoded from UN with undefined length (PS3.5 §6.2.2), or from an unknown tag
     * with undefined length in implicit VR. Its items are implicit VR little endian; the
     * encoder writes it back as UN (explicit VR) with undefined length. */
    bool from_un;
};

mt_ds_t *mt_ds_new(void);
void mt_ds_free(mt_ds_t *ds);
/* Parse a whole data set (no file meta) in the given transfer syntax. */
int mt_ds_parse(const uint8_t *buf, size_t len, const mt_ts_t *ts, mt_ds_t **out, mt_diag_t *diag);
/* The same, keeping only the elements and sequences for which keep(user, tag) is true, at any
 * depth; a sequence not kept is dropped with everything in it. The whole input is still read
 * and checked (same errors as mt_ds_parse). No value is copied: the tree's values point into
 * buf, which must outlive it, and the tree is read-only (mt_ds_set / mt_ds_remove refuse it;
 * a deflated syntax's values are copied as usual). */
typedef bool (*mt_ds_keep_fn)(void *user, uint32_t tag);
int mt_ds_parse_filtered(const uint8_t *buf, size_t len, const mt_ts_t *ts, mt_ds_keep_fn keep,
                         void *keep_user, mt_ds_t **out, mt_diag_t *diag);
/* The tree mt_ds_parse builds, from the events of a reader the caller feeds itself (so that a
 * data set read once for another purpose need not be parsed again: the de-identification
 * stream, node/deid/stream.c). Pass every event from the first; values must come whole (no
 * VALUE_CHUNK: MT_EINVAL; choose max_buffered_value accordingly). Take returns the tree (the
 * caller's, mt_ds_free) once, at a point where no sequence, item or fragment list is open,
 * else NULL. Errors: MT_EINVAL (events out of structure), MT_ENOMEM (a value's copy). */
typedef struct mt_ds_builder mt_ds_builder_t;
mt_ds_builder_t *mt_ds_builder_new(const mt_ts_t *ts);
int mt_ds_builder_event(mt_ds_builder_t *b, mt_ds_event_t ev, const mt_elem_t *e);
mt_ds_t *mt_ds_builder_take(mt_ds_builder_t *b);
void mt_ds_builder_free(mt_ds_builder_t *b);
/* A read-only tree whose top-level elements are appended, in ascending tag order, with values
 * that stay the caller's (they must outlive the tree; mt_ds_free does not free them): what the
 * tagger's capture (node/tag/capture.c) makes of the elements it located in a header while the
 * receiving service's reader went over it. n is a capacity hint. Append: MT_EINVAL when tag is
 * not above the last one or ds is not such a tree. */
mt_ds_t *mt_ds_new_borrowed(bool big_endian, size_t n);
int mt_ds_borrow_append(mt_ds_t *ds, uint32_t tag, uint16_t vr, const uint8_t *value,
                        uint32_t len);
size_t mt_ds_count(const mt_ds_t *ds);
mt_ds_elem_t *mt_ds_at(const mt_ds_t *ds, size_t i); /* elements sorted by tag */
mt_ds_elem_t *mt_ds_get(const mt_ds_t *ds, uint32_t tag);
/* String value with trailing spaces/NULs trimmed (first value of a multi-valued string is NOT
 * split). Returns false if absent. Truncates to outsz-1. */
bool mt_ds_get_string(const mt_ds_t *ds, uint32_t tag, char *out, size_t outsz);
bool mt_ds_get_u16(const mt_ds_t *ds, uint32_t tag, uint16_t *out); /* US, little endian tree */
bool mt_ds_get_u32(const mt_ds_t *ds, uint32_t tag, uint32_t *out); /* UL */
/* Set (insert or replace) an element; value copied; an odd length is padded to even (PS3.5
 * §6.2: UI and binary VRs with NUL, other strings with a space). vr SQ makes an empty sequence
 * (len must be 0); the caller may then fill items (an mt_malloc'd array of mt_ds_new() sets).
 * Binary values are taken in the tree's byte order. MT_EINVAL for item tags (FFFE,xxxx). */
int mt_ds_set(mt_ds_t *ds, uint32_t tag, uint16_t vr, const void *value, uint32_t len);
int mt_ds_set_string(mt_ds_t *ds, uint32_t tag, uint16_t vr, const char *s);
int mt_ds_set_u16(mt_ds_t *ds, uint32_t tag, uint16_t v);
int mt_ds_set_u32(mt_ds_t *ds, uint32_t tag, uint32_t v);
bool mt_ds_remove(mt_ds_t *ds, uint32_t tag);
/* Encode in a transfer syntax (not deflated: callers deflate). Values in the tree are kept in
 * the byte order they were parsed in; encoding to another byte order swaps per VR. */
int mt_ds_encode(const mt_ds_t *ds, const mt_ts_t *ts, mt_buf_t *out);

/* ---- Part 10 files (PS3.10 §7) ---- */
typedef struct mt_meta {
    char sop_class_uid[65];
    char sop_instance_uid[65];
    char transfer_syntax_uid[65];
    char impl_class_uid[65];
    char impl_version_name[17];
    char source_ae[17];
} mt_meta_t;

#define MT_IMPL_CLASS_UID "1.2.826.0.1.3680043.10.1532.1"
#define MT_IMPL_VERSION_NAME "MITRAL_010"

/* Parse preamble + "DICM" + group 0002 from buf. On success *consumed = offset of the data set.
 * A buffer without preamble/DICM returns MT_EUNSUPPORTED (caller may treat it as a bare data
 * set); MT_EAGAIN if more bytes are needed to finish the meta group. */
int mt_part10_read_meta(const uint8_t *buf, size_t len, mt_meta_t *meta, size_t *consumed,
                        mt_diag_t *diag);
/* Append preamble, "DICM" and a correct group 0002 (with group length, our implementation class
 * UID and version name) to out. */
int mt_part10_write_meta(const mt_meta_t *meta, mt_buf_t *out);

/* Parse a whole file: preamble + meta + data set, or a bare data set (no preamble/meta:
 * meta is zeroed and the transfer syntax guessed from the first element: explicit VR little
 * or big endian, else implicit VR little endian). The same guess applies when the meta group
 * has no TransferSyntaxUID. On success *ds is the tree (caller frees with mt_ds_free). Errors:
 * MT_EMALFORMED (diag offset is a file offset, or an inflated-stream offset when deflated),
 * MT_EUNSUPPORTED for an unknown transfer syntax. */
int mt_part10_parse_file_buf(const uint8_t *buf, size_t len, mt_meta_t *meta, mt_ds_t **ds,
                             mt_diag_t *diag);
/* The same, but no value is copied: the tree's values point into buf, which must outlive it,
 * and the tree is read-only (as mt_ds_parse_filtered's; a deflated syntax's values are copied).
 * For reading a large file in place (`mitral dump` of a mapped 2 GB instance). */
int mt_part10_parse_file_view(const uint8_t *buf, size_t len, mt_meta_t *meta, mt_ds_t **ds,
                              mt_diag_t *diag);

/* ---- dump ---- */
/* A readable dump (dcmdump-like, one element a line, nested items indented) appended to out. */
int mt_ds_dump(const mt_ds_t *ds, mt_buf_t *out);

#endif
