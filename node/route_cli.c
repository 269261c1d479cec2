/*
 * route_cli.c - the command line of routing and forwarding:
 *
 *   mitral route test [-c FILE] [--calling AE] [--called AE] [--peer ADDR] [--tag] FILE.dcm...
 *   mitral route test [-c FILE] --http [--project NAME] [--user NAME] [--peer ADDR] FILE...
 *       compile routing.rules of the config exactly as `serve` does (errors as file:line) and,
 *       for each DICOM file, print which rules matched and what would happen (reject, projects,
 *       deid profile, forward destinations). --http stands for a STOW-RS upload instead of an
 *       association: no calling AE, called AE = the project's AE title (--project: POSTed to
 *       /projects/NAME/dicomweb) or node.ae_title, the DICOMweb user --user (rules.h).
 *       Rules on cmr_series are reported as armed: they apply after tagging. With --tag the
 *       given files are tagged offline first (grouped by study and series as the node would,
 *       node/tag/), and the outcome of the armed rules on each file's series tag is printed
 *       too. Changes nothing: no index, no storage.
 *   mitral queue list [-c FILE] [--data DIR] [--dest NAME] [--dead]
 *   mitral queue retry [-c FILE] [--data DIR] [--dest NAME] [--all] [ID...]
 *       dead entries (all entries with --all, or the given ids) become pending and due now;
 *       a running node picks them up at its next queue scan.
 *   mitral queue purge [-c FILE] [--data DIR] [--dest NAME] [--all] [ID...]
 *       delete dead entries (every entry with --all, or the given ids).
 */
#include "route_cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf/conf.h"
#include "deid/load.h"
#include "dicom/ds.h"
#include "index/index.h"
#include "route/load.h"
#include "route/rules.h"
#include "tag/tag.h"
#include "util/alloc.h"
#include "util/err.h"
#include "util/walk.h"

static const char usage_route[] =
    "usage: mitral route test [-c FILE] [--calling AE] [--called AE] [--peer ADDR] [--tag]\n"
    "                         FILES|DIRS...\n"
    "       mitral route test [-c FILE] --http [--project NAME] [--user NAME] [--peer ADDR]\n"
    "                         [--tag] FILES|DIRS...\n"
    "\n"
    "Compiles routing.rules of the config (as `serve` would) and prints, for each DICOM file,\n"
    "the rules that match and what would happen: reject, projects, deid profile, forward.\n"
    "Rules on cmr_series are listed as armed: they apply after tagging, when the series is\n"
    "tagged. --tag tags the given files offline (by series, as the node would) and prints\n"
    "what the armed rules do with each file's tag. Nothing is stored or queued.\n"
    "Directories are walked recursively (names sorted, hidden ones skipped).\n"
    "--calling/--called/--peer stand for the association (defaults: calling ROUTETEST,\n"
    "called node.ae_title, peer 127.0.0.1).\n"
    "--http stands for a STOW-RS upload instead (--project or --user imply it): no calling\n"
    "AE, called AE the project's AE title (--project NAME: POSTed to\n"
    "/projects/NAME/dicomweb, which the study joins too) or node.ae_title (/dicomweb),\n"
    "user the DICOMweb user --user NAME (default: none), peer --peer.\n";

/* ---- --tag: the files' series tagged offline, as the node's tagger would ---- */
typedef struct off_series {
    char study[65];
    mt_tag_series_t s;
} off_series_t;

typedef struct off_tags {
    off_series_t **v;
    size_t n;
} off_tags_t;

static void off_add(off_tags_t *t, const mt_tag_inst_t *in)
{
    off_series_t *se = NULL;
    for (size_t i = 0; i < t->n && !se; i++)
        if (!strcmp(t->v[i]->s.h.series_uid, in->series_uid))
            se = t->v[i];
    if (!se) {
        t->v = mt_realloc(t->v, (t->n + 1) * sizeof *t->v);
        se = t->v[t->n++] = mt_calloc(1, sizeof *se);
        snprintf(se->study, sizeof se->study, "%s", in->study_uid);
        mt_tag_series_init(&se->s);
    }
    mt_tag_series_add(&se->s, in);
}

static void off_run(off_tags_t *t)
{
    mt_tag_series_t **arr = mt_malloc((t->n ? t->n : 1) * sizeof *arr);
    for (size_t i = 0; i < t->n; i++)
        mt_tag_series_finish(&t->v[i]->s);
    for (size_t i = 0; i < t->n; i++) { /* one exam-level pass per study */
        bool first = true;
        for (size_t k = 0; k < i && first; k++)
            first = strcmp(t->v[k]->study, t->v[i]->study) != 0;
        if (!first)
            continue;
        size_t n = 0;
        for (size_t k = i; k < t->n; k++)
            if (!strcmp(t->v[k]->study, t->v[i]->study))
                arr[n++] = &t->v[k]->s;
        mt_tag_study_t st = {arr, n, false, false, {0, 0, 0}, false, -1, NAN};
        mt_tag_study_run(&st);
    }
    mt_free(arr);
}

static const char *off_tag(const off_tags_t *t, const char *series_uid)
{
    for (size_t i = 0; series_uid && i < t->n; i++)
        if (!strcmp(t->v[i]->s.h.series_uid, series_uid))
            return t->v[i]->s.res.tag;
    return NULL;
}

static void off_free(off_tags_t *t)
{
    for (size_t i = 0; i < t->n; i++) {
        mt_tag_series_dispose(&t->v[i]->s);
        mt_free(t->v[i]);
    }
    mt_free(t->v);
}

/* Read and parse one file (stderr says why not). */
static int load_file(const char *path, mt_meta_t *meta, mt_ds_t **ds)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = mt_deid_read_file(path, (size_t)4 << 30, &buf, &len);
    if (rc) {
        fprintf(stderr, "%s: cannot read: %s\n", path, mt_strerror(rc));
        return 1;
    }
    mt_diag_t diag = {0, NULL};
    rc = mt_part10_parse_file_buf(buf, len, meta, ds, &diag);
    mt_free(buf);
    if (rc) {
        fprintf(stderr, "%s: not a DICOM file: %s at %llu\n", path,
                diag.reason ? diag.reason : mt_strerror(rc), (unsigned long long)diag.offset);
        return 1;
    }
    return 0;
}

static void tag_files(off_tags_t *t, char **paths, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mt_meta_t meta;
        mt_ds_t *ds = NULL;
        if (load_file(paths[i], &meta, &ds))
            continue;
        const mt_ts_t *ts = mt_ts_find(meta.transfer_syntax_uid);
        mt_tag_inst_t in;
        if (mt_tag_extract(ds, ts && ts->big_endian, &in) == 0)
            off_add(t, &in);
        mt_tag_inst_dispose(&in);
        mt_ds_free(ds);
    }
    off_run(t);
}

static const char usage_queue[] =
    "usage: mitral queue list|retry|purge [-c FILE] [--data DIR] [--dest NAME] [options]\n"
    "\n"
    "  list   [--dead]        the forwarding queue, oldest first (--dead: dead-letter only)\n"
    "  retry  [--all] [ID...] dead entries (--all: every entry; or these ids) become due now,\n"
    "                         their attempts and age counted afresh\n"
    "  purge  [--all] [ID...] delete dead entries (--all: every entry; or these ids)\n";

static void line_list(const char *what, const char *const *v, size_t n)
{
    printf("  %-9s", what);
    if (!n)
        printf(" -");
    for (size_t i = 0; i < n; i++)
        printf("%s%s", i ? ", " : " ", v[i]);
    printf("\n");
}

static int test_file(const mt_conf_t *c, const char *path, const mt_route_input_t *tmpl,
                     const char *url_project, bool http, const off_tags_t *tags)
{
    mt_meta_t meta;
    mt_ds_t *ds = NULL;
    if (load_file(path, &meta, &ds))
        return 1;
    const mt_ts_t *ts = mt_ts_find(meta.transfer_syntax_uid);
    mt_route_attrs_t *a = mt_route_attrs_new(c->routes);
    for (size_t i = 0; i < mt_ds_count(ds); i++) {
        const mt_ds_elem_t *e = mt_ds_at(ds, i);
        if (e->tag >= MT_TAG_PIXEL_DATA)
            break;
        mt_route_attrs_offer(a, e->tag, e->vr, e->vr == MT_VR('S', 'Q') ? NULL : e->value, e->len,
                             ts && ts->big_endian);
    }
    mt_route_input_t in = *tmpl;
    in.attrs = a;
    mt_route_decision_t d;
    mt_route_decide(c->routes, &in, &d);
    printf("%s\n", path);
    if (!d.n_rules)
        printf("  matched   no rule%s\n", c->routes ? "" : " (routing.rules is none)");
    else
        line_list(d.used_default ? "default" : "matched", d.rules, d.n_rules);
    if (d.reject && http) {
        printf("  reject    STOW-RS: in FailedSOPSequence, FailureReason 0124 (Refused: Not "
               "Authorized), Warning \"%s\"; nothing stored\n",
               d.reject_reason);
    } else if (d.reject) {
        printf("  reject    C-STORE answered 0124 (Refused: Not Authorized): \"%s\"; "
               "nothing stored\n",
               d.reject_reason);
    } else {
        /* a project-scoped STOW-RS: the URL's project joins the rules' ones */
        const char *projects[MT_ROUTE_MAX_TARGETS + 1];
        size_t n_projects = 0;
        if (url_project)
            projects[n_projects++] = url_project;
        for (size_t i = 0; i < d.n_projects; i++)
            if (!url_project || strcmp(d.projects[i], url_project) != 0)
                projects[n_projects++] = d.projects[i];
        line_list("projects", projects, n_projects);
        if (!d.deid)
            printf("  deid      %s (node-wide deid.profile)\n", c->deid_profile);
        else
            printf("  deid      %s\n", d.deid);
        line_list("forward", d.forward, d.n_forward);
        if (d.n_armed)
            line_list("armed", d.armed, d.n_armed);
        if (d.n_armed && !tags)
            printf("            (rules on cmr_series: they apply after tagging, when the series "
                   "is tagged; --tag shows the outcome)\n");
        if (d.n_armed && tags) {
            char uid[65] = "";
            mt_ds_get_string(ds, MT_TAG(0x0020, 0x000E), uid, sizeof uid);
            const char *tag = off_tag(tags, uid);
            mt_route_decision_t t;
            mt_route_after_tag(c->routes, tag, d.armed, d.n_armed, &t);
            printf("  after tagging, series tag %s:\n", tag ? tag : "(not tagged)");
            line_list("matched", t.rules, t.n_rules);
            line_list("projects", t.projects, t.n_projects);
            line_list("forward", t.forward, t.n_forward);
        }
    }
    mt_route_attrs_free(a);
    mt_ds_free(ds);
    return 0;
}

/* The files `route test` looks at: its arguments, directories walked (util/walk.h). */
typedef struct {
    char **v;
    size_t n, cap;
    unsigned unreadable;
} path_list_t;

static void path_add(void *u, const char *path)
{
    path_list_t *pl = u;
    if (pl->n == pl->cap) {
        pl->cap = pl->cap ? 2 * pl->cap : 16;
        pl->v = mt_realloc(pl->v, pl->cap * sizeof *pl->v);
    }
    pl->v[pl->n++] = mt_strdup(path);
}

static void path_unreadable(void *u, const char *path, int errnum)
{
    path_list_t *pl = u;
    fprintf(stderr, "mitral route test: %s: %s\n", path, strerror(errnum));
    pl->unreadable++;
}

int mt_route_cli(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "test") != 0) {
        fputs(usage_route, argc < 2 ? stderr : stdout);
        return argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) ? 0 : 2;
    }
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},
        {"calling", required_argument, 0, 'A'},
        {"called", required_argument, 0, 'B'},
        {"peer", required_argument, 0, 'P'},
        {"help", no_argument, 0, 'h'},
        {"tag", no_argument, 0, 'T'},
        {"http", no_argument, 0, 'H'},
        {"project", required_argument, 0, 'J'},
        {"user", required_argument, 0, 'U'},
        {0, 0, 0, 0},
    };
    bool tag = false, http = false;
    const char *cfile = NULL, *calling = "ROUTETEST", *called = NULL, *peer = "127.0.0.1";
    const char *project = NULL, *user = NULL;
    int ch;
    optind = 1;
    argc--;
    argv++;
    while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            cfile = optarg;
            break;
        case 'A':
            calling = optarg;
            break;
        case 'B':
            called = optarg;
            break;
        case 'P':
            peer = optarg;
            break;
        case 'T':
            tag = true;
            break;
        case 'H':
            http = true;
            break;
        case 'J':
            project = optarg;
            http = true;
            break;
        case 'U':
            user = optarg;
            http = true;
            break;
        case 'h':
            fputs(usage_route, stdout);
            return 0;
        default:
            fputs(usage_route, stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        fputs(usage_route, stderr);
        return 2;
    }
    char err[512];
    mt_conf_t *c = mt_conf_for_command(cfile, NULL);
    if (!c)
        return 2;
    if (mt_route_load_conf(c, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        mt_conf_free(c);
        return 2;
    }
    mt_route_input_t in = {.calling_ae = calling, .called_ae = called ? called : c->ae_title,
                           .peer = peer};
    if (http) { /* as node/http/stow.c route_decide */
        const mt_conf_project_t *pj = project ? mt_conf_project_by_name(c, project) : NULL;
        if (project && !pj) {
            fprintf(stderr, "mitral route test: no project %s in the config\n", project);
            mt_conf_free(c);
            return 2;
        }
        in.calling_ae = NULL;
        in.called_ae = pj ? pj->ae_title : c->ae_title;
        in.user = user;
    }
    path_list_t pl = {NULL, 0, 0, 0};
    const mt_walk_cb_t walk = {.file = path_add, .error = path_unreadable, .u = &pl};
    for (int i = optind; i < argc; i++) /* directories walked, as `mitral send` does */
        mt_walk_files(argv[i], &walk);
    int rc = pl.unreadable ? 1 : 0;
    off_tags_t tags = {NULL, 0};
    if (tag)
        tag_files(&tags, pl.v, pl.n);
    for (size_t i = 0; i < pl.n; i++)
        rc |= test_file(c, pl.v[i], &in, project, http, tag ? &tags : NULL);
    off_free(&tags);
    for (size_t i = 0; i < pl.n; i++)
        mt_free(pl.v[i]);
    mt_free(pl.v);
    mt_conf_free(c);
    return rc;
}

static int print_entry(void *u, const mt_index_queue_entry_t *e)
{
    size_t *n = u;
    char q[32], nx[32];
    time_t t = (time_t)(e->queued_at_ms / 1000);
    struct tm tm;
    strftime(q, sizeof q, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    t = (time_t)(e->next_at_ms / 1000);
    strftime(nx, sizeof nx, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    if (!*n)
        printf("%-8s %-12s %-7s %-8s %-20s %-20s %s\n", "id", "destination", "state", "attempts",
               "queued", "next", "sop_instance_uid / last error");
    printf("%-8lld %-12s %-7s %-8u %-20s %-20s %s%s%s\n", (long long)e->id, e->destination,
           e->dead ? "dead" : "pending", e->attempts, q, e->dead ? "-" : nx, e->sop_instance_uid,
           e->last_error ? " / " : "", e->last_error ? e->last_error : "");
    (*n)++;
    return 0;
}

/* A queue entry id: a positive decimal number, nothing else. */
static bool queue_id(const char *a, int64_t *id)
{
    char *end;
    errno = 0;
    long long v = strtoll(a, &end, 10);
    if (a[0] < '1' || a[0] > '9' || *end || errno == ERANGE)
        return false;
    *id = v;
    return true;
}

int mt_queue_cli(int argc, char **argv)
{
    bool help = false; /* anywhere: `mitral queue list --help` as `mitral queue --help` */
    for (int i = 1; i < argc; i++)
        help = help || !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h");
    if (argc < 2 || help) {
        fputs(usage_queue, help ? stdout : stderr);
        return help ? 0 : 2;
    }
    const char *what = argv[1];
    bool list = !strcmp(what, "list"), retry = !strcmp(what, "retry"),
         purge = !strcmp(what, "purge");
    if (!list && !retry && !purge) {
        fprintf(stderr, "mitral queue: unknown subcommand '%s'\n%s", what, usage_queue);
        return 2;
    }
    const char *cfile = NULL, *data = NULL, *dest = NULL;
    bool dead = false, all = false;
    int64_t ids[256];
    size_t n_ids = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-c") || !strcmp(a, "--config")) && i + 1 < argc)
            cfile = argv[++i];
        else if ((!strcmp(a, "-d") || !strcmp(a, "--data")) && i + 1 < argc)
            data = argv[++i];
        else if (!strcmp(a, "--dest") && i + 1 < argc)
            dest = argv[++i];
        else if (!strcmp(a, "--dead") && list)
            dead = true;
        else if (!strcmp(a, "--all") && !list)
            all = true;
        else if (!list && n_ids < 256 && queue_id(a, &ids[n_ids]))
            n_ids++;
        else {
            fprintf(stderr, "mitral queue: unexpected argument '%s'\n%s", a, usage_queue);
            return 2;
        }
    }
    if (n_ids && (dest || all)) {
        fprintf(stderr, "mitral queue %s: ids name the entries: no --dest or --all with them\n%s",
                what, usage_queue);
        return 2;
    }
    mt_conf_t *c = mt_conf_for_command(cfile, data);
    if (!c)
        return 2;
    mt_index_t *ix = NULL;
    int rc = mt_index_sqlite_open(c->index_path, &ix);
    if (rc) {
        fprintf(stderr, "mitral queue: %s: %s\n", c->index_path, mt_strerror(rc));
        mt_conf_free(c);
        return 1;
    }
    size_t n = 0, changed = 0;
    bool missing = false; /* an id given that names no entry */
    if (list) {
        rc = ix->ops->queue_list(ix, dest, dead ? 1 : -1, -1, 0, 0, print_entry, &n);
        if (!rc)
            printf("%zu entr%s\n", n, n == 1 ? "y" : "ies");
    } else if (n_ids) {
        for (size_t i = 0; i < n_ids && !rc; i++) {
            rc = retry ? ix->ops->queue_retry(ix, NULL, ids[i], false, &n)
                       : ix->ops->queue_purge(ix, NULL, ids[i], false, &n);
            changed += n;
            if (!rc && !n) {
                fprintf(stderr, "mitral queue %s: no entry %lld\n", what, (long long)ids[i]);
                missing = true;
            }
        }
    } else {
        rc = retry ? ix->ops->queue_retry(ix, dest, 0, !all, &changed)
                   : ix->ops->queue_purge(ix, dest, 0, !all, &changed);
    }
    if (!rc && !list)
        printf("%s %zu entr%s\n", retry ? "retrying" : "purged", changed,
               changed == 1 ? "y" : "ies");
    if (rc)
        fprintf(stderr, "mitral queue %s: %s\n", what, mt_strerror(rc));
    ix->ops->close(ix);
    mt_conf_free(c);
    return rc || missing ? 1 : 0;
}
