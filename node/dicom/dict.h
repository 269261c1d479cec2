/*
 * dict.h - the DICOM data dictionary, generated at build time (scripts/gen-dict.py) from the
 * dicom.dic that Debian's dcmtk installs. Sorted tables: O(log n) lookup by tag and by keyword.
 * Repeating groups (50xx, 60xx ...) match with their mask. PURE.
 */
#ifndef MT_DICOM_DICT_H
#define MT_DICOM_DICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mt_dict_entry {
    uint32_t tag;
    uint32_t mask;   /* 0xFFFFFFFF, or e.g. 0xFF00FFFF for (60xx,3000) */
    uint16_t vr;     /* MT_VR(...); for multi-VR entries like "US or SS" the first */
    const char *vr_str; /* as in the dictionary, e.g. "OB or OW" -> "ox" style kept verbatim */
    const char *keyword;
    const char *vm;
    bool retired;
} mt_dict_entry_t;

const mt_dict_entry_t *mt_dict_by_tag(uint32_t tag);
const mt_dict_entry_t *mt_dict_by_keyword(const char *keyword);
size_t mt_dict_count(void);

#endif
