/*
 * rebuild.h - re-create the index from the stored files, and read one stored file back
 * (used by the rebuild and by the start-up reconciliation of unverified rows, ingest.c).
 * Blocking file I/O: CLI, commit thread or thread pool only. Design: rebuild.c.
 */
#ifndef MT_INDEX_REBUILD_H
#define MT_INDEX_REBUILD_H

#include <stddef.h>
#include <stdint.h>

#include "../dicom/ds.h"
#include "index.h"

/* Clear the index at index_path (created if absent) and index every Part 10 file under
 * storage_root (temp files excluded). Files that do not parse, lack the UIDs, or sit at a
 * path other than the layout's are skipped and counted in the log (not fatal). out receives
 * the index statistics afterwards. On failure err holds a message. */
int mt_index_rebuild(const char *storage_root, const char *index_path, mt_index_stats_t *out,
                     char *err, size_t errsz);

/* What a rebuild did with the files it found. */
typedef struct mt_index_rebuild_report {
    size_t indexed;    /* rows written */
    size_t unreadable; /* not a whole Part 10 file, or an unknown transfer syntax */
    size_t misplaced;  /* not at the layout path of its own UIDs (or not named *.dcm) */
    size_t duplicates; /* a second file of an SOP instance already indexed (replaced it) */
} mt_index_rebuild_report_t;

/* mt_index_rebuild, also filling rep (may be NULL). */
int mt_index_rebuild_report(const char *storage_root, const char *index_path,
                            mt_index_stats_t *out, mt_index_rebuild_report_t *rep, char *err,
                            size_t errsz);

/* Read a stored Part 10 file completely: meta (required), the index values of its top-level
 * data set into rec (when rec != NULL), and its size. The whole data set is parsed, so a
 * truncated or zero-filled file fails (MT_EMALFORMED); MT_ENOENT when the file is missing. */
int mt_index_read_file(const char *abs_path, mt_meta_t *meta, mt_index_rec_t *rec,
                       uint64_t *size);
/* The same, also computing checksums of the whole file: *crc32c (util/crc32c.h: what the
 * ingest records since 2026-12) and, when adler32 is not NULL, *adler32 (zlib: what it recorded
 * before, so a row left unsynced by an older version can still be checked). Either may be NULL. */
int mt_index_read_file_sum(const char *abs_path, mt_meta_t *meta, mt_index_rec_t *rec,
                           uint64_t *size, uint32_t *crc32c, uint32_t *adler32);

#endif
