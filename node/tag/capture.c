/*
 * capture.c - the tagger's elements of an incoming instance, from the service's own data set
 * reader (capture.h). PURE.
 *
 * Values live in chunks of CHUNK bytes (a value larger than that gets a chunk of its own), so
 * a kept element costs one copy and no allocation of its own; the tree (mt_ds_builder) points
 * into them and is freed before them.
 */
#include "capture.h"

#include <string.h>

#include "../util/alloc.h"
#include "../util/err.h"

#define CHUNK 4000

struct mt_tag_capture_chunk {
    mt_tag_capture_chunk_t *next;
    size_t used, cap;
    uint8_t data[];
};

void mt_tag_capture_init(mt_tag_capture_t *c, const mt_ts_t *ts, bool off)
{
    memset(c, 0, sizeof *c);
    c->off = off || !ts;
    c->big_endian = ts && ts->big_endian;
}

static void release(mt_tag_capture_t *c)
{
    mt_ds_builder_free(c->b); /* the tree first: it points into the chunks */
    c->b = NULL;
    while (c->chunks) {
        mt_tag_capture_chunk_t *next = c->chunks->next;
        mt_free(c->chunks);
        c->chunks = next;
    }
    c->n_bytes = 0;
}

void mt_tag_capture_dispose(mt_tag_capture_t *c)
{
    release(c);
    c->off = true;
}

void mt_tag_capture_stop(mt_tag_capture_t *c)
{
    mt_tag_capture_dispose(c);
}

bool mt_tag_capture_on(const mt_tag_capture_t *c)
{
    return !c->off;
}

void mt_tag_capture_move(mt_tag_capture_t *to, mt_tag_capture_t *from)
{
    *to = *from;
    memset(from, 0, sizeof *from);
    from->off = true;
}

/* The builder's allocator: n bytes for a kept value, NULL past MT_TAG_CAPTURE_MAX. */
static uint8_t *value_alloc(void *user, size_t n)
{
    mt_tag_capture_t *c = user;
    if (n > MT_TAG_CAPTURE_MAX - c->n_bytes)
        return NULL;
    mt_tag_capture_chunk_t *ch = c->chunks;
    if (!ch || ch->cap - ch->used < n) {
        size_t cap = n > CHUNK ? n : CHUNK;
        if (!(ch = mt_try_malloc(sizeof *ch + cap)))
            return NULL;
        ch->used = 0;
        ch->cap = cap;
        ch->next = c->chunks;
        c->chunks = ch;
    }
    uint8_t *p = ch->data + ch->used;
    ch->used += n;
    c->n_bytes += n;
    return p;
}

void mt_tag_capture_event(mt_tag_capture_t *c, mt_ds_event_t ev, const mt_elem_t *e)
{
    if (c->off || c->done)
        return;
    if (e->depth == 0 && e->tag >= MT_TAG_PIXEL_DATA &&
        (ev == MT_DS_EV_ELEMENT || ev == MT_DS_EV_SEQ_START)) {
        c->done = true; /* the header ends here (what the extractor reads lies before it) */
        return;
    }
    if (!c->b)
        c->b = mt_ds_builder_new(c->big_endian, mt_tag_wanted, NULL, value_alloc, c);
    if (mt_ds_builder_event(c->b, ev, e) != 0)
        mt_tag_capture_dispose(c); /* not tagged */
}

int mt_tag_capture_extract(mt_tag_capture_t *c, mt_tag_inst_t *out)
{
    int rc = MT_ENOENT;
    if (!c->off) {
        mt_ds_t *ds = c->b ? mt_ds_builder_take(c->b) : mt_ds_new(); /* no element at all */
        rc = mt_tag_extract(ds, c->big_endian, out);
        mt_ds_free(ds);
    } else {
        mt_tag_inst_init(out);
    }
    mt_tag_capture_dispose(c);
    return rc;
}
