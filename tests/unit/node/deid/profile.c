/*
 * tests/unit/node/deid/profile.c - node/deid/profile.c: loading profiles from strings, the
 * error messages (file:line), option precedence, and the committed deid-profiles/ YAML.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "deid/profile.h"
#include "dicom/ds.h"
#include "util/alloc.h"
#include "util/err.h"

#ifndef MT_SOURCE_DIR
#define MT_SOURCE_DIR "."
#endif

/* Resolver over named strings, falling back to MT_SOURCE_DIR/deid-profiles/NAME.yaml. */
typedef struct src {
    const char *name, *text;
} src_t;
static src_t *g_srcs;
static char *g_file_text[8];
static size_t g_nfile;

static int resolve(void *user, const char *name, mt_deid_source_t *out)
{
    (void)user;
    for (src_t *s = g_srcs; s && s->name; s++) {
        if (strcmp(s->name, name) == 0) {
            out->text = s->text;
            out->len = strlen(s->text);
            out->filename = s->name;
            return 0;
        }
    }
    char path[1024];
    snprintf(path, sizeof(path), "%s/deid-profiles/%s.yaml", MT_SOURCE_DIR, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return MT_ENOENT;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *t = malloc((size_t)n + 1);
    size_t got = fread(t, 1, (size_t)n, f);
    fclose(f);
    t[got] = 0;
    g_file_text[g_nfile++] = t;
    out->text = t;
    out->len = got;
    out->filename = name;
    return 0;
}

static void free_files(void)
{
    for (size_t i = 0; i < g_nfile; i++)
        free(g_file_text[i]);
    g_nfile = 0;
}

static int load(src_t *srcs, const char *name, mt_deid_profile_t **p, char *err, size_t errsz)
{
    g_srcs = srcs;
    int rc = mt_deid_profile_load(name, resolve, NULL, p, err, errsz);
    free_files();
    return rc;
}

static void expect_error(const char *text, const char *want)
{
    src_t s[] = {{"bad.yaml", text},
                 {"base0", "name: base0\ndefault: K\n"
                           "options:\n  retain-uids:\n    attributes:\n"
                           "      \"(0008,0018)\": K\n"},
                 {NULL, NULL}};
    char err[256];
    mt_deid_profile_t *p = NULL;
    long live = mt_alloc_live();
    int rc = load(s, "bad.yaml", &p, err, sizeof(err));
    assert_int_equal(rc, MT_ECONF);
    assert_null(p);
    if (!strstr(err, want))
        fail_msg("error '%s' lacks '%s'", err, want);
    assert_int_equal(mt_alloc_live(), live);
}

static void test_errors_have_file_and_line(void **state)
{
    (void)state;
    expect_error("name: x\nattributes:\n  \"(0010,0010)\": Q\n", "bad.yaml:3: unknown action 'Q'");
    expect_error("name: x\nattributes:\n  PatientName: X\n  \"(001G,0010)\": X\n",
                 "bad.yaml:4: bad tag '(001G,0010)'");
    expect_error("name: x\nattributes:\n  NoSuchKeyword: X\n", "bad.yaml:3: bad tag");
    expect_error("base: base0\noptions:\n  - retain-uids\n  - retain-everything\n",
                 "bad.yaml:4: unknown option 'retain-everything'");
    expect_error("base: base0\noptions: [clean-graphics]\n",
                 "bad.yaml:2: option 'clean-graphics' is not defined");
    expect_error("name: x\n\nflavour: strawberry\n", "bad.yaml:3: unknown key 'flavour'");
    expect_error("name: x\ndate-shift: {min-days: 5, max-days: -5}\n", "bad.yaml:2: date-shift");
    expect_error("name: x\nattributes: [1, 2\n", "bad.yaml:");
    expect_error("base: nowhere\n", "bad.yaml:1: cannot load profile 'nowhere'");
    expect_error("- a\n- b\n", "bad.yaml:1: a profile must be a YAML mapping");
    /* an attribute or a key named twice: which one was meant cannot be told (YAML forbids
     * duplicate keys; the later one silently won) */
    expect_error("name: x\nattributes:\n  \"(0010,0010)\": K\n  \"(0010,0010)\": X\n",
                 "bad.yaml:4: (0010,0010) is named twice");
    expect_error("name: x\nattributes:\n  \"(0010,0010)\": K\n  PatientName: X\n",
                 "bad.yaml:4: PatientName is named twice");
    expect_error("name: x\nbase: base0\nbase: base0\n", "bad.yaml:3: 'base' is given twice");
    expect_error("name: x\ndate-shift: {min-days: 0, max-days: 0}\n",
                 "bad.yaml:2: date-shift: a shift of 0 days");
}

static void test_overrides_and_precedence(void **state)
{
    (void)state;
    src_t s[] = {{"b", "name: b\ndefault: X\nattributes:\n  \"(0018,700C)\": X/D\n"
                       "  \"(0010,0010)\": Z\n  \"(60xx,3000)\": X\n  private: X\n"
                       "options:\n"
                       "  retain-device-identity:\n    code: {value: \"113109\", meaning: dev}\n"
                       "    attributes:\n      \"(0018,700C)\": K\n"
                       "  retain-long-modified-dates:\n    code: {value: \"113107\", meaning: m}\n"
                       "    attributes:\n      \"(0018,700C)\": C\n"},
                 {"p", "base: b\nname: p\n"
                       "options: [retain-long-modified-dates, retain-device-identity]\n"
                       "attributes:\n  PatientName: K\n"},
                 {NULL, NULL}};
    char err[256];
    mt_deid_profile_t *p;
    assert_int_equal(load(s, "p", &p, err, sizeof(err)), 0);
    assert_string_equal(p->name, "p");
    /* C (modified dates) wins over K (device identity), whatever the order named. */
    assert_int_equal(mt_deid_profile_lookup(p, MT_TAG(0x0018, 0x700C)), MT_DEID_C);
    assert_int_equal(mt_deid_profile_lookup(p, MT_TAG(0x0010, 0x0010)), MT_DEID_K);
    assert_int_equal(mt_deid_profile_lookup(p, MT_TAG(0x6002, 0x3000)), MT_DEID_X);
    assert_int_equal(mt_deid_profile_lookup(p, MT_TAG(0x6002, 0x3001)), MT_DEID_DEFAULT);
    assert_int_equal(mt_deid_profile_lookup(p, MT_TAG(0x0029, 0x1010)), MT_DEID_X);
    assert_int_equal(mt_deid_profile_lookup(p, MT_TAG(0x0008, 0x0060)), MT_DEID_DEFAULT);
    assert_int_equal(p->default_action, MT_DEID_X);
    assert_true(p->shift_dates);
    assert_int_equal(p->n_codes, 3);
    assert_string_equal(p->codes[0].value, "113100");
    mt_deid_profile_free(p);
}

static void test_committed_basic_profile(void **state)
{
    (void)state;
    char err[256];
    mt_deid_profile_t *p;
    assert_int_equal(load(NULL, "basic", &p, err, sizeof(err)), 0);
    assert_string_equal(p->edition, "DICOM 2024b");
    assert_int_equal(p->options, 0);
    assert_int_equal(p->default_action, MT_DEID_X); /* outside the table: removed ... */
    /* ... unless on the keep list (deid-profiles/basic-keep.yaml) */
    assert_true(p->n_keep > 1000);
    assert_int_equal(mt_deid_profile_keep(p, MT_TAG(0x7FE0, 0x0010)), MT_DEID_K); /* pixels */
    assert_int_equal(mt_deid_profile_keep(p, MT_TAG(0x0028, 0x0010)), MT_DEID_K); /* rows */
    assert_int_equal(mt_deid_profile_keep(p, MT_TAG(0x0008, 0x0016)), MT_DEID_K); /* class */
    assert_int_equal(mt_deid_profile_keep(p, MT_TAG(0x0018, 0x0081)), MT_DEID_K); /* TE */
    assert_int_equal(mt_deid_profile_keep(p, MT_TAG(0x0018, 0x0024)), MT_DEID_K); /* curated */
    assert_int_equal(mt_deid_profile_keep(p, MT_TAG(0x5200, 0x9230)), MT_DEID_K); /* per-frame */
    assert_int_equal(mt_deid_profile_keep(p, MT_TAG(0x6002, 0x0010)), MT_DEID_K); /* 60xx */
    assert_int_equal(mt_deid_profile_keep(p, MT_TAG(0x0020, 0x1040)), MT_DEID_Z);
    assert_int_equal(mt_deid_profile_keep(p, MT_TAG(0x0010, 0x2160)), MT_DEID_DEFAULT); /* SH */
    assert_int_equal(mt_deid_profile_keep(p, MT_TAG(0x0018, 0x1400)), MT_DEID_DEFAULT); /* LO */
    assert_int_equal(mt_deid_profile_keep(p, MT_TAG(0x0040, 0x0275)), MT_DEID_DEFAULT); /* SQ */
    assert_int_equal(mt_deid_profile_keep(p, MT_TAG(0x0019, 0x1010)), MT_DEID_DEFAULT);
    /* A few rows of PS3.15 Table E.1-1, Basic Profile column. */
    assert_int_equal(mt_deid_profile_lookup(p, MT_TAG(0x0010, 0x0010)), MT_DEID_Z);
    assert_int_equal(mt_deid_profile_lookup(p, MT_TAG(0x0010, 0x0020)), MT_DEID_ZD);
    assert_int_equal(mt_deid_profile_lookup(p, MT_TAG(0x0008, 0x0018)), MT_DEID_U);
    assert_int_equal(mt_deid_profile_lookup(p, MT_TAG(0x0008, 0x0050)), MT_DEID_Z);
    assert_int_equal(mt_deid_profile_lookup(p, MT_TAG(0x0008, 0x1140)), MT_DEID_XZU);
    assert_int_equal(mt_deid_profile_lookup(p, MT_TAG(0x0010, 0x1010)), MT_DEID_X);
    assert_int_equal(mt_deid_profile_lookup(p, MT_TAG(0x5010, 0x0005)), MT_DEID_X);
    assert_int_equal(mt_deid_profile_lookup(p, MT_TAG(0x601E, 0x3000)), MT_DEID_X);
    assert_int_equal(mt_deid_profile_lookup(p, MT_TAG(0x0019, 0x1010)), MT_DEID_X);
    assert_int_equal(p->n_exact, 621 - 4); /* the 3 repeating-group rows and "private" */
    assert_int_equal(p->n_masked, 3);
    mt_deid_profile_free(p);
}

static void test_committed_cmr_registry(void **state)
{
    (void)state;
    char err[256];
    mt_deid_profile_t *p;
    int rc = load(NULL, "cmr-registry", &p, err, sizeof(err));
    if (rc)
        fail_msg("%s", err);
    uint32_t want = 1u << MT_DEID_OPT_RETAIN_PATIENT_CHARACTERISTICS |
                    1u << MT_DEID_OPT_RETAIN_DEVICE_IDENTITY |
                    1u << MT_DEID_OPT_RETAIN_LONG_MODIFIED_DATES |
                    1u << MT_DEID_OPT_CLEAN_DESCRIPTORS;
    assert_int_equal(p->options, want);
    assert_int_equal(mt_deid_profile_lookup(p, MT_TAG(0x0010, 0x1010)), MT_DEID_K); /* age */
    assert_int_equal(mt_deid_profile_lookup(p, MT_TAG(0x0010, 0x1030)), MT_DEID_K); /* weight */
    assert_int_equal(mt_deid_profile_lookup(p, MT_TAG(0x0008, 0x0020)), MT_DEID_C); /* date */
    assert_int_equal(mt_deid_profile_lookup(p, MT_TAG(0x0018, 0x1030)), MT_DEID_C); /* protocol */
    assert_int_equal(mt_deid_profile_lookup(p, MT_TAG(0x0008, 0x103E)), MT_DEID_C); /* series */
    assert_int_equal(mt_deid_profile_lookup(p, MT_TAG(0x0018, 0x1000)), MT_DEID_K); /* serial */
    assert_int_equal(mt_deid_profile_lookup(p, MT_TAG(0x0010, 0x0010)), MT_DEID_Z);
    assert_int_equal(mt_deid_profile_lookup(p, MT_TAG(0x0008, 0x0080)), MT_DEID_XZD);
    assert_int_equal(p->patient_name, MT_DEID_PSEUDONYM);
    assert_int_equal(p->n_codes, 5);
    assert_true(p->shift_dates);
    assert_true(p->shift_min_days <= p->shift_max_days);
    mt_deid_profile_free(p);
}

static void test_keep_list(void **state)
{
    (void)state;
    src_t s[] = {{"kl", "name: kl\nedition: x\nkeep:\n  \"(0018,0050)\": K\n"
                        "  \"(60xx,0040)\": K\n  PositionReferenceIndicator: Z\n"},
                 {"p", "default: X\nkeep-list: kl\nattributes:\n  \"(0018,0050)\": X\n"},
                 {"p2", "base: p\nkeep-list: none\n"},
                 {"p3", "base: basic\ndefault: K\n"},
                 {"bad1", "keep-list: kb1\n"},
                 {"kb1", "keep:\n  \"(0018,0050)\": X\n"},
                 {"bad2", "\nkeep-list: nosuch\n"},
                 {"bad3", "keep-list: kb3\n"},
                 {"kb3", "name: kb3\nbase: basic\n"},
                 {NULL, NULL}};
    char err[256];
    mt_deid_profile_t *p;
    assert_int_equal(load(s, "p", &p, err, sizeof(err)), 0);
    assert_int_equal(p->n_keep, 2);
    assert_int_equal(p->n_keep_masked, 1);
    /* the table (here an override) wins over the keep list */
    assert_int_equal(mt_deid_profile_lookup(p, MT_TAG(0x0018, 0x0050)), MT_DEID_X);
    assert_int_equal(mt_deid_profile_keep(p, MT_TAG(0x6010, 0x0040)), MT_DEID_K);
    assert_int_equal(mt_deid_profile_keep(p, MT_TAG(0x6011, 0x0040)), MT_DEID_DEFAULT);
    assert_int_equal(mt_deid_profile_keep(p, MT_TAG(0x0020, 0x1040)), MT_DEID_Z);
    mt_deid_profile_free(p);
    assert_int_equal(load(s, "p2", &p, err, sizeof(err)), 0);
    assert_int_equal(p->n_keep + p->n_keep_masked, 0);
    mt_deid_profile_free(p);
    assert_int_equal(load(s, "p3", &p, err, sizeof(err)), 0); /* a profile may say keep */
    assert_int_equal(p->default_action, MT_DEID_K);
    mt_deid_profile_free(p);
    assert_int_equal(load(s, "bad1", &p, err, sizeof(err)), MT_ECONF);
    assert_non_null(strstr(err, "kb1:2: keep list: only public tags with K, Z or C"));
    assert_int_equal(load(s, "bad2", &p, err, sizeof(err)), MT_ECONF);
    assert_non_null(strstr(err, "bad2:2: cannot load keep list 'nosuch'"));
    assert_int_equal(load(s, "bad3", &p, err, sizeof(err)), MT_ECONF);
    assert_non_null(strstr(err, "kb3:2: keep list: unknown key 'base'"));
}

static void test_safe_private_list(void **state)
{
    (void)state;
    src_t s[] = {{"sp", "base: basic\noptions: [retain-safe-private]\n"}, {NULL, NULL}};
    char err[256];
    mt_deid_profile_t *p;
    assert_int_equal(load(s, "sp", &p, err, sizeof(err)), 0);
    assert_int_equal(mt_deid_profile_lookup(p, MT_TAG(0x0019, 0x100C)), MT_DEID_C);
    assert_true(mt_deid_profile_safe_private(p, 0x0019, 0x0C, "SIEMENS MR HEADER"));
    assert_true(mt_deid_profile_safe_private(p, 0x2005, 0x0E, "Philips MR Imaging DD 001"));
    assert_false(mt_deid_profile_safe_private(p, 0x0019, 0x0C, "GEMS_ACQU_01"));
    assert_false(mt_deid_profile_safe_private(p, 0x0029, 0x10, "SIEMENS CSA HEADER"));
    mt_deid_profile_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors_have_file_and_line),
        cmocka_unit_test(test_overrides_and_precedence),
        cmocka_unit_test(test_committed_basic_profile),
        cmocka_unit_test(test_committed_cmr_registry),
        cmocka_unit_test(test_keep_list),
        cmocka_unit_test(test_safe_private_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
