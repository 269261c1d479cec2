/*
 * capture_bench.c - what the CMR tagger's capture (node/tag/capture.c) adds to the store
 * path's data set reader, and what the extraction from it costs, per instance, in a tight loop.
 *
 *   bench/tagging/capture_bench [-r ROUNDS] FILE...
 *
 * Each Part 10 file's data set goes through a reader set up as svc/store.c's (values up to
 * 64 KiB whole, Pixel Data streamed), with (1) a no-op callback: the anchor, the reader the
 * node runs anyway; (2) the capture fed the events and the bytes: the tagger's share on the
 * event loop; (3) as (2), then mt_tag_capture_extract: the features (the pool's share, on warm
 * caches: in the node the pool's batches cost more, docs/tagging.md). CPU time of the process,
 * the best of 3 runs of ROUNDS (default 200) passes over all files; the ratios to the anchor
 * are printed.
 *
 * Not built by CMake (speed is not a test, STYLE §11); build against the CMake libraries:
 *   gcc -O2 -Inode bench/tagging/capture_bench.c build/libmitral_core.a -lz -lyaml -lcrypto \
 *       -lm -o capture_bench
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dicom/ds.h"
#include "tag/capture.h"
#include "tag/tag.h"

typedef struct input {
    uint8_t *file;
    const uint8_t *ds;
    size_t len;
    const mt_ts_t *ts;
} input_t;

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int on_noop(void *u, mt_ds_event_t ev, const mt_elem_t *e)
{
    (void)u, (void)ev, (void)e;
    return 0;
}

static int on_capture(void *u, mt_ds_event_t ev, const mt_elem_t *e)
{
    mt_tag_capture_event(u, ev, e);
    return 0;
}

/* One pass over every input in mode 0, 1 or 2 (file header). */
static void pass(const input_t *in, size_t n, int mode)
{
    for (size_t i = 0; i < n; i++) {
        mt_tag_capture_t c;
        mt_tag_capture_init(&c, in[i].ts, mode == 0);
        mt_ds_reader_opts_t o = {.ts = in[i].ts, .max_buffered_value = 64u << 10,
                                 .cb = mode ? on_capture : on_noop, .user = &c,
                                 .stream_pixel_data = true};
        mt_ds_reader_t *r = mt_ds_reader_new(&o);
        mt_ds_reader_feed(r, in[i].ds, in[i].len);
        if (mode)
            mt_tag_capture_feed(&c, in[i].ds, in[i].len);
        mt_ds_reader_finish(r);
        mt_ds_reader_free(r);
        if (mode == 2) {
            mt_tag_inst_t f;
            mt_tag_capture_extract(&c, &f);
            mt_tag_inst_dispose(&f);
        }
        mt_tag_capture_dispose(&c);
    }
}

static int load(const char *path, input_t *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    out->file = malloc(len > 0 ? (size_t)len : 1);
    size_t got = fread(out->file, 1, len > 0 ? (size_t)len : 0, f);
    fclose(f);
    mt_meta_t meta;
    size_t off;
    mt_diag_t diag;
    if (mt_part10_read_meta(out->file, got, &meta, &off, &diag) != 0 ||
        !(out->ts = mt_ts_find(meta.transfer_syntax_uid)) || out->ts->deflated) {
        free(out->file);
        return -1;
    }
    out->ds = out->file + off;
    out->len = got - off;
    return 0;
}

int main(int argc, char **argv)
{
    int rounds = 200, first = 1;
    if (argc > 2 && !strcmp(argv[1], "-r")) {
        rounds = atoi(argv[2]);
        first = 3;
    }
    input_t *in = calloc((size_t)argc, sizeof *in);
    size_t n = 0;
    for (int i = first; i < argc; i++)
        n += load(argv[i], &in[n]) == 0;
    if (!n || rounds < 1) {
        fprintf(stderr, "usage: capture_bench [-r ROUNDS] FILE... (Part 10, not deflated)\n");
        return 2;
    }
    static const char *const what[] = {"store reader alone (anchor)", "reader + capture",
                                       "reader + capture + extraction"};
    double us[3];
    for (int mode = 0; mode < 3; mode++) {
        double best = 1e30;
        for (int k = 0; k < 3; k++) {
            double t0 = cpu_s();
            for (int r = 0; r < rounds; r++)
                pass(in, n, mode);
            double t = cpu_s() - t0;
            best = t < best ? t : best;
        }
        us[mode] = best / ((double)rounds * (double)n) * 1e6;
        printf("%-32s %7.2f us per instance (%.2fx the anchor)\n", what[mode], us[mode],
               us[mode] / us[0]);
    }
    printf("%zu instances: capture %.2f us, extraction %.2f us per instance\n", n,
           us[1] - us[0], us[2] - us[1]);
    for (size_t i = 0; i < n; i++)
        free(in[i].file);
    free(in);
    return 0;
}
