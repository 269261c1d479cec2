/*
 * main.c - the mitral command line.
 *
 *   mitral serve [-c FILE] [--port N] [--aet TITLE] [--bind ADDR] [--data DIR]
 *   mitral dump FILE...
 *   mitral tag [--header] FILES|DIRS...
 *   mitral report protocols [-c FILE] [--data DIR] [--project P] [--from DATE] [--to DATE]
 *                           [--by manufacturer] [--format csv|json|table]
 *   mitral index stats   [-c FILE] [--data DIR]
 *   mitral index rebuild [-c FILE] [--data DIR]
 *   mitral deid --profile NAME|FILE --key FILE IN... OUT_DIR   (node/deid/cli.c)
 *   mitral project list|show NAME|add NAME|remove NAME [--study UID...] [--query 'TERMS']
 *                  [-c FILE] [--data DIR]
 *   mitral send --to AE@HOST:PORT [--aet OURS] FILES|DIRS...      (node/send_cli.c)
 *   mitral --version | --help | <command> --help
 *
 * Flags override the config file; --data DIR puts storage (DIR/storage) and the index
 * (DIR/index.sqlite) under DIR, so a node can run with no config file at all.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/auth.h"
#include "conf/conf.h"
#include "deid/cli.h"
#include "dicom/ds.h"
#include "index/index.h"
#include "index/query.h"
#include "index/rebuild.h"
#include "node.h"
#include "tag/report.h"
#include "quarantine_cli.h"
#include "send_cli.h"
#include "route_cli.h"
#include "tag_cli.h"
#include "util/alloc.h"
#include "util/err.h"
#include "util/log.h"

#ifndef MT_VERSION
#define MT_VERSION "0.0.0"
#endif

static const char usage_main[] =
    "usage: mitral <command> [options]\n"
    "\n"
    "A DICOM node (Storage SCP with a durable file store and an embedded index) for\n"
    "cardiovascular MR research registries.\n"
    "\n"
    "commands:\n"
    "  serve          run the node (C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET, commitment)\n"
    "  dump FILE...   print the data set of DICOM files\n"
    "  tag FILES|DIRS tag CMR series offline (SeriesInstanceUID,tag,view,confidence,evidence)\n"
    "  report protocols  per-exam protocol report of the tagged series (SCMR Table 4 layout)\n"
    "  index stats    count patients, studies, series, instances and bytes in the index\n"
    "  index rebuild  re-create the index from the files in storage\n"
    "  deid           de-identify DICOM files offline (PS3.15 profiles, keyed pseudonyms)\n"
    "  quarantine     list, release or purge instances quarantined for burned-in annotation\n"
    "  project        list / show / add / remove the studies of project folders\n"
    "  route test     show which routing rules match DICOM files and what they would do\n"
    "  queue          list / retry / purge the forwarding queue\n"
    "  send           send DICOM files to a Storage SCP (C-STORE SCU)\n"
    "  passwd         hash a DICOMweb password or token (stdin) for users: in the config\n"
    "\n"
    "  mitral --version | mitral <command> --help\n";

static const char usage_serve[] =
    "usage: mitral serve [-c FILE] [--port N] [--aet TITLE] [--bind ADDR] [--data DIR]\n"
    "\n"
    "  -c, --config FILE  YAML config (see conf/mitral.yaml for every key)\n"
    "  -p, --port N       TCP port to listen on (default 11112)\n"
    "  -a, --aet TITLE    the node's AE title (default MITRAL)\n"
    "  -b, --bind ADDR    address to listen on (default 0.0.0.0)\n"
    "  -d, --data DIR     storage in DIR/storage, index in DIR/index.sqlite\n"
    "\n"
    "SIGTERM/SIGINT stop gracefully; SIGHUP reloads the config file.\n";

static const char usage_dump[] = "usage: mitral dump FILE...\n"
                                 "\n"
                                 "Prints the file meta information and the data set of each file,\n"
                                 "one element a line, nested items indented.\n";

static const char usage_index[] = "usage: mitral index stats|rebuild [-c FILE] [--data DIR]\n"
                                  "\n"
                                  "  stats    patients, studies, series, instances and bytes\n"
                                  "  rebuild  delete the index and re-create it from every file\n"
                                  "           under the storage root (the node must be stopped)\n";

static int wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    return 0;
}

/* Which of serve's flags were given (they override the file, on SIGHUP too). */
struct serve_flags {
    bool aet, port, bind;
};

/* Parse -c/--port/--aet/--bind/--data into a config. NULL on error (message printed). */
static mt_conf_t *conf_from_args(int argc, char **argv, bool serve_flags, char **conf_path,
                                 struct serve_flags *given)
{
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"port", required_argument, 0, 'p'},
        {"aet", required_argument, 0, 'a'},    {"bind", required_argument, 0, 'b'},
        {"data", required_argument, 0, 'd'},   {0, 0, 0, 0},
    };
    const char *cfile = NULL, *port = NULL, *aet = NULL, *bind = NULL, *data = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:p:a:b:d:", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': cfile = optarg; break;
        case 'p': port = optarg; break;
        case 'a': aet = optarg; break;
        case 'b': bind = optarg; break;
        case 'd': data = optarg; break;
        default: return NULL;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mitral: unexpected argument '%s'\n", argv[optind]);
        return NULL;
    }
    if (!serve_flags && (port || aet || bind)) {
        fprintf(stderr, "mitral: --port/--aet/--bind only apply to 'serve'\n");
        return NULL;
    }
    char why[160], ae[17];
    if (aet && mt_conf_parse_ae(aet, ae, why, sizeof why) != 0) {
        fprintf(stderr, "mitral: --aet: %s\n", why);
        return NULL;
    }
    if (bind && mt_conf_check_bind(bind, why, sizeof why) != 0) {
        fprintf(stderr, "mitral: --bind: %s\n", why);
        return NULL;
    }
    mt_conf_t *c = mt_conf_for_command(cfile, data);
    if (!c)
        return NULL;
    if (port) {
        char *end;
        long v = strtol(port, &end, 10);
        if (*end || v < 1 || v > 65535) {
            fprintf(stderr, "mitral: --port: '%s' is not a port number (1-65535)\n", port);
            mt_conf_free(c);
            return NULL;
        }
        c->port = (uint16_t)v;
    }
    if (aet)
        memcpy(c->ae_title, ae, sizeof ae);
    const mt_conf_project_t *clash = aet ? mt_conf_project_by_ae(c, c->ae_title) : NULL;
    if (clash) { /* the file's check (conf.c) saw node.ae_title, not the flag */
        fprintf(stderr, "mitral: --aet: %s is the AE title of project %s\n", clash->ae_title,
                clash->name);
        mt_conf_free(c);
        return NULL;
    }
    if (bind)
        snprintf(c->bind, sizeof c->bind, "%s", bind);
    if (conf_path)
        *conf_path = cfile ? mt_strdup(cfile) : NULL;
    if (given)
        *given = (struct serve_flags){aet != NULL, port != NULL, bind != NULL};
    return c;
}

/* mkdir -p for the data directories (the index file's directory and the storage root). */
static int ensure_dir(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return MT_ERR_FROM_ERRNO();
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return MT_ERR_FROM_ERRNO();
    return 0;
}

static int ensure_parent_dir(const char *file)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", file);
    char *slash = strrchr(buf, '/');
    if (!slash || slash == buf)
        return 0;
    *slash = '\0';
    return ensure_dir(buf);
}

static int cmd_serve(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        fputs(usage_serve, stdout);
        return 0;
    }
    char *conf_path = NULL;
    struct serve_flags given;
    mt_conf_t *c = conf_from_args(argc, argv, true, &conf_path, &given);
    if (!c)
        return 2;
    if (ensure_dir(c->storage_root) != 0 || ensure_parent_dir(c->index_path) != 0) {
        fprintf(stderr, "mitral: cannot create %s: %s\n", c->storage_root, strerror(errno));
        mt_conf_free(c);
        mt_free(conf_path);
        return 1;
    }
    mt_log_level = (mt_log_level_t)c->log_level;
    uv_loop_t loop;
    uv_loop_init(&loop);
    mt_node_t *node;
    mt_node_new(&loop, c, conf_path, &node);
    mt_node_keep_flags(node, given.aet, given.port, given.bind);
    mt_free(conf_path);
    int rc = mt_node_run(node);
    mt_node_free(node);
    uv_loop_close(&loop);
    return rc == 0 ? 0 : 1;
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return MT_ERR_FROM_ERRNO();
    mt_buf_t b;
    mt_buf_init(&b, (size_t)1 << 34);
    uint8_t chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if ((rc = mt_buf_append(&b, chunk, n)) != 0)
            break;
    if (ferror(f))
        rc = MT_EIO;
    fclose(f);
    if (rc) {
        mt_buf_dispose(&b);
        return rc;
    }
    *out = b.data;
    *len = b.len;
    return 0;
}

/* A regular file is mapped, not read: the dump touches only the pages it parses, so a 2 GB
 * multi-frame instance costs its header, not its size (*mapped: munmap, else mt_free). */
static int map_file(const char *path, uint8_t **out, size_t *len, bool *mapped)
{
    *mapped = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return MT_ERR_FROM_ERRNO();
    struct stat sb;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0) {
        void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED) {
            close(fd);
            *out = p;
            *len = (size_t)sb.st_size;
            *mapped = true;
            return 0;
        }
    }
    close(fd);
    return read_file(path, out, len); /* a pipe, an empty file, or mmap refused */
}

static int dump_one(const char *path)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    bool mapped;
    int rc = map_file(path, &buf, &len, &mapped);
    if (rc) {
        fprintf(stderr, "mitral dump: %s: %s\n", path, mt_strerror(rc));
        return 1;
    }
    if (len == 0) { /* no preamble, no meta, no element: not a DICOM file */
        mt_free(buf);
        fprintf(stderr, "mitral dump: %s: empty file\n", path);
        return 1;
    }
    mt_meta_t meta;
    mt_ds_t *ds = NULL;
    mt_diag_t diag = {0, NULL};
    rc = mt_part10_parse_file_view(buf, len, &meta, &ds, &diag);
    if (rc) {
        if (mapped)
            munmap(buf, len);
        else
            mt_free(buf);
        fprintf(stderr, "mitral dump: %s: %s at offset %llu: %s\n", path, mt_strerror(rc),
                (unsigned long long)diag.offset, diag.reason ? diag.reason : "");
        mt_ds_free(ds);
        return 1;
    }
    printf("# %s\n", path);
    if (meta.transfer_syntax_uid[0]) {
        const mt_ts_t *ts = mt_ts_find(meta.transfer_syntax_uid);
        printf("# File Meta Information\n");
        printf("(0002,0002) UI [%s]  MediaStorageSOPClassUID\n", meta.sop_class_uid);
        printf("(0002,0003) UI [%s]  MediaStorageSOPInstanceUID\n", meta.sop_instance_uid);
        printf("(0002,0010) UI [%s]  TransferSyntaxUID (%s)\n", meta.transfer_syntax_uid,
               ts ? ts->name : "unknown");
        printf("(0002,0012) UI [%s]  ImplementationClassUID\n", meta.impl_class_uid);
        if (meta.impl_version_name[0])
            printf("(0002,0013) SH [%s]  ImplementationVersionName\n", meta.impl_version_name);
        if (meta.source_ae[0])
            printf("(0002,0016) AE [%s]  SourceApplicationEntityTitle\n", meta.source_ae);
    }
    printf("# Dataset\n");
    mt_buf_t out;
    mt_buf_init(&out, (size_t)1 << 30);
    rc = mt_ds_dump(ds, &out);
    if (out.len) /* an empty data set leaves out.data NULL */
        fwrite(out.data, 1, out.len, stdout);
    mt_buf_dispose(&out);
    mt_ds_free(ds); /* before the buffer its values point into */
    if (mapped)
        munmap(buf, len);
    else
        mt_free(buf);
    return rc ? 1 : 0;
}

static int cmd_dump(int argc, char **argv)
{
    if (wants_help(argc, argv) || argc < 2) {
        fputs(usage_dump, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    int failed = 0;
    for (int i = 1; i < argc; i++)
        failed |= dump_one(argv[i]);
    return failed;
}

static const char usage_quarantine[] =
    "usage: mitral quarantine list [-c FILE] [--data DIR]\n"
    "       mitral quarantine release SOP_UID... [-c FILE] [--data DIR]\n"
    "       mitral quarantine purge (SOP_UID... | --all) [-c FILE] [--data DIR]\n"
    "\n"
    "Instances with Burned In Annotation YES under a profile with\n"
    "burned-in-annotation: quarantine are de-identified (header) and held in\n"
    "<storage>/.quarantine/<SOP_UID>.dcm: not indexed, not queryable, not forwarded.\n"
    "  list     one line per instance: SOP Instance UID (de-identified) and size\n"
    "  release  after review: store and index it as a normal instance (node stopped)\n"
    "  purge    delete it from the quarantine\n";

static int cmd_quarantine(int argc, char **argv)
{
    if (argc < 2 || wants_help(argc, argv)) {
        fputs(usage_quarantine, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *what = argv[1];
    if (strcmp(what, "list") != 0 && strcmp(what, "release") != 0 &&
        strcmp(what, "purge") != 0) {
        fprintf(stderr, "mitral quarantine: unknown subcommand '%s'\n%s", what, usage_quarantine);
        return 2;
    }
    /* options go to conf_from_args, the rest are SOP UIDs */
    char **opt = mt_calloc((size_t)argc + 1, sizeof *opt);
    char **uids = mt_calloc((size_t)argc + 1, sizeof *uids);
    int n_opt = 0, n_uids = 0;
    bool all = false;
    opt[n_opt++] = argv[0];
    for (int i = 2; i < argc; i++) {
        if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config") || !strcmp(argv[i], "-d") ||
             !strcmp(argv[i], "--data")) && i + 1 < argc) {
            opt[n_opt++] = argv[i];
            opt[n_opt++] = argv[++i];
        } else if (!strncmp(argv[i], "--config=", 9) || !strncmp(argv[i], "--data=", 7)) {
            opt[n_opt++] = argv[i];
        } else if (!strcmp(argv[i], "--all")) {
            all = true;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "mitral quarantine: unknown option '%s'\n%s", argv[i],
                    usage_quarantine);
            mt_free(opt);
            mt_free(uids);
            return 2;
        } else {
            uids[n_uids++] = argv[i];
        }
    }
    int rc = 2;
    bool need_uids = strcmp(what, "list") != 0;
    if ((need_uids && !n_uids && !all) || (all && strcmp(what, "purge") != 0) ||
        (all && n_uids) || (!need_uids && n_uids)) {
        fputs(usage_quarantine, stderr);
    } else {
        mt_conf_t *c = conf_from_args(n_opt, opt, false, NULL, NULL);
        if (c) {
            rc = mt_quarantine_cli(c->storage_root, c->index_path, what, n_uids, uids, all);
            mt_conf_free(c);
        }
    }
    mt_free(opt);
    mt_free(uids);
    return rc;
}

static int cmd_index(int argc, char **argv)
{
    if (argc < 2 || (wants_help(argc, argv))) {
        fputs(usage_index, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *what = argv[1];
    mt_conf_t *c = conf_from_args(argc - 1, argv + 1, false, NULL, NULL);
    if (!c)
        return 2;
    int rc;
    mt_index_stats_t st;
    memset(&st, 0, sizeof st);
    struct stat sb;
    if (strcmp(what, "stats") == 0) {
        mt_index_t *ix;
        /* stats only reads: a mistyped --data must not leave a new, empty index behind */
        if (stat(c->index_path, &sb) != 0) {
            fprintf(stderr, "mitral index stats: no index at %s (check -c / --data)\n",
                    c->index_path);
            mt_conf_free(c);
            return 1;
        }
        rc = mt_index_sqlite_open(c->index_path, &ix);
        if (rc == 0) {
            rc = ix->ops->stats(ix, &st);
            ix->ops->close(ix);
        }
        if (rc)
            fprintf(stderr, "mitral index stats: %s: %s\n", c->index_path, mt_strerror(rc));
    } else if (strcmp(what, "rebuild") == 0) {
        char err[512] = "";
        /* a storage root that is not there (not mounted, mistyped) would rebuild an empty
         * index over the real one */
        if (stat(c->storage_root, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            fprintf(stderr, "mitral index rebuild: storage root %s does not exist (check -c / "
                    "--data); the index is left as it is\n", c->storage_root);
            mt_conf_free(c);
            return 1;
        }
        rc = ensure_parent_dir(c->index_path);
        if (rc == 0)
            rc = mt_index_rebuild(c->storage_root, c->index_path, &st, err, sizeof err);
        if (rc)
            fprintf(stderr, "mitral index rebuild: %s\n", err[0] ? err : mt_strerror(rc));
    } else {
        fprintf(stderr, "mitral index: unknown subcommand '%s'\n%s", what, usage_index);
        mt_conf_free(c);
        return 2;
    }
    mt_conf_free(c);
    if (rc)
        return 1;
    printf("patients %llu\nstudies %llu\nseries %llu\ninstances %llu\nbytes %llu\n",
           (unsigned long long)st.patients, (unsigned long long)st.studies,
           (unsigned long long)st.series, (unsigned long long)st.instances,
           (unsigned long long)st.bytes);
    return 0;
}

static const char usage_project[] =
    "usage: mitral project list [-c FILE] [--data DIR]\n"
    "       mitral project show NAME [-c FILE] [--data DIR]\n"
    "       mitral project add NAME (--study UID... | --query 'TERMS') [-c FILE] [--data DIR]\n"
    "       mitral project remove NAME (--study UID... | --query 'TERMS') [-c FILE] [--data DIR]\n"
    "\n"
    "Projects are declared in the config file (projects:, see conf/mitral.yaml); their\n"
    "studies are a table of the index. TERMS select studies: space-separated\n"
    "KEYWORD=VALUE, KEYWORD>=VALUE, KEYWORD<=VALUE over indexed attributes of any level,\n"
    "with C-FIND matching (wildcards * ?, ranges, UID lists a\\b), e.g.\n"
    "  --query 'StudyDate>=20200101 Modality=MR PatientName=SMITH*'\n"
    "A study matches when any of its series / instances matches the series / instance terms.\n";

typedef struct uid_list {
    char **v;
    size_t n;
} uid_list_t;

static int collect_uid(void *user, const char *uid)
{
    uid_list_t *l = user;
    l->v = mt_realloc(l->v, (l->n + 1) * sizeof *l->v);
    l->v[l->n++] = mt_strdup(uid ? uid : "");
    return 0;
}

static void print_stats(const mt_index_stats_t *st)
{
    printf("patients %llu\nstudies %llu\nseries %llu\ninstances %llu\nbytes %llu\n",
           (unsigned long long)st->patients, (unsigned long long)st->studies,
           (unsigned long long)st->series, (unsigned long long)st->instances,
           (unsigned long long)st->bytes);
}

static int cmd_project(int argc, char **argv)
{
    if (argc < 2 || wants_help(argc, argv)) {
        fputs(usage_project, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *what = argv[1];
    const char *name = NULL, *cfile = NULL, *data = NULL, *query = NULL;
    uid_list_t uids = {NULL, 0};
    bool in_study = false;
    int i = 2;
    bool needs_name = strcmp(what, "list") != 0;
    if (needs_name) {
        if (argc < 3 || argv[2][0] == '-') {
            fprintf(stderr, "mitral project %s: NAME missing\n%s", what, usage_project);
            return 2;
        }
        name = argv[2];
        i = 3;
    }
    for (; i < argc; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) && i + 1 < argc) {
            cfile = argv[++i];
            in_study = false;
        } else if ((strcmp(a, "-d") == 0 || strcmp(a, "--data") == 0) && i + 1 < argc) {
            data = argv[++i];
            in_study = false;
        } else if (strcmp(a, "--query") == 0 && i + 1 < argc) {
            query = argv[++i];
            in_study = false;
        } else if (strcmp(a, "--study") == 0) {
            in_study = true;
        } else if (in_study && a[0] != '-') {
            collect_uid(&uids, a);
        } else {
            fprintf(stderr, "mitral project: unexpected argument '%s'\n%s", a, usage_project);
            goto usage_fail;
        }
    }
    bool change = strcmp(what, "add") == 0 || strcmp(what, "remove") == 0;
    if (!change && strcmp(what, "list") != 0 && strcmp(what, "show") != 0) {
        fprintf(stderr, "mitral project: unknown subcommand '%s'\n%s", what, usage_project);
        goto usage_fail;
    }
    if (change && !query && uids.n == 0) {
        fprintf(stderr, "mitral project %s: give --study UID... or --query 'TERMS'\n", what);
        goto usage_fail;
    }
    if (!change && (query || uids.n)) {
        fprintf(stderr, "mitral project %s: --study/--query only apply to add and remove\n",
                what);
        goto usage_fail;
    }
    mt_conf_t *c = mt_conf_for_command(cfile, data);
    if (!c)
        goto usage_fail;
    int rc = 0;
    const mt_conf_project_t *p = name ? mt_conf_project_by_name(c, name) : NULL;
    if (name && !p) {
        fprintf(stderr, "mitral project: no project '%s' in the config (projects:)\n", name);
        rc = 1;
        goto out;
    }
    mt_index_t *ix = NULL;
    if ((rc = mt_index_sqlite_open(c->index_path, &ix)) != 0) {
        fprintf(stderr, "mitral project: %s: %s\n", c->index_path, mt_strerror(rc));
        rc = 1;
        goto out;
    }
    if (!change) {
        size_t first = p ? (size_t)(p - c->projects) : 0;
        size_t last = p ? first + 1 : c->n_projects;
        if (!p && c->n_projects == 0)
            printf("no projects configured (projects: in the config file)\n");
        for (size_t k = first; k < last; k++) {
            const mt_conf_project_t *q = &c->projects[k];
            mt_index_stats_t st;
            if ((rc = ix->ops->project_stats(ix, q->name, &st)) != 0)
                break;
            if (p) {
                printf("name %s\nae_title %s\n", q->name, q->ae_title);
                if (q->description)
                    printf("description %s\n", q->description);
                printf("allowed_calling_aes");
                for (size_t j = 0; j < q->n_calling_ae_allow; j++)
                    printf(" %s", q->calling_ae_allow[j]);
                printf(q->n_calling_ae_allow ? "\n" : " (any)\n");
                print_stats(&st);
            } else {
                printf("%-24s %-16s studies=%llu instances=%llu  %s\n", q->name, q->ae_title,
                       (unsigned long long)st.studies, (unsigned long long)st.instances,
                       q->description ? q->description : "");
            }
        }
        ix->ops->close(ix);
        rc = rc ? 1 : 0;
        goto out;
    }
    if (query) {
        char err[256] = "";
        mt_query_t *q = NULL;
        mt_qdb_t *db = NULL;
        if (mt_query_from_text(query, MT_LEVEL_STUDY, &q, err, sizeof err) != 0) {
            fprintf(stderr, "mitral project %s: --query: %s\n", what, err);
            ix->ops->close(ix);
            rc = 2;
            goto out;
        }
        mt_qscope_t scope = {.project = strcmp(what, "remove") == 0 ? p->name : NULL};
        rc = mt_qdb_open(c->index_path, &db);
        if (rc == 0)
            rc = mt_qdb_study_uids(db, q, &scope, collect_uid, &uids);
        mt_qdb_close(db);
        mt_query_free(q);
        if (rc) {
            fprintf(stderr, "mitral project %s: query failed: %s\n", what, mt_strerror(rc));
            ix->ops->close(ix);
            rc = 1;
            goto out;
        }
    }
    size_t n_changed = 0, n_missing = 0;
    rc = ix->ops->begin(ix);
    for (size_t k = 0; rc == 0 && k < uids.n; k++) {
        bool changed = false;
        if (strcmp(what, "add") == 0) {
            rc = ix->ops->project_add(ix, p->name, uids.v[k], &changed);
            if (rc == MT_ENOENT) {
                fprintf(stderr, "mitral project add: study %s is not in the index\n", uids.v[k]);
                n_missing++;
                rc = 0;
            }
        } else {
            rc = ix->ops->project_remove(ix, p->name, uids.v[k], &changed);
        }
        n_changed += changed;
    }
    if (rc == 0)
        rc = ix->ops->commit(ix);
    else
        ix->ops->rollback(ix);
    if (rc) {
        fprintf(stderr, "mitral project %s: %s\n", what, mt_strerror(rc));
        rc = 1;
    } else {
        printf("%s %zu stud%s %s project %s (%zu selected", strcmp(what, "add") == 0 ? "added" : "removed",
               n_changed, n_changed == 1 ? "y" : "ies", strcmp(what, "add") == 0 ? "to" : "from",
               p->name, uids.n);
        if (n_missing)
            printf(", %zu not in the index", n_missing);
        printf(")\n");
        rc = n_missing ? 1 : 0;
    }
    ix->ops->close(ix);
out:
    mt_conf_free(c);
    for (size_t k = 0; k < uids.n; k++)
        mt_free(uids.v[k]);
    mt_free(uids.v);
    return rc;
usage_fail:
    for (size_t k = 0; k < uids.n; k++)
        mt_free(uids.v[k]);
    mt_free(uids.v);
    return 2;
}

static const char usage_report[] =
    "usage: mitral report protocols [-c FILE] [--data DIR] [--project P] [--from YYYYMMDD]\n"
    "                               [--to YYYYMMDD] [--by manufacturer] [--format csv|json|table]\n"
    "\n"
    "Number and %% of exams with at least one series of each CMR tag (cine 2CH/3CH/4CH/SAX,\n"
    "perfusion stress/rest, LGE by view, T1 native/post, T2, T2*, flow, MRA, black blood,\n"
    "TI scout, localizer, other, unknown), plus exams, series and %% unknown, from the tags the\n"
    "node wrote into its index (docs/tagging.md). Default format: table.\n";

struct report_ctx {
    mt_tag_report_t *r;
};

static int report_row(void *u, const mt_index_tag_t *t)
{
    struct report_ctx *c = u;
    mt_tag_report_add_series(c->r, t->study_uid, t->manufacturer, t->tag,
                             !(t->evidence && strstr(t->evidence, "r1.non_mr")));
    return 0;
}

static int cmd_report(int argc, char **argv)
{
    if (wants_help(argc, argv) || argc < 2 || strcmp(argv[1], "protocols") != 0) {
        fputs(usage_report, argc < 2 || wants_help(argc, argv) ? stdout : stderr);
        return wants_help(argc, argv) ? 0 : 2;
    }
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"data", required_argument, 0, 'd'},
        {"project", required_argument, 0, 'P'}, {"from", required_argument, 0, 'f'},
        {"to", required_argument, 0, 't'},     {"by", required_argument, 0, 'b'},
        {"format", required_argument, 0, 'F'}, {0, 0, 0, 0},
    };
    const char *cfile = NULL, *data = NULL, *project = NULL, *from = NULL, *to = NULL;
    bool by = false;
    mt_tag_report_fmt_t fmt = MT_TAG_REPORT_TABLE;
    int ch;
    optind = 1;
    argc--;
    argv++;
    while ((ch = getopt_long(argc, argv, "c:d:", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': cfile = optarg; break;
        case 'd': data = optarg; break;
        case 'P': project = optarg; break;
        case 'f': from = optarg; break;
        case 't': to = optarg; break;
        case 'b':
            if (strcmp(optarg, "manufacturer") != 0) {
                fprintf(stderr, "mitral report: --by manufacturer\n");
                return 2;
            }
            by = true;
            break;
        case 'F':
            if (!strcmp(optarg, "csv"))
                fmt = MT_TAG_REPORT_CSV;
            else if (!strcmp(optarg, "json"))
                fmt = MT_TAG_REPORT_JSON;
            else if (!strcmp(optarg, "table"))
                fmt = MT_TAG_REPORT_TABLE;
            else {
                fprintf(stderr, "mitral report: --format csv|json|table\n");
                return 2;
            }
            break;
        default: return 2;
        }
    }
    mt_conf_t *c = mt_conf_for_command(cfile, data);
    if (!c)
        return 2;
    char path[4096];
    snprintf(path, sizeof path, "%s", c->index_path);
    mt_conf_free(c);
    mt_index_t *ix;
    int rc = mt_index_sqlite_open(path, &ix);
    if (rc) {
        fprintf(stderr, "mitral report: %s: %s\n", path, mt_strerror(rc));
        return 1;
    }
    struct report_ctx ctx = {mt_tag_report_new()};
    rc = ix->ops->tag_each(ix, project, from, to, report_row, &ctx);
    ix->ops->close(ix);
    if (rc) {
        fprintf(stderr, "mitral report: %s\n", mt_strerror(rc));
        mt_tag_report_free(ctx.r);
        return 1;
    }
    mt_buf_t out;
    mt_buf_init(&out, (size_t)1 << 24);
    mt_tag_report_format(ctx.r, fmt, by, &out);
    fwrite(out.data, 1, out.len, stdout);
    mt_buf_dispose(&out);
    mt_tag_report_free(ctx.r);
    return 0;
}

/* mitral passwd [--iterations N]: read one secret line on stdin, print its hash. */
static int cmd_passwd(int argc, char **argv)
{
    unsigned it = 200000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--iterations") == 0 && i + 1 < argc) {
            it = (unsigned)strtoul(argv[++i], NULL, 10);
        } else {
            fputs("usage: mitral passwd [--iterations N] < secret\n"
                  "  Prints pbkdf2-sha256$N$SALT$HASH for users[].password or .token.\n",
                  strcmp(argv[i], "--help") == 0 ? stdout : stderr);
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    if (it < 1000 || it > 10000000) {
        fprintf(stderr, "mitral passwd: --iterations 1000-10000000\n");
        return 2;
    }
    char line[1024];
    if (!fgets(line, sizeof line, stdin)) {
        fprintf(stderr, "mitral passwd: no secret on stdin\n");
        return 1;
    }
    size_t n = strcspn(line, "\r\n");
    char out[256];
    int rc = mt_auth_hash(line, n, it, out, sizeof out);
    memset(line, 0, sizeof line);
    if (rc) {
        fprintf(stderr, "mitral passwd: %s\n", mt_strerror(rc));
        return 1;
    }
    printf("%s\n", out);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_main, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    /* libuv's pool (default 4 threads) runs every instance's temp-file write and the CMR
     * tagger's extract and pass jobs (a pass holds a thread for a whole study): with 8 or more
     * associations the writes would queue behind each other and behind a pass. 8 threads cost
     * only stacks; an explicit UV_THREADPOOL_SIZE wins. Read by libuv at its first work item. */
    setenv("UV_THREADPOOL_SIZE", "8", 0);
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("mitral %s (implementation class %s, %s)\n", MT_VERSION, MT_IMPL_CLASS_UID,
               MT_IMPL_VERSION_NAME);
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "dump") == 0)
        return cmd_dump(argc - 1, argv + 1);
    if (strcmp(cmd, "tag") == 0)
        return mt_tag_cli_main(argc - 1, argv + 1);
    if (strcmp(cmd, "report") == 0)
        return cmd_report(argc - 1, argv + 1);
    if (strcmp(cmd, "index") == 0)
        return cmd_index(argc - 1, argv + 1);
    if (strcmp(cmd, "deid") == 0)
        return mt_deid_cli(argc - 1, argv + 1);
    if (strcmp(cmd, "quarantine") == 0)
        return cmd_quarantine(argc - 1, argv + 1);
    if (strcmp(cmd, "route") == 0)
        return mt_route_cli(argc - 1, argv + 1);
    if (strcmp(cmd, "queue") == 0)
        return mt_queue_cli(argc - 1, argv + 1);
    if (strcmp(cmd, "project") == 0)
        return cmd_project(argc - 1, argv + 1);
    if (strcmp(cmd, "send") == 0)
        return mt_send_cli_main(argc - 1, argv + 1);
    if (strcmp(cmd, "passwd") == 0)
        return cmd_passwd(argc - 1, argv + 1);
    fprintf(stderr, "mitral: unknown command '%s'\n\n%s", cmd, usage_main);
    return 2;
}
