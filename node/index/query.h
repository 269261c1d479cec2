/*
 * query.h - the query layer: an identifier (C-FIND / C-MOVE / C-GET data set, a QIDO-RS query
 * string later, or the CLI's 'StudyDate>=20200101 Modality=MR') becomes an mt_query_t (what
 * to match and what to return, level by level), then SQL with bound parameters over the index
 * tables (query_sql.c), then rows (query_exec.c, SQLite).
 *
 *   identifier --mt_query_from_ds / mt_query_from_text--> mt_query_t     (query.c, PURE)
 *   mt_query_t + scope --mt_query_sql--> SQL text + parameters            (query_sql.c, PURE)
 *   mt_qdb_find       rows -> response data sets (C-FIND, QIDO-RS JSON later)   (query_exec.c)
 *   mt_qdb_instances  the instances an identifier selects (C-MOVE, C-GET)
 *   mt_qdb_study_uids the studies a query selects (mitral project add --query)
 *
 * Matching (PS3.4 C.2.2.2), per key of the identifier:
 *   universal   zero length (or a lone "*"): no condition, the key is returned
 *   single      exact value; PN case-insensitive (ASCII and Latin-1 letters) by component
 *               group: each non-empty group of the query value must match the same group of
 *               the stored value ("Yamada^Tarou" matches the alphabetic group of
 *               "Yamada^Tarou=山田^太郎")
 *   wildcard    '*' (any run) and '?' (one character, UTF-8 aware); not for UI, DA, TM, DT
 *               (there they are literal characters of a single value: MT_QF_EXACT)
 *   range       DA, TM, DT: "lo-hi", "lo-", "-hi"; TM/DT bounds are prefixes ("1000" includes
 *               10:00:59); DA bounds are whole dates
 *   list        UI values separated by '\' (PS3.4 C.2.2.2.2)
 *   sequence    the sequence keys of PS3.4 Annex C (mt_index_seq_level) are returned with
 *               their stored items (the level's seq_keys blob); other sequence keys are
 *               returned empty; items with values (sequence matching) are not matched: the
 *               key counts as an unsupported optional key (FF01) and is still returned
 * Multi-valued stored attributes (keys.def MULTI) match when any of their values matches.
 * The SQL narrows with index-friendly conditions (=, ranges on the prefix before the first
 * wildcard, IN) and leaves the exact semantics to mt_query_match(), registered as the SQL
 * function mt_match(flags, pattern, value), so the meaning of a match lives in one pure
 * function that the unit tests exercise without a database.
 *
 * Character sets: query values are converted to UTF-8 from the identifier's
 * SpecificCharacterSet (dicom/charset.h: every defined term, ISO 2022 code extensions too).
 * Stored values stay in the bytes of their study's (IMAGE level: instance's) character set;
 * mt_match is given that character set and converts a stored value that is not plain ASCII
 * before it compares (without one, bytes that are not valid UTF-8 are read as Latin-1). An
 * exact non-ASCII value is looked up in UTF-8 and Latin-1 through the index, and in any other
 * stored character set by mt_match. Responses carry the stored bytes and the stored
 * SpecificCharacterSet.
 *
 * Information models and levels (PS3.4 C.6): Patient Root (PATIENT, STUDY, SERIES, IMAGE),
 * Study Root (STUDY, SERIES, IMAGE; patient keys are study keys), Patient/Study Only (PATIENT,
 * STUDY). Hierarchical: the unique key of every level above the query level must be given
 * (single value or UID list), else the identifier is refused (A900). Keys of levels above the
 * query level may also be matched (lenient); keys of levels below are returned empty. The
 * relational model (MT_QR_RELATIONAL, the CLI) matches any key at any level.
 */
#ifndef MT_INDEX_QUERY_H
#define MT_INDEX_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../dicom/ds.h"
#include "../util/buf.h"
#include "keys.h"

typedef enum mt_qr_model {
    MT_QR_PATIENT_ROOT,
    MT_QR_STUDY_ROOT,
    MT_QR_PATIENT_STUDY_ONLY,
    MT_QR_RELATIONAL, /* no hierarchy checks: any key at any level (CLI, QIDO-RS) */
} mt_qr_model_t;

typedef enum mt_qmatch {
    MT_QM_UNIVERSAL,
    MT_QM_SINGLE,
    MT_QM_WILDCARD,
    MT_QM_RANGE,
    MT_QM_LIST,
    MT_QM_SEQUENCE,
} mt_qmatch_t;

/* Attributes the query computes rather than reads from a column. */
typedef enum mt_qcomputed {
    MT_QC_NONE,
    MT_QC_PATIENT_STUDIES,   /* (0020,1200) NumberOfPatientRelatedStudies */
    MT_QC_PATIENT_SERIES,    /* (0020,1202) NumberOfPatientRelatedSeries */
    MT_QC_PATIENT_INSTANCES, /* (0020,1204) NumberOfPatientRelatedInstances */
    MT_QC_STUDY_SERIES,      /* (0020,1206) NumberOfStudyRelatedSeries */
    MT_QC_STUDY_INSTANCES,   /* (0020,1208) NumberOfStudyRelatedInstances */
    MT_QC_SERIES_INSTANCES,  /* (0020,1209) NumberOfSeriesRelatedInstances */
    MT_QC_MODALITIES,        /* (0008,0061) ModalitiesInStudy (matching supported) */
    MT_QC_SOP_CLASSES,       /* (0008,0062) SOPClassesInStudy */
    MT_QC_RETRIEVE_AE,       /* (0008,0054) RetrieveAETitle: the called AE title */
    MT_QC_AVAILABILITY,      /* (0008,0056) InstanceAvailability: ONLINE */
    MT_QC_TS,                /* (0008,3002) AvailableTransferSyntaxUID (IMAGE level) */
    /* CMR series tags (issue 5, docs/tagging.md): private SERIES keys under the private
     * creator MT_CMR_CREATOR in block 0x10 of group MT_CMR_GROUP, read from series_tags */
    MT_QC_CMR_CREATOR,       /* (4D49,0010) LO "MITRAL CMR 1" (returned with the others) */
    MT_QC_CMR_TAG,           /* (4D49,1010) LO tag, e.g. cine.sax (single, wildcard, '\' list) */
    MT_QC_CMR_VIEW,          /* (4D49,1011) CS view: sax 2ch 3ch 4ch other */
    MT_QC_CMR_CONFIDENCE,    /* (4D49,1012) DS confidence 0..1 (returned only) */
    MT_QC_CMR_VERSION,       /* (4D49,1013) LO tagger version (returned only) */
    /* another private creator (gggg,00xx) of the identifier: returned with the value sent
     * (k->value), so the private keys of its block are never orphans (PS3.5 7.8.1) */
    MT_QC_PRIVATE_CREATOR,
} mt_qcomputed_t;

#define MT_CMR_GROUP 0x4D49
#define MT_CMR_CREATOR "MITRAL CMR 1"

/* mt_query_match flags (also the first argument of the SQL function mt_match) */
#define MT_QF_PN 0x1    /* person name: case-insensitive, by component group */
#define MT_QF_MULTI 0x2 /* stored value is multi-valued ('\'): any value may match */
#define MT_QF_ICASE 0x4 /* case-insensitive without PN groups */
#define MT_QF_EXACT 0x8 /* UI, DA, TM, DT: no wild cards ('*', '?' are literal, C.2.2.2.4) */

/* One attribute of the item of a sequence key with values (sequence matching, issue 3). */
typedef struct mt_qitem {
    uint32_t tag;
    uint16_t vr;
    char *value; /* as sent, trailing padding removed; '*'/'?' wildcards for string VRs */
} mt_qitem_t;

typedef struct mt_qkey {
    uint32_t tag;
    uint16_t vr;
    mt_index_level_t level;     /* the level the attribute belongs to */
    const mt_index_key_t *col;  /* indexed column answering it, or NULL */
    mt_qcomputed_t computed;
    mt_qmatch_t match;
    char *value;                /* SINGLE / WILDCARD (UTF-8) */
    char *lo, *hi;              /* RANGE; NULL = open */
    char **list;                /* LIST */
    size_t n_list;
    bool matching;    /* takes part in the WHERE clause */
    bool unsupported; /* had a value we cannot match on: ignored (Pending FF01) */
    bool returned;    /* appears in responses (every key of the identifier does) */
    bool below_level; /* a key of a level below the query level: returned empty */
    /* sequence matching (PS3.4 C.2.2.2.6) on a stored sequence key: the request's one item's
     * attributes with values; a row matches when any stored item matches all of them (single
     * value or wildcard, by mt_query_match), and only the matching items are returned */
    mt_qitem_t *items;
    size_t n_items;
    bool seq_match;
} mt_qkey_t;

typedef struct mt_query {
    mt_qr_model_t model;
    mt_index_level_t level;
    mt_qkey_t *keys;
    size_t n_keys;
    char charset[65];      /* the identifier's SpecificCharacterSet ("" = default) */
    bool has_charset_key;  /* the identifier carried (0008,0005) */
    bool any_unsupported;  /* some key had a value that was not matched */
} mt_query_t;

/* Why an identifier was refused: the DIMSE status to answer with, an ErrorComment and the
 * offending element (0 when none). */
typedef struct mt_query_err {
    uint16_t status; /* 0xA900 identifier does not match SOP class, 0xC000 cannot understand */
    uint32_t tag;
    char comment[65];
} mt_query_err_t;

/* Build a query from a C-FIND/C-MOVE/C-GET identifier. MT_EINVAL with err filled when the
 * identifier is not acceptable for the model. */
int mt_query_from_ds(const mt_ds_t *id, mt_qr_model_t model, mt_query_t **out,
                     mt_query_err_t *err);
/* C-MOVE / C-GET (PS3.4 C.4.2.2.1, C.4.3.2.1): a hierarchical retrieve names what it
 * retrieves by the unique key of the retrieve level (single value, or a list of UIDs). 0, or
 * MT_EINVAL with err = A900 and the unique key as offending element when q has none (an empty
 * or absent key would retrieve every entity that the other keys match: the whole archive). */
int mt_query_check_retrieve(const mt_query_t *q, mt_query_err_t *err);
/* Build a relational query from text: space-separated terms KEYWORD=VALUE, KEYWORD>=VALUE,
 * KEYWORD<=VALUE (ranges for DA/TM/DT), values with wildcards or UID lists as in an
 * identifier; keywords from the DICOM dictionary (PatientName, StudyDate, Modality ...).
 * The query level is the lowest level among the keys, at least `level`. Values are UTF-8. */
int mt_query_from_text(const char *text, mt_index_level_t level, mt_query_t **out, char *err,
                       size_t errsz);
void mt_query_free(mt_query_t *q);
/* The query level for a QueryRetrieveLevel value, or -1. */
int mt_query_level_parse(const char *s);
const char *mt_query_level_name(mt_index_level_t level); /* "PATIENT" ... "IMAGE" */

/* The semantics of one match (flags MT_QF_*): pattern is UTF-8 with '*'/'?' wildcards (a
 * SINGLE value has none, so it must be equal); value is the stored text, read as Latin-1 when
 * it is not valid UTF-8. */
bool mt_query_match(unsigned flags, const char *pattern, const char *value);
/* The same, the stored value being text in the Specific Character Set `charset` (its raw
 * value; NULL or "" = the default repertoire). The SQL function mt_match(flags, pattern, value,
 * charset). */
bool mt_query_match_cs(unsigned flags, const char *pattern, const char *value,
                       const char *charset);

/* Sequence matching (PURE): keep in the response's sequence sq only the stored items that
 * match every attribute of k->items; false when none is left (the entity does not match). */
bool mt_query_seq_filter(const mt_qkey_t *k, mt_ds_elem_t *sq);

/* Character set helpers (PURE): Latin-1 bytes -> UTF-8 (out caller-freed); UTF-8 -> Latin-1
 * when every code point is <= U+00FF, else NULL. */
char *mt_query_latin1_to_utf8(const char *s, size_t n);
char *mt_query_utf8_to_latin1(const char *s);
bool mt_query_is_utf8(const char *s, size_t n);

/* ---- SQL (query_sql.c, PURE) ---- */

typedef enum mt_qsel {
    MT_QSEL_FIND,       /* one row per entity at the query level, the returned keys */
    MT_QSEL_INSTANCES,  /* every verified instance under the matched entities */
    MT_QSEL_STUDY_UIDS, /* DISTINCT Study Instance UIDs of the matched entities */
} mt_qsel_t;

typedef struct mt_qscope {
    const char *project;     /* NULL = every study (the node's own AE title) */
    const char *retrieve_ae; /* RetrieveAETitle in responses */
} mt_qscope_t;

typedef struct mt_qsql {
    mt_buf_t sql;
    char **params; /* text parameters ?1..?n in order */
    size_t n_params;
    int *col_of_key; /* FIND: result column of each query key, -1 = none (returned empty) */
    int col_charset; /* FIND: column holding the stored SpecificCharacterSet */
    int col_patient_charset; /* FIND above PATIENT level: the patient row's, or -1 */
    const char *charset_expr; /* SQL giving a row's stored SpecificCharacterSet (for mt_match) */
    size_t n_cols;
} mt_qsql_t;

/* SQL for the query. limit 0 = none (FIND uses max_matches + 1 to see a cap). */
int mt_query_sql(const mt_query_t *q, const mt_qscope_t *scope, mt_qsel_t sel, uint32_t limit,
                 mt_qsql_t *out);
void mt_qsql_dispose(mt_qsql_t *s);

/* ---- execution on SQLite (query_exec.c) ---- */

typedef struct mt_qdb mt_qdb_t;

/* A read-only connection to the index at path (WAL: concurrent with the writer), with
 * mt_match registered. One mt_qdb_t is used by one thread at a time. */
int mt_qdb_open(const char *index_path, mt_qdb_t **out);
void mt_qdb_close(mt_qdb_t *db);

/* A pooled connection (qdb_pool.c): take one for index_path (opened if none is kept; NULL if
 * that fails), give it back when the request is done (NULL is ignored). */
mt_qdb_t *mt_qdb_take(const char *index_path);
void mt_qdb_give(const char *index_path, mt_qdb_t *db);

/* Called once per match with the response identifier (freed after the call). Return 0 to go
 * on, nonzero to stop (the value is returned by mt_qdb_find). */
typedef int (*mt_qdb_match_cb)(void *user, const mt_ds_t *response);
/* Run a C-FIND: at most max matches (0 = no cap) are passed to cb; *capped is set when there
 * were more. */
int mt_qdb_find(mt_qdb_t *db, const mt_query_t *q, const mt_qscope_t *scope, uint32_t max,
                mt_qdb_match_cb cb, void *user, bool *capped);

typedef struct mt_qdb_instance {
    const char *study_uid, *series_uid, *sop_instance_uid, *sop_class_uid;
    const char *transfer_syntax_uid, *path; /* path relative to the storage root */
    uint64_t size;
} mt_qdb_instance_t;
/* The verified instances an identifier selects (C-MOVE / C-GET sub-operations), ordered by
 * study, series, instance number. */
int mt_qdb_instances(mt_qdb_t *db, const mt_query_t *q, const mt_qscope_t *scope,
                     int (*cb)(void *user, const mt_qdb_instance_t *inst), void *user);
/* The Study Instance UIDs a query selects. */
int mt_qdb_study_uids(mt_qdb_t *db, const mt_query_t *q, const mt_qscope_t *scope,
                      int (*cb)(void *user, const char *study_uid), void *user);
/* EXPLAIN QUERY PLAN of the SQL for q, one "detail" line each, appended to out (tests). */
int mt_qdb_explain(mt_qdb_t *db, const mt_query_t *q, const mt_qscope_t *scope, mt_qsel_t sel,
                   mt_buf_t *out);

#endif
