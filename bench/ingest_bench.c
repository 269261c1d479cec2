/*
 * ingest_bench.c - throughput of the durable ingest (node/store/ingest.c) without the network:
 * N instances of SIZE bytes of pixel data, with a window of W instances in flight (W=1 is a
 * synchronous SCU such as storescu; larger W models an asynchronous window or several
 * associations). Every instance goes through temp file, group commit, syncs and index.
 *
 *   bench/ingest_bench DIR [N=2000] [SIZE=131072] [W=1]
 *
 * Not built by CMake (speed is not a test, STYLE §11); build against the CMake libraries:
 *   gcc -O2 -D_GNU_SOURCE -Inode -Ibuild/gen bench/ingest_bench.c build/libmitral_index.a \
 *       build/libmitral_core.a -lsqlite3 -luv -lyaml -lz -lcrypto -lm -lpthread -o ingest_bench
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "dicom/ds.h"
#include "store/ingest.h"
#include "util/buf.h"

static size_t n_done, n_failed, in_flight;

static void on_done(void *data, int status, const char *comment)
{
    (void)data, (void)comment;
    n_done++;
    in_flight--;
    if (status)
        n_failed++;
}

static void put_el(mt_buf_t *b, uint16_t g, uint16_t e, const char *vr, const char *v)
{
    size_t n = strlen(v), p = n + (n & 1);
    mt_buf_put_u16le(b, g);
    mt_buf_put_u16le(b, e);
    mt_buf_append(b, vr, 2);
    mt_buf_put_u16le(b, (uint16_t)p);
    mt_buf_append(b, v, n);
    if (n & 1)
        mt_buf_put_u8(b, strcmp(vr, "UI") == 0 ? 0 : ' ');
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [N] [SIZE] [W]\n", argv[0]);
        return 2;
    }
    size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 2000;
    size_t size = argc > 3 ? strtoul(argv[3], NULL, 10) : 131072;
    size_t w = argc > 4 ? strtoul(argv[4], NULL, 10) : 1;
    char root[512], index[512];
    snprintf(root, sizeof root, "%s/storage", argv[1]);
    snprintf(index, sizeof index, "%s/index.sqlite", argv[1]);
    uv_loop_t loop;
    uv_loop_init(&loop);
    mt_ingest_opts_t o = {.storage_root = root, .index_path = index};
    mt_ingest_t *ing;
    if (mt_ingest_open(&loop, &o, &ing) != 0)
        return 1;
    uint8_t *pixels = calloc(1, size);
    double t0 = now();
    for (size_t i = 0; i < n; i++) {
        while (in_flight >= w)
            uv_run(&loop, UV_RUN_ONCE);
        char sop[64];
        snprintf(sop, sizeof sop, "1.2.826.0.1.3680043.10.1532.9.%ld.%zu", (long)t0, i + 1);
        mt_meta_t meta = {0};
        strcpy(meta.sop_class_uid, "1.2.840.10008.5.1.4.1.1.4");
        strcpy(meta.sop_instance_uid, sop);
        strcpy(meta.transfer_syntax_uid, "1.2.840.10008.1.2.1");
        mt_buf_t b;
        mt_buf_init(&b, size + 4096);
        put_el(&b, 0x0008, 0x0016, "UI", meta.sop_class_uid);
        put_el(&b, 0x0008, 0x0018, "UI", sop);
        put_el(&b, 0x0010, 0x0020, "LO", "BENCH");
        put_el(&b, 0x0020, 0x000D, "UI", "1.2.826.0.1.3680043.10.1532.9.1");
        put_el(&b, 0x0020, 0x000E, "UI", "1.2.826.0.1.3680043.10.1532.9.1.1");
        mt_buf_append(&b, "\xE0\x7F\x10\x00OW\0\0", 8);
        mt_buf_put_u32le(&b, (uint32_t)size);
        mt_buf_append(&b, pixels, size);
        mt_index_rec_t *rec = mt_index_rec_new();
        mt_index_rec_offer(rec, MT_TAG(0x0008, 0x0018), MT_VR('U', 'I'), (uint8_t *)sop,
                           strlen(sop), false);
        const char *st = "1.2.826.0.1.3680043.10.1532.9.1",
                   *se = "1.2.826.0.1.3680043.10.1532.9.1.1";
        mt_index_rec_offer(rec, MT_TAG(0x0020, 0x000D), MT_VR('U', 'I'), (uint8_t *)st, strlen(st),
                           false);
        mt_index_rec_offer(rec, MT_TAG(0x0020, 0x000E), MT_VR('U', 'I'), (uint8_t *)se, strlen(se),
                           false);
        mt_ingest_job_t *job = mt_ingest_job_new(ing, &meta);
        for (size_t off = 0; off < b.len; off += 16384) {
            size_t k = b.len - off < 16384 ? b.len - off : 16384;
            mt_ingest_job_append(job, b.data + off, k, NULL, NULL);
        }
        mt_buf_dispose(&b);
        in_flight++;
        mt_ingest_job_commit(job, rec, on_done, NULL);
    }
    while (n_done < n)
        uv_run(&loop, UV_RUN_ONCE);
    double dt = now() - t0;
    printf("%zu instances of %zu bytes, window %zu: %.2f s, %.0f instances/s, %zu failed\n", n,
           size, w, dt, n / dt, n_failed);
    mt_ingest_close(ing, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(pixels);
    return n_failed != 0;
}
