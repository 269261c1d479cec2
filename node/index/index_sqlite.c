/*
 * index_sqlite.c - the embedded index backend: mt_index_ops_t on one SQLite database file.
 *
 * Schema: db/NNN_*.sql, embedded at build time by scripts/embed-sql.py into
 * mt__index_migrations[] (the binary never reads the source tree). open() applies, in order,
 * every migration newer than MAX(schema_version.version), all in one IMMEDIATE transaction
 * (a crash mid-way leaves the old version), and refuses a database newer than this binary.
 *
 * Connection settings (docs/internals/durability.md):
 *   journal_mode=WAL, synchronous=NORMAL - a COMMIT appends to the WAL without fsync, so a
 *     COMMIT alone is NOT durable. The ingest makes each batch durable itself with syncfs(2)
 *     on the file system holding the WAL (store sync(), mt_store_fs_add_sync_path), which
 *     flushes the WAL's data like fsync(2) would; no success is sent before it returns.
 *     Checkpoints still fsync the WAL before copying it, so the main file never gets ahead of
 *     the WAL. The CLI and readers that never ingest commit nothing that needs durability.
 *     start_writeback() starts the -wal file's write-back right before that sync (a hint).
 *   foreign_keys=ON; a busy handler (busy_wait) instead of sqlite3_busy_timeout: the node's
 *     writers (the ingest's commit thread, the tagger's passes, the forwarder's outcomes) each
 *     have their own connection and take turns at the WAL's write lock, which is held for tens
 *     of microseconds; SQLite's own timeout handler sleeps 1 ms at the first collision (then
 *     2, 5, 10 ...), which an ingest waiting to commit paid in full. busy_wait retries after
 *     20, 50, 100, 200, 500 us, then every 1 ms, and gives up after 5 s in all, as before
 *     (the CLI may read while the node writes).
 *
 * put(): one statement per level, prepared once from the keys.def table and reused:
 *   patients  INSERT .. ON CONFLICT(patient_id, issuer_of_patient_id) DO UPDATE .. RETURNING pk
 *   studies   INSERT .. ON CONFLICT(study_instance_uid)  DO UPDATE .. RETURNING pk
 *   series    INSERT .. ON CONFLICT(series_instance_uid) DO UPDATE .. RETURNING pk
 *   instances SELECT by sop_instance_uid, then per duplicate policy INSERT or DELETE+INSERT
 *             (verified=0; replaces_path = the old row's path when it differs).
 * Updates keep known values: SET col = coalesce(excluded.col, col), so an instance lacking an
 * attribute does not erase it at its study or series. A study seen under another patient (a
 * series under another study) moves to it. Parents left empty by a replace, a move or a remove
 * are deleted (prune).
 * Upsert cache: a series arrives as many instances carrying the same patient / study / series
 * values, and re-running an upsert that changes nothing still rewrites the row and its index
 * entries (~20 WAL pages an instance, which every batch's flush then writes). So each level
 * remembers the parent pk and bound values of its last upsert and the pk it returned; a put
 * with the same ones skips that level (and, for study and series, the parent lookup: the row
 * already has that parent). The upsert is an update to coalesce(new, old), so repeating it
 * with the same values is a no-op: skipping it is exact. The cache is dropped whenever the
 * rows may have changed behind it: a rollback (or failed commit), a prune, a clear, and a
 * commit by another connection (PRAGMA data_version, checked at each begin).
 *
 * One mt_index_t is used by one thread at a time (index.h).
 */
#include "index.h"
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../dicom/ds.h"
#include "../util/alloc.h"
#include "../util/buf.h"
#include "../util/err.h"
#include "../util/log.h"

typedef struct mt__index_migration {
    int version;
    const char *name;
    const char *sql;
} mt__index_migration_t;
extern const mt__index_migration_t mt__index_migrations[];
extern const size_t mt__index_n_migrations;

enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_UP_PATIENT,
    ST_UP_STUDY,
    ST_UP_SERIES,
    ST_FIND_INSTANCE,
    ST_INSERT_INSTANCE,
    ST_DELETE_INSTANCE,
    ST_MARK_VERIFIED,
    ST_VERIFY,
    ST_PRUNE_SERIES,
    ST_PRUNE_STUDY,
    ST_PRUNE_PATIENT,
    ST_STUDY_PARENT,
    ST_SERIES_PARENT,
    ST_DIR_MARK,
    ST_DIR_UNMARK,
    ST_MARK_UNSYNCED,
    ST_DATA_VERSION,
    ST_PROJECT_JOIN,
    ST_QUEUE_ADD,
    ST_TAG_PUT,
    ST_ARM,
    ST_QUEUE_ADD_KEEP,
    ST_FIRE,
    ST_QUEUE_LIST,
    ST_QUEUE_DONE,
    ST_COUNT
};

typedef struct sqlite_index {
    mt_index_t base;
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    /* key rows bound by each level's statement, in bind order */
    uint16_t cols[MT_LEVEL_COUNT][128];
    size_t n_cols[MT_LEVEL_COUNT];
    bool in_txn;
    /* upsert cache (file comment): per level, the signature of the last upsert and its pk */
    struct {
        mt_buf_t sig;
        int64_t pk;
        bool ok;
    } up_cache[MT_LEVEL_COUNT];
    int64_t data_version;
    sqlite3_stmt *seq_st[MT_LEVEL_COUNT]; /* put_seq's UPDATE per level, prepared on first use */
    /* start_writeback: our own read-only fd of the -wal file (opened on first use; -1 before,
     * -2 when it cannot be opened). SQLite holds no POSIX lock on the -wal file (its WAL locks
     * are on -shm), so this fd cannot release one; it is closed after sqlite3_close. */
    int wal_fd;
} sqlite_index_t;

/* SQLite's busy handler (header comment): n is the number of earlier calls for this lock. */
static int busy_wait(void *unused, int n)
{
    static const unsigned first_us[] = {20, 50, 100, 200, 500};
    const unsigned n_first = sizeof first_us / sizeof first_us[0];
    const unsigned long long limit_us = 5000000ull;
    (void)unused;
    unsigned long long waited = 0;
    for (unsigned i = 0; i < n_first && i < (unsigned)n; i++)
        waited += first_us[i];
    if ((unsigned)n > n_first)
        waited += 1000ull * ((unsigned)n - n_first);
    if (waited >= limit_us)
        return 0;
    unsigned us = (unsigned)n < n_first ? first_us[n] : 1000u;
    struct timespec ts = {0, (long)us * 1000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return 1;
}

static void cache_drop(sqlite_index_t *x)
{
    for (int l = 0; l < MT_LEVEL_COUNT; l++)
        x->up_cache[l].ok = false;
}

static int db_err(sqlite_index_t *x, int rc, const char *what)
{
    mt_log(MT_LOG_ERROR, NULL, "index: %s: %s", what, sqlite3_errmsg(x->db));
    if (rc == SQLITE_FULL)
        return MT_ENOSPC;
    if (rc == SQLITE_IOERR || (rc & 0xFF) == SQLITE_IOERR)
        return MT_EIO;
    return MT_EDB;
}

static int exec(sqlite_index_t *x, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(x->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        mt_log(MT_LOG_ERROR, NULL, "index: %s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return rc == SQLITE_FULL ? MT_ENOSPC : MT_EDB;
    }
    return 0;
}

/* Run a statement without result rows (or ignore them) and reset it. */
static int step_done(sqlite_index_t *x, sqlite3_stmt *s, const char *what)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        ;
    int err = rc == SQLITE_DONE ? 0 : db_err(x, rc, what);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return err;
}

/* ---- migrations ---- */

static int schema_version(sqlite_index_t *x, int *version)
{
    sqlite3_stmt *s;
    *version = 0;
    int rc = sqlite3_prepare_v2(x->db,
                                "SELECT 1 FROM sqlite_master WHERE type='table' AND "
                                "name='schema_version'",
                                -1, &s, NULL);
    if (rc != SQLITE_OK)
        return db_err(x, rc, "schema check");
    rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return db_err(x, rc, "schema check");
    rc = sqlite3_prepare_v2(x->db, "SELECT coalesce(max(version), 0) FROM schema_version", -1, &s,
                            NULL);
    if (rc != SQLITE_OK)
        return db_err(x, rc, "schema version");
    if (sqlite3_step(s) == SQLITE_ROW)
        *version = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return 0;
}

static int migrate(sqlite_index_t *x)
{
    int version, err = exec(x, "BEGIN IMMEDIATE");
    if (err)
        return err;
    err = schema_version(x, &version);
    if (err)
        goto fail;
    if ((size_t)version > mt__index_n_migrations) {
        mt_log(MT_LOG_ERROR, NULL, "index: schema version %d is newer than this mitral (%zu)",
               version, mt__index_n_migrations);
        err = MT_EDB;
        goto fail;
    }
    for (size_t i = (size_t)version; i < mt__index_n_migrations; i++) {
        const mt__index_migration_t *m = &mt__index_migrations[i];
        err = exec(x, m->sql);
        if (err)
            goto fail;
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT INTO schema_version(version) VALUES (%d)", m->version);
        err = exec(x, sql);
        if (err)
            goto fail;
        mt_log(MT_LOG_INFO, NULL, "index: applied migration %s", m->name);
    }
    return exec(x, "COMMIT");
fail:
    exec(x, "ROLLBACK");
    return err;
}

/* ---- statements ---- */

static void level_cols(sqlite_index_t *x)
{
    size_t n;
    const mt_index_key_t *k = mt_index_keys(&n);
    for (size_t i = 0; i < n; i++) {
        mt_index_level_t l = k[i].level;
        if (x->n_cols[l] < sizeof x->cols[l] / sizeof x->cols[l][0])
            x->cols[l][x->n_cols[l]++] = (uint16_t)i;
    }
}

static void put_s(mt_buf_t *b, const char *s)
{
    int rc = mt_buf_append(b, s, strlen(s));
    (void)rc; /* the limit is far above any statement built here */
}

/* INSERT INTO <table>(<parent>, cols..., <extra>) VALUES(?...) [ON CONFLICT(<conflict>) DO UPDATE
 * SET [<parent>=excluded.<parent>,] col=coalesce(excluded.col, col)... RETURNING pk];
 * NUL-terminated. extra is "" or ",a,b,c" with n_extra names. */
static void build_upsert(sqlite_index_t *x, mt_index_level_t l, const char *parent,
                         const char *conflict, const char *extra, size_t n_extra, mt_buf_t *b)
{
    size_t n;
    const mt_index_key_t *k = mt_index_keys(&n);
    put_s(b, "INSERT INTO ");
    put_s(b, mt_index_level_table(l));
    put_s(b, "(");
    if (parent) {
        put_s(b, parent);
        put_s(b, ",");
    }
    for (size_t i = 0; i < x->n_cols[l]; i++) {
        put_s(b, k[x->cols[l][i]].column);
        put_s(b, i + 1 < x->n_cols[l] ? "," : "");
    }
    put_s(b, extra);
    put_s(b, ") VALUES(");
    size_t nb = x->n_cols[l] + (parent ? 1 : 0) + n_extra;
    for (size_t i = 0; i < nb; i++)
        put_s(b, i + 1 < nb ? "?," : "?)");
    if (conflict) {
        put_s(b, " ON CONFLICT(");
        put_s(b, conflict);
        put_s(b, ") DO UPDATE SET ");
        if (parent) {
            put_s(b, parent);
            put_s(b, "=excluded.");
            put_s(b, parent);
            put_s(b, ",");
        }
        for (size_t i = 0; i < x->n_cols[l]; i++) {
            const char *c = k[x->cols[l][i]].column;
            put_s(b, c);
            put_s(b, "=coalesce(excluded.");
            put_s(b, c);
            put_s(b, ",");
            put_s(b, c);
            put_s(b, i + 1 < x->n_cols[l] ? ")," : ")");
        }
        put_s(b, " RETURNING pk");
    }
    mt_buf_put_u8(b, 0);
}

static int prepare(sqlite_index_t *x, int which, const char *sql)
{
    int rc = sqlite3_prepare_v3(x->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &x->st[which], NULL);
    return rc == SQLITE_OK ? 0 : db_err(x, rc, "prepare");
}

/* Unix milliseconds, as SQL. */
#define NOW_MS "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
/* A new forward_queue row's id (db/008_queue_ids.sql): above every row's (evaluated before OR
 * REPLACE removes the older copy's row) and at least ?5, queue_floor (queue_row). */
#define QUEUE_ID "max(?5, (SELECT ifnull(max(id), 0) + 1 FROM forward_queue))"

static int prepare_all(sqlite_index_t *x)
{
    static const struct {
        int which;
        const char *sql;
    } fixed[] = {
        {ST_BEGIN, "BEGIN IMMEDIATE"},
        {ST_DATA_VERSION, "PRAGMA data_version"},
        {ST_COMMIT, "COMMIT"},
        {ST_ROLLBACK, "ROLLBACK"},
        {ST_FIND_INSTANCE, "SELECT pk, series_pk, path FROM instances WHERE sop_instance_uid=?"},
        {ST_DELETE_INSTANCE, "DELETE FROM instances WHERE pk=?"},
        {ST_MARK_VERIFIED, "UPDATE instances SET verified=1, replaces_path=NULL WHERE verified<>1"},
        {ST_MARK_UNSYNCED, "UPDATE instances SET verified=2 WHERE sop_instance_uid=?"},
        {ST_VERIFY, "UPDATE instances SET verified=1, replaces_path=NULL, size=? "
                    "WHERE sop_instance_uid=?"},
        {ST_STUDY_PARENT, "SELECT patient_pk FROM studies WHERE study_instance_uid=?"},
        {ST_SERIES_PARENT, "SELECT study_pk FROM series WHERE series_instance_uid=?"},
        {ST_DIR_MARK, "INSERT OR IGNORE INTO dirty_dirs(path) VALUES(?)"},
        {ST_DIR_UNMARK, "DELETE FROM dirty_dirs WHERE path=?"},
        {ST_PRUNE_SERIES, "DELETE FROM series WHERE pk=? AND NOT EXISTS "
                          "(SELECT 1 FROM instances WHERE series_pk=?1) RETURNING study_pk"},
        {ST_PRUNE_STUDY, "DELETE FROM studies WHERE pk=? AND NOT EXISTS "
                         "(SELECT 1 FROM series WHERE study_pk=?1) RETURNING patient_pk"},
        {ST_PRUNE_PATIENT, "DELETE FROM patients WHERE pk=? AND NOT EXISTS "
                           "(SELECT 1 FROM studies WHERE patient_pk=?1)"},
        {ST_PROJECT_JOIN, "INSERT OR IGNORE INTO project_studies(project, study_uid) VALUES(?,?)"},
        {ST_QUEUE_ADD,
         /* OR REPLACE: a newer copy of a queued instance gets a new row (new id): a send of
          * the older copy in flight then deletes nothing (queue_done of the old id) */
         "INSERT OR REPLACE INTO forward_queue(id, destination, sop_instance_uid, study_uid, "
         "series_uid, queued_at, next_at) VALUES(" QUEUE_ID ", ?1, ?2, ?3, ?4, " NOW_MS ", "
         NOW_MS ") RETURNING id"},
        /* a newer copy of the instance re-arms the rule (fired back to 0) */
        {ST_ARM, "INSERT OR REPLACE INTO tag_routes(sop_instance_uid, rule, series_uid) "
                 "VALUES(?1, ?2, ?3)"},
        /* from a rule on the series tag: a row pending for the destination is kept */
        {ST_QUEUE_ADD_KEEP,
         "INSERT OR IGNORE INTO forward_queue(id, destination, sop_instance_uid, study_uid, "
         "series_uid, queued_at, next_at) VALUES(" QUEUE_ID ", ?1, ?2, ?3, ?4, " NOW_MS ", "
         NOW_MS ") RETURNING id"},
        {ST_FIRE, "UPDATE tag_routes SET fired = 1 WHERE sop_instance_uid = ?1 AND rule = ?2"},
        {ST_QUEUE_LIST,
         "SELECT q.id, q.destination, q.sop_instance_uid, q.study_uid, q.state, q.attempts, "
         "q.queued_at, q.next_at, q.last_error, i.path, i.sop_class_uid, i.transfer_syntax_uid, "
         "q.series_uid "
         "FROM forward_queue q LEFT JOIN instances i ON i.sop_instance_uid = q.sop_instance_uid "
         "WHERE (?1 IS NULL OR q.destination = ?1) AND (?2 < 0 OR q.state = ?2) AND "
         "(?3 < 0 OR (q.state = 0 AND q.next_at <= ?3 AND (i.verified IS NULL OR i.verified = 1))) "
         "AND q.id > ?5 ORDER BY q.id LIMIT ?4"}, /* q.id > ?5: a rowid range, not a full scan */
        {ST_QUEUE_DONE, "DELETE FROM forward_queue WHERE id = ?1"},
        {ST_TAG_PUT,
         "INSERT INTO series_tags(series_uid, study_uid, tag, view, confidence, evidence, version, "
         "revision, manufacturer) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8) "
         "ON CONFLICT(series_uid) DO UPDATE SET study_uid = excluded.study_uid, "
         "revision = revision + (tag <> excluded.tag OR view <> excluded.view), "
         "tag = excluded.tag, view = excluded.view, confidence = excluded.confidence, "
         "evidence = excluded.evidence, version = excluded.version, "
         "manufacturer = excluded.manufacturer, "
         "tagged_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') RETURNING revision"},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        int err = prepare(x, fixed[i].which, fixed[i].sql);
        if (err)
            return err;
    }
    static const struct {
        int which;
        mt_index_level_t level;
        const char *parent, *conflict, *extra;
        size_t n_extra;
    } up[] = {
        {ST_UP_PATIENT, MT_LEVEL_PATIENT, NULL, "patient_id, issuer_of_patient_id", "", 0},
        {ST_UP_STUDY, MT_LEVEL_STUDY, "patient_pk", "study_instance_uid", "", 0},
        {ST_UP_SERIES, MT_LEVEL_SERIES, "study_pk", "series_instance_uid", "", 0},
        {ST_INSERT_INSTANCE, MT_LEVEL_INSTANCE, "series_pk", NULL,
         ",path,size,transfer_syntax_uid,replaces_path,checksum,verified", 6},
    };
    mt_buf_t b;
    int err = 0;
    mt_buf_init(&b, 1 << 20);
    for (size_t i = 0; i < sizeof up / sizeof up[0] && !err; i++) {
        mt_buf_reset(&b);
        build_upsert(x, up[i].level, up[i].parent, up[i].conflict, up[i].extra, up[i].n_extra, &b);
        err = prepare(x, up[i].which, (const char *)b.data);
    }
    mt_buf_dispose(&b);
    return err;
}

/* ---- ops ---- */

static int ix_begin(mt_index_t *ix)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    if (x->in_txn)
        return MT_ESTATE;
    int err = step_done(x, x->st[ST_BEGIN], "begin");
    if (!err) {
        x->in_txn = true;
        /* another connection committed since the last look: the upsert cache may be stale */
        sqlite3_stmt *s = x->st[ST_DATA_VERSION];
        int64_t v = -1;
        if (sqlite3_step(s) == SQLITE_ROW)
            v = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        if (v < 0 || v != x->data_version)
            cache_drop(x);
        x->data_version = v;
    }
    return err;
}

static int ix_commit(mt_index_t *ix)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    if (!x->in_txn)
        return MT_ESTATE;
    int err = step_done(x, x->st[ST_COMMIT], "commit");
    if (err) {
        cache_drop(x);
        /* a failed COMMIT may leave the transaction open: end it */
        if (!sqlite3_get_autocommit(x->db))
            step_done(x, x->st[ST_ROLLBACK], "rollback");
    }
    x->in_txn = false;
    return err;
}

/* index.h start_writeback: sync_file_range(WRITE) of the whole -wal file. syncfs(2) leaves
 * the write-back of dirty files it finds to the flusher thread and waits for it; data whose
 * write-back we started ourselves is already under way (measured: the batch's syncfs 0.19-0.22
 * -> 0.13-0.15 ms with the 11 WAL frames of an instance, durability.md "Session 6"). Only a
 * hint: an error is ignored, and a stale fd (SQLite recreated the WAL) writes nothing. */
static void ix_start_writeback(mt_index_t *ix)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    if (x->wal_fd == -1) {
        const char *db = sqlite3_db_filename(x->db, "main");
        char path[4096];
        int n = db && db[0] ? snprintf(path, sizeof path, "%s-wal", db) : -1;
        x->wal_fd = n > 0 && (size_t)n < sizeof path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
        if (x->wal_fd < 0) {
            x->wal_fd = errno == ENOENT ? -1 : -2; /* no WAL yet: try again next time */
            return;
        }
    }
    if (x->wal_fd >= 0)
        (void)sync_file_range(x->wal_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

static int ix_rollback(mt_index_t *ix)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    if (!x->in_txn)
        return MT_ESTATE;
    x->in_txn = false;
    cache_drop(x);
    if (sqlite3_get_autocommit(x->db))
        return 0; /* SQLite already rolled back (e.g. after SQLITE_FULL) */
    return step_done(x, x->st[ST_ROLLBACK], "rollback");
}

/* Bind the key columns of level l from rec, starting at parameter first. */
static void bind_level(sqlite_index_t *x, sqlite3_stmt *s, int first, mt_index_level_t l,
                       const mt_index_rec_t *rec)
{
    size_t n;
    const mt_index_key_t *k = mt_index_keys(&n);
    for (size_t i = 0; i < x->n_cols[l]; i++) {
        const char *v = mt__index_rec_value(rec, x->cols[l][i]);
        int p = first + (int)i;
        if (v)
            sqlite3_bind_text(s, p, v, -1, SQLITE_STATIC);
        else if (l == MT_LEVEL_PATIENT && k[x->cols[l][i]].tag >= MT_TAG(0x0010, 0x0020) &&
                 k[x->cols[l][i]].tag <= MT_TAG(0x0010, 0x0021))
            sqlite3_bind_text(s, p, "", 0, SQLITE_STATIC); /* patient identity is NOT NULL */
        else
            sqlite3_bind_null(s, p);
    }
}

static int upsert(sqlite_index_t *x, int which, mt_index_level_t l, int64_t parent,
                  const mt_index_rec_t *rec, int64_t *pk)
{
    sqlite3_stmt *s = x->st[which];
    int first = 1;
    if (l != MT_LEVEL_PATIENT)
        sqlite3_bind_int64(s, first++, parent);
    bind_level(x, s, first, l, rec);
    int rc = sqlite3_step(s);
    int err = 0;
    if (rc == SQLITE_ROW)
        *pk = sqlite3_column_int64(s, 0);
    else
        err = db_err(x, rc, "upsert");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return err;
}

static int parent_of(sqlite_index_t *x, int which, const char *uid, int64_t *parent);

/* upsert() through the level's cache (file comment). For study and series, *was receives the
 * row's parent before the upsert (parent_stmt, uid), 0 when new or unchanged (cache hit). */
static int cached_upsert(sqlite_index_t *x, int which, mt_index_level_t l, int64_t parent,
                         int parent_stmt, const char *uid, const mt_index_rec_t *rec, int64_t *pk,
                         int64_t *was)
{
    uint8_t sig[2048];
    size_t n = 0;
    bool fits = true;
    memcpy(sig, &parent, sizeof parent);
    n = sizeof parent;
    for (size_t i = 0; i < x->n_cols[l] && fits; i++) {
        const char *v = mt__index_rec_value(rec, x->cols[l][i]);
        size_t len = v ? strlen(v) + 1 : 1;
        if (n + len > sizeof sig) {
            fits = false;
            break;
        }
        if (v)
            memcpy(sig + n, v, len);
        else
            sig[n] = 0xff; /* absent: never the first byte of a text value + NUL */
        n += len;
    }
    __typeof__(x->up_cache[0]) *c = &x->up_cache[l];
    if (was)
        *was = 0;
    if (fits && c->ok && c->sig.len == n && memcmp(c->sig.data, sig, n) == 0) {
        *pk = c->pk;
        return 0;
    }
    c->ok = false;
    int err = 0;
    if (was && (err = parent_of(x, parent_stmt, uid, was)))
        return err;
    if ((err = upsert(x, which, l, parent, rec, pk)))
        return err;
    if (fits) {
        mt_buf_reset(&c->sig);
        if (mt_buf_append(&c->sig, sig, n) == 0) {
            c->pk = *pk;
            c->ok = true;
        }
    }
    return 0;
}

/* The level's sequence keys blob (issue 3, db/006), when the instance carried some. */
static int put_seq(sqlite_index_t *x, mt_index_level_t l, int64_t pk, const mt_index_rec_t *rec)
{
    size_t n;
    const uint8_t *blob = mt_index_rec_seq_blob(rec, (int)l, &n);
    if (!blob)
        return 0;
    sqlite3_stmt *s = x->seq_st[l];
    int rc;
    if (!s) {
        char sql[96];
        snprintf(sql, sizeof sql, "UPDATE %s SET seq_keys=? WHERE pk=?", mt_index_level_table(l));
        rc = sqlite3_prepare_v3(x->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
        if (rc != SQLITE_OK)
            return db_err(x, rc, "prepare seq_keys");
        x->seq_st[l] = s;
    }
    sqlite3_bind_blob(s, 1, blob, (int)n, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, pk);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? 0 : db_err(x, rc, "seq_keys");
}

/* Delete the row pk of level `from` (SERIES, STUDY or PATIENT), then its parents, each only
 * if it has no children left. */
static int prune(sqlite_index_t *x, mt_index_level_t from, int64_t pk)
{
    static const int which[] = {ST_PRUNE_SERIES, ST_PRUNE_STUDY, ST_PRUNE_PATIENT};
    cache_drop(x);
    int first = from == MT_LEVEL_SERIES ? 0 : from == MT_LEVEL_STUDY ? 1 : 2;
    for (int i = first; i < 3; i++) {
        sqlite3_stmt *s = x->st[which[i]];
        sqlite3_bind_int64(s, 1, pk);
        int rc = sqlite3_step(s);
        bool deleted = rc == SQLITE_ROW;
        if (deleted)
            pk = sqlite3_column_int64(s, 0);
        while (rc == SQLITE_ROW)
            rc = sqlite3_step(s);
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        if (rc != SQLITE_DONE)
            return db_err(x, rc, "prune");
        if (!deleted)
            break;
    }
    return 0;
}

/* pk of the parent of the study (series) with this UID via stmt, 0 when it is new. */
static int parent_of(sqlite_index_t *x, int which, const char *uid, int64_t *parent)
{
    sqlite3_stmt *s = x->st[which];
    sqlite3_bind_text(s, 1, uid, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s), err = 0;
    *parent = 0;
    if (rc == SQLITE_ROW)
        *parent = sqlite3_column_int64(s, 0);
    else if (rc != SQLITE_DONE)
        err = db_err(x, rc, "parent lookup");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return err;
}

/* Find an instance: *pk = 0 when absent. */
static int find_instance(sqlite_index_t *x, const char *uid, int64_t *pk, int64_t *series_pk,
                         char *path, size_t pathsz)
{
    sqlite3_stmt *s = x->st[ST_FIND_INSTANCE];
    sqlite3_bind_text(s, 1, uid, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s), err = 0;
    *pk = 0;
    if (rc == SQLITE_ROW) {
        *pk = sqlite3_column_int64(s, 0);
        if (series_pk)
            *series_pk = sqlite3_column_int64(s, 1);
        if (path && pathsz)
            snprintf(path, pathsz, "%s", (const char *)sqlite3_column_text(s, 2));
    } else if (rc != SQLITE_DONE) {
        err = db_err(x, rc, "find instance");
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return err;
}

static int join_project(sqlite_index_t *x, const char *project, const char *study)
{
    sqlite3_stmt *s = x->st[ST_PROJECT_JOIN];
    sqlite3_bind_text(s, 1, project, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, study, -1, SQLITE_STATIC);
    return step_done(x, s, "project join");
}

/* which: ST_QUEUE_ADD (a newer copy replaces the row) or ST_QUEUE_ADD_KEEP. */
/* The lowest id this process gives a new forward_queue row: one above the last it gave, on
 * any connection. With the table's own max(id) + 1 (QUEUE_ID) an id is never given twice
 * while a send of it may be in flight, even when the rows above it were deleted (delivered,
 * replaced, purged), and a stream's rows keep rising ids (the forwarder's kick scans read the
 * ids above the last one they settled: forward.c "Scans"). Replaces AUTOINCREMENT, whose
 * counter row was one more page written by every commit (db/008_queue_ids.sql). A rolled
 * back row leaves a gap, which is harmless. */
static _Atomic int64_t queue_floor = 1;

static void raise_queue_floor(int64_t id)
{
    int64_t f = atomic_load(&queue_floor);
    while (f <= id && !atomic_compare_exchange_weak(&queue_floor, &f, id + 1))
        ;
}

static int queue_row(sqlite_index_t *x, int which, const char *dest, const char *sop,
                     const char *study, const char *series)
{
    sqlite3_stmt *s = x->st[which];
    sqlite3_bind_text(s, 1, dest, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, sop, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, study, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, series, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, atomic_load(&queue_floor));
    int rc = sqlite3_step(s); /* RETURNING id: no row when OR IGNORE kept the pending one */
    if (rc == SQLITE_ROW) {
        raise_queue_floor(sqlite3_column_int64(s, 0));
        rc = sqlite3_step(s);
    }
    int err = rc == SQLITE_DONE ? 0 : db_err(x, rc, "queue add");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return err;
}

/* The routing decision carried by rec (issue 6), in put()'s transaction: the study joins its
 * projects, the rules on the series tag are armed, and the instance is queued for each
 * destination (queue too: false for a copy that was not stored). */
static int route_rows(sqlite_index_t *x, const mt_index_rec_t *rec, bool queue)
{
    const char *study = mt_index_rec_get(rec, MT_TAG(0x0020, 0x000D));
    const char *series = mt_index_rec_get(rec, MT_TAG(0x0020, 0x000E));
    const char *sop = mt_index_rec_get(rec, MT_TAG(0x0008, 0x0018));
    const char *const *v;
    size_t n = mt_index_rec_projects(rec, &v);
    int err;
    for (size_t i = 0; i < n; i++)
        if ((err = join_project(x, v[i], study)))
            return err;
    n = queue ? mt_index_rec_armed(rec, &v) : 0;
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *s = x->st[ST_ARM];
        sqlite3_bind_text(s, 1, sop, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, v[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, series, -1, SQLITE_STATIC);
        if ((err = step_done(x, s, "arm tag route")))
            return err;
    }
    n = queue ? mt_index_rec_forwards(rec, &v) : 0;
    for (size_t i = 0; i < n; i++)
        if ((err = queue_row(x, ST_QUEUE_ADD, v[i], sop, study, series)))
            return err;
    return 0;
}

static int ix_put(mt_index_t *ix, const mt_index_rec_t *rec, mt_dup_policy_t dup,
                  mt_index_put_result_t *result, char *old_path, size_t old_path_sz)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    mt__index_file_t f;
    mt__index_rec_file(rec, &f);
    const char *sop = mt_index_rec_get(rec, MT_TAG(0x0008, 0x0018));
    if (!sop || !*sop || !f.rel_path || !f.ts_uid ||
        !mt_index_rec_get(rec, MT_TAG(0x0020, 0x000D)) ||
        !mt_index_rec_get(rec, MT_TAG(0x0020, 0x000E)))
        return MT_EINVAL;
    if (old_path && old_path_sz)
        old_path[0] = '\0';

    int64_t old_pk, old_series = 0;
    char prev[512];
    int err = find_instance(x, sop, &old_pk, &old_series, prev, sizeof prev);
    if (err)
        return err;
    if (old_pk) {
        if (dup == MT_DUP_REJECT) {
            *result = MT_INDEX_REJECTED_DUPLICATE;
            return 0;
        }
        if (dup == MT_DUP_KEEP_FIRST) {
            *result = MT_INDEX_KEPT_EXISTING;
            return route_rows(x, rec, false); /* the stored copy was forwarded already */
        }
        sqlite3_stmt *d = x->st[ST_DELETE_INSTANCE];
        sqlite3_bind_int64(d, 1, old_pk);
        if ((err = step_done(x, d, "delete instance")))
            return err;
    }

    int64_t patient_pk, study_pk, series_pk, study_was = 0, patient_was = 0;
    if ((err = cached_upsert(x, ST_UP_PATIENT, MT_LEVEL_PATIENT, 0, 0, NULL, rec, &patient_pk,
                             NULL)) ||
        (err = cached_upsert(x, ST_UP_STUDY, MT_LEVEL_STUDY, patient_pk, ST_STUDY_PARENT,
                             mt_index_rec_get(rec, MT_TAG(0x0020, 0x000D)), rec, &study_pk,
                             &patient_was)) ||
        (err = cached_upsert(x, ST_UP_SERIES, MT_LEVEL_SERIES, study_pk, ST_SERIES_PARENT,
                             mt_index_rec_get(rec, MT_TAG(0x0020, 0x000E)), rec, &series_pk,
                             &study_was)) ||
        (err = put_seq(x, MT_LEVEL_PATIENT, patient_pk, rec)) ||
        (err = put_seq(x, MT_LEVEL_STUDY, study_pk, rec)) ||
        (err = put_seq(x, MT_LEVEL_SERIES, series_pk, rec)))
        return err;
    /* a study (series) that moved to another patient (study) may leave its old parent empty */
    if (study_was && study_was != study_pk && (err = prune(x, MT_LEVEL_STUDY, study_was)))
        return err;
    if (patient_was && patient_was != patient_pk && (err = prune(x, MT_LEVEL_PATIENT, patient_was)))
        return err;

    sqlite3_stmt *s = x->st[ST_INSERT_INSTANCE];
    sqlite3_bind_int64(s, 1, series_pk);
    bind_level(x, s, 2, MT_LEVEL_INSTANCE, rec);
    int p = 2 + (int)x->n_cols[MT_LEVEL_INSTANCE];
    if (!mt_index_rec_get(rec, MT_TAG(0x0008, 0x0016)) && f.sop_class_uid) {
        /* SOP class from the file meta when the data set lacks it */
        size_t n;
        const mt_index_key_t *k = mt_index_keys(&n);
        for (size_t i = 0; i < x->n_cols[MT_LEVEL_INSTANCE]; i++)
            if (k[x->cols[MT_LEVEL_INSTANCE][i]].tag == MT_TAG(0x0008, 0x0016))
                sqlite3_bind_text(s, 2 + (int)i, f.sop_class_uid, -1, SQLITE_STATIC);
    }
    sqlite3_bind_text(s, p, f.rel_path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, p + 1, (sqlite3_int64)f.size);
    sqlite3_bind_text(s, p + 2, f.ts_uid, -1, SQLITE_STATIC);
    if (old_pk && strcmp(prev, f.rel_path) != 0)
        sqlite3_bind_text(s, p + 3, prev, -1, SQLITE_STATIC);
    if (f.has_checksum)
        sqlite3_bind_int64(s, p + 4, (sqlite3_int64)f.checksum);
    /* a new row of the one-flush path is unsynced from the start (mt_index_rec_set_unsynced) */
    sqlite3_bind_int(s, p + 5, !old_pk && f.unsynced && f.has_checksum ? 2 : 0);
    if ((err = step_done(x, s, "insert instance")))
        return err;
    if ((err = put_seq(x, MT_LEVEL_INSTANCE, sqlite3_last_insert_rowid(x->db), rec)))
        return err;

    if ((err = route_rows(x, rec, true)))
        return err;
    if (old_pk) {
        if (old_series != series_pk && (err = prune(x, MT_LEVEL_SERIES, old_series)))
            return err;
        *result = MT_INDEX_REPLACED;
        if (old_path && old_path_sz && strcmp(prev, f.rel_path) != 0)
            snprintf(old_path, old_path_sz, "%s", prev);
    } else {
        *result = MT_INDEX_INSERTED;
    }
    return 0;
}

static int ix_exists(mt_index_t *ix, const char *sop_instance_uid, bool *exists)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    int64_t pk;
    int err = find_instance(x, sop_instance_uid, &pk, NULL, NULL, 0);
    *exists = !err && pk != 0;
    return err;
}

static int ix_locate(mt_index_t *ix, const char *sop_instance_uid, char *path, size_t pathsz,
                     uint64_t *size)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(x->db, "SELECT path, size FROM instances WHERE sop_instance_uid=?",
                                -1, &s, NULL);
    if (rc != SQLITE_OK)
        return db_err(x, rc, "locate");
    sqlite3_bind_text(s, 1, sop_instance_uid, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    int err = 0;
    if (rc == SQLITE_ROW) {
        snprintf(path, pathsz, "%s", (const char *)sqlite3_column_text(s, 0));
        if (size)
            *size = (uint64_t)sqlite3_column_int64(s, 1);
    } else {
        err = rc == SQLITE_DONE ? MT_ENOENT : db_err(x, rc, "locate");
    }
    sqlite3_finalize(s);
    return err;
}

/* Step s once and read (patients, studies, series, instances, bytes) into out; s finalized. */
static int read_stats(sqlite_index_t *x, sqlite3_stmt *s, mt_index_stats_t *out, const char *what)
{
    int rc = sqlite3_step(s);
    int err = 0;
    if (rc == SQLITE_ROW) {
        out->patients = (uint64_t)sqlite3_column_int64(s, 0);
        out->studies = (uint64_t)sqlite3_column_int64(s, 1);
        out->series = (uint64_t)sqlite3_column_int64(s, 2);
        out->instances = (uint64_t)sqlite3_column_int64(s, 3);
        out->bytes = (uint64_t)sqlite3_column_int64(s, 4);
    } else {
        err = db_err(x, rc, what);
    }
    sqlite3_finalize(s);
    return err;
}

static int ix_stats(mt_index_t *ix, mt_index_stats_t *out)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(x->db,
                                "SELECT (SELECT count(*) FROM patients), (SELECT count(*) FROM "
                                "studies), (SELECT count(*) FROM series), (SELECT count(*) FROM "
                                "instances), (SELECT coalesce(sum(size), 0) FROM instances)",
                                -1, &s, NULL);
    if (rc != SQLITE_OK)
        return db_err(x, rc, "stats");
    return read_stats(x, s, out, "stats");
}

static int ix_project_add(mt_index_t *ix, const char *project, const char *study_uid,
                          bool *added)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    sqlite3_stmt *s;
    *added = false;
    int rc = sqlite3_prepare_v2(x->db,
                                "INSERT OR IGNORE INTO project_studies(project, study_uid) "
                                "SELECT ?1, study_instance_uid FROM studies WHERE "
                                "study_instance_uid = ?2",
                                -1, &s, NULL);
    if (rc != SQLITE_OK)
        return db_err(x, rc, "project add");
    sqlite3_bind_text(s, 1, project, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, study_uid, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        return db_err(x, rc, "project add");
    if (sqlite3_changes(x->db) > 0) {
        *added = true;
        return 0;
    }
    bool exists = false;
    rc = sqlite3_prepare_v2(x->db, "SELECT 1 FROM studies WHERE study_instance_uid = ?1", -1, &s,
                            NULL);
    if (rc != SQLITE_OK)
        return db_err(x, rc, "project add");
    sqlite3_bind_text(s, 1, study_uid, -1, SQLITE_STATIC);
    exists = sqlite3_step(s) == SQLITE_ROW;
    sqlite3_finalize(s);
    return exists ? 0 : MT_ENOENT;
}

static int ix_project_remove(mt_index_t *ix, const char *project, const char *study_uid,
                             bool *removed)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    sqlite3_stmt *s;
    *removed = false;
    int rc = sqlite3_prepare_v2(
        x->db, "DELETE FROM project_studies WHERE project = ?1 AND study_uid = ?2", -1, &s, NULL);
    if (rc != SQLITE_OK)
        return db_err(x, rc, "project remove");
    sqlite3_bind_text(s, 1, project, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, study_uid, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        return db_err(x, rc, "project remove");
    *removed = sqlite3_changes(x->db) > 0;
    return 0;
}

static int ix_project_stats(mt_index_t *ix, const char *project, mt_index_stats_t *out)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    sqlite3_stmt *s;
    memset(out, 0, sizeof *out);
    int rc = sqlite3_prepare_v2(
        x->db,
        "WITH st AS (SELECT studies.pk, studies.patient_pk FROM project_studies ps JOIN studies "
        "ON studies.study_instance_uid = ps.study_uid WHERE ps.project = ?1), "
        "se AS (SELECT series.pk FROM series JOIN st ON series.study_pk = st.pk) "
        "SELECT (SELECT count(DISTINCT patient_pk) FROM st), (SELECT count(*) FROM st), "
        "(SELECT count(*) FROM se), "
        "(SELECT count(*) FROM instances JOIN se ON instances.series_pk = se.pk), "
        "(SELECT coalesce(sum(size), 0) FROM instances JOIN se ON instances.series_pk = se.pk)",
        -1, &s, NULL);
    if (rc != SQLITE_OK)
        return db_err(x, rc, "project stats");
    sqlite3_bind_text(s, 1, project, -1, SQLITE_STATIC);
    return read_stats(x, s, out, "project stats");
}

static int ix_clear(mt_index_t *ix)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    cache_drop(x);
    const char *sql = "DELETE FROM instances; DELETE FROM series; DELETE FROM studies; "
                      "DELETE FROM patients; DELETE FROM dirty_dirs;";
    if (x->in_txn)
        return exec(x, sql);
    int err = ix_begin(ix);
    if (!err)
        err = exec(x, sql);
    if (!err)
        return ix_commit(ix);
    ix_rollback(ix);
    return err;
}

static int ix_mark_verified(mt_index_t *ix)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    return step_done(x, x->st[ST_MARK_VERIFIED], "mark verified");
}

static int ix_unverified(mt_index_t *ix, int (*cb)(void *u, const mt_index_pending_t *p), void *u)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(x->db,
                                "SELECT sop_instance_uid, path, replaces_path, size, verified, "
                                "checksum FROM instances WHERE verified<>1 ORDER BY pk",
                                -1, &s, NULL);
    if (rc != SQLITE_OK)
        return db_err(x, rc, "unverified");
    int err = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        mt_index_pending_t p = {
            .sop_instance_uid = (const char *)sqlite3_column_text(s, 0),
            .rel_path = (const char *)sqlite3_column_text(s, 1),
            .replaces_path = (const char *)sqlite3_column_text(s, 2),
            .size = (uint64_t)sqlite3_column_int64(s, 3),
            .unsynced = sqlite3_column_int(s, 4) == 2,
            .has_checksum = sqlite3_column_type(s, 5) == SQLITE_INTEGER,
            .checksum = (uint32_t)sqlite3_column_int64(s, 5),
        };
        err = cb(u, &p);
        if (err)
            break;
    }
    if (!err && rc != SQLITE_DONE)
        err = db_err(x, rc, "unverified");
    sqlite3_finalize(s);
    return err;
}

static int ix_verify(mt_index_t *ix, const char *sop_instance_uid, uint64_t size)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    sqlite3_stmt *s = x->st[ST_VERIFY];
    sqlite3_bind_int64(s, 1, (sqlite3_int64)size);
    sqlite3_bind_text(s, 2, sop_instance_uid, -1, SQLITE_STATIC);
    int err = step_done(x, s, "verify");
    if (!err && sqlite3_changes(x->db) == 0)
        err = MT_ENOENT;
    return err;
}

static int ix_remove(mt_index_t *ix, const char *sop_instance_uid)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    int64_t pk, series_pk;
    int err = find_instance(x, sop_instance_uid, &pk, &series_pk, NULL, 0);
    if (err)
        return err;
    if (!pk)
        return MT_ENOENT;
    sqlite3_stmt *d = x->st[ST_DELETE_INSTANCE];
    sqlite3_bind_int64(d, 1, pk);
    if ((err = step_done(x, d, "delete instance")))
        return err;
    return prune(x, MT_LEVEL_SERIES, series_pk);
}

static int ix_mark_unsynced(mt_index_t *ix, const char *sop_instance_uid)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    sqlite3_stmt *s = x->st[ST_MARK_UNSYNCED];
    sqlite3_bind_text(s, 1, sop_instance_uid, -1, SQLITE_STATIC);
    int err = step_done(x, s, "mark unsynced");
    if (!err && sqlite3_changes(x->db) == 0)
        err = MT_ENOENT;
    return err;
}

static int ix_dir_mark(mt_index_t *ix, const char *rel_dir)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    sqlite3_stmt *s = x->st[ST_DIR_MARK];
    sqlite3_bind_text(s, 1, rel_dir, -1, SQLITE_STATIC);
    return step_done(x, s, "mark directory");
}

static int ix_dir_unmark(mt_index_t *ix, const char *rel_dir)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    if (!rel_dir)
        return exec(x, "DELETE FROM dirty_dirs");
    sqlite3_stmt *s = x->st[ST_DIR_UNMARK];
    sqlite3_bind_text(s, 1, rel_dir, -1, SQLITE_STATIC);
    return step_done(x, s, "unmark directory");
}

static int ix_dirs(mt_index_t *ix, int (*cb)(void *u, const char *rel_dir), void *u)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(x->db, "SELECT path FROM dirty_dirs", -1, &s, NULL);
    if (rc != SQLITE_OK)
        return db_err(x, rc, "dirs");
    int err = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        if ((err = cb(u, (const char *)sqlite3_column_text(s, 0))))
            break;
    if (!err && rc != SQLITE_DONE)
        err = db_err(x, rc, "dirs");
    sqlite3_finalize(s);
    return err;
}

static void ix_close(mt_index_t *ix)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    if (!x)
        return;
    if (x->in_txn)
        ix_rollback(ix);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(x->st[i]);
    for (int l = 0; l < MT_LEVEL_COUNT; l++)
        sqlite3_finalize(x->seq_st[l]);
    sqlite3_close(x->db);
    if (x->wal_fd >= 0)
        close(x->wal_fd);
    for (int l = 0; l < MT_LEVEL_COUNT; l++)
        mt_buf_dispose(&x->up_cache[l].sig);
    mt_free(x);
}

/* journal_mode=WAL, checked: the durability argument (file comment) assumes WAL, where a
 * COMMIT only appends to the -wal file next to the database. */
static int journal_wal(sqlite_index_t *x)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(x->db, "PRAGMA journal_mode=WAL", -1, &s, NULL);
    if (rc != SQLITE_OK)
        return db_err(x, rc, "journal_mode");
    rc = sqlite3_step(s);
    bool wal = rc == SQLITE_ROW && sqlite3_column_text(s, 0) &&
               strcmp((const char *)sqlite3_column_text(s, 0), "wal") == 0;
    sqlite3_finalize(s);
    if (!wal) {
        mt_log(MT_LOG_ERROR, NULL, "index: cannot switch %s to WAL mode",
               sqlite3_db_filename(x->db, "main"));
        return MT_EDB;
    }
    return 0;
}

static int ix_tag_put(mt_index_t *ix, const mt_index_tag_t *t, unsigned *revision)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    sqlite3_stmt *s = x->st[ST_TAG_PUT]; /* prepared once: a pass writes many series */
    int rc;
    sqlite3_bind_text(s, 1, t->series_uid, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, t->study_uid ? t->study_uid : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, t->tag, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, t->view ? t->view : "", -1, SQLITE_STATIC);
    sqlite3_bind_double(s, 5, t->confidence);
    sqlite3_bind_text(s, 6, t->evidence ? t->evidence : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, t->version ? t->version : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 8, t->manufacturer);
    rc = sqlite3_step(s);
    int err = 0;
    if (rc == SQLITE_ROW) {
        if (revision)
            *revision = (unsigned)sqlite3_column_int(s, 0);
        rc = sqlite3_step(s);
    }
    if (rc != SQLITE_DONE)
        err = db_err(x, rc, "tag put");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return err;
}

static int ix_tag_each(mt_index_t *ix, const char *project, const char *from, const char *to,
                       int (*cb)(void *u, const mt_index_tag_t *t), void *u)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(
        x->db,
        "SELECT t.series_uid, t.study_uid, t.tag, t.view, t.confidence, t.evidence, t.version, "
        "t.revision, t.manufacturer, st.study_date FROM series_tags t "
        "JOIN studies st ON st.study_instance_uid = t.study_uid "
        "WHERE (?1 IS NULL OR EXISTS (SELECT 1 FROM project_studies ps WHERE ps.project = ?1 "
        "AND ps.study_uid = t.study_uid)) "
        "AND (?2 IS NULL OR st.study_date >= ?2) AND (?3 IS NULL OR st.study_date <= ?3) "
        "ORDER BY t.study_uid, t.series_uid",
        -1, &s, NULL);
    if (rc != SQLITE_OK)
        return db_err(x, rc, "tag list");
    sqlite3_bind_text(s, 1, project, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, from, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, to, -1, SQLITE_STATIC);
    int err = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        mt_index_tag_t t = {
            .series_uid = (const char *)sqlite3_column_text(s, 0),
            .study_uid = (const char *)sqlite3_column_text(s, 1),
            .tag = (const char *)sqlite3_column_text(s, 2),
            .view = (const char *)sqlite3_column_text(s, 3),
            .confidence = sqlite3_column_double(s, 4),
            .evidence = (const char *)sqlite3_column_text(s, 5),
            .version = (const char *)sqlite3_column_text(s, 6),
            .revision = (unsigned)sqlite3_column_int(s, 7),
            .manufacturer = sqlite3_column_int(s, 8),
            .study_date = (const char *)sqlite3_column_text(s, 9),
        };
        if ((err = cb(u, &t)) != 0)
            break;
    }
    if (!err && rc != SQLITE_DONE)
        err = db_err(x, rc, "tag list");
    sqlite3_finalize(s);
    return err;
}

/* ---- routing on the series tag (db/007_tag_routes.sql) ---- */

static int ix_tag_route_armed(mt_index_t *ix, const char *series_uid,
                              int (*cb)(void *u, const char *sop, const char *rule, bool fired),
                              void *u)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(x->db,
                                "SELECT r.sop_instance_uid, r.rule, r.fired FROM tag_routes r "
                                "JOIN instances i ON i.sop_instance_uid = r.sop_instance_uid "
                                "WHERE r.series_uid = ?1 ORDER BY r.sop_instance_uid",
                                -1, &s, NULL);
    if (rc != SQLITE_OK)
        return db_err(x, rc, "tag routes");
    sqlite3_bind_text(s, 1, series_uid, -1, SQLITE_STATIC);
    int err = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        if ((err = cb(u, (const char *)sqlite3_column_text(s, 0),
                      (const char *)sqlite3_column_text(s, 1), sqlite3_column_int(s, 2) != 0)))
            break;
    if (!err && rc != SQLITE_DONE)
        err = db_err(x, rc, "tag routes");
    sqlite3_finalize(s);
    return err;
}

static int ix_tag_route_fire(mt_index_t *ix, const char *sop, const char *study_uid,
                             const char *series_uid, const char *const *rules, size_t n_rules,
                             const char *const *dests, size_t n_dests, const char *const *projects,
                             size_t n_projects)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    int err = 0;
    for (size_t i = 0; i < n_dests && !err; i++)
        err = queue_row(x, ST_QUEUE_ADD_KEEP, dests[i], sop, study_uid, series_uid);
    for (size_t i = 0; i < n_projects && !err; i++)
        err = join_project(x, projects[i], study_uid);
    for (size_t i = 0; i < n_rules && !err; i++) {
        sqlite3_stmt *s = x->st[ST_FIRE];
        sqlite3_bind_text(s, 1, sop, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, rules[i], -1, SQLITE_STATIC);
        err = step_done(x, s, "fire tag route");
    }
    return err;
}

/* ---- forwarding queue ---- */

static int ix_queue_list(mt_index_t *ix, const char *destination, int state, int64_t due_ms,
                         int64_t after_id, size_t limit,
                         int (*cb)(void *u, const mt_index_queue_entry_t *e), void *u)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    sqlite3_stmt *s = x->st[ST_QUEUE_LIST]; /* prepared once: compiling the join cost more
                                              * than running it (bench/README.md) */
    int rc;
    if (destination)
        sqlite3_bind_text(s, 1, destination, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, state);
    sqlite3_bind_int64(s, 3, due_ms);
    sqlite3_bind_int64(s, 4, limit ? (sqlite3_int64)limit : -1);
    sqlite3_bind_int64(s, 5, after_id);
    int ret = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        mt_index_queue_entry_t e = {
            .id = sqlite3_column_int64(s, 0),
            .destination = (const char *)sqlite3_column_text(s, 1),
            .sop_instance_uid = (const char *)sqlite3_column_text(s, 2),
            .study_uid = (const char *)sqlite3_column_text(s, 3),
            .dead = sqlite3_column_int(s, 4) == 1,
            .attempts = (uint32_t)sqlite3_column_int(s, 5),
            .queued_at_ms = sqlite3_column_int64(s, 6),
            .next_at_ms = sqlite3_column_int64(s, 7),
            .last_error = (const char *)sqlite3_column_text(s, 8),
            .rel_path = (const char *)sqlite3_column_text(s, 9),
            .sop_class_uid = (const char *)sqlite3_column_text(s, 10),
            .ts_uid = (const char *)sqlite3_column_text(s, 11),
            .series_uid = (const char *)sqlite3_column_text(s, 12),
        };
        if ((ret = cb(u, &e)) != 0)
            break;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = db_err(x, rc, "queue list");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return ret;
}

static int exec_changes(sqlite_index_t *x, sqlite3_stmt *s, const char *what, size_t *n)
{
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        return db_err(x, rc, what);
    if (n)
        *n = (size_t)sqlite3_changes(x->db);
    return 0;
}

static int ix_queue_done(mt_index_t *ix, int64_t id)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    sqlite3_stmt *s = x->st[ST_QUEUE_DONE];
    sqlite3_bind_int64(s, 1, id);
    int err = step_done(x, s, "queue done");
    return err ? err : sqlite3_changes(x->db) ? 0 : MT_ENOENT;
}

static int ix_queue_failed(mt_index_t *ix, int64_t id, int64_t next_at_ms, bool dead,
                           bool counted, const char *error)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(x->db,
                                "UPDATE forward_queue SET attempts = attempts + ?5, next_at = ?2, "
                                "state = ?3, last_error = ?4 WHERE id = ?1",
                                -1, &s, NULL);
    if (rc != SQLITE_OK)
        return db_err(x, rc, "queue failed");
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, next_at_ms);
    sqlite3_bind_int(s, 3, dead ? 1 : 0);
    if (error)
        sqlite3_bind_text(s, 4, error, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 5, counted ? 1 : 0);
    return exec_changes(x, s, "queue failed", NULL);
}

static int ix_queue_retry(mt_index_t *ix, const char *destination, int64_t id, bool dead_only,
                          size_t *n)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(
        x->db,
        "UPDATE forward_queue SET state = 0, attempts = 0, next_at = " NOW_MS ", queued_at = "
        NOW_MS " WHERE "
        "(?1 > 0 AND id = ?1) OR (?1 <= 0 AND (?2 IS NULL OR destination = ?2) AND "
        "(?3 = 0 OR state = 1))",
        -1, &s, NULL);
    if (rc != SQLITE_OK)
        return db_err(x, rc, "queue retry");
    sqlite3_bind_int64(s, 1, id);
    if (destination)
        sqlite3_bind_text(s, 2, destination, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, dead_only ? 1 : 0);
    return exec_changes(x, s, "queue retry", n);
}

static int ix_queue_purge(mt_index_t *ix, const char *destination, int64_t id, bool dead_only,
                          size_t *n)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(x->db,
                                "DELETE FROM forward_queue WHERE (?1 > 0 AND id = ?1) OR "
                                "(?1 <= 0 AND (?2 IS NULL OR destination = ?2) AND "
                                "(?3 = 0 OR state = 1))",
                                -1, &s, NULL);
    if (rc != SQLITE_OK)
        return db_err(x, rc, "queue purge");
    sqlite3_bind_int64(s, 1, id);
    if (destination)
        sqlite3_bind_text(s, 2, destination, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, dead_only ? 1 : 0);
    return exec_changes(x, s, "queue purge", n);
}

static int ix_queue_destinations(mt_index_t *ix,
                                 int (*cb)(void *u, const char *destination, size_t pending,
                                           size_t dead),
                                 void *u)
{
    sqlite_index_t *x = (sqlite_index_t *)ix;
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(x->db,
                                "SELECT destination, sum(state = 0), sum(state = 1) FROM "
                                "forward_queue GROUP BY destination ORDER BY destination",
                                -1, &s, NULL);
    if (rc != SQLITE_OK)
        return db_err(x, rc, "queue destinations");
    int stop = 0;
    while (!stop && (rc = sqlite3_step(s)) == SQLITE_ROW)
        stop = cb(u, (const char *)sqlite3_column_text(s, 0),
                  (size_t)sqlite3_column_int64(s, 1), (size_t)sqlite3_column_int64(s, 2));
    sqlite3_finalize(s);
    if (stop)
        return stop;
    return rc == SQLITE_DONE ? 0 : db_err(x, rc, "queue destinations");
}

static const mt_index_ops_t sqlite_ops = {
    .name = "sqlite",
    .begin = ix_begin,
    .put = ix_put,
    .exists = ix_exists,
    .commit = ix_commit,
    .start_writeback = ix_start_writeback,
    .rollback = ix_rollback,
    .stats = ix_stats,
    .clear = ix_clear,
    .close = ix_close,
    .mark_verified = ix_mark_verified,
    .unverified = ix_unverified,
    .verify = ix_verify,
    .remove = ix_remove,
    .locate = ix_locate,
    .mark_unsynced = ix_mark_unsynced,
    .dir_mark = ix_dir_mark,
    .dir_unmark = ix_dir_unmark,
    .dirs = ix_dirs,
    .project_add = ix_project_add,
    .project_remove = ix_project_remove,
    .project_stats = ix_project_stats,
    .tag_put = ix_tag_put,
    .tag_each = ix_tag_each,
    .tag_route_armed = ix_tag_route_armed,
    .tag_route_fire = ix_tag_route_fire,
    .queue_list = ix_queue_list,
    .queue_done = ix_queue_done,
    .queue_failed = ix_queue_failed,
    .queue_retry = ix_queue_retry,
    .queue_purge = ix_queue_purge,
    .queue_destinations = ix_queue_destinations,
};

int mt_index_sqlite_open(const char *path, mt_index_t **out)
{
    *out = NULL;
    sqlite_index_t *x = mt_calloc(1, sizeof *x);
    for (int l = 0; l < MT_LEVEL_COUNT; l++)
        mt_buf_init(&x->up_cache[l].sig, 4096);
    x->base.ops = &sqlite_ops;
    x->wal_fd = -1;
    int rc = sqlite3_open_v2(
        path, &x->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    int err;
    if (rc != SQLITE_OK) {
        mt_log(MT_LOG_ERROR, NULL, "index: cannot open %s: %s", path,
               x->db ? sqlite3_errmsg(x->db) : sqlite3_errstr(rc));
        err = rc == SQLITE_CANTOPEN ? MT_ENOENT : MT_EDB;
        goto fail;
    }
    sqlite3_busy_handler(x->db, busy_wait, NULL);
    if ((err = exec(x, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
                       "PRAGMA cache_size=-8192;")))
        goto fail;
    if ((err = journal_wal(x)))
        goto fail;
    if ((err = migrate(x)))
        goto fail;
    level_cols(x);
    if ((err = prepare_all(x)))
        goto fail;
    *out = &x->base;
    return 0;
fail:
    ix_close(&x->base);
    return err;
}
