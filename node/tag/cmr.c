/*
 * cmr.c - CMR series tagging: family rules, precedence, and the exam-level pass
 * (shared/spec/cmr-tagging.md §2-§8). PURE.
 *
 * Per series (mt_tag_series_classify), the physics rules run in the order of §4.1; the first
 * one reaching 0.6 decides the family:
 *   1 other: Secondary Capture, ImageType SECONDARY, SCREENSHOT/RESULTS/REPORT names, non-MR
 *   2 derived maps by ImageType: T1 map, T2 map, T2and R2 star map, velocity/phase map
 *   3 flow: VENC SequenceName, velocity-encoding sequence, PC/phase ImageType (not IR);
 *     a Siemens PC magnitude (*fl2d1r<n>) gives 0.6 and is lifted by its phase companion
 *   4 localizer: Enhanced LOCALIZER; orthogonal planes without cine; FOV >= 400 mm (weak)
 *   5 perfusion: >= 20 dynamics of the same 1-5 positions, 0.4-2 s apart, 2D
 *   6 multi-TI at one position: TIs beyond one RR (or > 1200 ms) -> t1map; evenly stepped
 *     TIs within one RR, or IR with >= 8 trigger times -> tiscout
 *   7 T2 map source (3-9 TEs/T2-prep, spin echo or TE > 25 ms); T2star (>= 6 GRE echoes)
 *   8 LGE: IR, one TI in the field-strength window, one phase per position, not spin echo
 *   9 cine: >= 10 phases (trigger times at one position or CardiacNumberOfImages), no IR;
 *     tagging names/ImageType turn a cine into `other`
 *  10 MRA (3D thin / angio / MIP), then black blood (spin-echo family, STIR)
 *  11 names only (vocabulary tables below), confidence <= 0.7
 *  12 unknown
 * Physics + agreeing names: +0.05. Names of another family (>= 0.6): confidence <= 0.75 and
 * `name_conflict` (a GE "LOC ... FIESTA" cine localiser is the documented exception).
 *
 * Per exam (mt_tag_study_run):
 *   a. relative times (s since the first series; a midnight wrap is unwrapped);
 *   b. companions (§7): same ProtocolName hash, same geometry, start within 120 s -> one
 *      group; every member takes the family of the group's most confident member;
 *   c. contrast timeline t_contrast (§4.3); LGE physics without any contrast context
 *      (no t_contrast before it, no contrast names, no ContrastBolusAgent) -> unknown;
 *   d. t1map native/post (§4.3);
 *   e. SAX stack and L (§5.2, incl. the union of per-slice series and the estimate from two
 *      LAX planes), plane classes (§5.3), joint fit of all LAX clusters of the exam (§5.4),
 *      description check (§4.2), multi-view series split by orientation;
 *   f. perfusion stress/rest (§6): names, heart rate (>= 8 bpm), order (>= 8 min apart),
 *      exam type; HR and order disagreeing without names -> perfusion.unknown;
 *   g. final tag, confidence (min of family, view and sub-decision confidences), `unknown`
 *      below 0.6 (§8), revision counter when the tag or view changes.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/alloc.h"
#include "tag.h"

#define DEG (180.0 / M_PI)

static const char *const fam_names[MT_FAM_COUNT] = {
    [MT_FAM_NONE] = "unknown",       [MT_FAM_OTHER] = "other",   [MT_FAM_LOCALIZER] = "localizer",
    [MT_FAM_FLOW] = "flow",          [MT_FAM_PERF] = "perfusion", [MT_FAM_T1MAP] = "t1map",
    [MT_FAM_TISCOUT] = "tiscout",    [MT_FAM_T2MAP] = "t2map",   [MT_FAM_T2STAR] = "t2star",
    [MT_FAM_LGE] = "lge",            [MT_FAM_CINE] = "cine",     [MT_FAM_MRA] = "mra",
    [MT_FAM_BLACKBLOOD] = "blackblood",
};
static const char *const view_names[MT_VIEW_COUNT] = {"", "sax", "2ch", "3ch", "4ch", "other"};

const char *mt_tag_family_name(int fam)
{
    return (fam > 0 && fam < MT_FAM_COUNT) ? fam_names[fam] : "unknown";
}

const char *mt_tag_view_name(int view)
{
    return (view > 0 && view < MT_VIEW_COUNT) ? view_names[view] : "";
}

/* ---- evidence ---- */
static void ev_add(char *buf, size_t sz, const char *fmt, ...)
{
    size_t l = strlen(buf);
    if (l + 2 >= sz)
        return;
    if (l)
        buf[l++] = ' ';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + l, sz - l, fmt, ap);
    va_end(ap);
    for (char *p = buf + l; *p; p++)
        if (*p == ',')
            *p = ';';
}
#define EV(s, ...) ev_add((s)->ev, sizeof (s)->ev, __VA_ARGS__)

/* ---- name tables (§3.2), the fallback and the conflict check (§4.1 rule 11, §4.2) ---- */
struct name_rule {
    short word;
    signed char fam;
    float conf;
};

#define N(w, f, c) {MT_W_##w, MT_FAM_##f, c}
static const struct name_rule name_rules[] = {
    N(SCREENSHOT, OTHER, .8f), N(RESULTS, OTHER, .7f), N(REPORT, OTHER, .7f),
    N(SUMMARY, OTHER, .6f), N(PROCESSED, OTHER, .6f), N(INLINE_VF, OTHER, .7f),
    N(GRID, OTHER, .7f), N(TAG, OTHER, .6f), N(TAGGING, OTHER, .7f), N(SPAMM, OTHER, .7f),
    N(MTAG, OTHER, .7f), N(CSPAMM, OTHER, .7f), N(DENSE, OTHER, .6f), N(ASSET_CAL, OTHER, .7f),
    N(CALIBRATION, OTHER, .7f), N(SENSE_REF, OTHER, .7f), N(COILSURVEY, OTHER, .7f),
    N(DIXON, OTHER, .7f), N(FAT_PREFIX, OTHER, .7f), N(WATER_PREFIX, OTHER, .7f),
    N(BOLUSTRAK, OTHER, .7f), N(CAREBOLUS, OTHER, .7f), N(TESTBOLUS, OTHER, .7f),
    N(LOCALIZER, LOCALIZER, .7f), N(LOCALISER, LOCALIZER, .7f), N(SCOUT, LOCALIZER, .65f),
    N(AAHEART_SCOUT, LOCALIZER, .7f), N(TRUFI_LOC, LOCALIZER, .7f), N(LOC, LOCALIZER, .65f),
    N(PL3_LOC, LOCALIZER, .7f), N(PL3, LOCALIZER, .7f), N(PLANE3, LOCALIZER, .7f),
    N(SURVEY, LOCALIZER, .7f), N(SURV, LOCALIZER, .65f), N(INTERACTIVE, LOCALIZER, .6f),
    N(TRIPILOT, LOCALIZER, .7f), N(TRI_PILOT, LOCALIZER, .7f), N(PILOT, LOCALIZER, .6f),
    N(DEFINE, LOCALIZER, .6f), N(DEFINELONGAXIS, LOCALIZER, .65f),
    N(TI_SCOUT, TISCOUT, .7f), N(TISCOUT, TISCOUT, .7f), N(LOOKLOCKER, TISCOUT, .7f),
    N(LOOK_LOCKER, TISCOUT, .7f), N(CINE_IR, TISCOUT, .7f), N(CINEIR, TISCOUT, .7f),
    N(LL, TISCOUT, .55f), N(IR_EPI_LL, TISCOUT, .7f), N(IR_TFE_LL, TISCOUT, .7f),
    N(MOLLI, T1MAP, .7f), N(SHMOLLI, T1MAP, .7f), N(SASHA, T1MAP, .7f), N(T1MAP, T1MAP, .7f),
    N(T1_MAP, T1MAP, .7f), N(MYOMAP, T1MAP, .7f), N(LONGT1, T1MAP, .65f),
    N(SHORTT1, T1MAP, .65f), N(SMART1MAP, T1MAP, .7f), N(T1MAP_ARC, T1MAP, .7f),
    N(T1_MOLLI_MAP, T1MAP, .7f), N(MOLLI_SSFP, T1MAP, .7f),
    N(T2MAP, T2MAP, .7f), N(T2_MAP, T2MAP, .7f), N(T2MAP_TRUEFISP, T2MAP, .7f),
    N(T2P, T2MAP, .6f), N(T2PREP, T2MAP, .6f), N(T2MAP_FSE, T2MAP, .7f), N(GRASE, T2MAP, .65f),
    N(MGRASE, T2MAP, .65f),
    N(T2STAR_SYM, T2STAR, .7f), N(T2STAR, T2STAR, .7f), N(T2_STAR, T2STAR, .7f),
    N(MFGRE, T2STAR, .65f), N(MULTIECHO, T2STAR, .6f), N(MULTI_ECHO, T2STAR, .6f),
    N(M_FFE, T2STAR, .55f), N(R2STAR_SYM, T2STAR, .7f), N(IRON, T2STAR, .6f),
    N(FLOW, FLOW, .7f), N(QFLOW, FLOW, .7f), N(SQFLOW, FLOW, .7f), N(Q_FLOW, FLOW, .7f),
    N(PC, FLOW, .6f), N(PHASE_CONTRAST, FLOW, .7f), N(VENC, FLOW, .7f), N(V_EQ, FLOW, .6f),
    N(FASTPC, FLOW, .7f), N(FASTCARD_PC, FLOW, .7f), N(FLOW4D, FLOW, .7f), N(F4DF, FLOW, .7f),
    N(FLOW4D_T, FLOW, .7f),
    N(PERF, PERF, .7f), N(PERFUSION, PERF, .7f), N(FIRST_PASS, PERF, .7f),
    N(FIRSTPASS, PERF, .7f), N(FPP, PERF, .7f), N(TFL_PERF, PERF, .7f), N(SR, PERF, .45f),
    N(DYNAMIC_TFL_SR, PERF, .7f), N(FGRE_PERF, PERF, .7f), N(FGRE_ET, PERF, .65f),
    N(BTFE_PERF, PERF, .7f),
    N(DE, LGE, .65f), N(DHE, LGE, .7f), N(LGE, LGE, .7f), N(PSIR, LGE, .7f), N(DELAY, LGE, .6f),
    N(DELAYED, LGE, .65f), N(VIAB, LGE, .7f), N(VIABILITY, LGE, .7f), N(MDE, LGE, .7f),
    N(IRP_FGRE, LGE, .7f), N(TFL, LGE, .45f), N(TFI_PSIR, LGE, .7f),
    N(DELAYED_ENHANCEMENT, LGE, .7f), N(IR_TFE, LGE, .55f), N(PS_PREFIX, LGE, .6f),
    N(MAG_PREFIX, LGE, .5f), N(HYPERENHANCEMENT, LGE, .7f),
    N(MRA, MRA, .7f), N(CE_MRA, MRA, .7f), N(ANGIO, MRA, .7f), N(FL3D, MRA, .6f),
    N(TWIST, MRA, .65f), N(TRICKS, MRA, .65f), N(DYN3D, MRA, .6f), N(MSLAB, MRA, .65f),
    N(BTFE3D_NAV, MRA, .65f), N(CORONARY, MRA, .65f), N(CORONARIES, MRA, .65f),
    N(WHOLEHEART, MRA, .65f), N(MIP, MRA, .55f),
    N(DB, BLACKBLOOD, .65f), N(T2TSE, BLACKBLOOD, .7f), N(TSE, BLACKBLOOD, .65f),
    N(FSE, BLACKBLOOD, .6f), N(HASTE, BLACKBLOOD, .65f), N(STIR, BLACKBLOOD, .7f),
    N(TIRM, BLACKBLOOD, .7f), N(SPAIR, BLACKBLOOD, .6f), N(DIRFSE, BLACKBLOOD, .7f),
    N(TIRFSE, BLACKBLOOD, .7f), N(SSFSE, BLACKBLOOD, .6f), N(BB, BLACKBLOOD, .65f),
    N(TSE_BB, BLACKBLOOD, .7f), N(STIR_BB, BLACKBLOOD, .7f), N(DIR, BLACKBLOOD, .55f),
    N(BLACKBLOOD, BLACKBLOOD, .7f), N(BLACK_BLOOD, BLACKBLOOD, .7f), N(T2W, BLACKBLOOD, .6f),
    N(T1W, BLACKBLOOD, .55f),
    N(CINE, CINE, .7f), N(TRUFI, CINE, .65f), N(TRUFISP, CINE, .65f), N(TF2D, CINE, .65f),
    N(TFISP, CINE, .65f), N(TRUEFISP, CINE, .65f), N(CINE_SEGMENTED, CINE, .7f),
    N(FIESTA, CINE, .65f), N(FASTCINE, CINE, .7f), N(BFFE, CINE, .65f), N(BTFE, CINE, .6f),
    N(SBTFE, CINE, .6f), N(B_TFE, CINE, .6f), N(SSFP, CINE, .6f), N(REALTIME, CINE, .55f),
};
#undef N

/* A longer word that contains a shorter one cancels it (TI_SCOUT hides SCOUT). */
static const short hides[][2] = {
    {MT_W_TI_SCOUT, MT_W_SCOUT},     {MT_W_TISCOUT, MT_W_SCOUT},
    {MT_W_AAHEART_SCOUT, MT_W_SCOUT}, {MT_W_IR_TFE_LL, MT_W_IR_TFE},
    {MT_W_CINE_IR, MT_W_CINE},       {MT_W_BTFE3D_NAV, MT_W_BTFE},
    {MT_W_BTFE_PERF, MT_W_BTFE},     {MT_W_TFL_PERF, MT_W_TFL},
    {MT_W_DYNAMIC_TFL_SR, MT_W_TFL}, {MT_W_T2MAP_TRUEFISP, MT_W_TRUEFISP},
    {MT_W_MOLLI_SSFP, MT_W_SSFP},    {MT_W_T2MAP_FSE, MT_W_FSE},
    {MT_W_TRUFI_LOC, MT_W_TRUFI},    {MT_W_TFI_PSIR, MT_W_TFL},
    {MT_W_MGRASE, MT_W_BB},          {MT_W_FGRE_PERF, MT_W_PERF},
    {MT_W_CINE_SEGMENTED, MT_W_CINE},
};

/* "specific" families beat "generic" ones in a names-only tie (§4.1 rule 11) */
static bool fam_specific(int f)
{
    return f == MT_FAM_OTHER || f == MT_FAM_LOCALIZER || f == MT_FAM_TISCOUT ||
           f == MT_FAM_T1MAP || f == MT_FAM_T2MAP || f == MT_FAM_T2STAR || f == MT_FAM_FLOW ||
           f == MT_FAM_PERF;
}

/* Best name confidence per family; the winning word per family in *word. */
static void name_scores(const mt_tag_words_t *w0, float score[MT_FAM_COUNT], int word[MT_FAM_COUNT])
{
    mt_tag_words_t w = *w0;
    for (size_t i = 0; i < sizeof hides / sizeof hides[0]; i++)
        if (mt_tag_words_has(&w, hides[i][0]))
            w.w[hides[i][1] >> 6] &= ~((uint64_t)1 << (hides[i][1] & 63));
    for (int f = 0; f < MT_FAM_COUNT; f++) {
        score[f] = 0;
        word[f] = -1;
    }
    for (size_t i = 0; i < sizeof name_rules / sizeof name_rules[0]; i++) {
        const struct name_rule *r = &name_rules[i];
        if (mt_tag_words_has(&w, r->word) && r->conf > score[r->fam]) {
            score[r->fam] = r->conf;
            word[r->fam] = r->word;
        }
    }
    /* Dixon single-letter words only count next to DIXON-like context */
    if (score[MT_FAM_OTHER] == 0 && mt_tag_words_has(&w, MT_W_OPP) &&
        mt_tag_words_has(&w, MT_W_IN)) {
        score[MT_FAM_OTHER] = .65f;
        word[MT_FAM_OTHER] = MT_W_OPP;
    }
}

/* The names-only decision: best family, or NONE on a tie (§8). */
static int name_best(const float score[MT_FAM_COUNT], float *conf, bool *tie)
{
    int best = MT_FAM_NONE;
    for (int f = 1; f < MT_FAM_COUNT; f++) {
        if (score[f] == 0)
            continue;
        if (best == MT_FAM_NONE || score[f] > score[best] + 0.001f ||
            (fabsf(score[f] - score[best]) <= 0.001f && fam_specific(f) && !fam_specific(best)))
            best = f;
    }
    *tie = false;
    *conf = best ? score[best] : 0;
    if (!best)
        return MT_FAM_NONE;
    for (int f = 1; f < MT_FAM_COUNT; f++) {
        if (f == best || score[f] < 0.6f || score[f] < score[best] - 0.1f + 0.001f)
            continue;
        if (fam_specific(f) == fam_specific(best))
            *tie = true; /* two families of the same rank within 0.1 */
    }
    return best;
}

/* ---- physics helpers ---- */
static bool is_ir(const mt_tag_series_t *s)
{
    return (s->h.scan_seq & MT_SS_IR) || (s->h.enh & MT_EN_IR) || s->n_ti > 0 ||
           (s->h.itype & MT_IT_IR);
}

static bool is_spin_echo(const mt_tag_series_t *s)
{
    bool se = (s->h.scan_seq & MT_SS_SE) && !(s->h.scan_seq & MT_SS_GR);
    return se || (s->h.seq_flags & (MT_SQ_TSE | MT_SQ_HASTE));
}

static bool is_gre(const mt_tag_series_t *s)
{
    return (s->h.scan_seq & MT_SS_GR) || (s->h.seq_flags & (MT_SQ_FL | MT_SQ_TFI | MT_SQ_TFL)) ||
           (s->h.enh & MT_EN_GRADIENT);
}

static bool is_ssfp(const mt_tag_series_t *s)
{
    return (s->h.seq_var & MT_SV_SS) || (s->h.seq_flags & MT_SQ_TFI) || (s->h.enh & MT_EN_SSFP);
}

static bool tagging_words(const mt_tag_words_t *w)
{
    return mt_tag_words_has(w, MT_W_GRID) || mt_tag_words_has(w, MT_W_TAG) ||
           mt_tag_words_has(w, MT_W_TAGGING) || mt_tag_words_has(w, MT_W_SPAMM) ||
           mt_tag_words_has(w, MT_W_MTAG) || mt_tag_words_has(w, MT_W_CSPAMM) ||
           mt_tag_words_has(w, MT_W_DENSE);
}

static bool lge_ti_window(const mt_tag_series_t *s, double ti)
{
    double B = s->h.field_t;
    if (!isnan(B) && B >= 2.5)
        return ti >= 200 && ti <= 600;
    if (!isnan(B) && B > 0.2)
        return ti >= 150 && ti <= 450;
    return ti >= 150 && ti <= 600;
}

/* Physics rules in the order of §4.1; returns the family and sets *conf (0 if none). */
static int physics(mt_tag_series_t *s, float *conf)
{
    const mt_tag_inst_t *h = &s->h;
    bool ir = is_ir(s), se = is_spin_echo(s);
    *conf = 0;
    /* 1 non-image / foreign */
    /* ImageType SECONDARY on an MR image that still carries its acquisition attributes is a
     * derived (reformatted/processed) copy: it keeps its source's family (spec §2 "derived
     * companion"; the NEMA WG04 MR1 sample is DERIVED\SECONDARY spin echo) */
    bool acq_attrs = h->scan_seq || h->seq_flags || h->enh;
    if (h->secondary_capture || (h->itype & MT_IT_SCREENSHOT) ||
        ((h->itype & MT_IT_SECONDARY) && !acq_attrs)) {
        EV(s, "r1.secondary");
        if (h->not_mr) /* the report leaves exams without an MR series out (report.h) */
            EV(s, "r1.non_mr");
        *conf = .9f;
        return MT_FAM_OTHER;
    }
    if (h->itype & MT_IT_SECONDARY)
        EV(s, "imagetype_secondary");
    if (h->not_mr) {
        EV(s, "r1.non_mr");
        *conf = .9f;
        return MT_FAM_OTHER;
    }
    if (mt_tag_words_has(&h->desc, MT_W_SCREENSHOT) || mt_tag_words_has(&h->desc, MT_W_RESULTS) ||
        mt_tag_words_has(&h->desc, MT_W_REPORT)) {
        EV(s, "r1.report_name");
        *conf = .85f;
        return MT_FAM_OTHER;
    }
    /* 2 derived maps */
    if (h->itype & MT_IT_T1MAP) {
        EV(s, "r2.imagetype(T1MAP)");
        *conf = .95f;
        return MT_FAM_T1MAP;
    }
    if (h->itype & MT_IT_T2MAP) {
        EV(s, "r2.imagetype(T2MAP)");
        *conf = .95f;
        return MT_FAM_T2MAP;
    }
    if (h->itype & MT_IT_T2SMAP) {
        EV(s, "r2.imagetype(T2STAR_MAP)");
        *conf = .95f;
        return MT_FAM_T2STAR;
    }
    if (h->itype & MT_IT_VEL) {
        EV(s, "r2.imagetype(VELOCITY)");
        *conf = .95f;
        return MT_FAM_FLOW;
    }
    /* 3 flow physics */
    if (h->seq_flags & MT_SQ_VENC) {
        EV(s, "r3.venc_seqname(venc=%.0f)", isnan(h->venc) ? 0.0 : h->venc);
        *conf = .95f;
        return MT_FAM_FLOW;
    }
    if (h->enh & (MT_EN_VENC_SEQ | MT_EN_FLOW_ENC)) {
        EV(s, "r3.velocity_encoding(venc=%.0f)", isnan(h->venc) ? 0.0 : h->venc);
        *conf = .9f;
        return MT_FAM_FLOW;
    }
    if ((h->itype & MT_IT_PCA) && !ir) {
        EV(s, "r3.imagetype(PCA)");
        *conf = .9f;
        return MT_FAM_FLOW;
    }
    if ((h->itype & MT_IT_P) && !ir && !(h->itype & MT_IT_PSIR)) {
        EV(s, "r3.imagetype(P)");
        *conf = .85f;
        return MT_FAM_FLOW;
    }
    if (h->seq_flags & MT_SQ_PCMAG) {
        EV(s, "r3.pc_magnitude_seqname");
        *conf = .6f;
        return MT_FAM_FLOW;
    }
    /* 4 localizer physics */
    bool cine_like = s->n_tt_pos >= 10 || h->cardiac_n >= 10;
    if (h->itype & MT_IT_LOCALIZER) {
        EV(s, "r4.imagetype(LOCALIZER)");
        *conf = .95f;
        return MT_FAM_LOCALIZER;
    }
    if (s->orthogonal_planes && !cine_like) {
        EV(s, "r4.orthogonal_planes(norients=%u)", s->norients);
        *conf = (!isnan(h->fov) && h->fov >= 400) ? .95f : .9f;
        return MT_FAM_LOCALIZER;
    }
    /* 5 perfusion physics */
    bool dyn_ok = !isnan(s->dyn_dt) ? (s->dyn_dt >= 0.4 && s->dyn_dt <= 2.0)
                                    : (h->n_temporal >= 20 || s->n_dyn >= 20);
    if (s->n_dyn >= 20 && s->npos <= 5 && dyn_ok && !h->acq3d && s->n_ti_pos <= 2 &&
        s->n_tt_pos < 10) {
        float c = isnan(s->dyn_dt) ? .75f : .9f;
        if ((h->seq_var & MT_SV_MP) || (h->enh & MT_EN_SATREC) || (!isnan(h->tr) && h->tr < 4))
            c += .05f;
        EV(s, "r5.perfusion(n_dyn=%u npos=%u dt=%.2f)", s->n_dyn, s->npos,
           isnan(s->dyn_dt) ? 0.0 : s->dyn_dt);
        *conf = c;
        return MT_FAM_PERF;
    }
    if ((h->itype & MT_IT_PERFUSION) || (h->enh & MT_EN_PERF)) {
        EV(s, "r5.imagetype(PERFUSION)");
        *conf = .9f;
        return MT_FAM_PERF;
    }
    /* 6 multi-TI at one position */
    if (s->n_ti_pos >= 5 && s->npos <= 3) {
        double rr = s->rr;
        bool beyond_rr = !isnan(rr) ? s->ti_max > rr * 1.05 : s->ti_max > 1200;
        if (beyond_rr) {
            EV(s, "r6.multi_ti_beyond_rr(n_ti=%u ti_max=%.0f rr=%.0f)", s->n_ti_pos, s->ti_max,
               isnan(rr) ? 0.0 : rr);
            *conf = .9f;
            return MT_FAM_T1MAP;
        }
        if (s->n_ti_pos >= 8 || s->ti_even_step) {
            EV(s, "r6.ti_scout(n_ti=%u ti_max=%.0f even=%d)", s->n_ti_pos, s->ti_max,
               s->ti_even_step);
            *conf = s->ti_even_step ? .85f : .7f;
            return MT_FAM_TISCOUT;
        }
        EV(s, "r6.multi_ti(n_ti=%u)", s->n_ti_pos);
        *conf = .6f;
        return MT_FAM_T1MAP;
    }
    if (ir && s->n_ti_pos <= 1 && s->n_tt_pos >= 8 && s->npos <= 2 && !se) {
        EV(s, "r6.ir_cine_ti_scout(n_tt=%u)", s->n_tt_pos);
        *conf = .8f;
        return MT_FAM_TISCOUT;
    }
    /* 7 T2 map source, then T2* */
    if (s->n_te_pos >= 3 && s->n_te_pos <= 9 && s->te_max <= 110 && !ir &&
        (se || s->te_max > 25 || (h->enh & MT_EN_T2PREP))) {
        EV(s, "r7.t2map_source(n_te=%u te_max=%.1f)", s->n_te_pos, s->te_max);
        *conf = .8f;
        return MT_FAM_T2MAP;
    }
    if (s->n_te_pos >= 6 && !se && s->te_max <= 30 && !cine_like) {
        EV(s, "r7.t2star(n_te=%u te=%.1f-%.1f)", s->n_te_pos, s->te_min, s->te_max);
        *conf = .85f;
        return MT_FAM_T2STAR;
    }
    /* 8 LGE */
    if (ir && !se && s->n_ti_pos <= 1 && s->n_tt_pos <= 1 && h->cardiac_n <= 1 &&
        !isnan(s->ti_min)) {
        if (lge_ti_window(s, s->ti_min)) {
            EV(s, "r8.lge(ti=%.0f)", s->ti_min);
            *conf = .85f;
            return MT_FAM_LGE;
        }
        if (s->ti_min >= 100 && s->ti_min <= 700 && !(s->ti_min >= 130 && s->ti_min <= 180 && se)) {
            EV(s, "r8.lge_ti_outside_window(ti=%.0f)", s->ti_min);
            *conf = .6f;
            return MT_FAM_LGE;
        }
    }
    /* 9 cine */
    if (cine_like && !ir) {
        float c = .85f;
        if (s->n_tt_pos >= 10 && !isnan(s->rr)) {
            double full = s->tt_span * s->n_tt_pos / (s->n_tt_pos - 1);
            if (full < 0.6 * s->rr)
                c = .65f;
        }
        if (is_ssfp(s) || is_gre(s))
            c += .05f;
        if (h->scan_opt & (MT_SO_CG | MT_SO_PPG))
            c += .05f;
        if ((h->itype & MT_IT_TAGGING) || tagging_words(&h->desc)) {
            EV(s, "r9.cine_with_tagging(n_tt=%u)", s->n_tt_pos);
            *conf = .8f;
            return MT_FAM_OTHER;
        }
        EV(s, "r9.cine(n_tt=%u cardiac_n=%d ssfp=%d)", s->n_tt_pos, h->cardiac_n, is_ssfp(s));
        *conf = c > .95f ? .95f : c;
        return MT_FAM_CINE;
    }
    if ((h->itype & MT_IT_CINE) && !ir) {
        EV(s, "r9.imagetype(CINE)");
        *conf = .85f;
        return MT_FAM_CINE;
    }
    /* 10 MRA, then black blood */
    if (h->itype & MT_IT_MIP) {
        EV(s, "r10.imagetype(MIP)");
        *conf = .85f;
        return MT_FAM_MRA;
    }
    if (h->acq3d && !se &&
        (h->angio || (h->itype & MT_IT_ANGIO) ||
         (!isnan(h->slice_th) && h->slice_th <= 2 && !isnan(h->fov) && h->fov >= 350) ||
         (h->seq_flags & MT_SQ_FL3D))) {
        EV(s, "r10.mra(3d angio=%d slice=%.1f)", h->angio, isnan(h->slice_th) ? 0.0 : h->slice_th);
        *conf = (h->scan_opt & MT_SO_CG) ? .7f : .8f;
        return MT_FAM_MRA;
    }
    if (se) {
        if (ir && !isnan(s->ti_min) && s->ti_min >= 100 && s->ti_min <= 200) {
            EV(s, "r10.stir(ti=%.0f)", s->ti_min);
            *conf = .8f;
            return MT_FAM_BLACKBLOOD;
        }
        if (s->n_te_pos <= 2) {
            float c = .7f;
            if ((h->scan_opt & (MT_SO_CG | MT_SO_PPG)) || (h->etl > 1))
                c = .75f;
            EV(s, "r10.spin_echo(etl=%d gated=%d)", h->etl, (h->scan_opt & MT_SO_CG) != 0);
            *conf = c;
            return MT_FAM_BLACKBLOOD;
        }
    }
    /* weak localizer evidence: large FOV, single phase */
    if (!isnan(h->fov) && h->fov >= 400 && !cine_like && !ir) {
        EV(s, "r4.large_fov(fov=%.0f)", h->fov);
        *conf = .5f;
        return MT_FAM_LOCALIZER;
    }
    return MT_FAM_NONE;
}

void mt_tag_series_classify(mt_tag_series_t *s)
{
    s->ev[0] = '\0';
    s->name_conflict = false;
    float pc;
    int pf = physics(s, &pc);
    float score[MT_FAM_COUNT];
    int word[MT_FAM_COUNT];
    name_scores(&s->h.desc, score, word);
    float nc;
    bool tie;
    int nf = name_best(score, &nc, &tie);

    if (pf != MT_FAM_NONE && pc >= 0.6f) {
        s->fam = pf;
        s->physics = true;
        float c = pc;
        if (score[pf] > 0) {
            EV(s, "name(%s)", mt_tag_word_str(word[pf]));
            c += .05f;
        } else if (nf != MT_FAM_NONE && nc >= 0.6f && !tie) {
            /* the GE "LOC ... FIESTA" cine localiser is a cine, not a conflict (§3.2) */
            bool exempt = (pf == MT_FAM_CINE && nf == MT_FAM_LOCALIZER) ||
                          (pf == MT_FAM_FLOW && nf == MT_FAM_CINE) ||
                          (pf == MT_FAM_LGE && nf == MT_FAM_CINE && score[MT_FAM_CINE] < .7f);
            if (!exempt) {
                s->name_conflict = true;
                EV(s, "name_conflict(%s=%s)", mt_tag_family_name(nf), mt_tag_word_str(word[nf]));
                c = c > .75f ? .75f : c;
            }
        }
        s->fam_conf = c > .99f ? .99f : c;
        return;
    }
    s->physics = false;
    /* a weak physics hint that agrees with the names lifts them a little */
    if (nf != MT_FAM_NONE && !tie) {
        EV(s, "r11.name(%s=%s)", mt_tag_family_name(nf), mt_tag_word_str(word[nf]));
        if (pf == nf)
            nc += .05f;
        s->fam = nf;
        s->fam_conf = nc > .7f ? .7f : nc;
        return;
    }
    if (tie)
        EV(s, "r11.name_tie");
    if (pf != MT_FAM_NONE) { /* weak physics only */
        s->fam = pf;
        s->fam_conf = pc;
        return;
    }
    EV(s, "r12.no_rule");
    s->fam = MT_FAM_NONE;
    s->fam_conf = 0;
}

/* ---- study pass ---- */
static double dot3(const double *a, const double *b)
{
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

static void fix_sign(double L[3])
{
    if (L[0] - L[1] - L[2] < 0)
        for (int i = 0; i < 3; i++)
            L[i] = -L[i];
}

static bool same_geometry(const mt_tag_series_t *a, const mt_tag_series_t *b)
{
    if (a->n_cl != b->n_cl)
        return false;
    for (unsigned c = 0; c < a->n_cl; c++) {
        if (fabs(dot3(a->cl[c].n, b->cl[c].n)) < cos(2.0 / DEG))
            return false;
        if (a->cl[c].npos != b->cl[c].npos)
            return false;
        double sg = dot3(a->cl[c].n, b->cl[c].n) < 0 ? -1 : 1;
        double amin = a->cl[c].pos_min, bmin = sg > 0 ? b->cl[c].pos_min : -b->cl[c].pos_max;
        if (fabs(amin - bmin) > 2.0)
            return false;
    }
    return true;
}

static int desc_view(const mt_tag_words_t *w)
{
#define H(x) mt_tag_words_has(w, MT_W_##x)
    if (H(V_UKB_LVOT))
        return MT_VIEW_OTHER;
    if (H(V_RVOT) || H(V_RV2CH) || H(V_RV3CH) || H(V_RVLA))
        return MT_VIEW_OTHER;
    int n = 0, v = MT_VIEW_NONE;
    if (H(V_2CH) || H(V_2_CH) || H(V_2C) || H(V_VLA) || H(V_VLAX) || H(V_TWO_CHAMBER) ||
        H(V_LV2CH) || H(V_2CHAMBER) || H(V_2_CHAMBER))
        v = MT_VIEW_2CH, n++;
    if (H(V_3CH) || H(V_3_CH) || H(V_3C) || H(V_LVOT) || H(V_APLAX) || H(V_THREE_CHAMBER) ||
        H(V_LV3CH) || H(V_3CHAMBER) || H(V_3_CHAMBER))
        v = MT_VIEW_3CH, n++;
    if (H(V_4CH) || H(V_4_CH) || H(V_4C) || H(V_HLA) || H(V_HLAX) || H(V_FOUR_CHAMBER) ||
        H(V_4CHAMBER) || H(V_4_CHAMBER))
        v = MT_VIEW_4CH, n++;
    if (H(V_SAX) || H(V_SA) || H(V_SHORT) || H(V_SHAX) || H(V_SHORT_AXIS) || H(V_BN))
        v = MT_VIEW_SAX, n++;
    if (n > 1)
        return -1; /* several views named: geometry must split */
    if (v == MT_VIEW_NONE && (H(V_AX) || H(V_AXIAL) || H(V_TRA) || H(V_COR) || H(V_CORONAL) ||
                              H(V_SAG) || H(V_SAGITTAL) || H(V_AORTIC) || H(V_AV) || H(V_AOV)))
        v = MT_VIEW_OTHER;
    return v;
#undef H
}

static bool post_contrast_words(const mt_tag_words_t *w)
{
#define H(x) mt_tag_words_has(w, MT_W_##x)
    return H(POST) || H(PLUS_C) || H(GAD) || H(ENHANCED) || H(DELAY) || H(DELAYED) || H(LGE) ||
           H(DE) || H(DHE) || H(MDE) || H(PSIR) || H(VIAB) || H(VIABILITY) ||
           H(DELAYED_ENHANCEMENT) || H(HYPERENHANCEMENT);
#undef H
}

static int stress_words(const mt_tag_series_t *s)
{
    const mt_tag_words_t *w = &s->h.desc;
#define H(x) mt_tag_words_has(w, MT_W_##x)
    bool st = H(STRESS) || H(ADENO) || H(ADENOSINE) || H(REGADENOSON) || H(LEXISCAN) || H(DIPY) ||
              H(DOBU) || H(STR) || H(S_SINGLE) || (s->h.itype & MT_IT_STRESS);
    bool re = H(REST) || H(RUHE) || H(BASELINE) || H(R_SINGLE) || (s->h.itype & MT_IT_REST);
#undef H
    return st == re ? 0 : st ? 1 : -1;
}

static double series_hr(const mt_tag_series_t *s)
{
    if (s->h.hr > 20 && s->h.hr < 300)
        return s->h.hr;
    if (s->h.nominal_rr > 200 && s->h.nominal_rr < 3000)
        return 60000.0 / s->h.nominal_rr;
    return NAN;
}

typedef struct view_dec {
    int view;
    float conf;
} view_dec_t;

struct lax_cluster {
    double n[3];
    double alpha;
    unsigned members;
    int view;
    float conf;
    int dup_view;
};

/* §5.2: a SAX stack candidate in one cluster of a series. */
static bool sax_cluster_ok(const mt_tag_cluster_t *c, unsigned npos, double span, double spacing)
{
    bool dbl;
    if (npos < 5 || spacing < 5 || spacing > 15 || span < 40)
        return false;
    return mt_tag_patient_plane(c->n, &dbl) == 'O';
}

static int fam_rank_for_sax(int fam)
{
    return fam == MT_FAM_CINE ? 3 : fam == MT_FAM_LGE ? 2 : fam == MT_FAM_PERF ? 1 : 0;
}

static void find_long_axis(mt_tag_study_t *st, const int *fam, char *ev, size_t evsz)
{
    st->has_L = false;
    st->sax_series = -1;
    st->L_from_lax = false;
    int best = -1, best_rank = 0;
    unsigned best_n = 0;
    double bestL[3] = {0, 0, 0};
    double best_t = INFINITY;
    for (size_t i = 0; i < st->n; i++) {
        mt_tag_series_t *s = st->s[i];
        int rank = fam_rank_for_sax(fam[i]);
        if (!rank)
            continue;
        for (unsigned c = 0; c < s->n_cl; c++) {
            mt_tag_cluster_t *cl = &s->cl[c];
            if (!sax_cluster_ok(cl, cl->npos, cl->pos_max - cl->pos_min, cl->spacing))
                continue;
            bool better = cl->npos > best_n ||
                          (cl->npos == best_n && (rank > best_rank ||
                                                  (rank == best_rank && s->t_rel < best_t)));
            if (better) {
                best = (int)i;
                best_n = cl->npos;
                best_rank = rank;
                best_t = s->t_rel;
                memcpy(bestL, cl->n, sizeof bestL);
            }
        }
    }
    /* §5.2 step 2: single-slice cine series sharing frame of reference, phases, orientation */
    for (size_t i = 0; i < st->n; i++) {
        mt_tag_series_t *a = st->s[i];
        if (fam[i] != MT_FAM_CINE || a->n_cl != 1 || a->cl[0].npos != 1)
            continue;
        double pos[64];
        unsigned np = 0;
        double sum[3] = {0, 0, 0};
        for (size_t j = 0; j < st->n && np < 64; j++) {
            mt_tag_series_t *b = st->s[j];
            if (fam[j] != MT_FAM_CINE || b->n_cl != 1 || b->cl[0].npos != 1 ||
                b->h.for_hash != a->h.for_hash || b->h.cardiac_n != a->h.cardiac_n ||
                fabs(dot3(a->cl[0].n, b->cl[0].n)) < cos(5.0 / DEG))
                continue;
            double sg = dot3(a->cl[0].n, b->cl[0].n) < 0 ? -1 : 1;
            double p = sg * b->cl[0].pos_min;
            bool dup = false;
            for (unsigned k = 0; k < np; k++)
                dup |= fabs(pos[k] - p) < 1.0;
            if (dup)
                continue;
            pos[np++] = p;
            for (int k = 0; k < 3; k++)
                sum[k] += sg * b->cl[0].n[k];
        }
        if (np < 5 || np <= best_n)
            continue;
        for (unsigned x = 1; x < np; x++)
            for (unsigned y = x; y > 0 && pos[y - 1] > pos[y]; y--) {
                double t = pos[y];
                pos[y] = pos[y - 1];
                pos[y - 1] = t;
            }
        double gaps[64];
        for (unsigned x = 1; x < np; x++)
            gaps[x - 1] = pos[x] - pos[x - 1];
        for (unsigned x = 1; x < np - 1; x++)
            for (unsigned y = x; y > 0 && gaps[y - 1] > gaps[y]; y--) {
                double t = gaps[y];
                gaps[y] = gaps[y - 1];
                gaps[y - 1] = t;
            }
        double spacing = gaps[(np - 1) / 2];
        mt_tag_cluster_t tmp = a->cl[0];
        double l = sqrt(dot3(sum, sum));
        for (int k = 0; k < 3; k++)
            tmp.n[k] = sum[k] / l;
        if (!sax_cluster_ok(&tmp, np, pos[np - 1] - pos[0], spacing))
            continue;
        best = (int)i;
        best_n = np;
        best_rank = 3;
        memcpy(bestL, tmp.n, sizeof bestL);
        ev_add(ev, evsz, "sax_union(n=%u)", np);
    }
    if (best >= 0) {
        st->has_L = true;
        st->sax_series = best;
        memcpy(st->L, bestL, sizeof bestL);
        fix_sign(st->L);
        return;
    }
    /* §5.2 step 4: two LAX planes (single-plane cine/LGE series at >= 25 degrees) */
    const double *cand[32];
    size_t nc = 0;
    for (size_t i = 0; i < st->n && nc < 32; i++) {
        mt_tag_series_t *s = st->s[i];
        if ((fam[i] != MT_FAM_CINE && fam[i] != MT_FAM_LGE) || s->n_cl != 1 || s->cl[0].npos > 2)
            continue;
        bool dbl;
        if (mt_tag_patient_plane(s->cl[0].n, &dbl) != 'O')
            continue;
        cand[nc++] = s->cl[0].n;
    }
    unsigned best_support = 0;
    for (size_t i = 0; i < nc; i++)
        for (size_t j = i + 1; j < nc; j++) {
            if (fabs(dot3(cand[i], cand[j])) > cos(25.0 / DEG))
                continue;
            double L[3] = {cand[i][1] * cand[j][2] - cand[i][2] * cand[j][1],
                           cand[i][2] * cand[j][0] - cand[i][0] * cand[j][2],
                           cand[i][0] * cand[j][1] - cand[i][1] * cand[j][0]};
            double l = sqrt(dot3(L, L));
            for (int k = 0; k < 3; k++)
                L[k] /= l;
            unsigned support = 0;
            for (size_t k = 0; k < nc; k++)
                support += fabs(dot3(cand[k], L)) <= 0.2;
            if (support > best_support) {
                best_support = support;
                memcpy(st->L, L, sizeof L);
            }
        }
    if (best_support >= 2) {
        /* planes through L that are far from any SAX must not all be one view: need >= 2 */
        st->has_L = true;
        st->L_from_lax = true;
        fix_sign(st->L);
        ev_add(ev, evsz, "L_from_lax(planes=%u)", best_support);
    }
}

void mt_tag_study_run(mt_tag_study_t *st)
{
    size_t n = st->n;
    if (n == 0)
        return;
    char sev[256] = "";
    for (size_t i = 0; i < n; i++)
        if (st->s[i]->fam < 0)
            mt_tag_series_classify(st->s[i]);

    /* a. relative times */
    double t0 = INFINITY;
    bool early = false, late = false;
    for (size_t i = 0; i < n; i++) {
        double t = st->s[i]->t_start;
        if (isnan(t))
            continue;
        early |= t < 6 * 3600;
        late |= t > 18 * 3600;
    }
    for (size_t i = 0; i < n; i++) {
        double t = st->s[i]->t_start;
        if (!isnan(t) && early && late && t < 12 * 3600)
            t += 86400;
        st->s[i]->t_rel = t;
        if (!isnan(t) && t < t0)
            t0 = t;
    }
    for (size_t i = 0; i < n; i++)
        st->s[i]->t_rel = isnan(st->s[i]->t_rel) || isinf(t0) ? NAN : st->s[i]->t_rel - t0;

    /* per series working state */
    int *fam = mt_calloc(n, sizeof *fam);
    float *conf = mt_calloc(n, sizeof *conf);
    char (*ev)[768] = mt_calloc(n, sizeof *ev);
    for (size_t i = 0; i < n; i++) {
        fam[i] = st->s[i]->fam;
        conf[i] = st->s[i]->fam_conf;
        snprintf(ev[i], sizeof ev[i], "%s", st->s[i]->ev);
    }

    /* b. companions */
    for (size_t i = 0; i < n; i++)
        st->s[i]->link = (int)i;
    for (size_t i = 0; i < n; i++) {
        mt_tag_series_t *a = st->s[i];
        if (a->link != (int)i)
            continue;
        for (size_t j = i + 1; j < n; j++) {
            mt_tag_series_t *b = st->s[j];
            if (b->link != (int)j || b->h.protocol_hash != a->h.protocol_hash ||
                !same_geometry(a, b))
                continue;
            if (!isnan(a->t_rel) && !isnan(b->t_rel) && fabs(a->t_rel - b->t_rel) > 120)
                continue;
            /* without ProtocolName (removed by de-identification) only exact copies of the
             * acquisition (same geometry, same start within 5 s: MOCO, maps, MAG/PSIR) */
            if (!a->h.protocol_hash &&
                (isnan(a->t_rel) || isnan(b->t_rel) || fabs(a->t_rel - b->t_rel) > 5))
                continue;
            b->link = (int)i;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (st->s[i]->link != (int)i)
            continue;
        size_t lead = i;
        unsigned members = 0;
        for (size_t j = i; j < n; j++) {
            if (st->s[j]->link != (int)i)
                continue;
            members++;
            bool better = fam[j] != MT_FAM_NONE &&
                          (fam[lead] == MT_FAM_NONE || conf[j] > conf[lead] ||
                           (st->s[j]->physics && !st->s[lead]->physics && conf[j] >= conf[lead]));
            if (better)
                lead = j;
        }
        if (members < 2)
            continue;
        for (size_t j = i; j < n; j++) {
            if (st->s[j]->link != (int)i || j == lead)
                continue;
            if (fam[j] != fam[lead] && fam[j] != MT_FAM_NONE && conf[j] >= .8f) {
                continue; /* strong evidence of its own: keep it */
            } else if (fam[j] != fam[lead]) {
                ev_add(ev[j], sizeof ev[j], "companion(%s from series %d)",
                       mt_tag_family_name(fam[lead]), st->s[lead]->h.series_number);
                fam[j] = fam[lead];
                conf[j] = conf[lead] - .05f;
            } else if (conf[j] < conf[lead]) {
                conf[j] = conf[lead];
                ev_add(ev[j], sizeof ev[j], "companion(series %d)", st->s[lead]->h.series_number);
            }
        }
    }

    /* c. contrast timeline */
    double tc = NAN;
    for (size_t i = 0; i < n; i++) {
        mt_tag_series_t *s = st->s[i];
        if (isnan(s->t_rel))
            continue;
        bool ev_c = fam[i] == MT_FAM_PERF || (fam[i] == MT_FAM_MRA && (s->h.contrast ||
                     mt_tag_words_has(&s->h.desc, MT_W_CE_MRA))) ||
                    s->h.contrast || !isnan(s->h.bolus_start) ||
                    (post_contrast_words(&s->h.desc) && !s->name_conflict);
        if (ev_c && (isnan(tc) || s->t_rel < tc))
            tc = s->t_rel;
    }
    st->t_contrast = tc;
    if (!isnan(tc))
        ev_add(sev, sizeof sev, "t_contrast=%.0fs", tc);
    double t_first_lge = NAN;
    for (size_t i = 0; i < n; i++) {
        mt_tag_series_t *s = st->s[i];
        bool after = !isnan(tc) && !isnan(s->t_rel) && s->t_rel >= tc - 30;
        bool ctx = after || s->h.contrast || (post_contrast_words(&s->h.desc) && !s->name_conflict);
        if (fam[i] == MT_FAM_LGE) {
            if (!ctx) {
                ev_add(ev[i], sizeof ev[i], "lge_no_contrast_context");
                fam[i] = MT_FAM_NONE;
                conf[i] = .5f;
                continue;
            }
            if (!isnan(s->t_rel) && (isnan(t_first_lge) || s->t_rel < t_first_lge))
                t_first_lge = s->t_rel;
        }
        if (fam[i] == MT_FAM_TISCOUT && !ctx) {
            ev_add(ev[i], sizeof ev[i], "tiscout_before_contrast");
            conf[i] -= .1f;
        }
    }

    /* d. t1map native / post */
    int *sub = mt_calloc(n, sizeof *sub);
    float *subc = mt_calloc(n, sizeof *subc);
    for (size_t i = 0; i < n; i++) {
        mt_tag_series_t *s = st->s[i];
        if (fam[i] != MT_FAM_T1MAP)
            continue;
        const mt_tag_series_t *lead = st->s[s->link];
        double t = isnan(lead->t_rel) ? s->t_rel : lead->t_rel;
        const mt_tag_words_t *w = &s->h.desc;
        bool w_pre = mt_tag_words_has(w, MT_W_PRE) || mt_tag_words_has(w, MT_W_NATIVE);
        bool w_post = mt_tag_words_has(w, MT_W_POST) || mt_tag_words_has(w, MT_W_PLUS_C) ||
                      mt_tag_words_has(w, MT_W_ENHANCED) || mt_tag_words_has(w, MT_W_GAD) ||
                      mt_tag_words_has(w, MT_W_MIN);
        if (!isnan(tc) && !isnan(t)) {
            sub[i] = t >= tc ? MT_SUB_POST : MT_SUB_NATIVE;
            subc[i] = .9f;
            ev_add(ev[i], sizeof ev[i], "t1_timeline(dt=%.0fs)", t - tc);
        } else if (w_pre != w_post) {
            sub[i] = w_pre ? MT_SUB_NATIVE : MT_SUB_POST;
            subc[i] = .8f;
            ev_add(ev[i], sizeof ev[i], "t1_name(%s)", w_pre ? "native" : "post");
        } else {
            bool after_lge = !isnan(t_first_lge) && !isnan(t) && t > t_first_lge;
            sub[i] = after_lge ? MT_SUB_POST : MT_SUB_NATIVE;
            subc[i] = .6f;
            ev_add(ev[i], sizeof ev[i], "t1_assumed(%s)", after_lge ? "post" : "native");
        }
    }

    /* e. geometry */
    find_long_axis(st, fam, sev, sizeof sev);
    struct lax_cluster lax[MT_TAG_MAX_LAX];
    size_t nlax = 0;
    if (st->has_L) {
        ev_add(sev, sizeof sev, "L=(%.2f;%.2f;%.2f)", st->L[0], st->L[1], st->L[2]);
        for (size_t i = 0; i < n; i++) {
            mt_tag_series_t *s = st->s[i];
            for (unsigned c = 0; c < s->n_cl; c++) {
                mt_tag_cluster_t *cl = &s->cl[c];
                cl->nl = fabs(dot3(cl->n, st->L));
                cl->alpha = mt_tag_alpha(st->L, cl->n);
                cl->view = cl->nl >= 0.94 ? MT_VIEW_SAX : cl->nl <= 0.34 ? -1 : MT_VIEW_OTHER;
                bool joins = fam[i] == MT_FAM_CINE || fam[i] == MT_FAM_LGE ||
                             fam[i] == MT_FAM_TISCOUT || fam[i] == MT_FAM_T1MAP ||
                             fam[i] == MT_FAM_T2MAP || fam[i] == MT_FAM_T2STAR;
                if (cl->view != -1 || !joins)
                    continue;
                size_t k;
                for (k = 0; k < nlax; k++)
                    if (fabs(dot3(lax[k].n, cl->n)) >= cos(10.0 / DEG))
                        break;
                if (k == nlax && nlax < MT_TAG_MAX_LAX) {
                    memcpy(lax[k].n, cl->n, sizeof lax[k].n);
                    lax[k].alpha = cl->alpha;
                    lax[k].members = 0;
                    nlax++;
                }
                if (k < nlax)
                    lax[k].members++;
            }
        }
        double alphas[MT_TAG_MAX_LAX], delta = 0;
        int views[MT_TAG_MAX_LAX];
        float fitc = 0;
        for (size_t k = 0; k < nlax; k++)
            alphas[k] = lax[k].alpha;
        if (nlax == 1) {
            lax[0].view = mt_tag_view_from_alpha(lax[0].alpha, &fitc);
            ev_add(sev, sizeof sev, "lax_single(alpha=%.0f)", lax[0].alpha);
        } else if (nlax > 1 && mt_tag_joint_fit(alphas, nlax, views, &delta, &fitc)) {
            for (size_t k = 0; k < nlax; k++)
                lax[k].view = views[k];
            ev_add(sev, sizeof sev, "lax_fit(k=%zu delta=%.0f)", nlax, delta);
        }
        for (size_t k = 0; k < nlax; k++) {
            lax[k].conf = fitc;
            lax[k].dup_view = MT_VIEW_NONE;
            if (lax[k].view == MT_VIEW_OTHER) { /* a duplicate: which view it duplicated */
                lax[k].conf = .7f;
                float c1;
                lax[k].dup_view = mt_tag_view_from_alpha(fmod(lax[k].alpha - delta + 180, 180), &c1);
            }
        }
    }

    /* per-series view */
    view_dec_t *vd = mt_calloc(n, sizeof *vd);
    for (size_t i = 0; i < n; i++) {
        mt_tag_series_t *s = st->s[i];
        int dv = desc_view(&s->h.desc);
        if (dv == MT_VIEW_OTHER && mt_tag_words_has(&s->h.desc, MT_W_V_LVOT) &&
            !mt_tag_words_has(&s->h.desc, MT_W_V_UKB_LVOT))
            dv = MT_VIEW_3CH;
        int gv = MT_VIEW_NONE;
        float gc = 0;
        unsigned views_seen = 0;
        if (st->has_L && s->n_cl > 0 && fam[i] != MT_FAM_LOCALIZER) {
            unsigned votes[MT_VIEW_COUNT] = {0};
            float vconf[MT_VIEW_COUNT] = {0};
            for (unsigned c = 0; c < s->n_cl; c++) {
                mt_tag_cluster_t *cl = &s->cl[c];
                int v = cl->view;
                float cc;
                if (v == MT_VIEW_SAX) {
                    cc = cl->nl >= 0.97 ? .95f : .85f;
                } else if (v == MT_VIEW_OTHER) {
                    cc = (cl->nl > 0.44 && cl->nl < 0.90) ? .85f : .7f;
                } else {
                    v = MT_VIEW_OTHER;
                    cc = .7f;
                    for (size_t k = 0; k < nlax; k++)
                        if (fabs(dot3(lax[k].n, cl->n)) >= cos(10.0 / DEG)) {
                            v = lax[k].view;
                            cc = lax[k].conf;
                            /* "unless a description token says otherwise" (§5.4) */
                            if (v == MT_VIEW_OTHER && dv > 0 && dv == lax[k].dup_view) {
                                v = dv;
                                cc = .8f;
                            }
                            break;
                        }
                }
                if (st->L_from_lax)
                    cc -= .1f;
                cl->view = v;
                if (!votes[v])
                    views_seen++;
                votes[v] += cl->n_img;
                vconf[v] = cc > vconf[v] ? cc : vconf[v];
            }
            for (int v = 1; v < MT_VIEW_COUNT; v++)
                if (votes[v] > votes[gv])
                    gv = v;
            gc = vconf[gv];
            if (s->n_cl == 1)
                ev_add(ev[i], sizeof ev[i], "geo(nL=%.2f alpha=%.0f)", s->cl[0].nl,
                       s->cl[0].alpha);
            if (views_seen > 1) {
                char list[64] = "";
                for (int v = 1; v < MT_VIEW_COUNT; v++)
                    if (votes[v]) {
                        size_t l = strlen(list);
                        snprintf(list + l, sizeof list - l, "%s%s", l ? "/" : "",
                                 mt_tag_view_name(v));
                    }
                ev_add(ev[i], sizeof ev[i], "multi_view(%s)", list);
                s->res.multi_view = true;
            } else {
                s->res.multi_view = false;
            }
        }
        if (gv != MT_VIEW_NONE) {
            if (dv > 0 && dv == gv) {
                gc = gc < .95f ? .95f : gc;
            } else if (dv > 0 && dv != gv) {
                if (gc >= .8f) {
                    ev_add(ev[i], sizeof ev[i], "desc_view_mismatch(%s)", mt_tag_view_name(dv));
                } else {
                    ev_add(ev[i], sizeof ev[i], "desc_view(%s)", mt_tag_view_name(dv));
                    gv = dv;
                    gc = .6f;
                }
            }
            vd[i] = (view_dec_t){gv, gc};
        } else if (dv > 0) {
            ev_add(ev[i], sizeof ev[i], "desc_view(%s)", mt_tag_view_name(dv));
            vd[i] = (view_dec_t){dv, .6f};
        } else if (s->h.acq3d && fam[i] == MT_FAM_LGE) {
            vd[i] = (view_dec_t){MT_VIEW_OTHER, .7f};
        } else {
            vd[i] = (view_dec_t){MT_VIEW_NONE, 0};
        }
    }

    /* f. perfusion stress / rest over companion groups */
    size_t perf[16];
    size_t np = 0;
    for (size_t i = 0; i < n && np < 16; i++)
        if (fam[i] == MT_FAM_PERF && st->s[i]->link == (int)i)
            perf[np++] = i;
    for (size_t x = 1; x < np; x++) /* by time */
        for (size_t y = x; y > 0; y--) {
            double ta = st->s[perf[y - 1]]->t_rel, tb = st->s[perf[y]]->t_rel;
            if (!(ta > tb))
                break;
            size_t t = perf[y];
            perf[y] = perf[y - 1];
            perf[y - 1] = t;
        }
    bool stress_exam = st->stress_exam;
    for (size_t i = 0; i < n; i++) {
        const mt_tag_words_t *w = &st->s[i]->h.study_desc;
        if (mt_tag_words_has(w, MT_W_STRESS) || mt_tag_words_has(w, MT_W_ADENO) ||
            mt_tag_words_has(w, MT_W_ADENOSINE) || mt_tag_words_has(w, MT_W_REGADENOSON) ||
            stress_words(st->s[i]) > 0)
            stress_exam = true;
    }
    int gsub[16];
    float gsc[16];
    char gev[16][96];
    for (size_t k = 0; k < np; k++) {
        gsub[k] = MT_SUB_UNDECIDED;
        gsc[k] = 0;
        gev[k][0] = '\0';
        /* names on any member of the group */
        int sw = 0;
        for (size_t j = 0; j < n; j++)
            if (st->s[j]->link == (int)perf[k] && stress_words(st->s[j]))
                sw = stress_words(st->s[j]);
        if (sw) {
            gsub[k] = sw > 0 ? MT_SUB_STRESS : MT_SUB_REST;
            gsc[k] = .95f;
            snprintf(gev[k], sizeof gev[k], "perf_name(%s)", sw > 0 ? "stress" : "rest");
        }
    }
    if (np >= 2) {
        size_t a = 0, b = 1;
        if (gsub[a] != MT_SUB_UNDECIDED && gsub[a] == gsub[b]) { /* same keyword: fall through */
            gsub[a] = gsub[b] = MT_SUB_UNDECIDED;
        }
        if (gsub[a] == MT_SUB_UNDECIDED && gsub[b] == MT_SUB_UNDECIDED) {
            const mt_tag_series_t *A = st->s[perf[a]], *B = st->s[perf[b]];
            double ha = series_hr(A), hb = series_hr(B);
            double dt = B->t_rel - A->t_rel;
            int hr_vote = 0, ord_vote = 0; /* +1: A is stress */
            if (!isnan(ha) && !isnan(hb) && fabs(ha - hb) >= 8)
                hr_vote = ha > hb ? 1 : -1;
            if (!isnan(dt) && dt >= 8 * 60)
                ord_vote = 1;
            /* contrast bookkeeping: a perfusion after LGE is rest */
            if (!isnan(t_first_lge) && A->t_rel > t_first_lge)
                ord_vote = -1;
            char e[96];
            snprintf(e, sizeof e, "perf_pair(hr=%.0f/%.0f dt=%.0fs)", isnan(ha) ? 0.0 : ha,
                     isnan(hb) ? 0.0 : hb, isnan(dt) ? 0.0 : dt);
            snprintf(gev[a], sizeof gev[a], "%s", e);
            snprintf(gev[b], sizeof gev[b], "%s", e);
            if (hr_vote && ord_vote && hr_vote != ord_vote) {
                gsub[a] = gsub[b] = MT_SUB_UNDECIDED;
                gsc[a] = gsc[b] = .8f;
                strncat(gev[a], " hr_order_disagree", sizeof gev[a] - strlen(gev[a]) - 1);
                strncat(gev[b], " hr_order_disagree", sizeof gev[b] - strlen(gev[b]) - 1);
            } else if (hr_vote || ord_vote) {
                int v = hr_vote ? hr_vote : ord_vote;
                float c = hr_vote && ord_vote ? .9f : hr_vote ? .85f : .7f;
                gsub[a] = v > 0 ? MT_SUB_STRESS : MT_SUB_REST;
                gsub[b] = v > 0 ? MT_SUB_REST : MT_SUB_STRESS;
                gsc[a] = gsc[b] = c;
                const char *why = hr_vote && ord_vote ? " hr+order" : hr_vote ? " hr" : " order";
                strncat(gev[a], why, sizeof gev[a] - strlen(gev[a]) - 1);
                strncat(gev[b], why, sizeof gev[b] - strlen(gev[b]) - 1);
            } else {
                gsc[a] = gsc[b] = .8f;
            }
        } else if (gsub[a] == MT_SUB_UNDECIDED || gsub[b] == MT_SUB_UNDECIDED) {
            size_t known = gsub[a] != MT_SUB_UNDECIDED ? a : b, other = known == a ? b : a;
            gsub[other] = gsub[known] == MT_SUB_STRESS ? MT_SUB_REST : MT_SUB_STRESS;
            gsc[other] = .9f;
            snprintf(gev[other], sizeof gev[other], "perf_pair_opposite");
        }
        for (size_t k = 2; k < np; k++)
            if (gsub[k] == MT_SUB_UNDECIDED)
                gsc[k] = .8f;
    } else if (np == 1 && gsub[0] == MT_SUB_UNDECIDED) {
        const mt_tag_series_t *A = st->s[perf[0]];
        if (!isnan(t_first_lge) && A->t_rel > t_first_lge) {
            gsub[0] = MT_SUB_REST;
            gsc[0] = .7f;
            snprintf(gev[0], sizeof gev[0], "perf_single_after_lge");
        } else if (stress_exam) {
            gsub[0] = MT_SUB_STRESS;
            gsc[0] = .7f;
            snprintf(gev[0], sizeof gev[0], "perf_single_stress_exam");
        } else {
            gsub[0] = MT_SUB_REST;
            gsc[0] = .6f;
            snprintf(gev[0], sizeof gev[0], "perf_single_rest_exam");
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (fam[i] != MT_FAM_PERF)
            continue;
        for (size_t k = 0; k < np; k++)
            if (st->s[i]->link == (int)perf[k]) {
                sub[i] = gsub[k];
                subc[i] = gsc[k];
                if (gev[k][0])
                    ev_add(ev[i], sizeof ev[i], "%s", gev[k]);
            }
        if (sub[i] == MT_SUB_NONE) {
            sub[i] = MT_SUB_UNDECIDED;
            subc[i] = .8f;
        }
    }

    /* g. final tags */
    for (size_t i = 0; i < n; i++) {
        mt_tag_series_t *s = st->s[i];
        mt_tag_result_t r;
        memset(&r, 0, sizeof r);
        r.multi_view = s->res.multi_view;
        r.family = fam[i];
        r.view = vd[i].view;
        r.sub = sub[i];
        float c = conf[i];
        switch (fam[i]) {
        case MT_FAM_CINE:
        case MT_FAM_LGE:
            if (r.view == MT_VIEW_NONE) {
                ev_add(ev[i], sizeof ev[i], "no_view");
                c = c < .5f ? c : .5f;
            } else {
                c = c < vd[i].conf ? c : vd[i].conf;
            }
            snprintf(r.tag, sizeof r.tag, "%s.%s", fam_names[fam[i]],
                     r.view ? view_names[r.view] : "other");
            break;
        case MT_FAM_PERF:
            c = c < subc[i] ? c : subc[i];
            snprintf(r.tag, sizeof r.tag, "perfusion.%s",
                     sub[i] == MT_SUB_STRESS ? "stress" : sub[i] == MT_SUB_REST ? "rest" : "unknown");
            break;
        case MT_FAM_T1MAP:
            c = c < subc[i] ? c : subc[i];
            snprintf(r.tag, sizeof r.tag, "t1map.%s", sub[i] == MT_SUB_POST ? "post" : "native");
            break;
        default:
            snprintf(r.tag, sizeof r.tag, "%s", mt_tag_family_name(fam[i]));
            break;
        }
        if (c < 0.6f || fam[i] == MT_FAM_NONE) {
            snprintf(r.tag, sizeof r.tag, "unknown");
            if (fam[i] != MT_FAM_NONE)
                ev_add(ev[i], sizeof ev[i], "low_confidence(%s=%.2f)", mt_tag_family_name(fam[i]),
                       c);
            r.family = MT_FAM_NONE;
        }
        if (c < 0)
            c = 0;
        r.confidence = roundf(c * 100) / 100;
        snprintf(r.evidence, sizeof r.evidence, "%s%s%s", ev[i], sev[0] ? " " : "", sev);
        for (char *p = r.evidence; *p; p++)
            if (*p == ',')
                *p = ';';
        if (s->decided) {
            r.revision = s->res.revision;
            if (strcmp(r.tag, s->res.tag) != 0 || r.view != s->res.view)
                r.revision++;
        }
        s->res = r;
        s->decided = true;
    }
    mt_free(vd);
    mt_free(sub);
    mt_free(subc);
    mt_free(ev);
    mt_free(conf);
    mt_free(fam);
}

int mt_tag_format_line(const mt_tag_series_t *s, char *out, size_t outsz)
{
    int k = snprintf(out, outsz, "%s,%s,%s,%.2f,%s v=%s", s->h.series_uid, s->res.tag,
                     mt_tag_view_name(s->res.view), s->res.confidence, s->res.evidence,
                     MT_TAG_VERSION);
    return (k < 0 || (size_t)k >= outsz) ? -1 : 0;
}
