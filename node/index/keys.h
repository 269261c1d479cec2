/*
 * keys.h - the table of indexed attributes, generated from keys.def (X-macro), for the index
 * backends (column lists) and, later, the C-FIND / QIDO query builders (which column answers a
 * tag, how to match it). PURE.
 */
#ifndef MT_INDEX_KEYS_H
#define MT_INDEX_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "index.h"

typedef enum mt_index_level {
    MT_LEVEL_PATIENT,
    MT_LEVEL_STUDY,
    MT_LEVEL_SERIES,
    MT_LEVEL_INSTANCE,
    MT_LEVEL_COUNT
} mt_index_level_t;

typedef enum mt_index_kind {
    MT_KIND_STR,
    MT_KIND_PN,
    MT_KIND_UID,
    MT_KIND_DATE,
    MT_KIND_TIME,
    MT_KIND_DT,
    MT_KIND_INT,
    MT_KIND_FLOAT,
    MT_KIND_MULTI,
} mt_index_kind_t;

typedef struct mt_index_key {
    mt_index_level_t level;
    uint32_t tag;
    const char *keyword;
    const char *column;
    mt_index_kind_t kind;
} mt_index_key_t;

/* The rows of keys.def in file order; *n receives the count. */
const mt_index_key_t *mt_index_keys(size_t *n);
/* Table name of a level: "patients", "studies", "series", "instances". */
const char *mt_index_level_table(mt_index_level_t level);
/* First key row for tag at level (or at any level when level == MT_LEVEL_COUNT), or NULL. */
const mt_index_key_t *mt_index_key_find(uint32_t tag, mt_index_level_t level);

/* ---- internal to the index backends (mt__) ---- */
/* Value kept for key row i (index into mt_index_keys()), or NULL. */
const char *mt__index_rec_value(const mt_index_rec_t *r, size_t i);
typedef struct mt__index_file {
    const char *rel_path, *ts_uid, *sop_class_uid; /* NULL when unset */
    uint64_t size;
    bool has_checksum;
    bool unsynced; /* mt_index_rec_set_unsynced */
    uint32_t checksum;
} mt__index_file_t;
void mt__index_rec_file(const mt_index_rec_t *r, mt__index_file_t *out);

#endif
