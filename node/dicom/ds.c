/*
 * ds.c - the in-memory data set tree (mt_ds_t) and mt_ds_parse, which builds one from the
 * streaming reader's events (ds_read.c). Also the VR facts of PS3.5 Table 6.2-1 used by the
 * reader and the encoder (ds_int.h). PURE.
 *
 * A data set is an array of elements sorted by tag (binary search; parsing appends, so building
 * is linear for well-ordered input). An element owns its value (exactly len bytes, as read:
 * odd lengths and padding are kept, so encoding reproduces the input), its items (SQ: each an
 * mt_ds_t) or its fragments (encapsulated Pixel Data). Each mt_ds_t records the byte order of the
 * binary values it holds (that of the transfer syntax it was parsed from; items of a UN sequence
 * are little endian) and, for an item, whether it had an undefined length: this is what lets
 * mt_ds_encode reproduce the bytes (ds_write.c). A sequence element's len is
 * MT_UNDEFINED_LENGTH when it was so encoded; any other len means "defined", recomputed on
 * encoding.
 *
 * Callers (deid/engine.c) may replace an SQ element's items array directly: it is mt_malloc'd
 * and freed with mt_free, each item with mt_ds_free.
 */
#include "ds.h"

#include <string.h>

#include "../util/alloc.h"
#include "../util/bytes.h"
#include "../util/err.h"
#include "ds_int.h"

/* ---- VRs (PS3.5 Table 6.2-1): the table behind ds_int.h's mt__vr_* ---- */
#define VR_ROW(a, b, u, l) [MT__VR_SLOT(a, b)] = {(u), (l)}
const mt__vr_info_t mt__vr_table[26 * 26] = {
    VR_ROW('A', 'E', 1, false), VR_ROW('A', 'S', 1, false), VR_ROW('A', 'T', 2, false),
    VR_ROW('C', 'S', 1, false), VR_ROW('D', 'A', 1, false), VR_ROW('D', 'S', 1, false),
    VR_ROW('D', 'T', 1, false), VR_ROW('F', 'D', 8, false), VR_ROW('F', 'L', 4, false),
    VR_ROW('I', 'S', 1, false), VR_ROW('L', 'O', 1, false), VR_ROW('L', 'T', 1, false),
    VR_ROW('O', 'B', 1, true), VR_ROW('O', 'D', 8, true), VR_ROW('O', 'F', 4, true),
    VR_ROW('O', 'L', 4, true), VR_ROW('O', 'V', 8, true), VR_ROW('O', 'W', 2, true),
    VR_ROW('P', 'N', 1, false), VR_ROW('S', 'H', 1, false), VR_ROW('S', 'L', 4, false),
    VR_ROW('S', 'Q', 1, true), VR_ROW('S', 'S', 2, false), VR_ROW('S', 'T', 1, false),
    VR_ROW('S', 'V', 8, true), VR_ROW('T', 'M', 1, false), VR_ROW('U', 'C', 1, true),
    VR_ROW('U', 'I', 1, false), VR_ROW('U', 'L', 4, false), VR_ROW('U', 'N', 1, true),
    VR_ROW('U', 'R', 1, true), VR_ROW('U', 'S', 2, false), VR_ROW('U', 'T', 1, true),
    VR_ROW('U', 'V', 8, true),
};

/* ---- the tree ---- */
mt_ds_t *mt_ds_new(void)
{
    return mt_calloc(1, sizeof(mt_ds_t));
}

void mt__ds_elem_clear(mt_ds_elem_t *e)
{
    mt_free(e->value);
    e->value = NULL;
    for (size_t i = 0; i < e->n_items; i++)
        mt_ds_free(e->items[i]);
    mt_free(e->items);
    e->items = NULL;
    e->n_items = 0;
    for (size_t i = 0; i < e->n_frags; i++)
        mt_free(e->frags[i]);
    mt_free(e->frags);
    mt_free(e->frag_lens);
    e->frags = NULL;
    e->frag_lens = NULL;
    e->n_frags = 0;
    e->encapsulated = false;
    e->from_un = false;
}

void mt_ds_free(mt_ds_t *ds)
{
    if (!ds)
        return;
    for (size_t i = 0; i < ds->n; i++) {
        mt_ds_elem_t *e = &ds->elems[i];
        if (ds->borrowed) {
            e->value = NULL; /* the parsed buffer's, not ours */
            if (!e->items && !e->frags)
                continue; /* nothing of ours either */
        }
        mt__ds_elem_clear(e);
    }
    mt_free(ds->elems);
    mt_free(ds);
}

/* Index of tag, or of where it would go (*found false). */
static size_t find(const mt_ds_t *ds, uint32_t tag, bool *found)
{
    size_t lo = 0, hi = ds->n;
    if (hi && ds->elems[hi - 1].tag < tag) { /* appending: the common case while parsing */
        *found = false;
        return hi;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ds->elems[mid].tag == tag) {
            *found = true;
            return mid;
        }
        if (ds->elems[mid].tag < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

mt_ds_elem_t *mt__ds_slot(mt_ds_t *ds, uint32_t tag, bool clear)
{
    bool found;
    size_t i = find(ds, tag, &found);
    if (found) {
        if (clear)
            mt__ds_elem_clear(&ds->elems[i]);
        return &ds->elems[i];
    }
    if (ds->n == ds->cap) {
        ds->cap = ds->cap ? ds->cap * 2 : 16;
        ds->elems = mt_realloc(ds->elems, ds->cap * sizeof *ds->elems);
    }
    memmove(ds->elems + i + 1, ds->elems + i, (ds->n - i) * sizeof *ds->elems);
    ds->n++;
    memset(&ds->elems[i], 0, sizeof ds->elems[i]);
    ds->elems[i].tag = tag;
    return &ds->elems[i];
}

mt_ds_t *mt_ds_new_borrowed(bool big_endian, size_t n)
{
    mt_ds_t *ds = mt_ds_new();
    ds->big_endian = big_endian;
    ds->borrowed = true;
    if (n) {
        ds->elems = mt_malloc(n * sizeof *ds->elems);
        ds->cap = n;
    }
    return ds;
}

int mt_ds_borrow_append(mt_ds_t *ds, uint32_t tag, uint16_t vr, const uint8_t *value,
                        uint32_t len)
{
    if (!ds->borrowed || (ds->n && ds->elems[ds->n - 1].tag >= tag))
        return MT_EINVAL;
    mt_ds_elem_t *e = mt__ds_slot(ds, tag, false); /* appended: a new zeroed slot */
    e->vr = vr;
    e->len = len;
    e->value = len ? (uint8_t *)value : NULL;
    return 0;
}

size_t mt_ds_count(const mt_ds_t *ds)
{
    return ds ? ds->n : 0;
}

mt_ds_elem_t *mt_ds_at(const mt_ds_t *ds, size_t i)
{
    return ds && i < ds->n ? &ds->elems[i] : NULL;
}

mt_ds_elem_t *mt_ds_get(const mt_ds_t *ds, uint32_t tag)
{
    if (!ds)
        return NULL;
    bool found;
    size_t i = find(ds, tag, &found);
    return found ? &ds->elems[i] : NULL;
}

bool mt_ds_get_string(const mt_ds_t *ds, uint32_t tag, char *out, size_t outsz)
{
    const mt_ds_elem_t *e = mt_ds_get(ds, tag);
    if (!e || e->vr == MT__VR_SQ || e->encapsulated || !outsz)
        return false;
    size_t n = e->value ? e->len : 0;
    while (n > 0 && (e->value[n - 1] == ' ' || e->value[n - 1] == '\0'))
        n--;
    if (n >= outsz)
        n = outsz - 1;
    if (n)
        memcpy(out, e->value, n);
    out[n] = '\0';
    return true;
}

bool mt_ds_get_u16(const mt_ds_t *ds, uint32_t tag, uint16_t *out)
{
    const mt_ds_elem_t *e = mt_ds_get(ds, tag);
    if (!e || !e->value || e->len < 2 || e->vr == MT__VR_SQ)
        return false;
    const uint8_t *p = e->value;
    *out = mt_rd16(p, ds->big_endian);
    return true;
}

bool mt_ds_get_u32(const mt_ds_t *ds, uint32_t tag, uint32_t *out)
{
    const mt_ds_elem_t *e = mt_ds_get(ds, tag);
    if (!e || !e->value || e->len < 4 || e->vr == MT__VR_SQ)
        return false;
    const uint8_t *p = e->value;
    *out = mt_rd32(p, ds->big_endian);
    return true;
}

/* PS3.5 §6.2: UI is padded with NUL, other strings with a space; binary values with NUL. */
static uint8_t pad_byte(uint16_t vr)
{
    switch (vr) {
    case MT_VR('U', 'I'):
    case MT_VR('O', 'B'):
    case MT_VR('U', 'N'):
        return 0;
    default:
        return mt__vr_unit(vr) == 1 && mt__vr_known(vr) ? ' ' : 0;
    }
}

int mt_ds_set(mt_ds_t *ds, uint32_t tag, uint16_t vr, const void *value, uint32_t len)
{
    if (!ds || ds->borrowed || MT_TAG_GROUP(tag) == 0xFFFE)
        return MT_EINVAL;
    if (vr == MT__VR_SQ) {
        if (len)
            return MT_EINVAL;
        mt_ds_elem_t *e = mt__ds_slot(ds, tag, true);
        e->vr = vr;
        e->len = 0;
        return 0;
    }
    if (len && !value)
        return MT_EINVAL;
    if (len >= MT_UNDEFINED_LENGTH - 1)
        return MT_ETOOBIG;
    /* No check that a binary value is a whole number of its VR's units: the caller's values
     * are written as given (the reader rejects such lengths in explicit VR input). */
    uint32_t n = len + (len & 1);
    uint8_t *v = NULL;
    if (n) {
        v = mt_try_malloc(n);
        if (!v)
            return MT_ENOMEM;
        memcpy(v, value, len);
        if (len & 1)
            v[len] = pad_byte(vr);
    }
    mt_ds_elem_t *e = mt__ds_slot(ds, tag, true); /* after the copy: value may alias the old */
    e->vr = vr;
    e->len = n;
    e->value = v;
    return 0;
}

int mt_ds_set_string(mt_ds_t *ds, uint32_t tag, uint16_t vr, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n > 0xFFFFFFF0u)
        return MT_ETOOBIG;
    return mt_ds_set(ds, tag, vr, s, (uint32_t)n);
}

int mt_ds_set_u16(mt_ds_t *ds, uint32_t tag, uint16_t v)
{
    uint8_t b[2];
    if (ds && ds->big_endian)
        mt_put_be16(b, v);
    else
        mt_put_le16(b, v);
    return mt_ds_set(ds, tag, MT__VR_US, b, 2);
}

int mt_ds_set_u32(mt_ds_t *ds, uint32_t tag, uint32_t v)
{
    uint8_t b[4];
    if (ds && ds->big_endian)
        mt_put_be32(b, v);
    else
        mt_put_le32(b, v);
    return mt_ds_set(ds, tag, MT__VR_UL, b, 4);
}

bool mt_ds_remove(mt_ds_t *ds, uint32_t tag)
{
    if (!ds || ds->borrowed)
        return false;
    bool found;
    size_t i = find(ds, tag, &found);
    if (!found)
        return false;
    mt__ds_elem_clear(&ds->elems[i]);
    memmove(ds->elems + i, ds->elems + i + 1, (ds->n - i - 1) * sizeof *ds->elems);
    ds->n--;
    return true;
}

/* ---- mt_ds_parse: the tree from reader events ---- */
enum { B_SEQ, B_ITEM, B_ENCAP };

typedef struct bframe {
    int kind;
    mt_ds_elem_t *e; /* B_SEQ, B_ENCAP */
    mt_ds_t *ds;     /* B_ITEM */
    size_t cap;      /* capacity of e->items / e->frags */
} bframe_t;

typedef struct builder {
    mt_ds_t *root;
    bframe_t *stack;
    size_t n, cap;
    mt_ds_keep_fn keep; /* NULL: keep everything */
    void *keep_user;
    unsigned skip; /* > 0: inside a sequence (or encapsulated value) not kept */
    const uint8_t *buf, *buf_end; /* borrowed values lie here */
} builder_t;

/* mt_ds_parse_filtered: events of elements not kept, and everything inside a sequence or an
 * encapsulated value not kept, are dropped here (returns true when dropped). */
static bool skipped(builder_t *b, mt_ds_event_t ev, const mt_elem_t *e)
{
    if (!b->keep)
        return false;
    bool opens = ev == MT_DS_EV_SEQ_START ||
                 (ev == MT_DS_EV_ELEMENT && e->len == MT_UNDEFINED_LENGTH);
    if (b->skip) {
        if (opens)
            b->skip++;
        else if (ev == MT_DS_EV_SEQ_END)
            b->skip--;
        return true;
    }
    if ((ev == MT_DS_EV_ELEMENT || ev == MT_DS_EV_SEQ_START) && !b->keep(b->keep_user, e->tag)) {
        if (opens)
            b->skip = 1;
        return true;
    }
    return false;
}

static void bpush(builder_t *b, bframe_t f)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->stack = mt_realloc(b->stack, b->cap * sizeof *b->stack);
    }
    b->stack[b->n++] = f;
}

static mt_ds_t *bcur(builder_t *b)
{
    for (size_t i = b->n; i-- > 0;)
        if (b->stack[i].kind == B_ITEM)
            return b->stack[i].ds;
    return b->root;
}

/* The element's slot in the current data set; a duplicate tag replaces the earlier one. */
static mt_ds_elem_t *bslot(builder_t *b, uint32_t tag)
{
    mt_ds_t *ds = bcur(b);
    mt_ds_elem_t *x = mt__ds_slot(ds, tag, false);
    if (x->value || x->items || x->frags) { /* a duplicate tag (a new slot is zeroed) */
        if (ds->borrowed)
            x->value = NULL; /* not ours to free */
        mt__ds_elem_clear(x);
    }
    return x;
}

/* Whether a value lies inside the buffer being parsed (addresses compared as integers: the
 * value may point anywhere). */
static bool in_input(const builder_t *b, const mt_elem_t *e)
{
    uintptr_t v = (uintptr_t)e->value, lo = (uintptr_t)b->buf, hi = (uintptr_t)b->buf_end;
    return v >= lo && v <= hi && e->value_len <= hi - v;
}

static uint8_t *copy_value(const mt_elem_t *e)
{
    if (!e->value_len)
        return NULL;
    uint8_t *v = mt_try_malloc(e->value_len);
    if (v)
        memcpy(v, e->value, e->value_len);
    return v;
}

static int on_event(void *user, mt_ds_event_t ev, const mt_elem_t *e)
{
    builder_t *b = user;
    if (skipped(b, ev, e))
        return 0;
    bframe_t *top = b->n ? &b->stack[b->n - 1] : NULL;
    mt_ds_t *ds;
    mt_ds_elem_t *x;
    switch (ev) {
    case MT_DS_EV_ELEMENT:
        x = bslot(b, e->tag);
        x->vr = e->vr;
        x->len = e->len;
        if (e->len == MT_UNDEFINED_LENGTH) {
            x->encapsulated = true;
            bpush(b, (bframe_t){B_ENCAP, x, NULL, 0});
            return 0;
        }
        if (!e->value)
            return MT_EINVAL; /* chunked: mt_ds_parse buffers every value */
        if (b->root->borrowed) { /* e->value points into the caller's buffer */
            if (e->value_len && !in_input(b, e))
                return MT_EINVAL; /* not with one whole feed; never point elsewhere */
            x->value = e->value_len ? (uint8_t *)e->value : NULL;
            return 0;
        }
        x->value = copy_value(e);
        if (e->value_len && !x->value)
            return MT_ENOMEM;
        return 0;
    case MT_DS_EV_SEQ_START:
        x = bslot(b, e->tag);
        x->vr = MT__VR_SQ;
        x->len = e->len;
        x->from_un = e->vr != MT__VR_SQ;
        bpush(b, (bframe_t){B_SEQ, x, NULL, 0});
        return 0;
    case MT_DS_EV_ITEM_START:
        if (!top || top->kind != B_SEQ)
            return MT_EINVAL;
        x = top->e;
        if (x->n_items == top->cap) {
            top->cap = top->cap ? top->cap * 2 : 4;
            x->items = mt_realloc(x->items, top->cap * sizeof *x->items);
        }
        ds = mt_ds_new();
        ds->big_endian = !x->from_un && bcur(b)->big_endian;
        ds->undefined_len = e->len == MT_UNDEFINED_LENGTH;
        ds->borrowed = b->root->borrowed;
        x->items[x->n_items++] = ds;
        bpush(b, (bframe_t){B_ITEM, NULL, ds, 0});
        return 0;
    case MT_DS_EV_ITEM_END:
    case MT_DS_EV_SEQ_END:
        if (!top)
            return MT_EINVAL;
        b->n--;
        return 0;
    case MT_DS_EV_FRAGMENT:
        if (!top || top->kind != B_ENCAP || !e->value)
            return MT_EINVAL;
        x = top->e;
        if (x->n_frags == top->cap) {
            top->cap = top->cap ? top->cap * 2 : 4;
            x->frags = mt_realloc(x->frags, top->cap * sizeof *x->frags);
            x->frag_lens = mt_realloc(x->frag_lens, top->cap * sizeof *x->frag_lens);
        }
        x->frags[x->n_frags] = copy_value(e);
        if (e->value_len && !x->frags[x->n_frags])
            return MT_ENOMEM;
        x->frag_lens[x->n_frags++] = e->len;
        return 0;
    default:
        return MT_EINVAL;
    }
}

/* ---- mt_ds_builder: the same tree from the events of a reader the caller feeds ---- */
struct mt_ds_builder {
    builder_t b;
};

mt_ds_builder_t *mt_ds_builder_new(const mt_ts_t *ts)
{
    if (!ts)
        return NULL;
    mt_ds_builder_t *db = mt_calloc(1, sizeof *db);
    db->b.root = mt_ds_new();
    db->b.root->big_endian = ts->big_endian;
    return db;
}

int mt_ds_builder_event(mt_ds_builder_t *db, mt_ds_event_t ev, const mt_elem_t *e)
{
    if (!db->b.root)
        return MT_EINVAL; /* taken */
    return on_event(&db->b, ev, e);
}

mt_ds_t *mt_ds_builder_take(mt_ds_builder_t *db)
{
    if (db->b.n)
        return NULL; /* inside a sequence, an item or encapsulated fragments */
    mt_ds_t *ds = db->b.root;
    db->b.root = NULL;
    return ds;
}

void mt_ds_builder_free(mt_ds_builder_t *db)
{
    if (!db)
        return;
    mt_ds_free(db->b.root);
    mt_free(db->b.stack);
    mt_free(db);
}

int mt_ds_parse(const uint8_t *buf, size_t len, const mt_ts_t *ts, mt_ds_t **out, mt_diag_t *diag)
{
    return mt_ds_parse_filtered(buf, len, ts, NULL, NULL, out, diag);
}

int mt_ds_parse_filtered(const uint8_t *buf, size_t len, const mt_ts_t *ts, mt_ds_keep_fn keep,
                         void *keep_user, mt_ds_t **out, mt_diag_t *diag)
{
    *out = NULL;
    if (!ts || (!buf && len))
        return MT_EINVAL;
    builder_t b = {mt_ds_new(), NULL, 0, 0, keep, keep_user, 0, buf, buf ? buf + len : NULL};
    b.root->big_endian = ts->big_endian;
    /* filtered: values stay in buf (a whole, single feed: the reader's values point into it;
     * an inflated stream's do not) */
    b.root->borrowed = keep && !ts->deflated;
    mt_ds_reader_opts_t o = {.ts = ts, .max_buffered_value = SIZE_MAX, .cb = on_event, .user = &b};
    mt_ds_reader_t *r = mt_ds_reader_new(&o);
    if (!r) {
        mt_ds_free(b.root);
        return MT_ENOMEM;
    }
    int rc = mt_ds_reader_feed(r, buf, len);
    if (!rc)
        rc = mt_ds_reader_finish(r);
    if (rc && diag)
        *diag = *mt_ds_reader_diag(r);
    mt_ds_reader_free(r);
    mt_free(b.stack);
    if (rc) {
        mt_ds_free(b.root);
        return rc;
    }
    *out = b.root;
    return 0;
}
