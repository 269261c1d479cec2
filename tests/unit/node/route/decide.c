/* tests for node/route/decide.c: the per-instance routing state shared by C-STORE and STOW-RS
 * (attributes collected from a real streaming reader, ready at Pixel Data, held bytes and
 * their limit, the profile choice, the summary line, peer addresses). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dicom/ds.h"
#include "route/decide.h"
#include "util/alloc.h"
#include "util/err.h"

static mt_route_set_t *compile(const char *yaml)
{
    char err[256];
    mt_route_set_t *s = mt_route_set_new();
    if (mt_route_set_add(s, yaml, strlen(yaml), "r.yaml", NULL, err, sizeof err) != 0) {
        fprintf(stderr, "unexpected: %s\n", err);
        mt_route_set_free(s);
        return NULL;
    }
    return s;
}

/* Explicit VR little endian element with a 2-byte length (short VRs). */
static size_t el_short(uint8_t *o, uint16_t g, uint16_t e, const char *vr, const char *v)
{
    size_t n = strlen(v);
    o[0] = (uint8_t)g, o[1] = (uint8_t)(g >> 8), o[2] = (uint8_t)e, o[3] = (uint8_t)(e >> 8);
    o[4] = (uint8_t)vr[0], o[5] = (uint8_t)vr[1];
    o[6] = (uint8_t)n, o[7] = (uint8_t)(n >> 8);
    memcpy(o + 8, v, n);
    return 8 + n;
}

/* Explicit VR little endian element with a 4-byte length (SQ, OW). */
static size_t el_long(uint8_t *o, uint16_t g, uint16_t e, const char *vr, uint32_t n)
{
    o[0] = (uint8_t)g, o[1] = (uint8_t)(g >> 8), o[2] = (uint8_t)e, o[3] = (uint8_t)(e >> 8);
    o[4] = (uint8_t)vr[0], o[5] = (uint8_t)vr[1], o[6] = o[7] = 0;
    for (int i = 0; i < 4; i++)
        o[8 + i] = (uint8_t)(n >> (8 * i));
    return 12;
}

static int on_event(void *user, mt_ds_event_t ev, const mt_elem_t *e)
{
    mt_route_pending_event(user, ev, e, false);
    return 0;
}

/* A data set: Modality, an SQ whose item holds a (nested, ignored) SeriesDescription, the
 * top-level SeriesDescription, then Pixel Data. */
static size_t make_ds(uint8_t *b, size_t *pixel_at)
{
    size_t n = 0;
    n += el_short(b + n, 0x0008, 0x0060, "CS", "MR");
    uint8_t item[64];
    size_t in = el_short(item, 0x0008, 0x103E, "LO", "NESTED");
    n += el_long(b + n, 0x0008, 0x1140, "SQ", (uint32_t)(8 + in));
    b[n++] = 0xFE, b[n++] = 0xFF, b[n++] = 0x00, b[n++] = 0xE0; /* item, defined length */
    for (int i = 0; i < 4; i++)
        b[n++] = (uint8_t)(in >> (8 * i));
    memcpy(b + n, item, in);
    n += in;
    n += el_short(b + n, 0x0008, 0x103E, "LO", "LGE PSIR");
    *pixel_at = n;
    n += el_long(b + n, 0x7FE0, 0x0010, "OW", 64);
    memset(b + n, 0x5A, 64);
    return n + 64;
}

static void test_collect_and_ready(void **st)
{
    (void)st;
    long live = mt_alloc_live();
    mt_route_set_t *s = compile("rules:\n"
                                "  - name: nested\n"
                                "    match: {SeriesDescription: NESTED}\n"
                                "    reject: never from an item\n"
                                "  - name: scar\n"
                                "    match: {SeriesDescription: {glob: '*LGE*'}, "
                                "ReferencedImageSequence: {present: true}, "
                                "calling_ae: {absent: true}, user: alice}\n"
                                "    projects: [scar]\n"
                                "    forward: [central]\n");
    assert_non_null(s);
    mt_route_pending_t p;
    mt_route_pending_init(&p, s);
    assert_false(p.decided);
    uint8_t ds[512];
    size_t pixel_at, len = make_ds(ds, &pixel_at);
    mt_ds_reader_opts_t o = {.ts = mt_ts_explicit_le, .cb = on_event, .user = &p,
                             .stream_pixel_data = true};
    mt_ds_reader_t *r = mt_ds_reader_new(&o);
    /* byte by byte up to the Pixel Data header: not ready before its start */
    for (size_t i = 0; i < pixel_at; i++) {
        assert_int_equal(mt_route_pending_hold(&p, ds + i, 1), 0);
        assert_int_equal(mt_ds_reader_feed(r, ds + i, 1), 0);
    }
    assert_false(mt_route_pending_ready(&p));
    assert_int_equal(mt_route_pending_hold(&p, ds + pixel_at, len - pixel_at), 0);
    assert_int_equal(mt_ds_reader_feed(r, ds + pixel_at, len - pixel_at), 0);
    assert_true(mt_route_pending_ready(&p));
    size_t n;
    const uint8_t *held = mt_route_pending_held(&p, &n);
    assert_int_equal(n, len);
    assert_memory_equal(held, ds, len);

    mt_route_input_t in = {.called_ae = "MITRAL", .peer = "127.0.0.1", .user = "alice"};
    mt_route_pending_decide(&p, &in);
    assert_true(p.decided);
    assert_false(mt_route_pending_ready(&p));
    assert_false(p.dec.reject); /* the item's SeriesDescription is not the top-level one */
    assert_int_equal(p.dec.n_rules, 1);
    assert_string_equal(p.dec.rules[0], "scar");
    assert_int_equal(p.dec.n_projects, 1);
    assert_int_equal(p.dec.n_forward, 1);
    char sum[160];
    mt_route_summary(&p.dec, sum, sizeof sum);
    assert_string_equal(sum, "1 rule(s), projects=1 forward=1 deid=(node) armed=0");
    mt_route_pending_drop_held(&p);
    held = mt_route_pending_held(&p, &n);
    assert_int_equal(n, 0);

    /* the same instance from an association with a calling AE: no rule matches */
    mt_route_pending_t q;
    mt_route_pending_init(&q, s);
    o.user = &q;
    mt_ds_reader_t *r2 = mt_ds_reader_new(&o);
    assert_int_equal(mt_ds_reader_feed(r2, ds, len), 0);
    in.calling_ae = "PACS1";
    in.user = NULL;
    mt_route_pending_decide(&q, &in);
    assert_int_equal(q.dec.n_rules, 0);
    mt_ds_reader_free(r2);
    mt_route_pending_dispose(&q);

    mt_ds_reader_free(r);
    mt_route_pending_dispose(&p);
    mt_route_set_free(s);
    assert_int_equal(mt_alloc_live(), live);
}

static void test_no_rules_and_limit(void **st)
{
    (void)st;
    long live = mt_alloc_live();
    mt_route_pending_t p;
    mt_route_pending_init(&p, NULL);
    assert_true(p.decided); /* nothing to wait for */
    assert_false(mt_route_pending_ready(&p));
    assert_int_equal(p.dec.n_rules + p.dec.n_projects + p.dec.n_forward, 0);
    mt_route_pending_dispose(&p);

    mt_route_set_t *s = compile("rules:\n  - match: {Modality: MR}\n");
    mt_route_pending_init(&p, s);
    uint8_t b[4] = {1, 2, 3, 4};
    assert_int_equal(mt_route_pending_hold(&p, b, sizeof b), 0);
    /* the limit is checked before any byte is copied */
    assert_int_equal(mt_route_pending_hold(&p, b, MT_ROUTE_MAX_HELD), MT_ETOOBIG);
    size_t n;
    mt_route_pending_held(&p, &n);
    assert_int_equal(n, sizeof b);
    mt_route_pending_dispose(&p);
    mt_route_set_free(s);
    assert_int_equal(mt_alloc_live(), live);
}

static void test_profile(void **st)
{
    (void)st;
    const mt_deid_profile_t *node_dp = (const mt_deid_profile_t *)&node_dp; /* any pointer */
    const mt_deid_profile_t *rule_dp = (const mt_deid_profile_t *)&rule_dp;
    const mt_deid_profile_t *dp = NULL;
    mt_route_decision_t d;
    memset(&d, 0, sizeof d);
    assert_int_equal(mt_route_profile(&d, node_dp, &dp), 0);
    assert_ptr_equal(dp, node_dp); /* no rule named one: the node-wide profile */
    assert_int_equal(mt_route_profile(&d, NULL, &dp), 0);
    assert_null(dp);
    d.deid = "none";
    assert_int_equal(mt_route_profile(&d, node_dp, &dp), 0);
    assert_null(dp); /* stored as received */
    d.deid = "basic";
    assert_int_equal(mt_route_profile(&d, node_dp, &dp), MT_ENOENT);
    assert_null(dp); /* never the original nor the node's instead */
    d.deid_profile = rule_dp;
    assert_int_equal(mt_route_profile(&d, node_dp, &dp), 0);
    assert_ptr_equal(dp, rule_dp);
    d.reject = true;
    d.used_default = true;
    d.n_rules = 2;
    char sum[160];
    mt_route_summary(&d, sum, sizeof sum);
    assert_string_equal(sum, "reject default 2 rule(s), projects=0 forward=0 deid=basic armed=0");
}

static void test_peer_addr(void **st)
{
    (void)st;
    static const char *const cases[][2] = {
        {"10.1.2.3:51234", "10.1.2.3"},
        {"[::1]:104", "::1"},
        {"::1:8042", "::1"}, /* node/http/conn.c writes IPv6 without brackets */
        {"::ffff:127.0.0.1:8042", "::ffff:127.0.0.1"},
        {"fd00::12:34", "fd00::12"},
        {"?", "?"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64];
        mt_route_peer_addr(cases[i][0], out, sizeof out);
        assert_string_equal(out, cases[i][1]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_collect_and_ready),
        cmocka_unit_test(test_no_rules_and_limit),
        cmocka_unit_test(test_profile),
        cmocka_unit_test(test_peer_addr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
