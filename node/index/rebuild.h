/*
 * rebuild.h - re-create the index from the stored files, and read one stored file back
 * (used by the rebuild and by the start-up check of unverified rows, ingest.c).
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

/* Read a stored Part 10 file completely: meta (required), the index values of its top-level
 * data set into rec (when rec != NULL), and its size. The whole data set is parsed, so a
 * truncated or zero-filled file fails (MT_EMALFORMED); MT_ENOENT when the file is missing. */
int mt_index_read_file(const char *abs_path, mt_meta_t *meta, mt_index_rec_t *rec,
                       uint64_t *size);

#endif
