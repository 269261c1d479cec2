/*
 * sop.h - the storage SOP classes mitral accepts (PS3.4 Table B.5-1 plus retired ones still
 * met in archives), generated at build time from node/dicom/storage-sop-classes.tsv by
 * scripts/gen-sop-table.py into a table sorted by UID. PURE.
 */
#ifndef MT_DICOM_SOP_H
#define MT_DICOM_SOP_H

#include <stdbool.h>
#include <stddef.h>

#define MT_UID_VERIFICATION "1.2.840.10008.1.1"

typedef struct mt_sop_class {
    const char *uid;
    const char *name;
    bool retired;
} mt_sop_class_t;

/* The storage SOP class with this UID (NUL/space padding tolerated), or NULL. */
const mt_sop_class_t *mt_sop_storage_find(const char *uid);
static inline bool mt_sop_is_storage(const char *uid)
{
    return mt_sop_storage_find(uid) != NULL;
}
/* Every storage SOP class, sorted by UID; *n receives the count. */
const mt_sop_class_t *mt_sop_storage_all(size_t *n);

#endif
