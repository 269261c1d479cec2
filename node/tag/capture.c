/*
 * capture.c - the tagger's part of an incoming instance: its header bytes and where the
 * elements the extractor reads lie in them (capture.h). PURE.
 */
#include "capture.h"

#include <string.h>

#include "../dicom/ds_int.h"
#include "../util/alloc.h"
#include "../util/bytes.h"
#include "../util/err.h"

void mt_tag_capture_init(mt_tag_capture_t *c, const mt_ts_t *ts, bool off)
{
    mt_buf_init(&c->buf, MT_TAG_CAPTURE_MAX);
    c->end = UINT64_MAX;
    c->ts = ts;
    c->off = off || !ts || ts->deflated;
    c->reparse = false;
    c->want_prev = 0;
    c->want_at = 0;
    c->n_slot = 0;
}

void mt_tag_capture_dispose(mt_tag_capture_t *c)
{
    mt_buf_dispose(&c->buf);
    c->off = true;
}

bool mt_tag_capture_on(const mt_tag_capture_t *c)
{
    return !c->off;
}

void mt_tag_capture_move(mt_tag_capture_t *to, mt_tag_capture_t *from)
{
    memcpy(to, from, offsetof(mt_tag_capture_t, slot) + from->n_slot * sizeof from->slot[0]);
    from->buf.data = NULL;
    from->buf.len = from->buf.cap = 0;
    from->off = true;
}

void mt_tag_capture_event(mt_tag_capture_t *c, mt_ds_event_t ev, const mt_elem_t *e)
{
    if (c->off || c->reparse || e->depth != 0 || c->end != UINT64_MAX)
        return; /* inside sequences: only a kept one matters, and it makes this a reparse */
    if (ev != MT_DS_EV_ELEMENT && ev != MT_DS_EV_SEQ_START)
        return;
    if (e->tag == MT_TAG_PIXEL_DATA && ev == MT_DS_EV_ELEMENT) {
        c->end = e->offset; /* the header ends here */
        return;
    }
    if (!mt_tag_wanted_next(e->tag, &c->want_prev, &c->want_at))
        return;
    mt_tag_slot_t *last = c->n_slot ? &c->slot[c->n_slot - 1] : NULL;
    if (ev == MT_DS_EV_SEQ_START || e->len == MT_UNDEFINED_LENGTH ||
        c->n_slot == MT_TAG_CAPTURE_SLOTS || (last && last->tag >= e->tag) ||
        e->offset > UINT32_MAX - 12) {
        c->reparse = true;
        return;
    }
    c->slot[c->n_slot++] = (mt_tag_slot_t){e->tag, e->vr, e->len, (uint32_t)e->offset};
}

void mt_tag_capture_feed(mt_tag_capture_t *c, const uint8_t *p, size_t n)
{
    uint64_t at = c->buf.len; /* offset of p in the data set while capturing */
    if (c->off || !n || at >= c->end)
        return;
    size_t take = c->end - at < n ? (size_t)(c->end - at) : n;
    if (mt_buf_append(&c->buf, p, take) != 0)
        mt_tag_capture_dispose(c); /* larger than the capture limit: not tagged */
}

/* Where the value of the element at s lies in the captured bytes, the way the reader read its
 * header (PS3.5 §7.1): 8 bytes in implicit VR and for explicit VRs with a 2-byte length, 12 for
 * those with 2 reserved bytes and a 4-byte length. False (reparse) when it is not the element
 * the reader reported, or its VR bytes are not a VR. */
static bool value_at(const mt_tag_capture_t *c, size_t len, const mt_tag_slot_t *s, size_t *at)
{
    const uint8_t *h = c->buf.data + s->off;
    if (s->off > len || len - s->off < 8)
        return false;
    bool be = c->ts->big_endian;
    if (MT_TAG(mt_rd16(h, be), mt_rd16(h + 2, be)) != s->tag)
        return false;
    uint16_t vr = MT_VR(h[4], h[5]);
    if (c->ts->explicit_vr && !mt__vr_valid(vr))
        return false;
    size_t hl = c->ts->explicit_vr && mt__vr_long(vr) ? 12 : 8;
    *at = s->off + hl;
    return *at <= len && s->len <= len - *at;
}

/* The tree of the slots, values in the captured bytes; NULL when one is not where expected. */
static mt_ds_t *slot_tree(const mt_tag_capture_t *c, size_t len)
{
    mt_ds_t *ds = mt_ds_new_borrowed(c->ts->big_endian, c->n_slot);
    for (unsigned i = 0; i < c->n_slot; i++) {
        const mt_tag_slot_t *s = &c->slot[i];
        size_t at;
        if (!value_at(c, len, s, &at) ||
            mt_ds_borrow_append(ds, s->tag, s->vr, c->buf.data + at, s->len) != 0) {
            mt_ds_free(ds);
            return NULL;
        }
    }
    return ds;
}

int mt_tag_capture_extract(mt_tag_capture_t *c, mt_tag_inst_t *out)
{
    int rc = MT_ENOENT;
    size_t len = c->end < c->buf.len ? (size_t)c->end : c->buf.len;
    mt_tag_inst_init(out);
    if (!c->off && len) {
        mt_ds_t *ds = c->reparse ? NULL : slot_tree(c, len);
        if (!ds) {
            mt_diag_t diag = {0, NULL};
            rc = mt_ds_parse_filtered(c->buf.data, len, c->ts, mt_tag_wanted, NULL, &ds, &diag);
        } else {
            rc = 0;
        }
        if (rc == 0)
            rc = mt_tag_extract(ds, c->ts->big_endian, out);
        mt_ds_free(ds);
    }
    mt_tag_capture_dispose(c);
    return rc;
}
