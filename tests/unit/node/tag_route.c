/* tests for node/tag_route.c with the SQLite index (db/007_tag_routes.sql): rules on the CMR
 * series tag armed by put(), fired once per instance and stored copy across tag revisions,
 * stop / continue, projects, and a newer copy re-armed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dicom/ds.h"
#include "index/index.h"
#include "route/rules.h"
#include "tag_route.h"
#include "util/alloc.h"
#include "util/err.h"

static const char rules[] = "rules:\n"
                            "  - name: lge\n"
                            "    match: {cmr_series: lge}\n"
                            "    forward: [central]\n"
                            "    projects: [scar]\n"
                            "  - name: lge-sax\n"
                            "    match: {cmr_series: lge.sax}\n"
                            "    forward: [backup]\n";

static void offer(mt_index_rec_t *r, uint32_t tag, uint16_t vr, const char *s)
{
    mt_index_rec_offer(r, tag, vr, (const uint8_t *)s, strlen(s), false);
}

/* Store instance sop of series 1.2.3.1 with the given rules armed. */
static void put(mt_index_t *ix, const char *sop, const char *const *armed, size_t n)
{
    mt_index_rec_t *r = mt_index_rec_new();
    offer(r, MT_TAG(0x0010, 0x0020), MT_VR('L', 'O'), "P1");
    offer(r, MT_TAG(0x0020, 0x000D), MT_VR('U', 'I'), "1.2.3");
    offer(r, MT_TAG(0x0020, 0x000E), MT_VR('U', 'I'), "1.2.3.1");
    offer(r, MT_TAG(0x0008, 0x0018), MT_VR('U', 'I'), sop);
    offer(r, MT_TAG(0x0008, 0x0016), MT_VR('U', 'I'), "1.2.840.10008.5.1.4.1.1.4");
    char path[80];
    snprintf(path, sizeof path, "a/%s.dcm", sop);
    mt_index_rec_set_file(r, path, 10, "1.2.840.10008.1.2.1", "1.2.840.10008.5.1.4.1.1.4");
    for (size_t i = 0; i < n; i++)
        mt_index_rec_add_armed(r, armed[i]);
    mt_index_put_result_t res;
    assert_int_equal(ix->ops->begin(ix), 0);
    assert_int_equal(ix->ops->put(ix, r, MT_DUP_OVERWRITE, &res, NULL, 0), 0);
    assert_int_equal(ix->ops->commit(ix), 0);
    mt_index_rec_free(r);
}

static int count_q(void *u, const mt_index_queue_entry_t *e)
{
    (void)e;
    (*(size_t *)u)++;
    return 0;
}

static size_t queued(mt_index_t *ix, const char *dest)
{
    size_t n = 0;
    assert_int_equal(ix->ops->queue_list(ix, dest, -1, -1, 0, 0, count_q, &n), 0);
    return n;
}

/* Tag the series: one transaction, as the tagger's pass does. Returns rows queued. */
static size_t tag(mt_index_t *ix, const mt_route_set_t *set, const char *t)
{
    size_t n = 0;
    assert_int_equal(ix->ops->begin(ix), 0);
    assert_int_equal(mt_tag_route_series(ix, set, "1.2.3", "1.2.3.1", t, &n), 0);
    assert_int_equal(ix->ops->commit(ix), 0);
    return n;
}

static void drain(mt_index_t *ix)
{
    size_t n;
    assert_int_equal(ix->ops->queue_purge(ix, NULL, 0, false, &n), 0);
}

static void test_fire_once(void **st)
{
    (void)st;
    long live = mt_alloc_live();
    char dir[] = "/tmp/mt-tagroute-XXXXXX", path[80];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/index.sqlite", dir);
    mt_index_t *ix;
    assert_int_equal(mt_index_sqlite_open(path, &ix), 0);
    mt_route_set_t *set = mt_route_set_new();
    char err[256];
    assert_int_equal(mt_route_set_add(set, rules, strlen(rules), "r.yaml", NULL, err, sizeof err),
                     0);
    const char *both[] = {"lge", "lge-sax"};
    put(ix, "1.2.3.1.1", both, 2);
    put(ix, "1.2.3.1.2", both, 1); /* only "lge" armed */
    put(ix, "1.2.3.1.3", NULL, 0); /* nothing armed */

    assert_int_equal(tag(ix, set, "cine.sax"), 0); /* no rule matches: nothing, still armed */
    assert_int_equal(tag(ix, set, "lge.4ch"), 2);  /* lge fires for .1 and .2; it stops */
    assert_int_equal(queued(ix, "central"), 2);
    assert_int_equal(queued(ix, "backup"), 0);
    mt_index_stats_t ps;
    assert_int_equal(ix->ops->project_stats(ix, "scar", &ps), 0);
    assert_int_equal(ps.studies, 1);
    drain(ix); /* delivered */
    /* the study pass writes the tag again, or revises it: nothing is queued twice, and lge
     * (fired) still stops the evaluation before lge-sax */
    assert_int_equal(tag(ix, set, "lge.4ch"), 0);
    assert_int_equal(tag(ix, set, "lge.sax"), 0);
    assert_int_equal(queued(ix, NULL), 0);
    /* a new instance of the series: only it is queued */
    put(ix, "1.2.3.1.4", both, 1);
    assert_int_equal(tag(ix, set, "lge.sax"), 1);
    /* a newer copy of a delivered instance re-arms it: sent again (the new copy) */
    put(ix, "1.2.3.1.1", both, 2);
    assert_int_equal(tag(ix, set, "lge.sax"), 1);
    assert_int_equal(queued(ix, "central"), 2);
    /* a rule set without rules on the tag does nothing */
    mt_route_set_t *none = mt_route_set_new();
    assert_int_equal(tag(ix, none, "lge.sax"), 0);
    mt_route_set_free(none);

    mt_route_set_free(set);
    ix->ops->close(ix);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(mt_alloc_live(), live);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fire_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
