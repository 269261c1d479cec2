/*
 * ds_write.c - mt_ds_encode: an mt_ds_t tree to bytes in implicit VR little endian, explicit VR
 * little endian or explicit VR big endian (PS3.5 §7.1, §7.3; Annex A.1-A.3). Encapsulated
 * syntaxes encode like explicit VR little endian, with Pixel Data fragments written as they are
 * held (PS3.5 §A.4). Deflating is the caller's job. PURE.
 *
 * Element header:  implicit      tag(4) len(4)
 *                  explicit      tag(4) VR(2) len(2)             most VRs
 *                                tag(4) VR(2) 00 00 len(4)       OB OD OF OL OV OW SQ SV UC UN
 *                                                                UR UT UV and unknown VRs
 * A value too long for a 2-byte length is written as UN with a 4-byte length (PS3.5 §6.2.2).
 *
 * Sequences and items are written with an undefined length (and their delimiters) when the tree
 * says so (len MT_UNDEFINED_LENGTH, mt_ds_t.undefined_len), else with the length recomputed from
 * the encoded contents (placeholder, then patched). So parse + encode in the same transfer
 * syntax reproduces the input bytes. An SQ with from_un is written as UN, undefined length, and
 * its contents (items, delimiters) in implicit VR little endian whatever the target.
 *
 * Byte order: each mt_ds_t holds its binary values in its own byte order (ds.c); when that
 * differs from the target's, values are swapped per VR unit (AT as two 16-bit halves;
 * mt__vr_unit). OB, UN and fragments are bytes and never swapped.
 */
#include "ds.h"

#include <string.h>

#include "../util/bytes.h"
#include "../util/err.h"
#include "ds_int.h"

#define MAX_NESTING 256

typedef struct enc {
    mt_buf_t *out;
    bool ex, big;
} enc_t;

static int put16(const enc_t *c, uint16_t v)
{
    return c->big ? mt_buf_put_u16be(c->out, v) : mt_buf_put_u16le(c->out, v);
}

static int put32(const enc_t *c, uint32_t v)
{
    return c->big ? mt_buf_put_u32be(c->out, v) : mt_buf_put_u32le(c->out, v);
}

static int put_tag(const enc_t *c, uint32_t tag)
{
    int rc = put16(c, MT_TAG_GROUP(tag));
    return rc ? rc : put16(c, MT_TAG_ELEM(tag));
}

static void patch32(const enc_t *c, size_t at, uint32_t v)
{
    uint8_t *p = c->out->data + at;
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(c->big ? v >> (24 - 8 * i) : v >> (8 * i));
}

static void w16(const enc_t *c, uint8_t *p, uint16_t v)
{
    if (c->big)
        mt_put_be16(p, v);
    else
        mt_put_le16(p, v);
}

static void w32(const enc_t *c, uint8_t *p, uint32_t v)
{
    if (c->big)
        mt_put_be32(p, v);
    else
        mt_put_le32(p, v);
}

/* Header, made on the stack and appended at once (the encoder writes one per element);
 * *len_at receives the offset of the 4-byte length field (for patching) if asked. */
static int put_header(const enc_t *c, uint32_t tag, uint16_t vr, uint32_t len, size_t *len_at)
{
    uint8_t h[12];
    size_t n, at;
    w16(c, h, MT_TAG_GROUP(tag));
    w16(c, h + 2, MT_TAG_ELEM(tag));
    if (!c->ex) {
        at = 4, n = 8;
    } else {
        if (!mt__vr_valid(vr))
            vr = MT__VR_UN;
        if (!mt__vr_long(vr) && len > 0xFFFF)
            vr = MT__VR_UN;
        h[4] = (uint8_t)(vr >> 8), h[5] = (uint8_t)vr;
        if (!mt__vr_long(vr)) {
            w16(c, h + 6, (uint16_t)len);
            return mt_buf_append(c->out, h, 8);
        }
        h[6] = h[7] = 0;
        at = 8, n = 12;
    }
    w32(c, h + at, len);
    if (len_at)
        *len_at = c->out->len + at;
    return mt_buf_append(c->out, h, n);
}

static int put_value(const enc_t *c, const mt_ds_elem_t *e, bool src_big)
{
    size_t n = e->value ? e->len : 0;
    unsigned unit = mt__vr_unit(e->vr);
    if (src_big == c->big || unit == 1 || !n)
        return mt_buf_append(c->out, e->value, n);
    if (e->vr == MT_VR('A', 'T'))
        unit = 2;
    int rc = mt_buf_reserve(c->out, n);
    if (rc)
        return rc;
    uint8_t *d = c->out->data + c->out->len;
    size_t whole = n - n % unit;
    for (size_t i = 0; i < whole; i += unit)
        for (unsigned k = 0; k < unit; k++)
            d[i + k] = e->value[i + unit - 1 - k];
    memcpy(d + whole, e->value + whole, n - whole);
    c->out->len += n;
    return 0;
}

static int enc_ds(const enc_t *c, const mt_ds_t *ds, unsigned depth);

static int enc_seq(const enc_t *c, const mt_ds_elem_t *e, unsigned depth)
{
    bool undef = e->len == MT_UNDEFINED_LENGTH || e->from_un;
    size_t len_at = 0;
    int rc = put_header(c, e->tag, e->from_un ? MT__VR_UN : MT__VR_SQ,
                        undef ? MT_UNDEFINED_LENGTH : 0, &len_at);
    if (rc)
        return rc;
    enc_t ic = *c; /* coding of the contents */
    if (e->from_un)
        ic.ex = false, ic.big = false;
    size_t start = c->out->len;
    for (size_t i = 0; i < e->n_items; i++) {
        const mt_ds_t *it = e->items[i];
        size_t item_len_at = c->out->len + 4;
        if ((rc = put_tag(&ic, MT_TAG_ITEM)) ||
            (rc = put32(&ic, it->undefined_len ? MT_UNDEFINED_LENGTH : 0)))
            return rc;
        size_t item_start = c->out->len;
        if ((rc = enc_ds(&ic, it, depth + 1)))
            return rc;
        if (it->undefined_len) {
            if ((rc = put_tag(&ic, MT_TAG_ITEM_DELIM)) || (rc = put32(&ic, 0)))
                return rc;
        } else {
            size_t n = c->out->len - item_start;
            if (n >= MT_UNDEFINED_LENGTH)
                return MT_ETOOBIG;
            patch32(&ic, item_len_at, (uint32_t)n);
        }
    }
    if (undef) {
        if ((rc = put_tag(&ic, MT_TAG_SEQ_DELIM)) || (rc = put32(&ic, 0)))
            return rc;
        return 0;
    }
    size_t n = c->out->len - start;
    if (n >= MT_UNDEFINED_LENGTH)
        return MT_ETOOBIG;
    patch32(c, len_at, (uint32_t)n);
    return 0;
}

static int enc_encap(const enc_t *c, const mt_ds_elem_t *e)
{
    uint16_t vr = e->vr == MT__VR_OW ? MT__VR_OW : MT__VR_OB;
    int rc = put_header(c, e->tag, vr, MT_UNDEFINED_LENGTH, NULL);
    if (rc)
        return rc;
    for (size_t i = 0; i < e->n_frags; i++) {
        if ((rc = put_tag(c, MT_TAG_ITEM)) || (rc = put32(c, e->frag_lens[i])) ||
            (rc = mt_buf_append(c->out, e->frags[i], e->frags[i] ? e->frag_lens[i] : 0)))
            return rc;
    }
    if ((rc = put_tag(c, MT_TAG_SEQ_DELIM)) || (rc = put32(c, 0)))
        return rc;
    return 0;
}

static int enc_ds(const enc_t *c, const mt_ds_t *ds, unsigned depth)
{
    if (depth > MAX_NESTING)
        return MT_EINVAL;
    for (size_t i = 0; i < ds->n; i++) {
        const mt_ds_elem_t *e = &ds->elems[i];
        int rc;
        if (MT_TAG_GROUP(e->tag) == 0xFFFE)
            return MT_EINVAL;
        if (e->vr == MT__VR_SQ)
            rc = enc_seq(c, e, depth);
        else if (e->encapsulated)
            rc = enc_encap(c, e);
        else if (e->len == MT_UNDEFINED_LENGTH)
            rc = MT_EINVAL;
        else if ((rc = put_header(c, e->tag, e->vr, e->value ? e->len : 0, NULL)) == 0)
            rc = put_value(c, e, ds->big_endian);
        if (rc)
            return rc;
    }
    return 0;
}

int mt_ds_encode(const mt_ds_t *ds, const mt_ts_t *ts, mt_buf_t *out)
{
    if (!ds || !ts || !out || ts->deflated)
        return MT_EINVAL;
    enc_t c = {out, ts->explicit_vr, ts->big_endian};
    size_t mark = out->len;
    int rc = enc_ds(&c, ds, 0);
    if (rc)
        out->len = mark;
    return rc;
}
