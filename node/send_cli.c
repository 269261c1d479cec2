/*
 * send_cli.c - `mitral send --to AE@host:port [--aet OURS] FILES|DIRS...`: a C-STORE SCU for
 * admins. Directories are walked recursively; every Part 10 file (preamble + DICM + meta) is
 * sent over ONE association (node/scu.c) proposing the SOP classes and transfer syntaxes found
 * (retrieve.c's rules: the file's syntax first; Explicit/Implicit VR Little Endian too when the
 * pixel data is native, so a peer that refuses the stored syntax gets a re-encoded copy).
 * Files are streamed from disk in chunks (retrieve.c), never held whole unless re-encoded.
 *
 * Output: one line per file: "OK|WARN|FAIL <status> <path>[: why]", then a summary line.
 * Exit: 0 all sent, 1 some failed or warned, 2 usage, 3 no association (refused, unreachable).
 */
#include "send_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "dicom/ds.h"
#include "negotiate.h"
#include "scu.h"
#include "svc/retrieve.h"
#include "util/alloc.h"
#include "util/err.h"
#include "util/log.h"
#include "util/walk.h"

static const char usage_send[] =
    "usage: mitral send --to AE@HOST:PORT [--aet OURS] [--timeout SECONDS] [-v] FILES|DIRS...\n"
    "\n"
    "Sends DICOM Part 10 files to a Storage SCP (C-STORE SCU) over one association.\n"
    "Directories are walked recursively; files that are not DICOM Part 10 are skipped.\n"
    "\n"
    "  --to AE@HOST:PORT  the called AE title and address of the destination\n"
    "  --aet OURS         our calling AE title (default MITRAL)\n"
    "  --timeout SECONDS  association set-up and response time-out (default 30)\n"
    "  -v, --verbose      log the association (debug)\n"
    "\n"
    "Prints one line per file: OK|WARN|FAIL STATUS PATH, then a summary.\n"
    "Exit status: 0 all stored, 1 some failed or had warnings, 2 usage, 3 no association.\n";

typedef struct send_ctx {
    mt_subop_inst_t *insts;
    size_t n, cap;
    unsigned skipped;
    mt_retrieve_t *r;
    mt_scu_t *scu;
    int exit_code;
    uint64_t t0;
} send_ctx_t;

static int add_file(send_ctx_t *c, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "SKIP %s: %s\n", path, strerror(errno));
        c->skipped++;
        return 0;
    }
    uint8_t buf[65536];
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    mt_meta_t meta;
    size_t consumed = 0;
    mt_diag_t d = {0, NULL};
    if (n <= 0 || mt_part10_read_meta(buf, (size_t)n, &meta, &consumed, &d) != 0 ||
        !meta.sop_class_uid[0] || !meta.sop_instance_uid[0] || !meta.transfer_syntax_uid[0]) {
        fprintf(stderr, "SKIP %s: not a DICOM Part 10 file with a complete file meta\n", path);
        c->skipped++;
        return 0;
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->insts = mt_realloc(c->insts, c->cap * sizeof *c->insts);
    }
    mt_subop_inst_t *s = &c->insts[c->n++];
    memset(s, 0, sizeof *s);
    snprintf(s->sop_class, sizeof s->sop_class, "%s", meta.sop_class_uid);
    snprintf(s->sop_inst, sizeof s->sop_inst, "%s", meta.sop_instance_uid);
    snprintf(s->ts, sizeof s->ts, "%s", meta.transfer_syntax_uid);
    char *abs = realpath(path, NULL);
    s->path = mt_strdup(abs ? abs : path);
    free(abs);
    return 0;
}

static void add_walked(void *u, const char *path)
{
    add_file(u, path);
}

static void skip_unreadable(void *u, const char *path, int errnum)
{
    send_ctx_t *c = u;
    fprintf(stderr, "SKIP %s: %s\n", path, strerror(errnum));
    c->skipped++;
}

static void on_subop(void *user, const mt_subop_inst_t *in, bool sent, uint16_t status,
                     const char *why)
{
    (void)user;
    if (!sent)
        printf("FAIL ---- %s: %s\n", in->path, why ? why : "not sent");
    else if (status == 0)
        printf("OK   0000 %s\n", in->path);
    else if ((status & 0xF000) == 0xB000)
        printf("WARN %04X %s\n", status, in->path);
    else
        printf("FAIL %04X %s\n", status, in->path);
}

static void on_done(mt_retrieve_t *r, void *user)
{
    send_ctx_t *c = user;
    mt_retrieve_counts_t k = mt_retrieve_counts(r);
    double s = (double)(uv_hrtime() - c->t0) / 1e9;
    double mb = (double)mt_retrieve_bytes(r) / 1e6;
    printf("sent %u, warnings %u, failed %u, skipped %u: %.1f MB in %.2f s (%.1f MB/s)\n",
           k.completed, k.warning, k.failed, c->skipped, mb, s, s > 0 ? mb / s : 0.0);
    c->exit_code = (k.failed || k.warning) ? 1 : 0;
    if (c->scu)
        mt_scu_release(c->scu);
}

static void on_open(mt_scu_t *s, int status, void *user)
{
    send_ctx_t *c = user;
    (void)s;
    if (status < 0) {
        const mt_negotiated_t *n = mt_scu_negotiated(s);
        if (status == MT_EREJECTED)
            fprintf(stderr, "mitral send: association rejected (result %u, source %u, reason %u)\n",
                    n->rj_result, n->rj_source, n->rj_reason);
        else
            fprintf(stderr, "mitral send: no association: %s\n", mt_strerror(status));
        c->scu = NULL;
        c->exit_code = 3;
        return;
    }
    mt_retrieve_start(c->r);
}

static void on_close(mt_scu_t *s, int status, void *user)
{
    send_ctx_t *c = user;
    (void)s;
    c->scu = NULL;
    if (status < 0 && c->exit_code == 0)
        c->exit_code = 1;
}

int mt_send_cli_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"to", required_argument, NULL, 't'},      {"aet", required_argument, NULL, 'a'},
        {"timeout", required_argument, NULL, 'T'}, {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    const char *to = NULL, *aet = "MITRAL";
    unsigned timeout_s = 30;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "t:a:T:vh", opts, NULL)) != -1) {
        switch (ch) {
        case 't':
            to = optarg;
            break;
        case 'a':
            aet = optarg;
            break;
        case 'T':
            timeout_s = (unsigned)strtoul(optarg, NULL, 10);
            if (timeout_s == 0 || timeout_s > 86400) {
                fprintf(stderr, "mitral send: --timeout: 1-86400 seconds\n");
                return 2;
            }
            break;
        case 'v':
            mt_log_level = MT_LOG_DEBUG;
            break;
        case 'h':
            fputs(usage_send, stdout);
            return 0;
        default:
            fputs(usage_send, stderr);
            return 2;
        }
    }
    if (!to || optind >= argc) {
        fputs(usage_send, stderr);
        return 2;
    }
    char ae[17], host[256];
    const char *at = strchr(to, '@'), *colon = strrchr(to, ':');
    if (!at || !colon || colon < at || at == to || (size_t)(at - to) > 16 ||
        (size_t)(colon - at - 1) >= sizeof host || colon == at + 1) {
        fprintf(stderr, "mitral send: --to must be AE@HOST:PORT\n");
        return 2;
    }
    char *end = NULL;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (!end || *end || port < 1 || port > 65535) {
        fprintf(stderr, "mitral send: bad port in --to\n");
        return 2;
    }
    snprintf(ae, sizeof ae, "%.*s", (int)(at - to), to);
    snprintf(host, sizeof host, "%.*s", (int)(colon - at - 1), at + 1);
    if (host[0] == '[' && host[strlen(host) - 1] == ']') { /* [::1] */
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = 0;
    }
    if (strlen(aet) > 16) {
        fprintf(stderr, "mitral send: --aet: at most 16 characters\n");
        return 2;
    }

    send_ctx_t c;
    memset(&c, 0, sizeof c);
    const mt_walk_cb_t walk = {.file = add_walked, .error = skip_unreadable, .u = &c};
    for (int i = optind; i < argc; i++)
        mt_walk_files(argv[i], &walk);
    if (c.n == 0) {
        fprintf(stderr, "mitral send: no DICOM files to send\n");
        mt_free(c.insts);
        return 1;
    }
    mt_nego_proposal_t *pcs = mt_calloc(MT_NEGO_MAX_PCS, sizeof *pcs);
    bool truncated = false;
    size_t n_pcs = mt_retrieve_proposals(c.insts, c.n, pcs, MT_NEGO_MAX_PCS, &truncated);
    if (truncated)
        fprintf(stderr,
                "mitral send: more than %d presentation contexts needed; files of the "
                "other SOP classes will fail\n",
                MT_NEGO_MAX_PCS);

    signal(SIGPIPE, SIG_IGN); /* a peer that closes early: EPIPE on its association */
    uv_loop_t loop;
    uv_loop_init(&loop);
    mt_scu_params_t sp = {.calling_ae = aet,
                          .called_ae = ae,
                          .host = host,
                          .port = (uint16_t)port,
                          .pcs = pcs,
                          .n_pcs = n_pcs,
                          .connect_timeout_ms = timeout_s * 1000,
                          .dimse_timeout_ms = timeout_s * 1000};
    c.t0 = uv_hrtime();
    int rc = mt_scu_open(&loop, &sp, on_open, on_close, &c, &c.scu);
    mt_free(pcs);
    mt_retrieve_params_t rp = {.loop = &loop, .on_done = on_done, .on_subop = on_subop, .user = &c};
    if (rc == 0)
        rp.link = mt_scu_link(c.scu);
    c.r = mt_retrieve_new(&rp, c.insts, c.n);
    if (rc < 0) {
        fprintf(stderr, "mitral send: %s\n", mt_strerror(rc));
        mt_retrieve_free(c.r);
        uv_loop_close(&loop);
        return 2;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    mt_retrieve_free(c.r);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return c.exit_code;
}
