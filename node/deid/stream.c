/*
 * stream.c - streaming de-identification for the C-STORE path (design: stream.h). PURE.
 *
 * States: HEADER (buffering raw bytes, our own reader watching for top-level Pixel Data) ->
 * BULK (Pixel Data bytes passed through until its end is known and reached) -> TAIL (the rest
 * dropped). A deflated stream stays in HEADER until finish. FAILED is sticky.
 *
 * Offsets: the reader reports element offsets in the data set stream, which for a
 * non-deflated transfer syntax are offsets in the raw bytes fed here. The Pixel Data element
 * starts at `split`; it ends at split + header + length (defined length; the header is 12
 * bytes in explicit VR for OB/OW/UN, 8 in implicit VR) or 8 bytes after the offset of its
 * sequence delimiter (encapsulated, undefined length). Reader events for a chunk fire while
 * that chunk is fed, before its bytes are routed, so a boundary inside the chunk is known in
 * time.
 */
#include "stream.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../util/alloc.h"
#include "../util/buf.h"
#include "../util/err.h"

enum { ST_HEADER, ST_BULK, ST_TAIL, ST_FAILED };

struct mt_deid_stream {
    const mt_deid_profile_t *p;
    const uint8_t *key;
    size_t key_len;
    const mt_ts_t *ts, *out_ts;
    mt_ds_reader_t *reader;
    mt_ds_builder_t *build; /* the header's tree from the reader's events; NULL: deflated */
    mt_buf_t hdr;
    int st;
    int err;
    uint64_t in_off;     /* raw bytes fed so far */
    mt_deid_bulk_t bulk; /* where top-level Pixel Data starts and ends */
    mt_ds_t *header;
    mt_deid_result_t res;
    bool quarantined;
    mt_deid_emit_cb emit;
    void *user;
};

/* Follow the reader's events to find top-level Pixel Data in a non-deflated stream. */
static void track_bulk(mt_deid_bulk_t *b, const mt_ts_t *ts, mt_ds_event_t ev, const mt_elem_t *e)
{
    if (ts->deflated || e->depth != 0)
        return;
    if (ev == MT_DS_EV_ELEMENT && e->tag == MT_TAG_PIXEL_DATA && !b->found) {
        b->found = true;
        b->start = e->offset;
        b->vr = e->vr;
        b->encapsulated = e->len == MT_UNDEFINED_LENGTH;
        if (e->len != MT_UNDEFINED_LENGTH) {
            uint64_t h = ts->explicit_vr ? 12 : 8;
            if (ts->explicit_vr && e->vr != MT_VR('O', 'B') && e->vr != MT_VR('O', 'W') &&
                e->vr != MT_VR('U', 'N'))
                h = 8; /* a nonstandard VR: 2-byte length form */
            b->end = e->offset + h + e->len;
            b->end_known = true;
        }
    } else if (ev == MT_DS_EV_SEQ_END && e->tag == MT_TAG_PIXEL_DATA && b->found && !b->end_known) {
        b->end = e->offset + 8; /* (FFFE,E0DD) and its zero length */
        b->end_known = true;
    }
}

/* The bulk tracker, and the header's tree: every event before top-level Pixel Data. */
static int on_event(void *user, mt_ds_event_t ev, const mt_elem_t *e)
{
    mt_deid_stream_t *s = user;
    track_bulk(&s->bulk, s->ts, ev, e);
    if (!s->build || s->bulk.found)
        return 0;
    if (ev == MT_DS_EV_ELEMENT && !e->value && e->len != MT_UNDEFINED_LENGTH)
        return MT_ETOOBIG; /* a value larger than the header may be: chunked */
    int rc = mt_ds_builder_event(s->build, ev, e);
    return rc == 0 || rc == MT_ENOMEM ? rc : MT_EMALFORMED;
}

typedef struct span {
    const mt_ts_t *ts;
    mt_deid_bulk_t *b;
} span_t;

static int on_span_event(void *user, mt_ds_event_t ev, const mt_elem_t *e)
{
    span_t *sp = user;
    track_bulk(sp->b, sp->ts, ev, e);
    return 0;
}

int mt_deid_bulk_span(const uint8_t *buf, size_t len, const mt_ts_t *ts, mt_deid_bulk_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!ts || ts->deflated)
        return MT_EINVAL;
    span_t sp = {ts, out};
    /* stream_pixel_data: Pixel Data comes as pieces of the caller's buffer, never copied. */
    mt_ds_reader_opts_t o = {.ts = ts,
                             .max_buffered_value = 4096,
                             .stream_pixel_data = true,
                             .cb = on_span_event,
                             .user = &sp};
    mt_ds_reader_t *r = mt_ds_reader_new(&o);
    if (!r)
        return MT_ENOMEM;
    int rc = mt_ds_reader_feed(r, buf, len);
    if (!rc)
        rc = mt_ds_reader_finish(r);
    mt_ds_reader_free(r);
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

mt_deid_stream_t *mt_deid_stream_new(const mt_deid_profile_t *p, const uint8_t *key, size_t key_len,
                                     const mt_ts_t *ts, size_t max_header, mt_deid_emit_cb emit,
                                     void *user)
{
    if (!p || !key || !ts || !emit)
        return NULL;
    mt_deid_stream_t *s = mt_calloc(1, sizeof(*s));
    s->p = p;
    s->key = key;
    s->key_len = key_len;
    s->ts = ts;
    s->out_ts = mt_deid_stream_out_ts(ts);
    s->emit = emit;
    s->user = user;
    size_t max = max_header ? max_header : MT_DEID_STREAM_MAX_HEADER;
    mt_buf_init(&s->hdr, max);
    /* Not deflated: the reader's events before Pixel Data build the header's tree in the same
     * pass that finds Pixel Data (values whole: none is larger than the header), and Pixel
     * Data and what follows stream past in chunks. Deflated: the reader only follows the
     * structure (values stay small in it); the header, the whole data set, is parsed at the
     * end. */
    mt_ds_reader_opts_t o = {.ts = ts, .max_buffered_value = 4096, .cb = on_event, .user = s};
    if (!ts->deflated) {
        o.max_buffered_value = max;
        o.stream_pixel_data = true;
        s->build = mt_ds_builder_new(ts);
    }
    s->reader = mt_ds_reader_new(&o);
    if (!s->reader) {
        mt_deid_stream_free(s);
        return NULL;
    }
    return s;
}

void mt_deid_stream_free(mt_deid_stream_t *s)
{
    if (!s)
        return;
    mt_ds_reader_free(s->reader);
    mt_ds_builder_free(s->build);
    mt_buf_dispose(&s->hdr);
    mt_ds_free(s->header);
    mt_free(s);
}

static int failed(mt_deid_stream_t *s, int rc)
{
    s->st = ST_FAILED;
    s->err = rc;
    mt_buf_dispose(&s->hdr);
    return rc;
}

static int emit(mt_deid_stream_t *s, const uint8_t *p, size_t n, int *hint)
{
    if (!n)
        return 0;
    int rc = s->emit(s->user, p, n);
    if (rc < 0)
        return rc;
    if (rc > *hint)
        *hint = rc;
    return 0;
}

/* The header's tree: built from the reader's events, or (deflated) parsed from hdr[0, len). */
static int header_tree(mt_deid_stream_t *s, size_t len, mt_ds_t **ds)
{
    if (s->build) {
        *ds = mt_ds_builder_take(s->build);
        return *ds ? 0 : MT_EMALFORMED;
    }
    mt_diag_t diag = {0, NULL};
    int rc = mt_ds_parse(s->hdr.data, len, s->ts, ds, &diag);
    return rc == MT_EAGAIN ? MT_EMALFORMED : rc;
}

/* De-identify and emit the header, hdr[0, len). */
static int process_header(mt_deid_stream_t *s, size_t len, int *hint)
{
    mt_ds_t *ds = NULL;
    int rc = header_tree(s, len, &ds);
    if (rc)
        return rc;
    rc = mt_deid_apply(s->p, s->key, s->key_len, ds, &s->res);
    if (rc == MT_EREJECTED && s->p->burned_in == MT_DEID_BURNED_IN_QUARANTINE) {
        s->quarantined = true;
        rc = mt_deid_apply_quarantined(s->p, s->key, s->key_len, ds, &s->res);
    }
    if (rc) {
        mt_ds_free(ds);
        return rc;
    }
    mt_buf_t out;
    mt_buf_init(&out, (size_t)1 << 31);
    /* de-identified headers are seldom larger than the original: one allocation, not a chain
     * of doublings from 256 bytes */
    rc = mt_buf_reserve(&out, len + 1024);
    if (!rc)
        rc = mt_ds_encode(ds, s->out_ts, &out);
    if (!rc)
        rc = emit(s, out.data, out.len, hint);
    mt_buf_dispose(&out);
    if (rc) {
        mt_ds_free(ds);
        return rc;
    }
    s->header = ds;
    return 0;
}

/* Route raw bytes [off, off + n) of the stream, the chunk just fed, in BULK or TAIL. */
static int route_bulk(mt_deid_stream_t *s, const uint8_t *p, size_t n, uint64_t off, int *hint)
{
    if (s->st != ST_BULK)
        return 0;
    size_t k = n;
    if (s->bulk.end_known) {
        if (s->bulk.end <= off)
            k = 0;
        else if (s->bulk.end - off < n)
            k = (size_t)(s->bulk.end - off);
    }
    int rc = emit(s, p, k, hint);
    if (rc)
        return rc;
    if (s->bulk.end_known && off + n >= s->bulk.end)
        s->st = ST_TAIL;
    return 0;
}

int mt_deid_stream_feed(mt_deid_stream_t *s, const uint8_t *p, size_t n)
{
    if (s->st == ST_FAILED)
        return s->err;
    int hint = 0, rc;
    uint64_t off = s->in_off;
    if ((rc = mt_ds_reader_feed(s->reader, p, n)))
        return failed(s, rc);
    s->in_off += n;
    if (s->st != ST_HEADER) {
        rc = route_bulk(s, p, n, off, &hint);
        return rc ? failed(s, rc) : hint;
    }
    if (!s->bulk.found) {
        if ((rc = mt_buf_append(&s->hdr, p, n)))
            return failed(s, rc == MT_ETOOBIG || rc == MT_ENOMEM ? MT_ETOOBIG : rc);
        return 0;
    }
    /* Pixel Data has started: its element header was complete in this chunk. The header
     * bytes before it are hdr + the start of this chunk; bytes of the Pixel Data element that
     * arrived in earlier chunks (a header split across chunks, a small value read whole) are
     * already in hdr past `split` and go out first. */
    size_t in_hdr = s->bulk.start >= off ? (size_t)(s->bulk.start - off) : 0;
    if (in_hdr > n)
        in_hdr = n;
    if ((rc = mt_buf_append(&s->hdr, p, in_hdr)))
        return failed(s, rc == MT_ETOOBIG || rc == MT_ENOMEM ? MT_ETOOBIG : rc);
    if (s->bulk.start > s->hdr.len)
        return failed(s, MT_EMALFORMED); /* the reader reports elements in stream order */
    if ((rc = process_header(s, (size_t)s->bulk.start, &hint)))
        return failed(s, rc);
    s->st = ST_BULK;
    rc = route_bulk(s, s->hdr.data + s->bulk.start, s->hdr.len - (size_t)s->bulk.start,
                    s->bulk.start, &hint);
    mt_buf_dispose(&s->hdr);
    if (!rc)
        rc = route_bulk(s, p + in_hdr, n - in_hdr, off + in_hdr, &hint);
    return rc ? failed(s, rc) : hint;
}

int mt_deid_stream_finish(mt_deid_stream_t *s)
{
    if (s->st == ST_FAILED)
        return s->err;
    int hint = 0, rc;
    if ((rc = mt_ds_reader_finish(s->reader)))
        return failed(s, rc);
    if (s->st == ST_HEADER) {
        if ((rc = process_header(s, s->hdr.len, &hint)))
            return failed(s, rc);
        mt_buf_dispose(&s->hdr);
        s->st = ST_TAIL;
    }
    return hint;
}

const mt_ds_t *mt_deid_stream_header(const mt_deid_stream_t *s)
{
    return s->header;
}

bool mt_deid_stream_quarantined(const mt_deid_stream_t *s)
{
    return s->quarantined;
}

const mt_deid_result_t *mt_deid_stream_result(const mt_deid_stream_t *s)
{
    return &s->res;
}

const mt_ts_t *mt_deid_stream_out_ts(const mt_ts_t *ts)
{
    return ts && ts->deflated ? mt_ts_explicit_le : ts;
}

int mt_deid_stream_meta(const mt_deid_profile_t *p, const uint8_t *key, size_t key_len,
                        mt_meta_t *meta)
{
    char uid[sizeof(meta->sop_instance_uid)];
    int rc = mt_deid_sop_instance_uid(p, key, key_len, meta->sop_instance_uid, uid, sizeof(uid));
    if (rc)
        return rc;
    memcpy(meta->sop_instance_uid, uid, sizeof(uid));
    const mt_ts_t *ts = mt_ts_find(meta->transfer_syntax_uid);
    if (ts && ts->deflated)
        snprintf(meta->transfer_syntax_uid, sizeof(meta->transfer_syntax_uid), "%s",
                 mt_ts_explicit_le->uid);
    meta->source_ae[0] = '\0';
    return 0;
}
