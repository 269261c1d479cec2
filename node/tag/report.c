/*
 * report.c - the per-exam protocol report (spec §9.2, SCMR Registry Table 4 layout). PURE.
 *
 * Feed one (exam key, manufacturer family, tag) triple per series; the report counts, for
 * every tag, the exams with at least one series of that tag (an exam with 12 SAX LGE slices
 * counts once) and its % of all exams in scope (exams with at least one MR series). Rows come
 * in the order of §9.2:
 *   cine.2ch cine.3ch cine.4ch cine.sax perfusion.stress perfusion.rest lge.2ch lge.3ch
 *   lge.4ch lge.sax t1map.native t1map.post t2map t2star flow mra blackblood tiscout
 *   localizer other unknown
 * followed by the tags §9.2 does not list (cine.other, lge.other, perfusion.unknown),
 * so that no series is lost from the table. Also: exams, series, % of series `unknown`, and
 * optionally one table per manufacturer family (--by manufacturer).
 * Formats: CSV (`tag,exams,percent`, summary lines start with '#'), JSON, aligned text.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../util/alloc.h"
#include "../util/fnv.h"
#include "report.h"

static const char *const rows[] = {
    "cine.2ch", "cine.3ch", "cine.4ch", "cine.sax", "perfusion.stress", "perfusion.rest",
    "lge.2ch", "lge.3ch", "lge.4ch", "lge.sax", "t1map.native", "t1map.post", "t2map",
    "t2star", "flow", "mra", "blackblood", "tiscout", "localizer", "other", "unknown",
    /* not in the §9.2 list */
    "cine.other", "lge.other", "perfusion.unknown",
};
#define N_ROWS (sizeof rows / sizeof rows[0])

static const char *const vendors[] = {"all", "SIEMENS", "GE", "PHILIPS", "CANON", "OTHER"};
#define N_VENDORS (sizeof vendors / sizeof vendors[0])

struct exam {
    uint64_t key;
    uint32_t tags; /* bit per row */
    uint8_t vendor;
    bool mr;               /* has an MR series: in scope (§9.2 denominator) */
    uint32_t n_ser, n_unk; /* its series, those `unknown` */
};

struct mt_tag_report {
    struct exam *ex;
    size_t n, cap;
    size_t *slot;
    size_t scap;
};

mt_tag_report_t *mt_tag_report_new(void)
{
    return mt_calloc(1, sizeof(mt_tag_report_t));
}

void mt_tag_report_free(mt_tag_report_t *r)
{
    if (!r)
        return;
    mt_free(r->ex);
    mt_free(r->slot);
    mt_free(r);
}

static uint64_t hkey(const char *s)
{
    uint64_t h = mt_fnv1a64_str(s);
    return h ? h : 1;
}

static void regrow(mt_tag_report_t *r)
{
    size_t cap = r->scap ? r->scap * 2 : 256;
    size_t *s = mt_calloc(cap, sizeof *s);
    for (size_t i = 0; i < r->n; i++) {
        size_t k = r->ex[i].key & (cap - 1);
        while (s[k])
            k = (k + 1) & (cap - 1);
        s[k] = i + 1;
    }
    mt_free(r->slot);
    r->slot = s;
    r->scap = cap;
}

int mt_tag_report_row(const char *tag)
{
    for (size_t i = 0; i < N_ROWS; i++)
        if (strcmp(rows[i], tag) == 0)
            return (int)i;
    return -1;
}

void mt_tag_report_add(mt_tag_report_t *r, const char *exam, int vendor, const char *tag)
{
    mt_tag_report_add_series(r, exam, vendor, tag, true);
}

void mt_tag_report_add_series(mt_tag_report_t *r, const char *exam, int vendor, const char *tag,
                              bool mr)
{
    if ((r->n + 1) * 2 > r->scap)
        regrow(r);
    uint64_t key = hkey(exam);
    size_t k = key & (r->scap - 1);
    struct exam *e = NULL;
    while (r->slot[k]) {
        if (r->ex[r->slot[k] - 1].key == key) {
            e = &r->ex[r->slot[k] - 1];
            break;
        }
        k = (k + 1) & (r->scap - 1);
    }
    if (!e) {
        if (r->n == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 64;
            r->ex = mt_realloc(r->ex, r->cap * sizeof *r->ex);
        }
        e = &r->ex[r->n++];
        e->key = key;
        e->tags = 0;
        e->mr = false;
        e->n_ser = e->n_unk = 0;
        e->vendor = (uint8_t)(vendor >= 1 && vendor <= 4 ? vendor : 5);
        r->slot[k] = r->n;
    }
    int row = mt_tag_report_row(tag);
    if (row < 0)
        row = mt_tag_report_row("unknown");
    e->tags |= 1u << row;
    bool unk = row == mt_tag_report_row("unknown");
    e->mr |= mr;
    e->n_ser++;
    e->n_unk += unk;
}

__attribute__((format(printf, 2, 3))) static int put(mt_buf_t *out, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (k < 0)
        return -1;
    return mt_buf_append(out, line, (size_t)k < sizeof line ? (size_t)k : sizeof line - 1);
}

/* exams in scope (with an MR series), their series and `unknown` series, exams per row */
static void counts(const mt_tag_report_t *r, size_t v, uint64_t *exams, uint64_t *series,
                   uint64_t *unk, uint64_t row_ex[N_ROWS])
{
    *exams = *series = *unk = 0;
    memset(row_ex, 0, N_ROWS * sizeof *row_ex);
    for (size_t i = 0; i < r->n; i++) {
        if ((v && r->ex[i].vendor != v) || !r->ex[i].mr)
            continue;
        (*exams)++;
        *series += r->ex[i].n_ser;
        *unk += r->ex[i].n_unk;
        for (size_t j = 0; j < N_ROWS; j++)
            row_ex[j] += (r->ex[i].tags >> j) & 1u;
    }
}

int mt_tag_report_format(const mt_tag_report_t *r, mt_tag_report_fmt_t fmt, bool by_vendor,
                         mt_buf_t *out)
{
    int rc = 0;
    bool first_v = true;
    if (fmt == MT_TAG_REPORT_JSON)
        rc |= put(out, "{");
    for (size_t v = 0; v < (by_vendor ? N_VENDORS : 1); v++) {
        uint64_t exams, series, unk, row_ex[N_ROWS];
        counts(r, v, &exams, &series, &unk, row_ex);
        if (v && exams == 0)
            continue;
        double unk_pct = series ? 100.0 * (double)unk / (double)series : 0;
        const char *name = vendors[v];
        switch (fmt) {
        case MT_TAG_REPORT_CSV:
            if (by_vendor)
                rc |= put(out, "# manufacturer %s\n", name);
            rc |= put(out, "tag,exams,percent\n");
            for (size_t j = 0; j < N_ROWS; j++)
                rc |= put(out, "%s,%llu,%.1f\n", rows[j], (unsigned long long)row_ex[j],
                          exams ? 100.0 * (double)row_ex[j] / (double)exams : 0.0);
            rc |= put(out, "# exams,%llu\n# series,%llu\n# unknown_series_percent,%.1f\n",
                      (unsigned long long)exams, (unsigned long long)series, unk_pct);
            break;
        case MT_TAG_REPORT_TABLE:
            if (by_vendor)
                rc |= put(out, "manufacturer: %s\n", name);
            rc |= put(out, "%-18s %8s %8s\n", "tag", "exams", "%");
            for (size_t j = 0; j < N_ROWS; j++)
                rc |= put(out, "%-18s %8llu %8.1f\n", rows[j], (unsigned long long)row_ex[j],
                          exams ? 100.0 * (double)row_ex[j] / (double)exams : 0.0);
            rc |= put(out, "exams %llu, series %llu, unknown series %.1f%%\n\n",
                      (unsigned long long)exams, (unsigned long long)series, unk_pct);
            break;
        case MT_TAG_REPORT_JSON:
            rc |= put(out, "%s\"%s\":{\"exams\":%llu,\"series\":%llu,\"unknown_series_percent\":%.1f,"
                           "\"rows\":[",
                      first_v ? "" : ",", name, (unsigned long long)exams,
                      (unsigned long long)series, unk_pct);
            for (size_t j = 0; j < N_ROWS; j++)
                rc |= put(out, "%s{\"tag\":\"%s\",\"exams\":%llu,\"percent\":%.1f}", j ? "," : "",
                          rows[j], (unsigned long long)row_ex[j],
                          exams ? 100.0 * (double)row_ex[j] / (double)exams : 0.0);
            rc |= put(out, "]}");
            break;
        }
        first_v = false;
    }
    if (fmt == MT_TAG_REPORT_JSON)
        rc |= put(out, "}\n");
    return rc ? -1 : 0;
}
