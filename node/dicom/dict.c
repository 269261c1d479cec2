/*
 * dict.c - lookups in the DICOM data dictionary generated at build time by scripts/gen-dict.py
 * from dcmtk's dicom.dic (the generated tables live in <build>/gen/dict_table.c). PURE.
 *
 *   by tag:     binary search of the exact table; then the rules PS3.5 gives for tags no table
 *               lists (group length (gggg,0000) UL; private creator (odd gggg, 0010-00FF) LO;
 *               other odd-group elements are private: NULL); then the repeating-group rows
 *               (50xx, 60xx, 7Fxx, (0020,31xx)) compared under their mask.
 *   by keyword: binary search of an index sorted by keyword (exact rows only).
 */
#include "dict.h"

#include <stddef.h>
#include <string.h>

#include "ds.h"

extern const size_t mt__dict_n_exact, mt__dict_n_repeating;
extern const mt_dict_entry_t mt__dict_exact[], mt__dict_repeating[];
extern const unsigned short mt__dict_by_kw[];

static const mt_dict_entry_t group_length = {
    0x00000000u, 0x0000FFFFu, MT_VR('U', 'L'), "UL", "GroupLength", "1", false};
static const mt_dict_entry_t private_creator = {
    0x00010010u, 0x0001FF00u, MT_VR('L', 'O'), "LO", "PrivateCreator", "1", false};

static const mt_dict_entry_t *find_exact(uint32_t tag)
{
    size_t lo = 0, hi = mt__dict_n_exact;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t t = mt__dict_exact[mid].tag;
        if (t == tag)
            return &mt__dict_exact[mid];
        if (t < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const mt_dict_entry_t *mt_dict_by_tag(uint32_t tag)
{
    const mt_dict_entry_t *e = find_exact(tag);
    if (e)
        return e;
    uint16_t group = MT_TAG_GROUP(tag), elem = MT_TAG_ELEM(tag);
    if (elem == 0x0000)
        return &group_length;
    if (group & 1)
        return (elem >= 0x0010 && elem <= 0x00FF) ? &private_creator : NULL;
    for (size_t i = 0; i < mt__dict_n_repeating; i++)
        if ((tag & mt__dict_repeating[i].mask) == mt__dict_repeating[i].tag)
            return &mt__dict_repeating[i];
    return NULL;
}

const mt_dict_entry_t *mt_dict_by_keyword(const char *keyword)
{
    size_t lo = 0, hi = mt__dict_n_exact;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const mt_dict_entry_t *e = &mt__dict_exact[mt__dict_by_kw[mid]];
        int c = strcmp(e->keyword, keyword);
        if (c == 0)
            return e;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = 0; i < mt__dict_n_repeating; i++)
        if (strcmp(mt__dict_repeating[i].keyword, keyword) == 0)
            return &mt__dict_repeating[i];
    return NULL;
}

size_t mt_dict_count(void)
{
    return mt__dict_n_exact + mt__dict_n_repeating;
}
