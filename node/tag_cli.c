/*
 * tag_cli.c - `mitral tag FILES|DIRS...`: the CMR tagger offline, without a running node.
 *
 * Reads every file given (directories recursively, symlinks not followed), parses it with the
 * data set codec (mt_part10_parse_file_buf), extracts the tagger's features (node/tag/), drops
 * the data set, groups the features by StudyInstanceUID and SeriesInstanceUID, runs the
 * series statistics and the exam-level pass per study, and prints one line per series:
 *
 *     SeriesInstanceUID,tag,view,confidence,evidence
 *
 * in study order (first file seen) and, within a study, by acquisition start. Files that are
 * not DICOM, or have no SeriesInstanceUID, are counted and skipped (a summary goes to stderr).
 * Exit status: 0, 1 when no series could be tagged, 2 on usage errors.
 */
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "conf/conf.h"
#include "dicom/ds.h"
#include "index/index.h"
#include "route/load.h"
#include "tag/report.h"
#include "tag/tag.h"
#include "tag_cli.h"
#include "tag_route.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fnv.h"

static const char usage_tag[] =
    "usage: mitral tag [--header] [--report csv|json|table [--by manufacturer]] [--bench N]\n"
    "                  FILES|DIRS...\n"
    "\n"
    "Tags every MR series found in the files (directories are walked recursively) with the\n"
    "CMR sequence tagger (cine.sax, lge.4ch, perfusion.stress, t1map.native, flow, ...; see\n"
    "docs/tagging.md) and prints one line per series:\n"
    "  SeriesInstanceUID,tag,view,confidence,evidence\n"
    "Works on files alone: no node, no index.\n"
    "\n"
    "  --header   print the column names first\n"
    "  --report F instead of the series lines, print the per-exam protocol report (SCMR\n"
    "             Registry Table 4 layout: exams with >= 1 series of each tag, and %%) as\n"
    "             csv, json or table; --by manufacturer adds one table per vendor family\n"
    "  --bench N  re-run the rules N times over the extracted features and print the\n"
    "             throughput (series/s) to stderr\n"
    "  --reindex [-c FILE] [--data DIR]\n"
    "             re-tag every stored series (after a tagger upgrade) from the files under the\n"
    "             storage root and write the tags into the index (the node may run; the\n"
    "             features come from the STORED headers, de-identified if a profile is used);\n"
    "             the config's routing rules on cmr_series fire on the tags written, as when\n"
    "             the node writes a tag again: a rule armed at store time that matches and\n"
    "             has not fired for an instance fires (once per stored copy)\n";

struct series_ent {
    mt_tag_series_t s;
    size_t study;
    size_t order;
};

struct tagger {
    struct series_ent **ser;
    size_t n_ser, cap_ser;
    size_t *hash; /* open addressing over ser indexes + 1 */
    size_t hcap;
    char (*study_uid)[65];
    size_t n_study, cap_study;
    unsigned long files, skipped;
};

static struct tagger T;

static void rehash(void)
{
    size_t cap = T.hcap ? T.hcap * 2 : 1024;
    size_t *h = mt_calloc(cap, sizeof *h);
    for (size_t i = 0; i < T.n_ser; i++) {
        size_t k = mt_fnv1a64_str(T.ser[i]->s.h.series_uid) & (cap - 1);
        while (h[k])
            k = (k + 1) & (cap - 1);
        h[k] = i + 1;
    }
    mt_free(T.hash);
    T.hash = h;
    T.hcap = cap;
}

static size_t study_index(const char *uid)
{
    for (size_t i = T.n_study; i-- > 0;)
        if (strcmp(T.study_uid[i], uid) == 0)
            return i;
    if (T.n_study == T.cap_study) {
        T.cap_study = T.cap_study ? T.cap_study * 2 : 16;
        T.study_uid = mt_realloc(T.study_uid, T.cap_study * sizeof *T.study_uid);
    }
    snprintf(T.study_uid[T.n_study], sizeof T.study_uid[0], "%s", uid);
    return T.n_study++;
}

static struct series_ent *series_for(const mt_tag_inst_t *in)
{
    if ((T.n_ser + 1) * 2 > T.hcap)
        rehash();
    size_t k = mt_fnv1a64_str(in->series_uid) & (T.hcap - 1);
    while (T.hash[k]) {
        struct series_ent *e = T.ser[T.hash[k] - 1];
        if (strcmp(e->s.h.series_uid, in->series_uid) == 0)
            return e;
        k = (k + 1) & (T.hcap - 1);
    }
    if (T.n_ser == T.cap_ser) {
        T.cap_ser = T.cap_ser ? T.cap_ser * 2 : 64;
        T.ser = mt_realloc(T.ser, T.cap_ser * sizeof *T.ser);
    }
    struct series_ent *e = mt_calloc(1, sizeof *e);
    mt_tag_series_init(&e->s);
    e->study = study_index(in->study_uid);
    e->order = T.n_ser;
    T.ser[T.n_ser++] = e;
    T.hash[k] = T.n_ser;
    return e;
}

static int read_all(const char *path, mt_buf_t *b)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return MT_ERR_FROM_ERRNO();
    uint8_t chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if ((rc = mt_buf_append(b, chunk, n)) != 0)
            break;
    if (!rc && ferror(f))
        rc = MT_EIO;
    fclose(f);
    return rc;
}

static void tag_file(const char *path)
{
    T.files++;
    mt_buf_t b;
    mt_buf_init(&b, (size_t)1 << 32);
    int rc = read_all(path, &b);
    if (rc) {
        fprintf(stderr, "mitral tag: %s: %s\n", path, mt_strerror(rc));
        T.skipped++;
        mt_buf_dispose(&b);
        return;
    }
    mt_meta_t meta;
    mt_ds_t *ds = NULL;
    mt_diag_t diag = {0, NULL};
    rc = mt_part10_parse_file_buf(b.data, b.len, &meta, &ds, &diag);
    mt_buf_dispose(&b);
    if (rc) {
        mt_ds_free(ds);
        T.skipped++;
        return;
    }
    const mt_ts_t *ts = meta.transfer_syntax_uid[0] ? mt_ts_find(meta.transfer_syntax_uid) : NULL;
    mt_tag_inst_t in;
    rc = mt_tag_extract(ds, ts && ts->big_endian, &in);
    mt_ds_free(ds);
    if (rc) {
        mt_tag_inst_dispose(&in);
        T.skipped++;
        return;
    }
    struct series_ent *e = series_for(&in);
    mt_tag_series_add(&e->s, &in);
    mt_tag_inst_dispose(&in);
}

static int on_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (type == FTW_F)
        tag_file(path);
    return 0;
}

static int cmp_series(const void *a, const void *b)
{
    const mt_tag_series_t *x = *(mt_tag_series_t *const *)a, *y = *(mt_tag_series_t *const *)b;
    double tx = isnan(x->t_rel) ? 1e12 : x->t_rel, ty = isnan(y->t_rel) ? 1e12 : y->t_rel;
    if (tx != ty)
        return tx < ty ? -1 : 1;
    if (x->h.series_number != y->h.series_number)
        return x->h.series_number < y->h.series_number ? -1 : 1;
    return strcmp(x->h.series_uid, y->h.series_uid);
}

int mt_tag_cli_main(int argc, char **argv)
{
    bool header = false, by_vendor = false, reindex = false;
    const char *cfile = NULL, *data = NULL;
    mt_conf_t *conf = NULL; /* --reindex: its routing rules fire on the tags written */
    char storage[4096] = "", index_path[4096] = "";
    int report = -1;
    long bench = 0;
    int first = 1;
    for (; first < argc && argv[first][0] == '-' && argv[first][1]; first++) {
        if (!strcmp(argv[first], "--help") || !strcmp(argv[first], "-h")) {
            fputs(usage_tag, stdout);
            return 0;
        } else if (!strcmp(argv[first], "--header")) {
            header = true;
        } else if (!strcmp(argv[first], "--report") && first + 1 < argc) {
            const char *f = argv[++first];
            report = !strcmp(f, "csv") ? MT_TAG_REPORT_CSV : !strcmp(f, "json") ? MT_TAG_REPORT_JSON
                     : !strcmp(f, "table") ? MT_TAG_REPORT_TABLE : -2;
            if (report == -2) {
                fprintf(stderr, "mitral tag: --report csv|json|table\n");
                return 2;
            }
        } else if (!strcmp(argv[first], "--by") && first + 1 < argc) {
            if (strcmp(argv[++first], "manufacturer") != 0) {
                fprintf(stderr, "mitral tag: --by manufacturer\n");
                return 2;
            }
            by_vendor = true;
        } else if (!strcmp(argv[first], "--bench") && first + 1 < argc) {
            bench = strtol(argv[++first], NULL, 10);
            if (bench < 1 || bench > 1000000) {
                fprintf(stderr, "mitral tag: --bench N (1..1000000)\n");
                return 2;
            }
        } else if (!strcmp(argv[first], "--reindex")) {
            reindex = true;
        } else if ((!strcmp(argv[first], "-c") || !strcmp(argv[first], "--config")) &&
                   first + 1 < argc) {
            cfile = argv[++first];
        } else if ((!strcmp(argv[first], "-d") || !strcmp(argv[first], "--data")) &&
                   first + 1 < argc) {
            data = argv[++first];
        } else if (!strcmp(argv[first], "--")) {
            first++;
            break;
        } else {
            fprintf(stderr, "mitral tag: unknown option '%s'\n%s", argv[first], usage_tag);
            return 2;
        }
    }
    if (reindex) {
        if (first < argc) {
            fprintf(stderr, "mitral tag --reindex takes no FILES (it reads the storage root)\n");
            return 2;
        }
        mt_conf_t *c = mt_conf_for_command(cfile, data);
        if (!c)
            return 2;
        char rerr[512];
        if (mt_route_load_conf(c, rerr, sizeof rerr) != 0) { /* the rules fire on the tags */
            fprintf(stderr, "%s\n", rerr);
            mt_conf_free(c);
            return 2;
        }
        snprintf(storage, sizeof storage, "%s", c->storage_root);
        snprintf(index_path, sizeof index_path, "%s", c->index_path);
        conf = c;
    } else if (first >= argc) {
        fputs(usage_tag, stderr);
        return 2;
    }
    memset(&T, 0, sizeof T);
    if (reindex)
        nftw(storage, on_entry, 32, FTW_PHYS);
    for (int i = first; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "mitral tag: %s: %s\n", argv[i], strerror(errno));
            T.skipped++;
            continue;
        }
        if (S_ISDIR(st.st_mode))
            nftw(argv[i], on_entry, 32, FTW_PHYS);
        else
            tag_file(argv[i]);
    }
    for (size_t i = 0; i < T.n_ser; i++)
        mt_tag_series_finish(&T.ser[i]->s);

    if (header && report < 0)
        puts("SeriesInstanceUID,tag,view,confidence,evidence");
    mt_tag_series_t **group = mt_malloc((T.n_ser ? T.n_ser : 1) * sizeof *group);
    char line[2048];
    if (bench > 0) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (long it = 0; it < bench; it++)
            for (size_t st = 0; st < T.n_study; st++) {
                size_t k = 0;
                for (size_t i = 0; i < T.n_ser; i++)
                    if (T.ser[i]->study == st) {
                        group[k] = &T.ser[i]->s;
                        group[k++]->fam = -1;
                    }
                mt_tag_study_t study = {group, k, false, false, {0, 0, 0}, false, -1, NAN};
                mt_tag_study_run(&study);
            }
        clock_gettime(CLOCK_MONOTONIC, &b);
        double dt = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
        fprintf(stderr, "mitral tag: bench %ld x %zu series: %.3f s, %.0f series/s\n", bench,
                T.n_ser, dt, dt > 0 ? (double)bench * (double)T.n_ser / dt : 0.0);
    }
    mt_tag_report_t *rep = report >= 0 ? mt_tag_report_new() : NULL;
    mt_index_t *ix = NULL;
    int ix_rc = 0;
    unsigned long written = 0;
    size_t n_queued = 0;
    if (reindex && (ix_rc = mt_index_sqlite_open(index_path, &ix)) == 0)
        ix_rc = ix->ops->begin(ix);
    if (ix_rc)
        fprintf(stderr, "mitral tag --reindex: %s: %s\n", index_path, mt_strerror(ix_rc));
    for (size_t st = 0; st < T.n_study; st++) {
        size_t k = 0;
        for (size_t i = 0; i < T.n_ser; i++)
            if (T.ser[i]->study == st)
                group[k++] = &T.ser[i]->s;
        mt_tag_study_t study = {group, k, false, false, {0, 0, 0}, false, -1, NAN};
        mt_tag_study_run(&study);
        qsort(group, k, sizeof *group, cmp_series);
        for (size_t i = 0; i < k; i++) {
            if (ix && !ix_rc) {
                const mt_tag_series_t *g = group[i];
                mt_index_tag_t row = {
                    .study_uid = g->h.study_uid, .series_uid = g->h.series_uid,
                    .tag = g->res.tag, .view = mt_tag_view_name(g->res.view),
                    .evidence = g->res.evidence, .version = MT_TAG_VERSION,
                    .confidence = round((double)g->res.confidence * 100.0) / 100.0,
                    .manufacturer = g->h.vendor,
                };
                if ((ix_rc = ix->ops->tag_put(ix, &row, NULL)) == 0)
                    written++;
                /* as a pass that writes the tag again: the rules armed at store time are
                 * evaluated on it, those that match and have not fired yet fire */
                if (ix_rc == 0 && conf->routes)
                    ix_rc = mt_tag_route_series(ix, conf->routes, g->h.study_uid,
                                                g->h.series_uid, g->res.tag, &n_queued);
                continue;
            }
            if (rep)
                mt_tag_report_add_series(rep, group[i]->h.study_uid, group[i]->h.vendor,
                                         group[i]->res.tag, !group[i]->h.not_mr);
            else if (mt_tag_format_line(group[i], line, sizeof line) == 0)
                puts(line);
        }
    }
    if (rep) {
        mt_buf_t out;
        mt_buf_init(&out, (size_t)1 << 24);
        mt_tag_report_format(rep, (mt_tag_report_fmt_t)report, by_vendor, &out);
        fwrite(out.data, 1, out.len, stdout);
        mt_buf_dispose(&out);
        mt_tag_report_free(rep);
    }
    if (ix) {
        if (!ix_rc)
            ix_rc = ix->ops->commit(ix);
        else
            ix->ops->rollback(ix);
        ix->ops->close(ix);
        if (!ix_rc)
            fprintf(stderr, "mitral tag --reindex: %lu series re-tagged (%s), %zu instance(s) "
                    "queued by rules on the tag\n", written, MT_TAG_VERSION, n_queued);
    }
    mt_conf_free(conf);
    mt_free(group);
    fprintf(stderr, "mitral tag: %lu files, %zu series in %zu studies, %lu files skipped\n",
            T.files, T.n_ser, T.n_study, T.skipped);
    int rc = (T.n_ser || reindex) && !ix_rc ? 0 : 1;
    for (size_t i = 0; i < T.n_ser; i++) {
        mt_tag_series_dispose(&T.ser[i]->s);
        mt_free(T.ser[i]);
    }
    mt_free(T.ser);
    mt_free(T.hash);
    mt_free(T.study_uid);
    return rc;
}
