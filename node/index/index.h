/*
 * index.h - the catalogue (patient / study / series / instance) behind one vtable, so that the
 * embedded SQLite backend (index_sqlite.c) and a PostgreSQL backend (later) slot in alike.
 *
 * Calls are synchronous and may block (disk, server round trips): call them off the event loop
 * (the ingest thread, a uv_queue_work, or a CLI). One mt_index_t is used by one thread at a time.
 *
 * Which attributes are indexed is one table, node/index/keys.def (level, tag, column). An
 * mt_index_rec_t collects the values of one instance: the ingest path offers every top-level
 * element it parses (mt_index_rec_offer) and the record keeps those that are index keys.
 *
 * instances.verified (docs/internals/durability.md): 1 = the file and the row are durable (the
 * instance was, or is about to be, acknowledged); 0 / 2 = a batch in flight, or cut short by a
 * crash (start-up reconciles these). Readers that need the file (C-MOVE, C-GET, WADO) select
 * verified = 1. Values are stored as received (bytes in the instance's Specific Character Set,
 * no conversion).
 */
#ifndef MT_INDEX_H
#define MT_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../dicom/ds.h"

typedef enum mt_dup_policy {
    MT_DUP_OVERWRITE, /* replace the stored instance (default) */
    MT_DUP_KEEP_FIRST, /* keep the stored one, answer success (the new copy is dropped) */
    MT_DUP_REJECT,    /* answer failure 0x0111 Duplicate SOP Instance */
} mt_dup_policy_t;

typedef struct mt_index_rec mt_index_rec_t;

mt_index_rec_t *mt_index_rec_new(void);
void mt_index_rec_free(mt_index_rec_t *r);
/* Keep the value if tag is an index key (value in the data set's byte order; big_endian for
 * Explicit VR Big Endian so numeric values are read right). Safe to call for every element. */
void mt_index_rec_offer(mt_index_rec_t *r, uint32_t tag, uint16_t vr, const uint8_t *value,
                        size_t len, bool big_endian);
/* From now on keep only the SOP Class, SOP Instance, Study and Series Instance UIDs (offers of
 * other tags and sequence events are ignored): for the record of an original header that is
 * only checked against its command and never indexed (svc/store.c when every decision
 * de-identifies: the indexed record is made from the de-identified header). */
void mt_index_rec_keep_uids_only(mt_index_rec_t *r);
/* Sequence keys (issue 3): the optional sequence keys of PS3.4 Annex C (mt_index_seq_level)
 * are kept whole, re-encoded as Explicit VR Little Endian (undefined lengths), one blob per
 * level, capped at MT_INDEX_SEQ_MAX bytes (a sequence that does not fit is dropped).
 * Feed every reader event (streaming paths: store, rebuild); big_endian data sets are not
 * captured. mt_index_rec_offer_seq takes a parsed top-level SQ element (tree paths). */
#define MT_INDEX_SEQ_MAX 16384
void mt_index_rec_seq_event(mt_index_rec_t *r, mt_ds_event_t ev, const mt_elem_t *e,
                            bool big_endian);
void mt_index_rec_offer_seq(mt_index_rec_t *r, const mt_ds_elem_t *sq, bool big_endian);
/* The blob kept for a level (0..3 = PATIENT..INSTANCE), NULL when none. */
const uint8_t *mt_index_rec_seq_blob(const mt_index_rec_t *r, int level, size_t *len);
/* The level (0..3) of a sequence key, or -1 if tag is not one. */
int mt_index_seq_level(uint32_t tag);
/* The value kept for tag (trailing padding removed), or NULL. */
const char *mt_index_rec_get(const mt_index_rec_t *r, uint32_t tag);
/* File facts, set by the ingest path: path relative to the storage root, size in bytes,
 * transfer syntax UID of the stored file, SOP class from the file meta. */
void mt_index_rec_set_file(mt_index_rec_t *r, const char *rel_path, uint64_t size,
                           const char *ts_uid, const char *sop_class_uid);
/* The CRC-32C (util/crc32c.h) of the whole stored file, when known. */
void mt_index_rec_set_checksum(mt_index_rec_t *r, uint32_t crc32c);
/* The ingest's one-flush path: put() inserts a new row (none replaced) that has a checksum
 * as unsynced (verified=2, as mark_unsynced() would set it) instead of verified=0, so the
 * batch needs no second statement per row. A replacement is still written verified=0. */
void mt_index_rec_set_unsynced(mt_index_rec_t *r, bool unsynced);

/* Routing (issue 6): projects the instance's study joins, and destinations it is queued for,
 * both in the transaction of put() (so a crash cannot index an instance without them).
 * Duplicates are ignored. */
void mt_index_rec_add_project(mt_index_rec_t *r, const char *project);
void mt_index_rec_add_forward(mt_index_rec_t *r, const char *destination);
size_t mt_index_rec_projects(const mt_index_rec_t *r, const char *const **out);
/* Routing rules on the CMR series tag armed for the instance (node/route/rules.h): put()
 * records them (db/007_tag_routes.sql); tag_route_* fire them once the series is tagged. */
void mt_index_rec_add_armed(mt_index_rec_t *r, const char *rule);
size_t mt_index_rec_armed(const mt_index_rec_t *r, const char *const **out);
size_t mt_index_rec_forwards(const mt_index_rec_t *r, const char *const **out);

typedef struct mt_index_stats {
    uint64_t patients, studies, series, instances, bytes;
} mt_index_stats_t;

typedef struct mt_index mt_index_t;

/* A row not yet verified, as unverified() reports it. */
typedef struct mt_index_pending {
    const char *sop_instance_uid, *rel_path;
    const char *replaces_path; /* file of the instance it replaced at another path, or NULL */
    uint64_t size;
    bool unsynced;     /* mark_unsynced(): the file's data may be torn */
    bool has_checksum; /* checksum: CRC-32C of the whole file as written (adler32 before 2026-12) */
    uint32_t checksum;
} mt_index_pending_t;
/* One series' CMR tag (node/tag/, spec section 9.1). Strings are borrowed. */
typedef struct mt_index_tag {
    const char *study_uid, *series_uid, *tag, *view, *evidence, *version;
    double confidence;
    unsigned revision;
    int manufacturer;       /* enum mt_tag_vendor */
    const char *study_date; /* tag_each only (may be NULL) */
} mt_index_tag_t;

/* Outcome of put() for one record. */
typedef enum mt_index_put_result {
    MT_INDEX_INSERTED,
    MT_INDEX_REPLACED, /* overwrite policy: the old row was replaced; old_path says its file */
    MT_INDEX_KEPT_EXISTING, /* keep-first: nothing written */
    MT_INDEX_REJECTED_DUPLICATE,
} mt_index_put_result_t;

/* One row of the forwarding queue (db/003_queue.sql). Strings valid during the callback. */
typedef struct mt_index_queue_entry {
    int64_t id;
    const char *destination, *sop_instance_uid, *study_uid, *series_uid;
    bool dead;
    uint32_t attempts;
    int64_t queued_at_ms, next_at_ms; /* Unix ms */
    const char *last_error; /* NULL when none */
    /* the stored instance (NULL when it is no longer indexed): file relative to the storage
     * root, SOP class and transfer syntax of the stored file */
    const char *rel_path, *sop_class_uid, *ts_uid;
} mt_index_queue_entry_t;

typedef struct mt_index_ops {
    const char *name; /* "sqlite" */
    int (*begin)(mt_index_t *ix);
    /* Insert or handle a duplicate (same SOP Instance UID) per dup. The new row has
     * verified=0. old_path (may be NULL) receives the replaced file's relative path when the
     * result is MT_INDEX_REPLACED and the path differs; the new row then also records it as its
     * replaces_path until verify()/mark_verified(). MT_EINVAL when rec lacks the SOP, study or
     * series UID or its file facts (mt_index_rec_set_file). */
    int (*put)(mt_index_t *ix, const mt_index_rec_t *rec, mt_dup_policy_t dup,
               mt_index_put_result_t *result, char *old_path, size_t old_path_sz);
    /* Does an instance with this SOP Instance UID exist? (for duplicate checks before commit) */
    int (*exists)(mt_index_t *ix, const char *sop_instance_uid, bool *exists);
    int (*commit)(mt_index_t *ix);
    /* Start writing what the committed transactions appended (SQLite: the -wal file) to the
     * device, without waiting: a hint, called right before the store's sync so that the sync
     * finds that data under way (durability.md, "Session 6"). Durability still comes from the
     * sync alone; a backend with nothing to start leaves it NULL. */
    void (*start_writeback)(mt_index_t *ix);
    int (*rollback)(mt_index_t *ix);
    int (*stats)(mt_index_t *ix, mt_index_stats_t *out);
    int (*clear)(mt_index_t *ix); /* delete every row and mark (index rebuild) */
    void (*close)(mt_index_t *ix);

    /* ---- durability bookkeeping (docs/internals/durability.md); added with the ingest ---- */
    /* Set verified=1 (and clear replaces_path) on every instance row not verified. */
    int (*mark_verified)(mt_index_t *ix);
    /* Call cb for every instance row not verified (outside a transaction; cb must not call
     * the index), oldest first. A nonzero return from cb stops the walk and is returned. */
    int (*unverified)(mt_index_t *ix, int (*cb)(void *u, const mt_index_pending_t *p), void *u);
    /* Mark a row just put as written on the one-flush path (its data may be torn until the
     * batch's sync: start-up must check its checksum). Inside the put's transaction. */
    int (*mark_unsynced)(mt_index_t *ix, const char *sop_instance_uid);
    /* Mark one instance verified (and forget its replaces_path), recording the size found on
     * disk. MT_ENOENT when there is no such instance. */
    int (*verify)(mt_index_t *ix, const char *sop_instance_uid, uint64_t size);
    /* Delete one instance row, and its series / study / patient when left empty.
     * MT_ENOENT when there is no such instance. */
    int (*remove)(mt_index_t *ix, const char *sop_instance_uid);
    /* The stored file of an instance: relative path (into path/pathsz) and size.
     * MT_ENOENT when absent. */
    int (*locate)(mt_index_t *ix, const char *sop_instance_uid, char *path, size_t pathsz,
                  uint64_t *size);

    /* ---- dirty directories (the ingest's one-flush path, docs/internals/durability.md) ---- */
    /* Mark a storage directory (path relative to the root) as possibly holding renames that are
     * not durable yet; marking twice is harmless. Inside a transaction. */
    int (*dir_mark)(mt_index_t *ix, const char *rel_dir);
    /* Unmark one directory, or every directory when rel_dir is NULL. Inside a transaction. */
    int (*dir_unmark)(mt_index_t *ix, const char *rel_dir);
    /* Call cb for every marked directory (outside a transaction; cb must not call the index).
     * A nonzero return from cb stops the walk and is returned. */
    int (*dirs)(mt_index_t *ix, int (*cb)(void *u, const char *rel_dir), void *u);
    /* ---- project folders (issue 3); membership rows name the study by its UID ---- */
    /* Put a study into a project. MT_ENOENT when no such study is indexed; *added false when
     * it was a member already. */
    int (*project_add)(mt_index_t *ix, const char *project, const char *study_uid, bool *added);
    /* Take a study out of a project; *removed false when it was not a member. */
    int (*project_remove)(mt_index_t *ix, const char *project, const char *study_uid,
                          bool *removed);
    /* Counts of the project's studies (present in the index), their series, instances, bytes
     * and patients. */
    int (*project_stats)(mt_index_t *ix, const char *project, mt_index_stats_t *out);
    /* ---- CMR series tags (issue 5, node/tag/, db/004_series_tags.sql) ---- */
    /* Insert or update a series' tag. The stored revision becomes the previous one + 1 when
     * the tag or view changed (0 for a new row); *revision (may be NULL) receives it. */
    int (*tag_put)(mt_index_t *ix, const mt_index_tag_t *t, unsigned *revision);
    /* Call cb for every tagged series whose study is indexed, optionally only the studies of
     * a project and with StudyDate in [from, to] (YYYYMMDD, either may be NULL). cb gets the
     * row with study_date filled; a nonzero return stops the walk and is returned. */
    int (*tag_each)(mt_index_t *ix, const char *project, const char *from, const char *to,
                    int (*cb)(void *u, const mt_index_tag_t *t), void *u);
    /* ---- routing on the series tag (db/007_tag_routes.sql); call inside a transaction ---- */
    /* Call cb(sop_instance_uid, rule, fired) for every rule armed for an indexed instance of
     * the series, grouped by instance. cb must not call the index. */
    int (*tag_route_armed)(mt_index_t *ix, const char *series_uid,
                           int (*cb)(void *u, const char *sop, const char *rule, bool fired),
                           void *u);
    /* Rules fired for one instance: queue it for each destination (a row already pending
     * there stays), join the study to each project, and mark the rules[] fired. */
    int (*tag_route_fire)(mt_index_t *ix, const char *sop, const char *study_uid,
                          const char *series_uid, const char *const *rules, size_t n_rules,
                          const char *const *dests, size_t n_dests, const char *const *projects,
                          size_t n_projects);

    /* ---- forwarding queue (issue 6); rows are added by put() (mt_index_rec_add_forward) ---- */
    /* Call cb for rows oldest first (by id): destination NULL = every destination; state -1
     * all, 0 pending, 1 dead; due_ms >= 0: only pending rows with next_at <= due_ms whose instance is durable
     * (verified; rows of an instance no longer indexed are returned too); only rows with
     * id > after_id (0: all; the forwarder's kick scans start after the rows they settled,
     * node/forward.c); at most limit rows (0 = no limit). cb must not call the index; nonzero
     * stops and is returned. */
    int (*queue_list)(mt_index_t *ix, const char *destination, int state, int64_t due_ms,
                      int64_t after_id, size_t limit,
                      int (*cb)(void *u, const mt_index_queue_entry_t *e), void *u);
    /* Delivered: delete the row (MT_ENOENT if gone). */
    int (*queue_done)(mt_index_t *ix, int64_t id);
    /* A failed attempt: attempts+1 (unless !counted: the destination was not reached),
     * next_at, last_error; dead marks it dead-letter. */
    int (*queue_failed)(mt_index_t *ix, int64_t id, int64_t next_at_ms, bool dead, bool counted,
                        const char *error);
    /* Make rows pending and due now (attempts 0, queued_at now: forward.max_age counts from
     * the retry): id > 0 that row, else every row of destination (NULL: all) that is dead
     * (dead_only) or any. *n = rows changed. */
    int (*queue_retry)(mt_index_t *ix, const char *destination, int64_t id, bool dead_only,
                       size_t *n);
    /* Delete rows: id > 0 that row, else of destination (NULL: all), dead only or all. */
    int (*queue_purge)(mt_index_t *ix, const char *destination, int64_t id, bool dead_only,
                       size_t *n);
    /* Each destination the queue names, with its pending and dead row counts. cb must not
     * call the index; nonzero stops and is returned. */
    int (*queue_destinations)(mt_index_t *ix,
                              int (*cb)(void *u, const char *destination, size_t pending,
                                        size_t dead),
                              void *u);
} mt_index_ops_t;

struct mt_index {
    const mt_index_ops_t *ops;
};

/* Open (creating and migrating the schema from db/ as needed) the SQLite index at path. */
int mt_index_sqlite_open(const char *path, mt_index_t **out);

#endif
