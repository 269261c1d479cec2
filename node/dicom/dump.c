/*
 * dump.c - mt_ds_dump: a readable text dump of an mt_ds_t, one element a line, in the manner of
 * dcmdump (used by `mitral dump`). PURE: appends to a buffer.
 *
 *   (0010,0010) PN [Doe^John]                           #   8, 1 PatientName
 *   (0008,1140) SQ (Sequence with undefined length #=1) # u/l, 1 ReferencedImageSequence
 *     (fffe,e000) na (Item with defined length #=2)     # 104, 1 Item
 *       (0008,1150) UI [1.2.840.10008.5.1.4.1.1.4]      #  26, 1 ReferencedSOPClassUID
 *     (fffe,e00d) na (ItemDelimitationItem)             #   0, 0 ItemDelimitationItem
 *   (fffe,e0dd) na (SequenceDelimitationItem)           #   0, 0 SequenceDelimitationItem
 *   (7fe0,0010) OB (PixelSequence #=2)                  # u/l, 1 PixelData
 *     (fffe,e000) pi (no value available)               #   0, 1 Item
 *     (fffe,e000) pi ff\d8\ff\e0...                     # 4242, 1 Item
 *
 * Strings are shown in brackets (control characters as '.', at most 64 characters then "...");
 * binary numbers are decoded in the data set's byte order (at most 16 values); OB/UN/OW as hex
 * (at most 32 bytes / 16 words). The delimiter lines appear only for undefined lengths, as they
 * were (or will be) encoded. Values are PHI: this is for the CLI, never for the log.
 */
#include "ds.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../util/err.h"
#include "dict.h"
#include "ds_int.h"

#define MAX_STR 64
#define MAX_NUMS 16
#define MAX_BYTES 32
#define VALUE_COL 52
#define MAX_NESTING 256

typedef struct line {
    char s[512];
    size_t n;
} line_t;

static void addf(line_t *l, const char *fmt, ...)
{
    if (l->n >= sizeof l->s - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(l->s + l->n, sizeof l->s - l->n, fmt, ap);
    va_end(ap);
    if (k > 0)
        l->n += (size_t)k < sizeof l->s - l->n ? (size_t)k : sizeof l->s - l->n - 1;
}

static uint64_t rdn(const uint8_t *p, unsigned n, bool big)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[big ? i : n - 1 - i] << (8 * (n - 1 - i));
    return v;
}

static void value_text(line_t *l, const mt_ds_elem_t *e, bool big, unsigned *vm)
{
    size_t n = e->value ? e->len : 0;
    const uint8_t *v = e->value;
    *vm = 0;
    if (!n) {
        addf(l, "(no value available)");
        return;
    }
    uint16_t vr = e->vr;
    unsigned unit = vr == MT_VR('A', 'T') ? 4 : mt__vr_unit(vr); /* AT: a pair of US */
    if (vr == MT_VR('O', 'B') || vr == MT__VR_UN || !mt__vr_known(vr)) {
        for (size_t i = 0; i < n && i < MAX_BYTES; i++)
            addf(l, "%s%02x", i ? "\\" : "", v[i]);
        if (n > MAX_BYTES)
            addf(l, "...");
        *vm = 1;
        return;
    }
    if (vr == MT__VR_OW) {
        for (size_t i = 0; i + 1 < n && i / 2 < MAX_BYTES / 2; i += 2)
            addf(l, "%s%04x", i ? "\\" : "", (unsigned)rdn(v + i, 2, big));
        if (n > MAX_BYTES)
            addf(l, "...");
        *vm = 1;
        return;
    }
    if (unit > 1) {
        size_t count = n / unit;
        *vm = (unsigned)count;
        for (size_t i = 0; i < count && i < MAX_NUMS; i++) {
            const uint8_t *p = v + i * unit;
            uint64_t x = rdn(p, unit, big);
            if (i)
                addf(l, "\\");
            switch (vr) {
            case MT_VR('A', 'T'):
                addf(l, "(%04x,%04x)", (unsigned)rdn(p, 2, big), (unsigned)rdn(p + 2, 2, big));
                break;
            case MT_VR('S', 'S'):
                addf(l, "%d", (int16_t)x);
                break;
            case MT_VR('S', 'L'):
                addf(l, "%" PRId32, (int32_t)x);
                break;
            case MT_VR('S', 'V'):
                addf(l, "%" PRId64, (int64_t)x);
                break;
            case MT_VR('F', 'L'):
            case MT_VR('O', 'F'): {
                float f;
                uint32_t u = (uint32_t)x;
                memcpy(&f, &u, 4);
                addf(l, "%g", (double)f);
                break;
            }
            case MT_VR('F', 'D'):
            case MT_VR('O', 'D'): {
                double d;
                memcpy(&d, &x, 8);
                addf(l, "%g", d);
                break;
            }
            default:
                addf(l, "%" PRIu64, x);
                break;
            }
        }
        if (count > MAX_NUMS)
            addf(l, "...");
        return;
    }
    /* text */
    *vm = 1;
    addf(l, "[");
    size_t k = n;
    while (k > 0 && (v[k - 1] == '\0' || (v[k - 1] == ' ' && vr != MT_VR('L', 'T'))))
        k--;
    for (size_t i = 0; i < k; i++)
        if (v[i] == '\\')
            (*vm)++;
    char s[MAX_STR + 1];
    size_t m = k < MAX_STR ? k : MAX_STR;
    for (size_t i = 0; i < m; i++)
        s[i] = v[i] < 0x20 || v[i] == 0x7F ? '.' : (char)v[i];
    s[m] = '\0';
    addf(l, "%s]%s", s, k > MAX_STR ? "..." : "");
}

static int emit(mt_buf_t *out, line_t *l, uint32_t len, bool undef, unsigned vm, const char *kw)
{
    while (l->n < VALUE_COL && l->n < sizeof l->s - 1)
        l->s[l->n++] = ' ';
    if (undef)
        addf(l, " # u/l, %u %s\n", vm, kw);
    else
        addf(l, " # %3" PRIu32 ", %u %s\n", len, vm, kw);
    return mt_buf_append(out, l->s, l->n);
}

static const char *keyword(uint32_t tag)
{
    const mt_dict_entry_t *d = mt_dict_by_tag(tag);
    if (d && d->keyword)
        return d->keyword;
    if (MT_TAG_GROUP(tag) & 1)
        return "PrivateTag";
    return "UnknownTag";
}

static void start(line_t *l, unsigned depth, uint32_t tag, const char *vr)
{
    l->n = 0;
    l->s[0] = '\0';
    for (unsigned i = 0; i < depth && i < 40; i++)
        addf(l, "  ");
    addf(l, "(%04x,%04x) %s ", MT_TAG_GROUP(tag), MT_TAG_ELEM(tag), vr);
}

static int dump_ds(const mt_ds_t *ds, mt_buf_t *out, unsigned depth)
{
    line_t l;
    int rc;
    if (depth > MAX_NESTING)
        return MT_EINVAL;
    for (size_t i = 0; i < ds->n; i++) {
        const mt_ds_elem_t *e = &ds->elems[i];
        char vr[3] = {(char)(e->vr >> 8), (char)e->vr, 0};
        if (!mt__vr_valid(e->vr))
            strcpy(vr, "??");
        if (e->vr == MT__VR_SQ) {
            bool undef = e->len == MT_UNDEFINED_LENGTH || e->from_un;
            start(&l, depth, e->tag, e->from_un ? "UN" : "SQ");
            addf(&l, "(Sequence with %s length #=%zu)", undef ? "undefined" : "defined",
                 e->n_items);
            if ((rc = emit(out, &l, 0, true, 1, keyword(e->tag))))
                return rc;
            for (size_t k = 0; k < e->n_items; k++) {
                const mt_ds_t *it = e->items[k];
                start(&l, depth + 1, MT_TAG_ITEM, "na");
                addf(&l, "(Item with %s length #=%zu)", it->undefined_len ? "undefined" : "defined",
                     it->n);
                if ((rc = emit(out, &l, 0, true, 1, "Item")) || (rc = dump_ds(it, out, depth + 2)))
                    return rc;
                if (it->undefined_len) {
                    start(&l, depth + 1, MT_TAG_ITEM_DELIM, "na");
                    addf(&l, "(ItemDelimitationItem)");
                    if ((rc = emit(out, &l, 0, false, 0, "ItemDelimitationItem")))
                        return rc;
                }
            }
            if (undef) {
                start(&l, depth, MT_TAG_SEQ_DELIM, "na");
                addf(&l, "(SequenceDelimitationItem)");
                if ((rc = emit(out, &l, 0, false, 0, "SequenceDelimitationItem")))
                    return rc;
            }
            continue;
        }
        if (e->encapsulated) {
            start(&l, depth, e->tag, vr);
            addf(&l, "(PixelSequence #=%zu)", e->n_frags);
            if ((rc = emit(out, &l, 0, true, 1, keyword(e->tag))))
                return rc;
            for (size_t k = 0; k < e->n_frags; k++) {
                mt_ds_elem_t f = {.tag = MT_TAG_ITEM,
                                  .vr = MT__VR_OB,
                                  .len = e->frag_lens[k],
                                  .value = e->frags[k]};
                unsigned vm;
                start(&l, depth + 1, MT_TAG_ITEM, "pi");
                value_text(&l, &f, false, &vm);
                if ((rc = emit(out, &l, f.len, false, 1, "Item")))
                    return rc;
            }
            start(&l, depth, MT_TAG_SEQ_DELIM, "na");
            addf(&l, "(SequenceDelimitationItem)");
            if ((rc = emit(out, &l, 0, false, 0, "SequenceDelimitationItem")))
                return rc;
            continue;
        }
        unsigned vm;
        start(&l, depth, e->tag, vr);
        value_text(&l, e, ds->big_endian, &vm);
        if ((rc = emit(out, &l, e->len, false, vm, keyword(e->tag))))
            return rc;
    }
    return 0;
}

int mt_ds_dump(const mt_ds_t *ds, mt_buf_t *out)
{
    if (!ds || !out)
        return MT_EINVAL;
    return dump_ds(ds, out, 0);
}
