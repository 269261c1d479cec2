/*
 * wado.c - WADO-RS (PS3.18 §10.4) and WADO-URI (PS3.18 §9): retrieve instances, metadata,
 * frames, bulk data and rendered images.
 *
 * Every retrieval first asks the query layer for the instances (mt_qdb_instances, scoped to
 * the caller's project, off the loop): a UID outside the scope selects nothing and is 404.
 *
 *   instances  multipart/related; type="application/dicom". Over plain HTTP, every instance
 *              as stored: a Content-Length response whose files go from the page cache to the
 *              socket in 8 MiB batches, each on one worker (mt_http_sendfiles); with some
 *              instance re-encoded, chunked, each stored file by mt_http_sendfile; over HTTPS it streams from disk on the libuv pool
 *              (uv_fs_read, CHUNK bytes at a time), written only when the connection's queue
 *              has drained below its low-water mark: memory per request is bounded whatever
 *              the study size. transfer-syntax=* (or absent, for
 *              compressed files) sends the stored bytes; Explicit VR Little Endian
 *              (1.2.840.10008.1.2.1, and the default when no syntax is named) is produced
 *              from a native stored syntax by re-encoding the data set (node/dicom/ds.h) one
 *              instance at a time on a worker. Any other syntax that differs from the
 *              stored one, or explicit LE for compressed pixel data: 406.
 *   metadata   application/dicom+json: each file is read up to its Pixel Data only and its
 *              elements streamed into DICOM JSON (json.c); binary values over 1 KiB and
 *              Pixel Data become BulkDataURI .../instances/I/bulkdata/GGGGEEEE, nested in
 *              sequences at any depth .../bulkdata/SSSSSSSS/N/GGGGEEEE (N: 1-based item).
 *   frames     multipart/related; application/octet-stream (native: Little Endian frame
 *              bytes) or the stored compressed syntax's media type with transfer-syntax=UID.
 *   bulkdata   multipart/related; application/octet-stream with the value the path names.
 *   rendered,  image/jpeg or image/png of frame 1 (or frames/N): native grayscale and colour
 *   thumbnail  (rendered.c, node/dicom/pixel.c: parameters, pipeline, encoders). Study/series
 *              rendered: multipart/related, one rendered instance a part, streamed (each
 *              rendered on the pool, written after drain); study/series thumbnail: one image,
 *              the middle instance of the first series (or the next that renders).
 * WADO-URI: requestType=WADO, studyUID, seriesUID, objectUID, contentType
 *   (application/dicom -> the stored file; image/jpeg (the default), image/png -> rendered),
 *   frameNumber, windowCenter/windowWidth, rows/columns.
 */
#include <fcntl.h>
#include <http_parser.h>
#include <unistd.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <uv.h>

#include "../dicom/dict.h"
#include "../util/alloc.h"
#include "../util/err.h"
#include "../util/log.h"
#include "json.h"
#include "multipart.h"
#include "web.h"

#define CHUNK (1024u * 1024u)
#define META_READ (64u * 1024u)
#define META_FIRST (16u * 1024u)
#define BULK_THRESHOLD 1024
#define MAX_INSTANCE_IN_MEMORY (1024u << 20)
/* Each response has its own random boundary (RFC 2046 §5.1.1: it must not occur in the
 * parts; a fixed one could be planted in a stored file's text): "mitral-" + 32 hex digits. */
#define BOUNDARY_LEN 39
#define TS_EXPLICIT_LE "1.2.840.10008.1.2.1"

typedef enum { W_INSTANCES, W_METADATA, W_FRAMES, W_BULK, W_RENDERED, W_THUMB, W_URI_FILE } wmode_t;

typedef struct inst {
    char *study, *series, *sop, *cls, *ts, *path;
    char *full; /* storage root + path, when sent in batches */
    uint64_t size;
} inst_t;

typedef struct wado {
    mt_web_req_t *wr;
    wmode_t mode;
    char study[65], series[65], instance[65];
    bool has_series, has_instance;
    char arg[512];
    mt_index_level_t level;
    char *index_path, *root;
    inst_t *insts;
    size_t n_insts, cap_insts;
    int err;
    int status; /* error response status from the worker, 0 = fine */
    char msg[256];
    /* negotiated */
    /* instances: 0 as stored (transfer-syntax=*), 1 explicit LE asked (native re-encoded,
     * compressed 406), 2 exactly want_ts, 3 none named (native as explicit LE, compressed
     * as stored). frames/bulk: 1 = octet-stream only. */
    int ts_policy;
    char want_ts[72];
    char boundary[BOUNDARY_LEN + 1];
    /* instances: every acceptable (policy, want_ts) of Accept, best first; after the index
     * lookup the first one all instances can be sent in is taken (choose_ts) */
    struct {
        int policy; /* frames: FR_ANY, FR_NATIVE, FR_TS, FR_MEDIA */
        char ts[72];
        char media[96]; /* frames, FR_MEDIA: the media range (image/jpeg, a wildcard ..) */
    } cand[16];
    size_t n_cand;
    mt_render_opts_t ro; /* rendered, thumbnail: parameters (ro.png: image/png) */
    /* results built by workers */
    mt_buf_t out;
    char ctype[256];
    /* streaming state */
    size_t cur;
    uv_fs_t fs;
    uv_file fd;
    uint8_t *chunk;
    bool in_fs;
    uv_work_t work;
    bool aborted;
    uint64_t off;
    bool transcoded; /* cur instance's bytes are in out */
    struct meta_job *jobs; /* metadata slices */
    mt_http_file_t *files;  /* as-stored batches: one per instance, heads in heads */
    char *heads;
    char tail[64];
    size_t n_jobs, jobs_left;
} wado_t;

static void wado_free(wado_t *w)
{
    for (size_t i = 0; i < w->n_insts; i++) {
        inst_t *x = &w->insts[i];
        mt_free(x->study);
        mt_free(x->series);
        mt_free(x->sop);
        mt_free(x->cls);
        mt_free(x->ts);
        mt_free(x->path);
        mt_free(x->full);
    }
    mt_free(w->files);
    mt_free(w->heads);
    mt_free(w->insts);
    mt_free(w->index_path);
    mt_free(w->root);
    mt_buf_dispose(&w->out);
    mt_free(w->chunk);
    mt_free(w->jobs);
    mt_free(w);
}

static void finish(wado_t *w)
{
    mt_http_end(w->wr->r);
    mt__web_req_free(w->wr);
    wado_free(w);
}

static void fail(wado_t *w, int status, const char *msg)
{
    mt__web_fail(w->wr, status, msg);
    wado_free(w);
}

static void on_abort(mt_http_req_t *r)
{
    (void)r; /* the stream functions notice r->aborted */
}

static const mt_http_handler_t handler = {NULL, NULL, on_abort};

/* ---- instance lookup (worker) ---- */

static int inst_cb(void *user, const mt_qdb_instance_t *i)
{
    wado_t *w = user;
    if (w->n_insts == w->cap_insts) {
        w->cap_insts = w->cap_insts ? w->cap_insts * 2 : 16;
        w->insts = mt_realloc(w->insts, w->cap_insts * sizeof *w->insts);
    }
    inst_t *x = &w->insts[w->n_insts++];
    x->study = mt_strdup(i->study_uid ? i->study_uid : "");
    x->series = mt_strdup(i->series_uid ? i->series_uid : "");
    x->sop = mt_strdup(i->sop_instance_uid ? i->sop_instance_uid : "");
    x->cls = mt_strdup(i->sop_class_uid ? i->sop_class_uid : "");
    x->ts = mt_strdup(i->transfer_syntax_uid ? i->transfer_syntax_uid : "");
    x->path = mt_strdup(i->path ? i->path : "");
    x->full = NULL;
    x->size = i->size;
    return 0;
}

static int lookup(wado_t *w)
{
    mt_ds_t *id = mt__web_identifier(w->level, w->study, w->has_series ? w->series : NULL,
                                     w->has_instance ? w->instance : NULL);
    mt_query_t *q = NULL;
    mt_query_err_t qe;
    int rc = mt_query_from_ds(id, MT_QR_RELATIONAL, &q, &qe);
    mt_ds_free(id);
    if (rc)
        return rc;
    mt_qdb_t *db = mt_qdb_take(w->index_path);
    if (!db) {
        mt_query_free(q);
        return MT_EDB;
    }
    mt_qscope_t scope = {.project = w->wr->project, .retrieve_ae = w->wr->conf->ae_title};
    rc = mt_qdb_instances(db, q, &scope, inst_cb, w);
    mt_qdb_give(w->index_path, db);
    mt_query_free(q);
    return rc < 0 ? rc : 0;
}

static char *full_path(const wado_t *w, const inst_t *x)
{
    size_t n = strlen(w->root) + strlen(x->path) + 2;
    char *p = mt_malloc(n);
    snprintf(p, n, "%s/%s", w->root, x->path);
    return p;
}

/* Read a whole file (bounded). */
static int read_file(const char *path, uint64_t limit, mt_buf_t *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return MT_ENOENT;
    mt_buf_init(out, limit);
    uint8_t tmp[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        if ((rc = mt_buf_append(out, tmp, n)))
            break;
    if (ferror(f))
        rc = MT_EIO;
    fclose(f);
    return rc;
}

static const mt_ts_t *ts_of(const char *uid)
{
    return mt_ts_find(uid);
}

static bool native(const char *ts_uid)
{
    const mt_ts_t *t = ts_of(ts_uid);
    return t && !t->encapsulated && !t->deflated;
}

/* ---- metadata (worker) ---- */

typedef struct meta_ctx {
    mt_json_stream_t *js;
    bool stop;
} meta_ctx_t;

#define STOP_AT_PIXELS 1

static int meta_ev(void *user, mt_ds_event_t ev, const mt_elem_t *e)
{
    meta_ctx_t *m = user;
    int rc = mt_json_stream_event(m->js, ev, e);
    if (rc)
        return rc;
    if (ev == MT_DS_EV_ELEMENT && e->depth == 0 && e->tag == MT_TAG_PIXEL_DATA) {
        m->stop = true;
        return MT_ECANCELED; /* everything we need has been read */
    }
    return 0;
}

/* One instance's metadata object appended to out. buf: META_READ bytes of scratch. The file
 * is read META_FIRST bytes at a time and only up to its Pixel Data. */
static int metadata_one(wado_t *w, const inst_t *x, mt_buf_t *out, uint8_t *buf)
{
    char *p = full_path(w, x);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    mt_free(p);
    if (fd < 0)
        return MT_ENOENT;
    size_t n = 0;
    mt_meta_t meta;
    size_t consumed = 0;
    mt_diag_t d;
    int rc = MT_EAGAIN;
    while (rc == MT_EAGAIN && n < META_READ) { /* the File Meta group, usually < 1 KiB */
        ssize_t k = read(fd, buf + n, n ? META_READ - n : META_FIRST);
        if (k <= 0)
            break;
        n += (size_t)k;
        rc = mt_part10_read_meta(buf, n, &meta, &consumed, &d);
    }
    const mt_ts_t *ts = rc == 0 ? mt_ts_find(meta.transfer_syntax_uid) : NULL;
    if (!ts) {
        close(fd);
        return rc ? (rc == MT_EAGAIN ? MT_EMALFORMED : rc) : MT_EUNSUPPORTED;
    }
    char uri[1024];
    snprintf(uri, sizeof uri, "%s/studies/%s/series/%s/instances/%s/bulkdata/", w->wr->base,
             x->study, x->series, x->sop);
    mt_json_opts_t o = {.bulk_threshold = BULK_THRESHOLD, .bulk_uri = uri,
                        .big_endian = ts->big_endian};
    meta_ctx_t m = {.js = mt_json_stream_new(&o, out)};
    mt_ds_reader_opts_t ro = {.ts = ts, .max_buffered_value = 65536, .cb = meta_ev, .user = &m};
    mt_ds_reader_t *r = mt_ds_reader_new(&ro);
    rc = mt_ds_reader_feed(r, buf + consumed, n - consumed);
    ssize_t k;
    while (rc == 0 && !m.stop && (k = read(fd, buf, META_FIRST)) > 0)
        rc = mt_ds_reader_feed(r, buf, (size_t)k);
    if (rc == MT_ECANCELED && m.stop)
        rc = 0;
    if (rc == 0 && !m.stop)
        rc = mt_ds_reader_finish(r);
    if (rc == 0)
        rc = mt_json_stream_finish(m.js);
    mt_json_stream_free(m.js);
    mt_ds_reader_free(r);
    close(fd);
    return rc;
}

/* Metadata runs as up to META_JOBS work items over slices of the instances (the libuv pool
 * has 4 threads); the slices are written out in order. */
#define META_JOBS 4
#define META_MIN_SLICE 32

typedef struct meta_job {
    uv_work_t work;
    wado_t *w;
    size_t from, to;
    mt_buf_t out;
    int err;
} meta_job_t;

static void meta_work(uv_work_t *wk)
{
    meta_job_t *j = wk->data;
    uint8_t *buf = mt_malloc(META_READ);
    mt_buf_init(&j->out, 1u << 30);
    for (size_t i = j->from; i < j->to && !j->err; i++) {
        if (i > j->from)
            mt_buf_append(&j->out, ",", 1);
        j->err = metadata_one(j->w, &j->w->insts[i], &j->out, buf);
    }
    mt_free(buf);
}

/* ---- whole-instance work: transcode, frames, bulk data, rendered ---- */

static int parse_inst(wado_t *w, const inst_t *x, mt_buf_t *file, mt_meta_t *meta,
                      mt_ds_t **ds)
{
    char *p = full_path(w, x);
    int rc = read_file(p, MAX_INSTANCE_IN_MEMORY, file);
    mt_free(p);
    if (rc)
        return rc;
    mt_diag_t d;
    return mt_part10_parse_file_buf(file->data, file->len, meta, ds, &d);
}

static int transcode(wado_t *w, const inst_t *x, mt_buf_t *out)
{
    mt_buf_t file;
    mt_meta_t meta;
    mt_ds_t *ds = NULL;
    int rc = parse_inst(w, x, &file, &meta, &ds);
    mt_buf_dispose(&file);
    if (rc)
        return rc;
    snprintf(meta.transfer_syntax_uid, sizeof meta.transfer_syntax_uid, "%s", TS_EXPLICIT_LE);
    mt_buf_init(out, MAX_INSTANCE_IN_MEMORY);
    rc = mt_part10_write_meta(&meta, out);
    if (!rc)
        rc = mt_ds_encode(ds, mt_ts_explicit_le, out);
    mt_ds_free(ds);
    return rc;
}

static int ds_int(const mt_ds_t *ds, uint32_t tag, int def)
{
    char s[32];
    uint16_t u;
    const mt_ds_elem_t *e = mt_ds_get(ds, tag);
    if (!e)
        return def;
    if (e->vr == MT_VR('U', 'S') && mt_ds_get_u16(ds, tag, &u))
        return u;
    if (!mt_ds_get_string(ds, tag, s, sizeof s))
        return def;
    return atoi(s);
}

typedef struct frame {
    const uint8_t *p;
    size_t n;
    uint8_t *own;
} frame_t;

/* Frame k (1-based) of the pixel data: a pointer into ds (or own, concatenated). */
static int get_frame(const mt_ds_t *ds, const mt_ts_t *ts, int k, frame_t *f, char *msg,
                     size_t msgsz)
{
    memset(f, 0, sizeof *f);
    const mt_ds_elem_t *px = mt_ds_get(ds, MT_TAG_PIXEL_DATA);
    if (!px) {
        snprintf(msg, msgsz, "no pixel data");
        return 404;
    }
    int frames = ds_int(ds, MT_TAG(0x0028, 0x0008), 1);
    if (frames < 1)
        frames = 1;
    if (k < 1 || k > frames) {
        snprintf(msg, msgsz, "frame %d out of range (1-%d)", k, frames);
        return 404;
    }
    if (!px->encapsulated) {
        int rows = ds_int(ds, MT_TAG(0x0028, 0x0010), 0), cols = ds_int(ds, MT_TAG(0x0028, 0x0011), 0);
        int spp = ds_int(ds, MT_TAG(0x0028, 0x0002), 1), bits = ds_int(ds, MT_TAG(0x0028, 0x0100), 0);
        if (rows <= 0 || cols <= 0 || spp <= 0 || bits <= 0 || bits % 8) {
            snprintf(msg, msgsz, "unsupported pixel layout");
            return 406;
        }
        size_t fs = (size_t)rows * (size_t)cols * (size_t)spp * (size_t)(bits / 8);
        char pi[32] = "";
        mt_ds_get_string(ds, MT_TAG(0x0028, 0x0004), pi, sizeof pi);
        if (mt_pixel_pi(pi) == MT_PI_YBR_FULL_422 && spp == 3) /* Y1 Y2 Cb Cr per pair */
            fs = (size_t)rows * (size_t)cols * 2 * (size_t)(bits / 8);
        if ((uint64_t)fs * (uint64_t)k > px->len || !px->value) {
            snprintf(msg, msgsz, "pixel data shorter than its frames");
            return 500;
        }
        f->p = px->value + fs * (size_t)(k - 1);
        f->n = fs;
        if (ts->big_endian && bits > 8) { /* octet-stream frames are little endian */
            f->own = mt_malloc(fs);
            size_t w = (size_t)bits / 8;
            for (size_t i = 0; i + w <= fs; i += w)
                for (size_t j = 0; j < w; j++)
                    f->own[i + j] = f->p[i + w - 1 - j];
            f->p = f->own;
        }
        return 0;
    }
    size_t nf = px->n_frags > 0 ? px->n_frags - 1 : 0; /* frags[0] = Basic Offset Table */
    if (nf == 0) {
        snprintf(msg, msgsz, "no fragments");
        return 500;
    }
    if (frames == 1 || nf == (size_t)frames) {
        size_t from = frames == 1 ? 1 : (size_t)k, to = frames == 1 ? nf : (size_t)k;
        if (from == to) {
            f->p = px->frags[from];
            f->n = px->frag_lens[from];
            return 0;
        }
        size_t total = 0;
        for (size_t i = from; i <= to; i++)
            total += px->frag_lens[i];
        f->own = mt_malloc(total ? total : 1);
        size_t o = 0;
        for (size_t i = from; i <= to; i++) {
            memcpy(f->own + o, px->frags[i], px->frag_lens[i]);
            o += px->frag_lens[i];
        }
        f->p = f->own;
        f->n = total;
        return 0;
    }
    /* several fragments per frame: the Basic Offset Table says where each frame starts */
    uint32_t bot_n = px->frag_lens[0] / 4;
    if (bot_n != (uint32_t)frames) {
        snprintf(msg, msgsz, "fragments cannot be mapped to frames (no offset table)");
        return 500;
    }
    const uint8_t *bot = px->frags[0];
#define BOT(i) ((uint32_t)bot[4 * (i)] | (uint32_t)bot[4 * (i) + 1] << 8 | \
                (uint32_t)bot[4 * (i) + 2] << 16 | (uint32_t)bot[4 * (i) + 3] << 24)
    uint64_t start = BOT(k - 1), end = k < frames ? BOT(k) : UINT64_MAX;
#undef BOT
    uint64_t pos = 0, total = 0;
    for (size_t i = 1; i <= nf; i++) {
        if (pos >= start && pos < end)
            total += px->frag_lens[i];
        pos += 8 + px->frag_lens[i];
    }
    f->own = mt_malloc(total ? total : 1);
    pos = 0;
    size_t o = 0;
    for (size_t i = 1; i <= nf; i++) {
        if (pos >= start && pos < end) {
            memcpy(f->own + o, px->frags[i], px->frag_lens[i]);
            o += px->frag_lens[i];
        }
        pos += 8 + px->frag_lens[i];
    }
    f->p = f->own;
    f->n = o;
    return 0;
}

static const char *ts_media(const char *ts)
{
    if (!strncmp(ts, "1.2.840.10008.1.2.4.5", 21) || !strncmp(ts, "1.2.840.10008.1.2.4.70", 22) ||
        !strncmp(ts, "1.2.840.10008.1.2.4.57", 22))
        return "image/jpeg";
    if (!strcmp(ts, "1.2.840.10008.1.2.4.80") || !strcmp(ts, "1.2.840.10008.1.2.4.81"))
        return "image/jls";
    if (!strcmp(ts, "1.2.840.10008.1.2.4.90") || !strcmp(ts, "1.2.840.10008.1.2.4.91"))
        return "image/jp2";
    if (!strncmp(ts, "1.2.840.10008.1.2.4.20", 22))
        return "image/jphc";
    if (!strcmp(ts, "1.2.840.10008.1.2.5"))
        return "image/dicom-rle";
    if (!strncmp(ts, "1.2.840.10008.1.2.4.10", 22))
        return "video/mpeg";
    return "application/octet-stream";
}

static void part_head(const wado_t *w, mt_buf_t *out, const char *ctype, size_t len)
{
    char h[512];
    int n = snprintf(h, sizeof h, "\r\n--%s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                     w->boundary, ctype, len);
    mt_buf_append(out, h, (size_t)n);
}

static void part_close(const wado_t *w, mt_buf_t *out)
{
    char h[64];
    int n = snprintf(h, sizeof h, "\r\n--%s--\r\n", w->boundary);
    mt_buf_append(out, h, (size_t)n);
}

/* Frames: what an Accept range lets through (PS3.18 §8.7.3.3.2): anything as stored
 * (transfer-syntax=*, no part type), native frames only (application/octet-stream), exactly
 * the stored syntax, or compressed frames of a media type (image/jpeg; transfer-syntax=..). */
enum { FR_ANY, FR_NATIVE, FR_TS, FR_MEDIA };

static bool frame_cand_ok(const wado_t *w, size_t c, const char *ts, bool nat)
{
    const char *want = w->cand[c].ts;
    switch (w->cand[c].policy) {
    case FR_ANY:
        return true;
    case FR_NATIVE:
        return nat;
    case FR_TS:
        return strcmp(ts, want) == 0;
    default:
        return !nat && mt__web_type_ok(w->cand[c].media, ts_media(ts)) &&
               (!want[0] || strcmp(want, "*") == 0 || strcmp(want, ts) == 0);
    }
}

static int frames_work(wado_t *w)
{
    mt_buf_t file;
    mt_meta_t meta;
    mt_ds_t *ds = NULL;
    const inst_t *x = &w->insts[0];
    int rc = parse_inst(w, x, &file, &meta, &ds);
    if (rc) {
        mt_buf_dispose(&file);
        return rc;
    }
    const mt_ts_t *ts = mt_ts_find(x->ts);
    bool nat = native(x->ts);
    bool fits = false;
    for (size_t c = 0; c < w->n_cand && !fits; c++)
        fits = frame_cand_ok(w, c, x->ts, nat);
    if (!ts || !fits) {
        w->status = 406;
        if (nat)
            snprintf(w->msg, sizeof w->msg, "frames: stored native (uncompressed): they go as "
                     "application/octet-stream only");
        else
            snprintf(w->msg, sizeof w->msg, "frames: stored compressed (%.64s): ask for %s or "
                     "transfer-syntax=*", x->ts, ts_media(x->ts));
        goto out;
    }
    char ctype[160];
    if (nat)
        snprintf(ctype, sizeof ctype, "application/octet-stream");
    else
        snprintf(ctype, sizeof ctype, "%s; transfer-syntax=%s", ts_media(x->ts), x->ts);
    mt_buf_init(&w->out, MAX_INSTANCE_IN_MEMORY);
    char *list = mt_strdup(w->arg), *save = NULL;
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *end;
        long k = strtol(t, &end, 10);
        if (*end || k < 1 || k > 1000000) {
            w->status = 400;
            snprintf(w->msg, sizeof w->msg, "frames: a list of frame numbers 1,2,3");
            break;
        }
        frame_t f;
        int st = get_frame(ds, ts, (int)k, &f, w->msg, sizeof w->msg);
        if (st) {
            w->status = st;
            break;
        }
        part_head(w, &w->out, ctype, f.n);
        rc = mt_buf_append(&w->out, f.p, f.n);
        mt_free(f.own);
        if (rc)
            break;
    }
    mt_free(list);
    part_close(w, &w->out);
    snprintf(w->ctype, sizeof w->ctype, "multipart/related; type=\"%s\"; boundary=%s",
             nat ? "application/octet-stream" : ts_media(x->ts), w->boundary);
out:
    mt_ds_free(ds);
    mt_buf_dispose(&file);
    return rc;
}

static bool hex_tag(const char *s, size_t n, uint32_t *tag)
{
    if (n != 8 || strspn(s, "0123456789abcdefABCDEF") < 8)
        return false;
    *tag = (uint32_t)strtoul(s, NULL, 16);
    return true;
}

/* The element a bulk data path names: "GGGGEEEE" at the top level, or "SSSSSSSS/N/..." down
 * through item N (1-based) of sequence SSSSSSSS, as the metadata's BulkDataURIs write it
 * (json.c). NULL when the path names nothing. */
static const mt_ds_elem_t *bulk_elem(const mt_ds_t *ds, const char *path)
{
    const char *p = path;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        uint32_t tag;
        if (!hex_tag(p, n, &tag))
            return NULL;
        const mt_ds_elem_t *e = mt_ds_get(ds, tag);
        if (!slash || !e)
            return e && e->vr == MT_VR('S', 'Q') ? NULL : e; /* a sequence is not bulk data */
        char *end;
        unsigned long item = strtoul(slash + 1, &end, 10);
        if (end == slash + 1 || *end != '/' || item < 1 || item > e->n_items || !e->items)
            return NULL;
        ds = e->items[item - 1];
        p = end + 1;
    }
}

static int bulk_work(wado_t *w)
{
    mt_buf_t file;
    mt_meta_t meta;
    mt_ds_t *ds = NULL;
    const inst_t *x = &w->insts[0];
    int rc = parse_inst(w, x, &file, &meta, &ds);
    if (rc) {
        mt_buf_dispose(&file);
        return rc;
    }
    const mt_ds_elem_t *e = bulk_elem(ds, w->arg);
    mt_buf_init(&w->out, MAX_INSTANCE_IN_MEMORY);
    if (!e) {
        w->status = 404;
        snprintf(w->msg, sizeof w->msg, "no such bulk data");
    } else if (e->encapsulated) {
        part_head(w, &w->out, "application/octet-stream", 0);
        size_t at = w->out.len;
        size_t total = 0;
        for (size_t i = 1; i < e->n_frags; i++) {
            mt_buf_append(&w->out, e->frags[i], e->frag_lens[i]);
            total += e->frag_lens[i];
        }
        /* rewrite the header with the length */
        mt_buf_t t;
        mt_buf_init(&t, MAX_INSTANCE_IN_MEMORY);
        part_head(w, &t, "application/octet-stream", total);
        mt_buf_append(&t, w->out.data + at, w->out.len - at);
        mt_buf_dispose(&w->out);
        w->out = t;
    } else {
        part_head(w, &w->out, "application/octet-stream", e->value ? e->len : 0);
        if (e->value)
            mt_buf_append(&w->out, e->value, e->len);
    }
    part_close(w, &w->out);
    snprintf(w->ctype, sizeof w->ctype,
             "multipart/related; type=\"application/octet-stream\"; boundary=%s", w->boundary);
    mt_ds_free(ds);
    mt_buf_dispose(&file);
    return 0;
}

/* ---- rendered ---- */

/* Render frame k of instance x into out with w->ro. 0, or an HTTP status with w->msg set. */
static int render_one(wado_t *w, const inst_t *x, int k, mt_buf_t *out)
{
    const mt_ts_t *ts = mt_ts_find(x->ts);
    if (!ts || !native(x->ts)) {
        snprintf(w->msg, sizeof w->msg, "rendered: compressed pixel data (transfer syntax %s) "
                 "cannot be decoded here", x->ts);
        return 406;
    }
    mt_buf_t file;
    mt_meta_t meta;
    mt_ds_t *ds = NULL;
    int rc = parse_inst(w, x, &file, &meta, &ds);
    if (rc) {
        mt_buf_dispose(&file);
        snprintf(w->msg, sizeof w->msg, "rendered: a stored file could not be read");
        return rc == MT_ENOENT ? 404 : 500;
    }
    frame_t f;
    int st = get_frame(ds, ts, k, &f, w->msg, sizeof w->msg);
    if (st == 0) {
        mt_pixel_desc_t d;
        mt__render_desc(ds, ts->big_endian, &d);
        mt_buf_init(out, MAX_INSTANCE_IN_MEMORY);
        st = mt__render(ds, &d, f.p, f.n, &w->ro, out, w->msg, sizeof w->msg);
        mt_free(f.own);
    }
    mt_ds_free(ds);
    mt_buf_dispose(&file);
    return st;
}

/* The frame number of frames/N/rendered or frameNumber: one positive integer (PS3.18 §9.5.2,
 * §10.4.1.1.3), else 0. */
static int frame_number(const char *arg)
{
    if (!arg[0])
        return 1;
    char *end;
    long k = strtol(arg, &end, 10);
    return *end || k < 1 || k > 1000000 ? 0 : (int)k;
}

/* An instance's rendered resource, or a study/series thumbnail: the first instance that renders,
 * trying the middle instance of the first series first (a representative image, PS3.18
 * §10.4.3.3.4), then the rest in order. A study/series rendered resource also starts here: the
 * first renderable instance becomes its first part (w->cur is the next to try). */
static int render_work(wado_t *w)
{
    int k = frame_number(w->arg);
    if (k == 0) {
        w->status = 400;
        snprintf(w->msg, sizeof w->msg, "frame number: one positive integer");
        return 0;
    }
    size_t start = 0;
    if (w->mode == W_THUMB && !w->has_instance) {
        size_t in_first = 0;
        while (in_first < w->n_insts && strcmp(w->insts[in_first].series, w->insts[0].series) == 0)
            in_first++;
        start = in_first / 2;
    }
    int st = 406;
    for (size_t t = 0; t < w->n_insts; t++) {
        size_t i = (start + t) % w->n_insts;
        mt_buf_dispose(&w->out);
        st = render_one(w, &w->insts[i], k, &w->out);
        if (st == 0) {
            w->cur = i + 1;
            break;
        }
        if (w->has_instance || st == 400)
            break;
    }
    if (st) {
        w->status = st;
        if (!w->has_instance && st != 400 && st != 500) {
            char why[sizeof w->msg];
            snprintf(why, sizeof why, "%s", w->msg);
            w->status = 406;
            snprintf(w->msg, sizeof w->msg, "no instance here can be rendered (last: %.100s)", why);
        }
        return 0;
    }
    snprintf(w->ctype, sizeof w->ctype, "%s", w->ro.png ? "image/png" : "image/jpeg");
    return 0;
}

/* ---- the worker ---- */

static void work(uv_work_t *wk)
{
    wado_t *w = wk->data;
    int rc = lookup(w);
    if (rc) {
        w->err = rc;
        return;
    }
    if (w->n_insts == 0)
        return;
    if (w->mode == W_METADATA) {
        ; /* meta_work, in slices, once the instances are known (after) */
    } else if (w->mode == W_FRAMES) {
        rc = frames_work(w);
    } else if (w->mode == W_BULK) {
        rc = bulk_work(w);
    } else if (w->mode == W_RENDERED || w->mode == W_THUMB) {
        rc = render_work(w);
    }
    w->err = rc;
}

/* ---- streaming instances (loop) ---- */

static void next_instance(wado_t *w);
static void read_next(wado_t *w);

static void on_drained(void *data)
{
    read_next(data);
}

static void on_read(uv_fs_t *req)
{
    wado_t *w = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    w->in_fs = false;
    if (n < 0 || w->wr->r->aborted) {
        if (n < 0)
            mt_log(MT_LOG_WARN, NULL, "http %s: read failed: %s", w->wr->r->peer,
                   uv_strerror((int)n));
        uv_fs_t c;
        uv_fs_close(NULL, &c, w->fd, NULL);
        uv_fs_req_cleanup(&c);
        w->fd = -1;
        mt_free(w->chunk);
        w->chunk = NULL;
        finish(w); /* the peer sees a truncated body (chunked without the last chunk) */
        return;
    }
    if (n == 0) {
        uv_fs_t c;
        uv_fs_close(NULL, &c, w->fd, NULL); /* close of a read-only file: no I/O wait */
        uv_fs_req_cleanup(&c);
        w->fd = -1;
        w->cur++;
        next_instance(w);
        return;
    }
    uint8_t *p = w->chunk;
    w->chunk = NULL;
    w->off += (uint64_t)n;
    if (mt_http_write_take(w->wr->r, p, (size_t)n) == 1)
        mt_http_on_drain(w->wr->r, on_drained, w);
    else
        read_next(w);
}

static void read_next(wado_t *w)
{
    if (!w->chunk)
        w->chunk = mt_malloc(CHUNK);
    uv_buf_t b = uv_buf_init((char *)w->chunk, CHUNK);
    w->fs.data = w;
    w->in_fs = true;
    int rc = uv_fs_read(mt_node_loop(w->wr->node), &w->fs, w->fd, &b, 1, (int64_t)w->off, on_read);
    if (rc < 0) {
        w->in_fs = false;
        finish(w);
    }
}

/* The file went out with sendfile(2) (plain HTTP): end the chunk, next instance. */
static void on_sent(void *data, int status)
{
    wado_t *w = data;
    uv_fs_t c;
    uv_fs_close(NULL, &c, w->fd, NULL);
    uv_fs_req_cleanup(&c);
    w->fd = -1;
    if (status || w->wr->r->aborted) {
        finish(w);
        return;
    }
    w->cur++;
    next_instance(w);
}

static void on_open(uv_fs_t *req)
{
    wado_t *w = req->data;
    ssize_t fd = req->result;
    uv_fs_req_cleanup(req);
    w->in_fs = false;
    if (fd < 0 || w->wr->r->aborted) {
        if (fd >= 0) {
            uv_fs_t c;
            uv_fs_close(NULL, &c, (uv_file)fd, NULL);
            uv_fs_req_cleanup(&c);
        }
        if (fd < 0)
            mt_log(MT_LOG_WARN, NULL, "http %s: cannot open a stored file: %s", w->wr->r->peer,
                   uv_strerror((int)fd));
        finish(w);
        return;
    }
    w->fd = (uv_file)fd;
    w->off = 0;
    if (mt_http_can_sendfile(w->wr->r)) {
        mt_http_sendfile(w->wr->r, w->fd, 0, (size_t)w->insts[w->cur].size, on_sent, w);
        return;
    }
    posix_fadvise(w->fd, 0, 0, POSIX_FADV_SEQUENTIAL); /* HTTPS reads: a larger read-ahead */
    read_next(w);
}

static void after_transcode(uv_work_t *wk, int status);

static void transcode_work(uv_work_t *wk)
{
    wado_t *w = wk->data;
    mt_buf_dispose(&w->out);
    w->err = transcode(w, &w->insts[w->cur], &w->out);
}

static void after_transcode(uv_work_t *wk, int status)
{
    wado_t *w = wk->data;
    (void)status;
    if (w->err || w->wr->r->aborted) {
        mt_log(MT_LOG_WARN, NULL, "http %s: re-encoding failed: %s", w->wr->r->peer,
               mt_strerror(w->err));
        finish(w);
        return;
    }
    mt_buf_t part;
    mt_buf_init(&part, 4096);
    char ct[128];
    snprintf(ct, sizeof ct, "application/dicom; transfer-syntax=%s", TS_EXPLICIT_LE);
    part_head(w, &part, ct, w->out.len);
    mt_http_write(w->wr->r, part.data, part.len);
    mt_buf_dispose(&part);
    uint8_t *p = w->out.data;
    size_t n = w->out.len;
    w->out.data = NULL;
    w->out.len = w->out.cap = 0;
    w->cur++;
    if (mt_http_write_take(w->wr->r, p, n) == 1)
        mt_http_on_drain(w->wr->r, (void (*)(void *))next_instance, w);
    else
        next_instance(w);
}

/* Is x re-encoded (to Explicit VR Little Endian) under the negotiated syntax? */
static bool need_transcode(const wado_t *w, const inst_t *x)
{
    return (w->ts_policy == 1 || w->ts_policy == 3) && strcmp(x->ts, TS_EXPLICIT_LE) != 0 &&
           native(x->ts);
}

/* ---- streaming instances as stored over plain HTTP: batches of files on one worker ---- */

#define BATCH_BYTES (8u << 20) /* a batch holds a pool thread: let others in between batches */

static void send_batch(wado_t *w);

static void on_batch_sent(void *data, int status)
{
    wado_t *w = data;
    if (status || w->wr->r->aborted || w->cur >= w->n_insts) {
        finish(w); /* on failure the connection closes: the client sees a short body */
        return;
    }
    send_batch(w);
}

static void send_batch(wado_t *w)
{
    size_t from = w->cur, bytes = 0;
    while (w->cur < w->n_insts && (w->cur == from || bytes + w->insts[w->cur].size <= BATCH_BYTES))
        bytes += w->insts[w->cur++].size;
    bool last = w->cur >= w->n_insts;
    mt_http_sendfiles(w->wr->r, w->files + from, w->cur - from, last ? w->tail : NULL,
                      last ? strlen(w->tail) : 0, on_batch_sent, w);
}

/* Plain HTTP, every instance as stored: the part headers are known up front, so the response
 * has a Content-Length (no chunk framing) and its files go out in batches, each on one worker
 * (mt_http_sendfiles: sendfile(2), the next file read ahead). */
static void send_all_as_stored(wado_t *w)
{
    size_t head_max = 160;
    w->files = mt_calloc(w->n_insts, sizeof *w->files);
    w->heads = mt_malloc(w->n_insts * head_max);
    uint64_t total = 0;
    for (size_t i = 0; i < w->n_insts; i++) {
        const inst_t *x = &w->insts[i];
        char *h = w->heads + i * head_max;
        int n = snprintf(h, head_max, "\r\n--%s\r\nContent-Type: application/dicom; "
                         "transfer-syntax=%s\r\nContent-Length: %llu\r\n\r\n", w->boundary,
                         x->ts, (unsigned long long)x->size);
        w->files[i] = (mt_http_file_t){.head = h, .head_len = (size_t)n < head_max ? (size_t)n
                                                                                 : head_max - 1,
                                       .path = x->full, .size = x->size};
        total += w->files[i].head_len + x->size;
    }
    snprintf(w->tail, sizeof w->tail, "\r\n--%s--\r\n", w->boundary);
    total += strlen(w->tail);
    char ct[160];
    snprintf(ct, sizeof ct, "multipart/related; type=\"application/dicom\"; boundary=%s",
             w->boundary);
    mt_http_begin(w->wr->r, 200, ct, NULL, (int64_t)total);
    if (w->wr->r->method == HTTP_HEAD) {
        finish(w); /* the header fields only */
        return;
    }
    w->cur = 0;
    send_batch(w);
}

static void next_instance(wado_t *w)
{
    mt_http_req_t *r = w->wr->r;
    if (r->aborted) {
        finish(w);
        return;
    }
    if (w->cur >= w->n_insts) {
        if (w->mode != W_URI_FILE) {
            mt_buf_t t;
            mt_buf_init(&t, 256);
            part_close(w, &t);
            mt_http_write(r, t.data, t.len);
            mt_buf_dispose(&t);
        }
        finish(w);
        return;
    }
    const inst_t *x = &w->insts[w->cur];
    if (need_transcode(w, x)) {
        w->work.data = w;
        uv_queue_work(mt_node_loop(w->wr->node), &w->work, transcode_work, after_transcode);
        return;
    }
    if (w->mode != W_URI_FILE) {
        mt_buf_t part;
        mt_buf_init(&part, 4096);
        char ct[160];
        snprintf(ct, sizeof ct, "application/dicom; transfer-syntax=%s", x->ts);
        part_head(w, &part, ct, (size_t)x->size);
        mt_http_write(r, part.data, part.len);
        mt_buf_dispose(&part);
    }
    char *p = full_path(w, x);
    w->fs.data = w;
    w->in_fs = true;
    int rc = uv_fs_open(mt_node_loop(w->wr->node), &w->fs, p, O_RDONLY, 0, on_open);
    mt_free(p);
    if (rc < 0) {
        w->in_fs = false;
        finish(w);
    }
}

/* Can every instance be sent under the negotiated syntax? */
static bool ts_ok(const wado_t *w, const inst_t *x)
{
    if (w->ts_policy == 0 || w->ts_policy == 3)
        return true;
    if (w->ts_policy == 1)
        return native(x->ts) || strcmp(x->ts, TS_EXPLICIT_LE) == 0;
    return strcmp(x->ts, w->want_ts) == 0;
}

static void meta_after(uv_work_t *wk, int status);
static int choose_ts(wado_t *w);

/* ---- study/series rendered: multipart/related, one rendered instance a part (loop) ---- */

static const char *render_warning(const wado_t *w)
{
    return w->ro.annotation_ignored
               ? "Warning: 299 mitral \"annotation is not supported: nothing is burned in\"\r\n"
               : NULL;
}

/* Write w->out (instance i's image) as a part with its Content-Location; 1 when the
 * connection's queue is full (wait for drain). */
static int rendered_part(wado_t *w, size_t i)
{
    const inst_t *x = &w->insts[i];
    char h[1024];
    int n = snprintf(h, sizeof h,
                     "\r\n--%s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Content-Location: %s/studies/%s/series/%s/instances/%s/rendered\r\n\r\n",
                     w->boundary, w->ro.png ? "image/png" : "image/jpeg", w->out.len, w->wr->base,
                     x->study, x->series, x->sop);
    mt_http_write(w->wr->r, h, (size_t)n < sizeof h ? (size_t)n : sizeof h - 1);
    uint8_t *p = w->out.data;
    size_t len = w->out.len;
    w->out.data = NULL;
    w->out.len = w->out.cap = 0;
    return mt_http_write_take(w->wr->r, p, len);
}

static void rendered_next(wado_t *w);

static void on_rendered_drained(void *data)
{
    rendered_next(data);
}

static void rendered_work(uv_work_t *wk)
{
    wado_t *w = wk->data;
    mt_buf_dispose(&w->out);
    w->status = render_one(w, &w->insts[w->cur], frame_number(w->arg), &w->out);
}

static void rendered_after(uv_work_t *wk, int status)
{
    wado_t *w = wk->data;
    (void)status;
    size_t i = w->cur++;
    if (w->status) { /* not renderable (no pixel data, compressed, ...): left out */
        mt_log(MT_LOG_DEBUG, NULL, "http %s: rendered: instance %zu left out: %s",
               w->wr->r->peer, i + 1, w->msg);
        w->status = 0;
        mt_buf_dispose(&w->out);
        rendered_next(w);
        return;
    }
    if (rendered_part(w, i) == 1)
        mt_http_on_drain(w->wr->r, on_rendered_drained, w);
    else
        rendered_next(w);
}

static void rendered_next(wado_t *w)
{
    mt_http_req_t *r = w->wr->r;
    if (r->aborted) {
        finish(w);
        return;
    }
    if (w->cur >= w->n_insts) {
        mt_buf_t t;
        mt_buf_init(&t, 256);
        part_close(w, &t);
        mt_http_write(r, t.data, t.len);
        mt_buf_dispose(&t);
        finish(w);
        return;
    }
    w->work.data = w;
    uv_queue_work(mt_node_loop(w->wr->node), &w->work, rendered_work, rendered_after);
}

/* The first renderable instance is in w->out (render_work): send the head and it, then the rest
 * one at a time on the pool, each written once the connection has drained. */
static void rendered_begin(wado_t *w)
{
    char ct[160];
    snprintf(ct, sizeof ct, "multipart/related; type=\"%s\"; boundary=%s",
             w->ro.png ? "image/png" : "image/jpeg", w->boundary);
    mt_http_begin(w->wr->r, 200, ct, render_warning(w), -1);
    if (rendered_part(w, w->cur - 1) == 1)
        mt_http_on_drain(w->wr->r, on_rendered_drained, w);
    else
        rendered_next(w);
}

static void after(uv_work_t *wk, int status)
{
    wado_t *w = wk->data;
    mt_http_req_t *r = w->wr->r;
    (void)status;
    if (w->err) {
        mt_log(MT_LOG_WARN, NULL, "http %s: wado failed: %s", r->peer, mt_strerror(w->err));
        fail(w, w->err == MT_ENOENT ? 404 : 500, "retrieve failed");
        return;
    }
    if (w->n_insts == 0) {
        fail(w, 404, "no such study, series or instance in this scope");
        return;
    }
    if (w->status) {
        fail(w, w->status, w->msg);
        return;
    }
    if (w->mode == W_INSTANCES || w->mode == W_URI_FILE) {
        if (choose_ts(w) != 0) {
            fail(w, 406, w->msg);
            return;
        }
        if (w->mode == W_URI_FILE) {
            mt_http_begin(r, 200, "application/dicom", NULL, (int64_t)w->insts[0].size);
        } else {
            /* HEAD over plain HTTP: the Content-Length a GET would send (RFC 9110 §9.3.2) */
            bool head = r->method == HTTP_HEAD;
            bool as_stored = mt_http_can_sendfile(r) || (head && !mt_http_is_tls(r));
            for (size_t i = 0; i < w->n_insts && as_stored; i++)
                as_stored = !need_transcode(w, &w->insts[i]);
            if (as_stored) {
                for (size_t i = 0; i < w->n_insts; i++)
                    w->insts[i].full = full_path(w, &w->insts[i]);
                send_all_as_stored(w);
                return;
            }
            char ct[160];
            snprintf(ct, sizeof ct, "multipart/related; type=\"application/dicom\"; boundary=%s",
                     w->boundary);
            mt_http_begin(r, 200, ct, NULL, -1);
        }
        w->cur = 0;
        w->fd = -1;
        next_instance(w);
        return;
    }
    if (w->mode == W_METADATA) {
        size_t n = w->n_insts, k = n / META_MIN_SLICE;
        k = k < 1 ? 1 : k > META_JOBS ? META_JOBS : k;
        w->jobs = mt_calloc(k, sizeof *w->jobs);
        w->n_jobs = w->jobs_left = k;
        for (size_t i = 0; i < k; i++) {
            meta_job_t *j = &w->jobs[i];
            j->w = w;
            j->from = n * i / k;
            j->to = n * (i + 1) / k;
            j->work.data = j;
            uv_queue_work(mt_node_loop(w->wr->node), &j->work, meta_work, meta_after);
        }
        return;
    }
    if (w->mode == W_RENDERED && !w->has_instance) {
        rendered_begin(w);
        return;
    }
    mt_http_respond(r, 200, w->ctype, render_warning(w), w->out.data, w->out.len);
    mt__web_req_free(w->wr);
    wado_free(w);
}

static void meta_after(uv_work_t *wk, int status)
{
    meta_job_t *j = wk->data;
    wado_t *w = j->w;
    (void)status;
    if (--w->jobs_left)
        return;
    mt_http_req_t *r = w->wr->r;
    int err = 0;
    size_t total = 2 + (w->n_jobs - 1);
    for (size_t i = 0; i < w->n_jobs; i++) {
        err = err ? err : w->jobs[i].err;
        total += w->jobs[i].out.len;
    }
    if (err) {
        mt_log(MT_LOG_WARN, NULL, "http %s: metadata failed: %s", r->peer, mt_strerror(err));
        for (size_t i = 0; i < w->n_jobs; i++)
            mt_buf_dispose(&w->jobs[i].out);
        fail(w, 500, "metadata: a stored file could not be read");
        return;
    }
    mt_http_begin(r, 200, "application/dicom+json", NULL, (int64_t)total);
    mt_http_write(r, "[", 1);
    for (size_t i = 0; i < w->n_jobs; i++) {
        if (i)
            mt_http_write(r, ",", 1);
        mt_buf_t *b = &w->jobs[i].out;
        mt_http_write_take(r, b->data, b->len); /* the connection frees it once written */
        b->data = NULL;
        b->len = b->cap = 0;
    }
    mt_http_write(r, "]", 1);
    finish(w);
}

/* ---- negotiation ---- */

static void add_candidate(wado_t *w, int policy, const char *ts, const char *media)
{
    if (w->n_cand >= sizeof w->cand / sizeof w->cand[0])
        return;
    w->cand[w->n_cand].policy = policy;
    snprintf(w->cand[w->n_cand].ts, sizeof w->cand[0].ts, "%.71s", ts);
    snprintf(w->cand[w->n_cand].media, sizeof w->cand[0].media, "%.95s", media);
    w->n_cand++;
}

static void frames_candidate(wado_t *w, const mt_web_accept_t *a)
{
    const char *part = a->type;
    if (mt__web_type_ok(a->type, "multipart/related"))
        part = a->part_type[0] ? a->part_type : "*/*";
    else if (strcmp(a->type, "application/octet-stream") != 0 && strncmp(a->type, "image/", 6) &&
             strncmp(a->type, "video/", 6))
        return;
    if (strcmp(part, "*/*") == 0 || strcmp(a->ts, "*") == 0) {
        add_candidate(w, FR_ANY, "", "");
    } else if (strcmp(part, "application/octet-stream") == 0) {
        add_candidate(w, !a->ts[0] || strcmp(a->ts, TS_EXPLICIT_LE) == 0 ? FR_NATIVE : FR_TS,
                      a->ts, "");
    } else {
        add_candidate(w, FR_MEDIA, a->ts, part);
    }
}

/* Take the first Accept candidate every instance can be sent in (0), else leave a 406
 * reason in w->msg (-1). */
static int choose_ts(wado_t *w)
{
    const inst_t *bad = NULL;
    for (size_t c = 0; c < (w->n_cand ? w->n_cand : 1); c++) {
        if (w->n_cand) {
            w->ts_policy = w->cand[c].policy;
            snprintf(w->want_ts, sizeof w->want_ts, "%s", w->cand[c].ts);
        }
        bad = NULL;
        for (size_t i = 0; i < w->n_insts && !bad; i++)
            if (!ts_ok(w, &w->insts[i]))
                bad = &w->insts[i];
        if (!bad)
            return 0;
    }
    if (native(bad->ts))
        snprintf(w->msg, sizeof w->msg, "an instance is stored in %.64s: it can be sent as "
                 "stored (transfer-syntax=*) or as " TS_EXPLICIT_LE, bad->ts);
    else
        snprintf(w->msg, sizeof w->msg, "an instance is stored compressed (%.64s): it can be "
                 "sent only as stored (transfer-syntax=*)", bad->ts);
    return -1;
}

static int negotiate(wado_t *w)
{
    mt_web_accept_t acc[16];
    size_t na = mt__web_accept(mt__web_accept_of(w->wr), acc, 16);
    for (size_t i = 0; i < na; i++) {
        mt_web_accept_t *a = &acc[i];
        if (a->q <= 0)
            continue;
        switch (w->mode) {
        case W_INSTANCES:
            if (mt__web_type_ok(a->type, "multipart/related") &&
                (!a->part_type[0] || strcmp(a->part_type, "application/dicom") == 0)) {
                int policy = strcmp(a->ts, "*") == 0                ? 0
                             : !a->ts[0]                            ? 3
                             : strcmp(a->ts, TS_EXPLICIT_LE) == 0 ? 1
                                                                    : 2;
                add_candidate(w, policy, a->ts, "");
            } else if (strcmp(a->type, "application/dicom") == 0) {
                add_candidate(w, 0, "", "");
            }
            break;
        case W_METADATA:
            if (mt__web_type_ok(a->type, "application/dicom+json") ||
                strcmp(a->type, "application/json") == 0)
                return 0;
            break;
        case W_FRAMES:
            frames_candidate(w, a);
            break;
        case W_BULK:
            if (mt__web_type_ok(a->type, "multipart/related") ||
                strcmp(a->type, "application/octet-stream") == 0 ||
                strncmp(a->type, "image/", 6) == 0) {
                bool octet_only = (strcmp(a->part_type, "application/octet-stream") == 0 &&
                                   strcmp(a->ts, "*") != 0) ||
                                  strcmp(a->type, "application/octet-stream") == 0;
                w->ts_policy = octet_only ? 1 : 0;
                return 0;
            }
            break;
        case W_RENDERED:
        case W_THUMB:
            if (w->mode == W_RENDERED && !w->has_instance &&
                strcmp(a->type, "multipart/related") == 0) { /* study/series: parts' type */
                if (!a->part_type[0] || strcmp(a->part_type, "image/jpeg") == 0) {
                    w->ro.png = false;
                    return 0;
                }
                if (strcmp(a->part_type, "image/png") == 0) {
                    w->ro.png = true;
                    return 0;
                }
                break;
            }
            if (mt__web_type_ok(a->type, "image/jpeg")) {
                w->ro.png = false;
                return 0;
            }
            if (mt__web_type_ok(a->type, "image/png")) {
                w->ro.png = true;
                return 0;
            }
            break;
        case W_URI_FILE:
            return 0;
        }
    }
    if (w->mode == W_FRAMES && w->n_cand)
        return 0;
    if (w->mode == W_INSTANCES && w->n_cand) {
        w->ts_policy = w->cand[0].policy;
        snprintf(w->want_ts, sizeof w->want_ts, "%s", w->cand[0].ts);
        return 0;
    }
    return -1;
}

static void start(wado_t *w)
{
    mt_web_req_t *wr = w->wr;
    wr->r->handler = &handler;
    if (w->mode != W_URI_FILE && negotiate(w) != 0) {
        fail(w, 406, "cannot produce any of the media types in Accept");
        return;
    }
    w->index_path = mt_strdup(wr->conf->index_path);
    w->root = mt_strdup(wr->conf->storage_root);
    w->level = w->has_instance ? MT_LEVEL_INSTANCE : w->has_series ? MT_LEVEL_SERIES
                                                                   : MT_LEVEL_STUDY;
    w->work.data = w;
    uv_queue_work(mt_node_loop(wr->node), &w->work, work, after);
}

static wado_t *wado_new(mt_web_req_t *wr)
{
    wado_t *w = mt_calloc(1, sizeof *w);
    w->wr = wr;
    w->fd = -1;
    uint8_t rnd[16];
    if (uv_random(NULL, NULL, rnd, sizeof rnd, 0, NULL) != 0) { /* getrandom(2) failed */
        uint64_t t = uv_hrtime() ^ (uint64_t)(uintptr_t)w;
        for (size_t i = 0; i < sizeof rnd; i++, t = t * 6364136223846793005u + 1442695040888963407u)
            rnd[i] = (uint8_t)(t >> 56);
    }
    memcpy(w->boundary, "mitral-", 7);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(w->boundary + 7 + 2 * i, 3, "%02x", rnd[i]);
    return w;
}

void mt__wado(mt_web_req_t *wr, const char *study, const char *series, const char *instance,
              const char *what, const char *arg)
{
    wado_t *w = wado_new(wr);
    snprintf(w->study, sizeof w->study, "%s", study);
    if (series) {
        w->has_series = true;
        snprintf(w->series, sizeof w->series, "%s", series);
    }
    if (instance) {
        w->has_instance = true;
        snprintf(w->instance, sizeof w->instance, "%s", instance);
    }
    if (arg)
        snprintf(w->arg, sizeof w->arg, "%s", arg);
    if (!*what)
        w->mode = W_INSTANCES;
    else if (strcmp(what, "metadata") == 0)
        w->mode = W_METADATA;
    else if (strcmp(what, "frames") == 0)
        w->mode = W_FRAMES;
    else if (strcmp(what, "bulkdata") == 0)
        w->mode = W_BULK;
    else if (strcmp(what, "rendered") == 0)
        w->mode = W_RENDERED;
    else
        w->mode = W_THUMB;
    if ((w->mode == W_FRAMES || w->mode == W_BULK) && !instance) {
        fail(w, 404, "frames and bulk data belong to an instance");
        return;
    }
    if (w->mode == W_RENDERED || w->mode == W_THUMB) {
        int st = mt__render_opts(wr, w->mode == W_THUMB, false, &w->ro, w->msg, sizeof w->msg);
        if (st) {
            fail(w, st, w->msg);
            return;
        }
    }
    start(w);
}

void mt__wado_uri(mt_web_req_t *wr)
{
    const char *rt = mt__web_param(wr, "requestType");
    const char *st = mt__web_param(wr, "studyUID"), *se = mt__web_param(wr, "seriesUID"),
               *ob = mt__web_param(wr, "objectUID");
    if (!rt || strcmp(rt, "WADO") != 0 || !st || !se || !ob || !*st || !*se || !*ob) {
        mt__web_fail(wr, 400, "WADO-URI: requestType=WADO, studyUID, seriesUID and objectUID "
                              "are required");
        return;
    }
    if (strlen(st) > 64 || strlen(se) > 64 || strlen(ob) > 64) {
        mt__web_fail(wr, 400, "WADO-URI: malformed UID");
        return;
    }
    const char *ct = mt__web_param(wr, "contentType");
    wado_t *w = wado_new(wr);
    snprintf(w->study, sizeof w->study, "%s", st);
    snprintf(w->series, sizeof w->series, "%s", se);
    snprintf(w->instance, sizeof w->instance, "%s", ob);
    w->has_series = w->has_instance = true;
    if (ct && strcmp(ct, "application/dicom") == 0) {
        w->mode = W_URI_FILE;
        w->ts_policy = 0; /* WADO-URI: the stored file as it is */
    } else if (!ct || strcmp(ct, "image/jpeg") == 0 || strcmp(ct, "image/png") == 0) {
        w->mode = W_RENDERED;
        int st = mt__render_opts(wr, false, true, &w->ro, w->msg, sizeof w->msg);
        if (st) {
            fail(w, st, w->msg);
            return;
        }
        w->ro.png = ct && strcmp(ct, "image/png") == 0;
        w->ro.uri = true;
        const char *fn = mt__web_param(wr, "frameNumber");
        if (fn)
            snprintf(w->arg, sizeof w->arg, "%s", fn);
        wr->r->handler = &handler;
        w->index_path = mt_strdup(wr->conf->index_path);
        w->root = mt_strdup(wr->conf->storage_root);
        w->level = MT_LEVEL_INSTANCE;
        w->work.data = w;
        uv_queue_work(mt_node_loop(wr->node), &w->work, work, after);
        return;
    } else {
        fail(w, 406, "WADO-URI: contentType application/dicom, image/jpeg or image/png");
        return;
    }
    start(w);
}
