/* Unit tests for node/tag/{desc,series,geom,cmr}.c: the CMR tagger on hand-made features
 * (no files, no codec). Every family rule, precedence and conflicts, the view geometry
 * (planes built from known rotations about a known long axis, with noise), companions,
 * the contrast timeline, stress/rest ordering, unknown, and the revision counter. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tag/tag.h"
#include "util/alloc.h"

/* ---- builders ---- */
#define MAXS 32
typedef struct {
    mt_tag_study_t st;
    mt_tag_series_t *s[MAXS];
    int serial;
} fx_t;

static void fx_init(fx_t *f)
{
    memset(f, 0, sizeof *f);
    f->st.s = f->s;
}

static void fx_free(fx_t *f)
{
    for (size_t i = 0; i < f->st.n; i++) {
        mt_tag_series_dispose(f->s[i]);
        free(f->s[i]);
    }
}

/* base header for a series */
static mt_tag_inst_t proto(const char *desc)
{
    mt_tag_inst_t in;
    mt_tag_inst_init(&in);
    snprintf(in.study_uid, sizeof in.study_uid, "1.2.3");
    if (desc && desc[0]) {
        mt_tag_words_scan(desc, &in.desc);
        in.has_desc = desc[0] != 0;
        uint64_t h = 1469598103934665603ull;
        for (const char *p = desc; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ull;
        in.protocol_hash = h;
    }
    in.vendor = MT_VENDOR_SIEMENS;
    in.field_t = 1.5f;
    in.nominal_rr = 1000;
    in.hr = 60;
    in.scan_opt = MT_SO_CG;
    in.for_hash = 42;
    in.itype = MT_IT_ORIGINAL | MT_IT_M;
    return in;
}

static void unit(double v[3])
{
    double l = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    for (int i = 0; i < 3; i++)
        v[i] /= l;
}

static void iop_for(const double n[3], float iop[6])
{
    double h[3] = {0, 0, 1};
    if (fabs(n[2]) > 0.9)
        h[0] = 1, h[2] = 0;
    double r[3] = {h[1] * n[2] - h[2] * n[1], h[2] * n[0] - h[0] * n[2], h[0] * n[1] - h[1] * n[0]};
    unit(r);
    double c[3] = {n[1] * r[2] - n[2] * r[1], n[2] * r[0] - n[0] * r[2], n[0] * r[1] - n[1] * r[0]};
    for (int i = 0; i < 3; i++) {
        iop[i] = (float)r[i];
        iop[3 + i] = (float)c[i];
    }
}

struct gen {
    double n[3];
    unsigned nsl;   /* slices */
    double sp;      /* spacing mm */
    unsigned nph;   /* phases (trigger times) */
    double tt_step; /* ms */
    unsigned ndyn;  /* dynamics (repeats) */
    double ddyn;    /* s between repeats */
    const float *ti;
    unsigned nti;
    const float *te;
    unsigned nte;
    double t0;      /* s since midnight */
    double center[3];
    uint32_t itype;
};

static mt_tag_series_t *add_series(fx_t *f, const mt_tag_inst_t *pr, const struct gen *g)
{
    mt_tag_series_t *s = malloc(sizeof *s);
    mt_tag_series_init(s);
    mt_tag_inst_t in = *pr;
    in.img = NULL;
    in.n_img = 0;
    snprintf(in.series_uid, sizeof in.series_uid, "1.2.3.%d", ++f->serial);
    in.series_number = f->serial;
    unsigned nsl = g->nsl ? g->nsl : 1, nph = g->nph ? g->nph : 1, ndyn = g->ndyn ? g->ndyn : 1;
    unsigned nti = g->nti ? g->nti : 1, nte = g->nte ? g->nte : 1;
    for (unsigned k = 0; k < nsl; k++)
        for (unsigned d = 0; d < ndyn; d++)
            for (unsigned p = 0; p < nph; p++)
                for (unsigned t = 0; t < nti; t++)
                    for (unsigned e = 0; e < nte; e++) {
                        mt_tag_img_t img;
                        mt_tag_img_init(&img);
                        iop_for(g->n, img.iop);
                        double off = (k - (nsl - 1) / 2.0) * g->sp;
                        for (int i = 0; i < 3; i++)
                            img.ipp[i] = (float)(g->center[i] + g->n[i] * off);
                        img.tt = (float)(p * g->tt_step + (g->ti ? 0 : 0));
                        if (g->ti)
                            img.ti = g->ti[t];
                        img.te = g->te ? g->te[e] : 1.2f;
                        img.acq = (float)(g->t0 + k * 12 + d * g->ddyn + (g->nsl > 1 && ndyn > 1 ? -k * 12 + k * 0.1 : 0));
                        img.itype = g->itype ? g->itype : pr->itype;
                        mt_tag_inst_t one = in;
                        one.img = NULL;
                        one.n_img = 0;
                        one.itype = 0;
                        mt_tag_inst_add_img(&one, &img);
                        mt_tag_series_add(s, &one);
                        mt_tag_inst_dispose(&one);
                    }
    mt_tag_series_finish(s);
    f->s[f->st.n++] = s;
    return s;
}

/* heart pose: L, prior septal u and anterior a exactly as geom.c builds them */
static void pose(const double L[3], double u[3], double a[3])
{
    double s[3] = {-M_SQRT1_2, -M_SQRT1_2, 0};
    double sl = s[0] * L[0] + s[1] * L[1] + s[2] * L[2];
    for (int i = 0; i < 3; i++)
        u[i] = s[i] - sl * L[i];
    unit(u);
    a[0] = u[1] * L[2] - u[2] * L[1];
    a[1] = u[2] * L[0] - u[0] * L[2];
    a[2] = u[0] * L[1] - u[1] * L[0];
    unit(a);
}

static void lax_normal(const double L[3], double alpha_deg, double n[3])
{
    double u[3], a[3];
    pose(L, u, a);
    double al = alpha_deg * M_PI / 180;
    for (int i = 0; i < 3; i++)
        n[i] = sin(al) * u[i] + cos(al) * a[i];
    unit(n);
}

/* add single planes of other orientations to a finished series */
static void add_planes(mt_tag_series_t *s, const double (*ns)[3], int k, float ti)
{
    mt_tag_inst_t in = s->h;
    in.img = NULL;
    in.n_img = 0;
    for (int i = 0; i < k; i++) {
        mt_tag_img_t img;
        mt_tag_img_init(&img);
        iop_for(ns[i], img.iop);
        img.ipp[0] = img.ipp[1] = img.ipp[2] = 0;
        img.ti = ti;
        img.acq = (float)s->t_start + 5;
        mt_tag_inst_add_img(&in, &img);
    }
    mt_tag_series_add(s, &in);
    mt_tag_inst_dispose(&in);
    mt_tag_series_finish(s);
    s->fam = -1;
}

static const double L0[3] = {0.57735, -0.57735, -0.57735}; /* apex left, anterior, inferior */

static const char *tag_of(mt_tag_series_t *s)
{
    return s->res.tag;
}

/* ---- vocabulary ---- */
static void test_words(void **state)
{
    (void)state;
    mt_tag_words_t w = {{0}};
    mt_tag_words_scan("CINE_segmented_SAX_b7", &w);
    assert_true(mt_tag_words_has(&w, MT_W_CINE_SEGMENTED));
    assert_true(mt_tag_words_has(&w, MT_W_CINE));
    assert_true(mt_tag_words_has(&w, MT_W_V_SAX));
    assert_true(mt_tag_words_has(&w, MT_W_V_BN));
    memset(&w, 0, sizeof w);
    mt_tag_words_scan("Cine 4 ch TI300 3-pl loc", &w);
    assert_true(mt_tag_words_has(&w, MT_W_V_4CH));
    assert_true(mt_tag_words_has(&w, MT_W_PL3_LOC));
    assert_true(mt_tag_words_has(&w, MT_W_LOC));
    assert_false(mt_tag_words_has(&w, MT_W_V_SAX));
    memset(&w, 0, sizeof w);
    mt_tag_words_scan("2-chamber FIESTA CINE", &w);
    assert_true(mt_tag_words_has(&w, MT_W_V_2CHAMBER));
    assert_true(mt_tag_words_has(&w, MT_W_V_2_CHAMBER));
    assert_true(mt_tag_words_has(&w, MT_W_FIESTA));
    memset(&w, 0, sizeof w);
    mt_tag_words_scan("Cor_T1MOLLI_BH", &w);
    assert_true(mt_tag_words_has(&w, MT_W_MOLLI));
    assert_true(mt_tag_words_has(&w, MT_W_V_COR));
    memset(&w, 0, sizeof w);
    mt_tag_words_scan("PS:DE SAX T2* me_t2* R", &w);
    assert_true(mt_tag_words_has(&w, MT_W_PS_PREFIX));
    assert_true(mt_tag_words_has(&w, MT_W_DE));
    assert_true(mt_tag_words_has(&w, MT_W_T2STAR_SYM));
    assert_true(mt_tag_words_has(&w, MT_W_R_SINGLE));
    assert_false(mt_tag_words_has(&w, MT_W_S_SINGLE));
    /* long and hostile input never overflows */
    char big[2000];
    memset(big, 'A', sizeof big - 1);
    big[sizeof big - 1] = 0;
    mt_tag_words_scan(big, &w);
    mt_tag_words_scan(NULL, &w);
    mt_tag_words_scan("", &w);
}

/* ---- geometry ---- */
static double frand(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return ((*seed >> 8) & 0xFFFF) / 65535.0;
}

static void test_alpha_known_rotations(void **state)
{
    (void)state;
    unsigned seed = 7;
    for (int it = 0; it < 200; it++) {
        /* random long axis in the physiological hemisphere */
        double L[3] = {0.3 + frand(&seed), -0.3 - frand(&seed), -0.3 - frand(&seed)};
        unit(L);
        for (double al = 0; al < 180; al += 7.5) {
            double n[3];
            lax_normal(L, al, n);
            double got = mt_tag_alpha(L, n);
            double d = fabs(got - al);
            d = d > 90 ? 180 - d : d;
            assert_true(d < 1e-6);
            /* the plane's sign does not matter */
            double m[3] = {-n[0], -n[1], -n[2]};
            d = fabs(mt_tag_alpha(L, m) - al);
            d = d > 90 ? 180 - d : d;
            assert_true(d < 1e-6);
        }
    }
}

static void test_view_single_plane(void **state)
{
    (void)state;
    float c;
    assert_int_equal(mt_tag_view_from_alpha(90, &c), MT_VIEW_2CH);
    assert_true(c > .85f);
    assert_int_equal(mt_tag_view_from_alpha(150, &c), MT_VIEW_3CH);
    assert_int_equal(mt_tag_view_from_alpha(22, &c), MT_VIEW_4CH);
    assert_int_equal(mt_tag_view_from_alpha(175, &c), MT_VIEW_4CH);
    assert_int_equal(mt_tag_view_from_alpha(62, &c), MT_VIEW_2CH);
    assert_true(c < .7f); /* near a boundary */
}

static void test_joint_fit_with_noise(void **state)
{
    (void)state;
    unsigned seed = 99;
    for (int it = 0; it < 500; it++) {
        double delta = -25 + 50 * frand(&seed); /* septal prior error */
        double al[3] = {22 + delta + 8 * (frand(&seed) - .5), 90 + delta + 8 * (frand(&seed) - .5),
                        150 + delta + 8 * (frand(&seed) - .5)};
        for (int k = 0; k < 3; k++)
            al[k] = fmod(al[k] + 360, 180);
        int views[3];
        double d;
        float c;
        /* present the clusters in a random order */
        int perm[3] = {0, 1, 2};
        for (int k = 2; k > 0; k--) {
            int j = (int)(frand(&seed) * (k + 1)) % (k + 1);
            int t = perm[k];
            perm[k] = perm[j];
            perm[j] = t;
        }
        double in[3] = {al[perm[0]], al[perm[1]], al[perm[2]]};
        assert_true(mt_tag_joint_fit(in, 3, views, &d, &c));
        static const int want[3] = {MT_VIEW_4CH, MT_VIEW_2CH, MT_VIEW_3CH};
        for (int k = 0; k < 3; k++)
            assert_int_equal(views[k], want[perm[k]]);
        assert_true(fabs(d - delta) < 8);
        assert_true(c >= .95f);
    }
    /* a duplicate view becomes other */
    double al[4] = {22, 90, 150, 60};
    int views[4];
    double d;
    float c;
    assert_true(mt_tag_joint_fit(al, 4, views, &d, &c));
    assert_int_equal(views[1], MT_VIEW_2CH);
    assert_int_equal(views[3], MT_VIEW_OTHER);
    /* a re-planned repeat within 15 degrees keeps the view */
    double rep[4] = {22, 90, 150, 98};
    assert_true(mt_tag_joint_fit(rep, 4, views, &d, &c));
    assert_int_equal(views[1], MT_VIEW_2CH);
    assert_int_equal(views[3], MT_VIEW_2CH);
}

static void test_patient_plane(void **state)
{
    (void)state;
    bool dbl;
    double ax[3] = {0, 0, 1}, sag[3] = {1, 0, 0}, cor[3] = {0, 1, 0};
    assert_int_equal(mt_tag_patient_plane(ax, &dbl), 'A');
    assert_int_equal(mt_tag_patient_plane(sag, &dbl), 'S');
    assert_int_equal(mt_tag_patient_plane(cor, &dbl), 'C');
    assert_int_equal(mt_tag_patient_plane(L0, &dbl), 'O');
    assert_true(dbl);
}

/* ---- a standard exam ---- */
static const float ti_lge[1] = {300};

static void std_exam(fx_t *f, bool with_desc, double delta)
{
    double n4[3], n2[3], n3[3];
    lax_normal(L0, 22 + delta, n4);
    lax_normal(L0, 90 + delta, n2);
    lax_normal(L0, 150 + delta, n3);
    double t = 8 * 3600;
    mt_tag_inst_t p;
    /* localizer: 3 orthogonal planes */
    p = proto(with_desc ? "localizer" : "");
    p.fov = 450;
    struct gen g = {{0, 0, 1}, 3, 10, 1, 0, 1, 0, 0, 0, 0, 0, t, {0}, 0};
    mt_tag_series_t *loc = add_series(f, &p, &g);
    static const double sc[2][3] = {{1, 0, 0}, {0, 1, 0}};
    add_planes(loc, sc, 2, NAN);
    /* cines: SAX stack + 3 LAX */
    p = proto(with_desc ? "cine_sax" : "");
    p.seq_var = MT_SV_SS;
    p.scan_seq = MT_SS_GR;
    p.cardiac_n = 25;
    struct gen cs = {{L0[0], L0[1], L0[2]}, 10, 10, 25, 40, 0, 0, 0, 0, 0, 0, t + 300, {0}, 0};
    add_series(f, &p, &cs);
    const double *lax[3] = {n4, n2, n3};
    const char *ld[3] = {"cine_4ch", "cine_2ch", "cine_3ch"};
    for (int k = 0; k < 3; k++) {
        p = proto(with_desc ? ld[k] : "");
        p.seq_var = MT_SV_SS;
        p.scan_seq = MT_SS_GR;
        p.cardiac_n = 25;
        struct gen gl = {{lax[k][0], lax[k][1], lax[k][2]}, 1, 0, 25, 40, 0, 0, 0, 0, 0, 0,
                         t + 600 + 30 * k, {0}, 0};
        add_series(f, &p, &gl);
    }
    /* LGE after contrast (perfusion gives t_contrast) */
    p = proto(with_desc ? "perfusion" : "");
    p.seq_var = MT_SV_MP;
    p.tr = 2.5f;
    struct gen gp = {{L0[0], L0[1], L0[2]}, 3, 20, 1, 0, 50, 0.9, 0, 0, 0, 0, t + 900, {0}, 0};
    add_series(f, &p, &gp);
    p = proto(with_desc ? "de_sax" : "");
    p.scan_seq = MT_SS_GR | MT_SS_IR;
    struct gen gd = {{L0[0], L0[1], L0[2]}, 10, 10, 1, 0, 0, 0, ti_lge, 1, 0, 0, t + 1500, {0}, 0};
    add_series(f, &p, &gd);
    for (int k = 0; k < 3; k++) {
        char d[32];
        snprintf(d, sizeof d, "de_%s", ld[k] + 5);
        p = proto(with_desc ? d : "");
        p.scan_seq = MT_SS_GR | MT_SS_IR;
        struct gen gl = {{lax[k][0], lax[k][1], lax[k][2]}, 1, 0, 1, 0, 0, 0, ti_lge, 1, 0, 0,
                         t + 1600 + 30 * k, {0}, 0};
        add_series(f, &p, &gl);
    }
}

static void test_standard_exam_with_names(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f);
    std_exam(&f, true, 0);
    mt_tag_study_run(&f.st);
    static const char *want[] = {"localizer", "cine.sax", "cine.4ch", "cine.2ch", "cine.3ch",
                                 "perfusion.rest", "lge.sax", "lge.4ch", "lge.2ch", "lge.3ch"};
    for (size_t i = 0; i < f.st.n; i++) {
        if (strcmp(tag_of(f.s[i]), want[i]) != 0)
            print_message("series %zu: got %s want %s (%s)\n", i, tag_of(f.s[i]), want[i],
                          f.s[i]->res.evidence);
        assert_string_equal(tag_of(f.s[i]), want[i]);
    }
    assert_true(f.st.has_L);
    assert_true(f.s[2]->res.confidence >= .9f);
    fx_free(&f);
}

static void test_geometry_decides_without_names(void **state)
{
    (void)state;
    for (double delta = -20; delta <= 20; delta += 10) {
        fx_t f;
        fx_init(&f);
        std_exam(&f, false, delta);
        mt_tag_study_run(&f.st);
        static const char *want[] = {"localizer", "cine.sax", "cine.4ch", "cine.2ch", "cine.3ch",
                                     NULL, "lge.sax", "lge.4ch", "lge.2ch", "lge.3ch"};
        for (size_t i = 0; i < f.st.n; i++) {
            if (!want[i])
                continue;
            if (strcmp(tag_of(f.s[i]), want[i]) != 0)
                print_message("delta %.0f series %zu: got %s want %s (%s)\n", delta, i,
                              tag_of(f.s[i]), want[i], f.s[i]->res.evidence);
            assert_string_equal(tag_of(f.s[i]), want[i]);
        }
        assert_true(strncmp(tag_of(f.s[5]), "perfusion.", 10) == 0);
        fx_free(&f);
    }
}

static void test_misleading_view_name(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f);
    std_exam(&f, true, 0);
    /* the 2ch cine described as 4ch (protocol copied) */
    mt_tag_words_t w = {{0}};
    mt_tag_words_scan("cine_4ch", &w);
    f.s[3]->h.desc = w;
    mt_tag_study_run(&f.st);
    assert_string_equal(tag_of(f.s[3]), "cine.2ch");
    assert_non_null(strstr(f.s[3]->res.evidence, "desc_view_mismatch"));
    fx_free(&f);
}

static void test_no_sax_lax_estimate_and_names(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f);
    double n4[3], n2[3];
    lax_normal(L0, 22, n4);
    lax_normal(L0, 90, n2);
    mt_tag_inst_t p = proto("");
    p.seq_var = MT_SV_SS;
    p.cardiac_n = 25;
    struct gen a = {{n4[0], n4[1], n4[2]}, 1, 0, 25, 40, 0, 0, 0, 0, 0, 0, 30000, {0}, 0};
    struct gen b = {{n2[0], n2[1], n2[2]}, 1, 0, 25, 40, 0, 0, 0, 0, 0, 0, 30100, {0}, 0};
    add_series(&f, &p, &a);
    add_series(&f, &p, &b);
    mt_tag_study_run(&f.st);
    assert_true(f.st.has_L && f.st.L_from_lax);
    /* two planes only: the joint fit still separates them */
    assert_string_equal(tag_of(f.s[0]), "cine.4ch");
    assert_string_equal(tag_of(f.s[1]), "cine.2ch");
    fx_free(&f);

    /* a single cine plane, no SAX, no names: unknown; with a view name: cine.<view> at 0.6 */
    fx_init(&f);
    add_series(&f, &p, &a);
    mt_tag_study_run(&f.st);
    assert_string_equal(tag_of(f.s[0]), "unknown");
    mt_tag_words_scan("Cine_TruFisp_RVLA", &f.s[0]->h.desc);
    f.s[0]->fam = -1;
    mt_tag_study_run(&f.st);
    assert_string_equal(tag_of(f.s[0]), "cine.other");
    assert_true(fabsf(f.s[0]->res.confidence - .6f) < .01f);
    assert_int_equal(f.s[0]->res.revision, 1);
    fx_free(&f);
}

static void test_ukbb_per_slice_sax(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f);
    for (int k = 0; k < 9; k++) {
        char d[40];
        snprintf(d, sizeof d, "CINE_segmented_SAX_b%d", k + 1);
        mt_tag_inst_t p = proto("");
        p.seq_var = MT_SV_SS;
        p.cardiac_n = 50;
        struct gen g = {{L0[0], L0[1], L0[2]}, 1, 0, 50, 20, 0, 0, 0, 0, 0, 0, 30000 + 20 * k,
                        {L0[0] * 10 * k, L0[1] * 10 * k, L0[2] * 10 * k}, 0};
        add_series(&f, &p, &g);
    }
    double n3[3];
    lax_normal(L0, 150, n3);
    mt_tag_inst_t p = proto("");
    p.seq_var = MT_SV_SS;
    p.cardiac_n = 50;
    struct gen g = {{n3[0], n3[1], n3[2]}, 1, 0, 50, 20, 0, 0, 0, 0, 0, 0, 31000, {0}, 0};
    add_series(&f, &p, &g);
    mt_tag_study_run(&f.st);
    assert_true(f.st.has_L);
    assert_false(f.st.L_from_lax);
    for (int k = 0; k < 9; k++)
        assert_string_equal(tag_of(f.s[k]), "cine.sax");
    assert_string_equal(tag_of(f.s[9]), "cine.3ch");
    fx_free(&f);
}

/* ---- family rules on single series ---- */
static mt_tag_series_t *one(fx_t *f, const mt_tag_inst_t *p, const struct gen *g)
{
    mt_tag_series_t *s = add_series(f, p, g);
    mt_tag_study_run(&f->st);
    return s;
}

static void test_rule_secondary_and_names(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f);
    mt_tag_inst_t p = proto("Screenshot");
    struct gen g = {{0, 0, 1}, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 30000, {0}, 0};
    assert_string_equal(tag_of(one(&f, &p, &g)), "other");
    p = proto("x");
    p.secondary_capture = true;
    assert_string_equal(tag_of(one(&f, &p, &g)), "other");
    p = proto("tagging grid");
    p.cardiac_n = 20;
    struct gen c = {{L0[0], L0[1], L0[2]}, 1, 0, 20, 40, 0, 0, 0, 0, 0, 0, 30000, {0}, 0};
    assert_string_equal(tag_of(one(&f, &p, &c)), "other");
    fx_free(&f);
}

static void test_rule_maps_by_imagetype(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f);
    struct gen g = {{L0[0], L0[1], L0[2]}, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 30000, {0}, 0};
    mt_tag_inst_t p = proto("");
    g.itype = MT_IT_DERIVED | MT_IT_T1MAP;
    mt_tag_series_t *s = one(&f, &p, &g);
    assert_string_equal(tag_of(s), "t1map.native");
    g.itype = MT_IT_DERIVED | MT_IT_T2MAP;
    assert_string_equal(tag_of(one(&f, &p, &g)), "t2map");
    g.itype = MT_IT_DERIVED | MT_IT_T2SMAP;
    assert_string_equal(tag_of(one(&f, &p, &g)), "t2star");
    g.itype = MT_IT_DERIVED | MT_IT_VEL;
    assert_string_equal(tag_of(one(&f, &p, &g)), "flow");
    fx_free(&f);
}

static void test_rule_flow_siemens_pair(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f);
    double n[3] = {0.2, 0.6, 0.77};
    unit(n);
    mt_tag_inst_t p = proto("flow_250_tp_AoV_bh_ePAT@c");
    p.seq_flags = MT_SQ_FL | MT_SQ_PCMAG;
    p.cardiac_n = 30;
    struct gen g = {{n[0], n[1], n[2]}, 1, 0, 30, 30, 0, 0, 0, 0, 0, 0, 30000, {0}, 0};
    mt_tag_words_scan("_MAG", &p.desc);
    mt_tag_series_t *mag = add_series(&f, &p, &g);
    p.seq_flags = MT_SQ_FL | MT_SQ_VENC;
    p.venc = 250;
    g.itype = MT_IT_DERIVED | MT_IT_P;
    mt_tag_series_t *ph = add_series(&f, &p, &g);
    mt_tag_study_run(&f.st);
    assert_string_equal(tag_of(ph), "flow");
    assert_string_equal(tag_of(mag), "flow");
    assert_true(ph->res.confidence >= .95f);
    assert_true(mag->res.confidence >= .85f);
    /* a magnitude alone without names still is a (weak) flow */
    fx_free(&f);
    fx_init(&f);
    p = proto("");
    p.seq_flags = MT_SQ_FL | MT_SQ_PCMAG;
    p.cardiac_n = 30;
    g.itype = 0;
    mt_tag_series_t *m2 = one(&f, &p, &g);
    assert_string_equal(tag_of(m2), "flow");
    assert_true(m2->res.confidence < .7f);
    fx_free(&f);
}

static void test_rule_localizer(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f);
    mt_tag_inst_t p = proto("");
    mt_tag_series_t *s = add_series(&f, &p, &(struct gen){{0, 0, 1}, 3, 10, 1, 0, 0, 0, 0, 0, 0, 0, 30000, {0}, 0});
    /* add sagittal and coronal planes to the same series */
    mt_tag_inst_t in = p;
    in.img = NULL;
    in.n_img = 0;
    snprintf(in.series_uid, sizeof in.series_uid, "%s", s->h.series_uid);
    double ns[2][3] = {{1, 0, 0}, {0, 1, 0}};
    for (int k = 0; k < 2; k++) {
        mt_tag_img_t img;
        mt_tag_img_init(&img);
        iop_for(ns[k], img.iop);
        img.ipp[0] = img.ipp[1] = img.ipp[2] = 0;
        img.acq = 30001;
        mt_tag_inst_add_img(&in, &img);
    }
    mt_tag_series_add(s, &in);
    mt_tag_inst_dispose(&in);
    mt_tag_series_finish(s);
    s->fam = -1;
    mt_tag_study_run(&f.st);
    assert_string_equal(tag_of(s), "localizer");
    assert_non_null(strstr(s->res.evidence, "r4.orthogonal_planes"));
    /* a single oblique cine plane called LOC FIESTA (GE cine localiser) is a cine */
    p = proto("LOC_SAX_FIESTA_BH");
    p.seq_var = MT_SV_SS;
    p.cardiac_n = 20;
    mt_tag_series_t *c = one(&f, &p, &(struct gen){{L0[0], L0[1], L0[2]}, 1, 0, 20, 40, 0, 0, 0, 0, 0, 0, 30100, {0}, 0});
    assert_string_equal(tag_of(c), "cine.sax");
    assert_null(strstr(c->res.evidence, "name_conflict"));
    fx_free(&f);
}

static void test_rule_perfusion_stress_rest_order(void **state)
{
    (void)state;
    struct gen gp = {{L0[0], L0[1], L0[2]}, 3, 20, 1, 0, 50, 0.9, 0, 0, 0, 0, 30000, {0}, 0};
    /* 1. stress first (HR higher), rest 15 min later: both rules agree */
    fx_t f;
    fx_init(&f);
    mt_tag_inst_t p = proto("");
    p.seq_var = MT_SV_MP;
    p.tr = 2.4f;
    p.hr = 85;
    p.nominal_rr = NAN;
    mt_tag_series_t *a = add_series(&f, &p, &gp);
    p.hr = 66;
    gp.t0 = 30000 + 900;
    mt_tag_series_t *b = add_series(&f, &p, &gp);
    mt_tag_study_run(&f.st);
    assert_string_equal(tag_of(a), "perfusion.stress");
    assert_string_equal(tag_of(b), "perfusion.rest");
    fx_free(&f);
    /* 2. rest first, HR rising at the second, >= 8 min apart: HR and order disagree */
    fx_init(&f);
    p.hr = 64;
    gp.t0 = 30000;
    a = add_series(&f, &p, &gp);
    p.hr = 88;
    gp.t0 = 30000 + 1200;
    b = add_series(&f, &p, &gp);
    mt_tag_study_run(&f.st);
    assert_string_equal(tag_of(a), "perfusion.unknown");
    assert_string_equal(tag_of(b), "perfusion.unknown");
    assert_non_null(strstr(a->res.evidence, "hr_order_disagree"));
    fx_free(&f);
    /* 3. the same, with names: names decide */
    fx_init(&f);
    p = proto("PERF_REST");
    p.seq_var = MT_SV_MP;
    p.hr = 64;
    gp.t0 = 30000;
    a = add_series(&f, &p, &gp);
    p = proto("PERF_ADENO");
    p.seq_var = MT_SV_MP;
    p.hr = 88;
    gp.t0 = 30000 + 1200;
    b = add_series(&f, &p, &gp);
    mt_tag_study_run(&f.st);
    assert_string_equal(tag_of(a), "perfusion.rest");
    assert_string_equal(tag_of(b), "perfusion.stress");
    assert_true(b->res.confidence >= .9f);
    fx_free(&f);
    /* 4. rest first, close together (HR only) */
    fx_init(&f);
    p = proto("");
    p.seq_var = MT_SV_MP;
    p.nominal_rr = NAN;
    p.hr = 62;
    gp.t0 = 30000;
    a = add_series(&f, &p, &gp);
    p.hr = 90;
    gp.t0 = 30000 + 300;
    b = add_series(&f, &p, &gp);
    mt_tag_study_run(&f.st);
    assert_string_equal(tag_of(a), "perfusion.rest");
    assert_string_equal(tag_of(b), "perfusion.stress");
    fx_free(&f);
    /* 5. a single perfusion: rest in a non-stress exam, stress in a stress exam */
    fx_init(&f);
    p = proto("");
    p.seq_var = MT_SV_MP;
    a = add_series(&f, &p, &gp);
    mt_tag_study_run(&f.st);
    assert_string_equal(tag_of(a), "perfusion.rest");
    f.st.stress_exam = true;
    mt_tag_study_run(&f.st);
    assert_string_equal(tag_of(a), "perfusion.stress");
    assert_int_equal(a->res.revision, 1);
    fx_free(&f);
}

static void test_rule_perfusion_moco_companion(void **state)
{
    (void)state;
    struct gen gp = {{L0[0], L0[1], L0[2]}, 3, 20, 1, 0, 50, 0.9, 0, 0, 0, 0, 30000, {0}, 0};
    fx_t f;
    fx_init(&f);
    mt_tag_inst_t p = proto("tfl_perf_stress");
    p.seq_var = MT_SV_MP;
    mt_tag_series_t *a = add_series(&f, &p, &gp);
    gp.itype = MT_IT_DERIVED | MT_IT_MOCO;
    mt_tag_series_t *m = add_series(&f, &p, &gp);
    mt_tag_study_run(&f.st);
    assert_string_equal(tag_of(a), "perfusion.stress");
    assert_string_equal(tag_of(m), "perfusion.stress");
    assert_int_equal(m->link, 0);
    fx_free(&f);
}

static void test_rule_molli_and_tiscout(void **state)
{
    (void)state;
    static const float molli[8] = {100, 180, 260, 1100, 1180, 2100, 2180, 3100};
    static const float scout[20] = {100, 130, 160, 190, 220, 250, 280, 310, 340, 370,
                                    400, 430, 460, 490, 520, 550, 580, 610, 640, 670};
    fx_t f;
    fx_init(&f);
    /* perfusion first: contrast at t=30000 */
    struct gen gp = {{L0[0], L0[1], L0[2]}, 3, 20, 1, 0, 50, 0.9, 0, 0, 0, 0, 30600, {0}, 0};
    mt_tag_inst_t p = proto("");
    p.seq_var = MT_SV_MP;
    add_series(&f, &p, &gp);
    p = proto("");
    p.seq_var = MT_SV_SS;
    p.cardiac_n = 25;
    add_series(&f, &p, &(struct gen){{L0[0], L0[1], L0[2]}, 10, 10, 25, 40, 0, 0, 0, 0, 0, 0, 29000, {0}, 0});
    p = proto("");
    p.scan_seq = MT_SS_GR | MT_SS_IR;
    p.seq_var = MT_SV_SS;
    struct gen gm = {{L0[0], L0[1], L0[2]}, 1, 0, 1, 0, 0, 0, molli, 8, 0, 0, 30000, {0}, 0};
    mt_tag_series_t *native = add_series(&f, &p, &gm);
    gm.t0 = 32000;
    mt_tag_series_t *post = add_series(&f, &p, &gm);
    struct gen gs = {{L0[0], L0[1], L0[2]}, 1, 0, 1, 0, 0, 0, scout, 20, 0, 0, 31500, {0}, 0};
    mt_tag_series_t *ts = add_series(&f, &p, &gs);
    mt_tag_study_run(&f.st);
    assert_string_equal(tag_of(native), "t1map.native");
    assert_string_equal(tag_of(post), "t1map.post");
    assert_string_equal(tag_of(ts), "tiscout");
    assert_int_equal(native->res.view, MT_VIEW_SAX);
    fx_free(&f);
    /* without any contrast context, names decide; without names: native at 0.6 */
    fx_init(&f);
    p = proto("MOLLI_post");
    p.scan_seq = MT_SS_GR | MT_SS_IR;
    mt_tag_series_t *s = add_series(&f, &p, &gm);
    mt_tag_study_run(&f.st);
    assert_string_equal(tag_of(s), "t1map.post");
    fx_free(&f);
    fx_init(&f);
    p = proto("");
    p.scan_seq = MT_SS_GR | MT_SS_IR;
    s = add_series(&f, &p, &gm);
    mt_tag_study_run(&f.st);
    assert_string_equal(tag_of(s), "t1map.native");
    assert_true(fabsf(s->res.confidence - .6f) < .01f);
    fx_free(&f);
}

static void test_rule_t2_and_t2star(void **state)
{
    (void)state;
    static const float t2te[6] = {10, 25, 40, 55, 70, 85};
    static const float t2ste[8] = {2.6f, 4.8f, 7.0f, 9.2f, 11.4f, 13.6f, 15.8f, 18.0f};
    fx_t f;
    fx_init(&f);
    mt_tag_inst_t p = proto("");
    p.scan_seq = MT_SS_SE;
    struct gen g = {{L0[0], L0[1], L0[2]}, 1, 0, 1, 0, 0, 0, 0, 0, t2te, 6, 30000, {0}, 0};
    assert_string_equal(tag_of(one(&f, &p, &g)), "t2map");
    p = proto("");
    p.scan_seq = MT_SS_GR;
    p.seq_var = MT_SV_SP;
    g.te = t2ste;
    g.nte = 8;
    assert_string_equal(tag_of(one(&f, &p, &g)), "t2star");
    /* Dixon: 2 echoes -> names decide */
    p = proto("DIXON_W");
    p.scan_seq = MT_SS_GR;
    g.nte = 2;
    assert_string_equal(tag_of(one(&f, &p, &g)), "other");
    /* T2-prep bSSFP map source (constant TE): names */
    p = proto("T2MAP_TRUEFISP");
    p.seq_var = MT_SV_SS;
    g.te = NULL;
    g.nte = 0;
    assert_string_equal(tag_of(one(&f, &p, &g)), "t2map");
    fx_free(&f);
}

static void test_rule_lge_psir_pairs(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f);
    /* GE MAG:/PS: pair: same protocol, same geometry, same time */
    mt_tag_inst_t p = proto("MDE_SAX");
    p.vendor = MT_VENDOR_GE;
    p.scan_seq = MT_SS_GR | MT_SS_IR;
    p.contrast = true;
    struct gen g = {{L0[0], L0[1], L0[2]}, 10, 8, 1, 0, 0, 0, ti_lge, 1, 0, 0, 30000, {0}, 0};
    mt_tag_series_t *mag = add_series(&f, &p, &g);
    mt_tag_words_scan("PS:", &p.desc);
    g.itype = MT_IT_DERIVED | MT_IT_PSIR;
    mt_tag_series_t *ps = add_series(&f, &p, &g);
    mt_tag_study_run(&f.st);
    assert_string_equal(tag_of(mag), "lge.sax");
    assert_string_equal(tag_of(ps), "lge.sax");
    fx_free(&f);
    /* Philips mixed M_IR / R_IR series: one series, union of ImageTypes */
    fx_init(&f);
    p = proto("");
    p.vendor = MT_VENDOR_PHILIPS;
    p.scan_seq = MT_SS_GR | MT_SS_IR;
    p.contrast = true;
    g.itype = MT_IT_M | MT_IT_IR;
    mt_tag_series_t *s = add_series(&f, &p, &g);
    /* add the real images */
    mt_tag_inst_t in = p;
    in.img = NULL;
    in.n_img = 0;
    snprintf(in.series_uid, sizeof in.series_uid, "%s", s->h.series_uid);
    for (unsigned k = 0; k < s->h.n_img && k < 10; k++) {
        mt_tag_img_t img = s->h.img[k];
        img.itype = MT_IT_R | MT_IT_IR;
        mt_tag_inst_add_img(&in, &img);
    }
    mt_tag_series_add(s, &in);
    mt_tag_inst_dispose(&in);
    mt_tag_series_finish(s);
    s->fam = -1;
    mt_tag_study_run(&f.st);
    assert_string_equal(tag_of(s), "lge.sax");
    assert_int_equal(s->n_real, 10);
    fx_free(&f);
}

static void test_rule_lge_without_contrast_is_unknown(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f);
    mt_tag_inst_t p = proto("");
    p.scan_seq = MT_SS_GR | MT_SS_IR;
    struct gen g = {{L0[0], L0[1], L0[2]}, 10, 8, 1, 0, 0, 0, ti_lge, 1, 0, 0, 30000, {0}, 0};
    mt_tag_series_t *s = one(&f, &p, &g);
    assert_string_equal(tag_of(s), "unknown");
    assert_non_null(strstr(s->res.evidence, "lge_no_contrast_context"));
    fx_free(&f);
}

static void test_rule_cine_name_conflict(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f);
    /* "LGE_SA" with 25 phases and no IR is a cine (copied protocol) */
    mt_tag_inst_t p = proto("LGE_SA");
    p.seq_var = MT_SV_SS;
    struct gen g = {{L0[0], L0[1], L0[2]}, 10, 10, 25, 40, 0, 0, 0, 0, 0, 0, 30000, {0}, 0};
    mt_tag_series_t *s = one(&f, &p, &g);
    assert_string_equal(tag_of(s), "cine.sax");
    assert_true(s->res.confidence <= .75f);
    assert_non_null(strstr(s->res.evidence, "name_conflict"));
    /* real-time cine without gating is still a cine */
    p = proto("");
    p.scan_opt = 0;
    s = one(&f, &p, &g);
    assert_string_equal(tag_of(s), "cine.sax");
    fx_free(&f);
}

static void test_rule_mra_blackblood(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f);
    mt_tag_inst_t p = proto("");
    p.acq3d = true;
    p.scan_seq = MT_SS_GR;
    p.scan_opt = 0;
    p.slice_th = 1.5f;
    p.fov = 400;
    struct gen g = {{0, 1, 0}, 60, 1.5, 1, 0, 0, 0, 0, 0, 0, 0, 30000, {0}, 0};
    assert_string_equal(tag_of(one(&f, &p, &g)), "mra");
    p = proto("");
    p.scan_seq = MT_SS_SE;
    p.etl = 16;
    struct gen b = {{0, 0, 1}, 5, 8, 1, 0, 0, 0, 0, 0, 0, 0, 30000, {0}, 0};
    assert_string_equal(tag_of(one(&f, &p, &b)), "blackblood");
    /* STIR: IR spin echo, TI 160 */
    static const float ti160[1] = {160};
    p.scan_seq = MT_SS_SE | MT_SS_IR;
    b.ti = ti160;
    b.nti = 1;
    assert_string_equal(tag_of(one(&f, &p, &b)), "blackblood");
    fx_free(&f);
}

static void test_names_only_and_unknown(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f);
    struct gen g = {{L0[0], L0[1], L0[2]}, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 30000, {0}, 0};
    mt_tag_inst_t p = proto("Ax_localiser_BH");
    mt_tag_series_t *s = one(&f, &p, &g);
    assert_string_equal(tag_of(s), "localizer");
    assert_true(s->res.confidence <= .7f);
    p = proto("");
    s = one(&f, &p, &g);
    assert_string_equal(tag_of(s), "unknown");
    assert_non_null(strstr(s->res.evidence, "r12.no_rule"));
    /* two specific families within 0.1 tie -> unknown */
    p = proto("PERF_T1MAP");
    s = one(&f, &p, &g);
    assert_string_equal(tag_of(s), "unknown");
    fx_free(&f);
}

static void test_multi_view_series(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f);
    std_exam(&f, true, 0);
    /* one LGE overview series with 2ch, 4ch and SAX images (SAX the majority) */
    double n4[3], n2[3];
    lax_normal(L0, 22, n4);
    lax_normal(L0, 90, n2);
    mt_tag_inst_t p = proto("DE_overview_2ChStack_4ChStack_SAX");
    p.scan_seq = MT_SS_GR | MT_SS_IR;
    mt_tag_series_t *s = add_series(&f, &p, &(struct gen){{L0[0], L0[1], L0[2]}, 6, 10, 1, 0, 0, 0, ti_lge, 1, 0, 0, 8 * 3600 + 2000, {0}, 0});
    mt_tag_inst_t in = p;
    in.img = NULL;
    in.n_img = 0;
    snprintf(in.series_uid, sizeof in.series_uid, "%s", s->h.series_uid);
    const double *ns[2] = {n2, n4};
    for (int k = 0; k < 2; k++) {
        mt_tag_img_t img;
        mt_tag_img_init(&img);
        iop_for(ns[k], img.iop);
        img.ipp[0] = img.ipp[1] = img.ipp[2] = 0;
        img.ti = 300;
        img.acq = 8 * 3600 + 2010;
        mt_tag_inst_add_img(&in, &img);
    }
    mt_tag_series_add(s, &in);
    mt_tag_inst_dispose(&in);
    mt_tag_series_finish(s);
    s->fam = -1;
    mt_tag_study_run(&f.st);
    assert_string_equal(tag_of(s), "lge.sax");
    assert_true(s->res.multi_view);
    assert_non_null(strstr(s->res.evidence, "multi_view(sax/2ch/4ch)"));
    fx_free(&f);
}

static void test_revision_counter(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f);
    std_exam(&f, false, 0);
    /* first pass with only the LAX cines (no SAX yet): estimated L */
    mt_tag_series_t *all[MAXS];
    size_t n = f.st.n;
    memcpy(all, f.s, n * sizeof *all);
    f.st.n = 0;
    for (size_t i = 2; i < 5; i++)
        f.s[f.st.n++] = all[i];
    mt_tag_study_run(&f.st);
    unsigned r0 = f.s[0]->res.revision;
    assert_int_equal(r0, 0);
    memcpy(f.s, all, n * sizeof *all);
    f.st.n = n;
    mt_tag_study_run(&f.st);
    mt_tag_study_run(&f.st); /* idempotent */
    assert_string_equal(tag_of(f.s[2]), "cine.4ch");
    assert_true(f.s[2]->res.revision <= 1);
    fx_free(&f);
}

static void test_format_line(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f);
    std_exam(&f, true, 0);
    mt_tag_study_run(&f.st);
    char line[2048];
    assert_int_equal(mt_tag_format_line(f.s[1], line, sizeof line), 0);
    int commas = 0;
    for (char *p = line; *p; p++)
        commas += *p == ',';
    assert_int_equal(commas, 4);
    assert_non_null(strstr(line, ",cine.sax,sax,"));
    fx_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_words),
        cmocka_unit_test(test_alpha_known_rotations),
        cmocka_unit_test(test_view_single_plane),
        cmocka_unit_test(test_joint_fit_with_noise),
        cmocka_unit_test(test_patient_plane),
        cmocka_unit_test(test_standard_exam_with_names),
        cmocka_unit_test(test_geometry_decides_without_names),
        cmocka_unit_test(test_misleading_view_name),
        cmocka_unit_test(test_no_sax_lax_estimate_and_names),
        cmocka_unit_test(test_ukbb_per_slice_sax),
        cmocka_unit_test(test_rule_secondary_and_names),
        cmocka_unit_test(test_rule_maps_by_imagetype),
        cmocka_unit_test(test_rule_flow_siemens_pair),
        cmocka_unit_test(test_rule_localizer),
        cmocka_unit_test(test_rule_perfusion_stress_rest_order),
        cmocka_unit_test(test_rule_perfusion_moco_companion),
        cmocka_unit_test(test_rule_molli_and_tiscout),
        cmocka_unit_test(test_rule_t2_and_t2star),
        cmocka_unit_test(test_rule_lge_psir_pairs),
        cmocka_unit_test(test_rule_lge_without_contrast_is_unknown),
        cmocka_unit_test(test_rule_cine_name_conflict),
        cmocka_unit_test(test_rule_mra_blackblood),
        cmocka_unit_test(test_names_only_and_unknown),
        cmocka_unit_test(test_multi_view_series),
        cmocka_unit_test(test_revision_counter),
        cmocka_unit_test(test_format_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
