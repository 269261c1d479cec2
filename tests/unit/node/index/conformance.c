/* The index backend conformance suite (STYLE §7): every test runs against each backend in
 * `backends` (today: SQLite). put / exists / the three duplicate policies / stats / remove
 * (with pruning) / locate / verified bookkeeping / clear, the record's value conversions, and
 * for SQLite: every keys.def column exists in the schema, migrations from an empty file, and a
 * database newer than the binary is refused; start_writeback opens the -wal file once and closes
 * it with the index. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "dicom/ds.h"
#include "index/index.h"
#include "index/keys.h"
#include "util/alloc.h"
#include "util/err.h"

#define T_SOP_CLASS MT_TAG(0x0008, 0x0016)
#define T_SOP MT_TAG(0x0008, 0x0018)
#define T_STUDY_DATE MT_TAG(0x0008, 0x0020)
#define T_MODALITY MT_TAG(0x0008, 0x0060)
#define T_STUDY_DESC MT_TAG(0x0008, 0x1030)
#define T_PNAME MT_TAG(0x0010, 0x0010)
#define T_PID MT_TAG(0x0010, 0x0020)
#define T_STUDY MT_TAG(0x0020, 0x000D)
#define T_SERIES MT_TAG(0x0020, 0x000E)
#define T_ROWS MT_TAG(0x0028, 0x0010)
#define T_IOP MT_TAG(0x0020, 0x0037)

typedef struct backend {
    const char *name;
    int (*open)(const char *path, mt_index_t **out);
} backend_t;

static const backend_t backends[] = {
    {"sqlite", mt_index_sqlite_open},
};

typedef struct fixture {
    const backend_t *be;
    char dir[64], path[128];
    mt_index_t *ix;
    long live;
} fixture_t;

static void offer_str(mt_index_rec_t *r, uint32_t tag, uint16_t vr, const char *s)
{
    mt_index_rec_offer(r, tag, vr, (const uint8_t *)s, strlen(s), false);
}

/* A record for instance sop of series/study of patient pid, stored at path (size bytes). */
static mt_index_rec_t *rec_make(const char *pid, const char *study, const char *series,
                                const char *sop, const char *path, uint64_t size)
{
    mt_index_rec_t *r = mt_index_rec_new();
    offer_str(r, T_PID, MT_VR('L', 'O'), pid);
    offer_str(r, T_PNAME, MT_VR('P', 'N'), "Doe^Jane ");
    offer_str(r, T_STUDY, MT_VR('U', 'I'), study);
    offer_str(r, T_SERIES, MT_VR('U', 'I'), series);
    offer_str(r, T_SOP, MT_VR('U', 'I'), sop);
    offer_str(r, T_SOP_CLASS, MT_VR('U', 'I'), "1.2.840.10008.5.1.4.1.1.4");
    offer_str(r, T_MODALITY, MT_VR('C', 'S'), "MR");
    mt_index_rec_set_file(r, path, size, "1.2.840.10008.1.2.1", "1.2.840.10008.5.1.4.1.1.4");
    return r;
}

static int setup(void **state, const backend_t *be)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->be = be;
    f->live = mt_alloc_live();
    snprintf(f->dir, sizeof f->dir, "/tmp/mt-index-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/index.sqlite", f->dir);
    assert_int_equal(be->open(f->path, &f->ix), 0);
    assert_string_equal(f->ix->ops->name, be->name);
    *state = f;
    return 0;
}

static int setup_sqlite(void **state)
{
    return setup(state, &backends[0]);
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f->ix)
        f->ix->ops->close(f->ix);
    assert_int_equal(mt_alloc_live(), f->live);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void put_ok(mt_index_t *ix, mt_index_rec_t *r, mt_dup_policy_t dup,
                   mt_index_put_result_t want, const char *want_old)
{
    mt_index_put_result_t res;
    char old[256] = "x";
    assert_int_equal(ix->ops->begin(ix), 0);
    assert_int_equal(ix->ops->put(ix, r, dup, &res, old, sizeof old), 0);
    assert_int_equal(ix->ops->commit(ix), 0);
    assert_int_equal(res, want);
    assert_string_equal(old, want_old);
    mt_index_rec_free(r);
}

static void stats_are(mt_index_t *ix, uint64_t pa, uint64_t st, uint64_t se, uint64_t in,
                      uint64_t bytes)
{
    mt_index_stats_t s;
    assert_int_equal(ix->ops->stats(ix, &s), 0);
    assert_int_equal(s.patients, pa);
    assert_int_equal(s.studies, st);
    assert_int_equal(s.series, se);
    assert_int_equal(s.instances, in);
    assert_int_equal(s.bytes, bytes);
}

static void test_put_exists_stats(void **state)
{
    fixture_t *f = *state;
    mt_index_t *ix = f->ix;
    stats_are(ix, 0, 0, 0, 0, 0);
    put_ok(ix, rec_make("P1", "1.1", "1.1.1", "1.1.1.1", "a/1.dcm", 100), MT_DUP_OVERWRITE,
           MT_INDEX_INSERTED, "");
    put_ok(ix, rec_make("P1", "1.1", "1.1.1", "1.1.1.2", "a/2.dcm", 50), MT_DUP_OVERWRITE,
           MT_INDEX_INSERTED, "");
    put_ok(ix, rec_make("P1", "1.1", "1.1.2", "1.1.2.1", "a/3.dcm", 7), MT_DUP_OVERWRITE,
           MT_INDEX_INSERTED, "");
    put_ok(ix, rec_make("P2", "1.2", "1.2.1", "1.2.1.1", "b/1.dcm", 1), MT_DUP_OVERWRITE,
           MT_INDEX_INSERTED, "");
    stats_are(ix, 2, 2, 3, 4, 158);
    bool e;
    assert_int_equal(ix->ops->exists(ix, "1.1.1.2", &e), 0);
    assert_true(e);
    assert_int_equal(ix->ops->exists(ix, "9.9", &e), 0);
    assert_false(e);

    char p[256];
    uint64_t size = 0;
    assert_int_equal(ix->ops->locate(ix, "1.1.2.1", p, sizeof p, &size), 0);
    assert_string_equal(p, "a/3.dcm");
    assert_int_equal(size, 7);
    assert_int_equal(ix->ops->locate(ix, "9.9", p, sizeof p, &size), MT_ENOENT);

    /* a record without its identity or file facts is refused */
    mt_index_rec_t *r = mt_index_rec_new();
    offer_str(r, T_SOP, MT_VR('U', 'I'), "1.5");
    mt_index_put_result_t res;
    assert_int_equal(ix->ops->begin(ix), 0);
    assert_int_equal(ix->ops->put(ix, r, MT_DUP_OVERWRITE, &res, NULL, 0), MT_EINVAL);
    offer_str(r, T_STUDY, MT_VR('U', 'I'), "1.5");
    offer_str(r, T_SERIES, MT_VR('U', 'I'), "1.5.1");
    assert_int_equal(ix->ops->put(ix, r, MT_DUP_OVERWRITE, &res, NULL, 0), MT_EINVAL);
    mt_index_rec_set_file(r, "c/1.dcm", 1, "1.2.840.10008.1.2", NULL);
    assert_int_equal(ix->ops->put(ix, r, MT_DUP_OVERWRITE, &res, NULL, 0), 0); /* no PID: "" */
    assert_int_equal(ix->ops->rollback(ix), 0);
    mt_index_rec_free(r);
    stats_are(ix, 2, 2, 3, 4, 158); /* rolled back */

    /* transactions do not nest; commit/rollback need one */
    assert_int_equal(ix->ops->commit(ix), MT_ESTATE);
    assert_int_equal(ix->ops->rollback(ix), MT_ESTATE);
    assert_int_equal(ix->ops->begin(ix), 0);
    assert_int_equal(ix->ops->begin(ix), MT_ESTATE);
    assert_int_equal(ix->ops->rollback(ix), 0);

    assert_int_equal(ix->ops->clear(ix), 0);
    stats_are(ix, 0, 0, 0, 0, 0);
}

static void test_duplicates(void **state)
{
    fixture_t *f = *state;
    mt_index_t *ix = f->ix;
    put_ok(ix, rec_make("P1", "1.1", "1.1.1", "1.1.1.1", "a/1.dcm", 100), MT_DUP_REJECT,
           MT_INDEX_INSERTED, "");
    /* reject and keep-first write nothing */
    put_ok(ix, rec_make("P1", "1.1", "1.1.1", "1.1.1.1", "a/1.dcm", 5), MT_DUP_REJECT,
           MT_INDEX_REJECTED_DUPLICATE, "");
    put_ok(ix, rec_make("P1", "1.1", "1.1.1", "1.1.1.1", "a/1.dcm", 5), MT_DUP_KEEP_FIRST,
           MT_INDEX_KEPT_EXISTING, "");
    stats_are(ix, 1, 1, 1, 1, 100);
    /* overwrite at the same path: no old path to delete */
    put_ok(ix, rec_make("P1", "1.1", "1.1.1", "1.1.1.1", "a/1.dcm", 5), MT_DUP_OVERWRITE,
           MT_INDEX_REPLACED, "");
    stats_are(ix, 1, 1, 1, 1, 5);
    /* overwrite from another study and patient: the old file's path is reported, the empty
     * series / study / patient are pruned */
    put_ok(ix, rec_make("P2", "2.1", "2.1.1", "1.1.1.1", "b/1.dcm", 9), MT_DUP_OVERWRITE,
           MT_INDEX_REPLACED, "a/1.dcm");
    stats_are(ix, 1, 1, 1, 1, 9);
    char p[256];
    assert_int_equal(ix->ops->locate(ix, "1.1.1.1", p, sizeof p, NULL), 0);
    assert_string_equal(p, "b/1.dcm");
}

typedef struct unv {
    int n;
    char sop[4][64], path[4][64], replaces[4][64];
    uint64_t size[4];
    bool unsynced[4];
    int64_t checksum[4];
} unv_t;

static int on_unverified(void *u, const mt_index_pending_t *p)
{
    unv_t *v = u;
    if (v->n < 4) {
        snprintf(v->sop[v->n], 64, "%s", p->sop_instance_uid);
        snprintf(v->path[v->n], 64, "%s", p->rel_path);
        snprintf(v->replaces[v->n], 64, "%s", p->replaces_path ? p->replaces_path : "-");
        v->size[v->n] = p->size;
        v->unsynced[v->n] = p->unsynced;
        v->checksum[v->n] = p->has_checksum ? (int64_t)p->checksum : -1;
    }
    v->n++;
    return 0;
}

static int stop_walk(void *u, const mt_index_pending_t *p)
{
    (void)p;
    ++*(int *)u;
    return 42;
}

static void test_verified_bookkeeping(void **state)
{
    fixture_t *f = *state;
    mt_index_t *ix = f->ix;
    put_ok(ix, rec_make("P1", "1.1", "1.1.1", "1.1.1.1", "a/1.dcm", 10), MT_DUP_OVERWRITE,
           MT_INDEX_INSERTED, "");
    put_ok(ix, rec_make("P1", "1.1", "1.1.1", "1.1.1.2", "a/2.dcm", 20), MT_DUP_OVERWRITE,
           MT_INDEX_INSERTED, "");
    unv_t v = {0};
    assert_int_equal(ix->ops->unverified(ix, on_unverified, &v), 0);
    assert_int_equal(v.n, 2); /* new rows start unverified, in insertion order */
    assert_string_equal(v.sop[0], "1.1.1.1");
    assert_string_equal(v.path[1], "a/2.dcm");
    assert_string_equal(v.replaces[0], "-");
    int calls = 0;
    assert_int_equal(ix->ops->unverified(ix, stop_walk, &calls), 42);
    assert_int_equal(calls, 1);

    assert_int_equal(ix->ops->begin(ix), 0);
    assert_int_equal(ix->ops->verify(ix, "1.1.1.1", 11), 0); /* size found on disk */
    assert_int_equal(ix->ops->verify(ix, "9.9", 1), MT_ENOENT);
    assert_int_equal(ix->ops->commit(ix), 0);
    memset(&v, 0, sizeof v);
    assert_int_equal(ix->ops->unverified(ix, on_unverified, &v), 0);
    assert_int_equal(v.n, 1);
    assert_string_equal(v.sop[0], "1.1.1.2");
    stats_are(ix, 1, 1, 1, 2, 31);

    /* a replacement at another path starts unverified and remembers the old file */
    put_ok(ix, rec_make("P1", "1.1", "1.1.9", "1.1.1.1", "a/9.dcm", 10), MT_DUP_OVERWRITE,
           MT_INDEX_REPLACED, "a/1.dcm");
    memset(&v, 0, sizeof v);
    assert_int_equal(ix->ops->unverified(ix, on_unverified, &v), 0);
    assert_int_equal(v.n, 2);
    assert_string_equal(v.sop[1], "1.1.1.1");
    assert_string_equal(v.path[1], "a/9.dcm");
    assert_string_equal(v.replaces[1], "a/1.dcm");

    assert_int_equal(ix->ops->begin(ix), 0);
    assert_int_equal(ix->ops->mark_verified(ix), 0);
    assert_int_equal(ix->ops->commit(ix), 0);
    memset(&v, 0, sizeof v);
    assert_int_equal(ix->ops->unverified(ix, on_unverified, &v), 0);
    assert_int_equal(v.n, 0);
    /* a later overwrite at the same path forgets nothing it should not */
    put_ok(ix, rec_make("P1", "1.1", "1.1.9", "1.1.1.1", "a/9.dcm", 12), MT_DUP_OVERWRITE,
           MT_INDEX_REPLACED, "");
    memset(&v, 0, sizeof v);
    assert_int_equal(ix->ops->unverified(ix, on_unverified, &v), 0);
    assert_int_equal(v.n, 1);
    assert_string_equal(v.replaces[0], "-");
    assert_false(v.unsynced[0]);
    assert_int_equal(v.checksum[0], -1);

    /* the one-flush path: a row marked unsynced, with its checksum */
    mt_index_rec_t *r = rec_make("P1", "1.1", "1.1.9", "1.1.1.7", "a/7.dcm", 3);
    mt_index_rec_set_checksum(r, 0xDEADBEEF);
    mt_index_put_result_t res;
    assert_int_equal(ix->ops->begin(ix), 0);
    assert_int_equal(ix->ops->put(ix, r, MT_DUP_OVERWRITE, &res, NULL, 0), 0);
    assert_int_equal(ix->ops->mark_unsynced(ix, "1.1.1.7"), 0);
    assert_int_equal(ix->ops->mark_unsynced(ix, "9.9"), MT_ENOENT);
    assert_int_equal(ix->ops->commit(ix), 0);
    mt_index_rec_free(r);
    memset(&v, 0, sizeof v);
    assert_int_equal(ix->ops->unverified(ix, on_unverified, &v), 0);
    assert_int_equal(v.n, 2);
    assert_string_equal(v.sop[1], "1.1.1.7");
    assert_true(v.unsynced[1]);
    assert_int_equal(v.checksum[1], 0xDEADBEEF);
    assert_int_equal(ix->ops->begin(ix), 0);
    assert_int_equal(ix->ops->mark_verified(ix), 0);
    assert_int_equal(ix->ops->commit(ix), 0);
    memset(&v, 0, sizeof v);
    assert_int_equal(ix->ops->unverified(ix, on_unverified, &v), 0);
    assert_int_equal(v.n, 0);

    /* put() of a record set unsynced: a new row goes in unsynced at once, a replacement
     * (whose old file is acknowledged data) verified=0 all the same */
    r = rec_make("P1", "1.1", "1.1.9", "1.1.1.8", "a/8.dcm", 4);
    mt_index_rec_set_checksum(r, 0x12345678);
    mt_index_rec_set_unsynced(r, true);
    assert_int_equal(ix->ops->begin(ix), 0);
    assert_int_equal(ix->ops->put(ix, r, MT_DUP_OVERWRITE, &res, NULL, 0), 0);
    assert_int_equal(res, MT_INDEX_INSERTED);
    assert_int_equal(ix->ops->commit(ix), 0);
    memset(&v, 0, sizeof v);
    assert_int_equal(ix->ops->unverified(ix, on_unverified, &v), 0);
    assert_int_equal(v.n, 1);
    assert_string_equal(v.sop[0], "1.1.1.8");
    assert_true(v.unsynced[0]);
    assert_int_equal(v.checksum[0], 0x12345678);
    assert_int_equal(ix->ops->begin(ix), 0);
    assert_int_equal(ix->ops->mark_verified(ix), 0);
    assert_int_equal(ix->ops->put(ix, r, MT_DUP_OVERWRITE, &res, NULL, 0), 0);
    assert_int_equal(res, MT_INDEX_REPLACED);
    assert_int_equal(ix->ops->commit(ix), 0);
    mt_index_rec_free(r);
    memset(&v, 0, sizeof v);
    assert_int_equal(ix->ops->unverified(ix, on_unverified, &v), 0);
    assert_int_equal(v.n, 1);
    assert_false(v.unsynced[0]);
}

static void test_remove_prunes(void **state)
{
    fixture_t *f = *state;
    mt_index_t *ix = f->ix;
    put_ok(ix, rec_make("P1", "1.1", "1.1.1", "1.1.1.1", "a/1.dcm", 1), MT_DUP_OVERWRITE,
           MT_INDEX_INSERTED, "");
    put_ok(ix, rec_make("P1", "1.1", "1.1.1", "1.1.1.2", "a/2.dcm", 1), MT_DUP_OVERWRITE,
           MT_INDEX_INSERTED, "");
    put_ok(ix, rec_make("P1", "1.1", "1.1.2", "1.1.2.1", "a/3.dcm", 1), MT_DUP_OVERWRITE,
           MT_INDEX_INSERTED, "");
    put_ok(ix, rec_make("P2", "1.2", "1.2.1", "1.2.1.1", "b/1.dcm", 1), MT_DUP_OVERWRITE,
           MT_INDEX_INSERTED, "");
    assert_int_equal(ix->ops->begin(ix), 0);
    assert_int_equal(ix->ops->remove(ix, "1.1.1.1"), 0);
    assert_int_equal(ix->ops->commit(ix), 0);
    stats_are(ix, 2, 2, 3, 3, 3); /* series 1.1.1 still has 1.1.1.2 */
    assert_int_equal(ix->ops->begin(ix), 0);
    assert_int_equal(ix->ops->remove(ix, "1.1.1.2"), 0);
    assert_int_equal(ix->ops->remove(ix, "1.1.1.2"), MT_ENOENT);
    assert_int_equal(ix->ops->commit(ix), 0);
    stats_are(ix, 2, 2, 2, 2, 2); /* series pruned */
    assert_int_equal(ix->ops->begin(ix), 0);
    assert_int_equal(ix->ops->remove(ix, "1.2.1.1"), 0);
    assert_int_equal(ix->ops->commit(ix), 0);
    stats_are(ix, 1, 1, 1, 1, 1); /* series, study and patient P2 pruned */

    /* a study seen under another patient moves; the patient left empty goes */
    put_ok(ix, rec_make("P3", "1.1", "1.1.2", "1.1.2.2", "a/4.dcm", 1), MT_DUP_OVERWRITE,
           MT_INDEX_INSERTED, "");
    stats_are(ix, 1, 1, 1, 2, 2);
    /* a series seen under another study moves; the empty study and its patient go */
    put_ok(ix, rec_make("P4", "1.7", "1.1.2", "1.1.2.3", "a/5.dcm", 1), MT_DUP_OVERWRITE,
           MT_INDEX_INSERTED, "");
    stats_are(ix, 1, 1, 1, 3, 3);
}

typedef struct dirs_seen {
    int n;
    char d[4][64];
} dirs_seen_t;

static int on_dir(void *u, const char *rel_dir)
{
    dirs_seen_t *v = u;
    if (v->n < 4)
        snprintf(v->d[v->n], 64, "%s", rel_dir);
    v->n++;
    return 0;
}

static void test_dirty_dirs(void **state)
{
    fixture_t *f = *state;
    mt_index_t *ix = f->ix;
    dirs_seen_t v = {0};
    assert_int_equal(ix->ops->dirs(ix, on_dir, &v), 0);
    assert_int_equal(v.n, 0);
    assert_int_equal(ix->ops->begin(ix), 0);
    assert_int_equal(ix->ops->dir_mark(ix, "ab/cd/1.2/1.2.3"), 0);
    assert_int_equal(ix->ops->dir_mark(ix, "ab/cd/1.2/1.2.3"), 0); /* twice is harmless */
    assert_int_equal(ix->ops->dir_mark(ix, "ef/01/1.3/1.3.1"), 0);
    assert_int_equal(ix->ops->commit(ix), 0);
    memset(&v, 0, sizeof v);
    assert_int_equal(ix->ops->dirs(ix, on_dir, &v), 0);
    assert_int_equal(v.n, 2);
    assert_int_equal(ix->ops->begin(ix), 0);
    assert_int_equal(ix->ops->dir_unmark(ix, "ab/cd/1.2/1.2.3"), 0);
    assert_int_equal(ix->ops->commit(ix), 0);
    memset(&v, 0, sizeof v);
    assert_int_equal(ix->ops->dirs(ix, on_dir, &v), 0);
    assert_int_equal(v.n, 1);
    assert_string_equal(v.d[0], "ef/01/1.3/1.3.1");
    assert_int_equal(ix->ops->begin(ix), 0);
    assert_int_equal(ix->ops->dir_mark(ix, "x"), 0);
    assert_int_equal(ix->ops->dir_unmark(ix, NULL), 0);
    assert_int_equal(ix->ops->commit(ix), 0);
    memset(&v, 0, sizeof v);
    assert_int_equal(ix->ops->dirs(ix, on_dir, &v), 0);
    assert_int_equal(v.n, 0);
    /* clear() drops the marks too */
    assert_int_equal(ix->ops->begin(ix), 0);
    assert_int_equal(ix->ops->dir_mark(ix, "y"), 0);
    assert_int_equal(ix->ops->commit(ix), 0);
    assert_int_equal(ix->ops->clear(ix), 0);
    memset(&v, 0, sizeof v);
    assert_int_equal(ix->ops->dirs(ix, on_dir, &v), 0);
    assert_int_equal(v.n, 0);
}

/* Values kept by the record, as the query builders will read them. */
static void test_values(void **state)
{
    fixture_t *f = *state;
    mt_index_t *ix = f->ix;
    mt_index_rec_t *r = rec_make("P1", "1.1", "1.1.1", "1.1.1.1", "a/1.dcm", 1);
    uint8_t rows_le[2] = {0x00, 0x02}; /* US 512 */
    mt_index_rec_offer(r, T_ROWS, MT_VR('U', 'S'), rows_le, 2, false);
    assert_string_equal(mt_index_rec_get(r, T_ROWS), "512");
    uint8_t rows_be[2] = {0x02, 0x00};
    mt_index_rec_offer(r, T_ROWS, MT_VR('U', 'S'), rows_be, 2, true);
    assert_string_equal(mt_index_rec_get(r, T_ROWS), "512");
    offer_str(r, T_IOP, MT_VR('D', 'S'), " 1\\0 \\0\\0\\1\\-0.5 ");
    assert_string_equal(mt_index_rec_get(r, T_IOP), "1\\0\\0\\0\\1\\-0.5");
    offer_str(r, T_STUDY_DESC, MT_VR('L', 'O'), "CARDIAC^MRI  ");
    offer_str(r, T_STUDY_DATE, MT_VR('D', 'A'), "20240102");
    assert_string_equal(mt_index_rec_get(r, T_PNAME), "Doe^Jane");
    /* values are capped at 1024 bytes: a long text is cut there, not dropped */
    char longtext[3000];
    memset(longtext, 'x', sizeof longtext - 1);
    longtext[sizeof longtext - 1] = '\0';
    offer_str(r, MT_TAG(0x0010, 0x4000), MT_VR('L', 'T'), longtext);
    assert_int_equal(strlen(mt_index_rec_get(r, MT_TAG(0x0010, 0x4000))), 1024);
    offer_str(r, MT_TAG(0x0010, 0x1000), MT_VR('L', 'O'), "A\\B");
    assert_string_equal(mt_index_rec_get(r, MT_TAG(0x0010, 0x1000)), "A\\B");
    assert_null(mt_index_rec_get(r, MT_TAG(0x0010, 0x0030))); /* not offered */
    mt_index_rec_offer(r, MT_TAG(0x0009, 0x0010), MT_VR('L', 'O'), (const uint8_t *)"x", 1,
                       false); /* not a key: ignored */
    assert_null(mt_index_rec_get(r, MT_TAG(0x0009, 0x0010)));
    /* values offered again and again (past the record's own space for them, into the heap)
     * each replace the last, and the earlier ones stay as they were */
    char num[32];
    for (int i = 0; i < 40; i++) {
        offer_str(r, MT_TAG(0x0010, 0x4000), MT_VR('L', 'T'), longtext);
        snprintf(num, sizeof num, "TEXT %d", i);
        offer_str(r, T_STUDY_DESC, MT_VR('L', 'O'), num);
        assert_string_equal(mt_index_rec_get(r, T_STUDY_DESC), num);
    }
    assert_string_equal(mt_index_rec_get(r, T_IOP), "1\\0\\0\\0\\1\\-0.5");
    assert_int_equal(strlen(mt_index_rec_get(r, MT_TAG(0x0010, 0x4000))), 1024);
    offer_str(r, T_STUDY_DESC, MT_VR('L', 'O'), "CARDIAC^MRI  ");
    put_ok(ix, r, MT_DUP_OVERWRITE, MT_INDEX_INSERTED, "");

    /* an instance lacking an attribute does not erase it at its study */
    r = rec_make("P1", "1.1", "1.1.1", "1.1.1.2", "a/2.dcm", 1);
    put_ok(ix, r, MT_DUP_OVERWRITE, MT_INDEX_INSERTED, "");

    /* the backend stores the values; SQLite is inspected directly */
    if (strcmp(f->be->name, "sqlite") != 0)
        return;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT st.study_description, st.study_date, "
                                        "i.n_rows, typeof(i.n_rows), i.image_orientation_patient, "
                                        "p.patient_name, se.modality, i.verified "
                                        "FROM instances i JOIN series se ON i.series_pk=se.pk "
                                        "JOIN studies st ON se.study_pk=st.pk JOIN patients p "
                                        "ON st.patient_pk=p.pk WHERE i.sop_instance_uid='1.1.1.1'",
                                        -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "CARDIAC^MRI");
    assert_string_equal((const char *)sqlite3_column_text(s, 1), "20240102");
    assert_int_equal(sqlite3_column_int(s, 2), 512);
    assert_string_equal((const char *)sqlite3_column_text(s, 3), "integer");
    assert_string_equal((const char *)sqlite3_column_text(s, 4), "1\\0\\0\\0\\1\\-0.5");
    assert_string_equal((const char *)sqlite3_column_text(s, 5), "Doe^Jane");
    assert_string_equal((const char *)sqlite3_column_text(s, 6), "MR");
    assert_int_equal(sqlite3_column_int(s, 7), 0);
    sqlite3_finalize(s);
    /* PN matching is case-insensitive (PS3.4 C.2.2.2.1) */
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*) FROM patients WHERE "
                                        "patient_name = 'DOE^JANE'",
                                        -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), 1);
    sqlite3_finalize(s);
    sqlite3_close(db);
}

/* ---- SQLite specifics: the schema against keys.def, migrations ---- */

static bool has_column(sqlite3 *db, const char *table, const char *col)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT 1 FROM pragma_table_info('%s') WHERE name=?", table);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    sqlite3_bind_text(s, 1, col, -1, SQLITE_STATIC);
    bool yes = sqlite3_step(s) == SQLITE_ROW;
    sqlite3_finalize(s);
    return yes;
}

static int query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return v;
}

static void test_sqlite_schema_has_every_key(void **state)
{
    fixture_t *f = *state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    size_t n;
    const mt_index_key_t *k = mt_index_keys(&n);
    assert_true(n > 100);
    for (size_t i = 0; i < n; i++) {
        const char *t = mt_index_level_table(k[i].level);
        if (!has_column(db, t, k[i].column))
            fail_msg("keys.def %s: no column %s.%s", k[i].keyword, t, k[i].column);
        assert_ptr_equal(mt_index_key_find(k[i].tag, k[i].level), &k[i]);
    }
    static const char *file_cols[] = {"path",     "size",          "transfer_syntax_uid",
                                      "verified", "replaces_path", "checksum"};
    for (size_t i = 0; i < sizeof file_cols / sizeof file_cols[0]; i++)
        assert_true(has_column(db, "instances", file_cols[i]));
    /* the keys the C-FIND tables require and the CMR attributes are all there */
    static const uint32_t required[] = {
        MT_TAG(0x0010, 0x0010), MT_TAG(0x0010, 0x0020), MT_TAG(0x0008, 0x0020),
        MT_TAG(0x0008, 0x0030), MT_TAG(0x0008, 0x0050), MT_TAG(0x0020, 0x0010),
        MT_TAG(0x0020, 0x000D), MT_TAG(0x0008, 0x0060), MT_TAG(0x0020, 0x0011),
        MT_TAG(0x0020, 0x000E), MT_TAG(0x0020, 0x0013), MT_TAG(0x0008, 0x0018),
        MT_TAG(0x0008, 0x0016), MT_TAG(0x0008, 0x0070), MT_TAG(0x0008, 0x1090),
        MT_TAG(0x0018, 0x0087), MT_TAG(0x0018, 0x1030), MT_TAG(0x0018, 0x0024),
        MT_TAG(0x0018, 0x0020), MT_TAG(0x0020, 0x0037), MT_TAG(0x0020, 0x0032),
        MT_TAG(0x0018, 0x1060), MT_TAG(0x0018, 0x0082), MT_TAG(0x0008, 0x103E),
    };
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!mt_index_key_find(required[i], MT_LEVEL_COUNT))
            fail_msg("(%04X,%04X) is not indexed", required[i] >> 16, required[i] & 0xFFFF);
    /* lookups use indexes */
    static const char *plans[] = {
        "SELECT pk FROM studies WHERE study_instance_uid='1'",
        "SELECT pk FROM series WHERE series_instance_uid='1'",
        "SELECT pk FROM instances WHERE sop_instance_uid='1'",
        "SELECT pk FROM patients WHERE patient_id='1'",
        "SELECT pk FROM studies WHERE study_date BETWEEN '2020' AND '2021'",
        "SELECT pk FROM series WHERE study_pk=1",
        "SELECT pk FROM instances WHERE series_pk=1",
    };
    for (size_t i = 0; i < sizeof plans / sizeof plans[0]; i++) {
        char sql[256];
        snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", plans[i]);
        sqlite3_stmt *s;
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(s), SQLITE_ROW);
        const char *d = (const char *)sqlite3_column_text(s, 3);
        if (!strstr(d, "INDEX") && !strstr(d, "PRIMARY KEY"))
            fail_msg("%s: %s", plans[i], d);
        sqlite3_finalize(s);
    }
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static void test_sqlite_migrations(void **state)
{
    fixture_t *f = *state;
    f->ix->ops->close(f->ix);
    f->ix = NULL;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    int version = query_int(db, "SELECT max(version) FROM schema_version");
    assert_true(version >= 1);
    assert_int_equal(query_int(db, "SELECT count(*) FROM schema_version"), version);
    sqlite3_close(db);

    /* reopening applies nothing twice */
    assert_int_equal(mt_index_sqlite_open(f->path, &f->ix), 0);
    f->ix->ops->close(f->ix);
    f->ix = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(query_int(db, "SELECT count(*) FROM schema_version"), version);

    /* a database from a newer mitral is refused, untouched */
    assert_int_equal(
        sqlite3_exec(db, "INSERT INTO schema_version(version) VALUES (999)", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(mt_index_sqlite_open(f->path, &f->ix), MT_EDB);
    assert_null(f->ix);

    /* an empty (zero-byte) file is migrated from scratch */
    char p[160];
    snprintf(p, sizeof p, "%s/empty.sqlite", f->dir);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(mt_index_sqlite_open(p, &f->ix), 0);
    stats_are(f->ix, 0, 0, 0, 0, 0);
    f->ix->ops->close(f->ix);
    f->ix = NULL;
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    assert_int_equal(query_int(db, "SELECT max(version) FROM schema_version"), version);
    sqlite3_close(db);

    /* not a database */
    snprintf(p, sizeof p, "%s/junk.sqlite", f->dir);
    fp = fopen(p, "w");
    fputs("this is not an SQLite database, not even close to one.........", fp);
    fclose(fp);
    assert_true(mt_index_sqlite_open(p, &f->ix) < 0);
    assert_null(f->ix);
    snprintf(p, sizeof p, "%s/no/such/dir/x.sqlite", f->dir);
    assert_true(mt_index_sqlite_open(p, &f->ix) < 0);
    assert_null(f->ix);
}

/* ---- routing: projects joined and the forwarding queue, in put()'s transaction ---- */

typedef struct qrows {
    int64_t id[16];
    char sop[16][65], series[16][65];
    bool dead[16], has_file[16];
    uint32_t attempts[16];
    size_t n;
} qrows_t;

static int on_q(void *u, const mt_index_queue_entry_t *e)
{
    qrows_t *q = u;
    assert_true(q->n < 16);
    q->id[q->n] = e->id;
    snprintf(q->sop[q->n], 65, "%s", e->sop_instance_uid);
    snprintf(q->series[q->n], 65, "%s", e->series_uid ? e->series_uid : "");
    q->dead[q->n] = e->dead;
    q->has_file[q->n] = e->rel_path != NULL;
    q->attempts[q->n] = e->attempts;
    q->n++;
    return 0;
}

/* queue_destinations: the destinations seen, the last one's name and counts */
typedef struct {
    size_t n, pending, dead;
    char name[64];
} qdest_t;

static int qdest_cb(void *u, const char *destination, size_t pending, size_t dead)
{
    qdest_t *q = u;
    q->n++;
    snprintf(q->name, sizeof q->name, "%s", destination);
    q->pending = pending;
    q->dead = dead;
    return 0;
}

static qrows_t qlist(mt_index_t *ix, const char *dest, int state, int64_t due)
{
    qrows_t q;
    memset(&q, 0, sizeof q);
    assert_int_equal(ix->ops->queue_list(ix, dest, state, due, 0, 0, on_q, &q), 0);
    return q;
}

static void test_routing_rows(void **state)
{
    fixture_t *f = *state;
    mt_index_t *ix = f->ix;
    mt_index_rec_t *r = rec_make("P1", "1.2.3", "1.2.3.1", "1.2.3.1.1", "a/1.dcm", 10);
    mt_index_rec_add_project(r, "cmr");
    mt_index_rec_add_project(r, "cmr"); /* twice: once */
    mt_index_rec_add_forward(r, "central");
    mt_index_rec_add_forward(r, "backup");
    put_ok(ix, r, MT_DUP_OVERWRITE, MT_INDEX_INSERTED, "");
    assert_int_equal(ix->ops->mark_verified(ix), 0);
    r = rec_make("P1", "1.2.3", "1.2.3.1", "1.2.3.1.2", "a/2.dcm", 10);
    mt_index_rec_add_forward(r, "central");
    put_ok(ix, r, MT_DUP_OVERWRITE, MT_INDEX_INSERTED, "");
    /* not verified yet: not due */
    qrows_t q = qlist(ix, "central", 0, INT64_MAX);
    assert_int_equal(q.n, 1);
    assert_string_equal(q.sop[0], "1.2.3.1.1");
    assert_string_equal(q.series[0], "1.2.3.1");
    assert_true(q.has_file[0]);
    assert_int_equal(ix->ops->mark_verified(ix), 0);
    q = qlist(ix, "central", 0, INT64_MAX);
    assert_int_equal(q.n, 2); /* arrival order */
    assert_string_equal(q.sop[1], "1.2.3.1.2");
    assert_int_equal(qlist(ix, NULL, -1, -1).n, 3);
    assert_int_equal(qlist(ix, "backup", -1, -1).n, 1);
    /* queue_list after an id: only rows after it (the forwarder's kick scans) */
    qrows_t qa;
    memset(&qa, 0, sizeof qa);
    assert_int_equal(ix->ops->queue_list(ix, "central", 0, INT64_MAX, q.id[0], 0, on_q, &qa),
                     0);
    assert_int_equal(qa.n, 1);
    assert_int_equal(qa.id[0], q.id[1]);
    memset(&qa, 0, sizeof qa);
    assert_int_equal(ix->ops->queue_list(ix, "central", 0, INT64_MAX, q.id[1], 0, on_q, &qa),
                     0);
    assert_int_equal(qa.n, 0);
    mt_index_stats_t ps;
    assert_int_equal(ix->ops->project_stats(ix, "cmr", &ps), 0);
    assert_int_equal(ps.studies, 1);

    /* a failed attempt: attempts+1, not due before next_at; dead ones are listed as dead */
    int64_t id1 = q.id[0], id2 = q.id[1];
    assert_int_equal(ix->ops->queue_failed(ix, id1, INT64_MAX / 2, false, true, "status 0xA700"), 0);
    q = qlist(ix, "central", 0, 1000);
    assert_int_equal(q.n, 0);
    /* the destination not reached: last_error and next_at, no attempt counted */
    assert_int_equal(ix->ops->queue_failed(ix, id2, 0, false, false, "no association"), 0);
    assert_int_equal(ix->ops->queue_failed(ix, id2, 0, true, true, "status 0xC000"), 0);
    q = qlist(ix, "central", 1, -1);
    assert_int_equal(q.n, 1);
    assert_true(q.dead[0]);
    assert_int_equal(q.attempts[0], 1);
    size_t n = 0;
    assert_int_equal(ix->ops->queue_retry(ix, "central", 0, true, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(qlist(ix, "central", 1, -1).n, 0);

    /* a newer copy of a queued instance: a new row; the old id is gone */
    r = rec_make("P1", "1.2.3", "1.2.3.1", "1.2.3.1.2", "a/2.dcm", 12);
    mt_index_rec_add_forward(r, "central");
    put_ok(ix, r, MT_DUP_OVERWRITE, MT_INDEX_REPLACED, "");
    assert_int_equal(ix->ops->queue_done(ix, id2), MT_ENOENT);
    q = qlist(ix, "central", -1, -1);
    assert_int_equal(q.n, 2);
    assert_true(q.id[1] > id2);
    int64_t top = q.id[1]; /* the largest id given so far */
    /* keep-first: the dropped copy is not queued again */
    assert_int_equal(ix->ops->queue_done(ix, q.id[1]), 0);
    r = rec_make("P1", "1.2.3", "1.2.3.1", "1.2.3.1.2", "a/2.dcm", 12);
    mt_index_rec_add_forward(r, "central");
    put_ok(ix, r, MT_DUP_KEEP_FIRST, MT_INDEX_KEPT_EXISTING, "");
    assert_int_equal(qlist(ix, "central", -1, -1).n, 1);
    /* an instance removed from the index: its row says so (no file) */
    assert_int_equal(ix->ops->remove(ix, "1.2.3.1.1"), 0);
    q = qlist(ix, "central", -1, -1);
    assert_false(q.has_file[0]);
    qdest_t qd = {0};
    assert_int_equal(ix->ops->queue_destinations(ix, qdest_cb, &qd), 0);
    assert_int_equal(qd.n, 2); /* backup, then central (by name) */
    assert_string_equal(qd.name, "central");
    assert_int_equal(qd.pending, 1);
    assert_int_equal(qd.dead, 0);
    assert_int_equal(ix->ops->queue_purge(ix, NULL, 0, false, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(qlist(ix, NULL, -1, -1).n, 0);
    qd = (qdest_t){0};
    assert_int_equal(ix->ops->queue_destinations(ix, qdest_cb, &qd), 0);
    assert_int_equal(qd.n, 0);

    /* the queue emptied (its top rows delivered or purged): a new row still gets an id above
     * every id given before, never one a send in flight may hold (db/008_queue_ids.sql) */
    r = rec_make("P1", "1.2.3", "1.2.3.1", "1.2.3.1.3", "a/3.dcm", 10);
    mt_index_rec_add_forward(r, "central");
    put_ok(ix, r, MT_DUP_OVERWRITE, MT_INDEX_INSERTED, "");
    q = qlist(ix, NULL, -1, -1);
    assert_int_equal(q.n, 1);
    assert_true(q.id[0] > top);
}

/* How many of our fds are open, and how many of them name path (readlink of /proc/self/fd). */
static int fds_open(const char *path, int *naming)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    *naming = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char link[300], target[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(link, target, sizeof target - 1);
        n++;
        if (len > 0) {
            target[len] = '\0';
            *naming += strcmp(target, path) == 0;
        }
    }
    closedir(d);
    return n - 1; /* the directory's own fd */
}

/* start_writeback (the WAL write-behind before the ingest's sync): it opens the -wal file once
 * (a second fd on it besides SQLite's), reuses that fd on every later call, and close() closes
 * it with SQLite's own: the process holds exactly the fds it held before the open. The data
 * stays correct throughout and after a reopen. */
static void test_sqlite_start_writeback(void **state)
{
    fixture_t *f = *state;
    char wal[PATH_MAX + 32], real[PATH_MAX];
    assert_non_null(realpath(f->dir, real));
    snprintf(wal, sizeof wal, "%s/index.sqlite-wal", real);
    f->ix->ops->close(f->ix);
    int naming, naming_sqlite, before = fds_open(wal, &naming);
    assert_int_equal(mt_index_sqlite_open(f->path, &f->ix), 0);
    mt_index_t *ix = f->ix;
    assert_non_null(ix->ops->start_writeback);
    put_ok(ix, rec_make("P1", "1.2.3", "1.2.3.4", "1.2.3.4.5", "a/b/1.dcm", 100),
           MT_DUP_OVERWRITE, MT_INDEX_INSERTED, "");
    int open_sqlite = fds_open(wal, &naming_sqlite);
    ix->ops->start_writeback(ix);
    assert_int_equal(fds_open(wal, &naming), open_sqlite + 1);
    assert_int_equal(naming, naming_sqlite + 1);
    for (int i = 0; i < 3; i++) {
        char sop[32];
        snprintf(sop, sizeof sop, "1.2.3.4.%d", 10 + i);
        put_ok(ix, rec_make("P1", "1.2.3", "1.2.3.4", sop, "a/b/x.dcm", 100), MT_DUP_OVERWRITE,
               MT_INDEX_INSERTED, "");
        ix->ops->start_writeback(ix);
    }
    assert_int_equal(fds_open(wal, &naming), open_sqlite + 1);
    assert_int_equal(naming, naming_sqlite + 1);
    stats_are(ix, 1, 1, 1, 4, 400);
    ix->ops->close(ix);
    f->ix = NULL;
    assert_int_equal(fds_open(wal, &naming), before);
    assert_int_equal(mt_index_sqlite_open(f->path, &f->ix), 0);
    stats_are(f->ix, 1, 1, 1, 4, 400);
}

#define FOR_BACKENDS(t) cmocka_unit_test_setup_teardown(t, setup_sqlite, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        FOR_BACKENDS(test_put_exists_stats),
        FOR_BACKENDS(test_routing_rows),
        FOR_BACKENDS(test_duplicates),
        FOR_BACKENDS(test_verified_bookkeeping),
        FOR_BACKENDS(test_remove_prunes),
        FOR_BACKENDS(test_values),
        FOR_BACKENDS(test_dirty_dirs),
        cmocka_unit_test_setup_teardown(test_sqlite_schema_has_every_key, setup_sqlite, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_migrations, setup_sqlite, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_start_writeback, setup_sqlite, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
