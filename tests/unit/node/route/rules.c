/* tests for node/route/rules.c + match.c: every operator, precedence, first match vs continue,
 * the default rule, reject, and bad rule files reported as file:line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dicom/ds.h"
#include "route/rules.h"
#include "util/alloc.h"
#include "util/err.h"

static char err[512];

static int chk_dest(void *u, const char *name, char *why, size_t whysz)
{
    (void)u;
    (void)why;
    (void)whysz;
    return strcmp(name, "central") && strcmp(name, "backup");
}

static int chk_proj(void *u, const char *name, char *why, size_t whysz)
{
    (void)u;
    (void)why;
    (void)whysz;
    return strncmp(name, "p", 1);
}

static int chk_prof(void *u, mt_route_set_t *set, const char *name, char *why, size_t whysz)
{
    (void)u;
    (void)set;
    if (!strcmp(name, "basic") || !strcmp(name, "strict"))
        return 0;
    snprintf(why, whysz, "no such profile");
    return -1;
}

static const mt_route_check_t chk = {chk_dest, chk_proj, chk_prof, NULL};

static mt_route_set_t *compile(const char *yaml)
{
    mt_route_set_t *s = mt_route_set_new();
    int rc = mt_route_set_add(s, yaml, strlen(yaml), "r.yaml", &chk, err, sizeof err);
    if (rc) {
        fprintf(stderr, "unexpected: %s\n", err);
        mt_route_set_free(s);
        return NULL;
    }
    return s;
}

static void expect_error(const char *yaml, const char *msg)
{
    long live = mt_alloc_live();
    mt_route_set_t *s = mt_route_set_new();
    int rc = mt_route_set_add(s, yaml, strlen(yaml), "r.yaml", &chk, err, sizeof err);
    assert_int_equal(rc, MT_ECONF);
    if (!strstr(err, msg)) {
        fprintf(stderr, "got: %s\nwant: %s\n", err, msg);
        fail();
    }
    assert_int_equal(mt_route_set_count(s), 0);
    mt_route_set_free(s);
    assert_int_equal(mt_alloc_live(), live);
}

typedef struct inst {
    mt_route_attrs_t *a;
    mt_route_input_t in;
} inst_t;

static void inst_init(inst_t *x, const mt_route_set_t *s)
{
    x->a = mt_route_attrs_new(s);
    memset(&x->in, 0, sizeof x->in);
    x->in.calling_ae = "PACS1";
    x->in.called_ae = "MITRAL";
    x->in.peer = "10.1.2.3";
    x->in.attrs = x->a;
}

static void put(inst_t *x, uint32_t tag, uint16_t vr, const char *v)
{
    mt_route_attrs_offer(x->a, tag, vr, (const uint8_t *)v, strlen(v), false);
}

#define T_MODALITY MT_TAG(0x0008, 0x0060)
#define T_STUDY_DESC MT_TAG(0x0008, 0x1030)
#define T_PATIENT_ID MT_TAG(0x0010, 0x0020)
#define T_STUDY_DATE MT_TAG(0x0008, 0x0020)
#define T_FIELD MT_TAG(0x0018, 0x0087)
#define T_INSTITUTION MT_TAG(0x0008, 0x0080)
#define T_ROWS MT_TAG(0x0028, 0x0010)

/* The name of the first rule that matched, or "-" when none did. */
static const char *first(const mt_route_set_t *s, inst_t *x, mt_route_decision_t *d)
{
    mt_route_decide(s, &x->in, d);
    return d->n_rules ? d->rules[0] : "-";
}

/* One instance holding one attribute, and the first rule it must match ("-": none). */
typedef struct {
    uint32_t tag;
    uint16_t vr;
    const char *v;
    const char *want;
} one_attr_case_t;

static void expect_first(const mt_route_set_t *s, const one_attr_case_t *cases, size_t n)
{
    mt_route_decision_t d;
    for (size_t i = 0; i < n; i++) {
        inst_t x;
        inst_init(&x, s);
        put(&x, cases[i].tag, cases[i].vr, cases[i].v);
        const char *got = first(s, &x, &d);
        if (strcmp(got, cases[i].want)) {
            fprintf(stderr, "case %zu (%s): got %s want %s\n", i, cases[i].v, got, cases[i].want);
            fail();
        }
        mt_route_attrs_free(x.a);
    }
}

static void test_operators(void **st)
{
    (void)st;
    mt_route_set_t *s = compile("rules:\n"
                                "  - name: eq\n"
                                "    match: {Modality: MR}\n"
                                "  - name: oneof\n"
                                "    match: {Modality: [CT, PT]}\n"
                                "  - name: glob\n"
                                "    match: {StudyDescription: {glob: '*HEART*'}}\n"
                                "  - name: regex\n"
                                "    match: {PatientID: {regex: '^H[0-9]+$'}}\n"
                                "  - name: range\n"
                                "    match: {'(0018,0087)': {range: [1.4, 3.1]}}\n"
                                "  - name: openrange\n"
                                "    match: {Rows: {range: [1000, ~]}}\n"
                                "  - name: dates\n"
                                "    match: {StudyDate: {date_range: [2020-01-01, 20201231]}}\n"
                                "  - name: absent\n"
                                "    match: {InstitutionName: {absent: true}, Modality: XA}\n"
                                "  - name: present\n"
                                "    match: {InstitutionName: {present: true}}\n");
    assert_non_null(s);
    assert_int_equal(mt_route_set_count(s), 9);
    assert_true(mt_route_set_wants(s, T_MODALITY));
    assert_false(mt_route_set_wants(s, MT_TAG(0x0010, 0x0010)));
    mt_route_decision_t d;
    const one_attr_case_t cases[] = {
        {T_MODALITY, MT_VR('C', 'S'), "MR", "eq"},
        {T_MODALITY, MT_VR('C', 'S'), "MR ", "eq"}, /* padding */
        {T_MODALITY, MT_VR('C', 'S'), "mr", "-"},   /* case matters */
        {T_MODALITY, MT_VR('C', 'S'), "PT", "oneof"},
        {T_MODALITY, MT_VR('C', 'S'), "OT\\CT", "oneof"}, /* any value of several */
        {T_STUDY_DESC, MT_VR('L', 'O'), "CARDIAC HEART MR", "glob"},
        {T_STUDY_DESC, MT_VR('L', 'O'), "BRAIN", "-"},
        {T_PATIENT_ID, MT_VR('L', 'O'), "H12345", "regex"},
        {T_PATIENT_ID, MT_VR('L', 'O'), "XH12345", "-"},
        {T_FIELD, MT_VR('D', 'S'), "1.5", "range"},
        {T_FIELD, MT_VR('D', 'S'), "3.1", "range"}, /* inclusive */
        {T_FIELD, MT_VR('D', 'S'), "7", "-"},
        {T_FIELD, MT_VR('D', 'S'), "abc", "-"},
        {T_STUDY_DATE, MT_VR('D', 'A'), "20200615", "dates"},
        {T_STUDY_DATE, MT_VR('D', 'A'), "20210101", "-"},
        {T_MODALITY, MT_VR('C', 'S'), "XA", "absent"},
        {T_INSTITUTION, MT_VR('L', 'O'), "", "present"}, /* present even when empty */
    };
    expect_first(s, cases, sizeof cases / sizeof cases[0]);
    /* binary numeric VR as decimal text: Rows US 1024 little endian */
    inst_t x;
    inst_init(&x, s);
    uint8_t rows[2] = {0x00, 0x04};
    mt_route_attrs_offer(x.a, T_ROWS, MT_VR('U', 'S'), rows, 2, false);
    assert_string_equal(mt_route_attrs_get(x.a, T_ROWS), "1024");
    assert_string_equal(first(s, &x, &d), "openrange");
    mt_route_attrs_free(x.a);
    inst_init(&x, s);
    mt_route_attrs_offer(x.a, T_ROWS, MT_VR('U', 'S'), rows, 2, true); /* big endian: 4 */
    assert_string_equal(mt_route_attrs_get(x.a, T_ROWS), "4");
    assert_string_equal(first(s, &x, &d), "-");
    mt_route_attrs_free(x.a);
    mt_route_set_free(s);
}

/* equals / one_of on a numeric attribute compare numbers: a DS "5.000000" is 5, an IS "05"
 * is 5, a US 512 is 512; on a text attribute "05" stays "05" (PatientID 05 is not 5). */
static void test_numeric_equals(void **st)
{
    (void)st;
    mt_route_set_t *s = compile("rules:\n"
                                "  - name: thick5\n"
                                "    match: {SliceThickness: 5}\n"
                                "  - name: series\n"
                                "    match: {SeriesNumber: [5, 7]}\n"
                                "  - name: rows\n"
                                "    match: {Rows: {equals: 512}}\n"
                                "  - name: pid\n"
                                "    match: {PatientID: '5'}\n");
    assert_non_null(s);
    mt_route_decision_t d;
    const one_attr_case_t cases[] = {
        {MT_TAG(0x0018, 0x0050), MT_VR('D', 'S'), "5.000000", "thick5"},
        {MT_TAG(0x0018, 0x0050), MT_VR('D', 'S'), " 5 ", "thick5"},
        {MT_TAG(0x0018, 0x0050), MT_VR('D', 'S'), "5e0", "thick5"},
        {MT_TAG(0x0018, 0x0050), MT_VR('D', 'S'), "5.01", "-"},
        {MT_TAG(0x0018, 0x0050), MT_VR('D', 'S'), "abc", "-"},
        {MT_TAG(0x0020, 0x0011), MT_VR('I', 'S'), "07", "series"},
        {MT_TAG(0x0020, 0x0011), MT_VR('I', 'S'), "6", "-"},
        {T_PATIENT_ID, MT_VR('L', 'O'), "5", "pid"},
        {T_PATIENT_ID, MT_VR('L', 'O'), "05", "-"},
    };
    expect_first(s, cases, sizeof cases / sizeof cases[0]);
    inst_t x;
    inst_init(&x, s);
    uint8_t rows[2] = {0x00, 0x02}; /* US 512, little endian */
    mt_route_attrs_offer(x.a, T_ROWS, MT_VR('U', 'S'), rows, 2, false);
    assert_string_equal(first(s, &x, &d), "rows");
    mt_route_attrs_free(x.a);
    mt_route_set_free(s);
}

static void test_peer_and_aes(void **st)
{
    (void)st;
    mt_route_set_t *s = compile("rules:\n"
                                "  - name: net\n"
                                "    match: {peer: [192.168.0.0/16, '::1'], calling_ae: CT1}\n"
                                "  - name: ae\n"
                                "    match: {calling_ae: {glob: 'PACS*'}, called_ae: MITRAL}\n"
                                "  - name: v6net\n"
                                "    match: {peer: 'fd00::/8'}\n"
                                "  - name: host\n"
                                "    match: {peer: 10.1.2.3}\n");
    assert_non_null(s);
    mt_route_decision_t d;
    inst_t x;
    inst_init(&x, s);
    assert_string_equal(first(s, &x, &d), "ae");
    x.in.calling_ae = "CT1";
    assert_string_equal(first(s, &x, &d), "host");
    x.in.peer = "192.168.4.5";
    assert_string_equal(first(s, &x, &d), "net");
    x.in.peer = "::ffff:192.168.4.5"; /* IPv4-mapped */
    assert_string_equal(first(s, &x, &d), "net");
    x.in.peer = "::1";
    assert_string_equal(first(s, &x, &d), "net");
    x.in.peer = "fd12::1";
    assert_string_equal(first(s, &x, &d), "v6net");
    x.in.peer = "11.0.0.1";
    assert_string_equal(first(s, &x, &d), "-");
    x.in.peer = NULL; /* unknown peer: a peer condition cannot hold */
    assert_string_equal(first(s, &x, &d), "-");
    mt_route_attrs_free(x.a);
    mt_route_set_free(s);
}

/* STOW-RS inputs (rules.h mt_route_input_t): no calling AE, an authenticated user. */
static void test_http_source(void **st)
{
    (void)st;
    mt_route_set_t *s = compile("rules:\n"
                                "  - name: dimse\n"
                                "    match: {calling_ae: {present: true}, user: {absent: true}}\n"
                                "  - name: ai\n"
                                "    match: {user: [alice, 'ai-*'], calling_ae: {absent: true}}\n"
                                "  - name: team\n"
                                "    match: {user: {glob: 'ai-*'}}\n"
                                "  - name: any-web\n"
                                "    match: {calling_ae: {absent: true}}\n"
                                "  - name: needs-ae\n"
                                "    match: {calling_ae: PACS1}\n");
    assert_non_null(s);
    mt_route_decision_t d;
    inst_t x;
    inst_init(&x, s);
    assert_string_equal(first(s, &x, &d), "dimse");
    x.in.calling_ae = NULL; /* an HTTP upload */
    assert_string_equal(first(s, &x, &d), "any-web");
    x.in.user = "alice";
    assert_string_equal(first(s, &x, &d), "ai");
    x.in.user = "ai-lab";
    assert_string_equal(first(s, &x, &d), "team"); /* one_of is equality, not a glob */
    x.in.user = "bob";
    assert_string_equal(first(s, &x, &d), "any-web");
    mt_route_attrs_free(x.a);
    mt_route_set_free(s);
    expect_error("rules:\n  - match: {usr: alice}\n", "r.yaml:2:");
    expect_error("rules:\n  - match: {usr: alice}\n", "user, cmr_series");
}

static void test_precedence_and_continue(void **st)
{
    (void)st;
    mt_route_set_t *s = compile("rules:\n"
                                "  - name: all-mr\n"
                                "    match: {Modality: MR}\n"
                                "    projects: [p-mr]\n"
                                "    forward: [central]\n"
                                "    deid: strict\n"
                                "    continue: true\n"
                                "  - name: heart\n"
                                "    match: {StudyDescription: {glob: '*HEART*'}}\n"
                                "    projects: [p-heart, p-mr]\n"
                                "    deid: basic\n"
                                "    forward: [backup, central]\n"
                                "  - name: never\n"
                                "    match: {Modality: MR}\n"
                                "    projects: [p-never]\n"
                                "default:\n"
                                "  projects: [p-default]\n");
    assert_non_null(s);
    mt_route_decision_t d;
    inst_t x;
    inst_init(&x, s);
    put(&x, T_MODALITY, MT_VR('C', 'S'), "MR");
    put(&x, T_STUDY_DESC, MT_VR('L', 'O'), "HEART");
    mt_route_decide(s, &x.in, &d);
    assert_true(d.matched_any);
    assert_false(d.used_default);
    assert_int_equal(d.n_rules, 2); /* all-mr continues, heart stops before never */
    assert_string_equal(d.rules[1], "heart");
    assert_int_equal(d.n_projects, 2);
    assert_string_equal(d.projects[0], "p-mr");
    assert_string_equal(d.projects[1], "p-heart");
    assert_int_equal(d.n_forward, 2);
    assert_string_equal(d.forward[0], "central");
    assert_string_equal(d.forward[1], "backup");
    assert_string_equal(d.deid, "strict"); /* the earlier rule takes precedence */
    mt_route_attrs_free(x.a);

    /* MR but not HEART: all-mr continues, never matches and stops */
    inst_init(&x, s);
    put(&x, T_MODALITY, MT_VR('C', 'S'), "MR");
    mt_route_decide(s, &x.in, &d);
    assert_int_equal(d.n_rules, 2);
    assert_string_equal(d.rules[1], "never");
    assert_int_equal(d.n_projects, 2);
    mt_route_attrs_free(x.a);

    /* nothing matches: the default */
    inst_init(&x, s);
    put(&x, T_MODALITY, MT_VR('C', 'S'), "CT");
    mt_route_decide(s, &x.in, &d);
    assert_false(d.matched_any);
    assert_true(d.used_default);
    assert_int_equal(d.n_projects, 1);
    assert_string_equal(d.projects[0], "p-default");
    assert_null(d.deid);
    assert_int_equal(d.n_forward, 0);
    mt_route_attrs_free(x.a);
    mt_route_set_free(s);
}

/* mt_route_set_always_deid: only with the node's profile, and no rule (nor the default)
 * saying deid: none; a rule naming another profile still de-identifies. */
static void test_always_deid(void **st)
{
    (void)st;
    assert_true(mt_route_set_always_deid(NULL, true));
    assert_false(mt_route_set_always_deid(NULL, false));
    mt_route_set_t *s = compile("rules:\n"
                                "  - name: mr\n"
                                "    match: {Modality: MR}\n"
                                "    deid: strict\n"
                                "    forward: [central]\n"
                                "  - name: rest\n"
                                "    forward: [central]\n");
    assert_non_null(s);
    assert_true(mt_route_set_always_deid(s, true));
    assert_false(mt_route_set_always_deid(s, false)); /* "rest" stores as received */
    mt_route_set_free(s);
    s = compile("rules:\n"
                "  - name: ct\n"
                "    match: {Modality: CT}\n"
                "    deid: none\n"
                "    forward: [central]\n");
    assert_non_null(s);
    assert_false(mt_route_set_always_deid(s, true));
    mt_route_set_free(s);
    s = compile("rules:\n"
                "  - name: mr\n"
                "    match: {Modality: MR}\n"
                "    forward: [central]\n"
                "default:\n"
                "  deid: none\n");
    assert_non_null(s);
    assert_false(mt_route_set_always_deid(s, true));
    mt_route_set_free(s);
}

static void test_reject(void **st)
{
    (void)st;
    mt_route_set_t *s = compile("rules:\n"
                                "  - match: {Modality: MR}\n"
                                "    projects: [p1]\n"
                                "    continue: true\n"
                                "  - name: no-sr\n"
                                "    match: {Modality: [SR, MR]}\n"
                                "    reject: no structured reports\n"
                                "  - match: {}\n"
                                "    projects: [p2]\n");
    assert_non_null(s);
    mt_route_decision_t d;
    inst_t x;
    inst_init(&x, s);
    put(&x, T_MODALITY, MT_VR('C', 'S'), "MR");
    mt_route_decide(s, &x.in, &d);
    assert_true(d.reject);
    assert_string_equal(d.reject_reason, "no structured reports");
    assert_string_equal(d.rules[0], "r.yaml:2"); /* unnamed rule: file:line */
    mt_route_attrs_free(x.a);
    inst_init(&x, s);
    put(&x, T_MODALITY, MT_VR('C', 'S'), "CT");
    mt_route_decide(s, &x.in, &d);
    assert_false(d.reject);
    assert_string_equal(d.projects[0], "p2"); /* empty match: always */
    mt_route_attrs_free(x.a);
    mt_route_set_free(s);
}

static void test_multiple_files(void **st)
{
    (void)st;
    mt_route_set_t *s = mt_route_set_new();
    const char *a =
        "rules:\n  - match: {Modality: MR}\n    projects: [pa]\ndefault:\n  projects: [pd]\n";
    const char *b = "rules:\n  - match: {Modality: CT}\n    projects: [pb]\n";
    const char *c = "default:\n  projects: [pc]\n";
    assert_int_equal(mt_route_set_add(s, a, strlen(a), "a.yaml", &chk, err, sizeof err), 0);
    assert_int_equal(mt_route_set_add(s, b, strlen(b), "b.yaml", &chk, err, sizeof err), 0);
    assert_int_equal(mt_route_set_add(s, c, strlen(c), "c.yaml", &chk, err, sizeof err), MT_ECONF);
    assert_string_equal(err, "c.yaml:1: default: only one default rule (across all rules files)");
    assert_int_equal(mt_route_set_count(s), 2);
    mt_route_decision_t d;
    inst_t x;
    inst_init(&x, s);
    put(&x, T_MODALITY, MT_VR('C', 'S'), "CT");
    mt_route_decide(s, &x.in, &d);
    assert_string_equal(d.projects[0], "pb");
    mt_route_attrs_free(x.a);
    mt_route_set_free(s);
}

static void test_errors(void **st)
{
    (void)st;
    expect_error("rules:\n  - match: {Modalty: MR}\n",
                 "r.yaml:2: match: unknown keyword \"Modalty\"");
    expect_error("rules:\n  - match:\n      PatientID: {regex: '(['}\n",
                 "r.yaml:3: PatientID: bad regex");
    expect_error("rules:\n  - match: {Modality: MR}\n    forward: [nowhere]\n",
                 "r.yaml:3: forward: unknown destination \"nowhere\"");
    expect_error("rules:\n  - match: {Modality: MR}\n    projects: [zz]\n",
                 "r.yaml:3: projects: unknown project \"zz\"");
    expect_error("rules:\n  - match: {Modality: MR}\n\n    deid: fancy\n",
                 "r.yaml:4: deid: profile \"fancy\": no such profile");
    expect_error("rules:\n  - match: {Modality: MR}\n    frobnicate: 1\n",
                 "r.yaml:3: unknown key \"frobnicate\" in rule");
    expect_error("rules:\n  - match: {Modality: {like: MR}}\n",
                 "r.yaml:2: Modality: unknown operator \"like\"");
    expect_error("rules:\n  - match: {peer: 10.0.0.0/33}\n", "r.yaml:2: peer: \"10.0.0.0/33\"");
    expect_error("rules:\n  - match: {StudyDate: {date_range: [2020-13, ~]}}\n",
                 "r.yaml:2: StudyDate: \"2020-13\" is not a date");
    expect_error("rules:\n  - match: {StudyDate: {date_range: [2020-13-45, ~]}}\n",
                 "r.yaml:2: StudyDate: \"2020-13-45\" is not a date");
    expect_error("rules:\n  - match: {StudyDate: {date_range: [~, 20230230]}}\n",
                 "r.yaml:2: StudyDate: \"20230230\" is not a date");
    expect_error("rules:\n  - match: {Rows: {range: [nan, 3]}}\n",
                 "r.yaml:2: Rows: \"nan\" is not a number");
    expect_error("rules:\n  - match: {SliceThickness: thick}\n",
                 "r.yaml:2: SliceThickness: \"thick\" is not a number (a DS attribute");
    expect_error("rules:\n  - match: {Rows: [256, x512]}\n", "\"x512\" is not a number (a US");
    expect_error("rules:\n  - match: {Rows: {range: [5, 1]}}\n",
                 "r.yaml:2: Rows: low bound above high bound");
    expect_error("rules:\n  - match: {PixelData: {present: true}}\n",
                 "only data set attributes before Pixel Data");
    expect_error("rules:\n  - reject: x\n    continue: true\n", "r.yaml:2: reject ends evaluation");
    expect_error("rules:\n  - reject: \"Zur\xc3\xbc" "ckgewiesen\"\n",
                 "r.yaml:2: reject: the reason is the C-STORE Error Comment");
    expect_error("rules:\n  - reject: 'no SR\\KO'\n",
                 "r.yaml:2: reject: the reason is the C-STORE Error Comment");
    expect_error("rules:\n  - reject: x\n    projects: [p1]\n", "reject cannot be combined");
    expect_error("rules:\n  - stop: true\n    continue: true\n", "stop or continue, not both");
    expect_error("rulez: []\n", "r.yaml:1: unknown top-level key \"rulez\"");
    expect_error("rules:\n  - match: [a\n", "r.yaml:3: YAML syntax error");
    expect_error("default:\n  match: {Modality: MR}\n", "r.yaml:2: default: unknown key \"match\"");
    expect_error("rules:\n  - match: {'(0008,00ZZ)': x}\n", "unknown keyword \"(0008,00ZZ)\"");
}

/* Rules are UTF-8 (YAML); values are in the data set's Specific Character Set (PS3.5 6.1):
 * they are compared as UTF-8, so "Jérôme" matches an ISO_IR 100 "J\xe9r\xf4me". */
static void test_charset(void **st)
{
    (void)st;
    long live = mt_alloc_live();
    mt_route_set_t *s = compile("rules:\n"
                                "  - name: eq\n    match: {PatientName: \"Buc^J\xc3\xa9r\xc3\xb4me\"}\n"
                                "  - name: gl\n    match: {InstitutionName: {glob: \"*M\xc3\xbcnchen\"}}\n");
    assert_non_null(s);
    mt_route_decision_t d;
    inst_t x;
    inst_init(&x, s);
    put(&x, MT_TAG(0x0008, 0x0005), MT_VR('C', 'S'), "ISO_IR 100");
    put(&x, MT_TAG(0x0010, 0x0010), MT_VR('P', 'N'), "Buc^J\xe9r\xf4me");
    assert_string_equal(first(s, &x, &d), "eq");
    mt_route_attrs_free(x.a);
    inst_init(&x, s); /* UTF-8 declared: as it is */
    put(&x, MT_TAG(0x0008, 0x0005), MT_VR('C', 'S'), "ISO_IR 192");
    put(&x, MT_TAG(0x0008, 0x0080), MT_VR('L', 'O'), "Klinikum M\xc3\xbcnchen");
    assert_string_equal(first(s, &x, &d), "gl");
    mt_route_attrs_free(x.a);
    inst_init(&x, s); /* no Specific Character Set: 8-bit bytes are not UTF-8 */
    put(&x, MT_TAG(0x0010, 0x0010), MT_VR('P', 'N'), "Buc^J\xe9r\xf4me");
    assert_string_equal(first(s, &x, &d), "eq");
    mt_route_attrs_free(x.a);
    mt_route_set_free(s);
    assert_int_equal(mt_alloc_live(), live);
}

static void test_tags_by_number(void **st)
{
    (void)st;
    mt_route_set_t *s = compile("rules:\n  - name: t\n    match: {'00080060': MR, "
                                "'0008,1030': {glob: '*'}}\n");
    assert_non_null(s);
    inst_t x;
    inst_init(&x, s);
    put(&x, T_MODALITY, MT_VR('C', 'S'), "MR");
    mt_route_decision_t d;
    assert_string_equal(first(s, &x, &d), "-"); /* StudyDescription absent: glob fails */
    put(&x, T_STUDY_DESC, MT_VR('L', 'O'), "x");
    assert_string_equal(first(s, &x, &d), "t");
    mt_route_attrs_free(x.a);
    mt_route_set_free(s);
}

/* Rules on cmr_series: armed at store time (other conditions), evaluated on the tag later. */
static void test_after_tag(void **st)
{
    (void)st;
    mt_route_set_t *s = compile("rules:\n"
                                "  - name: lge\n"
                                "    match: {cmr_series: lge, Modality: MR}\n"
                                "    forward: [central]\n"
                                "    projects: [plge]\n"
                                "  - name: sax-cine\n"
                                "    match: {cmr_series: [cine.sax, perfusion]}\n"
                                "    forward: [backup]\n"
                                "    continue: true\n"
                                "  - name: any\n"
                                "    match: {cmr_series: {glob: '*'}}\n"
                                "    projects: [pall]\n"
                                "  - name: mr\n"
                                "    match: {Modality: MR}\n"
                                "    projects: [pmr]\n");
    assert_non_null(s);
    const char *where = NULL;
    assert_int_equal(mt_route_set_after_tag(s, &where), 3);
    assert_string_equal(where, "r.yaml:2");
    inst_t x;
    inst_init(&x, s);
    put(&x, T_MODALITY, MT_VR('C', 'S'), "MR");
    x.in.cmr_series = "lge.sax"; /* ignored at store time: these rules are only armed */
    mt_route_decision_t d;
    mt_route_decide(s, &x.in, &d);
    assert_int_equal(d.n_armed, 3);
    assert_string_equal(d.armed[0], "lge");
    assert_string_equal(d.armed[1], "sax-cine");
    assert_string_equal(d.armed[2], "any");
    assert_int_equal(d.n_rules, 1); /* armed rules neither match nor stop at store time */
    assert_string_equal(d.rules[0], "mr");
    assert_int_equal(d.n_forward, 0);
    assert_int_equal(d.n_projects, 1);
    assert_false(d.used_default);

    /* family match: "lge" is every lge.* tag; stop after the first match */
    mt_route_decision_t at;
    mt_route_after_tag(s, "lge.sax", d.armed, d.n_armed, &at);
    d = at;
    assert_int_equal(d.n_rules, 1);
    assert_string_equal(d.rules[0], "lge");
    assert_string_equal(d.forward[0], "central");
    assert_string_equal(d.projects[0], "plge");
    assert_false(d.reject);
    assert_null(d.deid);
    /* not "lgefoo", not "cine.sax" as "cine" alone: one_of by family or exact tag */
    mt_route_after_tag(s, "cine.sax", (const char *[]){"lge", "sax-cine", "any"}, 3, &d);
    assert_int_equal(d.n_rules, 2); /* sax-cine continues into any */
    assert_string_equal(d.rules[0], "sax-cine");
    assert_string_equal(d.rules[1], "any");
    assert_string_equal(d.forward[0], "backup");
    assert_string_equal(d.projects[0], "pall");
    mt_route_after_tag(s, "cine.4ch", (const char *[]){"lge", "sax-cine"}, 2, &d);
    assert_int_equal(d.n_rules, 0); /* cine.4ch is not cine.sax; "any" was not armed */
    mt_route_after_tag(s, "perfusion.stress", (const char *[]){"sax-cine"}, 1, &d);
    assert_int_equal(d.n_rules, 1);
    mt_route_after_tag(s, NULL, (const char *[]){"lge", "any"}, 2, &d);
    assert_int_equal(d.n_rules, 0); /* not tagged: nothing */
    mt_route_after_tag(s, "lge.4ch", (const char *[]){"gone", "lge"}, 2, &d);
    assert_int_equal(d.n_rules, 1); /* a name no longer in the set is ignored */

    /* other conditions fail at store time: not armed */
    mt_route_attrs_free(x.a);
    inst_init(&x, s);
    put(&x, T_MODALITY, MT_VR('C', 'S'), "CT");
    mt_route_decide(s, &x.in, &d);
    assert_int_equal(d.n_armed, 2); /* sax-cine and any have no other condition */
    assert_string_equal(d.armed[0], "sax-cine");
    mt_route_attrs_free(x.a);
    mt_route_set_free(s);

    /* a store-time rule that stops before an after-tag rule: not armed */
    s = compile("rules:\n  - name: first\n    match: {}\n    projects: [p1]\n"
                "  - name: later\n    match: {cmr_series: lge}\n    forward: [central]\n");
    inst_init(&x, s);
    mt_route_decide(s, &x.in, &d);
    assert_int_equal(d.n_armed, 0);
    mt_route_attrs_free(x.a);
    mt_route_set_free(s);
}

static void test_after_tag_errors(void **st)
{
    (void)st;
    expect_error("rules:\n  - match: {cmr_series: lge}\n    forward: [central]\n"
                 "    deid: basic\n",
                 "r.yaml:4: deid: a rule matching cmr_series applies after tagging");
    expect_error("rules:\n  - match: {cmr_series: lge}\n    reject: no\n",
                 "r.yaml:3: reject: a rule matching cmr_series applies after tagging");
    expect_error("rules:\n  - match: {cmr_series: lgee}\n    forward: [central]\n",
                 "r.yaml:2: cmr_series: \"lgee\" is not a CMR tag or family");
    expect_error("rules:\n  - name: x\n    match: {cmr_series: lge}\n    forward: [central]\n"
                 "  - name: x\n    match: {cmr_series: cine}\n    forward: [backup]\n",
                 "r.yaml:5: name: \"x\" is already the name of the cmr_series rule at r.yaml:2");
    /* across files too */
    mt_route_set_t *s = compile("rules:\n  - name: x\n    match: {cmr_series: lge}\n");
    const char *two = "rules:\n  - name: x\n    match: {cmr_series: cine}\n";
    assert_int_equal(mt_route_set_add(s, two, strlen(two), "s.yaml", &chk, err, sizeof err),
                     MT_ECONF);
    assert_non_null(strstr(err, "s.yaml:2: name: \"x\" is already"));
    mt_route_set_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_operators),
        cmocka_unit_test(test_numeric_equals),
        cmocka_unit_test(test_peer_and_aes),
        cmocka_unit_test(test_http_source),
        cmocka_unit_test(test_precedence_and_continue),
        cmocka_unit_test(test_reject),
        cmocka_unit_test(test_always_deid),
        cmocka_unit_test(test_multiple_files),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_tags_by_number),
        cmocka_unit_test(test_charset),
        cmocka_unit_test(test_after_tag),
        cmocka_unit_test(test_after_tag_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
