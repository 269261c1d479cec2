/*
 * series.c - the series aggregator of the CMR tagger (spec §3.1). PURE.
 *
 * mt_tag_series_add() copies an instance's planes into the series (the first instance gives
 * the header constants; ImageType, description words and Enhanced flags are OR-ed over all
 * instances, so a mixed magnitude + phase series is classified on its union, §7).
 * mt_tag_series_finish() computes:
 *   - orientation clusters: normals within 5 degrees (sign-insensitive), at most
 *     MT_TAG_MAX_CLUSTERS (more orientations join the nearest cluster); per cluster the mean
 *     normal, the distinct positions d = n.IPP rounded to 1 mm, their span and median spacing;
 *   - npos (distinct (cluster, d) positions) and norients;
 *   - n_tt / n_ti / n_te: distinct TriggerTime (1 ms), InversionTime > 0 (1 ms) and EchoTime
 *     (0.1 ms) over the series, and the *_pos variants: the most distinct values at any one
 *     position (what the family rules mean by "at one position");
 *   - n_dyn: NumberOfTemporalPositions, else the most distinct TemporalPositionIndex, else the
 *     most distinct AcquisitionTime (10 ms) at one position; dyn_dt the median step between
 *     those acquisition times;
 *   - tt_span (the largest TriggerTime range at one position), the RR interval
 *     (NominalInterval, else 60000/HeartRate), TI range and whether the TIs at the most
 *     sampled position step evenly (TI scout) or not (MOLLI's interleaved inversions);
 *   - orthogonal_planes: two orientation clusters within 10 degrees of two different patient
 *     axes (a 3-plane localizer);
 *   - t_start: the earliest AcquisitionTime, else SeriesTime.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../util/alloc.h"
#include "tag.h"

void mt_tag_img_init(mt_tag_img_t *img)
{
    for (int i = 0; i < 6; i++)
        img->iop[i] = NAN;
    for (int i = 0; i < 3; i++)
        img->ipp[i] = NAN;
    img->tt = img->ti = img->te = img->acq = NAN;
    img->tpos = img->stack = -1;
    img->itype = 0;
}

void mt_tag_inst_init(mt_tag_inst_t *in)
{
    memset(in, 0, sizeof *in);
    in->series_number = -1;
    in->venc = in->tr = in->flip = in->slice_th = in->pix_sp = in->fov = in->field_t = NAN;
    in->hr = in->nominal_rr = in->bolus_start = in->series_time = NAN;
    in->cardiac_n = in->n_temporal = in->etl = -1;
}

void mt_tag_inst_dispose(mt_tag_inst_t *in)
{
    mt_free(in->img);
    in->img = NULL;
    in->n_img = 0;
}

void mt_tag_inst_add_img(mt_tag_inst_t *in, const mt_tag_img_t *img)
{
    if ((in->n_img & (in->n_img - 1)) == 0) { /* grow at powers of two */
        size_t cap = in->n_img ? in->n_img * 2 : 1;
        in->img = mt_realloc(in->img, cap * sizeof *in->img);
    }
    in->img[in->n_img++] = *img;
    in->itype |= img->itype;
}

void mt_tag_series_init(mt_tag_series_t *s)
{
    memset(s, 0, sizeof *s);
    mt_tag_inst_init(&s->h);
    s->link = -1;
    s->fam = -1;
}

void mt_tag_series_dispose(mt_tag_series_t *s)
{
    mt_tag_inst_dispose(&s->h);
}

void mt_tag_series_add(mt_tag_series_t *s, const mt_tag_inst_t *in)
{
    if (s->n_inst == 0) {
        mt_tag_img_t *img = s->h.img;
        size_t n = s->h.n_img;
        s->h = *in;
        s->h.img = img;
        s->h.n_img = n;
        s->h.itype = 0;
    } else {
        for (int i = 0; i < MT_TAG_WORD_WORDS; i++) {
            s->h.desc.w[i] |= in->desc.w[i];
            s->h.study_desc.w[i] |= in->study_desc.w[i];
        }
        s->h.scan_seq |= in->scan_seq;
        s->h.seq_var |= in->seq_var;
        s->h.scan_opt |= in->scan_opt;
        s->h.seq_flags |= in->seq_flags;
        s->h.enh |= in->enh;
        s->h.contrast |= in->contrast;
        s->h.has_desc |= in->has_desc;
        if (isnan(s->h.venc))
            s->h.venc = in->venc;
        if (s->h.cardiac_n < in->cardiac_n)
            s->h.cardiac_n = in->cardiac_n;
        if (s->h.n_temporal < in->n_temporal)
            s->h.n_temporal = in->n_temporal;
        if (isnan(s->h.hr))
            s->h.hr = in->hr;
        if (isnan(s->h.nominal_rr))
            s->h.nominal_rr = in->nominal_rr;
        if (isnan(s->h.bolus_start) || in->bolus_start < s->h.bolus_start)
            s->h.bolus_start = in->bolus_start;
        if (isnan(s->h.series_time) || in->series_time < s->h.series_time)
            s->h.series_time = in->series_time;
    }
    s->h.itype |= in->itype;
    for (size_t i = 0; i < in->n_img; i++)
        mt_tag_inst_add_img(&s->h, &in->img[i]);
    s->n_inst++;
}

struct rec {
    int pos;                  /* cluster * 100000 + rounded d, or -1 without geometry */
    float tt, ti, te, acq;
    int32_t tpos;
};

static int cmp_rec(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* distinct values of v[0..n) (NaN skipped) after rounding to `q`; sorted into out */
static unsigned distinct(const double *v, size_t n, double q, double *out)
{
    unsigned k = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(v[i]))
            out[k++] = round(v[i] / q) * q;
    qsort(out, k, sizeof *out, cmp_double);
    unsigned d = 0;
    for (unsigned i = 0; i < k; i++)
        if (d == 0 || out[i] != out[d - 1])
            out[d++] = out[i];
    return d;
}

static double median(double *v, unsigned n)
{
    if (n == 0)
        return NAN;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void mt_tag_series_finish(mt_tag_series_t *s)
{
    size_t n = s->h.n_img;
    s->n_img = (unsigned)n;
    s->n_cl = 0;
    s->npos = s->norients = s->n_tt = s->n_ti = s->n_te = s->n_dyn = 0;
    s->n_tt_pos = s->n_ti_pos = s->n_te_pos = s->n_pos_dyn = 0;
    s->tt_span = 0;
    s->ti_min = s->ti_max = s->te_min = s->te_max = NAN;
    s->dyn_dt = NAN;
    s->t_start = NAN;
    s->n_mag = s->n_phase = s->n_real = 0;
    s->ti_even_step = false;
    s->orthogonal_planes = false;
    if (n == 0)
        return;

    struct rec *r = mt_calloc(n, sizeof *r);
    double *a = mt_malloc(n * sizeof *a), *b = mt_malloc(n * sizeof *b);
    double sum[MT_TAG_MAX_CLUSTERS][3];
    memset(sum, 0, sizeof sum);

    for (size_t i = 0; i < n; i++) {
        const mt_tag_img_t *im = &s->h.img[i];
        r[i] = (struct rec){-1, im->tt, im->ti > 0 ? im->ti : NAN, im->te, im->acq, im->tpos};
        if (im->itype & (MT_IT_P | MT_IT_VEL))
            s->n_phase++;
        else if (im->itype & (MT_IT_R | MT_IT_PSIR))
            s->n_real++;
        else if (im->itype & MT_IT_M)
            s->n_mag++;
        if (!isnan(im->acq) && (isnan(s->t_start) || im->acq < s->t_start))
            s->t_start = im->acq;
        double nv[3];
        if (!mt_tag_normal(im->iop, nv) || isnan(im->ipp[0]))
            continue;
        unsigned c, best = 0;
        double bestdot = -1;
        for (c = 0; c < s->n_cl; c++) {
            const double *m = s->cl[c].n;
            double d = fabs(m[0] * nv[0] + m[1] * nv[1] + m[2] * nv[2]);
            if (d > bestdot) {
                bestdot = d;
                best = c;
            }
        }
        if (bestdot >= cos(5.0 * M_PI / 180.0) || s->n_cl == MT_TAG_MAX_CLUSTERS) {
            c = best;
        } else {
            c = s->n_cl++;
            memset(&s->cl[c], 0, sizeof s->cl[c]);
            memcpy(s->cl[c].n, nv, sizeof nv);
        }
        const double *m = s->cl[c].n;
        double sg = (m[0] * nv[0] + m[1] * nv[1] + m[2] * nv[2]) < 0 ? -1 : 1;
        for (int k = 0; k < 3; k++)
            sum[c][k] += sg * nv[k];
        s->cl[c].n_img++;
        double L = sqrt(sum[c][0] * sum[c][0] + sum[c][1] * sum[c][1] + sum[c][2] * sum[c][2]);
        if (L > 0)
            for (int k = 0; k < 3; k++)
                s->cl[c].n[k] = sum[c][k] / L;
        r[i].pos = (int)c; /* provisional: cluster only */
    }
    s->norients = s->n_cl;

    /* positions along each cluster's (final) mean normal */
    for (unsigned c = 0; c < s->n_cl; c++) {
        unsigned k = 0;
        for (size_t i = 0; i < n; i++) {
            if (r[i].pos != (int)c)
                continue;
            const float *p = s->h.img[i].ipp;
            a[k++] = s->cl[c].n[0] * p[0] + s->cl[c].n[1] * p[1] + s->cl[c].n[2] * p[2];
        }
        unsigned d = distinct(a, k, 1.0, b);
        s->cl[c].npos = d;
        s->cl[c].pos_min = d ? b[0] : 0;
        s->cl[c].pos_max = d ? b[d - 1] : 0;
        for (unsigned j = 1; j < d; j++)
            a[j - 1] = b[j] - b[j - 1];
        s->cl[c].spacing = d > 1 ? median(a, d - 1) : 0;
        s->npos += d;
    }
    for (size_t i = 0; i < n; i++) {
        if (r[i].pos < 0)
            continue;
        unsigned c = (unsigned)r[i].pos;
        const float *p = s->h.img[i].ipp;
        double d = s->cl[c].n[0] * p[0] + s->cl[c].n[1] * p[1] + s->cl[c].n[2] * p[2];
        r[i].pos = (int)c * 100000 + (int)lround(d) + 50000;
    }
    if (s->npos == 0)
        s->npos = 1; /* no geometry: one position */

    /* series-wide distinct counts */
    for (size_t i = 0; i < n; i++)
        a[i] = r[i].tt;
    s->n_tt = distinct(a, n, 1.0, b);
    for (size_t i = 0; i < n; i++)
        a[i] = r[i].ti;
    s->n_ti = distinct(a, n, 1.0, b);
    if (s->n_ti) {
        s->ti_min = b[0];
        s->ti_max = b[s->n_ti - 1];
    }
    for (size_t i = 0; i < n; i++)
        a[i] = r[i].te;
    s->n_te = distinct(a, n, 0.1, b);
    if (s->n_te) {
        s->te_min = b[0];
        s->te_max = b[s->n_te - 1];
    }

    /* per position */
    qsort(r, n, sizeof *r, cmp_rec);
    unsigned max_acq = 0, max_tpos = 0, best_ti_pos = 0;
    double best_dt = NAN;
    double *c2 = mt_malloc(n * sizeof *c2);
    unsigned *acq_count = mt_calloc(n, sizeof *acq_count);
    unsigned npg = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && r[j].pos == r[i].pos)
            j++;
        size_t m = j - i;
        for (size_t k = 0; k < m; k++)
            a[k] = r[i + k].tt;
        unsigned d = distinct(a, m, 1.0, b);
        if (d > s->n_tt_pos)
            s->n_tt_pos = d;
        if (d > 1 && b[d - 1] - b[0] > s->tt_span)
            s->tt_span = b[d - 1] - b[0];
        for (size_t k = 0; k < m; k++)
            a[k] = r[i + k].ti;
        d = distinct(a, m, 1.0, b);
        if (d > s->n_ti_pos)
            s->n_ti_pos = d;
        if (d >= 4 && d > best_ti_pos) {
            best_ti_pos = d;
            for (unsigned k = 1; k < d; k++)
                c2[k - 1] = b[k] - b[k - 1];
            double mn = c2[0], mx = c2[0];
            for (unsigned k = 1; k + 1 < d; k++) {
                mn = c2[k] < mn ? c2[k] : mn;
                mx = c2[k] > mx ? c2[k] : mx;
            }
            s->ti_even_step = mn > 0 && mx / mn <= 1.6;
        }
        for (size_t k = 0; k < m; k++)
            a[k] = r[i + k].te;
        d = distinct(a, m, 0.1, b);
        if (d > s->n_te_pos)
            s->n_te_pos = d;
        for (size_t k = 0; k < m; k++)
            a[k] = r[i + k].tpos >= 0 ? (double)r[i + k].tpos : NAN;
        d = distinct(a, m, 1.0, b);
        unsigned dtp = d;
        if (d > max_tpos)
            max_tpos = d;
        for (size_t k = 0; k < m; k++)
            a[k] = r[i + k].acq;
        d = distinct(a, m, 0.01, b);
        acq_count[npg++] = d > dtp ? d : dtp;
        if (d > max_acq) {
            max_acq = d;
            for (unsigned k = 1; k < d; k++)
                c2[k - 1] = b[k] - b[k - 1];
            best_dt = d > 1 ? median(c2, d - 1) : NAN;
        }
        i = j;
    }
    if (s->h.n_temporal > 1)
        s->n_dyn = (unsigned)s->h.n_temporal;
    else if (max_tpos > 1)
        s->n_dyn = max_tpos;
    else
        s->n_dyn = max_acq;
    s->dyn_dt = best_dt;
    for (unsigned g = 0; g < npg; g++)
        if (s->n_dyn > 1 && acq_count[g] * 10 >= s->n_dyn * 8)
            s->n_pos_dyn++;

    if (s->h.nominal_rr > 200 && s->h.nominal_rr < 3000)
        s->rr = s->h.nominal_rr;
    else if (s->h.hr > 20 && s->h.hr < 300)
        s->rr = 60000.0 / s->h.hr;
    else
        s->rr = NAN;
    if (isnan(s->t_start))
        s->t_start = s->h.series_time;

    /* 3-plane localizer: clusters near two different patient axes */
    unsigned axes = 0;
    for (unsigned c = 0; c < s->n_cl; c++)
        for (int k = 0; k < 3; k++)
            if (fabs(s->cl[c].n[k]) >= cos(10.0 * M_PI / 180.0))
                axes |= 1u << k;
    s->orthogonal_planes = __builtin_popcount(axes) >= 2;

    mt_free(acq_count);
    mt_free(c2);
    mt_free(a);
    mt_free(b);
    mt_free(r);
}
