/*
 * geom.c - plane geometry for CMR views (spec §5). PURE.
 *
 * Patient frame LPS (+x left, +y posterior, +z superior). For IOP = (r, c) the normal is
 * n = r x c. The LV long axis L comes from the SAX stack (cmr.c); this file holds the maths:
 *
 *   §5.1 patient-axis planes      mt_tag_patient_plane()
 *   §5.4 rotation about L         u = normalize(s - (s.L)L), s = (-1,-1,0)/sqrt2 (septal prior)
 *                                 a = normalize(u x L)         (anterior wall direction)
 *                                 alpha = atan2(n.u, n.a) mod 180
 *   §5.4 rule 1 (single plane)    [60,115) 2ch, [115,172) 3ch, else 4ch; confidence 0.9,
 *                                 0.65 within 10 degrees of a boundary
 *   §5.4 rule 2 (joint fit)       each cluster -> a view of T = {4ch 22, 2ch 90, 3ch 150},
 *                                 one common offset delta in [-30, 30]; minimise
 *                                 sum dist(alpha_k, T + delta)^2 + 0.5 delta^2 + 2000 dup
 *                                 (dist circular mod 180). Exhaustive over assignments (3^k,
 *                                 k <= 7; larger k: nearest template after the fit of the
 *                                 first 7); delta is the clamped least-squares optimum for
 *                                 each assignment. A duplicated view keeps the cluster that
 *                                 fits best and every duplicate within 15 degrees of the
 *                                 template (a re-planned repeat); the others become `other`
 *                                 (RV 2CH/3CH).
 *                                 Confidence 0.95 when >= 2 clusters fit within 15 degrees,
 *                                 else 0.8.
 */
#include <math.h>
#include <string.h>

#include "tag.h"

#define DEG (180.0 / M_PI)

bool mt_tag_normal(const float iop[6], double n[3])
{
    for (int i = 0; i < 6; i++)
        if (isnan(iop[i]))
            return false;
    double r[3] = {iop[0], iop[1], iop[2]}, c[3] = {iop[3], iop[4], iop[5]};
    n[0] = r[1] * c[2] - r[2] * c[1];
    n[1] = r[2] * c[0] - r[0] * c[2];
    n[2] = r[0] * c[1] - r[1] * c[0];
    double l = sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
    if (l < 0.5) /* r and c must be unit and (nearly) orthogonal */
        return false;
    for (int i = 0; i < 3; i++)
        n[i] /= l;
    return true;
}

char mt_tag_patient_plane(const double n[3], bool *dbl)
{
    double ax = fabs(n[0]), ay = fabs(n[1]), az = fabs(n[2]);
    double th = cos(20.0 / DEG), s20 = sin(20.0 / DEG);
    double v[3] = {ax, ay, az};
    for (int i = 0; i < 2; i++) /* sort descending */
        for (int j = 0; j < 2 - i; j++)
            if (v[j] < v[j + 1]) {
                double t = v[j];
                v[j] = v[j + 1];
                v[j + 1] = t;
            }
    double mx = v[0], second = v[1];
    if (dbl)
        *dbl = second > s20 && mx < th;
    if (az >= th)
        return 'A';
    if (ax >= th)
        return 'S';
    if (ay >= th)
        return 'C';
    return 'O';
}

static void normalize(double v[3])
{
    double l = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    if (l > 0)
        for (int i = 0; i < 3; i++)
            v[i] /= l;
}

double mt_tag_alpha(const double L[3], const double n[3])
{
    double s[3] = {-M_SQRT1_2, -M_SQRT1_2, 0};
    double sl = s[0] * L[0] + s[1] * L[1] + s[2] * L[2];
    double u[3] = {s[0] - sl * L[0], s[1] - sl * L[1], s[2] - sl * L[2]};
    normalize(u);
    double a[3] = {u[1] * L[2] - u[2] * L[1], u[2] * L[0] - u[0] * L[2],
                   u[0] * L[1] - u[1] * L[0]};
    normalize(a);
    double nu = n[0] * u[0] + n[1] * u[1] + n[2] * u[2];
    double na = n[0] * a[0] + n[1] * a[1] + n[2] * a[2];
    double al = atan2(nu, na) * DEG;
    al = fmod(al, 180.0);
    if (al < 0)
        al += 180.0;
    return al;
}

int mt_tag_view_from_alpha(double al, float *conf)
{
    int v;
    if (al >= 60 && al < 115)
        v = MT_VIEW_2CH;
    else if (al >= 115 && al < 172)
        v = MT_VIEW_3CH;
    else
        v = MT_VIEW_4CH;
    static const double bounds[] = {60, 115, 172};
    double near = 180;
    for (int i = 0; i < 3; i++) {
        double d = fabs(al - bounds[i]);
        d = d > 90 ? 180 - d : d;
        near = d < near ? d : near;
    }
    if (conf)
        *conf = near < 10 ? 0.65f : 0.9f;
    return v;
}

static double cdist(double a, double b) /* signed circular difference a - b in (-90, 90] */
{
    double d = fmod(a - b, 180.0);
    if (d <= -90)
        d += 180;
    else if (d > 90)
        d -= 180;
    return d;
}

static const double tmpl[3] = {22.0, 90.0, 150.0};
static const int tmpl_view[3] = {MT_VIEW_4CH, MT_VIEW_2CH, MT_VIEW_3CH};

bool mt_tag_joint_fit(const double *alpha, size_t k, int *views, double *delta, float *conf)
{
    if (k == 0)
        return false;
    size_t kk = k > 7 ? 7 : k;
    unsigned total = 1;
    for (size_t i = 0; i < kk; i++)
        total *= 3;
    double best = INFINITY, best_d = 0;
    unsigned best_a = 0;
    for (unsigned code = 0; code < total; code++) {
        unsigned c = code, cnt[3] = {0, 0, 0};
        double e[7], sum = 0;
        for (size_t i = 0; i < kk; i++) {
            unsigned t = c % 3;
            c /= 3;
            cnt[t]++;
            e[i] = cdist(alpha[i], tmpl[t]);
            sum += e[i];
        }
        /* d/d delta of sum (e_i - delta)^2 + 0.5 delta^2 = 0 */
        double d = sum / ((double)kk + 0.5);
        d = d < -30 ? -30 : d > 30 ? 30 : d;
        double cost = 0.5 * d * d;
        c = code;
        for (size_t i = 0; i < kk; i++) {
            unsigned t = c % 3;
            c /= 3;
            double r = cdist(alpha[i], tmpl[t] + d);
            cost += r * r;
        }
        for (int t = 0; t < 3; t++)
            if (cnt[t] > 1)
                cost += 2000.0 * (cnt[t] - 1);
        if (cost < best) {
            best = cost;
            best_d = d;
            best_a = code;
        }
    }
    int tv[MT_TAG_MAX_LAX];
    double res[MT_TAG_MAX_LAX];
    unsigned c = best_a;
    for (size_t i = 0; i < k && i < MT_TAG_MAX_LAX; i++) {
        int t;
        if (i < kk) {
            t = (int)(c % 3);
            c /= 3;
        } else { /* beyond the exhaustive part: nearest template */
            t = 0;
            for (int j = 1; j < 3; j++)
                if (fabs(cdist(alpha[i], tmpl[j] + best_d)) <
                    fabs(cdist(alpha[i], tmpl[t] + best_d)))
                    t = j;
        }
        tv[i] = t;
        res[i] = fabs(cdist(alpha[i], tmpl[t] + best_d));
    }
    unsigned good = 0;
    for (size_t i = 0; i < k && i < MT_TAG_MAX_LAX; i++) {
        bool dup_better = false;
        for (size_t j = 0; j < k && j < MT_TAG_MAX_LAX; j++)
            if (j != i && tv[j] == tv[i] && (res[j] < res[i] || (res[j] == res[i] && j < i)))
                dup_better = true;
        /* a duplicate that still fits its template within 15 degrees is a repeat of the
         * same view (another acquisition, re-planned); otherwise it is another plane */
        views[i] = dup_better && res[i] > 15 ? MT_VIEW_OTHER : tmpl_view[tv[i]];
        if (!dup_better && res[i] <= 15)
            good++;
    }
    if (delta)
        *delta = best_d;
    if (conf)
        *conf = good >= 2 ? 0.95f : 0.8f;
    return true;
}
