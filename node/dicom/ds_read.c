/*
 * ds_read.c - the push-fed DICOM data set reader (PS3.5 §7: data elements, §7.5: nesting of
 * data sets, §A.4: encapsulated Pixel Data, §A.5: deflate). PURE: no I/O.
 *
 * The caller feeds bytes in any fragmentation; the reader is a resumable state machine that
 * keeps only an element header (at most 12 bytes), a stack of open sequences/items, and, for a
 * value no larger than max_buffered_value that straddles two feeds, that value. Larger values
 * are passed on as VALUE_CHUNK pieces straight from the caller's buffer, so memory is bounded
 * whatever the instance size. A value wholly inside one feed is passed without a copy.
 *
 *   raw bytes --(deflated TS: zlib raw inflate, 16 KiB window)--> decode()
 *
 *   decode():  ST_HDR    collect the header: tag (4), then for explicit VR the VR (2) and a
 *                        2-byte length, or 2 reserved bytes + a 4-byte length (12 in all);
 *                        implicit VR and item/delimiter tags: tag + 4-byte length (8)
 *              ST_VALUE  collect a value of len <= max_buffered_value, then ELEMENT/FRAGMENT
 *              ST_STREAM pass a larger value on as VALUE_CHUNKs
 *              ST_FAILED sticky: every later call returns the same error
 *
 * The frame stack holds what is open: F_SEQ (expects items or, if undefined length, the
 * Sequence Delimitation Item), F_ITEM (a nested data set; ends at its length or at an Item
 * Delimitation Item), F_ENCAP (fragments of encapsulated Pixel Data, ends at the Sequence
 * Delimitation Item). Each frame records how its contents are coded (explicit VR? big endian?),
 * because a UN sequence of undefined length is implicit VR little endian inside (PS3.5 §6.2.2)
 * whatever the transfer syntax. Each frame also records `limit`, the nearest defined end among
 * itself and its ancestors: every header and value is checked against it, and a frame still
 * open when the stream reaches an ancestor's end is malformed.
 *
 * Offsets (mt_elem_t.offset, diag.offset) count bytes of the data set stream (after inflation).
 */
#include "ds.h"

#include <string.h>
#include <zlib.h>

#include "../util/alloc.h"
#include "../util/bytes.h"
#include "../util/err.h"
#include "dict.h"
#include "ds_int.h"

#define NO_END UINT64_MAX
#define ZCHUNK 16384
#define DEFAULT_MAX_BUFFERED ((size_t)1 << 20)
#define DEFAULT_MAX_DEPTH 64

enum { F_SEQ, F_ITEM, F_ENCAP };
enum { ST_HDR, ST_VALUE, ST_STREAM, ST_FAILED };

typedef struct frame {
    uint8_t kind;
    bool explicit_vr, big; /* coding of the frame's contents */
    uint32_t tag;          /* the sequence / Pixel Data tag (F_SEQ, F_ENCAP) */
    uint16_t vr;           /* as reported in SEQ_START */
    uint64_t end;          /* defined end (stream offset), or NO_END */
    uint64_t limit;        /* min(end, parent's limit) */
} frame_t;

struct mt_ds_reader {
    mt_ds_reader_opts_t o;
    bool explicit_vr, big; /* top-level coding */
    frame_t *stack;
    unsigned n_frames, cap_frames;
    unsigned n_seq;    /* F_SEQ frames open (checked against max_depth) */
    unsigned ds_depth; /* F_ITEM frames open */
    int state;
    uint8_t hdr[12];
    unsigned hdr_n;
    uint64_t hdr_off;
    mt_ds_event_t cur_ev; /* ELEMENT or FRAGMENT being read */
    mt_elem_t cur;
    uint64_t remaining;
    mt_buf_t val;
    uint64_t pos; /* decoded stream offset */
    uint64_t raw; /* raw bytes fed */
    int err;
    mt_diag_t diag;
    bool deflated, z_end;
    z_stream z;
    uint8_t *zout;
};

static const uint8_t empty_value[1];

static int reader_fail(mt_ds_reader_t *r, int err, uint64_t off, const char *reason)
{
    r->err = err;
    r->diag.offset = off;
    r->diag.reason = reason;
    r->state = ST_FAILED;
    return err;
}

static frame_t *top(mt_ds_reader_t *r)
{
    return r->n_frames ? &r->stack[r->n_frames - 1] : NULL;
}

static void coding(mt_ds_reader_t *r, bool *ex, bool *big)
{
    frame_t *f = top(r);
    *ex = f ? f->explicit_vr : r->explicit_vr;
    *big = f ? f->big : r->big;
}

static uint64_t cur_limit(mt_ds_reader_t *r)
{
    frame_t *f = top(r);
    return f ? f->limit : NO_END;
}

static int emit(mt_ds_reader_t *r, mt_ds_event_t ev, const mt_elem_t *e)
{
    if (!r->o.cb)
        return 0;
    int rc = r->o.cb(r->o.user, ev, e);
    if (rc)
        return reader_fail(r, rc < 0 ? rc : MT_ECANCELED, e->offset,
                           "stopped by the event callback");
    return 0;
}

static void push(mt_ds_reader_t *r, const frame_t *f)
{
    if (r->n_frames == r->cap_frames) {
        r->cap_frames = r->cap_frames ? r->cap_frames * 2 : 16;
        r->stack = mt_realloc(r->stack, r->cap_frames * sizeof *r->stack);
    }
    r->stack[r->n_frames++] = *f;
    if (f->kind == F_SEQ)
        r->n_seq++;
    else if (f->kind == F_ITEM)
        r->ds_depth++;
}

static frame_t pop(mt_ds_reader_t *r)
{
    frame_t f = r->stack[--r->n_frames];
    if (f.kind == F_SEQ)
        r->n_seq--;
    else if (f.kind == F_ITEM)
        r->ds_depth--;
    return f;
}

/* Emit the end events of frames whose defined length is used up at r->pos. */
static int close_frames(mt_ds_reader_t *r)
{
    frame_t *f;
    while ((f = top(r)) != NULL) {
        if (f->kind != F_ENCAP && f->end != NO_END && r->pos == f->end) {
            frame_t g = pop(r);
            mt_elem_t e = {.tag = g.kind == F_ITEM ? MT_TAG_ITEM_DELIM : g.tag,
                           .vr = g.kind == F_ITEM ? 0 : g.vr,
                           .len = 0,
                           .depth = g.kind == F_ITEM ? r->ds_depth + 1 : r->ds_depth,
                           .offset = r->pos};
            int rc = emit(r, g.kind == F_ITEM ? MT_DS_EV_ITEM_END : MT_DS_EV_SEQ_END, &e);
            if (rc)
                return rc;
            continue;
        }
        if (f->limit != NO_END && r->pos >= f->limit)
            return reader_fail(r, MT_EMALFORMED, r->pos,
                               "undefined-length item or sequence not closed before the end of its "
                               "enclosing item");
        return 0;
    }
    return 0;
}

/* VR bytes that are not two letters but printable ASCII (e.g. "  " from a known writer bug,
 * testdata fo-dicom/GH179A.dcm): read with a 2-byte length and reported as UN, as dcmtk does.
 * Anything else there means the stream is not explicit VR: malformed. */
static bool printable_vr(uint16_t vr)
{
    uint8_t a = (uint8_t)(vr >> 8), b = (uint8_t)vr;
    return a >= 0x20 && a < 0x7F && b >= 0x20 && b < 0x7F;
}

/* Header bytes needed, given the first `have` bytes at h: 4, 6, 8 or 12; 0 when the VR bytes
 * are invalid. */
static unsigned hdr_need(mt_ds_reader_t *r, const uint8_t *h, unsigned have)
{
    frame_t *f = top(r);
    if (f && f->kind != F_ITEM)
        return 8;
    if (have < 4)
        return 4;
    bool ex, big;
    coding(r, &ex, &big);
    if (!ex || mt_rd16(h, big) == 0xFFFE)
        return 8;
    if (have < 6)
        return 6;
    uint16_t vr = MT_VR(h[4], h[5]);
    if (!mt__vr_valid(vr))
        return printable_vr(vr) ? 8 : 0;
    return mt__vr_long(vr) ? 12 : 8;
}

/* Start reading a value of a defined length (element or fragment). */
static int begin_value(mt_ds_reader_t *r, mt_ds_event_t ev, const mt_elem_t *e)
{
    r->cur_ev = ev;
    r->cur = *e;
    r->remaining = e->len;
    bool bulk = r->o.stream_pixel_data && ev == MT_DS_EV_ELEMENT && e->depth == 0 &&
                e->tag >= MT_TAG_PIXEL_DATA;
    if (e->len <= r->o.max_buffered_value && !(bulk && e->len)) {
        mt_buf_reset(&r->val);
        r->state = ST_VALUE;
        if (e->len == 0) {
            r->cur.value = empty_value;
            r->cur.value_len = 0;
            r->state = ST_HDR;
            return emit(r, ev, &r->cur);
        }
        return 0;
    }
    r->cur.value = NULL;
    r->cur.value_len = 0;
    r->state = ST_STREAM;
    return emit(r, ev, &r->cur);
}

static int start_seq(mt_ds_reader_t *r, const mt_elem_t *e, bool ex, bool big)
{
    if (r->n_seq >= r->o.max_depth)
        return reader_fail(r, MT_ETOOBIG, e->offset, "sequences nested deeper than max_depth");
    uint64_t lim = cur_limit(r);
    frame_t f = {.kind = F_SEQ, .explicit_vr = ex, .big = big, .tag = e->tag, .vr = e->vr};
    f.end = e->len == MT_UNDEFINED_LENGTH ? NO_END : r->pos + e->len;
    f.limit = f.end < lim ? f.end : lim;
    push(r, &f);
    return emit(r, MT_DS_EV_SEQ_START, e);
}

/* A complete header is at h (r->hdr, or the caller's bytes when it came whole in one feed; the
 * stream is at r->pos, just after it). */
static int on_header(mt_ds_reader_t *r, const uint8_t *h)
{
    frame_t *f = top(r);
    uint64_t off = r->hdr_off, lim = cur_limit(r);
    bool ex, big;
    coding(r, &ex, &big);
    if (r->pos > lim)
        return reader_fail(r, MT_EMALFORMED, off,
                           "element header crosses the end of its item or sequence");
    uint32_t tag = MT_TAG(mt_rd16(h, big), mt_rd16(h + 2, big));
    mt_elem_t e = {.tag = tag, .depth = r->ds_depth, .offset = off};

    if (f && f->kind == F_SEQ) {
        e.len = mt_rd32(h + 4, big);
        if (tag == MT_TAG_ITEM) {
            frame_t it = {.kind = F_ITEM, .explicit_vr = f->explicit_vr, .big = f->big};
            if (e.len != MT_UNDEFINED_LENGTH && e.len > lim - r->pos)
                return reader_fail(r, MT_EMALFORMED, off,
                                   "item length past the end of the sequence");
            it.end = e.len == MT_UNDEFINED_LENGTH ? NO_END : r->pos + e.len;
            it.limit = it.end < lim ? it.end : lim;
            push(r, &it);
            e.depth = r->ds_depth;
            return emit(r, MT_DS_EV_ITEM_START, &e);
        }
        if (tag == MT_TAG_SEQ_DELIM) {
            if (f->end != NO_END)
                return reader_fail(r, MT_EMALFORMED, off,
                                   "sequence delimiter in a defined-length sequence");
            if (e.len != 0)
                return reader_fail(r, MT_EMALFORMED, off, "sequence delimiter with nonzero length");
            frame_t g = pop(r);
            e.tag = g.tag;
            e.vr = g.vr;
            return emit(r, MT_DS_EV_SEQ_END, &e);
        }
        return reader_fail(r, MT_EMALFORMED, off, "expected an item tag in a sequence");
    }
    if (f && f->kind == F_ENCAP) {
        e.len = mt_rd32(h + 4, big);
        if (tag == MT_TAG_ITEM) {
            if (e.len == MT_UNDEFINED_LENGTH)
                return reader_fail(r, MT_EMALFORMED, off,
                                   "pixel data fragment with undefined length");
            if (e.len > lim - r->pos)
                return reader_fail(r, MT_EMALFORMED, off,
                                   "fragment length past the end of the enclosing item");
            e.vr = f->vr;
            e.depth = r->ds_depth;
            return begin_value(r, MT_DS_EV_FRAGMENT, &e);
        }
        if (tag == MT_TAG_SEQ_DELIM) {
            if (e.len != 0)
                return reader_fail(r, MT_EMALFORMED, off, "sequence delimiter with nonzero length");
            frame_t g = pop(r);
            e.tag = g.tag;
            e.vr = g.vr;
            return emit(r, MT_DS_EV_SEQ_END, &e);
        }
        return reader_fail(r, MT_EMALFORMED, off,
                           "expected a fragment item in encapsulated pixel data");
    }

    /* A data set (top level or item). */
    if (MT_TAG_GROUP(tag) == 0xFFFE) {
        e.len = mt_rd32(h + 4, big);
        if (tag == MT_TAG_ITEM_DELIM) {
            if (!f || f->end != NO_END)
                return reader_fail(r, MT_EMALFORMED, off,
                                   "item delimiter outside an undefined-length item");
            if (e.len != 0)
                return reader_fail(r, MT_EMALFORMED, off, "item delimiter with nonzero length");
            pop(r);
            e.depth = r->ds_depth + 1;
            return emit(r, MT_DS_EV_ITEM_END, &e);
        }
        if (tag == MT_TAG_SEQ_DELIM)
            return reader_fail(r, MT_EMALFORMED, off, "sequence delimiter outside a sequence");
        if (tag == MT_TAG_ITEM)
            return reader_fail(r, MT_EMALFORMED, off, "item tag outside a sequence");
        return reader_fail(r, MT_EMALFORMED, off, "invalid tag in group FFFE");
    }
    uint16_t vr;
    uint32_t len;
    if (ex) {
        vr = MT_VR(h[4], h[5]);
        if (!mt__vr_valid(vr)) {
            vr = MT__VR_UN;
            len = mt_rd16(h + 6, big);
        } else {
            len = mt__vr_long(vr) ? mt_rd32(h + 8, big) : mt_rd16(h + 6, big);
        }
    } else {
        const mt_dict_entry_t *d = mt_dict_by_tag(tag);
        vr = d && d->vr ? d->vr : MT__VR_UN;
        len = mt_rd32(h + 4, big);
    }
    e.vr = vr;
    e.len = len;
    if (len == MT_UNDEFINED_LENGTH) {
        if (vr == MT__VR_SQ)
            return start_seq(r, &e, ex, big);
        if (tag == MT_TAG_PIXEL_DATA || (ex && (vr == MT__VR_OB || vr == MT__VR_OW))) {
            frame_t p = {.kind = F_ENCAP,
                         .explicit_vr = ex,
                         .big = big,
                         .tag = tag,
                         .vr = vr,
                         .end = NO_END,
                         .limit = lim};
            int rc = emit(r, MT_DS_EV_ELEMENT, &e);
            if (rc)
                return rc;
            push(r, &p);
            return 0;
        }
        if (vr == MT__VR_UN || !ex) {
            e.vr = MT__VR_UN; /* PS3.5 §6.2.2: an implicit VR little endian sequence */
            return start_seq(r, &e, false, false);
        }
        return reader_fail(r, MT_EMALFORMED, off, "undefined length on a VR that cannot have one");
    }
    if (len > lim - r->pos)
        return reader_fail(r, MT_EMALFORMED, off,
                           "value length past the end of the enclosing item or sequence");
    if (vr == MT__VR_SQ)
        return start_seq(r, &e, ex, big);
    unsigned unit = mt__vr_unit(vr);
    if (unit > 1 && len % unit) {
        if (ex)
            return reader_fail(r, MT_EMALFORMED, off,
                               "value length not a multiple of the VR's size");
        e.vr = MT__VR_UN; /* implicit VR: the dictionary's guess does not fit the value */
    }
    return begin_value(r, MT_DS_EV_ELEMENT, &e);
}

/* Process decoded data set bytes. */
static int decode(mt_ds_reader_t *r, const uint8_t *p, size_t n)
{
    for (;;) {
        int rc;
        if (r->state == ST_HDR && r->hdr_n == 0 && (rc = close_frames(r)) != 0)
            return rc;
        if (n == 0)
            return 0;
        switch (r->state) {
        case ST_HDR: {
            if (r->hdr_n == 0)
                r->hdr_off = r->pos;
            unsigned need;
            if (r->hdr_n == 0 && n >= sizeof(r->hdr)) { /* the whole header is here: no copy */
                if ((need = hdr_need(r, p, sizeof(r->hdr))) == 0)
                    return reader_fail(r, MT_EMALFORMED, r->hdr_off, "invalid VR bytes");
                const uint8_t *h = p;
                p += need, n -= need, r->pos += need;
                if ((rc = on_header(r, h)) != 0)
                    return rc;
                break;
            }
            while ((need = hdr_need(r, r->hdr, r->hdr_n)) != 0 && r->hdr_n < need && n > 0) {
                size_t k = need - r->hdr_n;
                if (k > n)
                    k = n;
                memcpy(r->hdr + r->hdr_n, p, k);
                r->hdr_n += (unsigned)k;
                p += k, n -= k, r->pos += k;
            }
            if (need == 0)
                return reader_fail(r, MT_EMALFORMED, r->hdr_off, "invalid VR bytes");
            if (r->hdr_n < need)
                return 0; /* n == 0: need more */
            r->hdr_n = 0;
            if ((rc = on_header(r, r->hdr)) != 0)
                return rc;
            break;
        }
        case ST_VALUE: {
            size_t k = r->remaining < n ? (size_t)r->remaining : n;
            if (r->val.len == 0 && k == r->remaining) {
                r->cur.value = p;
            } else {
                if ((rc = mt_buf_append(&r->val, p, k)) != 0)
                    return reader_fail(r, rc, r->cur.offset, "value larger than the buffer limit");
                r->cur.value = r->val.data;
            }
            p += k, n -= k, r->pos += k;
            r->remaining -= k;
            if (r->remaining == 0) {
                r->cur.value_len = r->cur.len;
                r->state = ST_HDR;
                if ((rc = emit(r, r->cur_ev, &r->cur)) != 0)
                    return rc;
            }
            break;
        }
        case ST_STREAM: {
            size_t k = r->remaining < n ? (size_t)r->remaining : n;
            mt_elem_t c = r->cur;
            c.value = p;
            c.value_len = k;
            c.last_chunk = k == r->remaining;
            p += k, n -= k, r->pos += k;
            r->remaining -= k;
            if (r->remaining == 0)
                r->state = ST_HDR;
            if ((rc = emit(r, MT_DS_EV_VALUE_CHUNK, &c)) != 0)
                return rc;
            break;
        }
        default:
            return r->err;
        }
    }
}

/* zlib allocates through mt_try_malloc, so the tests' fault injection reaches it too */
static voidpf z_alloc(voidpf opaque, uInt n, uInt size)
{
    (void)opaque;
    return mt_try_malloc((size_t)n * size);
}

static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    mt_free(p);
}

mt_ds_reader_t *mt_ds_reader_new(const mt_ds_reader_opts_t *opts)
{
    if (!opts || !opts->ts)
        return NULL;
    mt_ds_reader_t *r = mt_calloc(1, sizeof *r);
    r->o = *opts;
    if (!r->o.max_buffered_value)
        r->o.max_buffered_value = DEFAULT_MAX_BUFFERED;
    if (!r->o.max_depth)
        r->o.max_depth = DEFAULT_MAX_DEPTH;
    r->explicit_vr = opts->ts->explicit_vr;
    r->big = opts->ts->big_endian;
    mt_buf_init(&r->val, r->o.max_buffered_value);
    r->state = ST_HDR;
    if (opts->ts->deflated) {
        r->deflated = true;
        r->z.zalloc = z_alloc;
        r->z.zfree = z_free;
        if (inflateInit2(&r->z, -MAX_WBITS) != Z_OK) {
            mt_free(r);
            return NULL;
        }
        r->zout = mt_malloc(ZCHUNK);
    }
    return r;
}

void mt_ds_reader_free(mt_ds_reader_t *r)
{
    if (!r)
        return;
    if (r->deflated)
        inflateEnd(&r->z);
    mt_free(r->zout);
    mt_free(r->stack);
    mt_buf_dispose(&r->val);
    mt_free(r);
}

int mt_ds_reader_feed(mt_ds_reader_t *r, const uint8_t *buf, size_t len)
{
    if (r->err)
        return r->err;
    r->raw += len;
    if (!r->deflated)
        return decode(r, buf, len);
    if (r->z_end)
        return 0; /* PS3.5 §A.5: padding after the deflate stream is ignored */
    r->z.next_in = (Bytef *)buf;
    while (len > 0) {
        uInt k = len > 0x40000000u ? 0x40000000u : (uInt)len;
        r->z.avail_in = k;
        do {
            r->z.next_out = r->zout;
            r->z.avail_out = ZCHUNK;
            int zr = inflate(&r->z, Z_NO_FLUSH);
            size_t got = ZCHUNK - r->z.avail_out;
            if (got) { /* first what inflated before any error: the same for every split */
                int rc = decode(r, r->zout, got);
                if (rc)
                    return rc;
            }
            if (zr == Z_MEM_ERROR)
                return reader_fail(r, MT_ENOMEM, r->pos, "out of memory inflating");
            if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
                return reader_fail(r, MT_EMALFORMED, r->pos, "corrupt deflate stream");
            if (zr == Z_STREAM_END) {
                r->z_end = true;
                return 0;
            }
            if (zr == Z_BUF_ERROR && got == 0)
                break; /* no progress possible until more input */
        } while (r->z.avail_in > 0 || r->z.avail_out == 0);
        len -= k;
    }
    return 0;
}

int mt_ds_reader_finish(mt_ds_reader_t *r)
{
    if (r->err)
        return r->err;
    if (r->deflated && !r->z_end)
        return reader_fail(r, MT_EMALFORMED, r->pos, "deflate stream truncated");
    if (r->state != ST_HDR || r->hdr_n != 0)
        return reader_fail(r, MT_EMALFORMED, r->state == ST_HDR ? r->hdr_off : r->cur.offset,
                           "data set truncated inside an element");
    int rc = close_frames(r);
    if (rc)
        return rc;
    if (r->n_frames)
        return reader_fail(r, MT_EMALFORMED, r->pos,
                           "data set truncated inside a sequence or item");
    return 0;
}

const mt_diag_t *mt_ds_reader_diag(const mt_ds_reader_t *r)
{
    return &r->diag;
}

uint64_t mt_ds_reader_offset(const mt_ds_reader_t *r)
{
    return r->raw;
}
