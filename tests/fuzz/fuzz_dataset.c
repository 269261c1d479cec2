/* fuzz_dataset.c - libFuzzer target for the data set codec (node/dicom/ds_read.c, ds.c,
 * ds_write.c, part10.c, dump.c). For the input bytes:
 *  - as a data set in implicit LE, explicit LE, explicit BE and deflated explicit LE, read by the
 *    streaming reader in one feed and in feeds of sizes taken from the input, with a small
 *    max_buffered_value so that values also arrive in chunks: the outcome, the diag and the
 *    events (chunks merged) must be the same; an error must carry a reason;
 *  - mt_ds_parse in each syntax; when it succeeds, encode (explicit LE for deflated), parse the
 *    result and encode again: both must succeed and the two encodings be equal;
 *  - as a file: mt_part10_parse_file_buf, then mt_ds_dump of the tree.
 * Any violation aborts. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/ds.h"
#include "util/buf.h"
#include "util/err.h"

typedef struct trace {
    uint64_t h;
    uint64_t n;
} trace_t;

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static int on_event(void *user, mt_ds_event_t ev, const mt_elem_t *e)
{
    trace_t *t = user;
    if (ev == MT_DS_EV_VALUE_CHUNK) { /* piece sizes depend on the feeds: hash the bytes only */
        t->h = mix(t->h, e->value, e->value_len);
        if (e->last_chunk)
            t->h = mix(t->h, "|", 1);
        return 0;
    }
    uint64_t f[6] = {(uint64_t)ev, e->tag, e->vr, e->len, e->depth, e->offset};
    t->h = mix(t->h, f, sizeof f);
    if (e->value)
        t->h = mix(t->h, e->value, e->value_len);
    t->n++;
    return 0;
}

static int read_stream(const mt_ts_t *ts, const uint8_t *data, size_t size, size_t step0,
                       trace_t *t, mt_diag_t *diag)
{
    t->h = 1469598103934665603ull;
    t->n = 0;
    mt_ds_reader_opts_t o = {.ts = ts, .max_buffered_value = 16, .cb = on_event, .user = t};
    mt_ds_reader_t *r = mt_ds_reader_new(&o);
    if (!r)
        abort();
    int rc = 0;
    size_t pos = 0, i = 0;
    while (pos < size && !rc) {
        size_t k = size - pos;
        if (step0) {
            size_t step = 1 + (data[i++ % size] % step0);
            if (k > step)
                k = step;
        }
        rc = mt_ds_reader_feed(r, data + pos, k);
        pos += k;
    }
    if (!rc)
        rc = mt_ds_reader_finish(r);
    *diag = *mt_ds_reader_diag(r);
    if (rc && !diag->reason)
        abort();
    mt_ds_reader_free(r);
    return rc;
}

static void check_ts(const mt_ts_t *ts, const uint8_t *data, size_t size)
{
    trace_t a, b;
    mt_diag_t da, db;
    int ra = read_stream(ts, data, size, 0, &a, &da);
    int rb = read_stream(ts, data, size, 13, &b, &db);
    if (ra != rb || a.h != b.h || a.n != b.n)
        abort();
    if (ra && (da.offset != db.offset || strcmp(da.reason, db.reason) != 0))
        abort();

    mt_ds_t *ds = NULL, *ds2 = NULL;
    mt_diag_t d = {0, NULL};
    int rc = mt_ds_parse(data, size, ts, &ds, &d);
    if ((rc == 0) != (ra == 0)) /* the tree builder accepts what the reader accepts */
        abort();
    if (rc) {
        if (ds || !d.reason)
            abort();
        return;
    }
    const mt_ts_t *out_ts = ts->deflated ? mt_ts_explicit_le : ts;
    mt_buf_t e1, e2;
    mt_buf_init(&e1, (size_t)1 << 28);
    mt_buf_init(&e2, (size_t)1 << 28);
    if (mt_ds_encode(ds, out_ts, &e1) != 0)
        abort();
    if (!ts->deflated && mt_ds_count(ds) && e1.len == 0)
        abort();
    if (mt_ds_parse(e1.data, e1.len, out_ts, &ds2, &d) != 0)
        abort();
    if (mt_ds_encode(ds2, out_ts, &e2) != 0)
        abort();
    if (e1.len != e2.len || (e1.len && memcmp(e1.data, e2.data, e1.len) != 0))
        abort();
    mt_buf_dispose(&e1);
    mt_buf_dispose(&e2);
    mt_ds_free(ds);
    mt_ds_free(ds2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const uids[] = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1",
                                       "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"};
    for (size_t i = 0; i < sizeof uids / sizeof uids[0]; i++) {
        const mt_ts_t *ts = mt_ts_find(uids[i]);
        if (ts)
            check_ts(ts, data, size);
    }

    mt_meta_t meta;
    mt_ds_t *ds = NULL;
    mt_diag_t d = {0, NULL};
    int rc = mt_part10_parse_file_buf(data, size, &meta, &ds, &d);
    if (rc) {
        if (ds || !d.reason)
            abort();
        return 0;
    }
    mt_buf_t out;
    mt_buf_init(&out, (size_t)1 << 28);
    if (mt_ds_dump(ds, &out) != 0)
        abort();
    mt_buf_dispose(&out);
    mt_ds_free(ds);
    return 0;
}
