/*
 * ds_int.h - internals shared by the data set codec files (ds.c, ds_read.c, ds_write.c,
 * part10.c, dump.c). Not a public header: only node/dicom/ includes it.
 *
 * VR facts from PS3.5 §6.2 and §7.1.2:
 *   mt__vr_known(vr)  one of the VRs PS3.5 Table 6.2-1 defines
 *   mt__vr_long(vr)   explicit VR with 2 reserved bytes and a 4-byte length (OB OD OF OL OV OW
 *                     SQ SV UC UN UR UT UV, and any VR we do not know: PS3.5 §6.2 says a
 *                     receiver treats an unknown VR like UN)
 *   mt__vr_unit(vr)   size of one binary value (2, 4, 8), i.e. the byte-swap unit; 1 for text
 *                     and bytes (OB, UN): no swapping
 */
#ifndef MT_DICOM_DS_INT_H
#define MT_DICOM_DS_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "ds.h"

#define MT__VR_SQ MT_VR('S', 'Q')
#define MT__VR_UN MT_VR('U', 'N')
#define MT__VR_OB MT_VR('O', 'B')
#define MT__VR_OW MT_VR('O', 'W')
#define MT__VR_UI MT_VR('U', 'I')
#define MT__VR_UL MT_VR('U', 'L')
#define MT__VR_US MT_VR('U', 'S')

/* Indexed by the two letters (26 x 26, ds.c): the reader asks for every element it decodes,
 * so these are a load, not a search. */
typedef struct mt__vr_info {
    uint8_t unit; /* 0: not a VR of the table */
    bool is_long;
} mt__vr_info_t;
#define MT__VR_SLOT(a, b) (((a) - 'A') * 26 + ((b) - 'A'))
extern const mt__vr_info_t mt__vr_table[26 * 26];

static inline mt__vr_info_t mt__vr_info(uint16_t vr)
{
    uint8_t a = (uint8_t)(vr >> 8), b = (uint8_t)vr;
    if (a < 'A' || a > 'Z' || b < 'A' || b > 'Z')
        return (mt__vr_info_t){0, true};
    return mt__vr_table[MT__VR_SLOT(a, b)];
}

static inline bool mt__vr_known(uint16_t vr)
{
    return mt__vr_info(vr).unit != 0;
}

/* unknown: like UN (PS3.5 §6.2) */
static inline bool mt__vr_long(uint16_t vr)
{
    mt__vr_info_t v = mt__vr_info(vr);
    return v.unit == 0 || v.is_long;
}

static inline unsigned mt__vr_unit(uint16_t vr)
{
    mt__vr_info_t v = mt__vr_info(vr);
    return v.unit ? v.unit : 1;
}
/* Two upper-case ASCII letters (the only bytes a VR field can hold). Inline: the reader asks
 * for every element header it decodes. */
static inline bool mt__vr_valid(uint16_t vr)
{
    uint8_t a = (uint8_t)(vr >> 8), b = (uint8_t)vr;
    return a >= 'A' && a <= 'Z' && b >= 'A' && b <= 'Z';
}

/* In-memory data set (ds.c). elems sorted by tag. */
struct mt_ds {
    mt_ds_elem_t *elems;
    size_t n, cap;
    bool big_endian;    /* byte order of the binary values held */
    bool undefined_len; /* as an item: was (is to be) encoded with undefined length */
    bool borrowed;      /* values not ours (mt_ds_parse_filtered, mt_ds_new_borrowed): read-only */
};

/* Slot for tag in ds: the existing element (cleared when clear is set) or a new zeroed one
 * inserted in order. */
mt_ds_elem_t *mt__ds_slot(mt_ds_t *ds, uint32_t tag, bool clear);
/* Free what an element owns (value, items, fragments) and zero those fields. */
void mt__ds_elem_clear(mt_ds_elem_t *e);

#endif
