/*
 * ingest.h - durable ingest: instance bytes -> temp file -> group commit -> completion on the
 * loop. The rule: the completion (and so the C-STORE-RSP) comes only after this instance's file
 * and index row are durable. Design and crash argument: docs/internals/durability.md.
 *
 * Loop-thread API. One dedicated commit thread batches every instance that is ready: index rows
 * (verified=0) in one transaction, one syncfs (temp data + WAL), renames into place (store
 * layout), one syncfs (renames), rows marked verified, then completions posted back to the loop
 * (uv_async); a batch of new instances into series directories already marked takes a
 * one-flush path (rename, commit, one syncfs). Bulk bytes are spilled to the temp file in bounded chunks on the libuv pool, so
 * memory stays bounded whatever the instance size. mt_ingest_open reconciles what a crash left
 * (temp files, rows whose batch was cut short) before it accepts anything.
 */
#ifndef MT_STORE_INGEST_H
#define MT_STORE_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "../dicom/ds.h"
#include "../index/index.h"

typedef struct mt_ingest mt_ingest_t;
typedef struct mt_ingest_job mt_ingest_job_t;

typedef struct mt_ingest_opts {
    const char *storage_root;  /* files live under <root>/ ; temp files under <root>/.tmp/ */
    const char *index_path;    /* SQLite file */
    mt_dup_policy_t dup_policy;
    size_t max_batch;          /* instances per group commit (default 256) */
    size_t spill_chunk;        /* bytes buffered per job before spilling to disk (default 1 MiB) */
} mt_ingest_opts_t;

/* status: 0 stored (or, keep-first policy, an instance with this SOP Instance UID already was);
 * MT_EDUPLICATE (reject policy); MT_ENOSPC / MT_ENOMEM / MT_EIO out of resources; other negative
 * codes = failure. comment: a short static reason for ErrorComment on failure (never PHI). */
typedef void (*mt_ingest_done_cb)(void *data, int status, const char *comment);
typedef void (*mt_ingest_drain_cb)(void *data);

/* Open the store and index, clean up temp files left by a crash, reconcile unverified rows
 * with the files, start the commit thread. Blocking (start-up only). */
int mt_ingest_open(uv_loop_t *loop, const mt_ingest_opts_t *opts, mt_ingest_t **out);
/* Stop after committing everything in flight; cb on the loop when done (ingest freed). */
void mt_ingest_close(mt_ingest_t *ing, void (*cb)(void *), void *data);

/* Begin an instance: the Part 10 meta header is built from meta. */
mt_ingest_job_t *mt_ingest_job_new(mt_ingest_t *ing, const mt_meta_t *meta);
/* Append data set bytes. Returns 1 when the job holds more than its buffer budget and the caller
 * should pause reading until drain_cb fires; 0 otherwise; negative on failure (disk full ...). */
int mt_ingest_job_append(mt_ingest_job_t *job, const uint8_t *p, size_t n,
                         mt_ingest_drain_cb drain_cb, void *drain_data);
/* Commit: takes ownership of rec; cb fires exactly once on the loop thread. */
void mt_ingest_job_commit(mt_ingest_job_t *job, mt_index_rec_t *rec, mt_ingest_done_cb cb,
                          void *data);
/* Quarantine instead of commit (de-identification: Burned In Annotation YES with
 * burned-in-annotation: quarantine, docs/deid.md): the temp file is made durable and renamed
 * to <root>/.quarantine/<sop_uid>.dcm (replacing one there), made durable again, off the loop
 * on the libuv pool; no index row, so nothing else (C-FIND, C-MOVE, DICOMweb, forwarding, a
 * rebuild: hidden directories are skipped) ever sees it. cb fires exactly once: 0 when the
 * file is durable, else a failure as for commit. `mitral quarantine` lists, releases, purges. */
#define MT_INGEST_QUARANTINE_DIR ".quarantine"
void mt_ingest_job_quarantine(mt_ingest_job_t *job, const char *sop_uid, mt_ingest_done_cb cb,
                              void *data);
/* ".quarantine/<sop_uid>.dcm" into out; false for a UID unusable in a path (store.h). */
bool mt_ingest_quarantine_path(const char *sop_uid, char *out, size_t outsz);
/* Abandon (peer vanished, bad data): temp file removed, nothing indexed, no callback. Only
 * before commit/quarantine: from then on the ingest owns the job (a cancel after that is a
 * caller bug: it asserts in debug builds and is ignored, with an error logged, otherwise). */
void mt_ingest_job_cancel(mt_ingest_job_t *job);

#endif
