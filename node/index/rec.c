/*
 * rec.c - mt_index_rec_t: the index values of one instance, and the key table from keys.def.
 *
 * The ingest path offers every top-level element it parses (mt_index_rec_offer); the record
 * keeps those whose tag is a row of keys.def, converted to text:
 *   - string VRs: split at '\' into values, each trimmed of padding (spaces, NULs) on both sides
 *     (PS3.5 §6.2: leading/trailing spaces are insignificant for these VRs), except LT/ST/UT/UR
 *     which are single-valued text and only lose trailing padding;
 *   - binary numbers (US, SS, UL, SL, FL, FD; in the data set's byte order, big_endian for
 *     Explicit VR Big Endian) become decimal text, values joined by '\'.
 * Values are capped at MT_REC_VALUE_MAX bytes (an index key is never bulk data). A tag listed at
 * several levels (SpecificCharacterSet) is one value in the record, written to each column.
 * Sequence keys (issue 3, seq_keys[] below): the streaming paths also pass every reader event
 * (mt_index_rec_seq_event); a top-level SEQ_START of a sequence key starts a capture that
 * re-encodes the events (items, nested sequences, elements) as Explicit VR Little Endian with
 * undefined lengths into the blob of the key's level, until its SEQ_END; a chunked value,
 * encapsulated data or the MT_INDEX_SEQ_MAX cap drops that sequence whole. The tree path
 * (mt_index_rec_offer_seq) encodes a parsed SQ element with mt_ds_encode. Big endian data sets
 * are not captured (values would need swapping per VR).
 * PURE: no I/O.
 */
#include "index.h"
#include "keys.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../dicom/ds.h"
#include "../util/alloc.h"
#include "../util/buf.h"
#include "../util/bytes.h"

#define MT_REC_VALUE_MAX 1024
#define VALUE_SPACE 4096

static const mt_index_key_t keys[] = {
#define MT_INDEX_KEY(level, g, e, kw, col, kind)                                                   \
    {MT_LEVEL_##level, MT_TAG(g, e), #kw, #col, MT_KIND_##kind},
#include "keys.def"
#undef MT_INDEX_KEY
};
#define N_KEYS (sizeof keys / sizeof keys[0])

/* distinct tags, sorted, each with the rows that list it */
typedef struct tag_slot {
    uint32_t tag;
    uint8_t n_rows;
    uint16_t rows[MT_LEVEL_COUNT];
} tag_slot_t;
static tag_slot_t slots[N_KEYS];
static size_t n_slots;
static pthread_once_t slots_once = PTHREAD_ONCE_INIT;

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void build_slots(void)
{
    uint32_t tags[N_KEYS];
    for (size_t i = 0; i < N_KEYS; i++)
        tags[i] = keys[i].tag;
    qsort(tags, N_KEYS, sizeof tags[0], cmp_u32);
    for (size_t i = 0; i < N_KEYS; i++) {
        if (n_slots && slots[n_slots - 1].tag == tags[i])
            continue;
        tag_slot_t *s = &slots[n_slots++];
        s->tag = tags[i];
        for (size_t k = 0; k < N_KEYS; k++)
            if (keys[k].tag == tags[i] && s->n_rows < MT_LEVEL_COUNT)
                s->rows[s->n_rows++] = (uint16_t)k;
    }
}

static const tag_slot_t *slot_find(uint32_t tag)
{
    pthread_once(&slots_once, build_slots);
    size_t lo = 0, hi = n_slots;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (slots[mid].tag < tag)
            lo = mid + 1;
        else if (slots[mid].tag > tag)
            hi = mid;
        else
            return &slots[mid];
    }
    return NULL;
}

const mt_index_key_t *mt_index_keys(size_t *n)
{
    *n = N_KEYS;
    return keys;
}

const char *mt_index_level_table(mt_index_level_t level)
{
    static const char *const names[MT_LEVEL_COUNT] = {"patients", "studies", "series", "instances"};
    return level < MT_LEVEL_COUNT ? names[level] : NULL;
}

const mt_index_key_t *mt_index_key_find(uint32_t tag, mt_index_level_t level)
{
    const tag_slot_t *s = slot_find(tag);
    if (!s)
        return NULL;
    for (unsigned i = 0; i < s->n_rows; i++)
        if (level == MT_LEVEL_COUNT || keys[s->rows[i]].level == level)
            return &keys[s->rows[i]];
    return NULL;
}

struct mt_index_rec {
    char *values[N_KEYS]; /* by row; rows of one tag share one string (owned by the first) */
    /* Where values live: the first VALUE_SPACE bytes of them in `space` (an instance's ~64 keys
     * take ~2 KB; a value replaced there is not reclaimed), the rest on the heap. One malloc
     * and one free fewer per key than a strndup each. */
    char space[VALUE_SPACE];
    size_t space_used;
    char *rel_path, *ts_uid, *sop_class_uid;
    uint64_t size;
    bool has_checksum, unsynced;
    bool uids_only; /* mt_index_rec_keep_uids_only */
    uint32_t checksum;
    char **projects, **forward; /* routing (issue 6): joined / queued with the instance row */
    size_t n_projects, n_forward;
    char **armed; /* rules on cmr_series armed for the instance (db/007_tag_routes.sql) */
    size_t n_armed;
    /* sequence keys: per-level blobs, and the capture of the sequence being read */
    mt_buf_t seq[MT_LEVEL_COUNT];
    int cap_level;      /* level of the sequence being captured, -1 = none */
    size_t cap_start;   /* where it started in seq[cap_level] */
    bool cap_dropped;   /* too big / not representable: dropped at SEQ_END */
    /* offer()'s working copy of a value, kept from one offer to the next: a fresh buffer per
     * value cost a malloc, a realloc and a free for each of the ~64 keys of an instance */
    mt_buf_t scratch;
};

mt_index_rec_t *mt_index_rec_new(void)
{
    mt_index_rec_t *r = mt_calloc(1, sizeof(mt_index_rec_t));
    for (int l = 0; l < MT_LEVEL_COUNT; l++)
        mt_buf_init(&r->seq[l], MT_INDEX_SEQ_MAX);
    mt_buf_init(&r->scratch, MT_REC_VALUE_MAX);
    r->cap_level = -1;
    return r;
}

static bool in_space(const mt_index_rec_t *r, const char *v)
{
    uintptr_t a = (uintptr_t)v, lo = (uintptr_t)r->space;
    return a >= lo && a < lo + VALUE_SPACE;
}

/* A NUL-terminated copy of n bytes at p, in the record's space while it lasts. */
static char *value_copy(mt_index_rec_t *r, const char *p, size_t n)
{
    if (n + 1 > VALUE_SPACE - r->space_used)
        return mt_strndup(p, n);
    char *v = r->space + r->space_used;
    memcpy(v, p, n);
    v[n] = '\0';
    r->space_used += n + 1;
    return v;
}

static void clear_slot(mt_index_rec_t *r, const tag_slot_t *s)
{
    if (!in_space(r, r->values[s->rows[0]]))
        mt_free(r->values[s->rows[0]]);
    for (unsigned i = 0; i < s->n_rows; i++)
        r->values[s->rows[i]] = NULL;
}

void mt_index_rec_free(mt_index_rec_t *r)
{
    if (!r)
        return;
    pthread_once(&slots_once, build_slots);
    for (size_t i = 0; i < n_slots; i++)
        clear_slot(r, &slots[i]);
    mt_free(r->rel_path);
    mt_free(r->ts_uid);
    mt_free(r->sop_class_uid);
    for (size_t i = 0; i < r->n_projects; i++)
        mt_free(r->projects[i]);
    for (size_t i = 0; i < r->n_forward; i++)
        mt_free(r->forward[i]);
    for (size_t i = 0; i < r->n_armed; i++)
        mt_free(r->armed[i]);
    mt_free(r->projects);
    mt_free(r->forward);
    mt_free(r->armed);
    for (int l = 0; l < MT_LEVEL_COUNT; l++)
        mt_buf_dispose(&r->seq[l]);
    mt_buf_dispose(&r->scratch);
    mt_free(r);
}

static void add_name(char ***v, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*v)[i], name) == 0)
            return;
    *v = mt_realloc(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = mt_strdup(name);
}

void mt_index_rec_add_project(mt_index_rec_t *r, const char *project)
{
    add_name(&r->projects, &r->n_projects, project);
}

void mt_index_rec_add_forward(mt_index_rec_t *r, const char *destination)
{
    add_name(&r->forward, &r->n_forward, destination);
}

void mt_index_rec_add_armed(mt_index_rec_t *r, const char *rule)
{
    add_name(&r->armed, &r->n_armed, rule);
}

size_t mt_index_rec_armed(const mt_index_rec_t *r, const char *const **out)
{
    *out = (const char *const *)r->armed;
    return r->n_armed;
}

size_t mt_index_rec_projects(const mt_index_rec_t *r, const char *const **out)
{
    *out = (const char *const *)r->projects;
    return r->n_projects;
}

size_t mt_index_rec_forwards(const mt_index_rec_t *r, const char *const **out)
{
    *out = (const char *const *)r->forward;
    return r->n_forward;
}

static bool is_pad(char c)
{
    return c == ' ' || c == '\0';
}

/* Append one component of a string value, trimmed as described in the header comment, cut
 * at the value cap. Returns false once the cap is reached (the caller stops there). */
static bool put_component(mt_buf_t *out, const char *p, size_t n, bool trim_leading)
{
    size_t a = 0;
    if (trim_leading)
        while (a < n && is_pad(p[a]))
            a++;
    while (n > a && is_pad(p[n - 1]))
        n--;
    for (size_t i = a; i < n; i++)
        if (p[i] == '\0') /* an embedded NUL would cut the C string: stop at it */
            n = i;
    size_t room = out->limit - out->len;
    bool fits = n - a <= room;
    if (mt_buf_append(out, p + a, fits ? n - a : room) != 0)
        return false;
    return fits;
}

static uint64_t load(const uint8_t *p, size_t n, bool be)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[be ? i : n - 1 - i] << (8 * (n - 1 - i));
    return v;
}

static void put_text(mt_buf_t *out, const char *s)
{
    mt_buf_append(out, s, strlen(s));
}

/* Binary numeric VRs to decimal text; returns false for other VRs. */
static bool put_binary(mt_buf_t *out, uint16_t vr, const uint8_t *v, size_t len, bool be)
{
    size_t w;
    switch (vr) {
    case MT_VR('U', 'S'):
    case MT_VR('S', 'S'):
        w = 2;
        break;
    case MT_VR('U', 'L'):
    case MT_VR('S', 'L'):
    case MT_VR('F', 'L'):
        w = 4;
        break;
    case MT_VR('F', 'D'):
    case MT_VR('U', 'V'):
    case MT_VR('S', 'V'):
        w = 8;
        break;
    default:
        return false;
    }
    char t[40];
    for (size_t off = 0; off + w <= len; off += w) {
        uint64_t raw = load(v + off, w, be);
        switch (vr) {
        case MT_VR('U', 'S'):
        case MT_VR('U', 'L'):
        case MT_VR('U', 'V'):
            snprintf(t, sizeof t, "%llu", (unsigned long long)raw);
            break;
        case MT_VR('S', 'S'):
            snprintf(t, sizeof t, "%d", (int)(int16_t)(uint16_t)raw);
            break;
        case MT_VR('S', 'L'):
            snprintf(t, sizeof t, "%ld", (long)(int32_t)(uint32_t)raw);
            break;
        case MT_VR('S', 'V'):
            snprintf(t, sizeof t, "%lld", (long long)(int64_t)raw);
            break;
        case MT_VR('F', 'L'): {
            uint32_t u = (uint32_t)raw;
            float f;
            memcpy(&f, &u, sizeof f);
            snprintf(t, sizeof t, "%.9g", (double)f);
            break;
        }
        default: {
            double d;
            memcpy(&d, &raw, sizeof d);
            snprintf(t, sizeof t, "%.17g", d);
            break;
        }
        }
        if (off)
            put_text(out, "\\");
        put_text(out, t);
    }
    return true;
}

void mt_index_rec_keep_uids_only(mt_index_rec_t *r)
{
    r->uids_only = true;
}

static bool is_identity_uid(uint32_t tag)
{
    return tag == MT_TAG(0x0008, 0x0016) || tag == MT_TAG(0x0008, 0x0018) ||
           tag == MT_TAG(0x0020, 0x000D) || tag == MT_TAG(0x0020, 0x000E);
}

void mt_index_rec_offer(mt_index_rec_t *r, uint32_t tag, uint16_t vr, const uint8_t *value,
                        size_t len, bool big_endian)
{
    if (r->uids_only && !is_identity_uid(tag))
        return;
    const tag_slot_t *s = slot_find(tag);
    if (!s)
        return;
    if (!value)
        len = 0;
    mt_buf_t *out = &r->scratch;
    mt_buf_reset(out);
    if (!put_binary(out, vr, value, len, big_endian)) {
        const char *p = (const char *)value;
        bool text = vr == MT_VR('L', 'T') || vr == MT_VR('S', 'T') || vr == MT_VR('U', 'T') ||
                    vr == MT_VR('U', 'R');
        if (text) {
            put_component(out, p, len, false);
        } else {
            size_t start = 0;
            for (size_t i = 0; i <= len; i++) {
                if (i == len || p[i] == '\\') {
                    if (start && mt_buf_append(out, "\\", 1) != 0)
                        break;
                    if (!put_component(out, p + start, i - start, true))
                        break;
                    start = i + 1;
                }
            }
        }
    }
    clear_slot(r, s);
    char *v = value_copy(r, out->len ? (const char *)out->data : "", out->len);
    for (unsigned i = 0; i < s->n_rows; i++)
        r->values[s->rows[i]] = v;
}

const char *mt_index_rec_get(const mt_index_rec_t *r, uint32_t tag)
{
    const tag_slot_t *s = slot_find(tag);
    return s ? r->values[s->rows[0]] : NULL;
}

static void set_str(char **dst, const char *s)
{
    mt_free(*dst);
    *dst = s ? mt_strdup(s) : NULL;
}

void mt_index_rec_set_file(mt_index_rec_t *r, const char *rel_path, uint64_t size,
                           const char *ts_uid, const char *sop_class_uid)
{
    set_str(&r->rel_path, rel_path);
    set_str(&r->ts_uid, ts_uid);
    set_str(&r->sop_class_uid, sop_class_uid);
    r->size = size;
}

void mt_index_rec_set_checksum(mt_index_rec_t *r, uint32_t crc32c)
{
    r->has_checksum = true;
    r->checksum = crc32c;
}

void mt_index_rec_set_unsynced(mt_index_rec_t *r, bool unsynced)
{
    r->unsynced = unsynced;
}

const char *mt__index_rec_value(const mt_index_rec_t *r, size_t i)
{
    return i < N_KEYS ? r->values[i] : NULL;
}

void mt__index_rec_file(const mt_index_rec_t *r, mt__index_file_t *out)
{
    out->rel_path = r->rel_path;
    out->ts_uid = r->ts_uid;
    out->sop_class_uid = r->sop_class_uid;
    out->size = r->size;
    out->has_checksum = r->has_checksum;
    out->checksum = r->checksum;
    out->unsynced = r->unsynced;
}

/* ---- sequence keys (issue 3) ---- */

/* The sequence keys of PS3.4 Annex C Tables C.6-1 to C.6-4 (optional keys, returned from the
 * stored value). */
static const struct {
    uint32_t tag;
    mt_index_level_t level;
} seq_keys[] = {
    {MT_TAG(0x0010, 0x0024), MT_LEVEL_PATIENT}, /* IssuerOfPatientIDQualifiersSequence */
    {MT_TAG(0x0010, 0x1002), MT_LEVEL_PATIENT}, /* OtherPatientIDsSequence */
    {MT_TAG(0x0008, 0x0051), MT_LEVEL_STUDY},   /* IssuerOfAccessionNumberSequence */
    {MT_TAG(0x0008, 0x1032), MT_LEVEL_STUDY},   /* ProcedureCodeSequence */
    {MT_TAG(0x0008, 0x1110), MT_LEVEL_STUDY},   /* ReferencedStudySequence */
    {MT_TAG(0x0008, 0x1120), MT_LEVEL_STUDY},   /* ReferencedPatientSequence */
    {MT_TAG(0x0008, 0x1111), MT_LEVEL_SERIES},  /* ReferencedPerformedProcedureStepSequence */
    {MT_TAG(0x0040, 0x0260), MT_LEVEL_SERIES},  /* PerformedProtocolCodeSequence */
    {MT_TAG(0x0040, 0x0275), MT_LEVEL_SERIES},  /* RequestAttributesSequence */
    {MT_TAG(0x0008, 0x3001), MT_LEVEL_INSTANCE}, /* AlternateRepresentationSequence */
    {MT_TAG(0x0040, 0xA043), MT_LEVEL_INSTANCE}, /* ConceptNameCodeSequence */
    {MT_TAG(0x0040, 0xA504), MT_LEVEL_INSTANCE}, /* ContentTemplateSequence */
};

int mt_index_seq_level(uint32_t tag)
{
    for (size_t i = 0; i < sizeof seq_keys / sizeof seq_keys[0]; i++)
        if (seq_keys[i].tag == tag)
            return (int)seq_keys[i].level;
    return -1;
}

static bool long_vr(uint16_t vr)
{
    switch (vr) {
    case MT_VR('O', 'B'): case MT_VR('O', 'D'): case MT_VR('O', 'F'): case MT_VR('O', 'L'):
    case MT_VR('O', 'V'): case MT_VR('O', 'W'): case MT_VR('S', 'Q'): case MT_VR('U', 'C'):
    case MT_VR('U', 'N'): case MT_VR('U', 'R'): case MT_VR('U', 'T'): case MT_VR('S', 'V'):
    case MT_VR('U', 'V'):
        return true;
    default:
        return false;
    }
}

/* Append one element header (Explicit VR Little Endian); vr 0 = item/delimiter tags. */
static bool cap_header(mt_index_rec_t *r, uint32_t tag, uint16_t vr, uint32_t len)
{
    uint8_t h[12];
    size_t n;
    mt_put_le16(h, (uint16_t)(tag >> 16));
    mt_put_le16(h + 2, (uint16_t)tag);
    if (!vr) {
        mt_put_le32(h + 4, len);
        n = 8;
    } else if (long_vr(vr)) {
        h[4] = (uint8_t)(vr >> 8);
        h[5] = (uint8_t)vr;
        h[6] = h[7] = 0;
        mt_put_le32(h + 8, len);
        n = 12;
    } else {
        if (len > 0xFFFF)
            return false;
        h[4] = (uint8_t)(vr >> 8);
        h[5] = (uint8_t)vr;
        mt_put_le16(h + 6, (uint16_t)len);
        n = 8;
    }
    return mt_buf_append(&r->seq[r->cap_level], h, n) == 0;
}

void mt_index_rec_seq_event(mt_index_rec_t *r, mt_ds_event_t ev, const mt_elem_t *e,
                            bool big_endian)
{
    if (big_endian || r->uids_only)
        return; /* big endian: values would need swapping per VR, not captured */
    if (r->cap_level < 0) {
        if (ev != MT_DS_EV_SEQ_START || e->depth != 0)
            return;
        int l = mt_index_seq_level(e->tag);
        if (l < 0)
            return;
        r->cap_level = l;
        r->cap_start = r->seq[l].len;
        r->cap_dropped = !cap_header(r, e->tag, MT_VR('S', 'Q'), MT_UNDEFINED_LENGTH);
        return;
    }
    bool ok = !r->cap_dropped;
    switch (ev) {
    case MT_DS_EV_ELEMENT:
        if (!e->value && e->len && e->len != MT_UNDEFINED_LENGTH) {
            ok = false; /* chunked (large) value: never a key */
            break;
        }
        if (e->len == MT_UNDEFINED_LENGTH) {
            ok = false; /* encapsulated data in an item */
            break;
        }
        ok = ok && cap_header(r, e->tag, e->vr == MT_VR('S', 'Q') ? MT_VR('U', 'N') : e->vr,
                              (uint32_t)e->value_len) &&
             (!e->value_len ||
              mt_buf_append(&r->seq[r->cap_level], e->value, e->value_len) == 0);
        break;
    case MT_DS_EV_VALUE_CHUNK:
    case MT_DS_EV_FRAGMENT:
        ok = false;
        break;
    case MT_DS_EV_SEQ_START:
        ok = ok && cap_header(r, e->tag, MT_VR('S', 'Q'), MT_UNDEFINED_LENGTH);
        break;
    case MT_DS_EV_ITEM_START:
        ok = ok && cap_header(r, MT_TAG(0xFFFE, 0xE000), 0, MT_UNDEFINED_LENGTH);
        break;
    case MT_DS_EV_ITEM_END:
        ok = ok && cap_header(r, MT_TAG(0xFFFE, 0xE00D), 0, 0);
        break;
    case MT_DS_EV_SEQ_END:
        ok = ok && cap_header(r, MT_TAG(0xFFFE, 0xE0DD), 0, 0);
        if (e->depth == 0) {
            if (!ok)
                r->seq[r->cap_level].len = r->cap_start; /* dropped whole */
            r->cap_level = -1;
            r->cap_dropped = false;
            return;
        }
        break;
    }
    if (!ok)
        r->cap_dropped = true;
}

void mt_index_rec_offer_seq(mt_index_rec_t *r, const mt_ds_elem_t *sq, bool big_endian)
{
    if (big_endian || !sq || !sq->items)
        return;
    int l = mt_index_seq_level(sq->tag);
    if (l < 0 || r->cap_level >= 0)
        return;
    mt_ds_t *tmp = mt_ds_new();
    mt_buf_t out;
    mt_buf_init(&out, MT_INDEX_SEQ_MAX);
    if (mt_ds_set(tmp, sq->tag, MT_VR('S', 'Q'), NULL, 0) == 0) {
        mt_ds_elem_t *t = mt_ds_get(tmp, sq->tag);
        t->items = sq->items; /* borrowed for the encoding */
        t->n_items = sq->n_items;
        if (mt_ds_encode(tmp, mt_ts_explicit_le, &out) == 0 &&
            r->seq[l].len + out.len <= r->seq[l].limit)
            (void)mt_buf_append(&r->seq[l], out.data, out.len);
        t->items = NULL;
        t->n_items = 0;
    }
    mt_buf_dispose(&out);
    mt_ds_free(tmp);
}

const uint8_t *mt_index_rec_seq_blob(const mt_index_rec_t *r, int level, size_t *len)
{
    *len = 0;
    if (level < 0 || level >= MT_LEVEL_COUNT || !r->seq[level].len)
        return NULL;
    *len = r->seq[level].len;
    return r->seq[level].data;
}
