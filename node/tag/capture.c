/*
 * capture.c - the original header of an incoming instance for the CMR tagger (capture.h). PURE.
 */
#include "capture.h"

void mt_tag_capture_init(mt_tag_capture_t *c, bool off)
{
    mt_buf_init(&c->buf, MT_TAG_CAPTURE_MAX);
    c->end = UINT64_MAX;
    c->off = off;
}

void mt_tag_capture_dispose(mt_tag_capture_t *c)
{
    mt_buf_dispose(&c->buf);
}

void mt_tag_capture_pixel_at(mt_tag_capture_t *c, uint64_t offset)
{
    if (c->end == UINT64_MAX)
        c->end = offset;
}

void mt_tag_capture_feed(mt_tag_capture_t *c, const uint8_t *p, size_t n)
{
    uint64_t at = c->buf.len; /* offset of p in the data set while capturing */
    if (c->off || !n || at >= c->end)
        return;
    size_t take = c->end - at < n ? (size_t)(c->end - at) : n;
    if (mt_buf_append(&c->buf, p, take) != 0) {
        c->off = true; /* larger than the capture limit: not tagged */
        mt_buf_dispose(&c->buf);
    }
}

uint8_t *mt_tag_capture_take(mt_tag_capture_t *c, size_t *len)
{
    if (c->off || !c->buf.len)
        return NULL;
    *len = c->end < c->buf.len ? (size_t)c->end : c->buf.len;
    uint8_t *p = c->buf.data;
    c->buf.data = NULL;
    c->buf.len = c->buf.cap = 0;
    return p;
}
